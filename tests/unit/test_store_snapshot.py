"""A scrape's read snapshot on SQLite blocks no writer (it begins DEFERRED, not IMMEDIATE)."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa

from govcloud.store import Store, aggregates


def test_a_writer_does_not_wait_for_an_open_snapshot(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with aggregates.snapshot(store) as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar()
        started = time.monotonic()
        store.audit.append("test", "test.write", "subject", {})
        assert time.monotonic() - started < 5  # the busy timeout is 30 s: a blocked writer would wait it out
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar() == before  # still the snapshot
    store.close()
