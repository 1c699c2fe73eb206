"""Fencing a failed centre: power its compute hosts off, confirm it, then tell nova (``forced_down``).

Evacuating a host that still runs its VMs starts second copies on the same volumes; nova's own "down"
only means missed heartbeats. So before its VMs move, a centre's hosts are fenced with the centre's
method (``model/fencing.py``: ``none``, ``ipmi``, ``devcloud``):

1. every compute host of the centre (nova's listing in the centre's zones, plus the BMCs the fencing
   file names) is powered off through its agent and its power state read back until it says ``off``;
2. only once **every** host is confirmed off, each host's nova-compute is marked ``forced_down``
   (os-services, microversion >= 2.11): nova reports it down at once, and evacuation starts without
   waiting for ``service_down_time``. One host that cannot be fenced leaves the whole centre unfenced
   and nothing forced down — a half-fenced centre is not safe to evacuate.

``unfence_centre`` reverses it when the centre is back: power on, wait for each service's heartbeat
(its ``updated_at`` moves; the state stays ``down`` while forced), then clear ``forced_down`` — retried,
as nova refuses it while the restarted compute cleans up its evacuations. ``fence_state`` is the pure
view of nova's listing that ``govcloud failover status`` prints.

The recovery (``failover/recover.py``) and the daemon call these; collaborators come in as arguments
(compute driver, fence agent, clock), and nothing here imports the devcloud: its method is an external
fence agent command (``drivers/fence_command.py``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from govcloud.drivers.base import ComputeDriver, ComputeService, Endpoint, FenceAgent
from govcloud.drivers.fence_command import CommandAgent
from govcloud.drivers.ipmi import BmcAddress, IpmiAgent, read_password
from govcloud.errors import DriverError, InputError, TemporaryError
from govcloud.failover.watch import centre_refs
from govcloud.model.access import require
from govcloud.model.endpoints import Endpoints
from govcloud.model.fencing import CentreFence, Fencing, load_fencing
from govcloud.model.topology import Cloud, Topology
from govcloud.model.users import User
from govcloud.settings import FencingSettings, Settings
from govcloud.store.audit import AuditLog

log = logging.getLogger("govcloud.failover.fence")

DEVCLOUD_AGENT = ("{python}", "-m", "govcloud", "devcloud", "host", "{action}", "{host}")
"""The devcloud's fence agent: the same govcloud, run as a command (failover never imports the devcloud)."""


class FenceRefused(InputError):
    """The named centre is unknown: nothing was fenced (exit 2)."""


@dataclass(frozen=True)
class FenceTarget:
    """One centre to fence: where nova reports it (endpoint, zones) and how it is fenced."""

    cloud: str
    centre: str
    endpoint: Endpoint
    zones: tuple[str, ...]
    fence: CentreFence


def targets(topology: Topology, endpoints: Endpoints, fencing: Fencing) -> list[FenceTarget]:
    """Every OpenStack centre of the topology with its fence method (``none`` where the file says nothing)."""
    return [FenceTarget(r.cloud, r.centre, r.endpoint, r.zones, fencing.of(r.cloud, r.centre)) for r in centre_refs(topology, endpoints)]


def target_of(topology: Topology, endpoints: Endpoints, fencing: Fencing, cloud: str, centre: str) -> FenceTarget:
    for target in targets(topology, endpoints, fencing):
        if (target.cloud, target.centre) == (cloud, centre):
            return target
    raise FenceRefused(f"no OpenStack centre {cloud}/{centre} in the topology")


def make_agent(fence: CentreFence, settings: FencingSettings, *, python: str = sys.executable) -> FenceAgent | None:
    """The agent of a centre's method (None for ``none``). Reads the BMC password for ``ipmi`` (IpmiCredentialError)."""
    if fence.method == "ipmi":
        password = read_password(settings.ipmi_password_file, settings.ipmi_password)
        bmcs = {host: BmcAddress(b.bmc, b.port) for host, b in fence.hosts.items()}
        return IpmiAgent(bmcs, user=fence.user or "", password=password, cipher_suite=fence.cipher_suite, timeout=settings.command_timeout)
    if fence.method == "devcloud":
        return CommandAgent([part.replace("{python}", python) for part in DEVCLOUD_AGENT], method="devcloud",
                            timeout=settings.command_timeout)
    return None


@dataclass(frozen=True)
class HostFence:
    """One host after a fence (or unfence): powered off and confirmed? nova's flag set? what went wrong."""

    host: str
    fenced: bool
    forced_down: bool
    in_nova: bool = True
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "fenced": self.fenced, "forced_down": self.forced_down, "in_nova": self.in_nova, "error": self.error}


@dataclass(frozen=True)
class FenceReport:
    """The outcome for one centre. ``fenced``: every host confirmed off; ``ready``: and every nova-compute
    forced down, so evacuation may start now."""

    cloud: str
    centre: str
    method: str
    action: str
    hosts: tuple[HostFence, ...] = ()
    error: str = ""

    @property
    def fenced(self) -> bool:
        return self.method != "none" and bool(self.hosts) and all(h.fenced for h in self.hosts)

    @property
    def ready(self) -> bool:
        return self.fenced and not self.error and all(h.forced_down and not h.error for h in self.hosts if h.in_nova)

    @property
    def fenced_hosts(self) -> tuple[str, ...]:
        """The hosts confirmed powered off (what the recovery may count down, ``steps.FenceReport``): in a
        partial fence only these, never the host whose BMC failed."""
        return tuple(h.host for h in self.hosts if h.fenced) if self.method != "none" else ()

    @property
    def restored(self) -> bool:
        """After ``unfence``: every host on again and no forced_down flag left."""
        return not self.error and all(not h.fenced and not h.forced_down and not h.error for h in self.hosts)

    def as_dict(self) -> dict[str, object]:
        return {"cloud": self.cloud, "centre": self.centre, "method": self.method, "action": self.action, "fenced": self.fenced,
                "ready": self.ready, "error": self.error, "hosts": [h.as_dict() for h in self.hosts]}


@dataclass
class _Clock:
    settings: FencingSettings
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic

    def until(self, seconds: float) -> float:
        return self.monotonic() + seconds


def _listing(compute: ComputeDriver, target: FenceTarget) -> tuple[dict[str, ComputeService], str]:
    try:
        services = compute.compute_services()
    except DriverError as exc:
        return {}, f"cannot list the compute services of {target.endpoint.cloud}/{target.endpoint.region}: {exc}"
    return {s.host: s for s in services if s.zone in target.zones}, ""


def fence_centre(target: FenceTarget, *, compute: ComputeDriver, agent: FenceAgent | None, settings: FencingSettings,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic) -> FenceReport:
    """Power off and confirm every host of the centre; then, only if all are off, force their services down."""
    clock = _Clock(settings, sleep, monotonic)
    fence = target.fence
    services, error = _listing(compute, target)
    hosts = sorted(set(services) | set(fence.hosts))
    if agent is None or fence.method == "none":
        return FenceReport(target.cloud, target.centre, "none", "fence",
                           tuple(HostFence(h, False, services[h].forced_down if h in services else False, h in services) for h in hosts),
                           error="method none: nothing is fenced; evacuation waits for nova's own verdict")
    if not hosts:
        return FenceReport(target.cloud, target.centre, fence.method, "fence", (), error=error or "no compute host to fence")
    with ThreadPoolExecutor(max_workers=max(1, settings.parallel), thread_name_prefix="fence") as pool:
        outcomes = list(pool.map(lambda h: _power(agent, h, "off", clock, known=(fence.method != "ipmi" or h in fence.hosts)), hosts))
    off = {h: not problem for h, problem in zip(hosts, outcomes, strict=True)}
    if not all(off.values()) or error:
        # one host not confirmed off (or nova not reachable): nothing is forced down
        why = error or "not every host is confirmed off: nothing forced down"
        log.warning("fencing %s/%s incomplete: %s", target.cloud, target.centre, why)
        return FenceReport(target.cloud, target.centre, fence.method, "fence",
                           tuple(HostFence(h, off[h], False, h in services, p) for h, p in zip(hosts, outcomes, strict=True)), error=why)
    results = []
    for host in hosts:
        if host not in services:
            results.append(HostFence(host, True, False, in_nova=False))
            continue
        try:
            after = compute.force_down(host, forced=True)
            results.append(HostFence(host, True, after.forced_down, error="" if after.forced_down else "nova did not keep forced_down"))
        except DriverError as exc:
            results.append(HostFence(host, True, False, error=f"force down: {exc}"))
    report = FenceReport(target.cloud, target.centre, fence.method, "fence", tuple(results))
    log.info("fenced %s/%s (%s): %d hosts off, ready=%s", target.cloud, target.centre, fence.method, len(hosts), report.ready)
    return report


def _power(agent: FenceAgent, host: str, want: str, clock: _Clock, *, known: bool = True) -> str:
    """Send the power command (retried on temporary errors) and read the state back until it is ``want``;
    '' when confirmed, else why not (the last error or state seen at the deadline)."""
    if not known:
        return "no BMC configured for this host (fencing file)"
    deadline = clock.until(clock.settings.timeout)
    last, sent = "", False
    while True:
        try:
            if not sent:
                if agent.power_state(host) != want:
                    (agent.power_off if want == "off" else agent.power_on)(host)
                sent = True
            state = agent.power_state(host)
            if state == want:
                log.info("host %s is %s (%s)", host, want, agent.method)
                return ""
            last = f"still {state}"
        except TemporaryError as exc:
            last = str(exc)
        except DriverError as exc:
            return str(exc)
        if clock.monotonic() >= deadline:
            return f"not confirmed {want} within {clock.settings.timeout:g} s ({last})"
        clock.sleep(clock.settings.poll)


def unfence_centre(target: FenceTarget, *, compute: ComputeDriver, agent: FenceAgent | None, settings: FencingSettings,
                   sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic) -> FenceReport:
    """Power the centre's hosts on, wait for each service's heartbeat, then clear ``forced_down``."""
    clock = _Clock(settings, sleep, monotonic)
    fence = target.fence
    services, error = _listing(compute, target)
    if error:
        return FenceReport(target.cloud, target.centre, fence.method, "unfence", (), error=error)
    hosts = sorted(set(services) | set(fence.hosts))
    if agent is not None and fence.method != "none":
        with ThreadPoolExecutor(max_workers=max(1, settings.parallel), thread_name_prefix="unfence") as pool:
            problems = list(pool.map(lambda h: _power(agent, h, "on", clock, known=(fence.method != "ipmi" or h in fence.hosts)), hosts))
    else:
        problems = [""] * len(hosts)  # method none: only nova's flags, set by hand, are cleared
    results = []
    for host, problem in zip(hosts, problems, strict=True):
        if problem or host not in services:
            results.append(HostFence(host, bool(problem), services[host].forced_down if host in services else False, host in services, problem))
            continue
        results.append(_clear(compute, target, services[host], clock))
    return FenceReport(target.cloud, target.centre, fence.method, "unfence", tuple(results))


def _clear(compute: ComputeDriver, target: FenceTarget, before: ComputeService, clock: _Clock) -> HostFence:
    """Wait until the service's heartbeat arrives again (``updated_at`` moves, or nova says ``up``), then clear
    ``forced_down`` (retried while nova refuses) and wait until nova reports the service up."""
    deadline = clock.until(clock.settings.timeout)
    host, last = before.host, ""
    beat = not before.forced_down and before.state == "up"
    cleared = not before.forced_down
    while True:
        try:
            now, _ = _listing(compute, target)
            current = now.get(host)
            if current is not None:
                beat = beat or current.updated_at != before.updated_at or (current.state == "up" and not current.forced_down)
                if beat and current.forced_down:
                    cleared = not compute.force_down(host, forced=False).forced_down
                elif beat:
                    cleared = True
                if cleared and current.state == "up" and not current.forced_down:
                    return HostFence(host, False, False)
                last = f"nova: {current.state}, forced_down={current.forced_down}, heartbeat {'seen' if beat else 'not yet'}"
        except DriverError as exc:
            last = str(exc)
        if clock.monotonic() >= deadline:
            return HostFence(host, False, not cleared, error=f"not back in nova within {clock.settings.timeout:g} s ({last})")
        clock.sleep(clock.settings.poll)


@dataclass(frozen=True)
class FenceState:
    """What nova's listing says of a centre's fencing now (pure; ``govcloud failover status``)."""

    cloud: str
    centre: str
    method: str
    hosts: tuple[str, ...]
    forced_down: tuple[str, ...]
    up: tuple[str, ...]
    disabled: tuple[str, ...] = ()
    """Hosts whose nova-compute an operator (or ``failover migrate``) disabled: the scheduler avoids them."""

    @property
    def maintenance(self) -> str:
        """``no``, ``yes`` (every host disabled: a planned migration's maintenance) or ``partial (k/n)``."""
        if not self.disabled:
            return "no"
        return "yes" if len(self.disabled) == len(self.hosts) else f"partial ({len(self.disabled)}/{len(self.hosts)})"

    @property
    def state(self) -> str:
        """``none`` (no method), ``fenced`` (every host forced down), ``partial``, or ``armed`` (method set, nothing fenced)."""
        if self.method == "none":
            return "none"
        if self.hosts and len(self.forced_down) == len(self.hosts):
            return "fenced"
        return "partial" if self.forced_down else "armed"

    @property
    def evacuate_now(self) -> bool:
        """Evacuation may start without waiting for nova's ``service_down_time``."""
        return self.state == "fenced"

    def as_dict(self) -> dict[str, object]:
        return {"cloud": self.cloud, "centre": self.centre, "method": self.method, "state": self.state,
                "evacuate_now": self.evacuate_now, "hosts": list(self.hosts), "forced_down": list(self.forced_down), "up": list(self.up),
                "disabled": list(self.disabled), "maintenance": self.maintenance}


def fence_state(target: FenceTarget, services: Sequence[ComputeService]) -> FenceState:
    """The centre's fencing as nova's service listing shows it."""
    mine = sorted((s for s in services if s.zone in target.zones), key=lambda s: s.host)
    return FenceState(target.cloud, target.centre, target.fence.method, tuple(s.host for s in mine),
                      tuple(s.host for s in mine if s.forced_down), tuple(s.host for s in mine if s.state == "up" and not s.forced_down),
                      tuple(s.host for s in mine if s.status == "disabled"))


class Fencer:
    """Fencing with its collaborators bound, for the recovery, the daemon and the CLI (STYLE habit 7):
    ``fence``/``unfence`` one centre by id, ``states`` of every centre from one listing per endpoint."""

    def __init__(self, *, topology: Topology, endpoints: Endpoints, fencing: Fencing, driver: Callable[[Endpoint], ComputeDriver],
                 settings: FencingSettings, actor: User, agent: Callable[[CentreFence, FencingSettings], FenceAgent | None] = make_agent,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic) -> None:
        require(actor, "failover")  # powering hosts off is failover work: operators and admins (the CLI and the daemon alike)
        self.actor = actor.id
        self.topology = topology
        self.endpoints = endpoints
        self.fencing = fencing
        self.driver = driver
        self.settings = settings
        self.agent = agent
        self.sleep = sleep
        self.monotonic = monotonic

    def target(self, cloud: str | None, centre: str) -> FenceTarget:
        """The centre by id; ``cloud`` may be left out when only one cloud has a centre of that name."""
        if cloud is None:
            holders = [c.id for c in self.topology.clouds if c.driver == "openstack" and c.centre(centre) is not None]
            if len(holders) != 1:
                raise FenceRefused(f"centre {centre} is in {len(holders)} OpenStack clouds of the topology"
                                   + (f" ({', '.join(holders)}): name one with --cloud" if holders else ""))
            cloud = holders[0]
        return target_of(self.topology, self.endpoints, self.fencing, cloud, centre)

    def method(self, cloud: str, centre: str) -> str:
        """The centre's configured method (``none`` when the fencing file does not name it)."""
        return self.fencing.of(cloud, centre).method

    def fence(self, cloud: str | None, centre: str) -> FenceReport:
        target = self.target(cloud, centre)
        return fence_centre(target, compute=self.driver(target.endpoint), agent=self.agent(target.fence, self.settings),
                            settings=self.settings, sleep=self.sleep, monotonic=self.monotonic)

    def unfence(self, cloud: str | None, centre: str) -> FenceReport:
        target = self.target(cloud, centre)
        return unfence_centre(target, compute=self.driver(target.endpoint), agent=self.agent(target.fence, self.settings),
                              settings=self.settings, sleep=self.sleep, monotonic=self.monotonic)

    def states(self) -> list[FenceState | tuple[FenceTarget, str]]:
        """Each centre's ``FenceState``, or (target, why) where its endpoint could not be listed."""
        return fence_states(self.topology, self.endpoints, self.fencing, self.driver)

    def for_recovery(self, record: Callable[[FenceReport], None] = lambda _r: None) -> Callable[[Cloud, str], FenceReport | None]:
        """The recovery's ``fence`` (``steps.Fence``): fences the centre before a run plans, ``record`` (the
        caller's audit) sees each report; None for a centre of method ``none`` — only hosts nova itself
        reports down are evacuated there, as before fencing existed."""
        done: dict[tuple[str, str], FenceReport] = {}

        def fence(cloud: Cloud, centre: str) -> FenceReport | None:
            if self.method(cloud.id, centre) == "none":
                return None
            key = (cloud.id, centre)
            if key in done and self.still_fenced(cloud.id, centre):
                return done[key]  # a daemon pass over a centre fenced before: no second fence, no second record
            report = self.fence(cloud.id, centre)
            record(report)
            if report.ready:
                done[key] = report
            else:
                done.pop(key, None)
            return report
        return fence

    def still_fenced(self, cloud: str, centre: str) -> bool:
        """Whether nova still shows every host of the centre forced down (nobody unfenced it meanwhile)."""
        target = self.target(cloud, centre)
        try:
            services = self.driver(target.endpoint).compute_services()
        except DriverError:
            return False
        return fence_state(target, services).state == "fenced"


def fence_states(topology: Topology, endpoints: Endpoints, fencing: Fencing,
                 driver: Callable[[Endpoint], ComputeDriver]) -> list[FenceState | tuple[FenceTarget, str]]:
    """Each centre's ``FenceState`` from one listing per endpoint, or (target, why) where it could not be listed.
    A read: no role needed (``govcloud failover status`` shows it to all)."""
    found: list[FenceState | tuple[FenceTarget, str]] = []
    listings: dict[Endpoint, list[ComputeService] | str] = {}
    for target in targets(topology, endpoints, fencing):
        if target.endpoint not in listings:
            try:
                listings[target.endpoint] = driver(target.endpoint).compute_services()
            except DriverError as exc:
                listings[target.endpoint] = str(exc)
        listing = listings[target.endpoint]
        found.append((target, listing) if isinstance(listing, str) else fence_state(target, listing))
    return found


def recovery_fence(*, settings: Settings, topology: Topology, endpoints: Endpoints, driver: Callable[[Endpoint], ComputeDriver],
                   audit: AuditLog, actor: User) -> Callable[[Cloud, str], FenceReport | None] | None:
    """The ``fence`` that ``failover run`` and the daemon give their Recovery: a Fencer over the fencing file
    (``GOVCLOUD_FENCING``), each fence audited as ``centre.fence`` like ``govcloud failover fence``'s. None
    when no centre has a method (nothing to fence: nova's own verdict, as before)."""
    fencing = load_fencing(settings.data.resolve(settings.data.fencing), topology)
    if all(t.fence.method == "none" for t in targets(topology, endpoints, fencing)):
        return None
    fencer = Fencer(topology=topology, endpoints=endpoints, fencing=fencing, driver=driver, settings=settings.fencing, actor=actor)

    def record(report: FenceReport) -> None:
        audit.append(actor.id, "centre.fence", f"centre:{report.cloud}/{report.centre}", report.as_dict())
    return fencer.for_recovery(record)
