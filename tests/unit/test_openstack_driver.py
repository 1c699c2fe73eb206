"""The OpenStack driver's connection settings (no cloud needed: sessions are built without a request)."""

from __future__ import annotations

from pathlib import Path

import yaml

from govcloud.drivers.base import Endpoint
from govcloud.drivers.openstack import OpenStackDriver


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
