"""The agent's event loop: load and attach the probes, then, in stages:

    ring buffer -> decode (pure) -> resolve -> consumer (evaluate, alert) -> sinks

- the ring buffer's callback only *decodes* each record into a typed,
  self-contained Python object (agent/events/decode.py: no I/O, no lookups)
  and stops the poll after ``batch_max`` records, so ``poll`` returns at
  least every ``poll_timeout_ms`` whatever the load;
- the loop then resolves the batch (mounts, users, process cache, /proc:
  agent/events/resolve.py) and hands each document to the consumer (the
  rule engine, or `rsagent trace`'s printer), which hands alerts to the
  sinks (their own threads and bounded queues);
- between batches it runs what must never wait for a quiet moment: stop,
  reload (SIGHUP), periodic counter logs, flushing.

Shutdown on SIGINT/SIGTERM: detach every program (nothing new is
produced), drain what the ring buffer still holds (for at most
``drain_timeout`` seconds; records left then are counted, never silently
dropped), let the consumer and the sinks flush, report counters, close the
object. Exit status 0.

Every counter lives in one metrics registry (agent/metrics.py), which the
counter logs, the exit summary and the Prometheus endpoint read.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from codegen.eventtypes import LIFECYCLE_TYPES as PROCESS_TYPES

from . import heap
from .clock import BootClock
from .events.decode import Decoder, Record
from .events.layout import layout
from .events.process_events import procfs_file_doc
from .hooksets import HookSet
from .kstats import TypeStats, format_type_stats, read_type_stats
from .libbpf.errors import BpfError
from .libbpf.link import Link
from .libbpf.object import BpfObject, load_object
from .libbpf.object import Program as LoadedProgram
from .libbpf.ringbuf import RingBuffer
from .events.resolve import Document, ResolveEnv, Resolver
from .metrics import Registry
from .mounts import MountTable
from .net.interfaces import InterfaceTable
from .net.namespaces import resolve_all
from .net.stats import format_dns_stats, read_dns_stats
from .net.stats import split as split_dns_stats
from .process.cache import DEFAULT_MAX_ENTRIES, ProcessCache
from .safefile import write_replace
from .users import UserNames

if TYPE_CHECKING:
    from .net.classifier import DnsClassifier, Program

log = logging.getLogger(__name__)

Consumer = Callable[[Document], None]
COMPAT_COUNTER = "rs_compat_exit"   # the opt-in counter of 32-bit syscalls (ebpf/hooks/compat.h)
# Programs attached to interfaces through netlink (agent/net), not by section.
CLASSIFIER_KINDS = frozenset({"tc", "classifier"})


@dataclass(frozen=True)
class Fallback:
    """A hook set to load when the one before it fails, with the event types
    it is then asked for (those of the policy it produces)."""

    hook_set: HookSet
    event_types: set[str] | None


class HookSetsFailed(BpfError):
    """No hook set of the ones to try could be loaded and attached."""

    def __init__(self, failures: list[tuple[str, str, BpfError]]) -> None:
        last = failures[-1][2]
        super().__init__(last.op, last.errno or 1, where=last.where)
        self.failures = failures

    def __str__(self) -> str:
        if len(self.failures) == 1:
            name, stage, exc = self.failures[0]
            return f"the {name} hook set failed at {stage}: {exc} (see `rsagent probe`)"
        return "no hook set could be loaded: " + "; ".join(
            f"{name} failed at {stage}: {exc}" for name, stage, exc in self.failures) + " (see `rsagent probe`)"


def failed_program(exc: BpfError) -> str:
    """The program a load/attach error names ("?" when it names none)."""
    program = getattr(exc, "program", None)
    if isinstance(program, str):
        return program
    found = re.search(r"\bprogram (\S+?):?(?:\s|$)", exc.where)
    return found.group(1) if found else "?"


@dataclass
class RuntimeConfig:
    probe_object: Path
    hook_set: HookSet
    event_types: set[str] | None = None         # None: every type the hook set supports
    ringbuf_bytes: int = 8 * 1024 * 1024
    lifecycle_ringbuf_bytes: int = 4 * 1024 * 1024  # exec/fork/exit: their own buffer, read first
    ready_file: Path | None = None
    stats_interval: float = 0.0                  # seconds; 0: only at exit
    poll_timeout_ms: int = 100
    batch_max: int = 1024                        # records decoded per poll before the loop runs again
    drain_timeout: float = 1.0                   # seconds spent draining at stop
    variables: dict[str, int] = field(default_factory=dict)  # const volatile globals of the object
    handle_signals: bool = True                  # False when run off the main thread (tests)
    # Hooked without sending records: what keeps discarders right (tombstones
    # on rename/unlink/rmdir/link, revision on mount/umount).
    hook_only_types: set[str] = field(default_factory=set)
    capture_env: bool = False                    # exec: also capture the environment (opt-in)
    process_cache_max: int = DEFAULT_MAX_ENTRIES  # process images indexed (live + recently exited)
    track_processes: bool = True                 # attach exec/fork/exit even when not asked for
    # count the 32-bit (compat) calls of the watched syscalls (ebpf/hooks/compat.h): opt-in,
    # its program runs on every syscall of the host
    count_compat: bool = False
    netns: tuple[str, ...] = ()                  # dns: namespaces whose interfaces get the classifier
                                                 # (agent/net/namespaces.py; default: the agent's own)
    # programs of the types hooked that are not loaded (cli.PROGRAMS_FOR: no rule needs them)
    left_out_programs: frozenset[str] = frozenset()
    # loaded in order when hook_set (then the one before) fails to load or attach
    fallbacks: tuple[Fallback, ...] = ()
    # objects the programs are loaded by, in as many threads (the kernel's
    # verifier runs in the loading thread); 0: one per CPU, at most 4
    # (bench/README.md "Start-up": 0.72x the serial load's time on 2 quiet cores)
    load_parts: int = 0


@dataclass
class RunSummary:
    decoded: int
    decode_errors: dict[str, int]
    kernel: dict[str, TypeStats]
    consumer_errors: int
    processes: dict[str, int] = field(default_factory=dict)
    unread_at_stop: int = 0                      # records the drain deadline left in the buffer
    dns: dict[str, int] = field(default_factory=dict)  # the DNS parser's counters (agent/net/stats.py)


@dataclass
class _Generation:
    """One loaded probe object and what of it is attached."""

    number: int                 # rs_generation: 1 at start, +1 per handover
    obj: BpfObject              # every map (and the programs, unless parts holds them)
    programs: list[str]
    parts: list[BpfObject] = field(default_factory=list)       # the programs, loaded in parallel
    links: list[Link] = field(default_factory=list)
    classifiers: list[Program] = field(default_factory=list)   # its tc programs (on self.classifier)

    def program(self, name: str) -> LoadedProgram:
        for obj in self.parts:
            prog = obj.programs.get(name)
            if prog is not None and prog.autoload:
                return prog
        return self.obj.program(name)

    def close(self) -> None:
        for obj in self.parts:
            obj.close()
        self.obj.close()


class StopFlag:
    """Set by SIGINT/SIGTERM (or programmatically); checked between polls.
    SIGHUP sets ``reload`` instead (see Runtime.on_reload)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal: int | None = None
        self.reload = threading.Event()

    def set(self, signum: int | None = None) -> None:
        self.signal = signum
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def install(self) -> Callable[[], None]:
        """Handle SIGINT/SIGTERM; returns a function restoring the old handlers."""
        def handler(signum: int, _frame: FrameType | None) -> None:
            self.set(signum)

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.reload.set()

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        old[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup)

        def restore() -> None:
            for signum, previous in old.items():
                signal.signal(signum, previous)

        return restore


class Runtime:
    """One run of the probes; see the module docstring."""

    def __init__(self, config: RuntimeConfig, consumer: Consumer, *, flush: Callable[[], None] | None = None,
                 prepare: Callable[[BpfObject], None] | None = None, metrics: Registry | None = None) -> None:
        self.config = config
        self.consumer = consumer
        self.flush = flush or (lambda: None)
        # Called after load and before attach (fill maps the programs read).
        self.prepare = prepare or (lambda obj: None)
        # Called between polls after SIGHUP (reload the policy).
        self.on_reload: Callable[[BpfObject], None] = lambda obj: log.info("SIGHUP: nothing to reload")
        # Called once the first generation is attached (config.hook_set: the one that came up).
        self.on_attached: Callable[[], None] = lambda: None
        self._soon: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.layout = layout()
        self.clock = BootClock()
        self.mounts = MountTable()
        self.users = UserNames()
        self.processes = ProcessCache(self.clock, max_entries=config.process_cache_max,
                                      file_doc=procfs_file_doc(self.users, self.mounts))
        self.decoder = Decoder(self.layout)
        self.interfaces = InterfaceTable()
        self.resolver = Resolver(ResolveEnv(self.clock, self.processes, self.users, self.mounts,
                                            ifname=self.interfaces.name))
        self.classifier: DnsClassifier | None = None
        self.stop = StopFlag()
        self.ready = threading.Event()   # set once attached and snapshotted
        self.consumer_errors = 0
        self.unread_at_stop = 0
        self.last_summary: RunSummary | None = None
        self._obj: BpfObject | None = None
        self._gen: _Generation | None = None
        self._stack = ExitStack()
        # after a handover: (parity of the new generation, what to do at its first record)
        self._switch: tuple[int, Callable[[], None]] | None = None
        self._gen_odd = self.layout.const("RS_HDR_GEN_ODD")
        self._batch: list[Record] = []
        self._batch_max = config.batch_max
        self._counting = False           # past the drain deadline: count records, do not decode
        self._draining = False
        self.metrics = metrics if metrics is not None else Registry()
        self._register_metrics()
        # events the kernel could not send: said live (log, alert stream), not only at exit
        self.losses = LossMonitor(self.clock, report=lambda record: None)

    # -- the record path -----------------------------------------------------
    def on_sample(self, data: Any, size: int) -> int | None:
        """The ring buffer's callback: decode only (pure), and stop the poll
        once the batch is full so the loop gets to run."""
        if self._counting:
            self.unread_at_stop += 1
            return None
        rec = self.decoder.decode(data, size)
        if rec is not None:
            self._batch.append(rec)
            if len(self._batch) >= self._batch_max:
                return -1
        return None

    def process_batch(self, budget: float = 0.05) -> int:
        """Resolve and consume the records decoded so far, for about
        ``budget`` seconds (the rest waits for the next turn of the loop, and
        the ring buffer holds what comes meanwhile), or until stop."""
        batch = self._batch
        # two ring buffers: in time order (each is; merged here), so that an
        # exec is applied between the events before and after it
        batch.sort(key=_timestamp)
        wanted = self.config.event_types
        resolve = self.resolver.resolve
        consumer = self.consumer
        deadline = time.monotonic() + budget
        done = 0
        for rec in batch:
            done += 1
            if self._switch is not None and bool(rec.hdr.flags & self._gen_odd) == bool(self._switch[0]):
                _, switch = self._switch
                self._switch = None
                switch()
            doc = resolve(rec)
            if doc is not None and (wanted is None or doc["type"] in wanted):
                try:
                    consumer(doc)
                except (ValueError, TypeError, KeyError, OSError, ArithmeticError) as exc:
                    # A bad document must not stop the agent; count and log the first ones.
                    self.consumer_errors += 1
                    if self.consumer_errors <= 10:
                        log.exception("consumer failed on a %s event: %s", doc.get("type"), exc)
            # (documents of unwanted types were resolved only to keep the process cache right)
            if not done & 63 and ((self.stop and not self._draining) or time.monotonic() > deadline):
                break
        del batch[:done]
        return done

    def _register_metrics(self) -> None:
        m = self.metrics

        def kernel() -> list[tuple[tuple[str, str], float]]:
            out: list[tuple[tuple[str, str], float]] = []
            for name, st in self.kernel_stats().items():
                out += [((name, k), v) for k, v in vars(st).items()]
            return out

        m.callback("kernel_events_total", "events of each type the kernel side saw, sent, lost (ring buffer "
                   "full) or dropped (approver, discarder)", "counter", ("type", "outcome"), kernel)
        m.callback("records_decoded_total", "records decoded from the ring buffer", "counter", (),
                   lambda: [((), self.decoder.decoded)])
        m.callback("decode_errors_total", "records that could not be decoded, by reason", "counter", ("reason",),
                   lambda: list(self.decoder.errors.items()))
        m.callback("resolve_errors_total", "records that could not be resolved, by reason", "counter",
                   ("reason",), lambda: list(self.resolver.errors.items()))
        m.callback("consumer_errors_total", "documents the consumer (rules, printer) failed on", "counter", (),
                   lambda: [((), self.consumer_errors)])
        m.callback("unread_at_stop_total", "records left in the ring buffer when the drain at stop timed out",
                   "counter", (), lambda: [((), self.unread_at_stop)])
        m.callback("loss_reports_total", "loss reports written (log line + rsagent_events_lost record)", "counter",
                   (), lambda: [((), self.losses.reports)])
        m.callback("process_cache_entries", "process images in the cache (live + recently exited)", "gauge", (),
                   lambda: [((), len(self.processes))])
        m.callback("process_cache_events_total", "process cache activity, by kind", "counter", ("kind",),
                   lambda: list(self.processes.stats.as_dict().items()))
        self.hook_set_failures = m.counter(
            "hook_set_failures_total", "hook sets that failed to load or attach (the next one was tried), "
            "by hook set and stage (load, attach)", ("hook_set", "stage"))
        m.callback("hook_set_info", "the hook set attached (1)", "gauge", ("hook_set",),
                   lambda: [((self.config.hook_set.name,), 1)])
        m.callback("dns_queries_total", "DNS queries the classifier parsed, skipped, or found malformed "
                   "(not sent), by outcome (kernel, agent/net/stats.py)", "counter", ("outcome",),
                   lambda: list(split_dns_stats(self.dns_stats())[0].items()))
        m.callback("dns_responses_total", "DNS responses the ingress classifier parsed (their A/AAAA answers "
                   "name connect.addr.hostname), skipped, or found malformed (not sent), by outcome",
                   "counter", ("outcome",), lambda: list(split_dns_stats(self.dns_stats())[1].items()))
        m.callback("dns_hostname_cache_entries", "addresses with a name learned from DNS responses", "gauge", (),
                   lambda: [((), len(self.resolver.env.hostnames))])
        m.callback("dns_hostname_cache_total", "hostname cache activity (agent/net/hostnames.py), by kind",
                   "counter", ("kind",), lambda: list(self.resolver.env.hostnames.stats.as_dict().items()))

    def sent_types(self) -> set[str] | None:
        """The event types whose records the kernel sends (None: every one)."""
        types = self.config.event_types
        if types is not None and types and self.config.track_processes:
            # The process cache needs every exec, fork and exit to know the
            # lineage of the processes behind the events asked for.
            types = types | (PROCESS_TYPES & self.config.hook_set.supported_event_types())
        return types

    def event_types(self) -> set[str] | None:
        """The event types whose programs load (None: every one): the sent
        ones, and those hooked only to keep the in-kernel filters right."""
        types = self.sent_types()
        if types is not None and self.config.hook_only_types:
            types = types | (self.config.hook_only_types & self.config.hook_set.supported_event_types())
        return types

    def programs(self) -> list[str]:
        progs = [p for p in self.config.hook_set.programs_for(self.event_types())
                 if p not in self.config.left_out_programs]
        if self.config.count_compat and progs:
            progs.append(COMPAT_COUNTER)
        return progs

    def _mask(self, wanted: set[str] | None) -> int:
        mask = 0
        for type_id, name in self.decoder.type_names.items():
            if wanted is None or name in wanted:
                mask |= 1 << type_id
        return mask

    def event_mask(self) -> int:
        """rs_event_mask: bit (1 << type id) per event type hooked; hooks
        shared by several types (the ctime tracepoints) test it."""
        return self._mask(self.event_types())

    def send_mask(self) -> int:
        """rs_send_mask: bit per event type whose records are sent."""
        return self._mask(self.sent_types())

    def kernel_stats(self) -> dict[str, TypeStats]:
        if self._obj is None or self._obj.closed:
            return {}
        return read_type_stats(self._obj.map("type_stats"), self.layout, self.decoder.type_names)

    def dns_stats(self) -> dict[str, int]:
        if self._obj is None or self._obj.closed or "dns_stats" not in self._obj.maps:
            return {}
        return read_dns_stats(self._obj.map("dns_stats"), self.layout)

    # Maps both generations of objects share during a handover: the records'
    # way out, the counters, and the handover's own state.
    SHARED_MAPS = ("events", "lifecycle_events", "type_stats", "handoff", "handoff_tasks", "dns_handoff")

    def _load(self, generation: int, reuse: BpfObject | None) -> tuple[BpfObject, list[str], list[BpfObject]]:
        """The object with every map, and the programs: in it, or (more
        than one CPU) in ``parts``, objects of the same file reusing all of
        its maps, each loading a share of the programs in its own thread."""
        cfg = self.config
        progs = self.programs()
        if not progs:
            raise ValueError("no event type to watch: the policy uses none this hook set supports")
        glob = {"rs_agent_tgid": os.getpid(), "rs_capture_env": int(cfg.capture_env),
                "rs_event_mask": self.event_mask(), "rs_send_mask": self.send_mask(),
                "rs_generation": generation, **cfg.hook_set.variables, **cfg.variables}
        t0 = time.monotonic()
        n = cfg.load_parts or min(len(os.sched_getaffinity(0)), 4)
        n = max(1, min(n, len(progs)))
        obj = load_object(
            cfg.probe_object, programs=progs if n == 1 else [], variables=glob,
            max_entries={"events": cfg.ringbuf_bytes, "lifecycle_events": cfg.lifecycle_ringbuf_bytes},
            reuse={name: reuse.map(name) for name in self.SHARED_MAPS} if reuse is not None else None,
        )
        parts: list[BpfObject] = []
        if n > 1:
            try:
                parts = _load_parts(cfg.probe_object, obj, _split(obj, progs, n), glob)
            except BaseException:
                obj.close()
                raise
        log.info("%d programs loaded (verified by the kernel) in %.2f s, in %d thread(s)", len(progs),
                 time.monotonic() - t0, n)
        return obj, progs, parts

    def _attach(self, gen: _Generation, stack: ExitStack) -> None:
        progs = gen.programs
        classifiers = [p for p in progs if gen.program(p).kind in CLASSIFIER_KINDS]
        links: list[Link] = []
        try:
            for p in progs:
                if p not in classifiers:
                    links.append(gen.program(p).attach())
        except BaseException:
            for link in links:
                link.close()
            raise
        gen.links = links
        if classifiers:
            from .net.classifier import DnsClassifier, Program  # pyroute2: only when needed

            gen.classifiers = [Program.named(name, gen.program(name).fd) for name in classifiers]
            if self.classifier is None:
                self.classifier = DnsClassifier(gen.classifiers, resolve_all(self.config.netns), self.interfaces)
                stack.enter_context(self.classifier)
                log.info(self.classifier.summary())
            else:
                # a handover: beside the old generation's filters, each
                # packet reported by one of them (rs_dns_other_generation)
                self.classifier.add(gen.classifiers)
                stack.callback(self.classifier.remove, gen.classifiers)
        log.info("attached %d programs (%s hook set, generation %d): %s", len(gen.links) + len(classifiers),
                 self.config.hook_set.name, gen.number, ", ".join(progs))

    def _load_attach(self, number: int, reuse: BpfObject | None, prepare: Callable[[BpfObject], None],
                     stack: ExitStack) -> _Generation:
        """Load ``config.hook_set``'s programs (generation ``number``), fill
        its maps (``prepare``), attach them. When the kernel refuses (a
        BpfError: verifier, missing function, attach), each fallback in
        turn, with a WARNING naming the set, the program and the kernel's
        error, counted in hook_set_failures_total; ``config`` becomes the
        set that came up. None left: HookSetsFailed, nothing left loaded."""
        failures: list[tuple[str, str, BpfError]] = []
        while True:
            cfg = self.config
            inner = ExitStack()
            stage = "load"
            try:
                obj, progs, parts = self._load(number, reuse)
                inner.enter_context(obj)
                for part in parts:
                    inner.enter_context(part)
                prepare(obj)
                gen = _Generation(number, obj, progs, parts)
                stage = "attach"
                try:
                    self._attach(gen, inner)
                except BaseException:
                    for link in gen.links:
                        link.close()
                    raise
            except BpfError as exc:
                inner.close()
                failures.append((cfg.hook_set.name, stage, exc))
                self.hook_set_failures.labels(cfg.hook_set.name, stage).inc()
                if not cfg.fallbacks:
                    raise HookSetsFailed(failures) from exc
                nxt = cfg.fallbacks[0]
                lost = sorted((cfg.event_types or set()) - (nxt.event_types or set())) if nxt.event_types else []
                log.warning("the %s hook set failed at %s (program %s): %s; falling back to the %s hook set%s",
                            cfg.hook_set.name, stage, failed_program(exc), exc, nxt.hook_set.name,
                            f" (it does not produce {', '.join(lost)})" if lost else "")
                self.config = replace(cfg, hook_set=nxt.hook_set, event_types=nxt.event_types,
                                      fallbacks=cfg.fallbacks[1:])
                continue
            except BaseException:
                inner.close()
                raise
            stack.push(inner.pop_all())
            return gen

    def run(self) -> RunSummary:
        cfg = self.config
        restore = self.stop.install() if cfg.handle_signals else (lambda: None)
        kernel: dict[str, TypeStats] = {}
        dns: dict[str, int] = {}
        try:
            with ExitStack() as stack:
                self._stack = stack

                def prepare(obj: BpfObject) -> None:
                    obj.map("handoff").update(0, self._handoff_value(1, 0))
                    self.prepare(obj)

                self._gen = self._load_attach(1, None, prepare, stack)
                obj = self._obj = self._gen.obj
                # Records written since the attach wait in the buffers.
                # Lifecycle first: each consume reads it before the file events.
                rb = RingBuffer(obj.map("lifecycle_events"), self.on_sample)
                rb.add(obj.map("events"), self.on_sample)
                stack.enter_context(rb)
                # the lifecycle ring alone, read again after the file events
                # (libbpf 1.1 has no ring_buffer__consume_ring)
                lifecycle = stack.enter_context(RingBuffer(obj.map("lifecycle_events"), self.on_sample))
                self.on_attached()
                n = self.processes.snapshot()
                log.info("process table snapshot: %d processes", n)
                if cfg.ready_file is not None:
                    write_replace(cfg.ready_file, f"{os.getpid()}\n")
                self.ready.set()
                self._loop(rb, lifecycle)
                # Stop producing, and drain meanwhile: detaching waits for the
                # kernel (RCU grace periods), draining for the consumer.
                t0 = time.monotonic()
                if self.classifier is not None:
                    self.classifier.close()  # netlink: our filters off every interface
                links = self._gen.links
                with ThreadPoolExecutor(max_workers=min(max(len(links), 1), 64),
                                        thread_name_prefix="detach") as pool:
                    detaching = [pool.submit(link.close) for link in links]
                    self._drain(rb, lambda: all(f.done() for f in detaching))
                    detached = time.monotonic()
                for f in detaching:
                    f.result()
                self.losses.check(self.kernel_stats())
                self.losses.flush()
                self.flush()
                log.info("stop: %d programs detached and the ring buffer drained in %.2f s",
                         len(links), max(detached, time.monotonic()) - t0)
                kernel = self.kernel_stats()
                dns = self.dns_stats()
                self._obj = None
        finally:
            restore()
        errors = dict(self.decoder.errors)
        errors.update((f"resolve: {k}", v) for k, v in self.resolver.errors.items())
        summary = RunSummary(self.decoder.decoded, errors, kernel, self.consumer_errors,
                             self.processes.stats.as_dict(), self.unread_at_stop, dns)
        self._report(summary)
        self.last_summary = summary
        return summary

    @property
    def generation(self) -> int:
        """The attached generation (1 at start, +1 per handover; 0 before)."""
        return self._gen.number if self._gen is not None else 0

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the loop, between two batches (from any thread)."""
        self._soon.put(fn)

    # Between "the old one marks" and the switch: longer than one hook
    # invocation, so that an invocation the old one took without a mark
    # (it read the state before the first write) is over before the switch.
    HANDOFF_SETTLE = 0.02

    def _handoff_value(self, gen: int, incoming: int) -> bytes:
        value = self.layout.ffi.new("struct rs_handoff *", {"gen": gen, "incoming": incoming})
        return bytes(self.layout.ffi.buffer(value))

    def handover(self, config: RuntimeConfig, prepare: Callable[[BpfObject], None],
                 on_switch: Callable[[], None]) -> None:
        """Replace the attached objects by ``config``'s (another policy's
        kernel filters, other event types: any shape) with no moment where
        nothing is attached and no event reported twice.

        The new object is loaded beside the old one, sharing its ring buffers
        and counters, prepared (``prepare``: its filter maps), attached, and
        only then given the events (one map write; ebpf/include/common.h
        rs_other_generation: each hook invocation is reported by exactly one
        of the two); then the old one is detached. ``on_switch`` runs in the
        loop when the first record of the new generation is consumed (the
        consumer's rules change there). On any failure before the switch
        the new object is unloaded, the old one keeps running, and the error
        propagates."""
        old = self._gen
        if old is None:
            raise RuntimeError("handover before the probes are attached")
        handoff = old.obj.map("handoff")
        number = old.number + 1
        previous = self.config
        self.config = config
        t0 = time.monotonic()
        stack = ExitStack()
        try:
            # attached, reporting nothing: the generation is still the old one's
            gen = self._load_attach(number, old.obj, prepare, stack)
            obj = gen.obj
        except BaseException:
            stack.close()
            self.config = previous
            raise
        # Only now, with every new program attached (each invocation runs
        # both), the old one marks what it takes; a mark it left while a new
        # program was not attached yet would hide that program's next event.
        handoff.update(0, self._handoff_value(old.number, number))
        if gen.classifiers:
            # no classifier's note of an earlier packet (rs_dns_other_generation)
            obj.map("dns_handoff").update(0, bytes(obj.map("dns_handoff").value_size))
        time.sleep(self.HANDOFF_SETTLE)
        handoff.update(0, self._handoff_value(number, number))           # the switch: one write
        attached = time.monotonic()
        self._switch = (number & 1, on_switch)
        with ThreadPoolExecutor(max_workers=min(max(len(old.links), 1), 64), thread_name_prefix="detach") as pool:
            for f in [pool.submit(link.close) for link in old.links]:
                f.result()
        if old.classifiers and self.classifier is not None:
            self.classifier.remove(old.classifiers)
        handoff.update(0, self._handoff_value(number, 0))
        self._stack.push(stack.pop_all())
        self._obj, self._gen = obj, gen
        # the first object owns the ring buffer manager: the later ones close
        # as soon as they are replaced (their links are gone already)
        if old.number != 1:
            old.close()
        log.warning("handover to generation %d: %d programs attached in %.2f s, then %d detached in %.2f s",
                    number, len(gen.links), attached - t0, len(old.links), time.monotonic() - attached)

    def _drain(self, rb: RingBuffer, detached: Callable[[], bool]) -> None:
        """At stop: everything in the buffer once nothing is attached, until
        the deadline; past it, the rest is counted (``unread_at_stop``)
        without being processed."""
        deadline = time.monotonic() + self.config.drain_timeout
        self._draining = True  # process_batch runs to its budget despite the stop flag
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not self._batch:
                done = detached()  # before consuming: what comes after it is the last
                rb.consume()
                if not self._batch:
                    if done:
                        return
                    time.sleep(0.005)
                    continue
            self.process_batch(min(left, 0.05))
        self.unread_at_stop = len(self._batch)
        self._batch.clear()
        self._counting = True
        while rb.consume() != 0:
            pass
        log.warning("stop: the drain deadline (%.1f s) left %d record(s) unprocessed",
                    self.config.drain_timeout, self.unread_at_stop)

    def _loop(self, rb: RingBuffer, lifecycle: RingBuffer) -> None:
        cfg = self.config
        heap.settle()  # young collections spaced past a batch of records (agent/heap.py)
        next_stats = time.monotonic() + cfg.stats_interval if cfg.stats_interval > 0 else None
        next_loss_check = time.monotonic() + 1.0
        while not self.stop:
            # lifecycle ring, file events, then the lifecycle ring again: an
            # exec/fork/exit written before a file event read here is in this
            # batch (sorted by time), even when it came after the first read.
            # Consumed after a timeout too: records come without a wake-up
            # until a batch is waiting (common.h, rs_wakeup_flags)
            rb.wait(cfg.poll_timeout_ms)
            rb.consume()
            lifecycle.consume()
            self.process_batch()
            self.flush()
            if time.monotonic() >= next_loss_check:
                self.losses.check(self.kernel_stats())
                next_loss_check = time.monotonic() + 1.0
            if self.stop.reload.is_set():
                self.stop.reload.clear()
                if self._obj is not None:
                    self.on_reload(self._obj)
            while not self._soon.empty():
                self._soon.get_nowait()()
            if next_stats is not None and time.monotonic() >= next_stats:
                log.info("kernel counters: %s", format_type_stats(self.kernel_stats()))
                log.info("pipeline: %s", self.pipeline_summary())
                if self.classifier is not None:
                    log.info("DNS parser: %s", format_dns_stats(self.dns_stats()))
                next_stats = time.monotonic() + cfg.stats_interval

    # metric -> label in the periodic pipeline line (those registered)
    _SUMMARY = (("records_decoded_total", "decoded"), ("decode_errors_total", "decode_errors"),
                ("resolve_errors_total", "resolve_errors"), ("events_evaluated_total", "evaluated"),
                ("alerts_total", "alerts"), ("alerts_throttled_total", "throttled"),
                ("discarders_total", "discarders"), ("process_cache_entries", "processes"))

    def pipeline_summary(self) -> str:
        """The user-space side of the counters, from the metrics registry."""
        parts = []
        for name, label in self._SUMMARY:
            if name not in self.metrics:
                continue
            if name == "discarders_total":
                pushed = sum(self.metrics.value(name, outcome=o) for o in ("pushed_leaf", "pushed_parent"))
                parts.append(f"discarders_pushed={int(pushed)}")
            else:
                parts.append(f"{label}={int(self.metrics.value(name))}")
        return " ".join(parts)

    def _report(self, s: RunSummary) -> None:
        log.info("decoded %d events", s.decoded)
        log.info("kernel counters: %s", format_type_stats(s.kernel))
        log.info("process cache: %d entries; %s", len(self.processes),
                 ", ".join(f"{k}={v}" for k, v in sorted(s.processes.items()) if v))
        if self.classifier is not None:
            log.info("%s; DNS parser: %s; hostname cache: %d entries, %s", self.classifier.summary(),
                     format_dns_stats(s.dns), len(self.resolver.env.hostnames),
                     " ".join(f"{k}={v}" for k, v in self.resolver.env.hostnames.stats.as_dict().items()))
        lost = sum(t.lost for t in s.kernel.values())
        if lost:
            log.warning("%d events were lost because the ring buffer was full (raise --ringbuf-mb)", lost)
        if s.unread_at_stop:
            log.warning("%d records were still in the ring buffer when the drain at stop timed out",
                        s.unread_at_stop)
        if s.decode_errors:
            log.warning("decode errors: %s", ", ".join(f"{k}={v}" for k, v in sorted(s.decode_errors.items())))
        if s.consumer_errors:
            log.warning("%d events could not be handled (see errors above)", s.consumer_errors)


def _split(obj: BpfObject, progs: list[str], n: int) -> list[list[str]]:
    """``progs`` in ``n`` shares of about equal size (instructions before
    verification: the verifier's work grows with them), largest first."""
    sizes = {p: obj.program(p).spec.insn_count for p in progs}
    shares: list[list[str]] = [[] for _ in range(n)]
    totals = [0] * n
    for p in sorted(progs, key=lambda p: -sizes[p]):
        i = totals.index(min(totals))
        shares[i].append(p)
        totals[i] += sizes[p]
    return [s for s in shares if s]


def _load_parts(path: Path, owner: BpfObject, shares: list[list[str]], variables: dict[str, int]) -> list[BpfObject]:
    """One object per share, each reusing every map of ``owner`` (its globals'
    sections included: the same values, one copy), loaded in its own thread;
    all or nothing."""
    maps = {name: m for name, m in owner.maps.items()}

    def load(share: list[str]) -> BpfObject:
        return load_object(path, programs=share, variables=variables, reuse=maps)

    with ThreadPoolExecutor(max_workers=len(shares), thread_name_prefix="load") as pool:
        futures = [pool.submit(load, share) for share in shares]
    loaded, failed = [], []
    for f in futures:
        exc = f.exception()
        if exc is None:
            loaded.append(f.result())
        else:
            failed.append(exc)
    if failed:
        for obj in loaded:
            obj.close()
        raise failed[0]
    return loaded


def _timestamp(rec: Record) -> int:
    return rec.hdr.timestamp


class LossMonitor:
    """Surfaces kernel-side loss while it happens: a WARNING line at most
    every ``interval`` seconds while events are being lost, naming the types
    and counts since the last one, and the same as a record in the alert
    stream (rule id ``rsagent_events_lost``), so a SIEM sees the gap. The
    counts themselves are in the metrics (kernel_events_total{outcome="lost"})."""

    RULE_ID = "rsagent_events_lost"

    def __init__(self, clock: BootClock, report: Callable[[dict[str, Any]], None], interval: float = 10.0) -> None:
        self.clock = clock
        self.report = report
        self.interval = interval
        self._seen: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._since: int | None = None       # epoch ns of the first loss not reported yet
        self._last_report = 0.0
        self.reports = 0

    def check(self, stats: dict[str, TypeStats]) -> None:
        now_ns = time.time_ns()
        for name, st in stats.items():
            delta = st.lost - self._seen.get(name, 0)
            self._seen[name] = st.lost
            if delta > 0:
                self._pending[name] = self._pending.get(name, 0) + delta
                if self._since is None:
                    self._since = now_ns
        if self._pending and time.monotonic() - self._last_report >= self.interval:
            self._emit(now_ns)

    def flush(self) -> None:
        """At stop: what was lost since the last report."""
        if self._pending:
            self._emit(time.time_ns())

    def _emit(self, now_ns: int) -> None:
        pending, self._pending = self._pending, {}
        since, self._since = self._since or now_ns, None
        self._last_report = time.monotonic()
        self.reports += 1
        window = (now_ns - since) / 1e9
        log.warning("%s lost in the last %.0f s (the ring buffer was full: the agent did not keep up; "
                    "raise --ringbuf-mb or narrow the policy)",
                    ", ".join(f"{t}: {n} events" for t, n in sorted(pending.items())), max(window, 1.0))
        total = sum(pending.values())
        self.report({
            "rule_id": self.RULE_ID,
            "rule_tags": {"severity": "high", "source": "rsagent"},
            "rule_description": "The kernel could not send events to the agent: detection has a gap",
            "timestamp": now_ns,
            "event": {"type": "lost_events", "timestamp": now_ns,
                      "lost_events": {"per_type": dict(sorted(pending.items())), "total": total,
                                      "since": since, "reason": "ring buffer full"}},
        })


class BackgroundRun:
    """Runtime.run() on a daemon thread, for tests, benchmarks and the kernel
    matrix: start() returns once every probe is attached (or raises what the
    run failed with); stop() stops it, waits, and re-raises an error the run
    ended with. Signals stay with the main thread (handle_signals=False)."""

    def __init__(self, runtime: Runtime, name: str = "runtime") -> None:
        self.runtime = runtime
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.summary = self.runtime.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.error = exc
        finally:
            self.runtime.ready.set()  # wake start() whatever happened

    def start(self, timeout: float = 60.0) -> BackgroundRun:
        self._thread.start()
        if not self.runtime.ready.wait(timeout):
            raise TimeoutError(f"the probes did not attach within {timeout:g} s")
        if self.error is not None:
            raise self.error
        return self

    def stop(self, timeout: float = 60.0) -> RunSummary | None:
        self.runtime.stop.set()
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.summary

    def __enter__(self) -> BackgroundRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
