"""Hook sets: which BPF programs implement each event type on a kernel.

A hook set maps every event type to the programs (in build/ebpf/probe.bpf.o)
that produce it, derived from the event-type table (codegen/eventtypes.py).
The agent chooses one from the feature probe, in the order
of ``HOOK_SETS`` (the first whose requirements the kernel meets wins),
or the operator names them (``--hook-set fentry,tracepoint``). Whichever
way, the sets are *tried* in that order: when one fails to load or attach
(the verifier rejects a program, a kernel function is missing, an attach
fails), the next one is loaded instead (agent/runtime.py; logged and
counted in ``hook_set_failures_total``):

- ``fentry`` (precise): fentry programs on the kernel functions that hand
  over the exact objects of a call (``vfs_open``'s struct path, ...), paired
  with the syscall-exit programs of the ``tracepoint`` set, which read the
  return value and emit the record. Needs fentry/fexit trampolines (kernels
  with BTF and CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS: standard
  distribution kernels; not the development kernel).
- ``kprobe``: the same captures as kprobes, for kernels with kprobes but
  without fentry trampolines (the same bodies, ebpf/hooks/precise.h).
- ``tracepoint``: syscall-exit tracepoints and BTF tracepoints only. Works on
  kernels without kprobes/fentry/LSM (the development kernel). Arguments come
  from the task's saved user registers at syscall exit; objects from the
  returned fd.

All produce the same records (ebpf/include/events.h) through the same
syscall-exit programs, decoded by the same code: an event document has the
same shape whichever set produced it.

An event type may need more than its set's ``requires`` (``type_requires``,
e.g. a tracepoint that only newer kernels have). On a kernel that lacks it
the chosen set is *restricted*: the type is left out (and said so), the
rest of the set is used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from codegen.eventtypes import CAPTURES, PRECISE_FEATURES, PRODUCED, EventType, syscalls_of

if TYPE_CHECKING:
    from .features import FeatureReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HookSet:
    name: str
    requires: tuple[str, ...]          # feature names that must be available
    programs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""
    # event type -> features it needs besides `requires`
    type_requires: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # event type -> the tracepoints ("group/name") it needs, each need a tuple of
    # alternatives (the table's EventType.tracepoint_needs)
    type_tracepoints: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    # program -> its tracepoint ("group/name"): left out where the kernel lacks it
    optional: dict[str, str] = field(default_factory=dict)
    # const volatile globals of the object the loader sets for this set
    variables: dict[str, int] = field(default_factory=dict)
    # filled by restricted(): event type -> the features this kernel lacks for it
    left_out: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # filled by restricted(): optional programs whose tracepoint this kernel lacks
    absent: tuple[str, ...] = ()

    def programs_for(self, event_types: set[str] | None = None) -> list[str]:
        names: list[str] = []
        for event_type, progs in sorted(self.programs.items()):
            if event_types is None or event_type in event_types:
                names += [p for p in progs if p not in names]
        return names

    def supported_event_types(self) -> set[str]:
        return set(self.programs)

    def missing(self, report: FeatureReport) -> list[str]:
        """The set's own requirements this kernel does not meet."""
        return [r for r in self.requires if not report.has(r)]

    def restricted(self, report: FeatureReport,
                   tracepoint_exists: Callable[[str], bool] | None = None) -> HookSet:
        """This set without the event types whose extra requirements the
        kernel does not meet (``left_out`` says which and why), and without
        the optional programs whose tracepoint it lacks (``absent``)."""
        exists = tracepoint_exists or tracefs_has
        absent = tuple(sorted(p for p, tp in self.optional.items() if not exists(tp)))
        keep: dict[str, tuple[str, ...]] = {}
        left_out: dict[str, tuple[str, ...]] = {}
        for event_type, progs in self.programs.items():
            lacking = tuple(r for r in self.type_requires.get(event_type, ()) if not report.has(r))
            lacking += tuple(f"tracepoint {' or '.join(need)}" for need in self.type_tracepoints.get(event_type, ())
                             if not any(exists(tp) for tp in need))
            if lacking:
                left_out[event_type] = lacking
            else:
                keep[event_type] = tuple(p for p in progs if p not in absent)
        return replace(self, programs=keep, left_out=left_out, absent=absent)


TRACEFS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))


def tracefs_has(tracepoint: str) -> bool:
    """Does the kernel have tracepoint "group/name"? (tracefs; when it is not
    mounted, assume yes: the attach then says what is wrong.)"""
    roots = [r for r in TRACEFS if (r / "events").is_dir()]
    if not roots:
        return True
    return any((r / "events" / tracepoint).is_dir() for r in roots)


def _exits(t: EventType) -> tuple[str, ...]:
    """The sys_exit programs of a type's syscalls (generated, ebpf/hooks/exits.h)."""
    return tuple(s.program for s in syscalls_of(t))


def _tracepoints(types: tuple[EventType, ...]) -> dict[str, tuple[tuple[str, ...], ...]]:
    return {t.name: t.tracepoint_needs for t in types if t.tracepoint_needs}


def _optional(types: tuple[EventType, ...]) -> dict[str, str]:
    """Programs left out where their tracepoint does not exist: of syscalls younger
    than the oldest kernel supported (fchmodat2: 6.6, *xattrat: 6.13), and of
    tracepoints renamed across kernels (the table's program_tracepoints)."""
    out = {s.program: s.exit_tracepoint for t in types for s in t.syscalls if s.since}
    out.update(p for t in types for p in t.program_tracepoints)
    return out


def _tracepoint_set() -> HookSet:
    programs: dict[str, tuple[str, ...]] = {}
    needs: dict[str, tuple[str, ...]] = {}
    for t in PRODUCED:
        progs = _exits(t) + t.programs
        if t.capture is not None:
            # Path-based calls get their objects from the capture programs,
            # which capture only for the types in the loader's rs_event_mask,
            # so a type's capture never outlives its exit.
            capture_progs, capture_needs = CAPTURES[t.capture]
            progs += capture_progs
            needs[t.name] = capture_needs
        if t.requires:
            needs[t.name] = needs.get(t.name, ()) + t.requires
        programs[t.name] = progs
    return HookSet(
        name="tracepoint",
        requires=("tracepoint", "tp_btf", "ringbuf", "helpers"),
        description="syscall-exit tracepoints + BTF tracepoints (no kprobes/fentry/LSM needed)",
        programs=programs, type_requires=needs, type_tracepoints=_tracepoints(PRODUCED),
        optional=_optional(PRODUCED))


def _precise(flavor: str, requires: tuple[str, ...], description: str) -> HookSet:
    """The precise captures of each type (ebpf/hooks/precise.h, one body, a
    fentry and a kprobe flavor) + the tracepoint set's exit programs."""
    programs: dict[str, tuple[str, ...]] = {}
    needs: dict[str, tuple[str, ...]] = {}
    for t in PRODUCED:
        programs[t.name] = tuple(f"rs_{flavor}_{c}" for c in t.precise) + _exits(t) + t.programs
        if t.precise_requires:
            needs[t.name] = tuple(PRECISE_FEATURES[r][flavor] for r in t.precise_requires)
        if t.requires:
            needs[t.name] = needs.get(t.name, ()) + t.requires
    return HookSet(
        name=flavor, requires=requires, description=description,
        programs=programs, type_requires=needs, type_tracepoints=_tracepoints(PRODUCED),
        optional=_optional(PRODUCED),
        # the exit programs read what the captures kept (ebpf/include/call_ctx.h, fim_precise.h)
        variables={"rs_precise_hooks": 1})


TRACEPOINT = _tracepoint_set()
FENTRY = _precise("fentry", ("fentry", "tracepoint", "tp_btf", "ringbuf", "helpers", "task_storage"),
                  "fentry on the VFS/LSM functions that hold the call's objects + syscall-exit tracepoints")
KPROBE = _precise("kprobe", ("kprobe", "tracepoint", "tp_btf", "ringbuf", "helpers", "task_storage"),
                  "kprobes on the VFS/LSM functions that hold the call's objects + syscall-exit tracepoints "
                  "(fentry unavailable)")

# In order of preference: the first whose requirements the kernel meets wins.
HOOK_SETS: tuple[HookSet, ...] = (FENTRY, KPROBE, TRACEPOINT)


@dataclass(frozen=True)
class Choice:
    name: str
    reason: str
    hook_set: HookSet | None
    # tried in order when the one before fails to load or attach
    fallbacks: tuple[HookSet, ...] = ()


def _left_out_note(hs: HookSet) -> str:
    if not hs.left_out:
        return ""
    parts = [f"{t} (needs {', '.join(req)})" for t, req in sorted(hs.left_out.items())]
    return "; left out on this kernel: " + ", ".join(parts)


def choose_hook_set(report: FeatureReport, only: str | None = None) -> Choice:
    """The preferred hook set this kernel supports, restricted to it.

    ``only`` names one set to consider (tests and the kernel matrix run a
    less preferred set on purpose)."""
    missing_all = []
    for hs in HOOK_SETS:
        if only is not None and hs.name != only:
            continue
        missing = hs.missing(report)
        if not missing:
            chosen = hs.restricted(report)
            precise = [k for k in ("fentry", "lsm", "kprobe") if report.has(k)]
            note = "" if precise else "; kprobe, fentry and lsm are unavailable on this kernel"
            return Choice(hs.name, hs.description + note + _left_out_note(chosen), chosen)
        missing_all.append(f"{hs.name} needs {', '.join(missing)}")
    if only is not None and not missing_all:
        raise KeyError(f"unknown hook set {only!r} (known: {', '.join(h.name for h in HOOK_SETS)})")
    return Choice("none", "no usable hook set: " + "; ".join(missing_all), None)


def by_name(name: str) -> HookSet:
    for hs in HOOK_SETS:
        if hs.name == name:
            return hs
    raise KeyError(f"unknown hook set {name!r} (known: {', '.join(h.name for h in HOOK_SETS)})")


def parse_hook_sets(text: str) -> tuple[str, ...]:
    """``--hook-set fentry,tracepoint``: known names, each once, in order."""
    names = tuple(n.strip() for n in text.split(","))
    known = [h.name for h in HOOK_SETS]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"unknown hook set {', '.join(repr(n) for n in unknown) or repr(text)} "
                         f"(known: {', '.join(known)}; several: comma-separated, tried in order)")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"hook set {', '.join(twice)} named twice in {text!r}")
    return names


def choose_hook_sets(report: FeatureReport, names: Sequence[str] | None = None) -> Choice:
    """The hook sets to try, in order: ``hook_set`` first, then ``fallbacks``.

    By default every set the feature probe finds usable, in ``HOOK_SETS``
    order. ``names`` (``--hook-set``): those sets in that order, each tried
    even when the probe found its requirements missing (said once at
    WARNING): the kernel's own load or attach error then says why."""
    if names is None:
        first = choose_hook_set(report)
        if first.hook_set is None:
            return first
        rest = [hs.restricted(report) for hs in HOOK_SETS if not hs.missing(report) and hs.name != first.name]
        return replace(first, fallbacks=tuple(rest))
    sets = []
    for name in names:
        hs = by_name(name)
        missing = hs.missing(report)
        if missing:
            log.warning("--hook-set %s: the feature probe found no %s on this kernel (`rsagent probe`); "
                        "trying it as asked", name, ", ".join(missing))
        sets.append(hs.restricted(report))
    head = sets[0]
    then = f"; then, if it fails to load or attach: {', '.join(h.name for h in sets[1:])}" if sets[1:] else ""
    return Choice(head.name, f"{head.description} (--hook-set {','.join(names)}{then})" + _left_out_note(head),
                  head, tuple(sets[1:]))
