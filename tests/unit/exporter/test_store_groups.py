"""The aggregates the triggers keep group by group (migration 0013) and the scrapes that follow them
equal a full recomputation, whatever the writes between two scrapes (issue 16).

Random sequences of VM inserts, status changes, moves between centres and tenants, deletes, bulk
updates, and ledger reservations, commits, releases, moves and edits; after each round the scrape that
reads only the changed groups (``StoreReads.follow``) and builds only the changed blocks
(``blocks.Blocked``) is compared with GROUP BYs over the tables themselves and a build from scratch
(``tests/support/groups.py``; the same on PostgreSQL: ``tests/integration/test_store_groups_postgresql.py``).
"""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from govcloud.store import Store, aggregates
from tests.support.exporter import populate
from tests.support.groups import counting, follow_random_writes, full


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the scrape read each aggregate in full, and each one's changed groups."""
    return counting(monkeypatch, ("tenant_usage", "vm_counts", "vm_count_changes", "usage_changes"))


@pytest.mark.parametrize("seed", range(6))
def test_following_the_changed_groups_equals_a_full_recomputation(seed: int, tmp_path: Path, ran: Counter[str]) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    populate(store)
    follow_random_writes(store, seed)
    assert ran["vm_counts"] == ran["tenant_usage"] == 1  # the first scrape; then only the changed groups
    assert ran["vm_count_changes"] > 5 and ran["usage_changes"] > 5


def test_the_groups_match_after_a_bulk_insert_and_zero_groups_are_not_shown(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    populate(store)
    with store.transaction() as conn:
        conn.execute(sa.text("INSERT INTO vms (ticket, idx, name, tenant, system, cloud, region, centre, zone, vcpus, ram_mb, disk_gb,"
                             " status, updated_at) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
                             " SELECT 'bulk', i, 'bulk-' || i, 'gd-t' || (i % 7), 's', 'gd-prov', 'gd-gz', 'gz-main', 'gz-main', 1, 1, 1,"
                             " 'ACTIVE', 'x' FROM n"))
        conn.execute(sa.text("DELETE FROM vms WHERE tenant = 'gd-t3'"))
    with aggregates.snapshot(store) as conn:
        kept = list(aggregates.vm_counts(conn, grouped=True))
        zeros = conn.execute(sa.text("SELECT count(*) FROM vm_groups WHERE n = 0")).scalar()
    assert kept == full(store)[0] and zeros == 1


def test_an_insert_or_replace_leaves_the_replaced_rows_group(tmp_path: Path) -> None:
    """The rows a REPLACE removes fire their DELETE triggers only with ``recursive_triggers`` (db.py)."""
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    populate(store)
    with store.transaction() as conn:
        conn.execute(sa.text("INSERT OR REPLACE INTO vms (ticket, idx, name, tenant, system, cloud, region, centre, zone, vcpus, ram_mb,"
                             " disk_gb, status, updated_at) SELECT ticket, idx, name, tenant, system, cloud, region, 'sg-dr', zone, vcpus,"
                             " ram_mb, disk_gb, 'ERROR', updated_at FROM vms WHERE idx = 1"))
    with aggregates.snapshot(store) as conn:
        assert list(aggregates.vm_counts(conn, grouped=True)) == full(store)[0]


def test_the_reader_knows_the_rings_length() -> None:
    migration = importlib.import_module("govcloud.store.migrations.versions.0013_aggregate_groups")
    assert migration.LOG_LENGTH == aggregates.LOG_LENGTH


def test_0014_comes_back_down_to_0013_s_triggers(tmp_path: Path) -> None:
    """SQLite's part of 0014 is ``vm_places`` in the ``vms`` triggers: down, they are 0013's again (groups kept)."""
    from alembic import command

    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    populate(store)
    with store.transaction() as conn:
        command.downgrade(store._alembic(conn), "0013")
    with aggregates.snapshot(store) as conn:
        versions = aggregates.table_versions(conn)
        sql = conn.exec_driver_sql("SELECT group_concat(sql) FROM sqlite_master WHERE name LIKE 'vms_version_%'").scalar()
    assert versions is not None and aggregates.PLACES not in versions and versions["vms"].groups
    assert "vm_places" not in sql
    store.upgrade()
    with aggregates.snapshot(store) as conn:
        assert aggregates.PLACES in (aggregates.table_versions(conn) or {})
