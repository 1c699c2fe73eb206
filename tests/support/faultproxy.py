"""An API fault proxy for the fault suite: a small threaded HTTP reverse proxy in front of the devcloud's
keystone, nova and neutron that answers a configurable share of calls with a fault instead.

Kinds of fault (each equally likely unless ``kinds`` says otherwise):

``500`` ``502`` ``503``  an error answer; the request never reaches the service.
``reset``                the socket is closed with a TCP reset before the request is forwarded.
``reset-after``          the request IS forwarded and answered upstream, then the client's socket is reset:
                         a POST that reached nova but whose answer was lost (the duplicate-server case).
``timeout``              the connection is held, unanswered and not forwarded, for ``hold`` seconds (longer
                         than the client's ``api_timeout``), then closed.

Faults are drawn from one ``random.Random(seed)`` under a lock, so a seed fixes the sequence of decisions
(threads decide which call gets which). Every answer's body and ``Location`` header has the upstream
addresses rewritten to the proxy's own, so keystone's catalog and nova's version documents send the
client back through the proxy. ``counts`` says what was injected, per service and kind.

Used by tests/integration/test_faults.py and bench/faults.py.
"""

from __future__ import annotations

import collections
import http.client
import json
import random
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

KINDS = ("500", "502", "503", "reset", "reset-after", "timeout")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "accept-encoding",
              "proxy-connection", "te", "trailer", "upgrade", "host"}
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Upstream:
    """One proxied service: its name (for the shares and counts) and where it really listens."""

    service: str
    port: int
    host: str = LOOPBACK


@dataclass
class FaultPlan:
    """Which share of calls of each service fail, and how."""

    shares: Mapping[str, float]
    """Service name → probability that one call is answered with a fault (missing: 0)."""
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    hold: float = 15.0
    """Seconds a ``timeout`` fault holds the connection: set it above the client's api_timeout."""
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {KINDS}")
        self.rng = random.Random(self.seed)


class FaultProxy:
    """One listening port per upstream; ``start()`` before use, ``stop()`` after. Thread-safe counters."""

    def __init__(self, upstreams: Iterable[Upstream], plan: FaultPlan) -> None:
        self.plan = plan
        self.upstreams = list(upstreams)
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        """(service, kind) → faults injected; (service, "ok") → calls passed through untouched."""
        self.posts_lost: int = 0
        """``reset-after`` faults on a POST: creates that happened upstream whose answer never arrived."""
        self.enabled = True
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self.ports: dict[int, int] = {}
        """Upstream port → the proxy's port for it."""

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        for upstream in self.upstreams:
            server = _QuietServer((LOOPBACK, 0), _handler(self, upstream))
            self.ports[upstream.port] = server.server_address[1]
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- decisions -----------------------------------------------------------------------------
    def url(self, upstream_port: int, path: str = "") -> str:
        return f"http://{LOOPBACK}:{self.ports[upstream_port]}{path}"

    def decide(self, service: str) -> str:
        """``ok`` or the kind of fault for the next call to ``service`` (and count it)."""
        with self._lock:
            share = self.plan.shares.get(service, 0.0) if self.enabled else 0.0
            kind = self.plan.rng.choice(self.plan.kinds) if self.plan.rng.random() < share else "ok"
            self.counts[(service, kind)] += 1
            return kind

    def lost_post(self) -> None:
        with self._lock:
            self.posts_lost += 1

    def rewrite(self, data: bytes) -> bytes:
        """Upstream addresses → proxy addresses (``:8774`` never matches inside ``:18774``: the colon is part of it)."""
        for upstream, mine in self.ports.items():
            data = data.replace(f"{LOOPBACK}:{upstream}".encode(), f"{LOOPBACK}:{mine}".encode())
            data = data.replace(f"localhost:{upstream}".encode(), f"{LOOPBACK}:{mine}".encode())
        return data

    def summary(self) -> dict[str, Any]:
        """Faults per service and kind, calls passed, lost POSTs: what bench/ prints."""
        with self._lock:
            services = sorted({service for service, _ in self.counts})
            return {service: {kind: self.counts[(service, kind)] for kind in ("ok", *KINDS) if self.counts[(service, kind)]}
                    for service in services} | {"posts_lost": self.posts_lost}

    def injected(self) -> int:
        with self._lock:
            return sum(n for (_, kind), n in self.counts.items() if kind != "ok")


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (its api_timeout passed while the upstream was slow) is no error of the proxy's."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, TimeoutError)):
            super().handle_error(request, client_address)


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees a connection reset, not an orderly end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


def _handler(proxy: FaultProxy, upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the counters say what happened."""

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            kind = proxy.decide(upstream.service)
            if kind in ("500", "502", "503"):
                self._answer(int(kind), {"Content-Type": "application/json"},
                             json.dumps({"error": {"code": int(kind), "message": f"faultproxy: injected {kind}"}}).encode())
                return
            if kind == "reset":
                self.close_connection = True
                _reset(self.connection)
                return
            if kind == "timeout":
                time.sleep(proxy.plan.hold)
                self.close_connection = True
                _reset(self.connection)
                return
            status, headers, data = self._forward(body)
            if kind == "reset-after":
                if self.command == "POST":
                    proxy.lost_post()
                self.close_connection = True
                _reset(self.connection)
                return
            self._answer(status, headers, proxy.rewrite(data))

        def _forward(self, body: bytes | None) -> tuple[int, dict[str, str], bytes]:
            conn = http.client.HTTPConnection(upstream.host, upstream.port, timeout=600)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Host"] = f"{upstream.host}:{upstream.port}"
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
                return response.status, kept, data
            finally:
                conn.close()

        def _answer(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, proxy.rewrite(value.encode()).decode() if key.lower() == "location" else value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _relay

    return Handler


DEVCLOUD_PORTS = {"keystone": (5000,), "nova": (8774, 18774), "neutron": (9696, 19696)}
"""The devcloud's keystone, and nova and neutron of both regions (inventory/devcloud.yaml)."""


def devcloud_upstreams() -> list[Upstream]:
    return [Upstream(service, port) for service, ports in DEVCLOUD_PORTS.items() for port in ports]


def write_clouds_yaml(source: Path, dest: Path, proxy: FaultProxy, *, api_timeout: float) -> Path:
    """The devcloud's clouds.yaml with every entry's keystone behind the proxy (the catalog, rewritten by
    the proxy, sends nova and neutron calls through it too) and a client timeout below the proxy's hold."""
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    for entry in doc["clouds"].values():
        entry["auth"]["auth_url"] = proxy.rewrite(entry["auth"]["auth_url"].encode()).decode()
        entry["api_timeout"] = api_timeout
    dest.write_text(yaml.safe_dump(doc), encoding="utf-8")
    dest.chmod(0o600)
    return dest
