"""The inbox's trust model: ``<inbox>/<user>/`` submits as that user; links, FIFOs, other owners'
files and the old top-level layout are moved aside unread; what govcloud keeps is private."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from govcloud.engine import inbox
from govcloud.engine.context import EngineContext
from govcloud.errors import InputError, NotFound, PermissionDenied
from govcloud.store import tickets as rows
from tests.support.fakecloud import FakeCloud, three_centres
from tests.support.tickets import write_ticket
from tests.unit.daemon.test_daemon import context

SECRET = "s3cr3t-Sh4d0w-line: do not copy me"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[EngineContext]:
    cloud: FakeCloud = three_centres()
    context_ = context(tmp_path, cloud)
    context_.settings.inbox.mkdir(parents=True)
    yield context_
    context_.store.close()


def mine(ctx: EngineContext, user: str = "caijing") -> Path:
    directory = ctx.settings.inbox / user
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def ticket_in(directory: Path, requester: str = "caijing", tenant: str = "gd-mzt", system: str = "mzoa") -> tuple[str, Path]:
    return write_ticket(directory, tenant=tenant, system=system, requester=requester, roles=(), expires="2027-01-31",
                        vms=[{"name": "web", "count": 1, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])


def stored(ctx: EngineContext, ticket_id: str) -> bool:
    with ctx.store.transaction() as conn:
        return rows.get(conn, ticket_id) is not None


def failed(ctx: EngineContext) -> dict[str, Path]:
    return {p.name.split("-", 1)[1]: p for p in (ctx.settings.inbox / "failed").iterdir()}


def audit_text(ctx: EngineContext) -> str:
    return json.dumps([r.as_dict() for r in ctx.store.audit.records()], ensure_ascii=False)


def test_a_file_in_its_users_directory_is_submitted_as_that_user(ctx: EngineContext) -> None:
    ticket_id, _ = ticket_in(mine(ctx))
    (result,) = inbox.scan(ctx, ctx.settings.inbox, settle=0)
    assert result.outcome in ("submitted", "approved") and result.file == f"caijing/{ticket_id}.yaml"
    with ctx.store.transaction() as conn:
        assert rows.require(conn, ticket_id).submitted_by == "caijing"


def test_a_requester_field_naming_someone_else_is_refused(ctx: EngineContext) -> None:
    """caijing's directory, a ticket saying requester sunkai (for sunkai's tenant): never submitted."""
    ticket_id, _ = ticket_in(mine(ctx), requester="sunkai", tenant="gd-gat", system="oa")
    (result,) = inbox.scan(ctx, ctx.settings.inbox, settle=0)
    assert result.outcome == "refused" and not stored(ctx, ticket_id)
    assert "requester is not the owner of this inbox directory" in result.detail and "'caijing'" in result.detail
    assert "requester" in failed(ctx)[f"caijing-{ticket_id}.yaml.error"].read_text(encoding="utf-8")


def test_a_symlink_is_moved_aside_unread(ctx: EngineContext, tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    link = mine(ctx) / "evil.yaml"
    link.symlink_to(secret)
    top = ctx.settings.inbox / "sunkai"
    top.symlink_to(tmp_path)  # a "user directory" that is a link: not followed either
    results = inbox.scan(ctx, ctx.settings.inbox, settle=0)
    assert sorted(r.outcome for r in results) == ["refused", "refused"]
    moved = failed(ctx)
    assert moved["caijing-evil.yaml"].is_symlink() and moved["sunkai"].is_symlink()  # the links themselves, renamed
    assert secret.read_text(encoding="utf-8") == SECRET + "\n" and (tmp_path / "shadow").exists()
    error = moved["caijing-evil.yaml.error"].read_text(encoding="utf-8")
    assert "symbolic link" in error and "not followed" in error and SECRET not in error
    assert SECRET not in moved["sunkai.error"].read_text(encoding="utf-8")
    assert SECRET not in audit_text(ctx) and "inbox:caijing/evil.yaml" in audit_text(ctx)


def test_a_fifo_does_not_hang_the_daemon(ctx: EngineContext) -> None:
    os.mkfifo(mine(ctx) / "pipe.yaml")
    results: list[inbox.InboxResult] = []
    worker = threading.Thread(target=lambda: results.extend(inbox.scan(ctx, ctx.settings.inbox, settle=0)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "scanning a FIFO blocked"
    (result,) = results
    assert result.outcome == "refused" and "FIFO" in result.detail
    assert stat.S_ISFIFO(failed(ctx)["caijing-pipe.yaml"].lstat().st_mode)


def test_a_file_of_another_owner_is_refused_unread(ctx: EngineContext) -> None:
    directory = mine(ctx)
    ticket_id, path = ticket_in(directory)
    os.chown(path, directory.stat().st_uid + 4242, directory.stat().st_gid + 4242)
    (result,) = inbox.scan(ctx, ctx.settings.inbox, settle=0)
    assert result.outcome == "refused" and not stored(ctx, ticket_id)
    assert f"owned by uid {directory.stat().st_uid + 4242}" in result.detail and "not read" in result.detail


def test_a_directory_others_may_write_is_not_trusted(ctx: EngineContext) -> None:
    directory = mine(ctx)
    directory.chmod(0o777)
    ticket_id, _ = ticket_in(directory)
    (result,) = inbox.scan(ctx, ctx.settings.inbox, settle=0)
    assert result.outcome == "refused" and "writable by everyone" in result.detail and not stored(ctx, ticket_id)


def test_a_directory_of_no_user_or_a_writable_inbox_takes_nothing(ctx: EngineContext) -> None:
    ticket_id, _ = ticket_in(mine(ctx, "system"), requester="system")  # the engine's own actor is no inbox user
    (result,) = inbox.scan(ctx, ctx.settings.inbox, settle=0)
    assert result.outcome == "refused" and "no user 'system' in users.yaml" in result.detail and not stored(ctx, ticket_id)
    ticket_id, path = ticket_in(mine(ctx))
    ctx.settings.inbox.chmod(0o777)
    (result,) = inbox.scan(ctx, ctx.settings.inbox, settle=0)
    assert result.outcome == "refused" and "writable by everyone" in result.detail and path.exists() and not stored(ctx, ticket_id)


def test_the_old_top_level_layout_is_refused_with_where_to_put_it(ctx: EngineContext) -> None:
    ticket_id, _ = ticket_in(ctx.settings.inbox)
    (result,) = inbox.scan(ctx, ctx.settings.inbox, settle=0)
    assert result.outcome == "refused" and not stored(ctx, ticket_id)
    assert f"put it in {ctx.settings.inbox}/<your user id>/" in failed(ctx)[f"{ticket_id}.yaml.error"].read_text(encoding="utf-8")


def test_a_file_over_the_size_limit_is_not_read(ctx: EngineContext) -> None:
    big = mine(ctx) / "big.yaml"
    with big.open("wb") as out:
        out.truncate(inbox.MAX_TICKET_BYTES + 1)
    (result,) = inbox.scan(ctx, ctx.settings.inbox, settle=0)
    assert result.outcome == "refused" and "over the limit" in result.detail


def test_what_govcloud_keeps_is_private_whatever_the_umask(ctx: EngineContext) -> None:
    old = os.umask(0o022)
    try:
        directory = mine(ctx)
        ok, path = ticket_in(directory)
        path.chmod(0o644)
        bad = directory / "bad.yaml"
        bad.write_text("version: 1\nid: t-bad\n", encoding="utf-8")
        bad.chmod(0o644)
        (directory / "link.yaml").symlink_to(bad)
        (ctx.settings.inbox / "done").mkdir(mode=0o755)  # as an older govcloud left it
        inbox.scan(ctx, ctx.settings.inbox, settle=0)
    finally:
        os.umask(old)
    assert stored(ctx, ok)
    for name in inbox.PRIVATE_DIRS:
        assert stat.S_IMODE((ctx.settings.inbox / name).stat().st_mode) == 0o700, name
    kept = [p for name in ("done", "failed") for p in (ctx.settings.inbox / name).iterdir() if not p.is_symlink()]
    assert len(kept) == 4  # the submitted copy, the refused copy, both .error files (a link has no mode of its own)
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in kept} == {oct(0o600)}


def test_inbox_add_makes_a_directory_whose_owners_files_are_taken(ctx: EngineContext) -> None:
    """``govcloud inbox add caijing --owner ACCOUNT``: 0700, owned by the account; that account's files are
    submitted as caijing, root's are not (the directory's owner is the only one trusted)."""
    department = 4242
    directory = inbox.add_user_directory(ctx, ctx.settings.inbox, "caijing", owner=department)
    st = directory.lstat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (department, 0o700)
    theirs, path = ticket_in(directory)
    os.chown(path, department, department)
    ours, _ = ticket_in(directory)
    results = {r.file: r for r in inbox.scan(ctx, ctx.settings.inbox, settle=0)}
    assert results[f"caijing/{theirs}.yaml"].outcome in ("submitted", "approved") and stored(ctx, theirs)
    assert results[f"caijing/{ours}.yaml"].outcome == "refused" and not stored(ctx, ours)
    group = inbox.add_user_directory(ctx, ctx.settings.inbox, "sunkai", owner=department, group=os.getegid())
    assert stat.S_IMODE(group.stat().st_mode) == 0o770 and inbox._loose(group.stat()) is None  # the daemon's group may write


def test_inbox_add_refuses_who_may_not_submit(ctx: EngineContext) -> None:
    with pytest.raises(NotFound):
        inbox.add_user_directory(ctx, ctx.settings.inbox, "nobody", owner=4242)
    with pytest.raises(PermissionDenied, match="has role approver"):
        inbox.add_user_directory(ctx, ctx.settings.inbox, "shenpi-chen", owner=4242)
    (ctx.settings.inbox / "caijing").symlink_to(ctx.settings.inbox)
    with pytest.raises(InputError, match="not a directory"):
        inbox.add_user_directory(ctx, ctx.settings.inbox, "caijing", owner=4242)


def test_a_directory_the_daemon_cannot_read_does_not_stop_the_others(ctx: EngineContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-root daemon and a department directory without the daemon's group: that one is skipped (and
    logged), every other user's files are still taken and the pass goes on to apply."""
    blocked = mine(ctx)
    ticket_in(blocked)
    taken, _ = ticket_in(mine(ctx, "sunkai"), requester="sunkai", tenant="gd-gat", system="oa")
    real = Path.iterdir

    def iterdir(self: Path) -> Iterator[Path]:
        if self == blocked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    (result,) = inbox.scan(ctx, ctx.settings.inbox, settle=0)
    assert result.file == f"sunkai/{taken}.yaml" and stored(ctx, taken)


def test_a_planted_claimed_link_is_refused_not_written_through(ctx: EngineContext, tmp_path: Path) -> None:
    """``claimed/`` is govcloud's own directory (files.private_dir with follow_links=False): a link put in
    its place stops the pass before a byte of the ticket is copied through it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (ctx.settings.inbox / "claimed").symlink_to(elsewhere)
    ticket_id, _ = ticket_in(mine(ctx))
    with pytest.raises(NotADirectoryError, match="is a symbolic link, not govcloud's own directory"):
        inbox.scan(ctx, ctx.settings.inbox, settle=0)
    assert list(elsewhere.iterdir()) == [] and not stored(ctx, ticket_id)
