"""Load the whole desired state (topology, tenants, quotas, tickets) and validate it in one pass.

``load_state`` is what every command and the daemon call: it either returns a consistent
``DesiredState`` or raises one ``ConfigError`` listing *every* problem in *every* file.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from govcloud.errors import ConfigError, Problem
from govcloud.model import loading
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


def read_as(cls: type[T], path: Path, root: Path, parsed: Parsed) -> tuple[T | None, Document | None]:
    """Read one file into ``cls``; problems go to ``parsed.problems``; None when unusable."""
    try:
        doc = loading.read(path, display=display_name(path, root))
    except ConfigError as exc:
        parsed.problems.extend(exc.problems)
        return None, None
    converter = Converter(doc)
    result = converter.dataclass(cls, doc.data, (), partial=True)
    parsed.problems.extend(converter.problems)
    return (None if result is INVALID else result), doc


def _ids(items: Any, key: str = "id") -> list[str]:
    """The ``key`` of every mapping in a raw list."""
    if not isinstance(items, list):
        return []
    return [str(item[key]) for item in items if isinstance(item, dict) and isinstance(item.get(key), (str, int))]


def _raw(doc: Document | None, key: str) -> Any:
    return doc.data.get(key) if doc is not None and isinstance(doc.data, dict) else None


def parse_all(paths: DataPaths, ticket_files: Sequence[Path] = ()) -> Parsed:
    """Read every file of the desired state; nothing is cross-checked yet."""
    parsed = Parsed()
    root = paths.root
    parsed.topology, doc = read_as(Topology, paths.resolve(paths.topology), root, parsed)
    if doc is not None:
        parsed.declare("cloud", _ids(_raw(doc, "clouds")))
        parsed.declare("flavor", _ids(_raw(doc, "flavors"), "name"))
        parsed.declare("centre", [f"{c.get('id')}/{x}" for c in _raw(doc, "clouds") or [] if isinstance(c, dict)
                                  for x in _ids(c.get("centres"))])
    parsed.tenants, doc = read_as(Tenants, paths.resolve(paths.tenants), root, parsed)
    if doc is not None:
        raw_tenants = _raw(doc, "tenants")
        parsed.declare("tenant", _ids(raw_tenants))
        parsed.declare("system", [f"{t.get('id')}/{s}" for t in raw_tenants or [] if isinstance(t, dict)
                                  for s in _ids(t.get("systems"))])
    users_path = paths.resolve(paths.users)
    if os.path.lexists(users_path):  # optional, but a dangling link or a loop is reported, not taken for "no users"
        parsed.users, _ = read_as(Users, users_path, root, parsed)
    quota_dir = paths.resolve(paths.quotas)
    quota_paths = list(loading.iter_yaml_files(quota_dir))
    if not quota_paths:
        parsed.problems.append(Problem(file=display_name(quota_dir, root), line=0, key="", found="no *.yaml files",
                                       expected="at least one quota file", message="no quotas"))
    parsed.declared.setdefault("tier", set())
    parsed.declared.setdefault("quota", set())
    for path in quota_paths:
        quota_file, doc = read_as(QuotaFile, path, root, parsed)
        if doc is None:  # an unreadable quota file: nothing about tiers or quotas can be checked
            parsed.declared.pop("tier", None)
            parsed.declared.pop("quota", None)
        else:
            tiers = _raw(doc, "tiers")
            parsed.declare("tier", tiers.keys() if isinstance(tiers, dict) else [])
            parsed.declare("quota", [f"{q.get('tenant')}/{q.get('cloud')}" for q in _raw(doc, "quotas") or [] if isinstance(q, dict)])
        if quota_file is not None:
            parsed.quota_files.append(quota_file)
    _parse_recovery(paths, parsed)
    for path in ticket_files:
        ticket, _ = read_as(Ticket, path, root, parsed)
        if ticket is not None:
            parsed.tickets.append(ticket)
    return parsed


def _parse_recovery(paths: DataPaths, parsed: Parsed) -> None:
    """The recovery plans (optional directory) and the role names their hooks may use."""
    for path in loading.iter_yaml_files(paths.resolve(paths.recovery)):
        plan, _ = read_as(RecoveryPlanFile, path, paths.root, parsed)
        if plan is not None:
            parsed.recovery_files.append(plan)
    roles = paths.resolve(paths.roles)
    if roles.is_dir():
        parsed.roles = frozenset(p.name for p in roles.iterdir() if p.is_dir() and not p.name.startswith("."))


def default_ticket_files(paths: DataPaths) -> list[Path]:
    """The ticket files under the data root's ``tickets/`` directory."""
    return list(loading.iter_yaml_files(paths.resolve(paths.tickets)))


def load_state(paths: DataPaths, ticket_files: Iterable[Path] | None = None, *,
               quota_overrides: Mapping[tuple[str, str], Resources] | None = None, today: datetime.date | None = None) -> DesiredState:
    """Parse and validate everything; raise one ConfigError with all problems, or return the state.
    ``quota_overrides``: approved quota changes from the store, applied before tickets are checked;
    ``today``: the caller's date, for refusing leases that have already ended (the model reads no clock)."""

    files = default_ticket_files(paths) if ticket_files is None else list(ticket_files)
    parsed = parse_all(paths, files)
    state, problems = validate(parsed, quota_overrides or {}, today=today)
    if problems or state is None:
        raise ConfigError(problems or [Problem(file="", line=0, key="", found="nothing usable",
                                               expected="valid data", message="cannot load")])
    return state


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
