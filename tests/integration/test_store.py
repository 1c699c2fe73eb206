"""The state store on SQLite and on a real PostgreSQL: migrations and the hash-chained audit log."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from govcloud.cli import main
from govcloud.store import Store

pytestmark = pytest.mark.integration


NEWEST = max(p.name.split("_", 1)[0] for p in (Path(__file__).parents[2] / "govcloud/store/migrations/versions").glob("0*.py"))
"""The newest migration file's revision: every revision is named after its file's number."""


def test_open_migrates_once_and_records_it(store_url: str) -> None:
    store = Store.open(store_url)
    assert store.current_revision() == store.head_revision() == NEWEST
    Store.open(store_url)  # a second open finds nothing to do
    records = store.audit.records()
    assert [(r.actor, r.action, r.details["to"]) for r in records] == [("system", "store.migrate", NEWEST)]
    assert store.audit.verify() == (1, [])


def test_append_keeps_utf8_and_chains(store_url: str) -> None:
    store = Store.open(store_url)
    first = store.audit.append("张伟", "ticket.submit", "ticket:t-1", {"租户": "广东省公安厅"})
    second = store.audit.append("approver", "ticket.approve", "ticket:t-1", {"reason": "同意"})
    assert second.prev_hash == first.hash and second.seq == first.seq + 1
    assert store.audit.records(subject="ticket:t-1")[0].details == {"租户": "广东省公安厅"}
    assert [r.action for r in store.audit.records(actor="approver")] == ["ticket.approve"]
    assert store.audit.verify() == (3, [])


def _fill(store: Store, n: int = 5) -> None:
    for i in range(n):
        store.audit.append("ops", "test.event", f"thing:{i}", {"i": i})


def _execute(store: Store, sql: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def test_verify_detects_edited_record(store_url: str) -> None:
    store = Store.open(store_url)
    _fill(store)
    _execute(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    count, problems = store.audit.verify()
    assert count == 6
    assert problems == [f"record 3: content does not match its hash (edited: test.event thing:1 by mallory at {store.audit.records()[2].ts})"]


def test_verify_detects_deleted_middle_record(store_url: str) -> None:
    store = Store.open(store_url)
    _fill(store)
    _execute(store, "DELETE FROM audit_log WHERE seq = 4")
    _, problems = store.audit.verify()
    assert problems == [
        "record 4 missing before record 5 (deleted?)",
        "record 5: previous-hash link broken (a record before it was deleted, inserted or edited)",
    ]


def test_verify_detects_deleted_newest_record(store_url: str) -> None:
    store = Store.open(store_url)
    _fill(store)
    _execute(store, "DELETE FROM audit_log WHERE seq = 6")
    _, problems = store.audit.verify()
    assert problems == ["chain ends at record 5 but the head says record 6: newest records were deleted or the head was edited"]


def test_verify_detects_rewritten_details_even_with_recomputed_row_hash(store_url: str) -> None:
    """Someone who recomputes one record's hash still breaks the next record's link."""
    from govcloud.store.audit import record_hash

    store = Store.open(store_url)
    _fill(store)
    rec = store.audit.records()[2]
    forged = record_hash(rec.prev_hash, rec.seq, rec.ts, rec.actor, rec.action, rec.subject, '{"i":99}')
    _execute(store, "UPDATE audit_log SET details = :d, hash = :h WHERE seq = :s", d='{"i":99}', h=forged, s=rec.seq)
    _, problems = store.audit.verify()
    assert problems == [f"record {rec.seq + 1}: previous-hash link broken (a record before it was deleted, inserted or edited)"]


def test_concurrent_appends_never_fork_the_chain(store_url: str) -> None:
    store = Store.open(store_url)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        own = Store.open(store_url)  # a separate engine, as a separate process would have
        try:
            for i in range(20):
                own.audit.append(f"w{n}", "race", f"thing:{n}-{i}")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.audit.verify() == (81, [])


def test_cli_audit_verify_detects_edit(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store.open(store_url)
    _fill(store, 2)
    with pytest.raises(SystemExit) as ok:
        main(["--db", store_url, "audit", "verify"])
    assert ok.value.code == 0
    assert "ok: 3 audit record(s), chain intact" in capsys.readouterr().out
    _execute(store, "UPDATE audit_log SET subject = 'thing:x' WHERE seq = 2")
    with pytest.raises(SystemExit) as broken:
        main(["--db", store_url, "audit", "verify"])
    assert broken.value.code == 1
    err = capsys.readouterr().err
    assert "error: audit chain broken: record 2: content does not match its hash" in err
    assert "Traceback" not in err


def test_cli_audit_list_json(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    Store.open(store_url).audit.append("张伟", "ticket.submit", "ticket:t-9", {"系统": "户籍"})
    with pytest.raises(SystemExit):
        main(["--db", store_url, "--as", "admin", "audit", "list", "-o", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert rows[-1]["actor"] == "张伟" and rows[-1]["details"] == {"系统": "户籍"}


def test_unreachable_database_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--db", "postgresql+psycopg2://nobody@/x?host=/nonexistent", "--as", "admin", "audit", "list"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open or migrate the state store postgresql+psycopg2://nobody@/x?host=%2Fnonexistent: connection to server")
    assert "Traceback" not in err
