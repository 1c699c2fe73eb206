"""``govcloud devcloud install|up|down|status|reset|fail-centre|restore-centre|host``: the loopback OpenStack.

The only module that imports ``govcloud.devcloud``. Commands resolve the state directory
(``$GOVCLOUD_DEVCLOUD_DIR`` or ``<state_dir>/devcloud``) and the profile (``--profile``, default
``<root>/inventory/devcloud.yaml``), call the package and print progress; errors are
``GovcloudError`` subclasses, so the user sees a message and an exit code, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option
from govcloud.errors import InputError

if TYPE_CHECKING:  # the devcloud package (urllib, http.client, PyYAML) is imported by its commands only
    from govcloud.devcloud.layout import Layout
    from govcloud.devcloud.profile import Profile

COMMANDS: list[click.Command] = []


def _layout() -> Layout:
    from govcloud.devcloud.layout import Layout, devcloud_dir

    return Layout(devcloud_dir(os.environ))


def _report(message: str) -> None:
    click.echo(message, err=True)


def _profile(app: AppContext, path: str | None) -> Profile:
    from govcloud.devcloud.profile import load_profile

    return load_profile(Path(path) if path else app.settings.data.resolve(Path("inventory/devcloud.yaml")))


def _running_profile(layout: Layout) -> Profile:
    from govcloud.devcloud.lifecycle import stored_profile

    profile = stored_profile(layout)
    if profile is None:
        raise InputError(f"devcloud in {layout.root} was never started: run `govcloud devcloud up`")
    return profile


@click.group()
def devcloud() -> None:
    """A real OpenStack on 127.0.0.1 (two regions, three centres) for tests and demos.

    State lives in $GOVCLOUD_DEVCLOUD_DIR (default: <state dir>/devcloud); point
    OS_CLIENT_CONFIG_FILE at its clouds.yaml (clouds devcloud-admin, devcloud-monitor).
    """


@devcloud.command("install")
def install_cmd() -> None:
    """Install Debian packages and the services' own virtualenv (idempotent: skips what is there)."""
    from govcloud.devcloud.install import install

    layout = _layout()
    seconds = install(layout, _report)
    click.echo(f"devcloud installed in {layout.root} ({seconds:.0f} s)")


@devcloud.command("up")
@click.option("--profile", "profile_path", metavar="FILE", help="Devcloud profile (default: inventory/devcloud.yaml).")
@pass_app
def up_cmd(app: AppContext, profile_path: str | None) -> None:
    """Start everything from a clean or stopped state. Exit 2 when already up or a port is taken."""
    from govcloud.devcloud.lifecycle import up

    layout = _layout()
    seconds = up(_profile(app, profile_path), layout, _report)
    click.echo(f"devcloud up in {seconds:.0f} s; export OS_CLIENT_CONFIG_FILE={layout.clouds_yaml}")


@devcloud.command("down")
def down_cmd() -> None:
    """Stop every process the devcloud started (by recorded pid / process group only)."""
    from govcloud.devcloud.lifecycle import down

    seconds = down(_layout(), _report)
    click.echo(f"devcloud down in {seconds:.0f} s")


@devcloud.command("status")
@output_option
def status_cmd(fmt: str) -> None:
    """Each service and each compute host with its region, centre and nova state."""
    from govcloud.devcloud.centres import status

    rows = [row.as_dict() for row in status(_layout())]
    emit(rows, fmt, columns=["name", "kind", "region", "centre", "pid", "running", "nova_state"], title="devcloud")


@devcloud.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset_cmd(yes: bool) -> None:
    """Wipe the cloud's data (databases, images, logs, secrets); the installed venv is kept."""
    from govcloud.devcloud.lifecycle import reset

    layout = _layout()
    if not yes:
        click.confirm(f"wipe all devcloud data in {layout.root}?", abort=True)
    reset(layout, _report)


@devcloud.command("fail-centre")
@click.argument("centre")
@click.option("--wait", "wait_s", type=float, default=0, show_default=True, metavar="S",
              help="Wait up to S seconds until nova reports the centre's computes down.")
def fail_centre_cmd(centre: str, wait_s: float) -> None:
    """SIGKILL every nova-compute of CENTRE, as a power loss would."""
    from govcloud.devcloud.centres import fail_centre, find_centre, wait_nova_state

    layout = _layout()
    profile = _running_profile(layout)
    hosts = list(find_centre(profile, centre)[1].hosts)
    killed = fail_centre(layout, centre)
    click.echo(f"centre {centre}: killed nova-compute on {', '.join(killed) or 'nothing (not running)'}")
    if wait_s > 0:
        wait_nova_state(profile, layout, hosts, "down", timeout=wait_s)
        click.echo(f"centre {centre}: nova reports {', '.join(hosts)} down")


@devcloud.command("restore-centre")
@click.argument("centre")
@click.option("--wait", "wait_s", type=float, default=90, show_default=True, metavar="S",
              help="Wait up to S seconds until nova reports them up (0: do not wait).")
def restore_centre_cmd(centre: str, wait_s: float) -> None:
    """Start CENTRE's nova-compute services again (same host ids, servers kept)."""
    from govcloud.devcloud.centres import restore_centre

    started = restore_centre(_layout(), centre, wait=wait_s)
    click.echo(f"centre {centre}: started nova-compute on {', '.join(started) or 'nothing (already running)'}")


@devcloud.command("host")
@click.argument("action", type=click.Choice(["off", "on", "status"]))
@click.argument("host")
def host_cmd(action: str, host: str) -> None:
    """Power one compute HOST off (SIGKILL its nova-compute) or on, or print its power (on/off).

    The devcloud's fence agent: failover's 'devcloud' fence method and the tests' simulated BMCs run it,
    as pacemaker runs a fence_* agent. 'status' prints 'on' or 'off'; every action exits 0 when done."""
    from govcloud.devcloud.centres import host_power, set_host_power

    layout = _layout()
    if action == "status":
        click.echo(host_power(layout, host))
        return
    changed = set_host_power(layout, host, action == "on")
    click.echo(f"host {host}: {'powered ' + action if changed else 'already ' + action}", err=True)
    click.echo(host_power(layout, host))


COMMANDS.append(devcloud)
