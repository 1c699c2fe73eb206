"""The IPMI fence driver (govcloud/drivers/ipmi.py) against a stand-in ``ipmitool`` script: the BMC password
reaches the child only through its environment (``-E``), never its command line, the logs or an error;
its file must be private; power states are read from ipmitool's words."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from govcloud.drivers.ipmi import BmcAddress, IpmiAgent, IpmiCredentialError, read_password
from govcloud.errors import PermanentError, TemporaryError
from govcloud.failover.fence import FenceTarget, fence_centre, make_agent
from govcloud.model.fencing import Bmc, CentreFence
from govcloud.settings import FencingSettings
from tests.support.fakecloud import GZ, FakeCloud, services

SECRET = "Zq7-not-in-argv-9x"

STANDIN = """#!@PYTHON@
import json, os, sys
log, state = @LOG@, @STATE@
host = sys.argv[sys.argv.index("-H") + 1] + ":" + sys.argv[sys.argv.index("-p") + 1]
with open(log, "a") as f:
    f.write(json.dumps({"argv": sys.argv, "password": os.environ.get("IPMI_PASSWORD"), "env": sorted(os.environ)}) + "\\n")
if os.environ.get("IPMI_PASSWORD") != @SECRET@:
    # a careless ipmitool that echoes what it was given: the driver must not pass it on
    print("Error: Unable to establish IPMI v2 / RMCP+ session with " + os.environ.get("IPMI_PASSWORD", ""), file=sys.stderr)
    sys.exit(1)
power = json.load(open(state)) if os.path.exists(state) else {}
action = sys.argv[-1]
if action == "status":
    print("Chassis Power is " + power.get(host, "on"))
else:
    power[host] = action
    json.dump(power, open(state, "w"))
    print("Chassis Power Control: " + ("Down/Off" if action == "off" else "Up/On"))
"""


@pytest.fixture
def ipmitool(tmp_path: Path) -> tuple[Path, Path]:
    log, state = tmp_path / "calls.jsonl", tmp_path / "power.json"
    script = tmp_path / "ipmitool"
    text = STANDIN.replace("@PYTHON@", sys.executable).replace("@LOG@", repr(str(log))).replace("@STATE@", repr(str(state)))
    script.write_text(text.replace("@SECRET@", repr(SECRET)), encoding="utf-8")
    script.chmod(0o700)
    return script, log


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything govcloud logs, also after a test of the daemon set ``govcloud`` not to propagate to the root."""
    logger = logging.getLogger("govcloud")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="govcloud")
    yield caplog
    logger.removeHandler(caplog.handler)


def agent(script: Path, password: str = SECRET) -> IpmiAgent:
    return IpmiAgent({"gz-backup-1": BmcAddress("127.0.0.1", 16231), "gz-backup-2": BmcAddress("127.0.0.1", 16232)},
                     user="govcloud", password=password, binary=str(script), timeout=20)


def calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def test_power_off_and_status_with_the_password_only_in_the_environment(ipmitool: tuple[Path, Path],
                                                                      logs: pytest.LogCaptureFixture) -> None:
    script, log = ipmitool
    bmc = agent(script)
    assert bmc.power_state("gz-backup-1") == "on"
    bmc.power_off("gz-backup-1")
    assert bmc.power_state("gz-backup-1") == "off" and bmc.power_state("gz-backup-2") == "on"
    seen = calls(log)
    assert len(seen) == 4
    for call in seen:
        argv = call["argv"]
        assert isinstance(argv, list)
        assert SECRET not in " ".join(argv) and "-P" not in argv and "-E" in argv
        assert argv[argv.index("-I") + 1] == "lanplus" and argv[argv.index("-U") + 1] == "govcloud"
        assert call["password"] == SECRET
        assert call["env"] == ["IPMI_PASSWORD", "LC_ALL", "PATH"]  # nothing else of govcloud's environment
    assert SECRET not in repr(bmc) and SECRET not in logs.text


def test_a_refused_session_is_a_temporary_error_without_the_password(ipmitool: tuple[Path, Path]) -> None:
    script, _ = ipmitool
    with pytest.raises(TemporaryError) as caught:
        agent(script, password="wrong-" + SECRET).power_off("gz-backup-1")
    assert "RMCP+" in str(caught.value) and SECRET not in str(caught.value)


def test_a_host_without_a_bmc_and_a_missing_ipmitool_are_permanent(ipmitool: tuple[Path, Path], tmp_path: Path) -> None:
    script, _ = ipmitool
    with pytest.raises(PermanentError, match="no BMC configured"):
        agent(script).power_off("gz-main-1")
    with pytest.raises(PermanentError, match="not installed"):
        agent(tmp_path / "no-such-ipmitool").power_state("gz-backup-1")


def test_fencing_a_centre_through_the_driver_logs_no_password(ipmitool: tuple[Path, Path], logs: pytest.LogCaptureFixture) -> None:
    script, log = ipmitool
    cloud = FakeCloud()
    cloud.services[GZ] = services("gz-backup", "down", "down")
    fence = CentreFence(method="ipmi", user="govcloud", hosts={"gz-backup-1": Bmc("127.0.0.1", 16231), "gz-backup-2": Bmc("127.0.0.1", 16232)})
    report = fence_centre(FenceTarget("gd-prov", "gz-backup", GZ, ("gz-backup",), fence), compute=cloud.driver(GZ),
                          agent=agent(script), settings=FencingSettings(timeout=60, poll=0.01))
    assert report.ready, report
    assert "fenced gd-prov/gz-backup" in logs.text and "host gz-backup-1 is off" in logs.text and SECRET not in logs.text
    assert SECRET not in json.dumps(report.as_dict())
    assert all(SECRET not in " ".join(c["argv"]) for c in calls(log))  # type: ignore[arg-type]


def test_password_from_a_private_file_or_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "bmc.pw"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    secret.chmod(0o600)
    assert read_password(secret, "ignored") == SECRET
    secret.chmod(0o640)
    with pytest.raises(IpmiCredentialError, match="readable by others") as caught:
        read_password(secret, "")
    assert SECRET not in str(caught.value)
    assert read_password(None, "from-env") == "from-env"
    with pytest.raises(IpmiCredentialError, match="GOVCLOUD_IPMI_PASSWORD"):
        read_password(None, "")
    link = tmp_path / "link.pw"
    os.symlink(secret, link)
    with pytest.raises(IpmiCredentialError):
        read_password(link, "")


def test_make_agent_for_each_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from govcloud.failover import fence as fence_module
    from tests.unit.conftest import REAL_DEVCLOUD_AGENT

    monkeypatch.setattr(fence_module, "DEVCLOUD_AGENT", REAL_DEVCLOUD_AGENT)  # the template itself (tests/unit/conftest.py swaps it)
    fence = CentreFence(method="ipmi", user="u", hosts={"h": Bmc("10.0.0.1")})
    with pytest.raises(IpmiCredentialError):
        make_agent(fence, FencingSettings())
    ipmi = make_agent(fence, FencingSettings(ipmi_password=SECRET))
    assert isinstance(ipmi, IpmiAgent) and ipmi.argv("h", "off")[-3:] == ["chassis", "power", "off"]
    assert make_agent(CentreFence(), FencingSettings()) is None
    devcloud = make_agent(CentreFence(method="devcloud"), FencingSettings(), python="/usr/bin/python3")
    assert devcloud is not None and devcloud.method == "devcloud"
    assert devcloud.argv("gz-main-1", "off") == ["/usr/bin/python3", "-m", "govcloud", "devcloud", "host", "off", "gz-main-1"]  # type: ignore[attr-defined]
