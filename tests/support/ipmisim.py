"""Simulated BMCs for the devcloud's compute hosts: one ``ipmi_sim`` (Debian's ``openipmi``) per host on loopback.

Each BMC gets its own directory with a ``lan.conf`` (UDP port on 127.0.0.1, one admin user, RMCP+),
an emulator command file (one BMC at IPMB 0x20) and a state directory. Its power is wired to the devcloud
through ipmi_sim's ``chassis_control`` program: ipmi_sim runs ``PROGRAM get power`` (we answer
``power:1`` or ``power:0``) and ``PROGRAM set power 0|1``; ours runs the devcloud's fence agent,
``govcloud devcloud host status|off|on HOST``, so ``ipmitool chassis power off`` really stops that
host's nova-compute and ``power on`` starts it again. The password is written only into these private
files (0600): the BMC's own configuration, as on a real BMC.

ipmi_sim 2.0.33 offers RMCP+ cipher suite 3 but not ipmitool 1.8.19's default 17: clients pass ``-C 3``
(the fencing file's ``cipher_suite``, 3 by default).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LAN_CONF = """name "{name}"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid {guid}
  endlan
  chassis_control "{hook}"
  user 2 true "{user}" "{password}" admin 10 md5
"""

EMU = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
"""

HOOK = """#!{python}
# ipmi_sim's chassis_control program for BMC {host}: 'get power' / 'set power 0|1' -> the devcloud's fence agent
import subprocess, sys
agent = [{python!r}, "-m", "govcloud", "devcloud", "host"]
if sys.argv[1:3] == ["get", "power"]:
    state = subprocess.run(agent + ["status", {host!r}], capture_output=True, text=True, check=True).stdout.split()[-1]
    print("power:" + ("1" if state == "on" else "0"))
elif sys.argv[1:3] == ["set", "power"]:
    subprocess.run(agent + ["on" if sys.argv[3].strip('"') == "1" else "off", {host!r}], capture_output=True, check=True)
else:
    sys.exit(1)
"""


@dataclass(frozen=True)
class Bmc:
    host: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def power_status(port: int, user: str, password: str) -> subprocess.CompletedProcess[str]:
    """``ipmitool chassis power status`` against one simulated BMC (password in the child's environment)."""
    return subprocess.run(["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(port), "-U", user, "-E",
                           "-N", "1", "-R", "1", "chassis", "power", "status"],
                          env={"PATH": os.environ["PATH"], "IPMI_PASSWORD": password}, capture_output=True, text=True, timeout=30,
                          check=False)


def start_bmc(host: str, directory: Path, *, user: str, password: str, env: Mapping[str, str]) -> Bmc:
    """One ipmi_sim for ``host``, started and answering (``RuntimeError`` with its output otherwise)."""
    if shutil.which("ipmi_sim") is None or shutil.which("ipmitool") is None:
        raise RuntimeError("ipmi_sim / ipmitool missing: apt-get install openipmi ipmitool")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (directory / "state").mkdir(mode=0o700, exist_ok=True)
    port = free_udp_port()
    hook = directory / "power-hook"
    _write_private(hook, HOOK.format(python=sys.executable, host=host), 0o700)
    guid = (host.encode().hex() + "0" * 32)[:32]
    _write_private(directory / "lan.conf", LAN_CONF.format(name=f"bmc-{host}", port=port, guid=guid, hook=hook, user=user,
                                                           password=password))
    _write_private(directory / "bmc.emu", EMU)
    log = open(directory / "ipmi_sim.out", "wb")  # noqa: SIM115  # the process keeps it open
    process = subprocess.Popen(["ipmi_sim", "-n", "-c", str(directory / "lan.conf"), "-f", str(directory / "bmc.emu"),
                                "-s", str(directory / "state")], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               env=dict(env), cwd=directory)
    log.close()
    bmc = Bmc(host, port, directory, process)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"ipmi_sim for {host} exited {process.returncode}: {(directory / 'ipmi_sim.out').read_text()[-2000:]}")
        if power_status(port, user, password).returncode == 0:
            return bmc
        if time.monotonic() > deadline:
            stop_bmc(bmc)
            raise RuntimeError(f"ipmi_sim for {host} on udp/{port} did not answer within 30 s")
        time.sleep(0.3)


def stop_bmc(bmc: Bmc) -> None:
    """Terminate the one process we started (by its own handle, never by name)."""
    if bmc.process.poll() is None:
        bmc.process.terminate()
        try:
            bmc.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bmc.process.kill()
            bmc.process.wait(timeout=10)


@contextmanager
def bmcs(hosts: list[str], directory: Path, *, user: str, password: str) -> Iterator[dict[str, Bmc]]:
    """A BMC per host for the duration of the block; the hooks run this worktree's govcloud."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    started: dict[str, Bmc] = {}
    try:
        for host in hosts:
            started[host] = start_bmc(host, directory / host, user=user, password=password, env=env)
        yield started
    finally:
        for bmc in started.values():
            stop_bmc(bmc)
