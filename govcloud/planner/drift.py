"""Desired against observed: which VMs drifted, which servers are orphans, which are unmanaged.

Pure: the reconcile loop lists servers (one listing per endpoint) and reads the VM records, then
calls :func:`diff`; the result is data the engine records, reports and — by policy — corrects. One
pass over each side with dictionaries, so 100k desired VMs cost a fraction of a second
(``bench/reconcile.py``).

Kinds of finding:

* ``drift`` — a VM a ticket owns is ``missing`` (no server with its name and the ticket's metadata),
  ``broken`` (ERROR) or ``stopped`` (SHUTOFF, SUSPENDED, …). Missing and broken are what
  ``correct`` recreates; a stopped server may be an operator's doing and is only reported. In a
  Terraform workspace (``planner/tf_drift.py``) also ``changed`` / ``replaced`` (terraform would update
  or replace the VM's resources) and ``resource`` (a resource of the workspace that is no VM's).
* ``orphan`` — a server carrying ``govcloud:ticket`` metadata that no live ticket owns (retired,
  failed, unknown), a second server for the same VM (``duplicate``: two servers with one ticket and
  index — what a provisioning run whose store was lost used to create), or one with a live VM's ticket
  and index but another tenant or system (``reused``: a different request under the same ticket id).
* ``unmanaged`` — a server without govcloud metadata in a tenant's project: an existing system that
  can be adopted (observe-only) with ``govcloud adopt``. Adopted servers keep no metadata of ours
  (observe-only means we write nothing to them); they are matched by server id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from govcloud.model.states import LIVE as LIVE_STATES
from govcloud.model.states import TO_WORK_ON

LIVE = frozenset(LIVE_STATES)
"""Ticket states whose VMs must exist: reconcile compares them with what the cloud has."""
IN_FLIGHT = frozenset(TO_WORK_ON)
"""Ticket states the engine is working on: their servers are neither drift nor orphans."""
LEFT = "left"
"""``status`` of a Terraform resource found in a workspace none of whose tickets is live (``tf_drift.leftovers``)."""
BROKEN = frozenset({"ERROR"})
FINE = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING", "REBOOT", "HARD_REBOOT", "PASSWORD"})


@dataclass(frozen=True)
class Observed:
    """A server as one listing reported it; ``ticket``/``index`` from its govcloud metadata (None without)."""

    id: str
    name: str
    status: str
    zone: str | None = None
    project_id: str | None = None
    created: str = ""
    ticket: str | None = None
    index: int | None = None
    tenant: str | None = None
    system: str | None = None
    """``govcloud:tenant`` / ``govcloud:system`` (None without): which request the ticket id belongs to."""


@dataclass(frozen=True)
class DesiredVm:
    """A VM govcloud owns, as its record says."""

    ticket: str
    index: int
    name: str
    tenant: str
    cloud: str
    zone: str
    server_id: str | None = None
    observe_only: bool = False
    system: str | None = None


@dataclass(frozen=True)
class Drift:
    """One finding of one reconcile pass."""

    kind: str
    """``drift`` | ``orphan`` | ``unmanaged``."""
    reason: str
    """``missing`` | ``broken`` | ``stopped`` | ``no-ticket`` | ``duplicate`` | ``reused`` | ``unmanaged``."""
    name: str
    cloud: str
    ticket: str | None = None
    index: int | None = None
    tenant: str | None = None
    server_id: str | None = None
    status: str | None = None
    observe_only: bool = False
    note: str = ""
    """Said after the description (a Terraform workspace's plan: why it was not applied unattended)."""
    resource: str | None = None
    """``<workspace>:<address>`` of a Terraform resource that is no VM's (the tenant's security group)."""

    @property
    def key(self) -> str:
        """Stable identity across passes: the server, a workspace's resource, or the ticket's VM slot."""
        return self.server_id or self.resource or f"{self.ticket}/{self.index}"

    @property
    def correctable(self) -> bool:
        """What policy ``correct`` may fix by recreating: a managed VM missing or in ERROR."""
        return self.kind == "drift" and self.reason in ("missing", "broken") and not self.observe_only

    def describe(self) -> str:
        return self._what() + (f"; {self.note}" if self.note and self.reason != "reused" else "")

    def _what(self) -> str:
        if self.kind == "drift":
            what = {"missing": "no server exists", "broken": f"server {self.server_id} is {self.status}",
                    "stopped": f"server {self.server_id} is {self.status}",
                    "changed": f"{self.server_id or 'it'} changed outside govcloud: terraform would update it in place",
                    "replaced": f"{self.server_id or 'it'} changed outside govcloud: terraform would replace it (destroy, then create)",
                    "resource": ("left in the state of a workspace where no ticket is live" if self.status == LEFT
                                 else f"changed or deleted outside govcloud: terraform would {self.status} it")}[self.reason]
            owner = f" of ticket {self.ticket}" if self.ticket else ""
            return f"{self.name}{owner}: {what}" + (" (observe-only)" if self.observe_only else "")
        if self.kind == "orphan":
            why = ("a second server for the same VM" if self.reason == "duplicate"
                   else f"belongs to another request under the same ticket id ({self.note})" if self.reason == "reused"
                   else f"ticket {self.ticket} does not own it" if self.ticket else "no ticket owns it")
            return f"server {self.name} ({self.server_id}) carries govcloud metadata but {why}"
            return f"server {self.name} ({self.server_id}) carries govcloud metadata but {why}"
        return f"server {self.name} ({self.server_id}) in tenant {self.tenant}'s project has no govcloud metadata"


def diff(desired: Iterable[DesiredVm], servers: Iterable[Observed], *, ticket_states: Mapping[str, str],
         tenants_by_project: Mapping[str, str], cloud_of: Mapping[str, str], default_cloud: str) -> list[Drift]:
    """Compare one endpoint's servers with the VMs govcloud owns there.

    ``ticket_states``: every stored ticket's state (a ticket missing here is unknown); ``tenants_by_project``:
    project id → tenant slug, for the projects that are tenants; ``cloud_of``: availability zone → cloud,
    to attribute servers without a ticket; ``default_cloud``: the cloud for servers in other zones."""
    wanted = {(vm.ticket, vm.index): vm for vm in desired}
    adopted = {vm.server_id: (vm.ticket, vm.index) for vm in wanted.values() if vm.observe_only and vm.server_id}
    seen: dict[tuple[str, int], Observed] = {}
    more: dict[tuple[str, int], list[Observed]] = {}  # second and later servers of one VM (rare)
    found: list[Drift] = []
    for server in servers:
        slot = _slot(server) or adopted.get(server.id)
        if slot is None:
            tenant = tenants_by_project.get(server.project_id or "")
            if tenant is not None:
                found.append(Drift("unmanaged", "unmanaged", server.name, cloud_of.get(server.zone or "", default_cloud),
                                   tenant=tenant, server_id=server.id, status=server.status))
        elif slot in wanted and not _same_request(wanted[slot], server):
            found.append(Drift("orphan", "reused", server.name, wanted[slot].cloud, ticket=slot[0], index=slot[1],
                               tenant=tenants_by_project.get(server.project_id or ""), server_id=server.id, status=server.status,
                               note=f"its metadata names {server.tenant or '-'}/{server.system or '-'}, "
                                    f"the ticket {wanted[slot].tenant}/{wanted[slot].system or '-'}"))
        elif slot in wanted:
            if slot in seen:
                more.setdefault(slot, []).append(server)
            else:
                seen[slot] = server
        elif ticket_states.get(slot[0]) not in IN_FLIGHT:
            found.append(Drift("orphan", "no-ticket", server.name, cloud_of.get(server.zone or "", default_cloud),
                               ticket=slot[0], index=slot[1], tenant=tenants_by_project.get(server.project_id or ""),
                               server_id=server.id, status=server.status))
    for slot, vm in wanted.items():
        first = seen.get(slot)
        if first is not None and first.status in FINE and slot not in more:
            continue  # the common case: one healthy server
        found += _compare(vm, [first, *more.get(slot, ())] if first is not None else [])
    return sorted(found, key=lambda d: (d.cloud, d.kind, d.name, d.key))


def _same_request(vm: DesiredVm, server: Observed) -> bool:
    """The server's tenant and system metadata (where it has them) are the ticket's."""
    return (server.tenant is None or server.tenant == vm.tenant) and (server.system is None or vm.system is None or server.system == vm.system)


def _slot(server: Observed) -> tuple[str, int] | None:
    if not server.ticket or server.index is None:
        return None
    return server.ticket, server.index


def _compare(vm: DesiredVm, servers: list[Observed]) -> list[Drift]:
    """One owned VM against the servers that carry its ticket and index."""
    if not servers:
        return [Drift("drift", "missing", vm.name, vm.cloud, ticket=vm.ticket, index=vm.index, tenant=vm.tenant,
                      observe_only=vm.observe_only)]
    servers = sorted(servers, key=lambda s: (s.id != vm.server_id, s.status != "ACTIVE", s.created, s.id))
    keep, extra = servers[0], servers[1:]
    found = [Drift("orphan", "duplicate", s.name, vm.cloud, ticket=vm.ticket, index=vm.index, tenant=vm.tenant,
                   server_id=s.id, status=s.status) for s in extra]
    if keep.status in BROKEN or keep.status not in FINE:
        reason = "broken" if keep.status in BROKEN else "stopped"
        found.append(Drift("drift", reason, vm.name, vm.cloud, ticket=vm.ticket, index=vm.index, tenant=vm.tenant,
                           server_id=keep.id, status=keep.status, observe_only=vm.observe_only))
    return found
