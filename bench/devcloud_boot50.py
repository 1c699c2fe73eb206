"""Benchmark: boot 50 servers concurrently (≤16 creates in flight) on the devcloud, with ports.

usage: OS_CLIENT_CONFIG_FILE=<devcloud>/clouds.yaml python bench/devcloud_boot50.py [N] [IN_FLIGHT]

Needs a running devcloud (``govcloud devcloud up``). Servers spread over the three centres
(gz-main, gz-backup in gd-gz; sg-dr in gd-sg), each with a port on gov-shared. Prints the time until
all are ACTIVE, the peak PSS of the devcloud's processes (sampled every second), and ratios against
the loopback probe (one region, 3 computes: 50 ACTIVE in ≈40 s, peak PSS ≈2.4 GiB).
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openstack

from govcloud.devcloud.layout import Layout, devcloud_dir
from govcloud.devcloud.memory import total_pss_mib

CENTRES = {"gz-main": "gd-gz", "gz-backup": "gd-gz", "sg-dr": "gd-sg"}
PROBE_ACTIVE_S = 40.0
PROBE_PEAK_PSS_MIB = 2.4 * 1024


class PeakPss(threading.Thread):
    """Samples the devcloud's total PSS once a second until stopped."""

    def __init__(self, layout: Layout) -> None:
        super().__init__(daemon=True)
        self.layout, self.peak, self.idle = layout, 0.0, total_pss_mib(layout)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            self.peak = max(self.peak, total_pss_mib(self.layout))


def create(i: int, refs: dict[str, tuple[str, str, str]]) -> tuple[str, str]:
    centre = list(CENTRES)[i % len(CENTRES)]
    region = CENTRES[centre]
    image, flavor, net = refs[region]
    conn = openstack.connect(cloud="devcloud-admin", region_name=region)  # own connection per thread
    server = conn.compute.create_server(name=f"bench-{i:03d}", image_id=image, flavor_id=flavor,
                                        networks=[{"uuid": net}], availability_zone=centre)
    return region, server.id


def wait_all(ids: list[tuple[str, str]], timeout: float = 600) -> collections.Counter[str]:
    conns = {r: openstack.connect(cloud="devcloud-admin", region_name=r) for r in set(CENTRES.values())}
    deadline = time.monotonic() + timeout
    while True:
        status: collections.Counter[str] = collections.Counter()
        for region, conn in conns.items():
            status.update(s.status for s in conn.compute.servers(name="^bench-") if (region, s.id) in set(ids))
        if status["ACTIVE"] + status["ERROR"] >= len(ids) or time.monotonic() > deadline:
            return status
        time.sleep(1)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    in_flight = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    layout = Layout(devcloud_dir(os.environ))
    refs: dict[str, Any] = {}
    for region in set(CENTRES.values()):
        c = openstack.connect(cloud="devcloud-admin", region_name=region)
        found = (c.image.find_image("debian-12"), c.compute.find_flavor("gc.small"), c.network.find_network("gov-shared"))
        if None in found:
            sys.exit(f"{region}: debian-12 / gc.small / gov-shared missing: is the devcloud up (govcloud devcloud up)?")
        refs[region] = tuple(x.id for x in found if x is not None)
    sampler = PeakPss(layout)
    sampler.start()
    t0 = time.monotonic()
    with ThreadPoolExecutor(in_flight) as pool:
        ids = list(pool.map(lambda i: create(i, refs), range(n)))
    t_posts = time.monotonic() - t0
    status = wait_all(ids)
    t_active = time.monotonic() - t0
    sampler.stopped.set()
    sampler.join()
    t1 = time.monotonic()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(lambda rid: openstack.connect(cloud="devcloud-admin", region_name=rid[0]).compute.delete_server(rid[1]), ids))
    for region in set(CENTRES.values()):
        conn = openstack.connect(cloud="devcloud-admin", region_name=region)
        for s in list(conn.compute.servers(name="^bench-")):
            conn.compute.wait_for_delete(s, wait=300)
    t_delete = time.monotonic() - t1
    print(f"{n} servers, {in_flight} creates in flight: POSTs done {t_posts:.1f} s, all settled {t_active:.1f} s {dict(status)}")
    print(f"devcloud PSS: idle {sampler.idle:.0f} MiB, peak {sampler.peak:.0f} MiB; delete {t_delete:.1f} s")
    print(f"ratio vs probe (1 region, 3 computes): time {t_active / PROBE_ACTIVE_S:.2f}x, peak PSS {sampler.peak / PROBE_PEAK_PSS_MIB:.2f}x")


if __name__ == "__main__":
    main()
