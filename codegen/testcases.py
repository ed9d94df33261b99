"""Rule test cases: events in, expected rule IDs out (``rulec test``).

A case file is YAML (``rules/tests/*.yaml`` for the policies in ``rules/``)::

    cases:
      - name: reading /etc/shadow
        event:                       # an event document (docs/interfaces.md)
          type: open
          open: {file: {path: /etc/shadow}, flags: 0}
          process: {comm: cat}
        expect: [shadow_read]        # exactly these rules match (order ignored)
      - name: variables from earlier events
        before: [ {type: exec, ...} ]  # evaluated first, in order (set actions run)
        event_file: events/x.json    # or an event in a JSON file, relative to the case file
        expect_includes: [rule_a]    # these rules match (others may too)
        expect_excludes: [rule_b]    # these rules do not match

Each case starts with empty variables. An ``expect*`` naming a rule the
policies do not define is an error, so renamed rules cannot hide failures.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Diagnostics
from agent.evaluator.event import DocumentEvent
from agent.evaluator.ruleset import Ruleset
from agent.evaluator.variables import VariableStore
from .yamlpos import YNode, load, read_file

CASE_EXTENSIONS = (".yaml", ".yml")
_CASE_KEYS = ("name", "event", "event_file", "before", "expect", "expect_includes", "expect_excludes")


@dataclass
class Case:
    name: str
    node: YNode
    event: dict[str, Any]
    before: list[dict[str, Any]] = field(default_factory=list)
    expect: set[str] | None = None
    includes: set[str] = field(default_factory=set)
    excludes: set[str] = field(default_factory=set)


@dataclass
class Outcome:
    passed: int = 0
    failed: int = 0


def case_files(policy_paths: list[str]) -> list[Path]:
    """Default case files: ``tests/*.yaml`` beside each policy directory."""
    out: list[Path] = []
    for p in policy_paths:
        d = Path(p) / "tests"
        if Path(p).is_dir() and d.is_dir():
            out += sorted(f for f in d.iterdir() if f.suffix in CASE_EXTENSIONS)
    return out


def expand(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        out += sorted(f for f in p.iterdir() if f.suffix in CASE_EXTENSIONS) if p.is_dir() else [p]
    return out


def _err(diags: Diagnostics, node: YNode, message: str) -> None:
    diags.error_at(node.file.path, node.line, node.col, message, node.file.lines[node.line - 1])


def read_cases(path: Path, diags: Diagnostics) -> list[Case]:
    text = read_file(path, diags, "test cases")
    root = load(text, str(path), diags) if text is not None else None
    if root is None:
        return []
    cases_node = root.get("cases")
    if cases_node is None or not cases_node.is_sequence:
        _err(diags, root, "a test file is a mapping with 'cases', a list")
        return []
    cases = []
    for i, item in enumerate(cases_node.value):
        case = _case(item, i, path, diags)
        if case is not None:
            cases.append(case)
    return cases


def _ids(node: YNode, diags: Diagnostics) -> set[str] | None:
    if node.value is None:
        return set()
    if not node.is_sequence or not all(isinstance(v.value, str) for v in node.value):
        _err(diags, node, "expected a list of rule IDs")
        return None
    return {v.value for v in node.value}


def _case(item: YNode, index: int, path: Path, diags: Diagnostics) -> Case | None:
    if not item.is_mapping:
        _err(diags, item, "a case is a mapping with 'event' and 'expect'")
        return None
    for key, key_node in item.keys.items():
        if key not in _CASE_KEYS:
            _err(diags, key_node, f"unknown case key '{key}' (expected one of: {', '.join(_CASE_KEYS)})")
    name = str(item.value["name"].value) if "name" in item.value else f"case {index + 1}"
    event = _event(item, path, diags)
    if event is None:
        return None
    case = Case(name, item, event)
    before = item.value.get("before")
    if before is not None and before.value is not None and not before.is_sequence:
        _err(diags, before, "'before' is a list of event documents")
        return None
    for b in before.value or [] if before is not None else []:
        if not b.is_mapping:
            _err(diags, b, "'before' holds event documents")
            return None
        case.before.append(b.plain())
    if not any(k in item.value for k in ("expect", "expect_includes", "expect_excludes")):
        _err(diags, item, f"case '{name}' has no 'expect'")
        return None
    for key in ("expect", "expect_includes", "expect_excludes"):
        if key in item.value:
            ids = _ids(item.value[key], diags)
            if ids is None:
                return None
            if key == "expect":
                case.expect = ids
            elif key == "expect_includes":
                case.includes = ids
            else:
                case.excludes = ids
    return case


def _event(item: YNode, path: Path, diags: Diagnostics) -> dict[str, Any] | None:
    if "event" in item.value:
        node = item.value["event"]
        if not node.is_mapping:
            _err(diags, node, "'event' is an event document (a mapping)")
            return None
        return node.plain()
    if "event_file" in item.value:
        node = item.value["event_file"]
        target = path.parent / str(node.value)
        text = read_file(target, diags, "event file")
        if text is None:
            return None
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            _err(diags, node, f"cannot read event file {str(target)!r}: {exc}")
            return None
        if not isinstance(doc, dict):
            _err(diags, node, "an event file holds one JSON object")
            return None
        return doc
    _err(diags, item, "a case needs 'event' or 'event_file'")
    return None


def run_cases(ruleset: Ruleset, cases: list[Case], diags: Diagnostics) -> Outcome:
    """Evaluate each case; a failure is an error at the case's position."""
    outcome = Outcome()
    known = {r.id for r in ruleset.rules}
    for case in cases:
        named = (case.expect or set()) | case.includes | case.excludes
        unknown = sorted(named - known)
        if unknown:
            _err(diags, case.node, f"case '{case.name}': unknown rule ID(s) {', '.join(unknown)}")
            outcome.failed += 1
            continue
        ruleset.variables = VariableStore(a for r in ruleset.rules for a in r.set_actions)
        for doc in case.before:
            ruleset.matching(DocumentEvent(doc))
        matched = set(ruleset.evaluate(DocumentEvent(case.event)))
        problems = []
        if case.expect is not None and matched != case.expect:
            problems.append(f"expected {sorted(case.expect)}, matched {sorted(matched)}")
        if case.includes - matched:
            problems.append(f"expected to match {sorted(case.includes - matched)}")
        if case.excludes & matched:
            problems.append(f"expected not to match {sorted(case.excludes & matched)}")
        if problems:
            _err(diags, case.node, f"case '{case.name}': " + "; ".join(problems))
            outcome.failed += 1
        else:
            outcome.passed += 1
    ruleset.variables = VariableStore(a for r in ruleset.rules for a in r.set_actions)
    return outcome
