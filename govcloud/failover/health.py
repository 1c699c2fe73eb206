"""Centre health as a state machine: what nova says now, smoothed so that a centre does not flap.

Pure: the watcher (``failover/watch.py``) passes in what one probe saw and the clock's reading; this
module decides the recorded state. The raw verdict is nova's own (a compute service is ``down``
once nova has missed its heartbeats for ``service_down_time``), unless the policy's ``silent_after``
is set: then a service whose last heartbeat is older than that counts down too — the early warning
a fence method acts on (the daemon fences, nova's services are forced down, evacuation starts before
``service_down_time``); nothing is evacuated on silence alone. On top of that:

* a worse state is recorded after ``worsen_checks`` consecutive probes agree (one lost probe or one
  service blip is not an outage);
* a better state is recorded only after it has held for ``recover_after`` seconds (hysteresis: a
  centre coming back must stay back before failover logic trusts it again).

States: ``healthy`` (API answers, every enabled compute service up), ``degraded`` (API answers,
some but not all up), ``down`` (none up, or the API does not answer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

RANK = {"healthy": 0, "degraded": 1, "down": 2}


@dataclass(frozen=True)
class HealthPolicy:
    worsen_checks: int = 2
    """Consecutive probes that must agree before a worse state is recorded."""
    recover_after: float = 30.0
    """Seconds a better state must hold before it is recorded."""
    silent_after: float = 0.0
    """Seconds since a compute service's last heartbeat (nova's ``updated_at``) after which the watch counts it
    down although nova still says ``up`` (nova waits ``service_down_time``). 0: nova's verdict only. Only a
    fence acts on it early: evacuation still needs each host down in nova or fenced (``recover.py``)."""


@dataclass(frozen=True)
class ServiceState:
    """One nova-compute service of the centre (already filtered to its zones)."""

    host: str
    up: bool
    enabled: bool = True
    silent: bool = False
    """nova still says up, but no heartbeat for the policy's ``silent_after``: counted down."""

    @property
    def alive(self) -> bool:
        return self.up and not self.silent


@dataclass(frozen=True)
class Probe:
    """What one look at a centre saw. ``api_ok`` False: the compute API did not answer (``error`` says why)."""

    api_ok: bool
    services: tuple[ServiceState, ...] = ()
    error: str = ""

    @property
    def counted(self) -> tuple[ServiceState, ...]:
        """Services that count: an operator-disabled service is in maintenance, not failed."""
        return tuple(s for s in self.services if s.enabled)

    @property
    def up(self) -> int:
        return sum(1 for s in self.counted if s.alive)

    def verdict(self) -> str:
        """The raw state of this probe alone."""
        counted = self.counted
        if not self.api_ok or not counted or self.up == 0:
            return "down"
        return "healthy" if self.up == len(counted) else "degraded"


@dataclass(frozen=True)
class Health:
    """The recorded state and the transition that may be under way (times in seconds since the epoch)."""

    state: str
    since: float
    pending: str | None = None
    pending_since: float = 0.0
    pending_checks: int = 0


DEFAULT_POLICY = HealthPolicy()


def step(previous: Health | None, probe: Probe, now: float, policy: HealthPolicy = DEFAULT_POLICY) -> Health:
    """The recorded health after one more probe."""
    raw = probe.verdict()
    if previous is None:
        return Health(state=raw, since=now)
    if raw == previous.state:
        return Health(state=previous.state, since=previous.since)
    if raw == previous.pending:
        pending = replace(previous, pending_checks=previous.pending_checks + 1)
    else:
        pending = Health(previous.state, previous.since, pending=raw, pending_since=now, pending_checks=1)
    if _due(pending, raw, now, policy):
        return Health(state=raw, since=now)
    return pending


def _due(health: Health, raw: str, now: float, policy: HealthPolicy) -> bool:
    if RANK[raw] > RANK[health.state]:
        return health.pending_checks >= policy.worsen_checks
    return now - health.pending_since >= policy.recover_after


def probe_of(api_ok: bool, services: Iterable[ServiceState], error: str = "") -> Probe:
    return Probe(api_ok=api_ok, services=tuple(sorted(services, key=lambda s: s.host)), error=error)
