"""Shared fixtures: a real PostgreSQL server for the session; store URLs for both backends."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import create_database, postgres_server

REPO = Path(__file__).resolve().parent.parent
_counter = itertools.count()


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
