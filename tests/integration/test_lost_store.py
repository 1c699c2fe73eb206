"""A lost store against the real devcloud (issue 11 item 15): apply, throw the store away, submit,
approve and apply the same ticket again → the same nova servers, none created; reconcile finds no
duplicate; the same ticket id from another business system is refused without touching anything."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest

from govcloud.engine import provision, tickets
from govcloud.engine.context import EngineContext
from govcloud.engine.reconcile import Reconciler
from govcloud.store import tickets as rows
from tests.integration.conftest import Devcloud
from tests.support.tickets import engine, unique_id, write_ticket

pytestmark = pytest.mark.integration

HA = [{"name": "web", "count": 2, "flavor": "gc.small", "cloud": "gd-prov"}, {"name": "app", "count": 1, "flavor": "gc.medium", "cloud": "gd-prov"}]


def nova() -> Any:
    return openstack.connect(cloud="devcloud-admin", region_name="gd-gz")


def carrying(ticket_id: str) -> list[Any]:
    """Every server of the region with this ticket's metadata, in any project."""
    return [s for s in nova().compute.servers(all_projects=True) if s.metadata.get("govcloud:ticket") == ticket_id]


def provisioned(db: str, path: Path, ticket_id: str) -> provision.Outcome:
    tickets.submit(engine(db, "yuantao"), [path])
    tickets.approve(engine(db, "shenpi-chen"), ticket_id)
    (outcome,) = provision.apply(engine(db, "yunwei-he"), [ticket_id], configure=False)
    return outcome


def recorded(ctx: EngineContext, ticket_id: str) -> dict[str, str | None]:
    with ctx.store.transaction() as conn:
        return {vm.name: vm.server_id for vm in rows.vms_of(conn, ticket_id)}


@pytest.fixture
def ticket(devcloud: Devcloud) -> Iterator[str]:
    """A fresh ticket id; whatever carries it is deleted at the end, whichever store knew it."""
    ticket_id = unique_id("lost")
    yield ticket_id
    conn = nova()
    for server in carrying(ticket_id):
        conn.compute.delete_server(server.id, ignore_missing=True)
    for server in carrying(ticket_id):
        conn.compute.wait_for_delete(server, wait=120)


def test_a_lost_store_adopts_the_servers_of_a_reapplied_ticket(tmp_path: Path, ticket: str) -> None:
    (tmp_path / "a").mkdir()
    _, path = write_ticket(tmp_path / "a", tenant="gd-zsj", system="zwfw", requester="yuantao", protection="ha", vms=HA, ticket_id=ticket)
    first_db, second_db = f"sqlite:///{tmp_path / 'first.db'}", f"sqlite:///{tmp_path / 'second.db'}"
    first = provisioned(first_db, path, ticket)
    assert first.state == "active", first.detail
    before = recorded(engine(first_db, "yunwei-he"), ticket)
    assert len(before) == 3 and len(carrying(ticket)) == 3

    outcome = provisioned(second_db, path, ticket)  # the store thrown away: a new, empty file
    assert outcome.state == "active", outcome.detail
    operator = engine(second_db, "yunwei-he")
    assert recorded(operator, ticket) == before
    servers = carrying(ticket)
    assert sorted(s.id for s in servers) == sorted(i for i in before.values() if i) and max(Counter(s.name for s in servers).values()) == 1
    reconciler = Reconciler(operator, policy="report")
    try:
        found = [d for result in reconciler.run() for d in result.findings if d.ticket == ticket]
    finally:
        reconciler.close()
    assert found == []

    (tmp_path / "b").mkdir()  # a fresh store hands the same id to another of the tenant's systems
    _, other = write_ticket(tmp_path / "b", tenant="gd-zsj", system="yss", requester="yuantao", protection="ha", vms=HA[:1], ticket_id=ticket)
    refused = provisioned(f"sqlite:///{tmp_path / 'third.db'}", other, ticket)
    assert refused.state == "failed" and "another request" in refused.detail and "no server was created or deleted" in refused.detail
    assert sorted(s.id for s in carrying(ticket)) == sorted(s.id for s in servers)

    assert provision.retire(operator, ticket).state == "retired"
    assert carrying(ticket) == []
