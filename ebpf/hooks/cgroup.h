/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/cgroup.h - cgroup_write: a process migrated a process to a cgroup
 * by writing its pid to one of the cgroup's files (cgroup.procs,
 * cgroup.threads; cgroup v1: tasks, cgroup.procs).
 *
 * tp_btf/cgroup_attach_task fires in cgroup_attach_task() after the
 * migration succeeded (a write that fails - a pid that does not exist, a
 * migration refused - fires nothing), in the writing task, once per write:
 * with the thread-group leader when a whole process moved (cgroup.procs),
 * with the one thread otherwise (cgroup.threads, v1's tasks): one event
 * per write, not one per thread moved. The record
 * (struct rs_activity_event) carries:
 *   target  the migrated task (its tgid is cgroup_write.pid; root pid namespace)
 *   file    the cgroup's directory: the parent of the file the write's
 *           descriptor names, walked from its dentry and mount (an absolute
 *           path, as every file object), checked to be the destination
 *           cgroup's own directory (its inode's kernfs node is the cgroup's)
 *   args    the write's arguments (fd, buffer, count...), syscall_nr
 * The tracepoint's own path argument is relative to the cgroup hierarchy's
 * root ("/test" for /sys/fs/cgroup/unified/test), so it is not used.
 *
 * Only migrations a write made are reported: the current syscall must be
 * write, writev, pwrite64, pwritev or pwritev2 and its descriptor a file of
 * the destination cgroup. Not reported: the kernel's own migrations
 * (cgroup_attach_task_all(): vhost workers joining their owner's cgroups,
 * from an ioctl; kernel threads), writes made through io_uring (no write
 * syscall in the task); clone3(CLONE_INTO_CGROUP) and cgroup v1's
 * cgroup_transfer_tasks() do not go through this tracepoint at all.
 * No retval: the tracepoint fires before the write returns, and only when
 * the migration succeeded.
 */
#ifndef RS_HOOK_CGROUP_H
#define RS_HOOK_CGROUP_H

#include "common.h"
#include "task.h"
#include "hooks/activity.h"

SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(rs_cgroup_attach_task, struct cgroup *dst_cgrp, const char *path, struct task_struct *moved,
	     bool threadgroup)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_activity_event *e;
	struct dentry *dir;
	struct pt_regs *regs;
	struct file *f;
	__u32 off = sizeof(*e);
	long nr;
	void *rec;

	if (rs_is_self())
		return 0;
	if (task->flags & (RS_PF_KTHREAD | RS_PF_IO_WORKER))
		return 0;
	nr = rs_current_nr(task, &regs);
	if (!rs_related_syscall_cgroup_write(nr))
		return 0;
	f = rs_fd_file(task, RS_SYSCALL_ARG0(regs));
	if (!f)
		return 0;
	dir = BPF_CORE_READ(f, f_path.dentry, d_parent);
	if (!dir || BPF_CORE_READ(dir, d_inode, i_private) != (void *)BPF_CORE_READ(dst_cgrp, kn))
		return 0;
	RS_STAT_INC(RS_EVENT_CGROUP_WRITE, seen);
	if (!rs_type_sends(RS_EVENT_CGROUP_WRITE))
		return 0;
	e = rec = rs_record_begin(struct rs_activity_event, RS_EVENT_CGROUP_WRITE, task);
	if (!rec)
		return 0;
	rs_fill_target(&e->target, moved);
	e->flags |= RS_ACT_TARGET;
	rs_activity_call_of(e, task, regs, nr);
	rs_fill_file(rec, &off, &e->file, dir, BPF_CORE_READ(f, f_path.mnt));
	rs_submit(rec, off);
	return 0;
}

#endif /* RS_HOOK_CGROUP_H */
