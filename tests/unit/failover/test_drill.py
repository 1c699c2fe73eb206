"""DR drills on the in-memory cloud (issue 14, part 3): copies of a protection group's dr VMs booted from
their replicas on an isolated network, the group's hook run on the copies (the hook path is tested here:
the devcloud's VMs have no SSH), RTO measured, everything deleted; production untouched; one drill per
group, never blocking a real run of the centre; a killed drill cleaned up by its tag; evidence in the journal
and a private report."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from govcloud.engine.context import EngineContext
from govcloud.errors import PermissionDenied
from govcloud.failover.drill import PREFIX, Drill, DrillRefused, history, tag
from govcloud.failover.steps import HookCall, HookResult
from govcloud.store import replicas, runs
from govcloud.store.runs import RunInProgress
from govcloud.store.tables import recovery_runs
from tests.support.fakecloud import GZ, SG, FakeCloud
from tests.support.tickets import write_ticket
from tests.unit.failover.test_activate import replicate
from tests.unit.failover.test_recover import active_ticket


def police_ticket(ctx: EngineContext, tmp_path: Path, count: int = 2, protection: str = "dr") -> str:
    """A gd-gat/hukou ticket: group public-security of recovery/gd-prov.yaml (hook: role smoke)."""
    from govcloud.engine import provision, tickets

    ticket_id, path = write_ticket(tmp_path, tenant="gd-gat", system="hukou", requester="sunkai", roles=(), protection=protection,
                                   vms=[{"name": "app", "count": count, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
    (row,) = tickets.submit(ctx, [path])
    if row.state == "submitted":
        tickets.approve(ctx, ticket_id)
    provision.apply(ctx, [ticket_id])
    return ticket_id


class Hooks:
    def __init__(self, ok: bool = True) -> None:
        self.calls: list[HookCall] = []
        self.ok = ok

    def __call__(self, call: HookCall) -> HookResult:
        self.calls.append(call)
        return HookResult(self.ok, "smoke ok" if self.ok else "smoke: / is full")


def drill(ctx: EngineContext, tmp_path: Path, user: str = "yunwei-he", **options: Any) -> Drill:
    actor = ctx.state.users.get(user)
    assert actor is not None
    options.setdefault("hook", Hooks())
    options.setdefault("driver", ctx.driver)
    return Drill(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, now=ctx.now, actor=actor,
                 sleep=lambda _s: None, report_dir=tmp_path / "state" / "drills", **options)


def production(cloud: FakeCloud) -> dict[str, tuple[str, str, str | None, str | None]]:
    """Every server that is not a drill's: id → (name, status, host, zone)."""
    return {s.id: (s.name, s.status, s.host, s.zone) for _, s in cloud.servers.values() if not s.name.startswith(PREFIX)}


def leftovers(cloud: FakeCloud) -> list[Any]:
    return [t for e in (GZ, SG) for t in cloud.driver(e).tagged(PREFIX)]


def drill_runs(ctx: EngineContext) -> list[runs.RunRow]:
    with ctx.store.transaction() as conn:
        return runs.runs(conn, kinds=("drill",))


def test_a_drill_boots_copies_from_the_replicas_on_an_isolated_network_runs_the_hook_and_leaves_nothing(
        ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    ticket = police_ticket(ctx, tmp_path)
    replicate(ctx)
    before = production(cloud)
    made: list[tuple[str, str, str]] = []

    def driver(endpoint: Any) -> Any:  # the fake's driver, noting what each create asks for
        inner = cloud.driver(endpoint)
        create = inner.create_server

        def create_server(spec: Any) -> Any:
            made.append((endpoint.region, spec.image, spec.network))
            return create(spec)

        inner.create_server = create_server  # type: ignore[method-assign]
        return inner

    hooks = Hooks()
    done = drill(ctx, tmp_path, hook=hooks, driver=driver).run("public-security", target="sg-dr")

    assert done.ok and done.run.state == "succeeded"
    with ctx.store.transaction() as conn:
        sg_images = {r.dr_image for r in replicas.listing(conn) if r.state == "ready"}
    # two copies, both in the DR region, from the replicas' copies there, on a drill network (not the ticket's)
    assert len(made) == 2 and {m[0] for m in made} == {"gd-sg"} and {m[1] for m in made} <= sg_images
    assert all(m[2].startswith("net-") for m in made)
    # the hook ran on the copies (their ids and addresses in the drill subnet), not on production
    (call,) = hooks.calls
    assert call.step.name == "public-security" and call.step.hook is not None and call.step.hook.role == "smoke"
    assert {v.server_id for v in call.vms}.isdisjoint(before) and all(v.address and v.address.startswith("172.31.255.") for v in call.vms)
    assert {v.ticket for v in call.vms} == {ticket} and {v.centre for v in call.vms} == {"sg-dr"}
    # nothing left in either region, and no router ever joined the drill network
    assert leftovers(cloud) == [] and cloud.networks == {} and cloud.ports == {} and cloud.routers == {}
    assert production(cloud) == before
    # evidence: the journal row the readiness check reads
    (row,) = drill_runs(ctx)
    assert (row.kind, row.cloud, row.centre, row.state) == ("drill", "gd-prov", "sg-dr", "succeeded")
    assert row.finished_at is not None and row.detail["group"] == "public-security" and row.detail["actor"] == "yunwei-he"
    assert [v["ok"] for v in row.detail["vms"]] == [True, True] and row.detail["hook"]["ok"] is True
    assert row.detail["rto"]["total_s"] >= row.detail["rto"]["groups"]["public-security"] >= 0
    assert row.detail["cleanup"]["leftovers"] == []
    assert sorted(d["kind"] for d in row.detail["cleanup"]["deleted"]) == ["network", "port", "port", "server", "server", "subnet"]
    with ctx.store.transaction() as conn:
        moves = runs.moves_of(conn, [row.id])
        steps = runs.steps_of(conn, row.id)
        assert runs.active_run(conn, "gd-prov", "sg-dr", key=runs.drill_key("gd-prov", "public-security")) is None
    assert [m.state for m in moves] == ["moved", "moved"] and [(s.group_name, s.state) for s in steps] == [("public-security", "done")]
    actions = [r.action for r in ctx.store.audit.records()]
    assert "drill.start" in actions and "drill.end" in actions
    # the human report: private, with who and what passed
    assert done.report is not None and done.report.parent == tmp_path / "state" / "drills"
    assert stat.S_IMODE(done.report.stat().st_mode) == 0o600 and stat.S_IMODE(done.report.parent.stat().st_mode) == 0o700
    text = done.report.read_text(encoding="utf-8")
    assert "Result: SUCCEEDED" in text and "yunwei-he" in text and "passed" in text and "RTO" in text


def test_a_drill_in_the_secondary_centre_boots_from_the_snapshots_in_the_vms_own_region(ctx: EngineContext, cloud: FakeCloud,
                                                                                        tmp_path: Path) -> None:
    police_ticket(ctx, tmp_path, count=1)
    replicate(ctx)
    before = production(cloud)
    done = drill(ctx, tmp_path).run("public-security", target="gz-backup")
    assert done.ok and done.run.centre == "gz-backup"
    (vm,) = done.detail["vms"]
    with ctx.store.transaction() as conn:
        (replica,) = [r for r in replicas.listing(conn) if r.state == "ready"]
    assert vm["image"] == replica.source_image and done.detail["region"] == "gd-gz"
    assert leftovers(cloud) == [] and production(cloud) == before


def test_a_failed_hook_fails_the_drill_and_everything_is_still_deleted(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    police_ticket(ctx, tmp_path, count=1)
    replicate(ctx)
    done = drill(ctx, tmp_path, hook=Hooks(ok=False)).run("public-security")
    assert not done.ok and done.run.state == "failed" and done.detail["hook"] == {**done.detail["hook"], "ok": False}
    assert "/ is full" in done.detail["hook"]["detail"] and leftovers(cloud) == []
    assert "Result: FAILED" in (done.report.read_text(encoding="utf-8") if done.report else "")


def test_a_vm_without_a_replica_fails_the_drill(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    police_ticket(ctx, tmp_path, count=1)
    done = drill(ctx, tmp_path).run("public-security")
    assert done.run.state == "failed" and "no ready replica" in done.detail["vms"][0]["error"]
    assert leftovers(cloud) == []


def test_a_copy_nova_refuses_fails_the_drill_and_the_others_are_cleaned(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    from govcloud.errors import PermanentError

    police_ticket(ctx, tmp_path, count=2)
    replicate(ctx)
    cloud.faults["create_server"] = [PermanentError("HTTP 403: Quota exceeded for instances")]
    done = drill(ctx, tmp_path).run("public-security")
    assert done.run.state == "failed" and sorted(v["ok"] for v in done.detail["vms"]) == [False, True]
    assert leftovers(cloud) == []


def test_refused_for_an_unknown_group_cloud_or_centre_or_a_group_without_dr_vms(ctx: EngineContext, tmp_path: Path) -> None:
    with pytest.raises(DrillRefused, match=r"no protection group 'nope' in the recovery plan of gd-prov.*public-security") as refused:
        drill(ctx, tmp_path).run("nope")
    assert refused.value.exit_code == 2
    with pytest.raises(DrillRefused, match="no OpenStack cloud 'gd-nowhere'"):
        drill(ctx, tmp_path).run("public-security", cloud_id="gd-nowhere")
    with pytest.raises(DrillRefused, match="no centre 'mars'"):
        drill(ctx, tmp_path).run("public-security", target="mars")
    police_ticket(ctx, tmp_path, count=1, protection="ha")
    with pytest.raises(DrillRefused, match="group public-security of gd-prov has no dr VM"):
        drill(ctx, tmp_path).run("public-security")
    assert drill_runs(ctx) == []


@pytest.mark.parametrize("user", ["sunkai", "shenpi-chen"])
def test_only_operators_and_admins_run_or_clean_up_drills(ctx: EngineContext, tmp_path: Path, user: str) -> None:
    with pytest.raises(PermissionDenied, match="'drill' needs role operator or admin"):
        drill(ctx, tmp_path, user).run("public-security")
    with pytest.raises(PermissionDenied, match="'drill' needs role operator or admin"):
        drill(ctx, tmp_path, user).cleanup()


def test_one_drill_per_group_and_a_drill_never_blocks_a_real_run_of_the_centre(ctx: EngineContext, cloud: FakeCloud,
                                                                              tmp_path: Path) -> None:
    police_ticket(ctx, tmp_path, count=1)
    replicate(ctx)
    with ctx.store.transaction() as conn:  # a drill of the group, carried by a live process (this one, another owner)
        busy = runs.create_run(conn, kind="drill", cloud="gd-prov", centre="sg-dr", user="yunwei-xu", owner=drill(ctx, tmp_path).journal.owner,
                               now=ctx.now(), plan={"group": "public-security"}, detail={"group": "public-security"},
                               key=runs.drill_key("gd-prov", "public-security"))
        # ... does not stop a DR activation or a failover of sg-dr: they hold the centre's key
        activation = runs.create_run(conn, kind="dr-activation", cloud="gd-prov", centre="sg-dr", user="yunwei-he", owner="x", now=ctx.now(),
                                     plan={}, state="new")
    with pytest.raises(RunInProgress, match=f"run {busy.id} \\(drill\\) of drill:gd-prov/public-security .*one drill per protection group"):
        drill(ctx, tmp_path).run("public-security")
    with ctx.store.transaction() as conn:
        runs.end_run(conn, busy.id, state="failed", now=ctx.now(), detail={"group": "public-security"})
    done = drill(ctx, tmp_path).run("public-security")  # and a DR activation waiting for approval does not stop a drill
    assert done.ok
    with ctx.store.transaction() as conn:
        assert runs.active_run(conn, "gd-prov", "sg-dr") == runs.get_run(conn, activation.id)


def plant_killed_drill(ctx: EngineContext, cloud: FakeCloud) -> runs.RunRow:
    """What a drill killed with kill -9 right after its first server POST leaves: a running row whose process is
    gone, its network and a server (with its port) in gd-sg that no row names."""
    with ctx.store.transaction() as conn:
        run = runs.create_run(conn, kind="drill", cloud="gd-prov", centre="sg-dr", user="yunwei-he", owner="nowhere-host:1:dead",
                              now="2020-01-01T00:00:00+00:00", plan={"group": "public-security"}, detail={"group": "public-security"},
                              key=runs.drill_key("gd-prov", "public-security"))
    sg = cloud.driver(SG)
    network = sg.create_isolated_network("gd-gat", name=f"{tag(run.id)}-gd-gat", cidr="172.31.255.0/24", description="drill")
    from govcloud.drivers.base import ServerSpec
    from govcloud.model.resources import Resources

    sg.create_server(ServerSpec(name=f"{tag(run.id)}-app-1", tenant="gd-gat", zone="sg-dr", flavor="gc.small", size=Resources(1, 1, 1024, 10),
                                image="i-1", network=network.id, metadata={"govcloud:drill": str(run.id)}))
    return run


def test_a_killed_drill_is_cleaned_up_by_its_tag_and_its_run_ended(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    police_ticket(ctx, tmp_path, count=1)
    before = production(cloud)
    killed = plant_killed_drill(ctx, cloud)
    assert {t.kind for t in leftovers(cloud)} == {"server", "port", "subnet", "network"}
    found = drill(ctx, tmp_path).cleanup()
    assert found.leftovers == [] and leftovers(cloud) == [] and found.ended_runs == [killed.id]
    assert sorted(d["kind"] for d in found.deleted) == ["network", "port", "server", "subnet"]
    (row,) = drill_runs(ctx)
    assert row.state == "failed" and row.finished_at and "died before it ended" in row.detail["error"] and row.detail["group"] == "public-security"
    assert production(cloud) == before
    assert drill(ctx, tmp_path).cleanup().deleted == []  # nothing more to do


def test_the_next_drill_cleans_up_a_killed_one_first(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    police_ticket(ctx, tmp_path, count=1)
    replicate(ctx)
    killed = plant_killed_drill(ctx, cloud)
    done = drill(ctx, tmp_path).run("public-security")  # the killed one held the group's key: ended, its leftovers deleted
    assert done.ok and leftovers(cloud) == []
    assert {r.id: r.state for r in drill_runs(ctx)} == {killed.id: "failed", done.run.id: "succeeded"}
    assert [d["kind"] for d in done.detail["stale_cleanup"]["deleted"]].count("server") == 1


def test_a_running_drill_of_a_live_process_is_not_cleaned(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    police_ticket(ctx, tmp_path, count=1)
    killed = plant_killed_drill(ctx, cloud)
    with ctx.store.transaction() as conn:  # as if its process were alive: owned by this process, heartbeat now
        conn.execute(recovery_runs.update().values(
            owner=drill(ctx, tmp_path).journal.owner, heartbeat_at=ctx.now()))
    live = drill(ctx, tmp_path, owner="someone:else:1")
    live.journal.owner = "somewhere-else:2:live"
    assert live.journal.stale(drill_runs(ctx)[0]) is False
    assert live.cleanup().deleted == [] and len(leftovers(cloud)) == 4 and drill_runs(ctx)[0].id == killed.id


def test_history_is_filtered_by_the_users_tenants(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    police_ticket(ctx, tmp_path, count=1)
    replicate(ctx)
    done = drill(ctx, tmp_path).run("public-security")
    def users(user_id: str) -> Any:
        return ctx.state.users.get(user_id)

    (row,) = history(ctx.store, users("shenpi-chen"))
    assert (row["run"], row["group"], row["state"], row["vms"], row["passed"], row["leftovers"]) == (done.run.id, "public-security",
                                                                                                     "succeeded", 1, 1, 0)
    assert [r["run"] for r in history(ctx.store, users("sunkai"))] == [done.run.id]  # gd-gat: its VMs were drilled
    assert history(ctx.store, users("caijing")) == []  # gd-mzt: not its business
    assert history(ctx.store, users("shenpi-chen"), group="welfare") == []


def test_active_ticket_of_another_group_is_not_drilled(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "dr", count=1)  # gd-mzt/mzoa: in no group
    police_ticket(ctx, tmp_path, count=1)
    replicate(ctx)
    done = drill(ctx, tmp_path).run("public-security")
    assert [v["system"] for v in done.detail["vms"]] == ["gd-gat/hukou"]


def test_a_clean_up_whose_listing_fails_is_recorded_and_the_next_clean_up_finishes_it(ctx: EngineContext, cloud: FakeCloud,
                                                                                   tmp_path: Path) -> None:
    from govcloud.errors import PermanentError

    police_ticket(ctx, tmp_path, count=1)
    replicate(ctx)
    failed: list[bool] = []
    real = cloud.driver(SG).__class__.tagged

    def flaky(self: Any, prefix: str) -> Any:  # the first listing once the copies exist (the drill's own clean-up) fails
        if self.endpoint == SG and not failed and any(s.name.startswith(PREFIX) for _, s in cloud.servers.values()):
            failed.append(True)
            raise PermanentError("list servers: HTTP 500")
        return real(self, prefix)

    original = cloud.driver(SG).__class__
    original.tagged = flaky  # type: ignore[method-assign]
    try:
        done = drill(ctx, tmp_path).run("public-security")
    finally:
        original.tagged = real  # type: ignore[method-assign]
    assert not done.ok and done.run.state == "succeeded" and "HTTP 500" in done.detail["cleanup"]["errors"][0]
    assert leftovers(cloud) != []
    assert drill(ctx, tmp_path).cleanup().leftovers == [] and leftovers(cloud) == []
