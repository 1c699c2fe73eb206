"""``govcloud daemon`` as a subprocess, for the integration tests and the fault suite: start one, read its
JSON log, ask its metrics, and read the daemons table (who runs, who leads) of the store they share.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govcloud.store import facts
from tests.support.tickets import REPO, open_store
from tests.support.waiting import wait_for


@dataclass
class DaemonProcess:
    """One ``govcloud daemon`` subprocess; its JSON log lines are collected as they arrive."""

    process: subprocess.Popen[str]
    lines: list[dict[str, Any]] = field(default_factory=list)
    reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:
                self.lines.append({"msg": line.rstrip()})

    @property
    def port(self) -> int:
        def announced() -> Any:
            return next((e["port"] for e in self.lines if e.get("msg") == "serving metrics and health"), None)

        found = wait_for("the daemon's metrics port", announced, timeout=60, interval=0.2)
        return int(found)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of one sample in /metrics (None when absent)."""
        _, text = self.get("/metrics")
        for line in text.splitlines():
            match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
            if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
                return float(match.group(2))
        return None

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self.close()
        return code

    def close(self) -> None:
        """After the process ended: let the reader reach EOF, then close the pipe."""
        if self.reader is not None:
            self.reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


def start_daemon(db: str, inbox: Path, state_dir: Path, *extra: str) -> DaemonProcess:
    env = {**os.environ, "GOVCLOUD_DB": db, "GOVCLOUD_INBOX": str(inbox), "GOVCLOUD_STATE_DIR": str(state_dir), "GOVCLOUD_USER": ""}
    process = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "daemon", "--apply-interval", "1", "--reconcile-interval", "5",
                                "--health-interval", "2", *extra], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    daemon = DaemonProcess(process)
    daemon.reader = threading.Thread(target=daemon._read, daemon=True)
    daemon.reader.start()
    return daemon

def daemon_rows(db: str) -> list[facts.DaemonRow]:
    """The daemons of the store that have not recorded a stop (a killed one stays until a leader clears it)."""
    store = open_store(db)
    try:
        with store.transaction() as conn:
            return facts.daemon_rows(conn)
    finally:
        store.close()


def leaders(db: str) -> list[facts.DaemonRow]:
    """The rows flagged leader: the live leader, and a killed one's until the next leader claims."""
    return [d for d in daemon_rows(db) if d.leader]
