"""Where the devcloud keeps things: one state directory, nothing outside it.

::

    <dir>/venv/            the OpenStack services' virtualenv (never govcloud's own environment)
    <dir>/etc/             rendered configuration (rewritten by every ``up``), profile.json
    <dir>/data/            databases, rabbit mnesia, glance images, nova state, step markers
    <dir>/logs/            one ``<service>.out`` (stdout/stderr) and ``<service>.log`` per service
    <dir>/run/             ``<service>.pid`` (process-group leaders), PostgreSQL's socket
    <dir>/secrets.json     generated passwords (0600)
    <dir>/clouds.yaml      devcloud-admin / devcloud-monitor (0600), for ``OS_CLIENT_CONFIG_FILE``

The directory is ``$GOVCLOUD_DEVCLOUD_DIR`` or ``<state_dir>/devcloud``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from govcloud.settings import default_state_dir

SECRET_NAMES = ("admin", "monitor", "service", "rabbit")


def devcloud_dir(env: Mapping[str, str]) -> Path:
    """``$GOVCLOUD_DEVCLOUD_DIR`` if set, else ``<state_dir>/devcloud``; always absolute."""
    raw = env.get("GOVCLOUD_DEVCLOUD_DIR")
    path = Path(raw).expanduser() if raw else default_state_dir(env) / "devcloud"
    return path.absolute()


@dataclass(frozen=True)
class Layout:
    """Paths inside one devcloud state directory."""

    root: Path

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def pg_data(self) -> Path:
        return self.data / "pg"

    @property
    def pg_socket(self) -> Path:
        return self.run / "pg"

    @property
    def markers(self) -> Path:
        """One empty file per finished one-time step (db sync, cell setup…) so a restart skips it."""
        return self.data / "markers"

    @property
    def clouds_yaml(self) -> Path:
        return self.root / "clouds.yaml"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    @property
    def profile_json(self) -> Path:
        return self.etc / "profile.json"

    def bin(self, name: str) -> Path:
        """An executable of the services' venv."""
        return self.venv / "bin" / name

    def pidfile(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def out_log(self, service: str) -> Path:
        return self.logs / f"{service}.out"

    def service_log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def make_dirs(self) -> None:
        for path in (self.etc, self.data, self.logs, self.run, self.markers):
            path.mkdir(parents=True, exist_ok=True)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, atomically (no window with wider permissions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_secrets(layout: Layout) -> dict[str, str]:
    """The devcloud's passwords, generated on first use and kept (0600) until ``reset``.

    Kept across ``down``/``up`` because the databases remember them; never hard-coded.
    """
    existing: dict[str, str] = {}
    if layout.secrets_file.exists():
        existing = json.loads(layout.secrets_file.read_text(encoding="utf-8"))
    wanted = {name: existing.get(name) or secrets.token_urlsafe(18) for name in SECRET_NAMES}
    if wanted != existing:
        write_private(layout.secrets_file, json.dumps(wanted, indent=1))
    return wanted
