"""SQLite: a version per big table (``vms``, ``ledger``, ``tickets``), changed by triggers at every write.

The exporter's scrape spends nearly all of its store time on three GROUP BYs over these tables (VM counts,
ledger sums, ticket counts and leases); between two scrapes of a running daemon they rarely change (the
heartbeat and health rows do). Each write to one of them sets the table's version to a fresh random number
in the same transaction, so a reader that sees an unchanged version in its snapshot can keep the previous
scrape's aggregate (``store/aggregates.py: table_versions``). Random rather than counted: a database
restored from a backup brings back exactly the versions its data was written with.

PostgreSQL gets no triggers: one counter row per table would make every writer of that table wait for the
others' commits (and two of them, writing the tables in different orders, deadlock). Its scrape reads
everything, as before.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("vms", "ledger", "tickets")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE table_versions (name VARCHAR(32) PRIMARY KEY, version BIGINT NOT NULL)")
    for table in TABLES:
        op.execute(f"INSERT INTO table_versions (name, version) VALUES ('{table}', random())")
        for event in ("INSERT", "UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_version_{event.lower()} AFTER {event} ON {table} "
                       f"BEGIN UPDATE table_versions SET version = random() WHERE name = '{table}'; END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_version_{event}")
    op.execute("DROP TABLE IF EXISTS table_versions")
