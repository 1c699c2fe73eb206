"""One recovery run per centre at a time, whoever asks (issue 13, item 2): twenty processes' worth of
stores race to open a run of the same centre on SQLite and on a real PostgreSQL; exactly one gets it,
every other is refused with RunInProgress (the unique ``recovery_runs.active`` key decides on
PostgreSQL, where two transactions can both see no run before either inserts). No cloud needed."""

from __future__ import annotations

import threading

import pytest

from govcloud.store import runs
from govcloud.store.runs import RunInProgress
from tests.support.tickets import open_store

pytestmark = pytest.mark.integration


def test_twenty_racing_runs_of_one_centre_one_wins(store_url: str) -> None:
    stores = [open_store(store_url) for _ in range(20)]  # a connection pool per "process"
    start = threading.Barrier(len(stores))
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(n: int) -> None:
        start.wait()
        try:
            with stores[n].transaction() as conn:
                runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-main", user="yunwei-he", owner=f"p{n}",
                                now="2026-12-05T00:00:00+00:00", plan={})
            result = "won"
        except RunInProgress:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["refused"] * 19 + ["won"]
    with stores[0].transaction() as conn:
        (run,) = runs.runs(conn)
        assert runs.active_run(conn, "gd-prov", "gz-main") == run
        runs.end_run(conn, run.id, state="finished", now="2026-12-05T00:01:00+00:00", detail={})
        again = runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-main", user="yunwei-he", owner="later",
                                now="2026-12-05T00:02:00+00:00", plan={})
    assert again.id != run.id  # the centre is free once the run ended
    for store in stores:
        store.close()
