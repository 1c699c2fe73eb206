"""Rendered configuration: per-region separation, secrets not hard-coded, files private."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import yaml

from govcloud.devcloud.layout import Layout, devcloud_dir, load_secrets
from govcloud.devcloud.profile import load_profile
from govcloud.devcloud.render import rabbit_password_hash, render_all, render_ini, write_all
from govcloud.devcloud.services import all_services

REPO = Path(__file__).resolve().parents[2]
PROFILE = load_profile(REPO / "inventory" / "devcloud.yaml")


def test_state_dir_from_env() -> None:
    assert devcloud_dir({"GOVCLOUD_DEVCLOUD_DIR": "/x/dc"}) == Path("/x/dc")
    assert devcloud_dir({"GOVCLOUD_STATE_DIR": "/s"}) == Path("/s/devcloud")


def test_render_ini_formats_booleans_and_empty_values() -> None:
    assert render_ini({"DEFAULT": {"a": True, "b": "", "c": 3}}) == "[DEFAULT]\na = true\nb =\nc = 3\n"


def test_regions_have_their_own_databases_vhosts_and_regions(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    files = render_all(PROFILE, layout, load_secrets(layout))
    gz, sg = files["gd-gz/nova/nova.conf"], files["gd-sg/nova/nova.conf"]
    assert "nova_api_gd_gz" in gz and "nova_api_gd_sg" in sg
    assert "@127.0.0.1:5672/gd-gz" in gz and "@127.0.0.1:5672/gd-sg" in sg
    assert "region_name = gd-sg" in sg and "gd-gz" not in sg
    assert "host = sg-dr-2" in files["gd-sg/nova/compute-sg-dr-2.conf"]
    assert "mechanism_drivers = govcloud_bindall" in files["gd-gz/neutron/ml2_conf.ini"]
    assert "compute_driver = govcloud_fake.StableFakeDriver" in gz
    definitions = json.loads(files["rabbitmq/definitions.json"])
    assert [v["name"] for v in definitions["vhosts"]] == ["gd-gz", "gd-sg"]


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    first = load_secrets(layout)
    assert load_secrets(layout) == first and len(set(first.values())) == 4
    assert stat.S_IMODE(layout.secrets_file.stat().st_mode) == 0o600
    assert "secret" not in first.values()
    assert load_secrets(Layout(tmp_path / "other")) != first


def test_clouds_yaml_has_admin_and_monitor(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    secrets = load_secrets(layout)
    write_all(PROFILE, layout, secrets)
    clouds = yaml.safe_load(layout.clouds_yaml.read_text(encoding="utf-8"))["clouds"]
    assert clouds["devcloud-admin"]["region_name"] == "gd-gz"
    assert clouds["devcloud-admin"]["regions"] == ["gd-gz", "gd-sg"]
    assert clouds["devcloud-monitor"]["auth"]["password"] == secrets["monitor"]
    assert stat.S_IMODE(layout.clouds_yaml.stat().st_mode) == 0o600
    assert stat.S_IMODE((layout.etc / "gd-gz" / "nova" / "nova.conf").stat().st_mode) == 0o600


def test_rabbit_password_hash_matches_rabbitmq_scheme() -> None:
    raw = base64.b64decode(rabbit_password_hash("pw", salt=b"abcd"))
    assert raw[:4] == b"abcd" and raw[4:] == hashlib.sha256(b"abcdpw").digest()


def test_service_table_binds_loopback_and_names_are_unique(tmp_path: Path) -> None:
    services = all_services(PROFILE, Layout(tmp_path))
    names = [s.name for s in services]
    assert len(names) == len(set(names))
    assert sum(s.kind == "compute" for s in services) == 6
    for service in services:
        if "--http-socket" in service.argv:
            assert service.argv[service.argv.index("--http-socket") + 1].startswith("127.0.0.1:")
    assert {s.centre for s in services if s.kind == "compute"} == {"gz-main", "gz-backup", "sg-dr"}
