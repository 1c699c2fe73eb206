"""The Ansible driver: the only importer of ansible_runner.

Every run gets a fresh private data directory named by an ident that is never reused
(``<runs_dir>/<ident>``): ansible-runner writes inventory and variables into its data directory and
would otherwise reuse stale ones. The SSH key reaches ansible through ansible-runner's ssh-agent FIFO,
never a file in the run directory; ``env/`` is removed after the run. Run directories are rotated:
ansible-runner's ``rotate_artifacts`` only prunes inside one data directory, which here holds a single
run, so the driver keeps the ``keep_runs`` newest finished runs of ``runs_dir`` itself. SSH
keepalives make a host that vanishes mid-run *unreachable* instead of a ten-minute hang, and
``timeout`` bounds the whole run. Events stream to an injected callback.

Setting ``ANSIBLE_SSH_ARGS`` *replaces* Ansible's default, which holds the SSH multiplexing options:
without ``ControlMaster``/``ControlPersist`` every task pays a full SSH handshake per host (measured by
bench/configure.py: 3.4x the wall time and 6x the controller CPU of a bare run), so ``SSH_ARGS`` keeps
them, and pipelining runs a module in one SSH exec. Each run's control sockets live in a private
short directory (a socket path has at most 108 bytes), removed with its masters after the run, so a
run never talks through another run's master to a host that may have been rebuilt at the same address.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from govcloud.drivers.known_hosts import KnownHosts
from govcloud.errors import PermanentError, TemporaryError
from govcloud.settings import Settings

SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=30s -o ServerAliveInterval=2 -o ServerAliveCountMax=3 -o ConnectTimeout=10"
"""Multiplexing, keep-alives and a bounded connect; the host-key options come from ``KnownHosts``."""
Progress = Callable[[str, dict[str, Any]], None]


def ansible_env(*, user: str, control_dir: Path, known_hosts: KnownHosts, task_timeout: int = 600) -> dict[str, str]:
    """The environment of one run: keep-alives and multiplexing, pipelining, bounded connects, and host
    keys checked against govcloud's own known_hosts (Ansible's host_key_checking on: off, it would add
    ``StrictHostKeyChecking=no`` itself)."""
    return {"ANSIBLE_SSH_ARGS": f"{SSH_ARGS} {known_hosts.ssh_options()}", "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
            "ANSIBLE_PIPELINING": "True", "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_REMOTE_USER": user, "ANSIBLE_TIMEOUT": "15",
            "ANSIBLE_TASK_TIMEOUT": str(task_timeout),
            "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_NOCOLOR": "1"}


def _stop_masters(control_dir: Path) -> None:
    """End the run's SSH masters (they would linger ``ControlPersist`` seconds) and remove their sockets."""
    for socket_path in control_dir.glob("*"):
        if socket_path.is_socket():
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # a master that will not answer ends by itself
                subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "govcloud-run"], capture_output=True,
                               timeout=10, check=False)
    shutil.rmtree(control_dir, ignore_errors=True)


@dataclass(frozen=True)
class HostResult:
    """One host's outcome: ``ok`` (nothing changed), ``changed``, ``failed`` or ``unreachable``."""

    host: str
    status: str
    changed: int = 0
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunResult:
    """A finished playbook run."""

    ident: str
    rc: int
    status: str
    directory: Path
    hosts: dict[str, HostResult] = field(default_factory=dict)

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, r in self.hosts.items() if r.status in ("failed", "unreachable"))


def new_ident() -> str:
    """Time-ordered and unique: ``20261126T170312-3f9a1c``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def _failure_text(event: Mapping[str, Any], known_hosts: Path | None = None, addresses: Mapping[str, str] | None = None) -> str | None:
    """A one-line reason from a ``runner_on_failed`` / ``runner_on_unreachable`` event (a refused changed
    host key is said in words, with the host's address from ``addresses``: ssh's own first line is a row
    of ``@``, and the event names the inventory host only)."""
    data = event.get("event_data", {})
    result = data.get("res", {}) or {}
    message = result.get("msg") or result.get("stderr") or result.get("reason") or ""
    task = data.get("task", "")
    host = data.get("host") or data.get("remote_addr")
    address = (addresses or {}).get(host, host) if host else None
    refused = KnownHosts.describe_failure(str(message), address, known_hosts) if known_hosts else None
    if refused:
        return f"{task}: {refused}" if task else refused
    return f"{task}: {str(message).strip().splitlines()[0] if message else event.get('event')}" if task or message else None


class AnsibleDriver:
    """Runs ``playbooks/site.yml`` (or another playbook of ``project_dir``) on an inventory."""

    def __init__(self, *, project_dir: Path, runs_dir: Path, private_key: Path | None, known_hosts: Path, user: str = "root",
                 timeout: int = 900, task_timeout: int = 600, keep_runs: int = 20, forks: int = 10) -> None:
        self.known_hosts = KnownHosts(known_hosts)
        self.task_timeout = task_timeout
        self.project_dir = project_dir
        self.runs_dir = runs_dir
        self.private_key = private_key
        self.user = user
        self.timeout = timeout
        self.keep_runs = keep_runs
        self.forks = forks

    @classmethod
    def for_settings(cls, settings: Settings) -> AnsibleDriver:
        """The driver of a govcloud process: the data root's ``playbooks/``, runs and known hosts under the
        state directory, SSH user and key from the configure settings. Configuration (engine/configure.py)
        and failover hooks (failover/hooks.py) both use it, so they connect the same way."""
        configure = settings.configure
        return cls(project_dir=settings.data.resolve(Path("playbooks")), runs_dir=settings.state_dir / "runs" / "ansible",
                   private_key=configure.ssh_key, user=configure.user, timeout=configure.timeout, task_timeout=configure.task_timeout,
                   known_hosts=settings.state_dir / "ssh" / "known_hosts")

    def run(self, inventory: Mapping[str, Any], *, playbook: str = "site.yml", extravars: Mapping[str, Any] | None = None,
            limit: Sequence[str] = (), progress: Progress | None = None, owners: Mapping[str, str] | None = None) -> RunResult:
        """Run the playbook; per-host results from the runner's stats and failure events. ``owners``
        (address → server id) lets a replaced VM's new host key in (``KnownHosts.prepare``)."""
        if shutil.which("ansible-playbook") is None:
            raise PermanentError("ansible-playbook is not installed (pip install 'ansible-core<2.20')")
        forgotten = self.known_hosts.prepare(owners or {})
        ident = new_ident()
        directory = self.runs_dir / ident
        directory.mkdir(parents=True, exist_ok=False)
        (directory / "command").write_text(json.dumps({"playbook": playbook, "limit": list(limit), "forgotten_host_keys": forgotten}),
                                           encoding="utf-8")
        failures: dict[str, list[str]] = {}
        addresses = {name: str(v.get("ansible_host", name)) for name, v in (inventory.get("all", {}).get("hosts") or {}).items()}

        def on_event(event: dict[str, Any]) -> bool:
            kind = event.get("event", "")
            host = event.get("event_data", {}).get("host")
            ignored = event.get("event_data", {}).get("ignore_errors")
            failed = kind in ("runner_on_failed", "runner_on_unreachable") and not ignored
            reason = (_failure_text(event, self.known_hosts.path, addresses) or kind) if failed else None
            if failed and host:
                failures.setdefault(host, []).append(str(reason))
            if progress is not None and kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "playbook_on_task_start",
                                                 "playbook_on_stats"):
                progress("ansible", {"ident": ident, "event": kind, "host": host, "task": event.get("event_data", {}).get("task"),
                                     "ignored": bool(ignored), "reason": reason})
            return True

        control_dir = Path(tempfile.mkdtemp(prefix="gc-cp-"))  # /tmp: short enough for socket paths
        try:
            runner = ansible_runner.run(
                private_data_dir=str(directory), project_dir=str(self.project_dir), playbook=playbook, inventory=dict(inventory),
                extravars=dict(extravars or {}), limit=",".join(limit) or None, ident=ident, quiet=True, timeout=self.timeout,
                event_handler=on_event, rotate_artifacts=self.keep_runs, forks=self.forks,
                ssh_key=self.private_key.read_text(encoding="utf-8") if self.private_key else None,
                envvars=ansible_env(user=self.user, control_dir=control_dir, known_hosts=self.known_hosts,
                                    task_timeout=self.task_timeout),
            )
        except Exception as exc:  # ansible-runner raises plain exceptions for configuration problems
            raise PermanentError(f"ansible-runner could not start run {ident}: {exc}") from exc
        finally:
            shutil.rmtree(directory / "env", ignore_errors=True)  # extravars, envvars, ssh key fifo: nothing left in clear
            _stop_masters(control_dir)
        result = self._result(ident, directory, runner, failures)
        (directory / "status").write_text(json.dumps({"rc": result.rc, "status": result.status,
                                                       "hosts": {h: r.status for h, r in result.hosts.items()}}), encoding="utf-8")
        self._prune()
        if result.status == "timeout":
            raise TemporaryError(f"ansible run {ident} timed out after {self.timeout} s", delay=30)
        return result

    def _prune(self) -> None:
        """Remove finished runs (those with a ``status`` file) beyond the ``keep_runs`` newest; idents sort by time."""
        finished = sorted(d for d in self.runs_dir.iterdir() if (d / "status").is_file())
        for old in finished[:max(len(finished) - max(self.keep_runs, 1), 0)]:
            shutil.rmtree(old, ignore_errors=True)

    def _result(self, ident: str, directory: Path, runner: Any, failures: dict[str, list[str]]) -> RunResult:
        stats = runner.stats or {}
        hosts: dict[str, HostResult] = {}
        seen = set().union(*(stats.get(k, {}).keys() for k in ("ok", "changed", "failures", "dark", "skipped", "processed")))
        for host in sorted(seen | set(failures)):
            changed = int(stats.get("changed", {}).get(host, 0))
            if host in stats.get("dark", {}):
                status = "unreachable"
            elif host in stats.get("failures", {}) or host in failures:
                status = "failed"
            else:
                status = "changed" if changed else "ok"
            hosts[host] = HostResult(host, status, changed, tuple(failures.get(host, ())))
        return RunResult(ident=ident, rc=int(runner.rc if runner.rc is not None else -1), status=str(runner.status),
                         directory=directory, hosts=hosts)
