"""Watching the centres: one compute-service listing per endpoint, a verdict per centre, recorded.

The daemon calls :meth:`CentreWatch.check` on its health interval. Each endpoint (clouds.yaml entry
+ region) is asked once, in its own thread, with a deadline (``common/deadline.py``, as reconcile's
listings): a region whose API hangs makes its centres ``down`` (after the policy's confirmations)
without delaying the verdict on the others, and is not asked again until it answers. Each
centre's services are those in its availability zones. The recorded state, its ``since`` and any
pending transition live in the store (``centre_health``), so a standby daemon that takes over goes
on from the same facts; every change of state is appended to the audit chain.

Failover (``recover.py``) acts on these facts; this module only establishes them.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass

from govcloud.common.deadline import InFlight
from govcloud.drivers.base import ComputeDriver, ComputeService, Endpoint
from govcloud.drivers.server_watch import nova_time
from govcloud.errors import DriverError
from govcloud.failover.health import Health, HealthPolicy, Probe, ServiceState, probe_of, step
from govcloud.model.endpoints import Endpoints
from govcloud.model.topology import Topology
from govcloud.store import Store, facts


@dataclass(frozen=True)
class CentreRef:
    """A centre and where nova reports it: endpoint and availability zones."""

    cloud: str
    centre: str
    endpoint: Endpoint
    zones: tuple[str, ...]


def centre_refs(topology: Topology, endpoints: Endpoints) -> list[CentreRef]:
    """Every (cloud, centre) of the topology with the zones that realise it (a profile's zone wins)."""
    refs = []
    for cloud in topology.clouds:
        if cloud.driver != "openstack":
            continue  # Terraform-driven clouds report no nova services
        for centre in cloud.centres:
            target = endpoints.of(cloud.id, centre.id)
            zones = (target.zone,) if target.zone else tuple(centre.availability_zones)
            refs.append(CentreRef(cloud.id, centre.id, Endpoint(cloud=target.entry, region=target.region), zones))
    return refs


def reported_up(service: ComputeService) -> bool:
    """nova's verdict on one compute service: heartbeats arriving, and not forced down by an operator."""
    return service.state == "up" and not service.forced_down


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="microseconds")


def _seconds(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()


def _to_health(row: facts.CentreHealth) -> Health:
    pending = row.detail.get("pending") or {}
    return Health(state=row.state, since=_seconds(row.since), pending=pending.get("state"),
                  pending_since=_seconds(pending["since"]) if pending.get("since") else 0.0,
                  pending_checks=int(pending.get("checks", 0)))


class CentreWatch:
    """Probes every endpoint once per check and records each centre's health."""

    def __init__(self, *, store: Store, topology: Topology, endpoints: Endpoints, driver: Callable[[Endpoint], ComputeDriver],
                 clock: Callable[[], float], policy: HealthPolicy | None = None, timeout: float = 20.0, actor: str = "system") -> None:
        self.store = store
        self.refs = centre_refs(topology, endpoints)
        self.driver = driver
        self.clock = clock
        self.policy = policy or HealthPolicy()
        self.timeout = timeout
        self.actor = actor
        self._calls: InFlight[Endpoint, list[ComputeService]] = InFlight("health")

    def close(self) -> None:
        self._calls.close()

    def probe_endpoints(self) -> dict[Endpoint, tuple[list[ComputeService] | None, str]]:
        """Services per endpoint, or None and why when the API failed or missed the deadline (a listing
        still hanging from an earlier round is not asked again until it returns)."""
        endpoints = sorted({r.endpoint for r in self.refs}, key=str)
        answers = self._calls.round({e: functools.partial(self._services, e) for e in endpoints}, self.timeout)
        results: dict[Endpoint, tuple[list[ComputeService] | None, str]] = {}
        for endpoint, answer in answers.items():
            if answer.late:
                results[endpoint] = (None, f"compute API of {endpoint.cloud}/{endpoint.region} did not answer within {self.timeout:.0f} s")
            elif isinstance(answer.error, DriverError):
                results[endpoint] = (None, str(answer.error))
            elif answer.error is not None:
                raise answer.error  # a bug, not an outage: the daemon's health loop logs it
            else:
                results[endpoint] = (answer.value or [], "")
        return results

    def _services(self, endpoint: Endpoint) -> list[ComputeService]:
        return self.driver(endpoint).compute_services()

    def check(self) -> list[facts.CentreHealth]:
        """One round: probe, step each centre's state machine, record, audit the changes."""
        listings = self.probe_endpoints()
        now = self.clock()
        with self.store.transaction() as conn:
            previous = {(h.cloud, h.centre): h for h in facts.health(conn)}
        recorded = []
        for ref in self.refs:
            services, error = listings[ref.endpoint]
            probe = probe_of(services is not None, (ServiceState(s.host, reported_up(s), s.status == "enabled", self._silent(s, now))
                                                    for s in services or [] if s.zone in ref.zones), error)
            before = previous.get((ref.cloud, ref.centre))
            health = step(_to_health(before) if before else None, probe, now, self.policy)
            recorded.append(self._record(ref, probe, health, before, now))
        return recorded

    def _silent(self, service: ComputeService, now: float) -> bool:
        """nova says up but the last heartbeat is older than the policy's ``silent_after`` (0: never). nova's
        ``updated_at`` is UTC without a zone; both clocks are NTP's, as nova's own verdict assumes."""
        if self.policy.silent_after <= 0 or not reported_up(service):
            return False
        beat = nova_time(service.updated_at)
        return beat is not None and now - beat.timestamp() > self.policy.silent_after

    def _record(self, ref: CentreRef, probe: Probe, health: Health, before: facts.CentreHealth | None, now: float) -> facts.CentreHealth:
        detail: dict[str, object] = {"services": {s.host: ("silent" if s.silent else "up" if s.up else "down") + ("" if s.enabled else " (disabled)")
                                                  for s in probe.services},
                                     "raw": probe.verdict(), "zones": list(ref.zones), "region": ref.endpoint.region}
        if probe.error:
            detail["error"] = probe.error
        if health.pending:
            detail["pending"] = {"state": health.pending, "since": _iso(health.pending_since), "checks": health.pending_checks}
        row = facts.CentreHealth(ref.cloud, ref.centre, health.state, _iso(health.since), _iso(now), probe.up, len(probe.counted),
                                 probe.api_ok, detail)
        with self.store.transaction() as conn:
            facts.record_health(conn, row)
            if before is None or before.state != health.state:
                self.store.audit.append(self.actor, "centre.health", f"centre:{ref.cloud}/{ref.centre}",
                                        {"from": before.state if before else None, "to": health.state, "raw": probe.verdict(),
                                         "services_up": probe.up, "services_total": len(probe.counted), "error": probe.error},
                                        connection=conn)
        return row
