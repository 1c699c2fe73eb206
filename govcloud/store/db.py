"""Opening the store: engine per URL, SQLite made safe for several processes, migrations on open.

SQLite is the default so that a single admin needs nothing but a file; PostgreSQL is for the
daemon's high availability (several daemons share one database). Both run the same alembic
migrations, applied automatically when the store is opened, so a new checkout never meets an old
schema.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from govcloud.errors import InputError, StoreError
from govcloud.files import private_file
from govcloud.model.cache import cached
from govcloud.store.audit import AuditLog
from govcloud.store.seal import Seal

if TYPE_CHECKING:
    from alembic.config import Config

    from govcloud.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")
"""A migration's file name: its revision id is its four-digit number (a unit test holds the convention)."""
READ_ONLY = "govcloud_read_only"
"""Execution option for read-only transactions: on SQLite they begin DEFERRED instead of IMMEDIATE."""


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    """SQLite with WAL, a busy timeout, and ``BEGIN IMMEDIATE`` so writers queue instead of failing.

    pysqlite defers BEGIN until the first write, which lets two processes read the same audit head
    and then both append; taking the write lock at BEGIN serialises them.
    """
    if url.database and url.database != ":memory:":
        private_file(Path(url.database))  # SQLite gives the -wal and -shm files the database file's mode
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    else:  # in memory: every connection would be a database of its own; one shared connection is the database
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, poolclass=sa.pool.StaticPool)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # the rows an INSERT OR REPLACE removes fire their DELETE triggers, which keep the exporter's groups (0013)
        cursor.execute("PRAGMA recursive_triggers=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        # A reader that asked for it (the exporter's scrape) takes a WAL snapshot and blocks no writer.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")

    return engine


EMPTY_SCHEMA_ENTRY = "empty-store-schema"
"""The cache entry holding the SQL of the schema at head (``Store.empty_schema``)."""
EMPTY_URL = "sqlite://"
"""An empty store in memory (one connection shared by every thread): what a read of a store that does not exist yet sees."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or SQLite in memory."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return None  # make_engine reports it
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; unreachable or malformed URLs become a StoreError naming the URL."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"cannot parse database URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot use database URL {parsed.render_as_string(hide_password=True)}: {exc}") from exc


class Store:
    """The state store. ``Store.open(url)`` connects and migrates; ``transaction()`` is the unit of work."""

    def __init__(self, engine: sa.Engine, *, seal: Seal | None = None) -> None:
        self.engine = engine
        self.audit = AuditLog(self, seal=seal)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, seal: Seal | None = None) -> Store:
        """Connect to ``url`` (SQLite path URL or PostgreSQL) and bring the schema to the newest revision.

        ``seal`` is the audit key and anchor outside the database (``store/seal.py``); every govcloud
        process passes one (``seal_for(settings)``). Without it the audit chain is hashed plainly, as
        before keys existed — for tests and benchmarks, and refused on a chain that is already keyed.
        """
        store = cls(make_engine(url), seal=seal)
        if migrate:
            store.upgrade()
        return store

    @classmethod
    def for_settings(cls, settings: Settings, *, migrate: bool = True, create: bool = True) -> Store:
        """The store of ``settings`` (``db_url``) with its audit key and anchor: what the CLI and daemon open.

        A SQLite file named with ``--db`` / ``$GOVCLOUD_DB`` whose directory does not exist is an input
        error naming that directory (a typo must not look like an empty province). ``create=False`` (reads,
        and commands that only act on rows that already exist): a missing SQLite file is not created; the
        caller gets an empty store in memory, without a seal, so that nothing — database, key, anchor —
        is written for a command that had nothing to read."""
        url = settings.db_url
        path = sqlite_path(url)
        if path is not None and settings.store.url and not path.parent.is_dir():
            raise InputError(f"state store {path}: directory {path.parent} does not exist "
                             "(check --db / GOVCLOUD_DB; govcloud creates the database file, not its directory)")
        if path is not None and not create and not path.exists():
            empty = cls(make_engine(EMPTY_URL))
            if migrate:
                empty.empty_schema(settings.data.cache)
            return empty
        return cls.open(url, migrate=migrate, seal=Seal(settings.audit_key_file, settings.audit_anchor_file))

    def empty_schema(self, cache: Path | None) -> None:
        """Give this empty in-memory store the schema at head, with no migration record (nothing to show
        as if it were the province's). Migrating costs ~0.4 s (alembic's import, then every migration), so
        the schema the migrations made is kept as SQL in the private cache of validated states
        (``model/cache.py``: HMAC-checked, 0600) under a key of the migrations' bytes, and read back next
        time (issue 16: a read of a store that does not exist yet, as on a new machine, stays under 1 s)."""
        if cache is None:
            self.upgrade(record=False)
            return
        key = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sorted((MIGRATIONS / "versions").glob("*.py")))).digest()
        made: list[bool] = []

        def migrate() -> str:
            self.upgrade(record=False)
            made.append(True)
            raw = self.engine.raw_connection()
            try:
                return "\n".join(raw.driver_connection.iterdump())  # type: ignore[union-attr]
            finally:
                raw.close()  # back to the pool: in memory, the one connection is the database

        script = cached(cache, EMPTY_SCHEMA_ENTRY, key, migrate)
        if not made:
            raw = self.engine.raw_connection()
            try:
                raw.driver_connection.executescript(script)  # type: ignore[union-attr]
            finally:
                raw.close()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def describe(self) -> str:
        """The URL with any password hidden, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One transaction: committed on success, rolled back on any exception. Audit records appended in
        it are anchored outside the database once it committed (``AuditLog.settle``)."""
        connection: sa.Connection | None = None
        committed = False
        try:
            with self.engine.begin() as connection:
                yield connection
            committed = True
        except sa.exc.OperationalError as exc:
            raise StoreError(f"state store {self.describe()} failed: {exc.orig}") from exc
        finally:
            if connection is not None:
                self.audit.settle(connection, committed=committed)

    def ping(self) -> None:
        """One round trip to the database (readiness probes); StoreError when it does not answer."""
        with self.transaction() as connection:
            connection.execute(sa.text("SELECT 1"))

    def _alembic(self, connection: sa.Connection) -> Config:
        from alembic.config import Config  # alembic (~0.15 s to import) only when there is something to migrate

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        return config

    def upgrade(self, revision: str = "head", *, record: bool = True) -> None:
        """Apply pending migrations (idempotent); ``record``: append the ``store.migrate`` audit record."""
        try:
            with self.transaction() as connection:
                before = self.current_revision(connection)
                if before == self.head_revision():
                    return
                from alembic import command

                command.upgrade(self._alembic(connection), revision)
                if not record:
                    return
                after = self.current_revision(connection)
                before_keys = "key_id" not in {c["name"] for c in sa.inspect(connection).get_columns("audit_log")}
                self.audit.append("system", "store.migrate", "store", {"from": before, "to": after, "dialect": self.dialect},
                                  connection=connection, before_keys=before_keys)
        except StoreError as exc:
            if isinstance(exc.__cause__, sa.exc.OperationalError):
                raise StoreError(f"cannot open or migrate the state store {self.describe()}: {exc.__cause__.orig}") from exc.__cause__
            raise

    def current_revision(self, connection: sa.Connection | None = None) -> str | None:
        """The schema revision recorded in the database (None for an empty database).

        Read with one query rather than alembic's MigrationContext: a command on a store at head
        then never imports alembic (issue 16: its import was ~40 % of a cached read's start-up)."""
        if connection is None:
            with self.engine.connect() as conn:
                return self.current_revision(conn)
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(versions) > 1:
            raise StoreError(f"state store {self.describe()} records several schema revisions {sorted(versions)}: "
                             "not a govcloud store, or one migrated by hand")
        return versions[0] if versions else None

    @staticmethod
    def head_revision() -> str | None:
        """The newest revision this govcloud knows: the highest-numbered migration file (revision id =
        file number; tests/unit/test_store_revisions.py checks that alembic agrees)."""
        numbers = [m.group(1) for p in (MIGRATIONS / "versions").iterdir() if (m := REVISION_FILE.match(p.name))]
        return max(numbers) if numbers else None

    def close(self) -> None:
        self.engine.dispose()
