"""``govcloud devcloud …``: the embedded loopback OpenStack (see govcloud/devcloud/)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
