"""The audit key and anchor files (store/seal.py): modes, refusals, and an anchor that only moves forward."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from govcloud.errors import AuditKeyError
from govcloud.settings import Settings
from govcloud.store.seal import Anchor, Seal

STORE = "sqlite:////srv/govcloud/govcloud.db"


def test_the_key_is_created_0600_in_a_0700_directory_once(tmp_path: Path) -> None:
    seal = Seal(tmp_path / "state" / "audit.key", tmp_path / "state" / "audit.anchor")
    assert seal.key(create=False) is None
    key = seal.key(create=True)
    assert key is not None and len(key) == 32
    assert (tmp_path / "state" / "audit.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert Seal(seal.key_file, seal.anchor_file).key(create=True) == key  # read back, not replaced


def test_processes_creating_the_key_at_once_agree_on_one(tmp_path: Path) -> None:
    keys: list[bytes | None] = []
    threads = [threading.Thread(target=lambda: keys.append(Seal(tmp_path / "audit.key", tmp_path / "a").key(create=True)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and None not in keys
    assert [p.name for p in tmp_path.iterdir()] == ["audit.key"]  # no temporary files left


def test_a_key_others_may_read_is_refused_with_the_remedy(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    Seal(path, tmp_path / "a").key(create=True)
    path.chmod(0o644)
    with pytest.raises(AuditKeyError, match=r"may be read by group or others \(mode 0644\): run `chmod 600 "):
        Seal(path, tmp_path / "a").key(create=True)


def test_a_malformed_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    path.write_text("secret\n")
    path.chmod(0o600)
    with pytest.raises(AuditKeyError, match="expected at least 32 bytes as hex"):
        Seal(path, tmp_path / "a").key(create=False)


def test_the_anchor_never_moves_backwards(tmp_path: Path) -> None:
    seal = Seal(tmp_path / "audit.key", tmp_path / "audit.anchor")
    key = seal.key(create=True)
    assert key is not None
    seal.advance(key, STORE, 5, "e" * 64)
    seal.advance(key, STORE, 3, "c" * 64)  # a slower appender on the same host finishing late
    assert seal.read_anchor(key, STORE) == (Anchor(5, "e" * 64), None)
    seal.advance(key, "postgresql://db/other", 1, "a" * 64)  # another store's entry beside it
    assert seal.read_anchor(key, STORE) == (Anchor(5, "e" * 64), None)
    assert (tmp_path / "audit.anchor").stat().st_mode & 0o777 == 0o600


def test_concurrent_advances_end_at_the_highest(tmp_path: Path) -> None:
    seal = Seal(tmp_path / "audit.key", tmp_path / "audit.anchor")
    key = seal.key(create=True)
    assert key is not None

    def advance(start: int) -> None:
        own = Seal(seal.key_file, seal.anchor_file)  # own file descriptors, as another process has
        for seq in range(start, 200, 2):
            own.advance(key, STORE, seq, f"{seq:064x}")

    threads = [threading.Thread(target=advance, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seal.read_anchor(key, STORE) == (Anchor(199, f"{199:064x}"), None)


def test_settings_place_key_and_anchor_in_the_state_dir_unless_told() -> None:
    settings = Settings.from_env({"GOVCLOUD_STATE_DIR": "/var/lib/govcloud"})
    assert (settings.audit_key_file, settings.audit_anchor_file) == (Path("/var/lib/govcloud/audit.key"), Path("/var/lib/govcloud/audit.anchor"))
    settings = Settings.from_env({"GOVCLOUD_STATE_DIR": "/s", "GOVCLOUD_AUDIT_KEY_FILE": "/run/credentials/govcloud/audit.key",
                                  "GOVCLOUD_AUDIT_ANCHOR": "/var/log/govcloud/audit.anchor"})
    assert (settings.audit_key_file, settings.audit_anchor_file) == (Path("/run/credentials/govcloud/audit.key"),
                                                                     Path("/var/log/govcloud/audit.anchor"))
