"""``planner/stored.py``: the one codec of a stored plan. What approval stores (through JSON, as the
store keeps it) decodes back to the planner's own VMs and reservations; an empty plan is harmless."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from govcloud.model.parsed import DesiredState
from govcloud.model.resources import Resources
from govcloud.model.state import load_state
from govcloud.planner.placement import place
from govcloud.planner.stored import StoredPlan, decode, encode, with_vms
from govcloud.planner.usage import Usage
from govcloud.settings import DataPaths

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def state() -> DesiredState:
    return load_state(DataPaths(root=REPO))


def test_a_dr_plan_survives_the_store(state: DesiredState) -> None:
    plan = place(next(t for t in state.tickets if t.id == "t-2026-0004"), state, Usage())
    stored = decode(json.loads(json.dumps(encode(plan), ensure_ascii=False)))
    assert stored.protection == plan.protection == "dr"
    assert stored.vms == plan.vms and stored.reservations == plan.reservations and stored.replaces == ()
    assert stored.home_of(plan.vms[1].name) == plan.vms[1].centre and stored.home_of("nobody") is None
    assert all(set(c) == {"level", "scope", "ok", "explain"} for c in encode(plan)["checks"])


def test_no_plan_and_an_adopted_ticket_s_plan_decode_empty() -> None:
    assert decode(None) == decode({}) == decode({"vms": []}) == StoredPlan()
    assert StoredPlan().protection == "none"


def test_a_resize_rewrites_vms_and_reservations_and_keeps_the_rest(state: DesiredState) -> None:
    plan = place(next(t for t in state.tickets if t.id == "t-2026-0004"), state, Usage())
    bigger = [dataclasses.replace(v, size=v.size + Resources(0, 2, 0, 0)) for v in plan.vms]
    data = with_vms(encode(plan), bigger, ())
    assert decode(data).vms == tuple(bigger) and decode(data).reservations == () and data["ticket"] == plan.ticket
