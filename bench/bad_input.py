"""Benchmark: the bad-input generator's figures (issue 11), as the README quotes them.

usage: python bench/bad_input.py

Runs every case of ``tests/support/bad_input.py`` (over 1,000 broken copies of the sample data) through
``govcloud validate -o json`` in this process, as ``tests/unit/test_bad_input.py`` does, and prints:
the number of cases, the share that exit 2, the share whose problem names the broken file with a line
(the rest are the listed line-less refusals: non-regular files, unusable names, oversize, empty),
internal errors, the slowest case, and how much the whole run grew this process's peak RSS (an upper
bound for any one case; ``tracemalloc`` would slow deep-nesting cases a hundredfold). Then the worst
cases once more in a fresh ``python3 cli.py`` each: wall time and that process's own peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.bad_input import cases, fresh_copy, parse_memo, run_case, run_cli_process

WORST = ["tenants.yaml:laughs12", "tenants.yaml:fan", "inventory/topology.yaml:merge-fan", "tenants.yaml:oversize",
         "tenants.yaml:huge-int", "inventory/topology.yaml:deep-flow", "tenants.yaml:dev-zero", "quotas/policy.yaml:fifo"]


def in_process() -> None:
    all_cases = cases()
    exit2 = with_line = internal = failed = 0
    slowest = (0.0, "")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, parse_memo():
        for case in all_cases:
            result = run_case(case, Path(tmp) / "data")
            exit2 += result.code == 2
            with_line += result.has_line
            internal += "internal error" in result.stderr
            failed += result.failure() is not None
            slowest = max(slowest, (result.seconds, case.name))
    total = time.monotonic() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    n = len(all_cases)
    print(f"cases               {n}")
    print(f"exit 2              {exit2 / n:.1%}")
    print(f"file and line       {with_line / n:.1%} (the rest: a stated reason, no line can exist)")
    print(f"internal errors     {internal}")
    print(f"rule broken         {failed}")
    print(f"slowest case        {slowest[0]:.2f} s ({slowest[1]})")
    print(f"peak RSS growth     {grown:.1f} MB over all cases in one process")
    print(f"whole run           {total:.1f} s")


def end_to_end() -> None:
    by_name = {c.name: c for c in cases()}
    print("\nfresh `python3 cli.py validate` per worst case: exit, seconds, peak RSS of that process")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        for name in WORST:
            case = by_name[name]
            fresh_copy(root)
            case.write(root)
            code, seconds, peak, _ = run_cli_process(root, case.args)
            print(f"  {name:40} exit {code}  {seconds:5.2f} s  {peak / 2**20:6.1f} MB")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    in_process()
    end_to_end()


if __name__ == "__main__":
    main()
