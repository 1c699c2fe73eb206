"""The HTTP endpoint of a govcloud process: ``/metrics``, ``/healthz``, ``/readyz``.

A small threaded ``http.server`` rather than prometheus_client's ``start_http_server`` because the daemon
needs the two health endpoints beside the metrics, a loopback default (``start_http_server`` binds
0.0.0.0), and a stop that tests and a graceful SIGTERM can wait for. Each request runs in its own thread,
so a slow scrape never holds up a health probe.

``daemon_server`` is the glue the daemon uses: it builds the registry and the collector from the
engine's context and answers health from the daemon's own ``healthz()`` / ``readyz()``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client.registry import CollectorRegistry

from govcloud.exporter.collector import CONTENT_TYPE, GovcloudCollector, exposition
from govcloud.model.parsed import DesiredState
from govcloud.settings import ExporterSettings, Settings
from govcloud.store.db import Store

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, dict[str, Any]]]
"""A health answer: (ok, details for the JSON body)."""


def _always_ok() -> tuple[bool, dict[str, Any]]:
    return True, {}


class Snapshot:
    """The ``/metrics`` body: rendered at every scrape (``max_age`` 0), or served from the newest rendering
    while an older-than-``max_age`` one is refreshed in a background thread (stale-while-revalidate).

    The cached mode exists for very large stores, where reading and rendering take longer than a scrape
    should: the scrape answers in milliseconds, one refresh runs at a time, and only scrapes cause
    refreshes (no timer burning CPU when nobody looks). The first scrape waits for the first rendering.
    """

    def __init__(self, render: Callable[[], bytes], *, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._render = render
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._body: bytes | None = None
        self._at = 0.0
        self._refreshing = False

    def get(self) -> tuple[bytes, float]:
        """(body, seconds since it was rendered)."""
        if self.max_age <= 0:
            return self._render(), 0.0
        with self._lock:
            body, at = self._body, self._at
            start = body is not None and not self._refreshing and self._clock() - at > self.max_age
            self._refreshing = self._refreshing or start
        if body is None:
            return self._refresh(), 0.0
        if start:
            threading.Thread(target=self._refresh_quietly, name="exporter-refresh", daemon=True).start()
        return body, self._clock() - at

    def _refresh(self) -> bytes:
        try:
            body = self._render()
            with self._lock:
                self._body, self._at = body, self._clock()
            return body
        finally:
            with self._lock:
                self._refreshing = False

    def _refresh_quietly(self) -> None:
        try:
            self._refresh()
        except Exception:  # a failed background refresh keeps the previous body; the next scrape retries
            log.exception("exporter: background refresh failed")


AGE = ("# HELP govcloud_exporter_snapshot_age_seconds Age of the metrics in this response (0 unless cache_seconds is set).\n"
       "# TYPE govcloud_exporter_snapshot_age_seconds gauge\n"
       "govcloud_exporter_snapshot_age_seconds {:.3f}\n")


class MetricsServer:
    """Serves one registry and two health checks until ``stop()``; ``port`` is the port actually bound."""

    def __init__(self, settings: ExporterSettings, *, registry: CollectorRegistry, healthz: Check = _always_ok,
                 readyz: Check = _always_ok) -> None:
        self.settings = settings
        self.registry = registry
        self.healthz = healthz
        self.readyz = readyz
        self.snapshot = Snapshot(lambda: exposition(registry), max_age=settings.cache_seconds)
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
            body, age = owner.snapshot.get()
            self._send(200, body + AGE.format(age).encode(), CONTENT_TYPE)
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
    settings = dataclasses.replace(ctx.settings.exporter, host=host, port=port)

    def serve(daemon: DaemonLike) -> MetricsServer:
        registry = CollectorRegistry()
        GovcloudCollector(ctx.store, lambda: ctx.state, settings=settings, is_leader=lambda: daemon.leader,
                          lease_warning_days=ctx.settings.daemon.lease_warning_days, registry=registry, dr=ctx.settings.dr)
        return MetricsServer(settings, registry=registry, healthz=daemon.healthz, readyz=daemon.readyz).start()

    return serve
