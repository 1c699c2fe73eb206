"""``common/retry.py``: temporary errors retried with a growing, jittered wait that never undercuts the
delay the error asked for; the last one becomes permanent; permanent errors are not retried."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from govcloud.common.retry import backoff, retry
from govcloud.errors import PermanentError, TemporaryError


def flaky(errors: list[Exception], result: str = "done") -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return calls, call


def test_temporary_errors_are_retried_with_doubling_jittered_waits() -> None:
    waits: list[float] = []
    events: list[dict[str, object]] = []
    calls, call = flaky([TemporaryError("503", delay=2.0), TemporaryError("503", delay=2.0)])
    assert retry("list", call, tries=3, sleep=waits.append, on_retry=events.append,
                 uniform=lambda low, high: high) == "done"
    assert len(calls) == 3
    assert waits == [3.0, 6.0]  # 2 then 4 seconds, each plus the largest jitter (half of itself)
    assert [e["attempt"] for e in events] == [1, 2] and events[0]["doing"] == "list"


def test_the_last_temporary_error_becomes_permanent() -> None:
    calls, call = flaky([TemporaryError("timeout", delay=0)] * 3)
    with pytest.raises(PermanentError, match="list: still failing after 3 tries: timeout"):
        retry("list", call, tries=3, sleep=lambda _s: None)
    assert len(calls) == 3


def test_a_permanent_error_is_not_retried() -> None:
    calls, call = flaky([PermanentError("HTTP 400")])
    with pytest.raises(PermanentError, match="HTTP 400"):
        retry("create", call, tries=5, sleep=lambda _s: None)
    assert len(calls) == 1


def test_backoff_is_capped_but_never_shorter_than_the_delay_asked_for() -> None:
    none = lambda low, high: low  # noqa: E731 - no jitter
    assert [backoff(5.0, n, uniform=none) for n in range(6)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert backoff(90.0, 3, uniform=none) == 90.0  # a Retry-After beyond the cap is honoured
    spread = {backoff(4.0, 1) for _ in range(50)}
    assert len(spread) > 1 and all(8.0 <= w <= 12.0 for w in spread)
