"""The exporter's numbers, read back through an injected registry from a store filled by store functions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from govcloud import __version__
from govcloud.exporter import GovcloudCollector, exposition
from govcloud.exporter.catalogue import SPECS
from govcloud.exporter.families import Gauge
from govcloud.exporter.metrics import ScrapeCache
from govcloud.model.parsed import DesiredState
from govcloud.store import Store, facts
from govcloud.store import tickets as rows
from tests.support.exporter import NOW, iso, populate, registry_for, sample_state

MiB, GiB = 2**20, 2**30


@pytest.fixture(scope="module")
def state() -> DesiredState:
    return sample_state()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    populate(store)
    return store


@pytest.fixture
def registry(store: Store, state: DesiredState) -> CollectorRegistry:
    return registry_for(store, state)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_quota_limits_come_from_the_desired_state_with_overrides(registry: CollectorRegistry, state: DesiredState) -> None:
    quota = state.quotas.quotas[("gd-gat", "gd-prov")]
    assert value(registry, "govcloud_quota_limit", tenant="gd-gat", cloud="gd-prov", resource="vcpus") == quota.limit.vcpus
    assert value(registry, "govcloud_quota_limit", tenant="gd-gat", cloud="gd-prov", resource="memory_bytes") == quota.limit.ram_mb * MiB
    assert value(registry, "govcloud_quota_limit", tenant="gd-gat", cloud="gd-prov", resource="disk_bytes") == quota.limit.disk_gb * GiB
    assert value(registry, "govcloud_quota_warn_ratio", tenant="gd-gat", cloud="gd-prov") == quota.warn_at
    # the approved quota change wins over quotas/*.yaml, as in `quota show`
    assert value(registry, "govcloud_quota_limit", tenant="gd-mzt", cloud="gd-prov", resource="instances") == 50
    assert value(registry, "govcloud_quota_limit", tenant="gd-mzt", cloud="gd-prov", resource="memory_bytes") == 409600 * MiB
    every = [s for m in registry.collect() if m.name == "govcloud_quota_limit" for s in m.samples]
    assert len(every) == 4 * len(state.quotas.quotas)


def test_reserved_and_used_come_from_the_ledger_without_dr_lines(registry: CollectorRegistry) -> None:
    gat = {"tenant": "gd-gat", "cloud": "gd-prov"}
    assert value(registry, "govcloud_quota_used", **gat, resource="instances") == 2          # t-a committed (its dr line not counted)
    assert value(registry, "govcloud_quota_reserved", **gat, resource="instances") == 3      # t-c reserved
    assert value(registry, "govcloud_quota_reserved", **gat, resource="memory_bytes") == 12288 * MiB
    assert value(registry, "govcloud_quota_used", tenant="gd-zf", cloud="gd-prov", resource="vcpus") == 2
    assert value(registry, "govcloud_quota_reserved", tenant="gd-zf", cloud="gd-prov", resource="vcpus") is None  # nothing reserved
    assert value(registry, "govcloud_quota_used", tenant="gd-mzt", cloud="gd-prov", resource="vcpus") is None  # holds nothing


def test_centre_capacity_is_capacity_times_overcommit_and_dr_room_is_apart(registry: CollectorRegistry, state: DesiredState) -> None:
    cloud = state.topology.cloud("gd-prov")
    assert cloud is not None
    main = cloud.centre("gz-main")
    assert main is not None
    centre = {"cloud": "gd-prov", "centre": "gz-main"}
    assert value(registry, "govcloud_centre_capacity", **centre, resource="vcpus") == int(main.capacity.vcpus * main.overcommit.cpu)
    assert value(registry, "govcloud_centre_capacity", **centre, resource="memory_bytes") == int(main.capacity.ram_mb * main.overcommit.ram) * MiB
    assert value(registry, "govcloud_centre_overcommit_ratio", **centre, resource="vcpus") == main.overcommit.cpu
    assert value(registry, "govcloud_centre_capacity", **centre, resource="instances") is None
    assert value(registry, "govcloud_centre_allocated", **centre, resource="vcpus", kind="vm", state="committed") == 4
    assert value(registry, "govcloud_centre_allocated", cloud="gd-prov", centre="sg-dr", resource="vcpus", kind="dr", state="committed") == 4
    assert value(registry, "govcloud_centre_allocated", cloud="gd-prov", centre="gz-backup", resource="instances", kind="vm",
                 state="reserved") == 3


def test_vms_by_cloud_centre_tenant_status(registry: CollectorRegistry) -> None:
    assert value(registry, "govcloud_vms", cloud="gd-prov", centre="gz-main", tenant="gd-gat", status="ACTIVE") == 2
    assert value(registry, "govcloud_vms", cloud="gd-prov", centre="gz-backup", tenant="gd-zf", status="SHUTOFF") == 1


def test_tickets_by_state_and_the_oldest_change(registry: CollectorRegistry) -> None:
    assert value(registry, "govcloud_tickets", state="active", kind="create") == 2
    assert value(registry, "govcloud_tickets", state="retired", kind="create") == 1
    assert value(registry, "govcloud_tickets_oldest_change_timestamp_seconds", state="approved") == NOW.timestamp() - 90000
    assert value(registry, "govcloud_tickets_oldest_change_timestamp_seconds", state="submitted") == NOW.timestamp() - 10800
    assert value(registry, "govcloud_tickets_oldest_change_timestamp_seconds", state="active") is None  # active is where tickets live


def test_latency_histograms_are_cumulative_and_bucketed_in_sql(registry: CollectorRegistry) -> None:
    h = "govcloud_ticket_submit_to_approve_seconds"
    # approvals: t-a 600 s, t-b 30 s, t-c 10000 s, t-e 1000 s
    assert value(registry, f"{h}_count", kind="create") == 4
    assert value(registry, f"{h}_sum", kind="create") == pytest.approx(11630, abs=0.1)
    assert value(registry, f"{h}_bucket", kind="create", le="60.0") == 1
    assert value(registry, f"{h}_bucket", kind="create", le="900.0") == 2
    assert value(registry, f"{h}_bucket", kind="create", le="1800.0") == 3
    assert value(registry, f"{h}_bucket", kind="create", le="14400.0") == 4
    assert value(registry, f"{h}_bucket", kind="create", le="+Inf") == 4
    p = "govcloud_ticket_provisioning_seconds"
    assert value(registry, f"{p}_count", kind="create") == 2                      # t-a 1200 s, t-b 60 s
    assert value(registry, f"{p}_bucket", kind="create", le="60.0") == 1
    assert value(registry, f"{p}_sum", kind="create") == pytest.approx(1260, abs=0.1)
    c = "govcloud_ticket_configuration_seconds"
    assert value(registry, f"{c}_count", kind="create") == 1                      # only t-a ran Ansible
    assert value(registry, f"{c}_sum", kind="create") == pytest.approx(500, abs=0.1)
    assert value(registry, "govcloud_ticket_approve_to_active_seconds_count", kind="create") == 3
    assert value(registry, "govcloud_ticket_submit_to_active_seconds_count", kind="create") == 3


def test_leases_expiring_and_expired_by_tenant(registry: CollectorRegistry) -> None:
    assert value(registry, "govcloud_tickets_lease_expiring", tenant="gd-zf") == 1    # t-b ends in 5 days
    assert value(registry, "govcloud_tickets_lease_expired", tenant="gd-gat") == 1    # t-c ended; t-e is retired
    assert value(registry, "govcloud_tickets_lease_expiring", tenant="gd-gat") is None  # t-a ends next June
    assert value(registry, "govcloud_lease_warning_window_seconds") == 14 * 86400


def test_reconcile_per_cloud_keeps_the_last_success_of_a_failing_cloud(registry: CollectorRegistry) -> None:
    assert value(registry, "govcloud_reconcile_last_duration_seconds", cloud="gd-prov") == 10.5
    assert value(registry, "govcloud_reconcile_drift", cloud="gd-prov") == 1
    assert value(registry, "govcloud_reconcile_orphans", cloud="gd-prov") == 1
    assert value(registry, "govcloud_reconcile_corrected", cloud="gd-prov") == 1
    assert value(registry, "govcloud_reconcile_servers", cloud="gd-prov") == 3
    assert value(registry, "govcloud_reconcile_error", cloud="gd-prov") == 0
    assert value(registry, "govcloud_reconcile_error", cloud="city-foshan") == 1
    assert value(registry, "govcloud_reconcile_last_success_timestamp_seconds", cloud="city-foshan") == NOW.timestamp() - 3990
    assert value(registry, "govcloud_reconcile_last_start_timestamp_seconds", cloud="city-foshan") == NOW.timestamp() - 30
    assert value(registry, "govcloud_reconcile_findings", cloud="gd-prov", kind="drift") == 1
    assert value(registry, "govcloud_reconcile_findings", cloud="gd-prov", kind="unmanaged") == 0
    assert value(registry, "govcloud_reconcile_findings", cloud="city-foshan", kind="orphan") == 0


def test_centre_health_as_flags_with_timestamps(registry: CollectorRegistry) -> None:
    main, dr = {"cloud": "gd-prov", "centre": "gz-main"}, {"cloud": "gd-prov", "centre": "sg-dr"}
    assert value(registry, "govcloud_centre_health", **main, state="healthy") == 1
    assert value(registry, "govcloud_centre_health", **main, state="down") == 0
    assert value(registry, "govcloud_centre_health", **dr, state="down") == 1
    assert value(registry, "govcloud_centre_up", **main) == 1
    assert value(registry, "govcloud_centre_up", **dr) == 0
    assert value(registry, "govcloud_centre_compute_services_up", **dr) == 0
    assert value(registry, "govcloud_centre_compute_services", **dr) == 2
    assert value(registry, "govcloud_centre_api_up", **dr) == 0
    assert value(registry, "govcloud_centre_state_since_timestamp_seconds", **dr) == NOW.timestamp() - 120
    assert value(registry, "govcloud_centre_checked_timestamp_seconds", **main) == NOW.timestamp() - 5


def test_leaders_count_only_daemons_with_a_fresh_heartbeat(registry: CollectorRegistry) -> None:
    assert value(registry, "govcloud_daemon_leader", daemon="gz1:100:a", hostname="gz1") == 1
    assert value(registry, "govcloud_daemon_leader", daemon="gz3:300:c", hostname="gz3") == 1   # as recorded, though stale
    assert value(registry, "govcloud_daemon_leader", daemon="gz4:400:d", hostname="gz4") is None  # stopped
    assert value(registry, "govcloud_daemon_heartbeat_timestamp_seconds", daemon="gz2:200:b", hostname="gz2") == NOW.timestamp() - 5
    assert value(registry, "govcloud_daemons_live") == 2
    assert value(registry, "govcloud_leaders") == 1
    assert value(registry, "govcloud_daemon_is_leader") == 1


def test_is_leader_is_the_callers_own_lease_and_optional(store: Store, state: DesiredState) -> None:
    assert value(registry_for(store, state, leader=False), "govcloud_daemon_is_leader") == 0
    assert value(registry_for(store, state, leader=None), "govcloud_daemon_is_leader") is None


def test_build_info_scrape_duration_and_store_up(registry: CollectorRegistry) -> None:
    assert value(registry, "govcloud_build_info", version=__version__) == 1
    assert value(registry, "govcloud_exporter_store_up") == 1
    duration = value(registry, "govcloud_exporter_scrape_duration_seconds")
    assert duration is not None and 0 < duration < 5


def test_an_unreadable_store_gives_store_up_0_not_a_failed_scrape(store: Store, state: DesiredState) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE vms"))
    registry = registry_for(store, state)
    assert value(registry, "govcloud_exporter_store_up") == 0
    assert value(registry, "govcloud_build_info", version=__version__) == 1
    assert value(registry, "govcloud_quota_limit", tenant="gd-gat", cloud="gd-prov", resource="vcpus") is None


def test_an_empty_store_scrapes(tmp_path: Path, state: DesiredState) -> None:
    registry = registry_for(Store.open(f"sqlite:///{tmp_path / 'empty.db'}"), state)
    assert value(registry, "govcloud_leaders") == 0
    assert value(registry, "govcloud_exporter_store_up") == 1


def test_fast_exposition_is_byte_for_byte_generate_latest(registry: CollectorRegistry) -> None:
    assert steady(exposition(registry)) == steady(generate_latest(registry))


def test_label_values_are_escaped_like_generate_latest(store: Store, state: DesiredState) -> None:
    from govcloud.store import tickets as rows
    from tests.support.exporter import vm

    with store.transaction() as conn:
        rows.upsert_vm(conn, vm("t-z", 1, tenant='we"ird\\ten\nant'))
    registry = registry_for(store, state)
    text = exposition(registry)
    assert b'tenant="we\\"ird\\\\ten\\nant"' in text
    assert re.sub(rb"duration_seconds \S+", b"", text) == re.sub(rb"duration_seconds \S+", b"", generate_latest(registry))


def test_every_family_is_in_the_catalogue_and_described(registry: CollectorRegistry, store: Store, state: DesiredState) -> None:
    names = {m.name for m in registry.collect()}
    assert names == set(SPECS)
    collector: Collector = GovcloudCollector(store, lambda: state)
    assert {m.name for m in collector.describe()} == set(SPECS)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="Duplicated"):
        registry.register(collector)


def test_the_global_registry_is_never_touched(store: Store, state: DesiredState) -> None:
    from prometheus_client import REGISTRY

    before = set(REGISTRY._names_to_collectors)
    registry_for(store, state)
    GovcloudCollector(store, lambda: state)
    assert set(REGISTRY._names_to_collectors) == before


def steady(text: bytes) -> bytes:
    """A scrape without its own duration (which differs between two scrapes)."""
    return re.sub(rb"(govcloud_exporter_scrape_duration_seconds) \S+", rb"\1 X", text)


def test_a_change_between_scrapes_is_seen_and_the_unchanged_chunks_are_reused(store: Store, state: DesiredState) -> None:
    from govcloud.store import tickets as rows
    from tests.support.exporter import vm

    registry = registry_for(store, state)
    collector = next(iter(registry._collector_to_names))
    assert isinstance(collector, GovcloudCollector)
    collector.cache = ScrapeCache(block=1)  # a block per row, to see which ones are rebuilt
    exposition(registry)
    first = {f.spec.name: f for f in collector.families() if isinstance(f, Gauge)}
    assert {f.spec.name: f for f in collector.families() if isinstance(f, Gauge)}["govcloud_vms"] is first["govcloud_vms"]
    with store.transaction() as conn:
        rows.upsert_vm(conn, vm("t-b", 1, tenant="gd-zf", centre="gz-backup", status="ACTIVE"))  # was SHUTOFF
        rows.upsert_vm(conn, vm("t-x", 1, tenant="gd-mzt", centre="gz-backup"))                   # a new tenant's VM
        conn.execute(sa.text("UPDATE ledger SET vcpus = vcpus + 2 WHERE ticket = 't-b'"))
    text = exposition(registry)
    assert steady(text) == steady(generate_latest(registry))
    assert value(registry, "govcloud_vms", cloud="gd-prov", centre="gz-backup", tenant="gd-zf", status="ACTIVE") == 1
    assert value(registry, "govcloud_vms", cloud="gd-prov", centre="gz-backup", tenant="gd-zf", status="SHUTOFF") is None
    assert value(registry, "govcloud_vms", cloud="gd-prov", centre="gz-backup", tenant="gd-mzt", status="ACTIVE") == 1
    assert value(registry, "govcloud_quota_used", tenant="gd-zf", cloud="gd-prov", resource="vcpus") == 4
    now = {f.spec.name: f for f in collector.families() if isinstance(f, Gauge)}
    assert now["govcloud_vms"] is not first["govcloud_vms"]
    kept = [c for c in now["govcloud_vms"].chunks if c in first["govcloud_vms"].chunks]
    assert [c.rows for c in kept] == [((("gd-prov", "gz-main", "gd-gat", "ACTIVE"), 2.0),)]  # the unchanged count, text and all
    assert kept[0].text is not None
    gat = [c for c in now["govcloud_quota_used"].chunks if c.rows[0][0][0] == "gd-gat"]
    assert gat and all(c in first["govcloud_quota_used"].chunks for c in gat)
    assert next(c for c in now["govcloud_quota_used"].chunks if c.rows[0][0][0] == "gd-zf") not in first["govcloud_quota_used"].chunks
    assert now["govcloud_quota_limit"] is first["govcloud_quota_limit"]         # the desired state did not change


def test_a_reloaded_desired_state_rebuilds_the_limits(store: Store, state: DesiredState) -> None:
    import dataclasses

    current = [state]
    registry = CollectorRegistry()
    GovcloudCollector(store, lambda: current[0], registry=registry)
    before = value(registry, "govcloud_quota_limit", tenant="gd-gat", cloud="gd-prov", resource="vcpus")
    quota = state.quotas.quotas[("gd-gat", "gd-prov")]
    bigger = dataclasses.replace(quota, limit=dataclasses.replace(quota.limit, vcpus=quota.limit.vcpus + 100))
    quotas = dataclasses.replace(state.quotas, quotas={**state.quotas.quotas, ("gd-gat", "gd-prov"): bigger})
    current[0] = dataclasses.replace(state, quotas=quotas)
    assert value(registry, "govcloud_quota_limit", tenant="gd-gat", cloud="gd-prov", resource="vcpus") == (before or 0) + 100


def test_vms_waiting_in_a_down_centre_by_protection(store: Store, state: DesiredState) -> None:
    """Nothing while the VMs' centre is up; once it is recorded down, its VMs by their ticket's protection."""
    main = {"cloud": "gd-prov", "centre": "gz-main"}
    assert value(registry_for(store, state), "govcloud_failover_waiting_vms", **main, protection="none") is None
    with store.transaction() as conn:
        facts.record_health(conn, facts.CentreHealth("gd-prov", "gz-main", "down", iso(60), iso(5), 0, 2, True))
        rows.set_plan(conn, "t-a", {"protection": "dr", "vms": []}, now=iso(1))
    registry = registry_for(store, state)
    assert value(registry, "govcloud_failover_waiting_vms", **main, protection="dr") == 2
    assert value(registry, "govcloud_failover_waiting_vms", cloud="gd-prov", centre="gz-backup", protection="none") is None


def test_the_audit_head_seq_is_read_from_the_store_and_absent_without_a_head(store: Store, state: DesiredState) -> None:
    head = store.audit.head()
    assert head is not None and head[0] >= 1
    assert value(registry_for(store, state), "govcloud_audit_head_seq") == head[0]
    store.audit.append("ops", "test.event", "thing:1")
    assert value(registry_for(store, state), "govcloud_audit_head_seq") == head[0] + 1
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_head")
    assert value(registry_for(store, state), "govcloud_audit_head_seq") is None
