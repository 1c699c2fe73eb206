"""Usage history for the assessment reports (issue 15): change points of every tenant × system × cloud ×
centre allocation (``vm``), failover room (``dr``) and quota (``quota``), and the runs that sampled them.

``usage_points`` is append-only: a row says "from ``at`` on, the group holds these amounts". The quota
ledger writes one at every change of committed allocation (store/tickets.py), a quota change ticket at its
approval, and the daemon's daily sample (``govcloud report sample``) writes one for every group whose
recorded value no longer matches the store or the quota files. docs/reports.md says how a report
pro-rates from it.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "usage_points",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("system", sa.String(63), nullable=False),
        sa.Column("cloud", sa.String(63), nullable=False),
        sa.Column("centre", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("instances", BIG, nullable=False),
        sa.Column("vcpus", BIG, nullable=False),
        sa.Column("ram_mb", BIG, nullable=False),
        sa.Column("disk_gb", BIG, nullable=False),
    )
    op.create_index("usage_points_by_group", "usage_points", ["tenant", "system", "cloud", "centre", "kind", "at"])
    op.create_index("usage_points_by_time", "usage_points", ["at"])
    op.create_table(
        "usage_samples",
        sa.Column("at", sa.String(32), primary_key=True),
        sa.Column("groups", sa.Integer(), nullable=False),
        sa.Column("written", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("usage_samples")
    op.drop_index("usage_points_by_time", "usage_points")
    op.drop_index("usage_points_by_group", "usage_points")
    op.drop_table("usage_points")
