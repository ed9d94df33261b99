"""Policies: YAML files of macros and rules, merged and compiled to a Ruleset.

Loading order: the paths given, each directory expanded to its policy files
(``.policy``, ``.yaml``, ``.yml``) with ``default.policy`` first, then by
name. A later policy may redefine a rule or macro only with
``combine: override`` (rules: replaces ``expression``, or the fields in
``override_options.fields``; macros: replaces the macro) or
``combine: merge`` (list macros: appends ``values``); a rule redefined with
nothing but ``disabled`` flips it (how a local policy disables a default
rule). Every problem is reported with its file, line and column.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Sequence

from . import ir, limits
from .actions import Action, Position, SetAction, parse_actions
from .durations import TOO_LONG, parse_duration, too_long
from .errors import Diagnostics, Severity, Source, Span
from agent.evaluator.event import as_event
from .fields import HOST_REGISTRY, REGISTRY, Registry
from .hostinfo import host_document
from .ir import Kind, Type
from .kernel_limits import check_kernel_maps
from .parser import parse
from .pybackend import compile_expr
from agent.evaluator.ruleset import Fn, Rule, Ruleset
from .semantics import Analysis, Scope, analyze
from .yamlpos import YNode, load, read_file

log = logging.getLogger(__name__)

POLICY_EXTENSIONS = (".policy", ".yaml", ".yml")
DEFAULT_POLICY = "default.policy"
RULE_ID = re.compile(r"[a-zA-Z0-9_]+")
OVERRIDABLE = ("expression", "actions", "every", "tags", "filters", "description", "disabled")
_IGNORED_RULE_KEYS = ("version", "agent_version", "product_tags", "silent", "group_id",
                      "priority", "limiter_token")
_RULE_KEYS = ("id", "expression", "description", "tags", "disabled", "every", "actions",
              "filters", "combine", "override_options") + _IGNORED_RULE_KEYS
_MACRO_KEYS = ("id", "expression", "values", "description", "combine", "agent_version",
               "filters", "version")
_TOP_KEYS = ("version", "macros", "rules")


@dataclass(eq=False)
class MacroDef:
    id: str
    id_node: YNode
    expression: YNode | None
    values: list[YNode] | None
    combine: str | None
    description: str = ""


@dataclass(eq=False)
class RuleDef:
    id: str
    id_node: YNode
    keys: frozenset[str]
    expression: YNode | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    disabled: bool = False
    every: int | None = None
    actions: tuple[Action, ...] = ()
    filters: tuple[YNode, ...] = ()
    combine: str | None = None
    override_fields: tuple[str, ...] = ()
    policy: str = ""
    valid: bool = True  # False when its definition had errors: it is checked but not loaded


@dataclass(eq=False)
class PolicyFile:
    path: str
    version: str | None = None
    macros: list[MacroDef] = field(default_factory=list)
    rules: list[RuleDef] = field(default_factory=list)


def policy_files(path: str | Path) -> list[Path]:
    """A file as is; a directory's policy files, ``default.policy`` first, then by name."""
    p = Path(path)
    if not p.is_dir():
        return [p]
    files = [f for f in p.iterdir() if f.is_file() and f.suffix in POLICY_EXTENSIONS]
    return sorted(files, key=lambda f: (f.name != DEFAULT_POLICY, f.name))


class _Reporter:
    def __init__(self, diags: Diagnostics) -> None:
        self.diags = diags

    def error(self, node: YNode, message: str) -> None:
        self.diags.error_at(node.file.path, node.line, node.col, message, _source_line(node))

    def warning(self, node: YNode, message: str) -> None:
        self.diags.warning_at(node.file.path, node.line, node.col, message, _source_line(node))

    def unknown_keys(self, node: YNode, allowed: Sequence[str], what: str) -> None:
        for key, key_node in node.keys.items():
            if key not in allowed:
                self.warning(key_node, f"unknown {what} key '{key}' ignored")


def _source_line(node: YNode) -> str:
    lines = node.file.lines
    return lines[node.line - 1].rstrip("\r") if 0 < node.line <= len(lines) else ""


def parse_policy(text: str, path: str, diags: Diagnostics) -> PolicyFile:
    """Structure of one policy file (expressions are checked later)."""
    policy = PolicyFile(path)
    root = load(text, path, diags)
    if root is None:
        return policy
    report = _Reporter(diags)
    if not root.is_mapping:
        report.error(root, "a policy is a mapping with 'version', 'macros' and 'rules'")
        return policy
    report.unknown_keys(root, _TOP_KEYS, "policy")
    if "version" in root.value:
        policy.version = str(root.value["version"].value)
    for section, parse_item, out in (("macros", _parse_macro, policy.macros), ("rules", _parse_rule, policy.rules)):
        node = root.get(section)
        if node is None or node.value is None:
            continue
        if not node.is_sequence:
            report.error(node, f"'{section}' must be a list")
            continue
        for item in node.value:
            parsed = parse_item(item, report, path)
            if parsed is not None:
                out.append(parsed)  # type: ignore[arg-type]
    return policy


def _short(value: object) -> str:
    """``repr`` of a YAML value for a message, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...{text[-10:]}"


def _parse_id(item: YNode, report: _Reporter, what: str) -> tuple[str, YNode] | None:
    if not item.is_mapping:
        report.error(item, f"a {what} is a mapping with an 'id'")
        return None
    id_node = item.get("id")
    if id_node is None:
        report.error(item, f"{what} without an 'id'")
        return None
    value = id_node.value
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not RULE_ID.fullmatch(str(value)):
        report.error(id_node, f"invalid {what} ID {value!r}: use letters, digits and '_' ([a-zA-Z0-9_]+)")
        return None
    return str(value), id_node


def _parse_macro(item: YNode, report: _Reporter, path: str) -> MacroDef | None:
    ident = _parse_id(item, report, "macro")
    if ident is None:
        return None
    report.unknown_keys(item, _MACRO_KEYS, "macro")
    expression, values = item.get("expression"), item.get("values")
    if (expression is None) == (values is None):
        report.error(ident[1], f"macro '{ident[0]}' needs exactly one of 'expression' or 'values'")
        return None
    if expression is not None and not isinstance(expression.value, str):
        report.error(expression, "a macro expression must be a string")
        return None
    if values is not None and not values.is_sequence:
        report.error(values, "'values' must be a list")
        return None
    combine = _combine(item, report)
    description = item.get("description")
    return MacroDef(ident[0], ident[1], expression, values.value if values is not None else None,
                    combine, str(description.value) if description is not None else "")


def _combine(item: YNode, report: _Reporter) -> str | None:
    node = item.get("combine")
    if node is None:
        return None
    if node.value not in ("override", "merge"):
        report.error(node, f"invalid combine {node.value!r} (expected override or merge)")
        return None
    return str(node.value)


def _parse_rule(item: YNode, report: _Reporter, path: str) -> RuleDef | None:
    ident = _parse_id(item, report, "rule")
    if ident is None:
        return None
    report.unknown_keys(item, _RULE_KEYS, "rule")
    v = item.value
    rule = RuleDef(ident[0], ident[1], frozenset(v), policy=path)
    errors_before = report.diags.error_count
    if "expression" in v:
        if isinstance(v["expression"].value, str):
            rule.expression = v["expression"]
        else:
            report.error(v["expression"], "an expression must be a string")
    if "description" in v:
        rule.description = str(v["description"].value or "")
    if "tags" in v:
        tags = v["tags"]
        if tags.is_mapping:
            for key, value in tags.value.items():
                if value.is_mapping or value.is_sequence:
                    report.error(value, f"tag '{key}' must be a scalar")
                else:
                    rule.tags[key] = "" if value.value is None else str(value.value)
        elif tags.value is not None:
            report.error(tags, "'tags' must be a mapping")
    if "disabled" in v:
        if isinstance(v["disabled"].value, bool):
            rule.disabled = v["disabled"].value
        else:
            report.error(v["disabled"], "'disabled' must be true or false")
    if "every" in v:
        rule.every = parse_duration(v["every"].value)
        if too_long(rule.every):
            report.error(v["every"], f"'every' too long: {TOO_LONG}")
        elif rule.every is None or rule.every <= 0:
            report.error(v["every"], f"invalid 'every' {_short(v['every'].value)}: a duration such as 10s, 5m, 1h")
    if "actions" in v and v["actions"].value is not None:
        rule.actions = parse_actions(v["actions"], report.diags)
    if "filters" in v and v["filters"].value is not None:
        filters = v["filters"]
        if not filters.is_sequence:
            report.error(filters, "'filters' must be a list of expressions")
        else:
            for f in filters.value:
                if isinstance(f.value, str):
                    rule.filters += (f,)
                else:
                    report.error(f, "a filter must be an expression string")
    rule.combine = _combine(item, report)
    if "override_options" in v:
        rule.override_fields = _override_fields(v["override_options"], report)
    rule.valid = report.diags.error_count == errors_before
    return rule


def _override_fields(node: YNode, report: _Reporter) -> tuple[str, ...]:
    fields = node.get("fields") if node.is_mapping else None
    if fields is None or not fields.is_sequence:
        report.error(node, "'override_options' needs 'fields', a list")
        return ()
    out: list[str] = []
    for f in fields.value:
        if f.value == "all":
            out.extend(OVERRIDABLE)
        elif f.value in OVERRIDABLE:
            out.append(str(f.value))
        else:
            report.error(f, f"cannot override {f.value!r} (expected one of: all, {', '.join(OVERRIDABLE)})")
    return tuple(dict.fromkeys(out))


# --- merging --------------------------------------------------------------------

def _where(node: YNode) -> str:
    return f"{node.file.path}:{node.line}:{node.col}"


def merge(policies: Iterable[PolicyFile], diags: Diagnostics) -> tuple[dict[str, MacroDef], dict[str, RuleDef]]:
    """Combine policies in order (see the module docstring)."""
    report = _Reporter(diags)
    macros: dict[str, MacroDef] = {}
    rules: dict[str, RuleDef] = {}
    merged: set[str] = set()  # list macros whose values list is merge()'s own (extended in place)
    for policy in policies:
        for m in policy.macros:
            prev = macros.get(m.id)
            if prev is None:
                if len(macros) == limits.MAX_MACROS:
                    report.error(m.id_node, f"more than {limits.MAX_MACROS:,} macros (docs/secl.md \"Limits\"); "
                                            f"'{m.id}' and the macros after it are left out")
                    break
                macros[m.id] = m
            elif m.combine == "merge":
                if prev.values is None or m.values is None:
                    report.error(m.id_node, f"combine: merge needs list macros ('values'); '{m.id}' was defined at {_where(prev.id_node)}")
                elif len(prev.values) + len(m.values) > limits.MAX_LIST_ITEMS:
                    report.error(m.id_node, f"list macro '{m.id}' would have more than {limits.MAX_LIST_ITEMS:,} values "
                                            f"(docs/secl.md \"Limits\")")
                else:
                    values = prev.values if m.id in merged else list(prev.values)
                    values.extend(m.values)  # in place: merging n times costs n, not n squared
                    merged.add(m.id)
                    macros[m.id] = MacroDef(m.id, prev.id_node, None, values, None, prev.description)
            elif m.combine == "override":
                macros[m.id] = m
                merged.discard(m.id)
            else:
                report.error(m.id_node, f"macro '{m.id}' is already defined at {_where(prev.id_node)}; use combine: override or merge")
        for r in policy.rules:
            prev_rule = rules.get(r.id)
            if prev_rule is None:
                if len(rules) == limits.MAX_RULES:
                    report.error(r.id_node, f"more than {limits.MAX_RULES:,} rules (docs/secl.md \"Limits\"); "
                                            f"'{r.id}' and the rules after it are left out")
                    break
                if r.expression is None:
                    report.error(r.id_node, f"rule '{r.id}' has no expression")
                    continue
                rules[r.id] = r
            elif r.combine == "override":
                _override(prev_rule, r, report)
            elif r.keys <= {"id", "disabled"} and "disabled" in r.keys:
                prev_rule.disabled = r.disabled
            else:
                report.error(r.id_node, f"rule '{r.id}' is already defined at {_where(prev_rule.id_node)}; "
                                        "use combine: override, or only 'disabled' to switch it")
    return macros, rules


def _override(prev: RuleDef, new: RuleDef, report: _Reporter) -> None:
    for name in new.override_fields or ("expression",):
        key = name
        if key not in new.keys:
            report.error(new.id_node, f"rule '{new.id}' overrides '{name}' but does not define it")
            continue
        setattr(prev, name, getattr(new, name))
    prev.valid = prev.valid and new.valid


# --- compiling --------------------------------------------------------------------

@dataclass
class LoadResult:
    ruleset: Ruleset
    diagnostics: Diagnostics
    files: list[str]
    macros: dict[str, Analysis]
    filtered_out: list[str] = field(default_factory=list)  # rule IDs dropped by host filters

    @property
    def ok(self) -> bool:
        return not self.diagnostics.has_errors


class _Compiler:
    def __init__(self, macros: dict[str, MacroDef], diags: Diagnostics, registry: Registry,
                 variables: dict[str, Type]) -> None:
        self.defs = macros
        self.diags = diags
        self.registry = registry
        self.results: dict[str, Analysis | None] = {}
        self.active: list[str] = []
        self.budget = limits.Budget()
        self.scope = Scope({name: self.macro for name in macros}, variables, self.budget)

    def macro(self, name: str) -> Analysis | None:
        if name in self.results:
            return self.results[name]
        if name in self.active:
            m = self.defs[name]
            cycle = " -> ".join(self.active[self.active.index(name):] + [name])
            _Reporter(self.diags).error(m.id_node, f"macro '{name}' refers to itself ({cycle})")
            self.results[name] = None
            return None
        self.active.append(name)
        try:
            result = self._macro(self.defs[name])
        finally:
            self.active.pop()
        self.results.setdefault(name, result)
        return self.results[name]

    def _macro(self, m: MacroDef) -> Analysis | None:
        if m.values is not None:
            return self._values(m)
        assert m.expression is not None
        source = m.expression.source()
        node = parse(source, self.diags, self.budget)
        if node is None:
            return None
        return analyze(node, source, self.diags, registry=self.registry, scope=self.scope,
                       require_event_type=False, expect=None)

    def _values(self, m: MacroDef) -> Analysis | None:
        report = _Reporter(self.diags)
        values: list[Any] = []
        kind: Kind | None = None
        kinds = {bool: Kind.BOOL, int: Kind.INT, str: Kind.STR}
        items = m.values or []
        if len(items) > self.budget.items:
            at = items[max(self.budget.items, 0)]
            self.budget.items = -1
            report.error(at, f"the policy's lists hold more than {limits.MAX_LIST_ITEMS:,} elements in all "
                             f"(docs/secl.md \"Limits\"); list macro '{m.id}' is past it")
            return None
        self.budget.items -= len(items)
        self.budget.nodes -= len(items)  # charged again at each use, like any expression
        for v in items:
            k = kinds.get(type(v.value))
            if k is None:
                report.error(v, "list macro values are strings, integers or booleans")
                return None
            if kind is not None and k is not kind:
                report.error(v, f"mixed types in list macro '{m.id}': {k.value} after {kind.value}")
                return None
            if isinstance(v.value, str) and len(v.value) > limits.MAX_STRING_CHARS:
                report.error(v, f"string longer than {limits.MAX_STRING_CHARS} characters (docs/secl.md \"Limits\")")
                return None
            kind = k
            values.append(v.value)
        span = Span(0, 0)
        return Analysis(ir.Const(tuple(values), Type(kind or Kind.ANY, array=True), span), None, (), len(values) + 1)

    def expression(self, node: YNode, require_event_type: bool = True,
                   registry: Registry | None = None) -> tuple[Any, Analysis, Fn] | None:
        source = node.source()
        tree = parse(source, self.diags, self.budget)
        if tree is None:
            return None
        scope = self.scope if registry is None else Scope(budget=self.budget)
        analysis = analyze(tree, source, self.diags, registry=registry or self.registry, scope=scope,
                           require_event_type=require_event_type)
        if analysis is None:
            return None
        return tree, analysis, compile_expr(analysis.expr)


def _variables(rules: Iterable[RuleDef], diags: Diagnostics) -> dict[str, Type]:
    out: dict[str, tuple[Type, Position]] = {}
    for rule in rules:
        for action in rule.actions:
            if isinstance(action, SetAction):
                prev = out.get(action.variable)
                if prev is not None and prev[0] != action.type:
                    p = action.position
                    diags.error_at(p.file, p.line, p.col,
                                   f"variable '{action.variable}' set as {action.type} here and as {prev[0]} at {prev[1]}")
                    continue
                out.setdefault(action.variable, (action.type, action.position))
    return {name: t for name, (t, _) in out.items()}


def read_policies(paths: Sequence[str | Path], diags: Diagnostics) -> tuple[list[PolicyFile], list[str]]:
    files: list[str] = []
    policies = []
    for path in paths:
        if not Path(path).exists():
            diags.error_at(str(path), 1, 1, "no such file or directory")
            continue
        for f in policy_files(path):
            text = read_file(f, diags)
            if text is None:
                continue
            files.append(str(f))
            policies.append(parse_policy(text, str(f), diags))
    return policies, files


def load_policies(paths: Sequence[str | Path], *, host: dict[str, Any] | None = None,
                  registry: Registry = REGISTRY) -> LoadResult:
    """Load, merge and compile policies. ``host``: a host document (see
    :func:`codegen.hostinfo.host_document`); when given, rules whose
    ``filters`` all fail on it are left out. Invalid rules are left out too,
    and reported; check ``result.ok``."""
    diags = Diagnostics()
    policies, files = read_policies(paths, diags)
    macro_defs, rule_defs = merge(policies, diags)
    compiler = _Compiler(macro_defs, diags, registry, _variables(rule_defs.values(), diags))
    rules: list[Rule] = []
    filtered: list[str] = []
    compiled: list[Rule] = []
    for rdef in rule_defs.values():
        rule = _compile_rule(compiler, rdef)
        if rule is None:
            continue
        compiled.append(rule)
        if host is not None and not rule.accepts_host(host):
            filtered.append(rule.id)
            continue
        rules.append(rule)
    for name in macro_defs:  # unused macros are checked too
        compiler.macro(name)
    check_kernel_maps(compiled, diags)  # on every rule, whatever the host: what validate accepts, the agent loads
    macros = {k: v for k, v in compiler.results.items() if v is not None}
    return LoadResult(Ruleset(rules), diags, files, macros, filtered)


def _compile_rule(compiler: _Compiler, rdef: RuleDef) -> Rule | None:
    assert rdef.expression is not None
    compiled = compiler.expression(rdef.expression)
    host_filters: list[Fn] = []
    for f in rdef.filters:
        result = compiler.expression(f, require_event_type=False, registry=HOST_REGISTRY)
        if result is not None:
            host_filters.append(result[2])
    if compiled is None or len(host_filters) != len(rdef.filters) or not rdef.valid:
        return None
    tree, analysis, fn = compiled
    assert analysis.event_type is not None
    node = rdef.id_node
    return Rule(
        id=rdef.id, expression=str(rdef.expression.value), event_type=analysis.event_type,
        ast=tree, ir=analysis.expr,
        position=Position(node.file.path, node.line, node.col), description=rdef.description,
        tags=dict(rdef.tags), every=rdef.every, actions=rdef.actions,
        filters=tuple(str(f.value) for f in rdef.filters), disabled=rdef.disabled,
        policy=rdef.policy, fn=fn, host_filters=tuple(host_filters),
    )


@dataclass
class CompiledExpression:
    text: str
    analysis: Analysis
    fn: Fn

    @property
    def event_type(self) -> str | None:
        return self.analysis.event_type

    def matches(self, event: Any) -> bool:
        ev = as_event(event)
        if self.event_type is not None and ev.type != self.event_type:
            return False
        return bool(self.fn(ev))


def compile_expression(text: str, *, policies: Sequence[str | Path] = (), name: str = "<expr>",
                       require_event_type: bool = False,
                       registry: Registry = REGISTRY) -> tuple[CompiledExpression | None, Diagnostics]:
    """Compile one expression (``rulec eval``); macros and variables come from ``policies``."""
    diags = Diagnostics()
    pol_diags = Diagnostics()
    policy_files_, _ = read_policies(policies, pol_diags)
    macro_defs, rule_defs = merge(policy_files_, pol_diags)
    # The policy only lends macros and variables: its own problems do not stop the evaluation.
    diags.extend(replace(d, severity=Severity.WARNING) for d in pol_diags)
    compiler = _Compiler(macro_defs, diags, registry, _variables(rule_defs.values(), pol_diags))
    source = Source(text, name)
    tree = parse(source, diags, compiler.budget)
    if tree is None:
        return None, diags
    analysis = analyze(tree, source, diags, registry=registry, scope=compiler.scope,
                       require_event_type=require_event_type)
    if analysis is None or diags.has_errors:
        return None, diags
    return CompiledExpression(text, analysis, compile_expr(analysis.expr)), diags


__all__ = ["load_policies", "compile_expression", "policy_files", "parse_policy", "merge",
           "LoadResult", "CompiledExpression", "host_document"]
