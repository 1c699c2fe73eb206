"""The OpenStack driver's connection settings (no cloud needed: sessions are built without a request)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keystoneauth1.exceptions as ks_exc
import pytest
import yaml
from openstack import exceptions as os_exc

from govcloud.drivers.base import Endpoint, ServerSpec, TenantSpec
from govcloud.drivers.openstack import OpenStackDriver, translate
from govcloud.errors import PermanentError, TemporaryError
from govcloud.model.resources import Resources


def clouds_yaml(tmp_path: Path, **extra: object) -> Path:
    entry = {"auth": {"auth_url": "http://127.0.0.1:9/v3", "username": "u", "password": "p", "project_name": "admin",
                      "user_domain_name": "Default", "project_domain_name": "Default"},
             "region_name": "gd-gz", "identity_api_version": 3, **extra}
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"c": entry}}), encoding="utf-8")
    return path


def test_an_api_that_never_answers_times_out_by_default(tmp_path: Path) -> None:
    driver = OpenStackDriver(Endpoint(cloud="c", region="gd-gz"), config_file=clouds_yaml(tmp_path), api_timeout=7)
    assert driver.admin.session.timeout == 7


def test_clouds_yaml_api_timeout_wins(tmp_path: Path) -> None:
    driver = OpenStackDriver(Endpoint(cloud="c", region="gd-gz"), config_file=clouds_yaml(tmp_path, api_timeout=3), api_timeout=7)
    assert driver.admin.session.timeout == 3


@pytest.mark.parametrize("exc", [ks_exc.ServiceUnavailable(), ks_exc.InternalServerError(), ks_exc.BadGateway(),
                                 ks_exc.GatewayTimeout(), ks_exc.http.TooManyRequests(), ks_exc.UnknownConnectionError("reset", None)])
def test_keystone_failing_the_token_request_is_temporary(exc: Exception) -> None:
    """keystoneauth raises its own HttpError when keystone answers 5xx to the token request (the fault suite
    produces it: a 503 on keystone became a PermanentError, a failed ticket): that is retried."""
    assert isinstance(translate(exc, "list servers"), TemporaryError)


@pytest.mark.parametrize("exc", [ks_exc.Unauthorized(), ks_exc.Forbidden(), ks_exc.BadRequest()])
def test_keystone_refusing_is_permanent(exc: Exception) -> None:
    assert isinstance(translate(exc, "list servers"), PermanentError)


class FlakyCompute:
    """nova's server GET: 503, a reset, then BUILD, then ACTIVE (the fault proxy's kinds, in a row); its listing
    of the servers in BUILD: a 503, then (empty) answers — the driver reads the server itself."""

    def __init__(self) -> None:
        self.answers: list[Exception | str] = [os_exc.HttpException("injected", http_status=503), ks_exc.ConnectFailure("reset"),
                                               "BUILD", os_exc.HttpException("injected", http_status=502), "ACTIVE"]
        self.listings: list[Exception] = [os_exc.HttpException("injected", http_status=503)]

    def get(self, _path: str, params: dict[str, str]) -> Any:
        if self.listings:
            raise self.listings.pop(0)
        return SimpleNamespace(status_code=200, json=lambda: {"servers": []})

    def get_server(self, server_id: str) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return SimpleNamespace(id=server_id, name="vm", status=answer, availability_zone="gz-main", compute_host="h", addresses={},
                               fault=None, flavor=None, metadata={}, created_at="", project_id="p")


def test_a_failed_poll_is_a_missed_poll_not_a_failed_wait(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    driver = OpenStackDriver(Endpoint(cloud="c", region="gd-gz"), config_file=clouds_yaml(tmp_path))
    compute = FlakyCompute()
    monkeypatch.setattr(driver, "_as", lambda tenant: SimpleNamespace(compute=compute))
    monkeypatch.setattr(driver, "_admin", SimpleNamespace(compute=compute))
    monkeypatch.setattr("govcloud.drivers.openstack.time.sleep", lambda _s: None)
    assert driver.wait_for_server("gd-mzt", "s-1", timeout=60).status == "ACTIVE"
    assert compute.answers == [] and compute.listings == []


def test_a_wait_that_only_fails_times_out_as_temporary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    driver = OpenStackDriver(Endpoint(cloud="c", region="gd-gz"), config_file=clouds_yaml(tmp_path))
    compute = FlakyCompute()
    compute.answers = [os_exc.HttpException("injected", http_status=503)] * 3
    compute.listings = []
    monkeypatch.setattr(driver, "_as", lambda tenant: SimpleNamespace(compute=compute))
    monkeypatch.setattr(driver, "_admin", SimpleNamespace(compute=compute))
    with pytest.raises(TemporaryError, match=r"not done after 0 s.*503"):
        driver.wait_for_server("gd-mzt", "s-1", timeout=0)


class CountingCloud:
    """Just enough of an SDK connection for ``create_server``: counts the lookups."""

    def __init__(self) -> None:
        self.lookups: list[str] = []
        self.compute = SimpleNamespace(find_flavor=lambda name, ignore_missing: self._found("flavor"), create_server=self._create)
        self.image = SimpleNamespace(find_image=lambda name: self._found("image"))
        self.network = SimpleNamespace(find_network=lambda name: self._found("network"))

    def _found(self, kind: str) -> Any:
        self.lookups.append(kind)
        time.sleep(0.02)  # a lookup takes time: creates started meanwhile find no answer yet
        return SimpleNamespace(id=f"{kind}-id")

    def _create(self, **attrs: Any) -> Any:
        assert (attrs["flavor_id"], attrs["image_id"], attrs["networks"]) == ("flavor-id", "image-id", [{"uuid": "network-id"}])
        return SimpleNamespace(id="s", name=attrs["name"], status="BUILD", availability_zone=None, compute_host=None, addresses={},
                               fault=None, flavor=None, metadata=attrs["metadata"], created_at="", project_id="p")


def test_a_run_looks_image_network_and_flavor_up_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    driver = OpenStackDriver(Endpoint(cloud="c", region="gd-gz"), config_file=clouds_yaml(tmp_path))
    cloud = CountingCloud()
    driver._admin = cloud
    monkeypatch.setattr(driver, "_as", lambda tenant: cloud)
    for index in range(1, 4):
        driver.create_server(ServerSpec(name=f"vm-{index}", tenant="gd-mzt", zone="gz-main", flavor="gc.small",
                                        size=Resources(instances=1, vcpus=1, ram_mb=1024, disk_gb=10), image="debian-12",
                                        network="gov-shared", metadata={}))
    assert sorted(cloud.lookups) == ["flavor", "image", "network"]


def test_creates_started_together_look_image_network_and_flavor_up_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An apply starts 16 creates at once: they wait for one lookup of each name instead of making 16 each (issue 16)."""
    driver = OpenStackDriver(Endpoint(cloud="c", region="gd-gz"), config_file=clouds_yaml(tmp_path))
    cloud = CountingCloud()
    driver._admin = cloud
    monkeypatch.setattr(driver, "_as", lambda tenant: cloud)
    spec = ServerSpec(name="vm", tenant="gd-mzt", zone="gz-main", flavor="gc.small", size=Resources(instances=1, vcpus=1, ram_mb=1024, disk_gb=10),
                      image="debian-12", network="gov-shared", metadata={})
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda _: driver.create_server(spec), range(16)))
    assert sorted(cloud.lookups) == ["flavor", "image", "network"]


def test_the_given_clouds_yaml_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings name one clouds.yaml; the SDK must not read $OS_CLIENT_CONFIG_FILE's entry of the same name instead."""
    (tmp_path / "other").mkdir()
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds_yaml(tmp_path / "other", api_timeout=99)))
    driver = OpenStackDriver(Endpoint(cloud="c", region="gd-gz"), config_file=clouds_yaml(tmp_path, api_timeout=3))
    assert driver.admin.session.timeout == 3


class OnceFailingReads:
    """Every read of onboarding fails once with a 503, then answers: what a flaky API does to a tenant in place."""

    def __init__(self) -> None:
        self.failed: set[str] = set()
        limits = {"instances": 10, "cores": 40, "ram": 81920, "server_groups": 10, "server_group_members": 10}
        self.current_user_id = "u"
        self.identity = SimpleNamespace(find_project=self._flaky("project", SimpleNamespace(id="p", description="d")),
                                        find_role=self._flaky("role", SimpleNamespace(id="r")),
                                        validate_user_has_project_role=self._flaky("has-role", True))
        self.compute = SimpleNamespace(get_quota_set=self._flaky("quota", SimpleNamespace(**limits)))
        self.network = SimpleNamespace(find_network=self._flaky("network", SimpleNamespace(id="n", is_shared=True)),
                                       find_security_group=self._flaky("group", SimpleNamespace(id="g")))

    def _flaky(self, what: str, answer: Any) -> Any:
        def read(*_args: Any, **_kwargs: Any) -> Any:
            if what not in self.failed:
                self.failed.add(what)
                raise os_exc.HttpException("injected", http_status=503)
            return answer
        return read


def test_onboarding_survives_one_failed_read_of_each_kind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    driver = OpenStackDriver(Endpoint(cloud="c", region="gd-gz"), config_file=clouds_yaml(tmp_path))
    cloud = OnceFailingReads()
    driver._admin = cloud
    monkeypatch.setattr("govcloud.drivers.openstack.time.sleep", lambda _s: None)
    spec = TenantSpec(tenant="gd-scl", description="d", limits=Resources(instances=10, vcpus=40, ram_mb=81920, disk_gb=2000),
                      network="gov-shared")
    assert driver.ensure_tenant(spec).changed == ()
    assert cloud.failed == {"project", "role", "has-role", "quota", "network", "group"}


def test_a_listing_survives_one_failed_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The lookup before a retried create (engine/create.py) is a read like the others: one 503 does not
    cost the create a whole try (with the lookup and the POST both unretried, 0.36^6: about 1 VM in 460 runs out
    of tries at 20 % faults, and fails its ticket)."""
    driver = OpenStackDriver(Endpoint(cloud="c", region="gd-gz"), config_file=clouds_yaml(tmp_path))
    answers: list[Any] = [os_exc.HttpException("injected", http_status=503), []]

    def servers(**_query: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return iter(answer)

    monkeypatch.setattr(driver, "_as", lambda tenant: SimpleNamespace(compute=SimpleNamespace(servers=servers)))
    monkeypatch.setattr("govcloud.drivers.openstack.time.sleep", lambda _s: None)
    assert driver.find_servers("gd-mzt", "vm-1") == []
    assert answers == []
