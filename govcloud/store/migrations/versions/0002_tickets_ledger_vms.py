"""Tickets, the quota ledger, the VMs of each ticket, and a lock row that serialises approvals.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("tenant", sa.String(63), nullable=False, index=True),
        sa.Column("system", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("content_hash", sa.String(64), nullable=False, index=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_name", sa.String(512), nullable=False),
        sa.Column("submitted_by", sa.String(128), nullable=False),
        sa.Column("submitted_at", sa.String(32), nullable=False),
        sa.Column("approved_by", sa.String(128)),
        sa.Column("approved_at", sa.String(32)),
        sa.Column("approval_rule", sa.String(128)),
        sa.Column("active_at", sa.String(32)),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("plan", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "ledger",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("ticket", sa.String(63), nullable=False, index=True),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("system", sa.String(63), nullable=False),
        sa.Column("cloud", sa.String(63), nullable=False),
        sa.Column("centre", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("instances", BIG, nullable=False),
        sa.Column("vcpus", BIG, nullable=False),
        sa.Column("ram_mb", BIG, nullable=False),
        sa.Column("disk_gb", BIG, nullable=False),
    )
    op.create_table(
        "vms",
        sa.Column("ticket", sa.String(63), primary_key=True),
        sa.Column("idx", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("system", sa.String(63), nullable=False),
        sa.Column("cloud", sa.String(63), nullable=False),
        sa.Column("region", sa.String(63), nullable=False),
        sa.Column("centre", sa.String(63), nullable=False),
        sa.Column("zone", sa.String(63), nullable=False),
        sa.Column("flavor", sa.String(63)),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("ram_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.String(64)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("address", sa.String(64)),
        sa.Column("fault", sa.Text()),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    locks = op.create_table("locks", sa.Column("name", sa.String(32), primary_key=True))
    op.bulk_insert(locks, [{"name": "quota"}])


def downgrade() -> None:
    op.drop_table("locks")
    op.drop_table("vms")
    op.drop_table("ledger")
    op.drop_table("tickets")
