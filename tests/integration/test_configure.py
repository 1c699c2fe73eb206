"""Configuration over real SSH: devcloud VMs get real hosts (network namespaces with their own sshd at
the VMs' port addresses), and govcloud configures them with ansible-runner and the site playbook."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from govcloud.drivers.known_hosts import KnownHosts
from govcloud.engine import configure, provision, tickets
from govcloud.engine.context import EngineContext
from govcloud.store import tickets as rows
from govcloud.store.tables import vms as vms_table
from tests.integration.conftest import Devcloud
from tests.support.hosts import TestHosts
from tests.support.tickets import engine, write_ticket

pytestmark = pytest.mark.integration


class HostsOnBoot:
    """Progress hook: when a ticket enters ``configuring``, its VMs "boot" — a real host appears at
    each VM's address (the fake hypervisor's VMs run no OS)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.hosts: TestHosts | None = None
        self.ctx: EngineContext | None = None
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        self.events.append((event, data))
        if event == "ticket" and data.get("state") == "configuring" and self.hosts is None and self.ctx is not None:
            with self.ctx.store.transaction() as conn:
                addresses = [vm.address for vm in rows.vms_of(conn, data["ticket"]) if vm.address]
            self.hosts = TestHosts(addresses, base=self.base)
            self.hosts.up()


@pytest.fixture
def booted(devcloud: Devcloud, tmp_path: Path) -> Iterator[tuple[EngineContext, str, HostsOnBoot]]:
    db = f"sqlite:///{tmp_path / 'state.db'}"
    hook = HostsOnBoot(tmp_path / "hosts")
    ticket_id, path = write_ticket(tmp_path, tenant="gd-gat", system="oa", requester="sunkai", protection="none",
                                   roles=["baseline", "monitoring", "nginx"], variables={"nginx_server_name": "oa.gdga.gov.cn"},
                                   vms=[{"name": "web", "count": 3, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])
    tickets.submit(engine(db, "sunkai"), [path])
    tickets.approve(engine(db, "shenpi-chen"), ticket_id)
    ctx = engine(db, "yunwei-he", state_dir=tmp_path / "state", ssh_key=tmp_path / "hosts" / "id_ed25519")
    ctx.progress = hook
    hook.ctx = ctx
    try:
        yield ctx, ticket_id, hook
    finally:
        if hook.hosts is not None:
            hook.hosts.close()
        provision.retire(ctx, ticket_id)


def test_roles_applied_idempotently_then_a_vanished_host_and_its_retry(booted: tuple[EngineContext, str, HostsOnBoot]) -> None:
    ctx, ticket_id, hook = booted
    (outcome,) = provision.apply(ctx)
    assert (outcome.state, outcome.ticket) == ("active", ticket_id), outcome.detail
    assert [d["state"] for e, d in hook.events if e == "ticket"][:3] == ["provisioning", "configuring", "configuring"]
    hosts = hook.hosts
    assert hosts is not None and len(hosts.addresses) == 3
    for address in hosts.addresses:
        assert "sunkai:" in hosts.read_file(address, "/etc/passwd")  # the contact with an SSH key is an admin
        assert "ssh-ed25519" in hosts.read_file(address, "/home/sunkai/.ssh/authorized_keys")
        assert "PasswordAuthentication no" in hosts.read_file(address, "/etc/ssh/sshd_config.d/50-govcloud.conf")
        assert "server_name oa.gdga.gov.cn" in hosts.read_file(address, "/etc/nginx/sites-available/oa.gdga.gov.cn.conf")
        monitoring = hosts.read_file(address, "/etc/govcloud/monitoring.yml")
        assert ticket_id in monitoring and "http://127.0.0.1:9090" in monitoring
    with ctx.store.transaction() as conn:
        first = {r.vm: r for r in rows.config_of(conn, ticket_id)}
    assert {r.status for r in first.values()} == {"changed"}

    # apply again: servers found, configuration re-run with nothing to change
    (again,) = provision.apply(ctx, [ticket_id])
    assert again.state == "active" and again.detail.endswith("0 change(s)"), again.detail

    # one host vanishes in the middle of a run: unreachable, the ticket config-failed
    victim = hosts.addresses[1]
    started = threading.Event()
    original = ctx.progress

    def watch(event: str, data: dict[str, Any]) -> None:
        original(event, data)
        if event == "ansible" and data.get("event") == "playbook_on_task_start":
            started.set()

    ctx.progress = watch
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(out=configure.configure(ctx, ticket_id)))
    worker.start()
    assert started.wait(60)
    time.sleep(1)
    hosts.stop(victim)
    worker.join(240)
    assert not worker.is_alive(), "a vanished host must not hang the run"
    state, detail = result["out"]
    victim_vm = next(vm.name for vm in _vms(ctx, ticket_id) if vm.address == victim)
    assert state == "config-failed" and f"{victim_vm}: unreachable" in detail
    with ctx.store.transaction() as conn:
        statuses = {r.vm: r.status for r in rows.config_of(conn, ticket_id)}
    assert statuses[victim_vm] == "unreachable" and sum(s == "ok" for s in statuses.values()) == 2

    # the host comes back: configure retries it alone, and the ticket is active
    hosts.start(victim)
    ctx.progress = original
    state, detail = configure.configure(ctx, ticket_id)
    assert state == "active", detail
    assert detail.startswith("1 host(s) configured")

    # host keys: learned on first contact into govcloud's own known_hosts, the ones the hosts really have
    known = KnownHosts(ctx.settings.state_dir / "ssh" / "known_hosts")
    assert {a: keys for a, keys in known.keys().items()} == {a: [hosts.host_key(a)] for a in hosts.addresses}

    # a machine with another key answers at a VM's address (same VM as far as the cloud knows): refused
    hosts.rekey(victim)
    state, detail = configure.configure(ctx, ticket_id)
    assert state == "config-failed" and f"SSH host key of {victim} changed since govcloud first connected" in detail, detail
    assert known.keys()[victim] != [hosts.host_key(victim)]

    # the VM really was replaced (a new server at the same address, as reconcile recreates one): its new key is learned
    real_id = next(vm.server_id for vm in _vms(ctx, ticket_id) if vm.name == victim_vm)
    with ctx.store.transaction() as conn:
        conn.execute(sa.update(vms_table).where(vms_table.c.name == victim_vm).values(server_id="recreated-" + victim_vm))
    state, detail = configure.configure(ctx, ticket_id)
    assert state == "active", detail
    assert known.keys()[victim] == [hosts.host_key(victim)]
    with ctx.store.transaction() as conn:  # the fixture's retire deletes the real server
        conn.execute(sa.update(vms_table).where(vms_table.c.name == victim_vm).values(server_id=real_id))

    # no private key or password in clear in any run directory
    runs = list((ctx.settings.state_dir / "runs" / "ansible").glob("*"))
    assert len(runs) == 6
    key = (hosts.key_path).read_text(encoding="utf-8").strip().splitlines()[1]
    for file in (f for run in runs for f in run.rglob("*") if f.is_file()):
        text = file.read_text(encoding="utf-8", errors="replace")
        assert "PRIVATE KEY" not in text and key not in text, file


def _vms(ctx: EngineContext, ticket_id: str) -> list[rows.VmRow]:
    with ctx.store.transaction() as conn:
        return rows.vms_of(conn, ticket_id)
