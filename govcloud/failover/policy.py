"""What the leader daemon does about centres that are down: the failover policy (issue 12's leftover,
out of daemon.py) and its once-per-episode audit.

One :meth:`FailoverPolicy.tick` per wake-up of the daemon's failover thread:

1. **resume** every run whose process died (``journal.stale_runs``): a CLI ``failover run`` killed
   with ``kill -9``, or the previous leader's run — whatever the policy, since someone already
   decided to run it. A run whose centre nova now reports back up is ended ``failed`` with that reason.
   A planned migration or failback (``planned.py``) is resumed as what it is — never fenced, never
   replanned as an evacuation of a healthy centre; one whose preconditions no longer hold is ended
   ``failed`` the same way.
2. each centre recorded ``down``: under ``evacuate``, fence (if configured), plan and run; under
   ``auto``, fence where the centre has a fence method and run **only if** the fence is complete (every
   host confirmed off and forced down), else — method ``none``, or a fence that failed — report; under
   ``report``, append **one** ``failover.needed`` record per centre-down *episode* — the episode is
   the health record's ``since`` (when the centre went down), so a plan that changes as VMs move, or
   a new leader, does not write another. The record is a summary (VMs to move and held, per group,
   held reasons counted), not the whole plan: on the 288-VM province day the whole plan, written
   again after every move, made 46 records of 17–28 KB.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from govcloud.errors import DriverError
from govcloud.failover.planned import Planned
from govcloud.failover.recover import FailoverRefused, Recovery
from govcloud.failover.steps import RecoveryRun
from govcloud.planner.failover import RecoveryPlan
from govcloud.store import facts, runs
from govcloud.store.runs import RunInProgress

POLICIES = ("report", "evacuate", "auto")
PLANNED = ("migration", "failback")
"""Run kinds a leader resumes with ``planned.py`` (no fencing, no evacuation)."""


@dataclass(frozen=True)
class Event:
    """Something the daemon logs: message, level, fields."""

    message: str
    level: int
    fields: dict[str, Any]


def summary(plan: RecoveryPlan, episode: str) -> dict[str, Any]:
    """What an auditor reads about a centre that is down and waits: counts per group, held reasons counted."""
    return {"episode": episode, "moves": len(plan.moves), "held": len(plan.held),
            "groups": [{"name": s.name, "priority": s.priority, "moves": len(plan.moves_of(s.name)),
                        "held": sum(1 for h in plan.held if h.group == s.name)} for s in plan.steps],
            "held_reasons": dict(Counter(h.reason for h in plan.held).most_common(10)),
            "command": f"govcloud failover run {plan.centre} --cloud {plan.cloud}"}


class FailoverPolicy:
    """The daemon's failover decisions; ``may_act`` is checked before each centre (leadership, stop)."""

    def __init__(self, recovery: Recovery, *, policy: str, actor: str, may_act: Callable[[], bool]) -> None:
        """``auto`` fences through ``recovery.fence`` (None: no centre has a method, so it reports everywhere)."""
        if policy not in POLICIES:
            raise ValueError(f"failover policy {policy!r}: expected one of {', '.join(POLICIES)}")
        self.recovery = recovery
        self.policy = policy
        self.actor = actor
        self.may_act = may_act

    def tick(self) -> list[Event]:
        events = self.resume()
        for cloud, centre, since in self._down():
            if not self.may_act():
                break
            events.extend(self._centre(cloud, centre, since))
        return events

    def resume(self) -> list[Event]:
        """Take over and finish every run whose process died."""
        events: list[Event] = []
        for run in self.recovery.journal.stale_runs():
            if not self.may_act():
                break
            if run.kind in PLANNED:
                events.append(self._resume_planned(run))
                continue
            try:
                plan = self.recovery.fence_and_plan(run.cloud, run.centre)
            except FailoverRefused as exc:
                with self.recovery.store.transaction() as conn:
                    runs.end_run(conn, run.id, state="failed", now=self.recovery.now(), detail={"reason": f"not resumed: {exc}"})
                events.append(Event("abandoned run not resumable: ended failed", logging.WARNING,
                                    {"run": run.id, "cloud": run.cloud, "centre": run.centre, "reason": str(exc)}))
                continue
            events.append(self._run(plan, resumed_from=run.id))
        return events

    def _resume_planned(self, run: runs.RunRow) -> Event:
        """Take over a ``migration`` or ``failback`` run whose process died, with its own plan and mover."""
        planned = Planned(self.recovery)
        where = {"run": run.id, "kind": run.kind, "cloud": run.cloud, "centre": run.centre}
        try:
            plan = (planned.migrate_plan if run.kind == "migration" else planned.failback_plan)(run.cloud, run.centre)
            result = (planned.migrate if run.kind == "migration" else planned.failback)(plan)
        except RunInProgress as exc:
            return Event("planned run in progress elsewhere", logging.INFO, {**where, "owner": exc.run.owner})
        except FailoverRefused as exc:
            with self.recovery.store.transaction() as conn:
                runs.end_run(conn, run.id, state="failed", now=self.recovery.now(), detail={"reason": f"not resumed: {exc}"})
            return Event("abandoned run not resumable: ended failed", logging.WARNING, {**where, "reason": str(exc)})
        except DriverError as exc:  # the cloud did not answer (maintenance not set or ended): the next wake-up tries again
            return Event("abandoned run not resumed yet", logging.WARNING, {**where, "reason": str(exc)})
        return Event("abandoned run resumed", logging.WARNING if result.failed else logging.INFO,
                     {**where, "state": result.state, "moved": len(result.moved), "stopped": result.stopped})

    def _down(self) -> list[tuple[str, str, str]]:
        with self.recovery.store.transaction() as conn:
            return sorted((h.cloud, h.centre, h.since) for h in facts.health(conn) if h.state == "down")

    def _centre(self, cloud: str, centre: str, since: str) -> list[Event]:
        evacuate, fence_error = self.policy == "evacuate", ""
        try:
            if self.policy == "auto":
                plan, evacuate, fence_error = self._fenced_plan(cloud, centre)
            else:
                plan = self.recovery.fence_and_plan(cloud, centre) if evacuate else self.recovery.plan(cloud, centre)
        except FailoverRefused as exc:  # nova says its hosts are back (or, a fence incomplete, still up): nothing moves
            return [Event("failover not possible", logging.WARNING, {"cloud": cloud, "centre": centre, "reason": str(exc)})]
        if not plan.moves:
            return []
        if evacuate:
            return [self._run(plan)]
        if self._reported(cloud, centre, since):
            return []
        self.recovery.store.audit.append(self.actor, "failover.needed", f"centre:{cloud}/{centre}", summary(plan, since))
        return [Event("centre down: protected VMs wait for 'govcloud failover run'", logging.WARNING,
                      {"cloud": cloud, "centre": centre, "moves": len(plan.moves), "held": len(plan.held), "policy": self.policy,
                       "episode": since} | ({"fencing": fence_error} if fence_error else {}))]

    def _fenced_plan(self, cloud: str, centre: str) -> tuple[RecoveryPlan, bool, str]:
        """``auto``: fence the centre if it has a method; (plan, evacuate?, why not). Evacuate only when the
        fence is complete — a partial fence counts only its confirmed-off hosts and is left to an operator."""
        target = self.recovery.cloud_of(cloud, centre)
        report = self.recovery.fence(target, centre) if self.recovery.fence is not None else None
        plan = self.recovery.plan(cloud, centre, fenced=report.fenced_hosts if report is not None else ())
        if report is None:
            return plan, False, ""
        return plan, report.ready, "" if report.ready else "fencing incomplete: not evacuating on its own"

    def _reported(self, cloud: str, centre: str, since: str) -> bool:
        """Whether this centre-down episode already has its ``failover.needed`` record (by any leader)."""
        newest = self.recovery.store.audit.records(subject=f"centre:{cloud}/{centre}", limit=50)
        return any(r.action == "failover.needed" and r.details.get("episode") == since for r in newest)

    def _run(self, plan: RecoveryPlan, *, resumed_from: int | None = None) -> Event:
        where = {"cloud": plan.cloud, "centre": plan.centre}
        try:
            result: RecoveryRun = self.recovery.run(plan)
        except RunInProgress as exc:
            return Event("failover run in progress elsewhere", logging.INFO, {**where, "run": exc.run.id, "owner": exc.run.owner})
        return Event("centre failed over" if resumed_from is None else "abandoned run resumed",
                     logging.WARNING if result.failed else logging.INFO,
                     {**where, "run": result.run_id, "state": result.state, "moved": len(result.moved),
                      "failed": [f"{o.move.vm.name}: {o.detail}" for o in result.failed], "held": len(plan.held),
                      "hooks_failed": result.hooks_failed})
