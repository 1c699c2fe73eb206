"""What the plain progress display prints for the engine's events (logs, CI: not a terminal)."""

from __future__ import annotations

from govcloud.cli.progress import _line


def test_configuration_shows_tasks_and_failing_hosts_only() -> None:
    assert _line("ansible", {"event": "playbook_on_task_start", "task": "baseline : admin users", "host": None}) == "  task baseline : admin users"
    assert _line("ansible", {"event": "runner_on_ok", "task": "baseline : admin users", "host": "vm-1"}) is None
    unreachable = _line("ansible", {"event": "runner_on_unreachable", "host": "vm-2", "reason": "Gathering Facts: timed out"})
    assert unreachable is not None and unreachable.split() == ["vm-2", "unreachable:", "Gathering", "Facts:", "timed", "out"]
    failed = _line("ansible", {"event": "runner_on_failed", "host": "vm-3", "reason": "nginx : validate site: bad"})
    assert failed is not None and failed.strip().startswith("vm-3") and "failed: nginx : validate site: bad" in failed
    assert _line("ansible", {"event": "runner_on_failed", "host": "vm-3", "ignored": True}) is None  # ignore_errors: not a failure
