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
from govcloud.store.db import MIGRATIONS, REVISION_FILE, Store

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
