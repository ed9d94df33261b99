"""The SECL fields: every field of every event type, expanded from the
event-type table (codegen/eventtypes.py) and the templates below.

The registry drives the compiler (types, globs, iterators), the evaluator
(where a field's value lives in the event document, see
:mod:`agent.evaluator.event`), the kernel filter compiler (which fields approve and
how) and ``docs/fields.md`` (``python -m codegen.fieldsdoc``).

A field's ``path`` walks the event document (docs/interfaces.md) from its root;
the marker ``ITER`` stands for "every element of this list" (an iterator,
e.g. ``process.ancestors``); an integer indexes a list
(``process.parent.X`` reads ``process.ancestors[0].X``). A ``resolver``
names a function in :data:`agent.evaluator.event.RESOLVERS` that computes the value
from the object holding the last key (``rights`` from ``mode``, ``name`` from
``path`` when absent, lengths...). ``fallback`` is a second path read when
the first is missing.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Union

from .aliases import LEGACY_ALIASES
from .eventtypes import EVENT_TYPES, EventType
from .fieldspec import BASENAME, BOOL, INT, IP, NAME, STR, Approver, ApproverKind, FieldSpec, FieldType

ITER = "[]"
PathKey = Union[str, int]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: FieldType
    event_type: str | None  # None: present on every event type (process context...)
    path: tuple[PathKey, ...]
    array: bool = False
    glob: bool = False      # path-like: `=~` globs, regexes refused
    time: bool = False      # ns timestamp: compared with durations relative to the event time
    resolver: str | None = None
    fallback: tuple[PathKey, ...] | None = None
    approver: Approver | None = None
    constants: str | None = None  # the constant family its values use, for docs
    doc: str = ""
    item_array: bool = False  # an iterator field whose value for one element is a list (`ancestors.argv`)
    of: Field | None = None  # a helper field (`process.argv.length`): computed from this one's value
    unavailable: str = ""  # why this agent has no value for it (always empty; a rule reading it is warned)

    @property
    def iterator(self) -> bool:
        return ITER in self.path

    @property
    def document_path(self) -> str:
        """The path as written in docs: ``process.ancestors[].file.path``."""
        out = ""
        for key in self.path:
            if key == ITER:
                out += "[]"
            elif isinstance(key, int):
                out += f"[{key}]"
            else:
                out += ("." if out else "") + key
        return out


_T = FieldSpec
_BASENAME, _NAME = BASENAME, NAME

FILE_TEMPLATE: tuple[_T, ...] = (
    _T("path", STR, glob=True, doc="absolute, canonical path of the file"),
    _T("name", STR, resolver="name", doc="basename of the file (from `path` when absent)"),
    _T("extension", STR, resolver="extension", key="name",
       doc="extension of `name`, dot included (`.yaml`; empty without one; from `path` when absent)"),
    _T("path.length", INT, resolver="length", key="path", doc="length of `path`"),
    _T("name.length", INT, resolver="name_length", key="name", doc="length of `name`"),
    _T("inode", INT, doc="inode number"),
    _T("mount_id", INT, doc="mount ID"),
    _T("mode", INT, constants="S_I*", doc="file type and mode bits"),
    _T("rights", INT, resolver="rights", constants="S_I*",
       doc="permission bits: `mode & 0o7777` (from `mode` when absent)"),
    _T("uid", INT, doc="owner UID"),
    _T("gid", INT, doc="owner GID"),
    _T("user", STR, doc="owner user name"),
    _T("group", STR, doc="owner group name"),
    _T("filesystem", STR, doc="filesystem type (ext4, overlay, tmpfs...)"),
    _T("in_upper_layer", BOOL, doc="the file is in the upper layer of an overlayfs"),
    _T("change_time", INT, time=True, doc="ctime, ns since the epoch"),
    _T("modification_time", INT, time=True, doc="mtime, ns since the epoch"),
    _T("is_memfd", BOOL, doc="a memfd (memfd_create): fileless, no directory holds it; "
       "`path` and `name` are the kernel's name `memfd:NAME`"),
    _T("is_deleted", BOOL, doc="no directory holds the file (unlinked while open or running; a memfd)"),
    _T("hashes", STR, array=True, resolver="hashes",
       doc="digests of the file, `sha256:<hex>` (`--hash-algorithms`), computed when a rule reads it or a "
           "`hash` action asks, bounded (docs/secl.md \"File hashes\")"),
)

# Fields of the reference agent's model whose source this agent does not have:
# they exist so its policies load, are always empty, and a rule reading one is
# warned at load (docs/secl.md "Fields without a source").
NO_K8S_SESSIONS = ("the reference agent learns Kubernetes exec sessions from its own admission controller "
                   "and cws-instrumentation; this agent has no such source")
NO_CONTAINER_TAGS = ("the reference agent takes container tags from its tagger (orchestrator and image "
                     "metadata); this agent has no tagger")

PROCESS_TEMPLATE: tuple[_T, ...] = (
    _T("pid", INT, doc="process ID (thread group ID)"),
    _T("ppid", INT, doc="parent process ID"),
    _T("tid", INT, doc="thread ID"),
    _T("comm", STR, doc="command name (16 bytes at most)"),
    _T("tty_name", STR, doc="controlling terminal"),
    _T("uid", INT, doc="real UID"),
    _T("gid", INT, doc="real GID"),
    _T("euid", INT, doc="effective UID"),
    _T("egid", INT, doc="effective GID"),
    _T("fsuid", INT, doc="filesystem UID"),
    _T("fsgid", INT, doc="filesystem GID"),
    _T("user", STR, doc="real user name"),
    _T("group", STR, doc="real group name"),
    _T("cap_effective", INT, constants="CAP_*", doc="effective capability set (bit mask)"),
    _T("cap_permitted", INT, constants="CAP_*", doc="permitted capability set (bit mask)"),
    _T("cookie", INT, doc="unique ID of the process image"),
    _T("created_at", INT, time=True, doc="creation time, ns since the epoch"),
    _T("argv", STR, array=True, doc="arguments, argv[0] included"),
    _T("argv0", STR, resolver="argv0", doc="first argument (from `argv` when absent)"),
    _T("args", STR, resolver="args", doc="arguments after argv[0], joined by spaces (from `argv` when absent)"),
    _T("argc", INT, resolver="argc", doc="number of arguments (from `argv` when absent)"),
    _T("args_flags", STR, array=True, resolver="args_flags",
       doc="flags of the arguments: `-la` gives `l`, `a`, `la`; `--all` gives `all`"),
    _T("args_options", STR, array=True, resolver="args_options",
       doc="options of the arguments, `NAME=VALUE`: `--user=x`, `-u x`"),
    _T("args_truncated", BOOL, doc="the arguments were truncated"),
    _T("envs", STR, array=True, resolver="envs", doc="environment variable names (from `envp` when absent)"),
    _T("envp", STR, array=True, doc="environment, `NAME=value` strings"),
    _T("envs_truncated", BOOL, doc="the environment was truncated"),
    _T("is_thread", BOOL, doc="the process is a thread (forked, not exec'd)"),
    _T("is_kworker", BOOL, doc="the process is a kernel worker"),
    _T("container.id", STR, doc="container ID, empty outside containers"),
    _T("auid", INT, constants="AUDIT_AUID_UNSET",
       doc="audit login UID (`loginuid`, set at login by pam_loginuid) when the image started; "
           "`AUDIT_AUID_UNSET` (4294967295) when none is set"),
    _T("cgroup.id", STR, doc="cgroup v2 ID (the cgroup's kernfs node ID, decimal) when the image started; "
       "for the event's own process, its cgroup at the event"),
    _T("cgroup.file.inode", INT, doc="inode of the cgroup's directory in cgroupfs (equal to its ID)"),
    _T("user_session.k8s_username", STR, unavailable=NO_K8S_SESSIONS, doc="Kubernetes user of a `kubectl exec` session"),
    _T("user_session.k8s_uid", STR, unavailable=NO_K8S_SESSIONS, doc="Kubernetes UID of a `kubectl exec` session"),
    _T("user_session.k8s_groups", STR, array=True, unavailable=NO_K8S_SESSIONS,
       doc="Kubernetes groups of a `kubectl exec` session"),
)

def _file_fields(prefix: str, path: tuple[PathKey, ...], event_type: str | None,
                 approvers: bool, array: bool = False) -> list[Field]:
    fields = []
    for t in FILE_TEMPLATE:
        approver = None
        if approvers and t.suffix == "path":
            approver = _BASENAME
        elif approvers and t.suffix == "name":
            approver = _NAME
        fields.append(_expand(t, prefix, path, event_type, array, approver))
    return fields


def _expand(t: _T, prefix: str, path: tuple[PathKey, ...], event_type: str | None,
            array: bool = False, approver: Approver | None = None) -> Field:
    parts = t.suffix.split(".")
    if t.key is not None:
        parts = parts[:-2] + [t.key] if t.suffix.endswith(".length") else parts[:-1] + [t.key]
    return Field(
        name=f"{prefix}.{t.suffix}", type=t.type, event_type=event_type,
        path=path + tuple(parts), array=array or t.array, glob=t.glob, time=t.time,
        resolver=t.resolver, approver=approver or t.approver, constants=t.constants, doc=t.doc,
        item_array=t.array and ITER in path, unavailable=t.unavailable,
    )


def _process_fields(prefix: str, path: tuple[PathKey, ...], event_type: str | None,
                    array: bool = False) -> list[Field]:
    fields = [_expand(t, prefix, path, event_type, array) for t in PROCESS_TEMPLATE]
    fields += _file_fields(f"{prefix}.file", path + ("file",), event_type, False, array)
    return fields


def _context_fields(prefix: str, path: tuple[PathKey, ...], event_type: str | None) -> list[Field]:
    """A process context: the process, its parent and its ancestors."""
    fields = _process_fields(prefix, path, event_type)
    fields += _process_fields(f"{prefix}.parent", path + ("ancestors", 0), event_type)
    fields += _process_fields(f"{prefix}.ancestors", path + ("ancestors", ITER), event_type, array=True)
    fields.append(Field(f"{prefix}.ancestors.length", INT, event_type, path + ("ancestors",),
                        resolver="length", doc="number of known ancestors"))
    return fields


def _common_fields() -> list[Field]:
    fields = _context_fields("process", ("process",), None)
    fields += [
        Field("container.id", STR, None, ("container", "id"),
              fallback=("process", "container", "id"), doc="container ID, empty outside containers"),
        Field("container.created_at", INT, None, ("container", "created_at"), time=True,
              fallback=("process", "container", "created_at"), doc="container creation time, ns"),
        Field("container.tags", STR, None, ("container", "tags"), array=True, unavailable=NO_CONTAINER_TAGS,
              doc="tags of the container (`key:value`)"),
        Field("event.service", STR, None, ("service",), resolver="service",
              doc="the service of the event's process: `DD_SERVICE` of its environment or of its ancestors' "
                  "(within its container; needs `--capture-env`), the longest when they extend one another, "
                  "else the closest; empty without one"),
        Field("cgroup.id", STR, None, ("cgroup", "id"),
              fallback=("process", "cgroup", "id"), doc="cgroup v2 ID of the process (decimal kernfs node ID)"),
        Field("cgroup.file.inode", INT, None, ("cgroup", "file", "inode"),
              fallback=("process", "cgroup", "file", "inode"),
              doc="inode of the process's cgroup directory in cgroupfs (equal to its ID)"),
        Field("event.timestamp", INT, None, ("timestamp",), time=True,
              doc="event time, ns since the epoch (top-level `timestamp`)"),
        Field("event.origin", STR, None, ("origin",), resolver="origin",
              doc="where the event comes from: `ebpf` (the reference agent's values: ebpf, ebpfless)"),
        Field("event.source", STR, None, ("source",), resolver="source",
              doc="`runtime`: every event is observed as it happens (the reference agent also has `snapshot`)"),
    ]
    return fields


def _event_fields() -> list[Field]:
    fields: list[Field] = []
    for event in EVENT_TYPES:
        name = event.name
        if event.process_fields:
            fields += _process_fields(name, (name,), name)
        for sub in event.files:
            fields += _file_fields(f"{name}.{sub}", (name,) + tuple(sub.split(".")), name,
                                   approvers=event.file_approvers)
        for sub in event.processes:
            fields += _context_fields(f"{name}.{sub}", (name,) + tuple(sub.split(".")), name)
        fields += [_expand(t, name, (name,), name) for t in event.fields]
        for prefix, specs in event.context:
            fields += [_expand(t, prefix, (prefix,), name) for t in specs]
    return fields


HOST_FIELDS: tuple[Field, ...] = tuple(
    Field(name, type_, "host", path, array=name == "envs", doc=doc) for name, type_, path, doc in (
        ("kernel.version.major", INT, ("kernel", "version", "major"), "kernel major version"),
        ("kernel.version.minor", INT, ("kernel", "version", "minor"), "kernel minor version"),
        ("kernel.version.patch", INT, ("kernel", "version", "patch"), "kernel patch level"),
        ("kernel.version.abi", INT, ("kernel", "version", "abi"), "ABI number of a distribution kernel (Ubuntu's `5.15.0-91`: 91)"),
        ("kernel.version.flavor", STR, ("kernel", "version", "flavor"), "release suffix (`-amd64`...)"),
        ("kernel.core.enabled", BOOL, ("kernel", "core", "enabled"), "the kernel has BTF, so CO-RE works (always, for this agent)"),
        ("os", STR, ("os", "kind"), "OS kind: `linux` (the reference agent's `windows` never matches)"),
        ("os.id", STR, ("os", "id"), "`ID` from /etc/os-release"),
        ("os.platform_id", STR, ("os", "platform_id"), "`PLATFORM_ID` from /etc/os-release"),
        ("os.version_id", STR, ("os", "version_id"), "`VERSION_ID` from /etc/os-release"),
        ("os.is_amazon_linux", BOOL, ("os", "is_amazon_linux"), "Amazon Linux"),
        ("os.is_cos", BOOL, ("os", "is_cos"), "Container-Optimized OS"),
        ("os.is_debian", BOOL, ("os", "is_debian"), "Debian"),
        ("os.is_oracle", BOOL, ("os", "is_oracle"), "Oracle Linux"),
        ("os.is_rhel", BOOL, ("os", "is_rhel"), "RHEL or CentOS"),
        ("os.is_rhel7", BOOL, ("os", "is_rhel7"), "RHEL/CentOS 7"),
        ("os.is_rhel8", BOOL, ("os", "is_rhel8"), "RHEL/CentOS 8"),
        ("os.is_sles", BOOL, ("os", "is_sles"), "SUSE Linux Enterprise"),
        ("os.is_sles12", BOOL, ("os", "is_sles12"), "SUSE Linux Enterprise 12"),
        ("os.is_sles15", BOOL, ("os", "is_sles15"), "SUSE Linux Enterprise 15"),
        ("os.is_ubuntu", BOOL, ("os", "is_ubuntu"), "Ubuntu"),
        ("envs", STR, ("envs",), "the agent's environment, `NAME=value` strings"),
        ("origin", STR, ("origin",), "where events come from: `ebpf`"),
        ("hostname", STR, ("hostname",), "the host's name"),
    )
)


@dataclass(frozen=True, slots=True)
class Helper:
    """A field every field of some types has: ``.length``, ``.root_domain``."""

    type: FieldType
    strings: bool       # applies to (non-array) string fields
    arrays: bool        # applies to array fields
    doc: str

    def accepts(self, base: Field) -> bool:
        return (self.arrays and base.array) or (self.strings and not base.array and base.type is FieldType.STRING)


HELPERS: Mapping[str, Helper] = {
    "length": Helper(INT, strings=True, arrays=True, doc="length of `{base}` (characters, or elements of a list)"),
    "root_domain": Helper(STR, strings=True, arrays=False,
                          doc="registrable domain of `{base}` (public suffix plus one label, docs/secl.md)"),
}


class Registry:
    """Fields by name, with the event types they belong to."""

    def __init__(self, fields: Iterable[Field], event_types: Iterable[EventType] = (),
                 aliases: Mapping[str, str] | None = None) -> None:
        self.fields: dict[str, Field] = {}
        for f in fields:
            if f.name in self.fields:
                raise ValueError(f"field {f.name!r} declared twice")
            self.fields[f.name] = f
        self.event_types: dict[str, EventType] = {e.name: e for e in event_types}
        self._helpers: dict[str, Field] = {}
        # legacy names read as the fields they stand for (those this registry has)
        self.aliases = {old: self.fields[new] for old, new in (aliases or {}).items() if new in self.fields}

    def get(self, name: str) -> Field | None:
        return self.fields.get(name) or self.aliases.get(name) or self._helper(name)

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def _helper(self, name: str) -> Field | None:
        """``X.length`` of a string or list field X, ``X.root_domain`` of a
        string field (docs/secl.md "Helpers"), made once when first asked."""
        made = self._helpers.get(name)
        if made is not None or "." not in name:
            return made
        base_name, helper = name.rsplit(".", 1)
        spec = HELPERS.get(helper)
        base = self.get(base_name) if spec is not None else None
        if spec is None or base is None or base.iterator or base.of is not None or not spec.accepts(base):
            return None
        made = Field(name, spec.type, base.event_type, base.path, resolver=helper, of=base,
                     doc=spec.doc.format(base=base.name))
        self._helpers[name] = made
        return made

    def produces(self, namespace: str) -> bool:
        """False when ``namespace`` names an event type this agent declares but does not produce."""
        event = self.event_types.get(namespace)
        return event is None or event.produced

    def suggest(self, name: str) -> str | None:
        close = difflib.get_close_matches(name, self.fields, n=1, cutoff=0.75)
        return close[0] if close else None

    def fields_of(self, event_type: str) -> list[Field]:
        """Fields usable by rules of ``event_type`` (its own and the common ones)."""
        return [f for f in self.fields.values() if f.event_type in (None, event_type)]

    def approvable(self, event_type: str) -> list[Field]:
        """Fields of ``event_type`` able to approve, best first."""
        fields = [f for f in self.fields_of(event_type) if f.approver is not None]
        return sorted(fields, key=lambda f: (-f.approver.weight, f.name))  # type: ignore[union-attr]


REGISTRY = Registry(_common_fields() + _event_fields(), EVENT_TYPES, LEGACY_ALIASES)
HOST_REGISTRY = Registry(HOST_FIELDS)

__all__ = [
    "ITER", "FieldType", "ApproverKind", "Approver", "Field", "EventType", "Registry",
    "REGISTRY", "HOST_REGISTRY", "EVENT_TYPES", "IP",
]
