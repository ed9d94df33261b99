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
from .agentversion import EMULATED_VERSION, VersionError, parse_constraint, parse_version
from .errors import Diagnostic, Diagnostics, Severity, Source, Span
from agent.evaluator.event import as_event
from .fields import HOST_REGISTRY, REGISTRY, Registry
from .hostinfo import host_document
from .ir import Kind, Type
from .kernel_limits import check_kernel_maps
from .parser import parse
from .pybackend import compile_expr
from agent.evaluator.ruleset import Fn, Rule, Ruleset
from .semantics import UNKNOWN_FIELD, UNSUPPORTED, UNSUPPORTED_TYPE, Analysis, Scope, analyze
from .yamlpos import YNode, load, read_file

log = logging.getLogger(__name__)

POLICY_EXTENSIONS = (".policy", ".yaml", ".yml")
DEFAULT_POLICY = "default.policy"
RULE_ID = re.compile(r"[a-zA-Z0-9_]+")
OVERRIDABLE = ("expression", "actions", "every", "tags", "filters", "description", "disabled")
# Accepted and not used: grouping and scheduling hints of the reference agent's backend.
_IGNORED_RULE_KEYS = ("version", "product_tags", "group_id", "priority", "limiter_token")
_RULE_KEYS = ("id", "expression", "description", "tags", "disabled", "every", "actions",
              "filters", "combine", "override_options", "agent_version", "silent") + _IGNORED_RULE_KEYS

# Why a rule is not loaded (the label of the rules_skipped_total metric). The
# first two leave a rule out silently (it was not meant for this host or
# agent version: counted, listed with -v); the others are reported once.
EXCLUDED = ("filter", "agent_version")
INVALID = "invalid"
FAILED = (UNSUPPORTED_TYPE, UNKNOWN_FIELD, UNSUPPORTED, INVALID)
HOOK_SET = "hook_set"  # the agent's hook set on this kernel does not produce the rule's event type
SKIP_REASONS = EXCLUDED + FAILED + (HOOK_SET,)
_MACRO_KEYS = ("id", "expression", "values", "description", "combine", "agent_version",
               "filters", "version")
_TOP_KEYS = ("version", "macros", "rules", "profiles")


@dataclass(eq=False)
class MacroDef:
    id: str
    id_node: YNode
    expression: YNode | None
    values: list[YNode] | None
    combine: str | None
    description: str = ""
    filters: tuple[YNode, ...] = ()
    agent_version: YNode | None = None


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
    agent_version: YNode | None = None
    silent: bool = False  # matches run the actions but send no alert
    diags: Diagnostics = field(default_factory=Diagnostics)  # problems of its definition
    anomaly: dict[str, str] | None = None  # generated from a profile (agent/profile/rules.py)


@dataclass(frozen=True)
class SkippedRule:
    """A rule left out of the load, and why (one of :data:`SKIP_REASONS`)."""

    id: str
    position: Position  # where its first problem is (its ID for excluded rules)
    reason: str
    message: str
    diagnostics: tuple[Diagnostic, ...] = ()

    def format(self) -> str:
        return f"{self.position}: rule '{self.id}' not loaded ({self.reason}): {self.message}"


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
    node = root.get("profiles")
    if node is not None and node.value is not None:
        policy.rules.extend(_profile_rules(node, report, path))
    return policy


def _profile_rules(node: YNode, report: _Reporter, path: str) -> list[RuleDef]:
    """``profiles: [{id, path, tags}]``: the anomaly rules each profile generates (agent/profile/rules.py);
    a profile that cannot be read is an error of the policy, at the entry's ``path``."""
    from agent.profile.model import read_profile
    from agent.profile.rules import generated_rules, rules_yaml

    if not node.is_sequence:
        report.error(node, "'profiles' must be a list of {id, path}")
        return []
    out: list[RuleDef] = []
    for item in node.value:
        ident = _parse_id(item, report, "profile")
        if ident is None:
            continue
        report.unknown_keys(item, ("id", "path", "tags"), "profile")
        where = item.get("path")
        if where is None or not isinstance(where.value, str) or not where.value:
            report.error(item, f"profile '{ident[0]}' needs 'path', the profile file (`rsagent profile learn`)")
            continue
        file = Path(where.value) if Path(where.value).is_absolute() else Path(path).parent / where.value
        own = Diagnostics()
        profile = read_profile(file, own) if file.is_file() else None
        if profile is None:
            report.error(where, f"profile '{ident[0]}': cannot use {file}: " + (
                "; ".join(d.format().splitlines()[0] for d in own.sorted() if d.is_error) or "no such file"))
            continue
        tags = item.get("tags")
        extra = {str(k): str(v.value) for k, v in tags.value.items()} if tags is not None and tags.is_mapping else {}
        generated = generated_rules(profile, ident[0], str(file), extra)
        root = load(rules_yaml(generated), f"{file} (rules of profile '{ident[0]}')", report.diags)
        rules = root.get("rules") if root is not None else None
        for rule_node, (_, anomaly) in zip(rules.value if rules is not None else [], generated, strict=True):
            rdef = _parse_rule(rule_node, report, path)
            if rdef is not None:
                rdef.id_node = ident[1]  # alerts and problems point at the policy's profile entry
                rdef.anomaly = anomaly
                out.append(rdef)
    return out


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


def _parse_filters(item: YNode, report: _Reporter) -> tuple[YNode, ...]:
    filters = item.get("filters")
    if filters is None or filters.value is None:
        return ()
    if not filters.is_sequence:
        report.error(filters, "'filters' must be a list of expressions")
        return ()
    out: tuple[YNode, ...] = ()
    for f in filters.value:
        if isinstance(f.value, str):
            out += (f,)
        else:
            report.error(f, "a filter must be an expression string")
    return out


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
                    combine, str(description.value) if description is not None else "",
                    _parse_filters(item, report), item.get("agent_version"))


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
    report = _Reporter(rule.diags)  # its problems make this rule unloadable, not the policy
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
    if "silent" in v:
        if isinstance(v["silent"].value, bool):
            rule.silent = v["silent"].value
        else:
            report.error(v["silent"], "'silent' must be true or false")
    rule.agent_version = v.get("agent_version")
    if "every" in v and v["every"].value == 0:
        rule.every = None  # the reference agent's "no rate limit"
    elif "every" in v:
        rule.every = parse_duration(v["every"].value)
        if too_long(rule.every):
            report.error(v["every"], f"'every' too long: {TOO_LONG}")
        elif rule.every is None or rule.every <= 0:
            report.error(v["every"], f"invalid 'every' {_short(v['every'].value)}: a duration such as 10s, 5m, 1h")
    if "actions" in v and v["actions"].value is not None:
        rule.actions = parse_actions(v["actions"], report.diags)
    rule.filters = _parse_filters(item, report)
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


def merge(policies: Iterable[PolicyFile], diags: Diagnostics,
          excluded: frozenset[str] = frozenset()) -> tuple[dict[str, MacroDef], dict[str, RuleDef]]:
    """Combine policies in order (see the module docstring). ``excluded``: IDs
    of rules left out for this host; a later policy overriding or disabling
    one of them is left out with it."""
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
                if r.id in excluded and (r.expression is None or r.combine == "override"):
                    continue
                if r.expression is None:
                    report.error(r.id_node, f"rule '{r.id}' has no expression")
                    diags.extend(r.diags)
                    continue
                rules[r.id] = r
            elif r.combine == "override":
                _override(prev_rule, r, report)
            elif r.keys <= {"id", "disabled"} and "disabled" in r.keys:
                prev_rule.disabled = r.disabled
            else:
                report.error(r.id_node, f"rule '{r.id}' is already defined at {_where(prev_rule.id_node)}; "
                                        "use combine: override, or only 'disabled' to switch it")
                diags.extend(r.diags)
    return macros, rules


def _override(prev: RuleDef, new: RuleDef, report: _Reporter) -> None:
    for name in new.override_fields or ("expression",):
        key = name
        if key not in new.keys:
            report.error(new.id_node, f"rule '{new.id}' overrides '{name}' but does not define it")
            continue
        setattr(prev, name, getattr(new, name))
    prev.valid = prev.valid and new.valid
    prev.diags.extend(new.diags)


# --- compiling --------------------------------------------------------------------

@dataclass
class LoadResult:
    ruleset: Ruleset
    diagnostics: Diagnostics  # problems of the policy itself (and warnings): errors refuse it
    files: list[str]
    macros: dict[str, Analysis]
    skipped: list[SkippedRule] = field(default_factory=list)  # rules left out, in policy order
    macro_problems: list[Diagnostic] = field(default_factory=list)  # errors of macros not loaded

    def problems(self) -> Diagnostics:
        """Every error as found: the policy's, and those that left a rule or a macro out."""
        out = Diagnostics([d for d in self.diagnostics if d.is_error] + self.macro_problems)
        for s in self.failed:
            out.extend(s.diagnostics)
        return out

    @property
    def ok(self) -> bool:
        """The policy loads (some of its rules may be skipped: see :attr:`failed`)."""
        return not self.diagnostics.has_errors

    @property
    def failed(self) -> list[SkippedRule]:
        """Rules that could not be loaded (reported), as opposed to excluded ones."""
        return [s for s in self.skipped if s.reason not in EXCLUDED]

    @property
    def excluded(self) -> list[SkippedRule]:
        """Rules left out silently by their filters or agent_version."""
        return [s for s in self.skipped if s.reason in EXCLUDED]

    @property
    def filtered_out(self) -> list[str]:
        return [s.id for s in self.skipped if s.reason == "filter"]

    def summary(self) -> str:
        """``148 rule(s) loaded; skipped: 39 by filter, 26 by agent_version, 14 unsupported_type``."""
        counts = {k: v for k, v in self.skip_counts().items() if v}
        skipped = ", ".join(f"{v} {'by ' if k in EXCLUDED else ''}{k}" for k, v in counts.items())
        return f"{len(self.ruleset.rules)} rule(s) loaded" + (f"; skipped: {skipped}" if skipped else "")

    def skip_counts(self) -> dict[str, int]:
        out = dict.fromkeys(SKIP_REASONS, 0)
        for s in self.skipped:
            out[s.reason] += 1
        return out


class _Compiler:
    def __init__(self, macros: dict[str, MacroDef], diags: Diagnostics, registry: Registry,
                 variables: dict[str, Type], budget: limits.Budget) -> None:
        self.defs = macros
        self.diags = diags
        self.registry = registry
        self.results: dict[str, Analysis | None] = {}
        self.macro_diags: dict[str, Diagnostics] = {}
        self.active: list[str] = []
        self.budget = budget
        self.scope = Scope({name: self.macro for name in macros}, variables, self.budget)

    def collect(self, diags: Diagnostics) -> Diagnostics:
        """Send the problems found from now on to ``diags``; returns the previous collector."""
        previous, self.diags = self.diags, diags
        return previous

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
        own = self.macro_diags.setdefault(name, Diagnostics())
        previous = self.collect(own)  # a macro's problems are its own, whichever rule uses it first
        try:
            result = self._macro(self.defs[name])
        finally:
            self.active.pop()
            self.collect(previous)
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
                       require_event_type=False, expect=None, iterators="keep")

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

    def value(self, node: YNode) -> Analysis | None:
        """A ``set`` action's ``expression``: any value, of any event type."""
        source = node.source()
        tree = parse(source, self.diags, self.budget)
        if tree is None:
            return None
        return analyze(tree, source, self.diags, registry=self.registry, scope=self.scope,
                       require_event_type=False, expect=None, iterators="refuse")

    def guard(self, node: YNode) -> Analysis | None:
        source = node.source()
        tree = parse(source, self.diags, self.budget)
        if tree is None:
            return None
        return analyze(tree, source, self.diags, registry=self.registry, scope=self.scope,
                       require_event_type=False)

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


def _expression_types(rules: Iterable[RuleDef], macros: dict[str, MacroDef], registry: Registry) -> None:
    """Type the ``set`` actions whose value is an ``expression``, in place: by
    analysing each with the variables known so far (a few rounds, for
    expressions reading variables other expressions set)."""
    pending = [(rule, i) for rule in rules for i, a in enumerate(rule.actions)
               if isinstance(a, SetAction) and a.expression is not None and a.type.kind is Kind.ANY]
    for _ in range(3):
        if not pending:
            return
        known = _variables(rules)
        compiler = _Compiler(macros, Diagnostics(), registry, known, limits.Budget())
        left = []
        for rule, i in pending:
            action = rule.actions[i]
            assert isinstance(action, SetAction) and action.expression is not None
            analysis = compiler.value(action.expression)
            if analysis is None:
                left.append((rule, i))
                continue
            t = analysis.expr.type
            t = Type(t.kind, array=True) if action.append else t
            actions = list(rule.actions)
            actions[i] = replace(action, type=t)
            rule.actions = tuple(actions)
        pending = left


def _variables(rules: Iterable[RuleDef], report: bool = False) -> dict[str, Type]:
    """The variables the rules set, and their types; ``report``: a rule setting
    one with another type than a rule before it gets the error (and is left out)."""
    out: dict[str, tuple[Type, Position]] = {}
    for rule in rules:
        for action in rule.actions:
            if isinstance(action, SetAction) and action.type.kind is not Kind.ANY:
                prev = out.get(action.variable)
                if prev is not None and prev[0] != action.type:
                    p = action.position
                    if report:
                        rule.diags.error_at(p.file, p.line, p.col, f"variable '{action.variable}' set as "
                                            f"{action.type} here and as {prev[0]} at {prev[1]}")
                        rule.valid = False
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


class _HostSelector:
    """Decides, before policies are merged (as the reference agent does), which
    rules and macros are meant for this host and agent version: their
    ``agent_version`` constraint and ``filters`` (OR-ed, evaluated on the host
    document). ``host`` None: filters are checked but not applied."""

    def __init__(self, host: dict[str, Any] | None, version: str | None, budget: limits.Budget) -> None:
        self.host = as_event(host) if host is not None else None
        self.version = parse_version(version) if version is not None else None
        self.budget = budget
        self.cache: dict[str, Fn | None] = {}  # filter text -> compiled (a policy repeats os == "linux")

    def exclusion(self, node_id: YNode, agent_version: YNode | None, filters: Sequence[YNode],
                  diags: Diagnostics) -> tuple[str, str] | None:
        """(reason, message) when the item is not for this host; problems go to ``diags``."""
        if agent_version is not None and agent_version.value is not None:
            try:
                constraint = parse_constraint(str(agent_version.value))
            except VersionError as exc:
                _Reporter(diags).error(agent_version, str(exc))
                return None
            if self.version is not None and not constraint.allows(self.version):
                return "agent_version", (f"agent_version '{constraint.text}' excludes the emulated "
                                         f"agent version {'.'.join(map(str, self.version))}")
        fns = [self._filter(f, diags) for f in filters]
        if any(fn is None for fn in fns) or self.host is None or not fns:
            return None
        if not any(bool(fn(self.host)) for fn in fns if fn is not None):
            return "filter", f"no filter holds on this host ({'; '.join(str(f.value) for f in filters)})"
        return None

    def _filter(self, node: YNode, diags: Diagnostics) -> Fn | None:
        text = str(node.value)
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        source = node.source()
        tree = parse(source, diags, self.budget)
        analysis = None if tree is None else analyze(tree, source, diags, registry=HOST_REGISTRY,
                                                     scope=Scope(budget=self.budget), require_event_type=False)
        fn = compile_expr(analysis.expr) if analysis is not None else None
        self.cache[text] = fn
        return fn


def _select(policies: list[PolicyFile], selector: _HostSelector, diags: Diagnostics) -> list[SkippedRule]:
    """Drop the rules and macros not meant for this host from ``policies``
    (in place); the rules dropped, and those whose filters do not compile."""
    skipped: list[SkippedRule] = []
    for policy in policies:
        macros = []
        for m in policy.macros:
            own = Diagnostics()
            excluded = selector.exclusion(m.id_node, m.agent_version, m.filters, own)
            diags.extend(as_warnings(own, f"macro '{m.id}' not loaded: "))
            if excluded is None and not own.has_errors:
                macros.append(m)
        policy.macros = macros
        rules = []
        for r in policy.rules:
            excluded = selector.exclusion(r.id_node, r.agent_version, r.filters, r.diags)
            if excluded is None:
                rules.append(r)
            else:
                skipped.append(SkippedRule(r.id, _position(r.id_node), excluded[0], excluded[1]))
        policy.rules = rules
    return skipped


def _position(node: YNode) -> Position:
    return Position(node.file.path, node.line, node.col)


def as_warnings(diags: Iterable[Diagnostic], prefix: str) -> list[Diagnostic]:
    """Errors of one rule or macro as warnings (it is left out, the policy loads);
    a limit crossed stays an error: past a limit the whole policy is refused."""
    return [d if not d.is_error or limits.is_limit_message(d.message)
            else replace(d, severity=Severity.WARNING, message=prefix + d.message) for d in diags]


def load_policies(paths: Sequence[str | Path], *, host: dict[str, Any] | None = None,
                  registry: Registry = REGISTRY, agent_version: str | None = EMULATED_VERSION) -> LoadResult:
    """Load, merge and compile policies.

    ``host``: a host document (:func:`codegen.hostinfo.host_document`); when
    given, rules and macros whose ``filters`` all fail on it are left out.
    ``agent_version``: the reference-agent version whose ``agent_version``
    constraints apply (None: they are checked, not applied). A rule that
    cannot be loaded (an unknown field, an event type this agent does not
    produce, an invalid expression or action, a macro it needs that failed)
    is left out and reported in ``result.skipped``; the policy loads with the
    rest. ``result.ok`` is false only for problems of the policy as a whole
    (YAML syntax, structure, duplicate IDs, limits)."""
    diags = Diagnostics()
    budget = limits.Budget()
    policies, files = read_policies(paths, diags)
    selector = _HostSelector(host, agent_version, budget)
    skipped = _select(policies, selector, diags)
    macro_defs, rule_defs = merge(policies, diags, frozenset(s.id for s in skipped))
    _expression_types(list(rule_defs.values()), macro_defs, registry)
    compiler = _Compiler(macro_defs, diags, registry, _variables(rule_defs.values(), report=True), budget)
    rules: list[Rule] = []
    for rdef in rule_defs.values():
        own = Diagnostics(list(rdef.diags))
        compiler.collect(own)
        rule = _compile_rule(compiler, rdef, selector)
        compiler.collect(diags)
        if rule is not None and not own.has_errors:
            diags.extend(own)  # its warnings
            rules.append(rule)
            continue
        limit_errors = [d for d in own if d.is_error and limits.is_limit_message(d.message)]
        if limit_errors or (budget.exhausted and not own.has_errors):
            diags.extend(limit_errors)  # the policy is refused; reported once
            continue
        first = next(d for d in own if d.is_error)
        reason = _reason(first, compiler)
        skipped.append(SkippedRule(rdef.id, Position(first.file, first.line, first.col), reason,
                                   _message(first, compiler), tuple(own)))
    for name in macro_defs:  # unused macros are checked too
        compiler.macro(name)
    macro_problems = []
    for name, own in compiler.macro_diags.items():
        diags.extend(as_warnings(own, f"macro '{name}' not loaded: "))
        macro_problems += [d for d in own if d.is_error and not limits.is_limit_message(d.message)]
    check_kernel_maps(rules, diags)
    macros = {k: v for k, v in compiler.results.items() if v is not None}
    order = {rid: i for i, rid in enumerate(rule_defs)}
    skipped.sort(key=lambda s: order.get(s.id, -1))
    return LoadResult(Ruleset(rules), diags, files, macros, skipped, macro_problems)


def _reason(first: Diagnostic, compiler: _Compiler) -> str:
    """The skip reason of a rule whose first problem is ``first``."""
    code = first.code
    if code.startswith("macro:"):  # a macro it needs failed: that macro's reason
        own = compiler.macro_diags.get(code[len("macro:"):])
        inner = next((d for d in own if d.is_error), None) if own is not None else None
        if inner is None:
            return INVALID
        code = inner.code
    if code in (UNSUPPORTED_TYPE, UNKNOWN_FIELD, UNSUPPORTED):
        return code
    return INVALID


def _message(first: Diagnostic, compiler: _Compiler) -> str:
    if first.code.startswith("macro:"):
        own = compiler.macro_diags.get(first.code[len("macro:"):])
        inner = next((d for d in own if d.is_error), None) if own is not None else None
        if inner is not None:
            return f"{first.message}: {inner.file}:{inner.line}:{inner.col}: {inner.message}"
    return first.message


def _compile_actions(compiler: _Compiler, rdef: RuleDef, event_type: str) -> tuple[Action, ...] | None:
    """The rule's actions with their ``filter`` guards and ``set`` expressions
    compiled; None (problems reported) when one does not compile, or reads
    fields of another event type than the rule's."""
    out: list[Action] = []
    ok = True
    for action in rdef.actions:
        if action.filter is not None:
            analysis = compiler.guard(action.filter)
            if analysis is None or not _same_type(compiler, action.filter, analysis, event_type):
                ok = False
                continue
            action = replace(action, guard=compile_expr(analysis.expr))
        if isinstance(action, SetAction) and action.expression is not None:
            value = compiler.value(action.expression)
            if value is None or not _same_type(compiler, action.expression, value, event_type):
                ok = False
                continue
            got = value.expr.type.kind
            if got is not action.type.kind and Kind.ANY not in (got, action.type.kind):
                _Reporter(compiler.diags).error(action.expression, f"variable '{action.variable}' is "
                                                f"{action.type.kind.value}, this expression is {got.value}")
                ok = False
                continue
            if action.type.kind is Kind.ANY:
                _Reporter(compiler.diags).error(action.expression, f"cannot type variable '{action.variable}' "
                                                                   "from its expression")
                ok = False
                continue
            action = replace(action, compute=compile_expr(value.expr))
        out.append(action)
    return tuple(out) if ok else None


def _same_type(compiler: _Compiler, node: YNode, analysis: Analysis, event_type: str) -> bool:
    other = next((t for t in analysis.event_types if t != event_type), None)
    if other is None:
        return True
    _Reporter(compiler.diags).error(node, f"this reads '{other}' fields, the rule is on '{event_type}' events")
    return False


def _compile_rule(compiler: _Compiler, rdef: RuleDef, selector: _HostSelector) -> Rule | None:
    assert rdef.expression is not None
    compiled = compiler.expression(rdef.expression)
    host_filters = [selector.cache.get(str(f.value)) for f in rdef.filters]
    if compiled is None or None in host_filters or not rdef.valid:
        return None
    tree, analysis, fn = compiled
    assert analysis.event_type is not None
    actions = _compile_actions(compiler, rdef, analysis.event_type)
    if actions is None:
        return None
    node = rdef.id_node
    return Rule(
        id=rdef.id, expression=str(rdef.expression.value), event_type=analysis.event_type,
        ast=tree, ir=analysis.expr,
        position=Position(node.file.path, node.line, node.col), description=rdef.description,
        tags=dict(rdef.tags), every=rdef.every, actions=actions,
        filters=tuple(str(f.value) for f in rdef.filters), disabled=rdef.disabled,
        policy=rdef.policy, fn=fn, host_filters=tuple(f for f in host_filters if f is not None),
        silent=rdef.silent, anomaly=rdef.anomaly,
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
    compiler = _Compiler(macro_defs, diags, registry, _variables(rule_defs.values()), limits.Budget())
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
