"""The audit chain against someone who can write the database (issue 11, item 7), on SQLite and PostgreSQL:
a broken head is a clear error and appends stop; truncation and re-hashing are caught by the key and the
anchor outside the database; the anchor only moves forward and may lag but never lead."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from govcloud.cli import main
from govcloud.errors import AuditHeadBroken, AuditKeyError
from govcloud.settings import Settings
from govcloud.store import Store
from govcloud.store import seal as seal_module
from govcloud.store.audit import record_hash
from govcloud.store.seal import Seal
from tests.support.tickets import REPO, write_ticket

pytestmark = pytest.mark.integration


def sealed(url: str, base: Path) -> Store:
    return Store.open(url, seal=Seal(base / "audit.key", base / "audit.anchor"))


def fill(store: Store, n: int = 5) -> None:
    for i in range(n):
        store.audit.append("ops", "test.event", f"thing:{i}", {"i": i})


def execute(store: Store, sql: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def rows(store: Store) -> list[sa.Row[tuple[object, ...]]]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT * FROM audit_log ORDER BY seq")))


def test_append_on_a_deleted_head_is_refused_with_what_to_do(store_url: str, tmp_path: Path) -> None:
    store = sealed(store_url, tmp_path)
    fill(store, 3)
    execute(store, "DELETE FROM audit_head")
    with pytest.raises(AuditHeadBroken) as refused:
        store.audit.append("ops", "test.event", "thing:x")
    assert "head row is missing" in str(refused.value) and "govcloud audit verify" in str(refused.value)
    assert len(rows(store)) == 4  # nothing appended
    assert store.audit.verify()[1] == ["audit head row is missing"]


def test_append_on_a_head_that_does_not_end_the_chain_is_refused(store_url: str, tmp_path: Path) -> None:
    store = sealed(store_url, tmp_path)
    fill(store, 3)
    execute(store, "DELETE FROM audit_log WHERE seq = 4")  # the newest record; the head still names it
    with pytest.raises(AuditHeadBroken, match=r"head says record 4 but the newest record is 3"):
        store.audit.append("ops", "test.event", "thing:x")
    assert len(rows(store)) == 3


def test_cli_command_on_a_deleted_head_exits_1_naming_the_problem_and_changes_nothing(
        store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store.for_settings(Settings.from_env().with_overrides(db=store_url))
    execute(store, "DELETE FROM audit_head")
    _, path = write_ticket(tmp_path, tenant="gd-sthjt", system="hjjc", requester="ouweiming",
                           vms=[{"name": "app", "count": 1, "flavor": "gc.small", "cloud": "gd-prov"}])
    with pytest.raises(SystemExit) as exited:
        main(["--root", str(REPO), "--db", store_url, "--as", "ouweiming", "ticket", "submit", str(path)])
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert "internal error" not in err and "Traceback" not in err
    assert "error: audit chain broken: the audit chain's head row is missing" in err
    assert "run `govcloud audit verify`" in err
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM tickets")).scalar() == 0


def test_verify_names_the_records_of_a_truncated_tail_even_with_the_head_fixed(store_url: str, tmp_path: Path) -> None:
    store = sealed(store_url, tmp_path)
    fill(store, 6)  # records 1 (the migration) to 7
    fourth = rows(store)[3]
    execute(store, "DELETE FROM audit_log WHERE seq > 4")
    execute(store, "UPDATE audit_head SET seq = 4, hash = :h", h=fourth.hash)
    count, problems = store.audit.verify()
    assert count == 4
    assert problems == [f"record 5–7 missing: the chain ends at record 4 but the anchor {tmp_path / 'audit.anchor'} "
                        "says record 7 was committed (the newest records were deleted)"]


def plain_rehash(store: Store, *, keep_key_ids: bool) -> None:
    """What someone with the database but not the key can do: rewrite each hash with sha256, and the head."""
    prev = "0" * 64
    for row in rows(store):
        digest = record_hash(prev, row.seq, row.ts, row.actor, row.action, row.subject, row.details)
        execute(store, "UPDATE audit_log SET prev_hash = :p, hash = :h, key_id = :k WHERE seq = :s",
                p=prev, h=digest, k=row.key_id if keep_key_ids else None, s=row.seq)
        prev = digest
    execute(store, "UPDATE audit_head SET hash = :h", h=prev)


def test_verify_catches_an_edit_rehashed_with_plain_sha256(store_url: str, tmp_path: Path) -> None:
    store = sealed(store_url, tmp_path)
    fill(store, 5)
    execute(store, "UPDATE audit_log SET details = :d WHERE seq = 3", d='{"i":99}')
    plain_rehash(store, keep_key_ids=True)
    _, problems = store.audit.verify()
    assert [p.split(":")[0] for p in problems if "content does not match its hash" in p] == [f"record {n}" for n in range(1, 7)]
    assert problems[-1] == f"record 6 does not have the hash the anchor {tmp_path / 'audit.anchor'} recorded: the chain was rewritten and re-hashed"


def test_verify_catches_a_chain_turned_back_into_plain_records(store_url: str, tmp_path: Path) -> None:
    """Records written before keys existed verify with plain sha256; claiming that for all of them fails
    at the anchor (and a partial downgrade at the first plain record after a keyed one)."""
    store = sealed(store_url, tmp_path)
    fill(store, 5)
    execute(store, "UPDATE audit_log SET details = :d WHERE seq = 3", d='{"i":99}')
    plain_rehash(store, keep_key_ids=False)
    _, problems = store.audit.verify()
    assert problems == [f"record 6 does not have the hash the anchor {tmp_path / 'audit.anchor'} recorded: the chain was rewritten and re-hashed"]
    execute(store, "UPDATE audit_log SET key_id = 'abcd' WHERE seq = 1")
    assert "record 2: plain hash after keyed records (since record 1): rewritten without the audit key" in store.audit.verify()[1]


def test_a_plain_chain_from_before_keys_still_verifies_and_goes_on_keyed(store_url: str, tmp_path: Path) -> None:
    old = Store.open(store_url)  # records hashed as before migration 0008
    fill(old, 2)
    assert {r.key_id for r in rows(old)} == {None}
    store = sealed(store_url, tmp_path)
    fill(store, 2)
    assert [r.key_id is not None for r in rows(store)] == [False, False, False, True, True]
    assert store.audit.verify() == (5, [])
    with pytest.raises(AuditKeyError, match="opened the store without an audit key"):
        old.audit.append("ops", "test.event", "thing:plain")
    elsewhere = tmp_path / "other-host"
    with pytest.raises(AuditKeyError, match=r"no audit key at .*other-host/audit.key: copy the key"):
        sealed(store_url, elsewhere).audit.append("ops", "test.event", "thing:no-key")
    assert not (elsewhere / "audit.key").exists()  # never a second key for a chain that is keyed
    elsewhere.mkdir()
    (elsewhere / "audit.key").write_text("ab" * 32)
    (elsewhere / "audit.key").chmod(0o600)
    with pytest.raises(AuditKeyError, match=r"is not the key that wrote record 5"):
        sealed(store_url, elsewhere).audit.append("ops", "test.event", "thing:other-key")
    assert not (elsewhere / "audit.anchor").exists()
    assert store.audit.verify() == (5, [])


def test_a_rolled_back_append_does_not_move_the_anchor(store_url: str, tmp_path: Path) -> None:
    store = sealed(store_url, tmp_path)
    fill(store, 2)
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.audit.append("ops", "test.event", "thing:lost", connection=conn)
        raise RuntimeError("the state change failed")
    anchor = store.audit.anchor()
    assert anchor is not None and anchor.seq == 3
    assert store.audit.verify() == (3, [])


def test_an_anchor_that_lags_after_a_crash_is_fine(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = sealed(store_url, tmp_path)
    fill(store, 2)

    def crash(path: Path, text: str) -> None:
        raise OSError("killed between the commit and the anchor write")

    monkeypatch.setattr(seal_module, "_write_atomically", crash)
    fill(store, 2)
    monkeypatch.undo()
    anchor = store.audit.anchor()
    assert anchor is not None and anchor.seq == 3
    assert store.audit.verify() == (5, [])


def test_the_anchor_never_goes_backwards_with_two_appenders(store_url: str, tmp_path: Path) -> None:
    store = sealed(store_url, tmp_path)
    seen: list[int] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def appender(n: int) -> None:
        own = sealed(store_url, tmp_path)  # a separate engine, as the CLI and the daemon have
        try:
            for i in range(15):
                own.audit.append(f"w{n}", "race", f"thing:{n}-{i}")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            own.close()

    def watcher() -> None:
        while not done.is_set():
            anchor = store.audit.anchor()
            if anchor is not None:
                seen.append(anchor.seq)

    threads = [threading.Thread(target=appender, args=(n,)) for n in range(2)]
    watch = threading.Thread(target=watcher)
    watch.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watch.join()
    assert errors == []
    assert seen == sorted(seen)
    anchor = store.audit.anchor()
    assert anchor is not None and anchor.seq == 31
    assert store.audit.verify() == (31, [])


def test_cli_verify_reports_the_anchor_and_fails_on_truncation(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env().with_overrides(db=store_url)
    store = Store.for_settings(settings)
    fill(store, 3)
    with pytest.raises(SystemExit) as ok:
        main(["--db", store_url, "audit", "verify"])
    assert ok.value.code == 0
    assert f"ok: 4 audit record(s), chain intact; reaches record 4 anchored in {settings.audit_anchor_file}" in capsys.readouterr().out
    execute(store, "DELETE FROM audit_log WHERE seq = 4")
    execute(store, "UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit_log WHERE seq = 3)")
    with pytest.raises(SystemExit) as broken:
        main(["--db", store_url, "audit", "verify"])
    assert broken.value.code == 1
    assert "error: audit chain broken: record 4 missing: the chain ends at record 3" in capsys.readouterr().err


def test_the_anchor_file_is_0600_and_keyed(store_url: str, tmp_path: Path) -> None:
    store = sealed(store_url, tmp_path)
    fill(store, 1)
    anchor = tmp_path / "audit.anchor"
    assert anchor.stat().st_mode & 0o777 == 0o600
    data = json.loads(anchor.read_text())
    entry = data["stores"][store.describe()]
    entry["seq"] = 1
    entry["hash"] = hashlib.sha256(b"forged").hexdigest()
    anchor.write_text(json.dumps(data))
    assert any("does not verify with the audit key" in p for p in store.audit.verify()[1])


def test_a_chain_written_before_migration_0008_verifies_after_it(store_url: str, tmp_path: Path) -> None:
    old = Store.open(store_url, migrate=False)
    old.upgrade("0007")
    for i in range(3):  # as govcloud before 0008 wrote them
        old.audit.append("ops", "test.event", f"thing:{i}", {"i": i}, before_keys=True)
    store = sealed(store_url, tmp_path)  # opening migrates to 0008 and records it, keyed
    assert store.current_revision() == store.head_revision()
    assert [r.action for r in store.audit.records()] == ["store.migrate", *["test.event"] * 3, "store.migrate"]
    assert [r.key_id is not None for r in rows(store)] == [False] * 4 + [True]
    assert store.audit.verify() == (5, [])
