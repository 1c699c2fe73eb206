"""``bench/dr_activation.py`` (issue 14): the ratio it prints, without a devcloud."""

from __future__ import annotations

import pytest

from bench.dr_activation import Timing, verdict


def test_govcloud_is_compared_with_the_mean_of_the_script_runs_around_it() -> None:
    timings = [Timing("script", 48, 96.5, [30.0]), Timing("govcloud", 48, 109.5, [8.9]), Timing("script", 48, 80.3, [23.2])]
    assert verdict(timings) == ("DR activation of 48 VMs: govcloud 109.5 s vs script 88.4 s (mean of 96.5, 80.3): 1.24x "
                                "(meets the target ≤ 1.5x)")
    slow = [Timing("script", 4, 6.0), Timing("govcloud", 4, 12.0)]
    assert verdict(slow).endswith("2.00x (misses the target ≤ 1.5x)")


def test_a_script_time_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        verdict([Timing("script", 4, 0.0), Timing("govcloud", 4, 3.0)])
