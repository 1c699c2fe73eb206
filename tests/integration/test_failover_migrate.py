"""``govcloud failover migrate|failback`` against the devcloud (issue 13, item 5), as an operator runs them.

1. A healthy gz-main is put in maintenance (its nova computes disabled with govcloud's reason) and its
   protected VMs of three priority groups are live-migrated into gz-backup (another zone: forced), in
   group order (the journal's timestamps); ``failback`` ends the maintenance and live-migrates them home,
   each ticket's two gz-main members onto different hosts again.
2. gz-main fails, ``failover run`` evacuates its VMs (forced evacuation); nova's request spec of an
   evacuated server still names gz-main (read from nova's API database: nova changes the instance's zone,
   not the request spec's); the centre is restored; ``failback`` brings every VM home.
3. A ``failover migrate`` killed with ``kill -9`` once its first VM moved is resumed by the next one,
   every VM live-migrated exactly once (nova's migration records); failback again.
4. The driver's moves alone: forced live migration across zones; cold migration home, not away.

Disturbs the devcloud (disabled services, a failed centre): run this file alone, under
``flock -x /tmp/devcloud.lock``; every compute service is enabled and up again when it ends. Times are
printed, never asserted.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govcloud.engine import provision, tickets
from tests.integration.conftest import Devcloud
from tests.integration.test_failover_run import SYSTEMS, context, data_root, down, govcloud, journal, nova, vm_rows
from tests.support.hosts import TestHosts
from tests.support.tickets import write_ticket
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*")]

MAIN = ("gz-main-1", "gz-main-2")
ORDER = ["first", "second", "last"]


def services() -> dict[str, Any]:
    return {s.host: s for s in nova().compute.services(binary="nova-compute") if s.availability_zone in ("gz-main", "gz-backup")}


def healthy() -> bool:
    """Every compute of gd-gz enabled, up and not forced down."""
    return all(s.status == "enabled" and s.state == "up" and not s.is_forced_down for s in services().values())


def servers(names: set[str]) -> dict[str, Any]:
    return {s.name: s for s in nova().compute.servers(all_projects=True) if s.name in names}


def request_spec_zone(server_id: str) -> str | None:
    """The availability zone of the server's request spec, as nova's API database holds it (the API shows
    only the instance's zone)."""
    from tests.integration.conftest import _devcloud_root

    socket_dir = _devcloud_root() / "run" / "pg"
    query = f"select spec from request_specs where instance_uuid = '{server_id}'"
    out = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-h", str(socket_dir), "-U", "postgres", "-d", "nova_api_gd_gz",
                          "-Atc", query], capture_output=True, text=True, timeout=30, check=True).stdout
    zone: str | None = json.loads(out)["nova_object.data"].get("availability_zone")
    return zone


@pytest.fixture(scope="module")
def province(devcloud: Devcloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """Three tickets of the three groups, four VMs each: two in each Guangzhou centre."""
    base = tmp_path_factory.mktemp("failover-migrate")
    root, db = data_root(base), f"sqlite:///{base / 'state.db'}"
    made = []
    for tenant, system, requester, protection, _ in SYSTEMS:
        ticket_id, path = write_ticket(base, tenant=tenant, system=system, requester=requester, roles=(), protection=protection,
                                       vms=[{"name": "app", "count": 4, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
        (row,) = tickets.submit(context(root, db, requester), [path])
        if row.state == "submitted":
            tickets.approve(context(root, db, "shenpi-chen"), ticket_id)
        made.append(ticket_id)
    outcomes = provision.apply(context(root, db, "yunwei-he"), made)
    assert {o.state for o in outcomes} == {"active"}, outcomes
    try:
        yield root, db
    finally:
        devcloud.cli("restore-centre", "gz-main", timeout=300)
        for host, service in services().items():  # never leave a compute disabled behind
            if service.status != "enabled":
                nova().compute.enable_service(service, host=host, binary="nova-compute")
        ctx = context(root, db, "yunwei-he")
        for ticket_id in made:
            provision.retire(ctx, ticket_id)


FIRST_SYSTEMS = "  systems: [gd-gat/hukou]\n"
"""The line of test_failover_run's plan that ends group ``first``: its hook goes after it."""
PASSING = "{smoke_marker: first}"
FAILING = "{smoke_tcp_ports: [8099], smoke_tcp_timeout: 2}"
"""Nothing listens on 8099 on the test hosts: the smoke role's wait fails."""
BRIDGE, GATEWAY, PREFIX = "gcbr5", "10.250.0.1", 22
"""gd-gz's gov-shared subnet (inventory/devcloud.yaml): the VMs' ports have addresses there."""


def use_plan(root: Path, hook_vars: str | None) -> None:
    """Write the data root's recovery plan: group ``first`` with the smoke hook and these variables, or no hook at all."""
    from tests.integration.test_failover_run import PLAN

    assert PLAN.count(FIRST_SYSTEMS) == 1
    text = PLAN.replace(FIRST_SYSTEMS, f"{FIRST_SYSTEMS}  hook: {{role: smoke, vars: {hook_vars}}}\n") if hook_vars else PLAN
    (root / "recovery" / "gd-prov.yaml").write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def hooked(province: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestHosts]:
    """Real SSH hosts (network namespaces, tests/support/hosts.py) at the addresses of group ``first``'s VMs in
    gz-main — the fake hypervisor's VMs run no OS — and the key the CLI's Ansible logs in with."""
    root, db = province
    addresses = sorted(v.address or "" for v in vm_rows(db) if v.centre == "gz-main" and v.tenant == "gd-gat")
    assert len(addresses) == 2 and all(addresses), vm_rows(db)
    previous = os.environ.get("GOVCLOUD_SSH_KEY")
    with TestHosts(addresses, base=tmp_path_factory.mktemp("hook-hosts"), bridge=BRIDGE, gateway=GATEWAY, subnet_prefix=PREFIX) as hosts:
        os.environ["GOVCLOUD_SSH_KEY"] = str(hosts.key_path)
        try:
            yield hosts
        finally:
            use_plan(root, None)
            if previous is None:
                os.environ.pop("GOVCLOUD_SSH_KEY", None)
            else:
                os.environ["GOVCLOUD_SSH_KEY"] = previous


def markers(hosts: TestHosts) -> dict[str, str]:
    """What the smoke hook left on each host (its marker and the run id), '' where it left nothing."""
    return {a: hosts.ssh(a, "cat /var/lib/govcloud/recovered 2>/dev/null || true").stdout.strip() for a in hosts.addresses}


def assert_home(db: str, home: dict[str, str], stopped: frozenset[str] = frozenset()) -> None:
    """Every VM recorded and run (ACTIVE, or SHUTOFF if ``stopped``; nova's zone) in its home centre; each ticket's
    gz-main members on different hosts."""
    assert {v.name: v.centre for v in vm_rows(db)} == home
    found = servers(set(home))
    assert {n: (s.status, s.availability_zone) for n, s in found.items()} == {
        n: ("SHUTOFF" if n in stopped else "ACTIVE", c) for n, c in home.items()}
    by_ticket: dict[str, list[str]] = {}
    for v in vm_rows(db):
        if v.centre == "gz-main":
            by_ticket.setdefault(v.ticket, []).append(found[v.name].compute_host)
    assert all(sorted(h) == list(MAIN) for h in by_ticket.values()), by_ticket


def test_migrate_a_healthy_centre_and_fail_back(devcloud: Devcloud, province: tuple[Path, str], hooked: TestHosts) -> None:
    """Also: group ``first``'s hook (the smoke role) runs over real SSH on its moved VMs after the migration and
    after the failback; one VM of group ``last`` is stopped first: it leaves by start, live migration and stop
    (nova's cold migration is held to the boot zone), arrives SHUTOFF, and comes home by cold migration, SHUTOFF."""
    root, db = province
    assert healthy(), services()
    home = {v.name: v.centre for v in vm_rows(db)}
    in_main = {n for n, c in home.items() if c == "gz-main"}
    assert len(in_main) == 6, home
    assert_home(db, home)
    use_plan(root, PASSING)
    (stopped,) = [v for v in vm_rows(db) if v.centre == "gz-main" and v.tenant == "gd-mzt"][:1]
    nova().compute.stop_server(stopped.server_id)
    nova().compute.wait_for_server(nova().compute.get_server(stopped.server_id), status="SHUTOFF", wait=60, interval=1)
    started = time.monotonic()
    ran = govcloud(root, db, "failover", "migrate", "gz-main", "--yes", "-o", "json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    took = time.monotonic() - started
    result = json.loads(ran.stdout)
    run, moves = journal(db, result["run"])
    assert run is not None and (run.kind, run.state) == ("migration", "finished") and len(moves) == 6
    assert {(m.state, m.target_centre) for m in moves} == {("moved", "gz-backup")}
    messages = {m.vm: m.message for m in moves}
    assert messages.pop(stopped.name).startswith("started, live, stopped: SHUTOFF on gz-backup-"), moves
    assert all(m.startswith("live: ACTIVE on gz-backup-") for m in messages.values()), messages
    by_group: dict[str, list[Any]] = {}
    for move in moves:
        by_group.setdefault(move.group_name, []).append(move)
    for earlier, later in itertools.pairwise(ORDER):
        assert max(m.ended_at or "" for m in by_group[earlier]) <= min(m.started_at or "" for m in by_group[later])
    assert markers(hooked) == dict.fromkeys(hooked.addresses, f"first {run.id}")  # the hook ran on both moved VMs of group first
    moved = servers(in_main)
    assert {n: (s.status, s.availability_zone) for n, s in moved.items()} == {
        n: ("SHUTOFF" if n == stopped.name else "ACTIVE", "gz-backup") for n in in_main}
    assert "govcloud:stopped-for-move" not in (moved[stopped.name].metadata or {})
    kinds = {m.migration_type for s in moved.values() for m in nova().compute.migrations(instance_uuid=s.id) if m.status == "completed"}
    assert kinds == {"live-migration"}
    maintenance = {h: (s.status, s.disabled_reason) for h, s in services().items() if h in MAIN}
    assert all(status == "disabled" and (reason or "").startswith("govcloud maintenance") for status, reason in maintenance.values())
    assert {v.centre for v in vm_rows(db)} == {"gz-backup"}
    zones = {request_spec_zone(s.id) for s in moved.values()}
    started = time.monotonic()
    back = govcloud(root, db, "failover", "failback", "gz-main", "--yes", "-o", "json")
    assert back.returncode == 0, back.stdout + back.stderr
    took_back = time.monotonic() - started
    run, moves = journal(db, json.loads(back.stdout)["run"])
    assert run is not None and (run.kind, run.state, run.centre) == ("failback", "finished", "gz-main") and len(moves) == 6
    assert {m.vm: m.message.split(":")[0] for m in moves}[stopped.name] == "cold", moves
    assert markers(hooked) == dict.fromkeys(hooked.addresses, f"first {run.id}")  # and again after the failback
    assert healthy(), services()  # the maintenance ended
    assert_home(db, home, stopped=frozenset({stopped.name}))
    newest = max(nova().compute.migrations(instance_uuid=stopped.server_id), key=lambda m: int(m.id))
    assert (newest.migration_type, newest.status) == ("migration", "confirmed"), newest  # home by a cold migration, confirmed
    nova().compute.start_server(stopped.server_id)
    nova().compute.wait_for_server(nova().compute.get_server(stopped.server_id), status="ACTIVE", wait=60, interval=1)
    assert_home(db, home)
    print(f"migrate: 6 VMs (1 stopped) gz-main → gz-backup in {took:.1f} s with group first's hook over SSH (request spec zones "
          f"after it: {zones}); failback: home in {took_back:.1f} s, hook again, anti-affinity restored, the stopped VM cold-migrated home")


def test_a_failing_hook_stops_a_planned_migration(devcloud: Devcloud, province: tuple[Path, str], hooked: TestHosts) -> None:
    """SRM's rule: group ``first``'s hook fails after its VMs moved; the run stops there — ``failed``, the
    step ``hook-failed``, the later groups' VMs journalled ``held`` and left in gz-main; failback brings the two home."""
    root, db = province
    assert healthy(), services()
    home = {v.name: v.centre for v in vm_rows(db)}
    use_plan(root, FAILING)
    started = time.monotonic()
    ran = govcloud(root, db, "failover", "migrate", "gz-main", "--yes", "-o", "json")
    took = time.monotonic() - started
    assert ran.returncode == 1, ran.stdout + ran.stderr
    run, moves = journal(db, json.loads(ran.stdout)["run"])
    assert run is not None and (run.kind, run.state) == ("migration", "failed") and "stopped" in run.detail, run
    assert "The listed services accept connections" in run.detail["stopped"], run.detail
    assert sorted((m.group_name, m.state) for m in moves) == [("first", "moved")] * 2 + [("last", "held")] * 2 + [("second", "held")] * 2
    assert all(m.message.startswith("not started: the run stopped at the first error") for m in moves if m.state == "held")
    assert {v.name: v.centre for v in vm_rows(db) if home[v.name] == "gz-main" and v.tenant != "gd-gat"} == {
        n: "gz-main" for n, c in home.items() if c == "gz-main" and not n.startswith("gd-gat")}
    use_plan(root, None)
    back = govcloud(root, db, "failover", "failback", "gz-main", "--yes", "-o", "json")
    assert back.returncode == 0, back.stdout + back.stderr
    assert_home(db, home)
    assert healthy(), services()
    print(f"failing hook: migration stopped after group first (2 moved, 4 held) in {took:.1f} s; failed back")


def test_evacuate_restore_then_fail_back(devcloud: Devcloud, province: tuple[Path, str]) -> None:
    root, db = province
    assert healthy(), services()
    home = {v.name: v.centre for v in vm_rows(db)}
    in_main = {n for n, c in home.items() if c == "gz-main"}
    failed = devcloud.cli("fail-centre", "gz-main")
    assert failed.returncode == 0, failed.stderr
    try:
        wait_for("nova to report gz-main's hosts down", lambda: down(root, db, "gz-main"), timeout=120, interval=3)
        refused = govcloud(root, db, "failover", "failback", "gz-main", "--yes")
        assert refused.returncode == 2 and "not healthy" in refused.stderr, refused.stderr
        ran = govcloud(root, db, "failover", "run", "gz-main", "--yes", "-o", "json")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        evacuated = servers(in_main)
        assert {(s.status, s.availability_zone) for s in evacuated.values()} == {("ACTIVE", "gz-backup")}
        zones = {request_spec_zone(s.id) for s in evacuated.values()}
        assert zones == {"gz-main"}  # a forced evacuation changes the instance's zone, not its request spec's
    finally:
        restored = devcloud.cli("restore-centre", "gz-main", timeout=300)
    assert restored.returncode == 0, restored.stderr
    wait_for("gz-main's computes up again", healthy, timeout=180, interval=3)
    started = time.monotonic()
    back = wait_for("failback accepted once the centre is healthy",
                    lambda: (r := govcloud(root, db, "failover", "failback", "gz-main", "--yes", "-o", "json")).returncode != 2 and r,
                    timeout=120, interval=5)
    assert back.returncode == 0, back.stdout + back.stderr
    took = time.monotonic() - started
    run, moves = journal(db, json.loads(back.stdout)["run"])
    assert run is not None and (run.kind, run.state) == ("failback", "finished") and len(moves) == 6
    assert_home(db, home)
    print(f"evacuated request spec zones {zones}; failback after restore: 6 VMs home in {took:.1f} s")


def live_migrations(server_id: str) -> int:
    return sum(1 for m in nova().compute.migrations(instance_uuid=server_id) if m.migration_type == "live-migration")


def test_a_migration_killed_mid_way_is_resumed_and_no_vm_moves_twice(devcloud: Devcloud, province: tuple[Path, str]) -> None:
    """``failover migrate`` killed with ``kill -9`` once its first VM moved; the next ``failover migrate`` takes the
    same run over and finishes it; each VM was live-migrated exactly once (nova's migration records)."""
    import os
    import signal
    import sys

    from tests.support.tickets import REPO

    root, db = province
    assert healthy(), services()
    home = {v.name: v.centre for v in vm_rows(db)}
    in_main = {v.name: v.server_id or "" for v in vm_rows(db) if v.centre == "gz-main"}
    before = {name: live_migrations(sid) for name, sid in in_main.items()}
    last = journal(db)[0]
    first = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "failover", "migrate", "gz-main", "--yes"], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                             env={**os.environ, "GOVCLOUD_DB": db, "GOVCLOUD_USER": "yunwei-he", "GOVCLOUD_ROOT": str(root)})

    def moved_one() -> Any:
        run, moves = journal(db)
        return run if run is not None and run.id != (last.id if last else None) and any(m.state == "moved" for m in moves) else None

    killed = wait_for("the migration's first VM moved", moved_one, timeout=240, interval=0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    _, at_kill = journal(db, killed.id)
    resumed = govcloud(root, db, "failover", "migrate", "gz-main", "--yes", "-o", "json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    again = json.loads(resumed.stdout)
    assert (again["run"], again["resumed"], again["state"]) == (killed.id, True, "finished")
    run, moves = journal(db, killed.id)
    assert run is not None and (run.kind, run.resumed) == ("migration", 1) and {m.state for m in moves} == {"moved"}
    assert {v.name for v in vm_rows(db) if v.centre == "gz-main"} == set()
    after = {name: live_migrations(sid) for name, sid in in_main.items()}
    assert {name: after[name] - before[name] for name in in_main} == dict.fromkeys(in_main, 1)  # each moved once
    back = govcloud(root, db, "failover", "failback", "gz-main", "--yes")
    assert back.returncode == 0, back.stdout + back.stderr
    assert_home(db, home)
    assert healthy(), services()
    print(f"migration killed with {sum(1 for m in at_kill if m.state == 'moved')} of 6 moved, "
          f"{sum(1 for m in at_kill if m.state == 'moving')} in flight; resumed as run {killed.id}, each VM live-migrated once")


TENANT = "it-migrate"


def test_the_driver_live_migrates_across_zones_and_cold_migrates_only_into_the_boot_zone(devcloud: Devcloud) -> None:
    """``live_migrate_server`` (forced, at 2.30) takes a running server to another zone; ``migrate_server`` (cold:
    the scheduler checks the host against the request spec's zone) brings a stopped one home but not away:
    nova accepts the request and leaves the server where it was, which the driver reports as a PermanentError."""
    from govcloud.drivers.base import Endpoint, ServerSpec, TenantSpec
    from govcloud.drivers.openstack import OpenStackDriver
    from govcloud.errors import DriverError, PermanentError
    from govcloud.model.resources import Resources
    from tests.support.projects import projects_removed

    with projects_removed(TENANT):
        driver = OpenStackDriver(Endpoint("devcloud-admin", "gd-gz"))
        driver.ensure_tenant(TenantSpec(tenant=TENANT, description="govcloud integration test: migration",
                                        limits=Resources(instances=2, vcpus=4, ram_mb=4096, disk_gb=40), network="gov-shared"))
        spec = ServerSpec(name="it-migrate-1", tenant=TENANT, zone="gz-main", flavor="gc.small", size=Resources(1, 1, 1024, 10),
                          image="debian-12", network="gov-shared", metadata={"govcloud:tenant": TENANT})
        for stale in driver.find_servers(TENANT, spec.name):
            driver.delete_server(TENANT, stale.id)
            driver.wait_for_delete(TENANT, stale.id, timeout=120)
        server = driver.create_server(spec)
        try:
            driver.wait_for_server(TENANT, server.id, timeout=180)
            t0 = time.monotonic()
            moved = driver.live_migrate_server(TENANT, server.id, host="gz-backup-1", timeout=120)
            live = time.monotonic() - t0
            assert (moved.status, moved.host, moved.zone) == ("ACTIVE", "gz-backup-1", "gz-backup"), moved
            count = len(list(nova().compute.migrations(instance_uuid=server.id)))
            again = driver.live_migrate_server(TENANT, server.id, host="gz-backup-1", timeout=60)
            assert again.host == "gz-backup-1" and len(list(nova().compute.migrations(instance_uuid=server.id))) == count
            nova().compute.stop_server(server.id)
            nova().compute.wait_for_server(nova().compute.get_server(server.id), status="SHUTOFF", wait=60, interval=1)
            with pytest.raises(DriverError, match="409") as refused:  # nova live-migrates only ACTIVE or PAUSED servers
                driver.live_migrate_server(TENANT, server.id, host="gz-backup-2", timeout=30)
            print(f"live migration of a stopped server: {refused.value}")
            with pytest.raises(PermanentError, match="cold migration of it-migrate-1 to gz-backup-2: nova left it SHUTOFF on gz-backup-1"):
                driver.migrate_server(TENANT, server.id, host="gz-backup-2", timeout=120)
            t0 = time.monotonic()
            home = driver.migrate_server(TENANT, server.id, host="gz-main-2", timeout=120)
            cold = time.monotonic() - t0
            assert (home.status, home.host, home.zone) == ("SHUTOFF", "gz-main-2", "gz-main"), home
        finally:
            driver.delete_server(TENANT, server.id)
            driver.wait_for_delete(TENANT, server.id, timeout=120)
    print(f"live migration gz-main → gz-backup-1: {live:.1f} s; cold migration home to gz-main-2 (confirmed): {cold:.1f} s")
