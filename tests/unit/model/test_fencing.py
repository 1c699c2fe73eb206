"""The fencing file (govcloud/model/fencing.py): checked against the topology with file, line and key;
``govcloud validate`` refuses a bad one with exit 2; no file means method ``none`` everywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from govcloud.errors import ConfigError
from govcloud.model.fencing import Bmc, load_fencing
from govcloud.model.state import load_state
from govcloud.settings import DataPaths
from tests.unit.test_cli_data import REPO, run


@pytest.fixture(scope="module")
def topology():  # type: ignore[no-untyped-def]
    return load_state(DataPaths(root=REPO), []).topology


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fencing.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_file_and_an_ipmi_centre(topology, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shipped = load_fencing(REPO / "inventory" / "fencing.yaml", topology)
    assert shipped.of("gd-prov", "gz-main").method == "devcloud"
    assert shipped.of("sec-police", "ga-main").method == "none"
    path = write(tmp_path, "version: 1\nclouds:\n  gd-prov:\n    gz-backup:\n      method: ipmi\n      user: govcloud\n"
                           "      hosts:\n        gz-backup-1: {bmc: 127.0.0.1, port: 16231}\n        gz-backup-2: {bmc: 10.0.0.2}\n")
    fence = load_fencing(path, topology).of("gd-prov", "gz-backup")
    assert fence.method == "ipmi" and fence.user == "govcloud" and fence.cipher_suite == 3
    assert fence.hosts == {"gz-backup-1": Bmc("127.0.0.1", 16231), "gz-backup-2": Bmc("10.0.0.2", 623)}


def test_no_file_means_none_everywhere(topology, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert load_fencing(tmp_path / "absent.yaml", topology).of("gd-prov", "gz-main").method == "none"


@pytest.mark.parametrize(("body", "line", "key", "words"), [
    ("clouds:\n  gd-nope:\n    gz-main: {method: devcloud}\n", 4, "clouds.gd-nope", "unknown cloud"),
    ("clouds:\n  gd-prov:\n    gz-nope: {method: devcloud}\n", 5, "clouds.gd-prov.gz-nope", "unknown centre"),
    ("clouds:\n  gd-prov:\n    gz-main:\n      method: ipmi\n      user: u\n", 5, "clouds.gd-prov.gz-main.hosts", "needs the centre's BMCs"),
    ("clouds:\n  gd-prov:\n    gz-main:\n      method: ipmi\n      hosts: {h1: {bmc: 10.0.0.1}}\n", 5, "clouds.gd-prov.gz-main.user",
     "needs a user"),
    ("clouds:\n  gd-prov:\n    gz-main:\n      method: devcloud\n      hosts: {h1: {bmc: 10.0.0.1}}\n", 7,
     "clouds.gd-prov.gz-main.hosts", "not used by this method"),
    ("clouds:\n  gd-prov:\n    gz-main:\n      method: ipmi\n      user: u\n      hosts: {h1: {bmc: 10.0.0.1, port: 70000}}\n", 8,
     "clouds.gd-prov.gz-main.hosts.h1.port", "out of range"),
    ("clouds:\n  gd-prov:\n    gz-main: {method: ipmy}\n", 5, "clouds.gd-prov.gz-main.method", "did you mean 'ipmi'"),
    ("clouds:\n  gd-prov:\n    gz-main: {method: ipmi, password: x}\n", 5, "clouds.gd-prov.gz-main.password", "unknown key"),
])
def test_problems_name_file_line_and_key(topology, tmp_path: Path, body: str, line: int, key: str, words: str) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "# fencing\nversion: 1\n" + body)
    with pytest.raises(ConfigError) as caught:
        load_fencing(path, topology)
    problem = next(p for p in caught.value.problems if p.key == key)
    assert problem.file.endswith("fencing.yaml") and problem.line == line and words in problem.render()


def test_validate_refuses_a_bad_fencing_file_with_exit_2(tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(REPO / "inventory", root / "inventory")
    for name in ("tenants.yaml", "users.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "quotas", root / "quotas")
    (root / "inventory" / "fencing.yaml").write_text("version: 1\nclouds:\n  gd-prov:\n    gz-main: {method: ipmi}\n", encoding="utf-8")
    code, out, err = run("--root", str(root), "validate")
    assert code == 2 and "Traceback" not in err
    assert "fencing.yaml:4: clouds.gd-prov.gz-main.hosts:" in err + out
