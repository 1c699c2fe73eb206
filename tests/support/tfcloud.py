"""The EC2-compatible "third-party cloud" of the Terraform integration tests: moto as ``tp-ecloud``.

Shared by tests/integration/test_terraform_engine.py and test_terraform_reconcile.py: the loud check for
terraform and the provider mirror (they come with the machine image, from no registry), the test profile
that points the sample topology's ``tp-ecloud`` at a moto server (VPC, subnet, AMI created there; the
credentials reach govcloud by environment variable names, never in the file), and what moto runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.moto import MotoServer

MIRROR = Path("/opt/tf-plugins")
SUBNET = "10.253.0.0/24"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "GOVCLOUD_IT_TP_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY": "GOVCLOUD_IT_TP_SECRET_KEY"}
"""What ``terraform.credentials`` of the profile names: set these variables in govcloud's environment."""


def require_tools() -> None:
    if shutil.which("terraform") is None:
        pytest.fail("terraform not on PATH: the machine image ships terraform 1.11 at /usr/local/bin (CI must too)", pytrace=False)
    if not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.fail(f"provider mirror {MIRROR} lacks hashicorp/aws: it comes with the machine image, no registry is reachable", pytrace=False)


def ec2_profile(base: Path, moto: MotoServer, ec2: Any, *, first: int = 10, fixed_addresses: bool = True) -> Path:
    """The test's profile: tp-ecloud is moto (region, zone and Terraform settings replaced; no secret in it).
    ``fixed_addresses``: govcloud assigns the instances' private addresses from the subnet's range (from host
    ``first``); without, the cloud chooses them. (moto 5 never frees the fixed address of a terminated
    instance, so a test that recreates one must let moto choose; a real EC2 frees it once terminated.)"""
    vpc = ec2.create_vpc(CidrBlock="10.253.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=SUBNET, AvailabilityZone=f"{moto.region}a")["Subnet"]["SubnetId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    terraform = {"module": "ec2", "vpc_id": vpc, "endpoints": {"ec2": moto.url, "sts": moto.url, "iam": moto.url}, "skip_checks": True,
                 "instance_types": {"gc.small": "t3.micro", "gc.medium": "t3.small"}, "images": {"debian-12": ami},
                 "networks": {"gov-shared": {"subnet": subnet, **({"cidr": SUBNET, "first": first} if fixed_addresses else {})}},
                 "ssh_cidrs": [SUBNET],
                 "credentials": dict(CREDENTIALS)}
    path = base / "profile.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"tp-ecloud": {"region": moto.region, "availability_zone": f"{moto.region}a",
                                                             "terraform": terraform}}}, sort_keys=False), encoding="utf-8")
    return path


def live_instances(ec2: Any) -> dict[str, dict[str, Any]]:
    """Instances of the moto cloud that are not terminated, by Name tag (tags as a dict under ``tags``)."""
    found: dict[str, dict[str, Any]] = {}
    for reservation in ec2.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            if instance["State"]["Name"] != "terminated":
                found[tags.get("Name", instance["InstanceId"])] = {**instance, "tags": tags}
    return found
