/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/open.h - open, openat, openat2, creat on the syscall-exit tracepoints.
 *
 * A successful open names its object exactly: the returned fd's struct file
 * gives the dentry and mount, walked into an absolute path. A failed open has
 * no object; the record carries the caller's string and the kernel-walked
 * directory the lookup started from, which user space joins and normalizes.
 */
#ifndef RS_HOOK_OPEN_H
#define RS_HOOK_OPEN_H

#include "common.h"
#include "filters.h"
#include "path.h"
#include "task.h"
#include "call_ctx.h"

/* An open's arguments, filled by its sys_exit wrapper (exits.h). */
struct rs_open_args {
	long dirfd;
	const char *path;
	const void *how;              /* openat2: struct open_how (user memory) */
	__u32 flags;
	__u32 mode;
};

static __always_inline void rs_open_args_init(struct rs_open_args *a, __u32 type)
{
	__builtin_memset(a, 0, sizeof(*a));
	a->dirfd = RS_AT_FDCWD;
}

static __always_inline int rs_open_exit(struct trace_event_raw_sys_exit *ctx, struct rs_open_args *a)
{
	struct task_struct *task;
	struct rs_file_event *e;
	struct dentry *dentry = NULL;
	struct vfsmount *mnt = NULL;
	struct rs_call_ctx *c;
	__u32 off = sizeof(*e);
	long ret = ctx->ret;
	void *rec;

	if (rs_is_self())
		return 0;
	RS_STAT_INC(RS_EVENT_OPEN, seen);
	if (a->how) {
		struct open_how how = {};

		bpf_probe_read_user(&how, sizeof(how), a->how);
		a->flags = how.flags;
		a->mode = how.mode;
	}
	task = bpf_get_current_task_btf();
	/* precise sets: the struct path vfs_open() got (NULL with the tracepoint set) */
	c = rs_call_ctx_take(task, (__u32)ctx->id);
	if (ret >= 0) {
		struct file *file = rs_fd_file(task, ret);
		struct path fpath = {};

		/* one read for both halves of f_path (file is not a BTF pointer) */
		if (file)
			bpf_core_read(&fpath, sizeof(fpath), &file->f_path);
		dentry = fpath.dentry;
		mnt = fpath.mnt;
	} else if (c && rs_call_obj_valid(&c->obj)) {
		/* The lookup found the file and the open failed after it (an LSM,
		 * a FIFO without reader, ETXTBSY...): the object is known. */
		dentry = c->obj.dentry;
		mnt = c->obj.mnt;
	}
	/* Drop here, before building anything, what no rule can match. */
	if (!rs_filter(RS_EVENT_OPEN, dentry, mnt, a->flags, a->path))
		return 0;
	rec = rs_record();
	if (!rec)
		return 0;
	e = rec;
	__builtin_memset(e, 0, sizeof(*e));
	rs_fill_header(&e->hdr, RS_EVENT_OPEN);
	rs_fill_proc(&e->proc, task);
	e->retval = ret;
	e->syscall_nr = ctx->id;
	e->flags = a->flags;
	e->mode = a->mode;
	e->dirfd = a->dirfd;

	if (dentry) {
		rs_fill_file(rec, &off, &e->file, dentry, mnt);
		if (rs_policy_discard(RS_EVENT_OPEN))
			rs_filter_parents(e->parent_inodes);
	} else {
		char first = 0;

		rs_append_str(rec, &off, &e->req_path, a->path, true);
		if (e->req_path.len)
			first = ((char *)rec)[e->req_path.off & (RS_RECORD_MAX - 1)];
		if (rs_lookup_base(task, a->dirfd, first, &dentry, &mnt))
			rs_fill_file(rec, &off, &e->base, dentry, mnt);
	}
	rs_submit(rec, off);
	return 0;
}

/*
 * Precise sets: vfs_open() gets the struct path the lookup resolved; kept
 * for the exit program, which needs it only when the open then fails (a
 * successful open names its file through the fd). The fentry set hooks the
 * function's exit, so only failed opens write to the task's storage; the
 * kprobe set, without the return value, keeps every open's.
 */
static __always_inline int rs_precise_vfs_open(const struct path *path)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_call_ctx *c;
	struct pt_regs *regs;
	int path_arg;
	long nr;

	if (task->flags & (RS_PF_KTHREAD | RS_PF_IO_WORKER))
		return 0;
	nr = rs_current_nr(task, &regs);
	if (!(rs_syscall_types(nr, &path_arg) & (1ULL << RS_EVENT_OPEN)))
		return 0;
	if (rs_is_self())
		return 0;
	c = rs_call_ctx_begin(task, nr, regs);
	if (!c)
		return 0;
	rs_call_ctx_set(c, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt));
	return 0;
}

SEC("fexit/vfs_open")
int BPF_PROG(rs_fentry_vfs_open, const struct path *path, struct file *file, int ret)
{
	return ret ? rs_precise_vfs_open(path) : 0;
}

SEC("kprobe/vfs_open")
int BPF_KPROBE(rs_kprobe_vfs_open, const struct path *path)
{
	return rs_precise_vfs_open(path);
}

#endif /* RS_HOOK_OPEN_H */
