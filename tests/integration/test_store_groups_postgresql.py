"""The exporter's groups on a real PostgreSQL (migration 0014): the scrape follows only the changed groups,
as on SQLite (0013), and never misses a change that concurrent writers commit in any order.

PostgreSQL runs writers concurrently: 0014 stages each statement's group deltas and applies them, with the
table's new ``seq``, in a deferred trigger at commit, under the version row's lock. The tests here: the
random-writes property (``tests/support/groups.py``, as for SQLite), two writer connections interleaved so
that the one that wrote first commits last, with scrapes in between, many writer threads against a scraping
thread whose every scrape must equal the GROUP BYs of its own snapshot, and the migration over a store that
already holds data.
"""

from __future__ import annotations

import datetime
import importlib
import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from govcloud.exporter import metrics
from govcloud.exporter.metrics import StoreReads, read_facts
from govcloud.store import Store, aggregates
from tests.support.exporter import populate, random_write
from tests.support.groups import PLACE_WRITES, counting, follow_random_writes, full
from tests.support.postgres import create_database

pytestmark = pytest.mark.integration

TODAY = datetime.date(2026, 12, 2)
_names = iter(range(1_000_000))


@pytest.fixture
def store(postgres_url: str) -> Store:
    store = Store.open(create_database(postgres_url, f"groups_{next(_names)}"))
    populate(store)
    return store


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return counting(monkeypatch, ("tenant_usage", "vm_counts", "vm_count_changes", "usage_changes"))


def scrape(store: Store, reads: StoreReads) -> metrics.Facts:
    return read_facts(store, today=TODAY, warning_days=14, reads=reads)


def same_as_group_by(store: Store, found: metrics.Facts) -> None:
    assert (list(found.vms), list(found.usage), found.allocation) == full(store)


@pytest.mark.parametrize("seed", range(4))
def test_following_the_changed_groups_equals_a_full_recomputation(seed: int, store: Store, ran: Counter[str]) -> None:
    follow_random_writes(store, seed)
    assert ran["vm_counts"] == ran["tenant_usage"] == 1  # the first scrape; then only the changed groups
    assert ran["vm_count_changes"] > 5 and ran["usage_changes"] > 5


def test_the_versions_count_transactions_and_stay_put_without_a_write(store: Store) -> None:
    with aggregates.snapshot(store) as conn:
        before = aggregates.table_versions(conn)
    assert before is not None and before["vms"].groups and before["ledger"].groups and not before["tickets"].groups
    with store.transaction() as conn:
        conn.execute(sa.text("UPDATE vms SET status = 'ERROR'"))
        conn.execute(sa.text("UPDATE vms SET address = '10.1.1.1'"))  # no group moves: the version still does
        conn.execute(sa.text("UPDATE vms SET status = 'nothing' WHERE false"))  # no row: no write
    with store.transaction() as conn:
        conn.execute(sa.text("UPDATE tickets SET reason = 'x' WHERE false"))
    with aggregates.snapshot(store) as conn:
        after = aggregates.table_versions(conn)
        pending = conn.execute(sa.text("SELECT (SELECT count(*) FROM pending_tables) + (SELECT count(*) FROM pending_vm_groups)")).scalar()
    assert after is not None
    assert after["vms"].seq == before["vms"].seq + 1 and after["vms"].version != before["vms"].version
    assert after["ledger"] == before["ledger"] and after["tickets"] == before["tickets"]
    assert after[aggregates.PLACES] == before[aggregates.PLACES]  # status and address only
    assert pending == 0


@pytest.mark.parametrize(("sql", "moved"), PLACE_WRITES)
def test_vm_rows_read_for_their_places_are_read_again_only_when_those_moved(sql: str, moved: bool, store: Store,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The DR VMs and the VMs away from home read the VM rows' names, places and sizes, never their status:
    they are read again after a write that changed those (``vm_places``), not after the reconciler's."""
    counts: Counter[str] = Counter()
    for module, name in ((metrics.readiness, "dr_vm_rows"), (metrics.runs, "away_from_home")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: counts.update([_name]) or _real(*a, **k))
    reads = StoreReads()
    scrape(store, reads)
    with store.transaction() as conn:
        conn.execute(sa.text(sql))
    found = scrape(store, reads)
    assert counts == ({"dr_vm_rows": 2, "away_from_home": 2} if moved else {"dr_vm_rows": 1, "away_from_home": 1})
    assert found == read_facts(store, today=TODAY, warning_days=14)


def test_a_bulk_insert_and_a_delete_leave_zero_groups_that_are_not_shown(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(sa.text("INSERT INTO vms (ticket, idx, name, tenant, system, cloud, region, centre, zone, vcpus, ram_mb, disk_gb,"
                             " status, updated_at) SELECT 'bulk', i, 'bulk-' || i, 'gd-t' || (i % 7), 's', 'gd-prov', 'gd-gz',"
                             " 'gz-main', 'gz-main', 1, 1, 1, 'ACTIVE', 'x' FROM generate_series(1, 300) AS i"))
        conn.execute(sa.text("DELETE FROM vms WHERE tenant = 'gd-t3'"))
    with store.transaction() as conn:
        conn.execute(sa.text("DELETE FROM vms WHERE tenant = 'gd-t4'"))
    with aggregates.snapshot(store) as conn:
        kept = list(aggregates.vm_counts(conn, grouped=True))
        zeros = conn.execute(sa.text("SELECT count(*) FROM vm_groups WHERE n = 0")).scalar()
    assert kept == full(store)[0] and zeros == 1  # gd-t3 never committed a row; gd-t4 went to 0


def _writer(store: Store) -> sa.Connection:
    """A connection of its own in an open transaction, that fails instead of waiting long for a lock."""
    conn = store.engine.connect()
    conn.begin()
    conn.execute(sa.text("SET LOCAL lock_timeout = '3s'"))
    return conn


def test_two_writers_committing_in_the_other_order_are_both_seen(store: Store, ran: Counter[str]) -> None:
    """A writes first and commits last; B writes both tables in the other order and commits first, with a
    scrape between the two commits. Neither waits for the other (the staging takes no lock: with the groups
    applied at write time B would wait for A's version row, here until the lock timeout), and the scrapes
    follow both commits."""
    reads = StoreReads()
    scrape(store, reads)
    a, b = _writer(store), _writer(store)
    try:
        a.execute(sa.text("UPDATE vms SET status = 'ERROR' WHERE ticket = 't-a' AND idx = 1"))
        b.execute(sa.text("UPDATE ledger SET vcpus = vcpus + 5 WHERE ticket = 't-b'"))
        b.execute(sa.text("UPDATE vms SET status = 'ACTIVE', centre = 'sg-dr' WHERE ticket = 't-b'"))
        a.execute(sa.text("UPDATE ledger SET state = 'committed' WHERE ticket = 't-c'"))
        b.commit()
        same_as_group_by(store, scrape(store, reads))
        a.commit()
    finally:
        a.close()
        b.close()
    found = scrape(store, reads)
    same_as_group_by(store, found)
    assert ("gd-prov", "gz-main", "gd-gat", "ERROR", 1) in found.vms and ("gd-prov", "sg-dr", "gd-zf", "ACTIVE", 1) in found.vms
    assert ran["vm_counts"] == 1 and ran["vm_count_changes"] == 2 and ran["usage_changes"] == 2  # in full once: the first scrape


def test_a_rolled_back_writer_changes_nothing(store: Store) -> None:
    reads = StoreReads()
    before = scrape(store, reads)
    conn = _writer(store)
    conn.execute(sa.text("UPDATE vms SET status = 'ERROR'"))
    conn.rollback()
    conn.close()
    with aggregates.snapshot(store) as snap:
        assert aggregates.table_versions(snap) is not None
    assert scrape(store, reads) == before


Aggregates = tuple[list[Any], list[Any], list[Any]]


@contextmanager
def _checked_snapshot(real: Any, seen: list[Aggregates], store: Store) -> Iterator[sa.Connection]:
    """``aggregates.snapshot``, and before it ends the GROUP BYs of the same snapshot (into ``seen``), to
    compare with what the scrape read in it."""
    with real(store) as conn:
        yield conn
        seen.append((list(aggregates.vm_counts(conn)), list(aggregates.tenant_usage(conn)), aggregates.centre_allocation(conn)))


def test_concurrent_writers_against_a_scraper(store: Store, monkeypatch: pytest.MonkeyPatch, ran: Counter[str]) -> None:
    """Four threads of random single-write transactions on vms and ledger while a fifth scrapes in a loop:
    every scrape equals the GROUP BYs of its own snapshot, and none fails."""
    seen: list[Aggregates] = []
    real = aggregates.snapshot
    monkeypatch.setattr(metrics.aggregates, "snapshot", lambda s: _checked_snapshot(real, seen, s))
    errors: list[Exception] = []
    done = threading.Event()

    def write(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for n in range(60):
                with store.transaction() as conn:
                    random_write(conn, rng, worker * 1000 + n)
        except Exception as exc:  # noqa: BLE001 - reported by the test, in the main thread
            errors.append(exc)

    results: list[tuple[metrics.Facts, int]] = []

    def read() -> None:
        reads = StoreReads()
        try:
            while not done.is_set():
                results.append((scrape(store, reads), len(seen) - 1))
            results.append((scrape(store, reads), len(seen) - 1))
        except Exception as exc:  # noqa: BLE001 - reported by the test, in the main thread
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    reader = threading.Thread(target=read)
    for thread in (*writers, reader):
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    assert not errors, errors
    assert len(results) > 5 and ran["vm_count_changes"] > 3
    for found, at in results:
        assert (list(found.vms), list(found.usage), found.allocation) == seen[at]
    same_as_group_by(store, results[-1][0])


def test_without_the_trigger_that_applies_at_commit_nothing_is_trusted(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(sa.text("ALTER TABLE pending_tables DISABLE TRIGGER pending_tables_apply"))
    with aggregates.snapshot(store) as conn:
        assert aggregates.table_versions(conn) is None


def test_a_trigger_that_no_longer_stages_groups_makes_them_untrusted(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(sa.text("DROP TRIGGER vms_version_update ON vms"))
        conn.execute(sa.text("CREATE TRIGGER vms_version_update AFTER UPDATE ON vms REFERENCING NEW TABLE AS new_rows"
                             " FOR EACH STATEMENT EXECUTE FUNCTION tickets_version()"))
    with aggregates.snapshot(store) as conn:
        versions = aggregates.table_versions(conn)
    assert versions is not None and not versions["vms"].groups and versions["ledger"].groups


def test_the_migration_counts_what_is_stored_and_comes_back_down(postgres_url: str) -> None:
    store = Store.open(create_database(postgres_url, f"groups_{next(_names)}"), migrate=False)
    store.upgrade("0013")
    populate(store)
    store.upgrade()
    with aggregates.snapshot(store) as conn:
        grouped = (list(aggregates.vm_counts(conn, grouped=True)), list(aggregates.tenant_usage(conn, grouped=True)),
                   aggregates.centre_allocation(conn, grouped=True))
    assert grouped == full(store) and grouped[0]
    from alembic import command

    with store.transaction() as conn:
        command.downgrade(store._alembic(conn), "0013")
    with aggregates.snapshot(store) as conn:
        assert aggregates.table_versions(conn) is None
        assert not sa.inspect(conn).has_table("vm_groups")


def test_the_reader_knows_the_rings_length() -> None:
    migration = importlib.import_module("govcloud.store.migrations.versions.0014_postgresql_groups")
    assert migration.LOG_LENGTH == aggregates.LOG_LENGTH


def test_the_dr_vms_of_thousands_of_tickets_are_one_query(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL each query of a few hundred tickets was a scan of ``vms`` (the planner's choice at that
    many keys): one query for all of them is one scan."""
    from govcloud.store import readiness

    ran = counting(monkeypatch, ("driver_rows",))
    with aggregates.snapshot(store) as conn:
        found = readiness.dr_vm_rows(conn, ["t-a", "t-b", *(f"none-{n}" for n in range(1500))])
    assert ran["driver_rows"] == 1 and [(vm.ticket, vm.idx) for vm in found] == [("t-a", 1), ("t-a", 2), ("t-b", 1)]
