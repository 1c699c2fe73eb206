"""Property tests: random mutations of the minimal dataset never crash the validator.

Whatever an admin's editor does to a file (a deleted or doubled line, swapped lines, a value replaced
by anything, stray bytes, a truncated save, broken indentation), ``load_state`` either loads or raises
one ``ConfigError`` whose problems all say where and what; the CLI exits 0 or 2 and never prints a
traceback.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govcloud.cli import main
from govcloud.errors import ConfigError
from govcloud.model.state import load_state
from govcloud.settings import DataPaths

MINIMAL = Path(__file__).resolve().parents[2] / "data" / "minimal"
FILES = ("inventory/topology.yaml", "tenants.yaml", "quotas/policy.yaml", "quotas/quotas.yaml", "tickets/t-1.yaml")
ORIGINAL = {name: (MINIMAL / name).read_bytes() for name in FILES}

SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# A scalar after "key: " in block or flow style, up to the next separator.
SCALAR = re.compile(rb"(?<=: )[^,}\]\n]+")

# Replacement values, including the ones that once crashed the validator (B7 '.nan', B10 '!foo').
ODD_VALUES = [".nan", ".inf", "~", "", "true", "no", "-1", "0", "1.0e+309", "-.inf", "2027-02-30", "2027-12-31T10:00:00", "'x'", '"',
              "[", "{", "}", "&a", "*a", "!!binary aGk=", "!foo x", "<<", "? x", "- x", "|", ">", "@", "`", "%", "#",
              "gd-prov", "gd-gat", "gc.small", "hukou", "main", "dr", "provincial", "城市", "x" * 100]
values = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.text(max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats().map(repr),
    st.lists(st.sampled_from(["a", "1", "gd-prov", "[]", "{}", "~"]), max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.dictionaries(st.sampled_from(["vcpus", "cpu", "id", "x"]), st.integers(-5, 5), max_size=3).map(
        lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"),
)


def _lines(raw: bytes) -> list[bytes]:
    return raw.splitlines(keepends=True)


BIG = st.integers(0, 10**6)
"""Positions are drawn as large numbers and taken modulo the size of the file *when applied*, because
an earlier edit of the same file may have changed its length."""


@st.composite
def mutation(draw: st.DrawFn) -> tuple[str, str, Any]:
    """(file, kind, parameters): one edit, described so that a failure report is readable."""
    name = draw(st.sampled_from(FILES))
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "scalar", "bytes", "truncate", "indent"]))
    if kind in ("delete", "duplicate", "truncate"):
        return name, kind, draw(BIG)
    if kind == "swap":
        return name, kind, (draw(BIG), draw(BIG))
    if kind == "scalar":
        return name, kind, (draw(BIG), draw(values))
    if kind == "bytes":
        junk = draw(st.one_of(st.binary(min_size=1, max_size=8),
                              st.sampled_from([b"\xff", b"\xc3", b"\xe4\xb8", b"\x00", b"\t", b"\r", b"\xef\xbb\xbf", b"\x85",
                                               "中文".encode("gbk"), "\u2028".encode()])))
        return name, kind, (draw(BIG), junk)
    return name, kind, (draw(BIG), draw(st.sampled_from([-4, -2, -1, 1, 2, 4, "tab"])))


def apply(raw: bytes, kind: str, arg: Any) -> bytes:
    """``raw`` with one edit applied (an edit that has nothing to act on leaves it unchanged)."""
    lines = _lines(raw)
    if kind == "truncate":
        return raw[: arg % (len(raw) + 1)]
    if kind == "bytes":
        at, junk = arg
        at %= len(raw) + 1
        return raw[:at] + junk + raw[at:]
    if kind == "scalar":
        index, value = arg
        matches = list(SCALAR.finditer(raw))
        if not matches:
            return raw
        match = matches[index % len(matches)]
        return raw[: match.start()] + value.encode("utf-8", "surrogatepass") + raw[match.end():]
    if not lines:
        return raw
    if kind == "delete":
        del lines[arg % len(lines)]
    elif kind == "duplicate":
        index = arg % len(lines)
        lines.insert(index, lines[index])
    elif kind == "swap":
        i, j = (a % len(lines) for a in arg)
        lines[i], lines[j] = lines[j], lines[i]
    else:
        index, shift = arg
        index %= len(lines)
        line = lines[index]
        body = line.lstrip(b" ")
        indent = len(line) - len(body)
        lines[index] = (b"\t" + body) if shift == "tab" else b" " * max(0, indent + shift) + body
    return b"".join(lines)


def write_dataset(root: Path, edits: list[tuple[str, str, Any]]) -> None:
    contents = dict(ORIGINAL)
    for name, kind, arg in edits:
        contents[name] = apply(contents[name], kind, arg)
    for name, raw in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """``govcloud ARGS`` in-process through ``main`` (which maps errors to exit codes): code, stdout, stderr."""
    runner = CliRunner()
    code: Any = None
    with runner.isolation() as (out, err, _):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace")


edit_lists = st.lists(mutation(), min_size=1, max_size=3)


@SETTINGS
@given(edits=edit_lists)
def test_mutations_raise_only_config_errors(edits: list[tuple[str, str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dataset(root, edits)
        try:
            load_state(DataPaths(root=root))
        except ConfigError as exc:
            assert exc.problems
            for problem in exc.problems:
                assert problem.file, problem
                assert problem.line >= 0, problem
                assert problem.found, problem
                assert problem.expected, problem
                if problem.line > 0 and (root / problem.file).is_file():
                    assert problem.line <= len(_lines((root / problem.file).read_bytes())) + 1, problem
                assert problem.render().startswith(problem.file)


@SETTINGS
@given(edits=edit_lists, json_output=st.booleans())
def test_cli_exits_0_or_2_without_traceback(edits: list[tuple[str, str, Any]], json_output: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dataset(root, edits)
        code, out, err = run_cli(["--root", str(root), "validate", *(["-o", "json"] if json_output else [])])
        assert code in (0, 2), (code, out, err)
        assert "Traceback" not in out + err
        assert "internal error" not in err
        if json_output:
            report = json.loads(out)
            # The exit code of -o json is not tied to "ok" here: known bug B13, see test_validate_json_exit_code.
            assert report["ok"] is not bool(report["problems"])
        elif code == 2:
            assert err.splitlines()[-1].endswith("problem(s) found; nothing was changed")
            assert all(line.startswith("error: ") for line in err.splitlines()[:-1] if not line.startswith(" "))


def write_broken(root: Path) -> None:
    """The minimal dataset with two problems in two files."""
    write_dataset(root, [])
    for name, old, new in (("tenants.yaml", b"version: 1", b"version: 2"), ("tickets/t-1.yaml", b"gc.small", b"gc.tiny")):
        (root / name).write_bytes(ORIGINAL[name].replace(old, new))


def test_validate_json_exit_code(tmp_path: Path) -> None:
    write_broken(tmp_path)
    code, out, _ = run_cli(["--root", str(tmp_path), "validate", "-o", "json"])
    assert json.loads(out)["ok"] is False
    assert code == 2


def test_validate_json_lists_every_problem(tmp_path: Path) -> None:
    write_broken(tmp_path)
    _, out, err = run_cli(["--root", str(tmp_path), "validate", "-o", "json"])
    assert err == ""
    report = json.loads(out)
    assert report["ok"] is False
    assert report["problems"] == [
        {"file": "tenants.yaml", "line": 2, "column": 1, "key": "version", "message": "unknown value",
         "found": "integer 2", "expected": "one of 1"},
        {"file": "tickets/t-1.yaml", "line": 14, "column": 5, "key": "vms[0].flavor", "message": "unknown flavor",
         "found": "'gc.tiny'", "expected": "a flavor of inventory/topology.yaml: gc.small, gc.medium"},
    ]


def test_validate_json_ok() -> None:
    code, out, err = run_cli(["--root", str(MINIMAL), "validate", "-o", "json"])
    assert (code, err) == (0, "")
    assert json.loads(out) == {"ok": True, "clouds": 2, "centres": 4, "tenants": 3, "systems": 4, "quotas": 3, "tickets": 1,
                               "problems": []}
