"""Facts the daemon records: centre health, reconcile cycles and findings, daemon instances (leader),
and ticket timestamps the exporter turns into latency histograms.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("expires", sa.String(10)))
        batch.add_column(sa.Column("provision_started_at", sa.String(32)))
        batch.add_column(sa.Column("provisioned_at", sa.String(32)))
        batch.add_column(sa.Column("lease_warned_at", sa.String(32)))
        batch.add_column(sa.Column("mode", sa.String(16), nullable=False, server_default="managed"))
    op.create_table(
        "centre_health",
        sa.Column("cloud", sa.String(63), primary_key=True),
        sa.Column("centre", sa.String(63), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", sa.String(32), nullable=False),
        sa.Column("checked_at", sa.String(32), nullable=False),
        sa.Column("services_up", sa.Integer(), nullable=False),
        sa.Column("services_total", sa.Integer(), nullable=False),
        sa.Column("api_ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_table(
        "reconcile_status",
        sa.Column("cloud", sa.String(63), primary_key=True),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32)),
        sa.Column("success_at", sa.String(32)),
        sa.Column("duration_s", sa.Float()),
        sa.Column("servers", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("drift", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("orphans", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("unmanaged", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("corrected", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text()),
    )
    op.create_table(
        "findings",
        sa.Column("cloud", sa.String(63), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("server_id", sa.String(64)),
        sa.Column("ticket", sa.String(63)),
        sa.Column("tenant", sa.String(63)),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.String(32), nullable=False),
        sa.Column("last_seen", sa.String(32), nullable=False),
    )
    op.create_table(
        "daemons",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("heartbeat_at", sa.String(32), nullable=False),
        sa.Column("leader", sa.Boolean(), nullable=False),
        sa.Column("stopped_at", sa.String(32)),
    )


def downgrade() -> None:
    op.drop_table("daemons")
    op.drop_table("findings")
    op.drop_table("reconcile_status")
    op.drop_table("centre_health")
    with op.batch_alter_table("tickets") as batch:
        for column in ("mode", "lease_warned_at", "provisioned_at", "provision_started_at", "expires"):
            batch.drop_column(column)
