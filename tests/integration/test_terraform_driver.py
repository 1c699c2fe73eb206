"""The Terraform driver against real components: terraform 1.11, the AWS provider from the local mirror
(/opt/tf-plugins) and a moto server on 127.0.0.1 as the EC2-compatible third-party cloud.

One module-scoped workspace walks the whole life cycle in order (the tests depend on each other's
state, like the steps of a ticket): render 3 VMs → plan (3 instances to create) → apply → tags and
requested private IPs in the cloud → plan again (no changes) → resize one → plan flags it → destroy →
gone. Missing terraform, mirror or moto fail loudly: CI must provide them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govcloud.drivers.terraform import Ec2Cloud, InstanceSpec, PlanSummary, StalePlan, TerraformDriver, Workspace
from tests.support.moto import SECRET_KEY, MotoServer, moto_server
from tests.support.tfcloud import live_instances

pytestmark = [
    pytest.mark.integration,
    # boto3 warns about the end of Python 3.8/3.9 support on old interpreters; nothing of ours
    pytest.mark.filterwarnings("ignore::boto3.exceptions.PythonDeprecationWarning"),
]
MIRROR = Path("/opt/tf-plugins")
TENANT, CLOUD = "gov-a", "thirdparty"
INSTANCE = 'module.ec2.aws_instance.vm["{}"]'


def _require_terraform() -> str:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.fail("terraform not on PATH: the machine image ships terraform 1.11 at /usr/local/bin (CI must too)", pytrace=False)
    if not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.fail(f"provider mirror {MIRROR} lacks hashicorp/aws: it comes with the machine image, no registry is reachable", pytrace=False)
    return terraform


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    _require_terraform()
    with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def ec2(moto: MotoServer) -> Any:
    import boto3

    env = moto.credentials_env
    return boto3.client("ec2", endpoint_url=moto.url, region_name=moto.region, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


class Journey:
    """What the ordered tests share: the driver, the workspace, the cloud and the last plan."""

    def __init__(self, driver: TerraformDriver, cloud: Ec2Cloud, subnet: str, ami: str, moto: MotoServer) -> None:
        self.driver, self.cloud, self.subnet, self.ami, self.moto = driver, cloud, subnet, ami, moto
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.plan: PlanSummary | None = None

    def specs(self, sizes: dict[int, str] | None = None) -> list[InstanceSpec]:
        return [InstanceSpec(name=f"t42-{i}", index=i, ticket="t42", tenant=TENANT, system="portal", size=(sizes or {}).get(i, "t3.micro"),
                             image=self.ami, network=self.subnet, private_ip=f"10.20.1.{10 + i}", zone=f"{self.moto.region}a")
                for i in range(3)]

    def render(self, sizes: dict[int, str] | None = None) -> Workspace:
        return self.driver.render(TENANT, self.cloud, self.specs(sizes), secret_env=self.moto.credentials_env)

    def progress(self, event: str, data: dict[str, Any]) -> None:
        self.events.append((event, data))


@pytest.fixture(scope="module")
def journey(moto: MotoServer, ec2: Any, tmp_path_factory: pytest.TempPathFactory) -> Journey:
    moto.reset()
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone=f"{moto.region}a")["Subnet"]["SubnetId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    cloud = Ec2Cloud(name=CLOUD, region=moto.region, vpc_id=vpc, endpoints={"ec2": moto.url, "sts": moto.url, "iam": moto.url},
                     skip_checks=True, ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBy9dNf6q3mE5B1nDCpH4Q3n5kOi2m5LsTeU0iYb8sF1 ci")
    driver = TerraformDriver(workspace_root=tmp_path_factory.mktemp("tf"), binary=_require_terraform(), mirror=MIRROR)
    return Journey(driver, cloud, subnet, ami, moto)


def test_rendered_root_module_validates_offline(journey: Journey) -> None:
    ws = journey.render()
    run = journey.driver.init(ws)
    assert run.rc == 0 and (ws.directory / ".terraform.lock.hcl").exists()
    validated = journey.driver._run(ws, "validate", ["validate", "-json"], None)
    assert json.loads(validated.stdout)["valid"] is True


def test_plan_shows_three_instances_to_add(journey: Journey) -> None:
    plan = journey.driver.plan(journey.render(), progress=journey.progress)
    created = sorted(c.address for c in plan.changes if c.action == "create" and "aws_instance" in c.address)
    assert created == [INSTANCE.format(f"t42-{i}") for i in range(3)]
    assert plan.add == 5 and plan.change == 0 and plan.destroy == 0 and not plan.flagged  # + security group, key pair
    assert len(plan.sha256) == 64 and plan.planfile.exists()
    assert {"planned_change", "change_summary"} <= {e for e, _ in journey.events}
    journey.plan = plan


def test_apply_creates_tagged_instances_at_requested_addresses(journey: Journey, ec2: Any) -> None:
    assert journey.plan is not None
    ws = journey.render()
    journey.events.clear()
    result = journey.driver.apply(ws, journey.plan.planfile, sha256=journey.plan.sha256, progress=journey.progress)
    assert result.add == 5
    kinds = {e for e, _ in journey.events}
    assert {"apply_start", "apply_complete", "change_summary"} <= kinds
    live = live_instances(ec2)
    assert sorted(live) == ["t42-0", "t42-1", "t42-2"]
    for i in range(3):
        vm = live[f"t42-{i}"]
        assert vm["PrivateIpAddress"] == f"10.20.1.{10 + i}"
        assert vm["tags"] == {"Name": f"t42-{i}", "govcloud:ticket": "t42", "govcloud:index": str(i), "govcloud:tenant": TENANT,
                              "govcloud:system": "portal"}
    outputs = journey.driver.outputs(ws)
    assert {n: o.address for n, o in outputs.items()} == {f"t42-{i}": f"10.20.1.{10 + i}" for i in range(3)}
    assert {o.id for o in outputs.values()} == {vm["InstanceId"] for vm in live.values()}
    run_dir = ws.directory / "runs" / result.ident
    assert {p.name for p in run_dir.iterdir()} >= {"command", "stdout", "stderr", "events.jsonl", "rc", "status"}
    assert json.loads((run_dir / "status").read_text())["status"] == "successful"


def test_the_applied_plan_cannot_be_applied_again(journey: Journey) -> None:
    assert journey.plan is not None
    with pytest.raises(StalePlan, match="Saved plan is stale"):
        journey.driver.apply(journey.render(), journey.plan.planfile, sha256=journey.plan.sha256)


def test_plan_again_has_no_changes(journey: Journey) -> None:
    plan = journey.driver.plan(journey.render())
    assert not plan.has_changes and (plan.add, plan.change, plan.destroy) == (0, 0, 0)


def test_changed_instance_type_is_flagged(journey: Journey) -> None:
    plan = journey.driver.plan(journey.render(sizes={1: "t3.small"}))
    assert [(c.address, c.action) for c in plan.changes] == [(INSTANCE.format("t42-1"), "update")]
    assert plan.change == 1 and plan.add == 0 and plan.destroy == 0


def test_destroy_removes_everything(journey: Journey, ec2: Any) -> None:
    ws = journey.render()
    result = journey.driver.destroy(ws, progress=journey.progress)
    assert result.destroy == 5
    assert live_instances(ec2) == {}
    assert journey.driver.outputs(ws) == {}


def test_no_secret_on_disk(journey: Journey) -> None:
    """State, plan files, run directories, CLI config: the credential never appears (plan files are zips: bytes)."""
    assert journey.driver.workspace_root.exists()
    for path in journey.driver.workspace_root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET_KEY.encode() not in path.read_bytes(), path


def test_a_moto_whose_port_was_taken_starts_on_another_and_never_serves_the_other_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers starting servers at once can be handed the same free port: the one that loses the bind
    must not take the winner's answers for its own (the tests would share a cloud: CI, 2026-12-05), but
    start again on another port."""
    from tests.support import moto as moto_support

    with moto_server() as first:
        ports = iter([first.port])
        real = moto_support.free_port
        monkeypatch.setattr(moto_support, "free_port", lambda: next(ports, None) or real())
        with moto_server() as second:
            assert second.port != first.port
            first.reset()
            assert "Running on " + second.url in second.log.read_text(encoding="utf-8")
