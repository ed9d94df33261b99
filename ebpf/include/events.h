/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * events.h - every struct that crosses the kernel/user boundary.
 *
 * Included by the BPF programs (after vmlinux.h) and parsed by user space with
 * cffi's cdef (agent/events/layout.py), so this file keeps to the subset both
 * understand:
 *   - fixed-width types only (__u8 .. __u64, __s32, __s64), no pointers;
 *   - explicit padding: every struct is a multiple of 8 bytes and every member
 *     naturally aligned; members named _padN are zero;
 *   - integer constants as `#define NAME <decimal or hex literal>` or enums;
 *   - no other preprocessor logic between RS_CDEF_BEGIN and RS_CDEF_END
 *     (user space reads only that region).
 * A test (tests/foundation/test_layout.py) compares cffi's sizes and offsets of every
 * struct with the BTF of the compiled object.
 *
 * Record framing: every ring-buffer record starts with struct rs_event_header;
 * `size` covers the whole record. Variable-length data (paths, argv) follows
 * the fixed struct and is addressed by struct rs_str {off, len}, where `off`
 * counts from the start of the record and `len` excludes any terminator.
 */
#ifndef RS_EVENTS_H
#define RS_EVENTS_H

/* RS_CDEF_BEGIN */

#define RS_ABI_VERSION 1

#define RS_PATH_MAX 4096        /* longest path we emit, terminator excluded: PATH_MAX */
#define RS_NAME_MAX 256         /* NAME_MAX + 1 */
#define RS_COMM_LEN 16
#define RS_FSTYPE_LEN 16
#define RS_ARGS_MAX 4096        /* argv/envp bytes captured per exec */
#define RS_RECORD_MAX 16384     /* largest ring-buffer record */
#define RS_TTY_LEN 64           /* tty_struct.name */
#define RS_CONTAINER_ID_LEN 72  /* 64 hex digits + NUL, padded to 8 */

enum rs_event_type {
	RS_EVENT_NONE = 0,
	RS_EVENT_OPEN = 1,
	RS_EVENT_CHMOD = 2,
	RS_EVENT_CHOWN = 3,
	RS_EVENT_MKDIR = 4,
	RS_EVENT_RMDIR = 5,
	RS_EVENT_UNLINK = 6,
	RS_EVENT_RENAME = 7,
	RS_EVENT_LINK = 8,
	RS_EVENT_UTIMES = 9,
	RS_EVENT_SETXATTR = 10,
	RS_EVENT_REMOVEXATTR = 11,
	RS_EVENT_MOUNT = 12,
	RS_EVENT_UMOUNT = 13,
	RS_EVENT_EXEC = 14,
	RS_EVENT_FORK = 15,
	RS_EVENT_EXIT = 16,
	RS_EVENT_TYPE_MAX = 17,
};

/* struct rs_event_header.flags */
enum rs_header_flags {
	RS_HDR_TRUNCATED = 1,   /* some variable-length data did not fit the record */
};

/* Common header, first in every record. 32 bytes. */
struct rs_event_header {
	__u32 type;             /* enum rs_event_type */
	__u32 size;             /* bytes in the whole record, header included */
	__u64 timestamp;        /* CLOCK_BOOTTIME, ns (bpf_ktime_get_boot_ns) */
	__u32 pid;              /* thread-group id (user-space "pid") */
	__u32 tid;              /* thread id */
	__u32 cpu;
	__u32 flags;            /* enum rs_header_flags */
};

/* A string in the record's data area. */
struct rs_str {
	__u16 off;              /* from the start of the record; 0 = absent */
	__u16 len;              /* bytes, no terminator */
};

/* The calling task at the time of the event. 88 bytes. */
struct rs_proc_ctx {
	__u32 ppid;             /* real_parent's tgid now (lineage comes from the process cache) */
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 egid;
	__u32 fsuid;
	__u32 fsgid;
	__u32 _pad0;
	__u64 cap_effective;
	__u64 cap_permitted;
	__u64 cgroup_id;        /* cgroup v2 id (bpf_get_current_cgroup_id) */
	__u64 start_time;       /* thread-group leader's start, CLOCK_BOOTTIME ns */
	char comm[16];          /* RS_COMM_LEN */
};

/* struct rs_file.flags */
enum rs_file_flags {
	RS_FILE_PRESENT = 1,          /* resolved from a kernel object */
	RS_FILE_PATH_TRUNCATED = 2,   /* walk stopped at the depth or length limit; path is a suffix */
	RS_FILE_UPPER_LAYER = 4,      /* overlayfs: the inode exists in the upper layer */
	RS_FILE_DETACHED = 8,         /* walk ended at a mount with no parent that is not the namespace root */
	RS_FILE_DISCONNECTED = 16,    /* walk ended at a dentry that is its own parent below a mount root */
	RS_FILE_OVERLAY = 32,         /* the file lives on an overlayfs mount */
	RS_FILE_SB_RELATIVE = 64,     /* path is from the filesystem's root (no mount known: several
	                               * mounts show this superblock); mount_id is 0 and user space
	                               * places the path on one of them */
};

/* A file resolved from kernel objects (struct path / dentry / inode). 72 bytes. */
struct rs_file {
	__u64 inode;
	__u64 ctime_ns;
	__u64 mtime_ns;
	__u32 mount_id;         /* struct mount.mnt_id, as in /proc/PID/mountinfo */
	__u32 dev;              /* super_block.s_dev, kernel encoding (major << 20 | minor) */
	__u32 mode;             /* inode.i_mode */
	__u32 uid;
	__u32 gid;
	__u32 nlink;
	__u32 flags;            /* enum rs_file_flags */
	struct rs_str path;     /* absolute path walked in the kernel */
	char fstype[16];        /* RS_FSTYPE_LEN: file_system_type.name */
};

/* struct rs_file_event.fim_flags: where the kernel found the objects. */
enum rs_fim_flags {
	RS_FIM_OBJ_FD = 1,            /* file: a descriptor's struct file (fchmod, AT_EMPTY_PATH, ...) */
	RS_FIM_OBJ_INODE = 2,         /* file: an inode the ctime tracepoints named inside the call */
	RS_FIM_OBJ_PARENT = 4,        /* file: only its directory fired; file.path is that directory
	                               * walked in the kernel + the last component of req_path */
	RS_FIM_DEST_KERNEL = 8,       /* dest: walked from kernel objects after the call */
	RS_FIM_DEST_PARENT = 16,      /* dest: the new directory from the kernel + the last component of req_path2 */
	RS_FIM_FOLLOW = 32,           /* the call follows a symlink in the last component of req_path */
	RS_FIM_EXCHANGE = 64,         /* renameat2(RENAME_EXCHANGE): one record per file */
	RS_FIM_STALE = 128,           /* captured objects belonged to another call and were ignored */
};

/*
 * File activity: open and the other file-integrity types, one layout.
 *
 * `file` is the object, resolved from kernel objects when the kernel named
 * one (fim_flags says how). A failed call has no object: `file.flags` lacks
 * RS_FILE_PRESENT and user space resolves `req_path` against `base`, the
 * kernel-walked directory the lookup started from (dirfd, cwd, or the task's
 * root for absolute paths); the same pair is the hint that picks a mount for
 * RS_FILE_SB_RELATIVE paths. rename/link: `dest`, `req_path2`, `base2` are
 * the new name. mount: req_path is the target, req_path2 the source.
 */
struct rs_file_event {
	struct rs_event_header hdr;
	struct rs_proc_ctx proc;
	struct rs_file file;
	struct rs_file base;          /* start directory of req_path */
	__s64 retval;
	__u32 syscall_nr;
	__u32 flags;                  /* open: open flags; unlinkat, renameat2, linkat, utimensat,
	                               * *xattr*, mount, umount2: the call's flags argument */
	__u32 mode;                   /* open, creat, mkdir: mode argument; chmod: the new mode */
	__s32 dirfd;
	struct rs_str req_path;       /* the path string the caller passed, from user memory */
	__u32 fim_flags;              /* enum rs_fim_flags */
	struct rs_file dest;          /* rename: the object at its new path; link: the new link */
	struct rs_file base2;         /* start directory of req_path2 */
	__u32 uid;                    /* chown: the new owner argument (0xffffffff: unchanged) */
	__u32 gid;
	__s32 dirfd2;
	struct rs_str req_path2;      /* rename, link: the new path; mount: the source */
	struct rs_str xattr_name;     /* setxattr, removexattr: the attribute name */
	struct rs_str fs_type;        /* mount: the filesystem type argument */
	struct rs_str root;           /* the task's root, walked, when it is chrooted */
	__u32 _pad0;
	__u64 parent_inodes[3];       /* RS_DISCARDER_DEPTH: the file's parent directories in its
	                               * mount, nearest first, when discarders apply (else 0) */
};

/*
 * What a process is besides its credentials, captured at exec and fork
 * (tty and cgroups can change only through these, setsid/TIOCSCTTY and
 * cgroup migration aside). 144 bytes.
 */
struct rs_task_meta {
	char tty_name[64];            /* RS_TTY_LEN: signal->tty->name ("pts0"), empty without a tty */
	char container_id[72];        /* RS_CONTAINER_ID_LEN: from the cgroup names, empty outside containers */
	__u32 task_flags;             /* enum rs_task_flags */
	__u32 _pad0;
};

enum rs_task_flags {
	RS_TASK_KTHREAD = 1,          /* a kernel thread (PF_KTHREAD) */
};

/* struct rs_exec_event.args_flags */
enum rs_args_flags {
	RS_ARGS_TRUNCATED = 1,        /* argv did not fit RS_ARGS_MAX */
	RS_ENVS_TRUNCATED = 2,        /* envp did not fit RS_ARGS_MAX */
	RS_ENVS_CAPTURED = 4,         /* environment capture is on (rs_capture_env) */
	RS_EXEC_SCRIPT = 8,           /* a script: `file` is the script, `interpreter` what runs it */
	RS_EXEC_SCRIPT_FROM_NAME = 16, /* the script's struct file was not found: `file` is empty, use `filename` */
};

/*
 * exec: the new program image, after the point of no return.
 * For a script (#! or binfmt_misc), `file` is the script execve named and
 * `interpreter` is bprm->file, the interpreter the kernel mapped; otherwise
 * `file` is bprm->file and `interpreter` is empty.
 */
struct rs_exec_event {
	struct rs_event_header hdr;
	struct rs_proc_ctx proc;      /* credentials after exec (setuid applied) */
	struct rs_file file;
	struct rs_file interpreter;
	struct rs_task_meta meta;
	__u32 old_tid;                /* tid that called execve (!= pid: a non-leader thread) */
	__u32 argc;
	__u32 envc;
	__u32 args_flags;             /* enum rs_args_flags */
	struct rs_str filename;       /* bprm->filename: the path string given to execve */
	struct rs_str argv;           /* NUL-separated argv, as the new image sees it */
	struct rs_str envp;           /* NUL-separated envp (only with RS_ENVS_CAPTURED) */
	__u32 _pad0;
};

/* fork/clone of a new process (threads are not reported). */
struct rs_fork_event {
	struct rs_event_header hdr;   /* pid/tid: the child */
	struct rs_proc_ctx proc;      /* the parent (caller) */
	struct rs_task_meta child;    /* the child's tty, container, flags */
	__u32 child_pid;
	__u32 child_tid;
	__u32 parent_pid;
	__u32 parent_tid;
	__u64 child_start_time;       /* CLOCK_BOOTTIME ns */
	__u64 parent_start_time;      /* parent's group leader start, CLOCK_BOOTTIME ns */
};

/* Exit of a whole thread group (last thread). */
struct rs_exit_event {
	struct rs_event_header hdr;
	struct rs_proc_ctx proc;
	__u32 exit_code;              /* wait status: (code << 8) | signal | 0x80 if core dumped */
	__u32 _pad0;
};

/* Per event type, per CPU. Index: enum rs_event_type. */
struct rs_type_stats {
	__u64 seen;                   /* hook fired for this type */
	__u64 dropped_approver;       /* no kernel approver matched */
	__u64 dropped_discarder;      /* a discarder matched */
	__u64 sent;                   /* written to the ring buffer */
	__u64 lost;                   /* ring buffer full */
};

/*
 * In-kernel filters (ebpf/include/filters.h): map keys and values that user
 * space writes. Event-type masks have bit (1 << enum rs_event_type).
 */

/* basename_approvers: a file name some rule of the masked types can match,
 * keyed by its length and first RS_BASENAME_PREFIX bytes (NUL-padded). Two
 * names sharing both collide, which only ever lets an event through to user
 * space (approvers may over-approve, never under-approve); in exchange the
 * kernel hashes a 32-byte key instead of a 256-byte one. */
#define RS_BASENAME_PREFIX 28

struct rs_basename_key {
	__u32 len;                    /* full length of the name */
	char prefix[28];              /* RS_BASENAME_PREFIX */
};

/* inode_discarders: an inode (leaf) or a directory (everything below it
 * within the same mount) that no rule of the masked types can match. */
struct rs_discarder_key {
	__u64 inode;
	__u32 mount_id;
	__u32 is_leaf;                /* 1: the inode itself; 0: a directory and its descendants */
};

struct rs_discarder_value {
	__u64 event_mask;             /* types for which it discards */
	__u64 decided_at;             /* CLOCK_BOOTTIME ns of the event the decision came from */
	__u32 revision;               /* discarders_revision at insertion: stale when it changed */
	__u32 _pad0;
};

/* inode_tombstones: when an inode last changed place (rename, unlink, link).
 * A discarder decided before that no longer holds. Keyed by inode number
 * alone (dev is 0): the same number on another filesystem only invalidates a
 * discarder early, which is safe, and the hot path reads no superblock. */
struct rs_inode_key {
	__u64 inode;
	__u32 dev;                    /* 0 (reserved) */
	__u32 _pad0;
};

/* RS_CDEF_END */

#endif /* RS_EVENTS_H */
