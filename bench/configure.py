"""Benchmark: govcloud configures N hosts, side by side with a bare ``ansible-playbook`` run of the same
playbook, inventory and variables on the same kind of hosts.

usage: python bench/configure.py [N] [--rounds R] [--base DIR]

Needs root and what the test hosts need (tests/support/hosts.py: iproute2, util-linux, openssh-server,
openssh-client), ansible-core, and ``sudo`` + ``nginx`` on the machine (the roles validate with them).
The N hosts (default 10) live at 10.252.0.11… on their own bridge ``gcbr7`` (10.252.0.0/24), so the
benchmark neither waits for nor disturbs the test suite's hosts (``gcbr0``, ``gcbr9``).

One ticket (tenant gd-gat, system oa, roles baseline + monitoring + nginx, ``nginx_server_name``) for N
VMs is submitted and approved through the engine in a throw-away SQLite store; its VMs are then recorded
ACTIVE at the hosts' addresses, as provisioning leaves them (no cloud involved). Each round runs both
sides, the side that goes first alternating from round to round; each side gets fresh hosts and runs twice:
"first" (every task changes something) and "second" (the idempotent re-run, ``changed=0``).

* **govcloud** — timed: ``configure.configure(ctx, ticket)``, i.e. ``govcloud configure TICKET`` without
  process start-up and loading of the YAML data (measured once and printed apart): read the ticket, its
  VMs and earlier results from the store, move it to ``configuring``, build the inventory from the store,
  the AnsibleDriver run (fresh private data directory, ansible-runner with its ssh-agent wrapper, its
  event callback and artifacts, govcloud's event handler, removal of ``env/``, status file), then
  per-host results, audit record and the final state into the store.
* **bare** — timed: the ``ansible-playbook -i inventory.json -e @vars.json --private-key KEY -f FORKS
  playbooks/site.yml`` subprocess, from start to exit, its output to a file. ``inventory.json`` is the very
  inventory govcloud gives ansible-runner (same host names, ``ansible_host``, host and group variables),
  ``vars.json`` the same extra variables (admins, Prometheus URL), ``FORKS`` the driver's, and the
  environment the Ansible settings docs/ansible.md recommends (SSH keep-alives *and* multiplexing,
  pipelining) on top of the same process environment, with a fresh SSH control-socket directory per run
  (masters stopped afterwards, untimed), as the driver does. Same ``ansible-playbook`` from ``PATH``.

Both sides must end the same way (every host changed on the first run, ``changed=0`` on the second), or
the benchmark fails. Printed: wall times per round, medians, govcloud's overhead (target: ≤ 10 %), the
controller's CPU time per run (this process + its children) and the load average, because on a 2-core
machine shared with other work the wall time depends on them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from govcloud.engine import configure, tickets
from govcloud.engine.context import EngineContext
from govcloud.store import tickets as rows
from govcloud.store.tickets import VmRow
from tests.support.hosts import TestHosts
from tests.support.tickets import REPO, engine, write_ticket

BRIDGE, GATEWAY, PREFIX, FIRST_HOST = "gcbr7", "10.252.0.1", 24, 11
TENANT, SYSTEM, REQUESTER, APPROVER, OPERATOR = "gd-gat", "oa", "sunkai", "shenpi-chen", "yunwei-he"
ROLES = ["baseline", "monitoring", "nginx"]
VARIABLES = {"nginx_server_name": "oa.gdga.gov.cn"}
BARE_ENV = {  # docs/ansible.md, "Ansible settings that matter"
    "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=30s -o ServerAliveInterval=2 -o ServerAliveCountMax=3"
                        " -o ConnectTimeout=10 -o StrictHostKeyChecking=accept-new -o HashKnownHosts=no",  # + UserKnownHostsFile
    "ANSIBLE_PIPELINING": "True", "ANSIBLE_TIMEOUT": "15", "ANSIBLE_HOST_KEY_CHECKING": "True",
    "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_REMOTE_USER": "root",
}
RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
                   re.MULTILINE)


@dataclass
class Run:
    seconds: float
    cpu: float  # controller CPU seconds: this process and the children it waited for
    own_cpu: float  # of which this process (govcloud: engine, store, ansible-runner's event stream)


def timed(action: Callable[[], None]) -> Run:
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    action()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = [a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before, strict=True)]
    return Run(elapsed, sum(cpu), cpu[0])


def ticket_with_vms(work: Path, addresses: list[str]) -> tuple[EngineContext, str]:
    """Submitted and approved through the engine; VMs recorded ACTIVE at the hosts' addresses."""
    db = f"sqlite:///{work / 'bench.db'}"
    ticket_id, path = write_ticket(work, tenant=TENANT, system=SYSTEM, requester=REQUESTER, protection="none", roles=ROLES,
                                   variables=VARIABLES,
                                   vms=[{"name": "web", "count": len(addresses), "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])
    tickets.submit(engine(db, REQUESTER), [path])
    tickets.approve(engine(db, APPROVER), ticket_id)
    started = time.perf_counter()
    ctx = engine(db, OPERATOR, state_dir=work / "state", ssh_key=work / "hosts" / "id_ed25519")
    print(f"engine context (YAML data, store): {time.perf_counter() - started:.2f} s, once per process, not in the ratio")
    row = tickets.show(ctx, ticket_id)
    with ctx.store.transaction() as conn:
        rows.move(conn, ticket_id, "approved", "provisioning", now=ctx.now())
        for vm, address in zip((row.plan or {})["vms"], addresses, strict=True):
            rows.upsert_vm(conn, VmRow(ticket=ticket_id, idx=vm["index"], name=vm["name"], tenant=TENANT, system=SYSTEM, cloud=vm["cloud"],
                                       region=vm["region"], centre=vm["centre"], zone=vm["zone"] or vm["centre"], flavor=vm["flavor"],
                                       vcpus=vm["size"]["vcpus"], ram_mb=vm["size"]["ram_mb"], disk_gb=vm["size"]["disk_gb"],
                                       status="ACTIVE", updated_at=ctx.now(), server_id=f"bench-{vm['index']}", address=address))
        rows.move(conn, ticket_id, "provisioning", "active", now=ctx.now(), active_at=ctx.now())  # as after `apply --skip-configure`
    return ctx, ticket_id


def govcloud_run(ctx: EngineContext, ticket_id: str, *, expect_changes: bool) -> Run:
    result: list[tuple[str, str]] = []
    run = timed(lambda: result.append(configure.configure(ctx, ticket_id)))
    state, detail = result[0]
    with ctx.store.transaction() as conn:
        statuses = {r.status for r in rows.config_of(conn, ticket_id)}
    if state != "active" or statuses != ({"changed"} if expect_changes else {"ok"}):
        sys.exit(f"govcloud run: {state}, host statuses {statuses}: {detail}")
    return run


def bare_run(work: Path, inventory: Path, extravars: Path, key: Path, forks: int, *, expect_changes: bool, n: int) -> Run:
    playbook = shutil.which("ansible-playbook")
    if playbook is None:
        sys.exit("ansible-playbook not found: pip install 'ansible-core<2.20'")
    log = work / f"bare-{time.time_ns()}.log"
    argv = [playbook, "-i", str(inventory), "-e", f"@{extravars}", "--private-key", str(key), "-f", str(forks),
            str(REPO / "playbooks" / "site.yml")]
    control = Path(tempfile.mkdtemp(prefix="gc-cp-"))  # fresh SSH masters per run, as the driver's
    env = {**os.environ, **BARE_ENV, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),  # host keys checked like the driver's
           "ANSIBLE_SSH_ARGS": f"{BARE_ENV['ANSIBLE_SSH_ARGS']} -o UserKnownHostsFile={work / 'bare_known_hosts'}"}
    done: list[int] = []

    def play() -> None:
        with log.open("w", encoding="utf-8") as out:
            done.append(subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, timeout=900, check=False).returncode)

    try:
        run = timed(play)
    finally:  # not timed; the driver does the same after its run
        for master in control.glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={master}", "-O", "exit", "bench"], capture_output=True, timeout=10, check=False)
        shutil.rmtree(control, ignore_errors=True)
    output = log.read_text(encoding="utf-8")
    recap = {m["host"]: m for m in RECAP.finditer(output[output.rfind("PLAY RECAP"):])}
    good = len(recap) == n and all(m["failed"] == "0" and m["unreachable"] == "0" and (m["changed"] != "0") == expect_changes
                                   for m in recap.values())
    if done[0] != 0 or not good:
        sys.exit(f"bare run: rc {done[0]}, see {log}:\n{output[-3000:]}")
    return run


def fresh_hosts(work: Path, addresses: list[str]) -> TestHosts:
    hosts = TestHosts(addresses, base=work / "hosts", bridge=BRIDGE, gateway=GATEWAY, subnet_prefix=PREFIX)
    hosts.up()
    return hosts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10, help="hosts (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both sides (default 2)")
    parser.add_argument("--base", type=Path, help="working directory (default: a temporary one, removed afterwards)")
    args = parser.parse_args()
    if not 1 <= args.n <= 200:
        parser.error("n: 1 to 200 hosts")
    addresses = [f"10.252.0.{FIRST_HOST + i}" for i in range(args.n)]
    work = Path(args.base or tempfile.mkdtemp(prefix="gc-bench-configure-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        ctx, ticket_id = ticket_with_vms(work, addresses)
        forks = configure._driver(ctx).forks
        inventory, extravars = work / "inventory.json", work / "vars.json"
        inventory.write_text(json.dumps(configure.static_inventory(configure.inventory(ctx, [ticket_id])), ensure_ascii=False), encoding="utf-8")
        extravars.write_text(json.dumps({"govcloud_admins": configure._admins(ctx, TENANT),
                                         "govcloud_prometheus_url": ctx.settings.configure.prometheus_url}, ensure_ascii=False), encoding="utf-8")
        results: dict[tuple[str, str], list[Run]] = {}
        load = [os.getloadavg()[0]]
        for round_ in range(args.rounds):
            for side in (("govcloud", "bare") if round_ % 2 == 0 else ("bare", "govcloud")):
                hosts = fresh_hosts(work, addresses)
                try:
                    for kind in ("first", "second"):
                        if side == "govcloud":
                            run = govcloud_run(ctx, ticket_id, expect_changes=kind == "first")
                        else:
                            run = bare_run(work, inventory, extravars, hosts.key_path, forks, expect_changes=kind == "first", n=args.n)
                        results.setdefault((side, kind), []).append(run)
                        load.append(os.getloadavg()[0])
                        print(f"round {round_ + 1}  {side:<8} {kind:<6} {run.seconds:6.1f} s wall  {run.cpu:5.1f} s CPU"
                              f" (this process {run.own_cpu:4.1f} s)  "
                              f"load {load[-1]:.1f}", flush=True)
                finally:
                    hosts.close()
        report(args.n, forks, args.rounds, results, load)
    finally:
        if args.base is None:
            shutil.rmtree(work, ignore_errors=True)


def report(n: int, forks: int, rounds: int, results: dict[tuple[str, str], list[Run]], load: list[float]) -> None:
    print(f"\nhosts: {n}, forks {forks}, roles {'+'.join(ROLES)}, rounds {rounds}, load average {min(load):.1f}–{max(load):.1f}"
          f" on {os.cpu_count()} cores; medians:")
    print(f"{'':<24}{'govcloud':>10}{'ansible-playbook':>18}{'overhead':>10}{'CPU govcloud / bare':>22}{'CPU overhead':>14}")
    for kind, label in (("first", "first run (all changed)"), ("second", "second run (changed=0)")):
        ours = statistics.median(r.seconds for r in results["govcloud", kind])
        bare = statistics.median(r.seconds for r in results["bare", kind])
        cpu_ours = statistics.median(r.cpu for r in results["govcloud", kind])
        cpu_bare = statistics.median(r.cpu for r in results["bare", kind])
        print(f"{label:<24}{ours:>9.1f}s{bare:>17.1f}s{(ours / bare - 1) * 100:>+9.1f}%{cpu_ours:>13.1f}s / {cpu_bare:5.1f}s"
              f"{(cpu_ours / cpu_bare - 1) * 100:>+13.1f}%")
    own = statistics.median(r.own_cpu for k in ("first", "second") for r in results["govcloud", k])
    print(f"CPU of govcloud's own process per run (engine, store, ansible-runner's event stream): {own:.1f} s (median)")
    total_ours = sum(statistics.median(r.seconds for r in results["govcloud", k]) for k in ("first", "second"))
    total_bare = sum(statistics.median(r.seconds for r in results["bare", k]) for k in ("first", "second"))
    overhead = (total_ours / total_bare - 1) * 100
    print(f"govcloud / ansible-playbook: {total_ours / total_bare:.3f}x  overhead {overhead:+.1f} %  "
          f"(target ≤ 10 %: {'met' if overhead <= 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
