"""An external fence agent run as a command, as pacemaker runs its ``fence_*`` agents.

The command is an argv template with ``{action}`` (``off``, ``on``, ``status``) and ``{host}``; ``status``
prints ``on`` or ``off`` (its last line), every action exits 0 when it did what was asked. The devcloud's
method is such an agent — ``govcloud devcloud host off|on|status HOST`` stops and starts that host's
nova-compute — so failover needs no import of the devcloud: it runs the agent, like any other.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

from govcloud.errors import PermanentError, TemporaryError


class CommandAgent:
    """``FenceAgent`` (drivers/base.py) that runs one command per call."""

    def __init__(self, template: Sequence[str], *, method: str = "command", timeout: float = 30.0,
                 env: Mapping[str, str] | None = None) -> None:
        self.template = tuple(template)
        self.method = method
        self.timeout = timeout
        self.env = dict(env) if env is not None else None

    def argv(self, host: str, action: str) -> list[str]:
        return [part.replace("{action}", action).replace("{host}", host) for part in self.template]

    def power_off(self, host: str) -> None:
        self._run(host, "off")

    def power_on(self, host: str) -> None:
        self._run(host, "on")

    def power_state(self, host: str) -> str:
        lines = self._run(host, "status").strip().splitlines()
        state = lines[-1].strip() if lines else ""
        if state not in ("on", "off"):
            raise PermanentError(f"fence agent status {host}: printed {state!r}, expected 'on' or 'off'")
        return state

    def _run(self, host: str, action: str) -> str:
        argv = self.argv(host, action)
        doing = f"fence agent {action} {host}"
        try:
            done = subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except FileNotFoundError:
            raise PermanentError(f"{doing}: {argv[0]} not found") from None
        except subprocess.TimeoutExpired:
            raise TemporaryError(f"{doing}: no answer within {self.timeout:g} s", delay=2) from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise TemporaryError(f"{doing}: exit code {done.returncode}: {' / '.join(tail)}", delay=2)
        return done.stdout
