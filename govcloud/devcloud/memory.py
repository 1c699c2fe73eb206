"""Memory of the devcloud: PSS of every process it started, from ``/proc/<pid>/smaps_rollup``.

PSS (proportional set size) splits shared pages between the processes that share them, so the sum
over the whole cloud is honest where an RSS sum would count uWSGI's and nova's shared libraries
many times. Used by ``bench/`` and the budget measurements in docs/devcloud.md.
"""

from __future__ import annotations

from pathlib import Path

from govcloud.devcloud import pg, procs
from govcloud.devcloud.layout import Layout
from govcloud.devcloud.lifecycle import running


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def devcloud_pids(layout: Layout) -> list[int]:
    """Every live process of the devcloud: the recorded groups plus PostgreSQL's backends."""
    pids: set[int] = set()
    for name, pid in running(layout).items():
        pids.add(pid)
        if name != "postgres":
            pids.update(procs.group_members(pid))
    postmaster = pg.pid(layout)
    if postmaster is not None:
        pids.update(p for p in (int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()) if _parent(p) == postmaster)
    return sorted(pids)


def pss_kib(pid: int) -> int:
    """PSS of one process in KiB (0 when it is gone or unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8").splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def total_pss_mib(layout: Layout) -> float:
    """Sum of PSS over the whole devcloud, in MiB."""
    return sum(pss_kib(pid) for pid in devcloud_pids(layout)) / 1024
