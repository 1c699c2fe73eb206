"""Load the whole desired state (topology, tenants, quotas, tickets) and validate it in one pass.

``load_state`` is what every command and the daemon call: it either returns a consistent
``DesiredState`` or raises one ``ConfigError`` listing *every* problem in *every* file.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import gc
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from govcloud import __version__
from govcloud.errors import ConfigError, Problem
from govcloud.model import cache, loading
from govcloud.model.loading import Document
from govcloud.model.parsed import DesiredState, Parsed
from govcloud.model.quotas import Policy, QuotaFile, QuotaSet
from govcloud.model.recovery import RecoveryPlanFile
from govcloud.model.resources import Resources
from govcloud.model.schema import INVALID, Converter
from govcloud.model.tenants import Tenants
from govcloud.model.tickets import Ticket
from govcloud.model.topology import Topology
from govcloud.model.users import Users
from govcloud.model.validate import validate
from govcloud.settings import DataPaths

T = TypeVar("T")


def display_name(path: Path, root: Path) -> str:
    """Path as shown in messages: relative to the data root when inside it. The directory is resolved,
    the file itself is not: a link is named as the admin wrote it, not by its target (or its loop)."""
    try:
        return str((path.parent.resolve() / path.name).relative_to(root.resolve()))
    except (ValueError, OSError, RuntimeError):  # outside the root; a loop in a directory (RuntimeError up to 3.12)
        return str(path)


def display_names(paths: Iterable[Path], root: Path) -> dict[Path, str]:
    """``display_name`` of many files, each directory resolved once (a province has hundreds of quota files)."""
    resolved_root = root.resolve()
    parents: dict[Path, Path] = {}
    names: dict[Path, str] = {}
    for path in paths:
        try:
            if path.parent not in parents:
                parents[path.parent] = path.parent.resolve()
            names[path] = str((parents[path.parent] / path.name).relative_to(resolved_root))
        except (ValueError, OSError, RuntimeError):
            names[path] = str(path)
    return names


def read_as(cls: type[T], path: Path, root: Path, parsed: Parsed, *, limit: int = loading.MAX_FILE_BYTES,
            blob: bytes | None = None, display: str | None = None) -> tuple[T | None, Document | None]:
    """Read one file (or parse ``blob``, its bytes read before, named ``display``) into ``cls``; problems
    go to ``parsed.problems``; None when unusable."""
    display = display or display_name(path, root)
    try:
        if blob is None:
            doc = loading.read(path, display=display, limit=limit)
        else:
            name = loading.printable_name(display)
            doc = loading.parse(loading.decode(blob, name), name)
    except ConfigError as exc:
        parsed.problems.extend(exc.problems)
        return None, None
    converter = Converter(doc)
    result = converter.dataclass(cls, doc.data, (), partial=True)
    parsed.problems.extend(converter.problems)
    return (None if result is INVALID else result), doc


@dataclass
class Sources:
    """Every data file of one load, read before anything is parsed (for the cache): the state is then
    parsed from exactly the bytes its key was computed from, even if a file changes meanwhile."""

    users: bool
    """Whether ``users.yaml`` exists (it is optional)."""
    quotas: list[Path]
    recovery: list[Path] = field(default_factory=list)
    """The recovery plans' files (``recovery/*.yaml``, optional)."""
    roles: frozenset[str] = frozenset()
    """The role names a recovery hook may use (a role added or removed changes what validates)."""
    blobs: dict[Path, bytes] = field(default_factory=dict)
    names: dict[Path, str] = field(default_factory=dict)
    """How each file is named in messages (``display_name``)."""


def _ids(items: Any, key: str = "id") -> list[str]:
    """The ``key`` of every mapping in a raw list."""
    if not isinstance(items, list):
        return []
    return [str(item[key]) for item in items if isinstance(item, dict) and isinstance(item.get(key), (str, int))]


def _raw(doc: Document | None, key: str) -> Any:
    return doc.data.get(key) if doc is not None and isinstance(doc.data, dict) else None


def no_data_root(paths: DataPaths) -> Problem | None:
    """One problem instead of three "missing file" errors when the data root holds none of the desired
    state's files: govcloud was run outside the repository, and the remedy is where to find it."""
    wanted = (paths.resolve(paths.topology), paths.resolve(paths.tenants), paths.resolve(paths.quotas))
    if any(os.path.lexists(path) for path in wanted):
        return None
    return Problem(file=str(paths.root.absolute()), line=0, key="", message="no govcloud data here",
                   found=f"none of {paths.topology}, {paths.tenants}, {paths.quotas}/",
                   expected="the directory of the province's data: run govcloud there, or pass --root DIR, or set GOVCLOUD_ROOT")


def parse_all(paths: DataPaths, ticket_files: Sequence[Path] = (), sources: Sources | None = None) -> Parsed:
    """Read every file of the desired state (from ``sources`` when given); nothing is cross-checked yet."""
    parsed = Parsed()
    root = paths.root

    def read(cls: type[T], path: Path, limit: int = loading.MAX_PROVINCE_FILE_BYTES) -> tuple[T | None, Document | None]:
        if sources is None:
            return read_as(cls, path, root, parsed, limit=limit)
        return read_as(cls, path, root, parsed, limit=limit, blob=sources.blobs[path], display=sources.names[path])

    parsed.topology, doc = read(Topology, paths.resolve(paths.topology))
    if doc is not None:
        parsed.declare("cloud", _ids(_raw(doc, "clouds")))
        parsed.declare("flavor", _ids(_raw(doc, "flavors"), "name"))
        parsed.declare("centre", [f"{c.get('id')}/{x}" for c in _raw(doc, "clouds") or [] if isinstance(c, dict)
                                  for x in _ids(c.get("centres"))])
    parsed.tenants, doc = read(Tenants, paths.resolve(paths.tenants))
    if doc is not None:
        raw_tenants = _raw(doc, "tenants")
        parsed.declare("tenant", _ids(raw_tenants))
        parsed.declare("system", [f"{t.get('id')}/{s}" for t in raw_tenants or [] if isinstance(t, dict)
                                  for s in _ids(t.get("systems"))])
    users_path = paths.resolve(paths.users)
    if _has_users(paths) if sources is None else sources.users:
        parsed.users, _ = read(Users, users_path)
    quota_dir = paths.resolve(paths.quotas)
    quota_paths = list(loading.iter_yaml_files(quota_dir)) if sources is None else sources.quotas
    if not quota_paths:
        parsed.problems.append(Problem(file=display_name(quota_dir, root), line=0, key="", found="no *.yaml files",
                                       expected="at least one quota file", message="no quotas"))
    parsed.declared.setdefault("tier", set())
    parsed.declared.setdefault("quota", set())
    for path in quota_paths:
        quota_file, doc = read(QuotaFile, path)
        if doc is None:  # an unreadable quota file: nothing about tiers or quotas can be checked
            parsed.declared.pop("tier", None)
            parsed.declared.pop("quota", None)
        else:
            tiers = _raw(doc, "tiers")
            parsed.declare("tier", tiers.keys() if isinstance(tiers, dict) else [])
            parsed.declare("quota", [f"{q.get('tenant')}/{q.get('cloud')}" for q in _raw(doc, "quotas") or [] if isinstance(q, dict)])
        if quota_file is not None:
            parsed.quota_files.append(quota_file)
    _parse_recovery(paths, parsed, read, sources)
    for path in ticket_files:
        ticket, _ = read(Ticket, path, loading.MAX_FILE_BYTES)
        if ticket is not None:
            parsed.tickets.append(ticket)
    return parsed


def _has_users(paths: DataPaths) -> bool:
    """users.yaml is optional, but a dangling link or a loop is reported, not taken for "no users"."""
    return os.path.lexists(paths.resolve(paths.users))


def read_sources(paths: DataPaths, ticket_files: Sequence[Path]) -> Sources | None:
    """The bytes of every file ``parse_all`` would read, or None if one of them cannot be read (the
    uncached path then reports it as it always did)."""
    root = paths.root
    sources = Sources(users=_has_users(paths), quotas=list(loading.iter_yaml_files(paths.resolve(paths.quotas))),
                      recovery=recovery_files(paths), roles=role_names(paths))
    wanted = [paths.resolve(paths.topology), paths.resolve(paths.tenants), *([paths.resolve(paths.users)] if sources.users else []),
              *sources.quotas, *sources.recovery]
    sources.names = display_names([*wanted, *ticket_files], root)
    try:
        for path in wanted:
            sources.blobs[path] = loading.read_bytes(path, display=sources.names[path], limit=loading.MAX_PROVINCE_FILE_BYTES)
        for path in ticket_files:
            sources.blobs[path] = loading.read_bytes(path, display=sources.names[path])
    except ConfigError:
        return None
    return sources


@functools.cache
def _model_fingerprint() -> bytes:
    """SHA-256 of the model's own source: what a cached state was built by (a changed class is a miss)."""
    digest = hashlib.sha256(__version__.encode())
    here = Path(__file__).resolve().parent
    for source in [*sorted(here.glob("*.py")), here.parent / "errors.py"]:
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.digest()


def cache_key(paths: DataPaths, ticket_files: Sequence[Path], sources: Sources,
              quota_overrides: Mapping[tuple[str, str], Resources], today: datetime.date | None) -> bytes:
    """What a validated state depends on: the model, the name and bytes of every file, the overrides, the day."""
    digest = hashlib.sha256(_model_fingerprint())
    digest.update(repr((str(paths.root.resolve()), sources.users, [str(p) for p in sources.quotas], [str(p) for p in sources.recovery],
                        sorted(sources.roles), [str(p) for p in ticket_files],
                        sorted(quota_overrides.items()), today)).encode("utf-8", "surrogateescape"))
    for path, blob in sources.blobs.items():
        digest.update(f"\0{sources.names[path]}\0{len(blob)}\0".encode("utf-8", "surrogateescape"))
        digest.update(blob)
    return digest.digest()


def _parse_recovery(paths: DataPaths, parsed: Parsed, read: Callable[[type[RecoveryPlanFile], Path], tuple[RecoveryPlanFile | None, Any]],
                    sources: Sources | None) -> None:
    """The recovery plans (optional directory) and the role names their hooks may use (from ``sources``
    when the load is cached: both are part of the cache key)."""
    for path in (recovery_files(paths) if sources is None else sources.recovery):
        plan, _ = read(RecoveryPlanFile, path)
        if plan is not None:
            parsed.recovery_files.append(plan)
    parsed.roles = role_names(paths) if sources is None else sources.roles


def recovery_files(paths: DataPaths) -> list[Path]:
    """The recovery plans' files, in order (none when the directory is absent)."""
    return list(loading.iter_yaml_files(paths.resolve(paths.recovery)))


def role_names(paths: DataPaths) -> frozenset[str]:
    """The Ansible roles a hook may name: the directories under ``playbooks/roles`` (empty when absent)."""
    roles = paths.resolve(paths.roles)
    if not roles.is_dir():
        return frozenset()
    return frozenset(p.name for p in roles.iterdir() if p.is_dir() and not p.name.startswith("."))


def default_ticket_files(paths: DataPaths) -> list[Path]:
    """The ticket files under the data root's ``tickets/`` directory."""
    return list(loading.iter_yaml_files(paths.resolve(paths.tickets)))


def load_state(paths: DataPaths, ticket_files: Iterable[Path] | None = None, *,
               quota_overrides: Mapping[tuple[str, str], Resources] | None = None, today: datetime.date | None = None) -> DesiredState:
    """Parse and validate everything; raise one ConfigError with all problems, or return the state.
    ``quota_overrides``: approved quota changes from the store, applied before tickets are checked;
    ``today``: the caller's date, for refusing leases that have already ended (the model reads no clock).
    With ``paths.cache`` set, a state validated before from the same bytes is taken from that cache
    (``model/cache.py``): every file is still read and hashed, none parsed."""

    no_data = no_data_root(paths)
    if no_data is not None:
        raise ConfigError([no_data])
    files = default_ticket_files(paths) if ticket_files is None else list(ticket_files)
    overrides = quota_overrides or {}
    sources = read_sources(paths, files) if paths.cache is not None else None
    if paths.cache is None or sources is None:
        return _validated(paths, files, overrides, today, None)
    key = cache_key(paths, files, sources, overrides, today)
    with _collector_paused():  # unpickling makes as many objects as parsing: 0.77 s -> 0.18 s at 5,000 tenants
        return cache.cached(paths.cache, cache.entry_name(_variant(paths, files, overrides, today)), key,
                            lambda: _validated(paths, files, overrides, today, sources))


def _variant(paths: DataPaths, files: Sequence[Path], overrides: Mapping[tuple[str, str], Resources],
             today: datetime.date | None) -> str:
    """Which load of a data root this is: ``validate`` (the tickets, today) and the listings (no tickets)
    each keep their own cache entry instead of replacing each other's at every command."""
    return repr((str(paths.root.resolve()), [str(f) for f in files], today, sorted(overrides.items())))


def _validated(paths: DataPaths, files: Sequence[Path], overrides: Mapping[tuple[str, str], Resources],
               today: datetime.date | None, sources: Sources | None) -> DesiredState:
    with _collector_paused():
        parsed = parse_all(paths, files, sources)
        state, problems = validate(parsed, overrides, today=today)
    if problems or state is None:
        raise ConfigError(problems or [Problem(file="", line=0, key="", found="nothing usable",
                                               expected="valid data", message="cannot load")])
    return state


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the state is built or unpickled: that makes millions of small
    objects and no cycles, and the collector kept walking all of them again as they grew (40 % of
    validating 5,000 tenants, 75 % of unpickling them). Garbage without cycles is still freed at once.
    The objects made meanwhile are then frozen (``gc.freeze``: left out of later collections, still freed
    when unreferenced), or the first collection after would walk all of them (0.15 s at 5,000 tenants);
    the next load unfreezes them, so cyclic garbage frozen with them is collected then, not kept forever."""
    was = gc.isenabled()
    if was:
        gc.unfreeze()  # what the previous load froze goes back to the collector (a daemon loads again and again)
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.freeze()  # what was built lives as long as the command: the collector need never walk it again
            gc.enable()


def empty_quota_set() -> QuotaSet:
    """A QuotaSet with nothing in it, for code paths that run before quotas exist."""
    return QuotaSet(policy=Policy(), tiers={}, quotas={}, totals={})


def parse_ticket(text: str, display: str) -> Ticket:
    """A ticket from stored YAML text (schema only; ``load_state`` does the cross-checks)."""
    doc = loading.parse(text, display)
    converter = Converter(doc)
    ticket = converter.dataclass(Ticket, doc.data, (), partial=True)
    if converter.problems or ticket is INVALID:
        raise ConfigError(converter.problems)
    return ticket
