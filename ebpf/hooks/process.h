/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/process.h - exec, fork and exit on the scheduler's BTF tracepoints.
 *
 * sched_process_exec fires after the point of no return: the task already
 * runs the new image, so credentials are the new ones and bprm->file is the
 * file actually mapped. sched_process_fork fires in the parent with both
 * tasks; threads (CLONE_THREAD) are not reported. sched_process_exit fires in
 * every exiting thread; only the last one of a thread group is reported.
 */
#ifndef RS_HOOK_PROCESS_H
#define RS_HOOK_PROCESS_H

#include "common.h"
#include "path.h"

SEC("tp_btf/sched_process_exec")
int BPF_PROG(rs_sched_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct rs_exec_event *e;
	struct file *file;
	unsigned long arg_start, arg_end, len;
	__u32 off = sizeof(*e);
	void *rec;

	RS_STAT_INC(RS_EVENT_EXEC, seen);
	rec = rs_record();
	if (!rec)
		return 0;
	e = rec;
	__builtin_memset(e, 0, sizeof(*e));
	rs_fill_header(&e->hdr, RS_EVENT_EXEC);
	rs_fill_proc(&e->proc, p);
	e->old_tid = old_pid;
	e->argc = BPF_CORE_READ(bprm, argc);

	file = BPF_CORE_READ(bprm, file);
	rs_fill_file(rec, &off, &e->file, BPF_CORE_READ(file, f_path.dentry),
		     BPF_CORE_READ(file, f_path.mnt));
	rs_append_str(rec, &off, &e->filename, BPF_CORE_READ(bprm, filename), false);
	if (BPF_CORE_READ(bprm, interp) != BPF_CORE_READ(bprm, filename))
		rs_append_str(rec, &off, &e->interp, BPF_CORE_READ(bprm, interp), false);

	/* argv: the NUL-separated strings the new image sees on its stack. */
	arg_start = BPF_CORE_READ(p, mm, arg_start);
	arg_end = BPF_CORE_READ(p, mm, arg_end);
	len = arg_end - arg_start;
	if (len > RS_ARGS_MAX - 1) {
		len = RS_ARGS_MAX - 1;
		e->args_flags |= RS_ARGS_TRUNCATED;
	}
	rs_append_user_bytes(rec, &off, &e->argv, (void *)arg_start, len);
	rs_submit(rec, off);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(rs_sched_fork, struct task_struct *parent, struct task_struct *child)
{
	struct rs_fork_event *e;
	void *rec;

	if (child->pid != child->tgid)
		return 0; /* a thread */
	RS_STAT_INC(RS_EVENT_FORK, seen);
	rec = rs_record();
	if (!rec)
		return 0;
	e = rec;
	__builtin_memset(e, 0, sizeof(*e));
	rs_fill_header(&e->hdr, RS_EVENT_FORK);
	e->hdr.pid = child->tgid;
	e->hdr.tid = child->pid;
	rs_fill_proc(&e->proc, parent);
	e->child_pid = child->tgid;
	e->child_tid = child->pid;
	e->parent_pid = parent->tgid;
	e->parent_tid = parent->pid;
	e->child_start_time = child->start_boottime;
	rs_submit(rec, sizeof(*e));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(rs_sched_exit, struct task_struct *p)
{
	struct rs_exit_event *e;
	void *rec;

	/* do_exit() decrements signal->live before this tracepoint: zero means
	 * this is the group's last thread. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	RS_STAT_INC(RS_EVENT_EXIT, seen);
	rec = rs_record();
	if (!rec)
		return 0;
	e = rec;
	__builtin_memset(e, 0, sizeof(*e));
	rs_fill_header(&e->hdr, RS_EVENT_EXIT);
	e->hdr.pid = p->tgid;
	e->hdr.tid = p->pid;
	rs_fill_proc(&e->proc, p);
	e->exit_code = p->exit_code;
	rs_submit(rec, sizeof(*e));
	return 0;
}

#endif /* RS_HOOK_PROCESS_H */
