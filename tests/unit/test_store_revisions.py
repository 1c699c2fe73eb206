"""The store knows its head revision and a database's revision without alembic (issue 16: a command on a
store at head does not pay alembic's import); these tests hold the convention that makes that possible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from govcloud.errors import StoreError
from govcloud.store.db import EMPTY_SCHEMA_ENTRY, EMPTY_URL, MIGRATIONS, REVISION_FILE, Store, make_engine

REPO = Path(__file__).resolve().parents[2]


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def test_every_migration_s_revision_id_is_its_file_number_in_one_line() -> None:
    scripts = _scripts()
    files = sorted(p.name for p in (MIGRATIONS / "versions").glob("*.py") if p.name != "__init__.py")
    assert files and all(REVISION_FILE.match(name) for name in files), files
    previous = None
    for name in files:
        script = scripts.get_revision(name[:4])
        assert script is not None and script.revision == name[:4], name
        assert script.down_revision == previous, name
        previous = name[:4]


def test_head_revision_is_alembic_s_head() -> None:
    assert Store.head_revision() == _scripts().get_current_head()


def test_current_revision_none_before_and_head_after_migrating(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}", migrate=False)
    assert store.current_revision() is None
    store.upgrade()
    assert store.current_revision() == Store.head_revision()


def test_a_store_with_two_recorded_revisions_is_refused(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
    with pytest.raises(StoreError, match="several schema revisions"):
        store.current_revision()


def test_opening_a_store_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    Store.open(url)
    code = ("import sys\nfrom govcloud.store.db import Store\n"
            f"Store.open({url!r})\nprint('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _schema(store: Store) -> tuple[list[tuple[str, str, str]], list[tuple[object, ...]], list[tuple[object, ...]], str | None]:
    with store.engine.connect() as conn:
        master = [tuple(r) for r in conn.execute(sa.text("SELECT type, name, sql FROM sqlite_master ORDER BY type, name"))]
        head = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM audit_head"))]
        locks = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM locks"))]
    return master, head, locks, store.current_revision()  # type: ignore[return-value]


def test_a_read_without_a_store_gets_the_migrated_schema_from_the_cache_without_alembic(tmp_path: Path) -> None:
    """The first read of a store that does not exist migrates an in-memory schema and caches its SQL; the
    next read gets the very same schema (tables, indexes, triggers, seed rows, revision) without alembic."""
    cache = tmp_path / "state" / "cache"
    cache.parent.mkdir(mode=0o700)
    migrated = Store(make_engine(EMPTY_URL))
    migrated.empty_schema(cache)
    assert (cache / EMPTY_SCHEMA_ENTRY).is_file()
    code = ("import sys\nfrom pathlib import Path\nfrom govcloud.store.db import EMPTY_URL, Store, make_engine\n"
            f"s = Store(make_engine(EMPTY_URL)); s.empty_schema(Path({str(cache)!r}))\n"
            "print('alembic' in sys.modules, s.current_revision())")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", Store.head_revision()]
    again = Store(make_engine(EMPTY_URL))
    again.empty_schema(cache)
    assert _schema(again) == _schema(migrated)
    assert any(kind == "trigger" for kind, _, _ in _schema(again)[0])
    assert _schema(again)[1] and _schema(again)[2]  # the genesis audit head, the quota lock row


def test_a_read_without_a_cache_directory_migrates_and_writes_nothing(tmp_path: Path) -> None:
    store = Store(make_engine(EMPTY_URL))
    store.empty_schema(tmp_path / "no-state" / "cache")  # its state directory does not exist: nothing is created
    assert store.current_revision() == Store.head_revision() and not (tmp_path / "no-state").exists()
    other = Store(make_engine(EMPTY_URL))
    other.empty_schema(None)
    assert _schema(other) == _schema(store)
