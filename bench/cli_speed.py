"""Benchmark: the CLI's start-up and reading commands at province scale, as ratios, in one run.

usage: python bench/cli_speed.py [--repeat R] [--openstack PATH] [--tenants 1000,5000] [--keep DIR]

What is run, each in a fresh process, round-robin (every command once per round, R rounds) so that a
busy machine slows all of them alike:

- ``openstack --help`` (python-openstackclient: ``--openstack``, ``$OPENSTACK_CLI``, ``openstack`` on the
  PATH or in the devcloud's venv) — the reference the issue measured against;
- ``govcloud --help`` and ``govcloud version``;
- for the repository's sample (65 tenants) and for provinces of 1,000 and 5,000 tenants made by
  ``bench/province_gen.py``: ``validate`` with no cache (a fresh state directory: everything parsed and
  checked), ``validate`` and ``topology show`` with the cache of validated states filled (the files read
  and hashed, nothing parsed), ``tenants list -o json``, and two tables of a row per tenant (or tenant ×
  cloud): ``tenants list`` and ``quota show`` (as an operator, over a store that does not exist — read
  as an empty one, which is migrated in memory — and over an empty store at head, an operator's usual
  case). Tables are written to a
  pipe here (stdout is /dev/null), which takes the same writer as a terminal's tables of more than
  ``output.FAST_ROWS`` rows.

Printed per command: median wall and CPU time (the child's user + system), the wall time as a ratio to
``openstack --help`` and to the same command on the sample. Targets (issue 16): ``--help`` and
``version`` ≤ 1/8 of ``openstack --help``; ``validate`` at 5,000 tenants < 3 s; every read < 1 s once
the data has been read.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import province_gen
from govcloud.store.db import Store

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, str(REPO / "cli.py")]
OPERATOR = "yunwei-he"
"""An operator of the sample's users.yaml (which the generated provinces copy): ``quota show`` lists every tenant."""
NO_STORE = Path(tempfile.gettempdir()) / "govcloud-cli-speed-no-store.db"
"""A store that does not exist: ``quota show`` reads it without creating it (every quota at 0 used)."""


def find_openstack(given: str | None) -> str | None:
    """The openstack CLI to compare with, or None."""
    devcloud = Path(os.environ.get("GOVCLOUD_DEVCLOUD_DIR") or Path("~/.local/state/govcloud/devcloud").expanduser())
    for candidate in (given, os.environ.get("OPENSTACK_CLI"), shutil.which("openstack"), str(devcloud / "venv/bin/openstack")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class Command:
    """One command line and its measurements."""

    label: str
    province: str
    argv: list[str]
    fresh_state: bool = False
    """Run with an empty state directory each time (no cache of validated states)."""
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)

    def run(self, state: Path, scratch: Path) -> None:
        where = Path(tempfile.mkdtemp(dir=scratch)) if self.fresh_state else state
        where.mkdir(parents=True, exist_ok=True)  # govcloud keeps its cache of validated states only in an existing one
        env = {**os.environ, "GOVCLOUD_STATE_DIR": str(where)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(self.argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(self.argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")
        self.walls.append(wall)
        self.cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if self.fresh_state:
            shutil.rmtree(where)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)


def commands(openstack: str | None, provinces: dict[str, Path], store: Path) -> list[Command]:
    found = [Command("openstack --help", "", [openstack, "--help"])] if openstack else []
    found += [Command("govcloud --help", "", [*CLI, "--help"]), Command("govcloud version", "", [*CLI, "version"])]
    for name, root in provinces.items():
        base = [*CLI, "--root", str(root)]
        found += [Command("validate (no cache)", name, [*base, "validate"], fresh_state=True),
                  Command("validate (cached)", name, [*base, "validate"]),
                  Command("topology show (cached)", name, [*base, "topology", "show"]),
                  Command("tenants list -o json (cached)", name, [*base, "tenants", "list", "-o", "json"]),
                  Command("tenants list (cached)", name, [*base, "tenants", "list"]),
                  Command("quota show (cached)", name, [*base, "--db", str(NO_STORE), "--as", OPERATOR, "quota", "show"]),
                  Command("quota show (store at head)", name, [*base, "--db", str(store), "--as", OPERATOR, "quota", "show"])]
    return found


def report(found: list[Command], repeat: int) -> None:
    reference = next((c for c in found if c.label == "openstack --help"), None)
    sample = {c.label: c for c in found if c.province == "sample"}
    print(f"median of {repeat} runs each, round-robin; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"  {'command':<30} {'province':<9} {'wall s':>7} {'CPU s':>6} {'/ openstack --help':>19} {'/ sample':>9}")
    for c in found:
        vs_os = f"{c.wall / reference.wall:.3f}" if reference else "-"
        vs_sample = f"{c.wall / sample[c.label].wall:.2f}" if c.province and c.label in sample else "-"
        print(f"  {c.label:<30} {c.province:<9} {c.wall:7.3f} {c.cpu:6.3f} {vs_os:>19} {vs_sample:>9}")
    if reference is not None:
        for label in ("govcloud --help", "govcloud version"):
            c = next(x for x in found if x.label == label)
            ratio = c.wall / reference.wall
            print(f"target {label} <= 1/8 of openstack --help: {'met' if ratio <= 1 / 8 else 'NOT met'} (1/{1 / ratio:.1f})")
    else:
        print("no openstack CLI found (--openstack PATH, $OPENSTACK_CLI or `pip install python-openstackclient`): no ratios")
    big = [c for c in found if c.province.startswith("5")]
    for c in big:
        limit = 3.0 if c.label.startswith("validate (no cache)") else 1.0
        print(f"target {c.label} at {c.province} tenants < {limit:g} s: by wall {'met' if c.wall < limit else 'NOT met'} "
              f"({c.wall:.2f} s), by CPU {'met' if c.cpu < limit else 'NOT met'} ({c.cpu:.2f} s: the wall time on an idle machine)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--openstack", help="the openstack CLI (default: $OPENSTACK_CLI, PATH, the devcloud's venv)")
    parser.add_argument("--tenants", default="1000,5000", help="sizes of the generated provinces (comma-separated)")
    parser.add_argument("--keep", type=Path, help="generate the provinces here and keep them (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="govcloud-cli-speed-") as tmp:
        scratch = Path(tmp)
        home = args.keep or scratch
        provinces = {"sample": REPO}
        for size in (int(x) for x in args.tenants.split(",") if x):
            where = home / f"province-{size}"
            if not (where / "tenants.yaml").exists():
                started = time.perf_counter()
                province_gen.generate(where, size)
                print(f"generated {size} tenants in {where} ({time.perf_counter() - started:.1f} s, "
                      f"tenants.yaml {(where / 'tenants.yaml').stat().st_size / 1e6:.1f} MB)")
            provinces[f"{size}"] = where
        state = scratch / "state"
        store = scratch / "store.db"
        Store.open(f"sqlite:///{store}")  # the schema at head, no rows: what is read is the data, not a migration
        found = commands(find_openstack(args.openstack), provinces, store)
        for c in found:  # warm: imports in the page cache, the cache of validated states filled
            c.run(state, scratch)
            c.walls.clear()
            c.cpus.clear()
        for _ in range(args.repeat):
            for c in found:
                c.run(state, scratch)
        report(found, args.repeat)


if __name__ == "__main__":
    main()
