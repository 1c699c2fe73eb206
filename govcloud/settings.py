"""Process settings: frozen dataclasses, read once from the environment by ``Settings.from_env``.

Nothing here is read at import time (masakari's import-time ``CONF`` is the anti-example): the CLI
builds one ``Settings`` from flags and environment and passes it down; tests build their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path


def default_state_dir(env: Mapping[str, str]) -> Path:
    """``$GOVCLOUD_STATE_DIR``, else ``$XDG_STATE_HOME/govcloud``, else ``~/.local/state/govcloud``.

    State (the SQLite database, run directories, the devcloud) is per user and survives reboots,
    which is what the XDG state directory is for.
    """
    if env.get("GOVCLOUD_STATE_DIR"):
        return Path(env["GOVCLOUD_STATE_DIR"]).expanduser()
    xdg = env.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(xdg) / "govcloud"


DEFAULT_PROFILE = "inventory/devcloud.yaml"


@dataclass(frozen=True)
class DataPaths:
    """Where the desired state lives. All paths are relative to ``root`` unless absolute."""

    root: Path = Path(".")
    """Repository of YAML data (``$GOVCLOUD_ROOT``, default: the current directory)."""
    topology: Path = Path("inventory/topology.yaml")
    """The clouds and their centres."""
    tenants: Path = Path("tenants.yaml")
    """Tenants and their business systems."""
    quotas: Path = Path("quotas")
    """Directory of quota files (``*.yaml``), merged; duplicates are errors."""
    rates: Path = Path("rates.yaml")
    """Prices per resource-hour, DR reservation prices, service levels and the idle rule of the assessment
    reports (``govcloud report``); needed only by those (docs/reports.md)."""
    users: Path = Path("users.yaml")
    """Users, roles and auto-approval rules; optional (without it only ``validate`` and listings work)."""
    tickets: Path = Path("tickets")
    """Directory of ticket files validated by ``govcloud validate`` when present."""
    cache: Path | None = None
    """Private directory of validated states (``<state_dir>/cache`` for the CLI and the daemon; None: every
    load validates from scratch). Keyed by the files' bytes: never stale (``model/cache.py``)."""
    fencing: Path = Path("inventory/fencing.yaml")
    """How each centre's compute hosts are fenced (``$GOVCLOUD_FENCING``); optional: without it no centre is fenced."""
    recovery: Path = Path("recovery")
    """Directory of recovery plans (``*.yaml``, one per cloud); optional: without it every protected system
    is recovered in one group of priority 3."""
    roles: Path = Path("playbooks/roles")
    """The Ansible roles a recovery plan's hook may name (checked when the directory exists)."""

    def resolve(self, path: Path) -> Path:
        """Absolute path of one of the fields above."""
        return path if path.is_absolute() else self.root / path


@dataclass(frozen=True)
class EngineSettings:
    """How provisioning behaves."""

    concurrency_per_cloud: int = 16
    """Servers created (or deleted) and awaited at once per endpoint, across every ticket of an ``apply``
    (engine/workqueue.py). 16: on the 2-core devcloud more gives nothing (docs/devcloud.md), and a plain
    16-thread openstacksdk script is what bench/provision.py holds govcloud against."""
    concurrency_per_host: int = 8
    """Servers built (or deleted) at once per compute host. nova, not govcloud, picks the host, so it is
    kept per availability zone as this × the zone's hosts that are up; with nova's own
    ``max_concurrent_builds`` (10) per host this keeps one zone from taking the whole endpoint's share."""
    boot_timeout: float = 300.0
    """Seconds to wait for one server to become ACTIVE before the attempt counts as failed."""
    boot_attempts: int = 3
    """Creates per VM before the ticket fails (an ERROR server is deleted and created again)."""
    delete_timeout: float = 120.0
    """Seconds to wait for one server to disappear at retirement."""
    settle_interval: float = 5.0
    """Seconds between two looks at a ticket's servers when resuming a killed run (creates it had in
    flight at the API may still land); the servers must look the same twice."""
    settle_timeout: float = 60.0
    """Upper bound of that wait."""
    api_timeout: float = 60.0
    """Seconds one OpenStack API call may take when clouds.yaml sets no ``api_timeout``: an API that accepts
    the connection and never answers is then a temporary error, retried, instead of a run that hangs forever."""
    temporary_retries: int = 5
    """Retries of an API call (and of an evacuation) that failed with a temporary error (backoff doubles
    from its delay, capped at a minute, plus jitter: ``common/retry.py``)."""


@dataclass(frozen=True)
class ConfigureSettings:
    """How VMs are configured with Ansible."""

    playbook: str = "site.yml"
    """Playbook of the data root's ``playbooks/`` directory that applies the ticket's roles."""
    ssh_key: Path | None = None
    """Private key govcloud logs in with (``$GOVCLOUD_SSH_KEY``); None: ssh's own defaults."""
    user: str = "root"
    """Remote user (``$GOVCLOUD_SSH_USER``)."""
    timeout: int = 900
    """Seconds one ansible run may take before it is cancelled."""
    task_timeout: int = 600
    """Seconds one task may take on one host (``ANSIBLE_TASK_TIMEOUT``): a task that hangs fails that host
    alone, the others finish, instead of the whole run waiting for ``timeout``."""
    python: str = "/usr/bin/python3"
    """Python on the VMs (``$GOVCLOUD_VM_PYTHON``): the images' system Python, not whatever ansible's
    interpreter discovery finds first on the PATH; ``auto_silent`` restores discovery."""
    prometheus_url: str = "http://127.0.0.1:9090"
    """The province's Prometheus, written into the monitoring role's configuration (``$GOVCLOUD_PROMETHEUS_URL``)."""


@dataclass(frozen=True)
class TerraformSettings:
    """How Terraform clouds (``driver: terraform`` in topology.yaml) are driven."""

    binary: str = "terraform"
    """The terraform CLI (``$GOVCLOUD_TERRAFORM``); 1.11 is what the machine image ships."""
    mirror: Path = Path("/opt/tf-plugins")
    """Filesystem provider mirror (``$GOVCLOUD_TF_MIRROR``): no registry is reachable from the control plane."""
    timeout: float = 3600.0
    """Seconds one terraform run may take before it is interrupted (SIGINT, so it releases its lock)."""
    lock_timeout: int = 60
    """Seconds terraform waits for a state lock held by another run before giving up (then retried)."""
    workspace_lock_wait: float = 600.0
    """Seconds a ticket's plan, apply or retire waits for govcloud's own lock on the workspace's files
    (held by another CLI run or a reconcile pass) before it gives up with an error naming the holder;
    reconcile never waits (it skips a busy workspace for one pass)."""
    pg_conn_str: str = field(default="", repr=False)
    """``$GOVCLOUD_TF_PG_CONN_STR``: the pg backend's connection string when it is not the store's own URL.
    Empty: the ``pg`` backend is used exactly when the store is PostgreSQL, with the store's URL."""
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """The process environment as read once at start: the credentials a cloud's ``terraform.credentials``
    names are taken from here, reach terraform only through its environment, and are never written."""


@dataclass(frozen=True)
class DaemonSettings:
    """How ``govcloud daemon`` paces its work (flags of ``govcloud daemon`` override each)."""

    inbox: Path | None = None
    """Watched directory of ticket files (``$GOVCLOUD_INBOX``); None: ``<state_dir>/inbox``."""
    identity: str = "govcloud-daemon"
    """The users.yaml user the daemon acts as (``$GOVCLOUD_DAEMON_USER``; ``--as`` wins): its service
    identity, which must have the operator role (model/access.service_identity); audit records name it."""
    inbox_settle: float = 1.0
    """Seconds a file must stay unchanged before it is taken (a writer may still be copying it)."""
    apply_interval: float = 5.0
    """Seconds between two passes over the inbox, approved tickets and leases."""
    reconcile_interval: float = 60.0
    """Seconds between two reconcile passes over every cloud."""
    history_interval: float = 3600.0
    """Seconds between two full samples of the usage history (``govcloud report sample``; docs/reports.md).
    The ledger records its own changes as they happen; the sample catches what bypassed it (quota files
    edited by hand, allocations older than the history). Points are written only on change, so sampling
    hourly costs a read of the ledger and nothing in the store; the issue asks for at least daily."""
    reconcile_policy: str = "correct"
    """``correct``: recreate VMs deleted or broken outside govcloud; ``report``: only record the drift."""
    reconcile_timeout: float = 120.0
    """Seconds one cloud's server listing (OpenStack) or one workspace's refreshed plan, and its correcting
    apply (Terraform), may take before that cloud's cycle counts as failed; the call goes on, and is not
    started again until it ends."""
    reconcile_terraform_runs: int = 2
    """Terraform workspaces planned at once per Terraform cloud by a reconcile pass (each run is a terraform
    and a provider process, ≈8 s of a core: more only queue on a small control plane)."""
    health_interval: float = 5.0
    """Seconds between two probes of every centre (nova's compute services and its API)."""
    health_confirmations: int = 2
    """Consecutive probes that must agree before a centre is recorded worse (degraded, down)."""
    health_recovery: float = 30.0
    """Seconds a centre must stay better before it is recorded healthy again (hysteresis)."""
    health_silent_after: float = 0.0
    """Seconds without a heartbeat from a compute service (nova's ``updated_at``) after which the health
    watch counts it down before nova does (``service_down_time``, 60 s by default); 0 (default): nova's
    verdict only. With a fence method, this is what lets the daemon fence and evacuate early: set it to
    2–3× nova's ``report_interval``. Silence alone never evacuates: a host must be fenced or down in nova."""
    health_timeout: float = 20.0
    """Seconds an endpoint's compute API may take to answer the probe before its centres count as down."""
    failover_policy: str = "report"
    """What the leader does when a centre is recorded ``down`` and protected (``ha``/``dr``) VMs run
    there: ``report`` (default) logs and audits the plan once and leaves the move to an operator
    (``govcloud failover run``); ``evacuate`` carries it out. Report is the default because nova's
    "down" only means missed heartbeats: without fencing (powering the hosts off) a centre cut off
    from the control network may still run its VMs, and evacuating them would start second copies
    on the same volumes. Choose ``evacuate`` where the centres' hosts are fenced, or ``auto``: fence a
    centre that has a fence method (fencing file) and evacuate it only once every host is confirmed off
    and forced down; report the others (method ``none``, or a fence that failed)."""
    lease_warning_days: int = 14
    """Days before a lease ends from which the daemon warns (audit) and the exporter counts it as expiring."""
    leader_poll: float = 2.0
    """Seconds between a standby's attempts to become leader (bounds the takeover time)."""
    stop_timeout: float = 120.0
    """Seconds a SIGTERM waits for the step in flight before the process exits anyway (a second
    SIGTERM exits at once); what was abandoned is finished idempotently by the next leader."""


@dataclass(frozen=True)
class FencingSettings:
    """How govcloud powers a failed centre's hosts off (``failover/fence.py``; methods per centre in ``DataPaths.fencing``)."""

    ipmi_password_file: Path | None = None
    """A file holding the BMC password on its first line (``$GOVCLOUD_IPMI_PASSWORD_FILE``), refused unless only its
    owner may read it (0600). Without it the password is ``$GOVCLOUD_IPMI_PASSWORD``. Either way it reaches
    ``ipmitool`` only through the child's environment (``-E``), never its command line (``ps`` shows that to
    every user), and is never logged."""
    ipmi_password: str = field(default="", repr=False)
    """``$GOVCLOUD_IPMI_PASSWORD`` (kept out of ``repr`` so that settings can be printed)."""
    timeout: float = 60.0
    """Seconds one host may take to be confirmed off (or on) after its power command."""
    poll: float = 1.0
    """Seconds between two power-state reads while waiting."""
    parallel: int = 8
    """Hosts fenced at once (each is one ``ipmitool`` process at a time)."""
    command_timeout: float = 30.0
    """Seconds one ``ipmitool`` (or fence agent) run may take before it counts as failed."""


@dataclass(frozen=True)
class DrSettings:
    """Replication of ``dr`` VMs into their cloud's DR region (``failover/replicate.py``, issue 14)."""

    rpo: float = 3600.0
    """Seconds: the recovery point objective of a ``dr`` VM no recovery plan gives one (``rpo_of``'s default;
    a plan's ``rpo:`` wins once plans are wired in). A VM is due for replication when its newest ready
    replica is at least this old (or it has none). The data a disaster can lose is then at most this,
    plus the daemon's ``interval``, plus the time one snapshot and copy take."""
    keep: int = 3
    """Replicas kept per VM (K): once a new one is ready, older ready ones beyond K are deleted in both regions."""
    interval: float = 60.0
    """Seconds between two daemon passes that look for VMs due for replication."""
    snapshot_timeout: float = 600.0
    """Seconds one snapshot may take to become ``active`` in glance before the try counts as failed."""
    chunk_size: int = 1024 * 1024
    """Bytes read from the source glance and written to the DR glance at a time (the copy holds one chunk)."""
    stale_after: float = 3600.0
    """Seconds after which a replica still ``taking`` or ``copying`` is taken for abandoned (its process
    died) and its images are deleted; longer than any snapshot and copy can take."""
    drill_every: float = 90 * 86400.0
    """Seconds: how often a recovery plan (protection group) must pass a drill when its ``drill_every:`` says
    nothing (90 days). Older than this, the plan is NOT READY (``model/readiness.py``)."""


@dataclass(frozen=True)
class StoreSettings:
    """How to reach the state store."""

    url: str = ""
    """SQLAlchemy URL or a file path (``--db`` / ``$GOVCLOUD_DB``); empty means ``<state_dir>/govcloud.db``."""


@dataclass(frozen=True)
class AuditSettings:
    """Where the audit chain's anchors outside the database live (see ``store/seal.py``)."""

    key_file: Path | None = None
    """The audit key (``$GOVCLOUD_AUDIT_KEY_FILE``; None: ``<state_dir>/audit.key``), 32 random bytes as hex,
    created 0600 on the first append and refused when group or others may read it. Every record is an
    HMAC-SHA256 under it, so someone who can write the database but not read this file cannot rewrite the
    trail and re-hash it. A file, not an environment variable: children inherit the environment and
    ansible-runner writes it into its artifacts. With PostgreSQL and several daemons every host needs the
    same key (copy it, or point this at a shared secret mount); keep it off the database's host and
    backups to make it count against a database administrator."""
    anchor_file: Path | None = None
    """The anchor (``$GOVCLOUD_AUDIT_ANCHOR``; None: ``<state_dir>/audit.anchor``): the newest record this
    host committed (seq and hash, HMAC'd), replaced atomically after each append and never moved backwards.
    ``audit verify`` fails when the chain does not reach it with that hash (truncation, re-hashing)."""


@dataclass(frozen=True)
class ExporterSettings:
    """Where and how the daemon serves ``/metrics``, ``/healthz`` and ``/readyz`` (govcloud/exporter/)."""

    host: str = "127.0.0.1"
    """Address to bind (``$GOVCLOUD_EXPORTER_ADDRESS``, ``host:port``). Loopback by default: the metrics name
    tenants and their systems, so exposing them is a decision (a Prometheus on another host needs ``0.0.0.0``
    or the host's own address, behind the province's firewall)."""
    port: int = 9478
    """TCP port; 0 asks the kernel for a free one (tests), the server reports the port it bound."""
    heartbeat_timeout: float = 30.0
    """Seconds after which a daemon row whose heartbeat stopped no longer counts as running or as a
    leader (a daemon killed with ``kill -9`` never writes ``stopped_at``)."""
    cache_seconds: float = 0.0
    """0 (default): every scrape reads the store (a few ms with the sample data, about 0.1 s at 10k
    tenants and 100k VMs, see docs/monitoring.md). Above 0: ``/metrics`` answers at once from the newest
    snapshot and, when that is older than this many seconds, reads the store again in the background —
    for stores far beyond that, at the price of data one scrape interval older."""

    @classmethod
    def from_address(cls, address: str) -> ExporterSettings:
        """``host:port``, ``:port`` (loopback) or ``[v6]:port``; a ValueError names what is wrong."""
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"exporter address {address!r}: expected host:port (port 0-65535)")
        return cls(host=host.strip("[]") or cls.host, port=int(port))


@dataclass(frozen=True)
class FailoverSettings:
    """How a recovery run (failover, and later migration and failback) carries out its moves (docs/failover.md)."""

    parallel_per_cloud: int = 16
    """Evacuations in flight at once in one cloud. nova's API and conductor are the limit: the engine's
    ``concurrency_per_cloud`` default, for the same control plane."""
    parallel_per_host: int = 4
    """Evacuations in flight at once onto one target compute host: each rebuilds a VM there (image or
    volume attach, libvirt define), and a host taking many at once slows all of them. nova itself does
    not bound rebuilds (``max_concurrent_builds`` covers new builds only); masakari's default is 3
    threads per failed host. 4: a centre of four hosts or more takes the whole ``parallel_per_cloud``."""
    heartbeat_interval: float = 5.0
    """Seconds between two heartbeats of the process carrying out a run (recovery_runs.heartbeat_at)."""
    stale_after: float = 30.0
    """Seconds without a heartbeat after which another process takes a run over and resumes it. A run whose
    owner is a dead process on this host is taken over at once."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FailoverSettings:
        """The two bounds from ``GOVCLOUD_FAILOVER_PARALLEL_PER_CLOUD`` / ``_PER_HOST``: an operator sizes them
        to the cloud (shared storage rebuilds fast, local disks slowly) without a release. A ValueError
        names the variable and what it holds."""
        return cls(parallel_per_cloud=positive_int(env, "GOVCLOUD_FAILOVER_PARALLEL_PER_CLOUD", cls.parallel_per_cloud),
                   parallel_per_host=positive_int(env, "GOVCLOUD_FAILOVER_PARALLEL_PER_HOST", cls.parallel_per_host))


def positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    """``env[name]`` as a whole number ≥ 1, or ``default`` when unset or empty."""
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name}={text!r}: expected a whole number of at least 1")
    return int(text)


@dataclass(frozen=True)
class Settings:
    """Everything a govcloud process needs to know about its surroundings."""

    state_dir: Path = field(default_factory=lambda: default_state_dir(os.environ))
    """Per-user state: SQLite database, run directories, the devcloud (see ``default_state_dir``)."""
    data: DataPaths = field(default_factory=DataPaths)
    store: StoreSettings = field(default_factory=StoreSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    configure: ConfigureSettings = field(default_factory=ConfigureSettings)
    exporter: ExporterSettings = field(default_factory=ExporterSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    terraform: TerraformSettings = field(default_factory=TerraformSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    fencing: FencingSettings = field(default_factory=FencingSettings)
    dr: DrSettings = field(default_factory=DrSettings)
    failover: FailoverSettings = field(default_factory=FailoverSettings)
    profile: str = DEFAULT_PROFILE
    """Endpoint profile overlaying topology.yaml (``$GOVCLOUD_PROFILE``); ``none`` for a real deployment.
    The default points the sample topology at the loopback devcloud, the embedded default cloud."""
    clouds_yaml: str = ""
    """clouds.yaml to read (``$OS_CLIENT_CONFIG_FILE``); empty with the devcloud profile means the devcloud's."""
    devcloud_dir: Path | None = None
    """The devcloud's state directory (``$GOVCLOUD_DEVCLOUD_DIR``, default ``<state_dir>/devcloud``)."""
    user: str = ""
    """Acting user (``--as`` / ``$GOVCLOUD_USER``); checked against the roles file by the engine."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables only; flags are applied with ``with_overrides``."""
        env = os.environ if env is None else env
        return cls(
            state_dir=default_state_dir(env),
            data=DataPaths(root=Path(env.get("GOVCLOUD_ROOT", ".")), cache=default_state_dir(env) / "cache",
                           fencing=Path(env.get("GOVCLOUD_FENCING", str(DataPaths.fencing)))),
            fencing=FencingSettings(ipmi_password_file=Path(env["GOVCLOUD_IPMI_PASSWORD_FILE"]) if env.get("GOVCLOUD_IPMI_PASSWORD_FILE")
                                    else None, ipmi_password=env.get("GOVCLOUD_IPMI_PASSWORD", "")),
            store=StoreSettings(url=env.get("GOVCLOUD_DB", "")),
            profile=env.get("GOVCLOUD_PROFILE", DEFAULT_PROFILE),
            clouds_yaml=env.get("OS_CLIENT_CONFIG_FILE", ""),
            devcloud_dir=Path(env["GOVCLOUD_DEVCLOUD_DIR"]) if env.get("GOVCLOUD_DEVCLOUD_DIR") else None,
            configure=ConfigureSettings(ssh_key=Path(env["GOVCLOUD_SSH_KEY"]) if env.get("GOVCLOUD_SSH_KEY") else None,
                                        user=env.get("GOVCLOUD_SSH_USER", "root"),
                                        python=env.get("GOVCLOUD_VM_PYTHON", ConfigureSettings.python),
                                        prometheus_url=env.get("GOVCLOUD_PROMETHEUS_URL", ConfigureSettings.prometheus_url)),
            user=env.get("GOVCLOUD_USER", ""),
            exporter=(ExporterSettings.from_address(env["GOVCLOUD_EXPORTER_ADDRESS"]) if env.get("GOVCLOUD_EXPORTER_ADDRESS")
                      else ExporterSettings()),
            audit=AuditSettings(key_file=Path(env["GOVCLOUD_AUDIT_KEY_FILE"]) if env.get("GOVCLOUD_AUDIT_KEY_FILE") else None,
                                anchor_file=Path(env["GOVCLOUD_AUDIT_ANCHOR"]) if env.get("GOVCLOUD_AUDIT_ANCHOR") else None),
            daemon=DaemonSettings(inbox=Path(env["GOVCLOUD_INBOX"]) if env.get("GOVCLOUD_INBOX") else None,
                                  identity=env.get("GOVCLOUD_DAEMON_USER", DaemonSettings.identity)),
            terraform=TerraformSettings(binary=env.get("GOVCLOUD_TERRAFORM", TerraformSettings.binary),
                                        mirror=Path(env.get("GOVCLOUD_TF_MIRROR", str(TerraformSettings.mirror))),
                                        pg_conn_str=env.get("GOVCLOUD_TF_PG_CONN_STR", ""), environ=dict(env)),
            failover=FailoverSettings.from_env(env),
        )

    @property
    def inbox(self) -> Path:
        """The daemon's watched directory of ticket files."""
        return self.daemon.inbox or self.state_dir / "inbox"

    def with_overrides(self, *, root: str | None = None, db: str | None = None, user: str | None = None) -> Settings:
        """Apply command-line flags, which win over the environment."""
        result = self
        if root:
            result = replace(result, data=replace(result.data, root=Path(root)))
        if db:
            result = replace(result, store=StoreSettings(url=db))
        if user:
            result = replace(result, user=user)
        return result

    @property
    def profile_path(self) -> Path | None:
        """The endpoint profile file, or None when disabled."""
        if not self.profile or self.profile == "none":
            return None
        return self.data.resolve(Path(self.profile))

    @property
    def clouds_config(self) -> Path | None:
        """clouds.yaml for the drivers: the environment's, else the devcloud's when its profile is in use."""
        if self.clouds_yaml:
            return Path(self.clouds_yaml)
        if self.profile_path is not None and self.profile_path.name == "devcloud.yaml":
            return (self.devcloud_dir or self.state_dir / "devcloud") / "clouds.yaml"
        return None

    @property
    def audit_key_file(self) -> Path:
        """The audit key: ``audit.key_file``, else ``<state_dir>/audit.key``."""
        return self.audit.key_file or self.state_dir / "audit.key"

    @property
    def audit_anchor_file(self) -> Path:
        """The audit anchor: ``audit.anchor_file``, else ``<state_dir>/audit.anchor``."""
        return self.audit.anchor_file or self.state_dir / "audit.anchor"

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL: a bare path becomes ``sqlite:///path``."""
        url = self.store.url or str(self.state_dir / "govcloud.db")
        return url if "://" in url else f"sqlite:///{Path(url).expanduser().absolute()}"
