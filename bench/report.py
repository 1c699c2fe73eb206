"""Benchmark: a month's reports over the exporter bench's synthetic store (100k VMs, 10k tenants).

usage: python bench/report.py [--vms N] [--tenants T] [--db PATH] [--repeat R]

The store is bench/exporter.py's (``build_store``: tickets, ledger lines, VM rows, health, …, with bulk
INSERTs into govcloud's own tables), plus a usage history for November 2026 written the way govcloud
writes it:

- a full sample on 2026-10-01 (``store/usage_history.sample``: every ledger group and every quota);
- churn in November: for 30 % of the groups, 1–3 changes at random moments (a VM added or retired, as the
  ledger records it), each group ending at what the ledger holds, then a full sample every day of the
  month (what the daemon's timer does; those find nothing to write, as on a real store);
- one centre down for 2 h 30 min and two failover runs in the audit trail.

Measured in a **fresh process** (``--measure``) holding the synthetic desired state: the engine's
``reports.usage`` and ``reports.service`` for ``--period 2026-11`` as an approver (every tenant: the
largest report), i.e. store read + planner; then the same reports rendered as JSON and as the
spreadsheet; and one more full sample (the daemon's hourly cost). Printed: median wall and CPU time of
R runs, rows, and the process's peak RSS. Targets (issue 15): a month's report < 5 s, < 500 MB.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from govcloud.model.resources import Resources
from govcloud.store import Store, usage_history
from govcloud.store import tables as t

_spec = importlib.util.spec_from_file_location("exporter_bench", Path(__file__).with_name("exporter.py"))
assert _spec is not None and _spec.loader is not None
eb: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(eb)

REPO = Path(__file__).resolve().parents[1]
UTC = datetime.UTC


def iso(at: datetime.datetime) -> str:
    return at.isoformat(timespec="microseconds")


def history(url: str, state: Any) -> dict[str, int]:
    """The usage history of November on top of the exporter bench's store."""
    rng = random.Random(13)
    store = Store.open(url)
    quotas = {key: q.limit for key, q in state.quotas.quotas.items()}
    with store.transaction() as conn:
        usage_history.sample(conn, quotas, at=iso(datetime.datetime(2026, 10, 1, tzinfo=UTC)), actor="bench")
        now = usage_history.committed(conn)
    rows: list[dict[str, Any]] = []
    month = datetime.datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    churned = [k for k in sorted(now) if rng.random() < 0.3]
    for key in churned:
        moments = sorted(rng.uniform(month, month + 29 * 86400) for _ in range(rng.randint(1, 3)))
        for i, moment in enumerate(moments):
            final = i == len(moments) - 1
            amount = now[key] if final else Resources(*(max(0, v - rng.randint(0, 2)) for v in now[key].as_dict().values()))
            rows.append({"at": iso(datetime.datetime.fromtimestamp(moment, UTC)), "tenant": key.tenant, "system": key.system,
                         "cloud": key.cloud, "centre": key.centre, "kind": key.kind, **amount.as_dict()})
    rows.sort(key=lambda r: r["at"])
    audit = store.audit
    with store.transaction() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(t.usage_points.insert(), rows[start:start + 5000])
    for day in range(1, 31):
        with store.transaction() as conn:
            usage_history.sample(conn, quotas, at=iso(datetime.datetime(2026, 11, day, 23, tzinfo=UTC)), actor="bench")
    for when, action, subject, details in (
        (datetime.datetime(2026, 11, 10, 1, tzinfo=UTC), "centre.health", "centre:gd-prov/gz-main", {"from": "healthy", "to": "down"}),
        (datetime.datetime(2026, 11, 10, 1, 5, tzinfo=UTC), "failover.start", "centre:gd-prov/gz-main", {"moves": 70}),
        (datetime.datetime(2026, 11, 10, 1, 7, tzinfo=UTC), "failover.end", "centre:gd-prov/gz-main", {"moved": 70, "failed": 0}),
        (datetime.datetime(2026, 11, 10, 3, 30, tzinfo=UTC), "centre.health", "centre:gd-prov/gz-main", {"from": "down", "to": "healthy"}),
    ):
        with store.transaction() as conn:
            audit.append("bench", action, subject, details, connection=conn)
            conn.execute(t.audit_log.update().where(t.audit_log.c.action == action, t.audit_log.c.subject == subject)
                         .values(ts=iso(when)))  # the audit chain is not verified here: only the report's reading is measured
    with store.transaction() as conn:
        points = conn.execute(sa.select(sa.func.count()).select_from(t.usage_points)).scalar_one()
        groups = len(usage_history.latest(conn))
    store.close()
    return {"groups": groups, "churned groups": len(churned), "history points": int(points)}


def measure(url: str, tenants: int, repeat: int) -> None:
    """The reports, in this (fresh) process."""
    import dataclasses

    from govcloud.cli.report_output import render
    from govcloud.cli.report_xlsx import write_xlsx
    from govcloud.engine import history as engine_history
    from govcloud.engine import reports
    from govcloud.engine.context import EngineContext
    from govcloud.model.endpoints import resolve
    from govcloud.model.state import load_state
    from govcloud.planner.periods import parse_period
    from govcloud.settings import DataPaths, Settings

    users = load_state(DataPaths(root=REPO), []).users
    state = dataclasses.replace(eb.desired(tenants, eb.topology()), users=users)
    settings = Settings.from_env({}).with_overrides(root=str(REPO), db=url, user="shenpi-chen")
    store = Store.open(url)
    ctx = EngineContext(settings=settings, state=state, store=store, endpoints=resolve(state.topology), driver_factory=lambda _e: None,  # type: ignore[arg-type, return-value]
                        clock=lambda: datetime.datetime(2026, 12, 2, 8, tzinfo=UTC))
    period = parse_period("2026-11")
    made: dict[str, Any] = {}

    def usage() -> None:
        made["usage"] = reports.usage(ctx, period)

    def service() -> None:
        made["service"] = reports.service(ctx, period)

    out = Path(tempfile.mkdtemp(prefix="govcloud-report-")) / "usage.xlsx"
    results = {
        "report usage (read + compute)": eb.median_time(usage, repeat, "report usage (read + compute)"),
        "report service (read + compute)": eb.median_time(service, repeat, "report service (read + compute)"),
    }
    peak_reports = eb.rss_mb()[1]
    results["usage as JSON"] = eb.median_time(lambda: json.loads(render(made["usage"], "json")), repeat, "usage as JSON")
    results["usage as xlsx"] = eb.median_time(lambda: write_xlsx(made["usage"], out), 1, "usage as xlsx")
    ctx.settings = dataclasses.replace(settings, user="yunwei-he")
    results["full sample (daemon timer)"] = eb.median_time(lambda: engine_history.sample(ctx), repeat, "full sample (daemon timer)")
    rows = {s.key: len(s.rows) for s in made["usage"].sections}
    print(f"usage report 2026-11: {rows}; service: {({s.key: len(s.rows) for s in made['service'].sections})}")
    print(f"median of {repeat} runs (xlsx: 1); load average {os.getloadavg()[0]:.1f}")
    for name, seconds in results.items():
        print(f"  {name:<34} {seconds:7.2f} s wall {eb.CPU[name]:7.2f} s CPU {eb.BEST[name]:7.2f} s best")
    month = results["report usage (read + compute)"] + results["report service (read + compute)"]
    print(f"target a month's report < 5 s: {'met' if month < 5 else 'NOT met'} (usage + service: {month:.2f} s)")
    print(f"peak RSS: {peak_reports:.0f} MB after the reports, {eb.rss_mb()[1]:.0f} MB after JSON, xlsx and the sample; "
          f"target < 500 MB: {'met' if eb.rss_mb()[1] < 500 else 'NOT met'}")


def main() -> None:
    eb.run_on_store(__file__, __doc__.splitlines()[0], measure, repeat=3, extra=history)

if __name__ == "__main__":
    main()
