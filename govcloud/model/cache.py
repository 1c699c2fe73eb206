"""A private cache of validated values (one per data root and kind of load), keyed by the exact bytes they were made from.

Why: every command re-read and re-validated the whole desired state; at 5,000 tenants that is seconds
before anything else happens. The key (``state.py`` builds it) is a SHA-256 over the govcloud version,
the model's own source, and the name and bytes of every data file read, so a change of one byte in one
file, a file added or removed, or an upgrade is a miss: the cache can be missing, never stale. Only a
valid state is stored (problems are always found by validating).

Why it is safe to read back, given that unpickling runs whatever the bytes ask for:

- the cache directory is ``<state_dir>/cache``, 0700, and its files 0600 (``govcloud.files``); a
  directory, key or entry that is not ours, is group/other-accessible, or is a link is not used at all;
- every entry carries an HMAC-SHA256 under a random 32-byte key kept in that directory (0600), checked
  with ``hmac.compare_digest`` before one byte is unpickled: another account (or a bit flip, a truncated
  write, a hand edit) cannot make an entry that passes;
- even then the unpickler accepts only the model's own dataclasses and ``datetime.date``: no function,
  no module outside ``govcloud.model`` can be named.

Anything unexpected (a bad MAC, a short file, an I/O error) is a miss; the caller validates from the files.
Entries are written to a temporary file and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import hmac
import io
import os
import pickle
import secrets
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from govcloud.files import private_dir

T = TypeVar("T")

MAGIC = b"gcstate1"
KEY_FILE = "hmac.key"
_MAC = hashlib.sha256().digest_size


def cached(directory: Path, name: str, key: bytes, compute: Callable[[], T]) -> T:
    """The value stored under ``name`` if it was made for ``key``; else ``compute()``, stored for next time.

    ``compute`` raising (invalid data) stores nothing. A cache that cannot be used (not ours, not private,
    read-only) is skipped silently: the answer is the same, only slower.
    """
    secret = _secret(directory)
    if secret is not None:
        found = _read(directory / name, secret, key)
        if found is not None:
            return found  # type: ignore[no-any-return]
    value = compute()
    if secret is not None:
        with contextlib.suppress(OSError, pickle.PicklingError):
            _write(directory / name, secret, key, value)
    return value


def entry_name(label: str) -> str:
    """A file name for the cache entry of ``label`` (a data root and what was loaded from it), any characters."""
    return "state-" + hashlib.sha256(label.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _private(info: os.stat_result, kind: Callable[[int], bool]) -> bool:
    return kind(info.st_mode) and info.st_uid == os.geteuid() and not stat.S_IMODE(info.st_mode) & 0o077


def _secret(directory: Path) -> bytes | None:
    """The HMAC key of ``directory`` (made on first use), or None when the directory is not private, or
    when the state directory it sits in does not exist yet: a read on a new machine creates nothing."""
    if not directory.parent.is_dir():
        return None
    try:
        private_dir(directory)
        if not _private(os.lstat(directory), stat.S_ISDIR):
            return None
        path = directory / KEY_FILE
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, secrets.token_bytes(32))
            finally:
                os.close(fd)
        secret = _read_private(path)
    except OSError:
        return None
    return secret if secret is not None and len(secret) == 32 else None


def _read_private(path: Path) -> bytes | None:
    """The bytes of a regular file of ours that nobody else may read or write (no link followed), or None."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not _private(os.fstat(fd), stat.S_ISREG):
            return None
        with os.fdopen(os.dup(fd), "rb") as stream:
            return stream.read()
    finally:
        os.close(fd)


def _read(path: Path, secret: bytes, key: bytes) -> Any:
    """The value of an entry whose MAC checks and whose key is ``key``; None for anything else."""
    try:
        blob = _read_private(path)
    except OSError:
        return None
    head = len(MAGIC) + _MAC
    if blob is None or len(blob) < head + len(key) or not blob.startswith(MAGIC):
        return None
    body = memoryview(blob)[head:]
    if not hmac.compare_digest(blob[len(MAGIC):head], hmac.new(secret, body, hashlib.sha256).digest()):
        return None
    if bytes(body[: len(key)]) != key:
        return None  # ours and intact, but made from other files: a miss
    try:
        return _ModelUnpickler(io.BytesIO(body[len(key):])).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None  # written by another govcloud whose classes changed (the key names the model's source too)


MAX_ENTRIES = 16
"""Entries kept per cache directory (one per data root and kind of load): the least recently written go first, so test
runs over many temporary roots do not pile up states."""


def _prune(directory: Path, keep: int = MAX_ENTRIES) -> None:
    entries = sorted(directory.glob("state-*"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for stale in entries[keep:]:
        with contextlib.suppress(OSError):
            stale.unlink()


def _write(path: Path, secret: bytes, key: bytes, value: Any) -> None:
    body = key + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    blob = MAGIC + hmac.new(secret, body, hashlib.sha256).digest() + body
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(blob)
        os.replace(temporary, path)
        _prune(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class _ModelUnpickler(pickle.Unpickler):
    """Names only the model's dataclasses and ``datetime.date``: a forged entry can build data, never run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("datetime", "date"):
            return datetime.date
        if module.startswith("govcloud.model.") and "." not in name:
            found = getattr(sys.modules.get(module), name, None)  # already imported by the loader: nothing is imported here
            if isinstance(found, type) and dataclasses.is_dataclass(found):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not a model class")
