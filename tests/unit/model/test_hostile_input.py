"""Hostile input (issue 11, items 10, 13, 14): every case is refused with file and line, fast and small.

Each test pins one hole an adversarial run found: it used to hang, eat gigabytes, crash with "internal
error" (exit 1) or silently load a wrong value.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest

from govcloud.errors import ConfigError, Problem
from govcloud.model import loading
from govcloud.model.state import load_state
from govcloud.settings import DataPaths
from tests.unit.model.test_corpus import TEN, TIC, TOPO, R, make_dataset, problems_of


def _problems(root: Path, ticket_files: list[Path] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        load_state(DataPaths(root=root), ticket_files)
    return info.value.problems


def _where(problems: list[Problem]) -> list[tuple[str, int, str, str]]:
    return [(p.file, p.line, p.key, p.message) for p in problems]


# --- 13: bombs, non-regular files, oversize ----------------------------------------------------

def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnop"
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [" + ",".join([f"*{names[i - 1]}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("rel", [TEN, TOPO, "quotas/quotas.yaml", TIC])
def test_billion_laughs_is_refused_quickly(rel: str, tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {rel: billion_laughs()})
    tracemalloc.start()
    started = time.monotonic()
    try:
        problems = _problems(root)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.monotonic() - started < 2
    assert peak < 50 * 2**20
    mine = [p for p in problems if p.file == rel]
    assert [(p.line, p.message) for p in mine] == [(5, "aliases expand too far")]  # the first *d crosses 10,000


def test_aliases_fanning_out_tenants_are_refused(tmp_path: Path) -> None:
    """A tenant list of aliases, each standing for a large mapping: the validator would chew on it for minutes."""
    tenant = "{id: x, name: n, kind: other, contacts: [{name: c}], clouds: [gd-prov], systems: [" + \
        ", ".join(f"{{id: s{i}, name: s, protection: none, owner: o}}" for i in range(100)) + "]}"
    text = f"version: 1\nbase: &t {tenant}\ntenants:\n" + "".join("  - *t\n" for _ in range(100))
    root = make_dataset(tmp_path, {TEN: text})
    assert [(p.file, p.line, p.message) for p in _problems(root) if p.file == TEN] == [(TEN, 14, "aliases expand too far")]  # the 11th *t


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    """Shared values through anchors and merge keys stay allowed below the bound."""
    root = make_dataset(tmp_path, {TIC: [R("reason: 户籍系统扩容", "reason: &img debian-12"),
                                         R("    image: debian-12\n", "    image: *img\n")]})
    state = load_state(DataPaths(root=root))
    assert state.tickets[0].vms[0].image == "debian-12"


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {TIC: R("roles: [baseline]", "roles: &r [baseline, *r]")})
    assert _where(_problems(root)) == [(TIC, 10, "", "recursive alias")]


def test_fifo_does_not_hang(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {})
    os.mkfifo(root / "tickets" / "pipe.yaml")  # found by the directory listing, and named on the command line
    started = time.monotonic()
    assert _where(_problems(root)) == [("tickets/pipe.yaml", 0, "", "not a regular file")]
    assert _where(_problems(root, [root / "tickets" / "pipe.yaml"])) == [("tickets/pipe.yaml", 0, "", "not a regular file")]
    assert time.monotonic() - started < 2


def test_device_is_not_read(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {})
    problems = _problems(root, [Path("/dev/zero")])
    assert [(p.file, p.message, p.found) for p in problems] == [("/dev/zero", "not a regular file", "a character device")]


def test_oversize_file_is_refused_unparsed(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {TIC: "reason: " + "x" * loading.MAX_FILE_BYTES + "\n"})
    assert _where(_problems(root)) == [(TIC, 0, "", "file too large")]


def test_file_at_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    body = "a: b\n# "
    path.write_text(body + "x" * (loading.MAX_FILE_BYTES - len(body)), encoding="ascii")
    assert loading.read(path).data == {"a": "b"}


def test_symlink_loop(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {})
    (root / "tickets" / "a.yaml").symlink_to("b.yaml")
    (root / "tickets" / "b.yaml").symlink_to("a.yaml")
    assert [(p.file, p.found) for p in _problems(root)] == [("tickets/a.yaml", "a symbolic link loop"),
                                                            ("tickets/b.yaml", "a symbolic link loop")]


def test_symlink_refused_when_asked(tmp_path: Path) -> None:
    (tmp_path / "real.yaml").write_text("a: 1\n", encoding="utf-8")
    (tmp_path / "link.yaml").symlink_to("real.yaml")
    assert loading.read(tmp_path / "link.yaml").data == {"a": 1}
    with pytest.raises(ConfigError) as info:
        loading.read(tmp_path / "link.yaml", follow_symlinks=False)
    assert info.value.problems[0].found == "a symbolic link"


# --- 14: names, tags, dates, numbers, keys --------------------------------------------------------

def test_non_utf8_file_name(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {})
    name = os.fsdecode(b"tickets/t-\xff.yaml")
    (root / "tickets" / "t-1.yaml").rename(root / name)
    problems = _problems(root)
    assert _where(problems) == [("tickets/t-\\xff.yaml", 0, "", "bad file name")]
    problems[0].render().encode("utf-8")  # printable, storable


def test_path_longer_than_the_store_column(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {})
    deep = root / "tickets" / ("d" * 200) / ("e" * 200)
    deep.mkdir(parents=True)
    ticket = deep / ("t" * 120 + ".yaml")
    ticket.write_bytes((root / TIC).read_bytes())
    problems = _problems(root, [ticket])
    assert [(p.line, p.message) for p in problems] == [(0, "path too long")]
    assert f"a path of {len(str(ticket))} characters" == problems[0].found


@pytest.mark.parametrize(("old", "new", "line", "key", "message"), [
    ("reason: 户籍系统扩容", "2027-02-30: x", 9, "", "cannot read value"),
    ("reason: 户籍系统扩容", "!foo bar: x", 9, "", "unsupported YAML tag"),
    ("reason: 户籍系统扩容", "!!int zz: x", 9, "", "tag does not match its value"),
    ("expires: 2027-12-31", "expires: !!timestamp nope", 8, "expires", "tag does not match its value"),
    ("kind: create", "kind: !!bool maybe", 7, "kind", "tag does not match its value"),
    ("kind: create", "kind: !!float 1", 7, "kind", "tag does not match its value"),
    ("count: 2", "count: 010", 13, "vms[0].count", "ambiguous number"),
    ("count: 2", "count: 0o10", 13, "vms[0].count", "wrong type"),  # YAML 1.1 has no 0o: text
    ("count: 2", "count: 0x2", 13, "vms[0].count", "ambiguous number"),
    ("count: 2", "count: 0b10", 13, "vms[0].count", "ambiguous number"),
    ("count: 2", "count: 1_0", 13, "vms[0].count", "ambiguous number"),
    ("count: 2", "count: 1:30", 13, "vms[0].count", "ambiguous number"),
    ("count: 2", "count: +02", 13, "vms[0].count", "ambiguous number"),
    ("count: 2", "count: 1_0.5", 13, "vms[0].count", "ambiguous number"),
    ("count: 2", "count: 1:30.5", 13, "vms[0].count", "ambiguous number"),
    pytest.param("count: 2", "count: " + "1" * 5000 + ":30", 13, "vms[0].count", "ambiguous number", id="huge-sexagesimal"),
    ("id: t-1", 'id: "t-1\\n"', 3, "id", "not a valid id"),
])
def test_refused_with_line(old: str, new: str, line: int, key: str, message: str, tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {TIC: R(old, new)})
    assert _where(_problems(root)) == [(TIC, line, key, message)]


def test_octal_message_says_what_yaml_would_read(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {TIC: R("count: 2", "count: 010")})
    assert _problems(root)[0].found == "'010' (YAML 1.1 reads it as 8)"


def test_plain_numbers_and_explicit_tags_that_agree_still_load(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {TIC: [R("count: 2", "count: !!int 2"), R("kind: create", "kind: !!str create")]})
    assert load_state(DataPaths(root=root)).tickets[0].vms[0].count == 2


@pytest.mark.parametrize("key", [
    "ssh-ed25519 AAAAC3Nz x@y\\nssh-ed25519 AAAAother evil@z",  # a second authorized key
    'command=\\"sh\\" ssh-ed25519 AAAAC3Nz x@y',  # an option that changes what the key may do
    "ssh-ed25519 AAAAC3Nz x@y\\r",
    "not a key",
])
def test_ssh_key_must_be_one_public_key(key: str, tmp_path: Path) -> None:
    contact = "{name: 孙凯, email: sunkai@gdga.gov.cn}"
    root = make_dataset(tmp_path, {TEN: R(contact, f'{{name: 孙凯, email: sunkai@gdga.gov.cn, ssh_key: "{key}"}}')})
    problems = _problems(root)
    assert _where(problems) == [(TEN, 17, "tenants[1].contacts[0].ssh_key", "not a single public key")]
    assert "\n" not in problems[0].render()


def test_ssh_key_one_line_is_accepted(tmp_path: Path) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIENHgyPQQ17S2NJVOERan4lUvgOl3awnDzGxL6S4X8j5 sunkai@gd-gat-ops"
    root = make_dataset(tmp_path, {TEN: R("{name: 孙凯, email: sunkai@gdga.gov.cn}", f'{{name: 孙凯, ssh_key: "{key}"}}')})
    assert load_state(DataPaths(root=root)).tenants["gd-gat"].contacts[0].ssh_key == key


def test_email_with_line_break(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {TEN: R("email: sunkai@gdga.gov.cn", 'email: "sunkai@gdga.gov.cn\\nBcc: x"')})
    assert _where(_problems(root)) == [(TEN, 17, "tenants[1].contacts[0].email", "line break or control character")]


def test_trailing_newline_id_is_not_a_second_ticket(tmp_path: Path) -> None:
    """``re.match`` with ``$`` accepted ``t-1\\n``; stored beside ``t-1`` it was a second ticket."""
    root = make_dataset(tmp_path, {})
    other = root / "tickets" / "t-1b.yaml"
    other.write_text((root / TIC).read_text(encoding="utf-8").replace("id: t-1", 'id: "t-1\\n"'), encoding="utf-8")
    assert problems_of(root) == [
        "tickets/t-1b.yaml:3: id: not a valid id (found: text 't-1\\n'; expected: a slug: lowercase a-z, 0-9 and '-', "
        "starting with a letter, at most 63 characters)"]


def test_link_is_named_as_written_not_by_its_target(tmp_path: Path) -> None:
    """Found by the generator: a tenants.yaml linked to /dev/zero was reported as '/tmp/…/tenants.yaml'."""
    root = make_dataset(tmp_path, {})
    (root / TEN).unlink()
    (root / TEN).symlink_to("/dev/zero")
    assert _where(_problems(root)) == [(TEN, 0, "", "not a regular file")]


def test_dangling_users_link_is_reported(tmp_path: Path) -> None:
    """users.yaml is optional, but a link to nothing is a mistake, not 'no users'."""
    root = make_dataset(tmp_path, {})
    (root / "users.yaml").symlink_to("nowhere.yaml")
    assert _where(_problems(root)) == [("users.yaml", 0, "", "missing file")]


def test_directory_named_like_a_quota_file_is_reported(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {})
    (root / "quotas" / "more.yaml").mkdir()
    assert _where(_problems(root)) == [("quotas/more.yaml", 0, "", "not a regular file")]
