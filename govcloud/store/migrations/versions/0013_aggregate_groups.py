"""SQLite: the exporter's big aggregates kept by triggers, group by group, with the write that last changed each.

After 0009 an unchanged ``vms`` or ``ledger`` table costs a scrape nothing, but one VM that changes status
made it run the whole GROUP BY again (100k VMs: 30 ms of SQL, and as much again turning tens of thousands
of rows into Python tuples). Here the triggers that set a table's version also keep its groups:

* ``vm_groups``: VMs per cloud, centre, tenant, status (``aggregates.vm_counts``);
* ``ledger_tenant_groups``: the ``vm`` lines' sums per tenant, cloud, state (``aggregates.tenant_usage``);
* ``ledger_centre_groups``: all lines' sums per cloud, centre, kind, state (``aggregates.centre_allocation``).

A group is present while it counts a row (``n``/``lines`` > 0); one that drops to 0 stays as a zero row, so
that a reader that follows changes sees it go. Each write also counts the table's ``seq`` (a new column
of ``table_versions``) and stamps the groups it changes with it: a reader that read a table at ``seq`` S
reads only the groups stamped after S. That is sound only if the database it reads now went through the
state it read then — a store restored from a backup, or another file, may have a larger ``seq`` and
another history. ``version_log`` keeps the (seq, version) of each table's last 1024 writes (a ring: slot
seq mod 1024); the versions are random (0009), so finding the one read at S proves the history passed
through it. Otherwise the
reader reads every group (still much cheaper than the GROUP BY).

The store's connections set ``recursive_triggers`` (db.py), so that the rows an ``INSERT OR REPLACE``
removes leave their groups too.

PostgreSQL gets none of this, for 0009's reason (one counter row serialises every writer): its scrape
runs the GROUP BYs as before.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

LOG_LENGTH = 1024
"""Writes per table kept in ``version_log``: a reader more writes behind reads every group."""

SUMS = ("instances", "vcpus", "ram_mb", "disk_gb")


def _bump(table: str) -> str:
    """Statements that count one write to ``table`` and log its new (seq, version) in the ring of
    ``LOG_LENGTH`` slots (slot = seq modulo the length: one statement, no delete)."""
    return (f"UPDATE table_versions SET version = random(), seq = seq + 1 WHERE name = '{table}';"
            f" INSERT INTO version_log (name, slot, seq, version) SELECT name, seq % {LOG_LENGTH}, seq, version FROM table_versions"
            f" WHERE name = '{table}' ON CONFLICT (name, slot) DO UPDATE SET seq = excluded.seq, version = excluded.version;")


def _seq(table: str) -> str:
    return f"(SELECT seq FROM table_versions WHERE name = '{table}')"


def _vm_add(row: str, step: int) -> str:
    """Add ``step`` (±1) to the group of ``row`` (NEW or OLD)."""
    return (f" INSERT INTO vm_groups (cloud, centre, tenant, status, n, seq)"
            f" VALUES ({row}.cloud, {row}.centre, {row}.tenant, {row}.status, {step}, {_seq('vms')})"
            f" ON CONFLICT (cloud, centre, tenant, status) DO UPDATE SET n = n + excluded.n, seq = excluded.seq;")


def _ledger_add(group: str, keys: tuple[str, ...], row: str, sign: str, where: str = "") -> str:
    """Add (``sign`` '+') or take away ('-') ledger line ``row`` to/from its group in ``group``."""
    values = ", ".join(f"{row}.{key}" for key in keys)
    amounts = ", ".join(f"{sign}{row}.{column}" for column in SUMS)
    updates = ", ".join(f"{column} = {column} + excluded.{column}" for column in ("lines", *SUMS))
    return (f" INSERT INTO {group} ({', '.join(keys)}, lines, {', '.join(SUMS)}, seq)"
            f" SELECT {values}, {sign}1, {amounts}, {_seq('ledger')} WHERE {where or 'true'}"
            f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}, seq = excluded.seq;")


TENANT_KEYS = ("tenant", "cloud", "state")
CENTRE_KEYS = ("cloud", "centre", "kind", "state")
VM_KEYS = ("cloud", "centre", "tenant", "status")


def _ledger(row: str, sign: str) -> str:
    return (_ledger_add("ledger_tenant_groups", TENANT_KEYS, row, sign, f"{row}.kind = 'vm'")
            + _ledger_add("ledger_centre_groups", CENTRE_KEYS, row, sign))


def _moved(keys: tuple[str, ...]) -> str:
    return " OR ".join(f"OLD.{key} IS NOT NEW.{key}" for key in keys)


def _vm_update() -> str:
    """The vms UPDATE trigger's body: the version always; the groups only when the row moved between them."""
    moved = _moved(VM_KEYS)
    take = (f" UPDATE vm_groups SET n = n - 1, seq = {_seq('vms')}"
            f" WHERE ({moved}) AND cloud = OLD.cloud AND centre = OLD.centre AND tenant = OLD.tenant AND status = OLD.status;")
    add = (f" INSERT INTO vm_groups (cloud, centre, tenant, status, n, seq)"
           f" SELECT NEW.cloud, NEW.centre, NEW.tenant, NEW.status, 1, {_seq('vms')} WHERE {moved}"
           f" ON CONFLICT (cloud, centre, tenant, status) DO UPDATE SET n = n + 1, seq = excluded.seq;")
    return _bump("vms") + take + add


BODIES = {
    ("vms", "insert"): _bump("vms") + _vm_add("NEW", 1),
    ("vms", "delete"): _bump("vms") + _vm_add("OLD", -1),
    ("vms", "update"): _vm_update(),
    ("ledger", "insert"): _bump("ledger") + _ledger("NEW", ""),
    ("ledger", "delete"): _bump("ledger") + _ledger("OLD", "-"),
    ("ledger", "update"): _bump("ledger") + _ledger("OLD", "-") + _ledger("NEW", ""),
}
"""Each trigger's body, by table and event; the triggers keep 0009's names (``aggregates.table_versions``
checks that they exist)."""


def _create_groups() -> None:
    op.execute("ALTER TABLE table_versions ADD COLUMN seq BIGINT NOT NULL DEFAULT 0")
    op.execute("CREATE TABLE version_log (name VARCHAR(32) NOT NULL, slot INTEGER NOT NULL, seq BIGINT NOT NULL,"
               " version BIGINT NOT NULL, PRIMARY KEY (name, slot)) WITHOUT ROWID")
    op.execute("INSERT INTO version_log (name, slot, seq, version) SELECT name, 0, seq, version FROM table_versions")
    op.execute("CREATE TABLE vm_groups (cloud VARCHAR(63) NOT NULL, centre VARCHAR(63) NOT NULL, tenant VARCHAR(63) NOT NULL,"
               " status VARCHAR(32) NOT NULL, n INTEGER NOT NULL, seq BIGINT NOT NULL,"
               " PRIMARY KEY (cloud, centre, tenant, status)) WITHOUT ROWID")
    sums = ", ".join(f"{column} BIGINT NOT NULL" for column in SUMS)
    for name, keys in (("ledger_tenant_groups", TENANT_KEYS), ("ledger_centre_groups", CENTRE_KEYS)):
        columns = ", ".join(f"{key} VARCHAR(63) NOT NULL" for key in keys)
        op.execute(f"CREATE TABLE {name} ({columns}, lines INTEGER NOT NULL, {sums}, seq BIGINT NOT NULL,"
                   f" PRIMARY KEY ({', '.join(keys)})) WITHOUT ROWID")
    for name in ("vm_groups", "ledger_tenant_groups", "ledger_centre_groups"):
        op.execute(f"CREATE INDEX {name}_by_seq ON {name} (seq)")
    op.execute("INSERT INTO vm_groups SELECT cloud, centre, tenant, status, count(*), 0 FROM vms GROUP BY cloud, centre, tenant, status")
    totals = ", ".join(f"sum({column})" for column in SUMS)
    op.execute(f"INSERT INTO ledger_tenant_groups SELECT tenant, cloud, state, count(*), {totals}, 0 FROM ledger"
               " WHERE kind = 'vm' GROUP BY tenant, cloud, state")
    op.execute(f"INSERT INTO ledger_centre_groups SELECT cloud, centre, kind, state, count(*), {totals}, 0 FROM ledger"
               " GROUP BY cloud, centre, kind, state")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _create_groups()
    for (table, event), body in BODIES.items():
        op.execute(f"DROP TRIGGER IF EXISTS {table}_version_{event}")
        op.execute(f"CREATE TRIGGER {table}_version_{event} AFTER {event.upper()} ON {table} BEGIN {body} END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, event in BODIES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_version_{event}")
        op.execute(f"CREATE TRIGGER {table}_version_{event} AFTER {event.upper()} ON {table} "
                   f"BEGIN UPDATE table_versions SET version = random() WHERE name = '{table}'; END")
    for name in ("vm_groups", "ledger_tenant_groups", "ledger_centre_groups", "version_log"):
        op.execute(f"DROP TABLE IF EXISTS {name}")
    op.execute("ALTER TABLE table_versions DROP COLUMN seq")
