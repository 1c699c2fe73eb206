"""Approval reserves quota transactionally: denials explain themselves, races never over-allocate.

Runs on SQLite and on a real PostgreSQL (``store_url``); no cloud needed, nothing is provisioned.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from govcloud.engine import tickets
from govcloud.engine.context import EngineContext
from govcloud.errors import ConfigError, QuotaDenied
from govcloud.planner.usage import Usage
from govcloud.store import tickets as rows
from tests.support.tickets import engine, open_store, write_ticket

pytestmark = pytest.mark.integration


def test_over_quota_is_denied_with_the_level_the_numbers_and_what_fits(store_url: str, tmp_path: Path) -> None:
    requester = engine(store_url, "ouweiming")
    first, first_path = write_ticket(tmp_path, tenant="gd-sthjt", system="hjjc", requester="ouweiming",
                                     vms=[{"name": "app", "count": 30, "flavor": "gc.small", "cloud": "gd-prov"}])
    second, second_path = write_ticket(tmp_path, tenant="gd-sthjt", system="hjjc", requester="ouweiming",
                                       vms=[{"name": "app", "count": 15, "flavor": "gc.small", "cloud": "gd-prov"}])
    tickets.submit(requester, [first_path, second_path])
    approver = engine(store_url, "shenpi-chen")
    tickets.approve(approver, first)
    with requester.store.transaction() as conn:
        before = rows.ledger_lines(conn)
    with pytest.raises(QuotaDenied) as denied:
        tickets.approve(approver, second)
    assert denied.value.explanation == [
        "tenant limit of tenant gd-sthjt in gd-prov: instances 30 + 15 = 45 > 40",
        "tenant limit of tenant gd-sthjt in gd-prov: at most 10 × gc.small (app) would fit; requested 15",
    ]
    assert tickets.show(approver, second).state == "submitted"
    with requester.store.transaction() as conn:
        assert rows.ledger_lines(conn) == before


def test_fifty_approvals_racing_for_the_last_quota_never_over_allocate(store_url: str, tmp_path: Path) -> None:
    """gd-mzt may run 40 instances in gd-prov; 50 tickets of 3 VMs race: exactly 13 fit (39 instances)."""
    requester = engine(store_url, "caijing")
    ids, paths = [], []
    for i in range(50):  # 50 requests of their own (VM names differ): the same request twice is a duplicate
        ticket_id, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing",
                                       vms=[{"name": f"app{i}", "count": 3, "flavor": "gc.medium", "cloud": "gd-prov"}])
        ids.append(ticket_id)
        paths.append(path)
    tickets.submit(requester, paths)
    approver = engine(store_url, "shenpi-chen")
    outcomes = _race([(t, dataclasses.replace(approver, store=open_store(store_url))) for t in ids])  # a connection pool per "process"
    assert sorted(outcomes.values()).count("approved") == 13
    assert len(outcomes) == 50
    with approver.store.transaction() as conn:
        lines = rows.ledger_lines(conn)
        states = {row.id: row.state for row in rows.listing(conn)}
    assert sum(line.resources.instances for line in lines) == 39
    assert {t for t, s in states.items() if s == "approved"} == {t for t, o in outcomes.items() if o == "approved"}
    count, problems = approver.store.audit.verify()
    assert problems == [] and count >= 1 + 50 + 13


def test_quota_change_raises_the_limit_once_approved(store_url: str, tmp_path: Path) -> None:
    requester, approver = engine(store_url, "ouweiming"), engine(store_url, "shenpi-chen")
    _, big_path = write_ticket(tmp_path, tenant="gd-sthjt", system="hjjc", requester="ouweiming",
                                 vms=[{"name": "app", "count": 45, "flavor": "gc.small", "cloud": "gd-prov"}])
    change, change_path = write_ticket(tmp_path, tenant="gd-sthjt", system="hjjc", requester="ouweiming", kind="quota-change",
                                       vms=[], quota={"cloud": "gd-prov", "limits": {"instances": 60}})
    with pytest.raises(ConfigError, match="ticket exceeds what the tenant could ever get"):
        tickets.submit(requester, [big_path])  # 45 > 40: refused at submission while the limit is 40
    tickets.submit(requester, [change_path])
    plan = tickets.plan_for(approver, tickets.show(approver, change))
    assert plan.ok and plan.notes == ("limit of gd-sthjt in gd-prov: instances 40 → 60",)
    tickets.approve(approver, change)
    fresh = engine(store_url, "ouweiming")  # a new process sees the override
    assert fresh.state.quotas.of("gd-sthjt", "gd-prov").limit.instances == 60  # type: ignore[union-attr]
    tickets.approve(engine(store_url, "shenpi-chen"), tickets.submit(fresh, [big_path])[0].id)
    audit = [r.action for r in approver.store.audit.records(subject=f"ticket:{change}")]
    assert audit == ["ticket.submit", "ticket.approve"]


def test_quota_change_below_what_is_in_use_is_denied(store_url: str, tmp_path: Path) -> None:
    requester, approver = engine(store_url, "ouweiming"), engine(store_url, "shenpi-chen")
    used, used_path = write_ticket(tmp_path, tenant="gd-sthjt", system="hjjc", requester="ouweiming",
                                   vms=[{"name": "app", "count": 30, "flavor": "gc.small", "cloud": "gd-prov"}])
    shrink, shrink_path = write_ticket(tmp_path, tenant="gd-sthjt", system="hjjc", requester="ouweiming", kind="quota-change",
                                       vms=[], quota={"cloud": "gd-prov", "limits": {"instances": 20, "vcpus": 100000}})
    tickets.submit(requester, [used_path, shrink_path])
    tickets.approve(approver, used)
    with pytest.raises(QuotaDenied) as denied:
        tickets.approve(approver, shrink)
    assert denied.value.explanation == [
        "capacity limit of cloud gd-prov (capacity × overcommit): vcpus 160 + 99840 = 100000 > 73728",
        "parent limit of parent gd-zf in gd-prov: vcpus 160 + 99840 = 100000 > 8000",
        "in use limit of tenant gd-sthjt in gd-prov (used + reserved must fit the new limit): instances 30 + 0 = 30 > 20",
    ]
    assert engine(store_url, "ouweiming").state.quotas.of("gd-sthjt", "gd-prov").limit.instances == 40  # type: ignore[union-attr]



ROUNDS = [("gd-scl", "cjrfw", "wanghuimin"), ("gd-swt", "dwmy", "zengfang"), ("gd-gxt", "qyfw", "wuyan"), ("gd-xfj", "xfxx", "dengli")]
"""Tenants of tier small in gd-prov (10 instances), systems with protection ha (never auto-approved)."""


def _race(approvers: list[tuple[str, EngineContext]]) -> dict[str, str]:
    """Approve each ticket in its own thread with its own context, all released at once: id → outcome."""
    outcomes: dict[str, str] = {}
    start = threading.Barrier(len(approvers))

    def approve(ticket_id: str, own: EngineContext) -> None:
        start.wait()
        try:
            tickets.approve(own, ticket_id)
            outcomes[ticket_id] = "approved"
        except QuotaDenied:
            outcomes[ticket_id] = "denied"
        finally:
            own.store.close()

    threads = [threading.Thread(target=approve, args=pair) for pair in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize(("tenant", "system", "requester"), ROUNDS)
def test_approvals_racing_a_quota_cut_never_over_allocate(store_url: str, tmp_path: Path, tenant: str, system: str,
                                                          requester: str) -> None:
    """Five tickets of 2 VMs and a cut of the tenant's limit from 10 to 2 instances, each approved by its own
    "process" whose command started (engine context built, overrides read) before any of them lands.
    Whatever the order, used + reserved never exceeds the limit in force (the cut, once approved)."""
    submitter = engine(store_url, requester)
    batch = [write_ticket(tmp_path, tenant=tenant, system=system, requester=requester,
                          vms=[{"name": f"app{i}", "count": 2, "flavor": "gc.small", "cloud": "gd-prov"}]) for i in range(5)]
    cut, cut_path = write_ticket(tmp_path, tenant=tenant, system=system, requester=requester, kind="quota-change", vms=[],
                                 quota={"cloud": "gd-prov", "limits": {"instances": 2}})
    tickets.submit(submitter, [path for _, path in batch] + [cut_path])
    ids = [ticket_id for ticket_id, _ in batch] + [cut]
    outcomes = _race([(ticket_id, engine(store_url, "shenpi-chen", store=open_store(store_url))) for ticket_id in ids])
    assert len(outcomes) == 6
    with submitter.store.transaction() as conn:
        used = Usage.from_lines(rows.ledger_lines(conn)).of_tenant(tenant, "gd-prov")
        override = rows.overrides(conn).get((tenant, "gd-prov"))
    limit = override[0].instances if override else 10
    assert (override is not None) == (outcomes[cut] == "approved")
    assert used.instances <= limit, f"{tenant}: {used.instances} instances reserved, limit {limit} ({outcomes})"
    assert used.instances == 2 * [outcomes[t] for t, _ in batch].count("approved")
