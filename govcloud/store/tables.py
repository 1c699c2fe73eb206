"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/versions`` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("ts", sa.String(32), nullable=False, doc="UTC time, ISO 8601 with microseconds"),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(256), nullable=False),
    sa.Column("details", sa.Text(), nullable=False, doc="canonical JSON"),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, doc="always 1: one row, locked by every append"),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
