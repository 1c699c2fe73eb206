"""What keeps a scrape cheap at 100k VMs and 10k tenants: ticket latency histograms kept as counters
(``ticket_latency``, observed at each state change instead of recomputed from every ticket at every
scrape), and covering indexes for the exporter's GROUP BYs over ``vms``, ``ledger`` and ``tickets``.

Existing tickets are counted once here, from their timestamps. This migration keeps its own copy of
the bounds and of the counting (``store/latency.py`` at the time of writing): a migration must keep
giving the same result when the live code changes.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import bisect
import datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

HUMAN = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0, 432000.0, 1209600.0)
MACHINE = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0)
SPANS = (  # name, bounds, start column, end column, only tickets that ran Ansible
    ("govcloud_ticket_submit_to_approve_seconds", HUMAN, "submitted_at", "approved_at", False),
    ("govcloud_ticket_approve_to_active_seconds", MACHINE, "approved_at", "active_at", False),
    ("govcloud_ticket_submit_to_active_seconds", HUMAN, "submitted_at", "active_at", False),
    ("govcloud_ticket_provisioning_seconds", MACHINE, "provision_started_at", "provisioned_at", False),
    ("govcloud_ticket_configuration_seconds", MACHINE, "provisioned_at", "active_at", True),
)


def upgrade() -> None:
    latency = op.create_table(
        "ticket_latency",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("bucket", sa.Integer(), primary_key=True),
        sa.Column("count", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
    )
    op.create_index("vms_by_place", "vms", ["cloud", "centre", "tenant", "status"])
    amounts = ["instances", "vcpus", "ram_mb", "disk_gb"]
    op.create_index("ledger_by_tenant", "ledger", ["kind", "tenant", "cloud", "state", *amounts])
    op.create_index("ledger_by_centre", "ledger", ["cloud", "centre", "kind", "state", *amounts])
    op.create_index("tickets_by_state_kind", "tickets", ["state", "kind"])
    assert latency is not None
    _backfill(latency)


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    a, b = datetime.datetime.fromisoformat(start), datetime.datetime.fromisoformat(end)
    a, b = (m if m.tzinfo else m.replace(tzinfo=datetime.UTC) for m in (a, b))
    return max(0.0, round((b - a).total_seconds(), 3))


def _backfill(latency: sa.Table) -> None:
    conn = op.get_bind()
    configured = {r[0] for r in conn.execute(sa.text("SELECT DISTINCT ticket FROM config_results"))}
    rows = conn.execute(sa.text("SELECT id, kind, submitted_at, approved_at, active_at, provision_started_at, provisioned_at "
                                "FROM tickets WHERE mode = 'managed'")).mappings()
    cells: dict[tuple[str, str, int], list[float]] = {}
    for row in rows:
        for name, bounds, start, end, ansible_only in SPANS:
            seconds = None if ansible_only and row["id"] not in configured else _seconds(row[start], row[end])
            if seconds is not None:
                cell = cells.setdefault((name, row["kind"], bisect.bisect_left(bounds, seconds)), [0, 0.0])
                cell[0] += 1
                cell[1] += seconds
    if cells:
        op.bulk_insert(latency, [{"name": n, "kind": k, "bucket": b, "count": int(c), "total": t}
                                 for (n, k, b), (c, t) in sorted(cells.items())])


def downgrade() -> None:
    op.drop_index("tickets_by_state_kind", "tickets")
    op.drop_index("ledger_by_centre", "ledger")
    op.drop_index("ledger_by_tenant", "ledger")
    op.drop_index("vms_by_place", "vms")
    op.drop_table("ticket_latency")
