"""The Ansible driver without hosts: the environment each run gets (a fake ``ansible-playbook`` on PATH
records it), its private control-socket directory, and what is left in the run directory.

The real ansible-playbook against real SSH hosts is the integration tier (tests/integration/test_configure.py)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from govcloud.drivers.ansible import SSH_ARGS, AnsibleDriver

FAKE = """#!{python}
import json, os, socket, sys
control = os.environ["ANSIBLE_SSH_CONTROL_PATH_DIR"]
s = socket.socket(socket.AF_UNIX)  # what an ssh master leaves: a socket in the control directory
s.bind(os.path.join(control, "0123456789abcdef0123456789abcdef01234567"))
with open(os.environ["FAKE_OUT"], "w") as out:
    json.dump({{"env": {{k: v for k, v in os.environ.items() if k.startswith("ANSIBLE_")}},
               "argv": sys.argv[1:], "control_exists": os.path.isdir(control)}}, out)
"""


@pytest.fixture
def fake_playbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ansible-playbook"
    script.write_text(FAKE.format(python=os.path.realpath(sys.executable)), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    out = tmp_path / "seen.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_OUT", str(out))
    return out


def test_ssh_multiplexing_is_kept_with_the_keepalives() -> None:
    # ANSIBLE_SSH_ARGS replaces Ansible's default, which holds ControlMaster/ControlPersist
    for option in ("ControlMaster=auto", "ControlPersist=", "ServerAliveInterval=", "ServerAliveCountMax="):
        assert option in SSH_ARGS


def test_run_environment_control_directory_and_run_directory(tmp_path: Path, fake_playbook: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "site.yml").write_text("- hosts: all\n  tasks: []\n", encoding="utf-8")
    driver = AnsibleDriver(project_dir=tmp_path / "project", runs_dir=tmp_path / "runs", private_key=None, timeout=60,
                           known_hosts=tmp_path / "known_hosts")
    result = driver.run({"all": {"hosts": {"vm-1": {"ansible_host": "192.0.2.7"}}}}, extravars={"govcloud_admins": []})
    assert (result.rc, result.status) == (0, "successful")
    seen = json.loads(fake_playbook.read_text(encoding="utf-8"))
    env = seen["env"]
    assert env["ANSIBLE_SSH_ARGS"].startswith(SSH_ARGS)
    # host keys: govcloud's own file, trust on first use, never "no" (Ansible would add it with checking off)
    assert f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={tmp_path / 'known_hosts'}" in env["ANSIBLE_SSH_ARGS"]
    assert "StrictHostKeyChecking=no" not in env["ANSIBLE_SSH_ARGS"] and env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["ANSIBLE_PIPELINING"] == "True"
    assert env["ANSIBLE_TASK_TIMEOUT"] == "600"  # a hung task fails its host, not the whole run
    control = env["ANSIBLE_SSH_CONTROL_PATH_DIR"]
    assert seen["control_exists"] and len(control) + 41 + 17 < 108  # %C hash + ssh's temporary suffix fit a socket path
    assert not Path(control).exists()  # removed, masters told to exit, after the run
    assert not (result.directory / "env").exists()
    assert json.loads((result.directory / "status").read_text(encoding="utf-8"))["rc"] == 0
    second = driver.run({"all": {"hosts": {}}})
    assert second.ident != result.ident and second.directory != result.directory


def test_only_the_newest_finished_runs_are_kept(tmp_path: Path, fake_playbook: Path) -> None:
    runs = tmp_path / "runs"
    for ident in ("20200101T000000-aaaaaa", "20200101T000001-bbbbbb"):
        (runs / ident).mkdir(parents=True)
        (runs / ident / "status").write_text("{}", encoding="utf-8")
    (runs / "20200101T000002-cccccc").mkdir()  # no status: still running (another process), never pruned
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "site.yml").write_text("- hosts: all\n  tasks: []\n", encoding="utf-8")
    driver = AnsibleDriver(project_dir=tmp_path / "project", runs_dir=runs, private_key=None, timeout=60, keep_runs=2,
                           known_hosts=tmp_path / "known_hosts")
    result = driver.run({"all": {"hosts": {}}})
    assert sorted(d.name for d in runs.iterdir()) == ["20200101T000001-bbbbbb", "20200101T000002-cccccc", result.ident]
