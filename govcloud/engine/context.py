"""Everything one engine run needs, built once by the CLI or the daemon and passed in."""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from govcloud.drivers.base import ComputeDriver, Endpoint
from govcloud.files import private_dir
from govcloud.model.access import acting_user
from govcloud.model.endpoints import Endpoints, load_overlay, resolve
from govcloud.model.parsed import DesiredState
from govcloud.model.quotas import overridden
from govcloud.model.state import load_state
from govcloud.settings import DEFAULT_PROFILE, Settings
from govcloud.store import Store
from govcloud.store.tickets import overrides

Clock = Callable[[], datetime.datetime]
Progress = Callable[[str, dict[str, Any]], None]
"""``progress(event, data)``: events ``vm``, ``ticket``, ``step``; the CLI draws them, the daemon logs them."""


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def no_progress(_event: str, _data: dict[str, Any]) -> None:
    """Progress sink that drops everything (tests, scripts)."""


def openstack_factory(settings: Settings) -> Callable[[Endpoint], ComputeDriver]:
    """Drivers for real clouds, imported only when a command talks to a cloud (openstacksdk is slow to import)."""
    def make(endpoint: Endpoint) -> ComputeDriver:
        from govcloud.drivers.openstack import OpenStackDriver

        return OpenStackDriver(endpoint, config_file=settings.clouds_config, api_timeout=settings.engine.api_timeout)

    return make


def terraform_factory(ctx: EngineContext) -> Any:
    """The Terraform driver for this process's settings (imported only when a Terraform cloud is used).
    State goes to the ``pg`` backend when the store is PostgreSQL (or ``$GOVCLOUD_TF_PG_CONN_STR`` is set)."""
    from govcloud.drivers.terraform import TerraformDriver

    tf = ctx.settings.terraform
    return TerraformDriver(workspace_root=ctx.settings.state_dir / "terraform", binary=tf.binary, mirror=tf.mirror,
                           pg_conn_str=tf.pg_conn_str or pg_conn_str(ctx.store.engine.url.render_as_string(hide_password=False))
                           if tf.pg_conn_str or ctx.store.dialect == "postgresql" else None,
                           lock_timeout=tf.lock_timeout, timeout=tf.timeout, lock_wait=tf.workspace_lock_wait)


def pg_conn_str(store_url: str) -> str:
    """libpq form of the store's SQLAlchemy URL, for terraform's pg backend: ``postgresql+psycopg2://u:p@h/db``
    → ``postgres://u:p@h/db`` (query parameters such as ``host=/socket/dir`` are kept)."""
    scheme, sep, rest = store_url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {scheme}://…")
    return f"postgres://{rest}"


@dataclass
class EngineContext:
    """Collaborators of the engine (STYLE habit 7: pass them in)."""

    settings: Settings
    state: DesiredState
    store: Store
    endpoints: Endpoints
    driver_factory: Callable[[Endpoint], ComputeDriver]
    clock: Clock = utcnow
    progress: Progress = no_progress
    terraform_factory: Callable[[EngineContext], Any] = terraform_factory
    """Builds the Terraform driver (once per context); tests pass a fake."""
    _drivers: dict[Endpoint, ComputeDriver] = field(default_factory=dict)
    _terraform: Any = None

    def driver(self, endpoint: Endpoint) -> ComputeDriver:
        """One driver per endpoint for the whole run (connections and project scopes are cached there)."""
        if endpoint not in self._drivers:
            self._drivers[endpoint] = self.driver_factory(endpoint)
        return self._drivers[endpoint]

    def terraform(self) -> Any:
        """The Terraform driver of this run (``drivers.terraform.TerraformDriver`` or a fake with its methods)."""
        if self._terraform is None:
            self._terraform = self.terraform_factory(self)
        return self._terraform

    def refresh_quotas(self, conn: Any = None) -> None:
        """Lay the approved quota changes stored as overrides over ``state``'s quotas (quotas/*.yaml).
        ``conn``: the caller's open transaction — an approval passes its own, holding the quota lock, so
        that a quota change approved by another process after this one started (a cut) counts before
        anything is reserved. Here, not in quota_change.py: every command's context needs it at build."""
        if conn is None:
            with self.store.transaction() as own:
                self.refresh_quotas(own)
            return
        stored = {key: limit for key, (limit, _) in overrides(conn).items()}
        self.state = dataclasses.replace(self.state, quotas=overridden(self.state.quotas, stored))

    def now(self) -> str:
        return self.clock().astimezone(datetime.UTC).isoformat(timespec="microseconds")

    def today(self) -> datetime.date:
        return self.clock().date()


def _withhold_secrets(endpoints: Endpoints) -> None:
    """Credentials of Terraform clouds live on in ``settings.terraform.environ`` (read once at start) and
    reach terraform through its own environment only; they leave the process environment so that no other
    child inherits them — ansible-runner writes its whole environment into ``artifacts/<ident>/command``."""
    names = {var for target in endpoints.terraform.values() for var in target.credentials.values()} | {"GOVCLOUD_TF_PG_CONN_STR"}
    for name in names:
        os.environ.pop(name, None)


def build(settings: Settings, *, store: Store | None = None,
          driver_factory: Callable[[Endpoint], ComputeDriver] | None = None, progress: Progress = no_progress,
          create_store: bool = True) -> EngineContext:
    """Load the desired state and the endpoint profile, open the store.

    The acting user is checked before anything is created: a refused command leaves no state directory
    and no store behind. ``create_store=False`` for commands that only read, or act on rows that must
    already exist: a store that does not exist yet is read as an empty one and not created
    (``Store.for_settings``)."""
    state = load_state(settings.data, [])
    acting_user(state.users, settings.user)
    if create_store or settings.state_dir.exists():
        private_dir(settings.state_dir)  # run directories, known hosts, Terraform state: this account's only
    profile = settings.profile_path
    if profile is not None and not profile.exists() and settings.profile == DEFAULT_PROFILE:
        profile = None  # data without a devcloud profile (a real deployment, a test dataset)
    overlay = load_overlay(profile) if profile is not None else None
    endpoints = resolve(state.topology, overlay, profile=str(profile or ""))
    _withhold_secrets(endpoints)
    store = store or Store.for_settings(settings, create=create_store)
    ctx = EngineContext(settings=settings, state=state, store=store, endpoints=endpoints,
                        driver_factory=driver_factory or openstack_factory(settings), progress=progress)
    ctx.refresh_quotas()  # approved quota changes count from the moment they are approved
    return ctx
