"""The event-type table: every event type the agent knows, as plain data.

Everything else derives from this table:

- generated (``python -m codegen.tablegen``; a test fails when they are
  stale): the event enum, syscall numbers and kernel constants in the cffi
  region of ebpf/include/events.h; the syscall table and argument registers
  (ebpf/include/syscall_table.h); one sys_exit wrapper program per syscall
  (ebpf/hooks/exits.h); docs/fields.md (``python -m codegen.fieldsdoc``);
- derived at import: the SECL fields (codegen/fields.py), the kernel
  filters' kinds and which types invalidate discarders (codegen/cbackend.py,
  agent/kfilters.py), the programs of each hook set (agent/hooksets.py), the
  decoder of each record (agent/events/decode.py).

Hand-written code keeps the *bodies*: the BPF functions a wrapper calls
(``Call.body``), the captures (``captures``/``precise`` programs), the
decoders of each record struct, the kernel-side object walks.

Adding an event type
--------------------
1. An ``EventType`` entry below: name, the next free ``id``, category,
   the record struct (in events.h), its syscalls with the role of each
   argument (a ``Call`` kind's vocabulary, or a new ``Call``), the programs
   every hook set attaches for it (BTF tracepoints...), precise captures,
   fields, approvers.
2. Its bodies: the ``Call.body`` function (if new), the record struct in
   events.h (outside the generated block), the decoder for a new record
   struct (agent/events/, ``RECORD_DECODERS``).
3. ``python -m codegen.tablegen && python -m codegen.fieldsdoc``.

Syscall numbers and kernel constants come from the kernel's own headers
(vmlinux/x86_64/kconsts.json, made by ``make kheaders`` from Debian's
linux-libc-dev and linux-headers packages), never copied by hand: a
syscall's number is looked up by its name, a constant by its name in
``KERNEL_CONSTANTS``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .fieldspec import (
    BASENAME, BOOL, FLAGS, INT, IP, NAME, RETVAL, SCALAR, STR, Approver, ApproverKind, FieldSpec,
)

F = FieldSpec

# -- the x86-64 syscall ABI -----------------------------------------------------

ARCH = "x86_64"
# struct pt_regs members holding a syscall's arguments, in order, its number
# and its return value (arch/x86/entry/entry_64.S).
SYSCALL_ARG_REGS = ("di", "si", "dx", "r10", "r8", "r9")
SYSCALL_NR_REG = "orig_ax"

# Kernel constants the BPF code or the decoders use, and the header that
# defines each (UAPI headers are looked up first, then the kernel's own).
# Generated into events.h as RS_<NAME>.
KERNEL_CONSTANTS: dict[str, str] = {
    "AT_FDCWD": "linux/fcntl.h",
    "AT_SYMLINK_NOFOLLOW": "linux/fcntl.h",
    "AT_REMOVEDIR": "linux/fcntl.h",
    "AT_SYMLINK_FOLLOW": "linux/fcntl.h",
    "AT_EMPTY_PATH": "linux/fcntl.h",
    "RENAME_EXCHANGE": "linux/fs.h",
    "O_CREAT": "asm-generic/fcntl.h",
    "O_WRONLY": "asm-generic/fcntl.h",
    "O_TRUNC": "asm-generic/fcntl.h",
    "O_NOFOLLOW": "asm-generic/fcntl.h",
    "MS_REMOUNT": "linux/mount.h",
    "MS_BIND": "linux/mount.h",
    "MS_MOVE": "linux/mount.h",
    "MS_UNBINDABLE": "linux/mount.h",
    "MS_PRIVATE": "linux/mount.h",
    "MS_SLAVE": "linux/mount.h",
    "MS_SHARED": "linux/mount.h",
    "PF_KTHREAD": "include/linux/sched.h",
    "PF_IO_WORKER": "include/linux/sched.h",
    "TS_COMPAT": "arch/x86/include/asm/thread_info.h",
    # process activity (hooks/activity.h)
    "PTRACE_TRACEME": "linux/ptrace.h",
    "PTRACE_ATTACH": "linux/ptrace.h",
    "PTRACE_SEIZE": "linux/ptrace.h",
    "PR_SET_NAME": "linux/prctl.h",
    "NSFS_MAGIC": "linux/magic.h",
    "PID_FS_MAGIC": "linux/magic.h",
    "ANON_INODE_FS_MAGIC": "linux/magic.h",
    "S_IFIFO": "linux/stat.h",
    # engineer B (issue 9): modules, bpf, memory, io_uring, the new mount API
    "AT_RECURSIVE": "linux/fcntl.h",
    "MS_RDONLY": "linux/mount.h",
    "MS_NOSUID": "linux/mount.h",
    "MS_NODEV": "linux/mount.h",
    "MS_NOEXEC": "linux/mount.h",
    "MS_NOATIME": "linux/mount.h",
    "MS_NODIRATIME": "linux/mount.h",
    "MS_STRICTATIME": "linux/mount.h",
    "MS_REC": "linux/mount.h",
    "MOUNT_ATTR_RDONLY": "linux/mount.h",
    "MOUNT_ATTR_NOSUID": "linux/mount.h",
    "MOUNT_ATTR_NODEV": "linux/mount.h",
    "MOUNT_ATTR_NOEXEC": "linux/mount.h",
    "MOUNT_ATTR__ATIME": "linux/mount.h",
    "MOUNT_ATTR_NOATIME": "linux/mount.h",
    "MOUNT_ATTR_STRICTATIME": "linux/mount.h",
    "MOUNT_ATTR_NODIRATIME": "linux/mount.h",
    "MOVE_MOUNT_F_EMPTY_PATH": "linux/mount.h",
    "OPEN_TREE_CLONE": "linux/mount.h",
    "MAP_ANONYMOUS": "asm-generic/mman-common.h",
    "BPF_OBJ_NAME_LEN": "linux/bpf.h",
    "BPF_JMP": "linux/bpf_common.h",
    "BPF_CALL": "linux/bpf.h",
    "O_NONBLOCK": "asm-generic/fcntl.h",
    # network (hooks/net.h, hooks/dns.h)
    "AF_INET": "include/linux/socket.h",
    "AF_INET6": "include/linux/socket.h",
    "EINPROGRESS": "asm-generic/errno.h",
    "TC_ACT_UNSPEC": "linux/pkt_cls.h",
    "ETH_P_IP": "linux/if_ether.h",
    "ETH_P_IPV6": "linux/if_ether.h",
    "IPPROTO_HOPOPTS": "linux/in6.h",
    "IPPROTO_ROUTING": "linux/in6.h",
    "IPPROTO_FRAGMENT": "linux/in6.h",
    "IPPROTO_DSTOPTS": "linux/in6.h",
    "IP_MF": "include/net/ip.h",
    "IP_OFFSET": "include/net/ip.h",
}

# i386 syscalls with no x86-64 twin of the same name, and the syscall of the
# table each stands for: the opt-in compat counter counts them under its
# type (ebpf/hooks/compat.h; the syscall tracepoints never see 32-bit calls).
COMPAT_ALIASES: dict[str, str] = {
    "chown32": "chown", "fchown32": "fchown", "lchown32": "lchown",
    "mmap2": "mmap", "umount": "umount2", "utimensat_time64": "utimensat",
}

# -- declarations -------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """How a syscall's sys_exit wrapper hands its arguments to a body.

    The wrapper declares ``struct <struct> c``, calls ``init(&c, TYPE)``,
    assigns each argument by its role (``roles[role]`` with ``{a}`` the
    argument's register value), then returns ``body(ctx, &c)``.
    """

    struct: str
    init: str
    body: str
    roles: dict[str, str]
    # roles whose argument position programs other than the wrapper need:
    # syscall_table.h gets rs_syscall_arg_<role>(nr) (-1: the syscall has none)
    indexed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Syscall:
    """One syscall of an event type (x86-64 name, as in asm/unistd_64.h)."""

    name: str
    args: tuple[str, ...]                 # the role of each argument ("" = unused)
    fixed: tuple[tuple[str, str], ...] = ()  # (role, C expression): roles with a constant value
    tracepoint: str | None = None         # syscalls/sys_exit_<this> when not the syscall's name
    since: str | None = None              # kernel that added it: its program is optional
    # (role, constant, type): the event is of `type` when that argument has the flag
    alt_type: tuple[str, str, str] | None = None
    call: Call | None = None              # its call kind when not its type's (mount's new API)

    @property
    def program(self) -> str:
        return f"rs_exit_{self.name}"

    @property
    def exit_tracepoint(self) -> str:
        return f"syscalls/sys_exit_{self.tracepoint or self.name}"

    def role_index(self, role: str) -> int | None:
        return self.args.index(role) if role in self.args else None

    def call_of(self, owner: EventType) -> Call:
        call = self.call or owner.call
        assert call is not None, f"{owner.name}: syscall {self.name} without a call kind"
        return call


@dataclass(frozen=True)
class EventType:
    name: str
    id: int | None                        # enum rs_event_type; None: not produced
    category: str                         # file, process, kernel, network
    doc: str
    record: str | None = None             # its record struct in events.h
    call: Call | None = None              # the call kind of its syscall wrappers
    syscalls: tuple[Syscall, ...] = ()
    init: tuple[str, ...] = ()            # extra statements of every wrapper (after Call.init)
    programs: tuple[str, ...] = ()        # hand-written programs every hook set attaches
    capture: str | None = None            # tracepoint set: objects from CAPTURES[capture]
    precise: tuple[str, ...] = ()         # fentry/kprobe sets: rs_<flavor>_<name> captures
    precise_requires: tuple[str, ...] = ()  # PRECISE_FEATURES keys the captures need
    files: tuple[str, ...] = ()           # file objects (FILE_TEMPLATE) under the type
    file_approvers: bool = False          # their path/name fields approve
    process_fields: bool = False          # the type's object is a process image (PROCESS_TEMPLATE)
    processes: tuple[str, ...] = ()       # sub-objects that are another process's context (+ parent, ancestors)
    fields: tuple[FieldSpec, ...] = ()    # its own fields, relative to the type's name
    # field (relative) -> the kernel check enforcing an approver on it
    kernel_approvers: dict[str, str] = field(default_factory=dict)
    # path fields (relative) whose literal directory prefix the kernel checks
    # (RS_APPROVE_PREFIX): the path of the file the record names there
    prefix_approvers: tuple[str, ...] = ()
    # file fields (relative) the kernel compares with the basename of the
    # task's executable and of its parent's, as recorded at exec and fork
    # (`unlink.file.path == process.file.path`: filters.h rs_approve_exec_name)
    exec_approvers: tuple[str, ...] = ()
    discarders: bool = False              # inode discarders apply (kernel-walked file.path)
    invalidates: str | None = None        # "inode": moves files (tombstones); "mounts": the revision
    lifecycle: bool = False               # always hooked: the process cache needs every one
    # tracepoints ("group/name") the type needs on every hook set: it is left
    # out where the kernel lacks one (module/*: kernels without CONFIG_MODULES)
    requires_tracepoints: tuple[str, ...] = ()
    # programs (of `programs`) attached only where their tracepoint ("group/name") exists: one
    # tracepoint under two names across kernels; the type needs at least one of them
    program_tracepoints: tuple[tuple[str, str], ...] = ()
    requires: tuple[str, ...] = ()        # features (agent/features.py) it needs in every hook set
    # fields rooted elsewhere than at the type's name: (prefix, fields), e.g. dns's network.*
    context: tuple[tuple[str, tuple[FieldSpec, ...]], ...] = ()
    # syscalls its bodies recognize without hooking them (RS_NR_<name> generated for them too)
    related_syscalls: tuple[str, ...] = ()
    # tc classifiers among its programs and the clsact hook each goes on ("egress" / "ingress")
    tc_programs: tuple[tuple[str, str], ...] = ()
    # fields of other types its records fill, with the programs (of `programs`) that only
    # serve them: the type is hooked when a rule reads such a field, and those programs are
    # loaded only when a policy has a rule of the field's type
    fills: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def produced(self) -> bool:
        return self.id is not None

    @property
    def tracepoint_needs(self) -> tuple[tuple[str, ...], ...]:
        """What the type needs of the kernel's tracepoints, each need a tuple
        of alternatives: every requires_tracepoints entry, and one of its
        program_tracepoints' (a tracepoint renamed across kernels)."""
        needs: tuple[tuple[str, ...], ...] = tuple((tp,) for tp in self.requires_tracepoints)
        if self.program_tracepoints:
            needs += (tuple(tp for _, tp in self.program_tracepoints),)
        return needs

    def lacking_tracepoints(self, exists: Callable[[str], bool]) -> tuple[str, ...]:
        """The needs (tracepoint_needs) no tracepoint of which ``exists``:
        "group/name", or "a or b" for alternatives."""
        return tuple(" or ".join(need) for need in self.tracepoint_needs if not any(exists(tp) for tp in need))


# Captures the tracepoint set uses: the inode ctime tracepoints name the
# objects of path-based calls (ebpf/hooks/ctime.h, 6.13+).
CAPTURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name -> (programs, features they need)
    "ctime": (("rs_ctime_ns_xchg", "rs_ctime_xchg_skip", "rs_inode_set_ctime"), ("ctime_tp",)),
    # mprotect: the mapping before the call, found at sys_enter (bpf_find_vma)
    "vma": (("rs_enter_mprotect", "rs_enter_pkey_mprotect"), ("find_vma",)),
}

# -- call kinds ---------------------------------------------------------------

# Files: the common sys_exit of every file-integrity syscall (fim_exit.h).
FIM_CALL = Call("rs_fim_call", "rs_fim_call_init", "rs_fim_exit", {
    "path": "c.path = (const char *){a};",
    "path_or_fd": "c.path = (const char *){a}; c.null_means_fd = true;",  # NULL: the dirfd's file
    "dirfd": "c.dirfd = (int){a};",
    "fd": "c.use_fd = true; c.fd = (int){a};",
    "path2": "c.path2 = (const char *){a};",
    "dirfd2": "c.dirfd2 = (int){a};",
    "mode": "c.mode = {a};",
    "uid": "c.uid = {a};",
    "gid": "c.gid = {a};",
    "flags": "c.flags = {a};",
    "at_flags": "c.at_flags = {a}; c.flags = {a};",
    "lookup_flags": "c.at_flags = {a};",   # AT_* flags of the lookup only (not reported)
    "xattr": "c.xattr = (const char *){a};",
    "xattr_args": "c.xattr_args = (const void *){a};",  # struct xattr_args: the body reads flags
    "fstype": "c.fstype = (const char *){a};",
})

# open, openat, openat2, creat (hooks/open.h).
OPEN_CALL = Call("rs_open_args", "rs_open_args_init", "rs_open_exit", {
    "path": "c.path = (const char *){a};",
    "dirfd": "c.dirfd = (int){a};",
    "flags": "c.flags = {a};",
    "mode": "c.mode = {a};",
    "open_how": "c.how = (const void *){a};",  # openat2: the body reads flags and mode
})

# Process activity: ptrace, signals, credentials, memfd_create, splice, prctl,
# chdir, unshare, setns (hooks/activity.h). Every argument is also kept raw
# in the record (rs_activity_event.args); the roles are what the body reads.
ACTIVITY_CALL = Call("rs_activity_call", "rs_activity_call_init", "rs_activity_exit", {
    "pid": "c.pid = (int){a};",            # a process or thread, as the caller's pid namespace names it
    "sig": "c.sig = (int){a};",
    "request": "c.request = (long){a};",
    "addr": "c.addr = {a};",
    "fd": "c.fd = (int){a};",
    "fd_out": "c.fd_out = (int){a};",
    "str": "c.str = (const char *){a};",    # a path or a name in user memory
    "flags": "c.flags = {a};",
    "option": "c.option = (int){a};",
    "arg2": "c.arg2 = {a};",
    "clone_args": "c.flags = rs_clone3_flags((const struct clone_args *){a});",  # clone3: its flags
}, indexed=("sig",))  # the signal target captures compare the signal with the call's
# The new mount API (fsmount, move_mount, open_tree, mount_setattr): mount
# events in the file-integrity record, from the objects the kernel holds at
# exit (hooks/mount_api.h). Same struct as FIM_CALL (the mount type's init).
MOUNT_API_CALL = Call("rs_fim_call", "rs_fim_call_init", "rs_mount_api_exit", {
    "path": "c.path = (const char *){a};",       # the mount point (target)
    "dirfd": "c.dirfd = (int){a};",
    "path2": "c.path2 = (const char *){a};",     # the source
    "dirfd2": "c.dirfd2 = (int){a};",
    "fd": "c.use_fd = true; c.fd = (int){a};",   # fsmount: the filesystem context
    "flags": "c.flags = {a};",
    "at_flags": "c.at_flags = {a};",
    "mount_attr": "c.mount_attr = (const void *){a};",  # struct mount_attr (user memory)
})

# load_module, unload_module (hooks/module.h).
MODULE_CALL = Call("rs_module_call", "rs_module_call_init", "rs_module_exit", {
    "image": "c.image = (const void *){a};",     # init_module: the module in memory
    "len": "c.len = {a};",
    "fd": "c.fd = (int){a};",                    # finit_module: the module file
    "args": "c.args = (const char *){a};",
    "flags": "c.flags = {a};",
    "name": "c.name = (const char *){a};",       # delete_module
})

# bpf(cmd, attr, size) (hooks/bpf.h).
BPF_CALL = Call("rs_bpf_call", "rs_bpf_call_init", "rs_bpf_exit", {
    "cmd": "c.cmd = {a};",
    "attr": "c.attr = (const void *){a};",
    "size": "c.size = {a};",
})

# mmap, mprotect, pkey_mprotect (hooks/mem.h).
MEM_CALL = Call("rs_mem_call", "rs_mem_call_init", "rs_mem_exit", {
    "addr": "c.addr = {a};",
    "len": "c.len = {a};",
    "prot": "c.prot = {a};",
    "flags": "c.flags = {a};",
    "fd": "c.fd = (int){a};",
    "pkey": "c.pkey = (int){a};",
})

# io_uring_setup(entries, params) (hooks/io_uring.h); submissions come from
# the io_uring tracepoints (`programs`).
IO_URING_CALL = Call("rs_iou_call", "rs_iou_call_init", "rs_io_uring_setup_exit", {
    "entries": "c.entries = {a};",
    "params": "c.params = (const void *){a};",
})

# Sockets: connect, bind, accept, accept4 (hooks/net.h). The socket comes
# from the descriptor; the caller's sockaddr is read only when the call failed.
NET_CALL = Call("rs_net_call", "rs_net_call_init", "rs_net_exit", {
    "fd": "c.fd = (int){a};",
    "sockaddr": "c.uaddr = (const void *){a};",
    "addrlen": "c.addrlen = (int){a};",
})

# How a file-integrity call looks its path up (fim_exit.h, rs_fim_lookup):
# follow the last symlink unless AT_SYMLINK_NOFOLLOW, "" + AT_EMPTY_PATH is
# the dirfd's file; never follow (entries made, removed, renamed); link:
# follow only with AT_SYMLINK_FOLLOW.
LOOKUP_FOLLOW = "c.lookup = RS_LOOKUP_FOLLOW;"
LOOKUP_LINK = "c.lookup = RS_LOOKUP_LINK;"
NOFOLLOW = (("lookup_flags", "RS_AT_SYMLINK_NOFOLLOW"),)

# Precise captures' feature needs, per flavor (agent/features.py names).
PRECISE_FEATURES: dict[str, dict[str, str]] = {
    "security_path": {"fentry": "security_path", "kprobe": "kprobe_security_path"},
}

# -- fields -------------------------------------------------------------------

_FIM, _PROC, _KERNEL = "file", "process", "kernel"
# chmod's new mode approves by its bits (`& (S_ISUID | S_ISGID) > 0`): the
# kernel tests the call's mode (fim_objects.h rs_fim_filter_flags)
_MODE = F("file.destination.mode", INT, approver=FLAGS, constants="S_I*", doc="new mode")
_OPEN_APPROVERS = {"file.path": "basename", "file.name": "basename", "flags": "flags"}
_FILE_APPROVERS = {"file.path": "basename", "file.name": "basename"}
# The path the kernel walks for the record (ebpf/include/filters.h
# rs_approve_prefix): the file's; rename's object has moved by then, so its
# new path, the destination.
_FILE_PREFIX = ("file.path",)
# rename: the destination's name too (rs_fim_send_rename), in the same map as the source's
_RENAME_APPROVERS = {**_FILE_APPROVERS, "file.destination.path": "basename", "file.destination.name": "basename"}
_RENAME_PREFIX = ("file.destination.path",)

_S = Syscall

# -- network fields (the reference agent's names; docs/network.md) -----------------

_NET = "network"
# Weights as the reference agent's: the address is the better approver.
_ADDR = Approver(ApproverKind.SCALAR, 90)
_PORT = Approver(ApproverKind.SCALAR, 80)
_PROTOCOL = F("protocol", INT, constants="L4 protocols",
              doc="the socket's protocol (`IP_PROTO_TCP`, `IP_PROTO_UDP`...)")
_NET_APPROVERS = {"addr.ip": "addr", "addr.port": "port"}


def _addr_fields(ip_doc: str, port_doc: str = "port") -> tuple[FieldSpec, ...]:
    return (
        F("addr.ip", IP, approver=_ADDR, doc=f"{ip_doc} (IPv4-mapped IPv6 addresses as IPv4)"),
        F("addr.port", INT, approver=_PORT, doc=port_doc),
        F("addr.family", INT, constants="AF_*", doc="address family (`AF_INET`, `AF_INET6`)"),
        F("addr.is_public", BOOL, doc="the address is a public (globally routable) one"),
    )


# `network.*`: the packet of a dns event (the reference restricts it to its packet events)
_NETWORK_CONTEXT: tuple[FieldSpec, ...] = (
    F("source.ip", IP, doc="source address of the packet"),
    F("source.port", INT, doc="source port"),
    F("source.is_public", BOOL, doc="the source address is a public (globally routable) one"),
    F("destination.ip", IP, doc="destination address (the DNS server)"),
    F("destination.port", INT, doc="destination port"),
    F("destination.is_public", BOOL, doc="the destination address is a public (globally routable) one"),
    F("device.ifname", STR, doc="interface the packet left through"),
    F("l3_protocol", INT, constants="L3 protocols", doc="`ETH_P_IP` or `ETH_P_IPV6`"),
    F("l4_protocol", INT, constants="L4 protocols", doc="`IP_PROTO_UDP`"),
    F("network_direction", INT, constants="network directions", doc="`EGRESS`"),
    F("size", INT, doc="size of the packet, bytes"),
)

EVENT_TYPES: tuple[EventType, ...] = (
    EventType(
        "open", 1, _FIM, "a file was opened", record="rs_file_event", call=OPEN_CALL,
        syscalls=(
            _S("open", ("path", "flags", "mode")),
            _S("openat", ("dirfd", "path", "flags", "mode")),
            _S("openat2", ("dirfd", "path", "open_how")),
            _S("creat", ("path", "mode"), fixed=(("flags", "RS_O_CREAT | RS_O_WRONLY | RS_O_TRUNC"),)),
        ),
        precise=("vfs_open",),
        files=("file",), file_approvers=True,
        fields=(
            F("flags", INT, approver=FLAGS, constants="O_*", doc="open flags"),
            F("file.destination.mode", INT, constants="S_I*", doc="mode of the created file"),
            RETVAL,
        ),
        prefix_approvers=_FILE_PREFIX, kernel_approvers=_OPEN_APPROVERS, discarders=True),
    EventType(
        "chmod", 2, _FIM, "a file's permissions were changed", record="rs_file_event", call=FIM_CALL,
        init=(LOOKUP_FOLLOW,),
        syscalls=(
            _S("chmod", ("path", "mode")),
            _S("fchmod", ("fd", "mode")),
            _S("fchmodat", ("dirfd", "path", "mode")),
            _S("fchmodat2", ("dirfd", "path", "mode", "at_flags"), since="6.6"),
        ),
        capture="ctime", precise=("path_chmod",), precise_requires=("security_path",),
        files=("file",), file_approvers=True,
        fields=(_MODE, F("file.destination.rights", INT, resolver="rights", constants="S_I*",
                         doc="new permission bits"), RETVAL),
        prefix_approvers=_FILE_PREFIX, kernel_approvers={**_FILE_APPROVERS, "file.destination.mode": "flags"},
        discarders=True),
    EventType(
        "chown", 3, _FIM, "a file's owner was changed", record="rs_file_event", call=FIM_CALL,
        init=(LOOKUP_FOLLOW,),
        syscalls=(
            _S("chown", ("path", "uid", "gid")),
            _S("fchown", ("fd", "uid", "gid")),
            _S("lchown", ("path", "uid", "gid"), fixed=(("at_flags", "RS_AT_SYMLINK_NOFOLLOW"),)),
            _S("fchownat", ("dirfd", "path", "uid", "gid", "at_flags")),
        ),
        capture="ctime", precise=("path_chown",), precise_requires=("security_path",),
        files=("file",), file_approvers=True,
        fields=(
            F("file.destination.uid", INT, doc="new owner UID"),
            F("file.destination.gid", INT, doc="new owner GID"),
            F("file.destination.user", STR, doc="new owner user name"),
            F("file.destination.group", STR, doc="new owner group name"),
            RETVAL,
        ),
        prefix_approvers=_FILE_PREFIX, kernel_approvers=_FILE_APPROVERS, discarders=True),
    EventType(
        "mkdir", 4, _FIM, "a directory was created", record="rs_file_event", call=FIM_CALL,
        syscalls=(
            _S("mkdir", ("path", "mode")),
            _S("mkdirat", ("dirfd", "path", "mode")),
        ),
        capture="ctime", precise=("path_mkdir",), precise_requires=("security_path",),
        files=("file",), file_approvers=True,
        fields=(F("file.destination.mode", INT, constants="S_I*", doc="mode of the new directory"), RETVAL),
        prefix_approvers=_FILE_PREFIX, kernel_approvers=_FILE_APPROVERS, discarders=True),
    EventType(
        "rmdir", 5, _FIM, "a directory was removed", record="rs_file_event", call=FIM_CALL,
        syscalls=(_S("rmdir", ("path",)),),   # and unlinkat(AT_REMOVEDIR), under unlink
        capture="ctime", precise=("path_rmdir",), precise_requires=("security_path",),
        files=("file",), file_approvers=True, fields=(RETVAL,),
        prefix_approvers=_FILE_PREFIX, kernel_approvers=_FILE_APPROVERS, discarders=True, invalidates="inode"),
    EventType(
        "unlink", 6, _FIM, "a file was deleted", record="rs_file_event", call=FIM_CALL,
        syscalls=(
            _S("unlink", ("path",)),
            _S("unlinkat", ("dirfd", "path", "flags"), alt_type=("flags", "RS_AT_REMOVEDIR", "rmdir")),
        ),
        capture="ctime", precise=("path_unlink",), precise_requires=("security_path",),
        files=("file",), file_approvers=True,
        fields=(F("flags", INT, doc="unlinkat flags"), RETVAL),
        prefix_approvers=_FILE_PREFIX, kernel_approvers=_FILE_APPROVERS, exec_approvers=("file.path", "file.name"),
        discarders=True, invalidates="inode"),
    EventType(
        "rename", 7, _FIM, "a file was renamed; `file` is the source, `file.destination` the target",
        record="rs_file_event", call=FIM_CALL,
        syscalls=(
            _S("rename", ("path", "path2")),
            _S("renameat", ("dirfd", "path", "dirfd2", "path2")),
            _S("renameat2", ("dirfd", "path", "dirfd2", "path2", "flags")),
        ),
        capture="ctime", precise=("path_rename",), precise_requires=("security_path",),
        files=("file", "file.destination"), file_approvers=True, fields=(RETVAL,),
        prefix_approvers=_RENAME_PREFIX, kernel_approvers=_RENAME_APPROVERS, discarders=True, invalidates="inode"),
    EventType(
        "link", 8, _FIM, "a hard link was created; `file` is the source, `file.destination` the link",
        record="rs_file_event", call=FIM_CALL, init=(LOOKUP_LINK,),
        syscalls=(
            _S("link", ("path", "path2")),
            _S("linkat", ("dirfd", "path", "dirfd2", "path2", "at_flags")),
        ),
        capture="ctime", precise=("path_link",), precise_requires=("security_path",),
        files=("file", "file.destination"), file_approvers=True, fields=(RETVAL,),
        prefix_approvers=_FILE_PREFIX, kernel_approvers=_FILE_APPROVERS, discarders=True, invalidates="inode"),
    EventType(
        "utimes", 9, _FIM, "a file's access/modification times were changed", record="rs_file_event",
        call=FIM_CALL, init=(LOOKUP_FOLLOW,),
        syscalls=(
            _S("utime", ("path", "")),
            _S("utimes", ("path", "")),
            # utimensat(fd, NULL, times, 0) is futimens(fd, times)
            _S("utimensat", ("dirfd", "path_or_fd", "", "at_flags")),
            _S("futimesat", ("dirfd", "path_or_fd", "")),
        ),
        capture="ctime", precise=("vfs_utimes",),
        files=("file",), file_approvers=True, fields=(RETVAL,),
        prefix_approvers=_FILE_PREFIX, kernel_approvers=_FILE_APPROVERS, discarders=True),
    EventType(
        "setxattr", 10, _FIM, "an extended attribute was set", record="rs_file_event", call=FIM_CALL,
        init=(LOOKUP_FOLLOW,),
        syscalls=(
            _S("setxattr", ("path", "xattr", "", "", "flags")),
            _S("lsetxattr", ("path", "xattr", "", "", "flags"), fixed=NOFOLLOW),
            _S("fsetxattr", ("fd", "xattr", "", "", "flags")),
            # setxattrat(dfd, path, at_flags, name, struct xattr_args *, size)
            _S("setxattrat", ("dirfd", "path", "lookup_flags", "xattr", "xattr_args", ""), since="6.13"),
        ),
        capture="ctime", precise=("inode_setxattr", "mnt_want_write"),
        files=("file",), file_approvers=True,
        fields=(
            F("file.destination.name", STR, doc="attribute name"),
            F("file.destination.namespace", STR, doc="attribute namespace (user, security...)"),
            RETVAL,
        ),
        prefix_approvers=_FILE_PREFIX, kernel_approvers=_FILE_APPROVERS, discarders=True),
    EventType(
        "removexattr", 11, _FIM, "an extended attribute was removed", record="rs_file_event", call=FIM_CALL,
        init=(LOOKUP_FOLLOW,),
        syscalls=(
            _S("removexattr", ("path", "xattr")),
            _S("lremovexattr", ("path", "xattr"), fixed=NOFOLLOW),
            _S("fremovexattr", ("fd", "xattr")),
            # removexattrat(dfd, path, at_flags, name)
            _S("removexattrat", ("dirfd", "path", "at_flags", "xattr"), since="6.13"),
        ),
        capture="ctime", precise=("inode_removexattr", "mnt_want_write"),
        files=("file",), file_approvers=True,
        fields=(
            F("file.destination.name", STR, doc="attribute name"),
            F("file.destination.namespace", STR, doc="attribute namespace"),
            RETVAL,
        ),
        prefix_approvers=_FILE_PREFIX, kernel_approvers=_FILE_APPROVERS, discarders=True),
    EventType(
        "mount", 12, _FIM, "a filesystem was mounted", record="rs_file_event", call=FIM_CALL,
        init=("c.need_base = true;",),
        # mount(source, target, fstype, flags, data)
        syscalls=(
            _S("mount", ("path2", "path", "fstype", "flags", "")),
            # the new mount API (5.2+; mount_setattr 5.12, open_tree_attr 6.15): hooks/mount_api.h
            _S("fsmount", ("fd", "", "flags"), call=MOUNT_API_CALL),
            _S("move_mount", ("dirfd2", "path2", "dirfd", "path", "flags"), call=MOUNT_API_CALL),
            _S("open_tree", ("dirfd2", "path2", "flags"), call=MOUNT_API_CALL),
            _S("open_tree_attr", ("dirfd2", "path2", "flags", "mount_attr", ""), call=MOUNT_API_CALL,
               since="6.15"),
            _S("mount_setattr", ("dirfd", "path", "at_flags", "mount_attr", ""), call=MOUNT_API_CALL,
               since="5.12"),
        ),
        fields=(
            F("mountpoint.path", STR, glob=True, doc="mount point (empty for a detached mount)"),
            F("source.path", STR, glob=True, doc="mounted source (bind mounts)"),
            F("fs_type", STR, doc="filesystem type"),
            F("flags", INT, doc="the call's flags as mount(2) flags (MS_*): the new API's attributes and "
              "operations translated (fsmount: its MOUNT_ATTR_*; move_mount: MS_MOVE; open_tree: MS_BIND "
              "(+MS_REC); mount_setattr: MS_REMOUNT|MS_BIND + the attributes set)"),
            F("detached", BOOL, doc="the mount is not attached to any mount namespace's tree yet (fsmount, "
              "open_tree(OPEN_TREE_CLONE)): nothing is visible until a move_mount attaches it"),
            F("syscall", STR, doc="the syscall: mount, fsmount, move_mount, open_tree, open_tree_attr, "
              "mount_setattr (our field)"),
            RETVAL,
        ),
        invalidates="mounts"),
    EventType(
        "umount", 13, _FIM, "a filesystem was unmounted", record="rs_file_event", call=FIM_CALL,
        init=("c.need_base = true;",),
        # the syscall is umount2; its tracepoint is named after the kernel function
        syscalls=(_S("umount2", ("path", "flags"), tracepoint="umount"),),
        fields=(RETVAL,),
        invalidates="mounts"),
    EventType(
        "exec", 14, _PROC, "a process executed a file; `exec.*` is the new image", record="rs_exec_event",
        programs=("rs_sched_exec",), process_fields=True, lifecycle=True),
    EventType(
        "fork", 15, _PROC, "a process was created; `fork.*` is the child", record="rs_fork_event",
        programs=("rs_sched_fork",), process_fields=True, lifecycle=True),
    EventType(
        "exit", 16, _PROC, "a process exited; `exit.*` is the exiting process", record="rs_exit_event",
        programs=("rs_sched_exit",), process_fields=True, lifecycle=True,
        fields=(
            F("code", INT, doc="exit code, or the number of the signal that killed it"),
            F("cause", STR, doc="how it ended: `EXITED`, `SIGNALED` or `COREDUMPED` (constants of those names)"),
        )),
    # -- engineer A of issue 9: process activity (hooks/activity.h, agent/events/activity_events.py) --
    EventType(
        "ptrace", 17, _PROC, "ptrace was called; `ptrace.tracee` is the traced process", record="rs_activity_event",
        call=ACTIVITY_CALL, syscalls=(_S("ptrace", ("request", "pid", "addr", "")),),
        # the tracee of requests on an existing tracee, taken before the call (PTRACE_DETACH unlinks it)
        programs=("rs_enter_ptrace",),
        # the task the call looked up, even when it then fails (an attach refused with EPERM)
        precise=("find_get_task_by_vpid",), processes=("tracee",),
        fields=(
            F("request", INT, approver=SCALAR, constants="PTRACE_*", doc="ptrace request"),
            F("address", INT, doc="the `addr` argument (the tracee's memory address of PEEK/POKE requests)"),
            RETVAL,
        ),
        kernel_approvers={"request": "value"}),
    EventType(
        "signal", 18, _PROC, "a process sent a signal (kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo, "
        "pidfd_send_signal); `signal.target` is the process it was sent to", record="rs_activity_event",
        call=ACTIVITY_CALL,
        syscalls=(
            _S("kill", ("pid", "sig")),
            _S("tkill", ("pid", "sig")),
            _S("tgkill", ("pid", "", "sig")),
            _S("rt_sigqueueinfo", ("pid", "sig", "")),
            _S("rt_tgsigqueueinfo", ("pid", "", "sig", "")),
            _S("pidfd_send_signal", ("fd", "sig", "", "")),
        ),
        # the task each signal is generated for (after the permission check)
        programs=("rs_signal_generate",),
        # the task the permission check is made for: also the targets of refused signals
        precise=("check_kill_permission",), processes=("target",),
        fields=(
            F("type", INT, approver=SCALAR, constants="SIG*", doc="signal number (0: the existence check)"),
            F("pid", INT, doc="target process ID: the target's (host) process ID when the kernel named it, "
              "else the pid argument as the caller gave it"),
            RETVAL,
        ),
        kernel_approvers={"type": "value"}),
    EventType(
        "setuid", 19, _PROC, "a process changed its user IDs (setuid, setreuid, setresuid, setfsuid); the fields "
        "are its IDs after the call, from the kernel (unchanged when it failed)", record="rs_activity_event",
        call=ACTIVITY_CALL,
        syscalls=(_S("setuid", ("",)), _S("setreuid", ("", "")), _S("setresuid", ("", "", "")),
                  _S("setfsuid", ("",))),
        fields=(
            F("uid", INT, doc="real UID after the call"),
            F("user", STR, doc="real user name after the call"),
            F("euid", INT, doc="effective UID after the call"),
            F("euser", STR, doc="effective user name after the call"),
            F("fsuid", INT, doc="filesystem UID after the call"),
            F("fsuser", STR, doc="filesystem user name after the call"),
            F("retval", INT, constants="errno",
              doc="return value: 0 or a negative errno; setfsuid returns the previous filesystem UID"),
        ),
        lifecycle=True),
    EventType(
        "setgid", 20, _PROC, "a process changed its group IDs (setgid, setregid, setresgid, setfsgid); the fields "
        "are its IDs after the call, from the kernel (unchanged when it failed)", record="rs_activity_event",
        call=ACTIVITY_CALL,
        syscalls=(_S("setgid", ("",)), _S("setregid", ("", "")), _S("setresgid", ("", "", "")),
                  _S("setfsgid", ("",))),
        fields=(
            F("gid", INT, doc="real GID after the call"),
            F("group", STR, doc="real group name after the call"),
            F("egid", INT, doc="effective GID after the call"),
            F("egroup", STR, doc="effective group name after the call"),
            F("fsgid", INT, doc="filesystem GID after the call"),
            F("fsgroup", STR, doc="filesystem group name after the call"),
            F("retval", INT, constants="errno",
              doc="return value: 0 or a negative errno; setfsgid returns the previous filesystem GID"),
        ),
        lifecycle=True),
    EventType(
        "capset", 21, _PROC, "a process changed its capability sets (capset); the sets after the call, from the kernel",
        record="rs_activity_event", call=ACTIVITY_CALL, syscalls=(_S("capset", ("", "")),),
        fields=(
            F("cap_effective", INT, constants="CAP_*", doc="effective capability set after the call"),
            F("cap_permitted", INT, constants="CAP_*", doc="permitted capability set after the call"),
            RETVAL,
        ),
        lifecycle=True),
    EventType(
        "memfd_create", 22, _PROC, "a process created an anonymous memory file (memfd_create): fileless code "
        "often starts here; `memfd_create.file` is the new file (`memfd:NAME`)", record="rs_activity_event",
        call=ACTIVITY_CALL, syscalls=(_S("memfd_create", ("str", "flags")),), files=("file",),
        fields=(
            F("name", STR, doc="the name given (the kernel's, without its `memfd:` prefix, when the call succeeded)"),
            F("flags", INT, approver=FLAGS, constants="MFD_*", doc="memfd_create flags"),
            RETVAL,
        ),
        kernel_approvers={"flags": "flags"}),
    EventType(
        "splice", 23, _FIM, "splice moved data between a file and a pipe; `splice.file` is the end that is not a "
        "pipe (fd_in when both are)", record="rs_activity_event", call=ACTIVITY_CALL,
        syscalls=(_S("splice", ("fd", "", "fd_out", "", "", "")),),
        # the flags of fd_out's last pipe buffer before the call
        programs=("rs_enter_splice",),
        files=("file",), file_approvers=True,
        fields=(
            F("pipe_entry_flag", INT, constants="PIPE_BUF_FLAG_*",
              doc="flags of the last buffer of the `fd_out` pipe before the call (0: fd_out is no pipe)"),
            F("pipe_exit_flag", INT, approver=FLAGS, constants="PIPE_BUF_FLAG_*",
              doc="flags of the last buffer of the `fd_out` pipe after the call: `PIPE_BUF_FLAG_CAN_MERGE` on a "
              "page spliced from a file is the Dirty Pipe write primitive (CVE-2022-0847)"),
            RETVAL,
        ),
        kernel_approvers={**_FILE_APPROVERS, "pipe_exit_flag": "flags"}),
    EventType(
        "prctl", 24, _PROC, "prctl was called", record="rs_activity_event", call=ACTIVITY_CALL,
        syscalls=(_S("prctl", ("option", "arg2", "", "", "")),),
        fields=(
            F("option", INT, approver=SCALAR, constants="PR_*", doc="prctl option"),
            F("new_name", STR, doc="PR_SET_NAME: the name the caller passed (up to 255 bytes; the kernel keeps 15)"),
            F("is_name_truncated", BOOL, doc="PR_SET_NAME: the name is longer than the kernel keeps (15 bytes)"),
            RETVAL,
        ),
        kernel_approvers={"option": "value"},
        # PR_SET_NAME renames the process in the cache: always hooked, on the lifecycle ring, and a
        # successful rename passes the approvers (hooks/activity.h)
        lifecycle=True),
    EventType(
        "chdir", 25, _FIM, "a process changed its working directory (chdir, fchdir); `chdir.file` is the new one, "
        "from the kernel", record="rs_activity_event", call=ACTIVITY_CALL,
        syscalls=(_S("chdir", ("str",)), _S("fchdir", ("fd",))),
        files=("file",), file_approvers=True,
        fields=(RETVAL, F("syscall.path", STR, doc="the path argument of chdir as the caller gave it "
                          "(relative, unresolved); empty for fchdir")),
        kernel_approvers=_FILE_APPROVERS),
    EventType(
        "unshare", 26, _PROC, "a process moved into new namespaces or unshared its context (unshare), or made a "
        "child in new namespaces (clone, clone3 with `CLONE_NEW*` flags: the parent's call, `retval` the child's "
        "pid)", record="rs_activity_event", call=ACTIVITY_CALL,
        syscalls=(_S("unshare", ("flags",)), _S("clone", ("flags",)), _S("clone3", ("clone_args",))),
        fields=(
            F("flags", INT, approver=FLAGS, constants="CLONE_*",
              doc="unshare or clone flags: `CLONE_NEW*` for the namespaces made (clone: the low byte is the "
              "child's exit signal)"),
            RETVAL,
        ),
        kernel_approvers={"flags": "flags"}),
    EventType(
        "setns", 27, _PROC, "a process joined a namespace (setns): of a namespace file (/proc/PID/ns/*) or of the "
        "process a pidfd names (`setns.target`)", record="rs_activity_event", call=ACTIVITY_CALL,
        syscalls=(_S("setns", ("fd", "flags")),), processes=("target",),
        fields=(
            F("nstype", INT, constants="CLONE_*", doc="the nstype argument (0: any type; a pidfd: the types to join)"),
            F("namespace.type", INT, approver=FLAGS, constants="CLONE_*",
              doc="the kind of namespace the file descriptor names (`CLONE_NEWNS`...), from the kernel; "
              "a pidfd: the nstype argument"),
            F("namespace.name", STR, doc="the kind's name (`mnt`, `net`, `pid`...), from the kernel"),
            F("namespace.inode", INT, doc="the namespace's inode number (as in `/proc/PID/ns/*` links)"),
            F("namespace.is_host", BOOL,
              doc="the namespace is the host's: pid 1's (as the agent sees it; the agent's own where pid 1's "
              "cannot be read)"),
            RETVAL,
        ),
        kernel_approvers={"namespace.type": "flags"}),
    EventType(
        "cgroup_write", 28, _PROC, "a process migrated a process to a cgroup by writing its pid to one of the "
        "cgroup's files (`cgroup.procs`, `cgroup.threads`; cgroup v1: `tasks`); `cgroup_write.file` is the "
        "cgroup's directory, from the kernel", record="rs_activity_event",
        # fires in cgroup_attach_task() once the migration succeeded (hooks/activity.h)
        programs=("rs_cgroup_attach_task",), requires_tracepoints=("cgroup/cgroup_attach_task",),
        # the writes whose descriptor names the cgroup's file
        related_syscalls=("write", "writev", "pwrite64", "pwritev", "pwritev2"),
        files=("file",),
        fields=(F("pid", INT, doc="the migrated process's ID (its thread-group ID, in the root pid namespace; "
                  "a `cgroup.threads` write moves one thread: its process's ID)"),)),
    # -- engineer B (issue 9): modules, bpf, memory, io_uring ----------------------
    EventType(
        "load_module", 30, _KERNEL, "a kernel module was loaded (init_module, finit_module)",
        record="rs_module_event", call=MODULE_CALL,
        syscalls=(
            _S("init_module", ("image", "len", "args")),
            _S("finit_module", ("fd", "args", "flags")),
        ),
        # module_load fires in load_module() with the new struct module (name, args)
        programs=("rs_module_load",), requires_tracepoints=("module/module_load",),
        files=("file",),
        fields=(
            F("name", STR, doc="module name, from the kernel's struct module (empty when the load failed "
              "before the kernel parsed it)"),
            F("loaded_from_memory", BOOL, doc="loaded from memory (init_module), not from a file"),
            F("args", STR, doc="module parameters, as one string"),
            F("argv", STR, array=True, doc="module parameters, split on spaces"),
            F("args_truncated", BOOL, doc="the parameters were longer than captured (4095 bytes)"),
            RETVAL,
        )),
    EventType(
        "unload_module", 31, _KERNEL, "a kernel module was unloaded (delete_module)",
        record="rs_module_event", call=MODULE_CALL,
        syscalls=(_S("delete_module", ("name", "flags")),),
        programs=("rs_module_free",), requires_tracepoints=("module/module_free",),
        fields=(F("name", STR, doc="module name (the kernel's, when it was unloaded; else the caller's)"), RETVAL)),
    EventType(
        "bpf", 32, _KERNEL, "the bpf syscall was called", record="rs_bpf_event", call=BPF_CALL,
        syscalls=(_S("bpf", ("cmd", "attr", "size")),),
        fields=(
            F("cmd", INT, approver=SCALAR, constants="BPF commands (BPF_*)", doc="bpf command"),
            F("prog.type", INT, constants="BPF program types (BPF_PROG_TYPE_*)", doc="program type"),
            F("prog.name", STR, doc="program name"),
            F("prog.attach_type", INT, constants="BPF attach types (BPF_*)",
              doc="program attach type (the expected one, for BPF_PROG_LOAD)"),
            F("prog.helpers", INT, array=True, constants="BPF helper functions (BPF_*)",
              doc="helpers the program calls (BPF_PROG_LOAD: from its instructions)"),
            F("prog.tag", STR, doc="program tag (hex; the kernel's hash of the instructions)"),
            F("map.type", INT, constants="BPF map types (BPF_MAP_TYPE_*)", doc="map type"),
            F("map.name", STR, doc="map name"),
            RETVAL,
        ),
        kernel_approvers={"cmd": "value"}),
    EventType(
        "mmap", 33, _KERNEL, "memory was mapped", record="rs_mem_event", call=MEM_CALL,
        syscalls=(_S("mmap", ("addr", "len", "prot", "flags", "fd", "")),),
        files=("file",), file_approvers=True,
        fields=(
            F("protection", INT, approver=FLAGS, constants="PROT_*", doc="requested protection"),
            F("flags", INT, approver=FLAGS, constants="MAP_*", doc="mapping flags"),
            RETVAL,
        ),
        kernel_approvers={"file.path": "basename", "file.name": "basename", "protection": "flags_hi",
                          "flags": "flags"}),
    EventType(
        "mprotect", 34, _KERNEL, "a mapping's protection was changed (mprotect, pkey_mprotect)",
        record="rs_mem_event", call=MEM_CALL,
        syscalls=(
            _S("mprotect", ("addr", "len", "prot")),
            _S("pkey_mprotect", ("addr", "len", "prot", "pkey")),
        ),
        capture="vma", precise=("file_mprotect",), precise_requires=("security_path",),
        files=("file",),
        fields=(
            F("req_protection", INT, approver=FLAGS, constants="VM_*", doc="requested protection (PROT_*, "
              "the same bits as VM_READ, VM_WRITE, VM_EXEC)"),
            F("vm_protection", INT, approver=FLAGS, constants="VM_*", doc="the mapping's flags before the "
              "call (vm_flags of the mapping holding the start address: VM_READ, VM_WRITE, VM_EXEC, "
              "VM_SHARED...); absent when it could not be read"),
            RETVAL,
        ),
        kernel_approvers={"req_protection": "flags", "vm_protection": "flags_hi"}),
    EventType(
        "io_uring", 35, _KERNEL, "an io_uring instance was set up, or a request submitted to one",
        record="rs_io_uring_event", call=IO_URING_CALL,
        syscalls=(_S("io_uring_setup", ("entries", "params")),),
        programs=("rs_io_uring_submit", "rs_io_uring_submit_sqe", "rs_io_uring_req_failed"),
        # io_uring_submit_sqe was renamed io_uring_submit_req in 6.4 (same place, same request)
        requires_tracepoints=("io_uring/io_uring_req_failed",),
        program_tracepoints=(("rs_io_uring_submit", "io_uring/io_uring_submit_req"),
                             ("rs_io_uring_submit_sqe", "io_uring/io_uring_submit_sqe")),
        files=("file",),
        fields=(
            F("action", STR, doc="`setup` (io_uring_setup) or `submit` (a request entered the kernel, by "
              "io_uring_enter or the SQPOLL thread)"),
            F("op", INT, approver=SCALAR, constants="io_uring opcodes (IORING_OP_*)",
              doc="submit: the request's opcode; setup: -1"),
            F("flags", INT, constants="IORING_SETUP_*, IOSQE_*",
              doc="setup: IORING_SETUP_* flags; submit: the request's IOSQE_* flags"),
            F("entries", INT, doc="setup: submission queue entries asked for"),
            F("fd", INT, doc="submit: the request's file descriptor (-1 when it takes none; an index into "
              "the registered files with IOSQE_FIXED_FILE); setup: the new ring's descriptor"),
            RETVAL,
        ),
        kernel_approvers={"op": "value"}),
    # -- network (hooks/net.h: syscall exits; hooks/dns.h: a tc classifier; docs/network.md) --
    EventType(
        "connect", 40, _NET, "a socket was connected; `addr` is the remote end", record="rs_net_event",
        call=NET_CALL, syscalls=(_S("connect", ("fd", "sockaddr", "addrlen")),),
        fields=(*_addr_fields("remote address"),
                F("addr.hostname", STR, doc="the name the remote address was resolved from: the question of "
                  "the last DNS response seen giving that address (A/AAAA, within its TTL, at least 10 s; "
                  "docs/network.md); empty when none was seen"),
                _PROTOCOL, RETVAL),
        kernel_approvers=_NET_APPROVERS),
    EventType(
        "bind", 41, _NET, "a socket was bound; `addr` is the local address", record="rs_net_event",
        call=NET_CALL, syscalls=(_S("bind", ("fd", "sockaddr", "addrlen")),),
        fields=(*_addr_fields("bound address"), _PROTOCOL, RETVAL),
        kernel_approvers=_NET_APPROVERS),
    EventType(
        "accept", 42, _NET, "a connection was accepted; `addr.ip` is the peer's address, `addr.port` the "
        "local (listening) port, as the reference agent reports them", record="rs_net_event", call=NET_CALL,
        syscalls=(_S("accept", ("fd", "", "")), _S("accept4", ("fd", "", "", ""))),
        fields=(*_addr_fields("the peer's address", port_doc="local (listening) port"), RETVAL),
        kernel_approvers=_NET_APPROVERS),
    EventType(
        "dns", 43, _NET, "a DNS query left an interface (tc egress)", record="rs_dns_event",
        # the classifier, attached through netlink (agent/net); connect's exit
        # records who connected a socket to a DNS server (the fallback owner)
        # (and the responses on ingress: the names of connect.addr.hostname)
        programs=("rs_tc_dns", "rs_tc_dns_response", "rs_exit_connect"), requires=("tc",),
        tc_programs=(("rs_tc_dns", "egress"), ("rs_tc_dns_response", "ingress")),
        # the ingress classifier parses every DNS response: paid for only when a connect rule
        # can show or read the names (bench_net)
        fills=(("connect.addr.hostname", ("rs_tc_dns_response",)),),
        # the calls that send on a socket: the classifier's sending task is in one
        related_syscalls=("write", "writev", "sendto", "sendmsg", "sendmmsg"),
        fields=(
            F("id", INT, doc="the query's ID"),
            F("question.name", STR, doc="queried name, lower case, dotted, without the final dot"),
            F("question.name.length", INT, resolver="length", key="name", doc="length of `question.name`"),
            F("question.type", INT, constants="DNS qtypes", doc="query type (`A` = 1, `AAAA` = 28...)"),
            F("question.class", INT, constants="DNS qclasses", doc="query class (`CLASS_INET` = 1...)"),
            F("question.length", INT, doc="size of the DNS message, bytes"),
            F("question.count", INT, doc="number of questions in the message (the first is reported)"),
        ),
        context=(("network", _NETWORK_CONTEXT),)),
    # -- declared for rules written for the reference agent; not produced yet: none left --
)

BY_NAME: dict[str, EventType] = {t.name: t for t in EVENT_TYPES}
PRODUCED: tuple[EventType, ...] = tuple(t for t in EVENT_TYPES if t.produced)
# Types every agent hooks: the process lifecycle the process cache follows.
LIFECYCLE_TYPES: frozenset[str] = frozenset(t.name for t in PRODUCED if t.lifecycle)
# Types hooked (not sent) while a discarder is on, to keep discarders right.
INVALIDATING_TYPES: frozenset[str] = frozenset(t.name for t in PRODUCED if t.invalidates)


def produced(name: str) -> bool:
    t = BY_NAME.get(name)
    return t is not None and t.produced


def syscalls_of(t: EventType) -> tuple[Syscall, ...]:
    """The syscalls that can produce ``t``: its own, and those of other types
    that produce it for some flag (unlinkat(AT_REMOVEDIR) is an rmdir)."""
    others = tuple(s for o in PRODUCED if o is not t for s in o.syscalls if s.alt_type and s.alt_type[2] == t.name)
    return t.syscalls + others


def syscall_types(s: Syscall, owner: EventType) -> tuple[str, ...]:
    """The event types a syscall can produce: its owner's, and alt_type's."""
    return (owner.name,) + ((s.alt_type[2],) if s.alt_type else ())


def _check() -> None:
    """The table's own invariants (run at import: a broken table is a bug)."""
    ids = [t.id or 0 for t in PRODUCED]
    if len(set(ids)) != len(ids) or min(ids, default=1) < 1 or max(ids, default=0) > 63:
        raise ValueError(f"event type ids must be unique, 1..63: {ids}")
    if len(BY_NAME) != len(EVENT_TYPES):
        raise ValueError("event type declared twice")
    seen: dict[str, str] = {}
    for t in PRODUCED:
        if t.record is None:
            raise ValueError(f"{t.name}: a produced type needs a record struct")
        for what, progs in (("program_tracepoints", [p for p, _ in t.program_tracepoints]),
                            ("tc_programs", [p for p, _ in t.tc_programs]),
                            ("fills", [p for _, ps in t.fills for p in ps])):
            for prog in progs:
                if prog not in t.programs:
                    raise ValueError(f"{t.name}: {what} names {prog}, not one of its programs")
        for _, hook in t.tc_programs:
            if hook not in ("egress", "ingress"):
                raise ValueError(f"{t.name}: tc_programs hook {hook!r}: egress or ingress")
        for s in t.syscalls:
            if s.call is None and t.call is None:
                raise ValueError(f"{t.name}: syscall {s.name} without a call kind")
            if s.name in seen:
                raise ValueError(f"syscall {s.name} listed under {seen[s.name]} and {t.name}")
            seen[s.name] = t.name
            call = s.call_of(t)
            if t.init and call.struct != (t.call.struct if t.call else None):
                raise ValueError(f"{t.name}: syscall {s.name}: the type's init statements assume struct "
                                 f"{t.call.struct if t.call else None}, its call kind has {call.struct}")
            for role in s.args + tuple(r for r, _ in s.fixed):
                if role and role not in call.roles:
                    raise ValueError(f"{t.name}: syscall {s.name}: unknown role {role!r}")
            if s.alt_type and s.alt_type[2] not in BY_NAME:
                raise ValueError(f"{t.name}: syscall {s.name}: alt_type names no event type")
        if t.capture is not None and t.capture not in CAPTURES:
            raise ValueError(f"{t.name}: unknown capture {t.capture!r}")
        for need in t.precise_requires:
            if need not in PRECISE_FEATURES:
                raise ValueError(f"{t.name}: unknown precise requirement {need!r}")


_check()

__all__ = ["ARCH", "BY_NAME", "CAPTURES", "COMPAT_ALIASES", "EVENT_TYPES", "KERNEL_CONSTANTS",
           "PRODUCED", "SYSCALL_ARG_REGS", "SYSCALL_NR_REG", "Approver", "Call", "EventType", "Syscall", "produced",
           "syscall_types", "syscalls_of", "BASENAME", "NAME"]
