"""The anomaly rules a profile generates (a policy's top-level ``profiles:``).

For a profile entry ``{id: ID, path: PROFILE}`` the loader (codegen/policy.py)
adds these SECL rules, each scoped to the profiled workload (the profile's
selector: the executable and its descendants, the container, or the cgroup):

| rule | fires on | the new item (alert ``anomaly.new``) |
|---|---|---|
| ``ID_new_executable`` | an exec of a file not in ``processes`` | the executable |
| ``ID_new_arguments`` | a known executable run with arguments of no known shape | executable and arguments |
| ``ID_new_file`` | an open outside ``files`` (a write: outside ``files.write``) | the path (and read/write) |
| ``ID_new_dns`` | a DNS query for a name outside ``dns`` | the name |
| ``ID_new_connect`` | an IPv4/IPv6 connect outside ``connect`` | ip:port |
| ``ID_new_event_K`` | a successful K (:data:`WATCHED_KINDS`) the workload never made | the event type |

Rules whose event type the profile never saw get no exception list: any
such event of the workload is new. The text is YAML, parsed by the policy
loader like a policy file's rules (same checks, same compiled form), so the
in-kernel filters, `rulec validate`, `rulec replay` and `rsagent run` treat
them as any rule.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from .model import Profile, Selector

# Event types whose mere use by the workload is an anomaly when the profile has none
# (successful calls: `K.retval >= 0`); exec, open, dns and connect have their own rules.
WATCHED_KINDS = ("ptrace", "setuid", "setgid", "capset", "memfd_create", "unshare", "setns", "load_module",
                 "bpf", "bind", "mount", "chmod", "chown", "unlink", "rename", "link", "mkdir", "setxattr")
ANOMALY_KINDS = ("new_executable", "new_arguments", "new_file", "new_dns", "new_connect", "new_event")


def _q(text: str) -> str:
    """A SECL string literal (only \\" and \\\\ are escapes)."""
    return json.dumps(text, ensure_ascii=False)


def _glob(text: str) -> str:
    return "~" + _q(text) if "*" in text else _q(text)


def scope(selector: Selector) -> str:
    """The SECL test of agent/profile/learn.py's ``in_scope``."""
    if selector.kind == "exe":
        v = _q(selector.value)
        return f"(process.file.path == {v} || process.ancestors.file.path == {v})"
    if selector.kind == "container":
        return f"process.container.id == {_q(selector.value)}"
    return f"process.cgroup.id == {_q(selector.cgroup_id)}"


def _not_in(field: str, values: list[str]) -> str | None:
    return f"{field} not in [{', '.join(_glob(v) for v in values)}]" if values else None


def _all(*parts: str | None) -> str:
    return " && ".join(p for p in parts if p)


def generated_rules(profile: Profile, ident: str, where: str,
                    tags: dict[str, str] | None = None) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """(rule as a policy would write it, its anomaly description) for each rule of the profile;
    ``where``: the profile's path, named in the alerts."""
    s = scope(profile.selector)
    base_tags = {"severity": "medium", **(tags or {}), "profile": where}
    out: list[tuple[dict[str, Any], dict[str, str]]] = []

    def rule(kind: str, suffix: str, expression: str, what: str) -> None:
        rid = f"{ident}_{suffix}"
        out.append(({"id": rid, "expression": expression,
                     "description": f"{profile.selector.describe()} {what} outside its profile {where}",
                     "tags": {**base_tags, "anomaly": kind}},
                    {"profile": where, "profile_id": ident, "kind": kind}))

    rule("new_executable", "new_executable",
         _all(s, _not_in("exec.file.path", [p.path for p in profile.processes])), "ran an executable")
    with_args = [p for p in profile.processes if p.args]
    if with_args:
        alts = " || ".join(f"(exec.file.path == {_q(p.path)} && exec.args not in "
                           f"[{', '.join(_glob(a) for a in p.args)}])" for p in with_args)
        rule("new_arguments", "new_arguments", f"{s} && ({alts})", "ran a known executable with new arguments")
    write = "open.flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)"
    reading = _not_in("open.file.path", profile.files_read + profile.files_write)
    writing = _not_in("open.file.path", profile.files_write)
    rule("new_file", "new_file",
         f"{s} && (({write} == 0{' && ' + reading if reading else ''}) || "
         f"({write} > 0{' && ' + writing if writing else ''}))", "opened a file")
    rule("new_dns", "new_dns", _all(s, "dns.question.name != \"\"", _not_in("dns.question.name", profile.dns)),
         "resolved a DNS name")
    by_port: dict[int, list[str]] = {}
    for d in profile.connect:
        by_port.setdefault(d.port, []).append(d.addr)
    known = " || ".join(f"(connect.addr.port == {port} && connect.addr.ip in [{', '.join(addrs)}])"
                        for port, addrs in sorted(by_port.items()))
    rule("new_connect", "new_connect",
         _all(s, "connect.addr.family in [AF_INET, AF_INET6]", f"!({known})" if known else None),
         "connected to a destination")
    for kind in WATCHED_KINDS:
        if kind not in profile.event_types:
            rule("new_event", f"new_event_{kind}", f"{s} && {kind}.retval >= 0", f"made a {kind} call")
    return out


def rules_yaml(rules: list[tuple[dict[str, Any], dict[str, str]]]) -> str:
    return yaml.safe_dump({"rules": [r for r, _ in rules]}, sort_keys=False, width=10**6, allow_unicode=True)
