"""``govcloud devcloud install``: Debian packages + the services' virtualenv + two small shims.

Idempotent: each step checks what is there and skips it (the pip step compares the requirement list
it installed last time). The OpenStack services live in ``<devcloud>/venv``, never in govcloud's own
environment, so their pins cannot fight govcloud's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from govcloud.devcloud.errors import DevcloudError, NotInstalled
from govcloud.devcloud.layout import Layout

Report = Callable[[str], None]

REQUIREMENTS = (
    "keystone==30.0.0",
    "openstack-placement==16.0.0",
    "glance==33.0.0",
    "nova==34.0.0",
    "neutron==29.0.0",
    "uwsgi",
    "psycopg2-binary",
    "pymemcache",
)
RABBIT_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
PG_BIN_DIRS = (Path("/usr/local/bin"), Path("/usr/lib/postgresql/15/bin"))
NEUTRON_PATCH_MARK = "GOVCLOUD-DEVCLOUD-PATCH"
NEUTRON_MIGRATION = "neutron/db/migration/alembic_migrations/versions/2025.2/expand/d553edeb540f_tag_case_sensitive.py"


def data_path(name: str) -> Path:
    """A file shipped in ``govcloud/devcloud/data`` (package data)."""
    return Path(__file__).parent / "data" / name


def pg_bindir() -> Path | None:
    """Directory with PostgreSQL's ``initdb``/``pg_ctl``/``postgres``, or None."""
    for directory in PG_BIN_DIRS:
        if all((directory / b).exists() for b in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def run(argv: Sequence[str], *, timeout: float, what: str, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; on failure raise ``DevcloudError`` with the tail of its output."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DevcloudError(f"{what}: timed out after {timeout:.0f} s ({' '.join(argv[:3])} …)") from exc
    except OSError as exc:
        raise DevcloudError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from exc
    if done.returncode != 0:
        output = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        raise DevcloudError(f"{what} failed (exit {done.returncode}):\n{output}")
    return done.stdout


def missing_debian_packages() -> list[str]:
    """Debian packages the devcloud needs that are not on this machine."""
    missing = []
    if not RABBIT_SERVER.exists():
        missing.append("rabbitmq-server")
    if pg_bindir() is None:
        missing.append("postgresql-15")
    if shutil.which("setfacl") is None:
        missing.append("acl")  # lets user postgres reach a data dir under a private home (see pg.py)
    return missing


def install_debian(report: Report) -> None:
    """apt-get install what is missing, without starting any service (we run them ourselves)."""
    missing = missing_debian_packages()
    if not missing:
        report("debian packages: present")
        return
    if os.geteuid() != 0:
        raise NotInstalled(f"missing Debian packages {' '.join(missing)}: run as root, or: sudo apt-get install -y {' '.join(missing)}")
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists()
    if created:  # forbid invoke-rc.d from starting rabbitmq/postgres system-wide during the install
        policy.write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-qq"], timeout=300, what="apt-get update", env=env)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], timeout=600, what="apt-get install", env=env)
    finally:
        if created:
            policy.unlink(missing_ok=True)
    report(f"debian packages: installed {' '.join(missing)}")


def install_venv(layout: Layout, report: Report) -> None:
    """Create the venv and pip-install the pinned services, unless the same list is already in."""
    stamp = layout.venv / "govcloud-requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if stamp.exists() and stamp.read_text(encoding="utf-8") == wanted and layout.bin("nova-compute").exists():
        report("services venv: present")
        return
    if not layout.bin("python").exists():
        run([sys.executable, "-m", "venv", str(layout.venv)], timeout=120, what="python -m venv")
    pip = [str(layout.bin("python")), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, "-U", "pip", "setuptools", "wheel"], timeout=300, what="pip install pip setuptools wheel")
    run([*pip, *REQUIREMENTS], timeout=1200, what="pip install of the OpenStack services")
    stamp.write_text(wanted, encoding="utf-8")
    report("services venv: installed " + " ".join(REQUIREMENTS))


def site_packages(layout: Layout) -> Path:
    """purelib of the services' venv."""
    out = run(
        [str(layout.bin("python")), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        timeout=60,
        what="locate site-packages",
    )
    return Path(out.strip())


def patch_neutron_migration(sp: Path) -> bool:
    """Neutron 29's migration d553edeb540f runs MySQL-only DDL unconditionally: skip it elsewhere.

    Returns True when the file was changed now.
    """
    path = sp / NEUTRON_MIGRATION
    if not path.exists():
        return False
    text = path.read_text(encoding="utf-8")
    if NEUTRON_PATCH_MARK in text:
        return False
    old = "def upgrade():\n    try:"
    if old not in text:
        raise DevcloudError(f"cannot patch {path}: its upgrade() changed; check neutron's version")
    new = (
        "def upgrade():\n    # " + NEUTRON_PATCH_MARK + ": MySQL-only DDL, skipped on PostgreSQL\n"
        "    if op.get_bind().dialect.name != 'mysql':\n        return\n    try:"
    )
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return True


def install_shims(layout: Layout, report: Report) -> None:
    """Restartable fake virt driver into nova/virt, the bind-all ML2 driver, the neutron patch."""
    sp = site_packages(layout)
    shutil.copyfile(data_path("govcloud_fake.py"), sp / "nova" / "virt" / "govcloud_fake.py")
    if not list(sp.glob("govcloud_bindall-*.dist-info")):
        build = layout.venv / "src" / "neutron_bindall"
        shutil.rmtree(build, ignore_errors=True)
        shutil.copytree(data_path("neutron_bindall"), build)
        run(
            [str(layout.bin("python")), "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", str(build)],
            timeout=300,
            what="pip install of the bind-all ML2 driver",
        )
    patched = patch_neutron_migration(sp)
    report("shims: fake driver, bind-all ML2 driver" + (", neutron migration patched" if patched else ""))


def is_installed(layout: Layout) -> bool:
    """True when ``up`` has everything it needs."""
    return (
        not missing_debian_packages()
        and layout.bin("nova-compute").exists()
        and layout.bin("uwsgi").exists()
        and bool(list(layout.venv.glob("lib/python*/site-packages/govcloud_bindall-*.dist-info")))
    )


def install(layout: Layout, report: Report) -> float:
    """Run every install step (each skips itself when done); return the elapsed seconds."""
    started = time.monotonic()
    layout.root.mkdir(parents=True, exist_ok=True)
    install_debian(report)
    install_venv(layout, report)
    install_shims(layout, report)
    return time.monotonic() - started
