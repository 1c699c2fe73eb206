"""The in-memory cloud's ``evacuate_server`` refuses what nova refuses, so failover's unit tests can
rely on it: a source host still up, an unknown target, another tenant's or a vanished server."""

from __future__ import annotations

import pytest

from govcloud.drivers.base import ComputeService, Endpoint, ServerSpec
from govcloud.errors import PermanentError
from govcloud.model.resources import Resources
from tests.support.fakecloud import FakeCloud, FakeDriver

GZ = Endpoint("devcloud-admin", "gd-gz")


def booted(main: str = "up") -> tuple[FakeDriver, str]:
    cloud = FakeCloud()
    cloud.services[GZ] = [ComputeService(host="gz-main-1", zone="gz-main", state=main, status="enabled"),
                          ComputeService(host="gz-backup-1", zone="gz-backup", state="up", status="enabled")]
    driver = cloud.driver(GZ)
    server = driver.create_server(ServerSpec(name="web-1", tenant="gd-mzt", zone="gz-main", flavor="gc.small",
                                             size=Resources(1, 1, 1024, 10), image="debian-12", network="gov-shared", metadata={}))
    return driver, server.id


def test_moves_to_the_target_host_and_its_zone_then_is_idempotent() -> None:
    driver, server_id = booted(main="down")
    moved = driver.evacuate_server("gd-mzt", server_id, host="gz-backup-1", timeout=60)
    assert (moved.status, moved.host, moved.zone) == ("ACTIVE", "gz-backup-1", "gz-backup")
    assert driver.evacuate_server("gd-mzt", server_id, host="gz-backup-1", timeout=60) == moved


def test_refuses_while_the_source_host_is_up_and_an_unknown_target() -> None:
    driver, server_id = booted(main="up")
    with pytest.raises(PermanentError, match="Compute service of gz-main-1 is still in use"):
        driver.evacuate_server("gd-mzt", server_id, host="gz-backup-1", timeout=60)
    with pytest.raises(PermanentError, match="Compute host gz-nowhere-1 could not be found"):
        driver.evacuate_server("gd-mzt", server_id, host="gz-nowhere-1", timeout=60)


def test_another_tenants_or_a_vanished_server_is_not_found() -> None:
    driver, server_id = booted(main="down")
    with pytest.raises(PermanentError, match="could not be found"):
        driver.evacuate_server("gd-other", server_id, host="gz-backup-1", timeout=60)
    driver.cloud.vanish(server_id)
    with pytest.raises(PermanentError, match="could not be found"):
        driver.evacuate_server("gd-mzt", server_id, host="gz-backup-1", timeout=60)
