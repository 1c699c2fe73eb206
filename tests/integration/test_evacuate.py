"""``OpenStackDriver.evacuate_server`` against the devcloud: a server of gz-main is moved to a named host
of gz-backup (another AZ of gd-gz, so only a forced evacuation gets it there) once nova reports its host
down; a second call changes nothing; after the centre is restored its computes clean up the evacuated
instance and the server stays where it was moved. Times are printed, never asserted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openstack
import pytest

from govcloud.drivers.base import Endpoint, Server, ServerSpec, TenantSpec
from govcloud.drivers.openstack import OpenStackDriver
from govcloud.errors import PermanentError
from govcloud.model.resources import Resources
from tests.integration.conftest import Devcloud
from tests.support.projects import projects_removed
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*")]

GZ = Endpoint("devcloud-admin", "gd-gz")
TENANT = "it-evacuate"
TARGET = "gz-backup-1"
MAIN_HOSTS = ("gz-main-1", "gz-main-2")


@pytest.fixture(scope="module", autouse=True)
def own_projects(devcloud: Devcloud) -> Iterator[None]:
    """The tenant it-evacuate exists only for this module: its project goes at the end."""
    with projects_removed(TENANT):
        yield



def states(driver: OpenStackDriver, hosts: tuple[str, ...]) -> dict[str, str]:
    return {s.host: s.state for s in driver.compute_services() if s.host in hosts}


def evacuations(server_id: str) -> list[Any]:
    nova = openstack.connect(cloud="devcloud-admin", region_name=GZ.region)
    return list(nova.compute.migrations(server_id=server_id, migration_type="evacuation"))


@pytest.fixture
def driver(devcloud: Devcloud) -> OpenStackDriver:
    driver = OpenStackDriver(GZ)
    driver.ensure_tenant(TenantSpec(tenant=TENANT, description="govcloud integration test: evacuation",
                                    limits=Resources(instances=4, vcpus=8, ram_mb=8192, disk_gb=100), network="gov-shared"))
    return driver


@pytest.fixture
def server(driver: OpenStackDriver) -> Iterator[Server]:
    spec = ServerSpec(name="it-evacuate-1", tenant=TENANT, zone="gz-main", flavor="gc.small", size=Resources(1, 1, 1024, 10),
                      image="debian-12", network="gov-shared", metadata={"govcloud:tenant": TENANT})
    for stale in driver.find_servers(TENANT, spec.name):  # a run killed before its clean-up
        driver.delete_server(TENANT, stale.id)
        driver.wait_for_delete(TENANT, stale.id, timeout=120)
    created = driver.create_server(spec)
    try:
        driver.wait_for_server(TENANT, created.id, timeout=180)
        yield next(s for s in driver.servers() if s.id == created.id)  # the admin's listing has the host
    finally:
        driver.delete_server(TENANT, created.id)
        driver.wait_for_delete(TENANT, created.id, timeout=120)


def test_a_server_of_a_failed_centre_is_evacuated_to_a_named_host_of_the_partner_zone(
        devcloud: Devcloud, driver: OpenStackDriver, server: Server) -> None:
    started = time.monotonic()
    assert server.status == "ACTIVE" and server.zone == "gz-main" and server.host in MAIN_HOSTS, server
    with pytest.raises(PermanentError, match=f"HTTP 400: .*{server.host}"):  # nova refuses while the host is up
        driver.evacuate_server(TENANT, server.id, host=TARGET, timeout=60)
    failed = devcloud.cli("fail-centre", "gz-main")
    assert failed.returncode == 0, failed.stderr
    try:
        wait_for(f"nova to report {server.host} down", lambda: states(driver, (server.host or "",)) == {server.host: "down"}, timeout=90)
        down_after = time.monotonic() - started
        t0 = time.monotonic()
        moved = driver.evacuate_server(TENANT, server.id, host=TARGET, timeout=180)
        took = time.monotonic() - t0
        assert (moved.id, moved.status, moved.host, moved.zone) == (server.id, "ACTIVE", TARGET, "gz-backup"), moved
        (migration,) = evacuations(server.id)
        assert (migration.source_compute, migration.dest_compute) == (server.host, TARGET)
        again = driver.evacuate_server(TENANT, server.id, host=TARGET, timeout=60)
        assert (again.status, again.host, again.zone) == ("ACTIVE", TARGET, "gz-backup")
        assert len(evacuations(server.id)) == 1  # the second call asked nova nothing that changes anything
        actions = [a.action for a in openstack.connect(cloud="devcloud-admin", region_name=GZ.region).compute.server_actions(server.id)]
    finally:
        restored = devcloud.cli("restore-centre", "gz-main", timeout=300)
    assert restored.returncode == 0, restored.stderr
    wait_for("gz-main's computes up again", lambda: set(states(driver, MAIN_HOSTS).values()) == {"up"}, timeout=120)
    # the restarted source compute destroys its copy of the evacuated instance and completes the migration
    cleaned = wait_for("the evacuation migration completed by the source host",
                       lambda: [m for m in evacuations(server.id) if m.status == "completed"], timeout=60)
    after = next(s for s in driver.servers() if s.id == server.id)
    assert (after.status, after.host, after.zone) == ("ACTIVE", TARGET, "gz-backup"), after
    # one that arrived stopped (evacuated at 2.95 or later, or a run that died before starting it) is started, not moved again
    nova = openstack.connect(cloud="devcloud-admin", region_name=GZ.region)
    nova.compute.stop_server(server.id)
    nova.compute.wait_for_server(nova.compute.get_server(server.id), status="SHUTOFF", wait=60, interval=1)
    started_again = driver.evacuate_server(TENANT, server.id, host=TARGET, timeout=60)
    assert (started_again.status, started_again.host) == ("ACTIVE", TARGET) and len(evacuations(server.id)) == 1
    print(f"{server.host} down {down_after:.0f} s after the start; evacuated to {TARGET} in {took:.1f} s "
          f"(actions {actions}, migration {cleaned[0].status}); total {time.monotonic() - started:.0f} s")
