"""Retrying temporary errors: exponential backoff with jitter that honours ``TemporaryError.delay``.

Both the engine (provisioning, resize, onboarding) and failover (evacuations) call clouds that sometimes
answer "not now" (timeouts, 503s, rate limits): the driver turns that into a ``TemporaryError`` with the
delay the cloud asked for. Here the wait before try ``n`` (0-based) is ``delay * 2**n``, capped at
``cap`` seconds but never shorter than the ``delay`` the error asked for, plus up to ``jitter`` of itself
at random, so that many workers failing together do not all come back at the same instant. After the
last try the error becomes permanent (the caller stops and reports); a ``PermanentError`` or any other
exception goes straight up, untried again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from govcloud.errors import PermanentError, TemporaryError

T = TypeVar("T")

CAP = 60.0
"""Longest backoff in seconds (unless the error itself asks for longer)."""
JITTER = 0.5
"""Up to this fraction of the backoff is added at random."""


def backoff(delay: float, attempt: int, *, cap: float = CAP, jitter: float = JITTER,
            uniform: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait after failed try ``attempt`` (0-based) of an error that asked for ``delay``."""
    base = max(delay, min(delay * 2.0**attempt, cap))
    return base + uniform(0.0, base * jitter)


def retry(doing: str, call: Callable[[], T], *, tries: int, on_retry: Callable[[dict[str, Any]], None] = lambda _event: None,
          sleep: Callable[[float], None] = time.sleep, uniform: Callable[[float, float], float] = random.uniform) -> T:
    """``call()``, tried up to ``tries`` times while it raises TemporaryError.

    ``on_retry`` hears each retry (``doing``, ``error``, ``attempt``) before the wait; the last
    TemporaryError becomes a PermanentError naming ``doing`` and the number of tries.
    """
    tries = max(1, tries)
    for attempt in range(tries):
        try:
            return call()
        except TemporaryError as exc:
            if attempt == tries - 1:
                raise PermanentError(f"{doing}: still failing after {tries} tries: {exc}") from exc
            on_retry({"doing": doing, "error": str(exc), "attempt": attempt + 1})
            sleep(backoff(exc.delay, attempt, uniform=uniform))
    raise AssertionError("unreachable")
