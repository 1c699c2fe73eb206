"""Cross-reference checks over everything that parsed: ids, references, hierarchy, capacity, tickets.

Schema problems (types, unknown keys) are found by ``schema.Converter`` while reading; this module
finds what only shows when files are read together. It reports, it never stops at the first problem.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Protocol

from govcloud.errors import Problem
from govcloud.model.parsed import DesiredState, Parsed
from govcloud.model.quotas import Policy, QuotaSet, overridden
from govcloud.model.resources import Resources
from govcloud.model.schema import Where
from govcloud.model.tenants import Tenant
from govcloud.model.tickets import Ticket
from govcloud.model.topology import Topology
from govcloud.model.users import SYSTEM_ACTOR, Users
from govcloud.model.validate_quotas import resolve_quotas
from govcloud.model.validate_recovery import check_recovery
from govcloud.model.validate_tickets import check_tickets


class Located(Protocol):
    """Anything read from a document."""

    @property
    def where(self) -> Where: ...


def _duplicates(problems: list[Problem], items: Iterable[Located], attr: str, what: str) -> None:
    """One problem per repeated id, pointing at the repeat and naming the first occurrence."""
    first: dict[str, Where] = {}
    for item in items:
        value = getattr(item, attr)
        if value in first:
            seen = first[value]
            problems.append(item.where.problem(attr, found=f"'{value}' again (first at {seen.file}:{seen.line})",
                                               expected=f"a unique {what} id", message=f"duplicate {what}"))
        else:
            first[value] = item.where


def check_topology(topology: Topology, problems: list[Problem]) -> None:
    """Unique ids, at most one main and one dr centre per cloud, no AZ realising two centres."""
    _duplicates(problems, topology.clouds, "id", "cloud")
    _duplicates(problems, topology.flavors, "name", "flavor")
    for cloud in topology.clouds:
        _duplicates(problems, cloud.centres, "id", "centre")
        roles = Counter(c.role for c in cloud.centres)
        for role in ("main", "dr"):
            if roles[role] > 1:
                extra = [c for c in cloud.centres if c.role == role][1]
                problems.append(extra.where.problem("role", found=f"{roles[role]} centres with role {role}",
                                                    expected=f"at most one {role} centre per cloud",
                                                    message=f"second {role} centre in cloud '{cloud.id}'"))
        seen: dict[tuple[str, str], str] = {}
        for centre in cloud.centres:
            for index, zone in enumerate(centre.availability_zones):
                key = (cloud.region_of(centre), zone)
                if key in seen and seen[key] != centre.id:
                    problems.append(centre.where.problem("availability_zones",
                                                         found=f"zone '{zone}' (index {index}) also realises centre '{seen[key]}'",
                                                         expected="each availability zone in one centre",
                                                         message="availability zone shared by two centres"))
                seen[key] = centre.id


def check_tenants(tenants: tuple[Tenant, ...], parsed: Parsed, problems: list[Problem]) -> None:
    """Unique ids, known parents and clouds, no cycles in the hierarchy."""
    _duplicates(problems, tenants, "id", "tenant")
    ids = {t.id for t in tenants}
    for tenant in tenants:
        _duplicates(problems, tenant.systems, "id", "business system")
        if tenant.parent is not None and tenant.parent not in ids and tenant.parent not in parsed.declared.get("tenant", ()):
            problems.append(tenant.where.problem("parent", found=f"'{tenant.parent}'", expected="the id of a tenant in tenants.yaml",
                                                 message="unknown parent tenant"))
        for index, cloud in enumerate(tenant.clouds):
            if not parsed.known("cloud", cloud):
                problems.append(tenant.where.problem("clouds", found=f"'{cloud}' (item {index})",
                                                     expected="a cloud id of inventory/topology.yaml: "
                                                              + _some(sorted(parsed.declared["cloud"])),
                                                     message="unknown cloud"))
        if len(set(tenant.clouds)) != len(tenant.clouds):
            dup = next(c for c in tenant.clouds if tenant.clouds.count(c) > 1)
            problems.append(tenant.where.problem("clouds", found=f"'{dup}' twice", expected="each cloud once",
                                                 message="duplicate cloud"))
    _check_cycles(tenants, problems)


def _check_cycles(tenants: tuple[Tenant, ...], problems: list[Problem]) -> None:
    parents = {t.id: t.parent for t in tenants}
    by_id = {t.id: t for t in tenants}
    reported: set[str] = set()
    for tenant in tenants:
        chain = [tenant.id]
        current = tenant.parent
        while current is not None and current in parents:
            if current in chain:
                cycle = [*chain[chain.index(current):], current]
                if not reported.intersection(cycle):
                    start = by_id[current]
                    problems.append(start.where.problem("parent", found="a cycle: " + " → ".join(cycle),
                                                        expected="a hierarchy without cycles",
                                                        message="tenant hierarchy cycle"))
                    reported.update(cycle)
                break
            chain.append(current)
            current = parents[current]


def _some(values: list[str], limit: int = 6) -> str:
    """A short list for messages: the first few values and how many more."""
    head = ", ".join(values[:limit])
    return head + (f" … ({len(values) - limit} more)" if len(values) > limit else "")


def validate(parsed: Parsed, quota_overrides: Mapping[tuple[str, str], Resources] | None = None, *,
             today: datetime.date | None = None) -> tuple[DesiredState | None, list[Problem]]:
    """All cross-checks; the state is returned only when nothing at all is wrong. ``today``: tickets whose
    lease ended before it are refused (None: no date is checked)."""
    problems = list(parsed.problems)
    topology = parsed.topology
    if topology is not None:
        check_topology(topology, problems)
    tenants = parsed.tenants.tenants if parsed.tenants is not None else ()
    check_tenants(tenants, parsed, problems)
    tenant_map = {t.id: t for t in tenants}
    quota_set = resolve_quotas(parsed, topology, tenant_map, problems)
    if quota_overrides:
        quota_set = overridden(quota_set, dict(quota_overrides))
    tickets = tuple(parsed.tickets)
    check_tickets(tickets, parsed, topology, tenant_map, quota_set, problems, today=today)
    users = parsed.users or Users(version=1, users=())
    check_users(users, parsed, tickets, problems, present=parsed.users is not None)
    recovery = check_recovery(parsed.recovery_files, parsed, tenant_map, parsed.roles, problems, users if parsed.users is not None else None)
    if problems or topology is None or parsed.tenants is None:
        return None, problems
    return DesiredState(topology=topology, tenants=tenant_map, quotas=quota_set, tickets=tickets, users=users,
                        recovery=recovery), problems


def check_users(users: Users, parsed: Parsed, tickets: tuple[Ticket, ...], problems: list[Problem], *, present: bool) -> None:
    """Unique user ids, known tenants, and (when users.yaml exists) tickets requested by a requester of their tenant."""
    _duplicates(problems, users.users, "id", "user")
    _duplicates(problems, users.auto_approval, "name", "auto-approval rule")
    for user in users.users:
        if user.id == SYSTEM_ACTOR:
            problems.append(user.where.problem("id", found=f"'{user.id}'", expected="another id: 'system' is the name govcloud records "
                                               "for its own automatic decisions", message="reserved user id"))
        for tenant in user.tenants:
            if not parsed.known("tenant", tenant):
                problems.append(user.where.problem("tenants", found=f"'{tenant}'", expected="a tenant id of tenants.yaml",
                                                   message="unknown tenant"))
        if user.role == "requester" and not user.tenants:
            problems.append(user.where.problem("tenants", found="no tenants", expected="the tenants this requester acts for",
                                               message="requester without a tenant"))
    for rule in users.auto_approval:
        for tenant in rule.tenants:
            if not parsed.known("tenant", tenant):
                problems.append(rule.where.problem("tenants", found=f"'{tenant}'", expected="a tenant id of tenants.yaml",
                                                   message="unknown tenant"))
    if not present:
        return
    for ticket in tickets:
        requester = users.get(ticket.requester)
        if requester is None:
            problems.append(ticket.where.problem("requester", found=f"'{ticket.requester}'", expected="a user id of users.yaml",
                                                 message="unknown requester"))
        elif requester.role != "admin" and ticket.tenant not in requester.tenants:
            acts_for = ", ".join(requester.tenants) or "no tenant"
            problems.append(ticket.where.problem("requester", found=f"'{requester.id}' ({requester.role} for {acts_for})",
                                                 expected=f"a requester of tenant '{ticket.tenant}'",
                                                 message="requester may not ask for this tenant"))


__all__ = ["Policy", "QuotaSet", "check_tenants", "check_topology", "check_users", "validate"]
