"""``bench/exporter.py``'s RSS figures (issue 7's "RSS < 200 MB"): the measured process's own peak."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HELD = 300 * 1024 * 1024


def test_the_peak_is_the_measured_processs_own_not_its_parents() -> None:
    """The bench measures in a process it starts from the one that built the store; Linux's ``ru_maxrss``
    keeps the parent's resident pages across ``exec``, so a peak read from it says the builder's size."""
    held = b"\x01" * HELD  # resident in this process (every page written) while the child starts
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 >= HELD
    done = subprocess.run([sys.executable, "-c", "from bench.exporter import rss_mb; print(*rss_mb())"], cwd=REPO,
                          capture_output=True, text=True, check=True, timeout=60)
    del held
    current, peak = map(float, done.stdout.split())
    assert 0 < current <= peak < HELD / 1024 / 1024 / 2, done.stdout
