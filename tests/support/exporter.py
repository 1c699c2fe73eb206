"""A state store filled through the store's own functions with one of everything the exporter reports.

Shared by the exporter's unit tests, the promtool checks and the integration test against a real
Prometheus (and the SQLite/PostgreSQL comparison), so that all of them look at the same picture.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import random
from pathlib import Path

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from govcloud.exporter import GovcloudCollector
from govcloud.model.ledger import LedgerLine
from govcloud.model.parsed import DesiredState
from govcloud.model.resources import Resources
from govcloud.model.state import load_state
from govcloud.settings import DataPaths, ExporterSettings
from govcloud.store import Store, facts
from govcloud.store import tickets as rows

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.datetime(2026, 12, 2, 8, 0, 0, tzinfo=datetime.UTC)


@functools.cache
def sample_state() -> DesiredState:
    """The repository's own topology, tenants and quotas (no tickets); loaded once, it is frozen."""
    return load_state(DataPaths(root=REPO), [])


def iso(seconds_before_now: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_before_now)).isoformat(timespec="microseconds")


def ticket(ticket_id: str, *, tenant: str = "gd-gat", state: str = "active", kind: str = "create", expires: str | None = "2027-06-30",
           submitted: float | None = 7200, approved: float | None = None, started: float | None = None,
           provisioned: float | None = None, active: float | None = None, updated: float = 60) -> rows.TicketRow:
    """A ticket row whose timestamps are given in seconds before NOW."""
    def at(value: float | None) -> str | None:
        return iso(value) if value is not None else None

    return rows.TicketRow(id=ticket_id, tenant=tenant, system="hukou", kind=kind, state=state, content_hash=ticket_id * 2,
                          source="version: 1\n", source_name=f"{ticket_id}.yaml", submitted_by="someone",
                          submitted_at=iso(submitted or 0), updated_at=iso(updated), approved_at=at(approved),
                          approved_by="approver" if approved is not None else None, active_at=at(active),
                          expires=expires, provision_started_at=at(started), provisioned_at=at(provisioned))


def vm(ticket_id: str, idx: int, *, tenant: str = "gd-gat", centre: str = "gz-main", status: str = "ACTIVE") -> rows.VmRow:
    return rows.VmRow(ticket=ticket_id, idx=idx, name=f"{tenant}-hukou-{ticket_id}-{idx}", tenant=tenant, system="hukou",
                      cloud="gd-prov", region="gd-gz", centre=centre, zone=centre, flavor="gc.medium", vcpus=2, ram_mb=4096,
                      disk_gb=40, status=status, updated_at=iso(60))


def populate(store: Store) -> None:
    """Tickets in several states with latencies, ledger lines (vm and dr, reserved and committed), VMs,
    a quota override, centre health, reconcile cycles and findings, two daemons (one stale leader)."""
    with store.transaction() as conn:
        # Tickets walk through the engine's moves, so that the latency histograms are counted as in production.
        # t-a: active, configured; submit→approve 600 s, approve→active 1800 s, provisioning 1200 s, configuration 500 s
        walk(conn, ticket("t-a", state="submitted", submitted=7200), approved=6600, started=6500, provisioned=5300, configured=4800)
        rows.record_config(conn, rows.ConfigResult("t-a", "gd-gat-hukou-t-a-1", "run-1", "ok", 3, (), iso(4800)))
        # t-b: active without configuration, lease ends in 5 days (inside the 14-day window)
        walk(conn, ticket("t-b", tenant="gd-zf", state="submitted", expires="2026-12-07", submitted=5000), approved=4970, started=4960,
             provisioned=4900)
        # t-c: approved and waiting (reserved quota), lease already ended
        walk(conn, ticket("t-c", state="submitted", expires="2026-11-30", submitted=100000), approved=90000)
        # t-d: submitted three hours ago, not yet approved
        rows.insert(conn, ticket("t-d", state="submitted", submitted=10800, updated=10800))
        # t-e: retired (its lease no longer matters); it became active without a recorded provisioning time
        walk(conn, ticket("t-e", state="submitted", expires="2026-11-01", submitted=900000), approved=899000, started=None, active=898000,
             retired=897000)
        # a DR ticket of gd-gat: VM lines in gz-main, failover room in sg-dr
        rows.reserve(conn, [
            LedgerLine("t-a", "gd-gat", "hukou", "gd-prov", "gz-main", Resources(2, 4, 8192, 80), "reserved"),
            LedgerLine("t-a", "gd-gat", "hukou", "gd-prov", "sg-dr", Resources(2, 4, 8192, 80), "reserved", "dr"),
            LedgerLine("t-b", "gd-zf", "x", "gd-prov", "gz-backup", Resources(1, 2, 4096, 40), "reserved"),
            LedgerLine("t-c", "gd-gat", "hukou", "gd-prov", "gz-backup", Resources(3, 6, 12288, 120), "reserved"),
        ])
        rows.commit(conn, "t-a", now=iso(7200))
        rows.commit(conn, "t-b", now=iso(7200))
        rows.upsert_vm(conn, vm("t-a", 1))
        rows.upsert_vm(conn, vm("t-a", 2))
        rows.upsert_vm(conn, vm("t-b", 1, tenant="gd-zf", centre="gz-backup", status="SHUTOFF"))
        rows.set_override(conn, "gd-mzt", "gd-prov", Resources(50, 200, 409600, 9000), ticket="q-1", now=iso(3600))
        facts.record_health(conn, facts.CentreHealth("gd-prov", "gz-main", "healthy", iso(86400), iso(5), 2, 2, True))
        facts.record_health(conn, facts.CentreHealth("gd-prov", "sg-dr", "down", iso(120), iso(5), 0, 2, False))
        facts.record_cycle(conn, facts.CycleStatus("gd-prov", started_at=iso(70), finished_at=iso(60), success_at=iso(60),
                                                   duration_s=10.5, servers=3, drift=1, orphans=1, corrected=1))
        facts.record_cycle(conn, facts.CycleStatus("city-foshan", started_at=iso(4000), finished_at=iso(3990), success_at=iso(3990),
                                                   duration_s=2.0))
        facts.record_cycle(conn, facts.CycleStatus("city-foshan", started_at=iso(30), finished_at=iso(20), duration_s=10.0,
                                                   error="keystone: 503"))
        facts.replace_findings(conn, "gd-prov", [
            facts.Finding("gd-prov", "drift", "t-a/3", "gd-gat-hukou-t-a-3", "missing", ticket="t-a", tenant="gd-gat"),
            facts.Finding("gd-prov", "orphan", "srv-9", "gd-gat-hukou-t-x-1", "no ticket t-x", server_id="srv-9"),
        ], now=iso(60))
        facts.heartbeat(conn, facts.DaemonRow("gz1:100:a", "gz1", 100, iso(3600), iso(3), True))
        facts.heartbeat(conn, facts.DaemonRow("gz2:200:b", "gz2", 200, iso(3600), iso(5), False))
        facts.heartbeat(conn, facts.DaemonRow("gz3:300:c", "gz3", 300, iso(7200), iso(600), True))  # killed -9 ten minutes ago
        facts.heartbeat(conn, facts.DaemonRow("gz4:400:d", "gz4", 400, iso(7200), iso(900), True, stopped_at=iso(900)))


def walk(conn: sa.Connection, row: rows.TicketRow, *, approved: float, started: float | None = 0, provisioned: float | None = None,
         configured: float | None = None, active: float | None = None, retired: float | None = None) -> None:
    """Insert a submitted ticket and move it as the engine does, each step at its time (seconds before NOW)."""
    rows.insert(conn, dataclasses.replace(row, updated_at=row.submitted_at))
    rows.move(conn, row.id, "submitted", "approved", now=iso(approved), approved_at=iso(approved), approved_by="approver")
    if provisioned is None and active is None:
        return
    rows.move(conn, row.id, "approved", "provisioning", now=iso(started or approved), provision_started_at=iso(started) if started else None)
    if configured is not None and provisioned is not None:
        rows.move(conn, row.id, "provisioning", "configuring", now=iso(provisioned), provisioned_at=iso(provisioned))
        rows.move(conn, row.id, "configuring", "active", now=iso(configured), active_at=iso(configured))
    else:
        done = iso(provisioned if provisioned is not None else active or 0)
        rows.move(conn, row.id, "provisioning", "active", now=done, active_at=done,
                  **({"provisioned_at": done} if provisioned is not None else {}))
    if retired is not None:
        rows.move(conn, row.id, "active", "retiring", now=iso(retired))
        rows.move(conn, row.id, "retiring", "retired", now=iso(retired))


def registry_for(store: Store, state: DesiredState, *, leader: bool | None = True) -> CollectorRegistry:
    """A fresh registry with the govcloud collector, its clock at NOW."""
    registry = CollectorRegistry()
    GovcloudCollector(store, lambda: state, settings=ExporterSettings(), is_leader=(lambda: leader) if leader is not None else None,
                      lease_warning_days=14, clock=lambda: NOW, registry=registry)
    return registry


TENANTS = ("gd-gat", "gd-zf", "gd-mzt", "gd-czt", "gd-a")
CENTRES = ("gz-main", "gz-backup", "sg-dr")
STATUSES = ("ACTIVE", "SHUTOFF", "ERROR", "BUILD")


def random_write(conn: sa.Connection, rng: random.Random, n: int) -> None:
    """One random write to ``vms`` or ``ledger`` of the kinds the engine, reconciler and failover make (the
    same on SQLite and PostgreSQL for the same ``rng`` and store)."""
    now = NOW.isoformat()
    existing = rows.vms_of(conn)
    lines = conn.execute(sa.text("SELECT id, ticket FROM ledger ORDER BY id")).all()
    kind = rng.choice(["insert", "insert", "status", "move", "tenant", "address", "delete", "bulk",
                       "reserve", "commit", "release", "relocate", "edit", "kind"])
    if kind == "insert" or (not existing and kind in ("status", "move", "tenant", "address", "delete")):
        rows.upsert_vm(conn, vm(f"t-r{n}", rng.randint(1, 3), tenant=rng.choice(TENANTS), centre=rng.choice(CENTRES),
                                status=rng.choice(STATUSES)))
    elif kind in ("status", "move", "tenant", "address", "delete"):
        one = rng.choice(existing)
        where = "ticket = :t AND idx = :i"
        args = {"t": one.ticket, "i": one.idx}
        if kind == "delete":
            rows.delete_vm(conn, one.ticket, one.idx)
        else:
            column, value = {"status": ("status", rng.choice(STATUSES)), "move": ("centre", rng.choice(CENTRES)),
                             "tenant": ("tenant", rng.choice(TENANTS)), "address": ("address", f"10.0.0.{n}")}[kind]
            conn.execute(sa.text(f"UPDATE vms SET {column} = :v WHERE {where}"), {**args, "v": value})
    elif kind == "bulk":
        conn.execute(sa.text("UPDATE vms SET status = :s WHERE centre = :c"), {"s": rng.choice(STATUSES), "c": rng.choice(CENTRES)})
    elif kind == "reserve" or not lines:
        ticket, tenant = f"t-l{n}", rng.choice(TENANTS)
        size = Resources(rng.randint(0, 3), rng.randint(0, 8), 1024 * rng.randint(0, 8), 10 * rng.randint(0, 8))
        rows.reserve(conn, [LedgerLine(ticket, tenant, "s", "gd-prov", rng.choice(CENTRES), size, "reserved", rng.choice(["vm", "vm", "dr"]))])
    elif kind == "commit":
        rows.commit(conn, rng.choice(lines).ticket, now=now)
    elif kind == "release":
        rows.release(conn, rng.choice(lines).ticket, now=now)
    elif kind == "relocate":
        source, target = rng.sample(CENTRES, 2)
        ticket = rng.choice(lines).ticket
        conn.execute(sa.text("UPDATE ledger SET centre = :s WHERE ticket = :t AND kind = 'vm'"), {"s": source, "t": ticket})
        rows.move_allocation(conn, ticket, "gd-prov", source, target, Resources(1, 2, 1024, 10), now=now)
    elif kind == "edit":
        conn.execute(sa.text("UPDATE ledger SET vcpus = vcpus + :d, tenant = :tenant WHERE id = :id"),
                     {"d": rng.randint(-2, 2), "tenant": rng.choice(TENANTS), "id": rng.choice(lines).id})
    else:
        conn.execute(sa.text("UPDATE ledger SET kind = CASE kind WHEN 'vm' THEN 'dr' ELSE 'vm' END WHERE id = :id"),
                     {"id": rng.choice(lines).id})
