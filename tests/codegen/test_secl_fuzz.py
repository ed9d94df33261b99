"""Property tests: no input ever produces a traceback; the evaluator agrees with
a straightforward reference interpretation written independently here."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.evaluator.event import DocumentEvent, Lazy
from codegen.policy import compile_expression, load_policies

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])
NOW = 1_000_000_000_000

SEEDS = [
    'open.file.path =~ "/etc/*" && open.flags & O_RDWR > 0',
    'process.ancestors[_].file.name in ["bash", ~"*sh"] || !(process.uid == 0)',
    "process.created_at > 5s + 10ms && open.retval != -EACCES",
    'open.file.name =~ r"^a(b|c)+$" && "/proc/${process.pid}" != open.file.path',
    "bind.addr.ip in [10.0.0.0/8, ::1] && bind.addr.port >= 1024",
    "(open.flags ^ 3) | 0x10 == 0o20 and not open.file.in_upper_layer",
]
TOKENS = ["&&", "||", "!", "(", ")", "[", "]", ",", "==", "!=", "=~", "!~", "in", "not in", "allin",
          "<", ">=", "&", "|", "^", "-", "+", '"x"', '~"*"', 'r"("', "5s", "1", "10.0.0.1/8", "${x}",
          "open.flags", "open.file.path", "process.ancestors.pid", "O_RDWR", "true", "#", "//", '"', "\n"]


def _mutate(text: str, data: st.DataObject) -> str:
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = data.draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=3)))
        j = min(len(text), i + data.draw(st.integers(0, 5)))
        if action == "insert":
            text = text[:i] + " " + piece + " " + text[i:]
        elif action == "delete":
            text = text[:i] + text[j:]
        else:
            text = text[:i] + piece + text[j:]
    return text


def _check_diagnostics(diags: Any, lines: int) -> None:
    for d in diags:
        assert d.line >= 1 and d.col >= 1 and d.message
        assert d.line <= max(lines, 1) + 1
        d.format()


@FUZZ
@given(st.data())
def test_random_and_mutated_expressions_never_crash(data: st.DataObject) -> None:
    text = data.draw(st.one_of(st.text(max_size=40), st.sampled_from(SEEDS).map(lambda s: s)))
    text = _mutate(text, data)
    compiled, diags = compile_expression(text)
    _check_diagnostics(diags, text.count("\n") + 1)
    if compiled is None:
        assert diags.has_errors
    else:
        doc: dict[str, Any] = data.draw(st.sampled_from([{"type": "open"}, {"type": "bind", "bind": {"addr": {"ip": "10.1.1.1"}}},
                                         {"type": "open", "open": {"flags": 2, "file": {"path": "/etc/x"}}}]))
        assert compiled.matches(DocumentEvent(doc)) in (True, False)


POLICY_SEED = """version: 1.0.0
macros:
  - id: shells
    values: ["bash", "sh"]
  - id: m
    expression: process.comm in shells
rules:
  - id: r1
    expression: >-
      open.file.path =~ "/etc/*"
      && m
    tags: {severity: high}
    every: 10s
    actions:
      - kill: {signal: SIGKILL}
      - set: {name: seen, value: true, scope: process}
    filters: ["kernel.version.major >= 5"]
  - id: r2
    expression: 'exec.file.name == "nc" && ${process.seen}'
    combine: override
"""
YAML_TOKENS = ["\n", "  ", "- ", ": ", "{", "}", "[", "]", '"', "'", ">-", "|", "#", "id", "expression",
               "values", "combine", "merge", "override", "disabled: true", "&&", "open.flags", "!"]


@FUZZ
@given(st.data())
def test_mutated_policies_never_crash(tmp_path_factory: Any, data: st.DataObject) -> None:
    text = POLICY_SEED
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        j = min(len(text), i + data.draw(st.integers(0, 8)))
        text = text[:i] + data.draw(st.one_of(st.sampled_from(YAML_TOKENS), st.text(max_size=4))) + text[j:]
    path = tmp_path_factory.mktemp("fuzz") / "p.policy"
    path.write_text(text, encoding="utf-8")
    result = load_policies([path])
    _check_diagnostics(result.diagnostics, text.count("\n") + 1)
    for rule in result.ruleset.rules:
        assert rule.matches({"type": rule.event_type}) in (True, False)


# --- differential test: compiled closures vs. a reference interpretation ----------------

def _get(doc: dict, *keys: Any, default: Any = None) -> Any:
    node: Any = doc
    for k in keys:
        if isinstance(k, int):
            if not isinstance(node, list) or len(node) <= k:
                return default
            node = node[k]
        elif isinstance(node, dict) and k in node:
            node = node[k]
        else:
            return default
    return node


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _ancestors(doc: dict) -> list[dict]:
    return _get(doc, "process", "ancestors", default=[])


# name -> (kind, path-like, array, reader)
FIELDS: dict[str, tuple[str, bool, bool, Callable[[dict], Any]]] = {
    "open.flags": ("int", False, False, lambda d: _get(d, "open", "flags", default=0)),
    "open.retval": ("int", False, False, lambda d: _get(d, "open", "retval", default=0)),
    "process.uid": ("int", False, False, lambda d: _get(d, "process", "uid", default=0)),
    "open.file.rights": ("int", False, False, lambda d: _get(d, "open", "file", "mode", default=0) & 0o7777),
    "open.file.path.length": ("int", False, False, lambda d: len(_get(d, "open", "file", "path", default=""))),
    "process.ancestors.length": ("int", False, False, lambda d: len(_ancestors(d))),
    "process.ancestors.pid": ("int", False, True, lambda d: [a.get("pid", 0) for a in _ancestors(d)]),
    "open.file.path": ("str", True, False, lambda d: _get(d, "open", "file", "path", default="")),
    "open.file.name": ("str", False, False, lambda d: _basename(_get(d, "open", "file", "path", default=""))),
    "process.comm": ("str", False, False, lambda d: _get(d, "process", "comm", default="")),
    "process.parent.comm": ("str", False, False, lambda d: _get(d, "process", "ancestors", 0, "comm", default="")),
    "process.file.path": ("str", True, False, lambda d: _get(d, "process", "file", "path", default="")),
    "process.argv": ("str", False, True, lambda d: _get(d, "process", "argv", default=[])),
    "process.ancestors.comm": ("str", False, True, lambda d: [a.get("comm", "") for a in _ancestors(d)]),
    "process.ancestors.file.path": ("str", True, True,
                                    lambda d: [_get(a, "file", "path", default="") for a in _ancestors(d)]),
    "open.file.in_upper_layer": ("bool", False, False, lambda d: _get(d, "open", "file", "in_upper_layer", default=False)),
    "process.is_thread": ("bool", False, False, lambda d: _get(d, "process", "is_thread", default=False)),
}
INTS = [0, 1, 2, 3, 66, 1000, 0o644]
STRS = ["/etc/passwd", "/etc/shadow", "/tmp/x", "/var/log/a.log", "/usr/bin/cat", "cat", "bash", "sh", "a.log",
        "passwd", "", "/etc/a/b", "/usr/x/cat"]
GLOBS = ["/etc/*", "/**", "/var/**", "/usr/*/cat", "/tmp/x", "*", "/etc/**/passwd", "/usr/**/cat", "/**/a.log",
         "/etc/**/*"]
PATTERNS = ["*sh", "ca*", "*", "/etc/*", "*a*"]
REGEXES = ["^ba", "sh$", "a", "^/etc/"]


def _pattern_regex(pattern: str, glob: bool) -> re.Pattern[str]:
    if glob and pattern.endswith("/**"):
        return re.compile(re.escape(pattern[:-2]) + ".*", re.S)
    star = "[^/]*" if glob else ".*"
    if glob and "**" in pattern:  # a mid-path '**' segment: zero or more whole segments
        segments = pattern.split("/")
        return re.compile("".join("(?:[^/]*/)*" if seg == "**" else
                                  "".join(star if c == "*" else re.escape(c) for c in seg) + ("/" if i < len(segments) - 1 else "")
                                  for i, seg in enumerate(segments)), re.S)
    return re.compile("".join(star if c == "*" else re.escape(c) for c in pattern), re.S)


Ref = Callable[[dict], bool]


def _values(doc: dict, name: str) -> list[Any]:
    kind, _, array, read = FIELDS[name]
    v = read(doc)
    return list(v) if array else [v]


def _any(name: str, test: Callable[[Any], bool]) -> Ref:
    return lambda doc: any(test(v) for v in _values(doc, name))


@st.composite
def int_compare(draw: st.DrawFn) -> tuple[str, Ref]:
    name = draw(st.sampled_from([n for n, f in FIELDS.items() if f[0] == "int"]))
    k = draw(st.sampled_from(INTS))
    form = draw(st.sampled_from(["cmp", "mask", "plus", "in", "notin"]))
    ops = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
           "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    op = draw(st.sampled_from(sorted(ops)))
    fn = ops[op]
    if form == "in" or form == "notin":
        items = draw(st.lists(st.sampled_from(INTS), min_size=1, max_size=3))
        text = f"{name} {'in' if form == 'in' else 'not in'} [{', '.join(map(str, items))}]"
        pos = _any(name, lambda v: v in items)
        return text, (pos if form == "in" else (lambda d: not pos(d)))
    if form == "mask" and not FIELDS[name][2]:
        m = draw(st.sampled_from([1, 2, 3, 64, 0o7]))
        return f"{name} & {m} {op} {k}", lambda d: fn(FIELDS[name][3](d) & m, k)
    if form == "plus" and not FIELDS[name][2]:
        return f"{name} + 1 {op} {k}", lambda d: fn(FIELDS[name][3](d) + 1, k)
    if op == "!=":
        return f"{name} != {k}", lambda d: not any(v == k for v in _values(d, name))
    return f"{name} {op} {k}", _any(name, lambda v: fn(v, k))


@st.composite
def str_compare(draw: st.DrawFn) -> tuple[str, Ref]:
    name = draw(st.sampled_from([n for n, f in FIELDS.items() if f[0] == "str"]))
    glob = FIELDS[name][1]
    form = draw(st.sampled_from(["eq", "ne", "match", "notmatch", "regex", "in", "notin"]))
    if form in ("eq", "ne"):
        s = draw(st.sampled_from(STRS))
        pos = _any(name, lambda v: v == s)
        return f'{name} {"==" if form == "eq" else "!="} "{s}"', pos if form == "eq" else (lambda d: not pos(d))
    if form in ("match", "notmatch") or (form == "regex" and glob):
        p = draw(st.sampled_from(GLOBS if glob else PATTERNS))
        rx = _pattern_regex(p, glob)
        pos = _any(name, lambda v: rx.fullmatch(v) is not None)
        return f'{name} {"=~" if form != "notmatch" else "!~"} "{p}"', pos if form != "notmatch" else (lambda d: not pos(d))
    if form == "regex":
        r = draw(st.sampled_from(REGEXES))
        return f'{name} =~ r"{r}"', _any(name, lambda v: re.search(r, v) is not None)
    plain = draw(st.lists(st.sampled_from(STRS), min_size=1, max_size=3))
    pats = draw(st.lists(st.sampled_from(GLOBS if glob else PATTERNS), max_size=2))
    rxs = [_pattern_regex(p, glob) for p in pats]
    items = [f'"{s}"' for s in plain] + [f'~"{p}"' for p in pats]
    pos = _any(name, lambda v: v in plain or any(r.fullmatch(v) for r in rxs))
    text = f"{name} {'in' if form == 'in' else 'not in'} [{', '.join(items)}]"
    return text, pos if form == "in" else (lambda d: not pos(d))


@st.composite
def leaf(draw: st.DrawFn) -> tuple[str, Ref]:
    kind = draw(st.sampled_from(["int", "str", "str", "bool", "duration"]))
    if kind == "int":
        return draw(int_compare())
    if kind == "str":
        return draw(str_compare())
    if kind == "bool":
        name = draw(st.sampled_from([n for n, f in FIELDS.items() if f[0] == "bool"]))
        return name, lambda d: bool(FIELDS[name][3](d))
    secs = draw(st.integers(0, 20))
    op = draw(st.sampled_from([">", "<"]))
    def ref(d: dict) -> bool:
        age = NOW - _get(d, "process", "created_at", default=0)
        return age > secs * 10**9 if op == ">" else age < secs * 10**9
    return f"process.created_at {op} {secs}s", ref


def expressions(depth: int = 3) -> st.SearchStrategy[tuple[str, Ref]]:
    def extend(children: st.SearchStrategy[tuple[str, Ref]]) -> st.SearchStrategy[tuple[str, Ref]]:
        def combine(a: tuple[str, Ref], b: tuple[str, Ref], op: str) -> tuple[str, Ref]:
            fa, fb = a[1], b[1]
            fn = (lambda d: fa(d) and fb(d)) if op == "&&" else (lambda d: fa(d) or fb(d))
            return f"({a[0]}) {op} ({b[0]})", fn
        def negate(a: tuple[str, Ref]) -> tuple[str, Ref]:
            fa = a[1]
            return f"!({a[0]})", lambda d: not fa(d)
        return st.one_of(st.builds(combine, children, children, st.sampled_from(["&&", "||"])),
                         children.map(negate))
    return st.recursive(leaf(), extend, max_leaves=6)


@st.composite
def documents(draw: st.DrawFn) -> dict:
    def maybe(key: str, value: Any, out: dict) -> None:
        if draw(st.integers(0, 9)) > 0:
            out[key] = value
    file: dict = {}
    maybe("path", draw(st.sampled_from(STRS + ["/var/log/x/y"])), file)
    maybe("mode", draw(st.sampled_from([0o100644, 0o100755, 0o4755, 0])), file)
    maybe("in_upper_layer", draw(st.booleans()), file)
    opened: dict = {}
    maybe("flags", draw(st.sampled_from(INTS)), opened)
    maybe("retval", draw(st.sampled_from([0, 3, -13])), opened)
    maybe("file", file, opened)
    process: dict = {}
    maybe("uid", draw(st.sampled_from([0, 1000])), process)
    maybe("comm", draw(st.sampled_from(STRS)), process)
    maybe("is_thread", draw(st.booleans()), process)
    maybe("created_at", NOW - draw(st.integers(0, 30)) * 10**9, process)
    maybe("argv", draw(st.lists(st.sampled_from(STRS), max_size=4)), process)
    maybe("file", {"path": draw(st.sampled_from(STRS))}, process)
    ancestors = [{"pid": draw(st.sampled_from(INTS)), "comm": draw(st.sampled_from(STRS)),
                  "file": {"path": draw(st.sampled_from(STRS))}} for _ in range(draw(st.integers(0, 3)))]
    maybe("ancestors", ancestors, process)
    doc = {"type": "open", "timestamp": NOW}
    maybe("open", opened, doc)
    maybe("process", process, doc)
    return doc


def _lazify(value: Any, data: st.DataObject) -> Any:
    """Wrap random dict values in Lazy, at any depth."""
    if isinstance(value, dict):
        out = {k: _lazify(v, data) for k, v in value.items()}
        for k in list(out):
            if k not in ("type", "timestamp") and data.draw(st.booleans()):
                out[k] = Lazy(lambda v=out[k]: v)  # type: ignore[misc]
        return out
    if isinstance(value, list):
        return [_lazify(v, data) for v in value]
    return value


@settings(max_examples=600, deadline=None)
@given(expressions(), st.lists(documents(), min_size=1, max_size=6), st.data())
def test_evaluator_matches_reference(expr: tuple[str, Ref], docs: list[dict], data: st.DataObject) -> None:
    text, reference = expr
    compiled, diags = compile_expression(text + " && open.flags == open.flags")
    assert compiled is not None, [d.format() for d in diags]
    for doc in docs:
        expected = bool(reference(doc))
        lazy_doc = _lazify(copy.deepcopy(doc), data)
        assert compiled.matches(DocumentEvent(lazy_doc)) is expected, (text, doc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(expressions(), min_size=1, max_size=12), st.lists(documents(), min_size=1, max_size=5))
def test_indexed_ruleset_agrees_with_each_rule(tmp_path: Path, exprs: list[tuple[str, Ref]], docs: list[dict]) -> None:
    lines = ["rules:"]
    for i, (text, _) in enumerate(exprs):
        lines += [f"  - id: r{i}", "    expression: " + repr("open.flags == open.flags && " + text).replace("\\\\", "\\")]
    path = tmp_path / "fuzz.policy"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = load_policies([path])
    assert result.ok and not result.failed, [d.format() for d in result.problems()]
    rules = result.ruleset.rules_for("open")
    for doc in docs:
        expected = [r.id for r, (_, ref) in zip(rules, exprs) if ref(doc)]
        assert result.ruleset.evaluate(copy.deepcopy(doc)) == expected


def test_deep_nesting_is_an_error_not_a_crash(tmp_path: Path) -> None:
    assert compile_expression("(" * 150 + "open.flags > 0" + ")" * 150)[0] is not None  # parens add no level
    deep = "open.flags > 0"
    for i in range(150):
        deep = f"open.retval == {i} {'&&' if i % 2 else '||'} ({deep})"
    compiled, diags = compile_expression(deep)
    assert compiled is None and [(d.line, d.col, d.message) for d in diags] == [
        (1, 1, "expression nested too deeply (more than 100 levels)")]
    assert compile_expression("!" * 150 + "open.file.in_upper_layer")[0] is None
    long_chain = " || ".join(f"open.flags == {i}" for i in range(3000))
    compiled, diags = compile_expression(long_chain + " && open.retval == 0")
    assert compiled is not None and not diags.has_errors
    assert compiled.matches(DocumentEvent({"type": "open", "open": {"flags": 2999}}))
    assert not compiled.matches(DocumentEvent({"type": "open", "open": {"flags": 3000}}))
    path = tmp_path / "deep.policy"
    path.write_text("rules: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    assert not load_policies([path]).ok
