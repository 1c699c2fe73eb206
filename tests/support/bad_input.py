"""A deterministic generator of bad inputs: mutations of the repository's own sample files (issue 11).

Used by ``tests/unit/test_bad_input.py`` (the assertions) and ``bench/bad_input.py`` (the figures).
Every case breaks exactly one thing in one file of a copy of the sample data, in a way that is wrong
wherever it lands (an unknown tag, an ambiguous number, an impossible date, a bomb, a FIFO…), and says
which file ``govcloud validate`` must name and on which line, or why no line can exist.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govcloud.model.loading import MAX_FILE_BYTES, MAX_PROVINCE_FILE_BYTES

REPO = Path(__file__).resolve().parents[2]
DATA = ["inventory/topology.yaml", "tenants.yaml", "users.yaml",
        *sorted(f"quotas/{p.name}" for p in (REPO / "quotas").glob("*.yaml")),
        *sorted(f"tickets/{p.name}" for p in (REPO / "tickets").glob("*.yaml"))]
ORIGINAL = {rel: (REPO / rel).read_bytes() for rel in DATA}

NO_LINE = {
    "not a regular file": "a FIFO, device, directory or socket has no lines",
    "cannot read file": "a symlink loop cannot be opened",
    "missing file": "a dangling link points at nothing",
    "file too large": "refused by size before it is parsed",
    "bad file name": "the file's name is what is wrong",
    "path too long": "the file's path is what is wrong",
}
"""The few refusals that cannot carry a line, by message, with the reason."""

Write = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One bad input: ``write`` breaks a fresh copy of the data at ``root``; ``file`` must be named in a
    problem, at ``line`` when given (None: any line > 0), or with one of ``NO_LINE``'s messages if ``no_line``."""

    name: str
    file: str
    write: Write
    line: int | None = None
    no_line: bool = False
    args: tuple[str, ...] = ()


def fresh_copy(root: Path) -> None:
    """The sample data under ``root`` (files only; cases add or replace what they break)."""
    if root.exists():
        shutil.rmtree(root)
    for rel, raw in ORIGINAL.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(raw)


def _put(rel: str, raw: bytes) -> Write:
    def write(root: Path) -> None:
        (root / rel).write_bytes(raw)
    return write


# --- values wrong wherever they land -------------------------------------------------------------

LOADER_VALUES = [
    "!foo x", "!secret hunter2", "!!python/object/apply:os.system [id]", "!!binary aGk=", "!!int zz", "!!bool maybe",
    "!!timestamp nope", "!!float 1", "!!null x", "!!int 1.5", "010", "0x1f", "0b101", "1_000", "1:30", "+012", "-0x10",
    "1_0.5", "190:20:30.15", "0777", "2027-02-30", "2026-13-01", "2027-02-29", "2026-00-10", "9" * 5000,
]
"""Refused by the loader itself, whatever the field: tags, YAML 1.1 numbers, impossible dates, huge ints."""

FIELD_VALUES = {
    "version": ["2", '"1"', "[1]", "{v: 1}", "1.0", "true", "~", "''"],
    "id": ["Bad_ID", '"-x"', '"a b"', '"t-2026-0001\\n"', "''", "[a]", "5", "x" * 80],
    "name": ["[]", "{}", "5", "true"],
    "count": ['"2"', "2.5", "[2]", "{}", "true", "0", "-1", "1001"],
    "kind": ["5", "[]", "nonsense", "~"],
    "ssh_key": ['"ssh-ed25519 AAAA x@y\\nssh-rsa AAAA evil"', '"command=\\"sh\\" ssh-ed25519 AAAA x"', "5"],
    "expires": ["nope", "5", "[2027-01-01]"],
}
"""Wrong for that field in every file that has it (only fields whose type is the same everywhere)."""

SCALAR = re.compile(r"(?<=: )[^,}\]\n#]+")


def _scalars(text: str) -> list[tuple[int, int, int, str]]:
    """(start, end, line, key) of every plain value after ``key: ``, outside comments and quotes."""
    found = []
    for match in SCALAR.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        before = text[line_start:match.start()]
        value = match.group().rstrip()
        if "#" in before or before.count('"') % 2 or before.count("'") % 2 or not value or value[0] in "[{&*|>'\"!":
            continue
        key = re.search(r"([A-Za-z_]+): $", before)
        found.append((match.start(), match.start() + len(value), text.count("\n", 0, match.start()) + 1, key.group(1) if key else ""))
    return found


def value_cases(rng: random.Random, per_file: int) -> Iterator[Case]:
    for rel in DATA:
        text = ORIGINAL[rel].decode("utf-8")
        spots = _scalars(text)
        for n, (start, end, line, _) in enumerate(rng.sample(spots, min(per_file, len(spots)))):
            value = LOADER_VALUES[(n + len(rel)) % len(LOADER_VALUES)]
            yield Case(f"{rel}:{line}:value:{value[:20]}", rel, _put(rel, (text[:start] + value + text[end:]).encode()), line)
        typed = [s for s in spots if s[3] in FIELD_VALUES]
        for start, end, line, key in rng.sample(typed, min(per_file // 2, len(typed))):
            value = rng.choice(FIELD_VALUES[key])
            yield Case(f"{rel}:{line}:{key}:{value[:20]}", rel, _put(rel, (text[:start] + value + text[end:]).encode()), line)


# --- keys -----------------------------------------------------------------------------------------

BAD_KEYS = ["2027-02-30: x", "!foo bar: x", "!!int zz: x", "010: x", "? [a]\n: x", "zz_unknown: 1", "1:30: x", "~: x",
            "true: x", "2026-01-01: x", "? {a: 1}\n: x", "\"\\ud800\": x"]


def key_cases(rng: random.Random, per_file: int) -> Iterator[Case]:
    """A bad key inserted before a top-level key (always a place where a key may go)."""
    for rel in DATA:
        lines = ORIGINAL[rel].decode("utf-8").splitlines(keepends=True)
        tops = [i for i, line in enumerate(lines) if re.match(r"[a-z_]+:", line)]
        for n, index in enumerate(rng.sample(tops, min(per_file, len(tops)))):
            key = BAD_KEYS[(n + len(rel)) % len(BAD_KEYS)]
            text = "".join(lines[:index]) + key + "\n" + "".join(lines[index:])
            yield Case(f"{rel}:{index + 1}:key:{key[:12]}", rel, _put(rel, text.encode()), index + 1)
        dup = lines[tops[0]]  # the first top-level key again, after the last one: reported at its second line
        text = "".join(lines) + ("" if lines[-1].endswith("\n") else "\n") + dup
        yield Case(f"{rel}:duplicate", rel, _put(rel, text.encode()), len(lines) + 1)


# --- bytes ----------------------------------------------------------------------------------------

BAD_BYTES = [b"\x00", b"\xff", b"\xc3", b"\xe4\xb8", b"\x07", b"\x1b[31m", "\u2028".encode(), b"\x85", "中文".encode("gbk"), b"\x7f"]


def byte_cases(rng: random.Random, per_file: int) -> Iterator[Case]:
    for rel in DATA:
        raw = ORIGINAL[rel]
        for n in range(per_file):
            junk = BAD_BYTES[(n + len(rel)) % len(BAD_BYTES)]
            at = rng.randrange(len(raw))
            while raw[at] & 0xC0 == 0x80:  # not inside a UTF-8 sequence: the line of the insert stays unambiguous
                at -= 1
            yield Case(f"{rel}:byte:{junk!r}@{at}", rel, _put(rel, raw[:at] + junk + raw[at:]), raw.count(b"\n", 0, at) + 1)
        yield Case(f"{rel}:utf16", rel, _put(rel, raw.decode("utf-8").encode("utf-16")), 1)
        yield Case(f"{rel}:gbk", rel, _put(rel, raw.decode("utf-8").encode("gb18030")), None)


# --- structure: bombs, depth ----------------------------------------------------------------------

def billion_laughs(levels: int) -> str:
    names = "abcdefghijklmnop"
    lines = ["zz_a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"zz_{names[i]}: &{names[i]} [" + ", ".join([f"*{names[i - 1]}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def structure_cases() -> Iterator[Case]:
    for rel in DATA:
        text = ORIGINAL[rel].decode("utf-8")
        lines = text.count("\n")
        for levels in (6, 9, 12):
            yield Case(f"{rel}:laughs{levels}", rel, _put(rel, (text + billion_laughs(levels)).encode()), lines + 5)
        base = "zz_base: &t {" + ", ".join(f"k{i}: [{', '.join(['v'] * 20)}]" for i in range(50)) + "}\n"
        fan = base + "zz_fan:\n" + "".join("  - *t\n" for _ in range(50))  # 1,101 nodes each: the 10th alias crosses
        yield Case(f"{rel}:fan", rel, _put(rel, (text + fan).encode()), lines + 2 + 10)
        yield Case(f"{rel}:merge-fan", rel, _put(rel, (text + fan.replace("  - *t\n", "  - {<<: *t}\n")).encode()), lines + 2 + 10)
        yield Case(f"{rel}:recursive", rel, _put(rel, (text + "zz_r: &r [x, *r]\n").encode()), lines + 1)
        yield Case(f"{rel}:deep-flow", rel, _put(rel, (text + "zz_d: " + "[" * 5000 + "]" * 5000 + "\n").encode()), lines + 1)
        yield Case(f"{rel}:deep-map", rel, _put(rel, (text + "zz_d: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n").encode()), lines + 1)
        yield Case(f"{rel}:huge-int", rel, _put(rel, (text + "zz_i: " + "9" * 100_000 + "\n").encode()), lines + 1)
        yield Case(f"{rel}:empty", rel, _put(rel, b""), None, no_line=True)  # "empty file": line 0 by definition
        bound = MAX_FILE_BYTES if rel.startswith("tickets/") else MAX_PROVINCE_FILE_BYTES  # the admins' files have a larger one
        yield Case(f"{rel}:oversize", rel, _put(rel, ORIGINAL[rel] + b"#" + b"x" * bound + b"\n"), no_line=True)


NO_LINE["empty file"] = "an empty file has no line to point at"


# --- the file itself: non-regular, names, links ---------------------------------------------------

def _replace_with(rel: str, make: Callable[[Path], None]) -> Write:
    def write(root: Path) -> None:
        (root / rel).unlink()
        make(root / rel)
    return write


def _socket(path: Path) -> None:
    import socket

    here = os.getcwd()
    os.chdir(path.parent)  # AF_UNIX names are limited to 108 bytes: bind relative to the directory
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path.name)
        sock.close()
    finally:
        os.chdir(here)


def _loop(path: Path) -> None:
    (path.parent / "zz-loop.yaml").symlink_to(path.name)
    path.symlink_to("zz-loop.yaml")


FILE_KINDS: list[tuple[str, Callable[[Path], None], str]] = [
    ("fifo", os.mkfifo, "not a regular file"),
    ("dir", lambda p: p.mkdir(), "not a regular file"),
    ("dev-zero", lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
    ("dev-null", lambda p: p.symlink_to("/dev/null"), "not a regular file"),
    ("socket", _socket, "not a regular file"),
    ("loop", _loop, "cannot read file"),
    ("dangling", lambda p: p.symlink_to("nowhere.yaml"), "missing file"),
]


def file_cases() -> Iterator[Case]:
    for rel in DATA:
        if rel.startswith("tickets/") and rel != DATA[-1]:
            continue  # every ticket file behaves alike here; one stands for all
        for kind, make, _ in FILE_KINDS:
            yield Case(f"{rel}:{kind}", rel, _replace_with(rel, make), no_line=True)
    for folder in ("tickets", "quotas"):
        for label, name in (("non-utf8", b"t-\xff\xfe.yaml"), ("control", b"t-\n\x1b[31m.yaml"), ("latin1", "t-é.yaml".encode("latin-1"))):
            shown = os.fsencode(name).decode("utf-8", "backslashreplace")
            shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in shown)
            source = "tickets/t-2026-0001-small.yaml" if folder == "tickets" else "quotas/sectors.yaml"

            def write(root: Path, name: bytes = name, folder: str = folder, source: str = source) -> None:
                (root / source).rename(root / os.fsdecode(os.fsencode(folder) + b"/" + name))
            yield Case(f"{folder}:{label}-name", f"{folder}/{shown}", write, no_line=True)


def long_path_case() -> Case:
    """A ticket named on the command line by a path longer than the store's column (shown cut at 80)."""
    rel = "tickets/" + "d" * 250 + "/" + "e" * 250 + "/t.yaml"

    def write(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True)
        (root / rel).write_bytes(ORIGINAL["tickets/t-2026-0001-small.yaml"].replace(b"t-2026-0001", b"t-2026-0999"))
    return Case("long-path", rel[:80] + "…", write, no_line=True, args=(rel,))


def cases(seed: int = 11) -> list[Case]:
    """Every case, in a fixed order (the same list on every run)."""
    rng = random.Random(seed)
    return [*value_cases(rng, 32), *key_cases(rng, 8), *byte_cases(rng, 16), *structure_cases(), *file_cases(), long_path_case()]


# --- running a case through the real CLI ----------------------------------------------------------

@dataclass(frozen=True)
class Result:
    """What ``govcloud validate -o json`` did with one case."""

    case: Case
    code: int
    problems: list[dict[str, Any]]
    stderr: str
    seconds: float

    def failure(self) -> str | None:
        """Why this result breaks the rules (exit 2, the file named, a line or a stated reason), or None."""
        if self.code != 2 or "internal error" in self.stderr or "Traceback" in self.stderr:
            return f"exit {self.code}: {self.stderr.strip()[-300:]}"
        mine = [p for p in self.problems if p["file"] == self.case.file]
        if not mine:
            return f"no problem names {self.case.file}: {[(p['file'], p['line'], p['message']) for p in self.problems][:5]}"
        if self.case.no_line:
            if not any(p["line"] > 0 or p["message"] in NO_LINE for p in mine):
                return f"no line and no stated reason: {mine}"
        elif self.case.line is not None and not any(p["line"] == self.case.line for p in mine):
            return f"expected line {self.case.line}: {[(p['line'], p['message']) for p in mine]}"
        elif not any(p["line"] > 0 for p in mine):
            return f"no line: {mine}"
        return None

    @property
    def has_line(self) -> bool:
        return any(p["file"] == self.case.file and p["line"] > 0 for p in self.problems)


def run_validate(root: Path, args: tuple[str, ...] = ()) -> tuple[int, str, str]:
    """``govcloud --root ROOT validate -o json ARGS`` in this process through ``main``: code, stdout, stderr."""
    from click.testing import CliRunner

    from govcloud.cli import main

    runner = CliRunner()
    code: Any = 0
    with runner.isolation() as (out, err, _):
        try:
            main(["--root", str(root), "validate", "-o", "json", *(str(root / a) for a in args)])
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace")


def run_case(case: Case, root: Path) -> Result:
    """A fresh copy of the data at ``root``, broken by ``case``, validated by the CLI."""
    fresh_copy(root)
    case.write(root)
    started = time.monotonic()
    code, out, err = run_validate(root, case.args)
    seconds = time.monotonic() - started
    try:
        problems = json.loads(out)["problems"] if out.strip() else []
    except ValueError:
        problems = []
    return Result(case, code, problems, err, seconds)


@contextlib.contextmanager
def parse_memo() -> Iterator[None]:
    """Parse each distinct (text, file) once while the block runs.

    ``loading.parse`` is a pure function of its arguments; every case changes one file and leaves
    fourteen alone, so re-parsing those fourteen a thousand times measures nothing. The broken file
    still goes through the real ``parse`` (its text is new), and every file through the real ``read``.
    """
    from govcloud.model import loading

    real = loading.parse
    memo: dict[tuple[Any, ...], Any] = {}

    def parse(text: str, file: str, **options: Any) -> Any:
        key = (text, file, *sorted(options.items()))
        if key not in memo:
            memo[key] = real(text, file, **options)  # a ConfigError is raised, never stored: broken texts are parsed every time
        return memo[key]

    loading.parse = parse  # type: ignore[assignment]
    try:
        yield
    finally:
        loading.parse = real  # type: ignore[assignment]


_REPORT_PEAK = """
import atexit, runpy, sys
def peak():
    with open("/proc/self/status") as status:
        hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write(f"\\nVmHWM {hwm}\\n")
atexit.register(peak)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
"""Runs ``cli.py`` and reports the process's own peak RSS (VmHWM). Not ``wait4``'s ``ru_maxrss``: that
also counts the parent's pages the child had before ``exec`` (the test runner's, some 120 MB)."""


def run_cli_process(root: Path, args: tuple[str, ...] = (), timeout: float = 30) -> tuple[int, float, int, str]:
    """``python3 cli.py --root ROOT validate ARGS`` in a fresh process: exit code, seconds, peak RSS (bytes), stderr."""
    import subprocess
    import sys

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _REPORT_PEAK, str(REPO / "cli.py"), "--root", str(root), "validate",
                           *(str(root / a) for a in args)], capture_output=True, timeout=timeout, check=False)
    seconds = time.monotonic() - started
    err = done.stderr.decode("utf-8", "replace")
    match = re.search(r"VmHWM (\d+)\n\Z", err)
    peak = int(match.group(1)) * 1024 if match else -1
    return done.returncode, seconds, peak, err
