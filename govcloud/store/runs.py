"""The recovery journal: runs (failover, planned migration, failback), their VM moves and group steps.

masakari's notifications and vmoves, SRM's history, in store terms. ``failover/journal.py`` writes it
while a run goes on; ``failover status|history`` and the exporter read it. One run per centre at a
time is a property of the table (``recovery_runs.active`` is unique and set only while a run is new
or running), so a CLI run and the daemon cannot both start one, whatever they checked before.

A run belongs to the process named in ``owner`` while its ``heartbeat_at`` is fresh; a process killed
with ``kill -9`` stops beating, and the next one to ask takes the run over (``take_over``) and goes on
with it: the moves already recorded stay, the rest are planned again.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from govcloud.errors import InputError
from govcloud.store.tables import recovery_moves, recovery_runs, recovery_steps, tickets, vms

KINDS = ("failover", "migration", "failback", "dr-activation", "dr-return", "drill")
FAILOVER_KINDS = ("failover", "migration", "failback")
"""Kinds the failover policy plans and resumes by centre (``Recovery``); a ``dr-activation`` run waits for
approval and is carried on only by ``govcloud dr activate`` (``failover/activate.py``), a ``dr-return`` run
(back to Guangzhou, ``failover/dr_return.py``) only by ``govcloud dr return``. Both are runs of the DR
centre, so a cloud has one of them at a time."""
RUN_STATES = ("new", "running", "finished", "failed", "cancelled")
DRILL_END_STATES = ("succeeded", "failed")
"""How a drill ends: ``succeeded`` (every copy ACTIVE, the hook passed: what the readiness check reads) or ``failed``."""
ACTIVE_STATES = ("new", "running")
MOVE_STATES = ("planned", "moving", "moved", "failed", "held")


class RunInProgress(InputError):
    """Another run of the same centre is new or running (exit code 2: nothing was started)."""

    def __init__(self, message: str, run: RunRow) -> None:
        super().__init__(message)
        self.run = run


@dataclass(frozen=True)
class RunRow:
    id: int
    kind: str
    cloud: str
    centre: str
    state: str
    started_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    owner: str
    heartbeat_at: str
    resumed: int
    plan: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MoveRow:
    run_id: int
    vm: str
    ticket: str
    group_name: str
    seq: int
    protection: str
    source_centre: str
    state: str
    server_id: str | None = None
    source_host: str | None = None
    target_centre: str | None = None
    target_zone: str | None = None
    target_host: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    message: str = ""


@dataclass(frozen=True)
class StepRow:
    run_id: int
    group_name: str
    seq: int
    priority: int
    state: str
    started_at: str
    ended_at: str | None = None
    hook: str | None = None
    hook_result: str = ""


def _run(row: Any) -> RunRow:
    return RunRow(row.id, row.kind, row.cloud, row.centre, row.state, row.started_by, row.created_at, row.started_at, row.finished_at,
                  row.owner, row.heartbeat_at, row.resumed, json.loads(row.plan), json.loads(row.detail))


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)


def active_run(conn: sa.Connection, cloud: str, centre: str, *, key: str | None = None) -> RunRow | None:
    """The run of ``cloud/centre`` (or holding the ``active`` key ``key``) that is new or running, if any."""
    row = conn.execute(sa.select(recovery_runs).where(recovery_runs.c.active == (key or f"{cloud}/{centre}"))).first()
    return _run(row) if row is not None else None


def drill_key(cloud: str, group: str) -> str:
    """The ``active`` key of a drill: one drill per protection group at a time, and none of them holds the
    centre's key (``cloud/centre``), so a drill never blocks a real failover or DR activation of its target."""
    return f"drill:{cloud}/{group}"


def create_run(conn: sa.Connection, *, kind: str, cloud: str, centre: str, user: str, owner: str, now: str,
               plan: dict[str, Any], state: str = "running", detail: dict[str, Any] | None = None, key: str | None = None) -> RunRow:
    """A new run, ``running`` (or ``new``: waiting for approval) and owned by ``owner``; RunInProgress when
    the centre has one (or, with ``key``, when a run holds that key: a drill's ``drill_key``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}")
    if state not in ACTIVE_STATES:
        raise ValueError(f"a run starts new or running, not {state!r}")
    active = key or f"{cloud}/{centre}"
    what = "one drill per protection group at a time" if key else "one run per centre at a time"
    current = active_run(conn, cloud, centre, key=key)
    if current is not None:
        raise RunInProgress(f"run {current.id} ({current.kind}) of {active} is {current.state}, started by {current.started_by} "
                            f"at {current.started_at or current.created_at}, carried out by {current.owner} (last heartbeat "
                            f"{current.heartbeat_at}): {what}", current)
    try:
        with conn.begin_nested():
            result = conn.execute(recovery_runs.insert().values(
                kind=kind, cloud=cloud, centre=centre, state=state, started_by=user, created_at=now,
                started_at=now if state == "running" else None, owner=owner, heartbeat_at=now, resumed=0, active=active,
                plan=_json(plan), detail=_json(detail or {})))
    except sa.exc.IntegrityError as exc:  # another process inserted between our look and our insert
        raced = active_run(conn, cloud, centre, key=key)
        raise RunInProgress(f"another run of {active} started at the same moment: {what}",
                            raced or _placeholder(cloud, centre)) from exc
    run_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    found = get_run(conn, run_id)
    assert found is not None
    return found


def _placeholder(cloud: str, centre: str) -> RunRow:
    return RunRow(0, "failover", cloud, centre, "running", "", "", None, None, "", "", 0)


def get_run(conn: sa.Connection, run_id: int) -> RunRow | None:
    row = conn.execute(sa.select(recovery_runs).where(recovery_runs.c.id == run_id)).first()
    return _run(row) if row is not None else None


def take_over(conn: sa.Connection, run: RunRow, *, owner: str, now: str, plan: dict[str, Any]) -> bool:
    """Make ``owner`` the carrier of ``run`` if it is still as ``run`` says (the same owner and heartbeat):
    False when someone else took it over or beat meanwhile."""
    result = conn.execute(recovery_runs.update().where(
        recovery_runs.c.id == run.id, recovery_runs.c.owner == run.owner, recovery_runs.c.heartbeat_at == run.heartbeat_at,
        recovery_runs.c.active.is_not(None)).values(owner=owner, heartbeat_at=now, resumed=recovery_runs.c.resumed + 1, state="running",
                                                    plan=_json(plan)))
    return bool(result.rowcount)


def set_detail(conn: sa.Connection, run_id: int, detail: dict[str, Any], *, state: str) -> bool:
    """Replace the detail of a run that is still in ``state`` (compare-and-set: an approval recorded once)."""
    result = conn.execute(recovery_runs.update().where(recovery_runs.c.id == run_id, recovery_runs.c.state == state)
                          .values(detail=_json(detail)))
    return bool(result.rowcount)


def start_run(conn: sa.Connection, run: RunRow, *, owner: str, now: str) -> bool:
    """``new`` → ``running``, carried by ``owner``; False when the run is no longer as ``run`` says."""
    result = conn.execute(recovery_runs.update().where(
        recovery_runs.c.id == run.id, recovery_runs.c.state == "new", recovery_runs.c.owner == run.owner,
        recovery_runs.c.heartbeat_at == run.heartbeat_at).values(state="running", owner=owner, heartbeat_at=now, started_at=now))
    return bool(result.rowcount)


def beat(conn: sa.Connection, run_id: int, *, owner: str, now: str) -> bool:
    """Record that ``owner`` still carries the run; False when it no longer does (taken over, cancelled, ended)."""
    result = conn.execute(recovery_runs.update().where(
        recovery_runs.c.id == run_id, recovery_runs.c.owner == owner, recovery_runs.c.state == "running").values(heartbeat_at=now))
    return bool(result.rowcount)


def end_run(conn: sa.Connection, run_id: int, *, state: str, now: str, detail: dict[str, Any], owner: str | None = None) -> bool:
    """Finish the run (``finished``, ``failed`` or ``cancelled``) and free its centre; with ``owner``, only if
    that process still carries it."""
    if state not in (*RUN_STATES[2:], *DRILL_END_STATES):
        raise ValueError(f"{state!r} is not a final run state")
    query = recovery_runs.update().where(recovery_runs.c.id == run_id, recovery_runs.c.active.is_not(None))
    if owner is not None:
        query = query.where(recovery_runs.c.owner == owner)
    return bool(conn.execute(query.values(state=state, finished_at=now, active=None, detail=_json(detail))).rowcount)


def runs(conn: sa.Connection, *, cloud: str | None = None, centre: str | None = None, limit: int = 50,
         kinds: Sequence[str] | None = None) -> list[RunRow]:
    """Runs, the newest first (of ``kinds`` when given)."""
    query = sa.select(recovery_runs).order_by(recovery_runs.c.id.desc()).limit(limit)
    if kinds is not None:
        query = query.where(recovery_runs.c.kind.in_(list(kinds)))
    if cloud is not None:
        query = query.where(recovery_runs.c.cloud == cloud)
    if centre is not None:
        query = query.where(recovery_runs.c.centre == centre)
    return [_run(r) for r in conn.execute(query)]


def record_move(conn: sa.Connection, move: MoveRow) -> None:
    """Insert or replace the row of one VM of a run."""
    conn.execute(recovery_moves.delete().where(recovery_moves.c.run_id == move.run_id, recovery_moves.c.vm == move.vm))
    conn.execute(recovery_moves.insert().values(**move.__dict__))


def moves_of(conn: sa.Connection, run_ids: Sequence[int]) -> list[MoveRow]:
    query = sa.select(recovery_moves).where(recovery_moves.c.run_id.in_(list(run_ids))).order_by(
        recovery_moves.c.run_id, recovery_moves.c.seq, recovery_moves.c.started_at, recovery_moves.c.vm)
    return [MoveRow(**{k: getattr(r, k) for k in MoveRow.__dataclass_fields__}) for r in conn.execute(query)]


def record_step(conn: sa.Connection, step: StepRow) -> None:
    conn.execute(recovery_steps.delete().where(recovery_steps.c.run_id == step.run_id, recovery_steps.c.group_name == step.group_name))
    conn.execute(recovery_steps.insert().values(**step.__dict__))


def steps_of(conn: sa.Connection, run_id: int) -> list[StepRow]:
    query = sa.select(recovery_steps).where(recovery_steps.c.run_id == run_id).order_by(recovery_steps.c.seq)
    return [StepRow(**{k: getattr(r, k) for k in StepRow.__dataclass_fields__}) for r in conn.execute(query)]


def counts(conn: sa.Connection, run_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """run id → {move state: VMs}."""
    query = sa.select(recovery_moves.c.run_id, recovery_moves.c.state, sa.func.count()).where(
        recovery_moves.c.run_id.in_(list(run_ids))).group_by(recovery_moves.c.run_id, recovery_moves.c.state)
    result: dict[int, dict[str, int]] = {i: {} for i in run_ids}
    for run_id, state, n in conn.execute(query):
        result[int(run_id)][str(state)] = int(n)
    return result


def last_drills(conn: sa.Connection) -> dict[tuple[str, str], datetime.datetime]:
    """(cloud, group) → ``finished_at`` of its newest successful drill: a ``drill`` run that ended
    ``succeeded`` and whose detail names the protection group (``{"group": ...}``). Read by readiness
    (``model/readiness.py``) in ``failover status`` and at every scrape: drills are a few a quarter per
    group, so reading their rows is cheap; the group is inside the JSON detail, hence chosen here."""
    query = sa.select(recovery_runs.c.cloud, recovery_runs.c.finished_at, recovery_runs.c.detail).where(
        recovery_runs.c.kind == "drill", recovery_runs.c.state == "succeeded", recovery_runs.c.finished_at.is_not(None))
    found: dict[tuple[str, str], datetime.datetime] = {}
    for cloud, finished, detail in conn.execute(query):
        try:
            group = json.loads(detail).get("group") if detail else None
        except (ValueError, AttributeError):
            group = None
        if not isinstance(group, str):
            continue
        key, moment = (str(cloud), group), _moment(str(finished))
        if key not in found or moment > found[key]:
            found[key] = moment
    return found


def _moment(iso: str) -> datetime.datetime:
    """A stored timestamp, aware (a naive one is UTC, as every writer means it)."""
    moment = datetime.datetime.fromisoformat(iso)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


@dataclass(frozen=True)
class RecoveryFacts:
    """What the exporter reads of the journal in one scrape (``exporter/recovery.py``)."""

    by_state: list[tuple[str, str, int]] = field(default_factory=list)
    """(kind, state, runs)."""
    latest: list[RunRow] = field(default_factory=list)
    """The newest run of each kind × cloud × centre."""
    latest_vms: dict[int, dict[str, int]] = field(default_factory=dict)
    """run id (of ``latest``) → {move state: VMs}."""
    vm_seconds: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, started_at, ended_at) of every VM moved, for the per-VM recovery histogram."""


def recovery_facts(conn: sa.Connection) -> RecoveryFacts:
    """A few aggregate reads: run counts by kind and state, the newest run per centre and kind with its VM
    counts, and the start and end of every move that succeeded."""
    by_state = [(str(k), str(s), int(n)) for k, s, n in conn.execute(
        sa.select(recovery_runs.c.kind, recovery_runs.c.state, sa.func.count()).group_by(recovery_runs.c.kind, recovery_runs.c.state))]
    newest = sa.select(sa.func.max(recovery_runs.c.id)).group_by(recovery_runs.c.kind, recovery_runs.c.cloud, recovery_runs.c.centre)
    latest = [_run(r) for r in conn.execute(sa.select(recovery_runs).where(recovery_runs.c.id.in_(newest)).order_by(recovery_runs.c.id))]
    moved = conn.execute(sa.select(recovery_runs.c.kind, recovery_moves.c.started_at, recovery_moves.c.ended_at).join(
        recovery_runs, recovery_runs.c.id == recovery_moves.c.run_id).where(recovery_moves.c.state == "moved"))
    return RecoveryFacts(by_state, latest, counts(conn, [r.id for r in latest]),
                         [(str(k), str(s), str(e)) for k, s, e in moved if s and e])


@dataclass(frozen=True)
class AwayVm:
    """A VM of a live ticket recorded in another centre than the one its ticket's plan placed it in."""

    cloud: str
    home: str
    centre: str
    since: str | None
    """When the journal's move that took it away from home ended (the first move since it last came home)."""


def away_from_home(conn: sa.Connection, states: Sequence[str]) -> list[AwayVm]:
    """The VMs of live managed tickets (``states``) that are away from their home centre.

    Only a journaled move (failover, planned migration, failback, DR activation or return) changes the
    centre govcloud records for a VM, so the candidates are the VMs with a ``moved`` row in the journal: one
    query over those rows (not over every VM), and each of their tickets' stored plans (JSON, where the home
    centre is: ``StoredPlan.home_of``) decoded once. A drill moves copies, never the VM: its rows are skipped."""
    query = (sa.select(vms.c.name, vms.c.cloud, vms.c.centre, tickets.c.id, tickets.c.plan, recovery_moves.c.target_centre,
                       recovery_moves.c.ended_at)
             .join(vms, vms.c.name == recovery_moves.c.vm).join(tickets, tickets.c.id == vms.c.ticket)
             .join(recovery_runs, recovery_runs.c.id == recovery_moves.c.run_id)
             .where(recovery_moves.c.state == "moved", recovery_runs.c.kind != "drill", tickets.c.state.in_(list(states)),
                    tickets.c.mode == "managed")
             .order_by(vms.c.name, recovery_moves.c.ended_at, recovery_moves.c.run_id))
    homes: dict[str, dict[str, str]] = {}
    found: dict[str, AwayVm] = {}
    for name, cloud, centre, ticket, plan, target, ended in conn.execute(query):
        if ticket not in homes:
            homes[ticket] = _homes(plan)
        home = homes[ticket].get(name)
        if home is None or home == centre:
            found.pop(name, None)
            continue
        seen = found.get(name)
        if target == home:  # came home: a later move away starts a new absence
            found.pop(name, None)
        elif seen is None:
            found[name] = AwayVm(str(cloud), home, str(centre), str(ended) if ended else None)
    return sorted(found.values(), key=lambda v: (v.cloud, v.home, v.centre))


def moved_stamp(conn: sa.Connection) -> tuple[int, str | None]:
    """How many ``moved`` rows the journal holds and the newest end among them: with the versions of ``vms``
    and ``tickets``, what ``away_from_home`` depends on (a move's row and its VM's row are written in two
    transactions, so the VM table's version alone could keep a stale answer)."""
    count, newest = conn.execute(sa.select(sa.func.count(), sa.func.max(recovery_moves.c.ended_at))
                                 .where(recovery_moves.c.state == "moved")).one()
    return int(count), None if newest is None else str(newest)


def _homes(plan: str | None) -> dict[str, str]:
    """VM name → the centre the stored plan placed it in (``planner/stored.py`` decodes the same key)."""
    try:
        data = json.loads(plan) if plan else {}
        return {str(v["name"]): str(v["centre"]) for v in data.get("vms", []) if isinstance(v, dict) and "name" in v and "centre" in v}
    except (ValueError, AttributeError, TypeError):
        return {}
