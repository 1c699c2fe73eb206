"""What the leader daemon does about a cloud whose serving centres are all down: DR activation under the
plan's emergency rule (issue 14, item 2, the daemon's part).

An activation rebuilds the province's ``dr`` VMs in Shaoguan: a decision for the e-government office. Its
approvers may write it beforehand into the recovery plan (``emergency: {auto_approve_after: 30m, when:
both-centres-down, approver: …}``, ``model/recovery.Emergency``); until now the rule approved a waiting
run only when an operator ran ``govcloud dr activate`` again — at 3 a.m. after a flood, nobody might. One
:meth:`DrPolicy.tick` per wake-up of the daemon's failover thread, per cloud with a DR centre:

1. **request**: when every serving centre is recorded ``down`` by the health watch, no activation of the
   cloud is waiting or running, none was already made for this *episode* (the later ``since`` of the
   ``down`` records, the run's ``lost_at``: ended or not, one run per episode), and ``dr`` VMs would be
   rebuilt, the leader requests the run as its service identity (``dr-activation.request``, the rule —
   or that there is none — named in the run and the audit record). Without a rule that is all it does:
   the run waits, ``GovcloudDrActivationAwaitingApproval`` fires, an approver decides.
2. **approve and carry out**: a waiting run nobody approved is approved by the rule once it has waited
   ``auto_approve_after`` while both centres are still recorded down (``DrActivation.approval``: actor
   ``system``, the rule's file, line and approver), then carried out by the leader through the very code
   the CLI uses (``DrActivation.activate``), then the rebuilt tickets' roles applied (``configure``).
3. **left alone**: a run an approver approved (an operator carries it out) and a run that ended.
4. **resumed**: a running activation the rule approved whose process died (the previous leader killed
   mid-way) is taken over (``dr-activation.resume``); the servers already booted are found by their
   metadata, none is booted twice. An approver-approved run is resumed by the next ``dr activate`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from govcloud.errors import DriverError, GovcloudError
from govcloud.failover.activate import KIND, ActivationRefused, AwaitingApproval, DrActivation
from govcloud.failover.policy import Event
from govcloud.model.access import SYSTEM
from govcloud.planner.activation import dr_centre
from govcloud.planner.failover import SERVING
from govcloud.store import facts, runs
from govcloud.store.runs import RunInProgress, RunRow

Configure = Callable[[str], tuple[str, str]]
"""The engine's configure step on one ticket (``govcloud configure TICKET``): state and summary."""


class DrPolicy:
    """The leader's DR activation decisions; ``may_act`` is checked before each cloud (leadership, stop)."""

    def __init__(self, activation: DrActivation, *, may_act: Callable[[], bool], configure: Configure | None = None) -> None:
        self.activation = activation
        self.may_act = may_act
        self.configure = configure

    def clouds(self) -> list[str]:
        """The clouds the daemon could activate: OpenStack clouds with a DR centre."""
        return [c.id for c in self.activation.state.topology.clouds if dr_centre(c) is not None and c.driver == "openstack"]

    def due(self) -> bool:
        """Whether a wake-up has something to look at: a waiting or running activation (the rule's delay
        passes, a dead carrier's run is taken over) — centres recorded down wake the thread anyway."""
        with self.activation.store.transaction() as conn:
            return any(r.kind == KIND and r.state in runs.ACTIVE_STATES for r in runs.runs(conn, limit=200))

    def tick(self) -> list[Event]:
        events: list[Event] = []
        for cloud in self.clouds():
            if not self.may_act():
                break
            try:
                events.extend(self._cloud(cloud))
            except (ActivationRefused, DriverError) as exc:  # the DR region did not answer: the next wake-up looks again
                events.append(Event("dr activation not possible now", logging.WARNING, {"cloud": cloud, "reason": str(exc)}))
        return events

    def _cloud(self, cloud_id: str) -> list[Event]:
        run = self.activation.pending(cloud_id)
        if run is None:
            episode = self._episode(cloud_id)
            if episode is None or self._made_for(cloud_id, episode) or not self.activation.plan(cloud_id)[0].moves:
                return []
            run = self._request(cloud_id, episode)
            requested = [Event("all serving centres down: DR activation requested", logging.WARNING,
                               {"cloud": cloud_id, "run": run.id, "lost_at": episode, "rule": run.detail.get("rule")})]
            return requested + self._go_on(run)
        return self._go_on(run)

    def _episode(self, cloud_id: str) -> str | None:
        """When the cloud's serving centres were lost (the later ``since``), None unless all are recorded down."""
        cloud, _ = self.activation.cloud(cloud_id)
        serving = [c.id for c in cloud.centres if c.role in SERVING]
        with self.activation.store.transaction() as conn:
            down = {h.centre: h.since for h in facts.health(conn) if h.cloud == cloud.id and h.state == "down"}
        if not serving or any(c not in down for c in serving):
            return None
        return max(down[c] for c in serving)

    def _made_for(self, cloud_id: str, episode: str) -> bool:
        """Whether an activation run (in any state) already belongs to this episode."""
        with self.activation.store.transaction() as conn:
            return any(r.kind == KIND and r.cloud == cloud_id and r.plan.get("lost_at") == episode for r in runs.runs(conn, limit=200))

    def _request(self, cloud_id: str, episode: str) -> RunRow:
        rule = self.activation.state.recovery.emergency.get(cloud_id)
        said = rule.describe() if rule is not None else f"the recovery plan of {cloud_id} has no emergency rule: an approver decides"
        run = self.activation.request(cloud_id, reason=f"the health watch recorded every serving centre down since {episode} "
                                                        f"(requested by the leader daemon; {said})")
        if run.plan.get("lost_at") != episode:  # a centre's record changed between the two reads: the next wake-up sees it
            return run
        with self.activation.store.transaction() as conn:
            runs.set_detail(conn, run.id, {**run.detail, "requested_by_daemon": True, "rule": said}, state="new")
        return self.activation.get(run.id)

    def _go_on(self, run: RunRow) -> list[Event]:
        where: dict[str, Any] = {"cloud": run.cloud, "run": run.id}
        approval = run.detail.get("approval")
        if approval and approval.get("by") != SYSTEM.id:
            return []  # an approver decided: an operator carries it out with `dr activate` (and resumes it)
        if run.state == "running" and not (run.owner == self.activation.journal.owner or self.activation.journal.stale(run)):
            return []  # carried out by a living process
        if run.state == "new" and not approval:
            try:
                self.activation.approval(run)
            except AwaitingApproval:  # no rule, or not yet: the run's state raises GovcloudDrActivationAwaitingApproval
                return []
        try:
            done = self.activation.activate(run.id)
        except RunInProgress as exc:
            return [Event("dr activation in progress elsewhere", logging.INFO, {**where, "owner": exc.run.owner})]
        configured = self._configure(sorted({r["ticket"] for r in done.reports.values()}))
        return [Event("dr activation carried out" if not done.run.resumed else "abandoned dr activation resumed",
                      logging.WARNING if done.run.failed else logging.INFO,
                      {**where, "state": done.run.state, "rebuilt": len(done.run.moved), "held": len(done.run.plan.held),
                       "failed": [f"{o.move.vm.name}: {o.detail}" for o in done.run.failed], "approval": done.approval,
                       "configured": configured})]

    def _configure(self, tickets: list[str]) -> dict[str, str]:
        """The rebuilt tickets' Ansible roles applied at their new addresses, as ``dr activate`` does."""
        done: dict[str, str] = {}
        for ticket in tickets:
            if self.configure is None:
                break
            try:
                done[ticket] = self.configure(ticket)[0]
            except GovcloudError as exc:  # retired or moved meanwhile: said, the others go on
                done[ticket] = f"not configured: {exc}"
        return done
