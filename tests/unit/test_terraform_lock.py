"""The Terraform driver's two helpers for the engine's coordination and leftovers: govcloud's workspace lock
(flock: excludes another thread and another process, gives up with a ``WorkspaceBusy`` naming the workspace
and its holder, re-entrant in its own thread, freed when its holder dies) and ``find_state`` (nothing to
read costs no terraform run; a state with resources is read through ``terraform show -json``, here a fake
binary that records that it ran)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from govcloud.drivers.terraform import Ec2Cloud, InstanceSpec, TerraformDriver, WorkspaceBusy, state_detail, workspace_lock
from govcloud.errors import PermanentError, TemporaryError
from tests.support.tickets import REPO

MODULES = REPO / "terraform" / "modules"
EC2 = Ec2Cloud(name="tp", region="cn-east-1", vpc_id="vpc-1", skip_checks=True)
SPEC = InstanceSpec(name="t7-1", index=1, ticket="t7", tenant="gov-a", system="web", size="t3.micro", image="ami-1", network="subnet-1")


def test_the_lock_excludes_another_thread_and_names_its_holder(tmp_path: Path) -> None:
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with workspace_lock(tmp_path / "ws", "gov-a--tp", wait=0, holder="govcloud apply T-1"):
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(5)
    started = time.monotonic()
    with pytest.raises(WorkspaceBusy, match=r"workspace gov-a--tp is busy: pid \d+: govcloud apply T-1 holds .* without waiting"), \
            workspace_lock(tmp_path / "ws", "gov-a--tp", wait=0):
        pass
    with pytest.raises(TemporaryError, match=r"gave up after waiting 0\.2 s"), workspace_lock(tmp_path / "ws", "gov-a--tp", wait=0.2):
        pass
    assert 0.2 <= time.monotonic() - started < 3
    threading.Timer(0.2, release.set).start()
    with workspace_lock(tmp_path / "ws", "gov-a--tp", wait=5), workspace_lock(tmp_path / "ws", "gov-a--tp", wait=0):
        pass  # waited for the release; and a thread that holds it may take it again
    thread.join(5)
    with pytest.raises(ValueError, match="≥ 0 s"), workspace_lock(tmp_path / "ws", "gov-a--tp", wait=-1):
        pass


def test_the_lock_excludes_another_process_and_is_freed_when_it_dies(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from govcloud.drivers.terraform import workspace_lock\n"
            f"with workspace_lock(Path({str(tmp_path / 'ws')!r}), 'gov-a--tp', wait=0, holder='govcloud plan T-2'):\n"
            "    print('held', flush=True); time.sleep(60)\n")
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO) as other:
        try:
            assert other.stdout is not None and other.stdout.readline().strip() == "held"
            with pytest.raises(WorkspaceBusy, match=rf"pid {other.pid}: govcloud plan T-2"), \
                    workspace_lock(tmp_path / "ws", "gov-a--tp", wait=0):
                pass
        finally:
            other.kill()
            other.wait(10)
    with workspace_lock(tmp_path / "ws", "gov-a--tp", wait=0):  # killed: the kernel freed it, no stale lock to clean up
        pass


FAKE_SHOW = '''#!{python}
import json, pathlib, sys
pathlib.Path("{log}").open("a").write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1] == "init":
    pathlib.Path(".terraform").mkdir(exist_ok=True)
if sys.argv[1] == "show":
    print(json.dumps({{"format_version": "1.0", "values": {{"root_module": {{"child_modules": [{{"resources": [
        {{"address": 'module.ec2.aws_instance.vm["t7-1"]', "mode": "managed", "type": "aws_instance", "index": "t7-1",
         "values": {{"id": "i-1", "instance_state": "stopped"}}}},
        {{"address": "module.ec2.aws_security_group.tenant", "mode": "managed", "type": "aws_security_group",
         "values": {{"id": "sg-1"}}}}]}}]}}}}}}))
'''


def test_find_state_runs_terraform_only_for_a_state_with_resources(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    binary = tmp_path / "terraform"
    binary.write_text(FAKE_SHOW.format(python=sys.executable, log=log), encoding="utf-8")
    binary.chmod(0o755)
    (tmp_path / "mirror" / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    driver = TerraformDriver(workspace_root=tmp_path / "root", modules_dir=MODULES, binary=str(binary), mirror=tmp_path / "mirror")
    assert driver.find_state(driver.workspace("gov-a", "tp")) is None  # never rendered
    ws = driver.render("gov-a", EC2, [SPEC])
    assert driver.find_state(ws) is None  # rendered, never applied: no state file
    state = ws.directory / "terraform.tfstate"
    state.write_text(json.dumps({"version": 4, "serial": 9, "resources": []}), encoding="utf-8")
    assert driver.find_state(ws) is None  # destroyed: an empty state
    assert not log.exists() and not (ws.directory / "runs").exists()  # no terraform run for any of that
    state.write_text(json.dumps({"version": 4, "serial": 10, "resources": [{"type": "aws_instance"}]}), encoding="utf-8")
    found = driver.find_state(ws)
    assert found is not None and [(r.address, r.key, r.id, r.status, r.instance) for r in found] == [
        ('module.ec2.aws_instance.vm["t7-1"]', "t7-1", "i-1", "SHUTOFF", True),
        ("module.ec2.aws_security_group.tenant", None, "sg-1", "", False)]
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["init", "show"]
    state.write_text("{not json", encoding="utf-8")
    with pytest.raises(PermanentError, match=r"terraform\.tfstate of gov-a--tp is not readable JSON"):
        driver.find_state(ws)


def test_state_detail_reads_an_empty_state_and_refuses_another_format() -> None:
    assert state_detail({"format_version": "1.0"}) == ()
    with pytest.raises(PermanentError, match=r"JSON state format 2\.0 is not one govcloud reads"):
        state_detail({"format_version": "2.0"})
