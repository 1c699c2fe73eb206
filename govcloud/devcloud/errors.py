"""Errors of the devcloud: each one says what to do next, none carries a traceback to the user.

::

    GovcloudError
    ├── DevcloudError          a step of install/up/down failed (exit 1); the message names the log
    │   └── ServiceFailed      a service died or never answered; carries the tail of its log
    └── InputError
        ├── AlreadyUp          ``up`` while the devcloud runs (exit 2): run ``down`` first
        ├── PortTaken          a port of the profile is in use by someone else (exit 2)
        ├── NotInstalled       ``up`` before ``install`` (exit 2)
        └── NotRunning         a command that needs the running devcloud, or an unknown centre (exit 2)
"""

from __future__ import annotations

from govcloud.errors import GovcloudError, InputError


class DevcloudError(GovcloudError):
    """A devcloud step failed; the message says which and where its log is."""


class ServiceFailed(DevcloudError):
    """A service exited or did not answer in time; the message ends with the tail of its log."""

    def __init__(self, service: str, reason: str, log_tail: str = "") -> None:
        self.service = service
        tail = f"\n--- last lines of its log ---\n{log_tail}" if log_tail else ""
        super().__init__(f"service {service} {reason}{tail}")


class AlreadyUp(InputError):
    """``up`` found live processes of an earlier ``up``; nothing was started."""


class PortTaken(InputError):
    """A TCP port the profile needs is already bound by a process the devcloud did not start."""


class NotInstalled(InputError):
    """The services' virtualenv or the Debian packages are missing: run ``govcloud devcloud install``."""


class NotRunning(InputError):
    """The command needs a running (or once started) devcloud, or named a centre it does not have."""
