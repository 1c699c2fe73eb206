"""The usage history (issue 15, item 1): the ledger writes a change point at the moment allocation
changes (provisioned, retired), a full sample records quotas and catches what bypassed the ledger and
writes nothing when the history is already exact, and the daemon samples on its own timer."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest

from govcloud.engine import history, provision, tickets
from govcloud.engine.context import EngineContext
from govcloud.errors import PermissionDenied
from govcloud.model.history import GroupKey
from govcloud.model.resources import Resources
from govcloud.store import usage_history
from govcloud.store.tables import ledger
from tests.support.fakecloud import FakeCloud, three_centres
from tests.support.tickets import write_ticket
from tests.unit.daemon.test_daemon import context, daemon

T0 = datetime.datetime(2026, 11, 5, 8, 0, tzinfo=datetime.UTC)


@pytest.fixture
def cloud() -> FakeCloud:
    return three_centres()


@pytest.fixture
def clock() -> list[datetime.datetime]:
    return [T0]


def as_user(tmp_path: Path, cloud: FakeCloud, clock: list[datetime.datetime], user: str) -> EngineContext:
    ctx = context(tmp_path, cloud, user=user)
    ctx.clock = lambda: clock[0]
    return ctx


@pytest.fixture
def active(tmp_path: Path, cloud: FakeCloud, clock: list[datetime.datetime]) -> Iterator[str]:
    """A ticket of two gc.small VMs in gz-main, provisioned at T0."""
    ticket_id, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", roles=(), expires="2027-01-31",
                                   vms=[{"name": "web", "count": 2, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])
    (row,) = tickets.submit(as_user(tmp_path, cloud, clock, "caijing"), [path])
    if row.state == "submitted":
        tickets.approve(as_user(tmp_path, cloud, clock, "shenpi-chen"), ticket_id)
    provision.apply(as_user(tmp_path, cloud, clock, "yunwei-he"), [ticket_id])
    yield ticket_id


VM = GroupKey("gd-mzt", "mzoa", "gd-prov", "gz-main", "vm")


def test_provisioning_and_retirement_write_points_at_their_moments(tmp_path: Path, cloud: FakeCloud, clock: list[datetime.datetime],
                                                                   active: str) -> None:
    ctx = as_user(tmp_path, cloud, clock, "yunwei-he")
    clock[0] = T0 + datetime.timedelta(days=10)
    provision.retire(ctx, active)
    with ctx.store.transaction() as conn:
        found = [(p.at, p.amount) for p in usage_history.points(conn, before="2027-01-01") if p.key == VM]
    small = ctx.state.topology.flavor("gc.small")
    assert small is not None
    two = Resources(2, 2 * small.vcpus, 2 * small.ram_mb, 2 * small.disk_gb)
    retired = (T0 + datetime.timedelta(days=10)).isoformat(timespec="microseconds")
    assert found == [(T0.isoformat(timespec="microseconds"), two), (retired, Resources())]


def test_a_sample_records_quotas_catches_a_bypass_and_then_writes_nothing(tmp_path: Path, cloud: FakeCloud,
                                                                          clock: list[datetime.datetime], active: str) -> None:
    ctx = as_user(tmp_path, cloud, clock, "yunwei-he")
    clock[0] = T0 + datetime.timedelta(hours=1)
    first = history.sample(ctx)
    assert first.written == len(ctx.state.quotas.quotas)  # every quota, no allocation (the ledger wrote that itself)
    with ctx.store.transaction() as conn:  # something changes the ledger without telling the history
        conn.execute(ledger.update().where(ledger.c.ticket == active).values(vcpus=99))
    clock[0] = T0 + datetime.timedelta(hours=2)
    second = history.sample(ctx)
    clock[0] = T0 + datetime.timedelta(hours=3)
    third = history.sample(ctx)
    assert (second.written, third.written) == (1, 0)
    with ctx.store.transaction() as conn:
        latest = usage_history.latest(conn)
        runs = usage_history.samples(conn)
    assert latest[VM].vcpus == 99 and latest[GroupKey("gd-mzt", "", "gd-prov", "", "quota")] == ctx.state.quotas.quotas[("gd-mzt", "gd-prov")].limit
    assert [r.written for r in runs] == [first.written, 1, 0] and {r.actor for r in runs} == {"yunwei-he"}


def test_sampling_needs_an_operator(tmp_path: Path, cloud: FakeCloud, clock: list[datetime.datetime]) -> None:
    with pytest.raises(PermissionDenied, match="report-sample"):
        history.sample(as_user(tmp_path, cloud, clock, "caijing"))


def test_the_daemon_samples_on_its_timer(tmp_path: Path, cloud: FakeCloud) -> None:
    ctx = context(tmp_path, cloud)
    ctx.settings.inbox.mkdir(parents=True)
    runner = daemon(ctx, history_interval=86400.0)
    runner.run(once=True)
    with ctx.store.transaction() as conn:
        (run,) = usage_history.samples(conn)
    assert run.actor == "govcloud-daemon" and run.written == len(ctx.state.quotas.quotas)
    assert runner.history_timer.next_at > runner.monotonic() + 86000
