"""``planner.tf_drift.judge``: a Terraform workspace's plan read as drift, and when it may be applied
without a human (only creates and in-place updates of live tickets' VMs)."""

from __future__ import annotations

from govcloud.planner.tf_drift import Instance, Member, PlannedResource, Remaining, judge, leftovers

WS = "gd-zsj--tp-ecloud"
MEMBERS = {"a-1": Member("a-1", "t-a", 1, "gd-zsj", "active"), "a-2": Member("a-2", "t-a", 2, "gd-zsj", "active"),
           "b-1": Member("b-1", "t-b", 1, "gd-zsj", "approved"), "old-1": Member("old-1", "t-old", 1, "gd-zsj", "retired")}


def vm(name: str, action: str, *, instance: bool = True, kind: str = "aws_instance") -> PlannedResource:
    return PlannedResource(f'module.ec2.{kind}.vm["{name}"]', action, name, instance)


def test_missing_and_changed_vms_of_live_tickets_may_be_put_back_unattended() -> None:
    verdict = judge(cloud="tp", workspace=WS, members=MEMBERS, changes=[vm("a-1", "create"), vm("a-2", "update")],
                    instances=[Instance("a-2", "i-2", "ACTIVE")])
    assert [(d.kind, d.reason, d.name, d.key, d.server_id) for d in verdict.findings] == [
        ("drift", "missing", "a-1", "t-a/1", None), ("drift", "changed", "a-2", "i-2", "i-2")]
    assert verdict.unattended and verdict.fixes == ("a-1", "a-2") and not any(d.note for d in verdict.findings)


def test_a_replace_anywhere_leaves_the_whole_plan_to_a_human() -> None:
    verdict = judge(cloud="tp", workspace=WS, members=MEMBERS, remedy="ask an operator",
                    changes=[vm("a-1", "create"), vm("a-2", "replace")], instances=[Instance("a-2", "i-2", "ACTIVE")])
    assert not verdict.unattended and verdict.blockers == ('it would replace module.ec2.aws_instance.vm["a-2"]',)
    assert {d.reason for d in verdict.findings} == {"missing", "replaced"}
    assert all(d.note == f"not applied unattended ({verdict.blockers[0]}): ask an operator" for d in verdict.findings)


def test_workspace_resources_gone_tickets_and_tickets_in_flight() -> None:
    changes = [PlannedResource("module.ec2.aws_security_group.tenant", "create"), vm("old-1", "delete"), vm("b-1", "create"),
               vm("x-9", "delete")]
    verdict = judge(cloud="tp", workspace=WS, members=MEMBERS, changes=changes,
                    instances=[Instance("old-1", "i-old", "ACTIVE"), Instance("x-9", "i-x", "ACTIVE")])
    found = {(d.kind, d.reason, d.name, d.key) for d in verdict.findings}
    assert found == {("drift", "resource", "module.ec2.aws_security_group.tenant", f"{WS}:module.ec2.aws_security_group.tenant"),
                     ("orphan", "no-ticket", "old-1", "i-old"), ("orphan", "no-ticket", "x-9", "i-x")}  # b-1: its own plan creates it
    assert not verdict.unattended and len(verdict.blockers) == 4
    assert any("of ticket t-b, which is approved" in b for b in verdict.blockers)


def test_one_finding_per_vm_and_stopped_or_broken_instances_are_reported_only() -> None:
    changes = [vm("a-1", "update"), vm("a-1", "create", instance=False, kind="openstack_networking_port_v2")]
    verdict = judge(cloud="tp", workspace=WS, members=MEMBERS, changes=changes,
                    instances=[Instance("a-1", "i-1", "ACTIVE"), Instance("a-2", "i-2", "SHUTOFF"), Instance("old-1", "i-o", "ERROR")])
    assert [(d.reason, d.name) for d in verdict.findings] == [("changed", "a-1"), ("stopped", "a-2")]
    assert verdict.fixes == ("a-1",) and verdict.unattended
    quiet = judge(cloud="tp", workspace=WS, members=MEMBERS, changes=[], instances=[Instance("a-1", "i-1", "ERROR")])
    assert [(d.reason, d.server_id) for d in quiet.findings] == [("broken", "i-1")] and not quiet.unattended and quiet.fixes == ()


def test_leftovers_of_a_workspace_without_live_tickets_name_their_remedy_and_one_finding_per_vm() -> None:
    members = {**MEMBERS, "f-1": Member("f-1", "t-f", 1, "gd-zsj", "failed")}
    port = 'module.os.openstack_networking_port_v2.vm["{}"]'
    found = leftovers(cloud="hz", workspace="gd-zsj--hz", directory="/ws/gd-zsj--hz", members=members, resources=[
        Remaining('module.os.openstack_compute_instance_v2.vm["f-1"]', "f-1", True, "srv-f", "ACTIVE"),
        Remaining(port.format("f-1"), "f-1", False, "p-f"),  # goes with its instance
        Remaining('module.os.openstack_compute_instance_v2.vm["old-1"]', "old-1", True, "srv-o", "SHUTOFF"),
        Remaining('module.os.openstack_compute_instance_v2.vm["b-1"]', "b-1", True, "srv-b"),  # approved: its run is on it
        Remaining(port.format("gone-1"), "gone-1", False, "p-g")])
    by_name = {d.name: d for d in found}
    assert {n: (d.kind, d.ticket, d.server_id) for n, d in by_name.items()} == {
        "f-1": ("orphan", "t-f", "srv-f"), "old-1": ("orphan", "t-old", "srv-o"), port.format("gone-1"): ("drift", None, None)}
    assert "`govcloud ticket retire t-f` destroys it" in by_name["f-1"].describe()
    assert "ticket t-old is retired, so no govcloud command removes it" in by_name["old-1"].describe()
    assert f"terraform -chdir=/ws/gd-zsj--hz destroy -target='{port.format('gone-1')}'" in by_name[port.format("gone-1")].describe()
    assert by_name["old-1"].key == "srv-o" and by_name[port.format("gone-1")].key == f"gd-zsj--hz:{port.format('gone-1')}"
