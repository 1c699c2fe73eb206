"""Recording the usage history now (``govcloud report sample`` and the daemon's ``history_interval`` timer).

The ledger writes its own change points as it changes (store/usage_history.py); a sample compares every
group with the ledger and with the quotas in force — the quota files as this process read them, approved
quota changes laid over them — and writes a point wherever the history no longer says what is true. That is what makes
an allocation from before the history began, or a quota file edited by hand, count from the next sample.
"""

from __future__ import annotations

from govcloud.engine.context import EngineContext
from govcloud.model.access import acting_user, require
from govcloud.store import usage_history
from govcloud.store.usage_history import SampleRun


def sample(ctx: EngineContext, *, actor: str | None = None) -> SampleRun:
    """Take a full sample at ``ctx.now()``. ``actor``: the daemon's identity (already checked); without it
    the acting user needs ``report-sample``."""
    if actor is None:
        user = acting_user(ctx.state.users, ctx.settings.user)
        require(user, "report-sample")
        actor = user.id
    ctx.refresh_quotas()  # quota changes approved by other processes since this one started
    quotas = {key: quota.limit for key, quota in ctx.state.quotas.quotas.items()}
    with ctx.store.transaction() as conn:
        return usage_history.sample(conn, quotas, at=ctx.now(), actor=actor)
