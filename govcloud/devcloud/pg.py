"""The devcloud's private PostgreSQL: unix socket under the state directory only, no TCP port.

PostgreSQL refuses to run as root, so as root it runs as user ``postgres`` (``runuser``); that user
must be able to traverse to the state directory, which under ``/root`` it cannot: ``grant_traverse``
adds an ACL entry ``u:postgres:--x`` on each ancestor that lacks it (execute only: no listing).
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

from govcloud.devcloud.errors import DevcloudError, NotInstalled
from govcloud.devcloud.install import pg_bindir, run
from govcloud.devcloud.layout import Layout

PG_USER = "postgres"
SOCKET_MAX = 100  # sun_path is 108 bytes; the socket file name adds ".s.PGSQL.5432"


def _as_pg(argv: Sequence[str]) -> list[str]:
    """Prefix ``runuser`` when we are root (PostgreSQL will not run as root)."""
    return ["runuser", "-u", PG_USER, "--", *argv] if os.geteuid() == 0 else list(argv)


def _bin(name: str) -> str:
    bindir = pg_bindir()
    if bindir is None:
        raise NotInstalled("PostgreSQL binaries not found: run `govcloud devcloud install`")
    return str(bindir / name)


def _can_traverse(path: Path, uid: int, gid: int) -> bool:
    st = path.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def grant_traverse(target: Path, *, ours: Path | None = None) -> None:
    """Let user postgres reach ``target`` by ACL (``--x``) on the ancestors that block it — and on every
    ancestor from ``ours`` down that this account owns even when it does not block yet: govcloud keeps its
    state directory 0700 (govcloud/files.py) and would take the "others may search" route away from a
    PostgreSQL already running below it; an ACL entry survives that tightening."""
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam(PG_USER)
    for parent in reversed(target.parents):
        kept_private = ours is not None and parent.is_relative_to(ours) and parent.stat().st_uid == os.geteuid()
        if _can_traverse(parent, user.pw_uid, user.pw_gid) and not (kept_private and not _named(parent)):
            continue
        if shutil.which("setfacl") is None:
            raise NotInstalled(f"user {PG_USER} cannot reach {parent} and setfacl is missing: apt-get install acl")
        run(["setfacl", "-m", f"u:{PG_USER}:--x", str(parent)], timeout=30, what=f"setfacl on {parent}")


def _named(path: Path) -> bool:
    """Whether ``path``'s access ACL already names user postgres."""
    if shutil.which("getfacl") is None:
        return False  # setfacl is missing too: grant_traverse says to install acl
    done = subprocess.run(["getfacl", "-cp", str(path)], capture_output=True, text=True, check=False)
    return f"user:{PG_USER}:" in done.stdout


def _chown_pg(*paths: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam(PG_USER)
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)


def pg_conf(layout: Layout) -> str:
    """Durability off (a throw-away test cloud), enough connections for ~20 services, socket only."""
    return "\n".join([
        "listen_addresses = ''",
        f"unix_socket_directories = '{layout.pg_socket}'",
        "unix_socket_permissions = 0700",
        "max_connections = 500",
        "shared_buffers = 64MB",
        "fsync = off",
        "synchronous_commit = off",
        "full_page_writes = off",
        "logging_collector = off",
        "",
    ])


def init(layout: Layout) -> bool:
    """initdb once; returns True when a new cluster was created."""
    if (layout.pg_data / "PG_VERSION").exists():
        return False
    if len(str(layout.pg_socket)) > SOCKET_MAX:
        raise DevcloudError(f"state directory path too long for a unix socket: {layout.pg_socket} (use a shorter GOVCLOUD_DEVCLOUD_DIR)")
    grant_traverse(layout.data, ours=layout.root.parent)
    layout.pg_data.mkdir(parents=True, exist_ok=True)
    layout.pg_data.chmod(0o700)
    _chown_pg(layout.pg_data)
    run(_as_pg([_bin("initdb"), "-D", str(layout.pg_data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
        timeout=120, what="initdb")
    with open(layout.pg_data / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(pg_conf(layout))
    return True


def start(layout: Layout) -> None:
    """pg_ctl start (waits until it accepts connections); the pid is in ``postmaster.pid``."""
    grant_traverse(layout.run, ours=layout.root.parent)
    layout.pg_socket.mkdir(parents=True, exist_ok=True)
    log = layout.service_log("postgres")
    log.touch()
    _chown_pg(layout.pg_socket, log)
    run(_as_pg([_bin("pg_ctl"), "-D", str(layout.pg_data), "-l", str(log), "-w", "-t", "60", "start"]),
        timeout=90, what="PostgreSQL start (see " + str(log) + ")")


def pid(layout: Layout) -> int | None:
    """The postmaster's pid from its pid file."""
    try:
        return int((layout.pg_data / "postmaster.pid").read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop(layout: Layout) -> None:
    """pg_ctl stop -m fast; a no-op when it is not running."""
    if not (layout.pg_data / "postmaster.pid").exists():
        return
    subprocess.run(_as_pg([_bin("pg_ctl"), "-D", str(layout.pg_data), "-m", "fast", "-w", "-t", "30", "stop"]),
                   capture_output=True, timeout=60, check=False)


def psql(layout: Layout, sql: str) -> str:
    """Run one statement through the socket as the superuser; returns unaligned output."""
    psql_bin = shutil.which("psql") or _bin("psql")
    return run([psql_bin, "-h", str(layout.pg_socket), "-U", "postgres", "-d", "postgres", "-tAc", sql],
               timeout=60, what=f"psql {sql[:40]}")


def create_databases(layout: Layout, names: Sequence[str]) -> None:
    """CREATE DATABASE for each missing name (PostgreSQL has no IF NOT EXISTS for databases)."""
    quoted = ",".join(f"'{n}'" for n in names)
    existing = set(psql(layout, f"SELECT datname FROM pg_database WHERE datname IN ({quoted})").split())
    for name in names:
        if name not in existing:
            psql(layout, f'CREATE DATABASE "{name}"')
