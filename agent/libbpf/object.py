"""A BPF object file opened, configured, loaded and attached through libbpf.

Life cycle (each step a method, the whole thing a context manager)::

    with BpfObject("probe.bpf.o") as obj:       # bpf_object__open_file
        obj.set_autoload(["handle_exec"])        # choose programs
        obj.set_global("target_pid", 42)         # const volatile, via BTF
        obj.maps["events"].max_entries = 1 << 22 # resize before load
        obj.load()                               # bpf_object__load
        obj.attach_all()                         # bpf_program__attach each
        ...
    # links destroyed, ring buffers freed, object closed

Roll-back rules: a failed :meth:`BpfObject.load` or :meth:`attach_all`
leaves nothing behind: links made so far are destroyed and the object is
closed before the error propagates. :func:`load_object` does every step
under one ExitStack and hands the object over only on success. A single
:meth:`Program.attach` failing closes nothing (callers probing optional
hooks go on).
"""

from __future__ import annotations

import errno
import mmap
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Protocol

from ._ffi import ffi, lib
from .btf import VariableSpec
from .errors import BpfError, NotSupportedError, VerifierError
from .link import Link
from .log import LogCapture, capture
from .maps import Map
from .spec import (
    ObjectSpec,
    ProgramSpec,
    iter_maps,
    iter_programs,
    map_name,
    open_handle,
    program_spec,
    section_maps,
    spec_of,
    variables_of,
)

__all__ = ["BpfObject", "GlobalValue", "Program", "load_object"]

GlobalValue = int | bytes | bytearray | memoryview

_NOT_SUPPORTED = (errno.EOPNOTSUPP, 524)
# Program kinds a kernel may lack wholesale; EPERM for them as root means "not here".
_OPTIONAL_KINDS = ("fentry", "fexit", "fmod_ret", "lsm", "freplace", "kprobe", "kretprobe", "ksyscall", "kretsyscall")


class _Closeable(Protocol):
    def close(self) -> None: ...


class Program:
    """One program of a :class:`BpfObject` (``obj.programs[name]``)."""

    def __init__(self, owner: BpfObject, ptr: Any) -> None:
        self._owner = owner
        self._ptr = ptr
        self.name = ffi.string(lib.bpf_program__name(ptr)).decode()
        self.section = ffi.string(lib.bpf_program__section_name(ptr)).decode()

    @property
    def spec(self) -> ProgramSpec:
        return program_spec(self._handle("program spec"))

    @property
    def kind(self) -> str:
        """The section prefix: "tracepoint", "tp_btf", "raw_tp", "fentry", ..."""
        kind: str = self.section.split("/", 1)[0].split(".", 1)[0]
        return kind

    @property
    def autoload(self) -> bool:
        return bool(lib.bpf_program__autoload(self._handle("program autoload")))

    @autoload.setter
    def autoload(self, value: bool) -> None:
        rc = lib.bpf_program__set_autoload(self._handle("set autoload"), bool(value))
        if rc < 0:
            raise BpfError(f"set autoload {self.name}", -rc)

    def set_log_level(self, level: int) -> None:
        """``bpf_program__set_log_level`` (before load): 4 (BPF_LOG_STATS)
        makes the verifier report its time and instructions processed, read
        back with :meth:`agent.libbpf.log.LogCapture.verifier_stats`."""
        rc = lib.bpf_program__set_log_level(self._handle("set log level"), level)
        if rc < 0:
            raise BpfError(f"set log level {self.name}", -rc)

    @property
    def fd(self) -> int:
        fd = int(lib.bpf_program__fd(self._handle("program fd")))
        if fd < 0:
            raise BpfError(f"program fd {self.name}", errno.EBADF, reason="program is not loaded")
        return fd

    def attach(self) -> Link:
        """``bpf_program__attach``: attach by section name; the link is owned by the object."""
        op = f"attach program {self.name}"
        ptr = self._handle(op)
        with capture():
            link = lib.bpf_program__attach(ptr)
            code = ffi.errno
        if link == ffi.NULL:
            raise _classify(op, code, self.kind, where=op)
        handle = Link(link, self.name, self._owner._forget)
        self._owner._adopt(handle)
        return handle

    def _handle(self, op: str) -> Any:
        self._owner._require_open(f"{op} {self.name}")
        return self._ptr

    def __repr__(self) -> str:
        return f"<Program {self.name} {self.section}>"


class BpfObject:
    """A BPF object file: programs, maps, globals; see the module docstring."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        object_name: str | None = None,
        btf_custom_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self._ptr: Any = ffi.NULL
        self._loaded = False
        self._owned: list[_Closeable] = []
        self._sections: dict[str, mmap.mmap] = {}
        self._ptr = open_handle(
            self.path,
            object_name=object_name,
            btf_custom_path=os.fspath(btf_custom_path) if btf_custom_path is not None else None,
        )
        try:
            self.name = ffi.string(lib.bpf_object__name(self._ptr)).decode()
            self.programs: Mapping[str, Program] = {
                p.name: p for p in (Program(self, x) for x in iter_programs(self._ptr))
            }
            sections = section_maps(self._ptr)
            self.maps: Mapping[str, Map] = {
                m.name: m for m in (Map(self, x, map_name(x, sections)) for x in iter_maps(self._ptr))
            }
            self._variables = {v.name: v for v in variables_of(self._ptr)}
        except BaseException:
            self.close()
            raise

    # -- inspection ----------------------------------------------------------
    @property
    def spec(self) -> ObjectSpec:
        return spec_of(self._require_open("object spec"), self.path)

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def closed(self) -> bool:
        return bool(self._ptr == ffi.NULL)

    def program(self, name: str) -> Program:
        try:
            return self.programs[name]
        except KeyError:
            raise KeyError(f"{self._label}: no program {name!r} (have: {', '.join(self.programs)})") from None

    def map(self, name: str) -> Map:
        try:
            return self.maps[name]
        except KeyError:
            raise KeyError(f"{self._label}: no map {name!r} (have: {', '.join(self.maps)})") from None

    def variable(self, name: str) -> VariableSpec:
        try:
            return self._variables[name]
        except KeyError:
            have = ", ".join(sorted(self._variables)) or "none"
            raise KeyError(f"{self._label}: no global variable {name!r} (have: {have})") from None

    # -- configuration (before load) ------------------------------------------
    def set_autoload(self, names: Iterable[str]) -> None:
        """Load exactly the programs in ``names``; the others are skipped."""
        wanted = set(names)
        for name in wanted:
            self.program(name)  # KeyError for typos before anything changes
        for prog in self.programs.values():
            prog.autoload = prog.name in wanted

    def set_global(self, name: str, value: GlobalValue) -> None:
        """Set global variable ``name`` (int, or bytes of its exact size).

        Before load any global; after load only ``.data``/``.bss`` ones,
        written live into the kernel map through its mmap (only this
        variable's bytes: the program's concurrent writes to its neighbours
        are not lost). Arrays accept shorter bytes, zero-padded (C strings).
        """
        var = self.variable(name)
        op = f"set global {name}"
        if self._loaded and var.read_only:
            raise BpfError(op, errno.EPERM, reason=f"{var.section} is frozen once the object is loaded")
        data = self._encode(var, value, op)
        if self._loaded:
            self._live_section(var, op)[var.offset : var.offset + var.size] = data
        else:
            ffi.memmove(self._initial_value(var, op) + var.offset, data, var.size)

    def get_global(self, name: str) -> bytes:
        """The bytes of global ``name``: the kernel's current value once loaded."""
        var = self.variable(name)
        op = f"get global {name}"
        if self._loaded:
            return self._live_section(var, op)[var.offset : var.offset + var.size]
        return bytes(ffi.buffer(self._initial_value(var, op) + var.offset, var.size)[:])

    def get_global_int(self, name: str) -> int:
        var = self.variable(name)
        return int.from_bytes(self.get_global(name), sys.byteorder, signed=var.signed)

    # -- load / attach --------------------------------------------------------
    def load(self) -> None:
        """``bpf_object__load``; on failure the object is closed, then the error raised."""
        op = f"load object {os.path.basename(self.path)}"
        ptr = self._require_open(op)
        if self._loaded:
            raise BpfError(op, errno.EALREADY, reason="object is already loaded")
        with capture() as log:
            rc = lib.bpf_object__load(ptr)
        if rc < 0:
            error = self._load_error(op, -rc, log)
            self.close()
            raise error
        self._loaded = True

    def attach(self, name: str) -> Link:
        return self.program(name).attach()

    def attach_all(self, names: Sequence[str] | None = None) -> list[Link]:
        """Attach ``names`` (default: every autoloaded program), all or nothing.

        Pass ``names`` when the object holds programs that are not attached
        by section name (tail-call targets): libbpf refuses those with
        EOPNOTSUPP. If one fails, the links made so far are destroyed and the object is
        closed before the error propagates.
        """
        progs = [self.program(n) for n in names] if names is not None else [
            p for p in self.programs.values() if p.autoload
        ]
        with ExitStack() as rollback:
            rollback.callback(self.close)
            links = []
            for prog in progs:
                link = prog.attach()
                rollback.push(_closer(link))
                links.append(link)
            rollback.pop_all()
        return links

    # -- ownership ------------------------------------------------------------
    def close(self) -> None:
        """Destroy links, free ring buffers, close the object; idempotent."""
        for owned in reversed(self._owned):
            owned.close()
        self._owned.clear()
        for view in self._sections.values():
            view.close()
        self._sections.clear()
        ptr, self._ptr = self._ptr, ffi.NULL
        if ptr != ffi.NULL:
            lib.bpf_object__close(ptr)

    def _adopt(self, thing: Any) -> Any:
        self._owned.append(thing)
        return thing

    def _forget(self, thing: Any) -> None:
        if thing in self._owned:
            self._owned.remove(thing)

    def _require_open(self, op: str) -> Any:
        if self._ptr == ffi.NULL:
            raise BpfError(op, errno.EBADF, reason=f"object {os.path.basename(self.path)} is closed")
        return self._ptr

    def __enter__(self) -> BpfObject:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "loaded" if self._loaded else "open"
        return f"<BpfObject {self.path} {state}>"

    def __del__(self) -> None:
        # Safety net only: correct code closes objects (with-statement).
        if getattr(self, "_ptr", ffi.NULL) != ffi.NULL:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=1)
            self.close()

    # -- helpers --------------------------------------------------------------
    @property
    def _label(self) -> str:
        return os.path.basename(self.path)

    def _section_map(self, var: VariableSpec, op: str) -> Map:
        m = self.maps.get(var.section)
        if m is None:
            raise BpfError(op, errno.ENOENT, reason=f"no map backs section {var.section}")
        return m

    def _live_section(self, var: VariableSpec, op: str) -> mmap.mmap:
        """The loaded section map, mmapped (libbpf 1.1 remaps only for skeletons)."""
        view = self._sections.get(var.section)
        if view is None:
            m = self._section_map(var, op)
            m._handle(op)
            size = -(-m.value_size // mmap.PAGESIZE) * mmap.PAGESIZE
            prot = mmap.PROT_READ if var.read_only else mmap.PROT_READ | mmap.PROT_WRITE
            try:
                view = mmap.mmap(m.fd, size, mmap.MAP_SHARED, prot)
            except OSError as exc:  # not BPF_F_MMAPABLE (kernels before 5.5)
                raise BpfError(op, exc.errno or errno.EINVAL, where=f"{op}: mmap {var.section}") from exc
            self._sections[var.section] = view
        return view

    def _initial_value(self, var: VariableSpec, op: str) -> Any:
        m = self._section_map(var, op)
        size = ffi.new("size_t *")
        mem = lib.bpf_map__initial_value(m._handle(op), size)
        if mem == ffi.NULL or var.offset + var.size > size[0]:
            raise BpfError(op, errno.EFAULT, reason=f"section {var.section} has no memory for {var.name}")
        return ffi.cast("char *", mem)

    @staticmethod
    def _encode(var: VariableSpec, value: GlobalValue, op: str) -> bytes:
        if isinstance(value, int):
            if var.kind not in ("int", "enum", "ptr"):
                raise TypeError(f"{op}: {var.name} is a {var.kind}, pass bytes of size {var.size}")
            try:
                return value.to_bytes(var.size, sys.byteorder, signed=var.signed or value < 0)
            except OverflowError:
                raise ValueError(f"{op}: {value} does not fit {var.name} ({var.size} byte(s))") from None
        data = bytes(value)
        if var.kind == "array" and len(data) < var.size:
            data = data.ljust(var.size, b"\0")
        if len(data) != var.size:
            raise ValueError(f"{op}: {len(data)} byte(s) given, {var.name} is {var.size}")
        return data

    def _load_error(self, op: str, code: int, log: LogCapture) -> BpfError:
        prog_name = log.failed_program()
        if prog_name is None:
            failed_map = log.failed_map()
            if failed_map is not None:
                return _classify(f"create map {failed_map}", code, f"map {failed_map}", where=f"{op}: map {failed_map}")
            return _classify(op, code, "object", where=op)
        prog = self.programs.get(prog_name)
        where = f"{op}: program {prog_name}"
        prog_op = f"load program {prog_name}"
        verifier_log = log.verifier_log(prog_name)
        kind = prog.kind if prog is not None else prog_name
        if verifier_log and verifier_log.strip():
            return VerifierError(prog_op, code, prog_name, verifier_log, where=where)
        if code == errno.EPERM and kind in _OPTIONAL_KINDS and os.geteuid() == 0:
            return NotSupportedError(prog_op, code, f"{kind} programs", where=where)
        return _classify(prog_op, code, f"{kind} programs", where=where)


def _closer(link: Link) -> Any:
    def close(et: Any, ev: Any, tb: Any) -> None:
        link.close()

    return close


def _classify(op: str, code: int, feature: str, *, where: str) -> BpfError:
    if code in _NOT_SUPPORTED:
        return NotSupportedError(op, code, feature, where=where)
    if (
        code == errno.ENOENT
        and feature in ("kprobe", "kretprobe", "ksyscall", "kretsyscall")
        and not os.path.exists("/sys/bus/event_source/devices/kprobe")
        and not os.path.exists("/sys/kernel/tracing/kprobe_events")
    ):
        return NotSupportedError(op, code, f"{feature} attach", where=where)
    return BpfError(op, code, where=where)


def load_object(
    path: str | os.PathLike[str],
    *,
    programs: Iterable[str] | None = None,
    variables: Mapping[str, GlobalValue] | None = None,
    max_entries: Mapping[str, int] | None = None,
    attach: bool | Sequence[str] = False,
    reuse: Mapping[str, Map] | None = None,
) -> BpfObject:
    """Open, configure, load and (optionally) attach in one step, all or nothing.

    ``programs`` limits autoload; ``variables`` are :meth:`BpfObject.set_global`
    calls; ``max_entries`` resizes maps; ``reuse`` makes maps of this object
    be loaded maps of another (:meth:`Map.reuse`); ``attach=True`` attaches every loaded
    program, a sequence attaches those named. On any failure everything
    done so far is undone before the error propagates.
    """
    with ExitStack() as stack:
        obj = stack.enter_context(BpfObject(path))
        if programs is not None:
            obj.set_autoload(programs)
        for name, value in (variables or {}).items():
            obj.set_global(name, value)
        for name, entries in (max_entries or {}).items():
            obj.map(name).set_max_entries(entries)
        for name, other in (reuse or {}).items():
            obj.map(name).reuse(other)
        obj.load()
        if attach is True:
            obj.attach_all()
        elif attach:
            obj.attach_all(list(attach))
        stack.pop_all()
    return obj
