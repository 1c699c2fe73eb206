"""The table of long-running services: name, command line, environment, readiness check, centre.

Built from the profile and the layout only (pure), so ``up``, ``down``, ``status`` and the unit tests
agree on names, pidfiles and logs. PostgreSQL is not in the table: ``pg_ctl`` manages it (``pg.py``).
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from govcloud.devcloud.install import RABBIT_SERVER
from govcloud.devcloud.layout import Layout
from govcloud.devcloud.profile import Profile, Region
from govcloud.devcloud.render import HOST, config_dir

WSGI_APPS = {
    "placement": ("placement.wsgi.api", "OS_PLACEMENT_CONFIG_DIR", 8),
    "glance": ("glance.wsgi.api", "OS_GLANCE_CONFIG_DIR", 4),
    "nova-api": ("nova.wsgi.osapi_compute", "OS_NOVA_CONFIG_DIR", 8),
    "neutron": ("neutron.wsgi.api", "", 4),
}


@dataclass(frozen=True)
class Service:
    """One process group the devcloud starts and later stops by its recorded pid."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None
    """TCP port it answers HTTP on (readiness); None for RPC-only services."""
    kind: str = "api"
    """``infra`` | ``api`` | ``nova`` (conductor/scheduler) | ``compute``."""
    region: str = ""
    centre: str = ""
    logs: tuple[Path, ...] = ()


def base_env(layout: Layout) -> dict[str, str]:
    """Environment of every service: the venv first on PATH, no deprecation noise in the logs.

    ``PYTHONFAULTHANDLER`` makes a service that crashes in C code (SIGSEGV, SIGABRT) write every
    thread's Python stack to its ``.out`` log before it dies, instead of vanishing with nothing said.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{layout.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    env["PYTHONFAULTHANDLER"] = "1"
    return env


def uwsgi(layout: Layout, name: str, port: int, module: str, threads: int, pyargv: str = "") -> tuple[str, ...]:
    """One uWSGI process with threads (memory budget), ``Connection: close`` against pooled resets."""
    argv = [
        str(layout.bin("uwsgi")), "--http-socket", f"{HOST}:{port}", "--module", module, "--callable", "application",
        "--home", str(layout.venv), "--master", "--processes", "1", "--threads", str(threads), "--enable-threads",
        "--thunder-lock", "--die-on-term", "--lazy-apps", "--hook-master-start", "unix_signal:15 gracefully_kill_them_all",
        "--buffer-size", "65535", "--add-header", "Connection: close", "--need-app", "--procname-prefix", f"{name}-",
        "--disable-logging",
    ]
    return tuple(argv + (["--pyargv", pyargv] if pyargv else []))


def epmd_binary() -> str | None:
    """Erlang's port mapper (on PATH or inside the erts directory)."""
    return shutil.which("epmd") or next(iter(sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd"))), None)


def rabbit_env(profile: Profile, layout: Layout) -> dict[str, str]:
    """A private, loopback-only RabbitMQ node whose files all live under the state directory (gotcha 12)."""
    home = layout.data / "rabbitmq"
    return {
        "HOME": str(home),  # .erlang.cookie lives here (rabbitmqctl needs the same)
        "RABBITMQ_NODENAME": "rabbit@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": HOST,
        "RABBITMQ_NODE_PORT": str(profile.rabbit_port),
        "RABBITMQ_DIST_PORT": str(profile.rabbit_dist_port),
        "ERL_EPMD_ADDRESS": HOST,
        "ERL_EPMD_PORT": str(profile.epmd_port),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(layout.logs / "rabbitmq"),
        "RABBITMQ_PID_FILE": str(layout.run / "rabbitmq-beam.pidfile"),
        "RABBITMQ_CONFIG_FILE": str(layout.etc / "rabbitmq" / "rabbitmq"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(layout.etc / "rabbitmq" / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(layout.etc / "rabbitmq" / "rabbitmq-env.conf"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }


def infra_services(profile: Profile, layout: Layout) -> list[Service]:
    """epmd (ours, so ``down`` can stop it by pid) and RabbitMQ."""
    env = {**base_env(layout), **rabbit_env(profile, layout)}
    epmd = epmd_binary() or "epmd"
    rabbit_logs = (layout.out_log("rabbitmq"), layout.logs / "rabbitmq" / "rabbit@localhost.log")
    return [
        Service("epmd", (epmd, "-address", HOST, "-port", str(profile.epmd_port)), env, None, "infra", logs=(layout.out_log("epmd"),)),
        Service("rabbitmq", (str(RABBIT_SERVER),), env, profile.rabbit_port, "infra", logs=rabbit_logs),
    ]


def keystone_service(profile: Profile, layout: Layout) -> Service:
    env = {**base_env(layout), "OS_KEYSTONE_CONFIG_DIR": str(layout.etc / "keystone")}
    argv = uwsgi(layout, "keystone", profile.keystone_port, "keystone.wsgi.api", 8)
    return Service("keystone", argv, env, profile.keystone_port, "api", logs=(layout.out_log("keystone"), layout.service_log("keystone")))


def region_services(profile: Profile, layout: Layout, region: Region) -> list[Service]:
    """APIs, conductor and scheduler of one region (computes: ``compute_services``)."""
    rid = region.id
    out: list[Service] = []
    for app, (module, env_var, threads) in WSGI_APPS.items():
        name = f"{app}-{rid}"
        service = app.removesuffix("-api")
        env = base_env(layout)
        pyargv = ""
        if env_var:
            env[env_var] = str(config_dir(layout, region, service))
        else:  # neutron reads its files from --config-file given through uWSGI's pyargv
            ndir = config_dir(layout, region, "neutron")
            pyargv = f"--config-file {ndir / 'neutron.conf'} --config-file {ndir / 'ml2_conf.ini'}"
        argv = uwsgi(layout, name, region.ports[service], module, threads, pyargv)
        out.append(Service(name, argv, env, region.ports[service], "api", rid, logs=(layout.out_log(name), layout.service_log(name))))
    nova_conf = config_dir(layout, region, "nova") / "nova.conf"
    for binary in ("nova-conductor", "nova-scheduler"):
        name = f"{binary}-{rid}"
        argv = (str(layout.bin(binary)), "--config-file", str(nova_conf), "--log-file", str(layout.service_log(name)))
        out.append(Service(name, argv, base_env(layout), None, "nova", rid, logs=(layout.out_log(name), layout.service_log(name))))
    return out


def compute_services(profile: Profile, layout: Layout) -> list[Service]:
    """One nova-compute per host, each with its own ``host``/``state_path`` (restartable fake driver)."""
    out = []
    for region in profile.regions:
        nova_dir = config_dir(layout, region, "nova")
        for centre in region.centres:
            for host in centre.hosts:
                name = f"nova-compute-{host}"
                argv = (
                    str(layout.bin("nova-compute")), "--config-file", str(nova_dir / "nova.conf"),
                    "--config-file", str(nova_dir / f"compute-{host}.conf"), "--log-file", str(layout.service_log(name)),
                )
                logs = (layout.out_log(name), layout.service_log(name))
                out.append(Service(name, argv, base_env(layout), None, "compute", region.id, centre.id, logs))
    return out


def all_services(profile: Profile, layout: Layout) -> list[Service]:
    """Every service in start order."""
    out = [*infra_services(profile, layout), keystone_service(profile, layout)]
    for region in profile.regions:
        out += region_services(profile, layout, region)
    return out + compute_services(profile, layout)
