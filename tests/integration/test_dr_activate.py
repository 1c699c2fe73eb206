"""DR activation and the return to Guangzhou against the real devcloud (issue 14, item 2), by the declaration path: the Guangzhou
centres are NOT failed (the devcloud is shared; failing them is another test's business) — the operator
declares them lost. A ``dr`` ticket's two VMs are replicated into gd-sg; ``govcloud dr activate`` refuses
without the declaration, waits for approval with it (exit 4, nothing booted in gd-sg); an approver
approves; the next ``dr activate`` boots each VM in sg-dr from its replica image (nova says so), ACTIVE,
and the store's rows, ledger and audit follow. Then ``dr return`` brings both back (the same test: the
activation is paid once): ACTIVE in their gd-gz home zones, booted from a copy holding the DR server's
bytes, nothing left in gd-sg, VM rows and ledger as before the activation. Everything made is deleted at the end (the new servers by
retiring the ticket, the old ones in gd-gz by id, the replicas' images in both regions).

Run it under ``flock -s /tmp/devcloud.lock`` when the devcloud is shared."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import openstack
import pytest

from govcloud.drivers.base import Endpoint, Server, ServerSpec
from govcloud.engine import provision, tickets
from govcloud.failover.dr_return import DrReturn
from govcloud.failover.replicate import Replicator
from govcloud.planner.stored import decode
from govcloud.settings import DrSettings
from govcloud.store import replicas, runs
from govcloud.store import tickets as rows
from tests.integration.conftest import Devcloud
from tests.support.tickets import REPO, engine, write_ticket

pytestmark = pytest.mark.integration


def compute(region: str) -> Any:
    return openstack.connect(cloud="devcloud-admin", region_name=region).compute


def cli(db: str, user: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "cli.py"), "--root", str(REPO), "--db", db, "--as", user, *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('dract') / 'state.db'}"


@pytest.fixture
def dr_ticket(devcloud: Devcloud, db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """gd-mzt/mzoa with protection dr (no group of the sample plan names it, so no hook needs SSH to the
    fake VMs): two small VMs applied in Guangzhou; yields the ticket and its servers there (name → id), and
    deletes whatever the test made."""
    ticket_id, path = write_ticket(tmp_path_factory.mktemp("tickets"), tenant="gd-mzt", system="mzoa", requester="caijing", roles=(), protection="dr",
                                   vms=[{"name": "app", "count": 2, "flavor": "gc.small", "cloud": "gd-prov"}])
    tickets.submit(engine(db, "caijing"), [path])
    approver = engine(db, "shenpi-chen")
    if tickets.show(approver, ticket_id).state == "submitted":
        tickets.approve(approver, ticket_id)
    operator = engine(db, "yunwei-he")
    (outcome,) = provision.apply(operator, [ticket_id], configure=False)
    assert outcome.state == "active", outcome.detail
    with operator.store.transaction() as conn:
        old = {v.name: v.server_id or "" for v in rows.vms_of(conn, ticket_id)}
    try:
        yield ticket_id, old
    finally:
        operator = engine(db, "yunwei-he")
        if tickets.show(operator, ticket_id).state != "retired":
            provision.retire(operator, ticket_id)  # the VM rows name the servers in gd-sg after the activation
        gz = compute("gd-gz")
        for server_id in old.values():  # the "lost" originals, which on the devcloud still run
            gz.delete_server(server_id, ignore_missing=True)
        for server_id in old.values():
            gz.wait_for_delete(gz.get_server(server_id), wait=120) if gz.find_server(server_id, ignore_missing=True) else None
        actor = operator.state.users.get("yunwei-he")
        assert actor is not None
        Replicator(store=operator.store, state=operator.state, endpoints=operator.endpoints, driver=operator.driver, clock=operator.clock,
                   actor=actor, settings=DrSettings(keep=0)).run()  # the ticket is gone: its replicas' images go in both regions
        left = {region: [s.name for s in compute(region).servers(all_projects=True) if ticket_id in s.name]
                for region in ("gd-gz", "gd-sg")}
        images = {region: [i.name for i in openstack.connect(cloud="devcloud-admin", region_name=region).image.images()
                           if ticket_id in i.name] for region in ("gd-gz", "gd-sg")}
        assert left == {"gd-gz": [], "gd-sg": []} and images == {"gd-gz": [], "gd-sg": []}, (left, images)  # nothing left behind


def test_declared_lost_approved_and_rebuilt_in_sg_dr_from_the_replica(db: str, dr_ticket: tuple[str, dict[str, str]]) -> None:
    ticket_id, old = dr_ticket
    replicated = cli(db, "yunwei-he", "dr", "replicate", "--system", "mzoa", "-o", "json")
    assert replicated.returncode == 0, replicated.stderr
    images = {r["vm"]: r["dr_image"] for r in json.loads(replicated.stdout)}
    assert set(images) == set(old)
    ledger_before = ledger(db, ticket_id)

    refused = cli(db, "yunwei-he", "dr", "activate", "--cloud", "gd-prov")
    assert refused.returncode == 2 and "not down: gz-main" in refused.stderr
    waiting = cli(db, "yunwei-he", "dr", "activate", "--cloud", "gd-prov", "--declare-lost", "--reason", "integration test: declared")
    assert waiting.returncode == 4, waiting.stderr
    operator = engine(db, "yunwei-he")
    with operator.store.transaction() as conn:
        (run,) = runs.runs(conn)
    assert f"govcloud dr approve {run.id}" in waiting.stderr
    sg = compute("gd-sg")
    assert [s for s in sg.servers(all_projects=True) if s.name in old] == []  # nothing booted before approval

    assert cli(db, "yunwei-he", "dr", "approve", str(run.id)).returncode == 2  # the operator: not an approver
    approved = cli(db, "shenpi-chen", "dr", "approve", str(run.id))
    assert approved.returncode == 0, approved.stderr

    began = time.monotonic()
    done = cli(db, "yunwei-he", "dr", "activate", "--run", str(run.id), "--yes", "--skip-configure", "-o", "json")
    took = time.monotonic() - began
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    report = json.loads(done.stdout)
    assert report["state"] == "finished" and set(report["vms"]) == set(old)
    print(f"\nDR activation of 2 VMs on the devcloud: {took:.1f} s for the command; per VM "
          + ", ".join(f"{n}: rebuild {v['rebuild_s']:.1f} s, data loss {v['data_loss_s']:.1f} s" for n, v in sorted(report["vms"].items())))

    operator = engine(db, "yunwei-he")
    with operator.store.transaction() as conn:
        vms = {v.name: v for v in rows.vms_of(conn, ticket_id)}
        lines = [(line.centre, line.kind, line.resources.instances) for line in rows.ledger_lines(conn, ticket=ticket_id)]
        used = {r.vm: r for r in replicas.listing(conn, states=["ready"])}
    for name, vm in vms.items():
        server = sg.get_server(vm.server_id)
        assert server.status == "ACTIVE" and server.availability_zone == "sg-dr" and vm.server_id != old[name]
        assert server.image["id"] == images[name] == used[name].dr_image  # booted from the replica copied into gd-sg's glance
        assert (vm.centre, vm.region, vm.zone) == ("sg-dr", "gd-sg", "sg-dr")
    assert sorted(lines) == [("sg-dr", "vm", 2)]  # the reservation became the allocation; nothing left in Guangzhou
    actions = [r.action for r in operator.store.audit.records()]
    assert actions.count("dr.activate") == 2 and actions.count("dr.server-lost") == 2 and "dr.declare-lost" in actions

    returned_home(db, ticket_id, ledger_before, {n: v.server_id or "" for n, v in vms.items()})


def ledger(db: str, ticket_id: str) -> list[tuple[object, ...]]:
    with engine(db, "yunwei-he").store.transaction() as conn:
        return sorted((line.centre, line.kind, line.state, tuple(line.resources.as_dict().items()))
                      for line in rows.ledger_lines(conn, ticket=ticket_id))


def glance(region: str) -> Any:
    return openstack.connect(cloud="devcloud-admin", region_name=region).image


def data(region: str, image_id: str) -> bytes:
    """An image's bytes as glance serves them (the admin sees every project's images)."""
    return bytes(glance(region).download_image(image_id).content)


class Watching:
    """gd-gz's driver, which at each create reads the image the server boots from (the return's copy, which
    the return deletes once the VM is home), its source (the snapshot of the DR server in gd-sg) and the
    DR server's status then."""

    def __init__(self, real: Any, seen: dict[str, tuple[bytes, bytes, str, list[str]]]) -> None:
        self.real = real
        self.seen = seen

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def create_server(self, spec: ServerSpec) -> Server:
        copy = glance("gd-gz").get_image(spec.image)
        (snapshot,) = [i for i in glance("gd-sg").images() if i.name == copy.name]
        dr_status = [s.status for s in compute("gd-sg").servers(all_projects=True) if s.name == spec.name]
        self.seen[spec.name] = (data("gd-gz", copy.id), data("gd-sg", snapshot.id), copy.checksum, dr_status)
        server: Server = self.real.create_server(spec)
        return server


def returned_home(db: str, ticket_id: str, ledger_before: list[tuple[object, ...]], at_dr: dict[str, str]) -> None:
    """``dr return`` after the activation: checked (dry run), then carried out with gd-gz's creates watched."""
    shown = cli(db, "yunwei-he", "dr", "return", "--cloud", "gd-prov", "--dry-run", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert sorted(m["vm"] for m in json.loads(shown.stdout)["moves"]) == sorted(at_dr)

    operator = engine(db, "yunwei-he")
    actor = operator.state.users.get("yunwei-he")
    assert actor is not None
    seen: dict[str, tuple[bytes, bytes, str, list[str]]] = {}

    def driver(endpoint: Endpoint) -> Any:
        real = operator.driver(endpoint)
        return Watching(real, seen) if endpoint.region == "gd-gz" else real

    began = time.monotonic()
    done = DrReturn(store=operator.store, state=operator.state, endpoints=operator.endpoints, driver=driver, now=operator.now, actor=actor,
                    dr_settings=operator.settings.dr, timeout=300, settings=operator.settings.failover).run("gd-prov")
    took = time.monotonic() - began
    assert done.run.state == "finished" and len(done.run.moved) == 2 and done.left == {}, done.as_dict()["outcomes"]
    print(f"\ndr return of 2 VMs on the devcloud: {took:.1f} s; per VM "
          + ", ".join(f"{n}: downtime {r['downtime_s']:.1f} s (copy back after {r['copied_s']:.1f} s)" for n, r in sorted(done.reports.items())))

    with operator.store.transaction() as conn:
        vms = {v.name: v for v in rows.vms_of(conn, ticket_id)}
        placements = {p.name: p for p in decode(rows.require(conn, ticket_id).plan).vms}
    gz, sg = compute("gd-gz"), compute("gd-sg")
    for name, vm in vms.items():
        server, placement, report = gz.get_server(vm.server_id), placements[name], done.reports[name]
        assert server.status == "ACTIVE" and server.availability_zone == placement.zone
        assert (vm.centre, vm.region, vm.zone) == (placement.centre, "gd-gz", placement.zone)
        assert server.image["id"] == report["image"] and server.flavor["original_name"] == placement.flavor
        copy, snapshot, checksum, dr_status = seen[name]
        assert dr_status == ["SHUTOFF"]  # the DR copy was stopped before its snapshot and stays so until retired
        assert copy == snapshot and hashlib.md5(copy, usedforsecurity=False).hexdigest() == checksum == report["checksum"]
        assert snapshot.startswith(f"govcloud-fake-disk instance={at_dr[name]} ".encode())  # the DR server's own disk came back
    assert [s.name for s in sg.servers(all_projects=True) if ticket_id in s.name] == []  # the DR copies are retired
    assert [i.name for region in ("gd-gz", "gd-sg") for i in glance(region).images() if "-return-" in i.name and ticket_id in i.name] == []
    assert ledger(db, ticket_id) == ledger_before  # home again, the dr reservation in sg-dr as before the activation
    actions = [r.action for r in operator.store.audit.records()]
    assert actions.count("dr.return") == 2 and actions.count("dr.return.retire") == 2 and actions[-1] == "dr-return.end"
