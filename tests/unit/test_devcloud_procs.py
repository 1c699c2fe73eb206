"""Process handling: pidfiles, stopping by process group only, port checks, log tails, errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govcloud.devcloud import procs
from govcloud.devcloud.errors import AlreadyUp, PortTaken, ServiceFailed
from govcloud.devcloud.layout import Layout
from govcloud.devcloud.lifecycle import running
from govcloud.errors import InputError


def test_start_records_pid_and_stop_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile, log = tmp_path / "run" / "svc.pid", tmp_path / "svc.out"
    code = (
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('hi', flush=True); time.sleep(60)"
    )
    pid = procs.start([sys.executable, "-c", code], pidfile=pidfile, log=log)
    assert procs.read_pid(pidfile) == pid and procs.running_pid(pidfile) == pid
    procs.wait_until(lambda: "hi" in log.read_text(), service="svc", pidfile=pidfile, logs=[log], timeout=10)
    assert procs.stop(pidfile, grace=5) is True
    assert not pidfile.exists() and not procs.alive(pid)
    assert procs.group_members(pid) == []  # the grandchild went with its group


def test_stop_leaves_other_processes_alone(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        pidfile = tmp_path / "x.pid"
        pidfile.write_text("999999999\n")
        assert procs.stop(pidfile, grace=0.1) is False
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_garbled_or_missing_pidfile(tmp_path: Path) -> None:
    (tmp_path / "bad.pid").write_text("not a pid")
    assert procs.read_pid(tmp_path / "bad.pid") is None
    assert procs.running_pid(tmp_path / "missing.pid") is None


def test_port_taken_names_port_and_service() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert procs.port_in_use(port)
        with pytest.raises(PortTaken, match=f"{port} \\(keystone\\)") as caught:
            procs.check_ports_free({port: "keystone"})
    assert isinstance(caught.value, InputError) and caught.value.exit_code == 2


def test_check_ports_free_with_injected_probe() -> None:
    procs.check_ports_free({1: "a", 2: "b"}, in_use=lambda _p: False)
    with pytest.raises(PortTaken, match="1 \\(a\\), 2 \\(b\\)"):
        procs.check_ports_free({2: "b", 1: "a"}, in_use=lambda _p: True)


def test_service_that_dies_fails_with_its_log_tail(tmp_path: Path) -> None:
    pidfile, log = tmp_path / "svc.pid", tmp_path / "svc.out"
    procs.start([sys.executable, "-c", "print('boom: bad config', flush=True)"], pidfile=pidfile, log=log)
    time.sleep(0.3)
    with pytest.raises(ServiceFailed, match=r"exited with status 0 during start-up(.|\n)*boom: bad config"):
        procs.wait_until(lambda: False, service="svc", pidfile=pidfile, logs=[log], timeout=10)


def _until_dead(pidfile: Path) -> None:
    deadline = time.monotonic() + 10
    while procs.running_pid(pidfile) is not None and time.monotonic() < deadline:
        time.sleep(0.05)


def test_supervisor_restarts_a_killed_service_once_then_fails(tmp_path: Path) -> None:
    """A service killed by a signal (an empty log: the OOM killer, a crash in C) is started again once
    and the restart is reported; a second death fails with the signal's name and the log tail."""
    pidfile, log = tmp_path / "compute.pid", tmp_path / "compute.out"
    suicide = "import os, signal; print('registering', flush=True); os.kill(os.getpid(), signal.SIGKILL)"

    def start() -> int:
        return procs.start([sys.executable, "-c", suicide], pidfile=pidfile, log=log)

    first = start()
    said: list[str] = []
    watch = procs.Supervisor([procs.Watched("nova-compute-a", pidfile, start, (log,))], report=said.append)
    _until_dead(pidfile)
    watch.check()
    assert len(said) == 1 and "nova-compute-a was killed by SIGKILL during start-up: restarting it once" in said[0]
    assert str(log) in said[0] and watch.restarted == {"nova-compute-a": 1}
    assert procs.read_pid(pidfile) != first
    _until_dead(pidfile)
    with pytest.raises(ServiceFailed, match=r"nova-compute-a was killed by SIGKILL after a restart(.|\n)*registering"):
        watch.check()
    assert len(said) == 1


def test_supervisor_leaves_live_services_alone(tmp_path: Path) -> None:
    pidfile, log = tmp_path / "api.pid", tmp_path / "api.out"
    pid = procs.start([sys.executable, "-c", "import time; time.sleep(30)"], pidfile=pidfile, log=log)
    restarts: list[str] = []
    try:
        watch = procs.Supervisor([procs.Watched("api", pidfile, lambda: restarts.append("api"), (log,))], report=restarts.append)
        watch.check()
        assert restarts == [] and procs.running_pid(pidfile) == pid
    finally:
        procs.stop(pidfile, grace=1)


def test_how_it_ended_without_a_known_child() -> None:
    assert procs.how_it_ended(None) == "exited"
    assert procs.how_it_ended(999999999) == "exited"


def test_service_that_never_answers_times_out(tmp_path: Path) -> None:
    with pytest.raises(ServiceFailed, match="did not become ready within 0 s"):
        procs.wait_until(lambda: False, service="svc", pidfile=None, logs=[], timeout=0.1)


def test_tail_reads_only_the_end(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    assert procs.tail(log, 2) == "line 998\nline 999"
    assert procs.tail(tmp_path / "none.log") == ""


def test_running_lists_live_pidfiles_only(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.run.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        layout.pidfile("alive").write_text(f"{proc.pid}\n")
        layout.pidfile("gone").write_text("999999999\n")
        assert running(layout) == {"alive": proc.pid}
    finally:
        proc.kill()
        proc.wait()


def test_already_up_is_an_input_error() -> None:
    assert issubclass(AlreadyUp, InputError) and AlreadyUp("x").exit_code == 2
