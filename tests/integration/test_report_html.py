"""The report's HTML page in a real browser (issue 15, item 5): Debian's chromium, headless and offline,
opens the page of a month (what ``govcloud report month -o html`` writes) with the usage, service and
idle charts; the DOM it dumps says every chart's
marks were laid out with a size (the page's probe writes ``data-rendered`` on load, in the browser),
and the screenshot it takes is a real PNG of the page."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from govcloud.cli.report_html import render_html
from govcloud.model.rates import IdleRule
from govcloud.planner.chargeback import usage_report
from govcloud.planner.idle import idle_report
from govcloud.planner.periods import parse_period
from govcloud.planner.reports import merge
from govcloud.planner.service import service_report
from tests.unit.report.test_chargeback import HISTORY, NAMES, RATES
from tests.unit.report.test_idle import hourly, vm
from tests.unit.report.test_service import CENTRES, HEALTH, RUNS, SLA, TICKETS

pytestmark = pytest.mark.integration

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--window-size=1000,2400", "--virtual-time-budget=5000")


def chromium() -> str:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium not found: apt-get install chromium", pytrace=False)
    return binary


def page(tmp_path: Path) -> Path:
    period = parse_period("2026-11")
    usage = usage_report(HISTORY, period=period, now=2e9, rates=RATES, names=NAMES)
    service = service_report(TICKETS, health=HEALTH, current={}, centres=CENTRES, runs=RUNS, period=period, now=2e9, sla=SLA,
                             names=NAMES.tenants)
    cpu = {"10.0.0.1": hourly(8, 2.0), "10.0.0.2": hourly(30, 1.0)}
    memory = {"10.0.0.1": hourly(30, 10.0), "10.0.0.2": hourly(30, 12.0)}
    idle = idle_report([vm("gd-mzt-mzoa-t-1-1", "10.0.0.1"), vm("gd-mzt-mzoa-t-1-2", "10.0.0.2")], cpu, memory, period=period, now=2e9,
                       rule=IdleRule(), rates=RATES, names=NAMES.tenants)
    path = tmp_path / "report.html"
    path.write_text(render_html(merge("政务云月度评估 2026-11", [usage, service, idle])), encoding="utf-8")
    return path


def test_the_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    path, shot, profile = page(tmp_path), tmp_path / "report.png", tmp_path / "profile"
    html = path.read_text(encoding="utf-8")
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html  # nothing to fetch
    run = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    assert 'data-ready="1"' in dom, dom[-2000:]
    rendered = dict(re.findall(r'data-chart="([^"]+)"[^>]*data-rendered="([^"]+)"', dom))
    assert set(rendered) == {"usage_by_department", "lead_times", "idle_spenders"}, dom[:3000]
    for key, size in rendered.items():
        width, height = (int(v) for v in size.split("x"))
        assert width > 100 and height > 5, (key, size)
    assert dom.count('class="series"') == 2 and len(re.findall(r'class="bar"', dom)) == 7 + 2
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
