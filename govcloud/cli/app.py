"""The root click group and the context every command receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from govcloud import __version__

if TYPE_CHECKING:
    from govcloud.settings import Settings


@dataclass
class AppContext:
    """What every command needs: the settings built from flags and environment."""

    settings: Settings


pass_app = click.make_pass_decorator(AppContext)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--root", envvar="GOVCLOUD_ROOT", metavar="DIR",
              help="Directory holding inventory/, tenants.yaml, quotas/ (default: the current directory).")
@click.option("--db", envvar="GOVCLOUD_DB", metavar="URL|PATH",
              help="State store: SQLite path or SQLAlchemy URL (default: ~/.local/state/govcloud/govcloud.db).")
@click.option("--as", "user", envvar="GOVCLOUD_USER", metavar="USER", help="Acting user, checked against users.yaml.")
@click.version_option(__version__, prog_name="govcloud")
@click.pass_context
def cli(ctx: click.Context, root: str | None, db: str | None, user: str | None) -> None:
    """govcloud: tickets become VMs across the province's 1+N+M clouds.

    Exit codes: 0 ok, 1 failure, 2 bad input (nothing was changed).
    """
    from govcloud.errors import InputError
    from govcloud.settings import Settings  # not for --help, which click answers before this runs

    try:
        settings = Settings.from_env()
    except ValueError as exc:  # a malformed GOVCLOUD_* variable is bad input, not an internal error
        raise InputError(f"environment: {exc}") from exc
    ctx.obj = AppContext(settings=settings.with_overrides(root=root, db=db, user=user))

