"""The kernel matrix (`make test-kernels`): the agent's CO-RE objects on
other kernels, each booted for real under virtme-ng (QEMU, no KVM needed).

    python tests/kernels/matrix.py [--kernel 6.1] [--kernel 6.12] [--kernel host]

For each kernel of ``KERNELS``: find the newest Debian package of its
series (`apt-cache search`; Debian 12's from the machine's own sources,
another suite's from a sources list and apt state of its own under
build/kernels/apt-<suite>/, so the machine's lists stay untouched),
download and unpack it once into
build/kernels/ (gitignored), install its modules into /lib/modules/<ver>
(virtme-ng's guest loads 9p/virtio from there) and boot it with the host's
root filesystem over 9p, running tests/kernels/guest.py inside. ``host`` runs
the same script on the running kernel, without a VM. The guest writes a
JSON report into a shared directory; this script prints per kernel the hook
set chosen, the programs loaded and attached, verifier failures with the
log's last lines, and every check, and exits non-zero when a kernel fails
its expectations.

Needs root, qemu-system-x86, busybox and kmod (installed when missing),
and virtme-ng in the venv (`pip install -e '.[kernels]'`, done by make).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "kernels"
RESULTS = CACHE / "results"
VENV_BIN = Path(sys.executable).parent
SYSTEM_PACKAGES = {"qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static", "depmod": "kmod"}
BOOT_TIMEOUT = 900
# Event types a precise (fentry) kernel must report correctly; each has a
# check in workload.py.
PRECISE_TYPES = ("open", "exec", "chmod", "unlink", "rename")
# Process activity (issue 9, activity_workload.py): on every kernel and hook set.
ACTIVITY_TYPES = ("ptrace", "signal", "setuid", "setgid", "capset", "memfd_create", "splice", "prctl", "chdir",
                  "unshare", "setns")
# The kernel event types (kernel_types.py): everywhere, and the module types where modules exist.
KERNEL_TYPES = ("bpf", "mmap", "mprotect", "io_uring", "mount", "cgroup_write")
MODULE_TYPES = ("load_module", "unload_module")
# Every kernel must produce these too (the DNS classifier loads and parses there).
NETWORK_TYPES = ("connect", "bind", "accept", "dns")


@dataclass(frozen=True)
class Kernel:
    label: str
    package: str            # regular expression over Debian package names; the newest wins
    hook_set: str | None    # the hook set the probe must choose (None: whatever the host offers;
                            # "none": the agent cannot run there, the probe must say why)
    required: tuple[str, ...] = ()   # event types that must be produced and checked
    suite: str | None = None          # Debian suite of the package (None: the machine's sources)


KERNELS: dict[str, Kernel] = {
    k.label: k for k in (
        Kernel("6.1", r"^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$", "fentry",
               PRECISE_TYPES + ACTIVITY_TYPES + KERNEL_TYPES + MODULE_TYPES + NETWORK_TYPES),
        Kernel("6.12", r"^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$", "fentry",
               PRECISE_TYPES + ACTIVITY_TYPES + KERNEL_TYPES + MODULE_TYPES + NETWORK_TYPES),
        Kernel("host", "", None, ("open", "exec") + ACTIVITY_TYPES + KERNEL_TYPES + NETWORK_TYPES),
        # Debian 11: no bpf_loop (5.17) nor bpf_task_pt_regs (5.15), which every hook set needs
        Kernel("5.10", r"^linux-image-5\.10\.0-[0-9]+-amd64-unsigned$", "none", (), suite="bullseye"),
    )
}
# What a kernel whose probe picks no hook set must lack (judged from `rsagent probe`).
NONE_BECAUSE = ("helpers",)


class MatrixError(RuntimeError):
    """A step of the matrix could not be done (not a failed check)."""


def sh(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


def ensure_system_packages() -> None:
    missing = [pkg for tool, pkg in SYSTEM_PACKAGES.items()
               if not shutil.which(tool) and not Path("/usr/sbin", tool).exists()]
    if not missing:
        return
    print(f"matrix: installing {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sh(["apt-get", "update", "-qq"], env=env)
    proc = sh(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)
    if proc.returncode != 0:
        raise MatrixError(f"apt-get install {' '.join(missing)} failed: {proc.stderr.strip()[-500:]}")


def apt_options(suite: str | None) -> list[str]:
    """apt-get/apt-cache options for a suite: its own sources list and state
    directories under build/kernels/apt-<suite>/ (none: the machine's)."""
    if suite is None:
        return []
    base = CACHE / f"apt-{suite}"
    for d in ("lists/partial", "cache/archives/partial"):
        (base / d).mkdir(parents=True, exist_ok=True)
    sources = base / "sources.list"
    key = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
    sources.write_text(f"deb {key} http://deb.debian.org/debian {suite} main\n"
                       f"deb {key} http://deb.debian.org/debian-security {suite}-security main\n")
    return ["-o", f"Dir::Etc::sourcelist={sources}", "-o", "Dir::Etc::sourceparts=-",
            "-o", f"Dir::State::Lists={base / 'lists'}", "-o", f"Dir::Cache={base / 'cache'}"]


def newest_package(pattern: str, suite: str | None = None) -> str:
    """The newest Debian package whose name matches; apt lists updated once if none."""
    opts = apt_options(suite)
    for attempt in (0, 1):
        out = sh(["apt-cache", *opts, "search", "--names-only", pattern]).stdout
        names = [line.split(" - ")[0].strip() for line in out.splitlines() if line.strip()]
        names = [n for n in names if re.match(pattern, n)]
        if names:
            return sorted(names, key=_version_key)[-1]
        if attempt == 0:
            sh(["apt-get", *opts, "update", "-qq"])
    where = f"Debian {suite}" if suite else "apt sources (bookworm and bookworm-updates?)"
    raise MatrixError(f"no Debian package matches {pattern!r} in {where}")


def _version_key(name: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", name)]


def fetch(kernel: Kernel) -> tuple[str, Path]:
    """Download and unpack the kernel package (cached); install its modules.
    Returns the kernel release and the vmlinuz path."""
    package = newest_package(kernel.package, kernel.suite)
    release = package.removeprefix("linux-image-").removesuffix("-unsigned")
    tree = CACHE / release
    vmlinuz = tree / "boot" / f"vmlinuz-{release}"
    if not vmlinuz.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"matrix: downloading {package}", flush=True)
        proc = sh(["apt-get", *apt_options(kernel.suite), "download", package], cwd=CACHE)
        debs = sorted(CACHE.glob(f"{package}_*.deb"))
        if proc.returncode != 0 or not debs:
            raise MatrixError(f"apt-get download {package} failed: {proc.stderr.strip()[-500:]}")
        proc = sh(["dpkg-deb", "-x", str(debs[-1]), str(tree)])
        if proc.returncode != 0:
            raise MatrixError(f"dpkg-deb -x {debs[-1]} failed: {proc.stderr.strip()}")
        debs[-1].unlink()
    modules = Path("/lib/modules") / release
    if not (modules / "modules.dep").is_file():
        print(f"matrix: installing modules into {modules}", flush=True)
        modules.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(tree / "lib" / "modules" / release, modules, symlinks=True, dirs_exist_ok=True)
        depmod = shutil.which("depmod") or "/usr/sbin/depmod"
        proc = sh([depmod, release])
        if proc.returncode != 0:
            raise MatrixError(f"depmod {release} failed: {proc.stderr.strip()}")
    return release, vmlinuz


MATRIX_POLICY = CACHE / "matrix.policy"
# Types whose workload calls the default policy's own approvers drop (chown
# and mkdir: basenames of sensitive files; ptrace: attach/poke requests only;
# splice: the Dirty Pipe rule's basenames; unshare: CLONE_NEWUSER only;
# signal: SIGKILL/SIGTERM/SIGSTOP only; io_uring: setups only, no submission;
# open, rename, unlink, utimes: directory prefixes of system paths, the
# workload's files are in /tmp): a send-all rule turns their approvers off, so
# the hooks' documents are checked.
APPROVED_AWAY = frozenset({"chown", "io_uring", "mkdir", "open", "ptrace", "rename", "signal", "splice",
                           "unlink", "unshare", "utimes"})


def write_matrix_policy() -> Path:
    """A policy object holds only the programs of its own types (and the
    lifecycle's), so the matrix runs the default policy plus one rule per
    other kernel event type (and APPROVED_AWAY), none with an approver: those
    types are sent whole, as before policy objects were trimmed; the default
    policy's other approvers stay as `rsagent run` loads them."""
    sys.path.insert(0, str(ROOT))
    from codegen.cbackend import KERNEL_EVENT_TYPES, kernel_filters
    from codegen.eventtypes import LIFECYCLE_TYPES
    from codegen.fields import REGISTRY
    from codegen.policy import load_policies

    covered = set(kernel_filters(load_policies([ROOT / "rules"]).ruleset)) | LIFECYCLE_TYPES
    rules = []
    for t in sorted(set(KERNEL_EVENT_TYPES) - covered | APPROVED_AWAY):
        # retval is never approvable; dns (a classifier's event) has none, its id is not approvable
        # either; cgroup_write (recorded inside the write) has no retval, its pid approves nothing
        expression = next((f"{t}.{c}" for c in ("retval != 1234567", "id >= 0", "pid >= 0")
                           if REGISTRY.get(f"{t}.{c.split()[0]}")), None)
        if expression is None:
            raise MatrixError(f"write_matrix_policy: no field for a send-all rule on {t!r}; add one here")
        rules.append(f"  - id: matrix_sends_{t}\n    expression: {expression}\n")
    CACHE.mkdir(parents=True, exist_ok=True)
    MATRIX_POLICY.write_text("rules:\n" + "".join(rules))
    return MATRIX_POLICY


def compiled_dir() -> Path:
    """Build the objects (make build's step) and return the compiled directory
    of the default policy plus the matrix policy."""
    sys.path.insert(0, str(ROOT))
    from codegen.policy import load_policies

    from agent.build import build
    from agent.compiled import locate

    build(ROOT / "build", quiet=True)
    return locate(load_policies([ROOT / "rules", write_matrix_policy()])).directory


URING_HELPER = CACHE / "uring"


def build_uring_helper() -> Path:
    """The workload's io_uring helper, compiled here (a compiler runs ~1000x
    slower in the emulated guests)."""
    src = ROOT / "tests" / "kernel" / "c" / "uring.c"
    if not URING_HELPER.exists() or URING_HELPER.stat().st_mtime < src.stat().st_mtime:
        CACHE.mkdir(parents=True, exist_ok=True)
        proc = sh([shutil.which("gcc") or "gcc", "-O2", "-Wall", "-o", str(URING_HELPER), str(src)])
        if proc.returncode != 0:
            raise MatrixError(f"gcc {src} failed: {proc.stderr.strip()[-500:]}")
    return URING_HELPER


def guest_command(compiled: Path, out: Path) -> list[str]:
    return [str(VENV_BIN / "python"), str(ROOT / "tests" / "kernels" / "guest.py"),
            "--compiled", str(compiled), "--policy", str(MATRIX_POLICY), "--out", str(out),
            "--uring-helper", str(URING_HELPER)]


def boot(release: str, vmlinuz: Path, compiled: Path) -> tuple[Path, Path, float]:
    out = RESULTS / f"{release}.json"
    console = RESULTS / f"{release}.console.log"
    out.unlink(missing_ok=True)
    vng = VENV_BIN / "vng"
    if not vng.exists():
        raise MatrixError(f"{vng} missing: install the kernels extra (`.venv/bin/pip install -e '.[kernels]'`)")
    cmd = [str(vng), "-r", str(vmlinuz), "--disable-kvm", "--force-9p", "-m", "2G", "-v",
           f"--rwdir={RESULTS}", "-e", " ".join(guest_command(compiled, out))]
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    started = time.monotonic()
    with console.open("w") as log:
        try:
            subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                           timeout=BOOT_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise MatrixError(f"{release}: the guest did not finish within {BOOT_TIMEOUT} s "
                              f"(console: {console})") from None
    return out, console, time.monotonic() - started


def run_host(compiled: Path) -> tuple[Path, Path, float]:
    release = os.uname().release
    out = RESULTS / f"host-{release}.json"
    console = RESULTS / f"host-{release}.log"
    started = time.monotonic()
    with console.open("w") as log:
        subprocess.run(guest_command(compiled, out), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
    return out, console, time.monotonic() - started


# -- judging and printing -----------------------------------------------------

def judge(kernel: Kernel, report: dict[str, Any]) -> list[str]:
    """What is wrong with a kernel's report (empty: it passed)."""
    problems = list(report.get("errors", []))
    if kernel.hook_set and report.get("chosen") != kernel.hook_set:
        problems.append(f"hook set {report.get('chosen')!r} chosen, expected {kernel.hook_set!r}")
    runs = report.get("runs", [])
    if kernel.hook_set == "none":
        # the agent cannot run here: the probe must say so, for the known reason
        features = report.get("probe", {}).get("features", {})
        for name in NONE_BECAUSE:
            if features.get(name, {}).get("available", True):
                problems.append(f"expected {name} to be missing, the probe found it")
        if runs:
            problems.append(f"hook sets ran although none should be usable: {[r['hook_set'] for r in runs]}")
        return problems
    if not runs:
        problems.append("no hook set ran")
    for run in runs:
        name = run["hook_set"]
        if run["error"]:
            problems.append(f"{name}: {run['error']}")
        for c in run["checks"]:
            if not c["ok"]:
                problems.append(f"{name}: {c['name']}: {c['detail']}")
        if run["child_exit"] not in (0, None):
            problems.append(f"{name}: the workload exited {run['child_exit']}")
        if run.get("decode_errors"):
            problems.append(f"{name}: decode errors {run['decode_errors']}")
        if name == report.get("chosen") and not run["error"]:
            checked = {c["event_type"] for c in run["checks"]}
            for t in kernel.required:
                if t in run["left_out"]:
                    problems.append(f"{name}: {t} left out ({', '.join(run['left_out'][t])} missing)")
                elif t not in checked:
                    problems.append(f"{name}: {t} is not produced by this hook set")
    for c in report.get("shape_checks", []):
        if not c["ok"]:
            problems.append(f"{c['name']}: {c['detail']}")
    return problems


def cross_shapes(shapes: dict[str, dict[str, list[str]]]) -> list[str]:
    """Documents of one type must have one shape across hook sets, whatever
    the kernel (the fentry set's FIM documents on 6.1 against the tracepoint
    set's on the host, ...)."""
    problems = []
    runs = sorted(shapes)
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            if a.split("/")[1] == b.split("/")[1]:
                continue
            for event_type in sorted(set(shapes[a]) & set(shapes[b])):
                diff = sorted(set(shapes[a][event_type]) ^ set(shapes[b][event_type]))
                if diff:
                    problems.append(f"{event_type} documents differ between {a} and {b}: {diff}")
    return problems


def describe(label: str, report: dict[str, Any], seconds: float, problems: list[str]) -> str:
    lines = [f"== {label}: kernel {report.get('kernel', '?')} — {'PASS' if not problems else 'FAIL'} ({seconds:.0f} s)"]
    features = report.get("probe", {}).get("features", {})
    have = [n for n, f in features.items() if f.get("available")]
    lacks = [n for n, f in features.items() if not f.get("available")]
    lines.append(f"   features: {' '.join(have)}" + (f"; missing: {' '.join(lacks)}" if lacks else ""))
    lines.append(f"   hook set chosen: {report.get('chosen')}"
                 + (f" ({report.get('probe', {}).get('hook_set_reason', '')})" if report.get("chosen") == "none" else ""))
    for run in report.get("runs", []):
        lines.append(f"   [{run['hook_set']}] {run['attached']}/{len(run['programs'])} programs loaded and attached "
                     f"in {run['load_seconds']} s; {run['docs']} documents"
                     + (f"; left out: {run['left_out']}" if run["left_out"] else ""))
        if run["error"]:
            lines.append(f"      load failed: {run['error']}")
        for f in run["failures"]:
            lines.append(f"      program {f['program']}: {f['error']}")
            lines += [f"         | {line}" for line in f["log_tail"]]
        for c in run["checks"]:
            lines.append(f"      {'ok  ' if c['ok'] else 'FAIL'} {c['event_type']:<7} {c['name']}"
                         + ("" if c["ok"] else f" — {c['detail']}"))
    for c in report.get("shape_checks", []):
        lines.append(f"   {'ok  ' if c['ok'] else 'FAIL'} {c['name']}" + ("" if c["ok"] else f" — {c['detail']}"))
    for p in problems:
        lines.append(f"   problem: {p}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", action="append", choices=sorted(KERNELS), default=None,
                    help="only these kernels (default: all)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("matrix: must run as root (installs modules, boots kernels, loads BPF)", file=sys.stderr)
        return 1
    labels = args.kernel or list(KERNELS)
    started = time.monotonic()
    failed = []
    shapes: dict[str, dict[str, list[str]]] = {}
    try:
        ensure_system_packages()
        RESULTS.mkdir(parents=True, exist_ok=True)
        compiled = compiled_dir()
        build_uring_helper()
        for label in labels:
            kernel = KERNELS[label]
            try:
                if label == "host":
                    out, console, secs = run_host(compiled)
                else:
                    release, vmlinuz = fetch(kernel)
                    print(f"matrix: booting {release}", flush=True)
                    out, console, secs = boot(release, vmlinuz, compiled)
                if not out.is_file():
                    raise MatrixError(f"{label}: no report written; see {console}")
                report = json.loads(out.read_text())
            except MatrixError as exc:
                print(f"== {label}: FAIL — {exc}", flush=True)
                failed.append(label)
                continue
            for run in report.get("runs", []):
                if not run["error"]:
                    shapes[f"{label}/{run['hook_set']}"] = run["shapes"]
            problems = judge(kernel, report)
            print(describe(label, report, secs, problems), flush=True)
            if problems:
                failed.append(label)
    except MatrixError as exc:
        print(f"matrix: error: {exc}", file=sys.stderr)
        return 1
    for problem in cross_shapes(shapes):
        print(f"== shapes: FAIL — {problem}", flush=True)
        failed.append("shapes")
    total = time.monotonic() - started
    print(f"matrix: {len(labels) - len(failed)} passed, {len(failed)} failed in {total:.0f} s"
          + (f" ({', '.join(failed)})" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
