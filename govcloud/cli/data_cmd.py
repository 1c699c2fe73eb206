"""``govcloud validate | topology | tenants | quota | version``."""

from __future__ import annotations

import click

from govcloud import __version__

COMMANDS: list[click.Command] = []


@click.command()
def version() -> None:
    """Print govcloud's version."""
    click.echo(__version__)


COMMANDS.append(version)
