"""Benchmark: DR activation RTO of 48 ``dr`` VMs — govcloud against a plain openstacksdk script booting the
same servers in sg-dr from the same replica images (issue 14, benchmarks).

usage: flock -s /tmp/devcloud.lock python bench/dr_activation.py [--vms 48] [--per-ticket 8] [--disk-mib 1]
       [--workers 16] [--per-host 2] [--per-cloud 8]

Against the running devcloud, by the declaration path (the Guangzhou centres are NOT failed: the devcloud
is shared; what is timed happens in gd-sg and does not depend on how the centres were lost). Not timed:
``--vms`` ``protection: dr`` VMs in tickets of ``--per-ticket`` over four systems that a recovery plan puts
in three priority groups (no hooks: the devcloud's VMs answer no SSH) are submitted, approved, applied in
Guangzhou and replicated into gd-sg's glance (``Replicator.run(force=True)``, snapshots of ``--disk-mib``
MiB). Then, in one run, alternating — script, govcloud, script:

script
    What an admin could write: for each VM, as its tenant's project, ``create_server`` in gd-sg zone sg-dr
    from the VM's replica image (the same image ids govcloud uses), the same flavor, the same network by
    name; ``--workers`` creates in flight (16: more gives nothing on 2 cores, docs ENVIRONMENT), each
    waited ACTIVE. Timed from the first POST to the last ACTIVE. Its servers are deleted before the next
    contender starts.
govcloud
    An operator's ``DrActivation.request(declare_lost=True)``, an approver's ``approve``, then timed:
    ``DrActivation.activate`` (what ``govcloud dr activate --run N --yes --skip-configure`` calls) — plan
    from the store and nova's live sg-dr hosts, group by group, ``--per-cloud`` / ``--per-host``
    rebuilds in flight (the failover settings; defaults 8 and 2), each a find-then-boot with the
    metadata, the wait ACTIVE, and one store transaction (VM row, ledger reservation → allocation,
    audit); journal rows and heartbeat.

Prints each contender's seconds, per-VM median/max, and the ratio govcloud / mean(script) (target ≤ 1.5×).
Everything it made is deleted at the end, also when it fails: the script's servers, the tickets (their
servers in sg-dr and the "lost" originals in gd-gz), the replicas' images in both regions; what is left
with the bench's names is listed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openstack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.failover_live import PLAN, SYSTEMS, context, data_root
from govcloud.engine import onboard, provision, tickets
from govcloud.failover.activate import DrActivation
from govcloud.failover.replicate import Replicator
from govcloud.settings import DrSettings, FailoverSettings, Settings
from govcloud.store import replicas
from govcloud.store import tickets as rows
from tests.support.tickets import write_ticket

OPERATOR, APPROVER = "yunwei-he", "shenpi-chen"
DR_REGION, DR_ZONE, HOME_REGION = "gd-sg", "sg-dr", "gd-gz"
TARGET_RATIO = 1.5

assert PLAN  # the recovery plan of failover_live.py: three groups, no hooks


@dataclass
class Timing:
    who: str
    vms: int
    total: float
    per_vm: list[float] = field(default_factory=list)
    failed: int = 0

    def line(self) -> str:
        median = statistics.median(self.per_vm) if self.per_vm else 0.0
        longest = max(self.per_vm) if self.per_vm else 0.0
        return (f"{self.who:<9} {self.vms:>4} VMs {self.failed:>3} failed  first POST/plan → last ACTIVE {self.total:7.1f} s  "
                f"per VM median {median:5.1f} s  max {longest:5.1f} s")


@dataclass(frozen=True)
class Target:
    """One VM to bring up in sg-dr: its tenant, name, replica image in gd-sg, flavor, network name."""

    tenant: str
    name: str
    image: str
    flavor: str
    network: str


def verdict(timings: list[Timing], target: float = TARGET_RATIO) -> str:
    """govcloud's time over the mean of the script's runs that bracket it, and whether it meets the target."""
    ours = next(t for t in timings if t.who == "govcloud")
    scripts = [t.total for t in timings if t.who == "script"]
    if not scripts or min(scripts) <= 0:
        raise ValueError(f"the script's times must be positive, not {scripts}")
    floor = statistics.mean(scripts)
    ratio = ours.total / floor
    return (f"DR activation of {ours.vms} VMs: govcloud {ours.total:.1f} s vs script {floor:.1f} s (mean of "
            f"{', '.join(f'{t:.1f}' for t in scripts)}): {ratio:.2f}x ({'meets' if ratio <= target else 'misses'} the target ≤ {target:.1f}x)")


def admin(region: str) -> Any:
    return openstack.connect(cloud="devcloud-admin", region_name=region)


def healthy(conn: Any) -> bool:
    return all(s.state == "up" and not s.is_forced_down and s.status == "enabled" for s in conn.compute.services(binary="nova-compute"))


# -- seeding (not timed) ---------------------------------------------------------------------------------

def fleet(root: Path, db: str, base: Path, vms: int, per_ticket: int, tag: str) -> list[str]:
    """``vms`` dr VMs in tickets of ``per_ticket`` over the four systems, applied in Guangzhou."""
    made = []
    for i in range((vms + per_ticket - 1) // per_ticket):
        tenant, system, requester = SYSTEMS[i % len(SYSTEMS)]
        count = min(per_ticket, vms - i * per_ticket)
        ticket_id, path = write_ticket(base, tenant=tenant, system=system, requester=requester, roles=(), protection="dr",
                                       ticket_id=f"drbench-{tag}-{i:02d}",
                                       vms=[{"name": f"dr{i}", "count": count, "flavor": "gc.small", "cloud": "gd-prov"}])
        (row,) = tickets.submit(context(root, db, requester), [path])
        if row.state == "submitted":
            tickets.approve(context(root, db, APPROVER), ticket_id)
        made.append(ticket_id)
    outcomes = provision.apply(context(root, db, OPERATOR), made, configure=False)
    bad = [o for o in outcomes if o.state != "active"]
    if bad:
        raise SystemExit(f"apply failed: {bad}")
    return made


def replicate(root: Path, db: str, made: list[str], disk_mib: int) -> list[Target]:
    """Every VM snapshotted (``disk_mib`` MiB written by the fake hypervisor) and copied into gd-sg."""
    ctx = context(root, db, OPERATOR)
    nova = admin(HOME_REGION).compute
    with ctx.store.transaction() as conn:
        vms = [v for t in made for v in rows.vms_of(conn, t)]
    for vm in vms:
        nova.set_server_metadata(vm.server_id, **{"devcloud:disk_mib": str(disk_mib)})
    actor = ctx.state.users.get(OPERATOR)
    assert actor is not None
    results = Replicator(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, clock=ctx.clock, actor=actor,
                         settings=DrSettings()).run(force=True)
    failed = [r.errors for r in results if not r.ok]
    if failed:
        raise SystemExit(f"replication failed: {failed[:3]}")
    with ctx.store.transaction() as conn:
        ready = {(r.ticket, r.idx): r for r in replicas.listing(conn, states=["ready"])}
    return [Target(vm.tenant, vm.name, ready[(vm.ticket, vm.idx)].dr_image or "", vm.flavor or "gc.small", "gov-shared") for vm in vms]


# -- the plain script ------------------------------------------------------------------------------------

def run_script(targets: list[Target], workers: int, tag: str) -> Timing:
    """Boot a server per target in sg-dr from its replica image as the tenant, ``workers`` in flight; delete them after."""
    conn = admin(DR_REGION)
    projects: dict[str, Any] = {}
    for tenant in sorted({t.tenant for t in targets}):  # sessions, flavor and network ids found before the clock
        project = conn.identity.find_project(tenant)
        as_tenant = conn.connect_as_project({"id": project.id, "name": tenant, "domain_id": "default"})
        projects[tenant] = (as_tenant, {f: as_tenant.compute.find_flavor(f).id for f in {t.flavor for t in targets}},
                            as_tenant.network.find_network("gov-shared").id)
    made: list[Any] = []
    took: list[float] = []
    failed: list[str] = []

    def one(target: Target) -> None:
        c, flavors, network = projects[target.tenant]
        began = time.monotonic()
        server = c.compute.create_server(name=f"drhand-{tag}-{target.name}", flavor_id=flavors[target.flavor], image_id=target.image,
                                         networks=[{"uuid": network}], availability_zone=DR_ZONE)
        made.append((c, server))
        try:
            c.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=1, wait=900)
            took.append(time.monotonic() - began)
        except openstack.exceptions.SDKException as exc:
            failed.append(f"{target.name}: {exc}")

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, targets))
        total = time.monotonic() - started
    finally:
        def gone(item: tuple[Any, Any]) -> None:
            c, server = item
            c.compute.delete_server(server.id, ignore_missing=True)
            c.compute.wait_for_delete(server, interval=1, wait=600)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(gone, made))
    if failed:
        print(f"  script: {len(failed)} failed, e.g. {failed[0]}", flush=True)
    return Timing("script", len(targets), total, took, len(failed))


# -- govcloud ---------------------------------------------------------------------------------------

def run_govcloud(root: Path, db: str, settings: FailoverSettings) -> Timing:
    """Request (declared lost), approve, then time the activation as ``dr activate --run`` carries it out."""
    ctx = context(root, db, OPERATOR)
    operator, approver = ctx.state.users.get(OPERATOR), ctx.state.users.get(APPROVER)
    assert operator is not None and approver is not None

    def ready(tenant: str, endpoint: Any) -> None:  # the CLI's onboarding of a tenant in the DR region (a no-op once done)
        onboard.ensure_tenant_for(ctx, tenant, endpoint)

    def activation(actor: Any) -> DrActivation:
        return DrActivation(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now, actor=actor,
                            tries=ctx.settings.engine.temporary_retries + 1, settings=settings, onboard=ready)

    run = activation(operator).request("gd-prov", reason="bench: DR activation RTO", declare_lost=True)
    activation(approver).approve(run.id)
    started = time.monotonic()
    done = activation(operator).activate(run.id)
    total = time.monotonic() - started
    per_vm = [float(r["rebuild_s"]) for r in done.reports.values()]
    if done.run.failed:
        print(f"  govcloud: {len(done.run.failed)} failed, e.g. {done.run.failed[0].detail}", flush=True)
    return Timing("govcloud", len(done.run.plan.moves) + len(done.run.plan.held), total, per_vm,
                  len(done.run.failed) + len(done.run.plan.held))


# -- clean-up ---------------------------------------------------------------------------------------

def cleanup(root: Path, db: str, made: list[str], tag: str) -> None:
    ctx = context(root, db, OPERATOR)
    retired = provision.retire_all(ctx, made)  # the servers the VM rows name (sg-dr after the activation) and the lost originals
    bad = [o for o in retired if o.state != "retired"]
    if bad:
        print(f"  retire left {bad}", flush=True)
    actor = ctx.state.users.get(OPERATOR)
    assert actor is not None
    Replicator(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, clock=ctx.clock, actor=actor,
               settings=DrSettings(keep=0)).run()  # the tickets are gone: their replicas' images go in both regions
    for region in (HOME_REGION, DR_REGION):
        conn = admin(region)
        for server in conn.compute.servers(all_projects=True):
            if tag in server.name and "drhand-" in server.name:
                conn.compute.delete_server(server.id, ignore_missing=True)
        servers = [s.name for s in conn.compute.servers(all_projects=True) if f"drbench-{tag}" in s.name or f"drhand-{tag}" in s.name]
        images = [i.name for i in conn.image.images() if f"drbench-{tag}" in (i.name or "")]
        print(f"  left in {region}: {len(servers)} servers, {len(images)} images" + (f" {servers[:3]} {images[:3]}" if servers or images
                                                                                     else ""), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vms", type=int, default=48)
    parser.add_argument("--per-ticket", type=int, default=8)
    parser.add_argument("--disk-mib", type=int, default=1, help="size of each replica (the devcloud's fake hypervisor: 1-256)")
    parser.add_argument("--workers", type=int, default=16, help="creates in flight of the plain script")
    parser.add_argument("--per-cloud", type=int, default=FailoverSettings.parallel_per_cloud, help="govcloud: rebuilds in flight per cloud")
    parser.add_argument("--per-host", type=int, default=FailoverSettings.parallel_per_host, help="govcloud: rebuilds in flight per live DR host")
    args = parser.parse_args()
    if not os.environ.get("OS_CLIENT_CONFIG_FILE"):
        settings = Settings.from_env()
        os.environ["OS_CLIENT_CONFIG_FILE"] = str((settings.devcloud_dir or settings.state_dir / "devcloud") / "clouds.yaml")
    if not healthy(admin(HOME_REGION)) or not healthy(admin(DR_REGION)):
        print("refusing: a compute service is down, disabled or forced down (govcloud devcloud status)", file=sys.stderr)
        return 2
    tag = uuid.uuid4().hex[:4]
    failover = FailoverSettings(parallel_per_cloud=args.per_cloud, parallel_per_host=args.per_host)
    timings: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="govcloud-drbench-") as tmp:
        base = Path(tmp)
        root, db = data_root(base, "groups"), f"sqlite:///{base / 'state.db'}"
        onboard.sync(context(root, db, OPERATOR), sorted({t for t, _, _ in SYSTEMS}))
        made: list[str] = []
        try:
            began = time.monotonic()
            made = fleet(root, db, base, args.vms, args.per_ticket, tag)
            applied = time.monotonic() - began
            targets = replicate(root, db, made, args.disk_mib)
            print(f"seeded {len(targets)} dr VMs in {len(made)} tickets ({applied:.0f} s), replicated into {DR_REGION} "
                  f"({time.monotonic() - began - applied:.0f} s); govcloud {args.per_cloud} per cloud, {args.per_host} per host; "
                  f"script {args.workers} in flight", flush=True)
            for who in ("script", "govcloud", "script"):
                timing = run_govcloud(root, db, failover) if who == "govcloud" else run_script(targets, args.workers, tag)
                print(f"  {timing.line()}", flush=True)
                timings.append(timing)
        finally:
            cleanup(root, db, made, tag)
    print("\n".join(t.line() for t in timings))
    print(verdict(timings))
    return 0 if all(t.failed == 0 for t in timings) else 1


if __name__ == "__main__":
    raise SystemExit(main())
