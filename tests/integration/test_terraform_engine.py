"""A ticket in a Terraform cloud through the whole main job, with real components: the govcloud CLI, terraform
1.11 with the AWS provider from the local mirror (/opt/tf-plugins), a moto server on 127.0.0.1 as the
EC2-compatible third-party cloud ``tp-ecloud``, and test hosts (network namespaces with their own sshd on the
bridge ``gcbr6``) at the addresses govcloud gives the instances, so the Ansible step configures them over SSH.

Where the cloud is comes from configuration only: a profile (``GOVCLOUD_PROFILE``) whose ``clouds.tp-ecloud``
replaces the topology's ``terraform:`` settings with moto's endpoints, VPC, subnet and AMI; the credentials
reach govcloud as environment variables named by that profile. The tests run in order and share one journey:
submit → plan (summary shown) → approve → apply (instances with govcloud's tags at the planned addresses,
configured over SSH) → apply again (no changes) → a ticket edited after approval is refused → retire →
destroyed, VMs and quota gone → no secret on disk. Missing terraform, mirror, moto or test-host tools fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from govcloud.store import Store, terraform_plans
from govcloud.store import tickets as rows
from govcloud.store.tables import tickets
from tests.support.hosts import TestHosts
from tests.support.moto import ACCESS_KEY, SECRET_KEY, MotoServer, moto_server
from tests.support.tfcloud import ec2_profile, live_instances, require_tools
from tests.support.tickets import REPO, open_store, write_ticket

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::boto3.exceptions.PythonDeprecationWarning"),
]
BRIDGE, GATEWAY, PREFIX = "gcbr6", "10.253.0.1", 24
TENANT, SYSTEM, REQUESTER = "gd-zsj", "yunwei", "yuantao"


@dataclass
class Journey:
    """What the ordered tests share."""

    moto: MotoServer
    ec2: Any
    base: Path
    env: dict[str, str]
    ticket: str = ""
    edited: str = ""
    hosts: TestHosts | None = None
    outputs: list[str] = field(default_factory=list)

    @property
    def db(self) -> str:
        return f"sqlite:///{self.base / 'govcloud.db'}"

    def cli(self, user: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, str(REPO / "cli.py"), "--as", user, *args], capture_output=True, text=True,
                              timeout=timeout, cwd=REPO, env=self.env, check=False)
        self.outputs.append(f"$ govcloud --as {user} {' '.join(args)}  (exit {done.returncode})\n{done.stdout}{done.stderr}")
        return done

    def store(self) -> Store:
        return open_store(self.db)

    def live(self) -> dict[str, dict[str, Any]]:
        """Instances that are not terminated, by Name tag."""
        return live_instances(self.ec2)


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    require_tools()
    import boto3

    base = tmp_path_factory.mktemp("tf-engine")
    with moto_server() as moto:
        moto.reset()
        ec2 = boto3.client("ec2", endpoint_url=moto.url, region_name=moto.region, aws_access_key_id=ACCESS_KEY,
                           aws_secret_access_key=SECRET_KEY)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVCLOUD_", "AWS_", "OS_"))}
        env.update(GOVCLOUD_ROOT=str(REPO), GOVCLOUD_STATE_DIR=str(base / "state"), GOVCLOUD_DB=f"sqlite:///{base / 'govcloud.db'}",
                   GOVCLOUD_PROFILE=str(ec2_profile(base, moto, ec2)), GOVCLOUD_IT_TP_ACCESS_KEY=ACCESS_KEY,
                   GOVCLOUD_IT_TP_SECRET_KEY=SECRET_KEY, GOVCLOUD_SSH_KEY=str(base / "hosts" / "id_ed25519"))
        trip = Journey(moto=moto, ec2=ec2, base=base, env=env)
        try:
            yield trip
        finally:
            if trip.hosts is not None:
                trip.hosts.close()
            (base / "transcript.txt").write_text("\n".join(trip.outputs), encoding="utf-8")


def test_submit_and_plan_shows_the_summary(journey: Journey) -> None:
    ticket_id, path = write_ticket(journey.base, tenant=TENANT, system=SYSTEM, requester=REQUESTER, roles=("baseline",),
                                   vms=[{"name": "app", "count": 2, "flavor": "gc.small", "cloud": "tp-ecloud"}])
    journey.ticket = ticket_id
    submitted = journey.cli(REQUESTER, "ticket", "submit", str(path))
    assert submitted.returncode == 0, submitted.stderr
    assert "submitted" in submitted.stdout  # small enough for auto-approval, but a Terraform plan needs a human
    early = journey.cli("shenpi-chen", "ticket", "approve", ticket_id)
    assert early.returncode == 2 and f"run `govcloud plan {ticket_id}` first" in early.stderr, early.stderr
    started = time.monotonic()
    planned = journey.cli("yunwei-he", "plan", ticket_id)
    assert planned.returncode == 0, planned.stderr
    assert "terraform: 3 to add, 0 to change, 0 to destroy; approval binds to sha256" in planned.stdout, planned.stdout
    for index in (1, 2):
        assert f'module.ec2.aws_instance.vm["{TENANT}-{SYSTEM}-{ticket_id}-{index}"]' in planned.stdout
    assert "WARNING" not in planned.stdout
    print(f"plan: {time.monotonic() - started:.1f} s\n{planned.stdout}")
    with journey.store().transaction() as conn:
        (record,) = terraform_plans.of_ticket(conn, ticket_id)
    assert [i["private_ip"] for i in record.instances] == ["10.253.0.10", "10.253.0.11"]
    assert Path(record.planfile).is_file() and record.approved_by is None


def test_approve_binds_the_plan(journey: Journey) -> None:
    approved = journey.cli("shenpi-chen", "ticket", "approve", journey.ticket)
    assert approved.returncode == 0, approved.stderr
    assert "approved by shenpi-chen" in approved.stdout and "terraform plan" in approved.stdout
    assert "SECOND APPROVER" not in approved.stdout


def test_apply_creates_tagged_instances_at_the_planned_addresses_and_configures_them(journey: Journey) -> None:
    with journey.store().transaction() as conn:
        (record,) = terraform_plans.of_ticket(conn, journey.ticket)
    addresses = [str(i["private_ip"]) for i in record.instances]
    journey.hosts = TestHosts(addresses, subnet_prefix=PREFIX, gateway=GATEWAY, base=journey.base / "hosts", bridge=BRIDGE)
    journey.hosts.up()  # the "VMs boot": a real sshd at each address the instances will get
    started = time.monotonic()
    applied = journey.cli("yunwei-he", "apply", journey.ticket)
    print(f"apply + configure: {time.monotonic() - started:.1f} s")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    live = journey.live()
    names = [f"{TENANT}-{SYSTEM}-{journey.ticket}-{i}" for i in (1, 2)]
    assert sorted(live) == names
    for index, name in enumerate(names, start=1):
        vm = live[name]
        assert vm["PrivateIpAddress"] == f"10.253.0.{9 + index}" and vm["InstanceType"] == "t3.micro"
        assert vm["tags"] == {"Name": name, "govcloud:ticket": journey.ticket, "govcloud:index": str(index), "govcloud:tenant": TENANT,
                              "govcloud:system": SYSTEM}
    with journey.store().transaction() as conn:
        row = rows.require(conn, journey.ticket)
        vms = rows.vms_of(conn, journey.ticket)
        ledger = {line.state for line in rows.ledger_lines(conn, ticket=journey.ticket)}
        config = {r.vm: r.status for r in rows.config_of(conn, journey.ticket)}
    assert row.state == "active", row.reason
    assert {(v.server_id, v.address) for v in vms} == {(live[n]["InstanceId"], live[n]["PrivateIpAddress"]) for n in names}
    assert ledger == {"committed"} and config == {n: "changed" for n in names}
    for address in addresses:  # configured over SSH by the baseline role: the tenant's contacts with a key are admins
        assert "yuantao:" in journey.hosts.read_file(address, "/etc/passwd")
        assert "ssh-ed25519" in journey.hosts.read_file(address, "/home/yuantao/.ssh/authorized_keys")
    listed = journey.cli("yunwei-he", "vm", "list", "--ticket", journey.ticket, "-o", "json")
    assert sorted(v["address"] for v in json.loads(listed.stdout)) == addresses


def test_apply_again_changes_nothing(journey: Journey) -> None:
    before = {n: vm["InstanceId"] for n, vm in journey.live().items()}
    again = journey.cli("yunwei-he", "apply", journey.ticket)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "no changes" in again.stdout and "0 change(s)" in again.stdout  # terraform: nothing; Ansible: nothing
    assert {n: vm["InstanceId"] for n, vm in journey.live().items()} == before


def test_a_ticket_edited_after_approval_is_refused(journey: Journey) -> None:
    ticket_id, path = write_ticket(journey.base, tenant=TENANT, system=SYSTEM, requester=REQUESTER, roles=(),
                                   vms=[{"name": "db", "count": 1, "flavor": "gc.small", "cloud": "tp-ecloud"}])
    journey.edited = ticket_id
    assert journey.cli(REQUESTER, "ticket", "submit", str(path)).returncode == 0
    planned = journey.cli("yunwei-he", "plan", ticket_id)
    assert "terraform: 1 to add, 0 to change, 0 to destroy" in planned.stdout, planned.stdout + planned.stderr
    assert journey.cli("shenpi-chen", "ticket", "approve", ticket_id).returncode == 0
    store = journey.store()
    with store.transaction() as conn:  # the stored request changes after approval (an edit behind govcloud's back)
        source = rows.require(conn, ticket_id).source.replace("gc.small", "gc.medium")
        conn.execute(sa.update(tickets).where(tickets.c.id == ticket_id).values(source=source))
    before = sorted(journey.live())
    refused = journey.cli("yunwei-he", "apply", ticket_id)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"ticket {ticket_id} changed since its plan" in refused.stderr and "nothing was changed" in refused.stderr
    print(refused.stderr)
    assert sorted(journey.live()) == before
    with store.transaction() as conn:
        assert rows.require(conn, ticket_id).state == "approved"
    retired = journey.cli("yunwei-he", "ticket", "retire", ticket_id, "--yes")
    assert retired.returncode == 0 and "0 server(s) deleted" in retired.stdout, retired.stdout + retired.stderr
    assert sorted(journey.live()) == before  # the other ticket's instances were not touched


def test_retire_destroys_and_releases_the_quota(journey: Journey) -> None:
    started = time.monotonic()
    retired = journey.cli("yunwei-he", "ticket", "retire", journey.ticket, "--yes")
    print(f"retire (destroy): {time.monotonic() - started:.1f} s")
    assert retired.returncode == 0, retired.stdout + retired.stderr
    assert "2 server(s) deleted, quota released" in retired.stdout
    assert journey.live() == {}
    with journey.store().transaction() as conn:
        assert rows.require(conn, journey.ticket).state == "retired"
        assert rows.vms_of(conn, journey.ticket) == [] and rows.ledger_lines(conn, ticket=journey.ticket) == []


def test_no_secret_on_disk(journey: Journey) -> None:
    """Workspaces, plan files, run directories, the store, the profile: the secret key appears nowhere."""
    files = [p for p in journey.base.rglob("*") if p.is_file() and not p.is_symlink() and "hosts" not in p.relative_to(journey.base).parts]
    assert any(p.name == "plan.tfplan" for p in files) and any(p.name == "govcloud.db" for p in files)
    for path in files:
        try:
            content = path.read_bytes()
        except FileNotFoundError:  # SQLite's -wal/-shm go away when the last connection closes
            continue
        assert SECRET_KEY.encode() not in content, path


def test_state_goes_to_postgresql_when_the_store_is_postgresql(journey: Journey) -> None:
    """The same engine, in-process, with a PostgreSQL store: terraform's pg backend keeps the workspace's
    state in its own schema of the store's database; no state file in the workspace, no URL in main.tf.json."""
    from govcloud.engine import provision, terraform_path
    from govcloud.engine import tickets as engine_tickets
    from govcloud.engine.context import EngineContext, build
    from govcloud.settings import Settings
    from tests.support.postgres import create_database, postgres_server

    base = journey.base / "pg"
    base.mkdir()
    with postgres_server() as server:
        url = create_database(server, "govcloud_tf")
        env = {**journey.env, "GOVCLOUD_DB": url, "GOVCLOUD_STATE_DIR": str(base / "state"),
               "GOVCLOUD_PROFILE": str(ec2_profile(base, journey.moto, journey.ec2, first=50))}

        def ctx(user: str) -> EngineContext:
            return build(Settings.from_env(env).with_overrides(user=user))

        ticket_id, path = write_ticket(base, tenant=TENANT, system=SYSTEM, requester=REQUESTER, roles=(),
                                       vms=[{"name": "pg", "count": 1, "flavor": "gc.small", "cloud": "tp-ecloud"}])
        engine_tickets.submit(ctx(REQUESTER), [path])
        ((record, summary),) = terraform_path.plan_ticket(ctx("yunwei-he"), ticket_id)
        assert summary.add == 2 and [i["private_ip"] for i in record.instances] == ["10.253.0.50"]
        engine_tickets.approve(ctx("shenpi-chen"), ticket_id)
        (outcome,) = provision.apply(ctx("yunwei-he"), [ticket_id], configure=False)
        assert outcome.state == "active", outcome.detail
        name = f"{TENANT}-{SYSTEM}-{ticket_id}-1"
        assert journey.live()[name]["PrivateIpAddress"] == "10.253.0.50"
        workspace = base / "state" / "terraform" / f"{TENANT}--tp-ecloud"
        assert not (workspace / "terraform.tfstate").exists()
        assert "host=" not in (workspace / "main.tf.json").read_text() and '"pg"' in (workspace / "main.tf.json").read_text()
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            states = conn.execute(sa.text('SELECT name, data FROM "govcloud_gd_zsj__tp_ecloud".states')).all()
        assert [s.name for s in states] == ["default"] and name in states[0].data
        assert provision.retire(ctx("yunwei-he"), ticket_id).state == "retired"
        assert name not in journey.live()
        with engine.connect() as conn:
            data = conn.execute(sa.text('SELECT data FROM "govcloud_gd_zsj__tp_ecloud".states')).scalar_one()
        assert name not in data
        engine.dispose()
