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

#define RS_O_CREAT 0100
#define RS_O_WRONLY 01
#define RS_O_TRUNC 01000

struct rs_open_args {
	long dirfd;
	const char *path;
	__u32 flags;
	__u32 mode;
};

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

SEC("tracepoint/syscalls/sys_exit_openat")
int rs_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_open_args a;

	rs_syscall_args(&r);
	a.dirfd = r.a[0];
	a.path = (const char *)r.a[1];
	a.flags = r.a[2];
	a.mode = r.a[3];
	return rs_open_exit(ctx, &a);
}

SEC("tracepoint/syscalls/sys_exit_open")
int rs_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_open_args a;

	rs_syscall_args(&r);
	a.dirfd = RS_AT_FDCWD;
	a.path = (const char *)r.a[0];
	a.flags = r.a[1];
	a.mode = r.a[2];
	return rs_open_exit(ctx, &a);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int rs_exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_open_args a;

	rs_syscall_args(&r);
	a.dirfd = RS_AT_FDCWD;
	a.path = (const char *)r.a[0];
	a.flags = RS_O_CREAT | RS_O_WRONLY | RS_O_TRUNC;
	a.mode = r.a[1];
	return rs_open_exit(ctx, &a);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int rs_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_open_args a;
	struct open_how how = {};

	rs_syscall_args(&r);
	bpf_probe_read_user(&how, sizeof(how), (void *)r.a[2]);
	a.dirfd = r.a[0];
	a.path = (const char *)r.a[1];
	a.flags = how.flags;
	a.mode = how.mode;
	return rs_open_exit(ctx, &a);
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
	long nr;

	if (task->flags & (RS_PF_KTHREAD | RS_PF_IO_WORKER))
		return 0;
	nr = rs_current_nr(task, &regs);
	if (nr != RS_NR_openat && nr != RS_NR_open && nr != RS_NR_openat2 && nr != RS_NR_creat)
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
