"""Rule evaluation benchmark: cost per event and policy compile time.

A generated 100-rule policy (open, exec, unlink, rename, chmod, ... rules of
the shapes real policies use: exact paths, globs, flag tests, process and
ancestor conditions, regexes, list macros) is compiled, then a mix of
matching and non-matching event documents is evaluated with
``Ruleset.evaluate``. Each event is wrapped in a fresh ``DocumentEvent`` (as
the agent does), so field resolution is part of the cost.

Run: ``.venv/bin/python -m bench.bench_eval [--events N] [--rounds R]``.
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.evaluator.event import DocumentEvent
from codegen.policy import load_policies

NOW = 1_764_280_000_000_000_000
FIM_TYPES = ("unlink", "rename", "chmod", "chown", "mkdir", "utimes")
DIRS = ("/etc", "/usr/bin", "/usr/sbin", "/var/log", "/root/.ssh", "/home/alice/.ssh", "/opt/app",
        "/etc/cron.d", "/etc/sudoers.d", "/lib/systemd/system")
NAMES = ("passwd", "shadow", "sudoers", "authorized_keys", "config", "app.conf", "id_rsa", "crontab",
         "sshd_config", "hosts")
BINARIES = ("nc", "ncat", "socat", "curl", "wget", "nmap", "tcpdump", "python3", "perl", "gdb")


def _rule(i: int, rng: random.Random) -> tuple[str, str]:
    d, n, b = rng.choice(DIRS), rng.choice(NAMES), rng.choice(BINARIES)
    shape = i % 10
    if shape in (0, 1, 2):
        return "open", f'open.file.path == "{d}/{n}" && open.flags & (O_WRONLY | O_RDWR) > 0'
    if shape == 3:
        return "open", f'open.file.path =~ "{d}/*" && process.comm not in ["{b}", "dpkg", "apt"]'
    if shape == 4:
        return "open", (f'open.file.name == "{n}" && process.ancestors.file.name == "{b}" '
                        f'&& process.uid != 0')
    if shape == 5:
        return "exec", f'exec.file.name in shells && process.parent.file.name == "{b}"'
    if shape == 6:
        return "exec", f'exec.file.path =~ "{d}/**" && exec.args =~ r"-e\\s+/bin/(ba)?sh"'
    if shape == 7:
        return "exec", (f'exec.file.name == "{b}" && process.container.id != "" '
                        f'&& process.created_at < 5s')
    event = FIM_TYPES[i % len(FIM_TYPES)]
    if shape == 8:
        return event, f'{event}.file.path in ["{d}/{n}", ~"{d}/*.conf"] && {event}.retval == 0'
    return event, f'{event}.file.path =~ "{d}/**" && process.user != "root" && !process.is_kworker'


def policy_text(rules: int = 100, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = ["version: 1.0.0", "macros:", "  - id: shells",
             '    values: ["bash", "sh", "dash", "zsh", "ksh"]', "rules:"]
    for i in range(rules):
        _, expr = _rule(i, rng)
        lines += [f"  - id: bench_rule_{i}", f"    expression: '{expr}'"]
    return "\n".join(lines) + "\n"


def _process(rng: random.Random) -> dict[str, Any]:
    comm = rng.choice(BINARIES + ("bash", "cat", "systemd", "sshd"))
    return {
        "pid": rng.randint(2, 40000), "ppid": 1, "tid": 1, "comm": comm, "uid": rng.choice((0, 1000)),
        "user": rng.choice(("root", "alice")), "created_at": NOW - rng.randint(1, 20) * 1_000_000_000,
        "argv": [comm, "-e", "/bin/sh"] if rng.random() < 0.2 else [comm, "--help"],
        "file": {"path": f"/usr/bin/{comm}", "name": comm},
        "container": {"id": rng.choice(("", "3f2a9c"))}, "is_kworker": False,
        "ancestors": [{"pid": 100, "file": {"path": f"/usr/bin/{rng.choice(BINARIES + ('bash',))}"}},
                      {"pid": 1, "file": {"path": "/sbin/init"}}],
    }


def events(count: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        kind = rng.choice(("open", "open", "open", "exec", "exec") + FIM_TYPES)
        path = f"{rng.choice(DIRS + ('/tmp', '/proc/self', '/usr/lib'))}/{rng.choice(NAMES + ('x.log', 'lib.so'))}"
        doc: dict[str, Any] = {"type": kind, "timestamp": NOW, "process": _process(rng)}
        if kind == "open":
            doc["open"] = {"flags": rng.choice((0, 1, 2, 0o100 | 1, 0o2000)), "retval": 3,
                           "file": {"path": path, "name": path.rsplit("/", 1)[1]}}
        elif kind == "exec":
            b = rng.choice(BINARIES + ("bash", "sh", "ls"))
            doc["exec"] = {"file": {"path": f"/usr/bin/{b}", "name": b}, "args": "-e /bin/sh",
                           "argv": [b, "-e", "/bin/sh"]}
        else:
            doc[kind] = {"retval": 0, "file": {"path": path, "name": path.rsplit("/", 1)[1]}}
        out.append(doc)
    return out


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: (_copy(v) if isinstance(v, dict) else v) for k, v in doc.items()}


def run(n_events: int = 20000, rounds: int = 5, n_rules: int = 100) -> dict[str, float]:
    text = policy_text(n_rules)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.policy"
        path.write_text(text, encoding="utf-8")
        t0 = time.perf_counter()
        result = load_policies([path])
        compile_s = time.perf_counter() - t0
    if not result.ok:
        raise SystemExit("\n".join(d.format() for d in result.diagnostics.errors))
    ruleset = result.ruleset
    docs = events(n_events)
    hits = [bool(ruleset.evaluate(DocumentEvent(_copy(d)))) for d in docs]
    matching = [d for d, h in zip(docs, hits) if h]
    missing = [d for d, h in zip(docs, hits) if not h]
    every_rule = [(r.event_type, r.fn) for r in ruleset.rules]

    def naive(ev: DocumentEvent) -> list[bool]:  # no buckets, no index: every rule, type check first
        return [fn(ev) for t, fn in every_rule if t == ev.type]

    def per_event(batch_docs: list[dict[str, Any]], evaluate: Any = ruleset.evaluate) -> float:
        rounds_us = []
        for _ in range(rounds):
            batch = [_copy(d) for d in batch_docs]  # fresh documents: nothing cached from the last round
            t0 = time.perf_counter()
            for doc in batch:
                evaluate(DocumentEvent(doc))
            rounds_us.append((time.perf_counter() - t0) / len(batch) * 1e6)
        return statistics.median(rounds_us)

    return {"rules": len(ruleset.rules), "event_types": len(ruleset.event_types), "events": n_events,
            "matching_events": len(matching), "compile_ms": compile_s * 1000,
            "us_per_event": per_event(docs), "us_matching": per_event(matching),
            "us_not_matching": per_event(missing), "us_naive": per_event(docs, naive)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_eval", description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rules", type=int, default=100)
    args = parser.parse_args(argv)
    r = run(args.events, args.rounds, args.rules)
    print(f"rules: {r['rules']} in {r['event_types']} event types")
    print(f"policy compile time: {r['compile_ms']:.1f} ms")
    print(f"events: {r['events']} ({r['matching_events']} matching at least one rule, "
          f"{r['events'] - r['matching_events']} matching none)")
    print(f"evaluation (Ruleset.evaluate, median of {args.rounds} rounds):")
    print(f"  all events:          {r['us_per_event']:.2f} us/event")
    print(f"  matching events:     {r['us_matching']:.2f} us/event")
    print(f"  non-matching events: {r['us_not_matching']:.2f} us/event")
    print(f"  baseline, every rule's closure in turn (no buckets, no index): {r['us_naive']:.2f} us/event")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
