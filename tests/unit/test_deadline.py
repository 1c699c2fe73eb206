"""``common/deadline.py``: one call per key in flight, one deadline per round, a hanging call not asked
again until it returns, failures handed back as answers."""

from __future__ import annotations

import threading
import time

import pytest

from govcloud.common.deadline import Deadline, InFlight


def test_a_hanging_call_is_late_does_not_delay_the_others_and_is_not_asked_again() -> None:
    calls = InFlight[str, str]("test")
    release = threading.Event()
    started: list[str] = []

    def slow() -> str:
        started.append("slow")
        release.wait(10)
        return "slow done"

    begun = time.monotonic()
    answers = calls.round({"slow": slow, "fast": lambda: "fast done", "broken": lambda: 1 / 0}, 0.3)
    assert time.monotonic() - begun < 2
    assert answers["fast"].value == "fast done" and answers["slow"].late and answers["slow"].value is None
    assert isinstance(answers["broken"].error, ZeroDivisionError)
    again = calls.round({"slow": slow}, 0.1)
    assert again["slow"].late and started == ["slow"] and calls.busy("slow")
    release.set()
    deadline = time.monotonic() + 5
    while calls.busy("slow") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls.round({"slow": slow}, 5)["slow"].value == "slow done" and started == ["slow", "slow"]
    calls.close()
    with pytest.raises(RuntimeError, match="closed"):
        calls.ask("fast", lambda: "x")


def test_one_deadline_shared_by_two_kinds_of_calls() -> None:
    clock = [100.0]
    deadline = Deadline(3, clock=lambda: clock[0])
    assert deadline.left() == 3
    clock[0] = 102.5
    assert deadline.left() == 0.5
    clock[0] = 200
    assert deadline.left() == 0


def test_a_stop_request_ends_the_wait_for_a_hanging_call_long_before_the_deadline() -> None:
    """The daemon's stop: a reconcile pass waiting on a nova that does not answer must not hold ``systemctl stop``
    (or the next leader) for the pass's whole timeout (CI: a daemon still in a 120 s pass at its 60 s stop)."""
    calls = InFlight[str, str]("test")
    release, stop = threading.Event(), threading.Event()
    threading.Timer(0.2, stop.set).start()
    begun = time.monotonic()
    answers = calls.round({"hung": lambda: "late" if release.wait(10) else "never", "fast": lambda: "fast done"},
                          Deadline(30, stop=stop))
    assert time.monotonic() - begun < 2
    assert answers["hung"].late and answers["fast"].value == "fast done"
    release.set()
