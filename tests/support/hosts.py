"""Test hosts for Ansible: one "VM" per IPv4 address, reachable over real SSH from this machine.

The fake hypervisor's VMs run no OS, so the integration tier gives each VM a real host whose address
equals the VM's neutron port address. A host is

* a network namespace ``gch<hex address>`` with ``eth0`` = one end of a veth pair; the other end
  (same name) sits on the bridge ``gcbr0``, which holds the gateway address (10.250.0.1/22 by default),
  so the controller reaches every host directly;
* its own mount, UTS and PID namespaces (``unshare``): overlays over /etc /home /root /var /opt /srv
  keep every write private (upper dirs under ``base/<host>/ov``), a private tmpfs on /tmp and /run,
  /proc/sys read-only except /proc/sys/net (which is the namespace's own: kernel-wide sysctls of the
  real machine cannot be changed by a playbook), its own hostname;
* ``sshd -D`` as PID 1 of that PID namespace: key auth only; root logs in with the controller key the
  harness generates (``base/id_ed25519``, mode 0600), other users with their own
  ``~/.ssh/authorized_keys``. Host keys are generated per host and written to ``base/known_hosts``, so
  clients can keep ``StrictHostKeyChecking=yes`` (see :meth:`TestHosts.ssh_options`).

Killing the ``unshare`` process SIGKILLs the whole PID namespace (``--kill-child``): that is
:meth:`TestHosts.stop`, a host that vanishes. :meth:`TestHosts.start` boots it again with its disk
(the overlay upper dirs) intact. Tear-down SIGKILLs every host, waits until ``ip netns pids`` is empty
and removes veths, namespaces and the bridge.

Needs root, iproute2 (``ip``), util-linux (``unshare``, ``nsenter``), openssh-server (``sshd``),
openssh-client (``ssh-keygen``) and overlayfs; :class:`HostsUnavailable` says which is missing.
One harness per bridge at a time: a lock file serialises concurrent test sessions, and resources
left by a crashed session (same bridge, same addresses) are removed before starting.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

OVERLAY_DIRS = ("etc", "home", "root", "var", "opt", "srv")
SSHD = "/usr/sbin/sshd"
INSIDE_DIR = "/etc/govcloud-testhost"  # sshd config, host key and root's authorized_keys, as the host sees them
LOCK_DIR = Path("/run/lock")

# Runs as PID 1's parent shell inside the new namespaces, then becomes sshd.
_BOOT = r"""
set -e
h=$1; name=$2
for d in etc home root var opt srv; do
  mount -t overlay "ov-$d" -o "lowerdir=/$d,upperdir=$h/ov/$d/up,workdir=$h/ov/$d/work" "/$d"
done
mount -t tmpfs -o mode=1777,size=256m gch-tmp /tmp
mount -t tmpfs -o mode=0755,size=64m gch-run /run
mkdir -p /run/sshd /run/lock
mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net
echo "$name" > /etc/hostname
hostname "$name"
grep -q "[[:space:]]$name\$" /etc/hosts || echo "127.0.1.1 $name" >> /etc/hosts
exec "$3" -D -f /etc/govcloud-testhost/sshd_config -E /var/log/govcloud-testhost-sshd.log
"""


class HostsUnavailable(RuntimeError):
    """The test hosts cannot run on this machine; the message says what is missing and how to get it."""


class HostsError(RuntimeError):
    """A host did not come up, or a command was aimed at a host that is not running."""


@dataclass
class _Host:
    address: str
    hostname: str
    ns: str  # netns name == root-side veth name (<= 15 characters)
    directory: Path
    proc: subprocess.Popen[bytes] | None = None
    init_pid: int | None = None  # PID 1 of the host's PID namespace, seen from the machine
    extra: dict[str, str] = field(default_factory=dict)


def _ns_name(address: str) -> str:
    return "gch" + ipaddress.IPv4Address(address).packed.hex()


def check_environment() -> None:
    """Raise :class:`HostsUnavailable` unless this process can build test hosts."""
    if os.geteuid() != 0:
        raise HostsUnavailable("test hosts need root (network namespaces, mounts); run the integration tier as root")
    missing = [f"{tool} ({pkg})" for tool, pkg in (("ip", "iproute2"), ("unshare", "util-linux"), ("nsenter", "util-linux"),
                                                   ("ssh-keygen", "openssh-client"), ("ssh", "openssh-client"))
               if shutil.which(tool) is None]
    if not Path(SSHD).exists():
        missing.append(f"{SSHD} (openssh-server)")
    if missing:
        raise HostsUnavailable(f"test hosts need: {', '.join(missing)}; apt-get install iproute2 util-linux openssh-server openssh-client")
    if "overlay" not in Path("/proc/filesystems").read_text():
        raise HostsUnavailable("test hosts need overlayfs in the kernel (modprobe overlay)")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if check and done.returncode != 0:
        raise HostsError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def _netns_pids(ns: str) -> list[int]:
    done = _ip("netns", "pids", ns, check=False)
    return [int(p) for p in done.stdout.split()] if done.returncode == 0 else []


class TestHosts:
    """Hosts for the given addresses; use :func:`test_hosts` (a context manager) or ``with TestHosts(...)``."""

    __test__ = False  # not a pytest test class, whatever imports it

    def __init__(self, addresses: Sequence[str], *, subnet_prefix: int = 22, gateway: str = "10.250.0.1", base: Path,
                 bridge: str = "gcbr0", hostnames: Mapping[str, str] | None = None, lock_timeout: float = 300.0) -> None:
        check_environment()
        if not bridge.startswith("gcbr") or len(bridge) > 15:
            raise ValueError(f"bridge name {bridge!r}: must start with 'gcbr' and have at most 15 characters")
        self.network = ipaddress.IPv4Interface(f"{gateway}/{subnet_prefix}").network
        self.gateway = gateway
        self.subnet_prefix = subnet_prefix
        self.bridge = bridge
        self.base = Path(base).resolve()
        self.lock_timeout = lock_timeout
        hostnames = hostnames or {}
        self._hosts: dict[str, _Host] = {}
        for address in addresses:
            ip = ipaddress.IPv4Address(address)
            if ip not in self.network or str(ip) in (gateway, str(self.network.network_address), str(self.network.broadcast_address)):
                raise ValueError(f"address {address}: not a host address of {self.network} other than the gateway {gateway}")
            if str(ip) in self._hosts:
                raise ValueError(f"address {address} given twice")
            name = hostnames.get(str(ip), "vm-" + str(ip).replace(".", "-"))
            self._hosts[str(ip)] = _Host(str(ip), name, _ns_name(str(ip)), self.base / _ns_name(str(ip)))
        self._lock_fd: int | None = None

    # -- what clients need -------------------------------------------------------------------------
    @property
    def addresses(self) -> list[str]:
        return list(self._hosts)

    @property
    def key_path(self) -> Path:
        """The controller's private key (0600): root on every host accepts it."""
        return self.base / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        """``address ssh-ed25519 KEY`` for every host: lets clients keep StrictHostKeyChecking=yes."""
        return self.base / "known_hosts"

    def hostname(self, address: str) -> str:
        return self._host(address).hostname

    def ssh_options(self) -> list[str]:
        """``-o`` options for ssh/ansible: this harness's known_hosts with strict checking, no agent, quiet."""
        return ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
                "-o", "LogLevel=ERROR"]

    def ssh(self, address: str, command: str, *, user: str = "root", key: Path | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on the host over real SSH (the way Ansible reaches it)."""
        argv = ["ssh", "-i", str(key or self.key_path), *self.ssh_options(), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                f"{user}@{self._host(address).address}", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def run(self, address: str, command: str | Sequence[str], *, timeout: float = 30, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``command`` (a shell string or an argv) inside the host's namespaces, without SSH."""
        host = self._host(address)
        if host.init_pid is None:
            raise HostsError(f"host {address} is stopped")
        argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
        return subprocess.run(["nsenter", "-t", str(host.init_pid), "-m", "-u", "-n", "-p", "--", *argv],
                              capture_output=True, text=True, timeout=timeout, check=check)

    def read_file(self, address: str, path: str) -> str:
        """The content of ``path`` as the host sees it (raises HostsError if it is missing)."""
        done = self.run(address, ["cat", path])
        if done.returncode != 0:
            raise HostsError(f"{address}:{path}: {done.stderr.strip()}")
        return done.stdout

    # -- life cycle --------------------------------------------------------------------------------
    def up(self) -> None:
        """Take the lock, clear leftovers of a crashed session, build the bridge and start every host."""
        if self._lock_fd is not None:
            raise HostsError("up() called twice")
        self._lock()
        try:
            for host in self._hosts.values():
                self._remove_host(host)
            _ip("link", "del", self.bridge, check=False)
            self._check_gateway_free()
            self.base.mkdir(parents=True, exist_ok=True)
            self._keygen(self.key_path, "govcloud-testhosts-controller")
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/{self.subnet_prefix}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for host in self._hosts.values():
                self._plug(host)
            self.known_hosts.write_text("".join(f"{h.address} {h.extra['host_key']}\n" for h in self._hosts.values()))
            for host in self._hosts.values():
                self._boot(host)
            for host in self._hosts.values():
                self._wait_ssh(host, timeout=15)
        except BaseException:
            self.close()
            raise

    def start(self, address: str, *, timeout: float = 15) -> None:
        """Boot a stopped host again (same disk, same host key) and wait until its sshd answers."""
        host = self._host(address)
        if host.proc is not None:
            raise HostsError(f"host {address} is already running")
        _ip("link", "set", host.ns, "up")
        self._boot(host)
        self._wait_ssh(host, timeout=timeout)

    def rekey(self, address: str, *, timeout: float = 15) -> str:
        """Give the host a new SSH host key (as a machine put in its place would have) and boot it again
        with it; returns the new ``type key``. The harness's own known_hosts follows."""
        host = self._host(address)
        if host.proc is not None:
            self.stop(address, unplug=False)
        key = host.directory / "ov" / "etc" / "up" / INSIDE_DIR.removeprefix("/etc/") / "ssh_host_ed25519_key"
        key.unlink()
        key.with_suffix(".pub").unlink()
        self._keygen(key, host.hostname)
        host.extra["host_key"] = " ".join(key.with_suffix(".pub").read_text().split()[:2])
        self.known_hosts.write_text("".join(f"{h.address} {h.extra['host_key']}\n" for h in self._hosts.values()))
        self.start(address, timeout=timeout)
        return str(host.extra["host_key"])

    def host_key(self, address: str) -> str:
        """The host's ``type key``."""
        return str(self._host(address).extra["host_key"])

    def stop(self, address: str, *, unplug: bool = True) -> None:
        """SIGKILL every process of the host. With ``unplug`` (default) its cable is pulled first, so peers
        get no FIN/RST: the host vanishes like a VM whose hypervisor died, and clients notice only by timeouts."""
        host = self._host(address)
        if unplug:
            _ip("link", "set", host.ns, "down", check=False)
        self._kill(host)

    def close(self) -> None:
        """Kill every host, remove veths, namespaces, the bridge and the hosts' disks; release the lock.

        Does nothing unless :meth:`up` took the lock: the bridge may belong to another session."""
        if self._lock_fd is None:
            return
        try:
            for host in self._hosts.values():
                self._remove_host(host)
                shutil.rmtree(host.directory, ignore_errors=True)
            _ip("link", "del", self.bridge, check=False)
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> TestHosts:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------------
    def _host(self, address: str) -> _Host:
        try:
            return self._hosts[address]
        except KeyError:
            raise HostsError(f"no test host with address {address} (have {', '.join(self._hosts)})") from None

    def _lock(self) -> None:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(LOCK_DIR / f"govcloud-testhosts-{self.bridge}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise HostsError(f"bridge {self.bridge} is held by another test session for more than {self.lock_timeout:.0f} s") from None
                time.sleep(0.2)
        self._lock_fd = fd

    def _check_gateway_free(self) -> None:
        for line in _ip("-o", "-4", "addr", "show").stdout.splitlines():
            parts = line.split()
            if len(parts) > 3 and parts[3].split("/")[0] == self.gateway:
                raise HostsUnavailable(f"gateway {self.gateway} is already on interface {parts[1]}: choose another subnet")

    @staticmethod
    def _keygen(path: Path, comment: str) -> None:
        if not path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                           check=True, capture_output=True, timeout=30)
        path.chmod(0o600)

    def _plug(self, host: _Host) -> None:
        """Netns, veth on the bridge, address, default route; sshd config, host key and disk (overlay dirs)."""
        _ip("netns", "add", host.ns)
        _ip("link", "add", host.ns, "type", "veth", "peer", "name", "eth0", "netns", host.ns)
        _ip("link", "set", host.ns, "master", self.bridge, "up")
        _ip("-n", host.ns, "addr", "add", f"{host.address}/{self.subnet_prefix}", "dev", "eth0")
        _ip("-n", host.ns, "link", "set", "eth0", "up")
        _ip("-n", host.ns, "link", "set", "lo", "up")
        _ip("-n", host.ns, "route", "add", "default", "via", self.gateway)
        for d in OVERLAY_DIRS:
            (host.directory / "ov" / d / "up").mkdir(parents=True, exist_ok=True)
            (host.directory / "ov" / d / "work").mkdir(parents=True, exist_ok=True)
        # A VM image's root has a plain shell. Through the /root overlay the host would see the controller's
        # ~/.bashrc, which bash reads for every SSH command: with pyenv there, each command runs
        # `pyenv rehash`, and a host killed in the middle of one keeps its lock file (.pyenv-shim) in the
        # overlay — after a restart every task then waited ~60 s for it and the run hit its timeout.
        (host.directory / "ov" / "root" / "up" / ".bashrc").write_text("# govcloud test host: a plain root shell\n")
        # Written into the /etc overlay's upper dir: the host sees it at INSIDE_DIR, also with /tmp private.
        inside = host.directory / "ov" / "etc" / "up" / INSIDE_DIR.removeprefix("/etc/")
        inside.mkdir(parents=True, exist_ok=True)
        self._keygen(inside / "ssh_host_ed25519_key", host.hostname)
        host.extra["host_key"] = " ".join((inside / "ssh_host_ed25519_key.pub").read_text().split()[:2])
        shutil.copyfile(self.key_path.with_suffix(".pub"), inside / "authorized_keys")
        (inside / "sshd_config").write_text(f"""\
ListenAddress {host.address}
Port 22
HostKey {INSIDE_DIR}/ssh_host_ed25519_key
PidFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel ERROR
# drop sessions whose client vanished (otherwise they linger)
ClientAliveInterval 5
ClientAliveCountMax 3
Match User root
    AuthorizedKeysFile {INSIDE_DIR}/authorized_keys
""")

    def _boot(self, host: _Host) -> None:
        log = open(host.directory / "boot.log", "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            host.proc = subprocess.Popen(
                ["ip", "netns", "exec", host.ns, "unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc",
                 "--propagation", "private", "sh", "-c", _BOOT, "boot", str(host.directory), host.hostname, SSHD],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        # `ip netns exec` execs unshare in place; its only child is the host's PID 1.
        children = Path(f"/proc/{host.proc.pid}/task/{host.proc.pid}/children")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                pids = children.read_text().split()
                if pids:
                    host.init_pid = int(pids[0])
                    return
            if host.proc.poll() is not None:
                break
            time.sleep(0.01)
        raise HostsError(f"host {host.address} did not boot: {self._boot_log(host)}")

    def _wait_ssh(self, host: _Host, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if host.proc is None or host.proc.poll() is not None:
                raise HostsError(f"host {host.address} died while booting: {self._boot_log(host)}")
            with contextlib.suppress(OSError), socket.create_connection((host.address, 22), timeout=1) as conn:
                if conn.recv(4).startswith(b"SSH-"):
                    return
            time.sleep(0.05)
        raise HostsError(f"sshd of host {host.address} did not answer within {timeout} s: {self._boot_log(host)}")

    @staticmethod
    def _boot_log(host: _Host) -> str:
        text = ""
        for name in ("boot.log", "ov/var/up/log/govcloud-testhost-sshd.log"):
            with contextlib.suppress(OSError):
                text += (host.directory / name).read_text(errors="replace")[-2000:]
        return text.strip() or "(no output)"

    def _kill(self, host: _Host) -> None:
        if host.proc is not None:
            # unshare --fork ignores SIGTERM; SIGKILL makes --kill-child SIGKILL the host's PID 1,
            # and the kernel then kills everything else in the PID namespace.
            with contextlib.suppress(ProcessLookupError):
                os.kill(host.proc.pid, signal.SIGKILL)
            host.proc.wait(timeout=10)
            host.proc = None
        host.init_pid = None
        self._wait_netns_empty(host)

    @staticmethod
    def _wait_netns_empty(host: _Host) -> None:
        deadline = time.monotonic() + 10
        while pids := _netns_pids(host.ns):
            if time.monotonic() > deadline:
                raise HostsError(f"processes {pids} of host {host.address} survived SIGKILL")
            for pid in pids:  # strays (a crashed session's host, an `ip netns exec` by a test)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def _remove_host(self, host: _Host) -> None:
        self._kill(host)
        _ip("link", "del", host.ns, check=False)
        _ip("netns", "del", host.ns, check=False)


@contextmanager
def test_hosts(addresses: Sequence[str], *, subnet_prefix: int = 22, gateway: str = "10.250.0.1", base: Path,
               bridge: str = "gcbr0", hostnames: Mapping[str, str] | None = None) -> Iterator[TestHosts]:
    """Hosts for ``addresses`` for the duration of the block; everything is gone afterwards."""
    with TestHosts(addresses, subnet_prefix=subnet_prefix, gateway=gateway, base=base, bridge=bridge, hostnames=hostnames) as hosts:
        yield hosts


test_hosts.__test__ = False  # type: ignore[attr-defined]  # a context manager, not a test
