"""Files govcloud writes are private (issue 11, item 6): the SQLite store 0600 (and its -wal/-shm),
the state directory 0700, whatever the umask."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from govcloud.files import private_dir, private_file
from govcloud.store import Store
from tests.support.tickets import engine


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_sqlite_store_and_its_directories_are_private(tmp_path: Path) -> None:
    db = tmp_path / "state" / "deeper" / "govcloud.db"
    store = Store.open(f"sqlite:///{db}")
    store.audit.append("yunwei-he", "test.write", "test", {})
    assert mode(db.parent) == mode(db.parent.parent) == 0o700
    written = [p for p in db.parent.iterdir() if p.name.startswith("govcloud.db")]
    assert {p.name for p in written} >= {"govcloud.db", "govcloud.db-wal", "govcloud.db-shm"}
    assert {p.name: mode(p) for p in written} == dict.fromkeys((p.name for p in written), 0o600)


def test_an_existing_open_store_is_tightened_but_not_a_directory_of_somebody_else(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o1777)
    os.chown(shared, 12345, 12345)  # like /tmp: not ours, so not ours to change
    db = shared / "old.db"
    db.write_bytes(b"")
    db.chmod(0o644)
    Store.open(f"sqlite:///{db}")
    assert (mode(db), mode(shared)) == (0o600, 0o1777)


def test_the_engine_keeps_the_state_directory_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    engine(f"sqlite:///{tmp_path / 'elsewhere.db'}", "yunwei-he", state_dir=state)
    assert mode(state) == 0o700


def test_private_file_never_follows_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("x", encoding="utf-8")
    target.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(target)
    private_file(link)
    assert mode(target) == 0o644 and link.is_symlink()


@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (Debian acl, installed by the devcloud)")
def test_an_acl_grant_survives_tightening(tmp_path: Path) -> None:
    """The devcloud lets user postgres traverse to its data directory by ACL: that grant must stay."""
    directory = private_dir(tmp_path / "state")
    directory.chmod(0o755)
    subprocess.run(["setfacl", "-m", "u:nobody:--x", str(directory)], check=True)
    private_dir(directory)
    acl = subprocess.run(["getfacl", "-cp", str(directory)], check=True, capture_output=True, text=True).stdout
    assert "user:nobody:--x" in acl.splitlines() and "mask::--x" in acl.splitlines() and "other::---" in acl.splitlines()
    assert mode(directory) == 0o710


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setfacl") is None, reason="runs as root with acl, as the devcloud does")
def test_the_devcloud_postgres_keeps_its_way_through_a_tightened_state_directory(tmp_path: Path) -> None:
    """The devcloud's PostgreSQL (user postgres) lives below govcloud's state directory; govcloud keeps that
    directory 0700, which must not cut a running PostgreSQL off (it did once, mid-session)."""
    from govcloud.devcloud.pg import grant_traverse

    state = tmp_path / "state"
    data = state / "devcloud" / "data"
    data.mkdir(parents=True)
    for path in (tmp_path, state, state / "devcloud"):
        path.chmod(0o755)  # postgres may search them all: nothing blocks yet
    grant_traverse(data, ours=state)
    private_dir(state)
    reach = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(data.parent)], check=False)
    assert reach.returncode == 0 and mode(state) == 0o710


def test_private_dir_without_following_links_refuses_a_link_or_a_file(tmp_path: Path) -> None:
    target = private_dir(tmp_path / "real")
    (tmp_path / "link").symlink_to(target)
    (tmp_path / "file").write_text("x")
    assert private_dir(tmp_path / "link") == tmp_path / "link"  # followed by default (a state directory may be a link)
    for name, what in (("link", "a symbolic link"), ("file", "not a directory")):
        with pytest.raises(NotADirectoryError, match=what):
            private_dir(tmp_path / name, follow_links=False)
    assert private_dir(tmp_path / "new" / "deeper", follow_links=False).is_dir() and mode(tmp_path / "new") == 0o700
