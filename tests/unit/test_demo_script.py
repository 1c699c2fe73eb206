"""``scripts/demo`` decides whether to start the devcloud from ``govcloud devcloud status -o json``.

The shared devcloud is never touched: ``govcloud`` on the PATH is a stand-in that records its arguments and
answers ``devcloud status`` as told (nothing at all before the first ``up``, an error, an empty list, ...).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKE = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
if [ "$*" = "devcloud status -o json" ]; then
  printf '%s' "$FAKE_STATUS"
  exit "$FAKE_STATUS_RC"
fi
"""
RUNNING = json.dumps([{"name": "keystone", "running": True}, {"name": "gz-main-1", "running": True}])
ONE_DOWN = json.dumps([{"name": "keystone", "running": True}, {"name": "gz-main-1", "running": False}])


@pytest.mark.parametrize(("status", "rc", "starts"), [
    ("", 0, True),          # the first run on a new machine: nothing on stdout (the traceback of issue 16)
    ("", 1, True),          # not installed: an error on stderr
    ("error: not JSON", 0, True),
    ("[]", 0, True),        # no service known: not up (all([]) was true)
    (ONE_DOWN, 0, True),
    (RUNNING, 0, False),
], ids=["empty", "error", "garbage", "no-services", "one-down", "running"])
def test_demo_starts_the_devcloud_exactly_when_it_is_not_running(tmp_path: Path, status: str, rc: int, starts: bool) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "govcloud").write_text(FAKE, encoding="utf-8")
    (bin_dir / "govcloud").chmod(0o755)
    log = tmp_path / "calls"
    env = os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(log), "FAKE_STATUS": status,
                        "FAKE_STATUS_RC": str(rc), "GOVCLOUD_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(["bash", str(REPO / "scripts" / "demo")], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr
    calls = log.read_text(encoding="utf-8").splitlines()
    assert calls[0] == "devcloud status -o json"
    assert ("devcloud up" in calls) is starts, calls
    assert calls[-1] == "audit verify"  # and then the whole demo ran
