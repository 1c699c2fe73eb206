"""Replication against the real devcloud (issue 14, item 1): a ``dr`` ticket's two VMs are snapshotted in
gd-gz by the devcloud's fake hypervisor (real bytes, different per server), copied into gd-sg's glance
and checked byte for byte; ``govcloud dr replicate`` through the CLI; keep-K pruning deletes the oldest
replica's images in both regions; retiring the ticket prunes the rest.

Run it under ``flock -s /tmp/devcloud.lock`` when the devcloud is shared."""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import openstack
import pytest

from govcloud.drivers.base import Endpoint
from govcloud.engine import provision, tickets
from govcloud.engine.context import EngineContext
from govcloud.failover.reads import readiness
from govcloud.failover.replicate import Replicator, image_name
from govcloud.settings import DrSettings
from govcloud.store import replicas, runs
from govcloud.store import tickets as rows
from tests.integration.conftest import Devcloud
from tests.support.tickets import REPO, engine, write_ticket

pytestmark = pytest.mark.integration


def glance(region: str) -> Any:
    return openstack.connect(cloud="devcloud-admin", region_name=region).image


def data(region: str, image_id: str) -> bytes:
    """The image's bytes as glance serves them (admin sees every project's images)."""
    return bytes(glance(region).download_image(image_id).content)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('replicate') / 'state.db'}"


@pytest.fixture(scope="module")
def dr_ticket(devcloud: Devcloud, db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gd-gat/hukou (protection dr): two small VMs, approved and applied."""
    ticket_id, path = write_ticket(tmp_path_factory.mktemp("tickets"), tenant="gd-gat", system="hukou", requester="sunkai", roles=(),
                                   vms=[{"name": "app", "count": 2, "flavor": "gc.small", "cloud": "gd-prov"}])
    tickets.submit(engine(db, "sunkai"), [path])
    ctx = engine(db, "shenpi-chen")
    if tickets.show(ctx, ticket_id).state == "submitted":
        tickets.approve(ctx, ticket_id)
    operator = engine(db, "yunwei-he")
    (outcome,) = provision.apply(operator, [ticket_id], configure=False)
    assert outcome.state == "active", outcome.detail
    yield ticket_id
    if tickets.show(operator, ticket_id).state != "retired":
        provision.retire(operator, ticket_id)
    replicator(operator, keep=0).run()  # the ticket is gone: its replicas' images go in both regions


def replicator(ctx: EngineContext, **settings: Any) -> Replicator:
    actor = ctx.state.users.get("yunwei-he")
    assert actor is not None
    return Replicator(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, clock=ctx.clock, actor=actor,
                      settings=DrSettings(**settings))


def stored(ctx: EngineContext, state: str = "ready") -> list[replicas.ReplicaRow]:
    with ctx.store.transaction() as conn:
        return replicas.listing(conn, states=[state])


def test_a_dr_vm_is_in_gd_sg_with_the_bytes_of_its_snapshot_and_two_servers_differ(db: str, dr_ticket: str) -> None:
    operator = engine(db, "yunwei-he")
    results = replicator(operator, keep=2).run(system="hukou")
    assert len(results) == 2 and all(r.ok for r in results), [r.errors for r in results]
    with operator.store.transaction() as conn:
        servers = {v.name: v.server_id for v in rows.vms_of(conn, dr_ticket)}
    disks = {}
    for replica in stored(operator):
        source, copy = data("gd-gz", replica.source_image or ""), data("gd-sg", replica.dr_image or "")
        assert copy == source and len(copy) == replica.size == 4 * 1024 * 1024
        assert hashlib.md5(copy, usedforsecurity=False).hexdigest() == replica.checksum
        image = glance("gd-sg").get_image(replica.dr_image)
        assert image.checksum == replica.checksum and image.status == "active" and image.properties["govcloud:replica"] == replica.id
        assert copy.startswith(f"govcloud-fake-disk instance={servers[replica.vm]} ".encode())  # the fake hypervisor's disk
        disks[replica.vm] = copy
    assert len(disks) == 2 and len(set(disks.values())) == 2  # two servers: two different disks


def test_readiness_ready_after_replicate_and_a_drill_not_ready_past_drill_every_or_when_replication_stops(db: str, dr_ticket: str) -> None:
    """Issue 14 item 4 on the devcloud: hukou's VMs were just replicated (test above) and its ticket holds its
    reservation in sg-dr. With a passed drill of its group (a run as the drill helper records it) the plan
    public-security is READY — through the CLI too; with the clock moved past the group's 15 min RPO
    (replication stopped) it is NOT READY for the replicas; past drill_every (90 d) for the drill too."""
    operator = engine(db, "yunwei-he")
    assert len(stored(operator)) == 2
    now = operator.clock()
    with operator.store.transaction() as conn:
        run = runs.create_run(conn, kind="drill", cloud="gd-prov", centre="sg-dr", user="yunwei-he", owner="test", now=now.isoformat(),
                              plan={}, detail={"group": "public-security"})
        assert runs.end_run(conn, run.id, state="succeeded", now=now.isoformat(), detail={"group": "public-security"})
    actor = operator.state.users.get("yunwei-he")
    assert actor is not None

    def verdict(at: datetime.datetime) -> dict[str, Any]:
        (plan,) = [p for p in readiness(operator.store, actor, operator.state, settings=DrSettings(), now=at)
                   if p["plan"] == "public-security"]
        return plan

    assert verdict(now)["ready"] and verdict(now)["dr_vms"] == 2, verdict(now)["why"]
    shown = subprocess.run([sys.executable, str(REPO / "cli.py"), "--root", str(REPO), "--db", db, "--as", "yunwei-he",
                            "failover", "status", "-o", "json"], capture_output=True, text=True, timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr
    assert {p["plan"]: p["state"] for p in json.loads(shown.stdout)["plans"]}["public-security"] == "READY"
    stopped = verdict(now + datetime.timedelta(minutes=16))
    assert [r["kind"] for r in stopped["reasons"]] == ["replica", "replica"] and "older than its RPO 15m" in stopped["why"]
    late = verdict(now + datetime.timedelta(days=91))
    assert [r["kind"] for r in late["reasons"]] == ["drill", "replica", "replica"] and "older than drill_every 90d" in late["why"]


def test_dr_replicate_on_the_cli_and_keep_k_prunes_both_regions(db: str, dr_ticket: str) -> None:
    operator = engine(db, "yunwei-he")
    first = {r.vm: r for r in stored(operator)}
    assert len(first) == 2
    done = subprocess.run([sys.executable, str(REPO / "cli.py"), "--root", str(REPO), "--db", db, "--as", "yunwei-he",
                           "dr", "replicate", "--system", "hukou", "-o", "json"], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert {r["state"] for r in json.loads(done.stdout)} == {"ready"}
    operator = engine(db, "yunwei-he")
    assert len(stored(operator)) == 4  # K = 3 by default: nothing pruned yet
    replicator(operator, keep=1).run(system="hukou", force=True)
    kept = stored(operator)
    assert len(kept) == 2 and not {r.id for r in kept} & {r.id for r in first.values()}
    for old in first.values():  # the oldest replicas' images are gone in both regions
        assert glance("gd-gz").find_image(old.source_image, ignore_missing=True) is None
        assert glance("gd-sg").find_image(old.dr_image, ignore_missing=True) is None
    listed = subprocess.run([sys.executable, str(REPO / "cli.py"), "--root", str(REPO), "--db", db, "--as", "sunkai",
                             "dr", "replicas", "-o", "json"], capture_output=True, text=True, timeout=120, check=False)
    assert listed.returncode == 0, listed.stderr
    assert {r["id"] for r in json.loads(listed.stdout)} == {r.id for r in kept}  # the requester sees its own tenant's


def test_a_replica_whose_run_died_before_recording_its_snapshot_is_found_by_name_and_deleted(db: str, dr_ticket: str) -> None:
    """The run asked nova for the snapshot and died before the store heard the image id: the row says
    ``taking`` and names no image; two hours later the next pass finds the image by its name and deletes it."""
    operator = engine(db, "yunwei-he")
    with operator.store.transaction() as conn:
        vm = rows.vms_of(conn, dr_ticket)[0]
        dead = replicas.ReplicaRow(id=uuid.uuid4().hex, ticket=vm.ticket, idx=vm.idx, vm=vm.name, tenant=vm.tenant, system=vm.system,
                                   cloud=vm.cloud, server_id=vm.server_id or "", source_region="gd-gz", dr_region="gd-sg",
                                   taken_at=(operator.clock() - datetime.timedelta(hours=2)).isoformat(), state="taking")
        replicas.insert(conn, dead)
    gz = operator.driver(Endpoint("devcloud-admin", "gd-gz"))
    made = gz.snapshot_server(vm.tenant, vm.server_id or "", name=image_name(dead), metadata={})
    gz.wait_for_image(vm.tenant, made.id, timeout=120)
    (result,) = [r for r in replicator(operator, keep=1).run(system="hukou") if r.vm.name == vm.name]
    assert result.replica is None and result.pruned == 1 and result.ok  # not due: only the prune
    assert glance("gd-gz").find_image(made.id, ignore_missing=True) is None
    with operator.store.transaction() as conn:
        assert dead.id not in {r.id for r in replicas.listing(conn)}


def test_retiring_the_ticket_prunes_its_replicas_in_both_regions(db: str, dr_ticket: str) -> None:
    operator = engine(db, "yunwei-he")
    kept = stored(operator)
    assert kept
    provision.retire(operator, dr_ticket)
    results = replicator(operator).run()
    assert any(r.gone for r in results) and all(r.ok for r in results)
    with operator.store.transaction() as conn:
        assert [r for r in replicas.listing(conn) if r.ticket == dr_ticket] == []
    for old in kept:
        assert glance("gd-gz").find_image(old.source_image, ignore_missing=True) is None
        assert glance("gd-sg").find_image(old.dr_image, ignore_missing=True) is None
