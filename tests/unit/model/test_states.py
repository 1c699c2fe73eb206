"""``model/states.py``: the ticket state machine and its named sets, and ``store.tickets.move`` held to it
(every allowed move is made, every other one refused, on a real SQLite store)."""

from __future__ import annotations

import pytest

from govcloud.errors import GovcloudError
from govcloud.model import states
from govcloud.store import Store
from govcloud.store import tickets as rows
from govcloud.store.tickets import StaleState, TicketRow

ALLOWED = [(a, b) for a, moves in states.TRANSITIONS.items() for b in moves]
REFUSED = [(a, b) for a in states.STATES for b in states.STATES if b not in states.TRANSITIONS[a]]


def test_every_state_moves_only_to_known_states_and_the_sets_are_made_of_states() -> None:
    assert all(b in states.TRANSITIONS for _, b in ALLOWED)
    for named in (states.OPEN, states.UNSETTLED, states.TO_WORK_ON, states.HOLDING, states.LIVE, states.MOVABLE):
        assert set(named) <= set(states.STATES) and len(set(named)) == len(named)


def test_the_named_sets_say_what_their_names_say() -> None:
    assert set(states.FINAL) == {"rejected", "retired"}
    assert set(states.OPEN) == set(states.STATES) - set(states.FINAL)  # open: not final
    assert set(states.UNSETTLED) == set(states.OPEN) - {"active"}  # the exporter's: open but not where tickets live
    assert set(states.LIVE) <= set(states.MOVABLE) <= set(states.HOLDING) <= set(states.OPEN)
    assert set(states.TO_WORK_ON) <= set(states.OPEN) and "active" not in states.TO_WORK_ON
    assert all(states.allowed(a, b) for a, b in ALLOWED) and not any(states.allowed(a, b) for a, b in REFUSED)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store.open(f"sqlite:///{tmp_path_factory.mktemp('states') / 'state.db'}")


def _ticket(store: Store, ticket_id: str, state: str) -> None:
    with store.transaction() as conn:
        rows.insert(conn, TicketRow(id=ticket_id, tenant="t", system="s", kind="create", state=state, content_hash=ticket_id,
                                    source="", source_name="t.yaml", submitted_by="u", submitted_at="2026-01-01T00:00:00Z",
                                    updated_at="2026-01-01T00:00:00Z"))


@pytest.mark.parametrize(("current", "new"), ALLOWED)
def test_the_store_makes_every_allowed_move(store: Store, current: str, new: str) -> None:
    ticket_id = f"ok-{current}-{new}"
    _ticket(store, ticket_id, current)
    with store.transaction() as conn:
        rows.move(conn, ticket_id, current, new, now="2026-01-02T00:00:00Z")
        assert rows.require(conn, ticket_id).state == new


@pytest.mark.parametrize(("current", "new"), [("submitted", "active"), ("active", "approved"), ("retired", "active"),
                                              ("rejected", "submitted"), ("config-failed", "active")])
def test_the_store_refuses_a_move_the_machine_does_not_allow(store: Store, current: str, new: str) -> None:
    ticket_id = f"no-{current}-{new}"
    _ticket(store, ticket_id, current)
    with pytest.raises(GovcloudError, match=f"no transition {current} → {new}"), store.transaction() as conn:
        rows.move(conn, ticket_id, current, new, now="2026-01-02T00:00:00Z")
    with store.transaction() as conn:
        assert rows.require(conn, ticket_id).state == current


def test_a_move_from_a_state_the_ticket_is_no_longer_in_is_stale(store: Store) -> None:
    _ticket(store, "stale", "approved")
    with pytest.raises(StaleState), store.transaction() as conn:
        rows.move(conn, "stale", "submitted", "approved", now="2026-01-02T00:00:00Z")
