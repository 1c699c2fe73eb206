"""The only YAML reader in govcloud: bytes → ``Document`` (plain data + the line of every key).

Why not ``yaml.safe_load``: it forgets where things were and silently keeps the last of two
duplicate keys. Admins need ``file:line: key`` for every problem, so we compose the node tree
ourselves, record each key's position by its key path, and report duplicates, wrong encodings,
empty files and syntax errors as ``Problem``s instead of exceptions.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from govcloud.errors import ConfigError, Problem

KeyPath = tuple[str | int, ...]


def render_path(path: KeyPath) -> str:
    """``("tenants", 3, "systems", 0, "id")`` → ``tenants[3].systems[0].id``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass
class Document:
    """One parsed YAML file: its data and the (line, column) of every key path, both 1-based."""

    file: str
    data: Any
    marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def line(self, path: KeyPath) -> int:
        """Line of ``path``, or of its nearest ancestor that has one (a missing key → its mapping)."""
        while path:
            if path in self.marks:
                return self.marks[path][0]
            path = path[:-1]
        return self.marks.get((), (1, 1))[0]

    def problem(self, path: KeyPath, *, found: str, expected: str, message: str) -> Problem:
        """A Problem located at ``path`` in this document."""
        line = self.line(path)
        column = self.marks.get(path, (line, 0))[1]
        return Problem(file=self.file, line=line, column=column, key=render_path(path),
                       found=found, expected=expected, message=message)


_SCALAR_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}
"""Scalars admins write; custom (``!foo``) and python tags are refused, never constructed."""

_SURROGATE = re.compile("[\ud800-\udfff]")

_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def decode(raw: bytes, file: str) -> str:
    """UTF-8 text of ``raw`` (a UTF-8 BOM is tolerated); anything else is a precise ConfigError."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise ConfigError([Problem(file=file, line=1, key="", found=f"{name} text (byte-order mark)",
                                       expected="UTF-8 text", message="wrong encoding")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start : exc.start + 4].hex(" ")
        raise ConfigError([Problem(file=file, line=line, column=column, key="", found=f"bytes {bad}",
                                   expected="UTF-8 text (save the file as UTF-8, not GBK/GB18030)",
                                   message="not valid UTF-8")]) from None


_HIDDEN_BREAKS = ("\u2028", "\u2029", "\x85")
"""Characters YAML treats as line breaks but editors and ``grep -n`` do not."""


def parse(text: str, file: str) -> Document:
    """Parse YAML text into a Document; raises ConfigError for syntax errors, empty files, duplicates."""
    if "\x00" in text:
        raise ConfigError([Problem(file=file, line=text[: text.index("\x00")].count("\n") + 1, key="",
                                   found="a NUL byte", expected="text", message="binary content")])
    separator = next((c for c in _HIDDEN_BREAKS if c in text), None)
    if separator is not None:  # YAML counts these as line breaks, editors do not: every later line number would be off
        at = text.index(separator)
        raise ConfigError([Problem(file=file, line=text[:at].count("\n") + 1, column=at - (text.rfind("\n", 0, at) + 1) + 1, key="",
                                   found=f"an invisible line separator U+{ord(separator):04X}",
                                   expected="plain newlines only (delete the character; it often comes with pasted text)",
                                   message="hidden line break")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.reader.ReaderError as exc:  # not a MarkedYAMLError: it knows a position, not a line
        line = text[: exc.position].count("\n") + 1
        raise ConfigError([Problem(file=file, line=line, key="", found=f"unacceptable character #x{exc.character:04x}"
                                   if isinstance(exc.character, int) else f"unacceptable character {exc.character!r}",
                                   expected="printable text (no control characters)", message="YAML syntax error")]) from None
    except RecursionError:
        raise ConfigError([_too_deep(text, file)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 0)
        what = exc.problem or "syntax error"
        raise ConfigError([Problem(file=file, line=line, column=column, key="", found=what,
                                   expected="valid YAML", message="YAML syntax error")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file=file, line=1, key="", found=str(exc), expected="valid YAML",
                                   message="YAML syntax error")]) from None
    if node is None:
        raise ConfigError([Problem(file=file, line=0, key="", found="an empty file",
                                   expected="a YAML mapping", message="empty file")])
    builder = _Builder(file)
    try:
        data = builder.build(node, ())
    except RecursionError:
        raise ConfigError([_too_deep(text, file)]) from None
    if builder.problems:
        raise ConfigError(builder.problems)
    return Document(file=file, data=data, marks=builder.marks)


def _too_deep(text: str, file: str, limit: int = 100) -> Problem:
    """The line where flow brackets first nest deeper than ``limit`` (block nesting: line 1)."""
    depth, line = 0, 1
    for char in text:
        if char == "\n":
            line += 1
        elif char in "[{":
            depth += 1
            if depth > limit:
                break
        elif char in "]}":
            depth -= 1
    else:
        line = 1
    return Problem(file=file, line=line, key="", found=f"structures nested more than {limit} levels deep",
                   expected="YAML nested a reasonable depth", message="YAML too deep")


def read(path: Path, *, display: str | None = None) -> Document:
    """Read and parse one file; ``display`` is the name used in messages (default: the path)."""
    file = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(file=file, line=0, key="", found="no such file",
                                   expected="a readable file", message="missing file")]) from None
    except OSError as exc:
        raise ConfigError([Problem(file=file, line=0, key="", found=exc.strerror or str(exc),
                                   expected="a readable file", message="cannot read file")]) from None
    return parse(decode(raw, file), file)


class _Builder:
    """Turns a composed node tree into plain Python data, recording marks and duplicate keys."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.marks: dict[KeyPath, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        if node.tag not in _SCALAR_TAGS:
            return self._fail(node, path, found=f"the tag {node.tag}", expected="a plain YAML value (no tags)",
                              message="unsupported YAML tag")
        try:
            value = self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            kind = node.tag.rsplit(":", 1)[-1]
            expected = "a real date (YYYY-MM-DD)" if kind == "timestamp" else f"a valid {kind}"
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            return self._fail(node, path, found=f"{node.value!r} ({problem})", expected=expected, message="cannot read value")
        if isinstance(value, str) and _SURROGATE.search(value):
            return self._fail(node, path, found="an escaped lone surrogate (e.g. \\ud800)", expected="valid Unicode text",
                              message="invalid character")
        return value

    def _fail(self, node: yaml.Node, path: KeyPath, *, found: str, expected: str, message: str) -> None:
        self.problems.append(Problem(file=self.file, line=node.start_mark.line + 1, key=render_path(path),
                                     found=found, expected=expected, message=message))

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        merge = next((k for k, _ in node.value if k.tag == "tag:yaml.org,2002:merge"), None)
        try:
            self._constructor.flatten_mapping(node)  # resolve YAML merge keys (<<: *anchor)
        except yaml.YAMLError as exc:
            where = merge if merge is not None else node
            self.problems.append(Problem(file=self.file, line=where.start_mark.line + 1, key=render_path((*path, "<<")),
                                         found=getattr(exc, "problem", None) or "something else",
                                         expected="a mapping or a list of mappings to merge", message="bad merge key"))
            node.value = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in result:
                self.problems.append(Problem(file=self.file, line=line, key=render_path(child),
                                             found=f"a second '{key}' (first on line {self.marks[child][0]})",
                                             expected="each key once", message="duplicate key"))
                continue
            self.marks[child] = (line, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, child)
        return result

    def _key(self, node: yaml.Node, path: KeyPath) -> str | None:
        if isinstance(node, yaml.ScalarNode):
            value = self._constructor.construct_object(node, deep=True)
            if isinstance(value, str):
                return value
            found = f"key {value!r} of type {type(value).__name__}"
        else:
            found = "a sequence as key" if isinstance(node, yaml.SequenceNode) else "a mapping as key"
        self.problems.append(Problem(file=self.file, line=node.start_mark.line + 1, key=render_path(path),
                                     found=found,
                                     expected="a text key", message="keys must be text"))
        return None


def iter_yaml_files(directory: Path) -> Iterator[Path]:
    """``*.yaml`` and ``*.yml`` files of a directory in a stable order (missing directory: none)."""
    if directory.is_dir():
        yield from sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def dump(data: Any) -> str:
    """YAML text of plain data (``--output yaml``), UTF-8 characters kept as they are."""
    return str(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False))
