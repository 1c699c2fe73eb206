"""``govcloud failover run|status|history`` through the CLI on the in-memory cloud: the journalled run,
its exit codes (a script can tell "recovered nothing" from "done"), the reads and their filter."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from govcloud.cli import main
from govcloud.engine import context as context_module
from govcloud.engine.context import EngineContext
from govcloud.failover import hooks
from govcloud.failover.steps import HookCall, HookResult
from govcloud.store import runs
from tests.support.fakecloud import FakeCloud
from tests.support.tickets import REPO
from tests.unit.failover.test_journal import province
from tests.unit.failover.test_recover import fail

HOOKED: list[str] = []


@pytest.fixture
def wired(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EngineContext:
    """The CLI builds its context on the fake cloud, and hooks are recorded instead of run by Ansible."""
    monkeypatch.setattr(context_module, "build", functools.partial(context_module.build, driver_factory=cloud.driver))

    def fake_hook(_settings: Any) -> Any:
        def run(call: HookCall) -> HookResult:
            HOOKED.append(call.step.name)
            return HookResult(True, "ok")
        return run

    monkeypatch.setattr(hooks, "ansible_hook", fake_hook)
    HOOKED.clear()
    province(ctx, tmp_path)
    return ctx


def cli(ctx: EngineContext, *args: str, user: str = "yunwei-he") -> tuple[int, str, str]:
    code: Any = None
    argv = ["--root", str(REPO), "--db", ctx.settings.db_url, "--as", user, *args]
    env = {"GOVCLOUD_USER": None, "GOVCLOUD_AUDIT_KEY_FILE": str(ctx.settings.audit_key_file),
           "GOVCLOUD_AUDIT_ANCHOR": str(ctx.settings.audit_anchor_file),  # the key and anchor of the store ctx wrote
           "GOVCLOUD_FENCING": str(ctx.settings.data.resolve(ctx.settings.data.fencing))}  # ctx's: no fencing (no_fencing)
    with CliRunner(env=env).isolation() as (out, err, _):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8")


def test_run_then_status_and_history(wired: EngineContext, cloud: FakeCloud) -> None:
    fail(cloud, "gz-main")
    code, out, err = cli(wired, "failover", "run", "gz-main", "--yes", "-o", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["state"] == "finished" and len(result["outcomes"]) == 6 and result["run"] >= 1
    assert HOOKED == ["public-security", "data-exchange"]  # the sample plan's hooked groups, in order
    code, out, err = cli(wired, "failover", "history", "-o", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["kind"], row["user"], row["state"], row["moved"], row["failed"], row["held"]) == ("failover", "yunwei-he", "finished", 6, 0, 0)
    assert row["duration_s"] is not None and row["duration_s"] >= 0
    code, out, err = cli(wired, "failover", "status", "-o", "json")
    assert code == 0, err
    (main_row,) = [r for r in json.loads(out)["centres"] if r["centre"] == "gz-main"]
    assert (main_row["run"], main_row["run_state"], main_row["moved"], main_row["fencing"]) == (row["run"], "finished", 6, "none")
    code, out, err = cli(wired, "failover", "history", "-o", "json", user="caijing")  # a requester: its tenant's VMs only
    assert code == 0, err
    (mine,) = json.loads(out)
    assert mine["moved"] == 2  # gd-mzt/shjz's two VMs of gz-main
    code, out, _ = cli(wired, "failover", "history", "-o", "json", "--centre", "gz-backup", user="caijing")
    assert code == 0 and json.loads(out) == []


def test_run_exits_3_when_it_recovered_nothing_but_vms_are_held(wired: EngineContext, cloud: FakeCloud) -> None:
    fail(cloud, "gz-main")
    fail(cloud, "gz-backup")  # no partner to go to: everything held
    code, out, err = cli(wired, "failover", "run", "gz-main", "--yes")
    assert code == 3, out + err
    assert "0 moved, 0 failed, 6 held" in err


def test_a_second_run_of_the_centre_is_refused_with_exit_2(wired: EngineContext, cloud: FakeCloud) -> None:
    fail(cloud, "gz-main")
    with wired.store.transaction() as conn:
        runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-main", user="admin", owner="elsewhere:1:abc",
                        now=wired.now(), plan={})
    code, out, err = cli(wired, "failover", "run", "gz-main", "--yes")
    assert code == 2 and "one run per centre at a time" in err, out + err


def test_reads_need_an_acting_user(wired: EngineContext) -> None:
    code, _, err = cli(wired, "failover", "status", user="")
    assert code == 2 and "no acting user" in err


def test_plan_shows_the_groups_in_order_what_moves_where_and_what_is_held(wired: EngineContext, cloud: FakeCloud) -> None:
    fail(cloud, "gz-main")
    code, out, err = cli(wired, "failover", "plan", "gz-main")
    assert code == 0, err
    assert out.index("public-security") < out.index("data-exchange") < out.index("welfare"), out
    assert "smoke" in out and "gz-backup" in out
    code, out, err = cli(wired, "failover", "plan", "gz-main", "-o", "json")
    groups = json.loads(out)["groups"]
    assert [(g["name"], g["priority"], g["moves"]) for g in groups] == [("public-security", 1, 2), ("data-exchange", 2, 2), ("welfare", 4, 2)]


def test_status_shows_each_centres_fencing_as_nova_reports_it(wired: EngineContext, cloud: FakeCloud) -> None:
    """Not the placeholder ``none``: the fencing file's method and nova's forced_down flags (fence_states)."""
    import dataclasses

    from govcloud.store import facts
    from tests.support.fakecloud import GZ

    fail(cloud, "gz-main")
    assert cli(wired, "failover", "run", "gz-main", "--yes", "-o", "json")[0] == 0  # a run: gz-main has a status row
    wired.settings.data.resolve(wired.settings.data.fencing).write_text(
        "version: 1\nclouds:\n  gd-prov:\n    gz-main: {method: devcloud}\n    gz-backup: {method: devcloud}\n")
    cloud.services[GZ] = [dataclasses.replace(s, forced_down=s.zone == "gz-main") for s in cloud.services[GZ]]
    with wired.store.transaction() as conn:  # gz-backup: a health row, so that status lists it
        facts.record_health(conn, facts.CentreHealth("gd-prov", "gz-backup", "healthy", wired.now(), wired.now(), 2, 2, True))
    code, out, err = cli(wired, "failover", "status", "-o", "json")
    assert code == 0, err
    fencing = {r["centre"]: r["fencing"] for r in json.loads(out)["centres"]}
    assert (fencing["gz-main"], fencing["gz-backup"]) == ("fenced", "armed")  # every host forced down; a method, nothing fenced


def test_status_shows_a_centre_in_maintenance_as_nova_reports_it(wired: EngineContext, cloud: FakeCloud) -> None:
    """After `failover migrate` a centre's computes are disabled: status says so (no: a column nobody could see
    but in nova's service listing), and one disabled host of two is partial."""
    import dataclasses

    from govcloud.store import facts
    from tests.support.fakecloud import GZ

    with wired.store.transaction() as conn:
        for centre in ("gz-main", "gz-backup"):
            facts.record_health(conn, facts.CentreHealth("gd-prov", centre, "healthy", wired.now(), wired.now(), 2, 2, True))
    code, out, err = cli(wired, "failover", "status", "-o", "json")
    assert code == 0, err
    assert {r["centre"]: r["maintenance"] for r in json.loads(out)["centres"]} == {"gz-main": "no", "gz-backup": "no"}
    backup_hosts = sorted(s.host for s in cloud.services[GZ] if s.zone == "gz-backup")
    cloud.services[GZ] = [dataclasses.replace(s, status="disabled") if s.zone == "gz-main" or s.host == backup_hosts[0] else s
                          for s in cloud.services[GZ]]
    code, out, err = cli(wired, "failover", "status", "-o", "json")
    assert code == 0, err
    assert {r["centre"]: r["maintenance"] for r in json.loads(out)["centres"]} == {"gz-main": "yes", "gz-backup": "partial (1/2)"}
    code, out, err = cli(wired, "failover", "status")
    assert code == 0 and "maintenance" in out, err


def test_run_fences_a_centre_with_a_method_before_planning(wired: EngineContext, cloud: FakeCloud) -> None:
    """`failover run` builds its Recovery with the fence of the fencing file: here the devcloud agent (refusing,
    tests/unit/conftest.py) cannot power gz-main off, nova reports its hosts up, so nothing moves (exit 2)
    and the attempt is audited as `centre.fence`."""
    wired.settings.data.resolve(wired.settings.data.fencing).write_text("version: 1\nclouds:\n  gd-prov:\n    gz-main: {method: devcloud}\n")
    code, _, err = cli(wired, "failover", "run", "gz-main", "--yes")
    assert code == 2 and "nova reports gz-main-1, gz-main-2 up" in err, err
    (fenced,) = [r for r in wired.store.audit.records() if r.action == "centre.fence"]
    assert fenced.subject == "centre:gd-prov/gz-main" and fenced.details["method"] == "devcloud" and not fenced.details["ready"]
    assert "never fence the devcloud" in str(fenced.details["hosts"]) and cloud.force_calls == []


def test_migrate_then_failback_through_the_cli(wired: EngineContext, cloud: FakeCloud) -> None:
    """``failover migrate`` and ``failback`` (issue 13 item 5): exit codes, history kinds, the maintenance on and off."""
    from tests.support.fakecloud import GZ

    fail(cloud, "gz-main")
    code, _, err = cli(wired, "failover", "migrate", "gz-main", "--yes")
    assert code == 2 and "failover run gz-main" in err  # a centre that is down is failed over, not migrated
    cloud.services[GZ] = [s.__class__(**{**s.__dict__, "state": "up"}) for s in cloud.services[GZ]]
    code, out, err = cli(wired, "failover", "migrate", "gz-main", "--dry-run", "-o", "json")
    assert code == 0 and len(json.loads(out)["moves"]) == 6, err
    assert {s.status for s in cloud.services[GZ]} == {"enabled"} and cloud.migrations == []  # a dry run changes nothing
    code, out, err = cli(wired, "failover", "migrate", "gz-main", "--yes", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["state"] == "finished" and len(json.loads(out)["outcomes"]) == 6
    assert {s.status for s in cloud.services[GZ] if s.zone == "gz-main"} == {"disabled"}
    code, out, err = cli(wired, "failover", "failback", "gz-main", "--yes")
    assert code == 0, out + err
    assert "6 moved, 0 failed, 0 held" in err
    assert {s.status for s in cloud.services[GZ] if s.zone == "gz-main"} == {"enabled"}
    code, out, err = cli(wired, "failover", "history", "-o", "json")
    assert [(r["kind"], r["state"], r["moved"]) for r in json.loads(out)] == [("failback", "finished", 6), ("migration", "finished", 6)]
    code, out, err = cli(wired, "failover", "migrate", "gz-main", "--yes", user="caijing")
    assert code == 2 and "'failover' needs role operator or admin" in err


def test_migrate_exits_1_and_stops_at_the_first_error(wired: EngineContext, cloud: FakeCloud) -> None:
    from govcloud.errors import PermanentError

    cloud.faults["live_migrate_server"] = [PermanentError("HTTP 400: Migration pre-check error")]
    code, out, err = cli(wired, "failover", "migrate", "gz-main", "--yes")
    assert code == 1, out + err
    assert "stopped at the first error" in err and len(cloud.migrations) <= 1


def test_status_shows_each_recovery_plans_readiness_and_why_filtered_by_tenant(wired: EngineContext) -> None:
    """The sample province's dr systems (hukou, sjgx) have never been replicated nor drilled: their plans are
    NOT READY and say so; a requester sees only the plans that name its tenants' systems."""
    code, out, err = cli(wired, "failover", "status", "-o", "json")
    assert code == 0, err
    plans = {p["plan"]: p for p in json.loads(out)["plans"]}
    ps = plans["public-security"]
    assert (ps["cloud"], ps["state"], ps["ready"], ps["dr_vms"]) == ("gd-prov", "NOT READY", False, 4)
    assert [r["kind"] for r in ps["reasons"]] == ["drill"] + ["replica"] * 4
    assert "never drilled successfully" in ps["why"] and "has no ready replica in the DR region" in ps["why"]
    assert [r["kind"] for r in plans["welfare"]["reasons"]] == ["drill"]  # ha only: no dr VM to replicate or reserve for
    code, out, err = cli(wired, "failover", "status")
    assert code == 0, err
    assert "recovery plans: readiness for a DR activation" in out and "NOT READY" in out and "public-security" in out
    code, out, err = cli(wired, "failover", "status", "-o", "json", user="caijing")  # gd-mzt: the welfare group
    assert code == 0, err
    assert [p["plan"] for p in json.loads(out)["plans"]] == ["welfare"]
