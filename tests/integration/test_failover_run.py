"""``govcloud failover run`` against the devcloud, as an operator would run it (issue 13): protected VMs
of three priority groups in gz-main; gz-main's computes killed (``devcloud fail-centre``); the run
recovers them into gz-backup group by group, which the journal's timestamps show; then gz-backup fails,
a run that moves everything back is killed with ``kill -9`` mid-way, and the next ``failover run``
takes it over and finishes it, no VM evacuated twice (nova's own migration records say so).

Destructive: run this file alone, under ``flock -x /tmp/devcloud.lock``; every centre is restored
before it ends. Times are printed, never asserted.
"""

from __future__ import annotations

import datetime
import itertools
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
from govcloud.engine.context import EngineContext, build
from govcloud.settings import Settings
from govcloud.store import runs
from govcloud.store import tickets as rows
from tests.integration.conftest import Devcloud
from tests.support.tickets import REPO, open_store, write_ticket
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*")]

PLAN = """\
version: 1
cloud: gd-prov
groups:
- name: first
  priority: 1
  systems: [gd-gat/hukou]
- name: second
  priority: 2
  systems: [gd-zsj/sjgx]
  depends_on: [first]
- name: last
  priority: 5
  systems: [gd-mzt/shjz]
"""
"""Three groups, no hooks: the devcloud's VMs run on nova's fake driver and answer no SSH (hooks are
covered on the in-memory cloud and by the Ansible driver's own tests on real SSH hosts)."""
SYSTEMS = [("gd-gat", "hukou", "sunkai", "dr", "first"), ("gd-zsj", "sjgx", "yuantao", "dr", "second"),
           ("gd-mzt", "shjz", "caijing", "ha", "last")]


def nova() -> Any:
    return openstack.connect(cloud="devcloud-admin", region_name="gd-gz")


def data_root(base: Path) -> Path:
    root = base / "data"
    root.mkdir()
    for name in ("inventory", "tenants.yaml", "quotas", "users.yaml", "playbooks"):
        (root / name).symlink_to(REPO / name)
    (root / "recovery").mkdir()
    (root / "recovery" / "gd-prov.yaml").write_text(PLAN, encoding="utf-8")
    return root


def context(root: Path, db: str, user: str) -> EngineContext:
    return build(Settings.from_env().with_overrides(root=str(root), db=db, user=user))


def govcloud(root: Path, db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, "GOVCLOUD_DB": db, "GOVCLOUD_USER": "yunwei-he", "GOVCLOUD_ROOT": str(root)})


def journal(db: str, run_id: int | None = None) -> tuple[runs.RunRow | None, list[runs.MoveRow]]:
    store = open_store(db)
    try:
        with store.transaction() as conn:
            run = runs.get_run(conn, run_id) if run_id else next(iter(runs.runs(conn, limit=1)), None)
            return run, runs.moves_of(conn, [run.id]) if run else []
    finally:
        store.close()


def vm_rows(db: str) -> list[rows.VmRow]:
    store = open_store(db)
    try:
        with store.transaction() as conn:
            return rows.vms_of(conn)
    finally:
        store.close()


def down(root: Path, db: str, centre: str) -> bool:
    """nova reports every compute host of ``centre`` down (``failover plan`` no longer refuses)."""
    return govcloud(root, db, "failover", "plan", centre, "-o", "json").returncode == 0


MAIN_HOSTS = ("gz-main-1", "gz-main-2")


def audit_records(db: str, subject: str) -> list[Any]:
    store = open_store(db)
    try:
        return list(store.audit.records(subject=subject, limit=200))
    finally:
        store.close()


def evacuations(server_id: str) -> list[Any]:
    return list(nova().compute.migrations(server_id=server_id, migration_type="evacuation"))


@pytest.fixture(scope="module")
def province(devcloud: Devcloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, list[str]]]:
    base = tmp_path_factory.mktemp("failover-run")
    root, db = data_root(base), f"sqlite:///{base / 'state.db'}"
    made = []
    for tenant, system, requester, protection, _ in SYSTEMS:
        ticket_id, path = write_ticket(base, tenant=tenant, system=system, requester=requester, roles=(), protection=protection,
                                       vms=[{"name": "app", "count": 2, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
        (row,) = tickets.submit(context(root, db, requester), [path])
        if row.state == "submitted":
            tickets.approve(context(root, db, "shenpi-chen"), ticket_id)
        (outcome,) = provision.apply(context(root, db, "yunwei-he"), [ticket_id])
        assert outcome.state == "active", outcome
        made.append(ticket_id)
    try:
        yield root, db, made
    finally:
        for centre in ("gz-main", "gz-backup"):
            devcloud.cli("restore-centre", centre, timeout=300)
        ctx = context(root, db, "yunwei-he")
        for ticket_id in made:
            provision.retire(ctx, ticket_id)


def test_groups_recovered_in_priority_order_then_a_killed_run_resumed(devcloud: Devcloud, province: tuple[Path, str, list[str]]) -> None:
    root, db, _ = province
    in_main = sorted(v.name for v in vm_rows(db) if v.centre == "gz-main")
    assert len(in_main) == 3, vm_rows(db)  # ha and dr alternate: one VM of each ticket in gz-main
    failed = devcloud.cli("fail-centre", "gz-main")
    assert failed.returncode == 0, failed.stderr
    started = time.monotonic()
    wait_for("nova to report gz-main's hosts down", lambda: down(root, db, "gz-main"), timeout=120, interval=3)
    detected = time.monotonic() - started
    ran = govcloud(root, db, "failover", "run", "gz-main", "--yes", "-o", "json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(ran.stdout)
    recovered = time.monotonic() - started
    run, moves = journal(db, result["run"])
    assert run is not None and run.state == "finished" and len(moves) == 3
    assert {m.state for m in moves} == {"moved"} and {m.target_centre for m in moves} == {"gz-backup"}
    assert {m.source_host for m in moves} <= {"gz-main-1", "gz-main-2"}
    by_group = {m.group_name: m for m in moves}
    assert set(by_group) == {"first", "second", "last"}
    for earlier, later in itertools.pairwise(["first", "second", "last"]):  # from the journal's timestamps
        assert (by_group[earlier].ended_at or "") <= (by_group[later].started_at or ""), (by_group[earlier], by_group[later])
    servers = {s.name: s for s in nova().compute.servers(all_projects=True) if s.name in in_main}
    assert {(s.status, s.availability_zone) for s in servers.values()} == {("ACTIVE", "gz-backup")}
    restored = devcloud.cli("restore-centre", "gz-main", timeout=300)
    assert restored.returncode == 0, restored.stderr
    print(f"gz-main: nova reported its hosts down {detected:.0f} s after the kill; 3 groups recovered {recovered:.0f} s after it")

    # -- the other way: gz-backup fails, the run is killed mid-way and resumed -------------------------
    everything = {v.name: v.server_id for v in vm_rows(db)}
    assert len(everything) == 6 and {v.centre for v in vm_rows(db)} == {"gz-backup"}
    before = {name: len(evacuations(sid or "")) for name, sid in everything.items()}
    failed = devcloud.cli("fail-centre", "gz-backup")
    assert failed.returncode == 0, failed.stderr
    wait_for("nova to report gz-backup's hosts down", lambda: down(root, db, "gz-backup"), timeout=120, interval=3)
    first = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "failover", "run", "gz-backup", "--yes"], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                             env={**os.environ, "GOVCLOUD_DB": db, "GOVCLOUD_USER": "yunwei-he", "GOVCLOUD_ROOT": str(root)})

    def moving() -> runs.RunRow | None:
        run, moves = journal(db)
        return run if run is not None and run.id != result["run"] and any(m.state in ("moving", "moved") for m in moves) else None

    killed_run = wait_for("the second run to send its first evacuation", moving, timeout=240, interval=0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    _, at_kill = journal(db, killed_run.id)
    resumed = govcloud(root, db, "failover", "run", "gz-backup", "--yes", "-o", "json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    again = json.loads(resumed.stdout)
    assert (again["run"], again["resumed"], again["state"]) == (killed_run.id, True, "finished")
    run, moves = journal(db, killed_run.id)
    assert run is not None and run.resumed == 1 and run.state == "finished" and {m.state for m in moves} == {"moved"}
    assert {v.centre for v in vm_rows(db)} == {"gz-main"}
    after = {name: len(evacuations(sid or "")) for name, sid in everything.items()}
    assert {name: after[name] - before[name] for name in everything} == dict.fromkeys(everything, 1)  # each evacuated once
    print(f"killed with {sum(1 for m in at_kill if m.state == 'moved')} of 6 moved, "
          f"{sum(1 for m in at_kill if m.state == 'moving')} in flight; resumed as run {killed_run.id}")
    restored = devcloud.cli("restore-centre", "gz-backup", timeout=300)
    assert restored.returncode == 0, restored.stderr


FENCING = """\
version: 1
clouds:
  gd-prov:
    gz-main: {method: devcloud}
"""
"""gz-main fenced by the devcloud's own agent (``govcloud devcloud host off``: its nova-compute stopped); no other centre."""
SILENT_AFTER = 10
"""The daemons' ``--health-silent-after``: two of the devcloud's 5 s heartbeat intervals (nova's verdict comes after 25 s)."""


def service_down_time(devcloud: Devcloud) -> int:
    """nova's ``service_down_time`` in the devcloud's gd-gz region (its nova.conf)."""
    for line in (devcloud.root / "etc" / "gd-gz" / "nova" / "nova.conf").read_text(encoding="utf-8").splitlines():
        if line.replace(" ", "").startswith("service_down_time="):
            return int(line.split("=", 1)[1])
    raise AssertionError("no service_down_time in the devcloud's nova.conf")


def nova_time(stamp: str) -> datetime.datetime:
    """nova's timestamps (``updated_at``, a migration's ``created_at``): UTC, with or without a zone."""
    moment = datetime.datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def main_services() -> dict[str, Any]:
    return {s.host: s for s in nova().compute.services(binary="nova-compute") if s.availability_zone == "gz-main"}


def test_the_standby_daemon_fences_and_resumes_the_run_of_a_leader_killed_mid_way(devcloud: Devcloud, province: tuple[Path, str, list[str]],
                                                                                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two daemons under ``--failover auto`` with gz-main's fence method ``devcloud`` (a lock file next to the SQLite
    store elects one) and ``--health-silent-after``; gz-main fails; the leader, on its own, sees the heartbeats stop,
    fences gz-main (nova's services forced down, ``centre.fence`` audited) and evacuates group by group, starting
    before nova's own ``service_down_time`` would have let it; it is killed with ``kill -9`` while evacuations are in
    flight; the standby leads and takes the run over: the same run ends ``finished``, groups in order (the
    journal's timestamps), every VM evacuated exactly once (nova's migration records). Unfenced afterwards."""
    from tests.support.daemons import leaders, start_daemon

    root, db, _ = province
    assert {v.centre for v in vm_rows(db)} == {"gz-main"}, vm_rows(db)  # the first test moved everything back
    everything = {v.name: v.server_id for v in vm_rows(db)}
    groups = {v.name: g for v in vm_rows(db) for tenant, system, *_, g in SYSTEMS if (v.tenant, v.system) == (tenant, system)}
    before = {name: {m.id for m in evacuations(sid or "")} for name, sid in everything.items()}
    last = journal(db)[0]
    fencing = tmp_path / "fencing.yaml"
    fencing.write_text(FENCING, encoding="utf-8")
    monkeypatch.setenv("GOVCLOUD_ROOT", str(root))
    monkeypatch.setenv("GOVCLOUD_FENCING", str(fencing))
    monkeypatch.setenv("GOVCLOUD_DEVCLOUD_DIR", str(devcloud.root))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    options = ("--listen", "none", "--failover", "auto", "--health-silent-after", str(SILENT_AFTER))
    first = start_daemon(db, inbox, tmp_path / "a", *options)
    second = start_daemon(db, inbox, tmp_path / "b", *options)
    down_time = service_down_time(devcloud)
    try:
        wait_for("a leader", lambda: leaders(db), timeout=60, interval=0.5)
        failed = devcloud.cli("fail-centre", "gz-main")
        assert failed.returncode == 0, failed.stderr
        started, failed_at = time.monotonic(), datetime.datetime.now(datetime.UTC)
        last_beat = max(nova_time(s.updated_at) for s in main_services().values())  # no heartbeat after the kill
        nova_verdict = last_beat + datetime.timedelta(seconds=down_time)  # nova reports the hosts down from then on

        def in_flight() -> runs.RunRow | None:
            run, moves = journal(db)
            fresh = run is not None and (last is None or run.id != last.id)
            return run if fresh and any(m.state == "moving" for m in moves) else None

        run = wait_for("the leader's run to send evacuations", in_flight, timeout=240, interval=0.2)
        (leader,) = leaders(db)
        victim = first if first.process.pid == leader.pid else second
        other = second if victim is first else first
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait(timeout=30)
        killed = time.monotonic()
        _, at_kill = journal(db, run.id)
        assert {h: (s.is_forced_down, s.state) for h, s in main_services().items()} == dict.fromkeys(MAIN_HOSTS, (True, "down"))

        def finished() -> runs.RunRow | None:
            found, _ = journal(db, run.id)
            return found if found is not None and found.state == "finished" else None

        done = wait_for("the standby to finish the run", finished, timeout=300, interval=1)
        resumed_after = time.monotonic() - killed
        assert done.resumed == 1 and done.owner.split(":")[1] == str(other.process.pid), done
        _, moves = journal(db, run.id)
        assert {m.state for m in moves} == {"moved"} and len(moves) == 6
        assert {(m.vm, m.group_name) for m in moves} == set(groups.items())
        for earlier, later in itertools.pairwise(["first", "second", "last"]):  # every move of a group ended before the next began
            assert max(m.ended_at or "" for m in moves if m.group_name == earlier) <= min(m.started_at or "" for m in moves
                                                                                           if m.group_name == later), moves
        assert {v.centre for v in vm_rows(db)} == {"gz-backup"}
        new = {name: [m for m in evacuations(sid or "") if m.id not in before[name]] for name, sid in everything.items()}
        assert {name: len(found) for name, found in new.items()} == dict.fromkeys(everything, 1)  # each evacuated once
        first_post = min(nova_time(m.created_at) for found in new.values() for m in found)
        assert first_post < nova_verdict, (first_post, nova_verdict)  # fencing, not nova's heartbeat timeout, let it start
        fences = [r for r in audit_records(db, "centre:gd-prov/gz-main") if r.action == "centre.fence"]
        assert fences and all(r.details["method"] == "devcloud" and r.details["ready"] for r in fences), fences
        assert {h["host"] for h in fences[0].details["hosts"]} == set(MAIN_HOSTS)
        print(f"daemon run {run.id}: first evacuation POST {(first_post - failed_at).total_seconds():.1f} s after fail-centre returned, "
              f"{(first_post - last_beat).total_seconds():.1f} s after gz-main's last heartbeat (nova's verdict: {down_time} s after it); "
              f"killed {killed - started:.0f} s after gz-main failed with "
              f"{sum(1 for m in at_kill if m.state == 'moved')} of 6 moved and {sum(1 for m in at_kill if m.state == 'moving')} in flight; "
              f"the standby finished it {resumed_after:.0f} s after the kill; {len(fences)} fence records")
    finally:
        for daemon in (first, second):
            if daemon.process.poll() is None:
                daemon.stop()
            daemon.close()
        unfenced = govcloud(root, db, "failover", "unfence", "gz-main", "--cloud", "gd-prov", "--yes")
        restored = devcloud.cli("restore-centre", "gz-main", timeout=300)
    assert unfenced.returncode == 0, unfenced.stdout + unfenced.stderr
    assert restored.returncode == 0, restored.stderr
    assert {h: (s.is_forced_down, s.state) for h, s in main_services().items()} == dict.fromkeys(MAIN_HOSTS, (False, "up"))
