"""``rulec``: validate, evaluate and test SECL policies.

Each subcommand registers itself in :data:`COMMANDS` (name -> (setup,
handler)); a new one (``rulec compile``) is one more entry.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, TextIO
from collections.abc import Callable, Sequence

from .errors import Diagnostic, Diagnostics
from agent.evaluator.event import DocumentEvent
from .policy import compile_expression, load_policies
from .testcases import case_files, expand, read_cases, run_cases

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _print_diagnostics(diags: Sequence[Diagnostic], out: TextIO) -> None:
    for d in diags:
        print(d.format(), file=out)


def _setup_validate(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="POLICY_OR_DIR", help="policy files or directories")


def cmd_validate(args: argparse.Namespace) -> int:
    result = load_policies(args.paths)
    diags = result.diagnostics.sorted()
    _print_diagnostics(diags, sys.stderr)
    errors = result.diagnostics.error_count
    warnings = len(result.diagnostics) - errors
    if errors:
        print(f"rulec: {errors} error(s), {warnings} warning(s) in {len(result.files)} file(s)", file=sys.stderr)
        return EXIT_INVALID
    print(f"{len(result.ruleset.rules)} rule(s), {len(result.macros)} macro(s) in {len(result.files)} "
          f"file(s): valid" + (f", {warnings} warning(s)" if warnings else ""))
    return EXIT_OK


def _setup_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--expr", required=True, help="the SECL expression")
    p.add_argument("--event", required=True, metavar="EVENT.json", help="event document; '-' reads stdin")
    p.add_argument("--policy", action="append", default=[], metavar="FILE",
                   help="policy (file or directory) whose macros and variables the expression may use")


def _read_event(path: str) -> tuple[dict[str, Any] | None, str]:
    name = "<stdin>" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as exc:
        return None, f"{name}: error: cannot read event: {exc.strerror or exc}"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"{name}:{exc.lineno}:{exc.colno}: error: invalid JSON: {exc.msg}"
    except RecursionError:
        return None, f"{name}:1:1: error: invalid JSON: nested too deeply"
    if not isinstance(doc, dict):
        return None, f"{name}:1:1: error: an event document is a JSON object"
    return doc, ""


def cmd_eval(args: argparse.Namespace) -> int:
    compiled, diags = compile_expression(args.expr, policies=args.policy)
    _print_diagnostics(diags.sorted(), sys.stderr)
    if compiled is None:
        return EXIT_USAGE
    doc, problem = _read_event(args.event)
    if doc is None:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    print("true" if compiled.matches(DocumentEvent(doc)) else "false")
    return EXIT_OK


def _setup_test(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="POLICY_OR_DIR", help="policy files or directories")
    p.add_argument("--cases", action="append", default=[], metavar="FILE_OR_DIR",
                   help="test case files (default: tests/*.yaml in each policy directory)")


def cmd_test(args: argparse.Namespace) -> int:
    result = load_policies(args.paths)
    diags = Diagnostics(list(result.diagnostics))
    files = expand(args.cases) if args.cases else case_files(args.paths)
    if not files:
        print("rulec: no test cases found (give --cases, or put tests/*.yaml beside the policies)", file=sys.stderr)
        return EXIT_INVALID
    cases = [c for f in files for c in read_cases(f, diags)]
    outcome = run_cases(result.ruleset, cases, diags)
    _print_diagnostics(diags.sorted(), sys.stderr)
    print(f"{outcome.passed} passed, {outcome.failed} failed")
    return EXIT_INVALID if diags.has_errors else EXIT_OK


def _setup_compile(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="POLICY_OR_DIR", help="policy files or directories")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="directory for the generated sources, the CO-RE objects and manifest.json")
    p.add_argument("--force", action="store_true", help="recompile even when up to date")


def cmd_compile(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agent.clang import BuildError
    from .compile import compile_policy

    try:
        result, compiled = compile_policy(args.paths, Path(args.output), force=args.force)
    except BuildError as exc:
        print(f"rulec: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    diags = result.diagnostics.sorted()
    _print_diagnostics(diags, sys.stderr)
    if compiled is None:
        errors = sum(1 for d in diags if d.is_error)
        print(f"rulec: {errors} error(s): nothing compiled", file=sys.stderr)
        return EXIT_INVALID
    m = compiled.manifest
    print(f"{compiled.outdir}: {'compiled' if compiled.rebuilt else 'up to date'}; "
          f"{len(result.ruleset.rules)} rule(s), event types: {', '.join(m.event_types) or 'none'}")
    for t, f in sorted(compiled.filters.items()):
        print(f"  {t}: {f.summary}")
    return EXIT_OK


def _setup_replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("capture", metavar="CAPTURE", help="a capture from `rsagent record` or `rsagent run --record`")
    p.add_argument("--policy", action="append", required=True, metavar="POLICY_OR_DIR",
                   help="the policy to evaluate (file or directory); repeatable")
    p.add_argument("--baseline", action="append", default=[], metavar="POLICY_OR_DIR",
                   help="compare with this policy (e.g. the one deployed): rules firing more or less, new and "
                        "vanished alerts with example events; repeatable")
    p.add_argument("--format", choices=("text", "json"), default="text", help="report format (default text)")
    p.add_argument("--alerts", metavar="FILE", default=None,
                   help="also write the policy's alerts to FILE, one JSON document per line, as `rsagent run "
                        "--output jsonl:FILE` would (actions marked not performed)")
    p.add_argument("--report", metavar="REPORT.html", default=None,
                   help="also write a self-contained HTML page: alerts per rule over time, the baseline diff, "
                        "sample alerts with their process trees")


def _replay_policy(paths: list[str], host: Any, role: str) -> Any:
    from agent.replay import PolicyReplay

    result = load_policies(paths, host=host if isinstance(host, dict) else None)
    _print_diagnostics(result.diagnostics.sorted(), sys.stderr)
    if not result.ok:
        print(f"rulec: the {role} has errors; nothing replayed", file=sys.stderr)
        return None
    return PolicyReplay(", ".join(result.files), result.ruleset)


def cmd_replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agent.capture import CaptureError, CaptureReader
    from agent.replay import replay, write_json, write_text
    from agent.safefile import open_truncate
    from agent.sinks.record import dumps

    try:
        reader = CaptureReader(Path(args.capture))
    except CaptureError as exc:
        print(f"rulec: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"rulec: error: {args.capture}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    host = reader.header.get("host_document")   # the recorded host, for rule `filters:`
    policy = _replay_policy(args.policy, host, "policy")
    baseline = _replay_policy(args.baseline, host, "baseline") if args.baseline else None
    if policy is None or (args.baseline and baseline is None):
        reader.close()
        return EXIT_INVALID
    out: TextIO | None = None
    if args.alerts:
        try:
            out = open(open_truncate(Path(args.alerts)), "w", encoding="ascii")
        except OSError as exc:
            reader.close()
            print(f"rulec: error: --alerts {args.alerts}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        def write_alert(alert: dict[str, Any]) -> None:
            if out is not None:
                out.write(dumps(alert) + "\n")
        result = replay(reader, policy, baseline, on_alert=write_alert if out is not None else None)
    finally:
        if out is not None:
            out.close()
    (write_json if args.format == "json" else write_text)(result, sys.stdout)
    if args.report:
        from agent.report import write_report

        try:
            write_report(result, args.report)
        except OSError as exc:
            print(f"rulec: error: --report {args.report}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
    return EXIT_OK


def _setup_explain(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", action="append", required=True, metavar="POLICY_OR_DIR",
                   help="the policy (file or directory); repeatable")
    p.add_argument("--event", required=True, metavar="EVENT.json",
                   help="an event document (`rsagent trace`, an alert's \"event\", or a whole alert); '-' reads stdin")
    p.add_argument("--rule", default=None, metavar="ID", help="only this rule (default: every rule of the event's type)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")


def cmd_explain(args: argparse.Namespace) -> int:
    from agent.explain import explain, write_text

    result = load_policies(args.policy)
    _print_diagnostics(result.diagnostics.sorted(), sys.stderr)
    if not result.ok:
        print("rulec: the policy has errors; nothing explained", file=sys.stderr)
        return EXIT_INVALID
    doc, problem = _read_event(args.event)
    if doc is None:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    if "rule_id" in doc and isinstance(doc.get("event"), dict):
        doc = doc["event"]   # an alert: explain its event
    if not isinstance(doc.get("type"), str):
        print(f"{args.event}: error: the event document has no \"type\"", file=sys.stderr)
        return EXIT_USAGE
    if args.rule is not None:
        rule = result.ruleset.get(args.rule)
        if rule is None:
            print(f"rulec: error: --rule {args.rule}: no enabled rule with this id in the policy", file=sys.stderr)
            return EXIT_USAGE
        if rule.event_type != doc["type"]:
            print(f"rulec: error: --rule {args.rule} is about {rule.event_type} events; this is a {doc['type']} event",
                  file=sys.stderr)
            return EXIT_USAGE
    x = explain(result.ruleset, doc, args.rule)
    if args.format == "json":
        print(json.dumps(x.as_dict(), indent=2, ensure_ascii=True, default=str))
    else:
        write_text(x, sys.stdout)
    return EXIT_OK


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "validate": ("check policies; print every problem as PATH:LINE:COL", _setup_validate, cmd_validate),
    "eval": ("evaluate one expression on one event document", _setup_eval, cmd_eval),
    "test": ("run rule test cases (events in, expected rule IDs out)", _setup_test, cmd_test),
    "compile": ("generate and compile the policy's in-kernel filters into CO-RE objects",
                _setup_compile, cmd_compile),
    "replay": ("evaluate a capture (`rsagent record`) against a policy offline: alerts per rule, and the "
               "diff with a baseline policy", _setup_replay, cmd_replay),
    "explain": ("why an event matches a rule or not (the first failing clause), and what the in-kernel "
                "filters would do with it", _setup_explain, cmd_explain),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rulec", description="SECL rule compiler")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, setup, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        setup(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="rulec: %(levelname)s: %(message)s")
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
