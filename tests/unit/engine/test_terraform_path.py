"""Tickets in a Terraform cloud with a fake Terraform driver: plan-bound approval, second approver,
refusals when the ticket, the workspace or the state changed, outputs into the store, quota, retirement.
(The real driver against terraform + moto: tests/integration/test_terraform_engine.py; the fake and the
``world`` fixture: tests/support/faketerraform.py, tests/unit/engine/conftest.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from govcloud.drivers.terraform import PlannedChange, StalePlan
from govcloud.engine import provision, terraform_path, tickets
from govcloud.engine.context import pg_conn_str
from govcloud.errors import InputError, PermanentError, PermissionDenied
from govcloud.store import terraform_plans
from govcloud.store import tickets as rows
from govcloud.store.tables import tickets as tickets_table
from tests.support.tickets import write_ticket


def _submit(engine: Any, tmp_path: Path, count: int = 2, flavor: str = "gc.medium") -> str:
    """A ticket of 2 VMs in the Terraform cloud; each call's VMs named anew (the same request twice is a duplicate)."""
    earlier = len(list(tmp_path.glob("*.yaml")))
    name = f"app{earlier}" if earlier else "app"
    ticket_id, path = write_ticket(tmp_path, tenant="gd-zsj", system="yunwei", requester="yuantao", roles=(),
                                   vms=[{"name": name, "count": count, "flavor": flavor, "cloud": "tp-ecloud"}])
    tickets.submit(engine("yuantao"), [path])
    return ticket_id


def _state(engine: Any, ticket_id: str) -> str:
    return tickets.show(engine("admin"), ticket_id).state


def _approved(engine: Any, tmp_path: Path, **kwargs: Any) -> str:
    ticket_id = _submit(engine, tmp_path, **kwargs)
    terraform_path.plan_ticket(engine("yunwei-he"), ticket_id)
    tickets.approve(engine("shenpi-chen"), ticket_id)
    return ticket_id


def test_plan_approve_apply_records_vms_commits_quota_and_apply_again_changes_nothing(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _submit(engine, tmp_path)
    assert _state(engine, ticket_id) == "submitted"  # within auto-approval's bounds, but a Terraform plan needs a human
    with pytest.raises(terraform_path.PlanRequired, match="govcloud plan"):
        tickets.approve(engine("shenpi-chen"), ticket_id)
    ((record, summary),) = terraform_path.plan_ticket(engine("yunwei-he"), ticket_id)
    assert (summary.add, summary.destroy, summary.flagged) == (2, 0, [])
    assert [i["private_ip"] for i in record.instances] == ["10.40.0.10", "10.40.0.11"]  # topology's network range, from host 10
    assert {i["size"] for i in record.instances} == {"s6.large.2"} and record.workspace == "gd-zsj--tp-ecloud"
    tickets.approve(engine("shenpi-chen"), ticket_id)
    ctx = engine("yunwei-he")
    (outcome,) = provision.apply(ctx, [ticket_id], configure=False)
    assert outcome.state == "active", outcome.detail
    with ctx.store.transaction() as conn:
        vms = rows.vms_of(conn, ticket_id)
        states = {line.state for line in rows.ledger_lines(conn, ticket=ticket_id)}
        (stored,) = terraform_plans.of_ticket(conn, ticket_id)
    assert [(v.status, v.address, v.cloud, v.region) for v in vms] == [("ACTIVE", "10.40.0.10", "tp-ecloud", "cn-south-1"),
                                                                        ("ACTIVE", "10.40.0.11", "tp-ecloud", "cn-south-1")]
    assert all(v.server_id and v.server_id.startswith("i-") for v in vms) and states == {"committed"}
    assert stored.approved_by == "shenpi-chen" and stored.applied_run is not None
    assert fake.secret_envs[-1] == {"AWS_ACCESS_KEY_ID": "AK-test", "AWS_SECRET_ACCESS_KEY": "SK-test-not-real"}
    (again,) = provision.apply(engine("yunwei-he"), [ticket_id], configure=False)
    assert again.state == "active" and again.detail == "gd-zsj--tp-ecloud: no changes"
    from govcloud.engine.configure import inventory

    hosts = inventory(engine("yunwei-he"), [ticket_id])["_meta"]["hostvars"]
    assert sorted(h["ansible_host"] for h in hosts.values()) == ["10.40.0.10", "10.40.0.11"]  # the Ansible step sees them


def test_ticket_edited_after_approval_is_refused_and_nothing_changes(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _approved(engine, tmp_path)
    ctx = engine("yunwei-he")
    with ctx.store.transaction() as conn:  # an edit behind govcloud's back (the stored ticket is the request)
        source = rows.require(conn, ticket_id).source.replace("gc.medium", "gc.large")
        conn.execute(sa.update(tickets_table).where(tickets_table.c.id == ticket_id).values(source=source))
    with pytest.raises(terraform_path.PlanRefused, match="changed since its plan") as refused:
        provision.apply(ctx, [ticket_id], configure=False)
    assert refused.value.exit_code == 2
    assert "apply" not in fake.calls and _state(engine, ticket_id) == "approved"
    (outcome,) = provision.apply(ctx, configure=False)  # not named: reported, never blocking the others
    assert outcome.state == "refused"


def test_state_changed_since_approval_is_refused(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _approved(engine, tmp_path)
    fake.state["gd-zsj--tp-ecloud"]["serial"] += 1  # someone ran terraform in the workspace
    with pytest.raises(terraform_path.PlanRefused, match=r"Terraform state of gd-zsj--tp-ecloud changed .*serial 0 → 1"):
        provision.apply(engine("yunwei-he"), [ticket_id], configure=False)
    assert "apply" not in fake.calls and _state(engine, ticket_id) == "approved"


def test_a_stale_plan_found_by_terraform_itself_returns_the_ticket_to_approved(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _approved(engine, tmp_path)
    fake.fail_apply = StalePlan("terraform apply: Saved plan is stale")
    with pytest.raises(terraform_path.PlanRefused, match="stale"):
        provision.apply(engine("yunwei-he"), [ticket_id], configure=False)
    assert _state(engine, ticket_id) == "approved"


def test_another_ticket_joining_the_workspace_makes_the_plan_stale_until_replanned(world: Any, tmp_path: Path) -> None:
    _, engine = world
    first = _approved(engine, tmp_path, count=1)
    second = _approved(engine, tmp_path, count=1, flavor="gc.large")
    with pytest.raises(terraform_path.PlanRefused, match="workspace gd-zsj--tp-ecloud changed"):
        provision.apply(engine("yunwei-he"), [first], configure=False)
    (done,) = provision.apply(engine("yunwei-he"), [second], configure=False)  # its plan included the first ticket
    assert done.state == "active"
    ((_, summary),) = terraform_path.plan_ticket(engine("yunwei-he"), first)
    assert not summary.has_changes  # the second apply created it already
    tickets.approve(engine("shenpi-lin"), first)  # signs the re-made plan; the quota stays reserved once
    (outcome,) = provision.apply(engine("yunwei-he"), [first], configure=False)
    assert outcome.state == "active", outcome.detail
    with engine("admin").store.transaction() as conn:
        assert len(rows.ledger_lines(conn, ticket=first)) == 1
        addresses = sorted(vm.address or "" for vm in rows.vms_of(conn))
    assert addresses == ["10.40.0.10", "10.40.0.11"]


def test_a_plan_that_replaces_something_needs_a_second_different_approver(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _submit(engine, tmp_path)
    fake.extra_changes = [PlannedChange("module.ec2.aws_security_group.tenant", "replace")]
    ((record, _),) = terraform_path.plan_ticket(engine("yunwei-he"), ticket_id)
    assert record.flagged == ("module.ec2.aws_security_group.tenant",)
    tickets.approve(engine("shenpi-chen"), ticket_id)
    with pytest.raises(terraform_path.PlanRefused, match="needs a second approver"):
        provision.apply(engine("yunwei-he"), [ticket_id], configure=False)
    with pytest.raises(terraform_path.PlanRefused, match="other than shenpi-chen"):
        tickets.approve(engine("shenpi-chen"), ticket_id)
    with pytest.raises(terraform_path.PlanRefused, match="role approver"):
        tickets.approve(engine("admin"), ticket_id)
    with pytest.raises(PermissionDenied):
        tickets.approve(engine("yunwei-he"), ticket_id)
    tickets.approve(engine("shenpi-lin"), ticket_id)
    (outcome,) = provision.apply(engine("yunwei-he"), [ticket_id], configure=False)
    assert outcome.state == "active"
    actions = [r.action for r in engine("admin").store.audit.records(subject=f"ticket:{ticket_id}")]
    assert actions.count("terraform.approve") == 1 and "terraform.plan" in actions


def test_retire_destroys_the_workspace_and_releases_the_quota(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    keep = _approved(engine, tmp_path, count=1)
    provision.apply(engine("yunwei-he"), [keep], configure=False)
    gone = _approved(engine, tmp_path, count=2)
    provision.apply(engine("yunwei-he"), [gone], configure=False)
    assert len(fake.state["gd-zsj--tp-ecloud"]["instances"]) == 3
    outcome = provision.retire(engine("yunwei-he"), gone)  # other tickets stay: a plan deleting only its instances
    assert (outcome.state, outcome.detail) == ("retired", "2 server(s) deleted, quota released")
    assert len(fake.state["gd-zsj--tp-ecloud"]["instances"]) == 1
    provision.retire(engine("yunwei-he"), keep)  # the last one: destroy
    assert fake.state["gd-zsj--tp-ecloud"]["instances"] == {}
    with engine("admin").store.transaction() as conn:
        assert rows.vms_of(conn) == [] and rows.ledger_lines(conn) == []


def test_retire_refuses_when_the_plan_would_touch_other_resources(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    keep = _approved(engine, tmp_path, count=1)
    provision.apply(engine("yunwei-he"), [keep], configure=False)
    gone = _approved(engine, tmp_path, count=1)
    provision.apply(engine("yunwei-he"), [gone], configure=False)
    fake.extra_changes = [PlannedChange("module.ec2.aws_security_group.tenant", "replace")]
    with pytest.raises(Exception, match=r"would also change module\.ec2\.aws_security_group\.tenant"):
        provision.retire(engine("yunwei-he"), gone)
    assert len(fake.state["gd-zsj--tp-ecloud"]["instances"]) == 2


def test_a_failed_apply_rolls_back_and_releases_the_quota(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _approved(engine, tmp_path)
    fake.fail_apply = PermanentError("terraform apply of gd-zsj--tp-ecloud: InvalidAMIID.NotFound")
    (outcome,) = provision.apply(engine("yunwei-he"), [ticket_id], configure=False)
    assert outcome.state == "failed" and "InvalidAMIID.NotFound" in outcome.detail and "quota was released" in outcome.detail
    with engine("admin").store.transaction() as conn:
        assert rows.ledger_lines(conn, ticket=ticket_id) == []


def test_only_operators_and_approvers_save_plans_and_openstack_tickets_plan_nothing(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _submit(engine, tmp_path)
    with pytest.raises(PermissionDenied, match="'plan' needs role"):
        terraform_path.plan_ticket(engine("yuantao"), ticket_id)
    other, path = write_ticket(tmp_path, tenant="gd-zsj", system="yunwei", requester="yuantao", roles=(),
                               vms=[{"name": "x", "count": 1, "flavor": "gc.small", "cloud": "gd-prov"}])
    tickets.submit(engine("yuantao"), [path])
    assert terraform_path.plan_ticket(engine("yuantao"), other) == [] and fake.calls == []


def test_missing_credentials_are_named_before_terraform_runs(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _submit(engine, tmp_path)
    with pytest.raises(InputError, match=r"\$GOVCLOUD_TP_ECLOUD_ACCESS_KEY, \$GOVCLOUD_TP_ECLOUD_SECRET_KEY"):
        terraform_path.plan_ticket(engine("yunwei-he", environ={}), ticket_id)
    assert fake.calls == []


def test_a_ticket_mixing_openstack_and_terraform_clouds_is_refused(world: Any, tmp_path: Path) -> None:
    _, engine = world
    ticket_id, path = write_ticket(tmp_path, tenant="gd-zsj", system="yunwei", requester="yuantao", roles=(),
                                   vms=[{"name": "a", "count": 1, "flavor": "gc.large", "cloud": "tp-ecloud"},
                                        {"name": "b", "count": 1, "flavor": "gc.large", "cloud": "gd-prov"}])
    tickets.submit(engine("yuantao"), [path])
    with pytest.raises(tickets.InvalidState, match="split the ticket"):
        terraform_path.plan_ticket(engine("yunwei-he"), ticket_id)


def test_pg_backend_connection_string_from_the_store_url() -> None:
    assert pg_conn_str("postgresql+psycopg2://gc:pw@db.example:5432/govcloud") == "postgres://gc:pw@db.example:5432/govcloud"
    assert pg_conn_str("postgresql://gc@/govcloud?host=/run/pg") == "postgres://gc@/govcloud?host=/run/pg"
    with pytest.raises(ValueError):
        pg_conn_str("sqlite:///x.db")


def test_a_delete_ticket_retires_a_terraform_ticket_and_a_resize_is_refused(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    target = _approved(engine, tmp_path, count=1)
    provision.apply(engine("yunwei-he"), [target], configure=False)
    resize_id, resize = write_ticket(tmp_path, tenant="gd-zsj", system="yunwei", requester="yuantao", kind="resize", target=target,
                                     roles=(), vms=[{"name": "app", "count": 1, "flavor": "gc.large", "cloud": "tp-ecloud"}])
    tickets.submit(engine("yuantao"), [resize])
    with pytest.raises(tickets.InvalidState, match="not supported yet"):
        tickets.approve(engine("shenpi-chen"), resize_id)
    assert _state(engine, resize_id) == "submitted"
    delete_id, delete = write_ticket(tmp_path, tenant="gd-zsj", system="yunwei", requester="yuantao", kind="delete", target=target,
                                     roles=(), vms=[])
    tickets.submit(engine("yuantao"), [delete])
    tickets.approve(engine("shenpi-chen"), delete_id)
    (outcome,) = provision.apply(engine("yunwei-he"), [delete_id], configure=False)
    assert outcome.state == "active", outcome.detail
    assert _state(engine, target) == "retired" and fake.state["gd-zsj--tp-ecloud"]["instances"] == {}


def test_retire_leaves_an_approved_tickets_instances_to_its_own_plan(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    active = _approved(engine, tmp_path, count=1)
    provision.apply(engine("yunwei-he"), [active], configure=False)
    waiting = _approved(engine, tmp_path, count=1)  # approved, not applied: its instance does not exist yet
    assert provision.retire(engine("yunwei-he"), active).state == "retired"
    assert fake.state["gd-zsj--tp-ecloud"]["instances"] == {}  # destroyed, the waiting ticket's VM not created by it
    with pytest.raises(terraform_path.PlanRefused, match="changed since plan"):  # its plan included the retired one
        provision.apply(engine("yunwei-he"), [waiting], configure=False)
    terraform_path.plan_ticket(engine("yunwei-he"), waiting)
    tickets.approve(engine("shenpi-chen"), waiting)
    (outcome,) = provision.apply(engine("yunwei-he"), [waiting], configure=False)
    assert outcome.state == "active" and len(fake.state["gd-zsj--tp-ecloud"]["instances"]) == 1
