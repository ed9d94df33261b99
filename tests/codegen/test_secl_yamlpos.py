"""YAML positions: every character of an expression maps back to the file."""
from __future__ import annotations

import pytest

from codegen.errors import Diagnostics
from codegen.yamlpos import load

POLICY = '''rules:
  - id: plain
    expression: open.flags > 0 && bad
  - id: folded
    expression: >-
      open.flags > 0
      && open.retval == 0

      && bad
  - id: double
    expression: "open.file.path == \\"/etc/x\\"
      \\t&& bad"
  - id: single
    expression: 'open.file.path == ''a''
       && bad'
  - id: literal
    expression: |
      open.flags > 0
        && bad
  - id: multiline_plain
    expression: open.file.path
      == "/x" && bad
  - id: escaped_break
    expression: "a\\
      bad"
  - id: folded_keep
    expression: |+
      x
      bad

  - id: hex_escapes
    expression: "\\u0041\\x42 bad"
  - id: folded_more_indented
    expression: >
      a
         more
      bad
'''


@pytest.fixture(scope="module")
def expressions() -> dict[str, object]:
    diags = Diagnostics()
    root = load(POLICY, "p.policy", diags)
    assert root is not None and not diags.items
    return {r.value["id"].value: r.value["expression"] for r in root.value["rules"].value}


@pytest.mark.parametrize("rule, value, bad_at", [
    ("plain", "open.flags > 0 && bad", (3, 35)),
    ("folded", "open.flags > 0 && open.retval == 0\n&& bad", (9, 10)),
    ("double", 'open.file.path == "/etc/x" \t&& bad', (12, 12)),
    ("single", "open.file.path == 'a' && bad", (15, 11)),
    ("literal", "open.flags > 0\n  && bad\n", (19, 12)),
    ("multiline_plain", 'open.file.path == "/x" && bad', (22, 18)),
    ("escaped_break", "abad", (25, 7)),
    ("folded_keep", "x\nbad\n\n", (29, 7)),
    ("hex_escapes", "AB bad", (32, 29)),
    ("folded_more_indented", "a\n   more\nbad\n", (37, 7)),
])
def test_value_offsets_map_to_file_positions(expressions: dict, rule: str, value: str,
                                              bad_at: tuple[int, int]) -> None:
    node = expressions[rule]
    assert node.value == value
    assert node.locate(value.index("bad")) == bad_at


def test_first_character_positions(expressions: dict) -> None:
    assert expressions["plain"].locate(0) == (3, 17)
    assert expressions["folded"].locate(0) == (6, 7)
    assert expressions["double"].locate(0) == (11, 18)
    assert expressions["literal"].locate(0) == (18, 7)


def test_yaml_errors_have_positions() -> None:
    diags = Diagnostics()
    assert load("rules:\n  - id: a\n   expression: [\n", "bad.policy", diags) is None
    (d,) = diags
    assert d.file == "bad.policy" and d.line >= 3 and d.message.startswith("invalid YAML")


def test_duplicate_keys_are_errors() -> None:
    diags = Diagnostics()
    load("a: 1\nb: 2\na: 3\n", "dup.yaml", diags)
    assert [(d.line, d.col, d.message) for d in diags] == [(3, 1, "duplicate key 'a'")]
