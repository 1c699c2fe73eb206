"""The recovery journal (issue 13): one row per failover / migration / failback run, one per VM it
moves (or holds), one per protection group it recovers.

``recovery_runs.active`` is ``cloud/centre`` while a run is new or running and NULL once it ended; its
unique constraint is what allows one run per centre at a time, whichever process (CLI, daemon) starts it.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recovery_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("cloud", sa.String(63), nullable=False),
        sa.Column("centre", sa.String(63), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(32)),
        sa.Column("finished_at", sa.String(32)),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("heartbeat_at", sa.String(32), nullable=False),
        sa.Column("resumed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("active", sa.String(140), unique=True),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_table(
        "recovery_moves",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("recovery_runs.id"), primary_key=True),
        sa.Column("vm", sa.String(255), primary_key=True),
        sa.Column("ticket", sa.String(63), nullable=False),
        sa.Column("server_id", sa.String(64)),
        sa.Column("group_name", sa.String(63), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("protection", sa.String(8), nullable=False),
        sa.Column("source_centre", sa.String(63), nullable=False),
        sa.Column("source_host", sa.String(255)),
        sa.Column("target_centre", sa.String(63)),
        sa.Column("target_zone", sa.String(63)),
        sa.Column("target_host", sa.String(255)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.String(32)),
        sa.Column("ended_at", sa.String(32)),
        sa.Column("message", sa.Text(), nullable=False, server_default=""),
    )
    op.create_table(
        "recovery_steps",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("recovery_runs.id"), primary_key=True),
        sa.Column("group_name", sa.String(63), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("ended_at", sa.String(32)),
        sa.Column("hook", sa.String(63)),
        sa.Column("hook_result", sa.Text(), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("recovery_steps")
    op.drop_table("recovery_moves")
    op.drop_table("recovery_runs")
