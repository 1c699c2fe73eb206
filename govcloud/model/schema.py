"""Turn a ``Document``'s plain data into frozen dataclasses, collecting every problem on the way.

A small type-driven converter (in the spirit of cattrs/dacite) rather than pydantic: we need our own
wording for every message (*found …, expected …*), the line of every key, and no heavy import on the
CLI's path. Supported annotations: str, int, float, bool, date, Literal, Optional/``X | None``,
``tuple[T, ...]``, ``dict[str, T]``, nested dataclasses, and ``Annotated[T, Constraint…]``.

A dataclass with a field named ``where`` gets a ``Where`` that points back into its document, so the
cross-reference checks in ``validate.py`` can name file, line and key too.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import functools
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from govcloud.errors import Problem
from govcloud.model.loading import Document, KeyPath

T = TypeVar("T")

SLUG_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
"""Used with ``fullmatch`` only: ``match`` with ``$`` let ``t-1\\n`` through (``$`` matches before a final newline)."""


@dataclass(frozen=True)
class Where:
    """A place in a document: the key path of an object, able to locate its children."""

    doc: Document | None = None
    path: KeyPath = ()
    broken: frozenset[str] = frozenset()
    """Fields that were written but unusable (their problems are reported; the default stands in)."""

    @property
    def file(self) -> str:
        return self.doc.file if self.doc else "<generated>"

    @property
    def line(self) -> int:
        return self.doc.line(self.path) if self.doc else 0

    def child(self, *keys: str | int) -> Where:
        """The place of a key below this object."""
        return Where(self.doc, (*self.path, *keys))

    def has(self, key: str) -> bool:
        """Whether the document spells out ``key`` here (as opposed to a default)."""
        return self.doc is not None and (*self.path, key) in self.doc.marks

    def problem(self, key: str | int | None = None, *, found: str, expected: str, message: str) -> Problem:
        """A problem about this object (or its child ``key``)."""
        path = self.path if key is None else (*self.path, key)
        if self.doc is None:
            return Problem(file="<generated>", line=0, key=".".join(map(str, path)), found=found,
                           expected=expected, message=message)
        return self.doc.problem(path, found=found, expected=expected, message=message)


NOWHERE = Where()


class Constraint:
    """A check applied after type conversion; returns an error text or None."""

    expected: str = ""

    def check(self, value: Any) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True)
class Slug(Constraint):
    """Ids must name keystone projects, Terraform workspaces and Prometheus labels alike."""

    expected: str = "a slug: lowercase a-z, 0-9 and '-', starting with a letter, at most 63 characters"

    def check(self, value: Any) -> str | None:
        return None if SLUG_RE.fullmatch(str(value)) else "not a valid id"


@dataclass(frozen=True)
class OneLine(Constraint):
    """Text that lands in a one-line format (a table cell, a header, a line of a file): no line breaks or
    other control characters, which would start a new line where the reader does not expect one."""

    expected: str = "one line of text (no line breaks or control characters)"

    def check(self, value: Any) -> str | None:
        return None if str(value).isprintable() else "line break or control character"


SSH_KEY_RE = re.compile(r"(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com"
                        r"|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}(?: [^\x00-\x1f\x7f]*)?")
"""One OpenSSH public key as ``ssh-keygen`` prints it: type, base64, optional comment, on one line."""


@dataclass(frozen=True)
class SshPublicKey(Constraint):
    """A contact's key becomes a line of ``authorized_keys`` on the tenant's VMs: a line break would add a
    second key, and a leading ``command=``/``from=`` option would change what the key may do."""

    expected: str = "one OpenSSH public key on one line: 'ssh-ed25519 AAAA… comment' (no options, no line breaks)"

    def check(self, value: Any) -> str | None:
        return None if SSH_KEY_RE.fullmatch(str(value)) else "not a single public key"


@dataclass(frozen=True)
class Range(Constraint):
    """Inclusive numeric bounds."""

    minimum: float | None = None
    maximum: float | None = None

    @property
    def expected(self) -> str:  # type: ignore[override]
        if self.maximum is None:
            return f"a number ≥ {self.minimum:g}"
        if self.minimum is None:
            return f"a number ≤ {self.maximum:g}"
        return f"a number between {self.minimum:g} and {self.maximum:g}"

    def check(self, value: Any) -> str | None:
        if value != value:  # NaN compares false with everything and would slip past both bounds
            return "not a number"
        if self.minimum is not None and value < self.minimum:
            return "out of range"
        if self.maximum is not None and value > self.maximum:
            return "out of range"
        return None


@dataclass(frozen=True)
class NonEmpty(Constraint):
    """A text or list that must hold something."""

    expected: str = "a non-empty value"

    def check(self, value: Any) -> str | None:
        return None if len(value) else "empty value"


class Invalid:
    """Marker for a value that failed conversion (its problem is already recorded)."""


INVALID: Any = Invalid()


def describe(value: Any) -> str:
    """How a found value is shown in a message: its YAML type and a short rendering."""
    if value is None:
        return "nothing (null)"
    kind = {bool: "boolean", int: "integer", float: "number", str: "text", list: "a list", dict: "a mapping",
            datetime.date: "date"}.get(type(value), type(value).__name__)
    if isinstance(value, (list, dict)):
        return kind
    shown = repr(value) if not isinstance(value, str) else f"'{value[:60]}'" if value[:60].isprintable() else repr(value[:60])
    return f"{kind} {shown}"


def expected_of(tp: Any) -> str:
    """Human wording of a type annotation, for 'expected …'."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        base, *constraints = get_args(tp)
        texts = [c.expected for c in constraints if isinstance(c, Constraint)]
        return texts[0] if texts else expected_of(base)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(expected_of(a) for a in get_args(tp) if a is not type(None))
    if origin is tuple:
        return f"a list of {expected_of(get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of names to {expected_of(get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "text", int: "an integer", float: "a number", bool: "true or false",
            datetime.date: "a date (YYYY-MM-DD)"}.get(tp, getattr(tp, "__name__", str(tp)))


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """``get_type_hints`` of a dataclass, evaluated once: it re-parses every string annotation on each call,
    and was half the time of loading the sample data (one call per tenant, system, contact, VM…)."""
    return get_type_hints(cls, include_extras=True)


@functools.cache
def _init_fields(cls: type) -> tuple[dict[str, dataclasses.Field[Any]], bool]:
    """The fields a document may set (``where`` excepted), and whether the class has a ``where``: once per class."""
    every = dataclasses.fields(cls)
    return {f.name: f for f in every if f.init and f.name != "where"}, any(f.name == "where" for f in every)


@functools.lru_cache(maxsize=1024)
def _shape(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    """``(get_origin(tp), get_args(tp))``, once per annotation: asked for every value of every file."""
    return get_origin(tp), get_args(tp)


class Converter:
    """Converts one document's data; problems accumulate in ``problems``."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def fail(self, path: KeyPath, value: Any, expected: str, message: str) -> Any:
        self.problems.append(self.doc.problem(path, found=describe(value), expected=expected, message=message))
        return INVALID

    def convert(self, tp: Any, value: Any, path: KeyPath) -> Any:
        """Convert ``value`` at ``path`` to ``tp``; INVALID (with a problem recorded) if it does not fit."""
        origin, args = _shape(tp)
        if origin is typing.Annotated:
            return self._annotated(tp, value, path)
        if origin in (Union, types.UnionType):
            return self._union(tp, value, path)
        if origin is Literal:
            choices = args
            if value in choices and type(value) is type(choices[0]):
                return value
            hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            message = f"unknown value; did you mean '{hint[0]}'?" if hint else "unknown value"
            return self.fail(path, value, expected_of(tp), message)
        if origin is tuple:
            return self._sequence(args[0], value, path)
        if origin is dict:
            return self._dict(args[1], value, path)
        if origin is None and isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self.dataclass(tp, value, path)
        return self._scalar(tp, value, path)

    def _annotated(self, tp: Any, value: Any, path: KeyPath) -> Any:
        base, *constraints = _shape(tp)[1]
        result = self.convert(base, value, path)
        if result is INVALID or result is None:
            return result
        for constraint in constraints:
            if isinstance(constraint, Constraint) and (error := constraint.check(result)):
                return self.fail(path, value, constraint.expected, error)
        return result

    def _union(self, tp: Any, value: Any, path: KeyPath) -> Any:
        args = _shape(tp)[1]
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        if len(options) == 1:
            return self.convert(options[0], value, path)
        for option in options:  # first option that converts without problems wins
            trial = Converter(self.doc)
            result = trial.convert(option, value, path)
            if not trial.problems:
                return result
        return self.fail(path, value, expected_of(tp), "wrong type")

    def _sequence(self, item: Any, value: Any, path: KeyPath) -> Any:
        if not isinstance(value, list):
            return self.fail(path, value, expected_of(tuple[item, ...]), "wrong type")
        # Broken items are dropped (their problems are recorded) so the rest can still be cross-checked;
        # a list whose every item broke is itself broken, not "empty".
        items = [self.convert(item, element, (*path, index)) for index, element in enumerate(value)]
        kept = tuple(i for i in items if i is not INVALID)
        return INVALID if items and not kept else kept

    def _dict(self, item: Any, value: Any, path: KeyPath) -> Any:
        if not isinstance(value, dict):
            return self.fail(path, value, expected_of(dict[str, item]), "wrong type")
        result = {key: self.convert(item, element, (*path, key)) for key, element in value.items()}
        return {key: v for key, v in result.items() if v is not INVALID}

    def _scalar(self, tp: Any, value: Any, path: KeyPath) -> Any:
        if tp is Any:
            return value
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if tp is float and isinstance(value, float) and not math.isfinite(value):
            return self.fail(path, value, "a finite number", "not a number")
        if tp is datetime.date and isinstance(value, datetime.datetime):
            return self.fail(path, value, expected_of(tp), "wrong type")
        if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
        return self.fail(path, value, expected_of(tp), "wrong type")

    def dataclass(self, cls: type[T], value: Any, path: KeyPath, *, partial: bool = False) -> T:
        """Build ``cls`` from a mapping: unknown keys, missing keys and every field's problems reported.

        ``partial`` (used for whole files): a broken field that has a default takes the default and is
        listed in ``where.broken``, so one bad value does not hide the rest of the file from the checks.
        """
        if not isinstance(value, dict):
            return self.fail(path, value, "a mapping", "wrong type")  # type: ignore[no-any-return]
        hints = _type_hints(cls)  # type: ignore[arg-type]
        fields, has_where = _init_fields(cls)  # type: ignore[arg-type]
        for key in value:
            if key not in fields:
                hint = difflib.get_close_matches(key, list(fields), n=1)
                message = f"unknown key; did you mean '{hint[0]}'?" if hint else "unknown key"
                self.problems.append(self.doc.problem((*path, key), found=f"'{key}'",
                                                      expected="one of " + ", ".join(fields), message=message))
        kwargs: dict[str, Any] = {}
        broken = False
        skipped: set[str] = set()
        for name, fld in fields.items():
            required = fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING
            if name not in value:
                if required:
                    self.problems.append(self.doc.problem((*path, name), found="nothing",
                                                          expected=expected_of(hints[name]),
                                                          message="missing required key"))
                    broken = True
                continue
            converted = self.convert(hints[name], value[name], (*path, name))
            if converted is INVALID and partial and not required:
                skipped.add(name)
                continue
            broken = broken or converted is INVALID
            kwargs[name] = converted
        if broken:
            return INVALID  # type: ignore[no-any-return]
        if has_where:
            kwargs["where"] = Where(self.doc, path, frozenset(skipped))
        return cls(**kwargs)
