"""The watched directory: ticket files dropped there are submitted as their requester.

Departments (or their tooling) write ``*.yaml`` into the inbox; the daemon's pass submits each one
through the same ``tickets.submit`` as ``govcloud ticket submit`` — validation, the requester's
rights, the duplicate check and auto-approval included. A file is never lost: once handled it moves
to ``done/`` (submitted, or already stored with the same content after a crash between submit and
move) or to ``failed/`` with a ``.error`` file beside it that says, line by line, what to fix.

Only files that have not changed for ``settle`` seconds are taken (a writer still copying one is
left alone); dot-files and other suffixes are ignored, so editors' swap files do no harm.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from govcloud.engine import tickets
from govcloud.engine.context import EngineContext
from govcloud.errors import ConfigError, GovcloudError
from govcloud.model.state import parse_ticket
from govcloud.model.tickets import Ticket
from govcloud.store import tickets as rows

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class InboxResult:
    """What became of one file."""

    file: str
    outcome: str
    """``submitted`` | ``approved`` (auto-approval) | ``already`` | ``refused``."""
    ticket: str | None = None
    detail: str = ""


def pending(inbox: Path, *, settle: float, now: Callable[[], float] = time.time) -> list[Path]:
    """Ticket files ready to take, oldest first."""
    if not inbox.is_dir():
        return []
    ready = [p for p in inbox.iterdir() if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith(".")
             and now() - p.stat().st_mtime >= settle]
    return sorted(ready, key=lambda p: (p.stat().st_mtime, p.name))


def scan(ctx: EngineContext, inbox: Path, *, settle: float = 1.0, stop: Callable[[], bool] = lambda: False) -> list[InboxResult]:
    """Take every ready file (until ``stop()`` says to finish)."""
    results = []
    for path in pending(inbox, settle=settle):
        if stop():
            break
        results.append(take(ctx, inbox, path))
    return results


def take(ctx: EngineContext, inbox: Path, path: Path) -> InboxResult:
    """Submit one file as its requester and move it out of the inbox."""
    try:
        ticket = _requester_of(ctx, path)
        as_requester = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, user=ticket.requester))
        (row,) = tickets.submit(as_requester, [path])
    except (GovcloudError, UnicodeDecodeError, OSError) as exc:
        already = _already_stored(ctx, path)
        if already is not None:
            _move(inbox, path, "done")
            return InboxResult(path.name, "already", already, "stored earlier with the same content")
        message = _explain(exc)
        _move(inbox, path, "failed", error=message)
        ctx.store.audit.append("system", "inbox.refuse", f"file:{path.name}", {"error": message})
        return InboxResult(path.name, "refused", None, message)
    _move(inbox, path, "done")
    outcome = "approved" if row.state == "approved" else "submitted"
    return InboxResult(path.name, outcome, row.id, f"ticket {row.id} {row.state}" + (f" (rule {row.approval_rule})" if row.approval_rule else ""))


def _requester_of(ctx: EngineContext, path: Path) -> Ticket:
    """The ticket (for its requester); when it does not even parse, every problem of the file —
    schema and cross-references — so the department fixes them all in one go."""
    try:
        return parse_ticket(path.read_text(encoding="utf-8"), str(path))
    except ConfigError:
        tickets.validated(ctx, [path])  # raises the complete list
        raise


def _already_stored(ctx: EngineContext, path: Path) -> str | None:
    """The ticket id if this very file was submitted before (the daemon died before moving it)."""
    try:
        ticket = parse_ticket(path.read_text(encoding="utf-8"), str(path))
    except (GovcloudError, UnicodeDecodeError, OSError):
        return None
    with ctx.store.transaction() as conn:
        row = rows.get(conn, ticket.id)
    if row is not None and row.content_hash == tickets.content_hash(ticket) and row.source_name == str(path):
        return row.id
    return None


def _explain(exc: BaseException) -> str:
    if isinstance(exc, ConfigError):
        return "\n".join(p.render() for p in exc.problems) or str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: byte {exc.start}: {exc.reason}"
    return str(exc)


def _move(inbox: Path, path: Path, where: str, *, error: str | None = None) -> Path:
    """Into ``done/`` or ``failed/``, stamped so that resubmitting the same name never overwrites."""
    folder = inbox / where
    folder.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{stamp}-{path.name}"
    path.rename(target)
    if error is not None:
        target.with_name(target.name + ".error").write_text(error + "\n", encoding="utf-8")
    return target
