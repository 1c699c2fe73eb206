"""The idle report's rule and the Prometheus client (issue 15, item 3), without a Prometheus: the rule on
synthetic daily samples, the client against a loopback HTTP server that answers as Prometheus does (the
real Prometheus and node exporters are in tests/integration/test_report_idle.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from govcloud.drivers.prometheus import PrometheusClient
from govcloud.errors import PermanentError, TemporaryError
from govcloud.model.assessment import VmFacts
from govcloud.model.rates import IdleRule, RateCard, Rates
from govcloud.planner.idle import daily_means, idle_report
from govcloud.planner.periods import parse_period

NOV = parse_period("2026-11")
START = NOV.start.timestamp()


def vm(name: str, address: str | None) -> VmFacts:
    return VmFacts(name, "t-1", "gd-mzt", "mzoa", "gd-prov", "gz-main", address, "gc.small", 2, 4096, 40, active_at="2026-10-01T00:00:00+00:00",
                   requester="caijing", contact="蔡静 020-1234")


def hourly(days: int, value: float) -> list[tuple[float, float]]:
    return [(START + h * 3600, value) for h in range(days * 24)]


def test_idle_on_enough_days_is_listed_with_its_cost_and_owner() -> None:
    rates = Rates(version=1, default=RateCard(vcpu_hour=1.0))
    cpu = {"10.0.0.1": hourly(8, 2.0), "10.0.0.2": hourly(30, 60.0), "10.0.0.3": hourly(5, 1.0)}
    memory = {"10.0.0.1": hourly(30, 10.0), "10.0.0.2": hourly(30, 10.0), "10.0.0.3": hourly(5, 1.0)}
    report = idle_report([vm("idle", "10.0.0.1"), vm("busy", "10.0.0.2"), vm("short", "10.0.0.3"), vm("dark", None)], cpu, memory,
                         period=NOV, now=2e9, rule=IdleRule(cpu_percent=5, memory_percent=30, days=7), rates=rates, names={"gd-mzt": "民政厅"})
    (row,) = report.section("idle").rows
    assert (row["vm"], row["idle_days"], row["measured_days"], row["cpu_percent"]) == ("idle", 8, 8, 2.0)
    assert row["cost"] == 2 * 720 and row["contact"] == "蔡静 020-1234" and row["requester"] == "caijing" and row["department"] == "民政厅"
    assert [r["vm"] for r in report.section("unmonitored").rows] == ["dark"]
    (chart,) = report.charts
    assert chart.x == ["idle"] and chart.series[0].values == [1440.0]


def test_daily_means() -> None:
    assert daily_means([(START + 10, 1.0), (START + 20, 3.0), (START + 86400 * 2, 5.0), (START - 1, 99.0)], START, 3) == [2.0, None, 5.0]


class Answer(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, tuple[int, Any]]] = {}
    asked: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        Answer.asked.append(query)
        code, body = Answer.answers[query["query"][0]]
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_query_range_answers_series_and_drops_nan(server: str) -> None:
    Answer.answers["up"] = (200, {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"instance": "10.0.0.1:9100"}, "values": [[100, "1.5"], [105, "NaN"], [110, "2"]]}]}})
    (series,) = PrometheusClient(server).query_range("up", start=100, end=110, step=5)
    assert series.labels == {"instance": "10.0.0.1:9100"} and series.samples == [(100.0, 1.5), (110.0, 2.0)]
    assert Answer.asked[-1]["step"] == ["5"] and Answer.asked[-1]["start"] == ["100.000"]


def test_a_long_range_is_asked_in_pieces(server: str) -> None:
    Answer.asked.clear()
    Answer.answers["long"] = (200, {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"instance": "a"}, "values": [[1, "1"]]}]}})
    client = PrometheusClient(server)
    client.MAX_POINTS = 10
    (series,) = client.query_range("long", start=0, end=25, step=1)
    assert [(q["start"][0], q["end"][0]) for q in Answer.asked] == [("0.000", "9.000"), ("10.000", "19.000"), ("20.000", "25.000")]
    assert series.samples == [(1.0, 1.0)] * 3


@pytest.mark.parametrize(("answer", "error"), [
    ((400, {"status": "error", "error": "parse error"}), PermanentError),
    ((503, b"busy"), TemporaryError),
    ((200, b"<html>not prometheus</html>"), PermanentError),
    ((200, {"status": "success", "data": {"resultType": "vector", "result": []}}), PermanentError),
])
def test_failures_are_temporary_or_permanent(server: str, answer: tuple[int, Any], error: type[Exception]) -> None:
    Answer.answers["q"] = answer
    with pytest.raises(error):
        PrometheusClient(server).query_range("q", start=0, end=1, step=1)


def test_an_unreachable_prometheus_is_temporary() -> None:
    with pytest.raises(TemporaryError, match="cannot reach"):
        PrometheusClient("http://127.0.0.1:9", timeout=2).query_range("up", start=0, end=1, step=1)
    with pytest.raises(PermanentError):
        PrometheusClient("ftp://x")
