"""Saved Terraform plans per ticket x cloud: the sha256 approval binds to, who approved (twice when the
plan replaces or destroys anything), and which apply consumed it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "terraform_plans",
        sa.Column("ticket", sa.String(63), primary_key=True),
        sa.Column("cloud", sa.String(63), primary_key=True),
        sa.Column("tenant", sa.String(63), nullable=False, index=True),
        sa.Column("workspace", sa.String(140), nullable=False),
        sa.Column("run", sa.String(64), nullable=False),
        sa.Column("planfile", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("inputs_sha256", sa.String(64), nullable=False),
        sa.Column("ticket_hash", sa.String(64), nullable=False),
        sa.Column("state_lineage", sa.String(64), nullable=False),
        sa.Column("state_serial", sa.Integer(), nullable=False),
        sa.Column("instances", sa.Text(), nullable=False),
        sa.Column("add", sa.Integer(), nullable=False),
        sa.Column("change", sa.Integer(), nullable=False),
        sa.Column("destroy", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Text(), nullable=False),
        sa.Column("planned_by", sa.String(128), nullable=False),
        sa.Column("planned_at", sa.String(32), nullable=False),
        sa.Column("approved_by", sa.String(128)),
        sa.Column("approved_at", sa.String(32)),
        sa.Column("second_approved_by", sa.String(128)),
        sa.Column("second_approved_at", sa.String(32)),
        sa.Column("applied_run", sa.String(64)),
        sa.Column("applied_at", sa.String(32)),
    )


def downgrade() -> None:
    op.drop_table("terraform_plans")
