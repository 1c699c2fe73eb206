"""``govcloud drill run|cleanup|history`` through the CLI on the in-memory cloud: exit codes (0 succeeded,
1 failed, 2 refused), the report written under the state directory, history filtered by tenant."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from govcloud.engine.context import EngineContext
from tests.support.fakecloud import GZ, SG, FakeCloud
from tests.unit.failover.test_failover_cli import HOOKED, cli, wired

__all__ = ["wired"]


def test_drill_run_history_and_cleanup(wired: EngineContext, cloud: FakeCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVCLOUD_STATE_DIR", str(tmp_path / "state-cli"))
    code, out, err = cli(wired, "drill", "run", "public-security", "-o", "json")  # nothing replicated yet: the drill fails, exit 1
    assert code == 1 and json.loads(out)["state"] == "failed"
    assert {v["ok"] for v in json.loads(out)["vms"]} == {False} and "no ready replica" in json.loads(out)["vms"][0]["error"]
    assert cli(wired, "dr", "replicate")[0] == 0
    code, _, err = cli(wired, "drill", "run", "no-such-group")
    assert code == 2 and "no protection group 'no-such-group'" in err
    code, _, err = cli(wired, "drill", "run", "public-security", user="sunkai")
    assert code == 2 and "'drill' needs role operator or admin" in err
    HOOKED.clear()
    code, out, err = cli(wired, "drill", "run", "public-security", "--target", "sg-dr", "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["state"] == "succeeded" and data["group"] == "public-security" and data["cleanup"]["leftovers"] == []
    assert HOOKED == ["public-security"] and all(v["ok"] for v in data["vms"])
    report = Path(data["report"])
    assert report.parent == tmp_path / "state-cli" / "drills" and stat.S_IMODE(report.stat().st_mode) == 0o600
    assert [t for e in (GZ, SG) for t in cloud.driver(e).tagged("govcloud-drill-")] == []
    code, out, _ = cli(wired, "drill", "history", "-o", "json", user="shenpi-chen")
    assert code == 0 and [(r["run"], r["state"]) for r in json.loads(out)][:2] == [(data["run"], "succeeded"), (data["run"] - 1, "failed")]
    code, out, _ = cli(wired, "drill", "history", "-o", "json", user="caijing")  # gd-mzt: none of its VMs were drilled
    assert code == 0 and all(r["run"] != data["run"] for r in json.loads(out))
    code, out, _ = cli(wired, "drill", "cleanup", "-o", "json")
    assert code == 0 and json.loads(out)["deleted"] == []
    code, out, err = cli(wired, "drill", "run", "public-security", "--target", "gz-backup")  # the table, for people
    assert code == 0, err
    assert "succeeded" in out and "RTO: group" in out and "left over 0" in out and "report: " in out and "tag govcloud-drill-" in err
    code, out, _ = cli(wired, "drill", "history")
    assert code == 0 and "gz-backup" in out and "public-security" in out
