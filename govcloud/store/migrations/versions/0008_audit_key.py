"""Audit records name the key that wrote them: ``key_id`` (NULL for records hashed before keys existed).

From this revision on, appends hash each record with HMAC-SHA256 under the audit key (``store/seal.py``)
and store the key's id with it. Records already in the chain keep ``key_id`` NULL and go on verifying with
the plain sha256 they were written with; ``audit verify`` accepts such records only as the chain's
beginning, so nobody can turn a keyed record back into a plain one and re-hash it.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("key_id", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("key_id")
