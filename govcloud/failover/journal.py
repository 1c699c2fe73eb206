"""A recovery run's life in the journal (``store/runs.py``): opened or taken over, kept alive, ended.

The CLI and the daemon both go through :class:`Journal`, so "one run per centre at a time" and
"a run killed with kill -9 is resumed" mean the same whoever asks. The process carrying a run beats
its heartbeat on a thread of its own every ``heartbeat_interval`` seconds; a run whose heartbeat is
older than ``stale_after``, or whose owner is a process of this host that no longer exists, is taken
over by the next ``failover run`` or leader daemon that wants the centre, and resumed: the moves it
recorded stay, the VMs not yet recorded in the target are planned again (and a VM nova already moved
is recognised and only recorded, ``recover.py``), so no VM is moved twice.
"""

from __future__ import annotations

import datetime
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from govcloud.settings import FailoverSettings
from govcloud.store import Store, runs
from govcloud.store.runs import RunInProgress, RunRow

COMMANDS = {"failover": "failover run {centre}", "migration": "failover migrate {centre}", "failback": "failover failback {centre}",
            "dr-activation": "dr activate --cloud {cloud}", "dr-return": "dr return --cloud {cloud}"}
"""The command that carries out (and resumes) a run of each kind."""


def resume_command(run: RunRow) -> str:
    """``govcloud …``: what carries ``run`` on (or, for a run waiting for approval, what it waits for)."""
    return "govcloud " + COMMANDS.get(run.kind, run.kind).format(cloud=run.cloud, centre=run.centre)


def process_id() -> str:
    """``hostname:pid:random``: names the process carrying a run (as the daemons table names daemons)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _seconds(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()


def owner_gone(owner: str) -> bool:
    """Whether ``owner`` is a process of this host that no longer exists (killed, crashed)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Journal:
    """Opens, beats and ends runs for one process (``owner``)."""

    def __init__(self, store: Store, *, now: Callable[[], str], clock: Callable[[], float], settings: FailoverSettings,
                 owner: str | None = None) -> None:
        self.store = store
        self.now = now
        self.clock = clock
        self.settings = settings
        self.owner = owner or process_id()

    def stale(self, run: RunRow) -> bool:
        """Whether nobody carries ``run`` any more: its owner is gone, or silent for ``stale_after`` seconds."""
        return owner_gone(run.owner) or self.clock() - _seconds(run.heartbeat_at) > self.settings.stale_after

    def open(self, *, kind: str, cloud: str, centre: str, user: str, plan: dict[str, Any]) -> tuple[RunRow, bool]:
        """A run of ``cloud/centre`` for this process: a new one, or (True) one taken over from a dead owner.
        RunInProgress when a live process carries one."""
        with self.store.transaction() as conn:
            current = runs.active_run(conn, cloud, centre)
            if current is None:
                run = runs.create_run(conn, kind=kind, cloud=cloud, centre=centre, user=user, owner=self.owner, now=self.now(), plan=plan)
                self.store.audit.append(user, f"{kind}.start", f"centre:{cloud}/{centre}",
                                        {"run": run.id, "moves": plan.get("moves", 0), "held": plan.get("held", 0)},
                                        connection=conn)
                return run, False
            if current.owner == self.owner:
                return current, False
            self._refuse_unless_mine_to_take(current, kind)
            if not runs.take_over(conn, current, owner=self.owner, now=self.now(), plan=plan):
                raise RunInProgress(f"run {current.id} of {cloud}/{centre} was taken over by another process just now", current)
            self.store.audit.append(user, f"{current.kind}.resume", f"centre:{cloud}/{centre}",
                                    {"run": current.id, "from": current.owner, "last_heartbeat": current.heartbeat_at,
                                     "moves": plan.get("moves", 0)}, connection=conn)
            taken = runs.get_run(conn, current.id)
        assert taken is not None
        return taken, True

    def _refuse_unless_mine_to_take(self, current: RunRow, kind: str) -> None:
        """RunInProgress unless ``current`` (another process's) may be taken over for a run of ``kind``: its
        process is gone and it is of the same kind — a failover must not carry on a planned migration with
        evacuations, nor the reverse."""
        where = f"{current.cloud}/{current.centre}"
        if current.kind != kind:
            raise RunInProgress(f"run {current.id} ({current.kind}) of {where}, started by {current.started_by} at {current.started_at}, "
                                f"is not finished (owner {current.owner}, last heartbeat {current.heartbeat_at}): one run per centre at "
                                f"a time; a {current.kind} run is resumed by '{resume_command(current)}' (or cancelled)", current)
        if not self.stale(current):
            raise RunInProgress(f"run {current.id} ({current.kind}) of {where} is carried out by {current.owner} "
                                f"(started by {current.started_by} at {current.started_at}, last heartbeat {current.heartbeat_at}): "
                                "one run per centre at a time; see 'govcloud failover status'", current)

    def ensure_free(self, *, kind: str, cloud: str, centre: str) -> None:
        """Raise what ``open`` would raise, without opening: a command checks before it changes anything
        (``failover migrate`` disables the centre's services before its run opens)."""
        with self.store.transaction() as conn:
            current = runs.active_run(conn, cloud, centre)
        if current is not None and current.owner != self.owner:
            self._refuse_unless_mine_to_take(current, kind)

    def stale_runs(self) -> list[RunRow]:
        """Runs new or running whose owner is gone: what a new leader resumes. Not a DR activation: it
        waits for the e-government office's approval and is carried on by ``govcloud dr activate`` only."""
        with self.store.transaction() as conn:
            return [r for r in runs.runs(conn, limit=200)
                    if r.state in runs.ACTIVE_STATES and r.kind in runs.FAILOVER_KINDS and self.stale(r)]

    @contextmanager
    def beating(self, run_id: int) -> Iterator[threading.Event]:
        """Beat the run's heartbeat while the block runs; the event is set once the run is no longer this
        process's (cancelled, or taken over after a pause longer than ``stale_after``): stop starting moves."""
        lost = threading.Event()
        done = threading.Event()

        def loop() -> None:
            while not done.wait(self.settings.heartbeat_interval):
                try:
                    with self.store.transaction() as conn:
                        mine = runs.beat(conn, run_id, owner=self.owner, now=self.now())
                except Exception:  # noqa: BLE001 - a store hiccup: the next beat tries again
                    continue
                if not mine:
                    lost.set()
                    return

        thread = threading.Thread(target=loop, name=f"run-{run_id}-heartbeat", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            done.set()
            thread.join()

    def still_mine(self, run_id: int) -> bool:
        with self.store.transaction() as conn:
            run = runs.get_run(conn, run_id)
        return run is not None and run.owner == self.owner and run.state == "running"

    def end(self, run_id: int, *, state: str, user: str, kind: str, subject: str, detail: dict[str, Any]) -> bool:
        """End the run if this process still carries it; audited as ``<kind>.end``."""
        with self.store.transaction() as conn:
            ended = runs.end_run(conn, run_id, state=state, now=self.now(), detail=detail, owner=self.owner)
            if ended:
                self.store.audit.append(user, f"{kind}.end", subject, {"run": run_id, "state": state, **detail}, connection=conn)
        return ended
