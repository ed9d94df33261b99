"""rsagent: the runtime security agent's command line.

    rsagent run [--policy P]...   evaluate the policy's rules, write alerts
    rsagent trace [--output SINK] every event the probes see, as JSON documents
    rsagent record -o CAPTURE     every event the probes send, to a capture for `rulec replay`
    rsagent probe                 which kernel features work, which hook set is used
    rsagent profile learn|diff|show   activity profiles (agent/profile/cli.py)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import threading
from pathlib import Path
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from codegen.agentversion import add_agent_version
from codegen.eventtypes import LIFECYCLE_TYPES as PROCESS_TYPES
from codegen.eventtypes import PRODUCED

from . import installdirs
from .events.layout import LayoutError
from .featurecache import cached_probe, save as save_features
from .features import format_report, probe
from .hashing import HashConfig, Hasher, parse_algorithms, set_default_hasher
from .hooksets import Choice, HookSet, choose_hook_sets, parse_hook_sets
from .libbpf.errors import BpfError, VerifierError
from .metrics import Registry
from .objects import ObjectsMissing, object_path
from .trust import UntrustedPathError, check_policies
from .trust import check as check_trusted
from .process.cache import DEFAULT_MAX_ENTRIES
from .safefile import UnsafePath
from .metrics_http import MetricsAddressError
from .sinks import DEFAULT_SPOOL_DIR, SYNTAX, SinkError, Sinks

if TYPE_CHECKING:
    from agent.evaluator.ruleset import Ruleset
    from codegen.cbackend import TypeFilter
    from codegen.policy import LoadResult

    from .capture import CaptureWriter
    from .engine import Engine
    from .libbpf.object import BpfObject
    from .runtime import Fallback, Runtime, RuntimeConfig

log = logging.getLogger("rsagent")

# lifecycle types: always hooked, they keep the process tree every rule reads
DEFAULT_POLICY = installdirs.default_policy()

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--objects", type=Path, default=None,
                   help="directory of compiled BPF objects (default: $RSAGENT_OBJECTS, else build/ebpf of a "
                        "source checkout, else the installed $RSAGENT_DATA_DIR/ebpf, /usr/lib/rsagent/ebpf)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: libbpf debug)")
    p.add_argument("--insecure-paths", action="store_true",
                   help="load objects and policies even from paths someone other than root can change "
                        "(logged as warnings; default: refuse)")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rsagent", description="Runtime security agent for Linux (eBPF).")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("probe", help="report kernel features and the hook set the agent will use")
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("run", help="run the agent: evaluate the policy's rules, write alerts")
    _common(p)
    _stream_options(p)
    p.add_argument("--policy", action="append", type=Path, default=None, metavar="POLICY_OR_DIR",
                   help=f"policy file or directory; repeatable (default: {DEFAULT_POLICY})")
    p.add_argument("--compiled", type=Path, default=None, metavar="DIR",
                   help="objects from `rulec compile` (default: a cache under build/policies, "
                        "compiled on the spot when clang is installed)")
    p.add_argument("--no-discarders", action="store_true", help="do not learn in-kernel discarders")
    add_agent_version(p)
    p.add_argument("--hash-algorithms", default=("sha256",), type=_hash_algorithms, metavar="LIST",
                   help="digests of the `hash` action and *.file.hashes, comma-separated: sha256, sha1, md5 "
                        "(default: sha256)")
    p.add_argument("--record", type=Path, default=None, metavar="CAPTURE",
                   help="also record every event the rules see to CAPTURE (for `rulec replay`; it holds only "
                        "what this policy's in-kernel filters let through)")
    _capture_options(p)
    p.add_argument("--watch-policy", action="store_true",
                   help="reload when a policy file changes (inotify on the policy files and directories, "
                        "debounced), as SIGHUP does; a policy with errors keeps the running one")
    p.add_argument("--explain-rule", default=None, metavar="ID",
                   help="with -vv: log, for each event of the rule's type, whether it matched and else the first "
                        "failing clause with its values (as `rulec explain`)")

    p = sub.add_parser("trace", help="print every event the probes see, no rules")
    _common(p)
    _stream_options(p)
    p.add_argument("--event-type", action="append", default=None, metavar="TYPE",
                   help="only these event types (default: all the hook set supports); repeatable")

    p = sub.add_parser("record", help="record every event the probes send to a capture file (`rulec replay`)")
    _common(p)
    _stream_options(p, outputs=False)
    p.add_argument("-o", "--output", dest="capture", type=Path, required=True, metavar="CAPTURE",
                   help="the capture file (gzip JSON lines, created 0600)")
    p.add_argument("--duration", type=_seconds, default=None, metavar="D",
                   help="stop after D (5s, 2m; default: until SIGINT/SIGTERM)")
    p.add_argument("--policy", action="append", type=Path, default=None, metavar="POLICY_OR_DIR",
                   help="only what this policy's in-kernel approvers let through (smaller; the header says so); "
                        "default: every event")
    p.add_argument("--compiled", type=Path, default=None, metavar="DIR", help="as for `run` (with --policy)")
    _capture_options(p)

    from .profile.cli import add_parser as add_profile_parser
    add_profile_parser(sub)
    return ap


def _seconds(text: str) -> float:
    from .sinks.spec import parse_seconds

    value = parse_seconds(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a duration such as 30s, 500ms or 2m, got {text!r}")
    return value


def _size(text: str) -> int:
    from .capture import MIN_MAX_BYTES
    from .sinks.spec import parse_size

    value = parse_size(text)
    if value is None or value < MIN_MAX_BYTES:
        raise argparse.ArgumentTypeError(f"expected a size of at least 64k, such as 100M or 1G, got {text!r}")
    return value


def _capture_options(p: argparse.ArgumentParser) -> None:
    from .capture import DEFAULT_MAX_BYTES

    p.add_argument("--max-size", type=_size, default=DEFAULT_MAX_BYTES, metavar="S",
                   help=f"stop recording when the capture reaches S bytes (64k..; default {DEFAULT_MAX_BYTES >> 20}M)")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _netns(text: str) -> str:
    from .net.namespaces import NamespaceError, resolve

    try:
        resolve(text)
    except NamespaceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _hook_sets(text: str) -> tuple[str, ...]:
    try:
        return parse_hook_sets(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _stream_options(p: argparse.ArgumentParser, outputs: bool = True) -> None:
    p.add_argument("--hook-set", type=_hook_sets, default=None, metavar="SET[,SET...]",
                   help="the hook sets to load, tried in order: when one fails to load or attach, the next "
                        "(default: every set `rsagent probe` finds usable, most precise first: fentry, kprobe, "
                        "tracepoint)")
    if outputs:
        p.add_argument("--output", action="append", default=None, metavar="SINK",
                       help=f"where documents go (default '-'): {SYNTAX}; repeatable")
        p.add_argument("--spool-dir", type=Path, default=DEFAULT_SPOOL_DIR, metavar="DIR",
                       help="where network sinks spool while their destination is down, one directory each "
                            f"(default {DEFAULT_SPOOL_DIR}; per sink: spool=DIR|off)")
    p.add_argument("--metrics", default=None, metavar="[ADDR:]PORT",
                   help="serve Prometheus metrics at http://ADDR:PORT/metrics (a bare port: 127.0.0.1)")
    p.add_argument("--ready-file", type=Path, default=None,
                   help="written once every probe is attached and the process snapshot is taken")
    p.add_argument("--load-threads", type=int, default=0, metavar="N",
                   help="threads the programs are loaded (verified by the kernel) in, one object each "
                        "(default 0: one per CPU, at most 4; 1: one object, serially)")
    p.add_argument("--ringbuf-mb", type=int, default=8, help="ring buffer size in MiB (power of two)")
    p.add_argument("--lifecycle-ringbuf-mb", type=int, default=4,
                   help="ring buffer for exec/fork/exit in MiB (power of two; read first, so file storms "
                        "cannot cost the process tree an event)")
    p.add_argument("--stats-interval", type=float, default=0.0,
                   help="log kernel counters every N seconds (default: only at exit)")
    p.add_argument("--capture-env", action="store_true",
                   help="exec events also carry the environment (process.envp; off by default: it holds secrets)")
    p.add_argument("--process-cache-max", type=_at_least_one, default=DEFAULT_MAX_ENTRIES, metavar="N",
                   help=f"process images kept (live + recently exited; default {DEFAULT_MAX_ENTRIES})")
    p.add_argument("--count-compat-syscalls", action="store_true",
                   help="count the 32-bit (compat) calls of the watched syscalls, which no event reports "
                        "(compat_unhooked in the kernel counters; a program on every syscall of the host)")
    p.add_argument("--netns", action="append", default=None, metavar="NAME_OR_PATH", type=_netns,
                   help="dns: a network namespace whose interfaces get the DNS classifier: a name under "
                        "/run/netns, a path (/proc/PID/ns/net), or 'self' (the agent's own, the default); repeatable")


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="rsagent: %(levelname)s: %(message)s", stream=sys.stderr)
    # Exit summaries (counters, losses) are always worth a line.
    for name in ("agent.runtime", "rsagent"):
        logging.getLogger(name).setLevel(min(level, logging.INFO))


def _check_root() -> str | None:
    if os.geteuid() != 0:
        return "must run as root (loading BPF programs needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)"
    return None


def cmd_probe(args: argparse.Namespace) -> int:
    features_object = object_path("features.bpf.o", args.objects, insecure=args.insecure_paths)
    report = probe(features_object)   # always probed: this command is the check; the next start reuses it
    save_features(report, features_object)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_report(report))
    return EXIT_OK if report.hook_set != "none" else EXIT_ERROR


def _choose(args: argparse.Namespace, features_object: Path) -> Choice | None:
    """The hook sets to try (--hook-set, else the probe's), or None (logged)."""
    choice = choose_hook_sets(cached_probe(features_object), args.hook_set)
    if choice.hook_set is None:
        log.error("%s (see `rsagent probe`)", choice.reason)
        return None
    return choice


def _fallbacks(sets: tuple[HookSet, ...], types_of: Callable[[HookSet], set[str] | None]) -> tuple[Fallback, ...]:
    """The sets after the first, each with the event types it is asked for
    (left out when it produces none of the policy's)."""
    from .runtime import Fallback

    out = []
    for hs in sets:
        types = types_of(hs)
        if types is None:
            log.info("hook set %s: not a fallback: it produces none of the policy's event types", hs.name)
            continue
        out.append(Fallback(hs, types))
    return tuple(out)


def _runtime_config(args: argparse.Namespace, probe_object: Path, hook_set: HookSet,
                    types: set[str] | None, **extra: Any) -> RuntimeConfig:
    """What `run` and `trace` share: the stream options of the command line."""
    from .runtime import RuntimeConfig

    return RuntimeConfig(
        probe_object=probe_object,
        hook_set=hook_set,
        event_types=types,
        ringbuf_bytes=args.ringbuf_mb * 1024 * 1024,
        lifecycle_ringbuf_bytes=args.lifecycle_ringbuf_mb * 1024 * 1024,
        ready_file=args.ready_file,
        stats_interval=args.stats_interval,
        capture_env=args.capture_env,
        process_cache_max=args.process_cache_max,
        count_compat=args.count_compat_syscalls,
        netns=tuple(args.netns or ()),
        load_parts=args.load_threads,
        **extra,
    )


def cmd_trace(args: argparse.Namespace) -> int:
    from .runtime import Fallback, Runtime

    choice = _choose(args, object_path("features.bpf.o", args.objects, insecure=args.insecure_paths))
    if choice is None or choice.hook_set is None:
        return EXIT_ERROR
    types = set(args.event_type) if args.event_type else None
    if types:
        unknown = types - choice.hook_set.supported_event_types()
        if unknown:
            lacking = {t: choice.hook_set.left_out[t] for t in unknown if t in choice.hook_set.left_out}
            why = "".join(f"; {t} needs {', '.join(r)}, which this kernel lacks" for t, r in sorted(lacking.items()))
            log.error("--event-type %s: not produced by the %s hook set (it has: %s)%s",
                      ", ".join(sorted(unknown)), choice.name,
                      ", ".join(sorted(choice.hook_set.supported_event_types())), why)
            return EXIT_USAGE

    config = _runtime_config(args, object_path("probe.bpf.o", args.objects, insecure=args.insecure_paths),
                             choice.hook_set, types,
                             fallbacks=tuple(Fallback(hs, types) for hs in choice.fallbacks))
    registry = _registry()
    stop_when_no_sink: list[Callable[[], None]] = []

    def no_sink_left() -> None:
        # Every sink gone for good (`rsagent trace | head`): nothing left to trace for.
        for stop in stop_when_no_sink:
            stop()

    with Sinks(args.output, metrics=registry, spool_dir=args.spool_dir,
               on_all_closed=no_sink_left) as sinks, _serve_metrics(registry, args.metrics):
        runtime = Runtime(config, sinks.write, flush=sinks.flush, metrics=registry)
        stop_when_no_sink.append(runtime.stop.set)
        runtime.run()
    return EXIT_OK


def _registry() -> Registry:
    """The metrics of this run: the sinks' and the runtime's, served by --metrics."""
    from .metrics_http import register_build_info

    registry = Registry()
    register_build_info(registry)
    return registry


@contextmanager
def _serve_metrics(registry: Registry, address: str | None) -> Iterator[None]:
    if address is None:
        yield
        return
    from .metrics_http import serve

    try:
        server = serve(registry, address)
    except OSError as exc:
        raise SinkError(f"--metrics {address}: cannot listen: {exc.strerror or exc}") from exc
    log.info("metrics at http://%s:%d/metrics", *server.address)
    try:
        yield
    finally:
        server.close()


def report_skipped(result: LoadResult) -> None:
    """Each rule that cannot be loaded once, as a warning; those its filters or
    agent_version leave out with -v; then the counts."""
    for s in result.failed:
        log.warning("%s", s.format())
    for s in result.excluded:
        log.info("%s: rule '%s' left out: %s", s.position, s.id, s.message)
    if result.skipped:
        log.log(logging.WARNING if result.failed else logging.INFO, "%s", result.summary())


def _summary(filters: dict[str, TypeFilter]) -> str:
    return "; ".join(f"{t}: {f.summary}" for t, f in sorted(filters.items()))


# Fields filled from another event type's records: that type is hooked too
# (the table's EventType.fills: DNS responses name connect's peers).
FIELDS_FROM: dict[str, str] = {f: t.name for t in PRODUCED for f, _ in t.fills}


# Programs that only fill a field of another type's events, loaded when a rule
# can show or read it (the table's EventType.fills).
PROGRAMS_FOR: dict[str, str] = {p: f for t in PRODUCED for f, progs in t.fills for p in progs}


def _needed_by_fields(ruleset: Ruleset) -> set[str]:
    from codegen.ir import fields_of

    return {FIELDS_FROM[f.name] for rule in ruleset.rules for f in fields_of(rule.ir) if f.name in FIELDS_FROM}


def _unneeded_programs(ruleset: Ruleset) -> frozenset[str]:
    """PROGRAMS_FOR's programs whose field no alert carries: the policy has
    no rule of the field's event type (a rule reading it is one of those)."""
    types = {rule.event_type for rule in ruleset.rules}
    return frozenset(p for p, fld in PROGRAMS_FOR.items() if fld.split(".")[0] not in types)


def _event_types(ruleset: Ruleset, filters: dict[str, TypeFilter], hook_set: HookSet,
                 name: str, warn: bool = True) -> set[str] | None:
    """The event types to hook for a policy (None: none of its rules' types
    is produced), warning once per rule that cannot fire."""
    wanted = set(filters) | _needed_by_fields(ruleset)
    have = hook_set.supported_event_types()
    for event_type in sorted(wanted - have) if warn else ():
        lacking = hook_set.left_out.get(event_type)
        why = f" on this kernel (it lacks {', '.join(lacking)})" if lacking else ""
        for rule in ruleset.rules_for(event_type):
            log.warning("%s: rule '%s' cannot fire: the %s hook set does not produce %s events%s",
                        rule.position, rule.id, name, event_type, why)
    if not wanted & have:
        return None
    # Process lifecycle events always flow: they keep the process tree that
    # every rule's process.* fields read (and are rare next to file events).
    return (wanted | PROCESS_TYPES) & have


def _hash_algorithms(text: str) -> tuple[str, ...]:
    try:
        return parse_algorithms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def cmd_run(args: argparse.Namespace) -> int:
    from codegen.hostinfo import host_document
    from codegen.policy import HOOK_SET, load_policies

    from codegen.cbackend import kernel_filters, shape_digest

    from .compiled import CompiledPolicyError, locate
    from .discarders import DiscarderLearner
    from .engine import Engine
    from .kfilters import KernelFilters, invalidation_hooks
    from .capture import recording
    from .runtime import Runtime

    policies = args.policy or [DEFAULT_POLICY]
    check_policies(policies, args.insecure_paths)
    result = load_policies(policies, host=host_document(), agent_version=args.agent_version)
    for d in result.diagnostics.sorted():
        print(d.format(), file=sys.stderr)
    report_skipped(result)
    if not result.ok:
        print(f"rsagent: error: the policy has errors; fix them (`rulec validate {' '.join(map(str, policies))}`)",
              file=sys.stderr)
        return EXIT_ERROR
    ruleset = result.ruleset
    # a profile decides what is normal: the same trust as a policy file
    check_trusted(sorted({(Path(r.anomaly["profile"]), "profile") for r in ruleset.rules if r.anomaly}),
                  args.insecure_paths)
    if not ruleset.rules:
        print("rsagent: error: the policy has no enabled rule", file=sys.stderr)
        return EXIT_ERROR
    try:
        compiled = locate(result, args.compiled, insecure=args.insecure_paths)
    except CompiledPolicyError as exc:
        print(f"rsagent: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    choice = _choose(args, compiled.features_object)
    if choice is None or choice.hook_set is None:
        return EXIT_ERROR
    hook_set = choice.hook_set
    types = _event_types(ruleset, compiled.filters, hook_set, choice.name)
    if types is None:
        print("rsagent: error: no rule's event type is produced by this kernel's hook set", file=sys.stderr)
        return EXIT_ERROR
    skipped = result.skip_counts()
    skipped[HOOK_SET] += sum(len(ruleset.rules_for(t)) for t in set(compiled.filters) - hook_set.supported_event_types())

    def count_skipped(loaded: LoadResult) -> None:
        """A counter: the rules each applied load left out, added up."""
        for reason, n in loaded.skip_counts().items():
            skipped[reason] += n

    registry = _registry()
    registry.callback("rules_skipped_total", "rules of the policy not loaded, by reason (docs/secl.md "
                      "\"Rule-level fault isolation\")", "counter", ("reason",), lambda: list(skipped.items()))
    sinks = Sinks(args.output, metrics=registry, spool_dir=args.spool_dir)
    hasher = Hasher(HashConfig(algorithms=args.hash_algorithms), metrics=registry)
    set_default_hasher(hasher)  # *.file.hashes fields read through it too
    engine = Engine(ruleset, [sinks], metrics=registry, hasher=hasher)

    state: dict[str, KernelFilters] = {}

    def prepare_for(policy: LoadResult, filters: dict[str, TypeFilter]) -> Callable[[BpfObject], None]:
        """Fill an object's filter maps for ``policy`` (at start, and for the
        new object of a handover, whose filters take over at its switch)."""
        def prepare(obj: BpfObject) -> None:
            kf = KernelFilters(obj, runtime.layout, filters, runtime.decoder.type_ids)
            n = kf.load_approvers()
            log.info("in-kernel filters: %s", _summary(filters))
            log.info("loaded %d approver basename(s)", n)
            learner = None if args.no_discarders else DiscarderLearner(
                obj, runtime.layout, policy.ruleset, filters, runtime.decoder.type_ids, runtime.clock,
                metrics=registry, stats=engine.learner.stats if engine.learner is not None else None)
            pending.update(filters=kf, learner=learner)
        return prepare

    pending: dict[str, Any] = {}

    def switch_to(policy: LoadResult) -> Callable[[], None]:
        def switch() -> None:
            state["filters"] = pending["filters"]
            engine.learner = pending["learner"]
            engine.ruleset = policy.ruleset
        return switch

    config = _runtime_config(
        args, compiled.probe_object, choice.hook_set, types,
        hook_only_types=set() if args.no_discarders else invalidation_hooks(compiled.filters),
        left_out_programs=_unneeded_programs(ruleset),
        fallbacks=_fallbacks(choice.fallbacks,
                             lambda hs: _event_types(ruleset, compiled.filters, hs, hs.name, warn=False)))
    first = prepare_for(result, compiled.filters)

    def prepare(obj: BpfObject) -> None:
        first(obj)
        switch_to(result)()

    consumer: Callable[[dict[str, Any]], None] = engine
    if args.explain_rule is not None:
        explained = ruleset.get(args.explain_rule)
        if explained is None:
            print(f"rsagent: error: --explain-rule {args.explain_rule}: no enabled rule with this id", file=sys.stderr)
            return EXIT_USAGE
        consumer = _explaining(engine, explained.id, explained.event_type)
    writer = None if args.record is None else _capture_writer(
        args, "run", choice.name, types, _filters_doc(result.files, compiled.filters, not args.no_discarders))
    runtime = Runtime(config, consumer if writer is None else recording(writer, consumer),
                      flush=sinks.flush if writer is None else _both(sinks.flush, writer.tick),
                      prepare=prepare, metrics=registry)
    if writer is not None:
        writer.counters = runtime.kernel_stats
    runtime.losses.report = sinks.write  # loss reports go in the alert stream

    reloading = threading.Lock()    # one reload at a time
    again: list[str] = []           # a policy change seen during a reload: reload once more after it

    def reload(why: str) -> None:
        """SIGHUP (or --watch-policy): the policy files are read and compiled
        on a thread of their own (the loop goes on reading events), then
        applied in the loop: same filter shape, new values in the running
        object's maps; another shape, a new object attached beside the
        running one takes over (Runtime.handover). Any error keeps the
        running policy."""
        if not reloading.acquire(blocking=False):
            if why == "SIGHUP":
                log.warning("SIGHUP: a reload is in progress; send SIGHUP again once it is done")
            else:
                log.info("%s: a reload is in progress; reloading again once it is done", why)
                again[:] = [why]
            return
        threading.Thread(target=prepare_reload, args=(why,), name="reload", daemon=True).start()

    def done_reloading() -> None:
        reloading.release()
        if again:
            why = again.pop()
            runtime.call_soon(lambda: reload(why))

    def prepare_reload(why: str) -> None:
        try:
            prepared = _prepare_reload(why)
        except BaseException:
            done_reloading()
            raise
        if prepared is None:
            done_reloading()
            return
        apply: Callable[[], None] = prepared

        def apply_then_release() -> None:
            try:
                apply()
            finally:
                done_reloading()
        runtime.call_soon(apply_then_release)

    def record_filters(filters: dict[str, TypeFilter], files: list[str], generation: int) -> None:
        """--record: which in-kernel filters let events through from here on."""
        if writer is not None:
            writer.filters(generation=generation, hook_set=runtime.config.hook_set.name,
                           event_types=sorted(runtime.config.event_types or ()) or None,
                           filters=_filters_doc(files, filters, not args.no_discarders))

    def _prepare_reload(why: str) -> Callable[[], None] | None:
        try:
            check_policies(policies, args.insecure_paths)
        except UntrustedPathError as exc:
            log.error("%s: %s; still running the previous policy", why, exc)
            return None
        new = load_policies(policies, host=host_document(), agent_version=args.agent_version)
        report_skipped(new)
        if not new.ok:
            for d in new.diagnostics.sorted():
                print(d.format(), file=sys.stderr)
            log.error("%s: the policy has errors; still running the previous one", why)
            return None
        new_filters = kernel_filters(new.ruleset)
        if shape_digest(new_filters) == shape_digest(state["filters"].filters):
            def same_shape() -> None:
                n = state["filters"].reload(new_filters)
                count_skipped(new)
                engine.ruleset = new.ruleset
                if engine.learner is not None:
                    engine.learner.reset(new.ruleset, new_filters)
                record_filters(new_filters, new.files, runtime.generation)
                log.warning("%s: reloaded %d rule(s) from %s (%d approver basename(s)); discarders "
                            "invalidated", why, len(new.ruleset.rules), ", ".join(new.files), n)
            return same_shape
        try:
            new_compiled = locate(new, args.compiled, insecure=args.insecure_paths)
        except (CompiledPolicyError, UntrustedPathError) as exc:
            log.error("%s: the new policy needs other in-kernel filters, and %s; still running the previous "
                      "one", why, exc)
            return None
        # the set running now first (a fallback at start is not retried), then those after it
        running = runtime.config
        new_types = _event_types(new.ruleset, new_compiled.filters, running.hook_set, running.hook_set.name)
        if new_types is None:
            log.error("%s: no rule of the new policy has an event type this hook set produces; "
                      "still running the previous one", why)
            return None
        fallbacks = _fallbacks(tuple(f.hook_set for f in running.fallbacks),
                               lambda hs: _event_types(new.ruleset, new_compiled.filters, hs, hs.name, warn=False))

        def switched() -> Callable[[], None]:
            switch = switch_to(new)

            def run() -> None:
                switch()
                record_filters(new_compiled.filters, new.files, runtime.generation)
            return run

        def handover() -> None:
            new_config = dataclasses.replace(
                runtime.config, probe_object=new_compiled.probe_object, event_types=new_types, fallbacks=fallbacks,
                left_out_programs=_unneeded_programs(new.ruleset),
                hook_only_types=set() if args.no_discarders else invalidation_hooks(new_compiled.filters))
            try:
                runtime.handover(new_config, prepare_for(new, new_compiled.filters), switched())
            except (BpfError, OSError, ValueError) as exc:
                log.error("%s: the new policy's objects did not load (%s); still running the previous one",
                          why, exc)
                return
            count_skipped(new)
            log.warning("%s: %d rule(s) from %s with new in-kernel filters (%s)", why,
                        len(new.ruleset.rules), ", ".join(new.files), _summary(new_compiled.filters))
        return handover

    def attached() -> None:
        if runtime.config.hook_set.name != choice.name:   # a fallback: the header names the first one tried
            record_filters(compiled.filters, result.files, 1)

    runtime.on_reload = lambda _obj: reload("SIGHUP")
    runtime.on_attached = attached
    log.info("%d rule(s) from %s", len(ruleset.rules), ", ".join(result.files))
    with _closing(writer, runtime), sinks, engine, _serve_metrics(registry, args.metrics), \
            _watching(policies if args.watch_policy else None, args.insecure_paths,
                      lambda why: runtime.call_soon(lambda: reload(why))):
        runtime.run()  # the engine closes before the sinks: alerts waiting for hashes are written
    st = engine.stats
    log.info("rules: %d events evaluated, %d matched, %d alerts (%d throttled by `every`), %d kill(s)",
             st.events, st.matched, st.alerts, st.throttled, st.kills)
    if engine.learner is not None:
        log.info("discarders: %s", engine.learner.stats)
    return EXIT_OK


@contextmanager
def _watching(policies: list[Path] | None, insecure: bool, on_change: Callable[[str], None]) -> Iterator[None]:
    """--watch-policy: reload (``on_change``) when a policy file changes."""
    if policies is None:
        yield
        return
    from .policywatch import PolicyWatch

    with PolicyWatch(policies, on_change, insecure=insecure):
        yield


def _filters_doc(files: list[str], filters: dict[str, TypeFilter], discarders: bool) -> dict[str, Any]:
    """The capture header's account of the in-kernel filters that were on."""
    return {"policy": files, "types": {t: f.summary for t, f in sorted(filters.items())},
            "discarders": discarders and any(f.discard for f in filters.values())}


def _capture_writer(args: argparse.Namespace, command: str, hook_set: str, types: set[str] | None,
                    filters: dict[str, Any] | None, on_full: Callable[[], None] | None = None) -> CaptureWriter:
    from .capture import CaptureWriter, filters_note, header

    path = args.record if command == "run" else args.capture
    writer = CaptureWriter(path, header(command=command, hook_set=hook_set,
                                        event_types=None if types is None else sorted(types), filters=filters),
                           max_bytes=args.max_size, on_full=on_full)
    log.info("recording to %s; in-kernel filters %s", path, filters_note(filters))
    return writer


def _explaining(engine: Engine, rule_id: str, event_type: str) -> Callable[[dict[str, Any]], None]:
    """--explain-rule: at -vv, each event of the rule's type explained before the engine sees it."""
    from .explain import explain, log_line

    explain_log = logging.getLogger("agent.explain")

    def consume(doc: dict[str, Any]) -> None:
        if doc["type"] == event_type and explain_log.isEnabledFor(logging.DEBUG):
            # engine.ruleset: the one running now (SIGHUP replaces it)
            explain_log.debug("%s", log_line(explain(engine.ruleset, doc, rule_id, filters={})))
        engine(doc)
    return consume


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        first()
        second()
    return run


@contextmanager
def _closing(writer: CaptureWriter | None, runtime: Runtime) -> Iterator[None]:
    """Close the capture (trailer with the final counters) however the run ends."""
    try:
        yield
    finally:
        if writer is not None:
            s = runtime.last_summary
            writer.close(s.kernel if s else {}, decode_errors=s.decode_errors if s else {},
                         unread_at_stop=s.unread_at_stop if s else 0, consumer_errors=runtime.consumer_errors)


def cmd_record(args: argparse.Namespace) -> int:
    """Like `trace` into a capture file; with --policy, behind its approvers."""
    import threading
    import time

    from .capture import recording
    from .runtime import Fallback, Runtime

    filters_doc: dict[str, Any] | None = None
    prepare: Callable[[BpfObject], None] | None = None
    if args.policy:
        loaded = _record_policy(args)
        if loaded is None:
            return EXIT_ERROR
        probe_object, features_object, filters, files = loaded
        filters_doc = _filters_doc(files, filters, False)
    else:
        probe_object = object_path("probe.bpf.o", args.objects, insecure=args.insecure_paths)
        features_object = object_path("features.bpf.o", args.objects, insecure=args.insecure_paths)
    choice = _choose(args, features_object)
    if choice is None or choice.hook_set is None:
        return EXIT_ERROR
    types: set[str] | None = None
    fallbacks = tuple(Fallback(hs, None) for hs in choice.fallbacks)
    if args.policy:
        from .kfilters import KernelFilters

        def policy_types(hs: HookSet) -> set[str] | None:
            return (set(filters) | PROCESS_TYPES) & hs.supported_event_types() or None

        types = policy_types(choice.hook_set)
        fallbacks = _fallbacks(choice.fallbacks, policy_types)

        def prepare(obj: BpfObject) -> None:
            n = KernelFilters(obj, runtime.layout, filters, runtime.decoder.type_ids).load_approvers()
            log.info("in-kernel approvers of the policy: %d basename(s)", n)

    stop: list[Callable[[], None]] = []
    writer = _capture_writer(args, "record", choice.name, types, filters_doc, on_full=lambda: stop[0]())
    config = _runtime_config(args, probe_object, choice.hook_set, types, fallbacks=fallbacks)
    registry = _registry()
    runtime = Runtime(config, recording(writer, lambda doc: None), flush=writer.tick, prepare=prepare,
                      metrics=registry)

    def attached() -> None:
        if runtime.config.hook_set.name != choice.name:   # a fallback: the header names the first one tried
            writer.filters(generation=1, hook_set=runtime.config.hook_set.name,
                           event_types=None if runtime.config.event_types is None
                           else sorted(runtime.config.event_types), filters=filters_doc)
    runtime.on_attached = attached
    writer.counters = runtime.kernel_stats
    stop.append(runtime.stop.set)
    if args.duration:
        def stop_after() -> None:
            # from the moment every probe is attached
            if runtime.ready.wait(120) and not runtime.stop:
                time.sleep(args.duration)
                runtime.stop.set()
        threading.Thread(target=stop_after, name="record-duration", daemon=True).start()
    with _closing(writer, runtime), _serve_metrics(registry, args.metrics):
        runtime.run()
    if writer.stats.full:
        print(f"rsagent: the capture reached --max-size {args.max_size} bytes: recording stopped early "
              f"({writer.stats.events} events)", file=sys.stderr)
    return EXIT_OK


def _record_policy(args: argparse.Namespace) -> tuple[Path, Path, dict[str, TypeFilter], list[str]] | None:
    from codegen.hostinfo import host_document
    from codegen.policy import load_policies

    from .compiled import CompiledPolicyError, locate

    check_policies(args.policy, args.insecure_paths)
    result = load_policies(args.policy, host=host_document())
    for d in result.diagnostics.sorted():
        print(d.format(), file=sys.stderr)
    if not result.ok:
        print("rsagent: error: the policy has errors; fix them (`rulec validate`)", file=sys.stderr)
        return None
    try:
        compiled = locate(result, args.compiled, insecure=args.insecure_paths)
    except CompiledPolicyError as exc:
        print(f"rsagent: error: {exc}", file=sys.stderr)
        return None
    return compiled.probe_object, compiled.features_object, compiled.filters, result.files


def cmd_profile(args: argparse.Namespace) -> int:
    from .profile.cli import cmd_profile as run_profile

    return run_profile(args)


COMMANDS = {"run": cmd_run, "probe": cmd_probe, "trace": cmd_trace, "record": cmd_record, "profile": cmd_profile}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    from .profile.cli import needs_root

    problem = _check_root() if args.command != "profile" or needs_root(args) else None
    if problem:
        print(f"rsagent: error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    try:
        return COMMANDS[args.command](args)
    except (SinkError, MetricsAddressError) as exc:
        print(f"rsagent: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ObjectsMissing, LayoutError, FileNotFoundError, UntrustedPathError, UnsafePath) as exc:
        print(f"rsagent: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except VerifierError as exc:
        print(f"rsagent: error: {exc}\n(full verifier log with -vv)", file=sys.stderr)
        log.debug("verifier log:\n%s", exc.log)
        return EXIT_ERROR
    except BpfError as exc:
        print(f"rsagent: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # stdout closed by the reader (e.g. `rsagent trace | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
