"""Records recorded from the kernel, kept as field values so they survive
layout changes of events.h.

A fixture (tests/agent/records/NAME.json) holds the record's struct, the
value of every field as the kernel wrote it (nested structs, arrays), the
bytes after the fixed part (strings, argv) and the size the fixed part had;
``encode`` rebuilds the record's bytes for the *current* layout: fields
that did not exist stay zero, string offsets move with the fixed part's
size. Regenerate with ``python tests/agent/recorded.py`` (root; the probes
run in this process while it performs the operations).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent.events.layout import layout  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "records"
STR_FIELDS = ("off", "len")


def _fields(ffi: Any, ftype: Any, value: Any) -> Any:
    """The value of a field of type ``ftype`` as JSON data."""
    if ftype.kind == "struct":
        return {name: _fields(ffi, f.type, getattr(value, name)) for name, f in ftype.fields}
    if ftype.kind == "array":
        if ftype.item.cname == "char":
            return bytes(ffi.buffer(value)).hex()
        return [_fields(ffi, ftype.item, v) for v in value]
    return int(value)


def fields_of(ctype: str, data: bytes) -> dict[str, Any]:
    ffi = layout().ffi
    t = ffi.typeof(f"struct {ctype}")
    rec = ffi.cast(f"struct {ctype} *", ffi.from_buffer(data))
    out: dict[str, Any] = _fields(ffi, t, rec[0])
    return out


def _assign(ffi: Any, target: Any, values: dict[str, Any], delta: int) -> None:
    t = ffi.typeof(target)
    names = {n for n, _ in t.fields}
    for name, v in values.items():
        if name not in names:
            continue  # a field the current layout no longer has
        field_type = dict(t.fields)[name].type
        if field_type.kind == "struct":
            if field_type.cname == "struct rs_str" and v["off"]:
                v = {"off": v["off"] + delta, "len": v["len"]}
            _assign(ffi, getattr(target, name), v, delta)
        elif field_type.kind == "array":
            arr = getattr(target, name)
            if isinstance(v, str):
                raw = bytes.fromhex(v)[: len(arr)]
                ffi.memmove(arr, raw, len(raw))
            else:
                for i, item in enumerate(v[: len(arr)]):
                    if isinstance(item, dict):
                        _assign(ffi, arr[i], item, delta)
                    else:
                        arr[i] = item
        else:
            setattr(target, name, v)


def encode(fixture: dict[str, Any]) -> bytes:
    """The record's bytes in the current layout."""
    ffi = layout().ffi
    ctype = f"struct {fixture['struct']}"
    size = ffi.sizeof(ctype)
    delta = size - fixture["fixed_size"]
    tail = bytes.fromhex(fixture["tail"])
    total = (size + len(tail) + 7) & ~7
    buf = ffi.new("char[]", total)
    rec = ffi.cast(f"{ctype} *", buf)
    _assign(ffi, rec[0], fixture["fields"], delta)
    rec.hdr.size = total
    ffi.memmove(ffi.cast("char *", buf) + size, tail, len(tail))
    return bytes(ffi.buffer(buf))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


# -- recording (root) ------------------------------------------------------------

RECORDED_PROT = 5              # PROT_READ | PROT_EXEC: an RW mapping made executable
MAP_NAME = b"recorded_map"
URING_ENTRIES = 4
NR_BPF, NR_IO_URING_SETUP = 321, 425   # x86-64


def _kernel_types(work: Path) -> None:  # pragma: no cover - a maintenance script
    """mmap of a file, mprotect RW -> RX, bpf(BPF_MAP_CREATE), io_uring_setup."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.syscall.restype = ctypes.c_long
    f = work / "mapped-file"
    f.write_bytes(b"\0" * mmap.PAGESIZE)
    with open(f, "rb") as fh, mmap.mmap(fh.fileno(), mmap.PAGESIZE, prot=mmap.PROT_READ):
        pass
    addr = libc.mmap(None, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                     -1, 0)
    assert libc.mprotect(ctypes.c_void_p(addr), mmap.PAGESIZE, RECORDED_PROT) == 0
    libc.munmap(ctypes.c_void_p(addr), mmap.PAGESIZE)
    # union bpf_attr, BPF_MAP_CREATE: type, key and value size, entries, flags, inner fd, node, name
    attr = ctypes.create_string_buffer(128)
    ctypes.memmove(attr, (2).to_bytes(4, sys.byteorder) + (4).to_bytes(4, sys.byteorder)
                   + (4).to_bytes(4, sys.byteorder) + (1).to_bytes(4, sys.byteorder), 16)
    ctypes.memmove(ctypes.addressof(attr) + 28, MAP_NAME, len(MAP_NAME))
    fd = libc.syscall(NR_BPF, 0, attr, ctypes.c_uint(len(attr)))
    assert fd >= 0, ctypes.get_errno()
    os.close(fd)
    params = ctypes.create_string_buffer(120)   # struct io_uring_params
    fd = libc.syscall(NR_IO_URING_SETUP, ctypes.c_uint(URING_ENTRIES), params)
    assert fd >= 0, ctypes.get_errno()
    os.close(fd)


def record() -> None:  # pragma: no cover - a maintenance script
    from agent.features import probe
    from agent.hooksets import choose_hook_set
    from agent.libbpf.object import load_object
    from agent.libbpf.ringbuf import RingBuffer, record_bytes
    from agent.objects import object_path
    from codegen.eventtypes import PRODUCED

    lay = layout()
    hs = choose_hook_set(probe(object_path("features.bpf.o"))).hook_set
    assert hs is not None
    progs = hs.programs_for(None)
    names = {t.id: (t.name, t.record) for t in PRODUCED}
    work = Path(tempfile.mkdtemp(prefix="rsagent-fixtures-"))
    me = os.getpid()
    got: list[bytes] = []
    true = shutil.which("true") or "/bin/true"
    with load_object(object_path("probe.bpf.o"), programs=progs, variables={"rs_agent_tgid": 0},
                     max_entries={"events": 8 << 20}, attach=True) as obj:
        with RingBuffer(obj.map("lifecycle_events"), lambda d, s: got.append(record_bytes(d, s))) as rb:
            rb.add(obj.map("events"), lambda d, s: got.append(record_bytes(d, s)))
            f = work / "fixture-file"
            f.write_text("x")
            os.chmod(f, 0o640)
            os.rename(f, work / "renamed-file")
            try:
                os.unlink(work / "missing-file")
            except FileNotFoundError:
                pass
            subprocess.run([true, "recorded-exec"], check=True)
            target = subprocess.Popen([shutil.which("sleep") or "/bin/sleep", "30"])
            time.sleep(0.1)
            target.terminate()  # a signal named by the kernel: signal.target
            target.wait()
            os.close(os.memfd_create("recorded-memfd", os.MFD_CLOEXEC))
            try:
                os.chdir(work / "missing-dir")
            except FileNotFoundError:
                pass
            _kernel_types(work)
            time.sleep(0.2)
            while rb.consume() > 0:
                pass
    shutil.rmtree(work)
    wanted = {
        "open_created": lambda n, fl: n == "open" and b"fixture-file" in fl["tail_bytes"],
        "chmod": lambda n, fl: n == "chmod" and b"fixture-file" in fl["tail_bytes"],
        "rename": lambda n, fl: n == "rename" and b"renamed-file" in fl["tail_bytes"],
        "unlink_failed": lambda n, fl: n == "unlink" and b"missing-file" in fl["tail_bytes"],
        "exec": lambda n, fl: n == "exec" and b"recorded-exec" in fl["tail_bytes"],
        "fork": lambda n, fl: n == "fork" and fl["fields"]["parent_pid"] == me,
        "exit": lambda n, fl: n == "exit" and fl["fields"]["hdr"]["pid"] != me,
        "signal": lambda n, fl: n == "signal" and fl["fields"]["hdr"]["pid"] == me and fl["fields"]["target"]["pid"],
        "memfd_create": lambda n, fl: n == "memfd_create" and b"recorded-memfd" in fl["tail_bytes"],
        "chdir_failed": lambda n, fl: n == "chdir" and b"missing-dir" in fl["tail_bytes"],
        "mmap_file": lambda n, fl: n == "mmap" and b"mapped-file" in fl["tail_bytes"],
        "mprotect": lambda n, fl: (n == "mprotect" and fl["fields"]["hdr"]["pid"] == me
                                   and fl["fields"]["prot"] == RECORDED_PROT),
        "bpf_map_create": lambda n, fl: n == "bpf" and bytes.fromhex(fl["fields"]["map_name"]).startswith(MAP_NAME),
        "io_uring_setup": lambda n, fl: (n == "io_uring" and fl["fields"]["hdr"]["pid"] == me
                                         and fl["fields"]["entries"] == URING_ENTRIES),
    }
    FIXTURES.mkdir(exist_ok=True)
    for raw in got:
        type_id = int.from_bytes(raw[:4], sys.byteorder)
        if type_id not in names:
            continue
        name, struct = names[type_id]
        assert struct is not None
        size = lay.sizeof(f"struct {struct}")
        fixture = {"struct": struct, "type": name, "fixed_size": size, "fields": fields_of(struct, raw),
                   "tail": raw[size:].hex()}
        probe_view = {"fields": fixture["fields"], "tail_bytes": raw[size:]}
        for key, match in list(wanted.items()):
            if match(name, probe_view):
                (FIXTURES / f"{key}.json").write_text(json.dumps(fixture, indent=1, sort_keys=True) + "\n")
                del wanted[key]
                print(f"recorded {key} ({len(raw)} bytes)")
    if wanted:
        raise SystemExit(f"not seen: {sorted(wanted)}")


if __name__ == "__main__":
    record()
