"""The exception tree. Every error govcloud raises on purpose is a ``GovcloudError``.

::

    GovcloudError                  exit code 1 unless a subclass says otherwise
    ├── InputError                 bad input from a user (exit code 2); state is untouched
    │   ├── ConfigError            one or more problems in YAML files: file, line, key, found, expected
    │   └── PermissionDenied       the acting user's role does not allow the action
    ├── StoreError                 the state store cannot be opened or migrated
    │   ├── AuditChainBroken       ``audit verify`` found an edited, inserted or deleted record
    │   │   └── AuditHeadBroken    an append found the chain's head missing or not matching its newest record
    │   └── AuditKeyError          the audit key file is unusable (readable by others, wrong key, malformed)
    └── DriverError                an outside system failed; the engine decides what to do
        ├── TemporaryError         retry after ``delay`` seconds
        └── PermanentError         stop and report

The CLI maps ``exit_code`` to the process exit status, so the numbers live with the errors, not in
scattered ``sys.exit`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class GovcloudError(Exception):
    """Base of all deliberate govcloud errors."""

    exit_code: int = 1


class InputError(GovcloudError):
    """The user gave us something we cannot use; nothing was changed."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One validation finding, precise enough for an admin to fix the file without guessing.

    ``line`` and ``column`` are 1-based; 0 means "the whole file" (e.g. an empty file).
    """

    file: str
    line: int
    key: str
    found: str
    expected: str
    column: int = 0
    message: str = field(default="")

    def render(self) -> str:
        """``file:line: key: message (found: …; expected: …)`` — the format editors jump to."""
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = self.message or "invalid value"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {text} (found: {self.found}; expected: {self.expected})"

    def as_dict(self) -> dict[str, object]:
        """Machine-readable form for ``--output json``."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "key": self.key,
            "message": self.message,
            "found": self.found,
            "expected": self.expected,
        }


class ConfigError(InputError):
    """Carries every problem found in one run, so the admin fixes them all at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.key))
        first = self.problems[0].render() if self.problems else "invalid configuration"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class PermissionDenied(InputError):
    """The acting user may not do this; the message names the user, role and action."""


class NotFound(InputError):
    """A referenced object (ticket, tenant, cloud) does not exist."""


class StoreError(GovcloudError):
    """The state store cannot be used (unreachable database, failed migration)."""


class AuditChainBroken(StoreError):
    """The audit log's hash chain does not verify; ``problems`` lists each broken link."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"audit chain broken: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


class AuditHeadBroken(AuditChainBroken):
    """Raised by an append, which refuses to write (fails closed) when the head is missing or does not
    match the newest record: the message says what is wrong and to run ``govcloud audit verify``."""


class AuditKeyError(StoreError):
    """The audit key cannot be used: readable by group or others, malformed, or not the key that wrote the
    chain (the message names the file and what to do)."""


class DriverError(GovcloudError):
    """An outside system failed. Raised ``from`` the original exception."""


class TemporaryError(DriverError):
    """Worth retrying after ``delay`` seconds (timeouts, 503s, rate limits)."""

    def __init__(self, message: str, *, delay: float = 5.0) -> None:
        self.delay = delay
        super().__init__(message)


class PermanentError(DriverError):
    """Retrying will not help (bad request, quota exceeded in the cloud, missing image)."""


class QuotaDenied(GovcloudError):
    """Approval refused because a quota level would be exceeded; ``explanation`` has the numbers."""

    def __init__(self, message: str, explanation: list[str]) -> None:
        self.explanation = explanation
        super().__init__(message)


class InvalidState(InputError):
    """The ticket is not in a state that allows this action (e.g. approving an active ticket)."""
