"""Processes of the devcloud: start detached, record the pid, stop by that pid's process group only.

Every service is started with ``start_new_session`` (setsid) so it outlives the CLI and so that its
pid is also its process-group id: ``stop`` signals that group and nothing else, which is how
``down`` can promise to leave other processes of the machine alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from govcloud.devcloud.errors import PortTaken, ServiceFailed

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Processes this process started: kept so they can be reaped (a zombie must not look alive)."""


def read_pid(pidfile: Path) -> int | None:
    """The pid recorded in ``pidfile`` (first token), or None when missing or garbled."""
    try:
        return int(pidfile.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie has exited, only its parent lingers)."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def running_pid(pidfile: Path) -> int | None:
    """The recorded pid if that process still runs, else None."""
    pid = read_pid(pidfile)
    return pid if pid is not None and alive(pid) else None


def how_it_ended(pid: int | None) -> str:
    """How a process this one started ended, for an error message: its exit status or its signal.

    A service that vanishes with an empty log was killed (SIGKILL from the OOM killer, SIGSEGV in a C
    extension); saying which is the first fact anyone debugging it needs.
    """
    child = _CHILDREN.get(pid) if pid is not None else None
    if child is None or child.poll() is None:
        return "exited"
    if child.returncode < 0:
        try:
            return f"was killed by {signal.Signals(-child.returncode).name}"
        except ValueError:
            return f"was killed by signal {-child.returncode}"
    return f"exited with status {child.returncode}"


def start(
    argv: Sequence[str], *, pidfile: Path, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start ``argv`` in its own session with output to ``log``; record and return its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{proc.pid}\n", encoding="utf-8")
    return proc.pid


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid`` (fall back to the pid alone if it left its group)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``, from /proc.

    ``killpg(pgid, 0)`` is not enough: orphans re-parented to a container's pid 1 that never reaps
    stay zombies forever and would make every stop wait its full grace period.
    """
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _group_alive(pid: int) -> bool:
    """True while the leader or any process of its group runs (uWSGI workers may outlive their master)."""
    return alive(pid) or bool(group_members(pid))


def stop(pidfile: Path, *, grace: float = 15.0, sig: int = signal.SIGTERM) -> bool:
    """Stop the group recorded in ``pidfile``: ``sig``, then SIGKILL after ``grace`` seconds.

    Returns True if something was running. The pidfile is removed either way.
    """
    pid = read_pid(pidfile)
    was_running = pid is not None and _group_alive(pid)
    if pid is not None and was_running:
        _signal_group(pid, sig)
        deadline = time.monotonic() + grace
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(pid):
            _signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while _group_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.poll()
    pidfile.unlink(missing_ok=True)
    return was_running


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something listens on ``host:port`` (a bind test, so TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def check_ports_free(ports: Mapping[int, str], *, in_use: Callable[[int], bool] = port_in_use) -> None:
    """Raise ``PortTaken`` naming every busy port and the service that wanted it."""
    busy = [f"{port} ({service})" for port, service in sorted(ports.items()) if in_use(port)]
    if busy:
        raise PortTaken(
            "port(s) already in use on 127.0.0.1: " + ", ".join(busy)
            + " — stop what uses them (ss -ltnp) or change the ports in the devcloud profile"
        )


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers with any HTTP status (401/300 count: the service is listening)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def wait_until(
    ready: Callable[[], bool], *, service: str, pidfile: Path | None, logs: Sequence[Path], timeout: float
) -> None:
    """Poll ``ready`` until true; raise ``ServiceFailed`` with the log tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if pidfile is not None and running_pid(pidfile) is None:
            raise ServiceFailed(service, f"{how_it_ended(read_pid(pidfile))} during start-up", _tails(logs))
        if time.monotonic() > deadline:
            raise ServiceFailed(service, f"did not become ready within {timeout:.0f} s", _tails(logs))
        time.sleep(0.25)


@dataclass(frozen=True)
class Watched:
    """A service that must stay up while a start-up step runs, and how to start it again."""

    name: str
    pidfile: Path
    restart: Callable[[], object]
    logs: Sequence[Path] = ()


class Supervisor:
    """Restarts a watched service that dies during start-up, once, as systemd's ``Restart=on-failure`` would.

    A nova-compute that died once while registering (CI saw one vanish with an empty log on a busy
    machine) is not worth failing a whole ``up`` for; one that dies again is broken, and ``check``
    raises with its log tail. Every restart is reported, so a flaky service is visible, not hidden.
    """

    def __init__(self, watched: Sequence[Watched], *, report: Callable[[str], None], restarts: int = 1) -> None:
        self._watched = list(watched)
        self._report = report
        self._budget = restarts
        self.restarted: dict[str, int] = {}

    def check(self) -> None:
        """Restart each dead service within its budget; raise ``ServiceFailed`` for one beyond it."""
        for service in self._watched:
            pid = read_pid(service.pidfile)
            if pid is not None and alive(pid):
                continue
            how = how_it_ended(pid)
            done = self.restarted.get(service.name, 0)
            if done >= self._budget:
                again = " after a restart" if done else ""
                raise ServiceFailed(service.name, f"{how}{again}", _tails(service.logs))
            self.restarted[service.name] = done + 1
            logs = ", ".join(str(log) for log in service.logs) or "none"
            self._report(f"{service.name} {how} during start-up: restarting it once (logs: {logs})")
            service.restart()


def _tails(logs: Sequence[Path]) -> str:
    parts = [f"[{log}]\n{text}" for log in logs if (text := tail(log))]
    return "\n".join(parts)
