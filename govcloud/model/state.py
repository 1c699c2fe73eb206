"""Load the whole desired state (topology, tenants, quotas, tickets) and validate it in one pass.

``load_state`` is what every command and the daemon call: it either returns a consistent
``DesiredState`` or raises one ``ConfigError`` listing *every* problem in *every* file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from govcloud.errors import ConfigError, Problem
from govcloud.model import loading
from govcloud.model.loading import Document
from govcloud.model.quotas import Policy, QuotaFile, QuotaSet
from govcloud.model.schema import INVALID, Converter
from govcloud.model.tenants import Tenant, Tenants
from govcloud.model.tickets import Ticket
from govcloud.model.topology import Topology
from govcloud.model.users import Users
from govcloud.settings import DataPaths

T = TypeVar("T")


@dataclass(frozen=True)
class DesiredState:
    """Everything the admins and departments wrote, checked and cross-referenced."""

    topology: Topology
    tenants: dict[str, Tenant]
    quotas: QuotaSet
    tickets: tuple[Ticket, ...] = ()
    users: Users = field(default_factory=lambda: Users(version=1, users=()))


@dataclass
class Parsed:
    """What could be read, even when some of it was broken: cross-checks run on the readable part."""

    topology: Topology | None = None
    tenants: Tenants | None = None
    quota_files: list[QuotaFile] = field(default_factory=list)
    users: Users | None = None
    tickets: list[Ticket] = field(default_factory=list)
    declared: dict[str, set[str]] = field(default_factory=dict)
    """Ids written in the files, including those of broken entries, so a broken tenant is not also
    reported as 'unknown tenant' by every quota that names it."""
    problems: list[Problem] = field(default_factory=list)


def display_name(path: Path, root: Path) -> str:
    """Path as shown in messages: relative to the data root when inside it."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def read_as(cls: type[T], path: Path, root: Path, parsed: Parsed) -> tuple[T | None, Document | None]:
    """Read one file into ``cls``; problems go to ``parsed.problems``; None when unusable."""
    try:
        doc = loading.read(path, display=display_name(path, root))
    except ConfigError as exc:
        parsed.problems.extend(exc.problems)
        return None, None
    converter = Converter(doc)
    result = converter.dataclass(cls, doc.data, ())
    parsed.problems.extend(converter.problems)
    return (None if result is INVALID else result), doc


def _declare(parsed: Parsed, kind: str, items: Any, key: str = "id") -> None:
    """Remember the ids written in a raw list, whatever else is wrong with the entries."""
    if isinstance(items, list):
        parsed.declared.setdefault(kind, set()).update(
            str(item[key]) for item in items if isinstance(item, dict) and isinstance(item.get(key), str)
        )


def parse_all(paths: DataPaths, ticket_files: Sequence[Path] = ()) -> Parsed:
    """Read every file of the desired state; nothing is cross-checked yet."""
    parsed = Parsed()
    root = paths.root
    parsed.topology, doc = read_as(Topology, paths.resolve(paths.topology), root, parsed)
    if doc is not None and isinstance(doc.data, dict):
        _declare(parsed, "cloud", doc.data.get("clouds"))
    parsed.tenants, doc = read_as(Tenants, paths.resolve(paths.tenants), root, parsed)
    if doc is not None and isinstance(doc.data, dict):
        _declare(parsed, "tenant", doc.data.get("tenants"))
    users_path = paths.resolve(paths.users)
    if users_path.exists():
        parsed.users, _ = read_as(Users, users_path, root, parsed)
    quota_dir = paths.resolve(paths.quotas)
    quota_paths = list(loading.iter_yaml_files(quota_dir))
    if not quota_paths:
        parsed.problems.append(Problem(file=display_name(quota_dir, root), line=0, key="", found="no *.yaml files",
                                       expected="at least one quota file", message="no quotas"))
    for path in quota_paths:
        quota_file, _ = read_as(QuotaFile, path, root, parsed)
        if quota_file is not None:
            parsed.quota_files.append(quota_file)
    for path in ticket_files:
        ticket, doc = read_as(Ticket, path, root, parsed)
        if ticket is not None:
            parsed.tickets.append(ticket)
        elif doc is not None and isinstance(doc.data, dict):
            _declare(parsed, "ticket", [doc.data])
    return parsed


def default_ticket_files(paths: DataPaths) -> list[Path]:
    """The ticket files under the data root's ``tickets/`` directory."""
    return list(loading.iter_yaml_files(paths.resolve(paths.tickets)))


def load_state(paths: DataPaths, ticket_files: Iterable[Path] | None = None) -> DesiredState:
    """Parse and validate everything; raise one ConfigError with all problems, or return the state."""
    from govcloud.model.validate import validate  # validate imports this module's types

    files = default_ticket_files(paths) if ticket_files is None else list(ticket_files)
    parsed = parse_all(paths, files)
    state, problems = validate(parsed)
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
    ticket = converter.dataclass(Ticket, doc.data, ())
    if converter.problems or ticket is INVALID:
        raise ConfigError(converter.problems)
    return ticket
