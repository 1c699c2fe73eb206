"""Benchmark: a 100-VM ``apply`` on the devcloud, side by side with what a user could write by hand.

usage: python bench/provision.py [N] [--serial-count M]

Three runs of N servers (gc.small, tenant gd-gat, centre gz-main, network gov-shared), each
starting from an empty project and cleaned up afterwards:

1. govcloud: submit → approve → ``apply`` (timed: the apply — onboarding check, find-or-create,
   wait for ACTIVE, ledger commit, audit), concurrency ``EngineSettings.concurrency_per_cloud``;
2. hand-written: a ThreadPoolExecutor over plain openstacksdk ``create_server`` +
   ``wait_for_server`` at the same concurrency, in the same project — the best a user could write;
3. serial: the same calls one after another (M servers, default N; the rate is extrapolated to N).

Prints the wall times and the ratios. Target: govcloud ≥ 0.95× the hand-written script's speed.
Needs a running devcloud (``govcloud devcloud up``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openstack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from govcloud.engine import provision, tickets
from govcloud.settings import Settings
from tests.support.tickets import engine, write_ticket

TENANT, SYSTEM, REQUESTER = "gd-gat", "oa", "sunkai"


def clouds_yaml() -> None:
    if not os.environ.get("OS_CLIENT_CONFIG_FILE"):
        settings = Settings.from_env()
        os.environ["OS_CLIENT_CONFIG_FILE"] = str((settings.devcloud_dir or settings.state_dir / "devcloud") / "clouds.yaml")


def project_conn() -> Any:
    admin = openstack.connect(cloud="devcloud-admin", region_name="gd-gz")
    project = admin.identity.find_project(TENANT)
    if project is None:
        sys.exit(f"tenant {TENANT} is not onboarded: run `govcloud --as yunwei-he tenants sync {TENANT}` first")
    return admin.connect_as_project({"id": project.id, "name": TENANT, "domain_id": "default"})


def cleanup(conn: Any, prefix: str) -> None:
    doomed = [s for s in conn.compute.servers() if s.name.startswith(prefix)]
    for server in doomed:
        conn.compute.delete_server(server, ignore_missing=True)
    for server in doomed:
        conn.compute.wait_for_delete(server, interval=1, wait=300)


def run_govcloud(n: int, workdir: Path) -> float:
    db = f"sqlite:///{workdir / 'bench.db'}"
    ticket_id, path = write_ticket(workdir, tenant=TENANT, system=SYSTEM, requester=REQUESTER, protection="none",
                                   vms=[{"name": "bench", "count": n, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])
    tickets.submit(engine(db, REQUESTER), [path])
    tickets.approve(engine(db, "shenpi-chen"), ticket_id)
    operator = engine(db, "yunwei-he")
    started = time.perf_counter()
    (outcome,) = provision.apply(operator, [ticket_id], configure=False)  # the fake hypervisor's VMs run no OS
    elapsed = time.perf_counter() - started
    assert outcome.state == "active", outcome
    provision.retire(operator, ticket_id)
    return elapsed


def boot(conn: Any, ids: dict[str, str], name: str) -> None:
    server = conn.compute.create_server(name=name, flavor_id=ids["flavor"], image_id=ids["image"],
                                        networks=[{"uuid": ids["network"]}], availability_zone="gz-main")
    conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=1, wait=300)


def run_by_hand(conn: Any, n: int, workers: int, prefix: str) -> float:
    ids = {"flavor": conn.compute.find_flavor("gc.small").id, "image": conn.image.find_image("debian-12").id,
           "network": conn.network.find_network("gov-shared").id}
    started = time.perf_counter()
    if workers == 1:
        for i in range(n):
            boot(conn, ids, f"{prefix}{i}")
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda i: boot(conn, ids, f"{prefix}{i}"), range(n)))
    elapsed = time.perf_counter() - started
    cleanup(conn, prefix)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100)
    parser.add_argument("--serial-count", type=int, default=0, help="servers in the serial run (default: n)")
    args = parser.parse_args()
    clouds_yaml()
    workers = Settings.from_env().engine.concurrency_per_cloud
    conn = project_conn()
    run_by_hand(conn, 5, workers, "bench-warmup-")  # token caches, image and flavor lookups: paid before measuring
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_govcloud(args.n, Path(tmp))
    hand = run_by_hand(conn, args.n, workers, "bench-hand-")
    serial_n = args.serial_count or args.n
    serial = run_by_hand(conn, serial_n, 1, "bench-serial-") * args.n / serial_n
    print(f"servers: {args.n}, concurrency {workers} per cloud (gz-main, 2 fake hosts)")
    print(f"govcloud apply          {ours:7.1f} s   {args.n / ours:5.2f} servers/s")
    print(f"hand-written concurrent {hand:7.1f} s   {args.n / hand:5.2f} servers/s")
    note = f" (extrapolated from {serial_n})" if serial_n != args.n else ""
    print(f"serial loop             {serial:7.1f} s   {args.n / serial:5.2f} servers/s{note}")
    print(f"govcloud speed vs hand-written: {hand / ours:.2f}x   (target ≥ 0.95x)")
    print(f"govcloud speed vs serial:       {serial / ours:.2f}x")


if __name__ == "__main__":
    main()
