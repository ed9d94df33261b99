"""`rsagent profile learn|diff|show`.

    rsagent profile learn (--exe PATH | --container ID | --cgroup PATH) --duration D -o PROFILE   (live, root)
    rsagent profile learn (--exe ... ) --from-capture CAPTURE -o PROFILE                         (no root)
    rsagent profile diff A B [--format text|json]
    rsagent profile show PROFILE [--format text|html|dot] [-o FILE]

Live learning runs the probes as `rsagent record` does (every event type,
no in-kernel filter) and hands each resolved document to the learner
instead of a capture; from a capture, the capture reader (agent/capture.py)
feeds the same learner.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from .learn import Learner, cgroup_selector
from .model import ProfileError, Selector, read_profile, write_profile

log = logging.getLogger("rsagent")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from agent.cli import _common, _seconds, _stream_options

    p = sub.add_parser("profile", help="learn, compare and draw activity profiles (anomaly detection)")
    psub = p.add_subparsers(dest="profile_command", required=True, metavar="ACTION")
    lp = psub.add_parser("learn", help="learn what a workload does into a profile (YAML)")
    _common(lp)
    _stream_options(lp, outputs=False)
    which = lp.add_mutually_exclusive_group(required=True)
    which.add_argument("--exe", default=None, metavar="PATH",
                       help="the workload: processes running this executable (canonical path) and their descendants")
    which.add_argument("--container", default=None, metavar="ID", help="the workload: a container's processes")
    which.add_argument("--cgroup", default=None, metavar="PATH",
                       help="the workload: the processes of a cgroup v2 directory (absolute, or relative to the cgroup2 mount)")
    lp.add_argument("--duration", type=_seconds, default=None, metavar="D",
                    help="live: learn for D (30s, 10m; default: until SIGINT/SIGTERM)")
    lp.add_argument("--from-capture", type=Path, default=None, metavar="CAPTURE",
                    help="learn from a capture (`rsagent record`) instead of live (no root needed)")
    lp.add_argument("-o", "--output", dest="profile", type=Path, required=True, metavar="PROFILE",
                    help="the profile file (YAML, created 0600)")
    dp = psub.add_parser("diff", help="what profile B has that A has not, and the reverse")
    dp.add_argument("a", type=Path, metavar="A")
    dp.add_argument("b", type=Path, metavar="B")
    dp.add_argument("--format", choices=("text", "json"), default="text")
    dp.add_argument("-v", "--verbose", action="count", default=0)
    sp = psub.add_parser("show", help="print or draw a profile")
    sp.add_argument("path", type=Path, metavar="PROFILE")
    sp.add_argument("--format", choices=("text", "html", "dot"), default="text")
    sp.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                    help="write there (created 0600) instead of standard output")
    sp.add_argument("-v", "--verbose", action="count", default=0)


def needs_root(args: argparse.Namespace) -> bool:
    return args.profile_command == "learn" and args.from_capture is None


def _selector(args: argparse.Namespace) -> Selector:
    if args.exe is not None:
        if not args.exe.startswith("/"):
            raise ValueError(f"--exe {args.exe}: give the executable's absolute, canonical path")
        return Selector("exe", args.exe)
    if args.container is not None:
        return Selector("container", args.container)
    return cgroup_selector(args.cgroup)


def cmd_profile(args: argparse.Namespace) -> int:
    try:
        if args.profile_command == "learn":
            return _learn(args)
        if args.profile_command == "diff":
            return _diff(args)
        return _show(args)
    except (ProfileError, ValueError) as exc:
        print(f"rsagent: error: {exc}", file=sys.stderr)
        return 1


def _learn(args: argparse.Namespace) -> int:
    learner = Learner(_selector(args))
    if args.from_capture is not None:
        from agent.capture import CaptureReader

        reader = CaptureReader(args.from_capture)
        for doc in reader.events():
            learner.add(doc)
        for problem in reader.problems:
            log.warning("%s", problem)
        source = f"capture {args.from_capture}"
    else:
        _learn_live(args, learner)
        source = "live"
    profile = learner.profile(source)
    write_profile(profile, args.profile)
    print(f"rsagent: profile {args.profile}: {learner.events} of {learner.seen} events were the workload's "
          f"({profile.selector.describe()}); {len(profile.processes)} executable(s), "
          f"{len(profile.files_read)} read and {len(profile.files_write)} write pattern(s), {len(profile.dns)} "
          f"DNS name(s), {len(profile.connect)} destination(s)", file=sys.stderr)
    if not learner.events:
        print(f"rsagent: warning: no event of {profile.selector.describe()} was seen: the profile is empty "
              "(every activity of the workload would be an anomaly)", file=sys.stderr)
    return 0


def _learn_live(args: argparse.Namespace, learner: Learner) -> None:
    import time

    from agent.cli import _registry, _runtime_config, _serve_metrics
    from agent.features import probe
    from agent.hooksets import choose_hook_set
    from agent.objects import object_path
    from agent.runtime import Runtime

    choice = choose_hook_set(probe(object_path("features.bpf.o", args.objects, insecure=args.insecure_paths)))
    if choice.hook_set is None:
        raise ValueError(f"{choice.reason} (see `rsagent probe`)")
    config = _runtime_config(args, object_path("probe.bpf.o", args.objects, insecure=args.insecure_paths),
                             choice.hook_set, None)
    registry = _registry()
    runtime = Runtime(config, learner.add, metrics=registry)
    if args.duration:
        def stop_after() -> None:
            if runtime.ready.wait(120) and not runtime.stop:
                time.sleep(args.duration)
                runtime.stop.set()
        threading.Thread(target=stop_after, name="learn-duration", daemon=True).start()
    with _serve_metrics(registry, args.metrics):
        runtime.run()


def _diff(args: argparse.Namespace) -> int:
    from .show import diff, write_diff_json, write_diff_text

    d = diff(read_profile(args.a), read_profile(args.b))   # type: ignore[arg-type]
    if args.format == "json":
        write_diff_json(d, str(args.a), str(args.b), sys.stdout)
    else:
        write_diff_text(d, str(args.a), str(args.b), sys.stdout)
    return 0


def _show(args: argparse.Namespace) -> int:
    import io

    from .show import render_dot, render_html, write_text

    profile = read_profile(args.path)
    assert profile is not None   # read_profile raises instead
    if args.format == "html":
        text = render_html(profile)
    elif args.format == "dot":
        text = render_dot(profile)
    else:
        buf = io.StringIO()
        write_text(profile, buf)
        text = buf.getvalue()
    if args.output is None:
        sys.stdout.write(text)
    else:
        from agent.safefile import open_truncate

        with open(open_truncate(args.output), "w", encoding="utf-8") as out:
            out.write(text)
    return 0
