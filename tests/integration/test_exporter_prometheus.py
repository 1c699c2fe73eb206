"""The exporter under a real Prometheus (Debian's package) and on a real PostgreSQL store.

A Prometheus on 127.0.0.1 (free port, temporary storage, 1 s scrape and evaluation interval, the
shipped alert rules) scrapes a MetricsServer over a populated store: ``up`` is 1, govcloud's metrics
arrive with the values the store holds, every rule loads and evaluates without error, the down centre
of the sample store raises ``GovcloudCentreDown`` (pending: it waits its ``for:``), and every query of
the Grafana dashboard is valid PromQL. The same store on PostgreSQL gives the same numbers as on SQLite
(the duration SQL is dialect-specific), also after the same writes, which both follow group by group.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from govcloud.exporter import MetricsServer, exposition
from govcloud.settings import ExporterSettings
from govcloud.store import Store
from tests.support.exporter import REPO, populate, random_write, registry_for, sample_state
from tests.support.groups import counting
from tests.support.postgres import create_database

pytestmark = pytest.mark.integration

READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def wait_for(what: str, check: Any, log: Path, timeout: float = READY_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:  # not listening yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.5)
    pytest.fail(f"{what} not reached within {timeout:.0f} s (last: {last!r}); Prometheus log:\n{log.read_text()[-3000:]}", pytrace=False)


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[MetricsServer]:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    populate(store)
    with MetricsServer(ExporterSettings(port=0), registry=registry_for(store, sample_state())) as server:
        yield server


@pytest.fixture
def prometheus(tmp_path: Path, exporter: MetricsServer) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: apt-get install prometheus (scripts/test does)", pytrace=False)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{json.dumps(str(REPO / 'monitoring' / 'alerts.yml'))}]\n"
        "scrape_configs:\n"
        "  - job_name: govcloud\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n", encoding="utf-8")
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--web.enable-lifecycle"],
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("Prometheus ready", lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def query(base: str, expr: str) -> list[dict[str, Any]]:
    answer = api(base, "/api/v1/query", query=expr)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def test_prometheus_scrapes_the_exporter_and_loads_the_rules(prometheus: str, tmp_path: Path) -> None:
    log = tmp_path / "prometheus.log"
    up = wait_for("up == 1", lambda: query(prometheus, 'up{job="govcloud"} == 1'), log)
    assert up[0]["value"][1] == "1"
    limit = query(prometheus, 'govcloud_quota_limit{tenant="gd-gat", cloud="gd-prov", resource="vcpus"}')
    assert [float(r["value"][1]) for r in limit] == [sample_state().quotas.quotas[("gd-gat", "gd-prov")].limit.vcpus]
    assert query(prometheus, "govcloud_build_info")
    assert [r["metric"]["centre"] for r in query(prometheus, "govcloud_centre_up == 0")] == ["sg-dr"]

    def evaluated() -> list[dict[str, Any]] | None:
        rules = [r for g in api(prometheus, "/api/v1/rules")["data"]["groups"] for r in g["rules"]]
        return rules if rules and all(r["health"] != "unknown" for r in rules) else None

    rules = wait_for("every rule evaluated", evaluated, log)
    assert {r["health"] for r in rules} == {"ok"}, [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    names = {r["name"] for r in rules}
    assert {"GovcloudCentreDown", "GovcloudQuotaNearlyExhausted", "GovcloudReconcileStalled", "GovcloudNoLeader",
            "GovcloudMoreThanOneLeader", "GovcloudTicketStuck", "GovcloudLeaseExpiring", "govcloud:quota_allocated:ratio"} <= names

    def centre_down_alert() -> list[dict[str, Any]]:
        return [a for a in api(prometheus, "/api/v1/alerts")["data"]["alerts"] if a["labels"]["alertname"] == "GovcloudCentreDown"]

    alert = wait_for("GovcloudCentreDown pending", centre_down_alert, log)
    assert alert[0]["labels"]["centre"] == "sg-dr" and alert[0]["state"] in ("pending", "firing")


def test_every_dashboard_query_is_valid_promql(prometheus: str, tmp_path: Path) -> None:
    wait_for("up == 1", lambda: query(prometheus, 'up{job="govcloud"} == 1'), tmp_path / "prometheus.log")
    dashboard = json.loads((REPO / "monitoring" / "grafana" / "govcloud.json").read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = re.sub(r"\$(tenant|cloud)\b", ".*", target["expr"])
            answer = api(prometheus, "/api/v1/query", query=expr)
            assert answer["status"] == "success", (panel["title"], expr, answer)


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(body.decode())
            for s in f.samples if s.name != "govcloud_exporter_scrape_duration_seconds"}


def test_postgresql_and_sqlite_stores_give_the_same_numbers(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sqlite = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    pg = Store.open(create_database(postgres_url, "exporter_same"))
    populate(sqlite)
    populate(pg)
    state = sample_state()
    lite, post = samples(exposition(registry_for(sqlite, state))), samples(exposition(registry_for(pg, state)))
    assert lite.keys() == post.keys()
    differ = {k: (lite[k], post[k]) for k in lite if not math.isclose(lite[k], post[k], rel_tol=1e-9, abs_tol=0.01)}
    assert not differ
    assert post[("govcloud_exporter_store_up", ())] == 1
    assert post[("govcloud_ticket_configuration_seconds_count", (("kind", "create"),))] == 1
    # the same writes between two scrapes: both follow the changed groups (migrations 0013 and 0014: no
    # GROUP BY over vms or ledger again); both scrapes must equal a fresh collector's
    lite_registry, post_registry = registry_for(sqlite, state), registry_for(pg, state)
    exposition(lite_registry), exposition(post_registry)
    for store in (sqlite, pg):
        with store.transaction() as conn:
            for n in range(12):
                random_write(conn, random.Random(n), n)
    ran = counting(monkeypatch, ("vm_counts", "tenant_usage", "vm_count_changes", "usage_changes"))
    lite = samples(exposition(lite_registry))
    assert ran == {"vm_count_changes": 1, "usage_changes": 1}
    post = samples(exposition(post_registry))
    assert ran == {"vm_count_changes": 2, "usage_changes": 2}
    assert lite.keys() == post.keys() == samples(exposition(registry_for(pg, state))).keys()
    assert not {k: (lite[k], post[k]) for k in lite if not math.isclose(lite[k], post[k], rel_tol=1e-9, abs_tol=0.01)}
    assert lite == samples(exposition(registry_for(sqlite, state)))
