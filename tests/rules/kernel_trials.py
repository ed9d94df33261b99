"""The differential filter test's trials for the kernel types bpf, mmap and
mprotect (issue 9; test_filters_differential.py): random rules over their
approvable fields (and others, negations included), random real calls
(kernel_calls.py), and the document each call must produce.

The workload's own interpreter maps memory too (its allocator, imports):
its calls are told apart by their lengths (pages), which nothing else in it
uses. What the oracle assumes of the kernel: an anonymous private mapping's
vm_flags carry its PROT_* bits as VM_READ/VM_WRITE/VM_EXEC (the rules only
test those bits and VM_SHARED); a failed BPF_PROG_LOAD or BPF_MAP_CREATE
is described from the caller's attributes, a successful one by the kernel
with the same type and name.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from codegen.kconstants import family_values

BPF_CMD, MAP_TYPE, PROG_TYPE = family_values("bpf_cmd"), family_values("bpf_map_type"), family_values("bpf_prog_type")

TYPES = ("bpf", "mmap", "mprotect")
MMAP_PAGES = (37, 41)          # lengths no allocator of the workload asks for
MPROTECT_PAGES = 29
PROT = {"PROT_NONE": 0, "PROT_READ": 1, "PROT_WRITE": 2, "PROT_EXEC": 4}
MAP = {"MAP_SHARED": 1, "MAP_PRIVATE": 2, "MAP_ANONYMOUS": 0x20}
BPF_KINDS = ("prog_load", "prog_load_bad", "map_create", "get_next_id", "bad_cmd")
BPF_CMD_OF = {"prog_load": "BPF_PROG_LOAD", "prog_load_bad": "BPF_PROG_LOAD", "map_create": "BPF_MAP_CREATE",
              "get_next_id": "BPF_PROG_GET_NEXT_ID"}
BAD_CMD = 9999


def random_atom(rng: random.Random, t: str) -> str | None:
    """One comparison of a kernel type's own fields (None: a file atom, the
    file types' ones, for mmap)."""
    retval = rng.choice([f"{t}.retval == 0", f"{t}.retval < 0", f"{t}.retval >= 0", f"{t}.retval != -EINVAL"])
    if t == "bpf":
        return rng.choice([
            "bpf.cmd == BPF_PROG_LOAD", "bpf.cmd in [BPF_MAP_CREATE, BPF_PROG_GET_NEXT_ID]", "bpf.cmd != BPF_PROG_LOAD",
            "bpf.prog.type == BPF_PROG_TYPE_SOCKET_FILTER", 'bpf.prog.name == "rs_p"', 'bpf.map.name == "rs_m"',
            "bpf.map.type == BPF_MAP_TYPE_ARRAY", retval])
    if t == "mmap":
        if rng.random() < 0.3:
            return None
        return rng.choice([
            "mmap.protection & PROT_EXEC > 0", "mmap.protection & (PROT_WRITE | PROT_EXEC) > 0",
            "mmap.protection == PROT_READ", "mmap.flags & MAP_SHARED > 0", "mmap.flags & MAP_ANONYMOUS > 0",
            "mmap.flags & (MAP_SHARED | MAP_ANONYMOUS) > 0", retval])
    if t == "mprotect":
        return rng.choice([
            "mprotect.req_protection & VM_EXEC > 0", "mprotect.req_protection & (VM_READ | VM_WRITE) > 0",
            "mprotect.req_protection == 0", "mprotect.vm_protection & VM_WRITE > 0",
            "mprotect.vm_protection & (VM_EXEC | VM_SHARED) > 0", "mprotect.vm_protection & VM_READ > 0",
            "mprotect.req_protection & VM_EXEC > 0 && mprotect.vm_protection & VM_WRITE > 0", retval])
    raise AssertionError(f"no atoms for {t}")


def _prot(rng: random.Random) -> int:
    return rng.choice([1, 3, 5, 7, 0, 2])


def random_op(rng: random.Random, base: Path, t: str, dirs: list[str], names: list[str]) -> list[Any]:
    if t == "bpf":
        return ["bpf", rng.choice(BPF_KINDS)]
    if t == "mmap":
        pages = rng.choice(MMAP_PAGES + (0,))   # 0: EINVAL
        if rng.random() < 0.5:
            return ["mmap", pages, _prot(rng), MAP["MAP_ANONYMOUS"] | rng.choice([1, 2, 0]), None]
        path = str(base / rng.choice(dirs) / rng.choice(names))
        return ["mmap", pages, _prot(rng), rng.choice([1, 2]), path]
    if t == "mprotect":
        return ["mprotect", rng.choice(["ok", "ok", "unaligned", "unmapped"]), MPROTECT_PAGES, _prot(rng), _prot(rng)]
    raise AssertionError(f"no workload for {t}")


def expected_body(op: list[Any], result: int) -> dict[str, Any]:
    t = op[0]
    body: dict[str, Any] = {"retval": result}
    if t == "bpf":
        kind = op[1]
        body["cmd"] = BPF_CMD[BPF_CMD_OF[kind]] if kind in BPF_CMD_OF else BAD_CMD
        if kind.startswith("prog_load"):
            body["prog"] = {"type": PROG_TYPE["BPF_PROG_TYPE_SOCKET_FILTER"], "name": "rs_p"}
        elif kind == "map_create":
            body["map"] = {"type": MAP_TYPE["BPF_MAP_TYPE_ARRAY"], "name": "rs_m"}
    elif t == "mmap":
        _, pages, prot, flags, path = op
        body.update(protection=prot, flags=flags, length=pages * 4096)
        if path is not None:
            body["file"] = {"path": path, "name": os.path.basename(path)}
    elif t == "mprotect":
        _, kind, pages, before, prot = op
        body.update(req_protection=prot, length=pages * 4096)
        if kind != "unmapped":
            body["vm_protection"] = before   # VM_READ/WRITE/EXEC are the PROT_* bits
    return body


def key_of_op(op: list[Any]) -> tuple[Any, ...]:
    return (op[0],) + _key(op[0], expected_body(op, 0))


def key_of_doc(t: str, body: dict[str, Any]) -> tuple[Any, ...]:
    return (t,) + _key(t, body)


def _key(t: str, body: dict[str, Any]) -> tuple[Any, ...]:
    if t == "bpf":
        return (body["cmd"],)
    if t == "mmap":
        return (body["length"], body["protection"], body["flags"], (body.get("file") or {}).get("path"))
    if t == "mprotect":
        return (body["length"], body["req_protection"], body.get("vm_protection", -1) & 7)
    raise AssertionError(t)


def is_workload_call(t: str, body: dict[str, Any]) -> bool:
    """One of the workload's own calls (not its interpreter's mappings)."""
    if t == "mmap":
        return int(body.get("length", -1)) in {p * 4096 for p in MMAP_PAGES + (0,)}
    if t == "mprotect":
        return int(body.get("length", -1)) == MPROTECT_PAGES * 4096
    return True
