"""A throw-away PostgreSQL server for tests: initdb + pg_ctl in a temporary directory, unix socket only.

Runs as the ``postgres`` user when we are root (PostgreSQL refuses to run as root). Missing
binaries are a loud failure, not a skip: CI must install them (``.ci/run`` does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CANDIDATE_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


def find_binary(name: str) -> str:
    for directory in CANDIDATE_DIRS:
        path = Path(directory) / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL binary {name!r} not found (apt-get install postgresql); tests need a real server")
    return found


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL for a fresh server; the server and its files are gone afterwards."""
    base = Path(tempfile.mkdtemp(prefix="govcloud-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    subprocess.run(_as_postgres([find_binary("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                 "--locale=C.UTF-8"]), check=True, capture_output=True)
    options = f"-k {sock} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c max_connections=200"
    subprocess.run(_as_postgres([find_binary("pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "30", "-l",
                                 str(base / "log"), "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://postgres@/postgres?host={sock}"
    finally:
        subprocess.run(_as_postgres([find_binary("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """A new empty database on the server of ``url``; returns its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return url.replace("/postgres?", f"/{name}?")
