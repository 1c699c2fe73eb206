"""``bench/cli_speed.py`` (issue 16): its pieces, on commands cheap enough for the unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import cli_speed


def test_a_command_records_wall_and_child_cpu(tmp_path: Path) -> None:
    spin = cli_speed.Command("spin", "", [sys.executable, "-c", "sum(range(3_000_000))"])
    spin.run(tmp_path / "state", tmp_path)
    assert spin.walls[0] >= spin.cpus[0] > 0.01


def test_a_failing_command_stops_the_bench(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="exited 3"):
        cli_speed.Command("bad", "", [sys.executable, "-c", "raise SystemExit(3)"]).run(tmp_path / "state", tmp_path)


def test_no_cache_runs_get_a_fresh_state_directory_each_time(tmp_path: Path) -> None:
    probe = "import os, pathlib; p = pathlib.Path(os.environ['GOVCLOUD_STATE_DIR']) / 'seen'; assert not p.exists(); p.write_text('x')"
    cold = cli_speed.Command("cold", "", [sys.executable, "-c", probe], fresh_state=True)
    cold.run(tmp_path / "state", tmp_path)
    cold.run(tmp_path / "state", tmp_path)
    assert len(cold.walls) == 2


def test_cached_runs_share_a_state_directory_that_exists(tmp_path: Path) -> None:
    """govcloud keeps its cache of validated states only in a state directory that exists (a read on a new
    machine creates nothing): without it every "cached" run validated everything again."""
    probe = "import os, pathlib, sys; p = pathlib.Path(os.environ['GOVCLOUD_STATE_DIR']); assert p.is_dir(); (p / sys.argv[1]).write_text('x')"
    warm = [cli_speed.Command("warm", "", [sys.executable, "-c", probe, name]) for name in ("a", "b")]
    for command in warm:
        command.run(tmp_path / "state", tmp_path)
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["a", "b"]


def test_the_openstack_cli_is_found_where_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "openstack"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("OPENSTACK_CLI", str(fake))
    assert cli_speed.find_openstack(None) == str(fake)
    assert cli_speed.find_openstack(str(fake)) == str(fake)


def test_the_report_gives_ratios_and_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    def measured(label: str, province: str, wall: float, cpu: float) -> cli_speed.Command:
        command = cli_speed.Command(label, province, [])
        command.walls, command.cpus = [wall], [cpu]
        return command

    cli_speed.report([measured("openstack --help", "", 1.6, 1.0), measured("govcloud --help", "", 0.1, 0.05),
                      measured("govcloud version", "", 0.4, 0.1), measured("validate (no cache)", "sample", 0.2, 0.2),
                      measured("validate (no cache)", "5000", 4.0, 2.0)], 1)
    out = capsys.readouterr().out
    assert "target govcloud --help <= 1/8 of openstack --help: met (1/16.0)" in out
    assert "target govcloud version <= 1/8 of openstack --help: NOT met (1/4.0)" in out
    assert "by wall NOT met (4.00 s), by CPU met (2.00 s" in out
    assert "20.00" in out  # 5,000 tenants ÷ sample
