/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fim_precise.h - the objects of a path-based call from the kernel functions
 * that hold them (hook set `fentry`, programs in hooks/fentry.h).
 *
 * The LSM path hooks run after the kernel resolved the caller's path and
 * before it changes anything: security_path_chmod(path), _chown(path),
 * _unlink(dir, dentry), _rmdir(dir, dentry), _mkdir(dir, dentry),
 * _rename(old_dir, old_dentry, new_dir, new_dentry), _link(old_dentry,
 * new_dir, new_dentry); vfs_utimes(path); security_inode_setxattr /
 * _removexattr(dentry) with the mount mnt_want_write() was given just
 * before. Each hands over the dentry *and the mount* the caller reached, so
 * the path is walked through that mount - bind mounts included - with no
 * guess, and the name is the one the caller used (a hard link's).
 *
 * They fill the same per-task capture as the ctime tracepoints (fim.h),
 * marked `precise`: slot 0 is the object, slot 1 rename's/link's new name
 * (its parent and name; rename's exchanged inode). The sys_exit programs are
 * the tracepoint set's; rs_fim_exit() reads a precise capture with
 * rs_precise_objects() below instead of choosing among changed inodes.
 *
 * A call that fails after the hook (EPERM from notify_change, ...) still
 * names its object: the record has it, with the call's negative retval.
 */
#ifndef RS_FIM_PRECISE_H
#define RS_FIM_PRECISE_H

#include "fim_objects.h"
#include "call_ctx.h"

/* The task's capture for the current call if it is a watched one of a type
 * in `types`; stamped, and emptied when `reset` or when it belonged to
 * another call. NULL: not watched. */
static __always_inline struct rs_fim_capture *rs_precise_begin(__u64 types, bool reset)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_fim_capture *cap;
	struct pt_regs *regs;
	unsigned long a0, a1;
	int path_arg;
	long nr;

	if (task->flags & (RS_PF_KTHREAD | RS_PF_IO_WORKER))
		return NULL;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	nr = RS_SYSCALL_NR(regs);
	if (!(rs_syscall_types(nr, &path_arg) & types & rs_event_mask))
		return NULL;
	if (rs_is_self() || rs_in_compat_syscall(task))
		return NULL;
	a0 = RS_SYSCALL_ARG0(regs);
	a1 = RS_SYSCALL_ARG1(regs);
	cap = bpf_task_storage_get(&fim_capture, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!cap)
		return NULL;
	if (reset || cap->nr != nr || cap->arg0 != a0 || cap->arg1 != a1) {
		cap->nr = nr;
		cap->arg0 = a0;
		cap->arg1 = a1;
		cap->count = 0;
		cap->seq = 0;
		cap->pending_mnt = NULL;
	}
	cap->precise = 1;
	return cap;
}

/*
 * Slot i := `d` (positive or not) in directory `parent`, reached through
 * `mnt`. Attributes now (unlink, rmdir: the inode may be gone at exit), the
 * name copied (rename changes it).
 */
static __always_inline void rs_precise_slot(struct rs_fim_capture *cap, __u32 i, struct dentry *parent,
					    struct dentry *d, struct vfsmount *mnt)
{
	struct rs_fim_slot *s = &cap->slot[i & (RS_FIM_SLOTS - 1)];
	struct inode *inode = BPF_CORE_READ(d, d_inode);
	struct qstr q = BPF_CORE_READ(d, d_name);
	__u32 len = q.len;

	struct super_block *sb = BPF_CORE_READ(d, d_sb);

	__builtin_memset(&s->file, 0, sizeof(s->file));
	s->sb = sb;
	if (inode) {
		rs_fill_inode_attrs(&s->file, inode);
	} else {
		s->file.dev = BPF_CORE_READ(sb, s_dev);
		rs_fim_fill_fstype(&s->file, sb);
	}
	s->inode = inode;
	s->dentry = d;
	s->mnt = mnt;
	s->parent = parent;
	s->parent_inode = BPF_CORE_READ(parent, d_inode);
	s->hash_len = q.hash_len;
	s->seq = ++cap->seq;
	s->name_len = 0;
	if (len > RS_NAME_MAX - 1)
		len = RS_NAME_MAX - 1;
	if (bpf_probe_read_kernel(s->name, RS_MASKED(len, RS_NAME_MAX - 1), q.name) == 0)
		s->name_len = len;
	if (cap->count <= i)
		cap->count = i + 1;
}

/* Slot i := the object of a struct path (its own parent and name). */
static __always_inline void rs_precise_path_slot(struct rs_fim_capture *cap, __u32 i, struct dentry *d,
						 struct vfsmount *mnt)
{
	rs_precise_slot(cap, i, BPF_CORE_READ(d, d_parent), d, mnt);
}

/*
 * The path a precise slot names: its directory walked through its mount,
 * plus its name - as the caller reached it, whatever happened to the dentry
 * since (unlinked, moved). The directory must still be the inode it was.
 * Without a mount (setxattr whose mnt_want_write was not seen), as the ctime
 * capture does: the superblock's mount in the caller's namespace, or
 * relative to the filesystem's root.
 */
static __always_inline void rs_precise_path(void *rec, __u32 *off, struct rs_file *f, struct rs_fim_slot *s)
{
	/* plain loads first: BPF_CORE_READ() on s->x would relocate our struct too */
	struct dentry *parent = s->parent;
	struct rs_path_buf *b;
	struct mount *m;
	bool parent_same = BPF_CORE_READ(parent, d_inode) == s->parent_inode;

	f->path.off = 0;
	f->path.len = 0;
	if (!s->dentry)
		return;
	if (!s->mnt) {
		if (s->dentry == s->parent)
			rs_resolve_dentry(rec, off, f, s->dentry, NULL, 0);
		else if (parent_same)
			rs_resolve_dentry(rec, off, f, s->parent, s->name, s->name_len);
		return;
	}
	m = rs_real_mount(s->mnt);
	f->mount_id = BPF_CORE_READ(m, mnt_id);
	if (s->dentry == s->parent) {
		b = rs_walk(s->dentry, m, NULL, 0);        /* the root of its filesystem */
	} else {
		if (!parent_same)
			return;
		b = rs_walk(s->parent, m, s->name, s->name_len);
	}
	if (b)
		rs_emit_walk(rec, off, f, b);
}

/* The object's attributes at exit: re-read while its inode lives (chmod
 * and the like report the state after the call), the new inode of a mkdir,
 * else as captured. */
static __always_inline void rs_precise_attrs(struct rs_file *f, struct rs_fim_slot *s, bool refresh)
{
	struct dentry *d = s->dentry;
	struct inode *now = d ? BPF_CORE_READ(d, d_inode) : NULL;

	__builtin_memset(f, 0, sizeof(*f));
	if (refresh && now && (now == s->inode || !s->inode)) {
		rs_fill_inode_attrs(f, now);
		return;
	}
	__builtin_memcpy(f, &s->file, sizeof(*f));
	f->path.off = 0;
	f->path.len = 0;
}

/*
 * The object and destination of a call from a precise capture. Returns how
 * many records the call makes (2: RENAME_EXCHANGE), with the second file's
 * attributes in *second.
 */
static __always_inline __u32 rs_precise_objects(void *rec, __u32 *off, struct rs_file_event *e,
						struct rs_fim_capture *cap, struct rs_fim_call *c,
						struct rs_file *second)
{
	struct rs_fim_slot *s = &cap->slot[0];
	struct rs_fim_slot *d = &cap->slot[1];
	bool removed = c->type == RS_EVENT_UNLINK || c->type == RS_EVENT_RMDIR;
	bool moved = c->type == RS_EVENT_RENAME || c->type == RS_EVENT_LINK;

	if (!s->dentry)
		return 1;
	rs_precise_attrs(&e->file, s, !removed && !moved);
	rs_precise_path(rec, off, &e->file, s);
	if (e->file.flags & RS_FILE_PRESENT)
		e->fim_flags |= RS_FIM_OBJ_INODE;
	if (!moved || cap->count < 2 || !d->dentry)
		return 1;
	/* rename, link: the same inode under its new name */
	__builtin_memcpy(&e->dest, &e->file, sizeof(e->dest));
	e->dest.flags &= ~(RS_FILE_SB_RELATIVE | RS_FILE_PATH_TRUNCATED | RS_FILE_DETACHED | RS_FILE_DISCONNECTED);
	rs_precise_path(rec, off, &e->dest, d);
	e->fim_flags |= RS_FIM_DEST_KERNEL;
	if (c->type == RS_EVENT_RENAME && (c->flags & RS_RENAME_EXCHANGE) && d->inode) {
		/* the other file went the other way: its attributes */
		__builtin_memcpy(second, &d->file, sizeof(*second));
		return 2;
	}
	return 1;
}

#endif /* RS_FIM_PRECISE_H */
