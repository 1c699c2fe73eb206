"""What the fault suite (tests/integration/test_faults.py) and its benchmark (bench/faults.py) share:
a big ticket in one tenant, engine contexts on a private state directory, a kill -9 loop of ``apply``,
and the census that counts duplicates, orphans and missing servers in nova.

Everything runs on its own store and state directory: an engine run tightens its state directory to
0700, which must never be the shared one (the devcloud's PostgreSQL lives under it).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openstack
import openstack.config

from govcloud.engine import provision, tickets
from govcloud.engine.context import EngineContext, Progress, build
from govcloud.settings import Settings
from govcloud.store import tickets as rows
from tests.support.daemons import DaemonProcess, daemon_rows, leaders, start_daemon
from tests.support.tickets import REPO, write_ticket
from tests.support.waiting import wait_for

TENANT, SYSTEM, REQUESTER, APPROVER, OPERATOR = "gd-zf", "dcdb", "zhangwei", "shenpi-chen", "yunwei-he"
"""gd-zf's quota in gd-prov (2,000 instances) holds 100 small VMs beside whatever else runs on the devcloud."""
REGION = "gd-gz"


@dataclass(frozen=True)
class Place:
    """Where the suite runs: a private state directory and store, and the clouds.yaml govcloud reads."""

    state_dir: Path
    db: str
    clouds_yaml: Path

    def engine(self, user: str, *, clouds_yaml: Path | None = None, progress: Progress | None = None) -> EngineContext:
        # The audit key and anchor of the environment, as the CLI and daemons this suite starts use: one chain, one key.
        audit = {name: os.environ[name] for name in ("GOVCLOUD_AUDIT_KEY_FILE", "GOVCLOUD_AUDIT_ANCHOR") if os.environ.get(name)}
        settings = Settings.from_env(audit).with_overrides(root=str(REPO), db=self.db, user=user)
        settings = dataclasses.replace(settings, state_dir=self.state_dir, clouds_yaml=str(clouds_yaml or self.clouds_yaml))
        ctx = build(settings)
        if progress is not None:
            ctx.progress = progress
        return ctx

    def cli_env(self, clouds_yaml: Path | None = None) -> dict[str, str]:
        return {**os.environ, "GOVCLOUD_DB": self.db, "GOVCLOUD_USER": OPERATOR, "GOVCLOUD_ROOT": str(REPO),
                "GOVCLOUD_STATE_DIR": str(self.state_dir), "OS_CLIENT_CONFIG_FILE": str(clouds_yaml or self.clouds_yaml)}

    def cli(self, *args: str, timeout: float = 600, clouds_yaml: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], env=self.cli_env(clouds_yaml), cwd=REPO,
                              capture_output=True, text=True, timeout=timeout, check=False)


def approved_ticket(place: Place, directory: Path, count: int, *, roles: Sequence[str] = ("baseline",)) -> str:
    """A create ticket of ``count`` gc.small VMs in gd-zf, half in each Guangzhou centre, submitted and approved
    (``roles=()`` for a daemon's apply, which configures: nothing to run on the VMs)."""
    first = count // 2
    vms = [{"name": "fault", "count": first, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"},
           {"name": "suite", "count": count - first, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-backup"}]
    ticket_id, path = write_ticket(directory, tenant=TENANT, system=SYSTEM, requester=REQUESTER, protection="none",
                                   vms=[vm for vm in vms if vm["count"]], roles=roles)
    tickets.submit(place.engine(REQUESTER), [path])
    if tickets.show(place.engine(APPROVER), ticket_id).state != "approved":
        tickets.approve(place.engine(APPROVER), ticket_id)
    return ticket_id


def nova(clouds_yaml: Path, region: str = REGION) -> Any:
    """An admin connection straight to the devcloud (never through the fault proxy)."""
    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)]).get_one(cloud="devcloud-admin", region_name=region)
    return openstack.connection.Connection(config=config)


@dataclass
class Census:
    """The servers of some tickets in nova, compared with the store."""

    servers: int = 0
    duplicates: int = 0
    """Servers beyond the first with the same ticket and index."""
    orphans: int = 0
    """Servers of the tickets that the store does not record."""
    missing: int = 0
    """VMs the store records whose server is not in nova."""
    not_active: int = 0
    detail: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.orphans or self.missing or self.not_active)


def census(conn: Any, ctx: EngineContext, ticket_ids: Iterable[str]) -> Census:
    wanted = set(ticket_ids)
    found = [s for s in conn.compute.servers(all_projects=True) if (s.metadata or {}).get("govcloud:ticket") in wanted]
    with ctx.store.transaction() as db:
        recorded = {vm.server_id for t in wanted for vm in rows.vms_of(db, t) if vm.server_id}
    result = Census(servers=len(found))
    per_vm = collections.Counter((s.metadata["govcloud:ticket"], s.metadata.get("govcloud:index")) for s in found)
    result.duplicates = sum(n - 1 for n in per_vm.values())
    orphans = [s for s in found if s.id not in recorded]
    result.orphans = len(orphans)
    result.missing = len(recorded - {s.id for s in found})
    result.not_active = sum(1 for s in found if s.status != "ACTIVE")
    result.detail = [f"duplicate {key}" for key, n in per_vm.items() if n > 1] + [f"orphan {s.name} {s.id} {s.status}" for s in orphans]
    return result


def ledger_consistent(ctx: EngineContext, ticket_id: str, count: int) -> list[str]:
    """Problems of the ticket's ledger once active: ``count`` instances, all committed, nothing reserved twice."""
    with ctx.store.transaction() as db:
        lines = rows.ledger_lines(db, ticket=ticket_id)
    problems = []
    if sum(line.resources.instances for line in lines) != count:
        problems.append(f"ledger holds {sum(line.resources.instances for line in lines)} instances, expected {count}")
    if {line.state for line in lines} != {"committed"}:
        problems.append(f"ledger line states {sorted({line.state for line in lines})}, expected committed only")
    return problems


@dataclass
class KillRun:
    """One ``apply`` killed with SIGKILL after ``after`` seconds (or finished before that)."""

    after: float
    killed: bool
    servers_then: int


def kill_apply(place: Place, ticket_id: str, after: float, conn: Any) -> KillRun:
    """Run ``govcloud apply --skip-configure TICKET`` as a process and SIGKILL it after ``after`` seconds."""
    child = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "apply", "--skip-configure", ticket_id], env=place.cli_env(),
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        child.wait(timeout=after)
        killed = False
    except subprocess.TimeoutExpired:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        killed = True
    return KillRun(after=after, killed=killed, servers_then=servers_of(conn, ticket_id))


def servers_of(conn: Any, ticket_id: str) -> int:
    """How many servers of the ticket nova holds now."""
    return sum(1 for s in conn.compute.servers(all_projects=True) if (s.metadata or {}).get("govcloud:ticket") == ticket_id)


def kill_points(seed: int, count: int, span: float) -> list[float]:
    """``count`` seconds in (1, span) at which successive applies are killed (drawn from ``seed``)."""
    rng = random.Random(seed)
    return [round(rng.uniform(1.0, span), 2) for _ in range(count)]


@dataclass(frozen=True)
class LeaderKill:
    """The leader daemon killed with SIGKILL (its process group) once ``at`` servers of the ticket were in nova
    and ``delay`` seconds more had passed."""

    at: int
    delay: float
    servers_then: int
    takeover_s: float
    """From the SIGKILL to a live daemon recorded as leader in the store."""


def leader_kill_points(seed: int, count: int, vms: int) -> list[tuple[int, float]]:
    """``count`` points of a ``vms``-VM apply, each (servers in nova, then a delay of 0 to 2 s), in order, all
    in the first two thirds of the servers, so that each lands while the ticket is still provisioning (CI:
    points at 15 and 18 of 20 — the second kill found all 20 servers there and the apply was over before a
    third point could come)."""
    rng = random.Random(seed)
    return [(at, round(rng.uniform(0.0, 2.0), 2)) for at in sorted(rng.sample(range(1, max(count + 1, vms * 2 // 3)), count))]


class DaemonPair:
    """Two ``govcloud daemon`` processes on one PostgreSQL store, each with its own state directory; a killed
    one is started again on its directory at once, so a standby always exists."""

    def __init__(self, db: str, work: Path) -> None:
        self.db = db
        self.inbox = work / "inbox"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.dirs = [work / "daemon-a", work / "daemon-b"]
        self.daemons = [self._start(state_dir) for state_dir in self.dirs]

    def _start(self, state_dir: Path) -> DaemonProcess:
        # two creates at a time: a 20-VM apply then lasts ten waves, long enough for three kills to land in
        # it (at the default 16 it is one wave, and the first takeover finishes it before a second kill)
        return start_daemon(self.db, self.inbox, state_dir, "--listen", "none", "--concurrency", "2")

    def wait_ready(self) -> None:
        """Both registered in the store and one of them leading (before a ticket is approved)."""
        wait_for("both daemons registered, one leading", lambda: len(daemon_rows(self.db)) >= 2 and self.leader_pid(), timeout=60, interval=0.5)

    def leader_pid(self) -> int | None:
        """The pid of the live daemon the store records as leader (a killed leader's row lingers until the
        next leader claims)."""
        live = {d.process.pid for d in self.daemons if d.process.poll() is None}
        return next((row.pid for row in leaders(self.db) if row.pid in live), None)

    def kill_leader(self) -> float:
        """SIGKILL the leader's process group, start it again, and return the seconds until a live daemon leads."""
        pid = wait_for("a live leader", self.leader_pid, timeout=60, interval=0.2)
        index = next(i for i, d in enumerate(self.daemons) if d.process.pid == pid)
        victim = self.daemons[index]
        os.killpg(pid, signal.SIGKILL)
        killed = time.monotonic()
        victim.process.wait(timeout=30)
        victim.close()
        self.daemons[index] = self._start(self.dirs[index])
        wait_for("another daemon to lead", self.leader_pid, timeout=120, interval=0.2)
        return time.monotonic() - killed

    def close(self) -> None:
        """SIGTERM both (the leader finishes its ticket); SIGKILL what has not ended after 60 s."""
        for daemon in self.daemons:
            if daemon.process.poll() is None:
                daemon.process.send_signal(signal.SIGTERM)
        for daemon in self.daemons:
            try:
                daemon.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.process.pid, signal.SIGKILL)
                daemon.process.wait(timeout=30)
            daemon.close()


def kill_leaders(pair: DaemonPair, ctx: EngineContext, ticket_id: str, points: Iterable[tuple[int, float]], conn: Any) -> list[LeaderKill]:
    """Kill the leader at each point of the ticket's apply (the points whose server count the ticket passed
    while its previous leader was dying land right after the takeover); stops when the ticket is no longer
    provisioning or approved."""
    kills = []
    for at, delay in points:
        def reached(at: int = at) -> bool:
            return servers_of(conn, ticket_id) >= at or tickets.show(ctx, ticket_id).state not in ("approved", "provisioning")

        wait_for(f"{at} servers of {ticket_id}", reached, timeout=300, interval=0.3)
        time.sleep(delay)
        if tickets.show(ctx, ticket_id).state not in ("approved", "provisioning"):
            break
        servers = servers_of(conn, ticket_id)
        kills.append(LeaderKill(at=at, delay=delay, servers_then=servers, takeover_s=round(pair.kill_leader(), 2)))
    return kills


def wait_state(ctx: EngineContext, ticket_id: str, wanted: str, timeout: float) -> str:
    """Wait until the ticket leaves approved/provisioning (or reaches ``wanted``); returns its state then."""
    def settled() -> str | None:
        now = tickets.show(ctx, ticket_id).state
        return now if now == wanted or now not in ("approved", "provisioning") else None

    return wait_for(f"ticket {ticket_id} {wanted}", settled, timeout=timeout, interval=1)


def retire_all(place: Place, ticket_ids: Iterable[str], conn: Any) -> list[str]:
    """Retire the tickets through govcloud (straight to the devcloud), then list what nova still has of them."""
    operator = place.engine(OPERATOR)
    wanted = set(ticket_ids)
    for ticket_id in wanted:
        if tickets.show(operator, ticket_id).state not in ("retired", "failed"):
            provision.retire(operator, ticket_id)
    deadline = time.monotonic() + 120
    while True:
        left = [f"{s.name} {s.id} {s.status}" for s in conn.compute.servers(all_projects=True)
                if (s.metadata or {}).get("govcloud:ticket") in wanted]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(2)
