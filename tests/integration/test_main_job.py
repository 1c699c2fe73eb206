"""The main job against the real devcloud: onboarding, tickets → VMs in the planned centres,
idempotent apply, a kill -9 in the middle of a 20-VM apply, and retirement."""

from __future__ import annotations

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

from govcloud.engine import onboard, provision, tickets
from govcloud.engine.context import EngineContext
from govcloud.store import tickets as rows
from tests.integration.conftest import Devcloud
from tests.support.projects import projects_removed
from tests.support.tickets import REPO, engine, write_ticket

pytestmark = pytest.mark.integration


def nova(region: str = "gd-gz") -> Any:
    return openstack.connect(cloud="devcloud-admin", region_name=region)


def servers_named(prefix: str, region: str = "gd-gz") -> list[Any]:
    return [s for s in nova(region).compute.servers(all_projects=True) if s.name.startswith(prefix)]


@pytest.fixture(scope="module", autouse=True)
def own_projects(devcloud: Devcloud) -> Iterator[None]:
    """gd-scl and gd-czt are onboarded here for the tests alone: their projects go at the end."""
    with projects_removed("gd-scl", "gd-czt"):
        yield


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One state store for the module: the sample tickets are applied once and inspected by several tests."""
    return f"sqlite:///{tmp_path_factory.mktemp('main-job') / 'state.db'}"


@pytest.fixture(scope="module")
def operator(devcloud: Devcloud, db: str) -> EngineContext:
    return engine(db, "yunwei-he")


def test_onboarding_twice_is_a_noop(operator: EngineContext) -> None:
    onboard.sync(operator, ["gd-scl"])
    again = onboard.sync(operator, ["gd-scl"])
    assert [(e.region, r.changed) for e, r in again] == [("gd-gz", ()), ("gd-sg", ())]
    project = nova().identity.find_project("gd-scl")
    assert project.description.startswith("广东省残疾人联合会")
    quota = nova().compute.get_quota_set(project.id)
    limit = operator.state.quotas.of("gd-scl", "gd-prov")
    assert limit is not None and (quota.instances, quota.cores, quota.ram) == (limit.limit.instances, limit.limit.vcpus, limit.limit.ram_mb)


@pytest.fixture(scope="module")
def sample(operator: EngineContext, db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Three tickets like the shipped samples (small auto-approved, HA, DR), approved and applied once."""
    tmp_path = tmp_path_factory.mktemp("tickets")
    made = {
        "small": write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing",
                              vms=[{"name": "test", "count": 1, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}]),
        "ha": write_ticket(tmp_path, tenant="gd-zsj", system="zwfw", requester="yuantao", protection="ha",
                           vms=[{"name": "web", "count": 2, "flavor": "gc.medium", "cloud": "gd-prov"},
                                {"name": "app", "count": 3, "flavor": "gc.large", "cloud": "gd-prov"}]),
        "dr": write_ticket(tmp_path, tenant="gd-gat", system="hukou", requester="sunkai",
                           vms=[{"name": "app", "count": 2, "flavor": "gc.large", "cloud": "gd-prov"}]),
    }
    for key, (_, path) in made.items():
        requester = {"small": "caijing", "ha": "yuantao", "dr": "sunkai"}[key]
        tickets.submit(engine(db, requester), [path])
    approver = engine(db, "shenpi-chen")
    assert tickets.show(approver, made["small"][0]).state == "approved"  # auto-approved by rule small-short
    tickets.approve(approver, made["ha"][0])
    tickets.approve(approver, made["dr"][0])
    outcomes = provision.apply(operator, configure=False)
    assert {(o.ticket, o.state) for o in outcomes} == {(t, "active") for t, _ in made.values()}
    yield {key: ticket_id for key, (ticket_id, _) in made.items()}
    for ticket_id, _ in made.values():
        if tickets.show(operator, ticket_id).state != "retired":
            provision.retire(operator, ticket_id)


def _vms(ctx: EngineContext, ticket_id: str) -> list[rows.VmRow]:
    with ctx.store.transaction() as conn:
        return rows.vms_of(conn, ticket_id)


def test_vms_land_in_the_planned_regions_and_zones(operator: EngineContext, sample: dict[str, str]) -> None:
    for ticket_id in sample.values():
        for vm in _vms(operator, ticket_id):
            server = nova(vm.region).compute.get_server(vm.server_id)
            assert (server.name, server.status, server.availability_zone) == (vm.name, "ACTIVE", vm.zone)
            assert server.metadata["govcloud:ticket"] == ticket_id
            assert server.metadata["govcloud:index"] == str(vm.idx)


def test_ha_ticket_spans_both_guangzhou_centres_and_hosts(operator: EngineContext, sample: dict[str, str]) -> None:
    vms = _vms(operator, sample["ha"])
    assert {vm.centre for vm in vms} == {"gz-main", "gz-backup"}
    app_main = [vm for vm in vms if vm.centre == "gz-main" and vm.flavor == "gc.large"]
    hosts = {nova().compute.get_server(vm.server_id).compute_host for vm in app_main}
    assert len(app_main) == 2 and len(hosts) == 2  # anti-affinity inside the centre


def test_dr_ticket_reserves_the_same_capacity_in_the_dr_centre(operator: EngineContext, sample: dict[str, str]) -> None:
    with operator.store.transaction() as conn:
        lines = rows.ledger_lines(conn, ticket=sample["dr"])
    dr = [line for line in lines if line.kind == "dr"]
    assert [(line.cloud, line.centre, line.state) for line in dr] == [("gd-prov", "sg-dr", "committed")]
    assert dr[0].resources.instances == 2 and dr[0].resources.vcpus == 8
    assert {vm.centre for vm in _vms(operator, sample["dr"])} == {"gz-main", "gz-backup"}
    assert servers_named(f"gd-gat-hukou-{sample['dr']}", region="gd-sg") == []  # reserved, not running


def test_apply_twice_finds_the_same_servers(operator: EngineContext, sample: dict[str, str]) -> None:
    before = {vm.name: vm.server_id for t in sample.values() for vm in _vms(operator, t)}
    provision.apply(operator, list(sample.values()), configure=False)  # active tickets: nothing to do, nothing created
    after = {vm.name: vm.server_id for t in sample.values() for vm in _vms(operator, t)}
    assert before == after
    assert len(servers_named(f"gd-zsj-zwfw-{sample['ha']}")) == 5


def test_retire_deletes_the_servers_and_frees_the_quota(operator: EngineContext, sample: dict[str, str]) -> None:
    ticket_id = sample["ha"]
    project = nova().identity.find_project("gd-zsj")
    used_before = nova().compute.get_quota_set(project.id, usage=True).usage["instances"]
    outcome = provision.retire(operator, ticket_id)
    assert outcome.state == "retired"
    assert servers_named(f"gd-zsj-zwfw-{ticket_id}") == []
    with operator.store.transaction() as conn:
        assert rows.ledger_lines(conn, ticket=ticket_id) == []
        assert rows.vms_of(conn, ticket_id) == []
    assert nova().compute.get_quota_set(project.id, usage=True).usage["instances"] == used_before - 5


def test_kill_9_in_the_middle_of_a_20_vm_apply_then_apply_again(devcloud: Devcloud, db: str, tmp_path: Path) -> None:
    ticket_id, path = write_ticket(tmp_path, tenant="gd-czt", system="yszx", requester="suxiaodong", protection="none",
                                   vms=[{"name": "batch", "count": 20, "flavor": "gc.small", "cloud": "gd-prov"}])
    tickets.submit(engine(db, "suxiaodong"), [path])
    tickets.approve(engine(db, "shenpi-chen"), ticket_id)
    prefix = f"gd-czt-yszx-{ticket_id}-"
    env = {**os.environ, "GOVCLOUD_DB": db, "GOVCLOUD_USER": "yunwei-he", "GOVCLOUD_ROOT": str(REPO)}
    child = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "apply", "--skip-configure", ticket_id], env=env, cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(servers_named(prefix)) < 5 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.3)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    created_before_kill = len(servers_named(prefix))
    assert 0 < created_before_kill < 20, "the kill must land in the middle of the apply"
    operator = engine(db, "yunwei-he")
    assert tickets.show(operator, ticket_id).state == "provisioning"
    (outcome,) = provision.apply(operator, configure=False)
    assert outcome.state == "active"
    servers = servers_named(prefix)
    assert sorted(s.name for s in servers) == sorted(f"{prefix}{i}" for i in range(1, 21))
    assert {s.status for s in servers} == {"ACTIVE"}
    orphans = [s for s in nova().compute.servers(all_projects=True)
               if s.metadata.get("govcloud:ticket") == ticket_id and s.id not in {v.server_id for v in _vms(operator, ticket_id)}]
    assert orphans == []
    with operator.store.transaction() as conn:
        lines = rows.ledger_lines(conn, ticket=ticket_id)
    assert sum(line.resources.instances for line in lines) == 20 and {line.state for line in lines} == {"committed"}
    provision.retire(operator, ticket_id)
    assert servers_named(prefix) == []


def test_resize_then_delete_tickets(devcloud: Devcloud, tmp_path: Path) -> None:
    """A resize changes the flavors in place and moves only the growth through the ledger; a delete
    ticket retires its target."""
    db = f"sqlite:///{tmp_path / 'state.db'}"
    requester, approver, operator = engine(db, "caijing"), engine(db, "shenpi-chen"), engine(db, "yunwei-he")
    vms = [{"name": "app", "count": 2, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}]
    created, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=vms)
    tickets.submit(requester, [path])  # 2 small VMs: auto-approved
    provision.apply(operator, [created], configure=False)
    resized, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", kind="resize", target=created,
                                 vms=[{**vms[0], "flavor": "gc.medium"}])
    tickets.submit(requester, [path])
    tickets.approve(approver, resized)
    with operator.store.transaction() as conn:
        growth = rows.ledger_lines(conn, ticket=resized)
    assert sum((line.resources.vcpus for line in growth), 0) == 2  # (2 - 1) vCPU × 2 VMs reserved, not 4
    (outcome,) = provision.apply(operator, [resized])
    assert outcome.state == "active", outcome.detail
    for vm in _vms(operator, created):
        assert (vm.flavor, vm.vcpus) == ("gc.medium", 2)
        server = nova().compute.get_server(vm.server_id)
        assert (server.status, server.flavor.name, server.availability_zone) == ("ACTIVE", "gc.medium", "gz-main")
    with operator.store.transaction() as conn:
        assert rows.ledger_lines(conn, ticket=resized) == []
        target_lines = rows.ledger_lines(conn, ticket=created)
    assert sum((line.resources.vcpus for line in target_lines), 0) == 4 and {line.state for line in target_lines} == {"committed"}
    deleted, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", kind="delete", target=created, vms=[])
    tickets.submit(requester, [path])
    tickets.approve(approver, deleted)
    (outcome,) = provision.apply(operator, [deleted])
    assert outcome.state == "active"
    assert tickets.show(operator, created).state == "retired"
    assert servers_named(f"gd-mzt-mzoa-{created}-") == []
    with operator.store.transaction() as conn:
        assert rows.ledger_lines(conn, ticket=created) == []
