"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/versions`` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from govcloud.model.loading import MAX_PATH_CHARS

metadata = sa.MetaData()

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("ts", sa.String(32), nullable=False, doc="UTC time, ISO 8601 with microseconds"),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(256), nullable=False),
    sa.Column("details", sa.Text(), nullable=False, doc="canonical JSON"),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(16), doc="id of the audit key whose HMAC ``hash`` is; NULL: plain sha256 (before 0008)"),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, doc="always 1: one row, locked by every append"),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.String(63), primary_key=True),
    sa.Column("tenant", sa.String(63), nullable=False, index=True),
    sa.Column("system", sa.String(63), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("content_hash", sa.String(64), nullable=False, index=True),
    sa.Column("source", sa.Text(), nullable=False, doc="the ticket's YAML text as submitted"),
    sa.Column("source_name", sa.String(MAX_PATH_CHARS), nullable=False,
              doc="file it was submitted from (longer paths are refused when the file is read)"),
    sa.Column("submitted_by", sa.String(128), nullable=False),
    sa.Column("submitted_at", sa.String(32), nullable=False),
    sa.Column("approved_by", sa.String(128)),
    sa.Column("approved_at", sa.String(32)),
    sa.Column("approval_rule", sa.String(128)),
    sa.Column("active_at", sa.String(32)),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text(), doc="why it was rejected, failed or quarantined, and what to do"),
    sa.Column("plan", sa.Text(), doc="JSON of the placement approved"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("expires", sa.String(10), doc="lease end (YYYY-MM-DD) of a create ticket, copied from its source at submission"),
    sa.Column("provision_started_at", sa.String(32), doc="first move to provisioning"),
    sa.Column("provisioned_at", sa.String(32), doc="every server ACTIVE (configuration starts here)"),
    sa.Column("lease_warned_at", sa.String(32), doc="when the daemon warned that the lease ends soon"),
    sa.Column("mode", sa.String(16), nullable=False, server_default="managed",
              doc="managed | observe (adopted servers: reported, never changed)"),
)
sa.Index("tickets_by_state_kind", tickets.c.state, tickets.c.kind)  # the exporter's ticket counts (0007)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", BIG, primary_key=True, autoincrement=True),
    sa.Column("ticket", sa.String(63), nullable=False, index=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("system", sa.String(63), nullable=False),
    sa.Column("cloud", sa.String(63), nullable=False),
    sa.Column("centre", sa.String(63), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False, doc="vm | dr"),
    sa.Column("state", sa.String(16), nullable=False, doc="reserved | committed"),
    sa.Column("instances", BIG, nullable=False),
    sa.Column("vcpus", BIG, nullable=False),
    sa.Column("ram_mb", BIG, nullable=False),
    sa.Column("disk_gb", BIG, nullable=False),
)
# Covering indexes for the exporter's GROUP BYs (0007): each reads an index in order, never the table.
sa.Index("ledger_by_tenant", ledger.c.kind, ledger.c.tenant, ledger.c.cloud, ledger.c.state,
         ledger.c.instances, ledger.c.vcpus, ledger.c.ram_mb, ledger.c.disk_gb)
sa.Index("ledger_by_centre", ledger.c.cloud, ledger.c.centre, ledger.c.kind, ledger.c.state,
         ledger.c.instances, ledger.c.vcpus, ledger.c.ram_mb, ledger.c.disk_gb)

vms = sa.Table(
    "vms",
    metadata,
    sa.Column("ticket", sa.String(63), primary_key=True),
    sa.Column("idx", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("system", sa.String(63), nullable=False),
    sa.Column("cloud", sa.String(63), nullable=False),
    sa.Column("region", sa.String(63), nullable=False),
    sa.Column("centre", sa.String(63), nullable=False),
    sa.Column("zone", sa.String(63), nullable=False),
    sa.Column("flavor", sa.String(63)),
    sa.Column("vcpus", sa.Integer(), nullable=False),
    sa.Column("ram_mb", sa.Integer(), nullable=False),
    sa.Column("disk_gb", sa.Integer(), nullable=False),
    sa.Column("server_id", sa.String(64)),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("address", sa.String(64)),
    sa.Column("fault", sa.Text()),
    sa.Column("updated_at", sa.String(32), nullable=False),
)
sa.Index("vms_by_place", vms.c.cloud, vms.c.centre, vms.c.tenant, vms.c.status)  # the exporter's VM counts (0007)

locks = sa.Table("locks", metadata, sa.Column("name", sa.String(32), primary_key=True))

quota_overrides = sa.Table(
    "quota_overrides",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("cloud", sa.String(63), primary_key=True),
    sa.Column("instances", BIG, nullable=False),
    sa.Column("vcpus", BIG, nullable=False),
    sa.Column("ram_mb", BIG, nullable=False),
    sa.Column("disk_gb", BIG, nullable=False),
    sa.Column("ticket", sa.String(63), nullable=False, doc="the quota-change ticket that set it"),
    sa.Column("updated_at", sa.String(32), nullable=False),
)

config_results = sa.Table(
    "config_results",
    metadata,
    sa.Column("ticket", sa.String(63), primary_key=True),
    sa.Column("vm", sa.String(255), primary_key=True),
    sa.Column("run", sa.String(64), nullable=False, doc="ident of the ansible run (its directory under runs/ansible)"),
    sa.Column("status", sa.String(16), nullable=False, doc="ok | changed | failed | unreachable"),
    sa.Column("changed", sa.Integer(), nullable=False),
    sa.Column("failures", sa.Text(), nullable=False, doc="JSON list of one-line reasons"),
    sa.Column("at", sa.String(32), nullable=False),
)

centre_health = sa.Table(
    "centre_health",
    metadata,
    sa.Column("cloud", sa.String(63), primary_key=True),
    sa.Column("centre", sa.String(63), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False, doc="healthy | degraded | down"),
    sa.Column("since", sa.String(32), nullable=False, doc="when the centre entered this state"),
    sa.Column("checked_at", sa.String(32), nullable=False),
    sa.Column("services_up", sa.Integer(), nullable=False, doc="nova-compute services reported up"),
    sa.Column("services_total", sa.Integer(), nullable=False),
    sa.Column("api_ok", sa.Boolean(), nullable=False, doc="the centre's compute API answered the probe"),
    sa.Column("detail", sa.Text(), nullable=False, doc="JSON: per-service state, pending transition"),
)

reconcile_status = sa.Table(
    "reconcile_status",
    metadata,
    sa.Column("cloud", sa.String(63), primary_key=True),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32)),
    sa.Column("success_at", sa.String(32), doc="end of the newest cycle that finished without error"),
    sa.Column("duration_s", sa.Float()),
    sa.Column("servers", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("drift", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("orphans", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("unmanaged", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("corrected", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("error", sa.Text()),
)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("cloud", sa.String(63), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True, doc="drift | orphan | unmanaged"),
    sa.Column("key", sa.String(255), primary_key=True, doc="server id, or ticket/index of a missing VM"),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("server_id", sa.String(64)),
    sa.Column("ticket", sa.String(63)),
    sa.Column("tenant", sa.String(63)),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("first_seen", sa.String(32), nullable=False),
    sa.Column("last_seen", sa.String(32), nullable=False),
)

daemons = sa.Table(
    "daemons",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True, doc="hostname:pid:random"),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("heartbeat_at", sa.String(32), nullable=False),
    sa.Column("leader", sa.Boolean(), nullable=False),
    sa.Column("stopped_at", sa.String(32)),
)

terraform_plans = sa.Table(
    "terraform_plans",
    metadata,
    sa.Column("ticket", sa.String(63), primary_key=True),
    sa.Column("cloud", sa.String(63), primary_key=True, doc="a cloud with driver: terraform (one workspace per tenant x cloud)"),
    sa.Column("tenant", sa.String(63), nullable=False, index=True),
    sa.Column("workspace", sa.String(140), nullable=False, doc="<tenant>--<cloud>"),
    sa.Column("run", sa.String(64), nullable=False, doc="ident of the plan run (its directory under the workspace's runs/)"),
    sa.Column("planfile", sa.Text(), nullable=False, doc="path of the saved plan"),
    sa.Column("sha256", sa.String(64), nullable=False, doc="of the saved plan file: what approval binds to"),
    sa.Column("inputs_sha256", sa.String(64), nullable=False, doc="of the workspace's inputs (cloud settings and every ticket's instances)"),
    sa.Column("ticket_hash", sa.String(64), nullable=False, doc="content hash of the ticket when planned"),
    sa.Column("state_lineage", sa.String(64), nullable=False, doc="terraform state the plan was made against"),
    sa.Column("state_serial", sa.Integer(), nullable=False),
    sa.Column("instances", sa.Text(), nullable=False, doc="JSON: this ticket's instances as rendered (names, sizes, fixed addresses)"),
    sa.Column("add", sa.Integer(), nullable=False),
    sa.Column("change", sa.Integer(), nullable=False),
    sa.Column("destroy", sa.Integer(), nullable=False),
    sa.Column("flagged", sa.Text(), nullable=False, doc="JSON list of replaced or destroyed addresses (second approver needed)"),
    sa.Column("planned_by", sa.String(128), nullable=False),
    sa.Column("planned_at", sa.String(32), nullable=False),
    sa.Column("approved_by", sa.String(128)),
    sa.Column("approved_at", sa.String(32)),
    sa.Column("second_approved_by", sa.String(128)),
    sa.Column("second_approved_at", sa.String(32)),
    sa.Column("applied_run", sa.String(64), doc="ident of the apply run that consumed the plan"),
    sa.Column("applied_at", sa.String(32)),
)

ticket_latency = sa.Table(
    "ticket_latency",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True, doc="the histogram (store/latency.py LATENCIES)"),
    sa.Column("kind", sa.String(16), primary_key=True, doc="ticket kind"),
    sa.Column("bucket", sa.Integer(), primary_key=True, doc="index into the histogram's bounds; len(bounds) is +Inf"),
    sa.Column("count", BIG, nullable=False, doc="observations in this bucket alone (not cumulative)"),
    sa.Column("total", sa.Float(), nullable=False, doc="sum of those observations, seconds"),
)

replicas = sa.Table(
    "replicas",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True, doc="uuid4 hex, also the images' govcloud:replica property"),
    sa.Column("ticket", sa.String(63), nullable=False),
    sa.Column("idx", sa.Integer(), nullable=False, doc="the VM: its ticket and index, as in vms"),
    sa.Column("vm", sa.String(255), nullable=False, doc="the VM's name when the replica was taken"),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("system", sa.String(63), nullable=False),
    sa.Column("cloud", sa.String(63), nullable=False),
    sa.Column("server_id", sa.String(64), nullable=False, doc="the server that was snapshotted"),
    sa.Column("source_region", sa.String(63), nullable=False),
    sa.Column("source_image", sa.String(64), doc="the snapshot in the VM's own region (NULL until nova made it)"),
    sa.Column("dr_region", sa.String(63), nullable=False),
    sa.Column("dr_image", sa.String(64), doc="its copy in the DR region's glance (NULL until copied)"),
    sa.Column("taken_at", sa.String(32), nullable=False, doc="when the snapshot was asked for: the age of the data it holds"),
    sa.Column("finished_at", sa.String(32), doc="when the copy was verified (ready) or given up (failed)"),
    sa.Column("size", BIG, doc="bytes"),
    sa.Column("checksum", sa.String(64), doc="MD5 of the data (glance's checksum), the same in both regions"),
    sa.Column("state", sa.String(16), nullable=False, doc="taking | copying | ready | failed | pruning"),
    sa.Column("error", sa.Text(), doc="why it failed, or why its images could not be deleted yet"),
)
sa.Index("replicas_by_vm", replicas.c.ticket, replicas.c.idx, replicas.c.state, replicas.c.taken_at)

usage_points = sa.Table(
    "usage_points",
    metadata,
    sa.Column("id", BIG, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False, doc="from this moment on the group holds these amounts (UTC, ISO 8601)"),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("system", sa.String(63), nullable=False, doc="'' for quota points"),
    sa.Column("cloud", sa.String(63), nullable=False),
    sa.Column("centre", sa.String(63), nullable=False, doc="'' for quota points"),
    sa.Column("kind", sa.String(8), nullable=False, doc="vm | dr | quota"),
    sa.Column("instances", BIG, nullable=False),
    sa.Column("vcpus", BIG, nullable=False),
    sa.Column("ram_mb", BIG, nullable=False),
    sa.Column("disk_gb", BIG, nullable=False),
)
sa.Index("usage_points_by_group", usage_points.c.tenant, usage_points.c.system, usage_points.c.cloud, usage_points.c.centre,
         usage_points.c.kind, usage_points.c.at)
sa.Index("usage_points_by_time", usage_points.c.at)

usage_samples = sa.Table(
    "usage_samples",
    metadata,
    sa.Column("at", sa.String(32), primary_key=True, doc="when a full sample compared every group with the store and quotas"),
    sa.Column("groups", sa.Integer(), nullable=False, doc="groups holding something after the sample"),
    sa.Column("written", sa.Integer(), nullable=False, doc="points the sample had to write (0: the history was already exact)"),
    sa.Column("actor", sa.String(128), nullable=False),
)

recovery_runs = sa.Table(
    "recovery_runs",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False, doc="failover | migration | failback"),
    sa.Column("cloud", sa.String(63), nullable=False),
    sa.Column("centre", sa.String(63), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, doc="new → running → finished | failed | cancelled"),
    sa.Column("started_by", sa.String(128), nullable=False, doc="the user (or the daemon's service identity) who started it"),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("started_at", sa.String(32)),
    sa.Column("finished_at", sa.String(32)),
    sa.Column("owner", sa.String(128), nullable=False, doc="hostname:pid:random of the process carrying it out now"),
    sa.Column("heartbeat_at", sa.String(32), nullable=False, doc="the owner's last sign of life: a stale run is taken over"),
    sa.Column("resumed", sa.Integer(), nullable=False, server_default="0", doc="how many times another process took it over"),
    sa.Column("active", sa.String(140), unique=True,
              doc="cloud/centre while new or running, else NULL: the unique key that allows one run per centre at a time"),
    sa.Column("plan", sa.Text(), nullable=False, doc="JSON: the groups in order, with counts, when the run (last) started"),
    sa.Column("detail", sa.Text(), nullable=False, doc="JSON: why it ended, hook results, errors"),
)

recovery_moves = sa.Table(
    "recovery_moves",
    metadata,
    sa.Column("run_id", sa.Integer(), sa.ForeignKey("recovery_runs.id"), primary_key=True),
    sa.Column("vm", sa.String(255), primary_key=True),
    sa.Column("ticket", sa.String(63), nullable=False),
    sa.Column("server_id", sa.String(64)),
    sa.Column("group_name", sa.String(63), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False, doc="the group's place in the recovery order (0 first)"),
    sa.Column("protection", sa.String(8), nullable=False),
    sa.Column("source_centre", sa.String(63), nullable=False),
    sa.Column("source_host", sa.String(255)),
    sa.Column("target_centre", sa.String(63)),
    sa.Column("target_zone", sa.String(63)),
    sa.Column("target_host", sa.String(255)),
    sa.Column("state", sa.String(16), nullable=False, doc="planned | moving | moved | failed | held"),
    sa.Column("started_at", sa.String(32)),
    sa.Column("ended_at", sa.String(32)),
    sa.Column("message", sa.Text(), nullable=False, server_default="", doc="nova's message, the error, or why it is held"),
)

recovery_steps = sa.Table(
    "recovery_steps",
    metadata,
    sa.Column("run_id", sa.Integer(), sa.ForeignKey("recovery_runs.id"), primary_key=True),
    sa.Column("group_name", sa.String(63), primary_key=True),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("priority", sa.Integer(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, doc="running | done | hook-failed | stopped"),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("ended_at", sa.String(32)),
    sa.Column("hook", sa.String(63), doc="the hook's role, if the group has one"),
    sa.Column("hook_result", sa.Text(), nullable=False, server_default="", doc="ok, or what failed on which host"),
)
