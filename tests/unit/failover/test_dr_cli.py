"""``govcloud dr activate|approve`` through the CLI on the in-memory cloud: refusal (exit 2), waiting for
approval (exit 4, nothing created, the run id printed), approval by an approver only, then the activation
carried out by the operator's next ``dr activate``, and the tickets' roles applied by the engine's
configure step to the rebuilt VMs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from govcloud.drivers import ansible
from govcloud.engine.context import EngineContext
from govcloud.store import runs
from tests.support.fakecloud import SG, FakeCloud
from tests.unit.engine.test_configure import FakeAnsible
from tests.unit.failover.test_failover_cli import cli, wired

__all__ = ["wired"]


@pytest.fixture
def playbooks(monkeypatch: pytest.MonkeyPatch) -> FakeAnsible:
    fake = FakeAnsible({})
    monkeypatch.setattr(ansible.AnsibleDriver, "for_settings", lambda _settings: fake)
    return fake


def test_activate_waits_for_an_approver_then_rebuilds_and_configures(wired: EngineContext, cloud: FakeCloud, playbooks: FakeAnsible) -> None:
    code, out, err = cli(wired, "dr", "activate", "--cloud", "gd-prov")
    assert code == 2 and "not down: gz-main never checked, gz-backup never checked" in err and "--declare-lost" in err
    code, _, err = cli(wired, "dr", "activate", "--cloud", "gd-prov", "--declare-lost")
    assert code == 2 and "--declare-lost needs --reason" in err
    with wired.store.transaction() as conn:
        assert runs.runs(conn) == []

    assert cli(wired, "dr", "replicate")[0] == 0
    code, out, err = cli(wired, "dr", "activate", "--cloud", "gd-prov", "--declare-lost", "--reason", "洪水: both Guangzhou centres lost")
    assert code == 4, err
    with wired.store.transaction() as conn:
        (run,) = runs.runs(conn)
    assert f"govcloud dr approve {run.id}" in err and "Nothing was created" in err and cloud.in_region(SG) == []
    code, out, _ = cli(wired, "failover", "history", "-o", "json")
    assert code == 0 and [(r["kind"], r["state"], r["user"]) for r in json.loads(out)] == [("dr-activation", "new", "yunwei-he")]

    code, _, err = cli(wired, "dr", "approve", str(run.id), user="yunwei-he")
    assert code == 2 and "'dr-approve' needs role approver or admin" in err
    code, out, err = cli(wired, "dr", "approve", str(run.id), user="shenpi-chen")
    assert code == 0 and f"govcloud dr activate --run {run.id}" in out

    code, out, err = cli(wired, "dr", "activate", "--cloud", "gd-prov", "--yes", "-o", "json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    assert data["run"] == run.id and data["state"] == "finished" and data["approval"]["by"] == "shenpi-chen"
    assert len(data["vms"]) == 8 and all(v["to"] == "sg-dr" and v["data_loss_s"] >= 0 for v in data["vms"].values())
    assert {g["name"] for g in data["groups"]} == {"public-security", "data-exchange"}
    assert {c["state"] for c in data["configured"].values()} == {"active"} and len(data["configured"]) == 2
    code, out, _ = cli(wired, "failover", "history", "-o", "json")
    assert code == 0 and [(r["kind"], r["state"], r["moved"]) for r in json.loads(out)] == [("dr-activation", "finished", 8)]
    servers = {s.name: s for s in cloud.in_region(SG)}
    hostvars = {h: v for call in playbooks.calls for h, v in call["inventory"]["all"]["hosts"].items()}
    assert {n: (hostvars[n]["ansible_host"], hostvars[n]["govcloud_centre"], hostvars[n]["govcloud_vm_id"]) for n in servers} == \
        {n: (s.address, "sg-dr", s.id) for n, s in servers.items()}  # the roles went to the rebuilt VMs, at their new addresses

def test_dr_approve_of_an_unknown_run_and_activate_without_cloud_or_run(wired: EngineContext) -> None:
    code, _, err = cli(wired, "dr", "approve", "42", user="shenpi-chen")
    assert code == 2 and "run 42 is not a run of the journal, not a DR activation" in err
    code, _, err = cli(wired, "dr", "activate")
    assert code == 2 and "name the cloud (--cloud gd-prov) or the run to carry on (--run ID)" in err


def test_dr_return_refuses_shows_its_plan_then_brings_the_vms_home_and_configures_them(wired: EngineContext, cloud: FakeCloud,
                                                                                       playbooks: FakeAnsible) -> None:
    code, _, err = cli(wired, "dr", "return", "--cloud", "gd-prov")
    assert code == 2 and "no DR activation of gd-prov has ended" in err
    assert cli(wired, "dr", "replicate")[0] == 0
    assert cli(wired, "dr", "activate", "--cloud", "gd-prov", "--declare-lost", "--reason", "flood")[0] == 4
    with wired.store.transaction() as conn:
        (run,) = runs.runs(conn)
    assert cli(wired, "dr", "approve", str(run.id), user="shenpi-chen")[0] == 0
    assert cli(wired, "dr", "activate", "--run", str(run.id), "--yes", "--skip-configure")[0] == 0
    code, _, err = cli(wired, "dr", "return", "--cloud", "gd-prov", user="caijing")
    assert code == 2 and "'dr-return' needs role operator or admin" in err

    at_dr = {s.id for s in cloud.in_region(SG)}
    code, out, err = cli(wired, "dr", "return", "--cloud", "gd-prov", "--dry-run", "-o", "json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["dry_run"] is True and shown["activation"] == run.id and len(shown["moves"]) == 8
    assert {m["to"] for m in shown["moves"]} <= {"gz-main", "gz-backup"}
    with wired.store.transaction() as conn:
        assert [r.kind for r in runs.runs(conn)] == ["dr-activation"]  # the dry run opened nothing
    assert {s.id for s in cloud.in_region(SG)} == at_dr

    playbooks.calls.clear()
    code, out, err = cli(wired, "dr", "return", "--cloud", "gd-prov", "--yes", "-o", "json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    assert data["state"] == "finished" and data["activation"] == run.id and len(data["vms"]) == 8
    assert all(v["to"] in ("gz-main", "gz-backup") and v["downtime_s"] >= 0 and "left" not in v for v in data["vms"].values())
    assert {c["state"] for c in data["configured"].values()} == {"active"} and len(data["configured"]) == 2
    assert cloud.in_region(SG) == []
    hostvars = {h: v for call in playbooks.calls for h, v in call["inventory"]["all"]["hosts"].items()}
    assert {n: (hostvars[n]["govcloud_centre"], hostvars[n]["govcloud_vm_id"]) for n in data["vms"]} == \
        {n: (v["to"], v["server"]) for n, v in data["vms"].items()}  # the roles went to the returned VMs
    code, out, _ = cli(wired, "failover", "history", "-o", "json")
    assert [(r["kind"], r["state"]) for r in json.loads(out)][:1] == [("dr-return", "finished")]
    code, _, err = cli(wired, "dr", "return", "--cloud", "gd-prov")
    assert code == 3 and "nothing to return" in err
