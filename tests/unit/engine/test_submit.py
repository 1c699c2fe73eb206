"""Submission: one transaction for the whole call, the duplicate check, and every check that refuses a
ticket made at ``submit`` (and by ``govcloud validate`` where the files alone can tell) with file, line, key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from govcloud.engine import inbox, tickets
from govcloud.errors import ConfigError, Problem
from govcloud.model.state import parse_ticket
from govcloud.store import tickets as rows
from tests.support.tickets import REPO, write_ticket
from tests.unit.engine.conftest import Engine
from tests.unit.test_cli_data import run as cli

SMALL = [{"name": "app", "count": 1, "flavor": "gc.small", "cloud": "gd-prov"}]


def refused(excinfo: pytest.ExceptionInfo[ConfigError], message: str) -> Problem:
    """The one problem with ``message``, which must name a file and a line."""
    (problem,) = [p for p in excinfo.value.problems if p.message == message]
    assert problem.file.endswith(".yaml") and problem.line > 0, problem
    return problem


def stored(ctx: Any) -> list[str]:
    with ctx.store.transaction() as conn:
        return [r.id for r in rows.listing(conn)]


@pytest.fixture
def requester(world: tuple[object, Engine]) -> Any:
    return world[1]("caijing")


# --- 9: all or nothing ------------------------------------------------------------------------------
def test_a_call_with_one_refused_file_stores_none_of_them(requester: Any, tmp_path: Path) -> None:
    taken, taken_path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=SMALL)
    tickets.submit(requester, [taken_path])
    _, a = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=[{**SMALL[0], "count": 2}])
    _, b = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=[{**SMALL[0], "count": 3}])
    (tmp_path / "again").mkdir()
    _, c = write_ticket(tmp_path / "again", tenant="gd-mzt", system="mzoa", requester="caijing", ticket_id=taken,
                        vms=[{**SMALL[0], "count": 4}])
    audit_before = len(requester.store.audit.records())
    with pytest.raises(ConfigError) as excinfo:
        tickets.submit(requester, [a, b, c])
    assert refused(excinfo, "ticket id in use").key == "id"
    assert stored(requester) == [taken]
    assert len(requester.store.audit.records()) == audit_before


def test_the_cli_says_nothing_was_changed_and_means_it(world: tuple[object, Engine], tmp_path: Path) -> None:
    ctx = world[1]("caijing")
    db = str(ctx.store.engine.url.database)
    taken, taken_path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=SMALL)
    tickets.submit(ctx, [taken_path])
    _, a = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=[{**SMALL[0], "count": 2}])
    _, b = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=[{**SMALL[0], "count": 3}])
    (tmp_path / "c").mkdir()
    _, c = write_ticket(tmp_path / "c", tenant="gd-mzt", system="mzoa", requester="caijing", ticket_id=taken, vms=[{**SMALL[0], "count": 4}])
    code, _, err = cli("--root", str(REPO), "--db", db, "--as", "caijing", "ticket", "submit", str(a), str(b), str(c))
    assert code == 2, err
    assert f"{c}:2: id: ticket id in use" in err and err.rstrip().endswith("nothing was changed"), err
    assert stored(ctx) == [taken]


def test_auto_approval_is_part_of_the_call(requester: Any, tmp_path: Path) -> None:
    """Small tickets are approved by the rule in the submission's transaction; one the quota refuses stays
    submitted, and the others of the call stand."""
    first, a = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=SMALL, expires="2027-06-30")
    second, b = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=[{**SMALL[0], "count": 2}],
                             expires="2027-06-30")
    result = {r.id: (r.state, r.approval_rule) for r in tickets.submit(requester, [a, b])}
    assert result == {first: ("approved", "small-short"), second: ("approved", "small-short")}
    with requester.store.transaction() as conn:
        assert sum(line.resources.instances for line in rows.ledger_lines(conn)) == 3


# --- 11: duplicates ---------------------------------------------------------------------------------
def test_the_same_request_under_a_new_id_is_refused_naming_the_live_ticket(requester: Any, tmp_path: Path) -> None:
    first, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=[{**SMALL[0], "count": 5}])
    tickets.submit(requester, [path])
    text = path.read_text(encoding="utf-8").replace(first, "t-again-0001").replace("集成测试", "再提交一次")
    again = tmp_path / "again.yaml"
    again.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        tickets.submit(requester, [again])
    assert f"ticket {first} (submitted)" in refused(excinfo, "duplicate ticket").found
    assert stored(requester) == [first]
    tickets.reject(dataclass_user(requester, "shenpi-chen"), first, "wrong system")
    assert [r.id for r in tickets.submit(requester, [again])] == ["t-again-0001"]  # a rejected ticket is not live


def test_two_files_of_one_call_asking_the_same_are_refused(requester: Any, tmp_path: Path) -> None:
    first, a = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=SMALL)
    _, b = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=SMALL)
    with pytest.raises(ConfigError) as excinfo:
        tickets.submit(requester, [a, b])
    assert first in refused(excinfo, "duplicate ticket").found
    assert stored(requester) == []


def test_a_lease_change_is_another_request(requester: Any, tmp_path: Path) -> None:
    _, a = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=SMALL, expires="2027-06-30")
    _, b = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=SMALL, expires="2027-07-31")
    assert len(tickets.submit(requester, [a, b])) == 2


def test_the_inbox_still_recognises_its_own_file_after_a_crash(requester: Any, tmp_path: Path) -> None:
    """The daemon claimed and submitted the file and died before moving it: the next pass files it under done/."""
    box = tmp_path / "inbox"
    claimed = box / "claimed" / "caijing"
    claimed.mkdir(parents=True, mode=0o700)
    box.chmod(0o711)
    ticket_id, path = write_ticket(claimed, tenant="gd-mzt", system="mzoa", requester="caijing", vms=SMALL)
    tickets.submit(requester, [path])
    (result,) = inbox.scan(requester, box, settle=0)
    assert (result.outcome, result.ticket) == ("already", ticket_id)
    assert not path.exists() and [p.name.endswith(f"-caijing-{path.name}") for p in (box / "done").iterdir()] == [True]


def dataclass_user(ctx: Any, user: str) -> Any:
    import dataclasses

    return dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, user=user))


# --- 12: refused at submit, as validate refuses what the files show -----------------------------------
def test_resize_and_delete_of_a_missing_or_foreign_target_are_refused_at_submit(world: tuple[object, Engine], tmp_path: Path) -> None:
    _, engine = world
    foreign, foreign_path = write_ticket(tmp_path, tenant="gd-sthjt", system="hjjc", requester="ouweiming", vms=SMALL)
    tickets.submit(engine("ouweiming"), [foreign_path])
    requester = engine("caijing")
    for kind, vms in (("resize", [{**SMALL[0], "flavor": "gc.medium"}]), ("delete", [])):
        for target in ("t-nowhere-0001", foreign):
            _, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", kind=kind, target=target, vms=vms)
            with pytest.raises(ConfigError) as excinfo:
                tickets.submit(requester, [path])
            problem = refused(excinfo, "unknown target")
            assert problem.key == "target" and "gd-sthjt" not in problem.found
    assert stored(requester) == [foreign]


def test_validate_refuses_a_foreign_target_among_the_files_it_checks(tmp_path: Path) -> None:
    foreign, _ = write_ticket(tmp_path, tenant="gd-sthjt", system="hjjc", requester="ouweiming", vms=SMALL)
    _, delete = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", kind="delete", target=foreign, vms=[])
    code, _, err = cli("--root", str(REPO), "validate", str(tmp_path / f"{foreign}.yaml"), str(delete))
    assert code == 2 and f"{delete}:" in err and ": target: unknown target" in err and "gd-sthjt" not in err, err
    code, _, err = cli("--root", str(REPO), "validate")  # the samples' resize and delete target their create ticket
    assert code == 0, err


def test_a_retired_target_is_refused_at_submit(requester: Any, tmp_path: Path) -> None:
    target, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=[{**SMALL[0], "count": 5}])
    tickets.submit(requester, [path])
    tickets.reject(dataclass_user(requester, "shenpi-chen"), target, "no")
    _, delete = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", kind="delete", target=target, vms=[])
    with pytest.raises(ConfigError) as excinfo:
        tickets.submit(requester, [delete])
    assert "(rejected)" in refused(excinfo, "target cannot be changed").found


@pytest.mark.parametrize(("quota", "message", "key"), [
    ({"cloud": "gd-prov", "limits": {}}, "quota change asks for nothing", "quota.limits"),
    ({"cloud": "sec-health", "limits": {"instances": 60}}, "cloud not allowed for this tenant", "quota.cloud"),
])
def test_a_quota_change_that_cannot_be_approved_is_refused_by_validate_and_submit(
        requester: Any, tmp_path: Path, quota: dict[str, Any], message: str, key: str) -> None:
    _, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", kind="quota-change", vms=[], quota=quota)
    with pytest.raises(ConfigError) as excinfo:
        tickets.submit(requester, [path])
    assert refused(excinfo, message).key == key
    code, _, err = cli("--root", str(REPO), "validate", str(path))
    assert code == 2 and f": {key}: {message}" in err, err
    assert stored(requester) == []


def test_an_expired_lease_is_refused_by_validate_as_by_submit(requester: Any, tmp_path: Path) -> None:
    _, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", vms=SMALL, expires="2020-01-31")
    with pytest.raises(ConfigError) as excinfo:
        tickets.submit(requester, [path])
    assert refused(excinfo, "lease already expired").key == "expires"
    code, _, err = cli("--root", str(REPO), "validate", str(path))
    assert code == 2 and ": expires: lease already expired" in err, err


def test_terraform_plans_stay_bound_to_the_hash_earlier_versions_stored() -> None:
    """A plan saved before the duplicate check changed recorded this hash of tickets/t-2026-0002-large.yaml
    (computed by govcloud d9b5981); it must still match, or every waiting plan would be refused as stale."""
    text = (REPO / "tickets" / "t-2026-0002-large.yaml").read_text(encoding="utf-8")
    ticket = parse_ticket(text, "t-2026-0002-large.yaml")
    assert tickets.binding_hash(ticket) == "e75cbe92892c2c72427e9d6287cd388253d545dac248f009310d8c49f3252df3"
    assert tickets.content_hash(ticket) != tickets.binding_hash(ticket)
