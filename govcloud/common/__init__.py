"""Plain helpers every layer above may use: retrying temporary errors (``retry``) and calls under a
shared deadline (``deadline``).

Why it sits below the store (just above ``errors``): it imports nothing of govcloud but
``govcloud.errors`` and nothing outside the standard library, so the engine and failover (which may not
import each other) share it, and so could the drivers or the store. It holds no state and does no I/O of
its own; ``.importlinter`` keeps it that way (no store, driver, model or outside library).
"""
