"""PostgreSQL: the table versions (0009) and the exporter's groups (0013), kept at commit time; on both
databases a version of the VM rows' places (``vm_places``).

On SQLite one writer at a time holds the database, so 0009 and 0013 count each row written as it is
written. PostgreSQL runs writers concurrently (READ COMMITTED), which makes that unsound and slow:

* a counter bumped at write time is committed out of order (T1 takes seq 7, T2 seq 8, T2 commits first: a
  scrape that saw 8 would never read 7's groups), unless its row lock is held from the first write to the
  commit — which serialises every writer of the table for the whole of its transaction and deadlocks two
  writers that touch ``vms`` and ``ledger`` in opposite orders;
* a group row updated at write time is locked until commit, and two transactions moving VMs between the
  same groups in opposite directions deadlock.

So here each write only *stages* what it changed, and all of it is applied once per transaction, at commit:

* statement-level triggers ``<table>_version_<event>`` (transition tables: one INSERT per statement, not per
  row) add the statement's group deltas to ``pending_vm_groups`` / ``pending_ledger_tenant_groups`` /
  ``pending_ledger_centre_groups`` and note the table in ``pending_tables``. These are plain inserts of rows no other
  transaction can see (they are deleted before the commit): no lock is taken, no writer waits for another;
* a deferred constraint trigger on ``pending_tables`` (``pending_tables_apply``) runs at commit: per table
  noted, in name order, it bumps ``table_versions`` (new random version, ``seq + 1``: its row lock is held
  only from here to the end of the commit), logs the pair in ``version_log`` (the same ring as 0013), adds the
  summed deltas to the group tables in key order stamped with the new ``seq``, and empties the staging.

Every transaction takes these locks in one order (``table_versions`` ledger, the ledger's groups, tickets,
vm_places, vms, the VMs' groups, each table's ``version_log`` slot with it), and only while committing, when
it waits for nothing else: no deadlock. A table's ``seq`` is bumped under its row lock, held until the
commit is visible, so the next writer of that table reads the committed value: ``seq`` is committed in
order, and a scrape (one REPEATABLE READ snapshot) that sees ``seq`` S sees every group stamped up to S and
none after — the exporter's reader is the same on both backends (``store/aggregates.py``). Writers of one
table wait for each other only during their commits (one WAL flush), not during their transactions.

A fourth version, ``vm_places`` (no table of its own), moves only when VMs come or go or one changes its
key, name, tenant, system, place or size (``PLACED``): the exporter's reads of DR VMs and of VMs away from
home read nothing else of the VM rows, and the reconciler's writes of status, address and fault (the usual
change) leave it alone, so those reads are not repeated after them (``aggregates.places``). SQLite gets it
too: 0013's ``vms`` row triggers are recreated with one more statement.

One ``seq`` per transaction and table (SQLite counts rows). A writer at REPEATABLE READ or SERIALIZABLE
that commits after another writer of the same table fails with a serialization error (the version row
changed under it): govcloud's writers use READ COMMITTED. ``SET CONSTRAINTS ... IMMEDIATE`` would apply the
staging early and hold the locks longer (still correct); govcloud never does it.

The group columns use the C collation, so that the groups come back in the order Python sorts the same
strings (the exporter patches its rows with ``bisect``).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

LOG_LENGTH = 1024
"""Transactions per table kept in ``version_log`` (0013's ring; one slot per transaction here)."""

SUMS = ("instances", "vcpus", "ram_mb", "disk_gb")
VM_KEYS = ("cloud", "centre", "tenant", "status")
TENANT_KEYS = ("tenant", "cloud", "state")
CENTRE_KEYS = ("cloud", "centre", "kind", "state")
TABLES = ("vms", "ledger", "tickets")
GROUPS = {"vm_groups": ("pending_vm_groups", VM_KEYS, ("n",)),
          "ledger_tenant_groups": ("pending_ledger_tenant_groups", TENANT_KEYS, ("lines", *SUMS)),
          "ledger_centre_groups": ("pending_ledger_centre_groups", CENTRE_KEYS, ("lines", *SUMS))}
"""Group table → its staging table, key columns and counted columns."""
STAGING = ("pending_tables", *(staging for staging, _, _ in GROUPS.values()))


def _columns(keys: tuple[str, ...], counts: tuple[str, ...]) -> str:
    return ", ".join([*(f'{key} VARCHAR(63) COLLATE "C" NOT NULL' for key in keys), *(f"{c} BIGINT NOT NULL" for c in counts)])


def _create_tables() -> None:
    op.execute("CREATE TABLE table_versions (name VARCHAR(32) PRIMARY KEY, version BIGINT NOT NULL, seq BIGINT NOT NULL DEFAULT 0)")
    op.execute("CREATE TABLE version_log (name VARCHAR(32) NOT NULL, slot INTEGER NOT NULL, seq BIGINT NOT NULL,"
               " version BIGINT NOT NULL, PRIMARY KEY (name, slot))")
    for table in (*TABLES, "vm_places"):
        op.execute(f"INSERT INTO table_versions (name, version) VALUES ('{table}', {_RANDOM})")
    op.execute("INSERT INTO version_log (name, slot, seq, version) SELECT name, 0, seq, version FROM table_versions")
    for group, (staging, keys, counts) in GROUPS.items():
        op.execute(f"CREATE TABLE {group} ({_columns(keys, counts)}, seq BIGINT NOT NULL, PRIMARY KEY ({', '.join(keys)}))")
        op.execute(f"CREATE INDEX {group}_by_seq ON {group} (seq)")
        # staging: rows live only inside the transaction that wrote them (never committed), so not logged
        op.execute(f"CREATE UNLOGGED TABLE {staging} ({_columns(keys, counts)})")
    # keyed by the transaction: two writers noting the same table never wait on each other's uncommitted key
    op.execute("CREATE UNLOGGED TABLE pending_tables (xid xid8 NOT NULL, name VARCHAR(32) NOT NULL, PRIMARY KEY (xid, name))")


def _fill() -> None:
    """The groups of what is stored now (stamped 0, the seq the versions start at)."""
    totals = ", ".join(f"sum({column})" for column in SUMS)
    op.execute("INSERT INTO vm_groups SELECT cloud, centre, tenant, status, count(*), 0 FROM vms GROUP BY cloud, centre, tenant, status")
    op.execute(f"INSERT INTO ledger_tenant_groups SELECT tenant, cloud, state, count(*), {totals}, 0 FROM ledger"
               " WHERE kind = 'vm' GROUP BY tenant, cloud, state")
    op.execute(f"INSERT INTO ledger_centre_groups SELECT cloud, centre, kind, state, count(*), {totals}, 0 FROM ledger"
               " GROUP BY cloud, centre, kind, state")


_RANDOM = "(floor(random() * 9.2e18) - 4.6e18)::bigint"
"""A random BIGINT (0009's versions are random: a restored database brings back the versions it had)."""


def _stage(staging: str, keys: tuple[str, ...], counts: tuple[str, ...], where: str = "true") -> str:
    """Stage the statement's deltas of one group table: +1 per new row, -1 per old one (transition tables
    ``new_rows`` / ``old_rows``; only the ones this event has are named), summed per group, groups that did
    not change left out."""
    key_list = ", ".join(keys)

    def side(rows: str, sign: str) -> str:
        values = ", ".join(f"{sign}{c} AS {c}" if c not in ("n", "lines") else f"{sign}1 AS {c}" for c in counts)
        return f"SELECT {key_list}, {values} FROM {rows} WHERE {where}"

    sums = ", ".join(f"sum({c})" for c in counts)
    moved = " OR ".join(f"sum({c}) <> 0" for c in counts)
    bodies = {}
    for event, parts in (("INSERT", (side("new_rows", ""),)), ("DELETE", (side("old_rows", "-"),)),
                         ("UPDATE", (side("new_rows", ""), side("old_rows", "-")))):
        union = " UNION ALL ".join(parts)
        bodies[event] = (f"INSERT INTO {staging} ({key_list}, {', '.join(counts)}) SELECT {key_list}, {sums} FROM ({union}) AS d"
                         f" GROUP BY {key_list} HAVING {moved};")
    return "\n".join(f"    IF TG_OP = '{event}' THEN {body} END IF;" for event, body in bodies.items())


PLACED = ("name", "tenant", "system", "cloud", "centre", "vcpus", "ram_mb", "disk_gb")
"""The VM columns besides the key that the readers keyed on ``vm_places`` read (``readiness.dr_vm_rows``,
``runs.away_from_home``): a write that changes none of them (status, address, server id, fault, time: what
the reconciler writes all day) leaves that version alone."""
_PLACED_ROWS = ", ".join(("ticket", "idx", *PLACED))
_NOTE_PLACES = "INSERT INTO pending_tables (xid, name) VALUES (pg_current_xact_id(), 'vm_places') ON CONFLICT DO NOTHING;"
_PLACES = (f"    IF TG_OP <> 'UPDATE' THEN {_NOTE_PLACES}\n"
           f"    ELSIF EXISTS (SELECT {_PLACED_ROWS} FROM new_rows EXCEPT SELECT {_PLACED_ROWS} FROM old_rows) THEN {_NOTE_PLACES}\n"
           "    END IF;")
"""Note ``vm_places`` (a version without a table of its own) when VMs came or went, or an UPDATE left a row
whose key and ``PLACED`` columns were not those of a row before it (a set difference, hashed or sorted: a
join of the two transition tables, which have no statistics, was planned as a nested loop — 100k rows
updated took minutes)."""


def _stage_function(table: str) -> str:
    """The statement trigger function of ``table``: stage its group deltas, note the table (at most once per
    transaction), nothing when the statement changed no row."""
    stages = ""
    if table == "vms":
        stages = _stage("pending_vm_groups", VM_KEYS, ("n",)) + "\n" + _PLACES
    elif table == "ledger":
        stages = (_stage("pending_ledger_tenant_groups", TENANT_KEYS, ("lines", *SUMS), "kind = 'vm'") + "\n"
                  + _stage("pending_ledger_centre_groups", CENTRE_KEYS, ("lines", *SUMS)))
    # each transition table is named only in a branch of the events that have it (plpgsql plans lazily)
    return f"""CREATE FUNCTION {table}_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN RETURN NULL; END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
{stages}
    INSERT INTO pending_tables (xid, name) VALUES (pg_current_xact_id(), '{table}') ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$"""


def _apply_group(group: str) -> str:
    """Add one staging table's summed deltas to its group table, in key order, stamped with ``s``."""
    staging, keys, counts = GROUPS[group]
    key_list = ", ".join(keys)
    sums = ", ".join(f"sum({c})" for c in counts)
    moved = " OR ".join(f"sum({c}) <> 0" for c in counts)
    updates = ", ".join(f"{c} = {group}.{c} + excluded.{c}" for c in counts)
    return (f"INSERT INTO {group} ({key_list}, {', '.join(counts)}, seq) SELECT {key_list}, {sums}, s FROM {staging}"
            f" GROUP BY {key_list} HAVING {moved} ORDER BY {key_list} ON CONFLICT ({key_list}) DO UPDATE SET {updates}, seq = excluded.seq;"
            f" DELETE FROM {staging};")


APPLY = f"""CREATE FUNCTION apply_pending_versions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t text;
    s bigint;
BEGIN
    -- the first firing in a transaction applies everything it staged; the later ones find nothing
    FOR t IN SELECT name FROM pending_tables ORDER BY name LOOP
        UPDATE table_versions SET version = {_RANDOM}, seq = seq + 1 WHERE name = t RETURNING seq INTO s;
        INSERT INTO version_log (name, slot, seq, version) SELECT name, seq % {LOG_LENGTH}, seq, version FROM table_versions
            WHERE name = t ON CONFLICT (name, slot) DO UPDATE SET seq = excluded.seq, version = excluded.version;
        IF t = 'ledger' THEN
            {_apply_group("ledger_centre_groups")}
            {_apply_group("ledger_tenant_groups")}
        ELSIF t = 'vms' THEN
            {_apply_group("vm_groups")}
        END IF;
    END LOOP;
    DELETE FROM pending_tables;
    RETURN NULL;
END $$"""


def _sqlite_places(upgrade: bool) -> None:
    """SQLite: the same ``vm_places`` version, bumped by 0013's ``vms`` row triggers (recreated with one more
    statement: every insert and delete, an update only when a column of ``PLACED`` or the key changed)."""
    groups = importlib.import_module("govcloud.store.migrations.versions.0013_aggregate_groups")
    moved = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in ("ticket", "idx", *PLACED))
    bump = "UPDATE table_versions SET version = random(), seq = seq + 1 WHERE name = 'vm_places'"
    extra = {"insert": f" {bump};", "delete": f" {bump};", "update": f" {bump} AND ({moved});"}
    if upgrade:
        op.execute("INSERT INTO table_versions (name, version, seq) VALUES ('vm_places', random(), 0)")
    else:
        op.execute("DELETE FROM table_versions WHERE name = 'vm_places'")
    for event in ("insert", "update", "delete"):
        body = groups.BODIES[("vms", event)] + (extra[event] if upgrade else "")
        op.execute(f"DROP TRIGGER IF EXISTS vms_version_{event}")
        op.execute(f"CREATE TRIGGER vms_version_{event} AFTER {event.upper()} ON vms BEGIN {body} END")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_places(upgrade=True)
    if op.get_bind().dialect.name != "postgresql":
        return
    # no writer may commit between the groups' first count and the triggers that keep them
    op.execute("LOCK TABLE vms, ledger, tickets IN SHARE ROW EXCLUSIVE MODE")
    _create_tables()
    _fill()
    op.execute(APPLY)
    op.execute("CREATE CONSTRAINT TRIGGER pending_tables_apply AFTER INSERT ON pending_tables"
               " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION apply_pending_versions()")
    for table in TABLES:
        op.execute(_stage_function(table))
        for event in ("insert", "update", "delete"):
            transition = {"insert": "NEW TABLE AS new_rows", "delete": "OLD TABLE AS old_rows",
                          "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows"}[event]
            op.execute(f"CREATE TRIGGER {table}_version_{event} AFTER {event.upper()} ON {table}"
                       f" REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION {table}_version()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_places(upgrade=False)
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_version_{event} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_version()")
    op.execute("DROP TRIGGER IF EXISTS pending_tables_apply ON pending_tables")
    op.execute("DROP FUNCTION IF EXISTS apply_pending_versions()")
    for name in (*STAGING, *GROUPS, "version_log", "table_versions"):
        op.execute(f"DROP TABLE IF EXISTS {name}")
