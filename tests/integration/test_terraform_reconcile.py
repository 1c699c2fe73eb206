"""Reconcile of a Terraform cloud against the real thing: terraform 1.11 with the AWS provider from the mirror
(/opt/tf-plugins) and a moto server as the EC2-compatible cloud ``tp-ecloud`` (tests/support/tfcloud.py, the
same profile as test_terraform_engine.py). One journey, in order: a ticket applied in tp-ecloud → one of its
instances terminated through moto's EC2 API, behind govcloud's back → a ``report`` pass records the drift
(refreshed ``terraform plan`` + ``terraform show -json``; ``govcloud drift list`` shows it) and changes
nothing → a ``correct`` pass applies that plan: the instance exists again, the VM row has moto's new instance
id and address, the audit chain has the correction → a clean pass finds nothing → the ticket marked failed
(as a failed apply whose rollback stopped half-way leaves it): a pass reads the workspace's state without
planning it and reports both instances as orphans naming `govcloud ticket retire`, moto untouched → that
retire destroys them → a last pass runs no terraform at all (empty state). (The cloud chooses the
addresses here: moto never frees a terminated instance's fixed address, see ``ec2_profile``.)

The engine runs in-process (the daemon's own ``Reconciler``); the sample topology's OpenStack clouds are
served by the in-memory FakeCloud, so the pass's deadline is about terraform alone (the OpenStack path's own
integration tests run against the devcloud). Missing terraform, mirror or moto fail loudly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from govcloud.engine import provision, terraform_path
from govcloud.engine import tickets as engine_tickets
from govcloud.engine.context import EngineContext, build
from govcloud.engine.reconcile import CloudResult, Reconciler
from govcloud.settings import Settings
from govcloud.store import facts
from govcloud.store import tickets as rows
from govcloud.store.tables import tickets as tickets_table
from tests.support.fakecloud import FakeCloud
from tests.support.moto import ACCESS_KEY, SECRET_KEY, moto_server
from tests.support.tfcloud import ec2_profile, live_instances, require_tools
from tests.support.tickets import REPO, write_ticket

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::boto3.exceptions.PythonDeprecationWarning"),
]
TENANT, SYSTEM = "gd-zsj", "yunwei"


@dataclass
class Trip:
    ec2: Any
    base: Path
    env: dict[str, str]
    ticket: str = ""

    def ctx(self, user: str) -> EngineContext:
        return build(Settings.from_env(self.env).with_overrides(user=user))

    def reconcile(self, policy: str) -> CloudResult:
        ctx = self.ctx("govcloud-daemon")
        ctx.driver_factory = FakeCloud().driver
        reconciler = Reconciler(ctx, policy=policy, timeout=600)
        started = time.monotonic()
        try:
            results = {r.cloud: r for r in reconciler.run()}
        finally:
            reconciler.close()
        print(f"reconcile --policy {policy}: {time.monotonic() - started:.1f} s")
        return results["tp-ecloud"]

    def vms(self) -> dict[str, rows.VmRow]:
        with self.ctx("admin").store.transaction() as conn:
            return {vm.name: vm for vm in rows.vms_of(conn, self.ticket)}


@pytest.fixture(scope="module")
def trip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trip]:
    require_tools()
    import boto3

    base = tmp_path_factory.mktemp("tf-reconcile")
    with moto_server() as moto:
        ec2 = boto3.client("ec2", endpoint_url=moto.url, region_name=moto.region, aws_access_key_id=ACCESS_KEY,
                           aws_secret_access_key=SECRET_KEY)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVCLOUD_", "AWS_", "OS_"))}
        env.update(GOVCLOUD_ROOT=str(REPO), GOVCLOUD_STATE_DIR=str(base / "state"), GOVCLOUD_DB=f"sqlite:///{base / 'govcloud.db'}",
                   GOVCLOUD_PROFILE=str(ec2_profile(base, moto, ec2, fixed_addresses=False)), GOVCLOUD_IT_TP_ACCESS_KEY=ACCESS_KEY,
                   GOVCLOUD_IT_TP_SECRET_KEY=SECRET_KEY)
        yield Trip(ec2=ec2, base=base, env=env)


def _name(trip: Trip, index: int) -> str:
    return f"{TENANT}-{SYSTEM}-{trip.ticket}-{index}"


def test_a_ticket_applied_in_the_terraform_cloud(trip: Trip) -> None:
    started = time.monotonic()
    trip.ticket, path = write_ticket(trip.base, tenant=TENANT, system=SYSTEM, requester="yuantao", roles=(),
                                     vms=[{"name": "app", "count": 2, "flavor": "gc.small", "cloud": "tp-ecloud"}])
    engine_tickets.submit(trip.ctx("yuantao"), [path])
    terraform_path.plan_ticket(trip.ctx("yunwei-he"), trip.ticket)
    engine_tickets.approve(trip.ctx("shenpi-chen"), trip.ticket)
    (outcome,) = provision.apply(trip.ctx("yunwei-he"), [trip.ticket], configure=False)
    print(f"plan + approve + apply: {time.monotonic() - started:.1f} s")
    assert outcome.state == "active", outcome.detail
    assert sorted(live_instances(trip.ec2)) == [_name(trip, 1), _name(trip, 2)]


def test_report_records_an_instance_terminated_behind_govclouds_back_and_changes_nothing(trip: Trip) -> None:
    lost = _name(trip, 1)
    before = trip.vms()
    trip.ec2.terminate_instances(InstanceIds=[before[lost].server_id])
    result = trip.reconcile("report")
    assert result.error is None, result.error
    assert [(d.kind, d.reason, d.name, d.ticket) for d in result.findings] == [("drift", "missing", lost, trip.ticket)]
    assert result.servers == 1 and result.corrected == ()
    assert sorted(live_instances(trip.ec2)) == [_name(trip, 2)] and trip.vms() == before
    shown = subprocess.run([sys.executable, str(REPO / "cli.py"), "--as", "yunwei-he", "drift", "list", "--cloud", "tp-ecloud", "-o", "json"],
                           capture_output=True, text=True, cwd=REPO, env=trip.env, timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr
    (finding,) = json.loads(shown.stdout)
    assert (finding["kind"], finding["name"], finding["ticket"], finding["tenant"]) == ("drift", lost, trip.ticket, TENANT)
    with trip.ctx("admin").store.transaction() as conn:
        cycle = {c.cloud: c for c in facts.cycles(conn)}["tp-ecloud"]
    assert (cycle.drift, cycle.servers, cycle.corrected, cycle.error) == (1, 1, 0, None) and cycle.success_at


def test_correct_recreates_it_and_the_vm_row_gets_the_new_instance(trip: Trip) -> None:
    lost = _name(trip, 1)
    before = trip.vms()
    result = trip.reconcile("correct")
    assert result.error is None and result.corrected == (lost,), (result.error, result.findings)
    live = live_instances(trip.ec2)
    assert sorted(live) == [_name(trip, 1), _name(trip, 2)]
    after = trip.vms()
    assert after[lost].server_id == live[lost]["InstanceId"] != before[lost].server_id
    assert after[lost].address == live[lost]["PrivateIpAddress"]  # moto chose it (see ec2_profile): from the outputs
    assert after[_name(trip, 2)].server_id == before[_name(trip, 2)].server_id
    assert live[lost]["tags"]["govcloud:ticket"] == trip.ticket
    (audit,) = [r for r in trip.ctx("admin").store.audit.records(subject="cloud:tp-ecloud") if r.action == "reconcile.correct"]
    assert audit.details["recreated"] == [lost] and audit.details["instances"] == {lost: after[lost].server_id}


def test_a_clean_pass_finds_nothing(trip: Trip) -> None:
    result = trip.reconcile("correct")
    assert (result.error, result.findings, result.corrected, result.servers) == (None, (), (), 2)
    with trip.ctx("admin").store.transaction() as conn:
        cycle = {c.cloud: c for c in facts.cycles(conn)}["tp-ecloud"]
        assert facts.findings_of(conn, cloud="tp-ecloud") == []
    assert (cycle.drift, cycle.error) == (0, None)


def _runs(trip: Trip) -> int:
    """Terraform runs recorded in the workspace (every run has a directory)."""
    return len(list((trip.base / "state" / "terraform" / f"{TENANT}--tp-ecloud" / "runs").iterdir()))


def test_a_failed_tickets_instances_are_orphans_until_its_retire_destroys_them(trip: Trip) -> None:
    with trip.ctx("admin").store.transaction() as conn:  # as a failed apply whose rollback stopped half-way leaves it
        conn.execute(sa.update(tickets_table).where(tickets_table.c.id == trip.ticket).values(state="failed"))
    runs = _runs(trip)
    result = trip.reconcile("correct")
    assert result.error is None and result.corrected == () and result.servers == 2, result.error
    orphans = {d.name: d for d in result.findings if d.kind == "orphan"}
    assert sorted(orphans) == [_name(trip, 1), _name(trip, 2)] and {d.ticket for d in orphans.values()} == {trip.ticket}
    assert {d.server_id for d in orphans.values()} == {i["InstanceId"] for i in live_instances(trip.ec2).values()}
    assert all(f"`govcloud ticket retire {trip.ticket}` destroys it" in d.describe() for d in orphans.values())
    rest = [d for d in result.findings if d.kind != "orphan"]
    assert rest and all((d.reason, d.status) == ("resource", "left") for d in rest)  # the tenant's security group
    assert _runs(trip) == runs + 1 and sorted(live_instances(trip.ec2)) == [_name(trip, 1), _name(trip, 2)]  # one show -json, nothing applied
    started = time.monotonic()
    outcome = provision.retire(trip.ctx("yunwei-he"), trip.ticket)
    print(f"retire of the failed ticket: {time.monotonic() - started:.1f} s")
    assert outcome.state == "retired", outcome.detail
    assert live_instances(trip.ec2) == {}
    runs = _runs(trip)
    result = trip.reconcile("correct")
    assert (result.error, result.findings, result.servers) == (None, (), 0) and _runs(trip) == runs  # an empty state: no terraform run
