"""``govcloud failover status|history``: what the journal and the health records say, as rows, and the
readiness of each recovery plan for a DR activation (``readiness``).

Reads are filtered like every read (README "Permissions"): approvers, operators and admins see every
run; a requester sees only the runs that moved or held VMs of its own tenants, counted over those
VMs alone (a run's other VMs, and runs of nothing of theirs, are not its business). Centre health is
shown to all, as ``govcloud status`` does.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from govcloud.model.access import visible_tenants
from govcloud.model.parsed import DesiredState
from govcloud.model.readiness import plan_readiness
from govcloud.model.states import MOVABLE
from govcloud.model.users import User
from govcloud.settings import DrSettings
from govcloud.store import Store, facts, runs, tickets
from govcloud.store.readiness import readiness_facts
from govcloud.store.runs import MoveRow, RunRow


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)).total_seconds(), 1)


def _visible_moves(store: Store, user: User, run_ids: list[int]) -> dict[int, list[MoveRow]]:
    """run id → its VM rows the user may see."""
    tenants = visible_tenants(user)
    with store.transaction() as conn:
        moves = runs.moves_of(conn, run_ids)
        owner = {t.id: t.tenant for t in tickets.listing(conn)} if tenants is not None else {}
    result: dict[int, list[MoveRow]] = {i: [] for i in run_ids}
    for move in moves:
        if tenants is None or owner.get(move.ticket) in tenants:
            result[move.run_id].append(move)
    return result


def _row(run: RunRow, moves: list[MoveRow]) -> dict[str, Any]:
    count = {state: sum(1 for m in moves if m.state == state) for state in runs.MOVE_STATES}
    return {"run": run.id, "kind": run.kind, "cloud": run.cloud, "centre": run.centre, "state": run.state, "user": run.started_by,
            "start": run.started_at, "end": run.finished_at, "duration_s": _seconds(run.started_at, run.finished_at),
            "moved": count["moved"], "failed": count["failed"], "held": count["held"], "in_flight": count["moving"],
            "resumed": run.resumed, "owner": run.owner if run.state in runs.ACTIVE_STATES else None,
            "heartbeat": run.heartbeat_at if run.state in runs.ACTIVE_STATES else None}


def history(store: Store, user: User, *, cloud: str | None = None, centre: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Runs, the newest first: kind, who, start, duration, VMs moved / failed / held."""
    with store.transaction() as conn:
        found = runs.runs(conn, cloud=cloud, centre=centre, limit=limit)
    moves = _visible_moves(store, user, [r.id for r in found])
    restricted = visible_tenants(user) is not None
    return [_row(r, moves[r.id]) for r in found if not restricted or moves[r.id]]


def status(store: Store, user: User, *, fencing: Mapping[tuple[str, str], str] | None = None,
           maintenance: Mapping[tuple[str, str], str] | None = None) -> list[dict[str, Any]]:
    """Each centre the health watch records (or a run names): health, fencing, maintenance (both as nova's
    listing shows them, given by the caller), the running or last run."""
    with store.transaction() as conn:
        health = {(h.cloud, h.centre): h for h in facts.health(conn)}
        recent = runs.runs(conn, limit=500)
    visible = history(store, user, limit=500)
    shown = {r["run"] for r in visible}
    by_id = {r["run"]: r for r in visible}
    centres = sorted(set(health) | {(r.cloud, r.centre) for r in recent if r.id in shown})
    rows = []
    for key in centres:
        h = health.get(key)
        latest = next((r for r in recent if (r.cloud, r.centre) == key and r.id in shown), None)
        run = by_id[latest.id] if latest is not None else None
        rows.append({"cloud": key[0], "centre": key[1], "health": h.state if h else "unknown", "since": h.since if h else None,
                     "fencing": (fencing or {}).get(key, "none"), "maintenance": (maintenance or {}).get(key, "unknown"),
                     "run": run["run"] if run else None, "run_kind": run["kind"] if run else None, "run_state": run["state"] if run else None,
                     "run_start": run["start"] if run else None, "moved": run["moved"] if run else None,
                     "failed": run["failed"] if run else None, "held": run["held"] if run else None})
    return rows


def readiness(store: Store, user: User, state: DesiredState, *, settings: DrSettings, now: datetime.datetime) -> list[dict[str, Any]]:
    """Each recovery plan (protection group): READY or NOT READY and why (``model/readiness.py``).

    A requester sees the plans that name a system of its tenants (or hold their ``dr`` VMs); a reason
    about another tenant's VM is not shown to it, only counted — the verdict stays the plan's."""
    with store.transaction() as conn:
        found = readiness_facts(conn, MOVABLE)
    plans = plan_readiness(plans=state.recovery, topology=state.topology, vms=found.vms, newest=found.newest, drills=found.drills,
                           reserved=found.reserved, held=found.held, now=now, drill_every=settings.drill_every, rpo=settings.rpo)
    tenants = visible_tenants(user)
    rows = []
    for plan in plans:
        if tenants is not None and not plan.tenants & set(tenants):
            continue
        row = plan.as_dict()
        if tenants is not None:
            shown = [r for r in plan.reasons if r.tenant is None or r.tenant in tenants]
            hidden = len(plan.reasons) - len(shown)
            texts = [r.text for r in shown] + ([f"{hidden} reason(s) about other tenants' dr VMs"] if hidden else [])
            row |= {"why": "; ".join(texts), "reasons": [{"kind": r.kind, "text": r.text} for r in shown], "hidden_reasons": hidden}
        rows.append(row)
    return rows
