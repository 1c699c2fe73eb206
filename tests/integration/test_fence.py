"""Fencing for real, IPMI and the devcloud's own agent. IPMI: sg-dr's two compute hosts get simulated BMCs (``ipmi_sim``, tests/support/ipmisim.py)
whose power is that host's nova-compute; ``fence_centre`` powers them off with ``ipmitool -I lanplus``,
confirms it, and forces their services down in nova (at once, not after ``service_down_time``);
``unfence_centre`` powers them on and clears the flag once the heartbeats are back. The ``devcloud``
method does the same through ``govcloud devcloud host off|on`` run as a fence agent command.

It disturbs the shared devcloud: run it under ``flock -x /tmp/devcloud.lock``. It leaves every compute
running and none forced down, also when it fails."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from govcloud.drivers.base import Endpoint
from govcloud.drivers.openstack import OpenStackDriver
from govcloud.errors import DriverError
from govcloud.failover.fence import FenceTarget, fence_centre, make_agent, unfence_centre
from govcloud.model.fencing import Bmc, CentreFence
from govcloud.settings import FencingSettings
from tests.integration.conftest import REPO, Devcloud
from tests.support import ipmisim
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*")]

SG = Endpoint("devcloud-admin", "gd-sg")
HOSTS = ("sg-dr-1", "sg-dr-2")
USER = "govcloud"
PASSWORD = "it-fence-Qx81-bmc"


def nova(driver: OpenStackDriver) -> dict[str, tuple[str, bool]]:
    return {s.host: (s.state, s.forced_down) for s in driver.compute_services() if s.host in HOSTS}


def power(devcloud: Devcloud, host: str) -> str:
    done = devcloud.cli("host", "status", host)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.fixture
def driver(devcloud: Devcloud) -> Iterator[OpenStackDriver]:
    driver = OpenStackDriver(SG)
    wait_for("sg-dr's computes up before the test", lambda: nova(driver) == {h: ("up", False) for h in HOSTS}, timeout=120)
    try:
        yield driver
    finally:  # leave the devcloud as we found it: computes running, nothing forced down
        for host in HOSTS:
            devcloud.cli("host", "on", host)
        deadline = time.monotonic() + 180
        while nova(driver) != {h: ("up", False) for h in HOSTS} and time.monotonic() < deadline:
            for host, (_, forced) in nova(driver).items():
                if forced:
                    with contextlib.suppress(DriverError):  # refused while the compute cleans up: next round
                        driver.force_down(host, forced=False)
            time.sleep(2)
        assert nova(driver) == {h: ("up", False) for h in HOSTS}


def test_ipmi_fencing_of_sg_dr_through_simulated_bmcs(devcloud: Devcloud, driver: OpenStackDriver, tmp_path: Path) -> None:
    secret = tmp_path / "bmc.password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    os.chmod(secret, 0o600)
    settings = FencingSettings(ipmi_password_file=secret, timeout=90, poll=0.5)
    with ipmisim.bmcs(list(HOSTS), tmp_path / "bmcs", user=USER, password=PASSWORD) as bmcs:
        fence = CentreFence(method="ipmi", user=USER, hosts={h: Bmc("127.0.0.1", bmcs[h].port) for h in HOSTS})
        target = FenceTarget("gd-prov", "sg-dr", SG, ("sg-dr",), fence)
        agent = make_agent(fence, settings)

        started = time.monotonic()
        report = fence_centre(target, compute=driver, agent=agent, settings=settings)
        fenced_in = time.monotonic() - started
        assert report.fenced and report.ready, report.as_dict()
        assert {power(devcloud, h) for h in HOSTS} == {"off"}  # the BMC's power-off stopped the compute
        assert nova(driver) == {h: ("down", True) for h in HOSTS}  # nova says down now, not after service_down_time
        assert fenced_in < 25, f"fencing took {fenced_in:.1f} s: nova's own verdict would have been as quick"

        started = time.monotonic()
        back = unfence_centre(target, compute=driver, agent=agent, settings=settings)
        unfenced_in = time.monotonic() - started
        assert back.restored, back.as_dict()
        assert {power(devcloud, h) for h in HOSTS} == {"on"}
        assert nova(driver) == {h: ("up", False) for h in HOSTS}
    print(f"\nipmi fence of sg-dr (2 hosts): {fenced_in:.1f} s to fenced + forced down; unfence {unfenced_in:.1f} s")


def test_devcloud_method_fences_sg_dr_through_its_fence_agent(devcloud: Devcloud, driver: OpenStackDriver) -> None:
    settings = FencingSettings(timeout=90, poll=0.5)
    target = FenceTarget("gd-prov", "sg-dr", SG, ("sg-dr",), CentreFence(method="devcloud"))
    agent = make_agent(target.fence, settings)
    started = time.monotonic()
    report = fence_centre(target, compute=driver, agent=agent, settings=settings)
    fenced_in = time.monotonic() - started
    assert report.ready and [h.host for h in report.hosts] == list(HOSTS), report.as_dict()
    assert {power(devcloud, h) for h in HOSTS} == {"off"}
    assert nova(driver) == {h: ("down", True) for h in HOSTS}
    back = unfence_centre(target, compute=driver, agent=agent, settings=settings)
    assert back.restored, back.as_dict()
    assert nova(driver) == {h: ("up", False) for h in HOSTS}
    print(f"\ndevcloud fence of sg-dr (2 hosts): {fenced_in:.1f} s to fenced + forced down")


def test_the_cli_fences_and_unfences_sg_dr_with_the_shipped_fencing_file(devcloud: Devcloud, driver: OpenStackDriver,
                                                                           tmp_path: Path) -> None:
    env = {**os.environ, "GOVCLOUD_STATE_DIR": str(tmp_path / "state"), "GOVCLOUD_DEVCLOUD_DIR": str(devcloud.root),
           "GOVCLOUD_ROOT": str(REPO), "OS_CLIENT_CONFIG_FILE": str(devcloud.clouds_yaml), "GOVCLOUD_USER": "admin",
           "GOVCLOUD_FENCING": str(REPO / "inventory" / "fencing.yaml")}  # the shipped file (conftest names none by default)

    def govcloud(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True, text=True, timeout=300, cwd=REPO,
                              env=env, check=False)

    dry = govcloud("failover", "fence", "sg-dr", "--dry-run", "-o", "json")
    assert dry.returncode == 0 and json.loads(dry.stdout)[0]["state"] == "armed", dry.stderr
    assert nova(driver) == {h: ("up", False) for h in HOSTS}  # a dry run touches nothing
    fenced = govcloud("failover", "fence", "sg-dr", "--yes", "-o", "json")
    assert fenced.returncode == 0, fenced.stderr
    assert json.loads(fenced.stdout)["ready"] is True
    assert nova(driver) == {h: ("down", True) for h in HOSTS}
    listing = govcloud("failover", "fencing", "-o", "json")
    assert {(r["centre"], r["state"]) for r in json.loads(listing.stdout) if r["cloud"] == "gd-prov"} == {
        ("gz-main", "armed"), ("gz-backup", "armed"), ("sg-dr", "fenced")}
    back = govcloud("failover", "unfence", "sg-dr", "--yes", "-o", "json")
    assert back.returncode == 0, back.stderr
    assert nova(driver) == {h: ("up", False) for h in HOSTS}
    audit = govcloud("audit", "list", "-o", "json")
    assert [r["action"] for r in json.loads(audit.stdout) if r["action"].startswith("centre.")][-2:] == ["centre.fence", "centre.unfence"]
    assert govcloud("failover", "fence", "nowhere", "--yes").returncode == 2
