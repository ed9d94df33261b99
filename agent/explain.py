"""Why an event did or did not raise an alert, and what the kernel would
have done with it: `rulec explain` (and `rsagent run --explain-rule`).

Per rule of the event's type: matched or not; for a rule that did not, the
first clause that failed — walking ``&&`` operands in the order they are
written, down to the comparison (or the ``||``, ``!`` that failed whole) —
with the value of every field it reads.

The in-kernel verdict uses the same code the agent does: the policy's
filters (codegen.cbackend.kernel_filters: which approver checks, which
values), checked the way ebpf/include/filters.h checks them (flags mask
first, then the basename key — its length and first RS_BASENAME_PREFIX
bytes —, then the path's longest approved directory prefix and its flags
mask; port then address for network events), and, for an event that
matches no rule, the discarders the agent would learn from it
(agent.discarders.discarder_plan: partial evaluation of the type's rules).
"""

from __future__ import annotations

import ipaddress
import posixpath
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from codegen import ir
from codegen.cbackend import ADDR, ANY_FLAGS, BASENAME, FLAGS, KERNEL_EVENT_TYPES, PORT, PREFIX, TypeFilter, kernel_filters
from codegen.eventtypes import BY_NAME
from codegen.fields import REGISTRY
from codegen.pybackend import compile_expr
from agent.evaluator.event import DocumentEvent
from agent.evaluator.ruleset import Rule, Ruleset

from .discarders import discarder_plan
from .replay import describe

BASENAME_PREFIX = 28   # RS_BASENAME_PREFIX (ebpf/include/events.h): the approver key's bytes


@dataclass
class Clause:
    text: str                    # the clause, as SECL
    values: dict[str, Any]       # field -> its value on the event


@dataclass
class RuleVerdict:
    rule_id: str
    matched: bool
    failed: Clause | None = None


@dataclass
class KernelVerdict:
    sent: bool                   # False: dropped in the kernel by an approver miss
    approvers: str               # what the approver check did, and why
    discarder: str               # what discarders do with this event (and later ones)
    teaches: list[dict[str, Any]] = field(default_factory=list)   # the discarders it would teach


@dataclass
class Explanation:
    event: str
    event_type: str
    rules: list[RuleVerdict]
    kernel: KernelVerdict

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _json_value(value: Any) -> Any:
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _truth(node: ir.Expr, ev: DocumentEvent) -> bool:
    return bool(compile_expr(node)(ev))


def first_failure(node: ir.Expr, ev: DocumentEvent) -> ir.Expr:
    """The innermost clause responsible for ``node`` being false on ``ev``."""
    if isinstance(node, ir.Logic) and node.op == "&&":
        for operand in node.operands:
            if not _truth(operand, ev):
                return first_failure(operand, ev)
    return node


def explain_rule(rule: Rule, ev: DocumentEvent) -> RuleVerdict:
    if rule.fn(ev):
        return RuleVerdict(rule.id, True)
    clause = first_failure(rule.ir, ev)
    values = {f.name: _json_value(ev.get(f)) for f in ir.fields_of(clause)}
    return RuleVerdict(rule.id, False, Clause(ir.render(clause), values))


def _key(name: str) -> tuple[int, bytes]:
    raw = name.encode("utf-8", "surrogateescape")
    return len(raw), raw[:BASENAME_PREFIX]


def _field(ev: DocumentEvent, name: str) -> Any:
    return ev.get(REGISTRY.fields[name])


def _approvers(f: TypeFilter, ev: DocumentEvent) -> tuple[bool, str]:
    """(sent, why), checking in the kernel's order (filters.h rs_filter, rs_net_filter)."""
    t = f.event_type
    if not f.approve_kinds:
        return True, f"no approvers for {t} ({f.reason}): every {t} event is sent"
    tried = []
    if FLAGS in f.approve_kinds:
        flags = _field(ev, f"{t}.flags")
        if flags & f.flags_mask:
            return True, f"approved: {t}.flags {flags:#o} has a bit of the approver mask {f.flags_mask:#o}"
        tried.append(f"{t}.flags {flags:#o} has no bit of the mask {f.flags_mask:#o}")
    if PORT in f.approve_kinds:
        port = _field(ev, f"{t}.addr.port")
        if port in f.ports:
            return True, f"approved: port {port} is an approver"
        tried.append(f"port {port} is not one of {sorted(f.ports)}")
    if ADDR in f.approve_kinds:
        ip = _field(ev, f"{t}.addr.ip")
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        hit = next((n for n in f.networks if ip is not None and ip.version == n.version and ip in n), None)
        if hit is not None:
            return True, f"approved: {ip} is in the approver network {hit}"
        tried.append(f"address {ip} is in none of {len(f.networks)} approver network(s)")
    if BASENAME in f.approve_kinds:
        path = _field(ev, f"{t}.file.path")
        name = posixpath.basename(path) if path else _field(ev, f"{t}.file.name")
        key = _key(name)
        hit = next((b for b in sorted(f.basenames) if _key(b) == key), None)
        if hit is not None:
            same = "" if hit == name else f" (same length and first {BASENAME_PREFIX} bytes as {hit!r})"
            return True, f"approved: basename {name!r} is an approver{same}"
        shown = ", ".join(repr(b) for b in sorted(f.basenames)[:8]) + (", ..." if len(f.basenames) > 8 else "")
        tried.append(f"basename {name!r} is not one of {shown}")
        if t == "rename":
            dest = _field(ev, "rename.file.destination.path")
            dname = posixpath.basename(dest) if dest else _field(ev, "rename.file.destination.name")
            hit = next((b for b in sorted(f.basenames) if _key(b) == _key(dname)), None)
            if hit is not None:
                return True, f"approved: the destination's basename {dname!r} is an approver"
            tried.append(f"nor is the destination's {dname!r}")
    if PREFIX in f.approve_kinds and f.prefix_field:
        ok, why = _prefix(f, ev)
        if ok:
            return True, why
        tried.append(why)
    return False, "dropped in the kernel (approver miss): " + "; ".join(tried)


def _prefix(f: TypeFilter, ev: DocumentEvent) -> tuple[bool, str]:
    """The prefix check (filters.h rs_approve_prefix): the longest approved
    directory prefix of the path, and the flags its mask needs."""
    assert f.prefix_field is not None
    path = _field(ev, f.prefix_field) or ""
    masks = f.prefix_masks()
    union = 0
    for m in masks.values():
        union |= m
    flags = _field(ev, f"{f.event_type}.flags") or 0
    if union != ANY_FLAGS and not flags & union:
        return False, f"{f.event_type}.flags {flags:#o} has no bit of any prefix's mask ({union:#o}): no path walked"
    if not path.startswith("/") or _path_source(ev, f.prefix_field) == "user":
        return True, f"approved: {f.prefix_field} is not a path the kernel walks (user space decides)"
    hits = [p for p in masks if path.startswith(p)]
    if not hits:
        return False, f"{f.prefix_field} {path!r} has none of the {len(masks)} approved prefixes"
    longest = max(hits, key=len)
    mask = 0
    for p in hits:
        mask |= masks[p]
    if mask == ANY_FLAGS:
        return True, f"approved: {f.prefix_field} {path!r} is below the approved prefix {longest!r}"
    if flags & mask:
        return True, (f"approved: {f.prefix_field} {path!r} is below {longest!r} and {f.event_type}.flags "
                      f"{flags:#o} has a bit of its mask {mask:#o}")
    return False, (f"{f.prefix_field} {path!r} is below {longest!r} but {f.event_type}.flags {flags:#o} has no "
                   f"bit of its mask {mask:#o}")


def _path_source(ev: DocumentEvent, field_name: str) -> Any:
    """Where the record's path came from (`path_source` of its file: "user"
    for a call without an object, whose path the kernel did not walk)."""
    node: Any = ev.doc
    for part in field_name.split(".")[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return node.get("path_source") if isinstance(node, dict) else None


def kernel_verdict(ruleset: Ruleset, filters: dict[str, TypeFilter], doc: dict[str, Any], ev: DocumentEvent,
                   matched: bool) -> KernelVerdict:
    t = ev.type
    spec = BY_NAME.get(t)
    if t not in KERNEL_EVENT_TYPES:
        return KernelVerdict(True, f"{t or '?'} is not an event type the probes produce", "none")
    f = filters.get(t)
    if f is None:
        if spec is not None and spec.lifecycle:
            return KernelVerdict(True, f"no rule for {t}; {t} events are always sent (they keep the process tree)",
                                 "none (process lifecycle events are never discarded)")
        return KernelVerdict(False, f"the policy has no rule for {t}: its probes are not loaded, nothing is sent",
                             "none")
    sent, why = _approvers(f, ev)
    if not sent:
        return KernelVerdict(False, why, "not reached (approvers are checked first)")
    if not f.discard:
        reason = "" if spec is None or spec.discarders else f" ({t} has no inode discarders)"
        return KernelVerdict(True, why, f"off for {t}: some rule does not constrain the file's path{reason}")
    if matched:
        return KernelVerdict(True, why, "none: the event matched a rule, it teaches no discarder")
    plan = discarder_plan(ruleset.rules_for(t), doc, any_parents=True)
    if plan.skipped:
        return KernelVerdict(True, why, f"none: {plan.skipped}")
    if not plan.targets:
        return KernelVerdict(True, why, "none: a rule could still match this file with other field values "
                             "(partial evaluation), so no discarder is proven")
    where = "; ".join(
        f"the file itself {tg.path} (inode {tg.inode})" if tg.is_leaf else
        f"directory {tg.path} ({_inode(tg.inode)}, parent {tg.depth}): every {t} event below it on mount "
        f"{plan.mount_id}" for tg in plan.targets)
    return KernelVerdict(True, why, f"teaches a discarder on {where}; from then on those events are dropped in "
                         "the kernel (this one too, if an earlier event taught it)",
                         [asdict(tg) | {"mount_id": plan.mount_id} for tg in plan.targets])


def _inode(inode: int) -> str:
    return f"inode {inode}" if inode else "inode not in the document: recorded without discarders"


def explain(ruleset: Ruleset, doc: dict[str, Any], rule_id: str | None = None,
            filters: dict[str, TypeFilter] | None = None) -> Explanation:
    """Explain ``doc`` against the rules of its type (or only ``rule_id``)."""
    ev = DocumentEvent(doc, ruleset.variables)
    rules = ruleset.rules_for(ev.type)
    verdicts = [explain_rule(r, ev) for r in rules if rule_id is None or r.id == rule_id]
    matched_any = any(r.fn(ev) for r in rules)
    kv = kernel_verdict(ruleset, kernel_filters(ruleset) if filters is None else filters, doc, ev, matched_any)
    return Explanation(describe(doc), ev.type, verdicts, kv)


def write_text(x: Explanation, out: TextIO) -> None:
    print(f"event: {x.event}", file=out)
    if not x.rules:
        print(f"  no rule of the policy is about {x.event_type} events", file=out)
    for r in x.rules:
        if r.matched:
            print(f"rule {r.rule_id}: matches", file=out)
            continue
        print(f"rule {r.rule_id}: no match", file=out)
        if r.failed is not None:
            print(f"  first failing clause: {r.failed.text}", file=out)
            for name, value in r.failed.values.items():
                print(f"    {name} = {value!r}", file=out)
    print(f"in the kernel: {'sent' if x.kernel.sent else 'DROPPED'}", file=out)
    print(f"  approvers: {x.kernel.approvers}", file=out)
    print(f"  discarders: {x.kernel.discarder}", file=out)


def log_line(x: Explanation) -> str:
    """One line for `rsagent run --explain-rule` at -vv."""
    parts = []
    for r in x.rules:
        if r.matched:
            parts.append(f"{r.rule_id}: matches")
        elif r.failed is not None:
            vals = ", ".join(f"{k}={v!r}" for k, v in r.failed.values.items())
            parts.append(f"{r.rule_id}: no match, first failing clause {r.failed.text} ({vals})")
    return f"explain {x.event}: " + "; ".join(parts)
