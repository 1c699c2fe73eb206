"""``bench/failover_live.py`` (issue 13): the ratio and the table it prints, without a devcloud."""

from __future__ import annotations

import pytest

from bench.failover_live import Timing, ratio, report


def test_the_ratio_is_govcloud_over_the_floor_and_refuses_a_zero_floor() -> None:
    assert ratio(30.0, 20.0) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="positive"):
        ratio(30.0, 0.0)


def test_the_table_pairs_each_round_and_says_whether_the_target_is_met() -> None:
    timings = [Timing("govcloud", 20, 36.0, 2.5, detection=31.2, per_vm=[5.0, 7.0, 9.0]),
               Timing("script", 20, 20.0, 0.4, per_vm=[4.0, 6.0], failed=1),
               Timing("govcloud", 20, 28.0, 2.0, detection=30.0, per_vm=[5.0]),
               Timing("script", 20, 20.0, 0.3, per_vm=[4.0])]
    lines = report(timings)
    assert len(lines) == 1 + 4 + 2
    assert lines[1].split()[:4] == ["1", "govcloud", "20", "0"] and "31.2" in lines[1] and "36.0" in lines[1] and "7.0" in lines[1]
    assert lines[2].split()[:5] == ["1", "script", "20", "1", "-"]
    assert lines[3].split()[:2] == ["2", "govcloud"]
    assert lines[5] == "round 1: govcloud 36.0 s vs script 20.0 s: 1.80x the floor (misses the target ≤ 1.5x)"
    assert lines[6] == "round 2: govcloud 28.0 s vs script 20.0 s: 1.40x the floor (meets the target ≤ 1.5x)"
