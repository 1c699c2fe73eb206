"""govcloud's own lock on a workspace: held across render → plan → (apply) so that two runs never interleave
on the workspace's files.

Terraform's state lock covers the state only. ``main.tf.json`` (what ``render`` writes) is read by the
``plan`` that follows, so a reconcile pass rendering the workspace between a ticket's render and its plan
would make the ticket's saved plan (and the approval bound to it) describe inputs other than the ones
recorded. The ticket path (``engine/terraform_path.py``) and reconcile (``engine/tf_reconcile.py``) both
hold this lock for the whole sequence: the ticket path waits for it (bounded), reconcile only tries it and
skips the workspace when it is held.

Why ``fcntl.flock`` on ``<workspace>/.govcloud.lock``: the CLI (``govcloud plan``, ``govcloud apply``) and
the daemon run on the same host and share its workspace root, so a kernel lock on a file in the workspace
directory is seen by both; the kernel frees it when its holder exits, even by ``kill -9`` (no stale lock
to clean up). A flock belongs to an open file description, so two threads of one process that open the
file separately exclude each other too (the daemon's ticket run and its reconcile threads). The workspace
root must be on a local filesystem (flock over NFS is not reliable). A thread that already holds a
workspace's lock may take it again (the ticket path's rollback destroys inside its own apply).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from govcloud.errors import TemporaryError

LOCK_FILE = ".govcloud.lock"
_POLL = 0.05
_held = threading.local()


class WorkspaceBusy(TemporaryError):
    """Another govcloud run on this host holds the workspace's lock (a ticket's plan or apply, or reconcile)."""


def _mine() -> dict[Path, int]:
    if not hasattr(_held, "paths"):
        _held.paths = {}
    paths: dict[Path, int] = _held.paths
    return paths


@contextmanager
def workspace_lock(directory: Path, name: str, *, wait: float, holder: str = "") -> Iterator[None]:
    """Hold workspace ``name``'s lock (the file ``LOCK_FILE`` in ``directory``, created as needed).

    ``wait``: seconds to wait for another holder; 0 tries once. ``WorkspaceBusy`` (temporary, names the
    workspace and who holds it) when it is still held after that. ``holder`` is written into the file for
    whoever waits (what runs, and the process id)."""
    if wait < 0:
        raise ValueError(f"workspace lock wait must be ≥ 0 s, not {wait}")
    path = directory / LOCK_FILE
    mine = _mine()
    if path in mine:  # this thread holds it already
        mine[path] += 1
        try:
            yield
        finally:
            mine[path] -= 1
        return
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(fd, path, name, wait)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {holder or 'govcloud'}\n".encode(), 0)
        mine[path] = 1
        try:
            yield
        finally:
            del mine[path]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, name: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(min(_POLL, max(0.0, deadline - time.monotonic())))
    who = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "a govcloud run"
    waited = f"after waiting {wait:g} s" if wait else "without waiting"
    raise WorkspaceBusy(f"workspace {name} is busy: {who} holds its govcloud lock ({path}); gave up {waited}. "
                        "Nothing was changed; try again when that run has finished", delay=30)
