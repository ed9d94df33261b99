"""`rulec replay --report REPORT.html`: one self-contained page (no script,
no network, no CDN): the capture, the alerts per rule, alerts per rule over
time as a stacked bar chart (inline SVG), the diff with the baseline, and
for sample alerts of each rule the process tree from the captured lineage
(root first, the process that caused the event last) with the event marked.
"""

from __future__ import annotations

import html
from typing import Any

from .replay import ReplayResult, _dict, _when, describe
from .safefile import open_truncate

BUCKETS = 48
COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
          "#9c755f", "#bab0ac")
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;background:#fff;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.more{color:#b00}.fewer{color:#070}
.meta{color:#555}.tree{margin:6px 0 18px}.warn{color:#a40}
code{background:#f4f4f4;padding:0 3px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def write_report(result: ReplayResult, path: str) -> None:
    from pathlib import Path

    with open(open_truncate(Path(path)), "w", encoding="utf-8") as out:
        out.write(render(result))


def render(result: ReplayResult) -> str:
    c = result.capture
    host = c.get("host") or {}
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>rsagent replay: "
             f"{_e(c['path'])}</title><style>{CSS}</style></head><body>",
             f"<h1>Replay of <code>{_e(c['path'])}</code></h1>",
             f"<p class=\"meta\">{result.events} events, {_e(_when(c.get('first_event') or c.get('started')))} .. "
             f"{_e(_when(c.get('last_event') or c.get('ended')))}; host {_e(host.get('hostname', '?'))}, kernel "
             f"{_e(host.get('kernel', '?'))}, hook set {_e(c.get('hook_set'))}, rsagent {_e(c.get('agent_version'))}"
             "</p>"]
    for problem in result.problems:
        parts.append(f"<p class=\"warn\">{_e(problem)}</p>")
    p, b = result.policy, result.baseline
    ours = p.rules()
    theirs = b.rules() if b is not None else {}
    rules = list(ours) + [r for r in theirs if r not in ours]
    color = {r: COLORS[i % len(COLORS)] for i, r in enumerate(rules)}
    parts.append(f"<h2>Alerts per rule</h2><p>policy <code>{_e(p.label)}</code>: {p.engine.stats.alerts} alert(s)"
                 + (f"; baseline <code>{_e(b.label)}</code>: {b.engine.stats.alerts}" if b is not None else "")
                 + "</p><table id=\"rules\"><tr><th>rule</th><th>alerts</th><th>matches</th><th>throttled</th>"
                 + ("<th>baseline</th><th>change</th>" if b is not None else "") + "</tr>")
    for r in rules:
        mine, base = ours.get(r, {}), theirs.get(r, {})
        a = mine.get("alerts", 0)
        row = (f"<tr data-rule=\"{_e(r)}\"><td><span style=\"color:{color[r]}\">&#9632;</span> {_e(r)}</td>"
               f"<td class=\"n alerts\" data-count=\"{a}\">{a}</td><td class=\"n\">{mine.get('matches', 0)}</td>"
               f"<td class=\"n\">{mine.get('throttled', 0)}</td>")
        if b is not None:
            d = a - base.get("alerts", 0)
            cls = "more" if d > 0 else "fewer" if d < 0 else ""
            note = " (new rule)" if r not in theirs else " (removed)" if r not in ours else ""
            row += (f"<td class=\"n baseline\" data-count=\"{base.get('alerts', 0)}\">{base.get('alerts', 0)}</td>"
                    f"<td class=\"n {cls}\">{d:+d}{note}</td>")
        parts.append(row + "</tr>")
    parts.append("</table>")
    parts.append("<h2>Alerts over time</h2>" + _chart(result, color))
    if b is not None and result.diff is not None:
        parts.append(_diff(result))
    parts.append("<h2>Sample alerts and their process trees</h2>")
    for r in ours:
        for alert in p.samples.get(r, ()):
            parts.append(_tree(r, alert["event"], color[r]))
    if not any(p.samples.values()):
        parts.append("<p>No alerts.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _chart(result: ReplayResult, color: dict[str, str]) -> str:
    times = result.policy.times
    stamps = [t for ts in times.values() for t in ts]
    if not stamps:
        return "<p>No alerts to chart.</p>"
    c = result.capture   # the capture's time range, so quiet stretches show
    first, last = c.get("first_event"), c.get("last_event")
    lo = min([*stamps, first] if isinstance(first, int) else stamps)
    hi = max([*stamps, last] if isinstance(last, int) else stamps)
    width_ns = max(hi - lo, 1)
    counts: dict[str, list[int]] = {r: [0] * BUCKETS for r in times}
    for r, ts in times.items():
        for t in ts:
            counts[r][min(BUCKETS - 1, (t - lo) * BUCKETS // width_ns)] += 1
    peak = max(sum(counts[r][i] for r in counts) for i in range(BUCKETS)) or 1
    w, h, left, bar = 960, 220, 40, 960 // BUCKETS
    svg = [f"<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w + left}\" height=\"{h + 40}\" "
           f"role=\"img\" aria-label=\"alerts per rule over time\">",
           f"<line x1=\"{left}\" y1=\"{h}\" x2=\"{w + left}\" y2=\"{h}\" stroke=\"#999\"/>",
           f"<text x=\"{left - 6}\" y=\"12\" text-anchor=\"end\" font-size=\"11\">{peak}</text>",
           f"<text x=\"{left - 6}\" y=\"{h}\" text-anchor=\"end\" font-size=\"11\">0</text>",
           f"<text x=\"{left}\" y=\"{h + 16}\" font-size=\"11\">{_e(_when(lo))}</text>",
           f"<text x=\"{w + left}\" y=\"{h + 16}\" text-anchor=\"end\" font-size=\"11\">{_e(_when(hi))}</text>"]
    for i in range(BUCKETS):
        y = h
        for r in counts:
            n = counts[r][i]
            if not n:
                continue
            bh = max(1, round(n * (h - 10) / peak))
            y -= bh
            svg.append(f"<rect x=\"{left + i * bar + 1}\" y=\"{y}\" width=\"{bar - 2}\" height=\"{bh}\" "
                       f"fill=\"{color.get(r, '#888')}\"><title>{_e(r)}: {n}</title></rect>")
    x = left
    for r in counts:
        svg.append(f"<rect x=\"{x}\" y=\"{h + 26}\" width=\"10\" height=\"10\" fill=\"{color.get(r, '#888')}\"/>"
                   f"<text x=\"{x + 14}\" y=\"{h + 35}\" font-size=\"11\">{_e(r)}</text>")
        x += 24 + 7 * len(r)
    svg.append("</svg>")
    return "".join(svg)


def _diff(result: ReplayResult) -> str:
    d = result.diff
    assert d is not None
    out = [f"<h2>Diff with the baseline</h2><p id=\"diff\" data-new=\"{sum(d.new.values())}\" "
           f"data-vanished=\"{sum(d.vanished.values())}\">{sum(d.new.values())} new alert(s), "
           f"{sum(d.vanished.values())} vanished</p><table><tr><th></th><th>rule</th><th>alerts</th>"
           "<th>example events</th></tr>"]
    for title, counts, examples in (("new", d.new, d.new_examples), ("vanished", d.vanished, d.vanished_examples)):
        for rule, n in sorted(counts.items()):
            ex = "<br>".join(f"#{x['event']}: {_e(x['summary'])}" for x in examples.get(rule, ()))
            out.append(f"<tr><td>{title}</td><td>{_e(rule)}</td><td class=\"n\">{n}</td><td>{ex}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _label(proc: dict[str, Any]) -> str:
    exe = proc.get("file", {}).get("path", "") if isinstance(proc.get("file"), dict) else ""
    return f"{proc.get('comm', '?')} ({proc.get('pid', '?')}) {exe}"


def _tree(rule: str, doc: dict[str, Any], color: str) -> str:
    proc = _dict(doc.get("process"))
    ancestors = [a for a in proc.get("ancestors", ()) if isinstance(a, dict)]
    chain = list(reversed(ancestors)) + [proc]     # root first
    row, indent, w = 26, 22, 900
    height = row * (len(chain) + 1) + 10
    svg = [f"<div class=\"tree\" data-rule=\"{_e(rule)}\"><b>{_e(rule)}</b>: {_e(describe(doc))} at "
           f"{_e(_when(doc.get('timestamp')))}<br><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" "
           f"height=\"{height}\">"]
    for i, p in enumerate(chain):
        x, y = 4 + i * indent, 4 + i * row
        if i:
            svg.append(f"<path d=\"M{x - indent + 8} {y - row + 20} V{y + 10} H{x}\" fill=\"none\" stroke=\"#999\"/>")
        mine = i == len(chain) - 1
        svg.append(f"<rect x=\"{x}\" y=\"{y}\" width=\"{min(w - x - 4, 520)}\" height=\"20\" rx=\"4\" "
                   f"fill=\"{'#fff3f0' if mine else '#f6f6f6'}\" stroke=\"{'#c00' if mine else '#bbb'}\"/>"
                   f"<text x=\"{x + 6}\" y=\"{y + 14}\" font-size=\"12\">{_e(_label(p))}</text>")
    x, y = 4 + len(chain) * indent, 4 + len(chain) * row
    svg.append(f"<path d=\"M{x - indent + 8} {y - row + 20} V{y + 10} H{x}\" fill=\"none\" stroke=\"{color}\"/>"
               f"<rect class=\"event\" x=\"{x}\" y=\"{y}\" width=\"{min(w - x - 4, 560)}\" height=\"20\" rx=\"4\" "
               f"fill=\"{color}\"/><text x=\"{x + 6}\" y=\"{y + 14}\" font-size=\"12\" fill=\"#fff\">&#9888; "
               f"{_e(describe(doc).split(' by ')[0])}</text></svg></div>")
    return "".join(svg)
