"""The approved plan as it is stored with its ticket (a JSON object) and back: the one codec for it.

``approve`` stores ``encode(plan)``; provisioning, resize, configuration (engine) and failover read it
back with ``decode``, so the shape is written once. It sits in the planner because what it decodes
into is the planner's own data (``VmPlacement``, ``Reservation``); it is pure (a dict in, frozen data
out), so the engine and failover both use it. The store keeps the JSON as text and only reads one key
in SQL (``store/aggregates.py``: ``protection``, for a metric), below this layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from govcloud.model.resources import Resources
from govcloud.planner.placement import Plan, Reservation, VmPlacement


@dataclass(frozen=True)
class StoredPlan:
    """What later steps need of an approved plan. An empty plan (none stored yet, or an adopted ticket's)
    has no VMs and protection ``none``."""

    protection: str = "none"
    vms: tuple[VmPlacement, ...] = ()
    replaces: tuple[VmPlacement, ...] = ()
    """For a resize: the VMs as they were before."""
    reservations: tuple[Reservation, ...] = ()
    """DR reservations."""

    def home_of(self, name: str) -> str | None:
        """The centre the plan placed VM ``name`` in (its home, whatever a failover did since)."""
        return next((vm.centre for vm in self.vms if vm.name == name), None)


def _vm(data: Mapping[str, Any]) -> VmPlacement:
    return VmPlacement(**{**data, "size": Resources(**data["size"])})


def _reservation(data: Mapping[str, Any]) -> Reservation:
    return Reservation(**{**data, "resources": Resources(**data["resources"])})


def decode(data: Mapping[str, Any] | None) -> StoredPlan:
    """The stored plan (``TicketRow.plan``) as typed data."""
    data = data or {}
    return StoredPlan(protection=data.get("protection", "none"), vms=tuple(_vm(v) for v in data.get("vms", [])),
                      replaces=tuple(_vm(v) for v in data.get("replaces", [])),
                      reservations=tuple(_reservation(r) for r in data.get("reservations", [])))


def encode(plan: Plan) -> dict[str, Any]:
    """``plan`` as stored at approval (and shown by ``govcloud plan --output json``): every field, the
    quota checks with their explanation."""
    data = dataclasses.asdict(plan)
    data["checks"] = [{"level": c.level, "scope": c.scope, "ok": c.ok, "explain": c.explain()} for c in plan.checks]
    return data


def with_vms(data: Mapping[str, Any] | None, vms: Iterable[VmPlacement], reservations: Iterable[Reservation]) -> dict[str, Any]:
    """The stored plan ``data`` with its VMs and DR reservations replaced (a resize), everything else kept."""
    return dict(data or {}) | {"vms": [dataclasses.asdict(v) for v in vms], "reservations": [dataclasses.asdict(r) for r in reservations]}
