"""The state store's own commands: ``audit verify``, ``db upgrade`` and ``db status``.

They run on the settings alone (no desired state needed, except the user table for the upgrade's
permission check) and never build an EngineContext: ``db status`` must not migrate what it reports on.
The CLI calls these and prints; it does not import the store (an import-linter contract says so).
"""

from __future__ import annotations

from dataclasses import dataclass

from govcloud.errors import AuditChainBroken
from govcloud.model.access import acting_user, require
from govcloud.model.state import load_state
from govcloud.settings import Settings
from govcloud.store import Store


@dataclass(frozen=True)
class AuditCheck:
    """An intact chain: how many records, and the record the anchor file reaches (None: no anchor yet)."""

    records: int
    anchored_seq: int | None


def verify_audit(settings: Settings) -> AuditCheck:
    """Recompute the audit chain; ``AuditChainBroken`` names each broken record. A store that does not
    exist is not created to be verified: an empty chain is reported."""
    store = Store.for_settings(settings, create=False)
    count, problems = store.audit.verify()
    if problems:
        raise AuditChainBroken(problems)
    anchor = store.audit.anchor()
    return AuditCheck(count, anchor.seq if anchor else None)


@dataclass(frozen=True)
class Schema:
    """Where the store is and which migration its schema is at (``head``: the newest this govcloud knows)."""

    store: str
    current: str | None
    head: str | None


def upgrade(settings: Settings) -> Schema:
    """Apply pending migrations (admin role: action ``db-upgrade``)."""
    require(acting_user(load_state(settings.data).users, settings.user), "db-upgrade")
    store = Store.for_settings(settings)
    return Schema(store.describe(), store.current_revision(), store.head_revision())


def schema(settings: Settings) -> Schema:
    """The schema revision, without migrating anything (or creating a store that is not there)."""
    store = Store.for_settings(settings, migrate=False, create=False)
    return Schema(store.describe(), store.current_revision(), store.head_revision())
