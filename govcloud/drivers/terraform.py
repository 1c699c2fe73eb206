"""The Terraform driver: the only code that runs the ``terraform`` CLI.

A cloud with ``driver: terraform`` is provisioned through a root module per tenant × cloud (a
*workspace*: ``<workspace_root>/<tenant>--<cloud>/``) that this module renders as ``main.tf.json`` from
plain data and points at ``terraform/modules/{ec2,openstack}``. The engine calls ``render`` →
``plan`` (saved plan file + summary + sha256, what approval binds to) → ``apply`` (exactly that saved
plan) → ``outputs`` (addresses for the Ansible step); ``destroy`` retires a workspace.

Why a thin driver over ``terraform … -json`` and not python-terraform: python-terraform 0.10.1 predates
Terraform 1.0 (``destroy`` passes the removed ``-force``, ``apply`` prompts, ``plan`` raises on rc 2) and
cannot stream. The machine-readable UI streams ``planned_change``, ``apply_*``, ``change_summary`` and
``diagnostic`` events: each goes to the injected ``progress(event, data)`` callback and to the run's
``events.jsonl``. Every run has an ident and a directory (``runs/<ident>/``: ``command``, ``stdout``,
``stderr``, ``events.jsonl``, ``rc``, ``status``; small files written atomically). Secrets (cloud
credentials, the PostgreSQL connection string of the ``pg`` backend) reach terraform only through its
environment; ``command`` records their names, never their values. Terraform reads the project's own CLI
config (``<workspace_root>/terraformrc``: providers from the filesystem mirror only), never ~/.terraformrc.
Error diagnostics become ``TemporaryError`` (lock held, throttling, timeouts, 5xx) or ``PermanentError``
(everything else, e.g. configuration errors) carrying Terraform's own summary and detail.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from govcloud.errors import PermanentError, TemporaryError

Progress = Callable[[str, dict[str, Any]], None]
STREAMED = frozenset({"planned_change", "resource_drift", "apply_start", "apply_progress", "apply_complete", "apply_errored",
                      "change_summary", "diagnostic", "outputs"})
AWS_PROVIDER = ("hashicorp/aws", "5.100.0")
OPENSTACK_PROVIDER = ("terraform-provider-openstack/openstack", "~> 3.0")
REPO_MODULES = Path(__file__).resolve().parents[2] / "terraform" / "modules"
INSTANCE_TYPES = frozenset({"aws_instance", "openstack_compute_instance_v2"})
_STATUS = {"running": "ACTIVE", "pending": "BUILD", "stopping": "SHUTOFF", "stopped": "SHUTOFF", "shutting-down": "DELETED",
           "terminated": "DELETED", "active": "ACTIVE", "build": "BUILD", "shutoff": "SHUTOFF", "error": "ERROR"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_TEMPORARY = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"error acquiring the state lock", r"throttl", r"requestlimitexceeded", r"rate exceeded", r"too many requests",
    r"timeout", r"timed out", r"connection refused", r"connection reset", r"no such host", r"service ?unavailable",
    r"insufficientinstancecapacity", r"status ?code:? 5\d\d", r"internal ?error",
))


class StalePlan(PermanentError):
    """The saved plan no longer matches (file changed since approval, or the state moved on): plan again."""


class StateLocked(TemporaryError):
    """Another run holds the workspace's state lock (terraform's own: fcntl on the local state file, an
    advisory lock in the ``pg`` backend): whoever holds it is changing the workspace; come back later."""


# -- plain data in ---------------------------------------------------------------------------
@dataclass(frozen=True)
class InstanceSpec:
    """One VM of a workspace. ``size`` is an instance type / flavor name, ``image`` an AMI id / image
    name, ``network`` a subnet id (EC2) or subnet id for the fixed IP (OpenStack, optional there)."""

    name: str
    index: int
    ticket: str
    tenant: str
    system: str
    size: str
    image: str
    network: str
    zone: str | None = None
    private_ip: str | None = None
    server_group: str | None = None


@dataclass(frozen=True)
class Ec2Cloud:
    """An EC2-compatible third-party cloud. ``endpoints`` maps services (ec2, sts, iam) to URLs for
    clouds that are not AWS itself; ``skip_checks`` sets the provider's ``skip_*`` flags such clouds need.
    Credentials are not here: pass them as ``secret_env`` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)."""

    name: str
    region: str
    vpc_id: str
    endpoints: Mapping[str, str] = field(default_factory=dict)
    skip_checks: bool = False
    ssh_public_key: str | None = None
    key_name: str | None = None
    ssh_cidrs: tuple[str, ...] = ("10.0.0.0/8",)
    provider_version: str = AWS_PROVIDER[1]


@dataclass(frozen=True)
class OpenStackCloud:
    """An OpenStack cloud driven by Terraform: ``cloud`` is the clouds.yaml entry (the file reaches
    terraform through ``secret_env["OS_CLIENT_CONFIG_FILE"]``)."""

    name: str
    cloud: str
    region: str
    network_id: str
    security_group_ids: tuple[str, ...] = ()
    key_pair: str | None = None
    server_group_policy: str = "anti-affinity"
    provider_version: str = OPENSTACK_PROVIDER[1]


Cloud = Ec2Cloud | OpenStackCloud


@dataclass(frozen=True)
class Workspace:
    """One root module on disk. ``secret_env`` goes to terraform's environment only (never repr'd or written)."""

    tenant: str
    cloud: str
    directory: Path
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return f"{self.tenant}--{self.cloud}"


# -- plain data out --------------------------------------------------------------------------
@dataclass(frozen=True)
class Diagnostic:
    severity: str
    summary: str
    detail: str = ""
    address: str = ""

    def render(self) -> str:
        where = f" [{self.address}]" if self.address else ""
        detail = f": {' '.join(self.detail.split())}" if self.detail else ""
        return f"{self.summary}{where}{detail}"


@dataclass(frozen=True)
class Run:
    """A finished terraform process: its ident, directory, rc, status and parsed events."""

    ident: str
    directory: Path
    rc: int
    status: str
    events: tuple[dict[str, Any], ...]
    stdout: str
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True)
class PlannedChange:
    address: str
    action: str
    reason: str = ""


@dataclass(frozen=True)
class PlanSummary:
    """A saved plan: what approval shows and binds to (``sha256`` of ``planfile``)."""

    ident: str
    workspace: str
    planfile: Path
    sha256: str
    add: int
    change: int
    destroy: int
    changes: tuple[PlannedChange, ...]

    rc: int = 0
    """``terraform plan -detailed-exitcode``: 0 no changes, 2 changes present (1, an error, raises)."""

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy)

    @property
    def replaced(self) -> list[str]:
        return [c.address for c in self.changes if c.action == "replace"]

    @property
    def destroyed(self) -> list[str]:
        return [c.address for c in self.changes if c.action == "delete"]

    @property
    def flagged(self) -> list[str]:
        """Replaced or destroyed addresses: such a plan needs a second approver (issue 6)."""
        return self.replaced + self.destroyed


@dataclass(frozen=True)
class ResourceChange:
    """One resource of a saved plan's JSON (``terraform show -json PLAN``, ``resource_changes``). ``key`` is
    the ``for_each`` key — a VM name in govcloud's modules, so the instance and whatever else a VM has (its
    port) are known by it; ``actions`` as terraform gives them:
    ``("create",)``, ``("update",)``, ``("delete", "create")`` / ``("create", "delete")`` (replace),
    ``("delete",)``, ``("no-op",)``, ``("read",)``."""

    address: str
    type: str
    key: str | None
    actions: tuple[str, ...]
    reason: str = ""

    @property
    def instance(self) -> bool:
        """Whether this is a VM's instance (not its port, the tenant's security group, key pair…)."""
        return self.type in INSTANCE_TYPES

    @property
    def action(self) -> str:
        """One word: create, update, replace, delete, no-op, read (or terraform's own, e.g. forget)."""
        if set(self.actions) == {"delete", "create"}:
            return "replace"
        return "-".join(self.actions) or "no-op"


@dataclass(frozen=True)
class StateInstance:
    """A VM's instance in the state the plan was made from (refreshed: what the cloud reported)."""

    name: str
    id: str
    status: str
    """The cloud's word mapped to nova's: ACTIVE, BUILD, SHUTOFF, ERROR, DELETED (else upper-cased as given)."""
    address: str | None = None


@dataclass(frozen=True)
class PlanDetail:
    """What a saved plan would do, and the instances it was made against (``terraform show -json PLAN``)."""

    changes: tuple[ResourceChange, ...]
    """Resources the plan changes (no-op and read left out)."""
    instances: tuple[StateInstance, ...]
    """The VMs' instances in the refreshed state (a deleted instance is no longer there)."""


@dataclass(frozen=True)
class ApplyResult:
    ident: str
    workspace: str
    add: int
    change: int
    destroy: int
    completed: tuple[str, ...]


@dataclass(frozen=True)
class InstanceAddress:
    name: str
    id: str
    address: str | None


# -- rendering (pure) ------------------------------------------------------------------------
def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def schema_name(tenant: str, cloud: str) -> str:
    """PostgreSQL schema of a workspace's state in the ``pg`` backend (one per tenant × cloud)."""
    return "govcloud_" + re.sub(r"[^a-z0-9_]", "_", f"{tenant}__{cloud}".lower())


def render_root(tenant: str, cloud: Cloud, instances: Sequence[InstanceSpec], *, module_source: str, backend: str = "local") -> dict[str, Any]:
    """The root module as a JSON-syntax document. Deterministic (sorted) so a re-render changes nothing.

    ``backend``: ``local`` (state file in the workspace, locked with fcntl) or ``pg`` (state and locks in
    PostgreSQL; the connection string comes from ``PG_CONN_STR`` in the environment, never the file).
    """
    names = [i.name for i in instances]
    if len(set(names)) != len(names):
        raise PermanentError(f"workspace {tenant}--{cloud.name}: duplicate VM names {sorted({n for n in names if names.count(n) > 1})}")
    if any(i.tenant != tenant for i in instances):
        raise PermanentError(f"workspace {tenant}--{cloud.name}: instances of other tenants {sorted({i.tenant for i in instances} - {tenant})}")
    state = {"local": {"path": "terraform.tfstate"}} if backend == "local" else {"pg": {"schema_name": schema_name(tenant, cloud.name)}}
    if backend not in ("local", "pg"):
        raise PermanentError(f"unknown terraform backend {backend!r}: use local or pg")
    ordered = sorted(instances, key=lambda i: i.name)
    if isinstance(cloud, Ec2Cloud):
        source, provider = AWS_PROVIDER[0], "aws"
        config: dict[str, Any] = {"region": cloud.region}
        if cloud.endpoints:
            config["endpoints"] = dict(sorted(cloud.endpoints.items()))
        if cloud.skip_checks:
            config.update(skip_credentials_validation=True, skip_requesting_account_id=True, skip_metadata_api_check=True,
                          skip_region_validation=True)
        module = _drop_none({
            "source": module_source, "name_prefix": f"{tenant}-{cloud.name}", "vpc_id": cloud.vpc_id, "tenant": tenant,
            "ssh_public_key": cloud.ssh_public_key, "key_name": cloud.key_name, "ssh_cidrs": list(cloud.ssh_cidrs),
            "instances": {i.name: _drop_none({"ticket": i.ticket, "index": i.index, "system": i.system, "instance_type": i.size,
                                              "ami": i.image, "subnet_id": i.network, "private_ip": i.private_ip, "zone": i.zone})
                          for i in ordered},
        })
        version, key = cloud.provider_version, "ec2"
    else:
        source, provider = OPENSTACK_PROVIDER[0], "openstack"
        config = {"cloud": cloud.cloud, "region": cloud.region}
        groups = {i.server_group: cloud.server_group_policy for i in ordered if i.server_group}
        module = _drop_none({
            "source": module_source, "tenant": tenant, "network_id": cloud.network_id, "security_group_ids": list(cloud.security_group_ids),
            "key_pair": cloud.key_pair, "server_groups": dict(sorted(groups.items())),
            "instances": {i.name: _drop_none({"ticket": i.ticket, "index": i.index, "system": i.system, "flavor": i.size, "image": i.image,
                                              "zone": i.zone, "fixed_ip": i.private_ip, "subnet_id": i.network or None,
                                              "server_group": i.server_group}) for i in ordered},
        })
        version, key = cloud.provider_version, "openstack"
    return {
        "terraform": {"required_version": ">= 1.5", "required_providers": {provider: {"source": source, "version": version}}, "backend": state},
        "provider": {provider: config},
        "module": {key: module},
        "output": {"instances": {"value": f"${{module.{key}.instances}}", "description": "id and private_ip per VM name"}},
    }


def cli_config(mirror: Path) -> str:
    """The project's CLI config: providers from the filesystem mirror only (no ``direct {}``: a provider
    missing from the mirror fails fast instead of trying an unreachable registry)."""
    return f'provider_installation {{\n  filesystem_mirror {{\n    path = {json.dumps(str(mirror))}\n  }}\n}}\ndisable_checkpoint = true\n'


# -- helpers ---------------------------------------------------------------------------------
def new_ident() -> str:
    """Time-ordered and unique: ``20261126T170312-3f9a1c``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def classify(diagnostics: Sequence[Diagnostic], doing: str) -> TemporaryError | PermanentError:
    """Temporary only when every error is (a lock held, throttling, timeouts, 5xx); else permanent."""
    errors = [d for d in diagnostics if d.severity == "error"] or list(diagnostics)
    text = "; ".join(d.render() for d in errors)
    if any("saved plan is stale" in d.summary.lower() for d in errors):
        return StalePlan(f"{doing}: {text} (plan again and have it approved)")
    temporary = [any(p.search(f"{d.summary} {d.detail}") for p in _TEMPORARY) for d in errors]
    if errors and all(temporary):
        if any("state lock" in d.summary.lower() for d in errors):
            return StateLocked(f"{doing}: {text}", delay=15)
        return TemporaryError(f"{doing}: {text}", delay=30)
    return PermanentError(f"{doing}: {text}")


def _summary_counts(events: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    for event in reversed(events):
        if event.get("type") == "change_summary":
            changes = event.get("changes", {})
            return int(changes.get("add", 0)), int(changes.get("change", 0)), int(changes.get("remove", 0))
    return 0, 0, 0


def plan_detail(document: Mapping[str, Any], *, what: str = "plan") -> PlanDetail:
    """Parse ``terraform show -json PLAN`` (JSON output format 1.x; another major version is refused)."""
    version = str(document.get("format_version", ""))
    if version.split(".")[0] != "1":
        raise PermanentError(f"{what}: JSON plan format {version or '(none)'} is not one govcloud reads (1.x)")

    def change(item: Mapping[str, Any]) -> ResourceChange:
        index = item.get("index")
        return ResourceChange(str(item.get("address", "")), str(item.get("type", "")), index if isinstance(index, str) else None,
                              tuple(str(a) for a in item.get("change", {}).get("actions", ())), str(item.get("action_reason", "")))

    changes = tuple(c for c in (change(i) for i in document.get("resource_changes") or () if i.get("mode", "managed") == "managed")
                    if c.action not in ("no-op", "read"))
    instances = []
    for resource in _state_resources(document.get("prior_state", {}).get("values", {}).get("root_module", {})):
        if resource.get("type") not in INSTANCE_TYPES or not isinstance(resource.get("index"), str):
            continue
        values = resource.get("values") or {}
        raw = str(values.get("instance_state") or values.get("power_state") or "")
        instances.append(StateInstance(str(resource["index"]), str(values.get("id", "")), _STATUS.get(raw.lower(), raw.upper()),
                                       values.get("private_ip") or values.get("access_ip_v4") or None))
    return PlanDetail(changes, tuple(sorted(instances, key=lambda i: i.name)))


def _state_resources(module: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Managed resources of a state module and of its child modules, depth first."""
    for resource in module.get("resources") or ():
        if resource.get("mode", "managed") == "managed":
            yield resource
    for child in module.get("child_modules") or ():
        yield from _state_resources(child)


# -- the driver ------------------------------------------------------------------------------
class TerraformDriver:
    """Runs terraform for the workspaces under ``workspace_root``.

    ``pg_conn_str`` switches state to Terraform's ``pg`` backend (one schema per workspace, advisory
    locks); it is passed as ``PG_CONN_STR`` in terraform's environment, never rendered. Without it the
    local backend keeps ``terraform.tfstate`` in the workspace, locked by terraform for each run.
    """

    def __init__(self, *, workspace_root: Path, modules_dir: Path = REPO_MODULES, binary: str = "terraform",
                 mirror: Path = Path("/opt/tf-plugins"), pg_conn_str: str | None = None, lock_timeout: int = 60,
                 timeout: float = 3600.0, interrupt_grace: float = 60.0) -> None:
        self.workspace_root = workspace_root
        self.modules_dir = modules_dir
        self.binary = binary
        self.mirror = mirror
        self._pg_conn_str = pg_conn_str
        self.lock_timeout = lock_timeout
        self.timeout = timeout
        self.interrupt_grace = interrupt_grace

    @property
    def backend(self) -> str:
        return "pg" if self._pg_conn_str else "local"

    # -- workspaces ----------------------------------------------------------------------
    def workspace(self, tenant: str, cloud: str, *, secret_env: Mapping[str, str] | None = None) -> Workspace:
        """The workspace of tenant × cloud (whether or not rendered yet)."""
        for part in (tenant, cloud):
            if not _NAME.match(part):
                raise PermanentError(f"{part!r} cannot name a terraform workspace: use lower-case letters, digits, '-' and '_'")
        return Workspace(tenant, cloud, self.workspace_root / f"{tenant}--{cloud}", dict(secret_env or {}))

    def find_workspace(self, tenant: str, cloud: str, *, secret_env: Mapping[str, str] | None = None) -> Workspace | None:
        """The workspace if it has been rendered, else None."""
        ws = self.workspace(tenant, cloud, secret_env=secret_env)
        return ws if (ws.directory / "main.tf.json").exists() else None

    def workspaces(self) -> Iterator[Workspace]:
        """Rendered workspaces (without secrets: pass them again through ``workspace``)."""
        for path in sorted(self.workspace_root.glob("*--*/main.tf.json")):
            tenant, _, cloud = path.parent.name.partition("--")
            yield Workspace(tenant, cloud, path.parent)

    def render(self, tenant: str, cloud: Cloud, instances: Sequence[InstanceSpec], *,
               secret_env: Mapping[str, str] | None = None) -> Workspace:
        """Write ``main.tf.json`` for tenant × cloud (only when its content changes)."""
        ws = self.workspace(tenant, cloud.name, secret_env=secret_env)
        key = "ec2" if isinstance(cloud, Ec2Cloud) else "openstack"
        ws.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        source = os.path.relpath(self.modules_dir / key, ws.directory)
        document = render_root(tenant, cloud, instances, module_source=source if source.startswith("..") else f"./{source}",
                               backend=self.backend)
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        target = ws.directory / "main.tf.json"
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            write_atomic(target, text)
        return ws

    # -- terraform commands --------------------------------------------------------------
    def init(self, ws: Workspace, *, progress: Progress | None = None) -> Run:
        """``terraform init`` from the mirror; also run by ``plan`` whenever providers, modules or backend changed."""
        self._check_providers(ws)
        run = self._run(ws, "init", ["init", "-json", "-input=false", f"-lock-timeout={self.lock_timeout}s"], progress)
        write_atomic(ws.directory / ".terraform" / "govcloud-init", self._init_stamp(ws))
        return run

    def plan(self, ws: Workspace, *, destroy: bool = False, progress: Progress | None = None,
             lock_timeout: int | None = None) -> PlanSummary:
        """Save a plan (refreshed against the cloud) in the run directory; its summary and sha256 are what an
        approver signs off. ``lock_timeout``: seconds to wait for another run's state lock (default the
        driver's; 0 for an observer that would rather come back later: ``StateLocked``)."""
        self._ensure_init(ws, progress)
        ident, directory = self._new_run(ws)
        planfile = directory / "plan.tfplan"
        wait = self.lock_timeout if lock_timeout is None else lock_timeout
        args = ["plan", "-json", "-input=false", "-detailed-exitcode", f"-lock-timeout={wait}s", f"-out={planfile}"]
        run = self._run(ws, "plan", [*args, "-destroy"] if destroy else args, progress, ident=ident, ok=(0, 2))
        changes = tuple(PlannedChange(str(e["change"]["resource"]["addr"]), str(e["change"]["action"]), str(e["change"].get("reason", "")))
                        for e in run.events if e.get("type") == "planned_change")
        add, change, remove = _summary_counts(run.events)
        return PlanSummary(ident, ws.name, planfile, sha256_file(planfile), add, change, remove, changes, rc=run.rc)

    def show_plan(self, ws: Workspace, planfile: Path) -> PlanDetail:
        """The saved plan as data (``terraform show -json PLAN``): its resource changes and the VMs' instances
        in the refreshed state it was made against."""
        run = self._run(ws, "show", ["show", "-json", str(planfile)], None)
        try:
            document = json.loads(run.stdout)
        except json.JSONDecodeError as exc:
            raise PermanentError(f"terraform show -json of {planfile} (run {run.ident}) is not JSON: {run.stdout[:200]!r}") from exc
        return plan_detail(document, what=f"plan {planfile} of {ws.name}")

    def apply(self, ws: Workspace, planfile: Path, *, sha256: str, progress: Progress | None = None) -> ApplyResult:
        """Apply exactly the approved plan: refuse (``StalePlan``) if the file is not the one approved;
        terraform itself refuses a plan whose state has moved on."""
        if not planfile.exists() or sha256_file(planfile) != sha256:
            raise StalePlan(f"plan {planfile} of {ws.name} is missing or not the approved one (sha256 {sha256[:12]}…): plan again")
        self._ensure_init(ws, progress)
        run = self._run(ws, "apply", ["apply", "-json", "-input=false", f"-lock-timeout={self.lock_timeout}s", str(planfile)], progress)
        add, change, remove = _summary_counts(run.events)
        done = tuple(str(e["hook"]["resource"]["addr"]) for e in run.events if e.get("type") == "apply_complete")
        return ApplyResult(run.ident, ws.name, add, change, remove, done)

    def outputs(self, ws: Workspace) -> dict[str, InstanceAddress]:
        """Instance id and private address per VM name, from the state (for govcloud's store and Ansible)."""
        run = self._run(ws, "output", ["output", "-json"], None)
        try:
            values = json.loads(run.stdout or "{}")
        except json.JSONDecodeError as exc:
            raise PermanentError(f"terraform output of {ws.name} (run {run.ident}) is not JSON: {run.stdout[:200]!r}") from exc
        instances = values.get("instances", {}).get("value") or {}
        return {name: InstanceAddress(name, str(vm["id"]), vm.get("private_ip") or None) for name, vm in sorted(instances.items())}

    def state_version(self, ws: Workspace) -> tuple[str, int]:
        """(lineage, serial) of the workspace's current state (``terraform state pull``; ``("", 0)`` before
        the first apply): a saved plan made against another version is stale."""
        self._ensure_init(ws, None)
        run = self._run(ws, "state-pull", ["state", "pull"], None)
        try:
            state = json.loads(run.stdout) if run.stdout.strip() else {}
        except json.JSONDecodeError as exc:
            raise PermanentError(f"terraform state pull of {ws.name} (run {run.ident}) is not JSON: {run.stdout[:200]!r}") from exc
        return str(state.get("lineage", "")), int(state.get("serial", 0))

    @staticmethod
    def plan_state_version(planfile: Path) -> tuple[str, int]:
        """(lineage, serial) of the state a saved plan was made against (the plan file's ``tfstate``)."""
        try:
            with zipfile.ZipFile(planfile) as archive:
                state = json.loads(archive.read("tfstate"))
        except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise StalePlan(f"plan {planfile} is missing or unreadable ({exc}): plan again") from exc
        return str(state.get("lineage", "")), int(state.get("serial", 0))

    def destroy(self, ws: Workspace, *, progress: Progress | None = None) -> ApplyResult:
        """Retire everything of the workspace: ``plan -destroy`` then apply that plan."""
        plan = self.plan(ws, destroy=True, progress=progress)
        return self.apply(ws, plan.planfile, sha256=plan.sha256, progress=progress)

    # -- machinery -----------------------------------------------------------------------
    def _init_stamp(self, ws: Workspace) -> str:
        document = json.loads((ws.directory / "main.tf.json").read_text(encoding="utf-8"))
        relevant = {"terraform": document.get("terraform"), "sources": {k: v.get("source") for k, v in document.get("module", {}).items()},
                    "mirror": str(self.mirror)}
        return json.dumps(relevant, sort_keys=True)

    def _ensure_init(self, ws: Workspace, progress: Progress | None) -> None:
        stamp = ws.directory / ".terraform" / "govcloud-init"
        if not stamp.exists() or stamp.read_text(encoding="utf-8") != self._init_stamp(ws):
            self.init(ws, progress=progress)

    def _check_providers(self, ws: Workspace) -> None:
        """A missing binary, mirror or provider is named with its remedy before terraform says it obscurely."""
        if shutil.which(self.binary) is None:
            raise PermanentError(f"terraform binary {self.binary!r} not found on PATH: install terraform 1.11 "
                                 "(the machine image ships it at /usr/local/bin/terraform)")
        if not (ws.directory / "main.tf.json").exists():
            raise PermanentError(f"workspace {ws.name} has not been rendered ({ws.directory}/main.tf.json missing)")
        if not self.mirror.is_dir():
            raise PermanentError(f"terraform provider mirror {self.mirror} is missing: it comes with the machine image "
                                 "(no registry is reachable); restore it or pass mirror=")
        document = json.loads((ws.directory / "main.tf.json").read_text(encoding="utf-8"))
        for name, requirement in document.get("terraform", {}).get("required_providers", {}).items():
            path = self.mirror / "registry.terraform.io" / requirement["source"]
            if not path.is_dir():
                raise PermanentError(f"provider {requirement['source']} ({name}) is not in the mirror {self.mirror}: "
                                     f"add {path}/<version>/<os_arch>/ (none of {self.mirror} can come from a registry here)")

    def _env(self, ws: Workspace) -> tuple[dict[str, str], dict[str, str]]:
        """Terraform's environment, and the same with secrets masked (for the ``command`` file)."""
        self.workspace_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        config = self.workspace_root / "terraformrc"
        if not config.exists() or config.read_text(encoding="utf-8") != cli_config(self.mirror):
            write_atomic(config, cli_config(self.mirror))
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith(("TF_", "AWS_", "OS_", "PG")) and k not in ("CHECKPOINT_DISABLE",)}
        ours = {"TF_CLI_CONFIG_FILE": str(config), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
        hidden = dict(ws.secret_env)
        if self._pg_conn_str:
            hidden["PG_CONN_STR"] = self._pg_conn_str
        return {**inherited, **ours, **hidden}, {**ours, **{k: "<secret>" for k in hidden}}

    def _new_run(self, ws: Workspace) -> tuple[str, Path]:
        while True:
            ident = new_ident()
            directory = ws.directory / "runs" / ident
            try:
                directory.mkdir(parents=True, exist_ok=False)
            except FileExistsError:
                continue
            return ident, directory

    def _run(self, ws: Workspace, action: str, args: list[str], progress: Progress | None, *,
             ident: str | None = None, ok: tuple[int, ...] = (0,)) -> Run:
        """One terraform process: stream its ``-json`` events, record everything, translate failures."""
        if shutil.which(self.binary) is None:
            raise PermanentError(f"terraform binary {self.binary!r} not found on PATH: install terraform 1.11")
        if ident is None:
            ident, directory = self._new_run(ws)
        else:
            directory = ws.directory / "runs" / ident
        env, shown = self._env(ws)
        argv = [self.binary, *args]
        write_atomic(directory / "command", json.dumps({"argv": argv, "cwd": str(ws.directory), "env": shown,
                                                        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
        write_atomic(directory / "status", json.dumps({"status": "running"}) + "\n")
        with (directory / "stderr").open("w", encoding="utf-8") as stderr:
            proc = subprocess.Popen(argv, cwd=ws.directory, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                    text=True, encoding="utf-8", errors="replace", start_new_session=True)
            timed_out = threading.Event()
            watchdog = threading.Timer(self.timeout, self._interrupt, (proc, timed_out))
            watchdog.daemon = True
            watchdog.start()
            try:
                assert proc.stdout is not None
                events, stdout = self._stream(proc.stdout, directory, {"ident": ident, "workspace": ws.name, "action": action}, progress)
                rc = proc.wait()
            except BaseException:  # the callback raised or we were interrupted: do not leave terraform holding the lock
                watchdog.cancel()
                self._interrupt(proc, timed_out)
                write_atomic(directory / "status", json.dumps({"status": "interrupted", "action": action}) + "\n")
                raise
            finally:
                watchdog.cancel()
                if proc.stdout is not None:
                    proc.stdout.close()
        diagnostics = tuple(Diagnostic(str(d.get("severity", "")), str(d.get("summary", "")), str(d.get("detail", "") or ""),
                                       str(d.get("address", "") or ""))
                            for e in events if e.get("type") == "diagnostic" for d in [e.get("diagnostic", {})])
        status = "timeout" if timed_out.is_set() else "successful" if rc in ok else "failed"
        write_atomic(directory / "rc", f"{rc}\n")
        write_atomic(directory / "status", json.dumps({"status": status, "rc": rc, "action": action,
                                                       "errors": [d.render() for d in diagnostics if d.severity == "error"]}) + "\n")
        run = Run(ident, directory, rc, status, tuple(events), stdout, diagnostics)
        doing = f"terraform {action} of {ws.name} (run {ident})"
        if status == "timeout":
            raise TemporaryError(f"{doing}: no result after {self.timeout:.0f} s; interrupted (lock released)", delay=60)
        if status == "failed":
            errors = [d for d in diagnostics if d.severity == "error"]
            if errors:
                raise classify(errors, doing)
            tail = (directory / "stderr").read_text(encoding="utf-8", errors="replace").strip()[-2000:]
            raise PermanentError(f"{doing}: exit code {rc}: {tail or 'no diagnostics'} (see {directory})")
        return run

    @staticmethod
    def _stream(lines: IO[str], directory: Path, base: Mapping[str, str], progress: Progress | None) -> tuple[list[dict[str, Any]], str]:
        events: list[dict[str, Any]] = []
        raw: list[str] = []
        with (directory / "stdout").open("w", encoding="utf-8") as out, (directory / "events.jsonl").open("w", encoding="utf-8") as log:
            for line in lines:
                out.write(line)
                raw.append(line)
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(event, dict) or "type" not in event:
                    continue
                events.append(event)
                log.write(json.dumps(event, sort_keys=True) + "\n")
                log.flush()
                if progress is not None and event["type"] in STREAMED:
                    progress(str(event["type"]), {**base, **event})
        return events, "".join(raw)

    def _interrupt(self, proc: subprocess.Popen[str], flag: threading.Event) -> None:
        """SIGINT lets terraform stop gracefully and release its state lock; SIGKILL after the grace period."""
        flag.set()
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=self.interrupt_grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
