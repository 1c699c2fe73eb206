"""Reads filtered by the acting user (issue 11, item 5): ``quota show``, ``audit list`` and
``inventory --list/--host`` × a requester's own tenant, another tenant, and no acting user at all —
through the engine (``engine/reads.py``) and through the CLI (exit codes, Ansible's ``{}``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from govcloud.cli import main
from govcloud.engine import provision, reads, tickets
from govcloud.engine.context import EngineContext
from govcloud.errors import NotFound, PermissionDenied
from govcloud.store import facts
from tests.support.fakecloud import three_centres
from tests.support.tickets import REPO, write_ticket
from tests.unit.daemon.test_daemon import context

OWN, OTHER = "gd-mzt", "gd-gat"  # caijing's tenant, sunkai's


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One active ticket (one VM with an address) for caijing's tenant and one for sunkai's, audit
    records about each tenant, each user's inbox, and the shared infrastructure."""
    base = tmp_path_factory.mktemp("reads")
    cloud = three_centres()
    made: dict[str, Any] = {"db": str(base / "state.db"), "base": base, "cloud": cloud}
    for user, tenant, system in (("caijing", OWN, "mzoa"), ("sunkai", OTHER, "oa")):
        ticket_id, path = write_ticket(base, tenant=tenant, system=system, requester=user, roles=(), expires="2027-01-31",
                                       vms=[{"name": "web", "count": 1, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])
        ctx = context(base, cloud, user=user)
        (row,) = tickets.submit(ctx, [path])
        if row.state == "submitted":
            tickets.approve(context(base, cloud, user="shenpi-chen"), ticket_id)
        provision.apply(context(base, cloud, user="yunwei-he"), [ticket_id])
        audit = ctx.store.audit
        audit.append("yunwei-he", "tenant.onboard", f"tenant:{tenant}", {"tenant": tenant})
        audit.append("system", "failover.move", f"vm:{tenant}-{system}-{ticket_id}-1", {"to": "gz-backup"})
        audit.append("system", "inbox.refuse", f"inbox:{user}/bad.yaml", {"error": f"{user}'s bad file"})
        made[tenant] = ticket_id
    shared = context(base, cloud).store
    shared.audit.append("system", "reconcile.orphan", "cloud:gd-prov", {"server": "every tenant's"})
    with shared.transaction() as conn:
        facts.replace_findings(conn, "gd-prov", [
            facts.Finding(cloud="gd-prov", kind="unmanaged", key="s-1", name="mz-legacy-db", detail="", server_id="s-1", tenant=OWN),
            facts.Finding(cloud="gd-prov", kind="unmanaged", key="s-2", name="gat-legacy-db", detail="", server_id="s-2", tenant=OTHER),
            facts.Finding(cloud="gd-prov", kind="orphan", key="s-3", name="nobodys", detail="", server_id="s-3")], now="2026-12-04T00:00:00")
    yield made


def ctx_as(world: dict[str, Any], user: str) -> EngineContext:
    return context(world["base"], world["cloud"], user=user)


def cli(world: dict[str, Any], *args: str, user: str | None = None) -> tuple[int, str, str]:
    """``govcloud [--as USER] ARGS`` in-process: exit code, stdout, stderr."""
    code: Any = None
    argv = ["--root", str(REPO), "--db", world["db"], *(["--as", user] if user else []), *args]
    with CliRunner(env={"GOVCLOUD_USER": None}).isolation() as (out, err, _):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8")


# -- quota show ----------------------------------------------------------------------------------
def test_quota_a_requester_sees_only_its_tenants(world: dict[str, Any]) -> None:
    assert {line.tenant for line in reads.quota_lines(ctx_as(world, "caijing"))} == {OWN}
    (line,) = [q for q in reads.quota_lines(ctx_as(world, "caijing"), OWN) if q.cloud == "gd-prov"]
    assert line.used["instances"] == 1
    code, out, err = cli(world, "quota", "show", "-o", "json", user="caijing")
    assert code == 0 and {r["tenant"] for r in json.loads(out)} == {OWN}, err
    assert len({line.tenant for line in reads.quota_lines(ctx_as(world, "shenpi-chen"))}) > 20  # approvers see all


def test_quota_of_another_tenant_is_refused(world: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied, match=f"not for tenant '{OTHER}'"):
        reads.quota_lines(ctx_as(world, "caijing"), OTHER)
    code, out, err = cli(world, "quota", "show", OTHER, user="caijing")
    assert (code, out) == (2, "") and f"not for tenant '{OTHER}'" in err
    assert cli(world, "quota", "show", OTHER, "-o", "json", user="yunwei-he")[0] == 0


def test_quota_needs_an_acting_user(world: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied, match="no acting user"):
        reads.quota_lines(ctx_as(world, ""))
    code, out, err = cli(world, "quota", "show")
    assert (code, out) == (2, "") and "no acting user" in err


# -- audit list ----------------------------------------------------------------------------------
def subjects(records: list[Any]) -> set[str]:
    return {r.subject for r in records}


def test_audit_a_requester_sees_its_tenants_tickets_vms_and_inbox(world: dict[str, Any]) -> None:
    mine = subjects(reads.audit_records(ctx_as(world, "caijing")))
    own, other = world[OWN], world[OTHER]
    assert {f"ticket:{own}", f"tenant:{OWN}", f"vm:{OWN}-mzoa-{own}-1", "inbox:caijing/bad.yaml"} <= mine
    assert not {s for s in mine if OTHER in s or other in s or "sunkai" in s}
    assert not {s for s in mine if not s.startswith(("ticket:", "tenant:", "vm:", "inbox:"))}  # no cloud:, daemon:, store
    everything = subjects(reads.audit_records(ctx_as(world, "yunwei-he")))
    assert {f"ticket:{other}", f"tenant:{OTHER}", "cloud:gd-prov", "inbox:sunkai/bad.yaml"} <= everything


def test_audit_of_another_tenant_is_empty_and_the_limit_counts_what_is_visible(world: dict[str, Any]) -> None:
    assert reads.audit_records(ctx_as(world, "caijing"), subject=f"ticket:{world[OTHER]}") == []
    (newest,) = reads.audit_records(ctx_as(world, "caijing"), limit=1)
    assert newest.subject == "inbox:caijing/bad.yaml"  # sunkai's and the cloud's records came later
    code, out, err = cli(world, "audit", "list", "--subject", f"tenant:{OTHER}", "-o", "json", user="caijing")
    assert code == 0 and json.loads(out) == [], err
    code, out, _ = cli(world, "audit", "list", "-o", "json", user="caijing")
    assert code == 0 and "sunkai" not in out and world[OTHER] not in out and "every tenant's" not in out


def test_audit_needs_an_acting_user(world: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied, match="no acting user"):
        reads.audit_records(ctx_as(world, ""))
    code, out, err = cli(world, "audit", "list")
    assert (code, out) == (2, "") and "no acting user" in err


# -- inventory -----------------------------------------------------------------------------------
def hosts(data: dict[str, Any]) -> set[str]:
    return set(data["_meta"]["hostvars"])


def test_inventory_a_requester_gets_only_its_tenants_hosts(world: dict[str, Any]) -> None:
    own, other = world[OWN], world[OTHER]
    assert hosts(reads.inventory(ctx_as(world, "caijing"))) == {f"{OWN}-mzoa-{own}-1"}
    assert hosts(reads.inventory(ctx_as(world, "yunwei-he"))) >= {f"{OWN}-mzoa-{own}-1", f"{OTHER}-oa-{other}-1"}
    code, out, err = cli(world, "inventory", "--list", user="caijing")
    assert code == 0 and other not in out and f"tenant_{OWN.replace('-', '_')}" in out, err
    code, out, _ = cli(world, "inventory", "--host", f"{OWN}-mzoa-{own}-1", user="caijing")
    assert code == 0 and json.loads(out)["govcloud_tenant"] == OWN


def test_inventory_of_another_tenant_is_unknown(world: dict[str, Any]) -> None:
    other = world[OTHER]
    code, out, err = cli(world, "inventory", "--host", f"{OTHER}-oa-{other}-1", user="caijing")
    assert (code, json.loads(out)) == (0, {}), err  # Ansible's answer for an unknown host
    with pytest.raises(NotFound):
        reads.inventory(ctx_as(world, "caijing"), [other])
    assert cli(world, "inventory", "--ticket", other, user="caijing")[0] == 2
    assert hosts(reads.inventory(ctx_as(world, "wumin"))) == set()  # a tenant with no VMs: nothing, not everyone's


def test_inventory_needs_an_acting_user(world: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied, match="no acting user"):
        reads.inventory(ctx_as(world, ""))
    code, out, err = cli(world, "inventory", "--list")
    assert (code, out) == (2, "") and "no acting user" in err



# -- drift list, status --------------------------------------------------------------------------
def test_findings_a_requester_sees_only_its_tenants(world: dict[str, Any]) -> None:
    assert {f.name for f in reads.findings(ctx_as(world, "caijing"))} == {"mz-legacy-db"}
    assert {f.name for f in reads.findings(ctx_as(world, "yunwei-he"))} == {"mz-legacy-db", "gat-legacy-db", "nobodys"}
    code, out, err = cli(world, "drift", "list", "-o", "json", user="caijing")
    assert code == 0 and [f["name"] for f in json.loads(out)] == ["mz-legacy-db"], err


def test_findings_and_status_need_an_acting_user(world: dict[str, Any]) -> None:
    for args in (("drift", "list"), ("status",)):
        code, out, err = cli(world, *args)
        assert (code, out) == (2, "") and "no acting user" in err, args
    code, out, err = cli(world, "status", "-o", "json", user="caijing")
    assert code == 0 and set(json.loads(out)) == {"daemons", "centres", "cycles"}, err


# -- vm list, ticket show, plan (the CLI prints what these return; issue 12, item 4) --------------
def test_vms_a_requester_sees_only_its_tenants(world: dict[str, Any]) -> None:
    assert {vm.tenant for vm in reads.vms(ctx_as(world, "caijing"))} == {OWN}
    assert reads.vms(ctx_as(world, "caijing"), world[OTHER]) == []  # another tenant's ticket: nothing, not its VMs
    assert {vm.tenant for vm in reads.vms(ctx_as(world, "yunwei-he"))} == {OWN, OTHER}
    code, out, _ = cli(world, "vm", "list", "-o", "json", user="caijing")
    assert code == 0 and {r["tenant"] for r in json.loads(out)} == {OWN}


def test_ticket_detail_has_its_vms_and_audit_and_is_refused_for_another_tenant(world: dict[str, Any]) -> None:
    detail = reads.ticket_detail(ctx_as(world, "caijing"), world[OWN])
    assert [vm.ticket for vm in detail.vms] == [world[OWN]] and "ticket.provisioned" in {r.action for r in detail.audit}
    with pytest.raises(NotFound):
        reads.ticket_detail(ctx_as(world, "caijing"), world[OTHER])


def test_quota_warning_is_used_plus_reserved_at_the_warn_threshold(world: dict[str, Any]) -> None:
    (line,) = [q for q in reads.quota_lines(ctx_as(world, "caijing"), OWN) if q.cloud == "gd-prov"]
    vcpus, zero = line.quota.limit.vcpus, dict.fromkeys(reads.RESOURCES, 0)
    assert not line.warning and vcpus >= 10
    below = int(vcpus * line.quota.warn_at) - 1
    assert not dataclasses.replace(line, used=dict(zero, vcpus=below), reserved=zero).warning
    assert dataclasses.replace(line, used=dict(zero, vcpus=below), reserved=dict(zero, vcpus=2)).warning  # reserved counts too
    assert dataclasses.replace(line, used=dict(zero, vcpus=vcpus), reserved=zero).warning


def test_quota_changes_name_what_a_plan_changes_and_what_it_exceeds(world: dict[str, Any]) -> None:
    ctx = ctx_as(world, "yunwei-he")
    ((row, plan),) = reads.plans(ctx, [world[OWN]])
    changes = reads.quota_changes(plan)
    assert row.id == world[OWN] and changes and all(c.ok for c in changes)
    assert all(c.after != c.before for c in changes) and not any(c.level == "centre" and c.resource == "instances" for c in changes)
