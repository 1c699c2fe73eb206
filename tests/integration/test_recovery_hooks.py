"""A recovery plan's hook over real SSH (issue 13, item 3): ``failover/hooks.py`` runs the group's role
(the shipped ``smoke`` role, through ``playbooks/recovery_hook.yml`` and the same Ansible driver as
ticket configuration) on hosts standing in for the group's recovered VMs — network namespaces with
their own sshd, as tests/integration/test_playbooks.py uses. A passing hook leaves its marker on each
host; a failing one names the host and the task. No devcloud needed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from govcloud.failover.hooks import ansible_hook
from govcloud.failover.steps import HookCall
from govcloud.model.recovery import Hook
from govcloud.planner.failover import Step
from govcloud.settings import Settings
from govcloud.store.tickets import VmRow
from tests.support.hosts import TestHosts, test_hosts
from tests.support.tickets import REPO

pytestmark = pytest.mark.integration

ADDRESSES = ["10.251.8.11", "10.251.8.12"]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestHosts]:
    with test_hosts(ADDRESSES, gateway="10.251.8.1", subnet_prefix=24, bridge="gcbrfo0", base=tmp_path_factory.mktemp("hook-hosts")) as made:
        yield made


def vm(n: int, address: str) -> VmRow:
    return VmRow(ticket="t-hook", idx=n, name=f"gd-gat-hukou-t-hook-{n}", tenant="gd-gat", system="hukou", cloud="gd-prov", region="gd-gz",
                 centre="gz-backup", zone="gz-backup", flavor="gc.small", vcpus=1, ram_mb=1024, disk_gb=10, status="ACTIVE",
                 updated_at="2026-12-05T00:00:00+00:00", server_id=f"s-hook-{n}", address=address)


def settings(hosts: TestHosts, tmp_path: Path) -> Settings:
    base = Settings.from_env().with_overrides(root=str(REPO))
    return dataclasses.replace(base, state_dir=tmp_path / "state",
                               configure=dataclasses.replace(base.configure, ssh_key=hosts.key_path, user="root"))


def call(variables: dict[str, object]) -> HookCall:
    step = Step("public-security", 1, (), Hook(role="smoke", vars=variables))
    return HookCall(run_id=7, cloud="gd-prov", centre="gz-main", step=step, vms=tuple(vm(n, a) for n, a in enumerate(ADDRESSES, 1)))


def test_a_passing_hook_runs_its_role_on_every_recovered_vm(hosts: TestHosts, tmp_path: Path) -> None:
    result = ansible_hook(settings(hosts, tmp_path))(call({"smoke_marker": "public-security"}))
    assert result.ok, result.detail
    assert "ok on 2 VMs" in result.detail
    for address in ADDRESSES:
        marker = hosts.ssh(address, "cat /var/lib/govcloud/recovered")
        assert marker.returncode == 0 and marker.stdout.strip() == "public-security 7", marker.stdout + marker.stderr


def test_a_failing_hook_names_the_host_and_the_task(hosts: TestHosts, tmp_path: Path) -> None:
    result = ansible_hook(settings(hosts, tmp_path))(call({"smoke_tcp_ports": [8099], "smoke_tcp_timeout": 2}))
    assert not result.ok
    assert "gd-gat-hukou-t-hook-1" in result.detail and "The listed services accept connections" in result.detail, result.detail
