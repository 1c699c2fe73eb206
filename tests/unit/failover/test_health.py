"""Centre health: nova's verdict, confirmed before it gets worse, held before it gets better."""

from __future__ import annotations

from govcloud.failover.health import Health, HealthPolicy, Probe, ServiceState, step

POLICY = HealthPolicy(worsen_checks=2, recover_after=30)
ALL_UP = Probe(True, (ServiceState("h1", True), ServiceState("h2", True)))
ONE_DOWN = Probe(True, (ServiceState("h1", True), ServiceState("h2", False)))
ALL_DOWN = Probe(True, (ServiceState("h1", False), ServiceState("h2", False)))
NO_API = Probe(False, (), "connection refused")


def test_verdicts() -> None:
    assert [p.verdict() for p in (ALL_UP, ONE_DOWN, ALL_DOWN, NO_API)] == ["healthy", "degraded", "down", "down"]
    disabled = Probe(True, (ServiceState("h1", True), ServiceState("h2", False, enabled=False)))
    assert disabled.verdict() == "healthy" and disabled.up == 1 and len(disabled.counted) == 1
    assert Probe(True, ()).verdict() == "down"


def test_first_probe_is_taken_as_is() -> None:
    assert step(None, ALL_DOWN, 100.0, POLICY) == Health("down", 100.0)


def test_worse_needs_confirmations_and_one_good_probe_cancels() -> None:
    h = step(None, ALL_UP, 0, POLICY)
    h = step(h, ALL_DOWN, 5, POLICY)
    assert (h.state, h.pending, h.pending_checks) == ("healthy", "down", 1)
    blip = step(h, ALL_UP, 10, POLICY)
    assert blip == Health("healthy", 0)
    h = step(step(blip, ALL_DOWN, 15, POLICY), ALL_DOWN, 20, POLICY)
    assert h == Health("down", 20)


def test_better_must_hold_for_the_recovery_time() -> None:
    h = Health("down", 0)
    h = step(h, ALL_UP, 100, POLICY)
    assert (h.state, h.pending) == ("down", "healthy")
    h = step(h, ALL_UP, 120, POLICY)
    assert h.state == "down"
    flap = step(h, ALL_DOWN, 125, POLICY)
    assert flap == Health("down", 0)
    h = step(step(flap, ALL_UP, 130, POLICY), ALL_UP, 160, POLICY)
    assert h == Health("healthy", 160)


def test_a_changing_bad_verdict_restarts_the_count() -> None:
    h = step(Health("healthy", 0), ONE_DOWN, 5, POLICY)
    h = step(h, ALL_DOWN, 10, POLICY)
    assert (h.state, h.pending, h.pending_checks) == ("healthy", "down", 1)
    assert step(h, ALL_DOWN, 15, POLICY).state == "down"
