"""``govcloud audit list|verify`` and ``govcloud db upgrade|status``: the state store."""

from __future__ import annotations

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option

COMMANDS: list[click.Command] = []


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
    from govcloud.engine import store_admin

    check = store_admin.verify_audit(app.settings)
    click.echo(f"ok: {check.records} audit record(s), chain intact"
               + (f"; reaches record {check.anchored_seq} anchored in {app.settings.audit_anchor_file}" if check.anchored_seq is not None
                  else f"; no anchor for this store in {app.settings.audit_anchor_file} yet"))


@click.group()
def db() -> None:
    """The state store's schema."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Apply pending migrations (every command also does this on open). Needs the admin role."""
    from govcloud.engine import store_admin

    schema = store_admin.upgrade(app.settings)
    click.echo(f"{schema.store}: schema at revision {schema.current}")


@db.command("status")
@pass_app
def db_status(app: AppContext) -> None:
    """Show the database URL and its schema revision."""
    from govcloud.engine import store_admin

    schema = store_admin.schema(app.settings)
    click.echo(f"{schema.store}: revision {schema.current or '(empty)'}, newest known {schema.head}"
               + ("" if schema.current == schema.head else " — run `govcloud db upgrade`"))


COMMANDS.extend([audit, db])
