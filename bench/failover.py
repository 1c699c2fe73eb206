"""Benchmark: the recovery plan (``planner.failover.plan_recovery``) for a centre full of VMs.

usage: python bench/failover.py [--sizes 2000,20000] [--hosts 400] [--rounds 5]

For each size N, N VMs of 1 vCPU / 2 GB / 20 GB run in gz-main (half ``ha``, a third ``dr``, the rest
``none``) and gz-main is down; gz-backup has ``--hosts`` compute hosts up and the sample topology's
capacity, half of it already allocated — so the larger size runs out of room part-way and the plan
holds the rest, as a real full-centre loss would. Timed: the pure plan alone (the live host listing
is nova's time), median of ``--rounds``, beside a baseline that does the least any plan must: sort
the VMs into their order and hand each a host round-robin. Prints both, their ratio and the ratio
between sizes (linear: 10x the VMs is about 10x the time).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from govcloud.model.resources import Resources
from govcloud.model.state import load_state
from govcloud.model.topology import Cloud
from govcloud.planner.failover import Facts, Placed, plan_recovery
from govcloud.settings import DataPaths

ROOT = Path(__file__).resolve().parents[1]
SIZE = Resources(instances=1, vcpus=1, ram_mb=2048, disk_gb=20)


def world(n: int, hosts: int, cloud: Cloud) -> tuple[list[Placed], Facts]:
    kinds = ("ha", "dr", "none", "ha", "dr", "ha")
    vms = [Placed(ticket=f"tk-{i // 4:06d}", idx=i % 4 + 1, name=f"t{i % 997:03d}-sys-tk-{i // 4:06d}-{i % 4 + 1}", tenant=f"t{i % 997:03d}",
                  cloud=cloud.id, centre="gz-main", zone="gz-main", protection=kinds[i % len(kinds)], size=SIZE, home="gz-main",
                  server_id=f"s{i}") for i in range(n)]
    backup = cloud.centre("gz-backup")
    assert backup is not None
    half = backup.allocatable()
    allocated = Resources(0, half.vcpus // 2, half.ram_mb // 2, half.disk_gb // 2)
    facts = Facts(health={(cloud.id, "gz-main"): "down"}, allocated={(cloud.id, "gz-backup"): allocated},
                  hosts_up={(cloud.id, "gz-backup"): tuple(f"gz-backup-{h}" for h in range(1, hosts + 1))})
    return vms, facts


def baseline(vms: list[Placed], hosts: tuple[str, ...]) -> list[tuple[Placed, str]]:
    ordered = sorted((v for v in vms if v.protection != "none"), key=lambda v: (v.protection != "dr", v.ticket, v.idx))
    return [(v, hosts[n % len(hosts)]) for n, v in enumerate(ordered)]


def median_time(call: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000")
    parser.add_argument("--hosts", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cloud = load_state(DataPaths(root=ROOT)).topology.cloud("gd-prov")
    assert cloud is not None
    print(f"{'VMs in gz-main':>15} {'moves':>7} {'held':>7} {'plan s':>8} {'baseline s':>11} {'plan/baseline':>14}")
    previous: tuple[int, float, float] | None = None
    for n in (int(x) for x in args.sizes.split(",")):
        vms, facts = world(n, args.hosts, cloud)
        plan = plan_recovery(cloud, "gz-main", vms, facts)
        hosts = facts.hosts_up[(cloud.id, "gz-backup")]
        took = median_time(lambda v=vms, f=facts: plan_recovery(cloud, "gz-main", v, f), args.rounds)  # type: ignore[misc]
        base = median_time(lambda v=vms, h=hosts: baseline(v, h), args.rounds)  # type: ignore[misc]
        print(f"{n:>15} {len(plan.moves):>7} {len(plan.held):>7} {took:>8.3f} {base:>11.4f} {took / base:>14.1f}")
        if previous is not None:
            size, plan_s, base_s = previous
            print(f"{'':>15} x{n / size:.0f} VMs: plan x{took / plan_s:.1f}, baseline x{base / base_s:.1f}")
        previous = (n, took, base)


if __name__ == "__main__":
    main()
