"""Benchmark: a day of tickets — ``govcloud apply`` and ``ticket retire`` — against a plain openstacksdk
script creating and deleting the same servers, run alternately in the same run.

usage: python bench/provision.py [--vms 288] [--tickets 25] [--rounds 2] [--workers 16]

The fleet: ``--vms`` gc.small servers in ``--tickets`` create tickets of four tenants (gd-zf, gd-gat,
gd-wjw, gd-rst) on gd-prov; every third ticket is ``protection: ha`` (its VMs alternate between gz-main
and gz-backup, one soft-anti-affinity server group per centre), the others are pinned to gz-main or
gz-backup. Each round runs, in alternating order:

1. govcloud: submit → approve (not timed) → ``provision.apply`` of all (timed: onboarding check, find or
   create, wait for ACTIVE, ledger, audit — every ticket's servers in one work queue), then
   ``provision.retire_all`` (timed);
2. the script: ``--workers`` threads of ``create_server`` + ``wait_for_server`` over the same servers
   (same projects, names with another prefix, zones, flavor, image, network, server groups), then
   ``delete_server`` and a poll each second until nova answers 404 (timed apart; the end govcloud's retire
   waits for — openstacksdk's ``wait_for_delete`` returns earlier, at status DELETED).

Prints each run, the servers/s, and the ratio script time / govcloud time (≥ 1.0: govcloud as fast or
faster; the target of issue 16 on the 288-VM day). Needs a running devcloud; run it under
``flock -s /tmp/devcloud.lock``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openstack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from govcloud.engine import onboard, provision, tickets
from govcloud.engine.plans import placements
from govcloud.settings import Settings
from tests.support.tickets import engine, write_ticket

TENANTS = (("gd-zf", "zhangwei", ("portal", "dcdb")), ("gd-gat", "sunkai", ("hukou", "jwzh", "jtgl", "oa")),
           ("gd-wjw", "wumin", ("qmjk", "ggws", "yyfw")), ("gd-rst", "caochujun", ("shbx", "jyfw")))
APPROVER, OPERATOR = "shenpi-chen", "yunwei-he"


@dataclass(frozen=True)
class Spec:
    """One server as both contenders create it."""

    tenant: str
    name: str
    zone: str
    group: str | None


def clouds_yaml() -> None:
    if not os.environ.get("OS_CLIENT_CONFIG_FILE"):
        settings = Settings.from_env()
        os.environ["OS_CLIENT_CONFIG_FILE"] = str((settings.devcloud_dir or settings.state_dir / "devcloud") / "clouds.yaml")


def fleet(vms: int, count: int, workdir: Path) -> list[tuple[str, str, Path]]:
    """``count`` ticket files holding ``vms`` VMs in all: (ticket id, requester, path)."""
    made = []
    run = uuid.uuid4().hex[:4]
    for i in range(count):
        tenant, requester, systems = TENANTS[i % len(TENANTS)]
        size = vms // count + (1 if i < vms % count else 0)
        ha = i % 3 == 2
        centre = "any" if ha else ("gz-main", "gz-backup")[i % 2]
        ticket_id, path = write_ticket(workdir, tenant=tenant, system=systems[i % len(systems)], requester=requester, roles=(),
                                       ticket_id=f"bench-{run}-{i:02d}", protection="ha" if ha else "none",
                                       vms=[{"name": f"b{i}", "count": size, "flavor": "gc.small", "cloud": "gd-prov", "centre": centre}])
        made.append((ticket_id, requester, path))
    return made


def run_govcloud(vms: int, count: int, workdir: Path) -> tuple[float, float, list[Spec]]:
    """(apply seconds, retire seconds, the servers made)."""
    db = f"sqlite:///{workdir / 'bench.db'}"
    made = fleet(vms, count, workdir)
    for _, requester, path in made:
        tickets.submit(engine(db, requester), [path])
    approver = engine(db, APPROVER)
    for ticket_id, _, _ in made:
        if tickets.show(approver, ticket_id).state == "submitted":
            tickets.approve(approver, ticket_id)
    operator = engine(db, OPERATOR)
    started = time.perf_counter()
    outcomes = provision.apply(operator, configure=False)  # the fake hypervisor's VMs run no OS
    applied = time.perf_counter() - started
    bad = [o for o in outcomes if o.state != "active"]
    assert not bad, bad
    specs = [Spec(row.tenant, vm.name, operator.endpoints.of(vm.cloud, vm.centre).zone or vm.zone, vm.server_group)
             for row in (tickets.show(operator, t) for t, _, _ in made) for vm in placements(row)]
    started = time.perf_counter()
    retired = provision.retire_all(operator, [t for t, _, _ in made])
    retiring = time.perf_counter() - started
    assert all(o.state == "retired" for o in retired), retired
    return applied, retiring, specs


class Script:
    """What a user could write by hand: a thread pool over plain openstacksdk calls."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.admin = openstack.connect(cloud="devcloud-admin", region_name="gd-gz")
        self.conns: dict[str, Any] = {}
        self.ids: dict[str, dict[str, str]] = {}
        self.groups: dict[tuple[str, str], str] = {}

    def conn(self, tenant: str) -> Any:
        if tenant not in self.conns:
            project = self.admin.identity.find_project(tenant)
            conn = self.admin.connect_as_project({"id": project.id, "name": tenant, "domain_id": "default"})
            self.conns[tenant] = conn
            self.ids[tenant] = {"flavor": conn.compute.find_flavor("gc.small").id, "image": conn.image.find_image("debian-12").id,
                                "network": conn.network.find_network("gov-shared").id}
        return self.conns[tenant]

    def prepare(self, specs: list[Spec], prefix: str) -> None:
        """Connections, ids and server groups: looked up before the clock starts, as govcloud's are cached."""
        for spec in specs:
            conn = self.conn(spec.tenant)
            if spec.group and (spec.tenant, spec.group) not in self.groups:
                group = conn.compute.create_server_group(name=f"{prefix}{spec.group}", policy="soft-anti-affinity")
                self.groups[(spec.tenant, spec.group)] = group.id

    def boot(self, spec: Spec, prefix: str) -> Any:
        conn, ids = self.conn(spec.tenant), self.ids[spec.tenant]
        extra = {"scheduler_hints": {"group": self.groups[(spec.tenant, spec.group)]}} if spec.group else {}
        server = conn.compute.create_server(name=prefix + spec.name, flavor_id=ids["flavor"], image_id=ids["image"],
                                            networks=[{"uuid": ids["network"]}], availability_zone=spec.zone, **extra)
        return conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=1, wait=600)

    def delete(self, spec: Spec, server: Any) -> None:
        """Delete, then poll once a second until nova answers 404 — the end govcloud's retire waits for.

        openstacksdk's ``wait_for_delete`` would return at status DELETED, while nova still lists the server;
        a script stopping there would be timed to an earlier finish line than govcloud.
        """
        conn = self.conn(spec.tenant)
        conn.compute.delete_server(server, ignore_missing=True)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                conn.compute.get_server(server.id)
            except openstack.exceptions.NotFoundException:
                return
            time.sleep(1)
        raise TimeoutError(f"server {server.id} still there after 600 s")

    def run(self, specs: list[Spec]) -> tuple[float, float]:
        prefix = f"hand-{uuid.uuid4().hex[:4]}-"
        self.prepare(specs, prefix)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            started = time.perf_counter()
            servers = list(pool.map(lambda s: self.boot(s, prefix), specs))
            created = time.perf_counter() - started
            started = time.perf_counter()
            list(pool.map(self.delete, specs, servers))
            deleted = time.perf_counter() - started
        for (tenant, _), group in self.groups.items():
            self.conn(tenant).compute.delete_server_group(group, ignore_missing=True)
        self.groups.clear()
        return created, deleted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=288)
    parser.add_argument("--tickets", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=16, help="threads of the plain script")
    args = parser.parse_args()
    clouds_yaml()
    for tenant, _, _ in TENANTS:  # projects, roles, quotas, security groups made before the clock starts (the checks stay timed)
        onboard.sync(engine("sqlite://", OPERATOR), [tenant])
    script = Script(args.workers)
    engine_settings = Settings.from_env().engine
    print(f"{args.vms} servers in {args.tickets} tickets; govcloud: {engine_settings.concurrency_per_cloud} per endpoint, "
          f"{engine_settings.concurrency_per_host} per host; script: {args.workers} workers", flush=True)
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    specs: list[Spec] = []
    for round_ in range(args.rounds):
        order = ("govcloud", "script") if round_ % 2 == 0 else ("script", "govcloud")
        for who in order:
            if who == "govcloud":
                with tempfile.TemporaryDirectory() as tmp:
                    applied, retired, specs = run_govcloud(args.vms, args.tickets, Path(tmp))
                ours.append((applied, retired))
                print(f"round {round_ + 1} govcloud: apply {applied:6.1f} s ({args.vms / applied:.2f}/s), "
                      f"retire {retired:6.1f} s ({args.vms / retired:.2f}/s)", flush=True)
            else:
                if not specs:  # the script goes first: it needs the fleet's servers (and onboarded projects)
                    with tempfile.TemporaryDirectory() as tmp:
                        _, _, specs = run_govcloud(args.vms, args.tickets, Path(tmp))
                created, deleted = script.run(specs)
                theirs.append((created, deleted))
                print(f"round {round_ + 1} script:   create {created:6.1f} s ({args.vms / created:.2f}/s), "
                      f"delete {deleted:6.1f} s ({args.vms / deleted:.2f}/s)", flush=True)
    apply_s, retire_s = sum(a for a, _ in ours), sum(r for _, r in ours)
    create_s, delete_s = sum(c for c, _ in theirs), sum(d for _, d in theirs)
    print(f"create: govcloud {args.vms * len(ours) / apply_s:.2f} servers/s, script {args.vms * len(theirs) / create_s:.2f} servers/s, "
          f"ratio {create_s / len(theirs) / (apply_s / len(ours)):.2f}x (target ≥ 1.0x)")
    print(f"delete: govcloud {args.vms * len(ours) / retire_s:.2f} servers/s, script {args.vms * len(theirs) / delete_s:.2f} servers/s, "
          f"ratio {delete_s / len(theirs) / (retire_s / len(ours)):.2f}x")


if __name__ == "__main__":
    main()
