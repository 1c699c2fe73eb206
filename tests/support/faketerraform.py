"""A fake Terraform driver for unit tests of the engine (``terraform_path``, ``tf_reconcile``): the real
driver's methods over an in-memory "cloud" — state per workspace with a lineage and a serial, plan files
as JSON that remember what they would do. Tests change ``state`` behind its back as the cloud's own API
would (delete an instance, stop it, change its size) and the next ``plan`` sees it, as terraform's refresh
does. (The real driver against terraform + moto: tests/integration/.)"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from govcloud.drivers.terraform import (
    ApplyResult,
    InstanceAddress,
    InstanceSpec,
    PlanDetail,
    PlannedChange,
    PlanSummary,
    ResourceChange,
    StalePlan,
    StateInstance,
    StateLocked,
    StateResource,
    Workspace,
    sha256_file,
    workspace_lock,
)

SECRETS = {"GOVCLOUD_TP_ECLOUD_ACCESS_KEY": "AK-test", "GOVCLOUD_TP_ECLOUD_SECRET_KEY": "SK-test-not-real"}
"""The sample topology's tp-ecloud credentials, as the engine reads them from its environment."""
INSTANCE = 'module.ec2.aws_instance.vm["{}"]'
_ACTIONS = {"create": ("create",), "update": ("update",), "delete": ("delete",), "replace": ("delete", "create")}


class FakeTerraform:
    """The driver's methods over an in-memory "cloud": state per workspace with a serial, plan files as JSON."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail_apply: Exception | None = None
        self.extra_changes: list[PlannedChange] = []
        self.secret_envs: list[Mapping[str, str]] = []
        self.locked: set[str] = set()
        """Workspaces whose state lock another run holds: a plan with ``lock_timeout=0`` is refused."""
        self.lock_timeouts: list[int | None] = []
        self._runs = 0
        self.hold: threading.Event | None = None
        """When set, ``plan`` waits for it (a cloud whose API hangs), at most 30 s."""
        self.lock_wait = 5.0
        """Seconds a ticket run waits for govcloud's workspace lock (the real driver's ``lock_wait``)."""
        self.rendered = threading.Event()
        """Set by every ``render`` (a test that races a run against another waits for it)."""
        self.after_render: threading.Event | None = None
        """When set, ``render`` waits for it afterwards, at most 30 s (a run paused between render and plan)."""

    def workspace(self, tenant: str, cloud: str, *, secret_env: Mapping[str, str] | None = None) -> Workspace:
        return Workspace(tenant, cloud, self.root / f"{tenant}--{cloud}", dict(secret_env or {}))

    def find_workspace(self, tenant: str, cloud: str, *, secret_env: Mapping[str, str] | None = None) -> Workspace | None:
        ws = self.workspace(tenant, cloud, secret_env=secret_env)
        return ws if (ws.directory / "main.json").exists() else None

    def lock(self, ws: Workspace, *, wait: float | None = None, holder: str = "") -> AbstractContextManager[None]:
        """The real driver's lock (flock on a file in the workspace directory)."""
        return workspace_lock(ws.directory, ws.name, wait=self.lock_wait if wait is None else wait, holder=holder)

    def render(self, tenant: str, cloud: Any, instances: Sequence[InstanceSpec], *, secret_env: Mapping[str, str] | None = None) -> Workspace:
        ws = self.workspace(tenant, cloud.name, secret_env=secret_env)
        ws.directory.mkdir(parents=True, exist_ok=True)
        (ws.directory / "main.json").write_text(json.dumps({i.name: dataclasses.asdict(i) for i in instances}, sort_keys=True))
        self.secret_envs.append(dict(secret_env or {}))
        self.calls.append("render")
        self.rendered.set()
        if self.after_render is not None:
            self.after_render.wait(30)
        return ws

    def find_state(self, ws: Workspace) -> tuple[StateResource, ...] | None:
        """As the real driver: nothing (no call recorded) for an unrendered workspace or an empty state;
        else its instances and ``resources`` (address → id: what no VM owns, e.g. the security group)."""
        live = self.state.get(ws.name)
        if not (ws.directory / "main.json").exists() or live is None or not (live["instances"] or live.get("resources")):
            return None
        self.calls.append("show-state")
        found = [StateResource(INSTANCE.format(n), "aws_instance", n, i["id"], i.get("status", "ACTIVE")) for n, i in live["instances"].items()]
        found += [StateResource(a, a.split(".")[-2], None, i) for a, i in live.get("resources", {}).items()]
        return tuple(sorted(found, key=lambda r: r.address))

    def _live(self, ws: Workspace) -> dict[str, Any]:
        return self.state.setdefault(ws.name, {"serial": 0, "lineage": "", "instances": {}})

    def plan(self, ws: Workspace, *, destroy: bool = False, progress: Any = None, lock_timeout: int | None = None) -> PlanSummary:
        self.calls.append("plan")
        self.lock_timeouts.append(lock_timeout)
        if self.hold is not None:
            self.hold.wait(30)
        if ws.name in self.locked and lock_timeout == 0:
            raise StateLocked(f"terraform plan of {ws.name}: Error acquiring the state lock", delay=15)
        desired = {} if destroy else json.loads((ws.directory / "main.json").read_text())
        live = self._live(ws)
        changes = [PlannedChange(INSTANCE.format(n), "create") for n in sorted(set(desired) - set(live["instances"]))]
        changes += [PlannedChange(INSTANCE.format(n), "delete") for n in sorted(set(live["instances"]) - set(desired))]
        changes += [PlannedChange(INSTANCE.format(n), "update") for n in sorted(set(desired) & set(live["instances"]))
                    if desired[n]["size"] != live["instances"][n]["size"]]
        changes += self.extra_changes
        if destroy:
            changes += [PlannedChange(a, "delete") for a in sorted(live.get("resources", {}))]
        self._runs += 1
        run = ws.directory / "runs" / f"run-{self._runs}"
        run.mkdir(parents=True)
        planfile = run / "plan.tfplan"
        planfile.write_text(json.dumps({"serial": live["serial"], "lineage": live["lineage"], "desired": desired, "destroy": destroy,
                                        "changes": [[c.address, c.action] for c in changes],
                                        "instances": {n: {"id": i["id"], "status": i.get("status", "ACTIVE")}
                                                      for n, i in live["instances"].items()}}))
        count = {a: sum(c.action == a for c in changes) for a in ("create", "update", "delete", "replace")}
        return PlanSummary(run.name, ws.name, planfile, sha256_file(planfile), count["create"] + count["replace"], count["update"],
                           count["delete"] + count["replace"], tuple(changes), rc=2 if changes else 0)

    def show_plan(self, ws: Workspace, planfile: Path) -> PlanDetail:
        self.calls.append("show")
        data = json.loads(planfile.read_text())
        changes = []
        for address, action in data["changes"]:
            key = re.search(r'\["(.+)"\]$', address)
            kind = address.split(".")[2] if address.startswith("module.") else address.split(".")[0]
            changes.append(ResourceChange(address, kind, key.group(1) if key else None, _ACTIONS[action]))
        instances = tuple(StateInstance(n, i["id"], i["status"]) for n, i in sorted(data["instances"].items()))
        return PlanDetail(tuple(changes), instances)

    def plan_state_version(self, planfile: Path) -> tuple[str, int]:
        data = json.loads(planfile.read_text())
        return data["lineage"], data["serial"]

    def state_version(self, ws: Workspace) -> tuple[str, int]:
        live = self._live(ws)
        return live["lineage"], live["serial"]

    def apply(self, ws: Workspace, planfile: Path, *, sha256: str, progress: Any = None) -> ApplyResult:
        self.calls.append("apply")
        if sha256_file(planfile) != sha256:
            raise StalePlan("not the approved plan")
        if self.fail_apply is not None:
            raise self.fail_apply
        data, live = json.loads(planfile.read_text()), self._live(ws)
        if (data["lineage"], data["serial"]) != (live["lineage"], live["serial"]):
            raise StalePlan("Saved plan is stale")
        before = live["instances"]
        live["serial"] += 1
        live["lineage"] = "lineage-1"
        live["instances"] = {n: {**spec, "id": before[n]["id"] if n in before else _new_id(n, live["serial"]),
                                 **({"status": before[n]["status"]} if "status" in before.get(n, {}) else {})}
                             for n, spec in data["desired"].items()}
        if data.get("destroy"):
            live.pop("resources", None)
        return ApplyResult(f"apply-{len(self.calls)}", ws.name, len(data["desired"]), 0, 0, ())

    def destroy(self, ws: Workspace, *, progress: Any = None) -> ApplyResult:
        plan = self.plan(ws, destroy=True)
        return self.apply(ws, plan.planfile, sha256=plan.sha256)

    def outputs(self, ws: Workspace) -> dict[str, InstanceAddress]:
        return {n: InstanceAddress(n, i["id"], i.get("private_ip")) for n, i in self._live(ws)["instances"].items()}


def _new_id(name: str, serial: int) -> str:
    """A fresh instance id (a recreated instance gets another one, as in a real cloud)."""
    return "i-" + hashlib.sha1(f"{name}:{serial}".encode()).hexdigest()[:8]
