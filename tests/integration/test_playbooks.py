"""playbooks/site.yml against real hosts over real SSH: what the roles leave on a host, idempotence, a vanished host.

Three test hosts (tests/support/hosts.py) at 10.250.252.201-203 on their own bridge ``gcbr9``: a subnet
no devcloud network uses, so this file never waits for (or collides with) the devcloud tests' hosts on
``gcbr0`` / 10.250.0.0/22, and can run beside them. The real ``ansible-playbook`` in a subprocess (govcloud's driver goes through ansible-runner,
tested elsewhere). Tests run in file order on one set of hosts: first run, second run, a host killed
mid-run. Times are printed (``-s`` shows them), never asserted beyond "nothing hangs".
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import hosts as test_hosts_module

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "playbooks" / "site.yml"
ADDRESSES = ["10.250.252.201", "10.250.252.202", "10.250.252.203"]
GATEWAY, PREFIX, BRIDGE = "10.250.252.1", 24, "gcbr9"
PROMETHEUS = "http://prometheus.gd.gov.example:9090"
SERVER_NAME = "portal.health.gd.gov.example"
RUN_TIMEOUT = 240  # seconds for one ansible-playbook run: a hang fails the test, it never blocks CI
RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
                   r"failed=(?P<failed>\d+)", re.MULTILINE)


@dataclass
class Run:
    rc: int
    output: str
    seconds: float

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP per host: ok, changed, unreachable, failed."""
        tail = self.output[self.output.rfind("PLAY RECAP"):]
        return {m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")} for m in RECAP.finditer(tail)}


@dataclass
class Site:
    hosts: test_hosts_module.TestHosts
    inventory: Path
    env: dict[str, str]
    admin_key: Path
    first: Run

    def play(self, *args: str, on_line: Callable[[str], None] | None = None) -> Run:
        """ansible-playbook site.yml; ``on_line(line)`` sees the output as it streams."""
        started = time.monotonic()
        proc = subprocess.Popen([_ansible_playbook(), "-i", str(self.inventory), str(SITE), *args], cwd=REPO, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        watchdog = threading.Timer(RUN_TIMEOUT, os.killpg, (proc.pid, signal.SIGKILL))
        watchdog.start()
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line)
            rc = proc.wait()
        finally:
            watchdog.cancel()
            if proc.stdout is not None:
                proc.stdout.close()
        output = "".join(lines)
        assert rc != -signal.SIGKILL, f"ansible-playbook hung for {RUN_TIMEOUT} s:\n{output[-4000:]}"
        return Run(rc, output, time.monotonic() - started)


def _ansible_playbook() -> str:
    beside = Path(sys.executable).parent / "ansible-playbook"  # skip pyenv's shim: it costs a shell per call
    found = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if found is None:
        pytest.fail("ansible-playbook not found: pip install 'ansible-core<2.20' (CI: .ci/run does)", pytrace=False)
    return found


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


def _inventory(hosts: test_hosts_module.TestHosts, admin_keys: list[str]) -> dict[str, Any]:
    """Like govcloud's inventory: a group per ticket with its roles and variables, labels as host vars."""
    labels = {"govcloud_cloud": "gd-province", "govcloud_tenant": "health", "govcloud_system": "疫苗预约", "govcloud_ticket": "T-2026-0042"}
    host_vars = {hosts.hostname(a): {"ansible_host": a, "govcloud_centre": "gz-main" if i < 2 else "gz-backup", **labels}
                 for i, a in enumerate(ADDRESSES)}
    web = [hosts.hostname(a) for a in ADDRESSES[:2]]
    return {"all": {
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(hosts.key_path),
            "ansible_ssh_common_args": " ".join(hosts.ssh_options()),
            "ansible_python_interpreter": "/usr/bin/python3",
            "govcloud_prometheus_url": PROMETHEUS,
            "govcloud_admins": [{"name": "zhangwei", "ssh_key": admin_keys[0]},
                                {"name": "li-na", "ssh_key": admin_keys[1:]}],
            "govcloud_roles": ["monitoring", "baseline"],
        },
        "hosts": host_vars,
        "children": {"ticket_T_2026_0042_web": {
            "hosts": {h: {} for h in web},
            "vars": {"govcloud_roles": ["baseline", "monitoring", "nginx"], "nginx_server_name": SERVER_NAME, "nginx_listen_port": 80},
        }},
    }}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Three fresh hosts and the first run of site.yml on them."""
    base = tmp_path_factory.mktemp("playbooks")
    keys = [_keygen(base / "zhangwei"), _keygen(base / "li-na-1"), _keygen(base / "li-na-2")]
    started = time.monotonic()
    with test_hosts_module.test_hosts(ADDRESSES, base=base / "hosts", subnet_prefix=PREFIX, gateway=GATEWAY,
                                         bridge=BRIDGE) as hosts:
        print(f"\n3 test hosts up in {time.monotonic() - started:.2f} s")
        inventory = base / "inventory.yml"
        inventory.write_text(yaml.safe_dump(_inventory(hosts, keys), allow_unicode=True), encoding="utf-8")
        env = {**os.environ,
               "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=30s -o ServerAliveInterval=2 -o ServerAliveCountMax=3",
               "ANSIBLE_SSH_CONTROL_PATH_DIR": str(base / "cp"),
               "ANSIBLE_PIPELINING": "True", "ANSIBLE_TIMEOUT": "5", "ANSIBLE_TASK_TIMEOUT": "90",
               "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_LOCAL_TEMP": str(base / "ansible-tmp"),
               "PYTHONUNBUFFERED": "1"}
        env.pop("ANSIBLE_CONFIG", None)
        site = Site(hosts, inventory, env, base / "zhangwei", Run(0, "", 0.0))
        site.first = site.play()
        print(f"first run on 3 hosts: {site.first.seconds:.1f} s")
        yield site


def test_syntax_check() -> None:
    done = subprocess.run([_ansible_playbook(), "--syntax-check", "-i", "localhost,", str(SITE)], capture_output=True, text=True,
                          cwd=REPO, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_first_run_configures_every_host(site: Site) -> None:
    assert site.first.rc == 0, site.first.output[-6000:]
    recap = site.first.recap
    assert set(recap) == {site.hosts.hostname(a) for a in ADDRESSES}, site.first.output[-3000:]
    assert all(r["failed"] == 0 and r["unreachable"] == 0 and r["changed"] > 0 for r in recap.values()), recap


@pytest.mark.parametrize("address", ADDRESSES)
def test_baseline_on_host(site: Site, address: str) -> None:
    h = site.hosts
    for name in ("zhangwei", "li-na"):
        assert h.run(address, ["id", "-nG", name]).stdout.split()[1:] == ["govcloud-admins"]
        assert h.run(address, ["stat", "-c", "%U %a", f"/home/{name}/.ssh/authorized_keys"]).stdout.split() == [name, "600"]
        assert h.run(address, ["getent", "shadow", name]).stdout.split(":")[1] == "*"  # no password, not locked
    assert len([k for k in h.read_file(address, "/home/li-na/.ssh/authorized_keys").splitlines() if k.startswith("ssh-ed25519")]) == 2
    # The admin logs in with their own key and becomes root without a password.
    login = h.ssh(address, "sudo -n id -u", user="zhangwei", key=site.admin_key)
    assert (login.returncode, login.stdout.strip()) == (0, "0"), login.stderr
    assert h.run(address, ["visudo", "-cf", "/etc/sudoers.d/govcloud"]).returncode == 0
    # The effective sshd configuration (the distribution's sshd_config with our drop-in) is hardened.
    effective = h.run(address, ["/usr/sbin/sshd", "-T", "-f", "/etc/ssh/sshd_config"])
    assert effective.returncode == 0, effective.stderr
    settings = dict(line.split(" ", 1) for line in effective.stdout.splitlines() if " " in line)
    assert settings["passwordauthentication"] == "no"
    assert settings["permitrootlogin"] == "without-password"
    assert settings["maxauthtries"] == "3"
    assert settings["clientaliveinterval"] == "300"
    assert settings["banner"] == "/etc/issue.net"
    # sysctl: the file, and the namespace's own network parameters applied.
    assert "net.ipv4.conf.all.accept_redirects = 0" in h.read_file(address, "/etc/sysctl.d/90-govcloud.conf")
    applied = h.run(address, ["sysctl", "-n", "net.ipv4.conf.all.accept_redirects", "net.ipv4.conf.all.log_martians"]).stdout.split()
    assert applied == ["0", "1"]
    for banner in ("/etc/issue.net", "/etc/motd"):
        assert "本系统为政务云平台" in h.read_file(address, banner)
    assert "-w /etc/shadow -p wa -k identity" in h.read_file(address, "/etc/audit/rules.d/govcloud.rules").splitlines()


def test_writes_stayed_inside_the_hosts(site: Site) -> None:
    assert site.first.rc == 0
    assert subprocess.run(["getent", "passwd", "zhangwei"], capture_output=True, check=False).returncode == 2
    assert not Path("/etc/sudoers.d/govcloud").exists()
    assert not Path("/etc/govcloud/monitoring.yml").exists()


@pytest.mark.parametrize("address", ADDRESSES)
def test_monitoring_on_host(site: Site, address: str) -> None:
    h = site.hosts
    centre = "gz-main" if address != ADDRESSES[2] else "gz-backup"
    document = yaml.safe_load(h.read_file(address, "/etc/govcloud/monitoring.yml"))
    assert document == {
        "prometheus_url": PROMETHEUS, "scrape_target": f"{address}:9100", "scrape_interval": "30s",
        "textfile_dir": "/var/lib/prometheus/node-exporter",
        "labels": {"cloud": "gd-province", "centre": centre, "tenant": "health", "system": "疫苗预约", "ticket": "T-2026-0042",
                   "instance": h.hostname(address)},
    }
    assert "--collector.textfile.directory=/var/lib/prometheus/node-exporter" in h.read_file(address, "/etc/default/prometheus-node-exporter")
    metric = h.read_file(address, "/var/lib/prometheus/node-exporter/govcloud_info.prom")
    assert f'centre="{centre}"' in metric and 'system="疫苗预约"' in metric and metric.rstrip().endswith("} 1")


def test_nginx_only_where_the_ticket_asks(site: Site) -> None:
    h = site.hosts
    web, other = ADDRESSES[0], ADDRESSES[2]
    conf = f"/etc/nginx/sites-available/{SERVER_NAME}.conf"
    assert f"server_name {SERVER_NAME};" in h.read_file(web, conf)
    assert h.run(web, ["readlink", f"/etc/nginx/sites-enabled/{SERVER_NAME}.conf"]).stdout.strip() == f"../sites-available/{SERVER_NAME}.conf"
    assert h.run(web, ["nginx", "-t", "-q"]).returncode == 0
    assert h.run(other, ["test", "-e", conf]).returncode == 1
    # Serve the site from inside the host and fetch it over the bridge, by name.
    started = h.run(web, ["nginx"])
    assert started.returncode == 0, started.stderr
    request = urllib.request.Request(f"http://{web}/", headers={"Host": SERVER_NAME})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert SERVER_NAME in response.read().decode("utf-8")


def test_second_run_changes_nothing(site: Site) -> None:
    second = site.play()
    print(f"\nsecond run on 3 hosts: {second.seconds:.1f} s")
    assert second.rc == 0, second.output[-6000:]
    assert len(second.recap) == 3
    assert all(r == {**r, "changed": 0, "failed": 0, "unreachable": 0} for r in second.recap.values()), second.recap


def test_host_vanishing_mid_run_is_unreachable(site: Site) -> None:
    h = site.hosts
    victim = ADDRESSES[1]
    stopped: list[float] = []

    def pull_the_plug(line: str) -> None:
        if not stopped and line.startswith("TASK [monitoring : "):
            h.stop(victim)  # cable pulled, every process SIGKILLed: no FIN, no RST
            stopped.append(time.monotonic())

    run = site.play("-e", '{"govcloud_roles": ["monitoring"]}', on_line=pull_the_plug)
    print(f"\nrun with a host vanishing: {run.seconds:.1f} s")
    assert stopped, run.output[-4000:]
    assert run.rc == 4, run.output[-6000:]  # 4: some host unreachable
    recap = run.recap
    assert recap[h.hostname(victim)]["unreachable"] == 1, recap
    for address in (ADDRESSES[0], ADDRESSES[2]):
        assert recap[h.hostname(address)] == {**recap[h.hostname(address)], "unreachable": 0, "failed": 0}, recap
    # The host comes back with its disk: configured before, reachable again.
    h.start(victim)
    back = h.ssh(victim, "cat /etc/govcloud/monitoring.yml")
    assert back.returncode == 0 and PROMETHEUS in back.stdout, back.stderr
