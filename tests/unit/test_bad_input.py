"""The bad-input generator kept as a test (issue 11): over 1,000 broken copies of the sample data.

Each case (``tests/support/bad_input.py``) breaks one thing in one real file — tickets, tenants, users,
quotas, topology — with a tag, an ambiguous number, an impossible date, stray bytes, a bomb, deep
nesting, a FIFO, a device, a symlink loop, an unusable file name, an oversize file… and runs
``govcloud validate`` through ``govcloud.cli.main`` in this process. Every case must:

- exit 2, with no "internal error" and no traceback;
- name the broken file, at the line the generator expects (or, for the few that cannot have a line,
  with one of the reasons listed in ``NO_LINE``: non-regular files, unusable names, oversize, empty);
- finish in under 5 s; and the whole run must not grow this process by 200 MB.

Untouched files are parsed once (``parse_memo``, ``loading.parse`` being a pure function); the broken
file is always parsed for real. A few of the worst cases also run end to end in a fresh ``python3
cli.py`` whose own peak memory is measured, and a sample runs with no memo at all.
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from tests.support.bad_input import NO_LINE, Case, Result, cases, fresh_copy, parse_memo, run_case, run_cli_process

CASES = cases()
LIMIT_SECONDS = 5.0
LIMIT_BYTES = 200 * 2**20


def test_the_generator_is_deterministic_and_large() -> None:
    assert len(CASES) >= 1000
    assert [c.name for c in cases()] == [c.name for c in CASES]
    kinds = {c.file.split("/")[0] for c in CASES}
    assert {"tickets", "tenants.yaml", "users.yaml", "quotas", "inventory"} <= kinds


def _rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def test_every_case_exits_2_with_file_and_line(tmp_path: Path) -> None:
    before = _rss_bytes()
    results: list[Result] = []
    with parse_memo():
        for case in CASES:
            results.append(run_case(case, tmp_path / "data"))
    failures = [f"{r.case.name}: {r.failure()}" for r in results if r.failure()]
    assert failures == [], f"{len(failures)} of {len(results)} cases:\n" + "\n".join(failures[:30])
    slow = [(r.case.name, round(r.seconds, 2)) for r in results if r.seconds >= LIMIT_SECONDS]
    assert slow == []
    assert _rss_bytes() - before < LIMIT_BYTES
    without_line = {p["message"] for r in results if not r.has_line for p in r.problems if p["file"] == r.case.file}
    assert without_line <= set(NO_LINE)  # every line-less refusal is one of the stated reasons


def test_a_sample_without_the_parse_memo(tmp_path: Path) -> None:
    """The memo only saves time: the same verdicts with every file parsed every time."""
    sample = CASES[::80]
    assert [r.failure() for r in (run_case(c, tmp_path / "data") for c in sample)] == [None] * len(sample)


WORST = ["tenants.yaml:laughs12", "tenants.yaml:fan", "inventory/topology.yaml:merge-fan", "tenants.yaml:oversize",
         "tenants.yaml:huge-int", "inventory/topology.yaml:deep-flow", "tenants.yaml:dev-zero", "quotas/policy.yaml:fifo",
         "tickets:non-utf8-name", "long-path"]


@pytest.mark.parametrize("name", WORST)
def test_worst_cases_end_to_end(name: str, tmp_path: Path) -> None:
    """``python3 cli.py validate``, as an admin runs it: exit 2, the file named, under 5 s and 200 MB."""
    case: Case = next(c for c in CASES if c.name == name)
    root = tmp_path / "data"
    fresh_copy(root)
    case.write(root)
    code, seconds, peak, err = run_cli_process(root, case.args)
    assert code == 2, err
    assert "internal error" not in err and "Traceback" not in err
    assert f"error: {case.file}" in err
    assert seconds < LIMIT_SECONDS
    assert 0 < peak < LIMIT_BYTES
