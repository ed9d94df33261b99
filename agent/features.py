"""What this kernel can do, learned by trying (`rsagent probe`).

Each hook kind is tested by loading *and attaching* a tiny program from
build/ebpf/features.bpf.o, one at a time; nothing is assumed from the kernel
version. The agent picks its hook set from the result.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .libbpf.probe import ProbeResult, libbpf_version_string, try_load

log = logging.getLogger(__name__)

BTF_PATH = Path("/sys/kernel/btf/vmlinux")
LOCKDOWN_PATH = Path("/sys/kernel/security/lockdown")


@dataclass(frozen=True)
class HookKind:
    name: str
    program: str
    description: str
    min_kernel: str   # where upstream introduced it, for the reader
    maps: tuple[str, ...] = ()   # the maps its program uses (the only ones created for its probe)
    attach: bool = True  # False: loading it is the test


HOOK_KINDS: tuple[HookKind, ...] = (
    HookKind("tracepoint", "feat_tracepoint", "syscall tracepoints (tracepoint/syscalls/*)", "4.7"),
    HookKind("tp_btf", "feat_tp_btf", "BTF-typed raw tracepoints (tp_btf/*)", "5.5"),
    HookKind("raw_tp", "feat_raw_tp", "raw tracepoints (raw_tp/*)", "4.17"),
    HookKind("ctime_tp", "feat_ctime_tp", "inode ctime tracepoints (tp_btf/ctime_ns_xchg)", "6.13"),
    HookKind("kprobe", "feat_kprobe", "kprobes (kprobe/vfs_open)", "4.1"),
    HookKind("fentry", "feat_fentry", "fentry/fexit trampolines (fentry/vfs_open)", "5.5"),
    HookKind("lsm", "feat_lsm", "BPF LSM (lsm/file_open)", "5.7"),
)

EXTRA_CHECKS: tuple[HookKind, ...] = (
    HookKind("ringbuf", "feat_ringbuf_prog", "BPF ring buffer", "5.8", ("feat_ringbuf",)),
    HookKind("helpers", "feat_helpers", "bpf_loop and bpf_task_pt_regs helpers", "5.17"),
    HookKind("task_storage", "feat_task_storage_prog", "task local storage from tracing programs", "5.11",
             ("feat_task_storage",)),
    HookKind("find_vma", "feat_find_vma", "bpf_find_vma from a syscall tracepoint (mprotect's mapping)", "5.17"),
    HookKind("security_path", "feat_security_path",
             "fentry on the LSM path hooks (fentry/security_path_unlink; CONFIG_SECURITY_PATH)", "5.5"),
    HookKind("kprobe_security_path", "feat_kprobe_security_path",
             "kprobes on the LSM path hooks (kprobe/security_path_unlink; CONFIG_SECURITY_PATH)", "4.1"),
    # loaded only: a classifier is attached to an interface (agent/net), not by section
    HookKind("tc", "feat_tc", "tc classifiers (sched_cls) reading the current task and the packet's socket",
             "5.15", attach=False),
)


@dataclass
class Feature:
    name: str
    description: str
    available: bool
    detail: str
    min_kernel: str


@dataclass
class Coverage:
    """What a hook set produces on this kernel."""

    missing: list[str] = field(default_factory=list)           # its own requirements this kernel lacks
    types: list[str] = field(default_factory=list)             # event types it produces (none when missing)
    left_out: dict[str, list[str]] = field(default_factory=dict)  # event type -> the features it lacks


@dataclass
class FeatureReport:
    kernel: str
    arch: str
    libbpf: str
    btf: bool
    lockdown: str
    features: dict[str, Feature] = field(default_factory=dict)
    hook_set: str = ""
    hook_set_reason: str = ""
    coverage: dict[str, Coverage] = field(default_factory=dict)   # hook set -> what it produces here

    def has(self, name: str) -> bool:
        f = self.features.get(name)
        return bool(f and f.available)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _describe(result: ProbeResult) -> str:
    if result.ok:
        return "loaded and attached" if result.stage == "attach" else "loaded"
    return f"{result.stage} failed: {os.strerror(result.errno) if result.errno else result.message}"


def lockdown() -> str:
    """The kernel's lockdown mode (none, integrity, confidentiality)."""
    try:
        text = LOCKDOWN_PATH.read_text()
    except OSError:
        return "unknown (securityfs not mounted)"
    for word in text.split():
        if word.startswith("["):
            return word.strip("[]")
    return text.strip()


def probe(features_object: Path) -> FeatureReport:
    report = FeatureReport(
        kernel=platform.release(),
        arch=platform.machine(),
        libbpf=libbpf_version_string(),
        btf=BTF_PATH.is_file(),
        lockdown=lockdown(),
    )
    reprobe(report, features_object, [k.name for k in HOOK_KINDS + EXTRA_CHECKS])
    return report


def reprobe(report: FeatureReport, features_object: Path, names: list[str]) -> None:
    """Probe the features ``names`` again into ``report``, then choose its
    hook set and coverage again."""
    from .hooksets import choose_hook_set

    for kind in HOOK_KINDS + EXTRA_CHECKS:
        if kind.name not in names:
            continue
        result = try_load(features_object, kind.program, attach=kind.attach, maps=kind.maps)
        log.debug("probe %s: %s", kind.name, result)
        report.features[kind.name] = Feature(
            kind.name, kind.description, result.ok, _describe(result), kind.min_kernel
        )
    choice = choose_hook_set(report)
    report.hook_set = choice.name
    report.hook_set_reason = choice.reason
    report.coverage = coverage(report)


def coverage(report: FeatureReport) -> dict[str, Coverage]:
    """The event types each hook set produces on this kernel."""
    from .hooksets import HOOK_SETS

    out: dict[str, Coverage] = {}
    for hs in HOOK_SETS:
        missing = hs.missing(report)
        if missing:
            out[hs.name] = Coverage(missing=missing)
            continue
        usable = hs.restricted(report)
        out[hs.name] = Coverage(types=sorted(usable.supported_event_types()),
                                left_out={t: list(r) for t, r in sorted(usable.left_out.items())})
    return out


def format_report(report: FeatureReport) -> str:
    lines = [
        f"kernel        {report.kernel} ({report.arch})",
        f"libbpf        {report.libbpf}",
        f"BTF           {'yes' if report.btf else 'no (/sys/kernel/btf/vmlinux missing: CO-RE objects cannot load)'}",
        f"lockdown      {report.lockdown}",
        "",
        "hook kinds and features (each loaded, and attached unless it says only 'loaded', for real):",
    ]
    for f in report.features.values():
        mark = "yes" if f.available else "no "
        lines.append(f"  {mark}  {f.name:<13} {f.description} [{f.detail}; upstream since {f.min_kernel}]")
    lines += ["", "event types each hook set produces on this kernel:"]
    for name, cov in report.coverage.items():
        if cov.missing:
            lines.append(f"  {name:<11} unusable: needs {', '.join(cov.missing)}")
            continue
        left = "".join(f"; left out: {t} (needs {', '.join(r)})" for t, r in cov.left_out.items())
        lines.append(f"  {name:<11} {len(cov.types)} types: {', '.join(cov.types)}{left}")
    lines += ["", f"hook set      {report.hook_set}: {report.hook_set_reason}"]
    return "\n".join(lines)
