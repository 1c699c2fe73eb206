"""The devcloud profile: the shipped inventory/devcloud.yaml, bad input, the clouds overlay."""

from __future__ import annotations

from pathlib import Path

import pytest

from govcloud.devcloud.profile import load_profile, profile_from_data, profile_from_json
from govcloud.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "inventory" / "devcloud.yaml"


def test_shipped_profile_has_the_fixed_names() -> None:
    profile = load_profile(PROFILE)
    assert [r.id for r in profile.regions] == ["gd-gz", "gd-sg"]
    assert {c: (r.id, tuple(x.hosts)) for c, (r, x) in profile.centres.items()} == {
        "gz-main": ("gd-gz", ("gz-main-1", "gz-main-2")),
        "gz-backup": ("gd-gz", ("gz-backup-1", "gz-backup-2")),
        "sg-dr": ("gd-sg", ("sg-dr-1", "sg-dr-2")),
    }
    assert [c.role for _, c in profile.centres.values()] == ["main", "secondary", "dr"]
    assert {f.name: (f.vcpus, f.ram_mb, f.disk_gb) for f in profile.flavors}["gc.xlarge"] == (8, 16384, 160)
    assert profile.regions[1].subnet.cidr == "10.250.4.0/22"
    assert profile.tcp_ports()[5000] == "keystone" and profile.tcp_ports()[18774] == "nova-gd-sg"


def test_clouds_overlay_default_rule_and_provincial_centres() -> None:
    profile = load_profile(PROFILE)
    assert profile.cloud_target("gd-prov", "sg-dr").region == "gd-sg"
    assert profile.cloud_target("gd-prov", "gz-backup").availability_zone == "gz-backup"
    for cloud in ("sec-police", "city-shenzhen"):
        target = profile.cloud_target(cloud, "main")
        assert (target.cloud, target.region, target.availability_zone) == ("devcloud-admin", "gd-gz", "gz-main")


def test_json_copy_round_trips() -> None:
    profile = load_profile(PROFILE)
    assert profile_from_json(profile.to_json()) == profile


def test_bad_input_names_file_and_every_key(tmp_path: Path) -> None:
    data = {
        "regions": {"r1": {"ports": {"nova": 1, "placement": 2, "glance": "x", "neutron": 1},
                           "subnet": {"cidr": "10.0.0.0/24", "gateway": "10.9.0.1", "pool_start": "10.0.0.10", "pool_end": "10.0.0.20"},
                           "centres": {"c1": {"role": "primary", "hosts": []}}}},
        "flavors": {},
    }
    with pytest.raises(ConfigError) as caught:
        profile_from_data(data, "dev.yaml")
    keys = {p.key for p in caught.value.problems}
    assert {"regions.r1.ports.glance", "regions.r1.subnet.gateway", "regions.r1.centres.c1.role",
            "regions.r1.centres.c1.hosts", "ports"} <= keys
    assert all(p.file == "dev.yaml" for p in caught.value.problems)


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "devcloud.yaml"
    bad.write_text("regions:\n  gd-gz: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_profile(bad)
    assert caught.value.problems[0].file == str(bad) and caught.value.problems[0].line >= 2


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unreadable"):
        load_profile(tmp_path / "nope.yaml")
