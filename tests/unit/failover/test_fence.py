"""Fencing a centre (govcloud/failover/fence.py) on the fake cloud and a scripted fence agent: nova's
services are forced down only after every host is confirmed off; one host that cannot be fenced leaves
the centre unfenced and nothing forced down; unfencing waits for the heartbeat before clearing the flag."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from govcloud.drivers.base import ComputeService
from govcloud.errors import InputError, PermanentError, PermissionDenied, TemporaryError
from govcloud.failover.fence import FenceTarget, fence_centre, fence_state, unfence_centre
from govcloud.model.fencing import Bmc, CentreFence
from govcloud.model.users import User
from govcloud.settings import FencingSettings
from tests.support.fakecloud import GZ, FakeCloud, FakeDriver, services

SETTINGS = FencingSettings(timeout=10.0, poll=1.0, parallel=4)
IPMI = CentreFence(method="ipmi", user="govcloud", hosts={"gz-backup-1": Bmc("127.0.0.1", 1623), "gz-backup-2": Bmc("127.0.0.1", 1624)})
OPERATOR = User(id="yunwei-he", name="运维", role="operator")
APPROVER = User(id="shenpi", name="审批", role="approver")
TARGET = FenceTarget("gd-prov", "gz-backup", GZ, ("gz-backup",), IPMI)


@dataclass
class Clock:
    """Fake time: ``sleep`` advances it, so deadlines pass without waiting."""

    now: float = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@dataclass
class Agent:
    """A scripted FenceAgent over the fake cloud: powering a host off takes ``lag`` state reads to show;
    ``broken`` hosts answer every call with a TemporaryError (an unreachable BMC)."""

    cloud: FakeCloud
    events: list[tuple[str, str]]
    lag: dict[str, int] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    method: str = "ipmi"
    power: dict[str, str] = field(default_factory=dict)
    reads: dict[str, int] = field(default_factory=dict)

    def _check(self, host: str) -> None:
        if host in self.broken:
            raise TemporaryError(f"ipmi {host}: Unable to establish IPMI v2 / RMCP+ session", delay=0)

    def power_off(self, host: str) -> None:
        self._check(host)
        self.events.append(("off", host))
        self.power[host] = "off"
        self.reads[host] = 0
        self.cloud.powered_off.add(host)

    def power_on(self, host: str) -> None:
        self._check(host)
        self.events.append(("on", host))
        self.power[host] = "on"
        self.cloud.powered_off.discard(host)
        listing = self.cloud.services[GZ]  # the compute starts and sends a heartbeat
        for i, s in enumerate(listing):
            if s.host == host:
                listing[i] = replace(s, updated_at="later", state="down" if s.forced_down else "up")

    def power_state(self, host: str) -> str:
        self._check(host)
        self.reads[host] = self.reads.get(host, 0) + 1
        state = self.power.get(host, "on")
        if state == "off" and self.reads[host] <= self.lag.get(host, 0):
            return "on"  # the BMC still reports the old state for a while
        if state == "off" and ("confirmed", host) not in self.events:
            self.events.append(("confirmed", host))
        return state


class Recording(FakeDriver):
    def __init__(self, cloud: FakeCloud, events: list[tuple[str, str]]) -> None:
        super().__init__(cloud, GZ)
        self.events = events

    def force_down(self, host: str, *, forced: bool) -> ComputeService:
        result = super().force_down(host, forced=forced)
        self.events.append(("forced" if forced else "cleared", host))
        return result


def world() -> tuple[FakeCloud, list[tuple[str, str]], Recording, Clock]:
    cloud = FakeCloud()
    cloud.services[GZ] = services("gz-main", "up", "up") + services("gz-backup", "down", "down")
    events: list[tuple[str, str]] = []
    return cloud, events, Recording(cloud, events), Clock()


def test_services_are_forced_down_only_after_every_host_is_confirmed_off() -> None:
    cloud, events, driver, clock = world()
    agent = Agent(cloud, events, lag={"gz-backup-2": 3})
    report = fence_centre(TARGET, compute=driver, agent=agent, settings=SETTINGS, sleep=clock.sleep, monotonic=clock.monotonic)
    assert report.fenced and report.ready, report
    confirmed = [i for i, e in enumerate(events) if e[0] == "confirmed"]
    forced = [i for i, e in enumerate(events) if e[0] == "forced"]
    assert len(confirmed) == 2 and len(forced) == 2
    assert max(confirmed) < min(forced), events  # the slow host was confirmed before any service was forced down
    assert cloud.force_calls == [("gz-backup-1", True), ("gz-backup-2", True)]
    assert {s.host: s.forced_down for s in cloud.services[GZ]} == {"gz-main-1": False, "gz-main-2": False,
                                                                   "gz-backup-1": True, "gz-backup-2": True}


def test_one_host_whose_bmc_fails_leaves_the_centre_unfenced_and_nothing_forced_down() -> None:
    cloud, events, driver, clock = world()
    agent = Agent(cloud, events, broken={"gz-backup-2"})
    report = fence_centre(TARGET, compute=driver, agent=agent, settings=SETTINGS, sleep=clock.sleep, monotonic=clock.monotonic)
    assert not report.fenced and not report.ready
    by_host = {h.host: h for h in report.hosts}
    assert by_host["gz-backup-1"].fenced and not by_host["gz-backup-1"].error
    assert not by_host["gz-backup-2"].fenced and "RMCP+" in by_host["gz-backup-2"].error
    assert cloud.force_calls == [] and not any(e[0] == "forced" for e in events)
    assert clock.now >= SETTINGS.timeout  # it kept trying until the deadline


def test_a_host_that_never_reports_off_is_not_fenced() -> None:
    cloud, events, driver, clock = world()
    agent = Agent(cloud, events, lag={"gz-backup-1": 10_000})
    report = fence_centre(TARGET, compute=driver, agent=agent, settings=SETTINGS, sleep=clock.sleep, monotonic=clock.monotonic)
    assert not report.fenced and cloud.force_calls == []
    assert "not confirmed off" in {h.host: h for h in report.hosts}["gz-backup-1"].error


def test_a_nova_host_without_a_bmc_is_not_fenced_and_blocks_the_centre() -> None:
    cloud, events, driver, clock = world()
    one_bmc = replace(TARGET, fence=replace(IPMI, hosts={"gz-backup-1": Bmc("127.0.0.1")}))
    report = fence_centre(one_bmc, compute=driver, agent=Agent(cloud, events), settings=SETTINGS, sleep=clock.sleep,
                          monotonic=clock.monotonic)
    assert not report.fenced and cloud.force_calls == []
    assert "no BMC configured" in {h.host: h for h in report.hosts}["gz-backup-2"].error
    assert ("off", "gz-backup-2") not in events


def test_nova_unreachable_powers_off_but_forces_nothing() -> None:
    cloud, events, driver, clock = world()
    cloud.api_down.add(GZ)
    report = fence_centre(TARGET, compute=driver, agent=Agent(cloud, events), settings=SETTINGS, sleep=clock.sleep,
                          monotonic=clock.monotonic)
    assert ("off", "gz-backup-1") in events and ("off", "gz-backup-2") in events  # the BMCs come from the fencing file
    assert not report.ready and "cannot list" in report.error and cloud.force_calls == []


def test_method_none_fences_nothing() -> None:
    cloud, events, driver, clock = world()
    target = replace(TARGET, fence=CentreFence())
    report = fence_centre(target, compute=driver, agent=None, settings=SETTINGS, sleep=clock.sleep, monotonic=clock.monotonic)
    assert report.method == "none" and not report.fenced and not report.ready
    assert [h.host for h in report.hosts] == ["gz-backup-1", "gz-backup-2"]
    assert events == [] and cloud.force_calls == []


def test_a_failed_force_down_is_reported_and_the_centre_is_not_ready() -> None:
    cloud, events, driver, clock = world()
    cloud.faults["force_down"] = [PermanentError("force down gz-backup-1: HTTP 403: policy")]
    report = fence_centre(TARGET, compute=driver, agent=Agent(cloud, events), settings=SETTINGS, sleep=clock.sleep,
                          monotonic=clock.monotonic)
    assert report.fenced and not report.ready
    assert "HTTP 403" in {h.host: h for h in report.hosts}["gz-backup-1"].error


def test_unfence_powers_on_waits_for_the_heartbeat_then_clears_forced_down() -> None:
    cloud, events, driver, clock = world()
    agent = Agent(cloud, events)
    assert fence_centre(TARGET, compute=driver, agent=agent, settings=SETTINGS, sleep=clock.sleep, monotonic=clock.monotonic).ready
    cloud.faults["force_down"] = [TemporaryError("HTTP 409: migrations still being cleaned up", delay=0)]  # nova refuses once
    report = unfence_centre(TARGET, compute=driver, agent=agent, settings=SETTINGS, sleep=clock.sleep, monotonic=clock.monotonic)
    assert report.restored, report
    for host in ("gz-backup-1", "gz-backup-2"):
        assert events.index(("on", host)) < events.index(("cleared", host))
    assert all(not s.forced_down and s.state == "up" for s in cloud.services[GZ])


def test_unfence_does_not_clear_forced_down_without_a_heartbeat() -> None:
    cloud, events, driver, clock = world()
    agent = Agent(cloud, events)
    fence_centre(TARGET, compute=driver, agent=agent, settings=SETTINGS, sleep=clock.sleep, monotonic=clock.monotonic)
    agent.power_on = lambda host: events.append(("on", host))  # type: ignore[method-assign]  # powered on, compute never reports
    agent.power = {h: "on" for h in IPMI.hosts}
    report = unfence_centre(TARGET, compute=driver, agent=agent, settings=SETTINGS, sleep=clock.sleep, monotonic=clock.monotonic)
    assert not report.restored
    assert all(h.forced_down and "heartbeat not yet" in h.error for h in report.hosts)
    assert ("cleared", "gz-backup-1") not in events


@pytest.mark.parametrize(("flags", "method", "state", "now"), [
    ((False, False), "ipmi", "armed", False),
    ((True, False), "ipmi", "partial", False),
    ((True, True), "ipmi", "fenced", True),
    ((True, True), "none", "none", False),
])
def test_fence_state_reads_nova_flags(flags: tuple[bool, bool], method: str, state: str, now: bool) -> None:
    listing = [replace(s, forced_down=f) for s, f in zip(services("gz-backup", "down", "down"), flags, strict=True)]
    view = fence_state(replace(TARGET, fence=replace(IPMI, method=method)), listing + services("gz-main", "up"))  # type: ignore[arg-type]
    assert (view.state, view.evacuate_now) == (state, now)
    assert view.hosts == ("gz-backup-1", "gz-backup-2")


def test_the_fencer_binds_the_collaborators_and_lists_every_centre_once_per_endpoint() -> None:
    from govcloud.failover.fence import Fencer
    from govcloud.model.endpoints import load_overlay, resolve
    from govcloud.model.fencing import Fencing, load_fencing
    from govcloud.model.state import load_state
    from govcloud.settings import DataPaths
    from tests.unit.test_cli_data import REPO

    topology = load_state(DataPaths(root=REPO), []).topology
    endpoints = resolve(topology, load_overlay(REPO / "inventory" / "devcloud.yaml"))
    cloud, events, _, clock = world()
    calls: list[object] = []

    def driver(endpoint):  # type: ignore[no-untyped-def]
        calls.append(endpoint)
        return Recording(cloud, events) if endpoint == GZ else cloud.driver(endpoint)

    fencing = Fencing(centres={("gd-prov", "gz-backup"): IPMI})
    bmcs = Agent(cloud, events)  # the BMCs keep their power between calls
    with pytest.raises(PermissionDenied):
        Fencer(topology=topology, endpoints=endpoints, fencing=fencing, driver=driver, settings=SETTINGS, actor=APPROVER)
    fencer = Fencer(topology=topology, endpoints=endpoints, fencing=fencing, driver=driver, settings=SETTINGS, actor=OPERATOR,
                    agent=lambda fence, settings: bmcs if fence.method == "ipmi" else None,
                    sleep=clock.sleep, monotonic=clock.monotonic)
    assert fencer.method("gd-prov", "gz-backup") == "ipmi" and fencer.method("gd-prov", "gz-main") == "none"
    assert fencer.fence("gd-prov", "gz-backup").ready
    states = {(s.cloud, s.centre): s for s in fencer.states() if not isinstance(s, tuple)}
    assert states[("gd-prov", "gz-backup")].state == "fenced" and states[("gd-prov", "gz-main")].state == "none"
    assert len(calls) == 1 + 2  # fence: one driver; states: one per endpoint (gd-gz, gd-sg), not one per centre
    assert fencer.unfence("gd-prov", "gz-backup").restored
    with pytest.raises(InputError):
        fencer.fence("gd-prov", "nowhere")
    assert fencer.target(None, "gz-backup").cloud == "gd-prov"
    assert load_fencing(REPO / "inventory" / "fencing.yaml", topology).of("gd-prov", "sg-dr").method == "devcloud"
