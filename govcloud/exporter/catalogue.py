"""Every metric govcloud exports: name, type, labels and help, in one place.

The families in ``metrics.py`` are built from these entries, ``describe()`` announces them to the
registry (so a clashing name fails at registration, not at scrape), and docs/monitoring.md lists them.
Names follow the Prometheus conventions: base units in the name (``_seconds``, ``_bytes``), timestamps
as ``_timestamp_seconds`` since the epoch, 0/1 flags for states, ``_info`` for build information.
"""

from __future__ import annotations

from govcloud.exporter.families import Spec

RESOURCES = (("instances", "instances", 1), ("vcpus", "vcpus", 1), ("memory_bytes", "ram_mb", 2**20), ("disk_bytes", "disk_gb", 2**30))
"""(label value, field of Resources, factor to the base unit): ram is counted in MiB and disk in GiB,
as nova counts them; the metrics carry bytes."""

_SPECS = (
    # quotas
    Spec("govcloud_quota_limit", "gauge", "Quota limit per tenant x cloud (quotas/*.yaml with approved quota changes applied).",
         ("tenant", "cloud", "resource")),
    Spec("govcloud_quota_reserved", "gauge", "Quota reserved by approved tickets not yet provisioned (ledger reserved, kind vm); absent when 0.",
         ("tenant", "cloud", "resource")),
    Spec("govcloud_quota_used", "gauge", "Quota used by provisioned tickets (ledger committed, kind vm), for each tenant x cloud holding anything.",
         ("tenant", "cloud", "resource")),
    Spec("govcloud_quota_warn_ratio", "gauge", "Share of the limit at which the quota counts as nearly exhausted (warn_at).",
         ("tenant", "cloud")),
    Spec("govcloud_quota_total_limit", "gauge", "A tenant's limit summed over all its clouds (totals: in quotas/*.yaml).",
         ("tenant", "resource")),
    # centres
    Spec("govcloud_centre_capacity", "gauge", "What a centre may hand out: physical capacity x overcommit (topology.yaml).",
         ("cloud", "centre", "resource")),
    Spec("govcloud_centre_overcommit_ratio", "gauge", "Allocation ratio of a centre (nova's cpu/ram/disk_allocation_ratio).",
         ("cloud", "centre", "resource")),
    Spec("govcloud_centre_allocated", "gauge", "Resources held in a centre by ledger lines; kind=dr is room reserved for failover.",
         ("cloud", "centre", "resource", "kind", "state")),
    Spec("govcloud_centre_health", "gauge", "1 for the centre's recorded health state, 0 for the others.", ("cloud", "centre", "state")),
    Spec("govcloud_centre_up", "gauge", "1 unless the centre's recorded health is down.", ("cloud", "centre")),
    Spec("govcloud_failover_waiting_vms", "gauge",
         "VMs of live tickets still recorded in a centre that is down, by protection (ha and dr ones are what a failover moves).",
         ("cloud", "centre", "protection")),
    # recovery runs (the journal: failover, planned migration, failback)
    Spec("govcloud_recovery_runs", "gauge", "Recovery runs in the journal, by kind and state.", ("kind", "state")),
    Spec("govcloud_recovery_last_run_state", "gauge", "1 for the state of the newest run of each kind in a centre, 0 for the others.",
         ("kind", "cloud", "centre", "state")),
    Spec("govcloud_recovery_last_run_duration_seconds", "gauge",
         "Start to end of the newest run of each kind in a centre (to now while it runs).", ("kind", "cloud", "centre")),
    Spec("govcloud_recovery_last_run_vms", "gauge", "VMs of the newest run of each kind in a centre, by result (moved, failed, held, ...).",
         ("kind", "cloud", "centre", "result")),
    Spec("govcloud_recovery_run_running", "gauge", "1 while a run of the centre is new or running (absent otherwise).",
         ("kind", "cloud", "centre")),
    Spec("govcloud_recovery_run_heartbeat_timestamp_seconds", "gauge",
         "Last heartbeat of the process carrying a run in progress: it stops when the process dies (stall alert); "
         "absent while a run is new (a DR activation waiting for approval has no carrier).",
         ("kind", "cloud", "centre")),
    Spec("govcloud_centre_maintenance", "gauge",
         "1 while the centre is in maintenance by govcloud's own record: its newest planned run is a migration ('failover migrate') "
         "and no failback of it came after; 0 once a failback did. Centres never migrated have no series. 'govcloud failover status' "
         "shows nova's actual compute services.", ("cloud", "centre")),
    Spec("govcloud_centre_maintenance_since_timestamp_seconds", "gauge",
         "When the migration that put the centre in maintenance started (only while govcloud_centre_maintenance is 1).",
         ("cloud", "centre")),
    Spec("govcloud_vms_away_from_home", "gauge",
         "VMs of live tickets recorded in another centre than the one their ticket's plan placed them in (moved by a failover, "
         "a planned migration or a DR activation, not yet brought back); absent when none.", ("cloud", "home_centre", "centre")),
    Spec("govcloud_vms_away_since_timestamp_seconds", "gauge",
         "When the oldest journaled move that took a VM still away from the home centre ended.", ("cloud", "home_centre")),
    Spec("govcloud_recovery_vm_seconds", "histogram", "Seconds from sending a VM's move to nova reporting it ACTIVE on the target.",
         ("kind",)),
    # readiness of recovery plans for a DR activation (model/readiness.py, issue 14)
    Spec("govcloud_recovery_plan_ready", "gauge",
         "1 when the recovery plan (protection group) is ready for a DR activation: drilled within drill_every, every dr VM's newest "
         "replica within its RPO, its DR reservation covered; 0 otherwise ('govcloud failover status' says why).", ("cloud", "group")),
    Spec("govcloud_recovery_plan_last_drill_timestamp_seconds", "gauge",
         "When the plan's newest successful drill finished (absent: never drilled).", ("cloud", "group")),
    Spec("govcloud_recovery_plan_drill_every_seconds", "gauge", "How often the plan must be drilled (drill_every, or settings.dr.drill_every).",
         ("cloud", "group")),
    Spec("govcloud_dr_replica_age_seconds", "gauge",
         "Age of the oldest of the newest ready replicas of a business system's dr VMs (+Inf: a VM has none).", ("cloud", "tenant", "system")),
    Spec("govcloud_dr_rpo_seconds", "gauge", "The business system's RPO target (its group's rpo, or settings.dr.rpo).",
         ("cloud", "tenant", "system")),
    Spec("govcloud_centre_compute_services_up", "gauge", "nova-compute services of the centre reported up at the last check.",
         ("cloud", "centre")),
    Spec("govcloud_centre_compute_services", "gauge", "nova-compute services of the centre.", ("cloud", "centre")),
    Spec("govcloud_centre_api_up", "gauge", "1 when the centre's compute API answered the last probe.", ("cloud", "centre")),
    Spec("govcloud_centre_state_since_timestamp_seconds", "gauge", "When the centre entered its current health state.",
         ("cloud", "centre")),
    Spec("govcloud_centre_checked_timestamp_seconds", "gauge", "When the centre's health was last checked.", ("cloud", "centre")),
    # VMs and tickets
    Spec("govcloud_vms", "gauge", "VMs govcloud records, by where they run, whose they are and their last known status.",
         ("cloud", "centre", "tenant", "status")),
    Spec("govcloud_tickets", "gauge", "Stored tickets by state and kind.", ("state", "kind")),
    Spec("govcloud_tickets_oldest_change_timestamp_seconds", "gauge",
         "Last state change of the least recently changed ticket in each open state (about when it entered it).", ("state",)),
    Spec("govcloud_tickets_lease_expiring", "gauge", "Live create tickets whose lease ends within the warning window, by tenant.",
         ("tenant",)),
    Spec("govcloud_tickets_lease_expired", "gauge", "Live create tickets whose lease has ended but which are not retired, by tenant.",
         ("tenant",)),
    Spec("govcloud_lease_warning_window_seconds", "gauge", "How long before a lease ends it counts as expiring (the daemon's lease_warning_days)."),
    Spec("govcloud_ticket_submit_to_approve_seconds", "histogram", "Time from submission to approval, counted at approval.",
         ("kind",)),
    Spec("govcloud_ticket_approve_to_active_seconds", "histogram", "Time from approval to first active, counted then.", ("kind",)),
    Spec("govcloud_ticket_submit_to_active_seconds", "histogram", "Time from submission to first active, counted then.", ("kind",)),
    Spec("govcloud_ticket_provisioning_seconds", "histogram", "Time from the start of provisioning until every server was ACTIVE, per provisioning.",
         ("kind",)),
    Spec("govcloud_ticket_configuration_seconds", "histogram",
         "Time a ticket spent configuring (Ansible) before it became active, per successful run.", ("kind",)),
    # reconcile
    Spec("govcloud_reconcile_last_duration_seconds", "gauge", "Duration of the newest finished reconcile cycle of a cloud.", ("cloud",)),
    Spec("govcloud_reconcile_last_start_timestamp_seconds", "gauge", "Start of the newest reconcile cycle of a cloud.", ("cloud",)),
    Spec("govcloud_reconcile_last_success_timestamp_seconds", "gauge", "End of the newest reconcile cycle that finished without error.",
         ("cloud",)),
    Spec("govcloud_reconcile_error", "gauge", "1 when the newest reconcile cycle of a cloud failed.", ("cloud",)),
    Spec("govcloud_reconcile_servers", "gauge", "Servers the newest reconcile cycle saw in a cloud.", ("cloud",)),
    Spec("govcloud_reconcile_drift", "gauge", "VMs of tickets missing or broken in the newest cycle.", ("cloud",)),
    Spec("govcloud_reconcile_orphans", "gauge", "Servers with govcloud metadata that no ticket owns, in the newest cycle.", ("cloud",)),
    Spec("govcloud_reconcile_unmanaged", "gauge", "Servers without govcloud metadata in tenant projects, in the newest cycle.",
         ("cloud",)),
    Spec("govcloud_reconcile_corrected", "gauge", "Drifted VMs the newest cycle corrected.", ("cloud",)),
    Spec("govcloud_reconcile_findings", "gauge", "Current reconcile findings by kind (drift, orphan, unmanaged).", ("cloud", "kind")),
    # daemons
    Spec("govcloud_daemon_leader", "gauge", "Leader flag of each running daemon as recorded in the store.", ("daemon", "hostname")),
    Spec("govcloud_daemon_heartbeat_timestamp_seconds", "gauge", "Last heartbeat of each running daemon.", ("daemon", "hostname")),
    Spec("govcloud_daemons_live", "gauge", "Running daemons whose heartbeat is fresher than the heartbeat timeout."),
    Spec("govcloud_leaders", "gauge", "Live daemons that claim leadership (1 is healthy; 0 or more is an incident)."),
    Spec("govcloud_daemon_is_leader", "gauge", "1 when the process serving this endpoint holds the leader lease."),
    # the audit chain
    Spec("govcloud_audit_head_seq", "gauge", "Sequence number of the audit chain's newest record (absent: the head row is missing)."),
    # the exporter itself
    Spec("govcloud_build_info", "gauge", "govcloud's version (value always 1).", ("version",)),
    Spec("govcloud_exporter_store_up", "gauge", "1 when this scrape could read the state store."),
    Spec("govcloud_exporter_scrape_duration_seconds", "gauge", "Time this scrape took to read the store and build its families."),
)

SPECS: dict[str, Spec] = {s.name: s for s in _SPECS}
