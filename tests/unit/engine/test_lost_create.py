"""A create whose answer is lost (the POST reached nova, the reply did not reach govcloud) must not boot
a second server when the engine retries it (engine/create.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from govcloud.drivers.base import Endpoint, Server, ServerSpec
from govcloud.engine import provision, tickets
from govcloud.engine.context import EngineContext, build
from govcloud.errors import TemporaryError
from govcloud.settings import Settings
from tests.support.fakecloud import FakeCloud, FakeDriver
from tests.support.tickets import REPO, write_ticket


@dataclasses.dataclass
class LosingCloud(FakeCloud):
    """Every server's first create happens, but its answer is lost (a reset after forwarding)."""

    lost: set[str] = dataclasses.field(default_factory=set)

    def driver(self, endpoint: Endpoint) -> FakeDriver:
        return LosingDriver(self, endpoint)


class LosingDriver(FakeDriver):
    cloud: LosingCloud

    def create_server(self, spec: ServerSpec) -> Server:
        server = super().create_server(spec)
        if spec.name not in self.cloud.lost:
            self.cloud.lost.add(spec.name)
            raise TemporaryError(f"create server {spec.name}: connection reset by peer", delay=0)
        return server


@pytest.fixture
def cloud() -> LosingCloud:
    return LosingCloud()


def engine(tmp_path: Path, cloud: FakeCloud, user: str) -> EngineContext:
    settings = Settings.from_env({}).with_overrides(root=str(REPO), db=f"sqlite:///{tmp_path / 'state.db'}", user=user)
    return build(dataclasses.replace(settings, state_dir=tmp_path / "state"), driver_factory=cloud.driver)


def test_a_lost_create_answer_is_adopted_not_created_again(tmp_path: Path, cloud: LosingCloud) -> None:
    ticket_id, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing",
                                   vms=[{"name": "app", "count": 2, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])
    tickets.submit(engine(tmp_path, cloud, "caijing"), [path])  # 2 small VMs: auto-approved
    operator = engine(tmp_path, cloud, "yunwei-he")
    (outcome,) = provision.apply(operator, [ticket_id], configure=False)
    assert outcome.state == "active", outcome.detail
    servers = [s for _, s in cloud.servers.values() if s.metadata.get("govcloud:ticket") == ticket_id]
    assert sorted(s.name for s in servers) == [f"gd-mzt-mzoa-{ticket_id}-1", f"gd-mzt-mzoa-{ticket_id}-2"]
    assert cloud.creates == 2
    with operator.store.transaction() as conn:
        from govcloud.store import tickets as rows

        assert {vm.server_id for vm in rows.vms_of(conn, ticket_id)} == {s.id for s in servers}
