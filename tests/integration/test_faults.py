"""The fault suite against the devcloud (issue 11): API faults and kill -9, and what they must never cause.

1. An apply of ``GOVCLOUD_FAULT_VMS`` VMs (30 in CI: 100 take 4.5 to 5.5 min on the 2-core devcloud, more than
   the suite's budget; bench/faults.py and ``GOVCLOUD_FAULT_VMS=100`` run the full figure) with 20 % of keystone,
   nova and neutron calls answered by a fault (500/502/503, a reset before or after forwarding, a held
   connection past the client's timeout; tests/support/faultproxy.py) converges in one run: every server
   ACTIVE, 0 duplicates, 0 orphans, the ledger committed.
2. ``apply`` killed with SIGKILL at 3 random points of a 20-VM apply, then run to the end: 0 duplicates,
   0 orphans, the ticket not lost (active), the ledger consistent, the audit chain intact.
   bench/faults.py runs the full figure: 20 kill points of a 100-VM apply.
3. Two daemons on one PostgreSQL store, a 20-VM ticket approved, the leader's process group SIGKILLed at
   3 random points of its apply and started again each time (so a standby always exists): the ticket
   ends active with 0 duplicates and 0 orphans, the ledger consistent, the audit chain intact.
   ``bench/faults.py --only leader`` runs the full figure: 20 kills of a 100-VM apply.

Everything created is retired through govcloud at the end and checked gone in nova. ``GOVCLOUD_FAULT_SEED``
replays a run (the seed is in the assertion messages).
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govcloud.engine import provision, tickets
from tests.integration.conftest import Devcloud
from tests.support.faultproxy import KINDS, FaultPlan, FaultProxy, devcloud_upstreams, write_clouds_yaml
from tests.support.faultsuite import (
    OPERATOR,
    TENANT,
    DaemonPair,
    Place,
    approved_ticket,
    census,
    kill_apply,
    kill_leaders,
    kill_points,
    leader_kill_points,
    ledger_consistent,
    nova,
    retire_all,
    wait_state,
)
from tests.support.postgres import create_database
from tests.support.projects import projects_removed
from tests.support.tickets import open_store

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("GOVCLOUD_FAULT_SEED", "11"))
VMS = int(os.environ.get("GOVCLOUD_FAULT_VMS", "30"))
SHARE = 0.2
API_TIMEOUT, HOLD = 8.0, 12.0
"""The client gives up on a call after API_TIMEOUT s; a ``timeout`` fault holds the connection for HOLD s."""


@pytest.fixture(scope="module", autouse=True)
def own_projects(devcloud: Devcloud) -> Iterator[None]:
    """The fault suite's tenant (gd-zf) is onboarded here for the suite alone: its project goes at the end."""
    with projects_removed(TENANT):
        yield


@pytest.fixture
def place(devcloud: Devcloud, tmp_path: Path) -> Place:
    return Place(state_dir=tmp_path / "state", db=f"sqlite:///{tmp_path / 'state.db'}", clouds_yaml=devcloud.clouds_yaml)


def test_an_apply_at_20_percent_api_faults_converges_without_duplicates(place: Place, tmp_path: Path) -> None:
    ticket_id = approved_ticket(place, tmp_path, VMS)
    events: collections.Counter[str] = collections.Counter()

    def progress(event: str, data: dict[str, Any]) -> None:
        events[event if event != "vm" else f"vm:{data.get('status')}"] += 1

    conn = nova(place.clouds_yaml)
    plan = FaultPlan({"keystone": SHARE, "nova": SHARE, "neutron": SHARE}, seed=SEED, hold=HOLD)
    try:
        with FaultProxy(devcloud_upstreams(), plan) as proxy:
            faulty = write_clouds_yaml(place.clouds_yaml, tmp_path / "faulty-clouds.yaml", proxy, api_timeout=API_TIMEOUT)
            operator = place.engine(OPERATOR, clouds_yaml=faulty, progress=progress)
            started = time.monotonic()
            (outcome,) = provision.apply(operator, [ticket_id], configure=False)
            wall = time.monotonic() - started
            summary = proxy.summary()
        seen = f"seed {SEED}: {VMS} VMs applied in {wall:.0f} s; faults {summary}, engine events {dict(events)}"
        print(seen)  # the figures, shown with -rA
        assert outcome.state == "active", f"{outcome.detail} ({seen})"
        assert {kind for service in ("nova", "neutron", "keystone") for kind in summary.get(service, {})} >= {"ok", *KINDS}, seen
        assert events["retry"] > 0, seen
        found = census(conn, operator, [ticket_id])
        assert (found.servers, found.duplicates, found.orphans, found.missing, found.not_active) == (VMS, 0, 0, 0, 0), \
            f"{found.detail} ({seen})"
        assert ledger_consistent(operator, ticket_id, VMS) == []
    finally:
        assert retire_all(place, [ticket_id], conn) == []


def test_kill_9_at_3_random_points_of_an_apply_then_apply_again(place: Place, tmp_path: Path) -> None:
    count = 20
    ticket_id = approved_ticket(place, tmp_path, count)
    conn = nova(place.clouds_yaml)
    try:
        runs = [kill_apply(place, ticket_id, after, conn) for after in kill_points(SEED, 3, span=20.0)]
        assert any(run.killed for run in runs), f"seed {SEED}: every apply finished before its kill: {runs}"
        final = place.cli("apply", "--skip-configure", ticket_id)
        assert final.returncode == 0, final.stderr[-3000:]
        operator = place.engine(OPERATOR)
        assert tickets.show(operator, ticket_id).state == "active", f"seed {SEED}: {runs}"
        found = census(conn, operator, [ticket_id])
        assert (found.servers, found.duplicates, found.orphans, found.missing, found.not_active) == (count, 0, 0, 0, 0), \
            f"seed {SEED}: {runs}: {found.detail}"
        assert ledger_consistent(operator, ticket_id, count) == []
        verified = place.cli("audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        assert retire_all(place, [ticket_id], conn) == []


def test_the_leader_daemon_killed_at_3_random_points_of_an_apply_a_standby_finishes(devcloud: Devcloud, postgres_url: str,
                                                                                   tmp_path: Path) -> None:
    count = 20
    db = create_database(postgres_url, "faults_leader")  # test_leader.py has "leaderkill" on the same session server
    open_store(db).close()  # migrate once, before two processes race to
    place = Place(state_dir=tmp_path / "state", db=db, clouds_yaml=devcloud.clouds_yaml)
    conn = nova(place.clouds_yaml)
    operator = place.engine(OPERATOR)
    pair = DaemonPair(db, tmp_path)
    ticket_id = ""
    try:
        pair.wait_ready()
        ticket_id = approved_ticket(place, tmp_path, count, roles=())
        kills = kill_leaders(pair, operator, ticket_id, leader_kill_points(SEED, 3, count), conn)
        seen = f"seed {SEED}: kills {kills}"
        assert len(kills) == 3, seen
        assert wait_state(operator, ticket_id, "active", timeout=300) == "active", seen
        found = census(conn, operator, [ticket_id])
        assert (found.servers, found.duplicates, found.orphans, found.missing, found.not_active) == (count, 0, 0, 0, 0), \
            f"{seen}: {found.detail}"
        assert ledger_consistent(operator, ticket_id, count) == [], seen
        verified = place.cli("audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        print(f"{seen}; takeovers {[k.takeover_s for k in kills]} s")  # the figures, shown with -rA
    finally:
        pair.close()
        if ticket_id:
            assert retire_all(place, [ticket_id], conn) == []
