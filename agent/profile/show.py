"""Showing and comparing profiles: `rsagent profile show` (text, html, dot) and `rsagent profile diff`.

The HTML page is self-contained like agent/report.py's (no script, no
network): the selector, the process tree of executables (parents to
children), files, DNS names, destinations and event types. The dot output
is a Graphviz digraph of the same tree, with the files, names and
destinations each executable's workload touched as leaves of the profile.
"""

from __future__ import annotations

import html
import json
from typing import Any, TextIO

from .model import Profile

SECTIONS = ("processes", "arguments", "files_read", "files_write", "dns", "connect", "event_types")


def items(profile: Profile) -> dict[str, set[str]]:
    """Each section of the profile as a set of comparable items."""
    return {
        "processes": {p.path for p in profile.processes},
        "arguments": {f"{p.path} {a}".rstrip() for p in profile.processes for a in p.args},
        "files_read": set(profile.files_read),
        "files_write": set(profile.files_write),
        "dns": set(profile.dns),
        "connect": {d.key() for d in profile.connect},
        "event_types": set(profile.event_types),
    }


def diff(a: Profile, b: Profile) -> dict[str, dict[str, list[str]]]:
    """Per section: what B has that A has not (``added``) and the reverse (``removed``)."""
    ia, ib = items(a), items(b)
    return {s: {"added": sorted(ib[s] - ia[s]), "removed": sorted(ia[s] - ib[s])} for s in SECTIONS}


def write_diff_text(d: dict[str, dict[str, list[str]]], a: str, b: str, out: TextIO) -> int:
    """The diff as text; returns how many items differ."""
    changed = sum(len(v["added"]) + len(v["removed"]) for v in d.values())
    print(f"profile diff {a} -> {b}: {changed} item(s) differ", file=out)
    for section, v in d.items():
        if not v["added"] and not v["removed"]:
            continue
        print(f"{section}:", file=out)
        for item in v["added"]:
            print(f"  + {item}    (only in {b})", file=out)
        for item in v["removed"]:
            print(f"  - {item}    (only in {a})", file=out)
    return changed


def write_diff_json(d: dict[str, dict[str, list[str]]], a: str, b: str, out: TextIO) -> None:
    json.dump({"a": a, "b": b, "sections": d}, out, indent=2)
    out.write("\n")


def write_text(profile: Profile, out: TextIO) -> None:
    learned = profile.learned
    print(f"profile of {profile.selector.describe()}: learned from {learned.get('source', '?')}, "
          f"{learned.get('started', '?')} .. {learned.get('ended', '?')}, {learned.get('events', '?')} events",
          file=out)
    print("process tree:", file=out)
    for line in tree_lines(profile):
        print("  " + line, file=out)
    for title, values in (("files read", profile.files_read), ("files written", profile.files_write),
                          ("dns names", profile.dns), ("connect destinations", [d.key() for d in profile.connect]),
                          ("event types", profile.event_types)):
        print(f"{title}: {len(values)}", file=out)
        for v in values:
            print(f"  {v}", file=out)


def _children(profile: Profile) -> tuple[list[str], dict[str, list[str]]]:
    """Roots (executables none of whose parents is in the profile) and each executable's children."""
    known = {p.path for p in profile.processes}
    children: dict[str, list[str]] = {}
    roots = []
    for p in profile.processes:
        inside = [q for q in p.parents if q in known and q != p.path]
        for q in inside:
            children.setdefault(q, []).append(p.path)
        if not inside:
            roots.append(p.path)
    return roots, children


def tree_lines(profile: Profile) -> list[str]:
    roots, children = _children(profile)
    lines: list[str] = []

    def walk(path: str, depth: int, seen: frozenset[str]) -> None:
        entry = profile.process(path)
        outside = [q for q in (entry.parents if entry else []) if q not in {p.path for p in profile.processes}]
        note = f"  (started by {', '.join(outside)})" if depth == 0 and outside else ""
        lines.append("  " * depth + path + note)
        for a in entry.args if entry else []:
            lines.append("  " * depth + f"    args: {a or '(none)'}")
        for c in children.get(path, []):
            if c not in seen:
                walk(c, depth + 1, seen | {c})
    for r in roots:
        walk(r, 0, frozenset({r}))
    return lines


def _dot_id(text: str) -> str:
    return json.dumps(text)


def render_dot(profile: Profile) -> str:
    """A Graphviz digraph: executables (boxes) from parent to child, what the workload touched as leaves."""
    known = {p.path for p in profile.processes}
    lines = ["digraph profile {", "  rankdir=LR;", '  node [fontname="sans-serif", fontsize=10];',
             f"  label={_dot_id('profile of ' + profile.selector.describe())};"]
    for p in profile.processes:
        label = p.path + "".join(f"\n{a or '(no arguments)'}" for a in p.args[:4])
        lines.append(f"  {_dot_id('exe:' + p.path)} [shape=box, label={_dot_id(label)}];")
        for q in p.parents:
            if q not in known:
                lines.append(f"  {_dot_id('exe:' + q)} [shape=box, style=dashed, label={_dot_id(q)}];")
            lines.append(f"  {_dot_id('exe:' + q)} -> {_dot_id('exe:' + p.path)};")
    workload = _dot_id("workload")
    lines.append(f"  {workload} [shape=ellipse, style=bold, label={_dot_id(profile.selector.describe())}];")
    for kind, values, shape in (("read", profile.files_read, "note"), ("write", profile.files_write, "note"),
                                ("dns", profile.dns, "hexagon"), ("connect", [d.key() for d in profile.connect],
                                                                  "diamond")):
        for v in values:
            lines.append(f"  {_dot_id(kind + ':' + v)} [shape={shape}, label={_dot_id(v)}];")
            lines.append(f"  {workload} -> {_dot_id(kind + ':' + v)} [label={_dot_id(kind)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;background:#fff;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
ul.tree,ul.tree ul{list-style:none;padding-left:18px;border-left:1px solid #ccc}
.args{color:#555;font-size:12px}.meta{color:#555}code{background:#f4f4f4;padding:0 3px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render_html(profile: Profile) -> str:
    roots, children = _children(profile)
    learned = profile.learned

    def node(path: str, seen: frozenset[str]) -> str:
        entry = profile.process(path)
        args = "".join(f"<div class=\"args\">args: <code>{_e(a or '(none)')}</code></div>"
                       for a in (entry.args if entry else []))
        kids = "".join(node(c, seen | {c}) for c in children.get(path, []) if c not in seen)
        return f"<li class=\"exe\"><code>{_e(path)}</code>{args}" + (f"<ul>{kids}</ul>" if kids else "") + "</li>"

    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>rsagent profile: "
             f"{_e(profile.selector.describe())}</title><style>{CSS}</style></head><body>",
             f"<h1>Activity profile of <code>{_e(profile.selector.describe())}</code></h1>",
             f"<p class=\"meta\">learned from {_e(learned.get('source', '?'))}, {_e(learned.get('started', '?'))} .. "
             f"{_e(learned.get('ended', '?'))}, {_e(learned.get('events', '?'))} events</p>",
             "<h2>Process tree</h2><ul class=\"tree\" id=\"processes\">",
             "".join(node(r, frozenset({r})) for r in roots), "</ul>"]
    for ident, title, values in (("files_read", "Files read", profile.files_read),
                                 ("files_write", "Files written", profile.files_write),
                                 ("dns", "DNS names", profile.dns),
                                 ("connect", "Connect destinations", [d.key() for d in profile.connect]),
                                 ("event_types", "Event types", profile.event_types)):
        parts.append(f"<h2>{title} ({len(values)})</h2><ul id=\"{ident}\">"
                     + "".join(f"<li><code>{_e(v)}</code></li>" for v in values) + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)
