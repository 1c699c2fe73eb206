"""One listing per interval for every thread waiting on a server of one endpoint.

An evacuation wave has dozens of moves in flight, each waiting for its server to settle on the target
host. Asked one by one (a GET per server per second), that is dozens of requests a second to nova-api —
on a control plane already busy rebuilding those very servers — where one admin listing answers all of
them. ``ServerWatch`` is that one listing, shared: the first waiter that finds no fresh answer lists,
the others wait for it, and listings are at least ``interval`` apart.

After the first listing only servers nova changed are listed (``changes-since``). The bound is taken
from nova's own clock (the newest ``updated`` seen, less ``margin``) so a skewed local clock cannot
hide a change. A server that no listing has shown (unchanged since before the first one) is fetched
once on its own. Nothing here knows openstacksdk: the driver passes the two calls in.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ServerWatch"]


class ServerWatch:
    """Shared, paced answers to "how is server X now?" for the threads of one driver."""

    def __init__(self, list_since: Callable[[str | None], list[Any]], get_one: Callable[[str], Any], *, interval: float = 0.5,
                 margin: float = 30.0, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._list_since = list_since
        """Servers changed since the ISO time (None: every server), as raw objects with ``id`` and ``updated_at``."""
        self._get_one = get_one
        self._interval = interval
        self._margin = datetime.timedelta(seconds=margin)
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._seen: dict[str, Any] = {}
        self._since: str | None = None
        self._newest: datetime.datetime | None = None
        self._listed_at: float | None = None
        """When (``clock``) the newest finished listing was started: what it says is at least that fresh."""
        self._listing = False
        self.listings = 0
        """How many listings were made (for tests and benchmarks)."""

    def fresh(self, server_id: str, *, after: float) -> Any:
        """The server as a listing started after ``after`` (a ``clock`` time) saw it — or, if no listing
        shows it, as one GET made now. Blocks until such a listing has finished."""
        while True:
            with self._cond:
                while self._listing and not self._fresh_enough(after):
                    self._cond.wait()
                if self._fresh_enough(after):
                    if server_id in self._seen:
                        return self._seen[server_id]
                    break
                self._listing = True
            self._list()
        raw = self._get_one(server_id)
        with self._cond:
            return self._seen.setdefault(server_id, raw)  # a listing meanwhile may have seen a newer state

    def _fresh_enough(self, after: float) -> bool:
        return self._listed_at is not None and self._listed_at >= after

    def _list(self) -> None:
        """List (this thread is the lister), at least ``interval`` after the previous listing started."""
        try:
            if self._listed_at is not None:
                self._sleep(max(0.0, self._listed_at + self._interval - self._clock()))
            started = self._clock()
            found = self._list_since(self._since)
        except BaseException:
            with self._cond:
                self._listing = False
                self._cond.notify_all()
            raise
        with self._cond:
            for raw in found:
                self._seen[raw.id] = raw
                self._newest = max(filter(None, (self._newest, _moment(getattr(raw, "updated_at", None)))), default=None)
            if self._newest is not None:
                self._since = (self._newest - self._margin).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._listed_at = started
            self._listing = False
            self.listings += 1
            self._cond.notify_all()


def _moment(text: str | None) -> datetime.datetime | None:
    """nova's ``updated`` (``2026-12-05T11:08:45Z``) as an aware time; None when absent or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
