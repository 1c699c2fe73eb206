"""``govcloud daemon`` against the devcloud, as a real process: a dropped ticket becomes VMs with no
CLI command; a VM deleted with the OpenStack API is reported and recreated; a failed centre shows
``down`` in the metrics, its ha VMs are evacuated to the other Guangzhou centre, and it comes back
``healthy``; two daemons on a real PostgreSQL elect one
leader, and when the leader is killed (-9) mid-apply the other finishes with no duplicate VM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest

from govcloud.engine import provision, tickets
from govcloud.store import tickets as rows
from tests.integration.conftest import Devcloud
from tests.support.daemons import DaemonProcess, daemon_rows, leaders, start_daemon
from tests.support.postgres import create_database
from tests.support.projects import projects_removed
from tests.support.tickets import REPO, engine, open_store, write_ticket
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def nova(region: str = "gd-gz") -> Any:
    return openstack.connect(cloud="devcloud-admin", region_name=region)


def servers_of(ticket_id: str) -> list[Any]:
    return [s for s in nova().compute.servers(all_projects=True) if (s.metadata or {}).get("govcloud:ticket") == ticket_id]


def drop(inbox: Path, scratch: Path, **ticket: Any) -> str:
    """Write a ticket where a department's tooling would: complete, then renamed into the requester's
    own inbox directory (0700, owned by the account the test runs as: it is submitted as that user)."""
    ticket_id, path = write_ticket(scratch, roles=(), expires="2027-06-30", **ticket)
    mine = inbox / ticket["requester"]
    mine.mkdir(mode=0o700, exist_ok=True)
    path.rename(mine / path.name)
    return ticket_id


def state(db: str, ticket_id: str) -> str | None:
    store = open_store(db)
    try:
        with store.transaction() as conn:
            row = rows.get(conn, ticket_id)
        return row.state if row else None
    finally:
        store.close()


@pytest.fixture(scope="module", autouse=True)
def own_projects(devcloud: Devcloud) -> Iterator[None]:
    """gd-czt is onboarded here (the two daemons' ticket) for the tests alone: its project goes at the end."""
    with projects_removed("gd-czt"):
        yield


@pytest.fixture(scope="module")
def running(devcloud: Devcloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, str, Path, Path]]:
    base = tmp_path_factory.mktemp("daemon")
    db, inbox = f"sqlite:///{base / 'state.db'}", base / "inbox"
    inbox.mkdir()
    daemon = start_daemon(db, inbox, base / "state", "--listen", "127.0.0.1:0", "--policy", "correct", "--failover", "evacuate")
    try:
        yield daemon, db, inbox, base
    finally:
        assert daemon.stop() == 0, daemon.lines[-20:]


def test_a_dropped_ticket_becomes_vms_and_a_deleted_vm_is_recreated(running: tuple[DaemonProcess, str, Path, Path]) -> None:
    daemon, db, inbox, base = running
    ticket_id = drop(inbox, base, tenant="gd-mzt", system="mzoa", requester="caijing",
                     vms=[{"name": "web", "count": 2, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])
    wait_for(f"ticket {ticket_id} active", lambda: state(db, ticket_id) == "active", timeout=240)
    servers = servers_of(ticket_id)
    assert sorted(s.name for s in servers) == [f"gd-mzt-mzoa-{ticket_id}-1", f"gd-mzt-mzoa-{ticket_id}-2"]
    assert {s.availability_zone for s in servers} == {"gz-main"}
    assert list((inbox / "done").iterdir())

    victim = next(s for s in servers if s.name.endswith("-1"))
    nova().compute.delete_server(victim)
    nova().compute.wait_for_delete(victim, interval=1, wait=120)
    store = open_store(db)

    def recreated() -> bool:
        again = [s for s in servers_of(ticket_id) if s.name == victim.name and s.id != victim.id and s.status == "ACTIVE"]
        return bool(again) and any(r.action == "reconcile.correct" for r in store.audit.records(subject="cloud:gd-prov"))

    wait_for("the deleted VM to be reported and recreated", recreated, timeout=240, interval=2)
    assert any(r.action == "reconcile.drift" and victim.name in r.details["name"] for r in store.audit.records(subject="cloud:gd-prov"))
    assert len(servers_of(ticket_id)) == 2
    assert daemon.metric("govcloud_vms", cloud="gd-prov", centre="gz-main", tenant="gd-mzt") is not None
    assert daemon.get("/healthz")[0] == 200 and daemon.get("/readyz")[0] == 200
    provision.retire(engine(db, "yunwei-he", store=store), ticket_id)
    assert servers_of(ticket_id) == []
    store.close()


def govcloud(db: str, *args: str, user: str = "yunwei-he") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOVCLOUD_DB": db, "GOVCLOUD_USER": user}
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def vm_rows(db: str, ticket_id: str) -> list[rows.VmRow]:
    store = open_store(db)
    try:
        with store.transaction() as conn:
            return rows.vms_of(conn, ticket_id)
    finally:
        store.close()


def test_a_failed_centre_is_down_in_the_metrics_its_ha_vms_evacuated_then_healthy_again(
        running: tuple[DaemonProcess, str, Path, Path], devcloud: Devcloud) -> None:
    """One centre failure for both: health (down in the metrics within the grace period, healthy after
    restore) and failover (the daemon, under --failover evacuate, moves the ha VMs to gz-backup)."""
    daemon, db, inbox, base = running
    up = {"cloud": "gd-prov", "centre": "gz-main"}
    ticket_id = drop(inbox, base, tenant="gd-mzt", system="mzoa", requester="caijing", protection="ha",
                     vms=[{"name": "web", "count": 4, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
    wait_for(f"ticket {ticket_id} submitted", lambda: state(db, ticket_id) == "submitted", timeout=60)  # ha: no auto-approval
    approved = govcloud(db, "ticket", "approve", ticket_id, user="shenpi-chen")
    assert approved.returncode == 0, approved.stderr
    wait_for(f"ticket {ticket_id} active", lambda: state(db, ticket_id) == "active", timeout=240)
    in_main = sorted(v.name for v in vm_rows(db, ticket_id) if v.centre == "gz-main")
    assert len(in_main) == 2, vm_rows(db, ticket_id)
    refused = govcloud(db, "failover", "plan", "gz-main")
    assert refused.returncode == 2 and "nova reports gz-main-1, gz-main-2 up in gz-main" in refused.stderr, refused.stderr
    wait_for("gz-main healthy", lambda: daemon.metric("govcloud_centre_up", **up) == 1, timeout=60)
    failed = devcloud.cli("fail-centre", "gz-main")
    assert failed.returncode == 0, failed.stderr
    try:
        started = time.monotonic()
        wait_for("gz-main down in the metrics", lambda: daemon.metric("govcloud_centre_up", **up) == 0, timeout=120)
        took_down = time.monotonic() - started
        assert daemon.metric("govcloud_centre_up", cloud="gd-prov", centre="gz-backup") == 1
        assert daemon.metric("govcloud_centre_health", cloud="gd-prov", centre="gz-main", state="down") == 1

        def evacuated() -> bool:
            moved = {s.name: s for s in servers_of(ticket_id) if s.name in in_main}
            return all(s.status == "ACTIVE" and s.availability_zone == "gz-backup" for s in moved.values()) and len(moved) == 2 and \
                {v.centre for v in vm_rows(db, ticket_id)} == {"gz-backup"}

        wait_for("the ha VMs of gz-main evacuated to gz-backup and recorded there", evacuated, timeout=240, interval=2)
        took_over = time.monotonic() - started
        wait_for("no ha VM waiting in gz-main in the metrics",
                 lambda: daemon.metric("govcloud_failover_waiting_vms", protection="ha", **up) is None, timeout=30)
        hosts = {s.compute_host for s in servers_of(ticket_id) if s.name in in_main}
        assert hosts <= {"gz-backup-1", "gz-backup-2"}, hosts
        plan = govcloud(db, "failover", "plan", "gz-main", "--output", "json")
        assert plan.returncode == 0 and json.loads(plan.stdout)["moves"] == [], plan.stdout + plan.stderr
        store = open_store(db)
        moves = [r for r in store.audit.records() if r.action == "failover.move"]
        store.close()
        assert sorted(r.subject for r in moves) == [f"vm:{n}" for n in in_main]
    finally:
        restored = devcloud.cli("restore-centre", "gz-main", timeout=300)
    assert restored.returncode == 0, restored.stderr
    wait_for("gz-main healthy again", lambda: daemon.metric("govcloud_centre_health", state="healthy", **up) == 1, timeout=180)
    # gz-main's restarted computes clean up the evacuated instances; the servers stay on gz-backup
    assert {(s.status, s.availability_zone) for s in servers_of(ticket_id)} == {("ACTIVE", "gz-backup")}
    assert len(servers_of(ticket_id)) == 4
    print(f"gz-main recorded down {took_down:.0f} s after its computes were killed (nova's service_down_time is 25 s); "
          f"its ha VMs ACTIVE in gz-backup {took_over:.0f} s after the kill")
    store = open_store(db)
    provision.retire(engine(db, "yunwei-he", store=store), ticket_id)
    store.close()
    assert servers_of(ticket_id) == []


def test_two_daemons_on_postgresql_one_leader_and_a_takeover_mid_apply(devcloud: Devcloud, postgres_url: str, tmp_path: Path) -> None:
    db = create_database(postgres_url, "daemons")
    open_store(db).close()  # migrate once, before two processes race to
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    first = start_daemon(db, inbox, tmp_path / "a", "--listen", "none")
    second = start_daemon(db, inbox, tmp_path / "b", "--listen", "none")
    try:
        wait_for("both daemons registered", lambda: len(daemon_rows(db)) == 2, timeout=60)
        time.sleep(3)  # a few election rounds
        (leader,) = leaders(db)
        ticket_id, path = write_ticket(tmp_path, tenant="gd-czt", system="yszx", requester="suxiaodong", roles=(),
                                       vms=[{"name": "batch", "count": 12, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])
        tickets.submit(engine(db, "suxiaodong"), [path])
        tickets.approve(engine(db, "shenpi-chen"), ticket_id)
        wait_for("the leader to start creating", lambda: len(servers_of(ticket_id)) >= 3, timeout=180, interval=0.5)
        victim = first if first.process.pid == leader.pid else second
        other = second if victim is first else first
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait(timeout=30)
        killed = time.monotonic()
        wait_for("the standby to lead", lambda: [d.pid for d in leaders(db) if d.pid == other.process.pid], timeout=60, interval=0.5)
        takeover = time.monotonic() - killed
        wait_for(f"ticket {ticket_id} active", lambda: state(db, ticket_id) == "active", timeout=300, interval=2)
        servers = servers_of(ticket_id)
        assert sorted(s.name for s in servers) == sorted(f"gd-czt-yszx-{ticket_id}-{i}" for i in range(1, 13))
        assert len({s.name for s in servers}) == 12
        print(f"standby took over {takeover:.1f} s after the leader was killed")
        provision.retire(engine(db, "yunwei-he"), ticket_id)
    finally:
        for daemon in (first, second):
            if daemon.process.poll() is None:
                daemon.stop()
            daemon.close()
