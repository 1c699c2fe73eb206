"""``engine/provision.py`` on the in-memory cloud (``tests/support/fakecloud.py``): create, resume after a
killed run, roll back on a permanent failure, retire — the logic the devcloud tests check in minutes,
here in seconds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govcloud.drivers.base import META_TICKET
from govcloud.engine import provision, tickets
from govcloud.engine.context import EngineContext, build
from govcloud.errors import PermanentError, TemporaryError
from govcloud.settings import DaemonSettings, Settings
from govcloud.store import tickets as rows
from tests.support.fakecloud import FakeCloud, three_centres
from tests.support.tickets import REPO, write_ticket


@pytest.fixture
def cloud() -> FakeCloud:
    return three_centres()


@pytest.fixture
def events() -> list[tuple[str, dict[str, Any]]]:
    return []


@pytest.fixture
def ctx(tmp_path: Path, cloud: FakeCloud, events: list[tuple[str, dict[str, Any]]]) -> Iterator[EngineContext]:
    settings = Settings.from_env({}).with_overrides(root=str(REPO), db=f"sqlite:///{tmp_path / 'state.db'}", user="admin")
    settings = dataclasses.replace(settings, state_dir=tmp_path / "state", daemon=DaemonSettings(inbox=tmp_path / "inbox", inbox_settle=0))
    context = build(settings, driver_factory=cloud.driver, progress=lambda event, data: events.append((event, data)))
    yield context
    context.store.engine.dispose()


def approved(ctx: EngineContext, tmp_path: Path, count: int = 3) -> str:
    ticket_id, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", roles=(), protection="ha",
                                   vms=[{"name": "web", "count": count, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
    (row,) = tickets.submit(ctx, [path])
    if row.state == "submitted":
        tickets.approve(ctx, ticket_id)
    return ticket_id


def ticket_servers(cloud: FakeCloud, ticket_id: str) -> list[str]:
    return sorted(s.name for _, s in cloud.servers.values() if s.metadata.get(META_TICKET) == ticket_id)


def state_of(ctx: EngineContext, ticket_id: str) -> tuple[str, int, int]:
    """(state, VM rows with a server, ledger lines) of the ticket."""
    with ctx.store.transaction() as conn:
        return (rows.require(conn, ticket_id).state, sum(1 for v in rows.vms_of(conn, ticket_id) if v.server_id),
                len(rows.ledger_lines(conn, ticket=ticket_id)))


def test_create_makes_every_server_records_it_and_a_second_apply_changes_nothing(ctx: EngineContext, cloud: FakeCloud,
                                                                                  tmp_path: Path) -> None:
    ticket_id = approved(ctx, tmp_path)
    (outcome,) = provision.apply(ctx, [ticket_id])
    assert (outcome.state, outcome.detail) == ("active", "3 server(s) ACTIVE")
    assert ticket_servers(cloud, ticket_id) == [f"gd-mzt-mzoa-{ticket_id}-{n}" for n in (1, 2, 3)]
    state, recorded, ledger = state_of(ctx, ticket_id)
    assert (state, recorded) == ("active", 3) and ledger > 0
    assert "ticket.provisioned" in [r.action for r in ctx.store.audit.records()]
    creates = cloud.creates
    provision.apply(ctx, [ticket_id])  # converges an active ticket: nothing is missing, nothing is made
    assert cloud.creates == creates and len(ticket_servers(cloud, ticket_id)) == 3


def test_a_temporary_error_is_retried_and_the_ticket_still_becomes_active(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                          events: list[tuple[str, dict[str, Any]]]) -> None:
    ticket_id = approved(ctx, tmp_path, count=1)
    cloud.faults["create_server"] = [TemporaryError("HTTP 503: nova is busy", delay=0)]
    (outcome,) = provision.apply(ctx, [ticket_id])
    assert outcome.state == "active" and len(ticket_servers(cloud, ticket_id)) == 1
    assert [d["attempt"] for e, d in events if e == "retry"] == [1]


def test_a_killed_run_is_resumed_without_duplicates(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    ticket_id = approved(ctx, tmp_path)
    cloud.faults["create_server:done"] = [KeyboardInterrupt()]  # the process dies after nova accepted a create
    with pytest.raises(KeyboardInterrupt):
        provision.apply(ctx, [ticket_id])
    state, recorded, _ = state_of(ctx, ticket_id)
    assert state == "provisioning" and recorded < 3
    created = cloud.creates
    assert len(ticket_servers(cloud, ticket_id)) == created  # the server of the killed wait exists, unrecorded
    (outcome,) = provision.apply(ctx)  # the next run (the daemon's, say) picks the ticket up
    assert outcome.state == "active"
    assert len(ticket_servers(cloud, ticket_id)) == 3 and cloud.creates == 3  # what existed was adopted, not made again
    assert state_of(ctx, ticket_id)[:2] == ("active", 3)


def test_a_permanent_failure_rolls_back_the_servers_and_the_quota(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    ticket_id = approved(ctx, tmp_path)
    cloud.faults["create_server"] = [PermanentError("HTTP 400: image debian-12 is not active")]
    (outcome,) = provision.apply(ctx, [ticket_id])
    assert outcome.state == "failed"
    assert "HTTP 400" in outcome.detail and "The quota was released and its servers were deleted" in outcome.detail
    assert ticket_servers(cloud, ticket_id) == []  # the ones that were created are gone
    state, _, ledger = state_of(ctx, ticket_id)
    assert (state, ledger) == ("failed", 0)
    assert "ticket.fail" in [r.action for r in ctx.store.audit.records()]


def test_retire_deletes_the_servers_and_releases_the_quota(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    ticket_id = approved(ctx, tmp_path)
    provision.apply(ctx, [ticket_id])
    outcome = provision.retire(ctx, ticket_id)
    assert outcome.state == "retired" and outcome.detail.startswith("3 server(s) deleted")
    assert ticket_servers(cloud, ticket_id) == []
    assert state_of(ctx, ticket_id)[0::2] == ("retired", 0)


def test_retire_counts_and_sweeps_only_what_is_really_gone(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    """nova lists a deleted server (status DELETED) for a while after wait_for_delete returned: the
    retirement neither deletes it twice, nor counts it twice, nor audits it as a duplicate (issue 16:
    "32 server(s) deleted" for a 20-VM ticket, and ticket.sweep records naming its own servers)."""
    ticket_id = approved(ctx, tmp_path, count=20)
    provision.apply(ctx, [ticket_id])
    cloud.linger = 3
    outcome = provision.retire(ctx, ticket_id)
    assert (outcome.state, outcome.detail) == ("retired", "20 server(s) deleted, quota released")
    assert "ticket.sweep" not in [r.action for r in ctx.store.audit.records()]
    (retired,) = [r for r in ctx.store.audit.records() if r.action == "ticket.retired"]
    assert retired.details["servers_deleted"] == 20
