"""The cache of validated states (issue 16): never stale, never trusted beyond its MAC and its own classes.

A state loaded with ``DataPaths.cache`` set is parsed once; after that it comes from the cache until one
byte of one file changes (or a file comes or goes, or the overrides, the day or the model do). A tampered,
truncated or foreign entry is a miss, and nothing in it is ever run.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import pickle
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from govcloud.errors import ConfigError
from govcloud.model import cache, state
from govcloud.model.resources import Resources
from govcloud.settings import DataPaths, Settings
from tests.unit.model.test_corpus import QUO, TEN, TIC, TOPO, make_dataset


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times ``parse_all`` ran (one element per run)."""
    runs: list[int] = []
    real = state.parse_all

    def counting(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(state, "parse_all", counting)
    return runs


def _paths(tmp_path: Path) -> DataPaths:
    root = make_dataset(tmp_path, {})
    (tmp_path / "state").mkdir(mode=0o700, exist_ok=True)  # the state directory exists: govcloud has been used here
    return DataPaths(root=root, cache=tmp_path / "state" / "cache")


def _entry(paths: DataPaths) -> Path:
    assert paths.cache is not None
    files = state.default_ticket_files(paths)
    return paths.cache / cache.entry_name(state._variant(paths, files, {}, None))


def test_second_load_comes_from_the_cache(tmp_path: Path, parses: list[int]) -> None:
    paths = _paths(tmp_path)
    first = state.load_state(paths)
    second = state.load_state(paths)
    assert len(parses) == 1
    assert second == first
    assert [t.id for t in second.tickets] == [t.id for t in first.tickets]
    assert second.tenants["gd-zf"].where.line == first.tenants["gd-zf"].where.line  # marks kept: messages still name lines


def test_no_state_directory_no_cache_and_nothing_created(tmp_path: Path, parses: list[int]) -> None:
    """A read on a machine where govcloud never ran creates nothing (issue 16): no state dir, no cache."""
    root = make_dataset(tmp_path, {})
    paths = DataPaths(root=root, cache=tmp_path / "fresh" / "cache")
    state.load_state(paths)
    state.load_state(paths)
    assert len(parses) == 2
    assert not (tmp_path / "fresh").exists()


def test_without_a_cache_directory_every_load_parses(tmp_path: Path, parses: list[int]) -> None:
    paths = replace(_paths(tmp_path), cache=None)
    state.load_state(paths)
    state.load_state(paths)
    assert len(parses) == 2


@pytest.mark.parametrize("rel", [TOPO, TEN, QUO, "quotas/policy.yaml", TIC])
def test_one_byte_changed_in_any_file_is_revalidated(rel: str, tmp_path: Path, parses: list[int]) -> None:
    paths = _paths(tmp_path)
    state.load_state(paths)
    path = paths.root / rel
    raw = path.read_bytes()
    path.write_bytes(raw[:-1] + (b" " if raw[-1:] == b"\n" else b"\n"))  # one byte, the data the same
    os.utime(path, ns=(0, 0))  # and an old time: only the bytes tell
    state.load_state(paths)
    assert len(parses) == 2


def test_a_changed_value_is_seen(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    before = state.load_state(paths)
    text = (paths.root / TEN).read_text(encoding="utf-8")
    name = before.tenants["gd-zf"].name
    (paths.root / TEN).write_text(text.replace(name, name[:-1] + ("X" if name[-1] != "X" else "Y"), 1), encoding="utf-8")
    assert state.load_state(paths).tenants["gd-zf"].name != name


def test_a_change_that_breaks_the_data_is_reported_not_served_from_the_cache(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    state.load_state(paths)
    with (paths.root / TEN).open("a", encoding="utf-8") as stream:
        stream.write("unknown_key: 1\n")
    with pytest.raises(ConfigError):
        state.load_state(paths)


def test_a_file_added_or_removed_is_a_miss(tmp_path: Path, parses: list[int]) -> None:
    paths = _paths(tmp_path)
    state.load_state(paths)
    extra = paths.root / "tickets" / "t-zz.yaml"
    extra.write_bytes((paths.root / TIC).read_bytes().replace(b"t-1", b"t-zz"))
    assert "t-zz" in {t.id for t in state.load_state(paths).tickets}
    extra.unlink()
    assert "t-zz" not in {t.id for t in state.load_state(paths).tickets}  # the first entry again: its files are these
    assert len(parses) == 2
    (paths.root / "quotas" / "extra.yaml").write_text("version: 1\n", encoding="utf-8")
    state.load_state(paths)
    assert len(parses) == 3


def test_overrides_day_and_model_are_part_of_the_key(tmp_path: Path, parses: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _paths(tmp_path)
    state.load_state(paths, today=datetime.date(2026, 1, 1))
    state.load_state(paths, today=datetime.date(2026, 1, 2))
    quota = next(iter(state.load_state(paths).quotas.quotas))
    state.load_state(paths, quota_overrides={quota: Resources(instances=1, vcpus=1, ram_mb=1, disk_gb=1)})
    monkeypatch.setattr(state, "_model_fingerprint", lambda: b"another govcloud")
    state.load_state(paths)
    assert len(parses) == 5


def test_entries_and_key_are_private(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    state.load_state(paths)
    assert paths.cache is not None
    assert stat.S_IMODE(paths.cache.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in paths.cache.iterdir()} == {
        cache.KEY_FILE: 0o600, _entry(paths).name: 0o600}


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "empty", "garbage"])
def test_a_damaged_entry_is_ignored(damage: str, tmp_path: Path, parses: list[int]) -> None:
    paths = _paths(tmp_path)
    good = state.load_state(paths)
    entry = _entry(paths)
    raw = bytearray(entry.read_bytes())
    if damage == "flip a byte":
        raw[-20] ^= 0x01
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "empty":
        raw = bytearray()
    else:
        raw = bytearray(os.urandom(len(raw)))
    entry.write_bytes(bytes(raw))
    assert state.load_state(paths) == good
    assert len(parses) == 2


class _Plant:
    """A pickle that writes a file when loaded: what a forged entry would try."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.target), "w"))


def _forge(paths: DataPaths, payload: bytes, secret: bytes) -> None:
    key = state.cache_key(paths, state.default_ticket_files(paths), state.read_sources(paths, state.default_ticket_files(paths)),  # type: ignore[arg-type]
                          {}, None)
    body = key + payload
    _entry(paths).write_bytes(cache.MAGIC + hmac.new(secret, body, hashlib.sha256).digest() + body)


def test_a_forged_entry_without_the_key_is_never_unpickled(tmp_path: Path, parses: list[int]) -> None:
    paths = _paths(tmp_path)
    state.load_state(paths)
    target = tmp_path / "planted"
    _forge(paths, pickle.dumps(_Plant(target)), secret=b"\0" * 32)  # the attacker does not know the key
    state.load_state(paths)
    assert not target.exists()
    assert len(parses) == 2


def test_even_an_entry_with_a_good_mac_names_only_model_classes(tmp_path: Path, parses: list[int]) -> None:
    paths = _paths(tmp_path)
    state.load_state(paths)
    assert paths.cache is not None
    target = tmp_path / "planted"
    _forge(paths, pickle.dumps(_Plant(target)), secret=(paths.cache / cache.KEY_FILE).read_bytes())
    state.load_state(paths)
    assert not target.exists()
    assert len(parses) == 2


def test_a_key_readable_by_others_disables_the_cache(tmp_path: Path, parses: list[int]) -> None:
    paths = _paths(tmp_path)
    state.load_state(paths)
    assert paths.cache is not None
    os.chmod(paths.cache / cache.KEY_FILE, 0o644)
    state.load_state(paths)
    state.load_state(paths)
    assert len(parses) == 3


def test_a_linked_entry_is_not_followed(tmp_path: Path, parses: list[int]) -> None:
    paths = _paths(tmp_path)
    state.load_state(paths)
    entry = _entry(paths)
    elsewhere = tmp_path / "elsewhere"
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)
    state.load_state(paths)
    assert len(parses) == 2


def test_the_cli_caches_under_the_state_directory(tmp_path: Path) -> None:
    settings = Settings.from_env({"GOVCLOUD_STATE_DIR": str(tmp_path / "st")})
    assert settings.data.cache == tmp_path / "st" / "cache"


def test_users_file_added_and_changed_is_a_miss(tmp_path: Path, parses: list[int]) -> None:
    paths = _paths(tmp_path)
    assert state.load_state(paths).users.users == ()
    users = paths.root / "users.yaml"
    line = "version: 1\nusers:\n- {{id: sunkai, name: {name}, role: requester, tenants: [gd-gat]}}\n"
    users.write_text(line.format(name="Sun"), encoding="utf-8")
    assert [u.name for u in state.load_state(paths).users.users] == ["Sun"]
    users.write_text(line.format(name="Sum"), encoding="utf-8")
    assert [u.name for u in state.load_state(paths).users.users] == ["Sum"]
    assert len(parses) == 3


def test_the_collector_is_paused_while_loading_and_resumed_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    seen: list[bool] = []
    real = state.validate

    def spying(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(state, "validate", spying)
    paths = _paths(tmp_path)
    assert gc.isenabled()
    state.load_state(paths)
    assert seen == [False]
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0  # the state is out of the collector's way
    state.load_state(replace(paths, cache=None))
    assert seen == [False, False] and gc.isenabled()
    gc.unfreeze()


def test_the_cache_keeps_a_bounded_number_of_entries(tmp_path: Path) -> None:
    shared = tmp_path / "state" / "cache"
    shared.parent.mkdir(mode=0o700)
    for i in range(cache.MAX_ENTRIES + 3):
        root = make_dataset(tmp_path / f"r{i}", {})
        state.load_state(DataPaths(root=root, cache=shared))
    assert len(list(shared.glob("state-*"))) == cache.MAX_ENTRIES
    newest = DataPaths(root=tmp_path / f"r{cache.MAX_ENTRIES + 2}" / "data", cache=shared)
    assert _entry(newest).exists()


def test_validate_and_listings_keep_their_own_entries(tmp_path: Path, parses: list[int]) -> None:
    """``validate`` loads the tickets, the listings do not: one must not evict the other."""
    paths = _paths(tmp_path)
    for _ in range(3):
        state.load_state(paths)
        state.load_state(paths, [])
    assert len(parses) == 2


def test_a_recovery_plan_added_or_changed_is_revalidated(tmp_path: Path, parses: list[int]) -> None:
    """Recovery plans (issue 13) are part of the key: a plan added after a cached load is validated, not
    hidden behind the cached state of the files before it."""
    paths = _paths(tmp_path)
    state.load_state(paths)
    plans = paths.root / "recovery"
    plans.mkdir()
    (plans / "bad.yaml").write_text("version: 1\ncloud: no-such-cloud\ngroups: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no-such-cloud"):
        state.load_state(paths)
    (plans / "bad.yaml").unlink()
    state.load_state(paths)
    assert len(parses) == 2  # the third load is the first one's again: from the cache


def test_a_role_added_is_part_of_the_key(tmp_path: Path, parses: list[int]) -> None:
    paths = _paths(tmp_path)
    state.load_state(paths)
    (paths.resolve(paths.roles) / "new-role").mkdir(parents=True)
    state.load_state(paths)
    assert len(parses) == 2
