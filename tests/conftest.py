"""Shared fixtures: a real PostgreSQL server for the session; store URLs for both backends."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import create_database, postgres_server

REPO = Path(__file__).resolve().parent.parent
_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def audit_key_outside_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every govcloud the tests run (``Settings.from_env``, CLI, daemons in subprocesses) keeps the audit key
    and anchor in one temporary directory, never in the user's state directory; one key for the session
    so that a test's own process and the processes it starts verify each other's records."""
    base = tmp_path_factory.mktemp("audit")
    names = {"GOVCLOUD_AUDIT_KEY_FILE": base / "audit.key", "GOVCLOUD_AUDIT_ANCHOR": base / "audit.anchor"}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: str(path) for name, path in names.items()})
    yield base
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One PostgreSQL server per test session (about a second to start)."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    server: str = request.getfixturevalue("postgres_url")
    return create_database(server, f"t{next(_counter)}")
