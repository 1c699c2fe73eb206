"""The watched directory: one sub-directory per user; a file there is submitted *as that user*.

Trust model (docs/daemon.md, "The inbox and who submits"): the filesystem is the authentication, as
with ``/var/spool/cron/crontabs`` or a maildir. ``<inbox>/<user-id>/`` belongs to one department
account; a ticket file in it is submitted as ``<user-id>`` and must say ``requester: <user-id>``.
A file's own ``requester:`` field proves nothing (anyone who can write a file can write that line),
so it is only checked against the directory, never believed.

What is taken, and what is moved aside **unread** to ``failed/`` with a ``.error`` saying why:

* the inbox itself must not be writable by group or others (else anyone could create a user's
  directory); otherwise nothing is taken;
* ``<inbox>/<user-id>`` must be a real directory (a symlink is moved aside), writable by nobody but
  its owner (and the daemon's own group, for a daemon that is not root), named after a user of
  users.yaml; its owner's uid is the only one whose files are taken;
* a file is taken only if it is a regular file (``lstat``, then ``open(O_NOFOLLOW | O_NONBLOCK)``
  and ``fstat``: a link swapped in between, a FIFO or a device is never read, and never blocks),
  owned by the directory's owner and at most ``MAX_TICKET_BYTES``;
* ``*.yaml`` at the top level of the inbox (the old layout) is never submitted.

A taken file is copied into ``claimed/<user-id>/`` (govcloud's own, 0600) and the original removed,
so what is validated and stored is exactly what was checked: the department can no longer swap it.
Once handled the copy moves to ``done/`` (submitted, or stored earlier with the same content after a
crash between submit and move) or to ``failed/`` with a ``.error``. Everything govcloud writes there
is private (directories 0700, files 0600, whatever the umask): the department reads why a file was
refused in the audit trail (``govcloud audit list``: ``inbox:<user-id>/<file>``), which never holds
the content of anything that was not a regular file its owner wrote.

Only files that have not changed for ``settle`` seconds are taken (a writer still copying one is
left alone); dot-files and other suffixes are ignored, so editors' swap files do no harm.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from govcloud.engine import tickets
from govcloud.engine.context import EngineContext
from govcloud.errors import ConfigError, GovcloudError, InputError, NotFound, PermissionDenied
from govcloud.files import private_dir
from govcloud.model.access import ACTIONS
from govcloud.model.loading import MAX_FILE_BYTES, read_text
from govcloud.model.state import parse_ticket
from govcloud.model.tickets import Ticket
from govcloud.store import tickets as rows

log = logging.getLogger("govcloud.inbox")
SUFFIXES = (".yaml", ".yml")
PRIVATE_DIRS = ("done", "failed", "claimed")
"""govcloud's own directories in the inbox (0700); no user directory may have these names."""
MAX_TICKET_BYTES = MAX_FILE_BYTES
"""Largest ticket file taken: the reader's own bound (model/loading.py), so a file the inbox claims is one
the reader will read. A bigger one is moved aside unread: a department cannot make the daemon read or copy
gigabytes."""


@dataclass(frozen=True)
class InboxResult:
    """What became of one file."""

    file: str
    outcome: str
    """``submitted`` | ``approved`` (auto-approval) | ``already`` | ``refused``."""
    ticket: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Entry:
    """One name found in the inbox: ``user`` None for the top level; ``owner`` the uid whose files
    the user's directory accepts; ``problem`` set when it is refused without being read."""

    path: Path
    user: str | None
    owner: int | None
    mtime: float
    problem: str | None = None

    @property
    def display(self) -> str:
        return f"{self.user}/{self.path.name}" if self.user else self.path.name


def _kind(mode: int) -> str:
    """What a non-regular directory entry is, in words."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def _loose(st: os.stat_result) -> str | None:
    """Why a directory lets someone other than its owner (or the daemon's own group) plant files."""
    if st.st_mode & stat.S_IWOTH:
        return "writable by everyone"
    if st.st_mode & stat.S_IWGRP and st.st_gid != os.getegid():
        return f"writable by group {st.st_gid}"
    return None


def _wanted(name: str) -> bool:
    return not name.startswith(".") and name.endswith(SUFFIXES)


def pending(ctx: EngineContext, inbox: Path, *, settle: float, now: Callable[[], float] = time.time) -> list[Entry]:
    """Entries ready to handle, oldest first (nothing is read here: ``lstat`` only)."""
    if not inbox.is_dir():
        return []
    found: list[Entry] = []
    for top in inbox.iterdir():
        if top.name.startswith(".") or top.name in PRIVATE_DIRS:
            continue
        try:
            st = top.lstat()
        except FileNotFoundError:  # removed since the listing
            continue
        if stat.S_ISDIR(st.st_mode):
            found.extend(_user_entries(ctx, top, st))
        elif stat.S_ISLNK(st.st_mode):
            found.append(Entry(top, None, None, st.st_mtime, f"{_kind(st.st_mode)}: a user's inbox must be a real directory "
                               f"{inbox}/<user-id>/ (docs/daemon.md); the link was not followed"))
        elif _wanted(top.name):
            found.append(Entry(top, None, None, st.st_mtime, f"files directly in the inbox are not taken: put it in {inbox}/<your user id>/ "
                               "(it is submitted as that user; docs/daemon.md); not read"))
    ready = [e for e in found if now() - e.mtime >= settle]
    return sorted(ready, key=lambda e: (e.mtime, e.display))


def _user_entries(ctx: EngineContext, directory: Path, st: os.stat_result) -> list[Entry]:
    """The ticket-like names of one user's directory, refused at once when the directory is not trustworthy."""
    user = directory.name
    problem = _loose(st)
    if problem is not None:
        problem = f"{directory} is {problem}: a user's inbox must be writable by its owner only (chmod 0700); not read"
    elif ctx.state.users.get(user) is None:
        problem = f"no user '{user}' in users.yaml: {directory} names who submits; not read"
    entries: list[Entry] = []
    try:
        names = list(directory.iterdir())
    except PermissionError:  # one misconfigured directory must not stop the pass (nor the apply after it)
        log.warning("inbox directory %s cannot be read by the daemon: give it the daemon's group (docs/daemon.md)", directory)
        return entries
    for path in names:
        if _wanted(path.name):
            with contextlib.suppress(FileNotFoundError):  # removed since the listing
                entries.append(Entry(path, user, st.st_uid, path.lstat().st_mtime, problem))
    return entries


def scan(ctx: EngineContext, inbox: Path, *, settle: float = 1.0, stop: Callable[[], bool] = lambda: False) -> list[InboxResult]:
    """Take every ready file (until ``stop()`` says to finish); files claimed by an earlier pass
    that died before finishing them come first."""
    loose = _loose(inbox.stat()) if inbox.is_dir() else None
    if loose is not None:
        return [InboxResult(str(inbox), "refused", None, f"the inbox {inbox} is {loose}: anyone could create a user's directory; "
                            "nothing taken until it is writable by its owner only (chmod 0711)")]
    results = [_submit(ctx, inbox, path, path.parent.name) for path in _claimed_leftovers(inbox)]
    for entry in pending(ctx, inbox, settle=settle):
        if stop():
            break
        result = take(ctx, inbox, entry)
        if result is not None:
            results.append(result)
    return results


def _claimed_leftovers(inbox: Path) -> list[Path]:
    claimed = inbox / "claimed"
    if not claimed.is_dir():
        return []
    return sorted(p for d in claimed.iterdir() if d.is_dir() and not d.is_symlink() for p in d.iterdir())


def take(ctx: EngineContext, inbox: Path, entry: Entry) -> InboxResult | None:
    """Claim one entry and submit it as its directory's user, or move it aside unread.
    None: left for the next pass (an earlier copy of the same name is still being handled)."""
    if entry.problem is not None or entry.user is None or entry.owner is None:
        return _refuse(ctx, inbox, entry, entry.problem or "not in a user's directory")
    try:
        content, st = read_owned(entry.path, entry.owner)
    except _Unsafe as exc:
        return _refuse(ctx, inbox, entry, str(exc))
    folder = private_dir(private_dir(inbox / "claimed", follow_links=False) / entry.user, follow_links=False)
    claimed = folder / entry.path.name
    try:
        _write_private(claimed, content)
    except FileExistsError:
        return None
    _unlink_if_same(entry.path, st)
    return _submit(ctx, inbox, claimed, entry.user)


class _Unsafe(Exception):
    """An entry that must not be read (and why)."""


def read_owned(path: Path, owner: int) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file owned by ``owner`` and at most ``MAX_TICKET_BYTES``; anything else
    raises ``_Unsafe`` with the reason, without reading a byte of it (and without blocking on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Unsafe("a symbolic link: only regular files are taken; the link was not followed") from None
        raise _Unsafe(f"cannot open: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Unsafe(f"{_kind(st.st_mode)}: only regular files are taken; not read")
        if st.st_uid != owner:
            raise _Unsafe(f"owned by uid {st.st_uid}, but the directory belongs to uid {owner}: only the directory "
                          "owner's own files are taken; not read")
        if st.st_size > MAX_TICKET_BYTES:
            raise _Unsafe(f"{st.st_size} bytes, over the limit of {MAX_TICKET_BYTES}; not read")
        content = os.read(fd, MAX_TICKET_BYTES + 1)
        if len(content) > MAX_TICKET_BYTES:
            raise _Unsafe(f"grew beyond the limit of {MAX_TICKET_BYTES} bytes while being read")
        return content, st
    finally:
        os.close(fd)


def _unlink_if_same(path: Path, read: os.stat_result) -> None:
    """Remove the department's original once copied — unless another file took its name meanwhile
    (that one is taken on the next pass)."""
    try:
        now = path.lstat()
        if (now.st_dev, now.st_ino) == (read.st_dev, read.st_ino):
            path.unlink()
    except FileNotFoundError:
        pass


def _submit(ctx: EngineContext, inbox: Path, path: Path, user: str) -> InboxResult:
    """Submit a claimed copy as ``user``; move it to done/ or failed/."""
    display = f"{user}/{path.name}"
    try:
        ticket = _ticket_of(ctx, path)
        if ticket.requester != user:
            raise ConfigError([ticket.where.problem("requester", found=f"'{ticket.requester}'", expected=f"'{user}': a file in {inbox}/{user}/ "
                                                    f"is submitted as {user}; {ticket.requester} drops it in {inbox}/{ticket.requester}/",
                                                    message="requester is not the owner of this inbox directory")])
        as_user = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, user=user))
        (row,) = tickets.submit(as_user, [path])
    except (GovcloudError, UnicodeDecodeError, OSError) as exc:
        already = _already_stored(ctx, path)
        if already is not None:
            _move(inbox, path, "done", user)
            return InboxResult(display, "already", already, "stored earlier with the same content")
        message = _explain(exc)
        _move(inbox, path, "failed", user, error=message)
        ctx.store.audit.append(ctx.settings.user, "inbox.refuse", f"inbox:{display}", {"error": message})
        return InboxResult(display, "refused", None, message)
    _move(inbox, path, "done", user)
    outcome = "approved" if row.state == "approved" else "submitted"
    return InboxResult(display, outcome, row.id, f"ticket {row.id} {row.state}" + (f" (rule {row.approval_rule})" if row.approval_rule else ""))


def _refuse(ctx: EngineContext, inbox: Path, entry: Entry, why: str) -> InboxResult:
    """Move an entry aside unread (the entry itself: a link is renamed, never followed)."""
    message = f"{entry.display}: {why}"
    _move(inbox, entry.path, "failed", entry.user, error=message)
    ctx.store.audit.append(ctx.settings.user, "inbox.refuse", f"inbox:{entry.display}", {"error": message})
    return InboxResult(entry.display, "refused", None, message)


def _ticket_of(ctx: EngineContext, path: Path) -> Ticket:
    """The ticket (for its requester); when it does not even parse, every problem of the file —
    schema and cross-references — so the department fixes them all in one go."""
    try:
        return parse_ticket(read_text(path, follow_symlinks=False), str(path))
    except ConfigError:
        tickets.validated(ctx, [path])  # raises the complete list
        raise


def _already_stored(ctx: EngineContext, path: Path) -> str | None:
    """The ticket id if this very file was submitted before (the daemon died before moving it)."""
    try:
        ticket = parse_ticket(read_text(path, follow_symlinks=False), str(path))
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


def _write_private(path: Path, content: bytes) -> None:
    """A new file, mode 0600 whatever the umask; never through a link, never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content)
    finally:
        os.close(fd)


def _move(inbox: Path, path: Path, where: str, user: str | None, *, error: str | None = None) -> Path:
    """Into ``done/`` or ``failed/`` (0700), stamped so that resubmitting the same name never
    overwrites; the entry itself is renamed (a link is never followed) and a regular file made 0600."""
    folder = private_dir(inbox / where, follow_links=False)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{stamp}-{user + '-' if user else ''}{path.name}"
    path.rename(target)
    if stat.S_ISREG(target.lstat().st_mode) and stat.S_IMODE(target.lstat().st_mode) != 0o600:
        with contextlib.suppress(PermissionError):  # a refused file of another owner, daemon not root: failed/ itself is 0700
            os.chmod(target, 0o600)
    if error is not None:
        _write_private(target.with_name(target.name + ".error"), (error + "\n").encode("utf-8"))
    return target


def add_user_directory(ctx: EngineContext, inbox: Path, user: str, *, owner: int, group: int | None = None) -> Path:
    """Create (or fix) ``<inbox>/<user>/`` for a user of users.yaml who may submit: owned by the
    department's account ``owner``, mode 0700 — or 0770 with ``group``, the daemon's own group, for a
    daemon that does not run as root and must be able to take files out. Changing the owner needs root:
    the operating system, not govcloud, decides who may hand a directory to an account."""
    found = ctx.state.users.get(user)
    if found is None:
        raise NotFound(f"no user '{user}' in users.yaml")
    if found.role not in ACTIONS["submit"]:
        raise PermissionDenied(f"user '{user}' ({found.name}) has role {found.role}; submitting needs role "
                               + " or ".join(ACTIONS["submit"]) + ": no inbox directory for it")
    if user in PRIVATE_DIRS:
        raise InputError(f"'{user}' is the name of govcloud's own {user}/ directory in the inbox; rename the user")
    inbox.mkdir(mode=0o711, parents=True, exist_ok=True)
    directory = inbox / user
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, mode=0o700)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"{directory} exists and is not a directory ({exc.strerror}): remove it first") from None
    try:
        os.fchown(fd, owner, -1 if group is None else group)
        os.fchmod(fd, 0o700 if group is None else 0o770)
    except PermissionError:
        raise InputError(f"cannot give {directory} to uid {owner}: changing a directory's owner needs root") from None
    finally:
        os.close(fd)
    return directory
