"""``terraform show -json PLAN`` read by the driver (``plan_detail``): a real plan of terraform 1.11.4 + the
AWS provider against moto (trimmed to what is read) in which one instance was terminated and one stopped
through the EC2 API, and the shapes terraform uses for replace, delete, output-only and other modules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from govcloud.drivers.terraform import ResourceChange, StateInstance, plan_detail
from govcloud.errors import PermanentError

DATA = Path(__file__).resolve().parents[1] / "data" / "terraform"


def test_a_terminated_instance_is_a_create_and_a_stopped_one_is_in_the_refreshed_state() -> None:
    detail = plan_detail(json.loads((DATA / "plan-one-terminated-one-stopped.json").read_text(encoding="utf-8")))
    assert detail.changes == (ResourceChange('module.ec2.aws_instance.vm["vm-1"]', "aws_instance", "vm-1", ("create",)),)
    assert detail.changes[0].instance and detail.changes[0].action == "create"
    assert detail.instances == (StateInstance("vm-2", "i-e1f56be373bfa4033", "SHUTOFF", "10.250.0.12"),)  # vm-1 is gone from it


def _resource(address: str, kind: str, key: str | None, actions: list[str], mode: str = "managed") -> dict[str, object]:
    item: dict[str, object] = {"address": address, "mode": mode, "type": kind, "name": "x", "change": {"actions": actions}}
    if key is not None:
        item["index"] = key
    return item


def test_replace_delete_and_what_is_left_out() -> None:
    document = {"format_version": "1.2", "resource_changes": [
        _resource('module.ec2.aws_instance.vm["a"]', "aws_instance", "a", ["create", "delete"]),
        _resource('module.openstack.openstack_networking_port_v2.vm["b"]', "openstack_networking_port_v2", "b", ["delete", "create"]),
        _resource("module.ec2.aws_security_group.tenant", "aws_security_group", None, ["delete"]),
        _resource("module.ec2.aws_key_pair.tenant[0]", "aws_key_pair", None, ["update"]),
        _resource('module.ec2.aws_instance.vm["c"]', "aws_instance", "c", ["no-op"]),
        _resource("data.aws_ami.x", "aws_ami", None, ["read"], mode="data"),
    ], "prior_state": {"values": {"root_module": {"child_modules": [{"resources": [
        {"address": 'module.openstack.openstack_compute_instance_v2.vm["b"]', "mode": "managed", "type": "openstack_compute_instance_v2",
         "index": "b", "values": {"id": "uuid-b", "power_state": "shutoff", "access_ip_v4": "10.0.0.5"}},
        {"address": "module.ec2.aws_security_group.tenant", "mode": "managed", "type": "aws_security_group", "values": {"id": "sg-1"}},
    ]}]}}}}
    detail = plan_detail(document)
    assert [(c.address.split(".")[2], c.action, c.key, c.instance) for c in detail.changes] == [
        ('aws_instance', "replace", "a", True), ("openstack_networking_port_v2", "replace", "b", False),
        ("aws_security_group", "delete", None, False), ("aws_key_pair", "update", None, False)]
    assert detail.instances == (StateInstance("b", "uuid-b", "SHUTOFF", "10.0.0.5"),)


def test_no_changes_and_no_state() -> None:
    detail = plan_detail({"format_version": "1.2", "prior_state": {"format_version": "1.0"}})
    assert detail.changes == () and detail.instances == ()


@pytest.mark.parametrize("version", ["2.0", "", "0.1"])
def test_another_major_format_is_refused(version: str) -> None:
    with pytest.raises(PermanentError, match="JSON plan format"):
        plan_detail({"format_version": version, "resource_changes": []})
