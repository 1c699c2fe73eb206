"""Ticket latency histograms: counted once at the move that ends each span, backfilled by migration 0007."""

from __future__ import annotations

from pathlib import Path

import pytest

from govcloud.store import Store, latency
from govcloud.store import tickets as rows
from tests.support.exporter import iso, populate, ticket


def histograms(store: Store) -> dict[tuple[str, str], latency.Histogram]:
    with store.transaction() as conn:
        return {(h.name, h.kind): h for h in latency.histograms(conn)}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'state.db'}")


def test_bucket_is_the_first_bound_at_or_above_like_prometheus_le() -> None:
    assert latency.bucket_of(latency.PROVISIONING, 5.0) == 0        # le="5.0" holds exactly 5 s
    assert latency.bucket_of(latency.PROVISIONING, 5.001) == 1
    assert latency.bucket_of(latency.PROVISIONING, 0.0) == 0
    assert latency.bucket_of(latency.PROVISIONING, 99999.0) == len(latency.MACHINE_BUCKETS)  # +Inf


def test_a_reconfigured_ticket_counts_its_activation_once_and_each_configuration(store: Store) -> None:
    with store.transaction() as conn:
        rows.insert(conn, ticket("t-1", state="submitted", submitted=4000, updated=4000))
        rows.move(conn, "t-1", "submitted", "approved", now=iso(3000), approved_at=iso(3000))
        rows.move(conn, "t-1", "approved", "provisioning", now=iso(2990), provision_started_at=iso(2990))
        rows.move(conn, "t-1", "provisioning", "configuring", now=iso(2900), provisioned_at=iso(2900))
        rows.move(conn, "t-1", "configuring", "active", now=iso(2800), active_at=iso(2800))
        # an operator runs `govcloud configure` on the active ticket an hour later: 20 s of Ansible
        rows.move(conn, "t-1", "active", "configuring", now=iso(100))
        rows.move(conn, "t-1", "configuring", "active", now=iso(80), active_at=iso(80))
    found = histograms(store)
    assert found[(latency.SUBMIT_TO_APPROVE.name, "create")].total == 1000
    assert found[(latency.SUBMIT_TO_ACTIVE.name, "create")].count == 1
    assert found[(latency.SUBMIT_TO_ACTIVE.name, "create")].total == 1200       # up to the first activation
    assert found[(latency.APPROVE_TO_ACTIVE.name, "create")].total == 200
    assert found[(latency.PROVISIONING.name, "create")].total == 90
    configuration = found[(latency.CONFIGURATION.name, "create")]
    assert (configuration.count, configuration.total) == (2, 120)             # 100 s, then 20 s
    assert configuration.counts[:3] == (0, 0, 1)                              # ≤5 s: 0, ≤15 s: 0, ≤30 s: the 20 s run


def test_a_move_that_loses_the_race_counts_nothing(store: Store) -> None:
    with store.transaction() as conn:
        rows.insert(conn, ticket("t-1", state="submitted", submitted=4000, updated=4000))
        rows.move(conn, "t-1", "submitted", "approved", now=iso(3000), approved_at=iso(3000))
    with pytest.raises(rows.StaleState), store.transaction() as conn:
        rows.move(conn, "t-1", "submitted", "approved", now=iso(2000), approved_at=iso(2000))
    assert histograms(store)[(latency.SUBMIT_TO_APPROVE.name, "create")].count == 1


def test_a_clock_stepped_back_counts_zero_rather_than_vanish(store: Store) -> None:
    with store.transaction() as conn:
        rows.insert(conn, ticket("t-1", state="submitted", submitted=100, updated=100))
        rows.move(conn, "t-1", "submitted", "approved", now=iso(200), approved_at=iso(200))
    found = histograms(store)[(latency.SUBMIT_TO_APPROVE.name, "create")]
    assert (found.count, found.total, found.counts[0]) == (1, 0.0, 1)


def test_rebuild_from_timestamps_gives_what_the_moves_counted(store: Store) -> None:
    populate(store)
    counted = histograms(store)
    with store.transaction() as conn:
        assert latency.rebuild(conn) == 5
    assert histograms(store) == counted


def test_migration_0007_backfills_the_tickets_already_stored(tmp_path: Path) -> None:
    old = Store.open(f"sqlite:///{tmp_path / 'old.db'}", migrate=False)
    old.upgrade("0006")
    with old.transaction() as conn:
        rows.insert(conn, ticket("t-a", submitted=7200, approved=6600, started=6500, provisioned=5300, active=4800))
        rows.insert(conn, ticket("t-b", submitted=5000, approved=4970, started=4960, provisioned=4900, active=4900))
        rows.insert(conn, ticket("t-c", state="approved", submitted=100000, approved=90000))
        rows.record_config(conn, rows.ConfigResult("t-a", "vm-1", "run-1", "ok", 1, (), iso(4800)))
    old.upgrade()
    found = histograms(old)
    assert found[(latency.SUBMIT_TO_APPROVE.name, "create")].count == 3
    assert found[(latency.PROVISIONING.name, "create")].total == 1260
    assert found[(latency.CONFIGURATION.name, "create")].total == 500           # only t-a ran Ansible
    with old.transaction() as conn:
        latency.rebuild(conn)
    assert histograms(old) == found
