/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fim.h - file integrity monitoring on a kernel without kprobes/fentry/LSM.
 *
 * Two halves meet in the calling task's local storage:
 *
 *  1. Inside a watched path-based syscall, the inode ctime tracepoints
 *     (ctime_ns_xchg, ctime_xchg_skip, inode_set_ctime_to_ts: whichever the
 *     filesystem uses) name every inode the call changes. rs_fim_capture()
 *     keeps up to RS_FIM_SLOTS of them per call: the inode, its attributes,
 *     and the dentry alias it had then (its parent and name, copied, because
 *     unlink and rename change or drop the dentry before the call returns).
 *     Other syscalls that update a ctime (write, ...) return at the syscall
 *     number check.
 *
 *  2. At sys_exit, rs_fim_exit() picks the object (and the destination) among
 *     the captured inodes by the event type's rules (rs_fim_objects), walks
 *     their paths from the captured dentries, adds the call's arguments, and
 *     deletes the storage.
 *
 * A call that changed nothing (it failed) captured nothing: the record then
 * carries the caller's strings and the kernel-walked start directories.
 */
#ifndef RS_FIM_H
#define RS_FIM_H

#include "common.h"
#include "path.h"
#include "task.h"

/* x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
#define RS_NR_rename 82
#define RS_NR_mkdir 83
#define RS_NR_rmdir 84
#define RS_NR_link 86
#define RS_NR_unlink 87
#define RS_NR_chmod 90
#define RS_NR_chown 92
#define RS_NR_lchown 94
#define RS_NR_utime 132
#define RS_NR_setxattr 188
#define RS_NR_lsetxattr 189
#define RS_NR_removexattr 197
#define RS_NR_lremovexattr 198
#define RS_NR_utimes 235
#define RS_NR_mkdirat 258
#define RS_NR_fchownat 260
#define RS_NR_futimesat 261
#define RS_NR_unlinkat 263
#define RS_NR_renameat 264
#define RS_NR_linkat 265
#define RS_NR_fchmodat 268
#define RS_NR_utimensat 280
#define RS_NR_renameat2 316
#define RS_NR_fchmodat2 452
#define RS_NR_setxattrat 463
#define RS_NR_removexattrat 466

#define RS_AT_SYMLINK_NOFOLLOW 0x100
#define RS_AT_REMOVEDIR 0x200
#define RS_AT_SYMLINK_FOLLOW 0x400
#define RS_AT_EMPTY_PATH 0x1000
#define RS_RENAME_EXCHANGE 2
/* mount(2) flags that change an existing mount instead of making one:
 * MS_REMOUNT, MS_MOVE, MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED */
#define RS_MS_NOT_NEW (32 | 8192 | (1 << 17) | (1 << 18) | (1 << 19) | (1 << 20))

#define RS_S_IFMT 0170000
#define RS_S_IFDIR 0040000
#define RS_S_ISDIR(m) (((m) & RS_S_IFMT) == RS_S_IFDIR)

#define RS_PF_KTHREAD 0x00200000
#define RS_PF_IO_WORKER 0x00000010
#define RS_TS_COMPAT 0x0002

#define RS_FIM_SLOTS 8          /* inodes kept per call (overlayfs copy-up touches several) */
#define RS_ALIAS_MAX 8          /* dentry aliases (hard links) compared per inode */
#define RS_TRAILING_SLASH_MAX 16

#define RS_BIT(t) (1ULL << (t))

/* One inode a watched call changed. */
struct rs_fim_slot {
	struct rs_file file;          /* attributes at its last ctime update (path unused) */
	struct inode *inode;
	struct dentry *dentry;        /* its alias at the first update; NULL: none yet (a new inode) */
	struct dentry *parent;        /* dentry->d_parent then */
	struct inode *parent_inode;   /* parent->d_inode then: proves `parent` still valid at exit */
	__u64 hash_len;               /* dentry->d_name.hash_len then: tells a moved dentry */
	__u32 seq;                    /* order of its last update in the call, from 1 */
	__u32 name_len;
	char name[RS_NAME_MAX];       /* dentry->d_name then (unlink and rename change it) */
};

/* Per task, alive from the first ctime update of a watched call to its sys_exit. */
struct rs_fim_capture {
	__u64 arg0;                   /* the call's first two arguments and number tell */
	__u64 arg1;                   /* it from an earlier call whose exit we missed */
	__u32 nr;
	__u32 count;
	__u32 seq;
	__u32 _pad;
	struct rs_fim_slot slot[RS_FIM_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rs_fim_capture);
} fim_capture SEC(".maps");

/* Per-CPU scratch for comparing names with the caller's string. The cursors
 * are bpf_loop() state: kept in the map value, the callbacks verify once. */
struct rs_fim_scratch {
	__u32 end;                    /* the string's length without trailing slashes */
	__u32 start;                  /* its last component starts here */
	__u32 cmp_len;
	__u32 mismatch;
	/* rs_fim_choose() */
	__u32 type;
	__u32 count;
	__u32 dev;
	__u32 last;
	__u32 best_seq;
	__u32 nondir;
	__u32 nondir_seq;
	__u32 dir;
	__u32 dir_seq;
	__u32 fresh;
	__u32 obj;
	__u32 obj2;
	__u32 overlay_seq;
	__u32 overlay_dev;
	char req[RS_PATH_MAX];
	char name[RS_NAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_fim_scratch);
} fim_scratch SEC(".maps");

/*
 * Which event types a syscall can produce (0: not watched here) and which of
 * its arguments is the path whose last component names the object.
 * fchmod, fchown, fsetxattr, fremovexattr are absent: their object is an fd.
 */
static __always_inline __u64 rs_fim_syscall_types(long nr, int *path_arg)
{
	*path_arg = 0;
	switch (nr) {
	case RS_NR_chmod:
		return RS_BIT(RS_EVENT_CHMOD);
	case RS_NR_fchmodat:
	case RS_NR_fchmodat2:
		*path_arg = 1;
		return RS_BIT(RS_EVENT_CHMOD);
	case RS_NR_chown:
	case RS_NR_lchown:
		return RS_BIT(RS_EVENT_CHOWN);
	case RS_NR_fchownat:
		*path_arg = 1;
		return RS_BIT(RS_EVENT_CHOWN);
	case RS_NR_mkdir:
		return RS_BIT(RS_EVENT_MKDIR);
	case RS_NR_mkdirat:
		*path_arg = 1;
		return RS_BIT(RS_EVENT_MKDIR);
	case RS_NR_rmdir:
		return RS_BIT(RS_EVENT_RMDIR);
	case RS_NR_unlink:
		return RS_BIT(RS_EVENT_UNLINK);
	case RS_NR_unlinkat:
		*path_arg = 1;
		return RS_BIT(RS_EVENT_UNLINK) | RS_BIT(RS_EVENT_RMDIR);
	case RS_NR_rename:
		return RS_BIT(RS_EVENT_RENAME);
	case RS_NR_renameat:
	case RS_NR_renameat2:
		*path_arg = 1;
		return RS_BIT(RS_EVENT_RENAME);
	case RS_NR_link:
		return RS_BIT(RS_EVENT_LINK);
	case RS_NR_linkat:
		*path_arg = 1;
		return RS_BIT(RS_EVENT_LINK);
	case RS_NR_utime:
	case RS_NR_utimes:
		return RS_BIT(RS_EVENT_UTIMES);
	case RS_NR_utimensat:
	case RS_NR_futimesat:
		*path_arg = 1;
		return RS_BIT(RS_EVENT_UTIMES);
	case RS_NR_setxattr:
	case RS_NR_lsetxattr:
		return RS_BIT(RS_EVENT_SETXATTR);
	case RS_NR_setxattrat:
		*path_arg = 1;
		return RS_BIT(RS_EVENT_SETXATTR);
	case RS_NR_removexattr:
	case RS_NR_lremovexattr:
		return RS_BIT(RS_EVENT_REMOVEXATTR);
	case RS_NR_removexattrat:
		*path_arg = 1;
		return RS_BIT(RS_EVENT_REMOVEXATTR);
	}
	return 0;
}

static __always_inline struct dentry *rs_alias_dentry(struct hlist_node *node)
{
	return (struct dentry *)((void *)node - bpf_core_field_offset(struct dentry, d_u.d_alias));
}

static __always_inline struct rs_fim_scratch *rs_fim_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&fim_scratch, &zero);
}

static long rs_trailing_slash_step(__u32 i, void *ctx)
{
	struct rs_fim_scratch *s = rs_fim_scratch();

	if (!s || s->end <= 1 || s->req[(s->end - 1) & (RS_PATH_MAX - 1)] != '/')
		return 1;
	s->end -= 1;
	return 0;
}

static long rs_basename_step(__u32 i, void *ctx)
{
	struct rs_fim_scratch *s = rs_fim_scratch();

	if (!s || s->start == 0 || s->req[(s->start - 1) & (RS_PATH_MAX - 1)] == '/')
		return 1;
	s->start -= 1;
	return 0;
}

/*
 * The last component of the user string `ustr`, read into the per-CPU
 * scratch: returns its length (0: none, e.g. "/" or "") and leaves its start
 * in s->start. Trailing slashes are skipped ("dir/" names "dir").
 */
static __always_inline __u32 rs_user_basename(struct rs_fim_scratch *s, const char *ustr)
{
	long n;
	__u32 len;

	s->start = 0;
	if (!ustr)
		return 0;
	n = bpf_probe_read_user_str(s->req, sizeof(s->req), ustr);
	if (n <= 1)
		return 0;
	s->end = (__u32)n - 1;
	bpf_loop(RS_TRAILING_SLASH_MAX, rs_trailing_slash_step, NULL, 0);
	s->start = s->end;
	bpf_loop(RS_NAME_MAX, rs_basename_step, NULL, 0);
	len = s->end - s->start;
	if (len == 0 || len > RS_NAME_MAX - 1)
		return 0;
	return len;
}

static long rs_name_cmp_step(__u32 i, void *ctx)
{
	struct rs_fim_scratch *s = rs_fim_scratch();

	if (!s || i >= s->cmp_len)
		return 1;
	if (s->name[i & (RS_NAME_MAX - 1)] != s->req[(s->start + i) & (RS_PATH_MAX - 1)]) {
		s->mismatch = 1;
		return 1;
	}
	return 0;
}

/* d_name of `d` equals s->req[s->start, s->start + len). */
static __always_inline bool rs_name_equals(struct rs_fim_scratch *s, struct dentry *d, __u32 len)
{
	struct qstr q = BPF_CORE_READ(d, d_name);

	if (q.len != len || len > RS_NAME_MAX - 1)
		return false;
	if (bpf_probe_read_kernel(s->name, RS_MASKED(len, RS_NAME_MAX - 1), q.name))
		return false;
	s->cmp_len = len;
	s->mismatch = 0;
	bpf_loop(RS_NAME_MAX - 1, rs_name_cmp_step, NULL, 0);
	return !s->mismatch;
}

/* The alias of `inode` (not `exclude`) named like the last component of `ustr`. */
static __always_inline struct dentry *rs_alias_named(struct inode *inode, const char *ustr,
						     struct dentry *exclude)
{
	struct rs_fim_scratch *s = rs_fim_scratch();
	struct hlist_node *node;
	__u32 len, a;

	if (!s)
		return NULL;
	len = rs_user_basename(s, ustr);
	if (!len)
		return NULL;
	node = BPF_CORE_READ(inode, i_dentry.first);
	for (a = 0; a < RS_ALIAS_MAX; a++) {
		if (!node)
			break;
		struct dentry *d = rs_alias_dentry(node);

		if (d != exclude && rs_name_equals(s, d, len))
			return d;
		node = BPF_CORE_READ(node, next);
	}
	return NULL;
}

/* The calling task runs a 32-bit syscall: its numbers are not ours. */
static __always_inline bool rs_in_compat_syscall(struct task_struct *task)
{
	if (bpf_core_field_exists(task->thread_info.status))
		return BPF_CORE_READ(task, thread_info.status) & RS_TS_COMPAT;
	return false;
}

/*
 * A ctime tracepoint fired on `inode` in the current task. Keep it if the
 * task is inside a watched path-based syscall.
 */
static __always_inline int rs_fim_capture(struct inode *inode)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs;
	struct rs_fim_capture *cap;
	struct rs_fim_slot *s;
	struct hlist_node *first;
	struct dentry *d, *parent;
	unsigned long a0, a1, upath;
	__u32 i, idx, oldest;
	int path_arg;
	long nr;

	if (BPF_CORE_READ(task, flags) & (RS_PF_KTHREAD | RS_PF_IO_WORKER))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	nr = BPF_CORE_READ(regs, orig_ax);
	if (!(rs_fim_syscall_types(nr, &path_arg) & rs_event_mask))
		return 0;
	if (rs_is_self() || rs_in_compat_syscall(task))
		return 0;
	a0 = BPF_CORE_READ(regs, di);
	a1 = BPF_CORE_READ(regs, si);
	cap = bpf_task_storage_get(&fim_capture, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!cap)
		return 0;
	if (cap->nr != nr || cap->arg0 != a0 || cap->arg1 != a1) {
		/* First update of this call (or leftovers of a call whose exit was missed). */
		cap->nr = nr;
		cap->arg0 = a0;
		cap->arg1 = a1;
		cap->count = 0;
		cap->seq = 0;
	}

	/* The inode's slot: the one it already has, a free one, or the oldest. */
	idx = RS_FIM_SLOTS;
	oldest = 0;
	for (i = 0; i < RS_FIM_SLOTS; i++) {
		if (i >= cap->count)
			break;
		if (cap->slot[i].inode == inode) {
			idx = i;
			break;
		}
		if (cap->slot[i].seq < cap->slot[oldest & (RS_FIM_SLOTS - 1)].seq)
			oldest = i;
	}
	if (idx < RS_FIM_SLOTS) {
		/* Seen before in this call: refresh the attributes and the order;
		 * the alias stays the one it had first. */
		s = &cap->slot[idx & (RS_FIM_SLOTS - 1)];
		s->seq = ++cap->seq;
		__builtin_memset(&s->file, 0, sizeof(s->file));
		rs_fill_inode_attrs(&s->file, inode);
		if (s->dentry)
			return 0;
	} else {
		if (cap->count < RS_FIM_SLOTS)
			idx = cap->count++;
		else
			idx = oldest;
		s = &cap->slot[idx & (RS_FIM_SLOTS - 1)];
		s->inode = inode;
		s->seq = ++cap->seq;
		__builtin_memset(&s->file, 0, sizeof(s->file));
		rs_fill_inode_attrs(&s->file, inode);
		s->dentry = NULL;
		s->parent = NULL;
		s->parent_inode = NULL;
		s->hash_len = 0;
		s->name_len = 0;
	}

	/* The alias: the only one, or (hard links) the one named like the
	 * caller's path. A new inode (mkdir) has none yet. */
	first = BPF_CORE_READ(inode, i_dentry.first);
	if (!first)
		return 0;
	d = rs_alias_dentry(first);
	if (BPF_CORE_READ(first, next)) {
		upath = path_arg ? a1 : a0;
		struct dentry *named = rs_alias_named(inode, (const char *)upath, NULL);

		if (named)
			d = named;
	}
	parent = BPF_CORE_READ(d, d_parent);
	struct qstr q = BPF_CORE_READ(d, d_name);
	__u32 len = q.len;

	s->dentry = d;
	s->parent = parent;
	s->parent_inode = BPF_CORE_READ(parent, d_inode);
	s->hash_len = q.hash_len;
	if (len > RS_NAME_MAX - 1)
		len = RS_NAME_MAX - 1;
	if (bpf_probe_read_kernel(s->name, RS_MASKED(len, RS_NAME_MAX - 1), q.name) == 0)
		s->name_len = len;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* sys_exit side                                                            */

/* What one watched syscall passed, normalized by its exit program. */
struct rs_fim_call {
	__u32 type;                   /* enum rs_event_type */
	__u32 flags;                  /* reported in rs_file_event.flags */
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__u32 fim_flags;              /* RS_FIM_FOLLOW */
	long dirfd;                   /* start of `path` */
	const char *path;
	long dirfd2;                  /* start of `path2` */
	const char *path2;
	const char *xattr;
	const char *fstype;
	long fd;                      /* the object's descriptor when use_fd */
	bool use_fd;
	bool need_base;               /* always send the caller's strings and bases (mount) */
};

static __always_inline void rs_fim_call_init(struct rs_fim_call *c, __u32 type)
{
	__builtin_memset(c, 0, sizeof(*c));
	c->type = type;
	c->dirfd = RS_AT_FDCWD;
	c->dirfd2 = RS_AT_FDCWD;
	c->fd = -1;
}

/* The caller passed "" with AT_EMPTY_PATH: the object is the descriptor itself. */
static __always_inline bool rs_empty_path(const char *upath, __u32 at_flags)
{
	char c = 1;

	if (!(at_flags & RS_AT_EMPTY_PATH))
		return false;
	if (!upath)
		return true;
	if (bpf_probe_read_user(&c, 1, upath))
		return false;
	return c == 0;
}

/* The struct path behind a descriptor (AT_FDCWD: the cwd). */
static __always_inline bool rs_fd_path(struct task_struct *task, long fd,
				       struct dentry **dentry, struct vfsmount **mnt)
{
	struct file *file;

	if ((int)fd == RS_AT_FDCWD) {
		*dentry = BPF_CORE_READ(task, fs, pwd.dentry);
		*mnt = BPF_CORE_READ(task, fs, pwd.mnt);
		return true;
	}
	file = rs_fd_file(task, (int)fd);
	if (!file)
		return false;
	*dentry = BPF_CORE_READ(file, f_path.dentry);
	*mnt = BPF_CORE_READ(file, f_path.mnt);
	return true;
}

/* The slot still describes a live inode (attributes can be re-read). An
 * inode captured while being set up (overlayfs) had no number yet. */
static __always_inline bool rs_slot_inode_live(struct rs_fim_slot *s)
{
	struct inode *inode = s->inode;
	__u64 ino;

	if (!inode || BPF_CORE_READ(inode, i_sb, s_dev) != s->file.dev)
		return false;
	ino = BPF_CORE_READ(inode, i_ino);
	return ino == s->file.inode || (s->file.inode == 0 && ino != 0);
}

/*
 * The file a slot names, into `f` and the record: attributes (re-read at exit
 * when `refresh` and the inode is still live), the path it had when the
 * kernel changed it: the captured parent walked + the captured name.
 */
static __always_inline void rs_fim_slot_file(void *rec, __u32 *off, struct rs_file *f,
					     struct rs_fim_slot *s, bool refresh)
{
	struct dentry *d = s->dentry;
	struct dentry *parent = s->parent;
	struct inode *inode = s->inode;

	if (refresh && rs_slot_inode_live(s)) {
		__builtin_memset(f, 0, sizeof(*f));
		rs_fill_inode_attrs(f, s->inode);
	} else {
		__builtin_memcpy(f, &s->file, sizeof(*f));
	}
	f->path.off = 0;
	f->path.len = 0;
	if (!d) {
		/* A new inode (mkdir): its alias exists by now. */
		struct hlist_node *first = BPF_CORE_READ(inode, i_dentry.first);

		if (!first || !rs_slot_inode_live(s))
			return;
		d = rs_alias_dentry(first);
		if (BPF_CORE_READ(d, d_inode) != inode)
			return;
		rs_resolve_dentry(rec, off, f, d, NULL, 0);
		return;
	}
	if (d == parent) {
		/* The root of its filesystem. */
		rs_resolve_dentry(rec, off, f, d, NULL, 0);
		return;
	}
	if (!parent || BPF_CORE_READ(parent, d_inode) != s->parent_inode)
		return;
	rs_resolve_dentry(rec, off, f, parent, s->name, s->name_len);
}

/* The current path of a slot's dentry (rename: after d_move; link: the new alias). */
static __always_inline void rs_fim_dentry_file(void *rec, __u32 *off, struct rs_file *f,
					       struct rs_fim_slot *s, struct dentry *d)
{
	if (rs_slot_inode_live(s)) {
		__builtin_memset(f, 0, sizeof(*f));
		rs_fill_inode_attrs(f, s->inode);
	} else {
		__builtin_memcpy(f, &s->file, sizeof(*f));
	}
	f->path.off = 0;
	f->path.len = 0;
	rs_resolve_dentry(rec, off, f, d, NULL, 0);
}

/*
 * Only the directory fired (overlayfs whiteouts, ...): the path is that
 * directory + the last component of the caller's string.
 */
static __always_inline bool rs_fim_parent_file(void *rec, __u32 *off, struct rs_file *f,
					       struct rs_fim_slot *dir, const char *upath)
{
	struct rs_fim_scratch *s = rs_fim_scratch();
	__u32 len;

	if (!s || !dir->dentry)
		return false;
	len = rs_user_basename(s, upath);
	if (!len)
		return false;
	__builtin_memset(f, 0, sizeof(*f));
	f->dev = dir->file.dev;
	f->flags = dir->file.flags & RS_FILE_OVERLAY;
	__builtin_memcpy(f->fstype, dir->file.fstype, sizeof(f->fstype));
	rs_resolve_dentry(rec, off, f, dir->dentry, &s->req[s->start & (RS_PATH_MAX - 1)], len);
	return f->path.len != 0;
}

/* Which captured slots are the object(s): slot index + 1, 0 for none. */
struct rs_fim_pick {
	__u32 obj;
	__u32 obj2;         /* rename exchange: the other file */
	__u32 dir;          /* the directory the object is in (parent-only fallback, link) */
};

static __always_inline bool rs_slot_moved(struct rs_fim_slot *s)
{
	struct dentry *d = s->dentry;

	if (!d || BPF_CORE_READ(d, d_inode) != s->inode)
		return false;
	return BPF_CORE_READ(d, d_parent) != s->parent || BPF_CORE_READ(d, d_name.hash_len) != s->hash_len;
}

static __always_inline struct rs_fim_capture *rs_fim_current(void)
{
	return bpf_task_storage_get(&fim_capture, bpf_get_current_task_btf(), 0, 0);
}

/* The choice runs as bpf_loop() callbacks over the slots, its state in the
 * per-CPU scratch: the verifier checks each callback once instead of every
 * combination of branches across the unrolled slots. */
static long rs_choose_last_step(__u32 i, void *ctx)
{
	struct rs_fim_scratch *s = rs_fim_scratch();
	struct rs_fim_capture *cap = rs_fim_current();
	struct rs_fim_slot *slot;

	if (!s || !cap || i >= s->count)
		return 1;
	slot = &cap->slot[i & (RS_FIM_SLOTS - 1)];
	if (slot->seq > s->best_seq) {
		s->best_seq = slot->seq;
		s->last = i;
	}
	if ((slot->file.flags & RS_FILE_OVERLAY) && slot->seq > s->overlay_seq) {
		s->overlay_seq = slot->seq;
		s->overlay_dev = slot->file.dev;
	}
	return 0;
}

static long rs_choose_kind_step(__u32 i, void *ctx)
{
	struct rs_fim_scratch *s = rs_fim_scratch();
	struct rs_fim_capture *cap = rs_fim_current();
	struct rs_fim_slot *slot;

	if (!s || !cap || i >= s->count)
		return 1;
	slot = &cap->slot[i & (RS_FIM_SLOTS - 1)];
	if (slot->file.dev != s->dev)
		return 0;
	if (RS_S_ISDIR(slot->file.mode)) {
		if (slot->seq > s->dir_seq && slot->dentry) {
			s->dir_seq = slot->seq;
			s->dir = i + 1;
		}
	} else if (slot->seq > s->nondir_seq && slot->dentry) {
		/* (an inode without an alias is new: not what unlink or link named) */
		s->nondir_seq = slot->seq;
		s->nondir = i + 1;
	}
	if (!slot->dentry)
		s->fresh = i + 1;
	if (s->type == RS_EVENT_RENAME && rs_slot_moved(slot)) {
		if (!s->obj)
			s->obj = i + 1;
		else if (!s->obj2)
			s->obj2 = i + 1;
	}
	return 0;
}

/* Pair k = (child i, parent j): a captured directory inside another one. */
static long rs_choose_subdir_step(__u32 k, void *ctx)
{
	struct rs_fim_scratch *s = rs_fim_scratch();
	struct rs_fim_capture *cap = rs_fim_current();
	__u32 i = k / RS_FIM_SLOTS, j = k % RS_FIM_SLOTS;
	struct rs_fim_slot *c, *p;

	if (!s || !cap || i >= s->count)
		return 1;
	if (j >= s->count || i == j)
		return 0;
	c = &cap->slot[i & (RS_FIM_SLOTS - 1)];
	p = &cap->slot[j & (RS_FIM_SLOTS - 1)];
	if (c->file.dev == s->dev && p->file.dev == s->dev && RS_S_ISDIR(c->file.mode) &&
	    c->dentry && p->dentry == c->parent)
		s->obj = i + 1;
	return 0;
}

/*
 * Choose among the inodes a call changed. The object's filesystem is
 * overlayfs if any of them is an overlayfs inode (overlayfs works through
 * its layers' inodes, which update too), else the one of the last inode
 * updated (all the inodes of a call share one superblock). Then, per type:
 *   chmod, chown, utimes, setxattr, removexattr: the last one updated;
 *   unlink: the last non-directory; its directory as fallback;
 *   rmdir: the directory whose parent is another captured directory;
 *   mkdir: the inode that had no alias (new);
 *   link: the last non-directory, and the last directory (the new parent);
 *   rename: the inodes whose dentry moved (two for RENAME_EXCHANGE).
 */
static __always_inline void rs_fim_choose(struct rs_fim_capture *cap, __u32 type, struct rs_fim_pick *p)
{
	struct rs_fim_scratch *s = rs_fim_scratch();

	p->obj = 0;
	p->obj2 = 0;
	p->dir = 0;
	if (!s)
		return;
	s->type = type;
	s->count = cap->count < RS_FIM_SLOTS ? cap->count : RS_FIM_SLOTS;
	s->last = 0;
	s->best_seq = 0;
	s->overlay_seq = 0;
	s->overlay_dev = 0;
	bpf_loop(RS_FIM_SLOTS, rs_choose_last_step, NULL, 0);
	if (!s->best_seq)
		return;
	/* An overlayfs inode wins over the layers' ones (it is what the caller
	 * named; the lower filesystem's inodes may update last, e.g. on the
	 * final iput of an upper file). */
	s->dev = s->overlay_seq ? s->overlay_dev : cap->slot[s->last & (RS_FIM_SLOTS - 1)].file.dev;
	s->nondir = 0;
	s->nondir_seq = 0;
	s->dir = 0;
	s->dir_seq = 0;
	s->fresh = 0;
	s->obj = 0;
	s->obj2 = 0;
	bpf_loop(RS_FIM_SLOTS, rs_choose_kind_step, NULL, 0);
	switch (type) {
	case RS_EVENT_UNLINK:
	case RS_EVENT_LINK:
		s->obj = s->nondir;
		break;
	case RS_EVENT_MKDIR:
		s->obj = s->fresh;
		break;
	case RS_EVENT_RMDIR:
		bpf_loop(RS_FIM_SLOTS * RS_FIM_SLOTS, rs_choose_subdir_step, NULL, 0);
		break;
	case RS_EVENT_RENAME:
		break;
	default:
		s->obj = s->last + 1;
		break;
	}
	p->obj = s->obj;
	p->obj2 = s->obj2;
	p->dir = s->dir;
}

/*
 * The object and destination of a path-based call from the captured inodes.
 * Returns how many records the call makes (2: RENAME_EXCHANGE), with the
 * second file's attributes in *second.
 */
static __always_inline __u32 rs_fim_objects(void *rec, __u32 *off, struct rs_file_event *e,
					    struct rs_fim_capture *cap, struct rs_fim_call *c,
					    struct rs_file *second)
{
	struct rs_fim_pick p;
	struct rs_fim_slot *s, *dir = NULL;
	bool removed = c->type == RS_EVENT_UNLINK || c->type == RS_EVENT_RMDIR;

	rs_fim_choose(cap, c->type, &p);
	if (p.dir)
		dir = &cap->slot[(p.dir - 1) & (RS_FIM_SLOTS - 1)];
	if (!p.obj) {
		/* Nothing named the object itself; its directory may have fired. */
		if (dir && (removed || c->type == RS_EVENT_MKDIR) &&
		    rs_fim_parent_file(rec, off, &e->file, dir, c->path))
			e->fim_flags |= RS_FIM_OBJ_PARENT;
		/* link on overlayfs: only the new directory's ctime changes. */
		if (dir && c->type == RS_EVENT_LINK && rs_fim_parent_file(rec, off, &e->dest, dir, c->path2))
			e->fim_flags |= RS_FIM_DEST_PARENT;
		return 1;
	}
	s = &cap->slot[(p.obj - 1) & (RS_FIM_SLOTS - 1)];
	rs_fim_slot_file(rec, off, &e->file, s, !removed);
	e->fim_flags |= RS_FIM_OBJ_INODE;

	if (c->type == RS_EVENT_RENAME && s->dentry) {
		rs_fim_dentry_file(rec, off, &e->dest, s, s->dentry);
		e->fim_flags |= RS_FIM_DEST_KERNEL;
		if (p.obj2 && (c->flags & RS_RENAME_EXCHANGE)) {
			struct rs_fim_slot *s2 = &cap->slot[(p.obj2 - 1) & (RS_FIM_SLOTS - 1)];

			if (rs_slot_inode_live(s2)) {
				__builtin_memset(second, 0, sizeof(*second));
				rs_fill_inode_attrs(second, s2->inode);
			} else {
				__builtin_memcpy(second, &s2->file, sizeof(*second));
			}
			return 2;
		}
	} else if (c->type == RS_EVENT_LINK && s->inode) {
		struct dentry *alias = rs_alias_named(s->inode, c->path2, s->dentry);

		if (alias) {
			rs_fim_dentry_file(rec, off, &e->dest, s, alias);
			e->fim_flags |= RS_FIM_DEST_KERNEL;
		} else if (dir && rs_fim_parent_file(rec, off, &e->dest, dir, c->path2)) {
			e->fim_flags |= RS_FIM_DEST_PARENT;
		}
	}
	return 1;
}

/* The task's root is not its mount namespace's root (chroot, pivot inside). */
static __always_inline bool rs_task_chrooted(struct task_struct *task)
{
	struct vfsmount *vm = BPF_CORE_READ(task, fs, root.mnt);
	struct dentry *root = BPF_CORE_READ(task, fs, root.dentry);
	struct mount *m = rs_real_mount(vm);

	return root != BPF_CORE_READ(vm, mnt_root) || BPF_CORE_READ(m, mnt_parent) != m;
}

/* The start directory of `upath` into `f` (see rs_lookup_base). */
static __always_inline void rs_fim_base(void *rec, __u32 *off, struct task_struct *task,
					struct rs_file *f, struct rs_str *req, long dirfd, const char *upath)
{
	struct dentry *dentry = NULL;
	struct vfsmount *mnt = NULL;
	char first = 0;

	if (!upath)
		return;
	rs_append_str(rec, off, req, upath, true);
	if (req->len)
		first = ((char *)rec)[req->off & (RS_RECORD_MAX - 1)];
	if (rs_lookup_base(task, dirfd, first, &dentry, &mnt))
		rs_fill_file(rec, off, f, dentry, mnt);
}

/* A file the kernel did not fully place (no object, or no single mount). */
static __always_inline bool rs_file_unplaced(struct rs_file *f)
{
	return !f->path.len || (f->flags & RS_FILE_SB_RELATIVE);
}

/* Mount namespaces before 6.8 list their mounts; 6.8+ keep an rb-tree by
 * mnt_id_unique, 6.12+ with a pointer to its last node. */
struct mnt_namespace___list {
	struct list_head list;
} __attribute__((preserve_access_index));

struct mount___list {
	struct list_head mnt_list;
} __attribute__((preserve_access_index));

#define RS_RB_DEPTH_MAX 64

/* The newest mount of the task's mount namespace. */
static __always_inline struct mount *rs_newest_mount(struct task_struct *task)
{
	struct mnt_namespace *ns = BPF_CORE_READ(task, nsproxy, mnt_ns);
	struct rb_node *node;
	__u32 i;

	if (!ns)
		return NULL;
	if (bpf_core_field_exists(ns->mnt_last_node)) {
		node = BPF_CORE_READ(ns, mnt_last_node);
	} else if (bpf_core_field_exists(ns->mounts)) {
		node = BPF_CORE_READ(ns, mounts.rb_node);
		for (i = 0; i < RS_RB_DEPTH_MAX && node; i++) {
			struct rb_node *right = BPF_CORE_READ(node, rb_right);

			if (!right)
				break;
			node = right;
		}
	} else {
		struct mnt_namespace___list *ons = (void *)ns;
		struct list_head *last = BPF_CORE_READ(ons, list.prev);

		if (!last || last == &ons->list)
			return NULL;
		return (struct mount *)((void *)last - bpf_core_field_offset(struct mount___list, mnt_list));
	}
	if (!node)
		return NULL;
	return (struct mount *)((void *)node - bpf_core_field_offset(struct mount, mnt_node));
}

/* mount(2) that made a mount: the namespace's newest one, walked from its
 * root (its mount point, id, filesystem). User space checks that its mount
 * point is the target (another mount may have come in between). */
static __always_inline void rs_fim_new_mount(void *rec, __u32 *off, struct rs_file_event *e,
					     struct task_struct *task)
{
	struct mount *m = rs_newest_mount(task);

	if (!m)
		return;
	e->dest.mount_id = BPF_CORE_READ(m, mnt_id);
	rs_fill_inode(&e->dest, BPF_CORE_READ(m, mnt.mnt_root));
	rs_resolve_path(rec, off, &e->dest, BPF_CORE_READ(m, mnt.mnt_root), &m->mnt);
	e->fim_flags |= RS_FIM_DEST_KERNEL;
}

/* The common sys_exit of every file-integrity syscall. */
static __always_inline int rs_fim_exit(struct trace_event_raw_sys_exit *ctx, struct rs_fim_call *c)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_fim_capture *cap = bpf_task_storage_get(&fim_capture, task, 0, 0);
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct rs_file_event *e;
	struct rs_file second;
	__u32 off = sizeof(*e), records = 1;
	/* syscalls/sys_exit_* records hold `int __syscall_nr`: the upper half of
	 * the `long id` that vmlinux.h declares is padding. */
	__u32 nr = (__u32)ctx->id;
	void *rec;

	if (!rs_type_enabled(c->type) || rs_is_self())
		goto out;
	RS_STAT_INC(c->type, seen);
	rec = rs_record();
	if (!rec)
		goto out;
	e = rec;
	__builtin_memset(e, 0, sizeof(*e));
	rs_fill_header(&e->hdr, c->type);
	rs_fill_proc(&e->proc, task);
	e->retval = ctx->ret;
	e->syscall_nr = nr;
	e->flags = c->flags;
	e->mode = c->mode;
	e->uid = c->uid;
	e->gid = c->gid;
	e->dirfd = c->dirfd;
	e->dirfd2 = c->dirfd2;
	e->fim_flags = c->fim_flags;

	if (cap && (cap->nr != nr || cap->arg0 != BPF_CORE_READ(regs, di) ||
		    cap->arg1 != BPF_CORE_READ(regs, si))) {
		e->fim_flags |= RS_FIM_STALE;
		cap->count = 0;
	}
	if (c->use_fd) {
		struct dentry *dentry = NULL;
		struct vfsmount *mnt = NULL;

		if (rs_fd_path(task, c->fd, &dentry, &mnt)) {
			rs_fill_file(rec, &off, &e->file, dentry, mnt);
			e->fim_flags |= RS_FIM_OBJ_FD;
			if (c->type == RS_EVENT_LINK && dentry && c->path2) {
				/* linkat(fd, "", ..., AT_EMPTY_PATH): the new alias of the fd's inode. */
				struct inode *inode = BPF_CORE_READ(dentry, d_inode);
				struct dentry *alias = inode ? rs_alias_named(inode, c->path2, dentry) : NULL;

				if (alias) {
					rs_fill_inode(&e->dest, alias);
					rs_resolve_dentry(rec, &off, &e->dest, alias, NULL, 0);
					e->fim_flags |= RS_FIM_DEST_KERNEL;
				}
			}
		}
	} else if (cap && cap->count) {
		records = rs_fim_objects(rec, &off, e, cap, c, &second);
	}

	if (c->type == RS_EVENT_MOUNT && e->retval == 0 && !(c->flags & RS_MS_NOT_NEW))
		rs_fim_new_mount(rec, &off, e, task);
	if (c->xattr)
		rs_append_str(rec, &off, &e->xattr_name, c->xattr, true);
	if (c->fstype)
		rs_append_str(rec, &off, &e->fs_type, c->fstype, true);
	/* The caller's strings and start directories: the path of a failed call,
	 * and the hint that places an RS_FILE_SB_RELATIVE path on a mount. */
	if (c->need_base || rs_file_unplaced(&e->file))
		rs_fim_base(rec, &off, task, &e->base, &e->req_path, c->dirfd, c->path);
	if (c->path2 && (c->need_base || rs_file_unplaced(&e->dest)))
		rs_fim_base(rec, &off, task, &e->base2, &e->req_path2, c->dirfd2, c->path2);
	if ((e->req_path.len || e->req_path2.len) && rs_task_chrooted(task)) {
		struct rs_file root = {};

		if (rs_resolve_path(rec, &off, &root, BPF_CORE_READ(task, fs, root.dentry),
				    BPF_CORE_READ(task, fs, root.mnt)))
			e->root = root.path;
	}
	if (records == 2)
		e->fim_flags |= RS_FIM_EXCHANGE;
	rs_submit(rec, off);

	if (records == 2) {
		/* RENAME_EXCHANGE: the other file went the other way. */
		struct rs_str from = e->dest.path;
		struct rs_str to = e->file.path;

		__builtin_memcpy(&e->file, &second, sizeof(second));
		__builtin_memcpy(&e->dest, &second, sizeof(second));
		e->file.path = from;
		e->dest.path = to;
		RS_STAT_INC(c->type, seen);
		rs_submit(rec, off);
	}
out:
	if (cap)
		bpf_task_storage_delete(&fim_capture, task);
	return 0;
}

#endif /* RS_FIM_H */
