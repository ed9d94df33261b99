#!/usr/bin/env python3
"""Kernel constants from the kernel's own headers: `make kheaders`.

Downloads Debian's `linux-libc-dev` (the kernel's UAPI headers) and
`linux-headers-<version>-common` (its internal headers) from a Debian suite
(default: unstable, the newest kernel Debian ships), and writes
vmlinux/<arch>/kconsts.json: every x86-64 and i386 (compat) syscall number
from asm/unistd_64.h and asm/unistd_32.h, and the other constants the
event-type table names (codegen/eventtypes.py, KERNEL_CONSTANTS), each read
from the header the table says.

The JSON is committed, like vmlinux.h; codegen/tablegen.py turns it into the
generated block of ebpf/include/events.h. Nothing is copied by hand.

    python3 ci/kheaders.py [--suite unstable] [--arch x86_64] [--no-fetch]

``--no-fetch`` reads the tree already unpacked under build/kheaders/ (the
packages named in the committed JSON) instead of downloading: new constants
from the same kernel version, without moving every other value.

apt runs with its own sources list and state directories under
build/kheaders/, so the machine's own lists stay untouched.
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codegen.eventtypes import KERNEL_CONSTANTS  # noqa: E402
from codegen.kconstants import KERNEL_FAMILIES, KernelFamily  # noqa: E402

WORK = ROOT / "build" / "kheaders"
_DEFINE = re.compile(r"^#define\s+(\w+)\s+(.+?)\s*(?:/\*.*)?$")
# any define, `# define` (nested, a sub-value in some headers) included
_ANY_DEFINE = re.compile(r"^#(\s*)define\s+(\w+)\s+(.+?)\s*(?://.*)?$")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_LINE_COMMENT = re.compile(r"//[^\n]*")
_ENUM = re.compile(r"\benum\s+(\w*)\s*\{(.*?)\}\s*;", re.S)
_HELPER = re.compile(r"\bFN\((\w+),\s*(\d+),")
_VMA_BIT = re.compile(r"\bDECLARE_VMA_BIT\((\w+),\s*(\d+)\)")
_BINOPS = {ast.BitOr: operator.or_, ast.LShift: operator.lshift, ast.Add: operator.add,
           ast.BitAnd: operator.and_, ast.Sub: operator.sub}


class KheadersError(RuntimeError):
    pass


def _apt(suite: str, *args: str, cwd: Path | None = None) -> str:
    sources = WORK / "sources.list"
    opts = [f"-o Dir::Etc::sourcelist={sources}", "-o Dir::Etc::sourceparts=-",
            f"-o Dir::State::Lists={WORK / 'lists'}", f"-o Dir::Cache={WORK / 'cache'}"]
    cmd = ["apt-get" if args[0] in ("update", "download") else "apt-cache"]
    cmd += [o for opt in opts for o in opt.split(" ", 1)] + list(args)
    proc = subprocess.run(cmd, cwd=cwd, text=True, capture_output=True)
    if proc.returncode:
        raise KheadersError(f"{' '.join(cmd[:1] + list(args))} failed: {proc.stderr.strip()[-400:]}")
    return proc.stdout


def fetch(suite: str) -> tuple[Path, dict[str, str]]:
    for d in ("lists/partial", "cache/archives/partial", "pkgs", "tree"):
        (WORK / d).mkdir(parents=True, exist_ok=True)
    (WORK / "sources.list").write_text(
        f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian {suite} main\n")
    _apt(suite, "update", "-qq")
    version = re.search(r"Candidate: (\S+)", _apt(suite, "policy", "linux-libc-dev"))
    if not version:
        raise KheadersError(f"linux-libc-dev not found in {suite}")
    common = sorted(re.findall(r"^(linux-headers-\S+-common) ", _apt(suite, "search", "--names-only",
                                                                    r"^linux-headers-.*-common$"), re.M))
    if not common:
        raise KheadersError(f"no linux-headers-*-common in {suite}")
    packages = {"linux-libc-dev": version.group(1), common[-1]: ""}
    for pkg in packages:
        _apt(suite, "download", pkg, cwd=WORK / "pkgs")
    tree = WORK / "tree"
    for deb in sorted((WORK / "pkgs").glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    packages[common[-1]] = common[-1].removeprefix("linux-headers-").removesuffix("-common")
    return tree, packages


def _value(expr: str, names: dict[str, int] | None = None) -> int:
    """A C integer constant expression of literals (1 << 20, 0x10 | 0x20...),
    and of ``names`` (enumerators and macros defined before it)."""
    text = re.sub(r"(?<=[0-9a-fA-F])[uUlL]+\b", "", expr.strip())
    text = re.sub(r"\b0([0-7]+)\b", r"0o\1", text)
    if names is not None:
        text = re.sub(r"\(\s*(?:unsigned\s+)?(?:int|long|__u32|__u64)\s*\)", "", text)  # casts

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and names is not None and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise KheadersError(f"not a literal integer expression: {expr!r}")

    return ev(ast.parse(text, mode="eval").body)


def defines(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        m = _DEFINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def all_defines(path: Path) -> dict[str, tuple[str, bool]]:
    """name -> (value text, written at the top level as `#define`)."""
    out = {}
    # comments out first (a `#define` inside a multi-line comment is no
    # definition: x86's SIGLOST), keeping the line structure
    text = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text(errors="replace"))
    for line in text.splitlines():
        m = _ANY_DEFINE.match(line.rstrip())
        if m:
            out[m.group(2)] = (m.group(3), m.group(1) == "")
    return out


def enums(text: str, names: dict[str, int]) -> dict[str, dict[str, int]]:
    """Every enum of a header's text: name -> {enumerator: value}. Values
    follow C (the previous one + 1 unless given); expressions may name
    earlier enumerators and ``names``, which gains every enumerator. An
    enumerator whose value cannot be computed ends its enum."""
    out: dict[str, dict[str, int]] = {}
    text = _LINE_COMMENT.sub("", _COMMENT.sub("", text))
    for i, m in enumerate(_ENUM.finditer(text)):
        members: dict[str, int] = {}
        nxt = 0
        for item in m.group(2).split(","):
            name, _, expr = (part.strip() for part in item.partition("="))
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                continue
            try:
                nxt = _value(expr, names) if expr else nxt
            except (KheadersError, SyntaxError):
                break
            members[name] = names[name] = nxt
            nxt += 1
        out[m.group(1) or f"<anonymous {i}>"] = members
    return out


def _sentinel(name: str) -> bool:
    return name.startswith("_") or "MAX" in name or name.endswith("_LAST")


def _special_family(texts: list[str], defs: dict[str, tuple[str, bool]], fam: KernelFamily) -> dict[str, int]:
    """The members of an enum, helper-list or VMA-flag family (see codegen/kconstants.py)."""
    out: dict[str, int] = {}
    if fam.bpf_helpers:
        for text in texts:
            out.update({f"BPF_{h.upper()}": int(n) for h, n in _HELPER.findall(text)})
    elif fam.vma_flags:
        for name, (value, _) in defs.items():        # literal #defines (kernels before 7.x)
            if re.fullmatch(r"0[xX][0-9a-fA-F]+", value.strip()):
                out[name] = _value(value)
        for text in texts:
            out.update({f"VM_{flag}": 1 << int(bit) for flag, bit in _VMA_BIT.findall(_COMMENT.sub("", text))})
    else:
        names: dict[str, int] = {}
        found: dict[str, dict[str, int]] = {}
        for text in texts:
            found.update(enums(text, names))
        if fam.enum not in found:
            raise KheadersError(f"constant family {fam.key}: enum {fam.enum} is not in {', '.join(fam.headers)}")
        for name, value in found[fam.enum].items():
            if _sentinel(name):
                break
            out[name] = value
    return {n: v for n, v in out.items()
            if re.fullmatch(fam.pattern, n) and not (fam.exclude and re.fullmatch(fam.exclude, n))}


def _header(tree: Path, triplet: str, header: str) -> Path:
    """A header's file: UAPI headers first (what user space sees), then the kernel's own."""
    uapi = tree / "usr" / "include"
    common = next((tree / "usr" / "src").glob("linux-headers-*-common"))
    for base in (uapi, uapi / triplet, common):
        if (base / header).exists():
            return base / header
    raise KheadersError(f"{header} is in neither linux-libc-dev nor {common.name}")


def family(tree: Path, triplet: str, fam: KernelFamily) -> dict[str, int]:
    """The SECL values of one constant family (codegen/kconstants.py)."""
    defs: dict[str, tuple[str, bool]] = {}
    texts = []
    for header in fam.headers:
        path = _header(tree, triplet, header)
        defs.update(all_defines(path))
        texts.append(path.read_text(errors="replace"))
    if fam.enum or fam.bpf_helpers or fam.vma_flags:
        out = _special_family(texts, defs, fam)
        if not out:
            raise KheadersError(f"constant family {fam.key}: nothing found in {', '.join(fam.headers)}")
        return out
    names: dict[str, int] = {}
    for text in texts:
        enums(text, names)                           # macros may use the header's enumerators
    out = {}
    for name, (text, top) in defs.items():
        if not re.fullmatch(fam.pattern, name) or (fam.exclude and re.fullmatch(fam.exclude, name)):
            continue
        if fam.top_level_only and not top:
            continue
        for _ in range(8):  # an alias of another macro (SIGPOLL SIGIO)
            if text not in defs:
                break
            text = defs[text][0]
        try:
            value = _value(text, names)
        except (KheadersError, SyntaxError):
            continue  # not a literal (SIGRTMAX _NSIG, a cast...)
        out[name] = 1 << value if fam.bit else value
    if not out:
        raise KheadersError(f"constant family {fam.key}: nothing in {', '.join(fam.headers)} matches {fam.pattern}")
    return out


def syscalls(path: Path) -> dict[str, int]:
    return {name.removeprefix("__NR_"): int(v) for name, v in defines(path).items()
            if name.startswith("__NR_") and v.isdigit()}


def extract(tree: Path, arch: str) -> dict[str, object]:
    triplet = {"x86_64": "x86_64-linux-gnu"}[arch]
    uapi = tree / "usr" / "include"
    common = next((tree / "usr" / "src").glob("linux-headers-*-common"))
    out: dict[str, object] = {
        "syscalls_64": syscalls(uapi / triplet / "asm" / "unistd_64.h"),
        "syscalls_32": syscalls(uapi / triplet / "asm" / "unistd_32.h"),
    }
    consts: dict[str, dict[str, object]] = {}
    cache: dict[Path, dict[str, str]] = {}
    for name, header in sorted(KERNEL_CONSTANTS.items()):
        # UAPI headers first (what user space sees), then the kernel's own.
        for base in (uapi, uapi / triplet, common):
            path = base / header
            if path.exists():
                break
        else:
            raise KheadersError(f"{name}: {header} is in neither linux-libc-dev nor {common.name}")
        table = cache.setdefault(path, defines(path))
        if name not in table:
            raise KheadersError(f"{name} is not defined in {path.relative_to(tree)}")
        consts[name] = {"value": _value(table[name]), "header": header}
    out["constants"] = consts
    out["families"] = {fam.key: family(tree, triplet, fam) for fam in KERNEL_FAMILIES}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="unstable")
    ap.add_argument("--arch", default="x86_64")
    ap.add_argument("--no-fetch", action="store_true",
                    help="read the tree already under build/kheaders/ (the packages the committed JSON names)")
    args = ap.parse_args(argv)
    out = ROOT / "vmlinux" / args.arch / "kconsts.json"
    try:
        if args.no_fetch:
            tree = WORK / "tree"
            if not (tree / "usr" / "include").is_dir():
                raise KheadersError(f"{tree} holds no unpacked headers: run without --no-fetch once")
            committed = json.loads(out.read_text())
            args.suite, packages = committed["suite"], committed["packages"]
        else:
            tree, packages = fetch(args.suite)
        data = {"generated_by": "ci/kheaders.py (make kheaders) - do not edit",
                "suite": args.suite, "packages": packages, **extract(tree, args.arch)}
    except KheadersError as exc:
        print(f"kheaders: error: {exc}", file=sys.stderr)
        return 1
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    n64 = len(data["syscalls_64"])  # type: ignore[arg-type]
    print(f"kheaders: wrote {out.relative_to(ROOT)} ({n64} syscalls, {len(data['constants'])} constants) "  # type: ignore[arg-type]
          f"from {', '.join(f'{p} {v}' for p, v in packages.items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
