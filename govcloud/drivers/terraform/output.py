"""Terraform's machine-readable output as plain data, and the errors it becomes.

The ``-json`` UI's events (diagnostics, planned changes, the change summary, completed applies) and a
saved plan's JSON (``terraform show -json PLAN``) are parsed here, without I/O: ``TerraformDriver``
(``driver``) runs terraform and hands over what it printed; the engine reads the results
(``PlanSummary``, ``PlanDetail``, ``ApplyResult``, ``InstanceAddress``). Error diagnostics become
``TemporaryError`` (lock held, throttling, timeouts, 5xx) or ``PermanentError`` (everything else, e.g.
configuration errors) carrying Terraform's own summary and detail (``classify``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govcloud.errors import PermanentError, TemporaryError

INSTANCE_TYPES = frozenset({"aws_instance", "openstack_compute_instance_v2"})
_STATUS = {"running": "ACTIVE", "pending": "BUILD", "stopping": "SHUTOFF", "stopped": "SHUTOFF", "shutting-down": "DELETED",
           "terminated": "DELETED", "active": "ACTIVE", "build": "BUILD", "shutoff": "SHUTOFF", "error": "ERROR"}
_TEMPORARY = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"error acquiring the state lock", r"throttl", r"requestlimitexceeded", r"rate exceeded", r"too many requests",
    r"timeout", r"timed out", r"connection refused", r"connection reset", r"no such host", r"service ?unavailable",
    r"insufficientinstancecapacity", r"status ?code:? 5\d\d", r"internal ?error",
))


class StalePlan(PermanentError):
    """The saved plan no longer matches (file changed since approval, or the state moved on): plan again."""


class StateLocked(TemporaryError):
    """Another run holds the workspace's state lock (terraform's own: fcntl on the local state file, an
    advisory lock in the ``pg`` backend): whoever holds it is changing the workspace; come back later."""


# -- plain data out --------------------------------------------------------------------------
@dataclass(frozen=True)
class Diagnostic:
    severity: str
    summary: str
    detail: str = ""
    address: str = ""

    def render(self) -> str:
        where = f" [{self.address}]" if self.address else ""
        detail = f": {' '.join(self.detail.split())}" if self.detail else ""
        return f"{self.summary}{where}{detail}"


@dataclass(frozen=True)
class PlannedChange:
    address: str
    action: str
    reason: str = ""


@dataclass(frozen=True)
class PlanSummary:
    """A saved plan: what approval shows and binds to (``sha256`` of ``planfile``)."""

    ident: str
    workspace: str
    planfile: Path
    sha256: str
    add: int
    change: int
    destroy: int
    changes: tuple[PlannedChange, ...]

    rc: int = 0
    """``terraform plan -detailed-exitcode``: 0 no changes, 2 changes present (1, an error, raises)."""

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy)

    @property
    def replaced(self) -> list[str]:
        return [c.address for c in self.changes if c.action == "replace"]

    @property
    def destroyed(self) -> list[str]:
        return [c.address for c in self.changes if c.action == "delete"]

    @property
    def flagged(self) -> list[str]:
        """Replaced or destroyed addresses: such a plan needs a second approver (issue 6)."""
        return self.replaced + self.destroyed


@dataclass(frozen=True)
class ResourceChange:
    """One resource of a saved plan's JSON (``terraform show -json PLAN``, ``resource_changes``). ``key`` is
    the ``for_each`` key — a VM name in govcloud's modules, so the instance and whatever else a VM has (its
    port) are known by it; ``actions`` as terraform gives them:
    ``("create",)``, ``("update",)``, ``("delete", "create")`` / ``("create", "delete")`` (replace),
    ``("delete",)``, ``("no-op",)``, ``("read",)``."""

    address: str
    type: str
    key: str | None
    actions: tuple[str, ...]
    reason: str = ""

    @property
    def instance(self) -> bool:
        """Whether this is a VM's instance (not its port, the tenant's security group, key pair…)."""
        return self.type in INSTANCE_TYPES

    @property
    def action(self) -> str:
        """One word: create, update, replace, delete, no-op, read (or terraform's own, e.g. forget)."""
        if set(self.actions) == {"delete", "create"}:
            return "replace"
        return "-".join(self.actions) or "no-op"


@dataclass(frozen=True)
class StateInstance:
    """A VM's instance in the state the plan was made from (refreshed: what the cloud reported)."""

    name: str
    id: str
    status: str
    """The cloud's word mapped to nova's: ACTIVE, BUILD, SHUTOFF, ERROR, DELETED (else upper-cased as given)."""
    address: str | None = None


@dataclass(frozen=True)
class StateResource:
    """A managed resource of a workspace's current state (``terraform show -json``, no plan): its address,
    type, ``for_each`` key (a VM name in govcloud's modules) and id; ``status`` for a VM's instance only
    (nova's words, as ``StateInstance``)."""

    address: str
    type: str
    key: str | None
    id: str
    status: str = ""

    @property
    def instance(self) -> bool:
        return self.type in INSTANCE_TYPES


@dataclass(frozen=True)
class PlanDetail:
    """What a saved plan would do, and the instances it was made against (``terraform show -json PLAN``)."""

    changes: tuple[ResourceChange, ...]
    """Resources the plan changes (no-op and read left out)."""
    instances: tuple[StateInstance, ...]
    """The VMs' instances in the refreshed state (a deleted instance is no longer there)."""


@dataclass(frozen=True)
class ApplyResult:
    ident: str
    workspace: str
    add: int
    change: int
    destroy: int
    completed: tuple[str, ...]


@dataclass(frozen=True)
class InstanceAddress:
    name: str
    id: str
    address: str | None


# -- parsing (pure) --------------------------------------------------------------------------
def classify(diagnostics: Sequence[Diagnostic], doing: str) -> TemporaryError | PermanentError:
    """Temporary only when every error is (a lock held, throttling, timeouts, 5xx); else permanent."""
    errors = [d for d in diagnostics if d.severity == "error"] or list(diagnostics)
    text = "; ".join(d.render() for d in errors)
    if any("saved plan is stale" in d.summary.lower() for d in errors):
        return StalePlan(f"{doing}: {text} (plan again and have it approved)")
    temporary = [any(p.search(f"{d.summary} {d.detail}") for p in _TEMPORARY) for d in errors]
    if errors and all(temporary):
        if any("state lock" in d.summary.lower() for d in errors):
            return StateLocked(f"{doing}: {text}", delay=15)
        return TemporaryError(f"{doing}: {text}", delay=30)
    return PermanentError(f"{doing}: {text}")


def event_diagnostics(events: Sequence[Mapping[str, Any]]) -> tuple[Diagnostic, ...]:
    """The ``diagnostic`` events of a run (warnings and errors)."""
    return tuple(Diagnostic(str(d.get("severity", "")), str(d.get("summary", "")), str(d.get("detail", "") or ""),
                            str(d.get("address", "") or ""))
                 for e in events if e.get("type") == "diagnostic" for d in [e.get("diagnostic", {})])


def planned_changes(events: Sequence[Mapping[str, Any]]) -> tuple[PlannedChange, ...]:
    """The ``planned_change`` events of a ``plan`` run."""
    return tuple(PlannedChange(str(e["change"]["resource"]["addr"]), str(e["change"]["action"]), str(e["change"].get("reason", "")))
                 for e in events if e.get("type") == "planned_change")


def completed_addresses(events: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Addresses of the resources an ``apply`` run completed (``apply_complete`` events), in order."""
    return tuple(str(e["hook"]["resource"]["addr"]) for e in events if e.get("type") == "apply_complete")


def summary_counts(events: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    """(add, change, remove) of a run's last ``change_summary`` event; zeros without one."""
    for event in reversed(events):
        if event.get("type") == "change_summary":
            changes = event.get("changes", {})
            return int(changes.get("add", 0)), int(changes.get("change", 0)), int(changes.get("remove", 0))
    return 0, 0, 0


def plan_detail(document: Mapping[str, Any], *, what: str = "plan") -> PlanDetail:
    """Parse ``terraform show -json PLAN`` (JSON output format 1.x; another major version is refused)."""
    version = str(document.get("format_version", ""))
    if version.split(".")[0] != "1":
        raise PermanentError(f"{what}: JSON plan format {version or '(none)'} is not one govcloud reads (1.x)")

    def change(item: Mapping[str, Any]) -> ResourceChange:
        index = item.get("index")
        return ResourceChange(str(item.get("address", "")), str(item.get("type", "")), index if isinstance(index, str) else None,
                              tuple(str(a) for a in item.get("change", {}).get("actions", ())), str(item.get("action_reason", "")))

    changes = tuple(c for c in (change(i) for i in document.get("resource_changes") or () if i.get("mode", "managed") == "managed")
                    if c.action not in ("no-op", "read"))
    instances = []
    for resource in _state_resources(document.get("prior_state", {}).get("values", {}).get("root_module", {})):
        if resource.get("type") not in INSTANCE_TYPES or not isinstance(resource.get("index"), str):
            continue
        values = resource.get("values") or {}
        instances.append(StateInstance(str(resource["index"]), str(values.get("id", "")), _status(values),
                                       values.get("private_ip") or values.get("access_ip_v4") or None))
    return PlanDetail(changes, tuple(sorted(instances, key=lambda i: i.name)))


def state_detail(document: Mapping[str, Any], *, what: str = "state") -> tuple[StateResource, ...]:
    """Parse ``terraform show -json`` of a workspace's current state (JSON output format 1.x; an empty
    state has no ``values``): its managed resources, child modules included, by address."""
    version = str(document.get("format_version", ""))
    if version.split(".")[0] != "1":
        raise PermanentError(f"{what}: JSON state format {version or '(none)'} is not one govcloud reads (1.x)")
    found = []
    for resource in _state_resources((document.get("values") or {}).get("root_module") or {}):
        values = resource.get("values") or {}
        index = resource.get("index")
        kind = str(resource.get("type", ""))
        found.append(StateResource(str(resource.get("address", "")), kind, index if isinstance(index, str) else None,
                                   str(values.get("id", "")), _status(values) if kind in INSTANCE_TYPES else ""))
    return tuple(sorted(found, key=lambda r: r.address))


def _status(values: Mapping[str, Any]) -> str:
    raw = str(values.get("instance_state") or values.get("power_state") or "")
    return _STATUS.get(raw.lower(), raw.upper())


def _state_resources(module: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Managed resources of a state module and of its child modules, depth first."""
    for resource in module.get("resources") or ():
        if resource.get("mode", "managed") == "managed":
            yield resource
    for child in module.get("child_modules") or ():
        yield from _state_resources(child)
