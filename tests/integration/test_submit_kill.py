"""``ticket submit`` of 30 files killed with SIGKILL at a random point leaves all of them or none.

The real CLI runs in a subprocess (``python3 cli.py ticket submit``) against SQLite and PostgreSQL. Half
the rounds kill it after a random delay within one whole run's time; the other half kill it the moment
the first ticket of the call is visible in the store — the worst moment for a call that stored ticket
by ticket. Either no ticket of the call is stored (and no audit record of it), or all 30 are, each
auto-approved with its quota reserved.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govcloud.store import Store
from govcloud.store import tickets as rows
from tests.support.tickets import REPO, open_store, unique_id, write_ticket

pytestmark = pytest.mark.integration

FILES = 30
ROUNDS = 6


def _files(directory: Path, prefix: str, call: int) -> list[Path]:
    """30 small tickets of gd-zf's system dcdb (protection none: the auto-approval rule takes each), each
    a request of its own (VM names differ), so that none is refused as a duplicate."""
    directory.mkdir()
    return [write_ticket(directory, tenant="gd-zf", system="dcdb", requester="zhangwei", ticket_id=f"{prefix}-{i:02d}", roles=(),
                         expires="2027-06-30", vms=[{"name": f"c{call}vm{i}", "count": 1, "flavor": "gc.small", "cloud": "gd-prov"}])[1]
            for i in range(FILES)]


def _submit(store_url: str, files: list[Path], state_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GOVCLOUD_STATE_DIR": str(state_dir)}
    env.pop("GOVCLOUD_USER", None)
    return subprocess.Popen([sys.executable, str(REPO / "cli.py"), "--root", str(REPO), "--db", store_url, "--as", "zhangwei",
                             "ticket", "submit", *map(str, files)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _of_call(store: Store, prefix: str) -> list[rows.TicketRow]:
    with store.transaction() as conn:
        return [r for r in rows.listing(conn) if r.id.startswith(prefix)]


def _kill_when_visible(store: Store, prefix: str, process: subprocess.Popen[bytes]) -> None:
    """SIGKILL as soon as one ticket of the call can be read (or the process is gone)."""
    while process.poll() is None:
        if _of_call(store, prefix):
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)


def test_a_killed_submit_of_30_files_leaves_all_or_nothing(store_url: str, tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    store = open_store(store_url)  # the schema exists before the first CLI starts; with the audit key the CLI uses
    try:
        started = time.monotonic()
        whole = _submit(store_url, _files(tmp_path / "whole", "whole", ROUNDS), tmp_path / "state")
        _, err = whole.communicate(timeout=120)
        assert whole.returncode == 0, err.decode()
        duration = time.monotonic() - started
        outcomes = []
        for n in range(ROUNDS):
            prefix = unique_id(f"k{n}")
            process = _submit(store_url, _files(tmp_path / prefix, prefix, n), tmp_path / "state")
            if n % 2:
                _kill_when_visible(store, prefix, process)
            else:
                time.sleep(chance.uniform(0, duration))
                process.send_signal(signal.SIGKILL)
            _, err = process.communicate(timeout=60)  # reaps it and closes its pipe
            assert process.returncode in (0, -signal.SIGKILL), err.decode()
            found = _of_call(store, prefix)
            outcomes.append(len(found))
            assert len(found) in (0, FILES), f"round {n} (seed {seed}): {len(found)} of {FILES} tickets stored"
            assert process.returncode != 0 or len(found) == FILES
            with store.transaction() as conn:
                reserved = {line.ticket for line in rows.ledger_lines(conn) if line.ticket.startswith(prefix)}
            assert {r.state for r in found} <= {"approved"} and reserved == {r.id for r in found}
            audited = {r.subject for r in store.audit.records() if r.subject.startswith(f"ticket:{prefix}")}
            assert audited == {f"ticket:{r.id}" for r in found}
        _, problems = store.audit.verify()
        assert problems == [], problems
        print(f"seed {seed}: one whole call {duration:.2f} s; tickets stored per killed call: {outcomes}")
    finally:
        store.close()
