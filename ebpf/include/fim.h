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
 *  2. At sys_exit, rs_fim_exit() (fim_exit.h) picks the object (and the
 *     destination) among the captured inodes by the event type's rules
 *     (fim_objects.h), walks their paths from the captured dentries, adds the
 *     call's arguments, and resets the storage (kept with the task: deleting
 *     and re-creating it per call costs more than the rest of the call).
 *
 * Names are compared with the caller's string in fim_names.h.
 *
 * A call that changed nothing (it failed) captured nothing: the record then
 * carries the caller's strings and the kernel-walked start directories.
 */
#ifndef RS_FIM_H
#define RS_FIM_H

#include "common.h"
#include "path.h"
#include "task.h"
#include "fim_names.h"
#include "call_ctx.h"         /* rs_precise_hooks: captures by the fentry/kprobe sets */

/* mount(2) flags that change an existing mount instead of making one */
#define RS_MS_NOT_NEW (RS_MS_REMOUNT | RS_MS_MOVE | RS_MS_UNBINDABLE | RS_MS_PRIVATE | RS_MS_SLAVE | RS_MS_SHARED)

#define RS_S_IFMT 0170000
#define RS_S_IFDIR 0040000
#define RS_S_ISDIR(m) (((m) & RS_S_IFMT) == RS_S_IFDIR)

#define RS_FIM_SLOTS 8          /* inodes kept per call (overlayfs copy-up touches several) */

#define RS_BIT(t) (1ULL << (t))

/* One inode a watched call changed. */
struct rs_fim_slot {
	struct rs_file file;          /* attributes at its last ctime update (path, fstype unused) */
	struct inode *inode;
	struct super_block *sb;
	struct dentry *dentry;        /* its alias at the first update; NULL: none yet (a new inode) */
	struct vfsmount *mnt;         /* the mount it was reached through (fentry set); NULL: unknown */
	struct dentry *parent;        /* dentry->d_parent then */
	struct inode *parent_inode;   /* parent->d_inode then: proves `parent` still valid at exit */
	__u64 hash_len;               /* dentry->d_name.hash_len then: tells a moved dentry */
	__u32 seq;                    /* order of its last update in the call, from 1 */
	__u32 name_len;
	char name[RS_NAME_MAX];       /* dentry->d_name then (unlink and rename change it) */
};

/* Per task: the captures of the watched call it is in (reset at its sys_exit). */
struct rs_fim_capture {
	__u64 arg0;                   /* the call's first two arguments and number tell */
	__u64 arg1;                   /* it from an earlier call whose exit we missed */
	__u32 nr;
	__u32 count;
	__u32 seq;
	__u32 precise;                /* filled by the fentry set (fim_precise.h): slot 0 is the
	                               * object, slot 1 rename's/link's new name */
	struct vfsmount *pending_mnt; /* fentry set: the mount mnt_want_write() got in this call */
	struct rs_fim_slot slot[RS_FIM_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rs_fim_capture);
} fim_capture SEC(".maps");

/*
 * The inode attributes a capture keeps, with direct loads: in the tp_btf
 * programs `inode` is a BTF pointer, and a load costs a few instructions
 * where a bpf_probe_read_kernel() call costs tens of nanoseconds (a capture
 * runs for every inode a watched call changes). The filesystem type name is
 * read at exit, for the chosen inode only (rs_fim_fill_fstype).
 */
static __always_inline void rs_capture_attrs(struct rs_file *f, struct inode *inode)
{
	struct super_block *sb = inode->i_sb;

	f->inode = inode->i_ino;
	f->mode = inode->i_mode;
	f->uid = inode->i_uid.val;
	f->gid = inode->i_gid.val;
	f->nlink = inode->__i_nlink;
	f->dev = sb->s_dev;
	f->flags = RS_FILE_PRESENT;
	if (bpf_core_field_exists(inode->i_ctime_sec)) {
		f->ctime_ns = inode->i_ctime_sec * RS_NSEC_PER_SEC + (inode->i_ctime_nsec & ~(1U << 31));
		f->mtime_ns = inode->i_mtime_sec * RS_NSEC_PER_SEC + inode->i_mtime_nsec;
	} else {
		rs_fill_times(f, inode);
	}
	rs_fill_overlay(f, inode, sb->s_magic);
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

	/* Every ctime update in the system comes here: leave early and cheaply
	 * (direct loads) unless the task is inside a watched syscall. */
	if (task->flags & (RS_PF_KTHREAD | RS_PF_IO_WORKER))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	nr = RS_SYSCALL_NR(regs);
	/* path-based calls only: a descriptor's object comes from its file at exit */
	if (!(rs_syscall_types(nr, &path_arg) & RS_CAPTURE_CTIME_TYPES & rs_event_mask) || path_arg < 0)
		return 0;
	if (rs_is_self() || rs_in_compat_syscall(task))
		return 0;
	a0 = RS_SYSCALL_ARG0(regs);
	a1 = RS_SYSCALL_ARG1(regs);
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
		cap->precise = 0;
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
		rs_capture_attrs(&s->file, inode);
		if (s->dentry)
			return 0;
	} else {
		if (cap->count < RS_FIM_SLOTS)
			idx = cap->count++;
		else
			idx = oldest;
		s = &cap->slot[idx & (RS_FIM_SLOTS - 1)];
		s->inode = inode;
		s->sb = inode->i_sb;
		s->seq = ++cap->seq;
		__builtin_memset(&s->file, 0, sizeof(s->file));
		rs_capture_attrs(&s->file, inode);
		s->dentry = NULL;
		s->mnt = NULL;
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
		upath = path_arg == 1 ? a1 : a0;
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

#endif /* RS_FIM_H */
