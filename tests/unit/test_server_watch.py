"""The listings evacuation waits share (``drivers/server_watch.py``)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from govcloud.drivers.server_watch import ServerChanges, SharedListing, next_tick


class Nova:
    """A listing that counts itself and the ``changes-since`` it was given."""

    def __init__(self, servers: dict[str, str], *, delay: float = 0.0) -> None:
        self.servers = {sid: SimpleNamespace(id=sid, status=status, updated_at="2026-12-05T11:00:00Z") for sid, status in servers.items()}
        self.since: list[str | None] = []
        self.gets: list[str] = []
        self.delay = delay
        self.lock = threading.Lock()

    def list_since(self, since: str | None) -> list[Any]:
        with self.lock:
            self.since.append(since)
        time.sleep(self.delay)
        return [s for s in self.servers.values() if since is None or s.updated_at >= since]

    def get_one(self, sid: str) -> Any:
        self.gets.append(sid)
        return self.servers[sid]


def test_forty_waiters_share_one_listing_and_no_server_is_fetched_alone() -> None:
    nova = Nova({f"s-{n}": "REBUILD" for n in range(40)}, delay=0.05)
    watch = ServerChanges(nova.list_since, nova.get_one)
    after = time.monotonic()
    found: dict[str, str] = {}

    def wait(sid: str) -> None:
        found[sid] = watch.fresh(sid, after=after).status

    threads = [threading.Thread(target=wait, args=(f"s-{n}",)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert found == {f"s-{n}": "REBUILD" for n in range(40)}
    assert watch.listing.fetches == 1 and nova.gets == []


def test_an_answer_is_never_older_than_the_question() -> None:
    nova = Nova({"s-1": "REBUILD"})
    clock = [100.0]
    watch = ServerChanges(nova.list_since, nova.get_one, clock=lambda: clock[0])
    assert watch.fresh("s-1", after=clock[0]).status == "REBUILD"
    clock[0] += 0.1
    nova.servers["s-1"] = SimpleNamespace(id="s-1", status="ACTIVE", updated_at="2026-12-05T11:00:07Z")
    assert watch.fresh("s-1", after=99.0).status == "REBUILD"  # asked before that listing was: its answer will do
    assert watch.fresh("s-1", after=clock[0]).status == "ACTIVE"  # asked after it: a new listing
    assert watch.listing.fetches == 2


def test_after_the_first_listing_only_changes_are_listed_bounded_by_nova_s_clock() -> None:
    nova = Nova({"s-1": "REBUILD", "s-2": "ACTIVE"})
    nova.servers["s-2"].updated_at = "2026-12-05T10:00:00Z"
    watch = ServerChanges(nova.list_since, nova.get_one, margin=30.0)
    watch.fresh("s-1", after=time.monotonic())
    watch.fresh("s-2", after=time.monotonic())
    assert nova.since == [None, "2026-12-05T10:59:30Z"]  # the newest `updated` nova gave, less the margin; not our clock
    assert nova.gets == []  # s-2 unchanged since the first listing: as that one saw it


def test_a_server_no_listing_shows_is_fetched_once_on_its_own() -> None:
    nova = Nova({"s-1": "ACTIVE"})
    watch = ServerChanges(nova.list_since, nova.get_one)
    watch.fresh("s-1", after=time.monotonic())
    nova.servers["s-9"] = SimpleNamespace(id="s-9", status="ACTIVE", updated_at="2026-12-05T09:00:00Z")  # unchanged for long
    assert watch.fresh("s-9", after=time.monotonic()).status == "ACTIVE"
    assert watch.fresh("s-9", after=time.monotonic()).status == "ACTIVE"
    assert nova.gets == ["s-9"]


def test_a_failed_listing_fails_its_lister_and_the_next_waiter_lists_again() -> None:
    calls = [0]

    def flaky() -> frozenset[str]:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("nova-api 503")
        return frozenset({"s-1"})

    listing = SharedListing(flaky)
    with pytest.raises(RuntimeError, match="503"):
        listing.since(time.monotonic())
    assert listing.since(time.monotonic()) == {"s-1"} and calls[0] == 2 and listing.fetches == 1


@pytest.mark.parametrize(("after", "interval", "tick"), [(0.0, 1.0, 1.0), (0.99, 1.0, 1.0), (1.0, 1.0, 2.0), (7.3, 0.5, 7.5),
                                                         (1234.75, 0.5, 1235.0)])
def test_the_next_tick_is_the_first_multiple_of_the_interval_strictly_later(after: float, interval: float, tick: float) -> None:
    assert next_tick(after, interval) == pytest.approx(tick)


def test_waits_started_apart_within_one_interval_share_the_listing_of_their_tick() -> None:
    """Sixteen waits starting 0.01 s apart, each looking at its next tick and asking for a listing made then or
    later: one listing for all of them (waits each sleeping an interval from their own start, reading one at
    most an interval old, made several and read some almost an interval stale — issue 16)."""
    listing = SharedListing(lambda: time.sleep(0.02) or frozenset())
    interval, made_at = 0.2, []
    start = next_tick(time.monotonic(), interval) + 0.01  # just after a tick: all sixteen start before the next

    def wait(i: int) -> None:
        time.sleep(max(0.0, start + i * 0.005 - time.monotonic()))
        look = next_tick(time.monotonic(), interval)
        time.sleep(max(0.0, look - time.monotonic()))
        listing.since(look)
        made_at.append(look)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made_at)) == 1 and listing.fetches == 1
