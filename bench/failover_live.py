"""Benchmark: evacuating a dead gz-main — ``govcloud failover run`` against a plain openstacksdk script
that forces the hosts down and evacuates the same number of servers all at once (nova's floor).

usage: flock -x /tmp/devcloud.lock python bench/failover_live.py [--vms 60] [--rounds 1] [--per-ticket 8]
       [--plan groups|none] [--workers 64]

Destructive: it kills gz-main's compute hosts, so run it alone under ``flock -x /tmp/devcloud.lock``; it
leaves every compute running and nothing forced down (``govcloud failover unfence gz-main``), also when
it fails. Each round runs both contenders, in alternating order:

govcloud
    ``--vms`` ``protection: ha`` VMs pinned to gz-main, in tickets of ``--per-ticket`` of four systems
    that the recovery plan puts in three priority groups (``--plan none``: no plan, one group) —
    submitted, approved and applied through the engine (not timed). Then gz-main's computes are killed
    (``devcloud fail-centre``) and **detection** is timed: the kill to nova reporting every gz-main host
    down on its own (``service_down_time``; what govcloud's health probe reads — the daemon confirms it
    ``health_confirmations`` × ``health_interval`` later). Then ``govcloud failover run gz-main --yes``
    with the shipped fencing file (method ``devcloud``) is timed: fence (confirm each host off, force its
    nova-compute down) → plan → parallel evacuations into gz-backup, group by group → the last VM
    ACTIVE (the command returns then). The journal gives when the first move was sent and when the
    last ended. Unfence, retire.
script
    The same number of servers booted with openstacksdk into gz-main (same projects, flavor, image,
    network; not timed); gz-main's computes killed the same way (``devcloud host off``, the fence
    agent); then timed: force every gz-main nova-compute down (``update_service_forced_down``), POST one
    forced evacuation per server at microversion 2.67 (as govcloud does) round-robin onto gz-backup's
    hosts from ``--workers`` threads, and watch one all-projects listing every 0.5 s until the last is
    ACTIVE on its target. Unfence, delete.

Prints both times, the ratio govcloud / script (target ≤ 1.5×), detection and the per-VM times.
Needs a running devcloud with every centre up.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openstack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from govcloud.engine import onboard, provision, tickets
from govcloud.engine.context import EngineContext, build
from govcloud.settings import Settings
from govcloud.store import runs
from tests.support.tickets import REPO, open_store, write_ticket

SOURCE, TARGET, REGION = "gz-main", "gz-backup", "gd-gz"
OPERATOR, APPROVER = "yunwei-he", "shenpi-chen"
SYSTEMS = (("gd-gat", "hukou", "sunkai"), ("gd-zsj", "sjgx", "yuantao"), ("gd-mzt", "shjz", "caijing"), ("gd-gat", "jwzh", "sunkai"))
PLAN = """\
version: 1
cloud: gd-prov
groups:
- name: first
  priority: 1
  systems: [gd-gat/hukou, gd-gat/jwzh]
- name: second
  priority: 2
  systems: [gd-zsj/sjgx]
  depends_on: [first]
- name: last
  priority: 5
  systems: [gd-mzt/shjz]
"""
"""Three groups, no hooks: the devcloud's VMs run on nova's fake driver and answer no SSH."""
EVACUATE_MICROVERSION = "2.67"
TARGET_RATIO = 1.5


@dataclass
class Timing:
    """One contender's evacuation of one round, in seconds from the start of its fence."""

    who: str
    vms: int
    total: float
    first_sent: float
    detection: float | None = None
    per_vm: list[float] = field(default_factory=list)
    failed: int = 0


def ratio(ours: float, floor: float) -> float:
    """govcloud's time over the floor's (1.0: as fast as the plain script)."""
    if floor <= 0:
        raise ValueError(f"the floor's time must be positive, not {floor}")
    return ours / floor


def report(timings: Sequence[Timing], target: float = TARGET_RATIO) -> list[str]:
    """The table of every timing, then per round-pair the ratio and whether it meets the target.
    Timings come in the order they ran; each govcloud one is paired with the script one of its round."""
    lines = [f"{'round':>5} {'who':<9} {'VMs':>4} {'failed':>6} {'detect s':>9} {'fence→1st sent s':>17} "
             f"{'fence→last ACTIVE s':>20} {'per VM median s':>16} {'max s':>7}"]
    ours = [t for t in timings if t.who == "govcloud"]
    theirs = [t for t in timings if t.who == "script"]
    for n, timing in enumerate(timings):
        detect = f"{timing.detection:9.1f}" if timing.detection is not None else f"{'-':>9}"
        median = statistics.median(timing.per_vm) if timing.per_vm else 0.0
        longest = max(timing.per_vm) if timing.per_vm else 0.0
        lines.append(f"{n // 2 + 1:>5} {timing.who:<9} {timing.vms:>4} {timing.failed:>6} {detect} {timing.first_sent:>17.1f} "
                     f"{timing.total:>20.1f} {median:>16.1f} {longest:>7.1f}")
    for n, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        r = ratio(a.total, b.total)
        lines.append(f"round {n + 1}: govcloud {a.total:.1f} s vs script {b.total:.1f} s: {r:.2f}x the floor "
                     f"({'meets' if r <= target else 'misses'} the target ≤ {target:.1f}x)")
    return lines


def phases(started: float, opened: str | None, moves: Sequence[runs.MoveRow], total: float) -> list[str]:
    """Where govcloud's time went, in seconds from the command's start: the run opened (fence, plan and
    journal done), then per group its first move sent, its last move ended and the gap after the group
    before it (the barrier's cost), and what came after the last move (the command's exit)."""
    lines = [f"  govcloud: run opened at {stamp(opened) - started:.1f} s" if opened else "  govcloud: no run"]
    groups: dict[int, list[runs.MoveRow]] = {}
    for move in moves:
        if move.started_at and move.ended_at:
            groups.setdefault(move.seq, []).append(move)
    last_end = None
    for seq in sorted(groups):
        first = min(stamp(m.started_at) for m in groups[seq]) - started
        end = max(stamp(m.ended_at) for m in groups[seq]) - started
        gap = f", {first - last_end:.1f} s after the group before" if last_end is not None else ""
        lines.append(f"  group {seq} ({groups[seq][0].group_name}): {len(groups[seq])} VMs, first sent {first:.1f} s, last ACTIVE {end:.1f} s{gap}")
        last_end = end
    if last_end is not None:
        lines.append(f"  the command returned {total - last_end:.1f} s after the last move ended")
    return lines


# -- the devcloud --------------------------------------------------------------------------------

def admin() -> Any:
    return openstack.connect(cloud="devcloud-admin", region_name=REGION)


def computes(conn: Any, zone: str) -> dict[str, Any]:
    return {s.host: s for s in conn.compute.services(binary="nova-compute") if s.availability_zone == zone}


def healthy(conn: Any) -> bool:
    return all(s.state == "up" and not s.is_forced_down and s.status == "enabled" for s in conn.compute.services(binary="nova-compute"))


def env(root: Path, db: str) -> dict[str, str]:
    return {**os.environ, "GOVCLOUD_DB": db, "GOVCLOUD_USER": OPERATOR, "GOVCLOUD_ROOT": str(root),
            "GOVCLOUD_FENCING": str(REPO / "inventory" / "fencing.yaml")}


def cli(root: Path, db: str, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False, env=env(root, db))


def restore(root: Path, db: str, conn: Any) -> None:
    """Every gz-main compute running, reported up, not forced down: ``failover unfence``, then, should that
    not be enough, ``devcloud restore-centre`` and the flag cleared by hand until nova takes it."""
    done = cli(root, db, "failover", "unfence", SOURCE, "--yes", timeout=300)
    deadline = time.monotonic() + 240
    while not healthy(conn):
        if time.monotonic() > deadline:
            raise SystemExit(f"gz-main not restored: unfence said {done.returncode}: {(done.stdout + done.stderr)[-800:]}")
        cli(root, db, "devcloud", "restore-centre", SOURCE, timeout=300)
        for host, service in computes(conn, SOURCE).items():
            if service.is_forced_down:
                try:
                    conn.compute.update_service_forced_down(service, host=host, binary="nova-compute", forced=False)
                except openstack.exceptions.SDKException as exc:  # refused while the compute cleans up: next round
                    print(f"  clearing forced_down of {host}: {exc}", flush=True)
        time.sleep(3)


def wait(what: str, check: Any, timeout: float, interval: float = 0.5) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


# -- govcloud ----------------------------------------------------------------------------------------

def context(root: Path, db: str, user: str) -> EngineContext:
    return build(Settings.from_env().with_overrides(root=str(root), db=db, user=user))


def data_root(base: Path, plan: str) -> Path:
    root = base / "data"
    root.mkdir()
    for name in ("inventory", "tenants.yaml", "quotas", "users.yaml", "playbooks"):
        (root / name).symlink_to(REPO / name)
    (root / "recovery").mkdir()
    if plan == "groups":
        (root / "recovery" / "gd-prov.yaml").write_text(PLAN, encoding="utf-8")
    return root


def fleet(root: Path, db: str, base: Path, vms: int, per_ticket: int) -> list[str]:
    """``vms`` ha VMs pinned to gz-main, in tickets of ``per_ticket`` spread over the four systems; applied."""
    made, run = [], uuid.uuid4().hex[:4]
    for i in range((vms + per_ticket - 1) // per_ticket):
        tenant, system, requester = SYSTEMS[i % len(SYSTEMS)]
        count = min(per_ticket, vms - i * per_ticket)
        ticket_id, path = write_ticket(base, tenant=tenant, system=system, requester=requester, roles=(), protection="ha",
                                       ticket_id=f"fobench-{run}-{i:02d}",
                                       vms=[{"name": f"app{i}", "count": count, "flavor": "gc.small", "cloud": "gd-prov", "centre": SOURCE}])
        (row,) = tickets.submit(context(root, db, requester), [path])
        if row.state == "submitted":
            tickets.approve(context(root, db, APPROVER), ticket_id)
        made.append(ticket_id)
    outcomes = provision.apply(context(root, db, OPERATOR), made, configure=False)
    bad = [o for o in outcomes if o.state != "active"]
    if bad:
        raise SystemExit(f"apply failed: {bad}")
    return made


def stamp(iso: str | None) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp() if iso else 0.0


def run_govcloud(conn: Any, vms: int, per_ticket: int, plan: str) -> Timing:
    with tempfile.TemporaryDirectory(prefix="govcloud-fobench-") as tmp:
        base = Path(tmp)
        root, db = data_root(base, plan), f"sqlite:///{base / 'state.db'}"
        made = fleet(root, db, base, vms, per_ticket)
        try:
            killed = cli(root, db, "devcloud", "fail-centre", SOURCE)
            if killed.returncode != 0:
                raise SystemExit(f"fail-centre: {killed.stderr}")
            detection = wait("nova to report gz-main down", lambda: all(s.state == "down" for s in computes(conn, SOURCE).values()),
                             timeout=300)
            started = time.time()
            ran = cli(root, db, "failover", "run", SOURCE, "--yes", "-o", "json")
            total = time.time() - started
            if ran.returncode not in (0, 1):
                raise SystemExit(f"failover run exited {ran.returncode}: {(ran.stdout + ran.stderr)[-2000:]}")
            result = json.loads(ran.stdout)
            store = open_store(db)
            try:
                with store.transaction() as tx:
                    moves = runs.moves_of(tx, [result["run"]])
                    run_row = runs.get_run(tx, result["run"])
            finally:
                store.close()
            print("\n".join(phases(started, run_row.created_at if run_row else None, moves, total)), flush=True)
            sent = [stamp(m.started_at) for m in moves if m.started_at]
            per_vm = [stamp(m.ended_at) - stamp(m.started_at) for m in moves if m.state == "moved"]
            timing = Timing("govcloud", vms, total, min(sent) - started if sent else total, detection, per_vm,
                            failed=sum(1 for m in moves if m.state != "moved"))
            if len(moves) != vms:
                print(f"  govcloud journal: {len(moves)} moves for {vms} VMs: {result}", flush=True)
        finally:
            restore(root, db, conn)
            retired = provision.retire_all(context(root, db, OPERATOR), made)
            left = [o for o in retired if o.state != "retired"]
            if left:
                print(f"  govcloud cleanup left {left}", flush=True)
    return timing


# -- the plain script ------------------------------------------------------------------------------------

class Script:
    """What an admin could write by hand with openstacksdk: no plan, no order, no bound but nova."""

    def __init__(self, conn: Any, workers: int) -> None:
        self.conn = conn
        self.workers = workers

    def boot(self, vms: int) -> list[Any]:
        prefix = f"fohand-{uuid.uuid4().hex[:4]}-"
        specs = [(SYSTEMS[(i // 8) % len(SYSTEMS)][0], f"{prefix}{i:03d}") for i in range(vms)]
        projects: dict[str, Any] = {}
        for tenant in {t for t, _ in specs}:
            project = self.conn.identity.find_project(tenant)
            as_tenant = self.conn.connect_as_project({"id": project.id, "name": tenant, "domain_id": "default"})
            projects[tenant] = (as_tenant, as_tenant.compute.find_flavor("gc.small").id, as_tenant.image.find_image("debian-12").id,
                                as_tenant.network.find_network("gov-shared").id)

        def one(spec: tuple[str, str]) -> Any:
            tenant, name = spec
            c, flavor, image, network = projects[tenant]
            server = c.compute.create_server(name=name, flavor_id=flavor, image_id=image, networks=[{"uuid": network}],
                                             availability_zone=SOURCE)
            return c.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=1, wait=900)

        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(one, specs))

    def evacuate(self, servers: list[Any]) -> Timing:
        hosts = sorted(h for h, s in computes(self.conn, TARGET).items() if s.state == "up" and s.status == "enabled")
        main = computes(self.conn, SOURCE)
        ids = {s.id: hosts[n % len(hosts)] for n, s in enumerate(servers)}
        sent: dict[str, float] = {}
        failed: dict[str, str] = {}

        def post(server_id: str) -> None:
            response = self.conn.compute.post(f"/servers/{server_id}/action", json={"evacuate": {"host": ids[server_id], "force": True}},
                                              microversion=EVACUATE_MICROVERSION)
            sent[server_id] = time.time()
            if response.status_code >= 300:
                failed[server_id] = f"{response.status_code} {response.text[:200]}"

        started = time.time()
        with ThreadPoolExecutor(max_workers=len(main)) as pool:  # the fence's nova part: force every host down
            list(pool.map(lambda h: self.conn.compute.update_service_forced_down(main[h], host=h, binary="nova-compute", forced=True),
                          list(main)))
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(post, list(ids)))
        arrived: dict[str, float] = {}
        deadline = time.monotonic() + 1800
        while len(arrived) + len(failed) < len(ids) and time.monotonic() < deadline:
            for s in self.conn.compute.servers(all_projects=True, details=True):
                if s.id in ids and s.id not in arrived and s.id not in failed:
                    if s.compute_host == ids[s.id] and s.task_state is None and s.status == "ACTIVE":
                        arrived[s.id] = time.time()
                    elif s.status == "ERROR" and s.task_state is None and s.id in sent:
                        failed[s.id] = f"ERROR on {s.compute_host}"
            time.sleep(0.5)
        last = max(arrived.values()) if arrived else time.time()
        if failed:
            print(f"  script: {len(failed)} failed, e.g. {next(iter(failed.items()))}", flush=True)
        return Timing("script", len(ids), last - started, (min(sent.values()) - started) if sent else 0.0, None,
                      [arrived[i] - sent[i] for i in arrived], failed=len(ids) - len(arrived))

    def delete(self, servers: list[Any]) -> None:
        def one(server: Any) -> None:
            self.conn.compute.delete_server(server.id, ignore_missing=True)
            self.conn.compute.wait_for_delete(server, interval=1, wait=600)

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(one, servers))


def run_script(conn: Any, vms: int, workers: int, scratch: Path) -> Timing:
    script = Script(conn, workers)
    servers = script.boot(vms)
    db = f"sqlite:///{scratch / 'script.db'}"  # the CLI below needs a store; it records nothing the script uses
    try:
        for host in computes(conn, SOURCE):  # killed as the fence agent does, before the clock
            off = cli(REPO, db, "devcloud", "host", "off", host)
            if off.returncode != 0:
                raise SystemExit(f"devcloud host off {host}: {off.stderr}")
        return script.evacuate(servers)
    finally:
        restore(REPO, db, conn)
        script.delete(servers)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vms", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=1, help="each round runs both; the order alternates")
    parser.add_argument("--per-ticket", type=int, default=8)
    parser.add_argument("--plan", choices=("groups", "none"), default="groups",
                        help="groups: three priority groups (no hooks); none: no recovery plan, one group")
    parser.add_argument("--workers", type=int, default=64, help="threads of the plain script's evacuation POSTs")
    args = parser.parse_args()
    if not os.environ.get("OS_CLIENT_CONFIG_FILE"):
        settings = Settings.from_env()
        os.environ["OS_CLIENT_CONFIG_FILE"] = str((settings.devcloud_dir or settings.state_dir / "devcloud") / "clouds.yaml")
    conn = admin()
    if not healthy(conn):
        print("refusing: a compute service is down, disabled or forced down (govcloud devcloud status)", file=sys.stderr)
        return 2
    onboarder = context(REPO, "sqlite://", OPERATOR)
    onboard.sync(onboarder, sorted({t for t, _, _ in SYSTEMS}))  # projects made before the clock, for both contenders
    failover = Settings.from_env().failover
    print(f"{args.vms} ha VMs in gz-main, {len(computes(conn, TARGET))} hosts in gz-backup; govcloud: plan {args.plan}, "
          f"{failover.parallel_per_cloud} per cloud, {failover.parallel_per_host} per host; script: {args.workers} threads", flush=True)
    timings: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="govcloud-fobench-script-") as scratch:
        for round_ in range(args.rounds):
            order = ("govcloud", "script") if round_ % 2 == 0 else ("script", "govcloud")
            got = {}
            for who in order:
                got[who] = (run_govcloud(conn, args.vms, args.per_ticket, args.plan) if who == "govcloud"
                            else run_script(conn, args.vms, args.workers, Path(scratch)))
                print(f"round {round_ + 1} {who}: {got[who].total:.1f} s", flush=True)
            timings += [got["govcloud"], got["script"]]
    print("\n".join(report(timings)))
    return 0 if all(t.failed == 0 for t in timings) else 1


if __name__ == "__main__":
    raise SystemExit(main())
