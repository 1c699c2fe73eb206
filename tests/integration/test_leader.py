"""Leader election on a real PostgreSQL: one holder at a time, released when its session ends
(a killed process, or its backend terminated), and a held lock that is gone is noticed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa

from govcloud.store import Store
from govcloud.store.leader import LeaderLock
from tests.support.postgres import create_database

pytestmark = pytest.mark.integration


def test_one_holder_and_takeover_when_the_session_dies(postgres_url: str) -> None:
    store = Store.open(create_database(postgres_url, "leader"))
    first, second = LeaderLock(store), LeaderLock(store)
    assert first.backend == "postgresql-advisory-lock"
    assert first.acquire() and first.held()
    assert not second.acquire() and not second.held()
    with store.engine.begin() as conn:  # an operator (or a partition) ends the leader's session
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'govcloud-daemon'"
                             " AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)"))
    assert not first.held()
    assert second.acquire() and second.held()
    assert not first.acquire()
    second.release()
    assert first.acquire()
    first.release()
    store.close()


def test_a_killed_holder_releases_at_once(postgres_url: str) -> None:
    url = create_database(postgres_url, "leaderkill")
    store = Store.open(url)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from govcloud.store import Store
        from govcloud.store.leader import LeaderLock
        lock = LeaderLock(Store.open({url!r}, migrate=False))
        print(lock.acquire(), flush=True)
        time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        mine = LeaderLock(store)
        assert not mine.acquire()
        holder.kill()
        holder.wait(timeout=10)
        started = time.monotonic()
        while not mine.acquire():
            assert time.monotonic() - started < 10, "the lock of a killed holder was not released"
            time.sleep(0.1)
        mine.release()
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
        store.close()
