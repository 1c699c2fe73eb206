"""Private files and directories: what govcloud writes is readable by its own account only.

The state directory holds the SQLite store (tickets, the quota ledger, the audit trail), run directories
with Ansible artifacts, SSH known hosts and Terraform state. Under the usual umask 022 plain ``mkdir`` and
``open`` would make all of it world-readable (0755 / 0644), and any local account could read another
department's addresses and variables. Everything govcloud creates there goes through these two
functions: directories 0700, files 0600, whatever the umask. A path that already exists and belongs to
this account is tightened (an older govcloud created it open); one that belongs to somebody else (``/tmp``
as the parent of ``--db /tmp/x.db``) is left alone.

Used by the store (store/db.py) and the engine; imports nothing of govcloud's.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, *, follow_links: bool = True) -> Path:
    """``path`` and its missing parents as directories 0700; an existing one of ours is tightened.

    ``follow_links=False`` where someone else may have planted the name (the inbox's ``claimed/``): an
    existing ``path`` that is a symbolic link or not a directory is refused (``NotADirectoryError``)
    instead of written through. The state directory itself may well be a link an operator made."""
    if not follow_links:
        with contextlib.suppress(FileNotFoundError):
            mode = path.lstat().st_mode
            if not stat.S_ISDIR(mode):
                what = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
                raise NotADirectoryError(f"{path} is {what}, not govcloud's own directory: remove it")
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile: tightened like any existing one
            directory.mkdir(mode=DIR_MODE)
        _tighten(directory, DIR_MODE)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """``path`` created empty as 0600 if missing (never through a symlink); an existing one of ours is tightened."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    _tighten(path, FILE_MODE)
    return path


ACL = "system.posix_acl_access"


def _tighten(path: Path, mode: int) -> None:
    """Drop group and other bits of a path this process's user owns (links are not followed). Where an
    access ACL names someone (the devcloud lets user ``postgres`` traverse to its data directory), the
    group bits are the ACL's mask: clearing them would revoke that grant, so the mask keeps search (x)
    and loses read and write — enough to pass through, not to list or change."""
    info = os.lstat(path)
    if info.st_uid != os.geteuid() or stat.S_ISLNK(info.st_mode):
        return
    drop = 0o067 if ACL in os.listxattr(path, follow_symlinks=False) else 0o077
    current = stat.S_IMODE(info.st_mode)
    if current & drop:
        os.chmod(path, current & ~drop | (mode & 0o700))
