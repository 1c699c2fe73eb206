"""``TerraformDriver``: the only code that runs the ``terraform`` binary.

The engine calls ``render`` → ``plan`` (saved plan file + summary + sha256, what approval binds to) →
``apply`` (exactly that saved plan) → ``outputs`` (addresses for the Ansible step); ``destroy`` retires a
workspace. What it writes and parses is plain data from ``render`` and ``output``.

Why a thin driver over ``terraform … -json`` and not python-terraform: python-terraform 0.10.1 predates
Terraform 1.0 (``destroy`` passes the removed ``-force``, ``apply`` prompts, ``plan`` raises on rc 2) and
cannot stream. The machine-readable UI streams ``planned_change``, ``apply_*``, ``change_summary`` and
``diagnostic`` events: each goes to the injected ``progress(event, data)`` callback and to the run's
``events.jsonl``. Every run has an ident and a directory (``runs/<ident>/``: ``command``, ``stdout``,
``stderr``, ``events.jsonl``, ``rc``, ``status``; small files written atomically). Secrets (cloud
credentials, the PostgreSQL connection string of the ``pg`` backend) reach terraform only through its
environment; ``command`` records their names, never their values. Terraform reads the project's own CLI
config (``<workspace_root>/terraformrc``, see ``render.cli_config``), never ~/.terraformrc.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from govcloud.drivers.terraform.files import new_ident, sha256_file, write_atomic
from govcloud.drivers.terraform.lock import workspace_lock
from govcloud.drivers.terraform.output import (
    ApplyResult,
    Diagnostic,
    InstanceAddress,
    PlanDetail,
    PlanSummary,
    StalePlan,
    StateResource,
    classify,
    completed_addresses,
    event_diagnostics,
    plan_detail,
    planned_changes,
    state_detail,
    summary_counts,
)
from govcloud.drivers.terraform.render import Cloud, Ec2Cloud, InstanceSpec, Workspace, cli_config, render_root
from govcloud.errors import PermanentError, TemporaryError

Progress = Callable[[str, dict[str, Any]], None]
STREAMED = frozenset({"planned_change", "resource_drift", "apply_start", "apply_progress", "apply_complete", "apply_errored",
                      "change_summary", "diagnostic", "outputs"})
REPO_MODULES = Path(__file__).resolve().parents[3] / "terraform" / "modules"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


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


class TerraformDriver:
    """Runs terraform for the workspaces under ``workspace_root``.

    ``pg_conn_str`` switches state to Terraform's ``pg`` backend (one schema per workspace, advisory
    locks); it is passed as ``PG_CONN_STR`` in terraform's environment, never rendered. Without it the
    local backend keeps ``terraform.tfstate`` in the workspace, locked by terraform for each run.
    ``lock_wait``: seconds a ticket run waits for govcloud's own workspace lock (``lock``).
    """

    def __init__(self, *, workspace_root: Path, modules_dir: Path = REPO_MODULES, binary: str = "terraform",
                 mirror: Path = Path("/opt/tf-plugins"), pg_conn_str: str | None = None, lock_timeout: int = 60,
                 timeout: float = 3600.0, interrupt_grace: float = 60.0, lock_wait: float = 600.0) -> None:
        self.workspace_root = workspace_root
        self.modules_dir = modules_dir
        self.binary = binary
        self.mirror = mirror
        self._pg_conn_str = pg_conn_str
        self.lock_timeout = lock_timeout
        self.timeout = timeout
        self.interrupt_grace = interrupt_grace
        self.lock_wait = lock_wait

    @property
    def backend(self) -> str:
        return "pg" if self._pg_conn_str else "local"

    # -- workspaces ----------------------------------------------------------------------
    def workspace(self, tenant: str, cloud: str, *, secret_env: Mapping[str, str] | None = None) -> Workspace:
        """The workspace of tenant × cloud (whether or not rendered yet)."""
        for part in (tenant, cloud):
            if not _NAME.fullmatch(part):
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

    def lock(self, ws: Workspace, *, wait: float | None = None, holder: str = "") -> AbstractContextManager[None]:
        """govcloud's lock on the workspace's files, to hold across render → plan → apply (``lock.py``: flock
        on a file in the workspace directory, shared by the CLI and the daemon of this host). ``wait``:
        seconds (default ``lock_wait``; 0 for an observer that skips a busy workspace): ``WorkspaceBusy``."""
        return workspace_lock(ws.directory, ws.name, wait=self.lock_wait if wait is None else wait, holder=holder)

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
        add, change, remove = summary_counts(run.events)
        return PlanSummary(ident, ws.name, planfile, sha256_file(planfile), add, change, remove, planned_changes(run.events), rc=run.rc)

    def show_plan(self, ws: Workspace, planfile: Path) -> PlanDetail:
        """The saved plan as data (``terraform show -json PLAN``): its resource changes and the VMs' instances
        in the refreshed state it was made against."""
        run = self._run(ws, "show", ["show", "-json", str(planfile)], None)
        try:
            document = json.loads(run.stdout)
        except json.JSONDecodeError as exc:
            raise PermanentError(f"terraform show -json of {planfile} (run {run.ident}) is not JSON: {run.stdout[:200]!r}") from exc
        return plan_detail(document, what=f"plan {planfile} of {ws.name}")

    def find_state(self, ws: Workspace) -> tuple[StateResource, ...] | None:
        """The managed resources of the workspace's current state; None when it has no state or an empty one.

        Finding nothing costs no terraform run: an unrendered workspace is None, and with the local backend
        ``terraform.tfstate`` is read first (absent, empty or ``"resources": []`` → None). Only a state that
        lists resources is read through ``terraform show -json`` (the documented format, not the state
        file's internal one). The ``pg`` backend has no local file: a rendered workspace is always asked."""
        if not (ws.directory / "main.tf.json").exists():
            return None
        if self.backend == "local":
            path = ws.directory / "terraform.tfstate"
            try:
                text = path.read_text(encoding="utf-8") if path.exists() else ""
                raw = json.loads(text) if text.strip() else {"version": 4, "resources": []}
            except (OSError, json.JSONDecodeError) as exc:
                raise PermanentError(f"state {path} of {ws.name} is not readable JSON ({exc}): look at it before anything "
                                     "applies in that workspace") from exc
            if isinstance(raw, dict) and raw.get("version") == 4 and not raw.get("resources"):
                return None
        self._ensure_init(ws, None)
        run = self._run(ws, "show-state", ["show", "-json"], None)
        try:
            document = json.loads(run.stdout)
        except json.JSONDecodeError as exc:
            raise PermanentError(f"terraform show -json of {ws.name} (run {run.ident}) is not JSON: {run.stdout[:200]!r}") from exc
        return state_detail(document, what=f"state of {ws.name}") or None

    def apply(self, ws: Workspace, planfile: Path, *, sha256: str, progress: Progress | None = None) -> ApplyResult:
        """Apply exactly the approved plan: refuse (``StalePlan``) if the file is not the one approved;
        terraform itself refuses a plan whose state has moved on."""
        if not planfile.exists() or sha256_file(planfile) != sha256:
            raise StalePlan(f"plan {planfile} of {ws.name} is missing or not the approved one (sha256 {sha256[:12]}…): plan again")
        self._ensure_init(ws, progress)
        run = self._run(ws, "apply", ["apply", "-json", "-input=false", f"-lock-timeout={self.lock_timeout}s", str(planfile)], progress)
        add, change, remove = summary_counts(run.events)
        return ApplyResult(run.ident, ws.name, add, change, remove, completed_addresses(run.events))

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
        events, stdout, rc, timed_out = self._execute(ws, argv, env, directory, action=action, ident=ident, progress=progress)
        diagnostics = event_diagnostics(events)
        status = "timeout" if timed_out else "successful" if rc in ok else "failed"
        write_atomic(directory / "rc", f"{rc}\n")
        write_atomic(directory / "status", json.dumps({"status": status, "rc": rc, "action": action,
                                                       "errors": [d.render() for d in diagnostics if d.severity == "error"]}) + "\n")
        run = Run(ident, directory, rc, status, tuple(events), stdout, diagnostics)
        self._raise_unless_successful(run, f"terraform {action} of {ws.name} (run {ident})")
        return run

    def _execute(self, ws: Workspace, argv: list[str], env: Mapping[str, str], directory: Path, *, action: str, ident: str,
                 progress: Progress | None) -> tuple[list[dict[str, Any]], str, int, bool]:
        """Start terraform and stream its output until it exits: (events, stdout, rc, whether the watchdog
        interrupted it after ``timeout``). Terraform gets its own session, so ``_interrupt`` signals its process group
        (terraform and its providers), never govcloud's."""
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
        return events, stdout, rc, timed_out.is_set()

    def _raise_unless_successful(self, run: Run, doing: str) -> None:
        """A timed-out run is temporary; a failed one is classified by its error diagnostics, else permanent
        with the tail of its stderr."""
        if run.status == "timeout":
            raise TemporaryError(f"{doing}: no result after {self.timeout:.0f} s; interrupted (lock released)", delay=60)
        if run.status == "failed":
            errors = [d for d in run.diagnostics if d.severity == "error"]
            if errors:
                raise classify(errors, doing)
            tail = (run.directory / "stderr").read_text(encoding="utf-8", errors="replace").strip()[-2000:]
            raise PermanentError(f"{doing}: exit code {run.rc}: {tail or 'no diagnostics'} (see {run.directory})")

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
