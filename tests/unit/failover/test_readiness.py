"""Readiness of recovery plans from the store, on the in-memory cloud with a clock the test moves: the
store's readers (drills through ``create_run``/``end_run`` as the drill helper writes them, ``dr`` VMs,
their newest replicas, ``dr`` ledger lines), ``failover/reads.readiness`` after a real replication, the
requester's filter, and the exporter's families."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.registry import CollectorRegistry

from govcloud.engine.context import EngineContext
from govcloud.exporter.collector import GovcloudCollector
from govcloud.failover.reads import readiness
from govcloud.model.resources import Resources
from govcloud.model.states import MOVABLE
from govcloud.settings import DrSettings
from govcloud.store import readiness as ready_rows
from govcloud.store import runs
from govcloud.store import tickets as rows
from tests.support.tickets import write_ticket
from tests.unit.failover.test_replicate import T0, Clock, clock, cloud, ctx, replicator

__all__ = ["clock", "cloud", "ctx"]  # the fixtures of test_replicate.py


def hukou(ctx: EngineContext, tmp_path: Path, protection: str = "dr", count: int = 2) -> str:
    """A gd-gat/hukou ticket (group public-security: rpo 15m, drill_every 90d), active."""
    from govcloud.engine import provision, tickets

    ticket_id, path = write_ticket(tmp_path, tenant="gd-gat", system="hukou", requester="sunkai", roles=(), protection=protection,
                                   vms=[{"name": "app", "count": count, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
    (row,) = tickets.submit(ctx, [path])
    if row.state == "submitted":
        tickets.approve(ctx, ticket_id)
    provision.apply(ctx, [ticket_id])
    return ticket_id


def drill(ctx: EngineContext, group: str, *, at: datetime.datetime, state: str = "succeeded", cloud: str = "gd-prov") -> int:
    """A drill run as the drill helper records it (the contract): kind drill, detail naming the group."""
    with ctx.store.transaction() as conn:
        run = runs.create_run(conn, kind="drill", cloud=cloud, centre="sg-dr", user="yunwei-he", owner="test", now=at.isoformat(),
                              plan={}, detail={"group": group})
        assert runs.end_run(conn, run.id, state=state, now=(at + datetime.timedelta(minutes=3)).isoformat(),
                            detail={"group": group, "rto_s": 95.0})
    return run.id


def plans(ctx: EngineContext, user: str = "yunwei-he", **settings: Any) -> dict[str, dict[str, Any]]:
    actor = ctx.state.users.get(user)
    assert actor is not None
    return {p["plan"]: p for p in readiness(ctx.store, actor, ctx.state, settings=DrSettings(**settings), now=ctx.clock())}


def test_last_drills_keeps_each_groups_newest_successful_drill(ctx: EngineContext) -> None:
    drill(ctx, "public-security", at=T0 - datetime.timedelta(days=50))
    drill(ctx, "public-security", at=T0 - datetime.timedelta(days=10))
    drill(ctx, "public-security", at=T0 - datetime.timedelta(days=1), state="failed")  # not a pass
    drill(ctx, "data-exchange", at=T0 - datetime.timedelta(days=70))
    drill(ctx, "data-exchange", at=T0 - datetime.timedelta(days=80))  # older: not the newest
    with ctx.store.transaction() as conn:
        found = runs.last_drills(conn)
    assert found == {("gd-prov", "public-security"): T0 - datetime.timedelta(days=10, minutes=-3),
                     ("gd-prov", "data-exchange"): T0 - datetime.timedelta(days=70, minutes=-3)}


def test_the_dr_readers_see_dr_vms_their_reservation_and_newest_replica(ctx: EngineContext, tmp_path: Path, clock: Clock) -> None:
    dr = hukou(ctx, tmp_path)
    hukou(ctx, tmp_path, "ha", count=1)  # not dr: not read
    replicator(ctx).run()
    clock.advance(minutes=20)
    replicator(ctx).run(system="hukou")  # due again (15 min RPO): a newer replica per VM
    with ctx.store.transaction() as conn:
        found = ready_rows.readiness_facts(conn, MOVABLE)
    assert [(v.ticket, v.idx, v.system) for v in found.vms] == [(dr, 1, "hukou"), (dr, 2, "hukou")]
    assert {k: v for k, v in found.newest.items()} == {(dr, 1): T0 + datetime.timedelta(minutes=20),
                                                      (dr, 2): T0 + datetime.timedelta(minutes=20)}
    small = found.vms[0].size
    assert found.reserved == {(dr, "gd-prov", "sg-dr"): Resources(2, 2 * small.vcpus, 2 * small.ram_mb, 2 * small.disk_gb)}
    assert found.held[("gd-prov", "sg-dr")] == found.reserved[(dr, "gd-prov", "sg-dr")]


def test_ready_after_replication_and_a_drill_then_not_ready_past_drill_every_or_past_the_rpo(ctx: EngineContext, tmp_path: Path,
                                                                                             clock: Clock) -> None:
    hukou(ctx, tmp_path)
    replicator(ctx).run()
    before = plans(ctx)["public-security"]
    assert before["state"] == "NOT READY" and [r["kind"] for r in before["reasons"]] == ["drill"]
    drill(ctx, "public-security", at=T0)
    clock.advance(minutes=10)
    now = plans(ctx)["public-security"]
    assert now["ready"] and now["why"] == "" and now["dr_vms"] == 2 and now["last_drill"] == (T0 + datetime.timedelta(minutes=3)).isoformat()
    clock.advance(minutes=6)  # the replicas are 16 minutes old: beyond the group's 15 min RPO
    late = plans(ctx)["public-security"]
    assert [r["kind"] for r in late["reasons"]] == ["replica", "replica"] and "older than its RPO 15m" in late["why"]
    clock.advance(days=91)
    replicator(ctx).run()  # fresh replicas; the drill is 91 days old
    old = plans(ctx)["public-security"]
    assert [r["kind"] for r in old["reasons"]] == ["drill"] and "older than drill_every 90d" in old["why"]


def test_a_released_reservation_makes_it_not_ready(ctx: EngineContext, tmp_path: Path) -> None:
    dr = hukou(ctx, tmp_path)
    replicator(ctx).run()
    drill(ctx, "public-security", at=T0)
    assert plans(ctx)["public-security"]["ready"]
    with ctx.store.transaction() as conn:
        line = rows.ledger_lines(conn, ticket=dr)
        size = next(x.resources for x in line if x.kind == "dr")
        rows.claim_reservation(conn, dr, "gd-prov", "sg-dr", Resources(1, 1, 1, 1), now=ctx.now())  # something used part of it
    shrunk = plans(ctx)["public-security"]
    assert [r["kind"] for r in shrunk["reasons"]] == ["reservation"]
    assert f"({size.vcpus - 1} vCPU, {size.ram_mb - 1} MiB) no longer covers its dr VMs ({size.vcpus} vCPU" in shrunk["why"]


def test_a_requester_sees_the_plans_of_its_tenants_and_only_its_own_vms_reasons(ctx: EngineContext, tmp_path: Path) -> None:
    hukou(ctx, tmp_path)
    mine = plans(ctx, "sunkai")  # gd-gat: public-security names gd-gat/hukou and gd-gat/jwzh
    assert set(mine) == {"public-security"} and "no ready replica" in mine["public-security"]["why"]
    other = plans(ctx, "caijing")  # gd-mzt: welfare only; hukou's VMs are none of its business
    assert set(other) == {"welfare"}
    assert len(plans(ctx)) >= 5  # an operator sees every group


def test_the_exporter_exports_readiness_replica_age_and_the_last_drill(ctx: EngineContext, tmp_path: Path, clock: Clock) -> None:
    hukou(ctx, tmp_path)
    replicator(ctx).run()
    drill(ctx, "public-security", at=T0)
    registry = CollectorRegistry()
    GovcloudCollector(ctx.store, lambda: ctx.state, clock=clock, registry=registry, dr=DrSettings())
    clock.advance(minutes=10)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    group = {"cloud": "gd-prov", "group": "public-security"}
    system = {"cloud": "gd-prov", "tenant": "gd-gat", "system": "hukou"}
    assert value("govcloud_recovery_plan_ready", **group) == 1.0
    assert value("govcloud_recovery_plan_ready", cloud="gd-prov", group="welfare") == 0.0  # never drilled
    assert value("govcloud_recovery_plan_last_drill_timestamp_seconds", **group) == (T0 + datetime.timedelta(minutes=3)).timestamp()
    assert value("govcloud_recovery_plan_drill_every_seconds", **group) == 90 * 86400
    assert value("govcloud_dr_replica_age_seconds", **system) == 600.0 and value("govcloud_dr_rpo_seconds", **system) == 900.0
    clock.advance(minutes=6)
    assert value("govcloud_recovery_plan_ready", **group) == 0.0  # the replicas passed the RPO: the same collector, a later scrape
    assert value("govcloud_dr_replica_age_seconds", **system) == 960.0
    replicator(ctx).run()  # fresh replicas: the facts changed, the verdict is computed again
    assert value("govcloud_recovery_plan_ready", **group) == 1.0 and value("govcloud_dr_replica_age_seconds", **system) == 0.0
    clock.advance(days=91)  # the drill is too old now; nothing else changed
    assert value("govcloud_recovery_plan_ready", **group) == 0.0


@pytest.mark.parametrize("protection", ["ha", "none"])
def test_tickets_that_are_not_dr_have_no_dr_vms_even_when_their_plan_mentions_dr(ctx: EngineContext, tmp_path: Path,
                                                                                 protection: str) -> None:
    ticket = hukou(ctx, tmp_path, protection, count=1)
    with ctx.store.transaction() as conn:
        plan = rows.require(conn, ticket).plan
        rows.set_plan(conn, ticket, {**plan, "note": "dr"}, now=ctx.now())  # the string "dr" in the plan: the prefilter lets it through
        assert ready_rows.dr_vms(conn, MOVABLE) == []


def test_dr_vm_rows_reads_many_tickets_in_chunks(ctx: EngineContext, tmp_path: Path) -> None:
    dr = hukou(ctx, tmp_path)
    with ctx.store.transaction() as conn:
        found = ready_rows.dr_vm_rows(conn, [f"x-{i:04d}" for i in range(1200)] + [dr])  # three IN lists of up to 500
    assert [(v.ticket, v.idx) for v in found] == [(dr, 1), (dr, 2)] and found[0].size.vcpus > 0


def test_the_readiness_cache_recomputes_only_when_the_facts_change_or_the_clock_goes_back(ctx: EngineContext, tmp_path: Path,
                                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from govcloud.exporter import readiness as exported

    hukou(ctx, tmp_path)
    calls: list[datetime.datetime] = []
    real = exported.compute

    def counted(found: Any, state: Any, *, now: datetime.datetime, settings: DrSettings) -> Any:
        calls.append(now)
        return real(found, state, now=now, settings=settings)

    monkeypatch.setattr(exported, "compute", counted)
    with ctx.store.transaction() as conn:
        facts = ready_rows.readiness_facts(conn, MOVABLE)
    cache, settings = exported.ReadinessCache(), DrSettings()
    cache.families(facts, ctx.state, now=T0, settings=settings)
    cache.families(facts, ctx.state, now=T0 + datetime.timedelta(minutes=1), settings=settings)
    same = dataclasses.replace(facts, vms=list(facts.vms), held=dict(facts.held))  # re-read, equal: a VM changed status elsewhere
    cache.families(same, ctx.state, now=T0 + datetime.timedelta(minutes=2), settings=settings)
    assert len(calls) == 1
    other = "gz-main" if facts.vms[0].centre == "gz-backup" else "gz-backup"
    moved = dataclasses.replace(facts, vms=[facts.vms[0]._replace(centre=other), *facts.vms[1:]])  # a failover moved a VM
    cache.families(moved, ctx.state, now=T0 + datetime.timedelta(minutes=3), settings=settings)
    cache.families(moved, ctx.state, now=T0, settings=settings)  # the clock went back: computed again
    assert len(calls) == 3

