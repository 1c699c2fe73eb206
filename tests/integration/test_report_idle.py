"""``report idle`` against real node exporters and a real Prometheus (issue 15, item 3).

Two test hosts (tests/support/hosts.py, own bridge ``gcbr7``): the ``monitoring`` role, run by the real
``ansible-playbook`` over SSH, installs (Debian's package, already on the machine) and starts
``prometheus-node-exporter`` on each; a real Prometheus on loopback scrapes both every second; one host
runs a busy loop, the other nothing; the report, through the engine and the Prometheus HTTP API, lists the
idle one with its ticket, contact and cost, and not the loaded one.

**What a test host cannot be**: a VM with its own kernel. The hosts share this machine's kernel, so
``/proc/stat`` and ``/proc/meminfo`` count the whole machine in both. To give each node exporter what a
VM's kernel would count — its own CPU time and memory — each host's workload runs in a cgroup of its own,
and the harness writes, every second, a ``stat`` and ``meminfo`` from that cgroup's accounting (cpuacct,
memory: real CPU seconds and bytes of that host's processes, one CPU, 4 GiB) into a directory the host's
node exporter reads as its procfs (the role's ``monitoring_extra_args``: ``--path.procfs``, only the cpu
and meminfo collectors). Everything after that — exporter, scrape, PromQL, the report — is the real thing.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from govcloud.engine import reports
from govcloud.planner.periods import parse_period
from govcloud.store import tickets as rows
from tests.integration.test_exporter_prometheus import api, free_port, wait_for
from tests.support import hosts as test_hosts_module
from tests.support.fakecloud import three_centres
from tests.unit.daemon.test_daemon import context

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BUSY, IDLE = "10.250.251.11", "10.250.251.12"
GATEWAY, BRIDGE = "10.250.251.1", "gcbr7"
CGROUP = Path("/sys/fs/cgroup")
VM_RAM_KB = 4 * 1024 * 1024


def _cgroups(name: str) -> dict[str, Path]:
    made = {}
    for controller in ("cpuacct", "memory"):
        path = CGROUP / controller / name
        if not (CGROUP / controller).is_dir():
            pytest.fail(f"no cgroup v1 {controller} hierarchy at {CGROUP / controller}: this test needs one", pytrace=False)
        path.mkdir(exist_ok=True)
        made[controller] = path
    return made


class VmProc:
    """Writes a host's ``stat`` and ``meminfo`` from its cgroup every second (the module docstring says why)."""

    def __init__(self, directory: Path, cgroups: dict[str, Path]) -> None:
        self.directory, self.cgroups = directory, cgroups
        directory.mkdir(parents=True, exist_ok=True)
        self.started = time.time()
        self.stop = threading.Event()
        self.write()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def _put(self, name: str, text: str) -> None:
        tmp = self.directory / f".{name}.tmp"
        tmp.write_text(text)
        tmp.rename(self.directory / name)

    def write(self) -> None:
        ticks = int((time.time() - self.started) * 100) + 1000  # USER_HZ; the VM "booted" 10 s before
        user = int((self.cgroups["cpuacct"] / "cpuacct.usage_user").read_text()) // 10_000_000
        system = int((self.cgroups["cpuacct"] / "cpuacct.usage_sys").read_text()) // 10_000_000
        idle = max(0, ticks - user - system)
        line = f"{user} 0 {system} {idle} 0 0 0 0 0 0"
        self._put("stat", f"cpu  {line}\ncpu0 {line}\nintr 0\nctxt 0\nbtime {int(self.started)}\nprocesses 1\nprocs_running 1\n"
                          "procs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n")
        used_kb = int((self.cgroups["memory"] / "memory.usage_in_bytes").read_text()) // 1024
        free = max(0, VM_RAM_KB - used_kb)
        self._put("meminfo", f"MemTotal:       {VM_RAM_KB} kB\nMemFree:        {free} kB\nMemAvailable:   {free} kB\n"
                             "Buffers:               0 kB\nCached:                0 kB\n")

    def loop(self) -> None:
        while not self.stop.wait(1.0):
            self.write()


def adopt_busy_loop(cgroups: dict[str, Path]) -> list[str]:
    """Move the busy host's loop into its cgroups from outside (the hosts see another cgroup tree: the
    pids are this namespace's, from ``ip netns pids``); returns the pids moved."""
    listed = subprocess.run(["ip", "netns", "pids", test_hosts_module._ns_name(BUSY)], capture_output=True, text=True, check=False).stdout.split()
    moved = []
    for pid in listed:
        with contextlib.suppress(OSError):
            if "while" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                for path in cgroups.values():
                    (path / "cgroup.procs").write_text(pid)
                moved.append(pid)
    return moved


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[test_hosts_module.TestHosts]:
    base = tmp_path_factory.mktemp("idle")
    with test_hosts_module.test_hosts([BUSY, IDLE], subnet_prefix=24, gateway=GATEWAY, base=base / "hosts", bridge=BRIDGE) as made:
        yield made


def play(hosts: test_hosts_module.TestHosts, tmp: Path, procfs: dict[str, str]) -> str:
    """The monitoring role on both hosts with ansible-playbook site.yml, as govcloud's configure runs it."""
    inventory = {"all": {
        "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(hosts.key_path),
                 "ansible_ssh_common_args": " ".join(hosts.ssh_options()), "ansible_python_interpreter": "/usr/bin/python3",
                 "govcloud_prometheus_url": "http://127.0.0.1:9090", "govcloud_roles": ["monitoring"], "monitoring_collectors": []},
        "hosts": {hosts.hostname(a): {"ansible_host": a, "govcloud_ticket": "t-idle",
                                      "monitoring_extra_args": f"--path.procfs={procfs[a]} --collector.disable-defaults "
                                                               "--collector.cpu --collector.meminfo"} for a in (BUSY, IDLE)},
    }}
    path = tmp / "inventory.json"
    path.write_text(json.dumps(inventory))
    binary = Path(sys.executable).parent / "ansible-playbook"
    found = str(binary) if binary.exists() else shutil.which("ansible-playbook")
    if found is None:
        pytest.fail("ansible-playbook not found", pytrace=False)
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_SSH_ARGS": "-o ServerAliveInterval=2 -o ServerAliveCountMax=3"}
    run = subprocess.run([found, "-i", str(path), str(REPO / "playbooks" / "site.yml")], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=240, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run.stdout


def test_the_idle_vm_is_listed_and_the_loaded_one_is_not(hosts: test_hosts_module.TestHosts, tmp_path: Path) -> None:
    tag = f"gcreport{os.getpid()}"
    groups = {a: _cgroups(f"{tag}-{i}") for i, a in enumerate((BUSY, IDLE))}
    shm = Path("/dev/shm") / tag  # seen by the hosts as it is here (they overlay /etc, /var…, and mount their own /tmp)
    procs = {a: VmProc(shm / a, groups[a]) for a in (BUSY, IDLE)}
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        output = play(hosts, tmp_path, {a: str(shm / a) for a in (BUSY, IDLE)})
        for address in (BUSY, IDLE):
            running = hosts.run(address, "start-stop-daemon --status --pidfile /run/prometheus-node-exporter.pid && echo running")
            assert "running" in running.stdout, output[-3000:]
        # The loop's parent waits to be moved into the host's cgroups, so that the loop is born there (a task moved
        # while it runs is not accounted to its new cgroup on this machine's kernel).
        started = hosts.run(BUSY, "setsid sh -c 'while [ ! -e /run/go ]; do sleep 0.1; done; "
                                  "exec timeout 120 sh -c \"while :; do :; done\"' >/dev/null 2>&1 < /dev/null &")
        assert started.returncode == 0, started.stderr
        wait_for("the busy loop's parent moved into the busy host's cgroups", lambda: adopt_busy_loop(groups[BUSY]), tmp_path / "none")
        assert hosts.run(BUSY, "touch /run/go").returncode == 0
        wait_for("the busy host's CPU accounted", lambda: int((groups[BUSY]["cpuacct"] / "cpuacct.usage").read_text()) > 10**8,
                 tmp_path / "none")
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n- job_name: node\n"
                          f"  static_configs: [{{targets: ['{BUSY}:9100', '{IDLE}:9100']}}]\n")
        log = tmp_path / "prometheus.log"
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus not found: apt-get install prometheus", pytrace=False)
        with log.open("wb") as sink:
            prometheus = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                           f"--web.listen-address=127.0.0.1:{port}"], stdout=sink, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        wait_for("both node exporters up", lambda: len([r for r in api(url, "/api/v1/query", query="up == 1")["data"]["result"]]) == 2, log)
        time.sleep(25)  # data for the rate windows
        ctx = context(tmp_path, three_centres(), user="shenpi-chen")
        now = datetime.datetime.now(datetime.UTC)
        with ctx.store.transaction() as conn:
            for index, address in enumerate((BUSY, IDLE), 1):
                row = rows.TicketRow(id="t-idle", tenant="gd-mzt", system="mzoa", kind="create", state="active", content_hash="h", source="",
                                     source_name="t.yaml", submitted_by="caijing", submitted_at=now.isoformat(), updated_at=now.isoformat(),
                                     active_at=(now - datetime.timedelta(hours=1)).isoformat())
                if index == 1:
                    rows.insert(conn, row)
                rows.upsert_vm(conn, rows.VmRow(ticket="t-idle", idx=index, name=f"gd-mzt-mzoa-t-idle-{index}", tenant="gd-mzt", system="mzoa",
                                                cloud="gd-prov", region="RegionOne", centre="gz-main", zone="az1", flavor="gc.small", vcpus=1,
                                                ram_mb=2048, disk_gb=20, status="ACTIVE", updated_at=now.isoformat(), address=address))
        report = reports.idle(ctx, parse_period(now.strftime("%Y-%m")), prometheus=url, step=5, cpu_percent=10, memory_percent=50, days=1)
        idle = {r["vm"]: r for r in report.section("idle").rows}
        everything = reports.idle(ctx, parse_period(now.strftime("%Y-%m")), prometheus=url, step=5, cpu_percent=100, memory_percent=100, days=1)
        assert list(idle) == ["gd-mzt-mzoa-t-idle-2"], [(r["vm"], r["cpu_percent"], r["memory_percent"]) for r in everything.section("idle").rows]
        row = idle["gd-mzt-mzoa-t-idle-2"]
        assert row["cpu_percent"] < 10 and row["ticket"] == "t-idle" and row["requester"] == "caijing" and row["contact"] and row["cost"] > 0
        assert report.section("unmonitored").rows == []
        cpu = {r["vm"]: r["cpu_percent"] for r in everything.section("idle").rows}  # thresholds of 100 %: every VM, with its use
        assert cpu["gd-mzt-mzoa-t-idle-1"] > 10 > cpu["gd-mzt-mzoa-t-idle-2"], cpu  # the loaded host's own CPU, read back
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=30)
        for proc in procs.values():
            proc.stop.set()
        shutil.rmtree(shm, ignore_errors=True)
        for made in groups.values():
            for path in made.values():
                for pid in (path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                for _ in range(50):
                    with contextlib.suppress(OSError):
                        path.rmdir()
                        break
                    time.sleep(0.1)
