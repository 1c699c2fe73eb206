"""Configuration states and per-host results with a fake Ansible driver (the real one is tested over SSH)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from govcloud.drivers.ansible import HostResult, RunResult
from govcloud.engine import configure, tickets
from govcloud.engine.context import EngineContext
from govcloud.errors import TemporaryError
from govcloud.store import tickets as rows
from govcloud.store.tickets import VmRow
from tests.support.tickets import engine, write_ticket


class FakeAnsible:
    """Records what it was asked and answers with scripted per-host statuses."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.calls: list[dict[str, Any]] = []

    def run(self, inventory: dict[str, Any], *, playbook: str, extravars: dict[str, Any], limit: list[str], progress: Any,
            owners: dict[str, str]) -> RunResult:
        self.calls.append({"inventory": inventory, "extravars": extravars, "limit": list(limit), "playbook": playbook})
        hosts = limit or sorted({h for group in inventory["all"]["children"].values() for h in group["hosts"]})
        results = {h: HostResult(h, self.statuses.get(h, "changed"), 3, ("baseline: boom",) if self.statuses.get(h) == "failed" else ())
                   for h in hosts}
        return RunResult(ident=f"run-{len(self.calls)}", rc=0, status="successful", directory=Path("/nonexistent"), hosts=results)


@pytest.fixture
def configuring(tmp_path: Path) -> tuple[EngineContext, str]:
    """A ticket with two ACTIVE VMs, approved and recorded as provisioned (no cloud involved)."""
    db = f"sqlite:///{tmp_path / 'state.db'}"
    ticket_id, path = write_ticket(tmp_path, tenant="gd-gat", system="hukou", requester="sunkai",
                                   vms=[{"name": "app", "count": 2, "flavor": "gc.small", "cloud": "gd-prov"}])
    tickets.submit(engine(db, "sunkai"), [path])
    tickets.approve(engine(db, "shenpi-chen"), ticket_id)
    ctx = engine(db, "yunwei-he")
    with ctx.store.transaction() as conn:
        rows.move(conn, ticket_id, "approved", "provisioning", now=ctx.now())
        rows.move(conn, ticket_id, "provisioning", "configuring", now=ctx.now())
        for index in (1, 2):
            rows.upsert_vm(conn, VmRow(ticket=ticket_id, idx=index, name=f"gd-gat-hukou-{ticket_id}-{index}", tenant="gd-gat", system="hukou",
                                       cloud="gd-prov", region="gd-gz", centre="gz-main", zone="gz-main", flavor="gc.small", vcpus=1,
                                       ram_mb=1024, disk_gb=10, status="ACTIVE", updated_at=ctx.now(), server_id=f"srv-{index}",
                                       address=f"10.250.0.{10 + index}"))
    return ctx, ticket_id


def test_inventory_groups_and_host_vars(configuring: tuple[EngineContext, str]) -> None:
    ctx, ticket_id = configuring
    inv = configure.inventory(ctx, [ticket_id])
    first = f"gd-gat-hukou-{ticket_id}-1"
    assert inv["tenant_gd_gat"]["hosts"] == [first, f"gd-gat-hukou-{ticket_id}-2"]
    assert set(inv["all"]["children"]) == {"cloud_gd_prov", "centre_gd_prov_gz_main", "tenant_gd_gat", "system_gd_gat_hukou",
                                           "ticket_" + ticket_id.replace("-", "_")}
    hv = inv["_meta"]["hostvars"][first]
    assert (hv["ansible_host"], hv["govcloud_vm_id"], hv["govcloud_flavor"], hv["govcloud_protection"]) == ("10.250.0.11", "srv-1", "gc.small", "dr")
    assert hv["govcloud_roles"] == ["baseline"]


def test_static_inventory_has_each_hosts_variables_once_and_the_same_groups(configuring: tuple[EngineContext, str]) -> None:
    ctx, ticket_id = configuring
    dynamic = configure.inventory(ctx, [ticket_id])
    static = configure.static_inventory(dynamic)["all"]
    assert static["hosts"] == dynamic["_meta"]["hostvars"]
    assert {g: sorted(v["hosts"]) for g, v in static["children"].items()} == {
        g: v["hosts"] for g, v in dynamic.items() if g not in ("all", "_meta")}
    assert all(v == {} for group in static["children"].values() for v in group["hosts"].values())  # variables only under all.hosts


def test_failed_host_makes_config_failed_and_configure_retries_only_it(configuring: tuple[EngineContext, str]) -> None:
    ctx, ticket_id = configuring
    second = f"gd-gat-hukou-{ticket_id}-2"
    fake = FakeAnsible({second: "unreachable"})
    row = tickets.show(ctx, ticket_id)
    state, detail = configure.run_configuration(ctx, row, "yunwei-he", driver_factory=lambda _: fake)
    assert state == "config-failed" and f"{second}: unreachable" in detail
    assert tickets.show(ctx, ticket_id).reason == f"{second}: unreachable. Fix them, then `govcloud configure {ticket_id}`"
    admins = fake.calls[0]["extravars"]["govcloud_admins"]
    assert [a["name"] for a in admins] == ["sunkai"]  # the contact with an SSH key in tenants.yaml
    fake.statuses = {}
    state, _ = configure.run_configuration(ctx, tickets.show(ctx, ticket_id), "yunwei-he", only_failed=True, driver_factory=lambda _: fake)
    assert fake.calls[1]["limit"] == [second]
    assert state == "active"
    with ctx.store.transaction() as conn:
        results = {r.vm: (r.status, r.run) for r in rows.config_of(conn, ticket_id)}
    assert results == {f"gd-gat-hukou-{ticket_id}-1": ("changed", "run-1"), second: ("changed", "run-2")}
    actions = [r.action for r in ctx.store.audit.records(subject=f"ticket:{ticket_id}")]
    assert actions[-2:] == ["ticket.config-failed", "ticket.configured"]


class TimingOut(FakeAnsible):
    """A run that ends without results (the driver raises, as on its timeout)."""

    def run(self, inventory: dict[str, Any], *, playbook: str, extravars: dict[str, Any], limit: list[str], progress: Any,
            owners: dict[str, str]) -> RunResult:
        self.calls.append({"inventory": inventory, "limit": list(limit)})
        raise TemporaryError("ansible run 20261202T080000-abcdef timed out after 900 s", delay=30)


def test_a_run_without_results_makes_every_host_failed_and_retryable(configuring: tuple[EngineContext, str]) -> None:
    ctx, ticket_id = configuring
    hosts = [f"gd-gat-hukou-{ticket_id}-{i}" for i in (1, 2)]
    state, detail = configure.run_configuration(ctx, tickets.show(ctx, ticket_id), "yunwei-he", driver_factory=lambda _: TimingOut({}))
    assert state == "config-failed" and "timed out after 900 s" in detail
    row = tickets.show(ctx, ticket_id)
    assert row.state == "config-failed" and row.reason is not None and row.reason.endswith(f"`govcloud configure {ticket_id}`")
    with ctx.store.transaction() as conn:
        assert {r.vm: r.status for r in rows.config_of(conn, ticket_id)} == dict.fromkeys(hosts, "failed")
    fake = FakeAnsible({})
    state, _ = configure.run_configuration(ctx, row, "yunwei-he", only_failed=True, driver_factory=lambda _: fake)
    assert (state, fake.calls[0]["limit"]) == ("active", hosts)


def test_stored_ticket_vars_never_override_connection_or_govcloud_vars(configuring: tuple[EngineContext, str]) -> None:
    """A ticket stored before validation refused such vars: configuration still keeps them out."""
    ctx, ticket_id = configuring
    with ctx.store.transaction() as conn:
        row = rows.require(conn, ticket_id)
    hostile = {"ansible_connection": "local", "ansible_host": "127.0.0.1", "govcloud_tenant": "gd-zf",
               "nginx_server_name": "{{ lookup('pipe', 'id') }}", "nginx_port": 8080}
    monkey = pytest.MonkeyPatch()
    real = configure.ticket_of
    monkey.setattr(configure, "ticket_of", lambda r: dataclasses.replace(real(r), vars=hostile))
    try:
        hv = configure.inventory(ctx, [row.id])["_meta"]["hostvars"][f"gd-gat-hukou-{ticket_id}-1"]
    finally:
        monkey.undo()
    assert (hv["ansible_host"], hv["govcloud_tenant"], hv["nginx_port"]) == ("10.250.0.11", "gd-gat", 8080)
    assert "ansible_connection" not in hv and "nginx_server_name" not in hv
