"""DR drills against the real devcloud (issue 14, part 3), kept short: one group (public-security), two VMs.

1. replicate → ``drill run`` to sg-dr: two copies ACTIVE in gd-sg from the replicas' copies, on a drill
   network neutron made without gateway and without router (checked while the copies exist, from inside the
   hook); then nothing tagged ``govcloud-drill-`` left in either region (servers, ports, networks, subnets,
   images) and the ticket's production servers unchanged (id, status, host). The devcloud's VMs have no SSH:
   the hook here is a recorder that stands in for Ansible (the Ansible hook path is tested on the fake cloud
   and in test_recovery_hooks.py).
2. ``govcloud drill run`` killed with kill -9 right after its first server POST, then ``govcloud drill
   cleanup``: zero leftovers, the run ended ``failed``.

The devcloud is shared by other work: "production unchanged" is asserted over this module's ticket's
servers (other tests create and delete servers meanwhile). Run it under ``flock -s /tmp/devcloud.lock``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest

from govcloud.drivers.base import Endpoint
from govcloud.drivers.openstack import OpenStackDriver
from govcloud.engine import onboard, provision, tickets
from govcloud.failover.drill import PREFIX, Drill
from govcloud.failover.reads import readiness
from govcloud.failover.replicate import Replicator
from govcloud.failover.steps import HookCall, HookResult
from govcloud.settings import DrSettings
from govcloud.store import runs
from tests.integration.conftest import Devcloud
from tests.support.tickets import REPO, engine, write_ticket

pytestmark = pytest.mark.integration
REGIONS = ("gd-gz", "gd-sg")


def admin(region: str) -> Any:
    return openstack.connect(cloud="devcloud-admin", region_name=region)


def leftovers() -> list[tuple[str, str, str]]:
    """Everything a drill made, in both regions, as the driver's tag listing and plain SDK listings see it."""
    found = [(region, t.kind, t.id) for region in REGIONS for t in OpenStackDriver(Endpoint("devcloud-admin", region)).tagged(PREFIX)]
    for region in REGIONS:
        conn = admin(region)
        found += [(region, "server", s.id) for s in conn.compute.servers(all_projects=True) if s.name.startswith(PREFIX)]
        found += [(region, "network", n.id) for n in conn.network.networks() if (n.name or "").startswith(PREFIX)]
        found += [(region, "subnet", s.id) for s in conn.network.subnets() if (s.name or "").startswith(PREFIX)]
        found += [(region, "image", i.id) for i in conn.image.images() if (i.name or "").startswith(PREFIX)]
    return found


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('drill') / 'state.db'}"


@pytest.fixture(scope="module")
def police(devcloud: Devcloud, db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gd-gat/hukou (group public-security), protection dr: two small VMs, applied and replicated."""
    ticket_id, path = write_ticket(tmp_path_factory.mktemp("tickets"), tenant="gd-gat", system="hukou", requester="sunkai", roles=(),
                                   vms=[{"name": "app", "count": 2, "flavor": "gc.small", "cloud": "gd-prov"}])
    tickets.submit(engine(db, "sunkai"), [path])
    approver = engine(db, "shenpi-chen")
    if tickets.show(approver, ticket_id).state == "submitted":
        tickets.approve(approver, ticket_id)
    operator = engine(db, "yunwei-he")
    (outcome,) = provision.apply(operator, [ticket_id], configure=False)
    assert outcome.state == "active", outcome.detail
    actor = operator.state.users.get("yunwei-he")
    assert actor is not None
    results = Replicator(store=operator.store, state=operator.state, endpoints=operator.endpoints, driver=operator.driver,
                         clock=operator.clock, actor=actor, settings=DrSettings()).run(system="hukou")
    assert len(results) == 2 and all(r.ok for r in results), [r.errors for r in results]
    yield ticket_id
    if tickets.show(operator, ticket_id).state != "retired":
        provision.retire(operator, ticket_id)
    Replicator(store=operator.store, state=operator.state, endpoints=operator.endpoints, driver=operator.driver, clock=operator.clock,
               actor=actor, settings=DrSettings(keep=0)).run()


def production(ticket: str) -> dict[str, tuple[str, str | None, str]]:
    """The ticket's servers in every region: id → (status, host, zone)."""
    return {s.id: (s.status, s.compute_host, s.availability_zone) for region in REGIONS
            for s in admin(region).compute.servers(all_projects=True, details=True) if (s.metadata or {}).get("govcloud:ticket") == ticket}


def test_a_drill_to_sg_dr_leaves_nothing_and_production_is_untouched(db: str, police: str, tmp_path: Path) -> None:
    before = production(police)
    assert len(before) == 2
    operator = engine(db, "yunwei-he")
    seen: dict[str, Any] = {}

    def hook(call: HookCall) -> HookResult:  # stands in for Ansible: the devcloud's VMs have no SSH
        conn = admin("gd-sg")
        servers = [conn.compute.get_server(v.server_id) for v in call.vms]
        nets = {name for s in servers for name in (s.addresses or {})}
        networks = [conn.network.find_network(n) for n in nets]
        subnets = [conn.network.get_subnet(sid) for n in networks for sid in n.subnet_ids]
        seen.update(servers=[(s.id, s.status, s.availability_zone) for s in servers], networks=[n.name for n in networks],
                    shared=[n.is_shared for n in networks], external=[n.is_router_external for n in networks],
                    gateways=[s.gateway_ip for s in subnets], cidrs=[s.cidr for s in subnets],
                    router_ports=[p.id for n in networks for p in conn.network.ports(network_id=n.id) if "router" in (p.device_owner or "")],
                    addresses=[v.address for v in call.vms])
        return HookResult(True, f"recorded {len(call.vms)} copies")

    actor = operator.state.users.get("yunwei-he")
    assert actor is not None
    done = Drill(store=operator.store, state=operator.state, endpoints=operator.endpoints, driver=operator.driver, now=operator.now,
                 actor=actor, hook=hook, settings=operator.settings.failover, timeout=300,
                 onboard=lambda tenant, endpoint: onboard.ensure_tenant_for(operator, tenant, endpoint),
                 report_dir=tmp_path / "drills").run("public-security", target="sg-dr")
    assert done.run.state == "succeeded" and done.ok, done.detail
    assert [v["ok"] for v in done.detail["vms"]] == [True, True]
    # while the copies lived: ACTIVE in sg-dr, on one drill network with no gateway, not shared, not external, no router port
    assert len(seen["servers"]) == 2 and {(st, zone) for _, st, zone in seen["servers"]} == {("ACTIVE", "sg-dr")}
    assert seen["networks"] == [f"govcloud-drill-{done.run.id}-gd-gat"] and seen["gateways"] == [None] and seen["router_ports"] == []
    assert seen["shared"] == [False] and seen["external"] == [False] and seen["cidrs"] == ["172.31.255.0/24"]
    assert all(a and a.startswith("172.31.255.") for a in seen["addresses"])
    assert {s[0] for s in seen["servers"]}.isdisjoint(before)
    # afterwards: nothing tagged in either region, production as it was, the journal row the readiness check reads
    assert leftovers() == []
    assert production(police) == before
    with operator.store.transaction() as conn:
        row = runs.get_run(conn, done.run.id)
    assert row is not None and (row.kind, row.cloud, row.centre, row.state) == ("drill", "gd-prov", "sg-dr", "succeeded")
    assert row.finished_at and row.detail["group"] == "public-security" and row.detail["rto"]["total_s"] > 0
    # and the readiness check reads it: the group's last drill is this one, no "drill" reason left
    (plan,) = [p for p in readiness(operator.store, actor, operator.state, settings=DrSettings(), now=operator.clock())
               if p["plan"] == "public-security"]
    assert plan["last_drill"] is not None and "drill" not in [r["kind"] for r in plan["reasons"]], plan["why"]
    print(f"drill RTO: {row.detail['rto']}; cleanup {row.detail['cleanup']['seconds']} s")


def test_a_drill_killed_after_its_first_server_post_is_cleaned_up(db: str, police: str, tmp_path: Path) -> None:
    before = production(police)
    env = dict(os.environ)
    base = [sys.executable, str(REPO / "cli.py"), "--root", str(REPO), "--db", db, "--as", "yunwei-he"]
    child = subprocess.Popen([*base, "drill", "run", "public-security", "--target", "sg-dr"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    conn = admin("gd-sg")
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if any(s.name.startswith(PREFIX) for s in conn.compute.servers(all_projects=True, name=f"^{PREFIX}")):
                break
            time.sleep(0.2)
        assert child.poll() is None, "the drill ended before a server of it was seen"
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert leftovers() != []  # what it left
    time.sleep(2)  # a POST nova-api was still handling when its caller died lands meanwhile
    cleaned = subprocess.run([*base, "drill", "cleanup", "-o", "json"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert cleaned.returncode == 0, cleaned.stderr
    report = json.loads(cleaned.stdout)
    assert report["leftovers"] == [] and report["deleted"] and len(report["ended_runs"]) == 1
    assert leftovers() == []
    assert production(police) == before
    listed = subprocess.run([*base, "drill", "history", "-o", "json"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert listed.returncode == 0, listed.stderr
    killed = next(r for r in json.loads(listed.stdout) if r["run"] == report["ended_runs"][0])
    assert killed["state"] == "failed" and killed["group"] == "public-security"
