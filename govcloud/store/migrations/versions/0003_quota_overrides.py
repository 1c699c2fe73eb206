"""Quota overrides from approved quota-change tickets (on top of quotas/*.yaml).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "quota_overrides",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("cloud", sa.String(63), primary_key=True),
        sa.Column("instances", BIG, nullable=False),
        sa.Column("vcpus", BIG, nullable=False),
        sa.Column("ram_mb", BIG, nullable=False),
        sa.Column("disk_gb", BIG, nullable=False),
        sa.Column("ticket", sa.String(63), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quota_overrides")
