"""Carrying out a recovery plan, group by group, moves in parallel, every step journalled.

``Recovery.run`` (``recover.py``) opens the run in the journal and hands the plan here. The
protection groups go in the plan's order (``planner/failover.py``: depends_on, then priority). Inside
a group the moves run in parallel on a thread pool of ``parallel_per_cloud`` workers, at most
``parallel_per_host`` onto one target compute host (settings, docs/failover.md). A move ends when
nova reports the VM ACTIVE on the target (``evacuate_server`` waits for it) or fails; the next group
starts only when every move of this one has ended and its hook has run. A failed hook is recorded
(``recovery_steps.hook_result``) and — a failover is a disaster — the run goes on; a planned
migration and a failback stop there instead (SRM's rule), which ``stop_on_hook_failure`` is for, and
they stop at the first move that fails too (``stop_on_failure``): the moves already with nova end and
are recorded, no further move starts, and every VM not started is journalled ``held`` with the reason.

Each VM has one row in ``recovery_moves``: ``moving`` with its start when it is sent, then
``moved`` or ``failed`` with its end and nova's message; VMs the plan holds get a ``held`` row with
the reason. A run resumed after its process died keeps the rows it wrote.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Protocol

from govcloud.model.topology import Cloud
from govcloud.planner.failover import Move, Placed, RecoveryPlan, Step
from govcloud.settings import FailoverSettings
from govcloud.store import Store, runs, tickets
from govcloud.store.runs import MoveRow, StepRow
from govcloud.store.tickets import VmRow


@dataclass(frozen=True)
class Outcome:
    """What happened to one planned move."""

    move: Move
    ok: bool
    detail: str
    host: str | None = None
    source_host: str | None = None
    started_at: str | None = None
    ended_at: str | None = None


@dataclass(frozen=True)
class HookCall:
    """A group's post-recovery hook, to run on the VMs of the group that were recovered."""

    run_id: int
    cloud: str
    centre: str
    step: Step
    vms: tuple[VmRow, ...]


@dataclass(frozen=True)
class HookResult:
    ok: bool
    detail: str


HookRunner = Callable[[HookCall], HookResult]
"""Runs a hook (``failover/hooks.py`` with Ansible); tests pass their own."""


class FenceReport(Protocol):
    """What fencing a centre established (``failover/fence.py``'s report): the compute hosts confirmed
    powered off, and whether the whole centre is (every host off, every nova service forced down)."""

    @property
    def fenced_hosts(self) -> Collection[str]: ...

    @property
    def ready(self) -> bool: ...


Fence = Callable[[Cloud, str], "FenceReport | None"]
"""Fences a centre before it is failed over. None (the default) is fence method ``none``: only hosts nova
itself reports down are evacuated, as before fencing existed."""

Mover = Callable[[Move, Callable[[str | None], None]], Outcome]
"""Moves one VM (``Recovery._move``); the callback learns the source host as soon as nova names it."""


@dataclass
class RecoveryRun:
    """What one process did of a run (a resumed run's earlier moves are in the journal, not here)."""

    plan: RecoveryPlan
    run_id: int = 0
    resumed: bool = False
    state: str = "finished"
    outcomes: list[Outcome] = field(default_factory=list)
    hooks: dict[str, HookResult] = field(default_factory=dict)
    stopped: str | None = None
    """Why a run that stops at the first error stopped (None: it did not)."""

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def moved(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def hooks_failed(self) -> list[str]:
        return sorted(g for g, h in self.hooks.items() if not h.ok)

    def settle(self, *, lost: threading.Event, still_mine: Callable[[], bool]) -> bool:
        """Set the end state from the outcomes. False (state ``cancelled``) when the run was cancelled or
        taken over while this process carried it: whoever holds it now ends it, not this process."""
        if lost.is_set() or not still_mine():
            self.state = "cancelled"
            return False
        if self.state != "failed":
            self.state = "failed" if self.failed else "finished"
        return True

    def as_dict(self) -> dict[str, object]:
        return {**self.plan.as_dict(), "run": self.run_id, "resumed": self.resumed, "state": self.state,
                "outcomes": [{"vm": o.move.vm.name, "group": o.move.group, "ok": o.ok, "host": o.host, "detail": o.detail}
                             for o in self.outcomes],
                "hooks": {g: {"ok": h.ok, "detail": h.detail} for g, h in self.hooks.items()}, "stopped": self.stopped}


class Steps:
    """Carries out one plan under one journalled run."""

    def __init__(self, *, store: Store, now: Callable[[], str], settings: FailoverSettings, mover: Mover, hook: HookRunner | None,
                 run_id: int, lost: threading.Event, on_outcome: Callable[[Outcome], None], stop_on_hook_failure: bool = False,
                 sources: dict[str, str] | None = None, stop_on_failure: bool = False) -> None:
        self.store = store
        self.now = now
        self.settings = settings
        self.mover = mover
        self.hook = hook
        self.run_id = run_id
        self.lost = lost
        self.on_outcome = on_outcome
        self.stop_on_hook_failure = stop_on_hook_failure
        self.sources = sources or {}
        """server id → the compute host nova had it on when the run began (the journal's source host)."""
        self.stop_on_failure = stop_on_failure
        self.stopped: str | None = None
        """Why the run stopped (the first failed move or hook) when it stops at the first error."""
        self._stop_lock = threading.Lock()

    def carry_out(self, plan: RecoveryPlan, result: RecoveryRun) -> None:
        self._held(plan)
        for seq, step in enumerate(plan.steps):
            moves = plan.moves_of(step.name)
            if not moves:
                continue
            if self.lost.is_set():
                return
            started = self.now()
            self._step(StepRow(self.run_id, step.name, seq, step.priority, "running", started, hook=step.hook.role if step.hook else None))
            outcomes = self._group(seq, moves)
            result.outcomes.extend(outcomes)
            state, text = "done", ""
            if step.hook is not None and any(o.ok for o in outcomes) and not self.lost.is_set():
                hook = self._run_hook(plan, step, [o for o in outcomes if o.ok])
                result.hooks[step.name] = hook
                state, text = ("done" if hook.ok else "hook-failed"), hook.detail
            self._step(StepRow(self.run_id, step.name, seq, step.priority, "stopped" if self.lost.is_set() else state, started, self.now(),
                               step.hook.role if step.hook else None, text))
            if state == "hook-failed" and self.stop_on_hook_failure:
                self.stopped = self.stopped or f"the hook of group {step.name} failed: {text}"
            if self.stopped is not None:
                result.state = "failed"
                self._not_started(plan, seq + 1)
                return

    def _stop(self, why: str) -> None:
        with self._stop_lock:
            self.stopped = self.stopped or why

    def _not_started(self, plan: RecoveryPlan, after: int) -> None:
        """Journal the moves of the groups after ``after`` as held: the run stopped before them."""
        with self.store.transaction() as conn:
            for seq, step in enumerate(plan.steps):
                for move in plan.moves_of(step.name) if seq >= after else ():
                    self._held_row(conn, seq, move)

    def _held_row(self, conn: Any, seq: int, move: Move) -> None:
        vm = move.vm
        runs.record_move(conn, MoveRow(self.run_id, vm.name, vm.ticket, move.group, seq, vm.protection, vm.centre, "held",
                                       server_id=vm.server_id, target_centre=move.target, target_zone=move.zone, target_host=move.host,
                                       message=f"not started: the run stopped at the first error ({self.stopped})"))

    def _held(self, plan: RecoveryPlan) -> None:
        rank = {s.name: n for n, s in enumerate(plan.steps)}
        with self.store.transaction() as conn:
            for held in plan.held:
                vm = held.vm
                runs.record_move(conn, MoveRow(self.run_id, vm.name, vm.ticket, held.group, rank.get(held.group, 0), vm.protection, vm.centre,
                                               "held", server_id=vm.server_id, message=held.reason))

    def _step(self, row: StepRow) -> None:
        with self.store.transaction() as conn:
            runs.record_step(conn, row)

    def _group(self, seq: int, moves: Sequence[Move]) -> list[Outcome]:
        """Every move of one group, in parallel within the bounds; returns when all have ended."""
        per_host = {host: threading.Semaphore(max(1, self.settings.parallel_per_host)) for host in {m.host for m in moves}}
        outcomes: list[Outcome] = []
        with ThreadPoolExecutor(max_workers=max(1, min(self.settings.parallel_per_cloud, len(moves))),
                                thread_name_prefix=f"run-{self.run_id}-move") as pool:
            futures = [pool.submit(self._one, seq, move, per_host[move.host]) for move in moves]
            for future in as_completed(futures):
                outcome = future.result()
                if outcome is None:
                    continue
                outcomes.append(outcome)
                self.on_outcome(outcome)
        return outcomes

    def _one(self, seq: int, move: Move, slot: threading.Semaphore) -> Outcome | None:
        """One move (None: not started, the run having stopped at an error of another move)."""
        with slot:
            if self.lost.is_set():
                return Outcome(move, False, "not started: the run was cancelled or taken over by another process")
            if self.stopped is not None:
                with self.store.transaction() as conn:
                    self._held_row(conn, seq, move)
                return None
            started = self.now()
            source: list[str | None] = [self.sources.get(move.vm.server_id or "")]
            self._journal(seq, move, "moving", started=started)

            def learn(host: str | None) -> None:
                source[0] = source[0] or host

            outcome = self.mover(move, learn)
            ended = self.now()
            self._journal(seq, move, "moved" if outcome.ok else "failed", started=started, ended=ended, source_host=source[0],
                          target_host=outcome.host or move.host, message=outcome.detail)
            if not outcome.ok and self.stop_on_failure:
                self._stop(f"{move.vm.name}: {outcome.detail}")
            return Outcome(outcome.move, outcome.ok, outcome.detail, outcome.host, source[0], started, ended)

    def _journal(self, seq: int, move: Move, state: str, *, started: str, ended: str | None = None, source_host: str | None = None,
                 target_host: str | None = None, message: str = "") -> None:
        vm: Placed = move.vm
        with self.store.transaction() as conn:
            runs.record_move(conn, MoveRow(self.run_id, vm.name, vm.ticket, move.group, seq, vm.protection, vm.centre, state,
                                           server_id=vm.server_id, source_host=source_host, target_centre=move.target, target_zone=move.zone,
                                           target_host=target_host or move.host, started_at=started, ended_at=ended, message=message))

    def _run_hook(self, plan: RecoveryPlan, step: Step, moved: Sequence[Outcome]) -> HookResult:
        if self.hook is None:
            return HookResult(False, "no hook runner configured: the hook did not run")
        names = {o.move.vm.name for o in moved}
        with self.store.transaction() as conn:
            rows = tuple(v for v in tickets.vms_of(conn) if v.name in names)
        try:
            return self.hook(HookCall(self.run_id, plan.cloud, plan.centre, step, rows))
        except Exception as exc:  # noqa: BLE001 - a hook that blows up is a failed hook, recorded; the run goes on
            return HookResult(False, f"{type(exc).__name__}: {exc}")
