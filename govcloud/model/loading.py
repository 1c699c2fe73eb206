"""The only YAML reader in govcloud: bytes → ``Document`` (plain data + the line of every key).

Why not ``yaml.safe_load``: it forgets where things were and silently keeps the last of two
duplicate keys. Admins need ``file:line: key`` for every problem, so we compose the node tree
ourselves, record each key's position by its key path, and report duplicates, wrong encodings,
empty files and syntax errors as ``Problem``s instead of exceptions.

Everything here is hostile-input safe, because anyone who can write a ticket file can feed it: only
regular files are read (no FIFO, device or symlink loop can hang or flood us), at most
``MAX_FILE_BYTES`` of a ticket and ``MAX_PROVINCE_FILE_BYTES`` of the admins' files; aliases may add at
most ``MAX_ALIAS_NODES`` nodes (a "billion laughs" bomb is refused while composing, before anything is
built); explicit tags must agree with their value;
integers are plain decimal (YAML 1.1 would read ``010`` as 8 and ``1:30`` as 90). Each refusal is a
``ConfigError`` with file and line, so the CLI exits 2.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import re
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from govcloud.errors import ConfigError, Problem

KeyPath = tuple[str | int, ...]

MAX_FILE_BYTES = 512 * 1024
"""Largest YAML file read by default (512 KiB): a ticket is a few hundred bytes to a few kB, so anything
larger is a mistake (a log pasted in, ``/dev/zero``) or an attack, and is refused before it is parsed."""

MAX_PROVINCE_FILE_BYTES = 4 * 1024 * 1024
"""Largest topology, tenants, users or quota file (4 MiB): the admins' own files, which grow with the
province. ``tenants.yaml`` holds every tenant in one file: 30 kB for the sample's 65, 2.4 MB for 5,000
(``bench/province_gen.py``); 4 MiB is about 8,500 tenants, read and composed in about a second."""

MAX_ALIAS_NODES = 10_000
"""How many nodes aliases (``*name``, ``<<: *name``) may add to one file in total. Shared defaults
need hundreds; a "billion laughs" bomb needs billions and is refused at the alias that crosses this."""

MAX_PATH_CHARS = 512
"""Longest file path accepted (characters). A ticket's path is stored with it (``tickets.source_name``
is a VARCHAR of this length), so a longer one is refused here with a clear message rather than by the
database."""


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

_KIND_WORDS = {"int": "a plain decimal integer", "float": "a decimal number", "bool": "true or false",
               "null": "null or ~", "timestamp": "a date (YYYY-MM-DD)"}

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


def parse(text: str, file: str, *, use_libyaml: bool = True) -> Document:
    """Parse YAML text into a Document; raises ConfigError for syntax errors, empty files, duplicates.
    ``use_libyaml=False`` takes PyYAML's pure-Python parser (the tests hold both to the same answers)."""
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
        node = _compose(text, file, use_libyaml)
    except yaml.YAMLError:
        if not use_libyaml:
            raise
        # libyaml's messages are terser ("found character that cannot start any token"): the pure-Python
        # parser reads the broken text again, only on this path, so every message names what it found.
        return parse(text, file, use_libyaml=False)
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


def _compose(text: str, file: str, use_libyaml: bool) -> yaml.Node | None:
    """The node tree of ``text``. A refusal is a ConfigError; a syntax error from libyaml is left to the caller."""
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text, file, use_libyaml=use_libyaml)  # the reader checks every character as it is built
        return loader.get_single_node()
    except _Refused as exc:
        raise ConfigError([exc.problem]) from None
    except RecursionError:
        raise ConfigError([_too_deep(text, file)]) from None
    except yaml.YAMLError as exc:
        if loader is not None and loader.libyaml:
            raise
        raise _syntax_error(text, file, exc) from None
    finally:
        if loader is not None:
            loader.parser.dispose()


def _syntax_error(text: str, file: str, exc: yaml.YAMLError) -> ConfigError:
    """A YAML error of PyYAML's own parser as a ConfigError with its line."""
    if isinstance(exc, yaml.reader.ReaderError):  # not a MarkedYAMLError: it knows a position, not a line
        line = text[: exc.position].count("\n") + 1
        return ConfigError([Problem(file=file, line=line, key="", found=f"unacceptable character #x{exc.character:04x}"
                                    if isinstance(exc.character, int) else f"unacceptable character {exc.character!r}",
                                    expected="printable text (no control characters)", message="YAML syntax error")])
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 0)
        what = exc.problem or "syntax error"
        return ConfigError([Problem(file=file, line=line, column=column, key="", found=what,
                                    expected="valid YAML", message="YAML syntax error")])
    return ConfigError([Problem(file=file, line=1, key="", found=str(exc), expected="valid YAML", message="YAML syntax error")])


class _Refused(Exception):
    """Raised inside the composer to stop it at once; carries the problem to report."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.render())


_CParser: Any = getattr(getattr(yaml, "cyaml", None), "CParser", None)
"""libyaml's scanner and parser (C), when PyYAML was built with it. Only the *events* are taken from it:
composing stays in Python (``_BoundedLoader.compose_node``), so the alias bound, the recursive-alias check
and Python's recursion limit hold exactly as with the pure-Python reader. libyaml's own composer
(``CSafeLoader.get_single_node``) would skip all three, and crashes the interpreter on deep nesting."""


class _BoundedLoader(yaml.composer.Composer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """A safe loader whose composer counts what aliases expand to and refuses an alias to its own anchor.

    PyYAML's composer shares an anchored node between its aliases, so composing a bomb is cheap;
    building plain data from it (or validating that data) is what explodes. Counting here, with the
    size of each anchored node computed once, stops a bomb at the alias that crosses the bound.

    The events come from ``parser``: libyaml's (six times faster: the scanner was three quarters of
    validating the province) or, where PyYAML has no libyaml, PyYAML's own reader, scanner and parser.
    Both give the same events with the same line and column marks.
    """

    def __init__(self, text: str, file: str, *, use_libyaml: bool = True) -> None:
        self.parser: Any = None
        if use_libyaml and _CParser is not None:
            with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate: PyYAML's reader names it below
                self.parser = _CParser(text)
        if self.parser is None:
            self.parser = yaml.SafeLoader(text)
        self.libyaml = not isinstance(self.parser, yaml.SafeLoader)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self.check_event = self.parser.check_event
        self.peek_event = self.parser.peek_event
        self.get_event = self.parser.get_event
        self.file = file
        self.expanded = 0
        self._sizes: dict[int, int] = {}
        self._open: set[str] = set()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if type(event) is yaml.ScalarEvent and event.anchor is None:
            # Nine nodes in ten: what Composer.compose_node and compose_scalar_node do for a scalar without
            # an anchor, without their resolver bookkeeping (only path resolvers use it; the safe loader has none).
            self.get_event()
            tag = event.tag
            if tag is None or tag == "!":
                tag = self.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
            start: Any = event.start_mark  # libyaml's marks have the same line and column attributes
            return yaml.ScalarNode(tag, event.value, start, event.end_mark, style=event.style)  # type: ignore[arg-type]
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            if event.anchor in self._open:
                raise _Refused(Problem(file=self.file, line=line, column=column, key="",
                                       found=f"the alias *{event.anchor} inside its own anchor",
                                       expected="an alias after its anchor's value is complete", message="recursive alias"))
            node = super().compose_node(parent, index)
            self.expanded += self._size(node) if node is not None else 0
            if self.expanded > MAX_ALIAS_NODES:
                raise _Refused(Problem(file=self.file, line=line, column=column, key="",
                                       found=f"aliases expanding to more than {MAX_ALIAS_NODES} values (at *{event.anchor})",
                                       expected="values written out, or fewer aliases", message="aliases expand too far"))
            return node
        anchor = getattr(event, "anchor", None)
        if anchor is None:
            return super().compose_node(parent, index)
        self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.discard(anchor)

    def _size(self, node: yaml.Node) -> int:
        """How many nodes ``node`` stands for once every alias inside it is expanded (memoised)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._size(item) for item in node.value)
        else:
            size = 1
        self._sizes[id(node)] = size
        return size


_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
"""The integers we accept. YAML 1.1 also reads 010 (octal 8), 0x1f, 0b11, 1_000 and 1:30 (sexagesimal
90); admins mean none of them, so each is refused with what YAML would have made of it."""


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


def printable_name(path: Path | str) -> str:
    """A file name fit for messages and the store: undecodable bytes as ``\\xff``, controls escaped."""
    name = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


def _name_problem(path: Path, file: str) -> Problem | None:
    """Why the name of ``path`` cannot be used: not UTF-8, control characters, too long; or None."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return Problem(file=file, line=0, key="", found="a file name that is not UTF-8",
                       expected="a UTF-8 file name (rename the file)", message="bad file name")
    if not name.isprintable():
        return Problem(file=file, line=0, key="", found="control characters in the file name",
                       expected="a file name of printable characters (rename the file)", message="bad file name")
    if len(name) > MAX_PATH_CHARS:
        return Problem(file=file[:80] + "…", line=0, key="", found=f"a path of {len(name)} characters",
                       expected=f"at most {MAX_PATH_CHARS} characters", message="path too long")
    return None


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_bytes(path: Path, *, display: str | None = None, follow_symlinks: bool = True, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file, at most ``limit`` (``MAX_FILE_BYTES``); anything else is a ConfigError.

    Opened non-blocking so a FIFO cannot hang us, checked with ``fstat`` on the open descriptor (no race
    between the check and the read), read to at most one byte past the limit (``/dev/zero`` and growing
    files cannot flood memory). ``follow_symlinks=False`` refuses a symbolic link as the last component
    (for directories whose writers are not trusted, such as an inbox).
    """
    file = printable_name(display or path)
    bad_name = _name_problem(path, file)
    if bad_name is not None:
        raise ConfigError([bad_name])
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ConfigError([Problem(file=file, line=0, key="", found="no such file",
                                   expected="a readable file", message="missing file")]) from None
    except OSError as exc:
        found = exc.strerror or str(exc)
        if exc.errno == errno.ELOOP:
            found = "a symbolic link loop" if follow_symlinks else "a symbolic link"
        raise ConfigError([Problem(file=file, line=0, key="", found=found,
                                   expected="a readable regular file", message="cannot read file")]) from None
    try:
        return _read_regular(fd, file, limit)
    finally:
        os.close(fd)


def _read_regular(fd: int, file: str, limit: int) -> bytes:
    """Up to ``limit`` bytes from an open descriptor that must be a regular file."""
    try:
        info = os.fstat(fd)
        kind = next((name for test, name in _KINDS if test(info.st_mode)), None)
        if kind is not None or not stat.S_ISREG(info.st_mode):
            raise ConfigError([Problem(file=file, line=0, key="", found=kind or "not a regular file",
                                       expected="a regular file", message="not a regular file")])
        chunks: list[bytes] = []
        size = 0
        while size <= limit and (chunk := os.read(fd, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ConfigError([Problem(file=file, line=0, key="", found=exc.strerror or str(exc),
                                   expected="a readable file", message="cannot read file")]) from None
    if size > limit:
        raise ConfigError([Problem(file=file, line=0, key="", found=f"more than {limit} bytes",
                                   expected=f"a YAML file of at most {limit // 1024} KiB", message="file too large")])
    return b"".join(chunks)


def read_text(path: Path, *, display: str | None = None, follow_symlinks: bool = True, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a file read as ``read_bytes`` reads it (for callers that keep the text)."""
    return decode(read_bytes(path, display=display, follow_symlinks=follow_symlinks, limit=limit), printable_name(display or path))


def read(path: Path, *, display: str | None = None, follow_symlinks: bool = True, limit: int = MAX_FILE_BYTES) -> Document:
    """Read and parse one file; ``display`` is the name used in messages (default: the path)."""
    return parse(read_text(path, display=display, follow_symlinks=follow_symlinks, limit=limit), printable_name(display or path))


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
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        """A scalar's value, or None with a problem recorded: unknown tags, tags that contradict their value,
        ambiguous numbers and impossible dates are refused, never constructed."""
        if node.tag not in _SCALAR_TAGS:
            return self._fail(node, path, found=f"the tag {node.tag}", expected="a plain YAML value (no tags)",
                              message="unsupported YAML tag")
        kind = node.tag.rsplit(":", 1)[-1]
        if kind != "str" and self._constructor.resolve(yaml.ScalarNode, node.value, (True, False)) != node.tag:  # type: ignore[no-untyped-call]
            return self._fail(node, path, found=f"!!{kind} on {str(node.value)[:60]!r}",
                              expected=f"{_KIND_WORDS.get(kind, kind)} (or no tag)", message="tag does not match its value")
        if kind == "int" and not _PLAIN_INT.fullmatch(node.value):
            return self._fail(node, path, found=f"{node.value[:60]!r} ({_yaml11(node.value)})",
                              expected="a plain decimal integer like 10 (quote it if it is text)", message="ambiguous number")
        if kind == "float" and ("_" in node.value or ":" in node.value):
            return self._fail(node, path, found=f"{node.value[:60]!r} ({_yaml11(node.value)})",
                              expected="a plain decimal number like 1.5 (quote it if it is text)", message="ambiguous number")
        try:
            if kind == "str":  # what SafeConstructor makes of a str node (nine in ten scalars), without its memo
                value = node.value
            elif kind == "int":  # plain decimal, checked above: int() reads it as SafeConstructor does
                value = int(node.value)
            else:
                value = self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            expected = "a real date (YYYY-MM-DD)" if kind == "timestamp" else f"a valid {kind}"
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            return self._fail(node, path, found=f"{node.value[:60]!r} ({problem})", expected=expected, message="cannot read value")
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
            key = sys.intern(key)  # one object per distinct key: the key paths of a large file share them (memory, cache size)
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
            before = len(self.problems)
            value = self._scalar(node, path)
            if len(self.problems) > before:  # the scalar itself is unreadable: that is the problem to report
                return None
            if isinstance(value, str):
                return value
            found = f"key {value!r} of type {type(value).__name__}"
        else:
            found = "a sequence as key" if isinstance(node, yaml.SequenceNode) else "a mapping as key"
        self.problems.append(Problem(file=self.file, line=node.start_mark.line + 1, key=render_path(path),
                                     found=found,
                                     expected="a text key", message="keys must be text"))
        return None


def _yaml11(text: str) -> str:
    """What YAML 1.1 makes of an ambiguous number, for the message."""
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):  # e.g. more digits than Python converts
        return "a number YAML 1.1 cannot even convert"
    return f"YAML 1.1 reads it as {value!r}"


def iter_yaml_files(directory: Path) -> Iterator[Path]:
    """``*.yaml`` and ``*.yml`` entries of a directory in a stable order (missing directory: none)."""
    if directory.is_dir():  # every entry: a directory, FIFO, device or broken link named *.yaml is reported, not skipped
        yield from sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))


def dump(data: Any) -> str:
    """YAML text of plain data (``--output yaml``), UTF-8 characters kept as they are."""
    return str(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False))
