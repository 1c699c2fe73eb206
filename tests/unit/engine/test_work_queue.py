"""One work queue for a whole ``apply`` (engine/workqueue.py, issue 16): every ticket's servers at once,
bounded per endpoint and per compute host, anti-affinity groups still spread over distinct hosts.
On the in-memory cloud with nova's scheduling race modelled (``FakeCloud.schedule``) and creates that
take time (``create_latency``), so that what overlaps is seen by the fake itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from govcloud.drivers.base import META_TICKET, Server
from govcloud.engine import provision, tickets
from govcloud.engine.context import EngineContext, build
from govcloud.errors import NotFound
from govcloud.settings import Settings
from govcloud.store import tickets as rows
from tests.support.fakecloud import GZ, FakeCloud, FakeDriver, services, three_centres
from tests.support.tickets import REPO, write_ticket


@pytest.fixture
def cloud() -> FakeCloud:
    fake = three_centres()
    fake.create_latency = 0.05
    return fake


@pytest.fixture
def ctx(tmp_path: Path, cloud: FakeCloud) -> Iterator[EngineContext]:
    settings = Settings.from_env({}).with_overrides(root=str(REPO), db=f"sqlite:///{tmp_path / 'state.db'}", user="admin")
    context = build(dataclasses.replace(settings, state_dir=tmp_path / "state"), driver_factory=cloud.driver)
    yield context
    context.store.engine.dispose()


def bounds(ctx: EngineContext, *, per_endpoint: int, per_host: int) -> None:
    ctx.settings = dataclasses.replace(ctx.settings, engine=dataclasses.replace(
        ctx.settings.engine, concurrency_per_cloud=per_endpoint, concurrency_per_host=per_host))


def approved(ctx: EngineContext, tmp_path: Path, name: str, count: int, *, centre: str = "gz-main", protection: str = "none") -> str:
    ticket_id, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", roles=(), protection=protection,
                                   vms=[{"name": name, "count": count, "flavor": "gc.small", "cloud": "gd-prov", "centre": centre}])
    (row,) = tickets.submit(ctx, [path])
    if row.state == "submitted":
        tickets.approve(ctx, ticket_id)
    return ticket_id


def test_the_servers_of_several_tickets_are_created_together_up_to_the_endpoint_bound(ctx: EngineContext, cloud: FakeCloud,
                                                                                        tmp_path: Path) -> None:
    """Two 4-VM tickets, 8 creates per endpoint: one at a time (the old loop) never had more than 4 in flight."""
    bounds(ctx, per_endpoint=8, per_host=4)
    ids = [approved(ctx, tmp_path, "web", 4), approved(ctx, tmp_path, "app", 4)]
    outcomes = provision.apply(ctx)
    assert [(o.ticket, o.state) for o in outcomes] == [(i, "active") for i in ids]  # outcomes in ticket order
    assert cloud.peak_endpoint[GZ] == 8


def test_the_bound_per_host_holds_per_zone_for_the_hosts_that_are_up(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    """1 build per host: gz-main's two hosts take 2 at once, gz-backup with one host down takes 1."""
    cloud.services[GZ] = services("gz-main", "up", "up") + services("gz-backup", "up", "down")
    bounds(ctx, per_endpoint=8, per_host=1)
    approved(ctx, tmp_path, "web", 5)
    approved(ctx, tmp_path, "app", 4, centre="gz-backup")
    assert {o.state for o in provision.apply(ctx)} == {"active"}
    assert cloud.peak[(GZ, "gz-main")] == 2 and cloud.peak[(GZ, "gz-backup")] == 1


def test_without_host_counts_only_the_endpoint_bound_holds(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    cloud.services.clear()  # nova listed no compute service (or would not say)
    bounds(ctx, per_endpoint=3, per_host=1)
    approved(ctx, tmp_path, "web", 6)
    assert {o.state for o in provision.apply(ctx)} == {"active"}
    assert cloud.peak_endpoint[GZ] == 3


def test_anti_affinity_members_land_on_distinct_hosts(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    """protection ha: one server group per centre; nova places a member where the fewest members already
    *have a host*. Members created together would all get the first host; the queue creates each member
    once the previous one is placed, so each group spreads over both hosts of its zone."""
    cloud.schedule = True
    bounds(ctx, per_endpoint=8, per_host=4)
    ticket_id = approved(ctx, tmp_path, "db", 8, centre="any", protection="ha")
    (outcome,) = provision.apply(ctx)
    assert outcome.state == "active"
    hosts: dict[str, list[str]] = {}
    for server_id, (_, server) in cloud.servers.items():
        if server.metadata.get(META_TICKET) == ticket_id:
            hosts.setdefault(cloud.group_of[server_id], []).append(server.host or "")
    assert len(hosts) == 2 and all(len(h) == 4 for h in hosts.values())
    for group, on in hosts.items():
        assert sorted(on.count(h) for h in set(on)) == [2, 2], (group, on)  # 4 members, 2 hosts: 2 and 2


def test_retiring_several_tickets_deletes_through_the_same_queue(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    bounds(ctx, per_endpoint=8, per_host=4)
    ids = [approved(ctx, tmp_path, "web", 3), approved(ctx, tmp_path, "app", 3)]
    provision.apply(ctx)
    for ticket_id in ids:
        with ctx.store.transaction() as conn:
            rows.move(conn, ticket_id, "active", "retiring", now=ctx.now())
    outcomes = provision.apply(ctx)
    assert [(o.state, o.detail) for o in outcomes] == [("retired", "3 server(s) deleted, quota released")] * 2
    assert not [s for _, s in cloud.servers.values() if s.metadata.get(META_TICKET) in ids]


def test_retire_all_checks_every_ticket_before_it_changes_anything(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    ticket_id = approved(ctx, tmp_path, "web", 2)
    provision.apply(ctx)
    with pytest.raises(NotFound):
        provision.retire_all(ctx, [ticket_id, "t-no-such"])
    with ctx.store.transaction() as conn:
        assert rows.require(conn, ticket_id).state == "active"
    assert [o.state for o in provision.retire_all(ctx, [ticket_id])] == ["retired"]


def test_a_run_lists_each_tenants_servers_once_for_its_first_look_and_to_find_what_to_delete(
        ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four tickets of one tenant provisioned, then retired, together: one listing of its project serves
    every ticket's first look (it made four, one per ticket, all at once before the first create), and one
    finds all their servers to delete; then each ticket's sweep lists what is left, after its deletes (issue 16)."""
    listed: list[str | None] = []
    original = FakeDriver.servers

    def counted(driver: FakeDriver, tenant: str | None = None) -> Iterator[Server]:
        listed.append(tenant)
        return original(driver, tenant)

    monkeypatch.setattr(FakeDriver, "servers", counted)
    ids = [approved(ctx, tmp_path, name, 2) for name in ("web", "app", "db", "mq")]
    assert [o.state for o in provision.apply(ctx)] == ["active"] * 4
    assert listed == ["gd-mzt"]
    listed.clear()
    outcomes = provision.retire_all(ctx, ids)
    assert [(o.state, o.detail) for o in outcomes] == [("retired", "2 server(s) deleted, quota released")] * 4
    assert cloud.in_region(GZ) == []
    assert listed == ["gd-mzt"] * (1 + 4)
