"""Replicas of ``dr`` VMs in the DR region (issue 14): one row per snapshot taken and copied.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("ticket", sa.String(63), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("vm", sa.String(255), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("system", sa.String(63), nullable=False),
        sa.Column("cloud", sa.String(63), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("source_region", sa.String(63), nullable=False),
        sa.Column("source_image", sa.String(64)),
        sa.Column("dr_region", sa.String(63), nullable=False),
        sa.Column("dr_image", sa.String(64)),
        sa.Column("taken_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32)),
        sa.Column("size", BIG),
        sa.Column("checksum", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
    )
    op.create_index("replicas_by_vm", "replicas", ["ticket", "idx", "state", "taken_at"])


def downgrade() -> None:
    op.drop_index("replicas_by_vm", table_name="replicas")
    op.drop_table("replicas")
