"""``govcloud audit list|verify`` and ``govcloud db upgrade|status``: the state store."""

from __future__ import annotations

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option
from govcloud.errors import AuditChainBroken

COMMANDS: list[click.Command] = []


def open_store(app: AppContext):  # type: ignore[no-untyped-def]
    """Open (and migrate) the store named by --db / GOVCLOUD_DB; imported lazily to keep --help fast."""
    from govcloud.store import Store

    return Store.for_settings(app.settings)


@click.group()
def audit() -> None:
    """The append-only, hash-chained audit trail."""


@audit.command("list")
@click.option("--subject", help="Only records about this subject (e.g. ticket:t-2026-0001).")
@click.option("--actor", help="Only records by this user.")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Newest N records.")
@output_option
@pass_app
def audit_list(app: AppContext, subject: str | None, actor: str | None, limit: int, fmt: str) -> None:
    """Show audit records, oldest first (a requester: only those about its tenants, and its inbox)."""
    from govcloud.engine import reads
    from govcloud.engine.context import build

    records = reads.audit_records(build(app.settings, create_store=False), subject=subject, actor=actor, limit=limit)
    emit([r.as_dict() for r in records], fmt, columns=["seq", "ts", "actor", "action", "subject", "details"],
         title=f"{len(records)} audit record(s)", empty="no audit records")


@audit.command("verify")
@pass_app
def audit_verify(app: AppContext) -> None:
    """Recompute the hash chain (HMACs under the audit key) and compare it with the anchor file; exit 1 and
    name each broken record if anything was edited, re-hashed or deleted."""
    store = open_store(app)
    count, problems = store.audit.verify()
    if problems:
        raise AuditChainBroken(problems)
    anchor = store.audit.anchor()
    click.echo(f"ok: {count} audit record(s), chain intact"
               + (f"; reaches record {anchor.seq} anchored in {app.settings.audit_anchor_file}" if anchor else
                  f"; no anchor for this store in {app.settings.audit_anchor_file} yet"))


@click.group()
def db() -> None:
    """The state store's schema."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Apply pending migrations (every command also does this on open). Needs the admin role."""
    from govcloud.model.access import acting_user, require
    from govcloud.model.state import load_state

    require(acting_user(load_state(app.settings.data).users, app.settings.user), "db-upgrade")
    store = open_store(app)
    click.echo(f"{store.describe()}: schema at revision {store.current_revision()}")


@db.command("status")
@pass_app
def db_status(app: AppContext) -> None:
    """Show the database URL and its schema revision."""
    from govcloud.store import Store

    store = Store.for_settings(app.settings, migrate=False)
    current, head = store.current_revision(), store.head_revision()
    click.echo(f"{store.describe()}: revision {current or '(empty)'}, newest known {head}"
               + ("" if current == head else " — run `govcloud db upgrade`"))


COMMANDS.extend([audit, db])
