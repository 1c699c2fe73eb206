"""The HTTP endpoint: /metrics, /healthz, /readyz on loopback, ephemeral ports, stop; the snapshot cache."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from govcloud.exporter import MetricsServer, daemon_server
from govcloud.exporter.serve import Snapshot
from govcloud.settings import ExporterSettings, Settings
from govcloud.store import Store
from tests.support.exporter import populate, registry_for, sample_state


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    populate(store)
    return store


def test_serves_metrics_health_and_readiness_on_an_ephemeral_loopback_port(store: Store) -> None:
    ready = {"ok": True}
    server = MetricsServer(ExporterSettings(port=0), registry=registry_for(store, sample_state()),
                           healthz=lambda: (True, {"daemon": "d1"}), readyz=lambda: (ready["ok"], {"role": "standby"}))
    with server:
        assert server.host == "127.0.0.1" and server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        status, headers, body = get(server.url + "/metrics")
        assert status == 200
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert b"govcloud_build_info{version=" in body
        assert b"govcloud_exporter_snapshot_age_seconds 0.000\n" in body
        status, headers, body = get(server.url + "/healthz")
        assert (status, json.loads(body)) == (200, {"ok": True, "daemon": "d1"})
        assert headers["Content-Type"] == "application/json"
        ready["ok"] = False
        status, _, body = get(server.url + "/readyz")
        assert (status, json.loads(body)) == (503, {"ok": False, "role": "standby"})
        assert get(server.url + "/nothing")[0] == 404
        port = server.port
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    server.stop()  # idempotent


def test_a_check_that_raises_answers_503_with_the_error() -> None:
    def broken() -> tuple[bool, dict[str, Any]]:
        raise RuntimeError("store gone")

    with MetricsServer(ExporterSettings(port=0), registry=CollectorRegistry(), healthz=broken) as server:
        status, _, body = get(server.url + "/healthz")
    assert status == 503
    assert json.loads(body) == {"ok": False, "error": "RuntimeError: store gone"}


def test_a_port_in_use_fails_at_start() -> None:
    with MetricsServer(ExporterSettings(port=0), registry=CollectorRegistry()) as first:
        second = MetricsServer(ExporterSettings(port=first.port), registry=CollectorRegistry())
        with pytest.raises(OSError):
            second.start()


def test_scrapes_run_concurrently_with_health_probes(store: Store) -> None:
    gate = threading.Event()

    class Slow:
        def collect(self) -> list[Any]:
            gate.wait(5)
            return []

    registry = CollectorRegistry()
    registry.register(Slow())  # type: ignore[arg-type]
    with MetricsServer(ExporterSettings(port=0), registry=registry) as server:
        scrape = threading.Thread(target=get, args=(server.url + "/metrics",))
        scrape.start()
        time.sleep(0.1)
        started = time.perf_counter()
        assert get(server.url + "/healthz")[0] == 200
        assert time.perf_counter() - started < 2
        gate.set()
        scrape.join()


@dataclass
class FakeRender:
    bodies: list[bytes] = field(default_factory=lambda: [b"one", b"two", b"three"])
    calls: int = 0
    gate: threading.Event = field(default_factory=threading.Event)

    def __call__(self) -> bytes:
        self.calls += 1
        if self.calls > 1:
            self.gate.wait(5)
        return self.bodies[self.calls - 1]


def test_snapshot_without_cache_renders_every_time() -> None:
    render = FakeRender()
    render.gate.set()
    snapshot = Snapshot(render, max_age=0)
    assert [snapshot.get()[0] for _ in range(3)] == [b"one", b"two", b"three"]


def test_snapshot_with_cache_serves_the_old_body_while_one_refresh_runs() -> None:
    now = [100.0]
    render = FakeRender()
    snapshot = Snapshot(render, max_age=10, clock=lambda: now[0])
    assert snapshot.get() == (b"one", 0.0)          # first scrape waits for the first rendering
    now[0] = 105.0
    assert snapshot.get() == (b"one", 5.0)          # fresh enough: no refresh
    assert render.calls == 1
    now[0] = 120.0
    assert snapshot.get() == (b"one", 20.0)         # stale: served at once, refresh started
    assert snapshot.get() == (b"one", 20.0)         # a second scrape does not start a second refresh
    render.gate.set()
    for _ in range(100):
        if snapshot.get()[0] == b"two":
            break
        time.sleep(0.02)
    assert snapshot.get() == (b"two", 0.0)
    assert render.calls == 2


def test_cached_mode_through_the_server(store: Store) -> None:
    with MetricsServer(ExporterSettings(port=0, cache_seconds=60), registry=registry_for(store, sample_state())) as server:
        first, second = get(server.url + "/metrics")[2], get(server.url + "/metrics")[2]
    assert b"govcloud_quota_limit{" in first
    assert first.split(b"govcloud_exporter_snapshot_age_seconds")[0] == second.split(b"govcloud_exporter_snapshot_age_seconds")[0]


@dataclass
class FakeDaemon:
    leader: bool = True

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        return True, {"daemon": "gz1"}

    def readyz(self) -> tuple[bool, dict[str, Any]]:
        return True, {"role": "leader" if self.leader else "standby"}


@dataclass
class FakeContext:
    store: Store
    state: Any
    settings: Settings


def test_daemon_server_wires_the_store_the_state_and_the_lease(store: Store) -> None:
    ctx = FakeContext(store, sample_state(), Settings())
    daemon = FakeDaemon()
    server = daemon_server(ctx, host="127.0.0.1", port=0)(daemon)
    try:
        body = get(server.url + "/metrics")[2]
        assert b"govcloud_daemon_is_leader 1.0\n" in body
        assert b'govcloud_vms{centre="gz-main",cloud="gd-prov",status="ACTIVE",tenant="gd-gat"} 2.0\n' in body
        daemon.leader = False
        assert b"govcloud_daemon_is_leader 0.0\n" in get(server.url + "/metrics")[2]
        assert json.loads(get(server.url + "/readyz")[2]) == {"ok": True, "role": "standby"}
    finally:
        server.stop()


@pytest.mark.parametrize(("address", "host", "port"), [("0.0.0.0:9100", "0.0.0.0", 9100), (":0", "127.0.0.1", 0),
                                                        ("[::1]:9478", "::1", 9478)])
def test_exporter_address_setting(address: str, host: str, port: int) -> None:
    settings = Settings.from_env({"GOVCLOUD_EXPORTER_ADDRESS": address}).exporter
    assert (settings.host, settings.port) == (host, port)


@pytest.mark.parametrize("address", ["localhost", "host:http", "h:70000"])
def test_a_bad_exporter_address_names_the_expected_form(address: str) -> None:
    with pytest.raises(ValueError, match="expected host:port"):
        ExporterSettings.from_address(address)


def test_the_default_binds_loopback() -> None:
    assert (Settings.from_env({}).exporter.host, Settings.from_env({}).exporter.port) == ("127.0.0.1", 9478)
