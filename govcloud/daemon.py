"""``govcloud daemon``: the long-running control plane.

It does what an operator would otherwise run by hand, with the very same engine functions:

* **work pass** (every ``apply_interval``): take ticket files from the inbox (``<inbox>/<user>/``,
  submitted as that user, auto-approval included; ``engine/inbox.py`` says what is trusted), apply every
  approved ticket and finish interrupted ones in one ``provision.apply`` (their servers share one work
  queue, as ``govcloud apply``'s do), warn about and retire expired leases;
* **reconcile pass** (every ``reconcile_interval``): drift, orphans and unmanaged servers per cloud,
  recreated by policy (``engine/reconcile.py``; Terraform clouds by a refreshed plan per workspace,
  ``engine/tf_reconcile.py``);
* **usage history** (every ``history_interval``, hourly by default): a full sample of every tenant × system ×
  cloud × centre allocation and quota into the store (``engine/history.py``), what the reports pro-rate;
* **health** (every ``health_interval``, on its own thread so a long apply never delays it): centre
  states from nova's compute services (``failover/watch.py``);
* **failover** (on its own thread, woken by the health loop): ``failover/policy.py`` resumes runs
  whose process died and, for a centre recorded ``down``, audits the recovery plan once per episode
  or carries it out when ``failover_policy`` is ``evacuate`` (or ``auto`` and the centre is fenced
  completely); a centre with a fence method is fenced first (``failover/fence.py``). A cloud whose
  serving centres are all down gets a DR activation run requested by the leader; the plan's emergency
  rule approves it after its delay and the leader carries it out (``failover/emergency.py``); without a
  rule the run waits for an approver.
* **replication** (every ``dr.interval``, on its own thread: snapshots and copies take seconds each):
  each ``dr`` VM whose newest replica is older than its RPO is snapshotted and copied into its cloud's
  DR region, old replicas pruned (``failover/replicate.py``).

Only the **leader** acts. Leadership comes from the store (``store/leader.py``: a PostgreSQL advisory
lock, or a lock file next to a SQLite database); standbys poll for it. Before every step the leader
checks the lock is still its own and steps down if not. A leader killed mid-apply leaves its ticket
``provisioning``; the next leader's apply resumes it (waits for creates in flight, adopts what
exists, deletes late duplicates), so nothing is created twice.

SIGTERM (or SIGINT) finishes the tickets in flight (no further ticket is started) and stops; a second one exits at once (the next
leader finishes what was abandoned). Logs are JSON lines on stderr. Every daemon, leader or standby,
serves ``/metrics``, ``/healthz`` and ``/readyz`` when a server is configured.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from govcloud.drivers.base import Endpoint
from govcloud.engine import configure, history, inbox, leases, provision
from govcloud.engine.context import EngineContext
from govcloud.engine.onboard import ensure_tenant_for
from govcloud.engine.reconcile import Reconciler
from govcloud.errors import GovcloudError
from govcloud.failover.activate import DrActivation
from govcloud.failover.emergency import DrPolicy
from govcloud.failover.fence import recovery_fence
from govcloud.failover.health import HealthPolicy
from govcloud.failover.hooks import ansible_hook
from govcloud.failover.policy import FailoverPolicy
from govcloud.failover.recover import Recovery
from govcloud.failover.replicate import Replicator
from govcloud.failover.watch import CentreWatch
from govcloud.model.access import service_identity
from govcloud.settings import DaemonSettings
from govcloud.store import facts
from govcloud.store.leader import LeaderLock

log = logging.getLogger("govcloud.daemon")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
                                 "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("govcloud")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def event(message: str, level: int = logging.INFO, *, exc_info: bool = False, **fields: Any) -> None:
    log.log(level, message, exc_info=exc_info, extra={"fields": fields})


class Server(Protocol):
    """What the daemon needs of its HTTP server (govcloud/exporter)."""

    port: int

    def stop(self) -> None: ...


@dataclass
class Timer:
    """A step due every ``interval`` seconds (monotonic clock); the first run is due at once."""

    interval: float
    next_at: float = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def done(self, now: float) -> None:
        self.next_at = now + self.interval


class Daemon:
    """One daemon process. ``run()`` blocks until stopped; ``request_stop()`` is the signal handler."""

    def __init__(self, ctx: EngineContext, *, settings: DaemonSettings, lock: LeaderLock | None = None,
                 serve: Callable[[Daemon], Server] | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.identity = service_identity(ctx.state.users, ctx.settings.user)
        self.ctx = ctx
        self.settings = settings
        self.lock = lock or LeaderLock(ctx.store)
        self.serve = serve
        self.monotonic = monotonic
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.started_at = ctx.now()
        self.leader = False
        self.stopping = threading.Event()
        self.last_tick = monotonic()
        self.server: Server | None = None
        self._terms = 0
        self.reconciler = Reconciler(ctx, policy=settings.reconcile_policy, timeout=settings.reconcile_timeout, actor=self.identity.id,
                                     terraform_runs=settings.reconcile_terraform_runs, stop=self.stopping)
        self.watch = CentreWatch(store=ctx.store, topology=ctx.state.topology, endpoints=ctx.endpoints, driver=ctx.driver,
                                 clock=time.time, timeout=settings.health_timeout, actor=self.identity.id,
                                 policy=HealthPolicy(worsen_checks=settings.health_confirmations, recover_after=settings.health_recovery,
                                                     silent_after=settings.health_silent_after))
        self.recovery = Recovery(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now,
                                 actor=self.identity, tries=ctx.settings.engine.temporary_retries + 1, settings=ctx.settings.failover,
                                 owner=self.id, hook=ansible_hook(ctx.settings), fence=recovery_fence(
                                     settings=ctx.settings, topology=ctx.state.topology, endpoints=ctx.endpoints, driver=ctx.driver,
                                     audit=ctx.store.audit, actor=self.identity))
        self.replicator = Replicator(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, clock=ctx.clock,
                                     actor=self.identity, settings=ctx.settings.dr, tries=ctx.settings.engine.temporary_retries + 1)
        self.failover = FailoverPolicy(self.recovery, policy=settings.failover_policy, actor=self.identity.id, may_act=self.may_act)
        activation = DrActivation(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now,
                                  actor=self.identity, tries=ctx.settings.engine.temporary_retries + 1, settings=ctx.settings.failover,
                                  hook=self.recovery.hook, owner=self.id, onboard=self._onboard)
        self.dr = DrPolicy(activation, may_act=self.may_act, configure=lambda ticket: configure.configure(ctx, ticket))
        self.failover_due = threading.Event()
        self._audit_head: tuple[int, str] | None = None
        self.work_timer = Timer(settings.apply_interval)
        self.reconcile_timer = Timer(settings.reconcile_interval)
        self.history_timer = Timer(settings.history_interval)

    def _onboard(self, tenant: str, endpoint: Endpoint) -> None:
        """A tenant made ready to boot in the DR region before its first rebuild there (the engine's onboarding)."""
        ensure_tenant_for(self.ctx, tenant, endpoint)

    # -- lifecycle ---------------------------------------------------------------------------
    def request_stop(self, signum: int = signal.SIGTERM, _frame: Any = None) -> None:
        """First signal: finish the step in flight, then stop. Second: exit now."""
        self._terms += 1
        if self._terms > 1:
            event("second stop signal: exiting now; the next leader finishes what was in flight", logging.WARNING, signal=signum)
            os._exit(1)
        event("stop requested: finishing the step in flight", signal=signum)
        self.stopping.set()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self, *, once: bool = False) -> int:
        """Serve, elect, work until stopped (``once``: one full round as leader, for cron-style use and tests)."""
        if self.serve is not None:
            self.server = self.serve(self)
            event("serving metrics and health", port=self.server.port)
        health = threading.Thread(target=self._health_loop, name="health", daemon=True)
        health.start()
        threading.Thread(target=self._failover_loop, name="failover", daemon=True).start()
        threading.Thread(target=self._replicate_loop, name="replicate", daemon=True).start()
        event("daemon started", daemon=self.id, store=self.ctx.store.describe(), election=self.lock.backend,
              inbox=str(self.ctx.settings.inbox), policy=self.settings.reconcile_policy)
        try:
            while not self.stopping.is_set():
                self.tick(force=once)
                if once and self.leader:
                    self.watch.check()
                    self._guarded("failover", self.failover_pass)
                    break
                self.stopping.wait(self._sleep())
        finally:
            self._shutdown()
        return 0

    def _sleep(self) -> float:
        if not self.leader:
            return self.settings.leader_poll
        now = self.monotonic()
        return max(0.2, min(self.work_timer.next_at, self.reconcile_timer.next_at, self.history_timer.next_at) - now)

    def _shutdown(self) -> None:
        self.stopping.set()
        self.failover_due.set()
        was_leader = self.leader
        self.leader = False
        self.lock.release()
        self._heartbeat(stopped=True)
        self.reconciler.close()
        self.watch.close()
        if self.server is not None:
            self.server.stop()
        event("daemon stopped", daemon=self.id, was_leader=was_leader)

    # -- leadership --------------------------------------------------------------------------
    def tick(self, *, force: bool = False) -> None:
        """Heartbeat, election, and whatever work is due."""
        self.last_tick = self.monotonic()
        self._elect()
        self._heartbeat()
        if not self.leader:
            return
        now = self.monotonic()
        if force or self.work_timer.due(now):
            self._guarded("work", self.work_pass)
            self.work_timer.done(self.monotonic())
        if (force or self.reconcile_timer.due(now)) and self.may_act():
            self._guarded("reconcile", self.reconcile_pass)
            self.reconcile_timer.done(self.monotonic())
        if (force or self.history_timer.due(now)) and self.may_act():
            self._guarded("history", self.history_pass)
            self.history_timer.done(self.monotonic())
        self._log_audit_head()

    def _log_audit_head(self) -> None:
        """Log the audit chain's head (seq, hash) whenever it moved: the log leaves the host (journald, a
        collector), so it anchors the chain a third time, beside the key and the anchor file — records
        deleted later cannot be unlogged."""
        try:
            head = self.ctx.store.audit.head()
        except Exception as exc:  # noqa: BLE001 - a log line must not stop the daemon; the next tick retries
            event("audit head not read", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
            return
        if head != self._audit_head:
            if head is None:
                event("audit head row is missing: appends are refused; run `govcloud audit verify`", logging.ERROR)
            else:
                event("audit head", audit_seq=head[0], audit_hash=head[1])
            self._audit_head = head

    def _elect(self) -> None:
        try:
            if self.leader and not self.lock.held():
                self.leader = False
                event("lost leadership: stepping down", logging.ERROR, daemon=self.id)
            elif not self.leader and self.lock.acquire():
                self.leader = True
                self.work_timer.next_at = self.reconcile_timer.next_at = self.history_timer.next_at = 0.0
                self._heartbeat()
                with self.ctx.store.transaction() as conn:
                    stale = facts.claim_leadership(conn, self.id)
                    self.ctx.store.audit.append(self.identity.id, "daemon.leader", f"daemon:{self.id}",
                                                {"election": self.lock.backend, "previous_leader_rows_cleared": stale}, connection=conn)
                event("became leader", daemon=self.id, cleared=stale)
        except GovcloudError as exc:
            self.leader = False
            event("leader election failed", logging.ERROR, error=str(exc))

    def may_act(self) -> bool:
        """Checked before every step: still leading, and not asked to stop."""
        if self.stopping.is_set() or not self.leader:
            return False
        if not self.lock.held():
            self.leader = False
            event("lost leadership before a step: not acting", logging.ERROR, daemon=self.id)
            return False
        return True

    def _heartbeat(self, *, stopped: bool = False) -> None:
        row = facts.DaemonRow(id=self.id, hostname=socket.gethostname(), pid=os.getpid(), started_at=self.started_at,
                              heartbeat_at=self.ctx.now(), leader=self.leader, stopped_at=self.ctx.now() if stopped else None)
        try:
            with self.ctx.store.transaction() as conn:
                facts.heartbeat(conn, row)
        except GovcloudError as exc:
            event("heartbeat not recorded", logging.WARNING, error=str(exc))

    def _guarded(self, name: str, step: Callable[[], None]) -> None:
        """A failing step is logged and retried on its next turn; it never ends the daemon."""
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - the control plane keeps running; the next pass retries
            event(f"{name} pass failed", logging.ERROR, exc_info=not isinstance(exc, GovcloudError), error=f"{type(exc).__name__}: {exc}")

    # -- the steps ---------------------------------------------------------------------------
    def work_pass(self) -> None:
        """Inbox, then every approved and interrupted ticket in one ``apply`` (one work queue across them,
        as ``govcloud apply``), then leases."""
        for result in inbox.scan(self.ctx, self.ctx.settings.inbox, settle=self.settings.inbox_settle, stop=lambda: not self.may_act()):
            event("inbox file taken", file=result.file, outcome=result.outcome, ticket=result.ticket, detail=result.detail)
        if not self.may_act():
            return
        # leadership is checked before each ticket starts; a ticket that moved on under us (a CLI user acted
        # first) is skipped and never holds up the others
        for outcome in provision.apply(self.ctx, stop=lambda: not self.may_act(), skip_moved=True):
            if outcome.state == "skipped":
                event("ticket skipped", ticket=outcome.ticket, reason=outcome.detail)
            else:
                event("ticket applied", ticket=outcome.ticket, state=outcome.state, detail=outcome.detail)
        if self.may_act():
            report = leases.check(self.ctx, warn_days=self.settings.lease_warning_days, actor=self.identity.id, stop=lambda: not self.may_act())
            for ticket_id in report.warned:
                event("lease ends soon", ticket=ticket_id)
            for outcome in report.retired:
                event("lease expired: retired", ticket=outcome.ticket, state=outcome.state, detail=outcome.detail)
            for error in report.errors:
                event("lease retirement failed", logging.ERROR, error=error)

    def reconcile_pass(self) -> None:
        failed: dict[str, list[str]] = {}
        for result in self.reconciler.run():
            if result.error:
                failed.setdefault(result.error, []).append(result.cloud)  # one endpoint's failure hits all its clouds
            elif result.findings or result.corrected:
                event("reconciled", cloud=result.cloud, servers=result.servers, findings=len(result.findings),
                      corrected=list(result.corrected))
        for error, clouds in failed.items():
            event("reconcile failed for some clouds", logging.WARNING, error=error, clouds=clouds)

    def history_pass(self) -> None:
        """A full sample of the usage history (the quota files are re-read: an edit counts from here)."""
        run = history.sample(self.ctx, actor=self.identity.id)
        if run.written:
            event("usage history sampled", groups=run.groups, written=run.written)

    def _health_loop(self) -> None:
        while not self.stopping.is_set():
            if self.leader:
                try:
                    for row in self.watch.check():
                        if row.state != "healthy":
                            event("centre not healthy", logging.WARNING, cloud=row.cloud, centre=row.centre, state=row.state,
                                  since=row.since, up=row.services_up, total=row.services_total)
                        if row.state == "down":
                            self.failover_due.set()
                    if self.recovery.journal.stale_runs() or self.dr.due():  # a run whose process died; a DR activation waiting
                        self.failover_due.set()
                except Exception as exc:  # noqa: BLE001 - a failed probe round is retried on the next interval
                    event("health check failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            self.stopping.wait(self.settings.health_interval)

    def _failover_loop(self) -> None:
        """Its own thread: an evacuation of many VMs takes minutes and must neither wait behind a long
        apply nor hold up the health probes."""
        while not self.stopping.is_set():
            self.failover_due.wait()
            self.failover_due.clear()
            if self.leader and not self.stopping.is_set():
                self._guarded("failover", self.failover_pass)

    def _replicate_loop(self) -> None:
        """Its own thread: a pass snapshots and copies one VM after another and must not hold up applies."""
        while not self.stopping.is_set():
            if self.leader:
                self._guarded("replicate", self.replicate_pass)
            self.stopping.wait(self.ctx.settings.dr.interval)

    def replicate_pass(self) -> None:
        """The ``dr`` VMs due for replication (newest replica older than the RPO), replicated and pruned;
        the leader only, and it stops between VMs when leadership is lost or a stop is asked for."""
        if not self.may_act():
            return
        for result in self.replicator.run(stop=lambda: not self.may_act()):
            made = result.replica
            if made is not None or result.pruned or result.errors:
                event("dr replica" if result.ok else "dr replication failed", logging.INFO if result.ok else logging.ERROR,
                      vm=result.vm.name, replica=made.id if made else None, state=made.state if made else "not due",
                      dr_image=made.dr_image if made else None, size=made.size if made else None, pruned=result.pruned,
                      errors=result.errors)

    def failover_pass(self) -> None:
        """Resume abandoned runs; each centre recorded down: audit once per episode, or evacuate (failover/policy.py);
        a cloud whose serving centres are all down: DR activation under its plan's emergency rule (failover/emergency.py)."""
        for item in self.failover.tick():
            event(item.message, item.level, **item.fields)
        if self.may_act():
            for item in self.dr.tick():
                event(item.message, item.level, **item.fields)

    # -- what /healthz and /readyz report ---------------------------------------------------
    def healthz(self) -> tuple[bool, dict[str, Any]]:
        """Alive: the main loop ticked recently (a wedged loop fails this; a long apply does not —
        it ticks between tickets)."""
        age = self.monotonic() - self.last_tick
        limit = max(self.settings.apply_interval, self.settings.leader_poll) * 3 + self.settings.stop_timeout
        return age < limit, {"daemon": self.id, "last_tick_s": round(age, 1), "leader": self.leader}

    def readyz(self) -> tuple[bool, dict[str, Any]]:
        """Ready: the store answers. A standby is ready too (it serves metrics and waits to lead)."""
        try:
            self.ctx.store.ping()
        except GovcloudError as exc:
            return False, {"daemon": self.id, "store": str(exc)}
        return not self.stopping.is_set(), {"daemon": self.id, "role": "leader" if self.leader else "standby"}
