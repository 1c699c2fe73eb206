"""What anchors the audit chain outside the database: a key the store does not hold, and an anchor file.

A hash chain kept only in the database proves nothing against someone who can write the database: they
delete the newest records and fix the head row, or edit a record and re-hash everything after it. Two
things outside the database close that:

* the **key** (``audit.key``, 0600): every record's hash is an HMAC-SHA256 under it, so re-hashing a
  rewritten chain needs the key, not just the database;
* the **anchor** (``audit.anchor``, 0600): per store (its URL, password hidden — one state directory
  may serve several databases), the seq and hash of the newest record this host committed, HMAC'd,
  replaced atomically after each append. A chain that ends before the anchored record, or holds
  another hash there, was truncated or rewritten. The anchor may lag the database (a crash between the
  commit and the write; records another host appended) — that is harmless; an anchor *ahead* of the
  database is the tamper signal. So it only ever moves forward: the write happens under a lock file,
  and only when the new seq is higher than the one on disk (two appenders on one host, CLI and daemon).

The daemon also logs the head whenever it moves, so an external log collector is a third anchor.
Owned by the store; ``AuditLog`` (``audit.py``) calls it; ``Store.open(..., seal=...)`` passes it in.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from govcloud.errors import AuditKeyError

log = logging.getLogger("govcloud.store.audit")

KEY_BYTES = 32


def keyed_hash(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 in hex: the keyed counterpart of the chain's plain sha256."""
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A short public name of a key (stored with each record): says *which* key wrote a record without
    revealing it, so a host with another key gets "wrong key", not a wall of hash mismatches."""
    return keyed_hash(key, b"govcloud audit key id")[:16]


@dataclass(frozen=True)
class Anchor:
    """The newest record a host saw committed: ``seq`` and its ``hash``."""

    seq: int
    hash: str


def _anchor_mac(key: bytes, store: str, seq: int, digest: str) -> str:
    return keyed_hash(key, json.dumps(["govcloud audit anchor", store, seq, digest]).encode())


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path`` (created 0600): one anchor writer at a time on this host."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_atomically(path: Path, text: str) -> None:
    """Write a 0600 temporary file beside ``path``, fsync it, rename it over ``path``: a reader (or a host
    after a power cut) sees the old anchor or the new one, never half of one — a damaged anchor would be
    reported as tampering."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)  # no fsync of the directory: a rename lost in a crash leaves the older anchor, which may lag


class Seal:
    """The key file and the anchor file of one process; the key is read (or created) once."""

    def __init__(self, key_file: Path, anchor_file: Path) -> None:
        self.key_file = key_file
        self.anchor_file = anchor_file
        self._key: bytes | None = None

    def key(self, *, create: bool) -> bytes | None:
        """The key; None when the file does not exist and ``create`` is false. Created on first use with
        32 random bytes, 0600, through a link so that two processes creating it at once agree on one."""
        if self._key is None:
            if not self.key_file.exists():
                if not create:
                    return None
                self._create_key()
            self._key = self._read_key()
        return self._key

    def _create_key(self) -> None:
        self.key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.key_file.with_name(f".{self.key_file.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.key_file)  # fails if another process created it first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        log.info("created audit key %s: back it up apart from the database; every host writing this store needs it",
                    self.key_file)

    def _read_key(self) -> bytes:
        mode = stat.S_IMODE(self.key_file.stat().st_mode)
        if mode & 0o077:
            raise AuditKeyError(f"audit key {self.key_file} may be read by group or others (mode {mode:04o}): "
                                f"run `chmod 600 {self.key_file}` (and replace the key if others may have read it)")
        text = self.key_file.read_text(encoding="ascii", errors="replace").strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) < KEY_BYTES:
            raise AuditKeyError(f"audit key {self.key_file}: expected at least {KEY_BYTES} bytes as hex "
                                f"({2 * KEY_BYTES} hex digits), found {len(text)} characters")
        return key

    def _anchors(self) -> tuple[dict[str, dict[str, object]], str | None]:
        """Every store's entry of the anchor file (empty when there is none yet), or a problem."""
        try:
            data = json.loads(self.anchor_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, None
        except (ValueError, UnicodeDecodeError):
            return {}, f"audit anchor {self.anchor_file} is not an anchor file (edited or damaged)"
        stores = data.get("stores") if isinstance(data, dict) else None
        if not isinstance(stores, dict):
            return {}, f"audit anchor {self.anchor_file} is not an anchor file (edited or damaged)"
        return stores, None

    def read_anchor(self, key: bytes, store: str) -> tuple[Anchor | None, str | None]:
        """(anchor, None); (None, None) when ``store`` has none yet; (None, problem) when it does not verify."""
        stores, problem = self._anchors()
        entry = stores.get(store)
        if problem is not None or entry is None:
            return None, problem
        try:
            anchor = Anchor(int(entry["seq"]), str(entry["hash"]))  # type: ignore[call-overload]
            mac = str(entry["mac"])
        except (ValueError, KeyError, TypeError):
            return None, f"audit anchor {self.anchor_file}: the entry of {store} is damaged (edited?)"
        if not hmac.compare_digest(mac, _anchor_mac(key, store, anchor.seq, anchor.hash)):
            return None, (f"audit anchor {self.anchor_file}: the entry of {store} does not verify with the audit key "
                          f"{self.key_file} (edited, or written under another key)")
        return anchor, None

    def advance(self, key: bytes, store: str, seq: int, digest: str) -> None:
        """Anchor record ``seq`` of ``store`` if it is newer than the anchor on disk; never moves it backwards.

        Called after the record's transaction committed. Failing here must not fail the append (it is
        committed): the anchor just lags, which ``audit verify`` accepts, so problems are logged.
        """
        try:
            self.anchor_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with _locked(self.anchor_file.with_name(self.anchor_file.name + ".lock")):
                current, problem = self.read_anchor(key, store)
                if problem is not None:
                    log.error("%s; left as it is for `govcloud audit verify` to report", problem)
                    return
                if current is not None and current.seq >= seq:
                    return
                stores, _ = self._anchors()
                stores[store] = {"seq": seq, "hash": digest, "mac": _anchor_mac(key, store, seq, digest)}
                _write_atomically(self.anchor_file, json.dumps({"stores": stores}, indent=1, sort_keys=True) + "\n")
        except OSError as exc:
            log.error("cannot write the audit anchor %s (record %d stays committed; the anchor lags): %s",
                      self.anchor_file, seq, exc)
