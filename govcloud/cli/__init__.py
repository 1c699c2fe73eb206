"""The ``govcloud`` command line: the only importer of click (and, in ``output.py``, of rich).

Commands parse flags, call the same functions the daemon calls, and format the result. Exit codes
(documented in the README): 0 ok, 1 failure, 2 bad input (``InputError``, click usage errors).
Heavy libraries (openstacksdk, ansible-runner, SQLAlchemy, and also rich, PyYAML, the model and the
devcloud package) are imported inside the commands that need them, so that ``govcloud --help`` and
``govcloud version`` load click and the command modules only (``tests/unit/test_cli_startup.py``).
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from govcloud.cli import audit_cmd, daemon_cmd, data_cmd, devcloud_cmd, dr_cmd, drill_cmd, failover_cmd, fence_cmd, report_cmd, ticket_cmd
from govcloud.cli.app import cli
from govcloud.errors import GovcloudError

__all__ = ["cli", "main"]

for _module in (data_cmd, ticket_cmd, audit_cmd, daemon_cmd, failover_cmd, dr_cmd, drill_cmd, report_cmd, devcloud_cmd):
    for _command in _module.COMMANDS:
        cli.add_command(_command)
for _group, _command in ticket_cmd.EXTRA + fence_cmd.EXTRA:
    group = cli.commands[_group]
    assert isinstance(group, click.Group)
    group.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and turn every outcome into an exit code; never show a traceback for known errors."""
    try:
        code = cli.main(args=argv, prog_name="govcloud", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError | click.BadParameter | click.FileError) else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except GovcloudError as exc:
        from govcloud.cli.output import print_error

        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: report, don't dump
        if os.environ.get("GOVCLOUD_DEBUG"):
            traceback.print_exc()
        click.echo(f"internal error: {type(exc).__name__}: {exc} (set GOVCLOUD_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)
    # without standalone mode click *returns* the code of an ``Exit`` raised inside a command
    sys.exit(code if isinstance(code, int) else 0)
