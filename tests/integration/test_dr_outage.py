"""DR activation after a real outage of both Guangzhou centres (issue 14, "Against the devcloud"): unlike
test_dr_activate.py (the declaration path, centres up), gz-main and gz-backup are failed for real
(``govcloud devcloud fail-centre``: their nova-computes SIGKILLed) and the health watch — the daemon's own
``CentreWatch``, one round at a time — records both ``down``. Then, as the e-government office would:

* ``govcloud dr activate --cloud gd-prov`` (no ``--declare-lost``) creates a run and waits: exit 4, the run's
  ``lost_at`` from the health records, nothing booted in gd-sg;
* the operator cannot approve it (exit 2); an approver does (``dr approve RUN``);
* ``dr activate --run RUN`` (the CLI in-process, so that a progress hook sees the configure step begin)
  rebuilds both VMs of a ``dr`` ticket in sg-dr from their replicas, and its configure step applies the
  ticket's ``baseline`` role over real SSH to test hosts that appear, when configuration begins, at the
  rebuilt servers' addresses in gd-sg's subnet (the fake hypervisor's VMs run no OS): the role's sshd
  hardening is on each host;
* VM rows, ledger (the ``dr`` reservation became the allocation in sg-dr) and audit follow.

Both centres are restored in the fixture's teardown whatever happens, then everything made is deleted.
Destructive: run this file alone, under ``flock -x /tmp/devcloud.lock``. Times are printed, never asserted."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openstack
import pytest
from click.testing import CliRunner

from govcloud.cli import main
from govcloud.engine import context as context_module
from govcloud.engine import provision, tickets
from govcloud.engine.context import EngineContext
from govcloud.failover.replicate import Replicator
from govcloud.failover.watch import CentreWatch
from govcloud.settings import DrSettings, Settings
from govcloud.store import facts, replicas, runs
from govcloud.store import tickets as rows
from tests.integration.conftest import Devcloud
from tests.support.hosts import TestHosts
from tests.support.tickets import REPO, engine, write_ticket
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*")]

GUANGZHOU = ("gz-main", "gz-backup")
BRIDGE, GATEWAY, PREFIX = "gcbr4", "10.250.4.1", 22
"""gd-sg's gov-shared subnet (inventory/devcloud.yaml): the rebuilt servers' ports get addresses there."""


def compute(region: str) -> Any:
    return openstack.connect(cloud="devcloud-admin", region_name=region).compute


def cli(db: str, user: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "cli.py"), "--root", str(REPO), "--db", db, "--as", user, *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class HostsOnConfigure:
    """Progress hook: when the configure step begins on the ticket, its VMs "boot" — a real host appears at
    each VM's address as the store then records it (the rebuilt servers' addresses in gd-sg)."""

    base: Path
    hosts: TestHosts | None = None
    ctx: EngineContext | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        self.events.append((event, data))
        if event == "ticket" and data.get("state") == "configuring" and self.hosts is None and self.ctx is not None:
            with self.ctx.store.transaction() as conn:
                addresses = [vm.address for vm in rows.vms_of(conn, data["ticket"]) if vm.address]
            self.hosts = TestHosts(addresses, base=self.base, bridge=BRIDGE, gateway=GATEWAY, subnet_prefix=PREFIX)
            self.hosts.up()


@dataclass
class Outage:
    db: str
    ticket: str
    old: dict[str, str]
    """VM name → its server in gd-gz before the outage."""
    hook: HostsOnConfigure
    state_dir: Path


@pytest.fixture
def outage(devcloud: Devcloud, tmp_path: Path) -> Iterator[Outage]:
    """A ``dr`` ticket of gd-mzt/mzoa (no group of the sample plan names it: no hook) with the ``baseline`` role,
    two small VMs applied in Guangzhou (not configured: the original fake VMs have no hosts). Teardown: both
    Guangzhou centres restored first, whatever the test did, then the hosts, the ticket, the lost originals
    and the replicas' images deleted, and nothing of the ticket left in either region."""
    db = f"sqlite:///{tmp_path / 'state.db'}"
    ticket_id, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", roles=["baseline"], protection="dr",
                                   vms=[{"name": "app", "count": 2, "flavor": "gc.small", "cloud": "gd-prov"}])
    tickets.submit(engine(db, "caijing"), [path])
    approver = engine(db, "shenpi-chen")
    if tickets.show(approver, ticket_id).state == "submitted":
        tickets.approve(approver, ticket_id)
    hook = HostsOnConfigure(tmp_path / "hosts")
    made = Outage(db, ticket_id, {}, hook, tmp_path / "state")
    try:
        (outcome,) = provision.apply(engine(db, "yunwei-he"), [ticket_id], configure=False)
        assert outcome.state == "active", outcome.detail
        with engine(db, "yunwei-he").store.transaction() as conn:
            made.old.update({v.name: v.server_id or "" for v in rows.vms_of(conn, ticket_id)})
        yield made
    finally:
        restored = [devcloud.cli("restore-centre", centre, timeout=300) for centre in GUANGZHOU]
        if hook.hosts is not None:
            hook.hosts.close()
        operator = engine(db, "yunwei-he")
        if tickets.show(operator, ticket_id).state != "retired":
            provision.retire(operator, ticket_id)  # the VM rows name the servers in gd-sg after the activation
        gz = compute("gd-gz")
        for server_id in made.old.values():  # the "lost" originals, which come back with their centres
            if gz.find_server(server_id, ignore_missing=True):
                gz.delete_server(server_id, ignore_missing=True)
                gz.wait_for_delete(gz.get_server(server_id), wait=120)
        actor = operator.state.users.get("yunwei-he")
        assert actor is not None
        Replicator(store=operator.store, state=operator.state, endpoints=operator.endpoints, driver=operator.driver, clock=operator.clock,
                   actor=actor, settings=DrSettings(keep=0)).run()  # the ticket is gone: its replicas' images go in both regions
        assert [(r.returncode, r.stderr) for r in restored] == [(0, "")] * 2, restored
        left = {region: [s.name for s in compute(region).servers(all_projects=True) if ticket_id in s.name] for region in ("gd-gz", "gd-sg")}
        images = {region: [i.name for i in openstack.connect(cloud="devcloud-admin", region_name=region).image.images() if ticket_id in i.name]
                  for region in ("gd-gz", "gd-sg")}
        assert left == {"gd-gz": [], "gd-sg": []} and images == {"gd-gz": [], "gd-sg": []}, (left, images)  # nothing left behind


def recorded_down(watch: CentreWatch) -> bool:
    """One round of the health watch (as the leader daemon's health thread runs it); both Guangzhou centres down?"""
    states = {row.centre: row.state for row in watch.check() if row.cloud == "gd-prov"}
    return all(states[centre] == "down" for centre in GUANGZHOU)


def activate_in_process(outage: Outage, devcloud: Devcloud, run_id: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """``govcloud dr activate --run RUN --yes -o json`` as the operator, in this process: the contexts the CLI
    builds carry the hook that boots the test hosts, its state directory (known_hosts, run dirs) is the
    test's and it logs in with the test hosts' key."""
    def build(*args: Any, **kwargs: Any) -> EngineContext:
        ctx = original(*args, **kwargs)
        ctx.progress = outage.hook
        outage.hook.ctx = ctx
        return ctx

    original = context_module.build
    monkeypatch.setattr(context_module, "build", functools.wraps(original)(build))
    settings = Settings.from_env()
    env = {"GOVCLOUD_USER": None, "GOVCLOUD_STATE_DIR": str(outage.state_dir), "GOVCLOUD_DEVCLOUD_DIR": str(devcloud.root),
           "GOVCLOUD_SSH_KEY": str((outage.hook.base / "id_ed25519").resolve()),
           "GOVCLOUD_AUDIT_KEY_FILE": str(settings.audit_key_file), "GOVCLOUD_AUDIT_ANCHOR": str(settings.audit_anchor_file)}
    code: Any = None
    with CliRunner(env=env).isolation() as (out, err, _):
        try:
            main(["--root", str(REPO), "--db", outage.db, "--as", "yunwei-he", "dr", "activate", "--run", str(run_id), "--yes", "-o", "json"])
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8")


def test_both_guangzhou_centres_fail_approved_activation_rebuilds_and_configures_in_sg_dr(
        devcloud: Devcloud, outage: Outage, monkeypatch: pytest.MonkeyPatch) -> None:
    db, ticket_id, old = outage.db, outage.ticket, outage.old
    replicated = cli(db, "yunwei-he", "dr", "replicate", "--system", "mzoa", "-o", "json")
    assert replicated.returncode == 0, replicated.stderr
    images = {r["vm"]: r["dr_image"] for r in json.loads(replicated.stdout)}
    assert set(images) == set(old)

    operator = engine(db, "yunwei-he")
    watch = CentreWatch(store=operator.store, topology=operator.state.topology, endpoints=operator.endpoints, driver=operator.driver,
                        clock=time.time, actor="govcloud-daemon")
    try:
        assert not recorded_down(watch)  # the first round records every centre as it is: healthy
        began = time.monotonic()
        for centre in GUANGZHOU:
            failed = devcloud.cli("fail-centre", centre)
            assert failed.returncode == 0, failed.stderr
        wait_for("the health watch to record gz-main and gz-backup down", lambda: recorded_down(watch), timeout=180, interval=3)
        detected = time.monotonic() - began
    finally:
        watch.close()
    with operator.store.transaction() as conn:
        down_since = {h.centre: h.since for h in facts.health(conn) if h.centre in GUANGZHOU and h.state == "down"}
    assert set(down_since) == set(GUANGZHOU)

    waiting = cli(db, "yunwei-he", "dr", "activate", "--cloud", "gd-prov", "--reason", "integration test: both Guangzhou centres failed")
    assert waiting.returncode == 4, waiting.stdout + waiting.stderr
    with operator.store.transaction() as conn:
        (run,) = runs.runs(conn)
    assert (run.kind, run.state, run.started_by) == ("dr-activation", "new", "yunwei-he")
    assert run.plan["declared_lost"] is False and run.plan["lost_at"] == max(down_since.values())  # lost when the watch saw it
    assert f"govcloud dr approve {run.id}" in waiting.stderr
    sg = compute("gd-sg")
    assert [s for s in sg.servers(all_projects=True) if s.name in old] == []  # nothing booted before approval

    refused = cli(db, "yunwei-he", "dr", "approve", str(run.id))
    assert refused.returncode == 2, refused.stdout + refused.stderr  # the operator: not an approver
    approved = cli(db, "shenpi-chen", "dr", "approve", str(run.id))
    assert approved.returncode == 0, approved.stderr

    began = time.monotonic()
    code, out, err = activate_in_process(outage, devcloud, run.id, monkeypatch)
    took = time.monotonic() - began
    assert code == 0, out[-3000:] + err[-3000:]
    report = json.loads(out)
    assert report["state"] == "finished" and set(report["vms"]) == set(old)
    assert all(v["rto_s"] >= v["rebuild_s"] > 0 and v["data_loss_s"] > 0 for v in report["vms"].values()), report["vms"]
    assert report["configured"][ticket_id]["state"] == "active", report["configured"]

    operator = engine(db, "yunwei-he")
    with operator.store.transaction() as conn:
        vms = {v.name: v for v in rows.vms_of(conn, ticket_id)}
        lines = [(line.centre, line.kind, line.resources.instances) for line in rows.ledger_lines(conn, ticket=ticket_id)]
        used = {r.vm: r for r in replicas.listing(conn, states=["ready"])}
        configured = {c.vm: c.status for c in rows.config_of(conn, ticket_id)}
    for name, vm in vms.items():
        server = sg.get_server(vm.server_id)
        assert server.status == "ACTIVE" and server.availability_zone == "sg-dr" and vm.server_id != old[name]
        assert server.image["id"] == images[name] == used[name].dr_image  # booted from the replica copied into gd-sg's glance
        assert (vm.centre, vm.region, vm.zone) == ("sg-dr", "gd-sg", "sg-dr")
        assert vm.address in {a for port in server.addresses.values() for a in (p["addr"] for p in port)}

    # the ticket's role reached the rebuilt VMs over real SSH: the hosts standing in for them at their new addresses
    hosts = outage.hook.hosts
    assert hosts is not None and sorted(hosts.addresses) == sorted(vm.address or "" for vm in vms.values())
    for address in hosts.addresses:
        assert "PasswordAuthentication no" in hosts.read_file(address, "/etc/ssh/sshd_config.d/50-govcloud.conf")
    assert configured == dict.fromkeys(vms, "changed")

    assert sorted(lines) == [("sg-dr", "vm", 2)]  # the reservation became the allocation; nothing left in Guangzhou
    records = operator.store.audit.records()
    by_action: dict[str, list[str]] = {}
    for record in records:
        by_action.setdefault(record.action, []).append(record.actor)
    assert by_action["dr-activation.request"] == ["yunwei-he"] and by_action["dr-activation.approve"] == ["shenpi-chen"]
    assert by_action["dr-activation.start"] == ["yunwei-he"] and by_action["dr.activate"] == ["yunwei-he"] * 2
    assert len(by_action["dr.server-lost"]) == 2 and "dr.declare-lost" not in by_action
    went_down = {r.subject for r in records if r.action == "centre.health" and r.details["to"] == "down" and r.subject.startswith("centre:gd-prov/")}
    assert went_down == {"centre:gd-prov/gz-main", "centre:gd-prov/gz-backup"}
    print(f"\nboth Guangzhou centres recorded down by the health watch {detected:.0f} s after the kill; dr activate of 2 VMs "
          f"(rebuild + baseline role over SSH) {took:.1f} s; per VM "
          + ", ".join(f"{n}: rebuild {v['rebuild_s']:.1f} s, data loss {v['data_loss_s']:.1f} s, RTO {v['rto_s']:.1f} s"
                      for n, v in sorted(report["vms"].items())))
