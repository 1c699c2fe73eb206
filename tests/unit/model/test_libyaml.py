"""libyaml's parser (issue 16): the same answers as PyYAML's pure-Python one, and no protection bypassed.

``loading.parse`` takes its events from libyaml when PyYAML has it (six times faster) but composes them in
Python, so that the alias bound, the recursive-alias check and the recursion limit hold; libyaml's own
composer would skip the first two and crashes the interpreter on deeply nested brackets. A text libyaml
cannot parse is read again by the pure-Python parser, whose messages name what they found. Each hostile
or broken text here must give exactly the problems (line, column, key, message, found), or the data and
marks, that the pure-Python parser gives.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from govcloud.errors import ConfigError
from govcloud.model import loading
from tests.unit.model.test_hostile_input import billion_laughs

CASES = {
    "billion laughs": billion_laughs(),
    "alias inside its own anchor": "a: &x [1, *x]\n",
    "flow nesting 3000 deep": "a: " + "[" * 3000 + "]" * 3000 + "\n",
    "block nesting 400 deep": "".join(" " * i + f"k{i}:\n" for i in range(400)) + " " * 400 + "v\n",
    "control character after Chinese text": "名字: 中文\nb: 中文中文\x07\n",
    "escape character on line 2": "a: 1\n名: '\x1b'\n",
    "unclosed bracket": "a: 1\n中文: [1, 2\nb: 3\n",
    "tab indentation": "a:\n\t- 1\n",
    "duplicate key": "a: 1\n中文: 2\n中文: 3\n",
    "custom and python tags": "a: !foo x\nb: !!python/object:os.system x\n",
    "octal": "a: 010\n",
    "merge key": "base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n",
    "bad merge key": "c:\n  <<: 3\n",
    "YAML 1.2 directive": "%YAML 1.2\n---\na: 1\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "impossible date": "a: 2027-02-30\n",
    "undefined alias": "a: *nope\n",
    "escaped lone surrogate": 'a: "\\ud800"\n',
    "sample-like tenant": "tenants:\n- id: gd-zf\n  name: 广东省人民政府\n  contacts:\n  - {name: 张伟, phone: \"020-1\"}\n",
}


def _outcome(text: str, use_libyaml: bool) -> Any:
    try:
        doc = loading.parse(text, "f.yaml", use_libyaml=use_libyaml)
    except ConfigError as exc:
        return [(p.line, p.column, p.key, p.message, p.found) for p in exc.problems]
    return doc.data, sorted(doc.marks.items(), key=repr)


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
@pytest.mark.parametrize("name", list(CASES))
def test_libyaml_gives_the_pure_python_answer(name: str) -> None:
    assert _outcome(CASES[name], True) == _outcome(CASES[name], False)


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
def test_libyaml_is_what_parse_uses() -> None:
    loader = loading._BoundedLoader("a: 1\n", "f.yaml")
    assert loader.libyaml and type(loader.parser).__module__ == "yaml._yaml"


def test_control_character_is_located_by_line_after_wide_text() -> None:
    """libyaml reports a byte offset where PyYAML reports a character offset: the line is PyYAML's."""
    text = "名字: 中文中文中文\nb: x\nc: 中文\x07\n"
    with pytest.raises(ConfigError) as info:
        loading.parse(text, "f.yaml")
    assert [(p.line, p.message) for p in info.value.problems] == [(3, "YAML syntax error")]
