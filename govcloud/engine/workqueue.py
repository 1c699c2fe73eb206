"""One work queue for every server create and delete of an ``apply``, across all its tickets.

``apply`` used to provision tickets one after another, each with its own pool of at most
``concurrency_per_cloud`` creates per endpoint: a 25-ticket day spent most of its time waiting for the
last, slowest VMs of each ticket before the next ticket started. Now every ticket of the run puts its
VMs into this one queue and waits for them; the queue starts a job only when both its bounds have room:

- per endpoint (``EngineSettings.concurrency_per_cloud``): nova's API, conductor and neutron of one
  region serve every create at once;
- per compute host (``EngineSettings.concurrency_per_host``): nova picks the host, not govcloud, so the
  bound is kept per availability zone as ``concurrency_per_host`` × the zone's hosts that are up (asked
  once per endpoint from nova's compute services; unknown — the call failed, or no host listed — leaves
  only the endpoint bound).

A job waiting for room holds no thread, so a full zone never starves another one (the work of each
(endpoint, zone) is started first come, first served, and ``urgent`` work goes to the front: the next
member of an anti-affinity group, whose chain is the longest path of the run). Called by
openstack_path.py; provision.apply makes one queue per run and shares it between tickets.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from govcloud.drivers.base import ComputeService, Endpoint
from govcloud.errors import GovcloudError
from govcloud.settings import EngineSettings

T = TypeVar("T")
Key = tuple[Endpoint, str]
"""Where a job's work lands: endpoint and availability zone."""

MAX_THREADS = 256
"""Upper bound of the queue's threads; only jobs that have room run, so it is never the limit in practice."""


class WorkQueue:
    """Bounded concurrent work per endpoint and per zone (its hosts), shared by every ticket of one run."""

    def __init__(self, settings: EngineSettings, services: Callable[[Endpoint], list[ComputeService]]) -> None:
        self.per_endpoint = max(1, settings.concurrency_per_cloud)
        self.per_host = max(1, settings.concurrency_per_host)
        self._services = services
        self._zone_limits: dict[Endpoint, dict[str, int]] = {}
        self._pending: dict[Key, deque[Callable[[], None]]] = {}
        self._running_endpoint: dict[Endpoint, int] = {}
        self._running_zone: dict[Key, int] = {}
        self.peak: dict[Key, int] = {}
        """Most jobs that ran at once per (endpoint, zone) (tests and the bench read it)."""
        self.peak_endpoint: dict[Endpoint, int] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="govcloud-work")

    def zone_limit(self, endpoint: Endpoint, zone: str) -> int | None:
        """``concurrency_per_host`` × the zone's hosts that are up and enabled; None when unknown."""
        with self._lock:
            known = self._zone_limits.get(endpoint)
        if known is None:
            try:
                services = self._services(endpoint)
            except GovcloudError:  # not allowed or not reachable: the endpoint bound alone holds
                services = []
            hosts: dict[str, int] = {}
            for service in services:
                if service.zone and service.state == "up" and service.status == "enabled" and not service.forced_down:
                    hosts[service.zone] = hosts.get(service.zone, 0) + 1
            known = {z: n * self.per_host for z, n in hosts.items()}
            with self._lock:
                self._zone_limits.setdefault(endpoint, known)
        return known.get(zone)

    def submit(self, endpoint: Endpoint, zone: str, work: Callable[[], T], *, urgent: bool = False) -> Future[T]:
        """Run ``work`` once its endpoint and zone have room; its result (or exception) in the future."""
        self.zone_limit(endpoint, zone)  # learnt before the lock is taken (a call to nova)
        future: Future[T] = Future()
        key = (endpoint, zone)

        def job() -> None:
            try:
                if future.set_running_or_notify_cancel():
                    future.set_result(work())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)
            finally:
                with self._lock:
                    self._running_endpoint[endpoint] -= 1
                    self._running_zone[key] -= 1
                    self._start()

        with self._lock:
            queue = self._pending.setdefault(key, deque())
            (queue.appendleft if urgent else queue.append)(job)
            self._start()
        return future

    def _start(self) -> None:
        """Start every pending job that has room (the caller holds the lock)."""
        for (endpoint, zone), queue in self._pending.items():
            zone_cap = self._zone_limits.get(endpoint, {}).get(zone)
            while queue and self._running_endpoint.get(endpoint, 0) < self.per_endpoint and (
                    zone_cap is None or self._running_zone.get((endpoint, zone), 0) < zone_cap):
                job = queue.popleft()
                self._running_endpoint[endpoint] = self._running_endpoint.get(endpoint, 0) + 1
                self._running_zone[(endpoint, zone)] = self._running_zone.get((endpoint, zone), 0) + 1
                self.peak[(endpoint, zone)] = max(self.peak.get((endpoint, zone), 0), self._running_zone[(endpoint, zone)])
                self.peak_endpoint[endpoint] = max(self.peak_endpoint.get(endpoint, 0), self._running_endpoint[endpoint])
                self._pool.submit(job)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def results(futures: list[Future[T]]) -> list[T]:
    """Every future's result in order once all are done; the first exception is raised after all ended
    (as ``ThreadPoolExecutor.map`` inside its ``with`` block: nothing of a ticket still runs when its
    rollback starts)."""
    for future in futures:
        future.exception()  # waits
    return [future.result() for future in futures]


@contextmanager
def work_queue(settings: EngineSettings, services: Callable[[Endpoint], list[ComputeService]]) -> Iterator[WorkQueue]:
    queue = WorkQueue(settings, services)
    try:
        yield queue
    finally:
        queue.close()
