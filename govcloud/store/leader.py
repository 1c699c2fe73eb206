"""Leader election for the daemon, through the store it already depends on.

* **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) held on a connection of
  its own, with TCP keepalives. A leader that dies — ``kill -9`` included — closes its connection
  and PostgreSQL releases the lock at once; a leader cut off from the database is dropped after the
  keepalive window (``keepalive_s`` × 4). :meth:`LeaderLock.held` asks the server, on that very
  connection, whether the lock is still ours; the daemon checks it before each step and exits when it
  is not (fencing itself: a standby may already be acting).
* **SQLite**: a single daemon per database file: ``flock`` on ``<database>.leader``, released by the
  kernel when the process dies.

Standbys poll :meth:`LeaderLock.acquire`; the takeover time is bounded by their poll interval plus,
for a partitioned (not dead) leader, the keepalive window.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from govcloud.errors import StoreError
from govcloud.store.db import Store


def lock_key(name: str) -> int:
    """A stable positive 63-bit advisory-lock key for ``name`` (positive: pg_locks splits it into two oids)."""
    return int.from_bytes(hashlib.sha256(f"govcloud:{name}".encode()).digest()[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


class LeaderLock:
    """``acquire()`` → True when this process leads; ``held()`` while it does; ``release()`` to step down."""

    def __init__(self, store: Store, *, name: str = "daemon", keepalive_s: int = 5) -> None:
        self.store = store
        self.name = name
        self.keepalive_s = keepalive_s
        self._conn: Any = None
        self._keep: tuple[Any, ...] = ()  # the engine and pool proxy: if collected, the pool closes the connection
        self._fd: int | None = None
        self._guard = threading.RLock()
        """The daemon's main loop and its failover thread both ask ``held()``: one question at a time on
        the lock's connection, and never while the other thread drops it."""

    @property
    def backend(self) -> str:
        return "postgresql-advisory-lock" if self.store.dialect == "postgresql" else "lock-file"

    def acquire(self) -> bool:
        """Try once, without waiting."""
        with self._guard:
            if self.store.dialect == "postgresql":
                return self._acquire_pg()
            return self._acquire_file()

    def held(self) -> bool:
        """Whether the lock is still ours (asks PostgreSQL; a broken connection means no)."""
        with self._guard:
            if self.store.dialect != "postgresql":
                return self._fd is not None
            if self._conn is None:
                return False
            try:
                with self._conn.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                                   "AND granted AND ((classid::bigint << 32) | objid::bigint) = %s", (lock_key(self.name),))
                    return bool(cursor.fetchone()[0])
            except Exception:  # noqa: BLE001 - any failure of the lock's connection means the lock is gone
                self._drop_pg()
                return False

    def release(self) -> None:
        with self._guard:
            if self._conn is not None:
                with contextlib.suppress(Exception), self._conn.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", (lock_key(self.name),))
                self._drop_pg()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    # -- PostgreSQL --------------------------------------------------------------------------
    def _connect_pg(self) -> Any:
        url = self.store.engine.url
        params = {"keepalives": 1, "keepalives_idle": self.keepalive_s, "keepalives_interval": max(1, self.keepalive_s // 2),
                  "keepalives_count": 3, "application_name": f"govcloud-{self.name}", "connect_timeout": 10}
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=params)
        try:
            raw = engine.raw_connection()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"leader election: cannot connect to {self.store.describe()}: {exc.orig}") from exc
        connection = raw.driver_connection  # the psycopg2 connection itself: closing it ends the session
        if connection is None:
            raise StoreError(f"leader election: no database connection to {self.store.describe()}")
        connection.autocommit = True
        self._keep = (engine, raw)
        return connection

    def _acquire_pg(self) -> bool:
        if self._conn is None:
            self._conn = self._connect_pg()
        try:
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(self.name),))
                return bool(cursor.fetchone()[0])
        except Exception as exc:
            self._drop_pg()
            raise StoreError(f"leader election on {self.store.describe()} failed: {exc}") from exc

    def _drop_pg(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = None
        self._keep = ()

    # -- SQLite ------------------------------------------------------------------------------
    def _lock_path(self) -> Path:
        database = self.store.engine.url.database or ""
        if not database or database == ":memory:":
            raise StoreError("the daemon needs a database file or PostgreSQL, not an in-memory SQLite store")
        return Path(f"{database}.{self.name}.leader")

    def _acquire_file(self) -> bool:
        if self._fd is not None:
            return True
        path = self._lock_path()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True
