"""promtool on the real output and on the shipped rules; every name the rules and the dashboard use exists.

promtool comes with Debian's ``prometheus`` package (scripts/test installs it). Without it these tests
fail, naming the package: a lint that silently does not run would look like a lint that passes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from govcloud.exporter import exposition
from govcloud.exporter.catalogue import SPECS
from govcloud.store import Store
from tests.support.exporter import REPO, populate, registry_for, sample_state

MONITORING = REPO / "monitoring"
SERVER_METRICS = {"govcloud_exporter_snapshot_age_seconds"}  # added by the HTTP server to each response
NAME = re.compile(r"\b(govcloud[:_][a-z0-9_:]*)")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: apt-get install prometheus (scripts/test does)", pytrace=False)
    return path


def run(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([promtool(), *args], input=stdin, capture_output=True, timeout=60, cwd=cwd, check=False)


def test_promtool_check_metrics_passes_on_the_real_output(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    populate(store)
    body = exposition(registry_for(store, sample_state()))
    result = run("check", "metrics", stdin=body)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_the_alert_rules_are_valid_and_their_tests_pass() -> None:
    checked = run("check", "rules", str(MONITORING / "alerts.yml"))
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()
    tests = sorted(str(p.relative_to(MONITORING)) for p in (MONITORING / "tests").glob("*.yml"))
    assert tests
    result = run("test", "rules", *tests, cwd=MONITORING)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def recorded() -> set[str]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text(encoding="utf-8"))
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def exported(name: str) -> bool:
    base = re.sub(r"_(bucket|count|sum)$", "", name)
    return name in SPECS or base in SPECS or name in SERVER_METRICS or name in recorded()


def test_every_metric_the_rules_use_is_exported() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text(encoding="utf-8"))
    used = {n for g in rules["groups"] for r in g["rules"] for n in NAME.findall(r["expr"])}
    assert used and not {n for n in used if not exported(n)}


def test_every_metric_the_dashboard_uses_is_exported() -> None:
    dashboard = json.loads((MONITORING / "grafana" / "govcloud.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {n for e in exprs for n in NAME.findall(e)}
    assert len(exprs) > 20 and not {n for n in used if not exported(n)}
    assert {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p} == {"${datasource}"}


def test_every_metric_family_of_the_catalogue_is_on_the_dashboard() -> None:
    """Each family the exporter serves appears in some panel's expression (a recording rule built on it does
    not count: the panel shows the rule, not the family), so nothing is exported for nobody to see."""
    dashboard = json.loads((MONITORING / "grafana" / "govcloud.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {re.sub(r"_(bucket|count|sum)$", "", n) for e in exprs for n in NAME.findall(e)}
    assert sorted(set(SPECS) - used) == []


def test_every_metric_and_alert_is_documented() -> None:
    doc = (REPO / "docs" / "monitoring.md").read_text(encoding="utf-8")
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text(encoding="utf-8"))
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    missing = {n for n in {*SPECS, *SERVER_METRICS, *alerts, *recorded()} if f"`{n}`" not in doc and f"| {n} |" not in doc}
    assert not missing
