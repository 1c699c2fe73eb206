"""``status``, ``fail-centre``, ``restore-centre`` and ``host``: the devcloud seen as centres with hosts.

``fail-centre`` SIGKILLs every nova-compute of a centre (a power loss gives no graceful shutdown);
``restore-centre`` starts them again — possible because the fake driver keeps a fixed node id per
host. ``host off|on|status HOST`` does the same to one host: it is the devcloud's fence agent, run by
``failover/fence.py`` (method ``devcloud``) and by the ipmi_sim BMCs of the tests. Nova's view
(``up``/``down``) comes from ``data/scripts/status.py`` run in the services' venv.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass

from govcloud.devcloud import procs
from govcloud.devcloud.errors import DevcloudError, NotRunning
from govcloud.devcloud.layout import Layout
from govcloud.devcloud.lifecycle import running, stored_profile, venv_script
from govcloud.devcloud.profile import Centre, Profile, Region
from govcloud.devcloud.services import Service, all_services, compute_services


@dataclass(frozen=True)
class ServiceRow:
    """One line of ``status``: a process, or a compute host with its centre and nova's opinion."""

    name: str
    kind: str
    region: str
    centre: str
    pid: int | None
    nova_state: str = ""
    """``up``/``down`` as nova-api reports the compute service; '' when not a compute or not asked."""

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "region": self.region, "centre": self.centre,
                "pid": self.pid, "running": self.pid is not None, "nova_state": self.nova_state}


def _profile(layout: Layout) -> Profile:
    profile = stored_profile(layout)
    if profile is None:
        raise NotRunning(f"devcloud in {layout.root} was never started: run `govcloud devcloud up`")
    return profile


def nova_states(profile: Profile, layout: Layout, timeout: float = 60) -> dict[str, str]:
    """Compute host → nova's ``up``/``down`` across all regions."""
    out = venv_script(layout, "status.py", ["devcloud-admin", ",".join(r.id for r in profile.regions)], timeout=timeout)
    return {row["host"]: row["state"] for row in json.loads(out)}


def status(layout: Layout, *, ask_nova: bool = True) -> list[ServiceRow]:
    """Every service with its pid (None = not running) and, for computes, nova's state."""
    profile = _profile(layout)
    live = running(layout)
    states: dict[str, str] = {}
    if ask_nova and "keystone" in live and any(n.startswith("nova-api") for n in live):
        try:
            states = nova_states(profile, layout)
        except DevcloudError:
            states = {}
    rows = [ServiceRow("postgres", "infra", "", "", live.get("postgres"))]
    for service in all_services(profile, layout):
        host = service.name.removeprefix("nova-compute-") if service.kind == "compute" else ""
        rows.append(ServiceRow(service.name, service.kind, service.region, service.centre, live.get(service.name), states.get(host, "")))
    return rows


def find_centre(profile: Profile, centre_id: str) -> tuple[Region, Centre]:
    """The centre with that id, or an input error listing the valid ids."""
    try:
        return profile.centres[centre_id]
    except KeyError:
        raise NotRunning(f"unknown centre {centre_id!r}: expected one of {', '.join(profile.centres)}") from None


def _centre_computes(profile: Profile, layout: Layout, centre_id: str) -> list[Service]:
    find_centre(profile, centre_id)
    return [s for s in compute_services(profile, layout) if s.centre == centre_id]


def fail_centre(layout: Layout, centre_id: str) -> list[str]:
    """SIGKILL every nova-compute of the centre (process group); returns the hosts that were running."""
    profile = _profile(layout)
    killed = []
    for service in _centre_computes(profile, layout, centre_id):
        if procs.stop(layout.pidfile(service.name), grace=0, sig=signal.SIGKILL):
            killed.append(service.name.removeprefix("nova-compute-"))
    return killed


def restore_centre(layout: Layout, centre_id: str, *, wait: float = 90) -> list[str]:
    """Start the centre's computes again and wait (``wait`` s, 0 = don't) until nova reports them up."""
    profile = _profile(layout)
    if "keystone" not in running(layout):
        raise NotRunning("devcloud is not up: run `govcloud devcloud up`")
    started = []
    for service in _centre_computes(profile, layout, centre_id):
        if procs.running_pid(layout.pidfile(service.name)) is None:
            procs.start(service.argv, pidfile=layout.pidfile(service.name), log=layout.out_log(service.name), env=service.env)
            started.append(service.name.removeprefix("nova-compute-"))
    hosts = [s.name.removeprefix("nova-compute-") for s in _centre_computes(profile, layout, centre_id)]
    if wait > 0:
        wait_nova_state(profile, layout, hosts, "up", timeout=wait)
    return started


def _host_service(profile: Profile, layout: Layout, host: str) -> Service:
    for service in compute_services(profile, layout):
        if service.name == f"nova-compute-{host}":
            return service
    hosts = [s.name.removeprefix("nova-compute-") for s in compute_services(profile, layout)]
    raise NotRunning(f"unknown compute host {host!r}: expected one of {', '.join(hosts)}")


def host_power(layout: Layout, host: str) -> str:
    """``on`` while the host's nova-compute runs, else ``off``: the devcloud's idea of a host's power."""
    service = _host_service(_profile(layout), layout, host)
    return "on" if procs.running_pid(layout.pidfile(service.name)) is not None else "off"


def set_host_power(layout: Layout, host: str, on: bool) -> bool:
    """Power one host off (SIGKILL its nova-compute, as a BMC's power-off gives no shutdown) or on (start it
    again, not waiting for nova). The fence agent of the devcloud (``govcloud devcloud host``). True when
    something changed."""
    profile = _profile(layout)
    service = _host_service(profile, layout, host)
    if not on:
        return procs.stop(layout.pidfile(service.name), grace=0, sig=signal.SIGKILL)
    if "keystone" not in running(layout):
        raise NotRunning("devcloud is not up: run `govcloud devcloud up`")
    if procs.running_pid(layout.pidfile(service.name)) is not None:
        return False
    procs.start(service.argv, pidfile=layout.pidfile(service.name), log=layout.out_log(service.name), env=service.env)
    return True


def wait_nova_state(profile: Profile, layout: Layout, hosts: list[str], state: str, *, timeout: float) -> None:
    """Poll nova until every host in ``hosts`` reports ``state``; ``DevcloudError`` on timeout."""
    regions = ",".join(r.id for r in profile.regions)
    args = ["devcloud-admin", regions, "--wait-state", state, "--hosts", ",".join(hosts), "--timeout", str(timeout)]
    venv_script(layout, "status.py", args, timeout=timeout + 60)
