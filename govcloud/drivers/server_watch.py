"""Listings of one endpoint's servers shared by every thread waiting on one of them.

A run has dozens of creates, deletes or evacuations in flight, each waiting for its server to reach a
state. Asked one by one (a GET per server per second) that is dozens of requests a second to nova-api —
on a control plane already busy with those very servers — where one admin listing answers all of them.

``SharedListing`` is that one listing, shared: a waiter reads the newest listing that is fresh enough
for it; one that finds none fetches one, and the others wait for that one instead of making their own.
A listing that fails raises to the thread that made it; the others go on waiting and one of them lists
again. The driver's waits pace themselves: each looks at the ticks of one clock (``next_tick``: the
multiples of the poll interval) and asks for a listing made at that tick or later, so all the waits of
a tick share one listing made right then — about one listing a poll interval however many threads wait,
and none of them reading one up to a whole interval old, as waits each sleeping an interval from their
own start did (issue 16: that staleness cost each delete ~0.5 s more than a script's GET a second).

``ServerChanges`` is the listing the evacuation waits read: server details, after the first listing
only of the servers nova changed (``changes-since``). The bound is taken from nova's own clock (the
newest ``updated`` seen, less ``margin``) so a skewed local clock cannot hide a change. A server no
listing has shown (unchanged since before the first one) is fetched once on its own. Nothing here knows
openstacksdk: the driver passes its calls in.
"""

from __future__ import annotations

import datetime
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["ServerChanges", "SharedListing", "next_tick", "nova_time"]

T = TypeVar("T")


def next_tick(after: float, interval: float) -> float:
    """The first multiple of ``interval`` later than ``after`` (``time.monotonic`` seconds): when a wait
    polling every ``interval`` looks next. Every thread's waits look at the same instants, so one listing
    made at a tick answers all of them fresh."""
    return (math.floor(after / interval) + 1) * interval


class SharedListing(Generic[T]):
    """What ``fetch`` returns, fetched once for every thread that needs one at least as fresh."""

    def __init__(self, fetch: Callable[[], T], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._cond = threading.Condition()
        self._value: T | None = None
        self._at = -math.inf
        """When (``clock``) the newest listing was asked for (-inf: none yet): it is at least that fresh."""
        self._busy = False
        self.fetches = 0
        """Listings made (tests and benchmarks read it)."""

    def since(self, earliest: float) -> T:
        """A listing asked for at ``earliest`` or later: the newest one if it is, else a new one (made by
        this thread, or by another that is making it already)."""
        with self._cond:
            while self._at < earliest and self._busy:
                self._cond.wait()
            if self._at >= earliest and self._value is not None:
                return self._value
            self._busy = True
        asked = self._clock()
        try:
            value = self._fetch()
        except BaseException:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            raise
        with self._cond:
            self._busy = False
            self.fetches += 1
            if asked >= self._at:
                self._value, self._at = value, asked
            self._cond.notify_all()
        return value


class ServerChanges:
    """Server details as the endpoint's newest shared listing shows them, listed only where changed."""

    def __init__(self, list_since: Callable[[str | None], list[Any]], get_one: Callable[[str], Any], *, margin: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._list_since = list_since
        """Servers changed since the ISO time (None: every server), as raw objects with ``id`` and ``updated_at``."""
        self._get_one = get_one
        self._margin = datetime.timedelta(seconds=margin)
        self._lock = threading.Lock()
        self._seen: dict[str, Any] = {}
        self._since: str | None = None
        self._newest: datetime.datetime | None = None
        self.listing = SharedListing(self._fetch, clock=clock)

    def fresh(self, server_id: str, *, after: float) -> Any:
        """The server as a listing asked for at ``after`` or later saw it — or, if no listing shows it, as
        one GET made now."""
        seen = self.listing.since(after)
        if server_id in seen:
            return seen[server_id]
        raw = self._get_one(server_id)
        with self._lock:
            return self._seen.setdefault(server_id, raw)  # a listing meanwhile may have seen a newer state

    def _fetch(self) -> Mapping[str, Any]:
        """One listing (one thread at a time: ``SharedListing``), merged into what earlier ones saw."""
        found = self._list_since(self._since)
        with self._lock:
            for raw in found:
                self._seen[raw.id] = raw
                self._newest = max(filter(None, (self._newest, nova_time(getattr(raw, "updated_at", None)))), default=None)
            if self._newest is not None:
                self._since = (self._newest - self._margin).strftime("%Y-%m-%dT%H:%M:%SZ")
            return dict(self._seen)


def nova_time(text: str | None) -> datetime.datetime | None:
    """A time as nova gives it — a server's ``updated`` (``2026-12-05T11:08:45Z``), a service's ``updated_at``
    (UTC with no zone) — as an aware time; None when absent or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
