"""The engine's way to retry a driver call: ``common.retry`` with the engine's settings and progress.

Typed against a small protocol rather than ``EngineContext`` so this module imports nothing of the
engine (it once imported ``engine.context``, which closed an import circle through ``quota_change``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from govcloud.common.retry import retry
from govcloud.settings import Settings

T = TypeVar("T")


class RetryContext(Protocol):
    """What retrying needs of an engine context: the number of retries and where progress goes."""

    @property
    def settings(self) -> Settings: ...

    @property
    def progress(self) -> Callable[[str, dict[str, Any]], None]: ...


def retrying(ctx: RetryContext, doing: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, retried on TemporaryError (``settings.engine.temporary_retries`` times,
    backoff with jitter); after the last try it becomes permanent."""
    return retry(doing, lambda: call(*args, **kwargs), tries=ctx.settings.engine.temporary_retries + 1,
                 on_retry=lambda event: ctx.progress("retry", event))
