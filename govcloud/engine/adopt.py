"""Adoption: existing servers in a tenant's project become a ticket that govcloud only observes.

Migrating a department's systems onto the government cloud starts with servers govcloud did not
create. ``govcloud adopt`` records them as an **observe-only** ticket (``mode = observe``, state
``active``): the quota they use is committed in the ledger, they appear in listings, inventory and
metrics, and reconcile reports their drift — but govcloud writes nothing to them (no metadata, no
recreate, no delete). Retiring such a ticket releases the record and the quota and leaves the servers
alone. Only servers without govcloud metadata in the tenant's own project can be adopted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from govcloud.drivers.base import META_TICKET, Endpoint, Server
from govcloud.engine.context import EngineContext
from govcloud.engine.retry import retrying
from govcloud.errors import InvalidState, NotFound
from govcloud.model.access import acting_user, require
from govcloud.model.ledger import LedgerLine
from govcloud.model.resources import Resources
from govcloud.store import tickets as rows
from govcloud.store.tickets import TicketRow, VmRow


def adopt(ctx: EngineContext, *, cloud: str, centre: str, tenant: str, system: str, server_ids: Sequence[str],
          ticket_id: str | None = None) -> TicketRow:
    """Record ``server_ids`` (in ``cloud``/``centre``, tenant's project) as an observe-only ticket."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    require(user, "apply")
    info = ctx.state.tenants.get(tenant)
    if info is None:
        raise NotFound(f"unknown tenant '{tenant}' (see `govcloud tenants list`)")
    if system not in {s.id for s in info.systems}:
        raise NotFound(f"tenant {tenant} has no business system '{system}' (tenants.yaml)")
    if (cloud, centre) not in ctx.endpoints.targets:
        raise NotFound(f"no centre '{centre}' in cloud '{cloud}' (see `govcloud topology show`)")
    target = ctx.endpoints.of(cloud, centre)
    endpoint = Endpoint(target.entry, target.region)
    servers = _servers(ctx, endpoint, tenant, server_ids)
    ticket_id = ticket_id or f"adopt-{uuid.uuid4().hex[:8]}"
    now = ctx.now()
    with ctx.store.transaction() as conn:
        if rows.get(conn, ticket_id) is not None:
            raise InvalidState(f"ticket id {ticket_id} is in use")
        taken = {vm.server_id for vm in rows.vms_of(conn) if vm.server_id}
        twice = sorted(s.id for s in servers if s.id in taken)
        if twice:
            raise InvalidState(f"server(s) {', '.join(twice)} already belong to a govcloud ticket")
        source = _source(ticket_id, tenant, system, user.id, cloud, centre, servers)
        rows.insert(conn, TicketRow(id=ticket_id, tenant=tenant, system=system, kind="create", state="active",
                                    content_hash=uuid.uuid4().hex, source=source, source_name="govcloud adopt", submitted_by=user.id,
                                    submitted_at=now, updated_at=now, approved_by=user.id, approved_at=now, active_at=now,
                                    approval_rule="adopted", plan={"vms": []}, mode="observe"))
        for index, server in enumerate(servers, 1):
            size = server.size or Resources(1, 0, 0, 0)
            rows.upsert_vm(conn, VmRow(ticket=ticket_id, idx=index, name=server.name, tenant=tenant, system=system, cloud=cloud,
                                       region=target.region, centre=centre, zone=server.zone or target.zone or "", flavor=server.flavor,
                                       vcpus=size.vcpus, ram_mb=size.ram_mb, disk_gb=size.disk_gb, status=server.status,
                                       updated_at=now, server_id=server.id, address=server.address))
        total = sum((s.size or Resources(1, 0, 0, 0) for s in servers), Resources())
        rows.reserve(conn, [LedgerLine(ticket_id, tenant, system, cloud, centre, total, "reserved")])
        rows.commit(conn, ticket_id, now=now)
        ctx.store.audit.append(user.id, "ticket.adopt", f"ticket:{ticket_id}",
                               {"tenant": tenant, "system": system, "cloud": cloud, "centre": centre, "mode": "observe",
                                "servers": {s.name: s.id for s in servers}, "committed": total.as_dict()}, connection=conn)
        row = rows.require(conn, ticket_id)
    return row


def _servers(ctx: EngineContext, endpoint: Endpoint, tenant: str, server_ids: Sequence[str]) -> list[Server]:
    """The servers asked for, each in the tenant's project and carrying no govcloud metadata."""
    if not server_ids:
        raise InvalidState("name at least one server id to adopt")
    found = {s.id: s for s in retrying(ctx, f"list servers of {tenant}", lambda: list(ctx.driver(endpoint).servers(tenant)))}
    missing = [sid for sid in server_ids if sid not in found]
    if missing:
        raise NotFound(f"no server {', '.join(missing)} in tenant {tenant}'s project in {endpoint.cloud}/{endpoint.region}")
    managed = [sid for sid in server_ids if found[sid].metadata.get(META_TICKET)]
    if managed:
        raise InvalidState(f"server(s) {', '.join(managed)} carry govcloud metadata: they belong to a ticket already")
    return [found[sid] for sid in dict.fromkeys(server_ids)]


def _source(ticket_id: str, tenant: str, system: str, user: str, cloud: str, centre: str, servers: Sequence[Server]) -> str:
    """A ticket document describing the adopted servers (JSON, which is YAML), so listings and
    ``ticket show`` treat it like any other."""
    vms = [{"name": f"vm{index}", "count": 1, "image": "adopted", "network": "adopted", "cloud": cloud, "centre": centre,
            **({"vcpus": s.size.vcpus, "ram_mb": max(64, s.size.ram_mb), "disk_gb": s.size.disk_gb} if s.size and s.size.vcpus
               else {"flavor": s.flavor or "unknown"})} for index, s in enumerate(servers, 1)]
    document = {"version": 1, "id": ticket_id, "tenant": tenant, "system": system, "requester": user, "kind": "create",
                "reason": f"adopted in observe-only mode: {', '.join(s.name for s in servers)}", "vms": vms}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
