"""The pure drift diff: missing, broken, stopped, orphans, duplicates, unmanaged; linear in size."""

from __future__ import annotations

from govcloud.planner.drift import DesiredVm, Observed, diff

STATES = {"t1": "active", "t-old": "retired", "t-new": "provisioning"}
PROJECTS = {"p-gat": "gd-gat"}


def vm(index: int, server_id: str | None = None, *, observe: bool = False) -> DesiredVm:
    return DesiredVm(ticket="t1", index=index, name=f"gd-gat-oa-t1-{index}", tenant="gd-gat", cloud="gd-prov", zone="gz-main",
                     server_id=server_id, observe_only=observe)


def server(sid: str, index: int | None, *, ticket: str | None = "t1", status: str = "ACTIVE", created: str = "1") -> Observed:
    return Observed(id=sid, name=f"gd-gat-oa-{ticket}-{index}", status=status, zone="gz-main", project_id="p-gat", created=created,
                    ticket=ticket if index is not None else None, index=index)


def run(desired: list[DesiredVm], servers: list[Observed]) -> list[tuple[str, str, str]]:
    found = diff(desired, servers, ticket_states=STATES, tenants_by_project=PROJECTS, cloud_of={"gz-main": "gd-prov"},
                 default_cloud="gd-prov")
    return [(d.kind, d.reason, d.key) for d in found]


def test_in_step_finds_nothing() -> None:
    assert run([vm(1, "a"), vm(2, "b")], [server("a", 1), server("b", 2)]) == []


def test_missing_and_broken_are_correctable_drift_stopped_is_only_reported() -> None:
    found = diff([vm(1, "a"), vm(2, "b"), vm(3, "c")], [server("b", 2, status="ERROR"), server("c", 3, status="SHUTOFF")],
                 ticket_states=STATES, tenants_by_project=PROJECTS, cloud_of={}, default_cloud="gd-prov")
    by_reason = {d.reason: d for d in found}
    assert sorted((d.reason, d.key, d.correctable) for d in found) == [("broken", "b", True), ("missing", "t1/1", True), ("stopped", "c", False)]
    assert "no server exists" in by_reason["missing"].describe() and "SHUTOFF" in by_reason["stopped"].describe()


def test_observe_only_drift_is_never_correctable() -> None:
    (found,) = diff([vm(1, "a", observe=True)], [], ticket_states=STATES, tenants_by_project=PROJECTS, cloud_of={}, default_cloud="x")
    assert found.reason == "missing" and not found.correctable and "observe-only" in found.describe()


def test_orphans_duplicates_and_unmanaged() -> None:
    servers = [server("a", 1, created="1"), server("a2", 1, created="2"), server("old", 1, ticket="t-old"),
               server("new", 1, ticket="t-new"), server("gone", 4, ticket="unknown-ticket"), server("legacy", None),
               Observed(id="other", name="x", status="ACTIVE", project_id="p-admin")]
    assert sorted(run([vm(1, "a")], servers)) == [("orphan", "duplicate", "a2"), ("orphan", "no-ticket", "gone"),
                                                  ("orphan", "no-ticket", "old"), ("unmanaged", "unmanaged", "legacy")]


def test_the_recorded_server_is_kept_over_an_older_duplicate() -> None:
    assert run([vm(1, "b")], [server("a", 1, created="1"), server("b", 1, created="2")]) == [("orphan", "duplicate", "a")]


def test_large_inputs() -> None:
    desired = [vm(i, f"s{i}") for i in range(20_000)]
    servers = [server(f"s{i}", i) for i in range(20_000) if i % 1000]
    assert len(run(desired, servers)) == 20


def test_a_reused_ticket_id_of_another_tenant_or_system_is_no_duplicate_but_reused() -> None:
    desired = [DesiredVm(ticket="t1", index=1, name="gd-gat-oa-t1-1", tenant="gd-gat", cloud="gd-prov", zone="gz-main", server_id="a",
                         system="oa")]
    servers = [Observed(id="a", name="gd-gat-oa-t1-1", status="ACTIVE", project_id="p-gat", ticket="t1", index=1, tenant="gd-gat", system="oa"),
               Observed(id="b", name="gd-mzt-mzoa-t1-1", status="ACTIVE", ticket="t1", index=1, tenant="gd-mzt", system="mzoa"),
               Observed(id="c", name="gd-gat-hukou-t1-1", status="ACTIVE", project_id="p-gat", ticket="t1", index=1, tenant="gd-gat",
                        system="hukou")]
    found = diff(desired, servers, ticket_states=STATES, tenants_by_project=PROJECTS, cloud_of={}, default_cloud="gd-prov")
    assert [(d.kind, d.reason, d.key) for d in found] == [("orphan", "reused", "c"), ("orphan", "reused", "b")]  # by name
    assert "another request under the same ticket id (its metadata names gd-mzt/mzoa, the ticket gd-gat/oa)" in found[1].describe()
