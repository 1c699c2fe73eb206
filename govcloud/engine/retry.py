"""Retrying temporary driver errors with a doubling backoff (permanent errors go straight up)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from govcloud.engine.context import EngineContext
from govcloud.errors import PermanentError, TemporaryError

T = TypeVar("T")


def retrying(ctx: EngineContext, doing: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, retried on TemporaryError; after the last try it becomes permanent."""
    tries = ctx.settings.engine.temporary_retries + 1
    for attempt in range(tries):
        try:
            return call(*args, **kwargs)
        except TemporaryError as exc:
            if attempt == tries - 1:
                raise PermanentError(f"{doing}: still failing after {tries} tries: {exc}") from exc
            ctx.progress("retry", {"doing": doing, "error": str(exc), "attempt": attempt + 1})
            time.sleep(min(exc.delay * 2**attempt, 60))
    raise AssertionError("unreachable")
