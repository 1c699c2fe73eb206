"""Benchmark: replication of ``dr`` VMs into gd-sg vs a plain openstacksdk download/upload loop (issue 14).

usage: flock -s /tmp/devcloud.lock python bench/replication.py [--vms 8] [--disk-mib 4]

Against the running devcloud, in one run: a ``dr`` ticket (gd-gat/hukou) with ``--vms`` small VMs is
applied into a temporary store; then, each serial, one image at a time:

1. **govcloud replicate**: ``Replicator.run(force=True)`` — per VM a nova snapshot in gd-gz (the fake
   hypervisor writes ``--disk-mib`` MiB: the bench sets the servers' ``devcloud:disk_mib``), its wait,
   the streamed copy into gd-sg with its checks, the store rows and the audit records. What the daemon
   does;
2. **govcloud copy**: the copy step alone (``Replicator._copy``: ``read_image`` → ``upload_image`` with
   MD5 and size checked three ways) over the same snapshots;
3. **plain SDK**: over the same snapshots, what a script would do: ``download_image`` (the whole image in
   memory) and ``create_image(data=…)`` into gd-sg.

Prints images/s and MB/s of each and the ratios (plain time / govcloud time: above 1 means govcloud is
faster). Everything made is deleted at the end (the ticket retired, replicas pruned, the plain copies
deleted).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openstack

from govcloud.drivers.base import Endpoint
from govcloud.engine import provision, tickets
from govcloud.engine.context import EngineContext, build
from govcloud.failover.replicate import Replicator
from govcloud.settings import DrSettings, Settings
from govcloud.store import replicas
from govcloud.store import tickets as rows

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def engine(db: str, user: str) -> EngineContext:
    return build(Settings.from_env().with_overrides(root=str(ROOT), db=db, user=user))


def apply_ticket(db: str, directory: Path, vms: int) -> str:
    sys.path.insert(0, str(ROOT))
    from tests.support.tickets import write_ticket

    ticket_id, path = write_ticket(directory, tenant="gd-gat", system="hukou", requester="sunkai", roles=(),
                                   vms=[{"name": "bench", "count": vms, "flavor": "gc.small", "cloud": "gd-prov"}])
    tickets.submit(engine(db, "sunkai"), [path])
    approver = engine(db, "shenpi-chen")
    if tickets.show(approver, ticket_id).state == "submitted":
        tickets.approve(approver, ticket_id)
    (outcome,) = provision.apply(engine(db, "yunwei-he"), [ticket_id], configure=False)
    if outcome.state != "active":
        raise SystemExit(f"the bench ticket did not become active: {outcome.state}: {outcome.detail}")
    return ticket_id


def replicator(ctx: EngineContext, **settings: Any) -> Replicator:
    actor = ctx.state.users.get("yunwei-he")
    assert actor is not None
    return Replicator(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, clock=ctx.clock, actor=actor,
                      settings=DrSettings(**settings))


def line(what: str, images: int, size: int, seconds: float) -> None:
    print(f"{what:<20} {images:3d} images {size / MIB:7.1f} MiB in {seconds:6.2f} s: "
          f"{images / seconds:5.2f} images/s, {size / MIB / seconds:6.1f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=8)
    parser.add_argument("--disk-mib", type=int, default=4, help="size of each snapshot (the devcloud's fake hypervisor: 1-256)")
    args = parser.parse_args()
    if not os.environ.get("OS_CLIENT_CONFIG_FILE"):
        os.environ["OS_CLIENT_CONFIG_FILE"] = str(Path("~/.local/state/govcloud/devcloud/clouds.yaml").expanduser())
    work = Path(tempfile.mkdtemp(prefix="bench-repl-"))
    db = f"sqlite:///{work / 'state.db'}"
    ticket_id = apply_ticket(db, work, args.vms)
    operator = engine(db, "yunwei-he")
    nova = openstack.connect(cloud="devcloud-admin", region_name="gd-gz").compute
    with operator.store.transaction() as conn:
        for vm in rows.vms_of(conn, ticket_id):
            nova.set_server_metadata(vm.server_id, **{"devcloud:disk_mib": str(args.disk_mib)})
    plain: list[str] = []
    sg = openstack.connect(cloud="devcloud-admin", region_name="gd-sg").image
    try:
        started = time.perf_counter()
        results = replicator(operator).run(force=True)
        full = time.perf_counter() - started
        failed = [r.errors for r in results if not r.ok]
        if failed:
            raise SystemExit(f"replication failed: {failed}")
        with operator.store.transaction() as conn:
            made = replicas.listing(conn, states=["ready"])
        total = sum(r.size or 0 for r in made)

        rep = replicator(operator)
        source, target = operator.driver(Endpoint("devcloud-admin", "gd-gz")), operator.driver(Endpoint("devcloud-admin", "gd-sg"))
        snapshots = [source.wait_for_image(r.tenant, r.source_image or "", timeout=60) for r in made]
        copies = []
        started = time.perf_counter()
        for snapshot, replica in zip(snapshots, made, strict=True):
            copies.append(rep._copy(source, target, replica.tenant, snapshot, {"govcloud:bench": "copy"}))
        copy = time.perf_counter() - started
        for image, replica in zip(copies, made, strict=True):
            target.delete_image(replica.tenant, image.id)

        gz = openstack.connect(cloud="devcloud-admin", region_name="gd-gz").image
        started = time.perf_counter()
        for snapshot in snapshots:
            content = gz.download_image(snapshot.id).content
            image = sg.create_image(f"{snapshot.name}-plain", data=io.BytesIO(content), disk_format="raw", container_format="bare",
                                    allow_duplicates=True)
            plain.append(image.id)
        baseline = time.perf_counter() - started

        print(f"devcloud, {len(made)} dr VMs, snapshots of {total // len(made) // MIB} MiB, one at a time")
        line("govcloud replicate", len(made), total, full)
        line("govcloud copy", len(made), total, copy)
        line("plain SDK copy", len(plain), total, baseline)
        print(f"ratio plain/govcloud copy: {baseline / copy:.2f}x (above 1: govcloud faster); "
              f"replicate (snapshot + copy + checks + store) / plain copy: {full / baseline:.2f}x")
    finally:
        for image_id in plain:
            sg.delete_image(image_id, ignore_missing=True)
        provision.retire(operator, ticket_id)
        replicator(operator, keep=0).run()


if __name__ == "__main__":
    main()
