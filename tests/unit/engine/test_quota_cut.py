"""A quota cut approved while another approval is under way counts before that approval reserves.

The approval reads the quota overrides (approved quota-change tickets) under the quota lock, in its own
transaction — not when its command started. The interleaving that over-allocated is made here without
threads: the approver's command starts (its engine context is built, overrides read), the cut is
approved by another process, then the approver approves.
"""

from __future__ import annotations

import pytest

from govcloud.engine import tickets
from govcloud.errors import QuotaDenied
from govcloud.planner.usage import Usage
from govcloud.store import tickets as rows
from tests.support.tickets import write_ticket
from tests.unit.engine.conftest import Engine


def test_a_batch_approved_after_a_cut_landed_is_checked_against_the_cut(world: tuple[object, Engine], tmp_path: object) -> None:
    _, engine = world
    directory = tmp_path / "tickets"  # type: ignore[operator]
    directory.mkdir()
    batch, batch_path = write_ticket(directory, tenant="gd-scl", system="cjrfw", requester="wanghuimin",
                                     vms=[{"name": "app", "count": 10, "flavor": "gc.small", "cloud": "gd-prov"}])
    cut, cut_path = write_ticket(directory, tenant="gd-scl", system="cjrfw", requester="wanghuimin", kind="quota-change",
                                 vms=[], quota={"cloud": "gd-prov", "limits": {"instances": 2}})
    tickets.submit(engine("wanghuimin"), [batch_path, cut_path])
    started = engine("shenpi-chen")  # the batch's approver: its command starts while the limit is 10
    tickets.approve(engine("shenpi-lin"), cut)  # another approver's cut to 2 lands (nothing is in use yet)
    with pytest.raises(QuotaDenied) as denied:
        tickets.approve(started, batch)
    assert "tenant limit of tenant gd-scl in gd-prov: instances 0 + 10 = 10 > 2" in denied.value.explanation
    assert tickets.show(started, batch).state == "submitted"
    with started.store.transaction() as conn:
        used = Usage.from_lines(rows.ledger_lines(conn)).of_tenant("gd-scl", "gd-prov")
        (limit, _), = [v for k, v in rows.overrides(conn).items() if k == ("gd-scl", "gd-prov")]
    assert used.instances == 0 and limit.instances == 2
