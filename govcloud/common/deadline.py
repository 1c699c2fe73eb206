"""Calls to the outside under a shared deadline, one call per key in flight.

The daemon asks many endpoints the same question on every pass (reconcile: each OpenStack endpoint's
servers, each Terraform workspace's plan; health: each endpoint's compute services). One slow or
broken endpoint must never delay the verdict on the others, and a call that hangs must not be asked
again (and again) while it still hangs. So each call runs in its own thread; a pass waits for all of
them until one deadline, takes what answered and counts the rest as *late*; a late call goes on and
is not started again for its key until it has returned (its answer is then dropped: the next pass asks
afresh). Used by ``engine/reconcile.py`` and ``failover/watch.py``; no govcloud import, no driver: in the
layer below both (``govcloud.common``).

Threads are daemon threads: a process that stops does not wait for a hung API. A call that starts an
outside process (terraform) keeps its own timeout, so nothing it holds outlives that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Deadline:
    """One point in (monotonic) time that several waits share; ``stop`` (the daemon's stop request) ends
    it early, so that a stopping daemon does not sit out a pass's whole timeout on a slow API."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic, stop: threading.Event | None = None) -> None:
        self.seconds = seconds
        self.clock = clock
        self.at = clock() + seconds
        self.stop = stop

    def left(self) -> float:
        if self.stop is not None and self.stop.is_set():
            return 0.0
        return max(0.0, self.at - self.clock())


@dataclass(frozen=True)
class Answer(Generic[V]):
    """What one call gave by the deadline: a value, the exception it raised, or nothing yet (``late``)."""

    value: V | None = None
    error: BaseException | None = None
    late: bool = False


class InFlight(Generic[K, V]):
    """The calls of one kind (``name`` names their threads), at most one per key at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._running: dict[K, Future[V]] = {}
        self._closed = False

    def ask(self, key: K, call: Callable[[], V]) -> Future[V]:
        """The call for ``key`` still in flight, or ``call`` started now in its own thread."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: closed")
            running = self._running.get(key)
            if running is not None and not running.done():
                return running
            future: Future[V] = Future()
            future.set_running_or_notify_cancel()
            self._running[key] = future
        threading.Thread(target=_run, args=(future, call), name=f"{self.name}:{key}", daemon=True).start()
        return future

    def busy(self, key: K) -> bool:
        """Whether a call for ``key`` is still in flight (e.g. late from an earlier pass)."""
        with self._lock:
            running = self._running.get(key)
        return running is not None and not running.done()

    def round(self, calls: Mapping[K, Callable[[], V]], timeout: float | Deadline) -> dict[K, Answer[V]]:
        """Ask every key (those in flight are not asked again) and wait for them until one deadline."""
        deadline = timeout if isinstance(timeout, Deadline) else Deadline(timeout)
        return collect({key: self.ask(key, call) for key, call in calls.items()}, deadline)

    def close(self) -> None:
        """Ask nothing more; calls in flight end on their own (their threads are daemon threads)."""
        with self._lock:
            self._closed = True


def collect(futures: Mapping[K, Future[V]], deadline: Deadline) -> dict[K, Answer[V]]:
    """Each future's answer, waiting for all of them together until ``deadline``."""
    answers: dict[K, Answer[V]] = {}
    for key, future in futures.items():
        try:
            answers[key] = Answer(value=_result(future, deadline))
        except FutureTimeout:
            answers[key] = Answer(late=True)
        except Exception as exc:  # noqa: BLE001 - the caller decides which failures are answers and which are bugs
            answers[key] = Answer(error=exc)
    return answers


STOP_POLL = 0.5
"""Seconds between looks at a deadline's ``stop`` while a future is waited for."""


def _result(future: Future[V], deadline: Deadline) -> V:
    """The future's value by the deadline (FutureTimeout when it is over or stopped first)."""
    if deadline.stop is None:
        return future.result(timeout=deadline.left())
    while True:
        left = deadline.left()
        try:
            return future.result(timeout=min(left, STOP_POLL))
        except FutureTimeout:
            if deadline.left() <= 0:
                raise


def _run(future: Future[V], call: Callable[[], V]) -> None:
    try:
        result = call()
    except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future, never lost in a thread
        future.set_exception(exc)
    else:
        future.set_result(result)
