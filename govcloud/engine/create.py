"""Creating one server at most once, although its create call may be retried.

A create is not idempotent at nova's API: when the POST reached nova but its answer was lost (the
connection was reset, a proxy answered 502 after forwarding, the client timed out while nova went on),
the server exists although the call failed. Retrying the call blindly boots a second server with the
same name and metadata — a duplicate that nothing of a first run removes (the fault suite,
tests/integration/test_faults.py, injects exactly this: a reset after the request was forwarded). So every
retry first looks for the server by name and keeps it if it carries this ticket's id and index.

Called by engine/provision.py (``_Run.ensure_vm``) for every create.
"""

from __future__ import annotations

from govcloud.drivers.base import META_INDEX, META_TICKET, ComputeDriver, Server, ServerSpec
from govcloud.engine.context import EngineContext
from govcloud.engine.retry import retrying


def is_for(server: Server, spec: ServerSpec) -> bool:
    """True when ``server`` was created from ``spec``: the same name, ticket and index."""
    return (server.name == spec.name and server.metadata.get(META_TICKET) == spec.metadata.get(META_TICKET)
            and server.metadata.get(META_INDEX) == spec.metadata.get(META_INDEX))


def create_once(ctx: EngineContext, driver: ComputeDriver, spec: ServerSpec) -> Server:
    """Create the server of ``spec``, retrying temporary errors; before each retry, adopt the server an
    earlier try created if there is one (the oldest, should a late create have landed twice)."""
    tried = False

    def attempt() -> Server:
        nonlocal tried
        if tried:
            landed = [s for s in driver.find_servers(spec.tenant, spec.name) if is_for(s, spec)]
            if landed:
                ctx.progress("vm", {"ticket": spec.metadata.get(META_TICKET), "name": spec.name, "status": "ADOPTED-AFTER-LOST-ANSWER",
                                    "centre": ""})
                return min(landed, key=lambda s: s.created)
        tried = True
        return driver.create_server(spec)

    return retrying(ctx, f"create {spec.name}", attempt)
