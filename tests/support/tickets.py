"""Ticket files and engine contexts for tests that drive the main job."""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from govcloud.engine.context import EngineContext, build
from govcloud.settings import Settings
from govcloud.store import Store

REPO = Path(__file__).resolve().parents[2]


def no_fencing(tmp_path: Path) -> dict[str, str]:
    """Settings' environment with a fencing file that does not exist (method ``none`` everywhere): the sample
    inventory/fencing.yaml fences with the devcloud's agent, and the fake cloud's hosts share its host names —
    a unit test must never power the shared devcloud's computes off."""
    return {"GOVCLOUD_FENCING": str(tmp_path / "fencing.yaml")}


def unique_id(prefix: str = "it") -> str:
    """Ticket ids are unique forever (also across test runs on one devcloud)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_ticket(directory: Path, *, tenant: str, system: str, requester: str, vms: list[dict[str, Any]],
                 ticket_id: str | None = None, protection: str | None = None, expires: str = "2027-12-31",
                 kind: str = "create", target: str | None = None, quota: dict[str, Any] | None = None,
                 roles: Sequence[str] = ("baseline",), variables: dict[str, Any] | None = None) -> tuple[str, Path]:
    """A ticket as a department would write it (create, resize or delete); returns (id, path)."""
    ticket_id = ticket_id or unique_id()
    data: dict[str, Any] = {"version": 1, "id": ticket_id, "tenant": tenant, "system": system, "requester": requester,
                            "kind": kind, "expires": datetime.date.fromisoformat(expires), "reason": "集成测试", "roles": list(roles)}
    if variables:
        data["vars"] = variables
    if vms:
        data["vms"] = [{"image": "debian-12", "network": "gov-shared", **vm} for vm in vms]
    if target:
        data["target"] = target
    if quota:
        data["quota"] = quota
    if protection:
        data["protection"] = protection
    path = directory / f"{ticket_id}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return ticket_id, path


def open_store(db_url: str) -> Store:
    """The store as govcloud's own processes open it: with the audit key and anchor of the environment
    (tests/conftest.py points them at a session directory), so records this test's process appends chain
    on to those of the CLI and daemons it starts."""
    return Store.for_settings(Settings.from_env().with_overrides(db=db_url))


def engine(db_url: str, user: str, *, store: Store | None = None, state_dir: Path | None = None,
           ssh_key: Path | None = None) -> EngineContext:
    """An engine context on the repository's sample data, a given store and acting user (and, for
    configuration tests, a state directory for run directories and the SSH key of the test hosts)."""
    settings = Settings.from_env().with_overrides(root=str(REPO), db=db_url, user=user)
    if state_dir is not None:
        settings = dataclasses.replace(settings, state_dir=state_dir)
    if ssh_key is not None:
        settings = dataclasses.replace(settings, configure=dataclasses.replace(settings.configure, ssh_key=ssh_key))
    return build(settings, store=store)
