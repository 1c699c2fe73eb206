"""Power control of compute hosts through their BMCs: the only caller of ``ipmitool`` (``failover/fence.py`` uses it).

One ``IpmiAgent`` per centre: host → BMC address and port, one BMC user, one password. Every call is one
``ipmitool -I lanplus -C <suite> -H <bmc> -p <port> -U <user> -E chassis power off|on|status``.

The password never appears on a command line (``/proc/<pid>/cmdline``, i.e. ``ps``, is readable by every
local user) nor in a log or an error message: ``-E`` makes ipmitool read it from ``IPMI_PASSWORD``, set
in the child's environment only (``/proc/<pid>/environ`` is readable by the same user alone). The child
gets a minimal environment, so nothing else of govcloud's environment leaks to it either.

Failures leave as ``TemporaryError`` (the BMC did not answer, no session — ipmitool reports a wrong
password the same way —, a timeout) or ``PermanentError`` (ipmitool missing, a host without a BMC, an
answer we cannot read), with ipmitool's own words.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from govcloud.errors import InputError, PermanentError, TemporaryError

STATES = {"Chassis Power is on": "on", "Chassis Power is off": "off"}


class IpmiCredentialError(InputError):
    """The BMC password is missing, or its file is readable by others: nothing is fenced (exit 2)."""


@dataclass(frozen=True)
class BmcAddress:
    address: str
    port: int = 623


def read_password(file: Path | None, env_value: str) -> str:
    """The BMC password: the first line of ``file`` (which only its owner may read), else ``env_value``."""
    if file is None:
        if not env_value:
            raise IpmiCredentialError("ipmi fencing needs the BMC password: set GOVCLOUD_IPMI_PASSWORD_FILE (a 0600 file) "
                                      "or GOVCLOUD_IPMI_PASSWORD")
        return env_value
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise IpmiCredentialError(f"{file}: cannot read the BMC password file ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise IpmiCredentialError(f"{file}: the BMC password file is not a regular file")
        if info.st_mode & 0o077:
            raise IpmiCredentialError(f"{file}: the BMC password file is readable by others (mode {stat.S_IMODE(info.st_mode):04o}); "
                                      "chmod 600 it")
        text = handle.read(4096).decode("utf-8", "replace")
    password = text.splitlines()[0] if text else ""
    if not password:
        raise IpmiCredentialError(f"{file}: the BMC password file is empty")
    return password


class IpmiAgent:
    """``FenceAgent`` (drivers/base.py) for the BMCs of one centre."""

    method = "ipmi"

    def __init__(self, bmcs: Mapping[str, BmcAddress], *, user: str, password: str, cipher_suite: int = 3,
                 binary: str = "ipmitool", timeout: float = 30.0) -> None:
        self.bmcs = dict(bmcs)
        self.user = user
        self._password = password
        self.cipher_suite = cipher_suite
        self.binary = binary
        self.timeout = timeout

    def __repr__(self) -> str:  # never the password
        return f"IpmiAgent(hosts={sorted(self.bmcs)}, user={self.user!r})"

    def power_off(self, host: str) -> None:
        self._run(host, "off")

    def power_on(self, host: str) -> None:
        self._run(host, "on")

    def power_state(self, host: str) -> str:
        out = self._run(host, "status")
        for line in out.splitlines():
            if line.strip() in STATES:
                return STATES[line.strip()]
        raise PermanentError(f"ipmi {host}: cannot read the power state from {self._scrub(out.strip())!r}")

    def argv(self, host: str, action: str) -> list[str]:
        """The command line of one call: no secret in it (tests assert that)."""
        bmc = self.bmcs.get(host)
        if bmc is None:
            raise PermanentError(f"ipmi {host}: no BMC configured for this host (fencing file)")
        return [self.binary, "-I", "lanplus", "-C", str(self.cipher_suite), "-H", bmc.address, "-p", str(bmc.port),
                "-U", self.user, "-E", "-N", "2", "-R", "2", "chassis", "power", action]

    def _run(self, host: str, action: str) -> str:
        argv = self.argv(host, action)
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C", "IPMI_PASSWORD": self._password}
        doing = f"ipmi power {action} {host} ({argv[6]}:{argv[8]})"
        try:
            done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except FileNotFoundError:
            raise PermanentError(f"{doing}: {self.binary} is not installed (Debian package ipmitool)") from None
        except subprocess.TimeoutExpired:
            raise TemporaryError(f"{doing}: no answer within {self.timeout:g} s", delay=2) from None
        if done.returncode != 0:
            said = self._scrub((done.stderr or done.stdout).strip()) or f"exit code {done.returncode}"
            raise TemporaryError(f"{doing}: {said}", delay=2)
        return done.stdout

    def _scrub(self, text: str) -> str:
        """ipmitool does not echo the password; should a version ever do, it stops here."""
        return text.replace(self._password, "***") if self._password else text
