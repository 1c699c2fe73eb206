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
DEVCLOUD_GROUP = "devcloud"
"""The xdist group of every test that uses the devcloud: one worker runs them all, one after another, since
they fail centres, force services down and count servers; the other worker runs everything else beside it
(``scripts/test`` runs ``-n 2 --dist loadgroup``)."""


def pytest_configure(config: pytest.Config) -> None:
    """execnet starts xdist's workers with ``COLUMNS=80`` / ``LINES=24``; govcloud's tables fit ``$COLUMNS``
    (cli/output.py), so a worker's CLI tests would see 80-column tables where a plain run sees a pipe."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put every test that needs the devcloud (directly or through a fixture) in one xdist group, and the
    other integration tests in a group per module: a module's hosts, bridge and moto server are made once
    for it (fixed names and addresses, distinct between modules), so its tests must share one worker."""
    for item in items:
        if "devcloud" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(DEVCLOUD_GROUP))
        elif item.path.parent.name == "integration":
            item.add_marker(pytest.mark.xdist_group(item.path.stem))


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
