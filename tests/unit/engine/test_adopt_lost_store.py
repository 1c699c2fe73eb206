"""A lost, reset or restored store must not duplicate VMs (issue 11 item 15): the first provisioning
run of a ticket finds the servers its request already has by their metadata and adopts them; servers
of another request under the same ticket id (or with one of its names) stop the ticket; reconcile
reports the duplicates that exist anyway."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from govcloud.drivers.base import META_INDEX, META_SYSTEM, META_TENANT, META_TICKET, ServerSpec
from govcloud.engine import provision, tickets
from govcloud.engine.context import EngineContext, build
from govcloud.engine.reconcile import Reconciler
from govcloud.errors import PermanentError
from govcloud.settings import Settings
from govcloud.store import tickets as rows
from tests.support.fakecloud import GZ, FakeCloud, FakeDriver, three_centres
from tests.support.tickets import REPO, write_ticket

HA = [{"name": "web", "count": 2, "flavor": "gc.medium", "cloud": "gd-prov"}, {"name": "app", "count": 1, "flavor": "gc.large", "cloud": "gd-prov"}]


@pytest.fixture
def cloud() -> FakeCloud:
    return three_centres()


class Stores:
    """Engine contexts on one fake cloud; ``lose()`` throws the store away (a new, empty database file)."""

    def __init__(self, tmp_path: Path, cloud: FakeCloud) -> None:
        self.tmp_path, self.cloud, self.generation = tmp_path, cloud, 0
        self.opened: dict[tuple[int, str], EngineContext] = {}

    def as_(self, user: str) -> EngineContext:
        key = (self.generation, user)
        if key not in self.opened:  # one context per store and user: loading the sample data is the slow part
            db = f"sqlite:///{self.tmp_path / f'state-{self.generation}.db'}"
            settings = Settings.from_env({}).with_overrides(root=str(REPO), db=db, user=user)
            state_dir = self.tmp_path / f"state-{self.generation}"
            self.opened[key] = build(dataclasses.replace(settings, state_dir=state_dir), driver_factory=self.cloud.driver)
        return self.opened[key]

    def lose(self) -> None:
        self.generation += 1

    def provision(self, path: Path, ticket_id: str, requester: str) -> provision.Outcome:
        """Submit (as the department), approve (as the e-government office), apply (as the operator)."""
        tickets.submit(self.as_(requester), [path])
        if tickets.show(self.as_("shenpi-chen"), ticket_id).state == "submitted":
            tickets.approve(self.as_("shenpi-chen"), ticket_id)
        (outcome,) = provision.apply(self.as_("yunwei-he"), [ticket_id], configure=False)
        return outcome

    def close(self) -> None:
        for ctx in self.opened.values():
            ctx.store.close()


@pytest.fixture
def stores(tmp_path: Path, cloud: FakeCloud) -> Any:
    made = Stores(tmp_path, cloud)
    yield made
    made.close()


def server_ids(ctx: EngineContext, ticket_id: str) -> dict[str, str | None]:
    with ctx.store.transaction() as conn:
        return {vm.name: vm.server_id for vm in rows.vms_of(conn, ticket_id)}


def names(cloud: FakeCloud) -> Counter[str]:
    return Counter(s.name for _, s in cloud.servers.values())


def findings(ctx: EngineContext) -> set[tuple[str, str, str]]:
    reconciler = Reconciler(ctx, policy="report")
    try:
        return {(d.kind, d.reason, d.name) for result in reconciler.run() for d in result.findings}
    finally:
        reconciler.close()


def test_apply_after_the_store_is_lost_adopts_every_server_and_creates_none(tmp_path: Path, stores: Stores, cloud: FakeCloud) -> None:
    ticket_id, path = write_ticket(tmp_path, tenant="gd-zsj", system="zwfw", requester="yuantao", protection="ha", roles=(), vms=HA)
    assert stores.provision(path, ticket_id, "yuantao").state == "active"
    first = server_ids(stores.as_("yunwei-he"), ticket_id)
    assert cloud.creates == 3 and len(first) == 3
    stores.lose()
    outcome = stores.provision(path, ticket_id, "yuantao")
    assert (outcome.state, cloud.creates) == ("active", 3), outcome.detail
    assert server_ids(stores.as_("yunwei-he"), ticket_id) == first  # the same servers, recorded again
    assert max(names(cloud).values()) == 1
    assert findings(stores.as_("yunwei-he")) == set()


def test_the_lookup_is_one_listing_per_endpoint(tmp_path: Path, stores: Stores, cloud: FakeCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket_id, path = write_ticket(tmp_path, tenant="gd-zsj", system="zwfw", requester="yuantao", protection="ha", roles=(), vms=HA)
    listings: list[str | None] = []
    real = FakeDriver.servers

    def counting(self: FakeDriver, tenant: str | None = None) -> Any:
        listings.append(tenant)
        return real(self, tenant)

    monkeypatch.setattr(FakeDriver, "servers", counting)
    stores.provision(path, ticket_id, "yuantao")
    assert listings == ["gd-zsj"]  # both centres of the HA ticket are in one region


def test_duplicates_left_by_an_earlier_run_are_adopted_once_kept_and_reported(tmp_path: Path, stores: Stores, cloud: FakeCloud) -> None:
    """Two servers with one VM's metadata (what the old first run made after a lost store): the oldest
    is adopted, neither is deleted (a department may use either), reconcile reports the second."""
    ticket_id, path = write_ticket(tmp_path, tenant="gd-gat", system="oa", requester="sunkai", roles=(),
                                   vms=[{"name": "db", "count": 1, "flavor": "gc.large", "cloud": "gd-prov", "centre": "gz-main"}])
    name = f"gd-gat-oa-{ticket_id}-1"
    meta = {META_TICKET: ticket_id, META_INDEX: "1", META_TENANT: "gd-gat", META_SYSTEM: "oa"}
    older = cloud.add_foreign(GZ, name=name, tenant="gd-gat", zone="gz-main", metadata=meta)
    newer = cloud.add_foreign(GZ, name=name, tenant="gd-gat", zone="gz-main", metadata=meta)
    assert stores.provision(path, ticket_id, "sunkai").state == "active"
    assert cloud.creates == 0 and {older, newer} <= set(cloud.servers)
    operator = stores.as_("yunwei-he")
    assert server_ids(operator, ticket_id) == {name: older}
    assert findings(operator) == {("orphan", "duplicate", name)}


@pytest.mark.parametrize("other", [
    pytest.param({"system": "hukou"}, id="same-id-other-system"),
    pytest.param({"system": "oa", "index": "7"}, id="index-outside-the-plan"),
    pytest.param({"name_only": True}, id="same-name-without-metadata"),
])
def test_servers_of_another_request_are_never_adopted_and_stop_the_ticket(tmp_path: Path, stores: Stores, cloud: FakeCloud,
                                                                         other: dict[str, Any]) -> None:
    ticket_id, path = write_ticket(tmp_path, tenant="gd-gat", system="oa", requester="sunkai", roles=(),
                                   vms=[{"name": "db", "count": 2, "flavor": "gc.large", "cloud": "gd-prov", "centre": "gz-main"}])
    if other.get("name_only"):
        foreign = cloud.add_foreign(GZ, name=f"gd-gat-oa-{ticket_id}-2", tenant="gd-gat", zone="gz-main")
    else:
        system, index = other["system"], other.get("index", "1")
        foreign = cloud.add_foreign(GZ, name=f"gd-gat-{system}-{ticket_id}-{index}", tenant="gd-gat", zone="gz-main",
                                    metadata={META_TICKET: ticket_id, META_INDEX: index, META_TENANT: "gd-gat", META_SYSTEM: system})
    before = dict(cloud.servers)
    outcome = stores.provision(path, ticket_id, "sunkai")
    assert outcome.state == "failed" and foreign in outcome.detail and "another request" in outcome.detail
    assert "submit this request under a new id" in outcome.detail and "no server was created or deleted" in outcome.detail
    assert cloud.creates == 0 and cloud.servers == before
    with stores.as_("yunwei-he").store.transaction() as conn:
        assert rows.ledger_lines(conn, ticket=ticket_id) == []  # the quota went back


def test_the_same_id_in_another_tenant_is_another_request_and_reconcile_says_so(tmp_path: Path, stores: Stores, cloud: FakeCloud) -> None:
    """A fresh store hands out t-…-0001 again, to another department: its project does not see the first
    request's servers, so its own are created; reconcile names the first request's as ``reused``."""
    vms = [{"name": "db", "count": 1, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}]
    ticket_id, path = write_ticket(tmp_path, tenant="gd-gat", system="oa", requester="sunkai", roles=(), vms=vms)
    assert stores.provision(path, ticket_id, "sunkai").state == "active"
    stores.lose()
    (tmp_path / "other").mkdir()
    _, again = write_ticket(tmp_path / "other", tenant="gd-mzt", system="mzoa", requester="caijing", roles=(), vms=vms, ticket_id=ticket_id)
    assert stores.provision(again, ticket_id, "caijing").state == "active"
    assert cloud.creates == 2
    assert findings(stores.as_("yunwei-he")) == {("orphan", "reused", f"gd-gat-oa-{ticket_id}-1")}


def test_a_failed_first_run_keeps_the_servers_it_adopted(tmp_path: Path, stores: Stores, cloud: FakeCloud,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The rollback deletes what this run created, never the running servers it found."""
    ticket_id, path = write_ticket(tmp_path, tenant="gd-gat", system="oa", requester="sunkai", roles=(),
                                   vms=[{"name": "db", "count": 2, "flavor": "gc.large", "cloud": "gd-prov", "centre": "gz-main"}])
    meta = {META_TICKET: ticket_id, META_INDEX: "1", META_TENANT: "gd-gat", META_SYSTEM: "oa"}
    running = cloud.add_foreign(GZ, name=f"gd-gat-oa-{ticket_id}-1", tenant="gd-gat", zone="gz-main", metadata=meta)

    def refused(self: FakeDriver, spec: ServerSpec) -> Any:
        raise PermanentError(f"create server {spec.name}: HTTP 403: Quota exceeded")

    monkeypatch.setattr(FakeDriver, "create_server", refused)
    outcome = stores.provision(path, ticket_id, "sunkai")
    assert outcome.state == "failed" and "except 1 that existed before this run" in outcome.detail, outcome.detail
    assert running in cloud.servers
