"""govcloud's own SSH known_hosts: trust on first use, pinned afterwards, forgotten when a VM is replaced.

Ansible used to connect with ``StrictHostKeyChecking=no`` and ``/dev/null`` as known_hosts: every run
believed whatever answered at a VM's address, so a machine put in a VM's place on the network could
collect the configuration (users, keys, nginx config) meant for it. Now SSH runs with
``StrictHostKeyChecking=accept-new`` against this file: the first connection to an address records its
key (as ``ssh`` itself writes it), and every later one must present the same key or is refused.

What makes TOFU workable for a cloud is knowing when a new key is legitimate: govcloud replaced the VM.
Each address's key is recorded together with its *owner* — the nova server id (or the Terraform
instance id) of the VM that had the address when the key was learned — in ``<file>.owners`` (JSON).
``prepare`` is called before every run with the owners as they are now: an address whose owner changed
(a VM recreated by reconcile, retired and its address handed to another ticket) loses its old key, and
the new VM's key is learned at first contact. A key that changes while the owner stays the same is
refused: the run marks the host unreachable with a message that says so and how to clear it.

Both files are rewritten under an ``fcntl`` lock (``<file>.lock``), because the CLI and the daemon may
configure at the same time; ``ssh`` appends its own lines without one, which a rewrite may race only for
an address being forgotten at that moment (its key is then learned again next run).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

CHANGED_KEY_MARKERS = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed")
"""What ssh prints (in Ansible's unreachable message) when a host's key differs from the recorded one."""


class KnownHosts:
    """One known_hosts file with its owners; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.owners_path = path.with_name(path.name + ".owners")

    def ssh_options(self) -> str:
        """The ``-o`` options that make ssh use this file with trust on first use."""
        return f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={self.path} -o HashKnownHosts=no"

    def prepare(self, owners: Mapping[str, str]) -> list[str]:
        """Record ``owners`` (address → owner id) and forget the keys of addresses whose owner changed.
        Returns the addresses whose keys were forgotten. An address with a key but no recorded owner (a
        line written by hand) keeps its key and gets the owner given now."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            recorded = self._owners()
            stale = sorted(a for a, owner in owners.items() if recorded.get(a) not in (None, owner))
            if stale:
                self._forget(set(stale))
            if any(recorded.get(a) != owner for a, owner in owners.items()):
                self._write(self.owners_path, json.dumps({**recorded, **owners}, indent=1, sort_keys=True) + "\n")
        return stale

    def keys(self) -> dict[str, list[str]]:
        """Address → its ``type key`` entries, as recorded (for status output and tests)."""
        found: dict[str, list[str]] = {}
        for host_field, entry in self._entries():
            for host in host_field.split(","):
                found.setdefault(_address(host), []).append(entry)
        return found

    @staticmethod
    def describe_failure(message: str, address: str | None, path: Path) -> str | None:
        """A clear reason for a refused changed key, or None when ``message`` is about something else."""
        if not any(marker in message for marker in CHANGED_KEY_MARKERS):
            return None
        where = address or "this host"
        return (f"SSH host key of {where} changed since govcloud first connected to it, and no VM was replaced there: refused "
                f"(a machine impersonating the VM, or a VM rebuilt outside govcloud). If the rebuild is known, forget the old key: "
                f"ssh-keygen -R {where} -f {path}")

    def _entries(self) -> Iterator[tuple[str, str]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and not line.startswith(("#", "@")):
                yield parts[0], parts[1]

    def _forget(self, addresses: set[str]) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            return
        kept = [line for line in lines
                if not (line.split(None, 1) and {_address(h) for h in line.split(None, 1)[0].split(",")} & addresses)]
        self._write(self.path, "".join(kept))

    def _owners(self) -> dict[str, str]:
        try:
            data = json.loads(self.owners_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    @staticmethod
    def _write(path: Path, text: str) -> None:
        """Atomically, mode 0600."""
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _address(host: str) -> str:
    """``10.0.0.5`` from ``10.0.0.5`` or ``[10.0.0.5]:2222`` (how ssh writes a host on another port)."""
    if host.startswith("[") and "]" in host:
        return host[1:host.index("]")]
    return host
