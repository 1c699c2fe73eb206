"""The HTTP endpoint of a govcloud process: ``/metrics``, ``/healthz``, ``/readyz``.

A small threaded ``http.server`` rather than prometheus_client's ``start_http_server`` because the daemon
needs the two health endpoints beside the metrics, a loopback default (``start_http_server`` binds
0.0.0.0), and a stop that tests and a graceful SIGTERM can wait for. Each request runs in its own thread,
so a slow scrape never holds up a health probe.

``daemon_server`` is the glue the daemon uses: it builds the registry and the collector from the
engine's context and answers health from the daemon's own ``healthz()`` / ``readyz()``.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client.registry import CollectorRegistry

from govcloud.exporter.collector import CONTENT_TYPE, GovcloudCollector, exposition
from govcloud.model.state import DesiredState
from govcloud.settings import ExporterSettings, Settings
from govcloud.store.db import Store

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, dict[str, Any]]]
"""A health answer: (ok, details for the JSON body)."""


def _always_ok() -> tuple[bool, dict[str, Any]]:
    return True, {}


class MetricsServer:
    """Serves one registry and two health checks until ``stop()``; ``port`` is the port actually bound."""

    def __init__(self, settings: ExporterSettings, *, registry: CollectorRegistry, healthz: Check = _always_ok,
                 readyz: Check = _always_ok) -> None:
        self.settings = settings
        self.registry = registry
        self.healthz = healthz
        self.readyz = readyz
        self._httpd: ThreadingHTTPServer | None = None
        self.port = settings.port
        """The bound port once started (the kernel's choice when the settings say 0)."""
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> MetricsServer:
        """Bind and serve in a background thread; an address in use raises OSError here, not later."""
        if self._httpd is not None:
            return self
        handler = type("Handler", (_Handler,), {"server_owner": self})
        server_class = type("Server", (ThreadingHTTPServer,), {"address_family": _family(self.host), "daemon_threads": True})
        self._httpd = server_class((self.host, self.settings.port), handler)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"exporter:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close the socket and wait for the serving thread (idempotent)."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _Handler(BaseHTTPRequestHandler):
    server_owner: MetricsServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        owner = self.server_owner
        if path == "/metrics":
            self._send(200, exposition(owner.registry), CONTENT_TYPE)
        elif path in ("/healthz", "/readyz"):
            check = owner.healthz if path == "/healthz" else owner.readyz
            try:
                ok, details = check()
            except Exception as exc:  # noqa: BLE001 - a failing check is an unhealthy answer, not a dropped connection
                ok, details = False, {"error": f"{type(exc).__name__}: {exc}"}
            body = json.dumps({"ok": ok, **details}, ensure_ascii=False, default=str).encode("utf-8")
            self._send(200 if ok else 503, body, "application/json")
        else:
            self._send(404, b'{"ok": false, "error": "not found: try /metrics, /healthz or /readyz"}', "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("exporter %s: " + format, self.address_string(), *args)


class EngineLike(Protocol):
    """What ``daemon_server`` needs of the engine's context (the exporter sits below the engine)."""

    store: Store
    state: DesiredState
    settings: Settings


class DaemonLike(Protocol):
    """What ``daemon_server`` needs of the daemon."""

    @property
    def leader(self) -> bool: ...

    def healthz(self) -> tuple[bool, dict[str, Any]]: ...

    def readyz(self) -> tuple[bool, dict[str, Any]]: ...


def daemon_server(ctx: EngineLike, *, host: str, port: int) -> Callable[[DaemonLike], MetricsServer]:
    """A factory the daemon calls with itself once it runs: a fresh registry, the govcloud collector
    reading ``ctx.store`` and ``ctx.state`` (re-read at each scrape, so reloads show), the daemon's lease as
    ``govcloud_daemon_is_leader``, its health checks; started before it is returned."""
    settings = ExporterSettings(host=host, port=port, heartbeat_timeout=ctx.settings.exporter.heartbeat_timeout)

    def serve(daemon: DaemonLike) -> MetricsServer:
        registry = CollectorRegistry()
        GovcloudCollector(ctx.store, lambda: ctx.state, settings=settings, is_leader=lambda: daemon.leader,
                          lease_warning_days=ctx.settings.daemon.lease_warning_days, registry=registry)
        return MetricsServer(settings, registry=registry, healthz=daemon.healthz, readyz=daemon.readyz).start()

    return serve
