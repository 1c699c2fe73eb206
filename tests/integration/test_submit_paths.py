"""``ticket submit`` with hostile file paths on SQLite and PostgreSQL (issue 11, item 14).

On PostgreSQL a path over 512 characters reached ``tickets.source_name`` (VARCHAR(512)) and the
DataError printed every SQL parameter as an "internal error"; a non-UTF-8 file name could not be
encoded by either backend. Both are refused with exit 2 when the file is read, and nothing is stored.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from govcloud.cli import main
from govcloud.model.loading import MAX_PATH_CHARS

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SAMPLE = (REPO / "tickets" / "t-2026-0001-small.yaml").read_text(encoding="utf-8")


def _submit(url: str, path: Path | str) -> tuple[int, str]:
    runner = CliRunner()
    code = 0
    with runner.isolation() as (_, err, _):
        try:
            main(["--root", str(REPO), "--db", url, "--as", "caijing", "ticket", "submit", os.fspath(path)])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue().decode("utf-8", "replace")


def _path_of_length(base: Path, length: int) -> Path:
    """A ticket file whose absolute path has exactly ``length`` characters."""
    path = base
    while len(str(path)) + 1 + 255 < length - 20:
        path = path / ("d" * 200)
    path.mkdir(parents=True, exist_ok=True)
    name = "t" * (length - len(str(path)) - 1 - len(".yaml")) + ".yaml"
    target = path / name
    assert len(str(target)) == length
    target.write_text(SAMPLE.replace("t-2026-0001", "t-2026-0901"), encoding="utf-8")
    return target


def _stored(url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT id, source_name FROM tickets"))]
    finally:
        engine.dispose()


def test_path_over_the_column_is_refused_before_the_database(store_url: str, tmp_path: Path) -> None:
    code, err = _submit(store_url, _path_of_length(tmp_path, MAX_PATH_CHARS + 1))
    assert code == 2, err
    assert "path too long" in err and "internal error" not in err and "INSERT" not in err
    assert _stored(store_url) == []


def test_path_at_the_column_length_is_stored(store_url: str, tmp_path: Path) -> None:
    path = _path_of_length(tmp_path, MAX_PATH_CHARS)
    code, err = _submit(store_url, path)
    assert code == 0, err
    assert _stored(store_url) == [("t-2026-0901", str(path))]


def test_non_utf8_file_name_is_refused(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / os.fsdecode(b"t-\xff.yaml")
    path.write_text(SAMPLE.replace("t-2026-0001", "t-2026-0902"), encoding="utf-8")
    code, err = _submit(store_url, path)
    assert code == 2, err
    assert "t-\\xff.yaml" in err and "bad file name" in err
    assert _stored(store_url) == []
