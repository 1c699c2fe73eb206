"""The devcloud for the integration tier: ``up`` once per test session, ``down`` at the end.

``govcloud devcloud install`` is CI's job (``.ci/run``); a missing install fails the session
loudly instead of skipping. The fixture drives the real CLI in a subprocess, exactly as an admin
would, and points ``OS_CLIENT_CONFIG_FILE`` at the devcloud's clouds.yaml for openstacksdk.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UP_TIMEOUT = 600
DOWN_TIMEOUT = 180


@dataclass(frozen=True)
class Devcloud:
    """What tests need to reach the running devcloud."""

    root: Path
    clouds_yaml: Path

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``govcloud devcloud ARGS`` (``python cli.py``) and return the finished process."""
        return subprocess.run(
            [sys.executable, str(REPO / "cli.py"), "devcloud", *args],
            capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False,
        )


def _devcloud_root() -> Path:
    from govcloud.devcloud.layout import devcloud_dir

    return devcloud_dir(os.environ)


@pytest.fixture(scope="session")
def devcloud() -> Iterator[Devcloud]:
    """Bring the devcloud up for the session (fails loudly if not installed; reuses one already up)."""
    root = _devcloud_root()
    if not (root / "venv" / "bin" / "nova-compute").exists():
        pytest.fail(f"devcloud not installed in {root}: run `govcloud devcloud install` (CI: .ci/run does)", pytrace=False)
    cloud = Devcloud(root=root, clouds_yaml=root / "clouds.yaml")
    started = cloud.cli("up", timeout=UP_TIMEOUT)
    # A developer's already-running devcloud is reused and left running; CI always starts its own.
    reused = started.returncode == 2 and "already up" in started.stderr
    if started.returncode != 0 and not reused:
        pytest.fail(f"govcloud devcloud up failed (exit {started.returncode}):\n{started.stderr[-4000:]}", pytrace=False)
    previous = os.environ.get("OS_CLIENT_CONFIG_FILE")
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(cloud.clouds_yaml)
    try:
        yield cloud
    finally:
        if previous is None:
            os.environ.pop("OS_CLIENT_CONFIG_FILE", None)
        else:
            os.environ["OS_CLIENT_CONFIG_FILE"] = previous
        if not reused:
            stopped = cloud.cli("down", timeout=DOWN_TIMEOUT)
            assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(scope="module", autouse=True)
def no_fencing_by_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Since ``failover run`` and the daemon fence a centre with a method before planning, the shipped
    fencing file (method ``devcloud`` everywhere) would force the devcloud's computes down in every failover
    test, and ``devcloud restore-centre`` waits for them ``up`` — which a forced-down service never is. So the
    CLI and daemons these tests start see no fencing file unless a test names one (test_fence.py does).
    Per module, not per session: a session fixture of this directory stays set while the unit tests run
    after it, and `validate` there read no fencing file (a clean-clone CI run failed on it)."""
    previous = os.environ.get("GOVCLOUD_FENCING")
    os.environ["GOVCLOUD_FENCING"] = str(tmp_path_factory.mktemp("fencing") / "fencing.yaml")
    yield
    if previous is None:
        os.environ.pop("GOVCLOUD_FENCING", None)
    else:
        os.environ["GOVCLOUD_FENCING"] = previous
