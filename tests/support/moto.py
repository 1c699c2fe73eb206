"""A throw-away moto server on 127.0.0.1 as the EC2-compatible "third-party cloud" of the Terraform tests.

``moto_server`` comes from ``pip install 'moto[server]'`` (CI installs it); a missing binary is a loud
failure, not a skip. The server runs in its own session on a free port and is stopped (SIGTERM, then
SIGKILL) when the context ends; ``reset()`` clears every resource between tests in about 0.1 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "testing"
SECRET_KEY = "govcloud-moto-secret-not-real"  # static test credential; tests check it never lands on disk


@dataclass(frozen=True)
class MotoServer:
    """Where the server listens and the static credentials it accepts."""

    url: str
    port: int
    log: Path
    region: str = "us-east-1"

    @property
    def credentials_env(self) -> dict[str, str]:
        """What terraform's AWS provider and boto3 need in their environment."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": self.region}

    def reset(self) -> None:
        """Forget every resource (``POST /moto-api/reset``)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortTaken(RuntimeError):
    """Another process bound the port between ``free_port`` and moto's own bind."""


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Until *this* process serves ``url``: its log says it runs there, and the URL answers. The answer alone
    is not enough: when another test's moto took the port first (two workers starting servers at once can be
    handed the same free port), this one exits with "Address already in use" while that one answers — and
    the tests would share a cloud (CI, 2026-12-05: the Terraform engine test found another module's security
    group in "its" moto)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")
            if "Address already in use" in text:
                raise PortTaken(url)
            raise RuntimeError(f"moto_server exited with {proc.returncode}: {text[-2000:]}")
        if f"Running on {url}" not in log.read_text(errors="replace"):
            time.sleep(0.1)
            continue
        try:
            with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2) as response:
                response.read()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"moto_server not answering on {url} after {timeout:.0f} s: {log.read_text(errors='replace')[-2000:]}")


@contextmanager
def moto_server(*, timeout: float = 30.0, attempts: int = 3) -> Iterator[MotoServer]:
    """Start ``moto_server -H 127.0.0.1 -p <free port>`` (another free port if that one was taken meanwhile);
    yield it; stop it and remove its log."""
    binary = shutil.which("moto_server")
    if binary is None:
        raise RuntimeError("moto_server not found: pip install 'moto[server]' (the Terraform tests need a real EC2 endpoint)")
    base = Path(tempfile.mkdtemp(prefix="govcloud-moto-"))
    try:
        for attempt in range(1, attempts + 1):
            log, port = base / "moto.log", free_port()
            url = f"http://127.0.0.1:{port}"
            with log.open("wb") as out:
                proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                _wait_ready(url, proc, log, timeout)
            except PortTaken:
                if attempt == attempts:
                    raise
                continue
            except BaseException:
                _stop(proc)
                raise
            try:
                yield MotoServer(url=url, port=port, log=log)
            finally:
                _stop(proc)
            return
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
