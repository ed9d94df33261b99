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
#include "proc_meta.h"

/* Set by the loader: capture the environment of every exec (opt-in: it
 * often holds secrets, and it costs up to RS_ARGS_MAX bytes per exec). */
const volatile __u32 rs_capture_env = 0;

/*
 * Scripts. When execve runs a script, binfmt_script opens the interpreter and
 * exec_binprm() swaps it into bprm->file, then fput()s the script's struct
 * file. fput() of the last reference from a user task defers the release to
 * task_work (file->f_task_work, ____fput), run on return to user space: at
 * sched_process_exec the script's struct file is still intact and queued on
 * current->task_works. The oldest queued ____fput of a file opened for exec
 * (__FMODE_EXEC) is the script (interpreters of nested scripts, the old
 * image's executable and ld.so are queued after it). Not found (____fput not
 * in kallsyms, list too long): RS_EXEC_SCRIPT_FROM_NAME, user space falls
 * back to bprm->filename.
 */
extern const void ____fput __ksym __weak;

#define RS_TASK_WORKS_MAX 128
#define RS_FMODE_EXEC 0x20            /* FMODE_EXEC == __FMODE_EXEC, in f_mode and f_flags */

/* struct file's callback_head was f_u.fu_rcuhead (< 5.x), f_rcuhead (6.1) and
 * is f_task_work (6.7+). */
struct rs_file_u___old {
	struct callback_head fu_rcuhead;
} __attribute__((preserve_access_index));

struct file___v51 {
	struct rs_file_u___old f_u;
} __attribute__((preserve_access_index));

struct file___v61 {
	struct callback_head f_rcuhead;
} __attribute__((preserve_access_index));

static __always_inline long rs_file_cb_offset(void)
{
	if (bpf_core_field_exists(struct file, f_task_work))
		return bpf_core_field_offset(struct file, f_task_work);
	if (bpf_core_field_exists(struct file___v61, f_rcuhead))
		return bpf_core_field_offset(struct file___v61, f_rcuhead);
	if (bpf_core_field_exists(struct file___v51, f_u))
		return bpf_core_field_offset(struct file___v51, f_u);
	return -1;
}

static __always_inline struct file *rs_pending_script(struct task_struct *task, struct file *interp)
{
	struct callback_head *head = BPF_CORE_READ(task, task_works);
	long cb_off = rs_file_cb_offset();
	struct file *script = NULL;
	void *fput_fn = (void *)&____fput;
	__u32 i;

	if (!fput_fn || cb_off < 0)
		return NULL;
	for (i = 0; i < RS_TASK_WORKS_MAX && head; i++) {
		if ((void *)BPF_CORE_READ(head, func) == fput_fn) {
			struct file *f = (void *)head - cb_off;

			if (f != interp && ((BPF_CORE_READ(f, f_flags) & RS_FMODE_EXEC) ||
					    (BPF_CORE_READ(f, f_mode) & RS_FMODE_EXEC)))
				script = f; /* keep going: the oldest one wins */
		}
		head = BPF_CORE_READ(head, next);
	}
	return script;
}

/* Append `len` bytes of the new image's argv/envp area; sets `trunc` in
 * *flags when the area is longer than RS_ARGS_MAX - 1. */
static __always_inline void rs_append_area(void *rec, __u32 *off, struct rs_str *s,
					   unsigned long start, unsigned long end,
					   __u32 *flags, __u32 trunc)
{
	unsigned long len = end - start;

	if (end <= start)
		return;
	if (len > RS_ARGS_MAX - 1) {
		len = RS_ARGS_MAX - 1;
		*flags |= trunc;
	}
	if (!rs_append_user_bytes(rec, off, s, (void *)start, len))
		*flags |= trunc;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(rs_sched_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct rs_exec_event *e;
	struct file *file, *script = NULL;
	struct mm_struct *mm;
	__u32 off = sizeof(*e);
	void *rec;

	/* before the handover check: this object's names must follow every exec */
	file = BPF_CORE_READ(bprm, file);
	if (BPF_CORE_READ(bprm, interp) != BPF_CORE_READ(bprm, filename)) {
		script = rs_pending_script(p, file);
		rs_exec_names_exec(p, script ? BPF_CORE_READ(script, f_path.dentry) : NULL);
	} else {
		rs_exec_names_exec(p, BPF_CORE_READ(file, f_path.dentry));
	}
	if (rs_other_generation(__LINE__))     /* a handover: the other object reports it */
		return 0;
	RS_STAT_INC(RS_EVENT_EXEC, seen);
	rec = rs_record();
	if (!rec)
		return 0;
	/* reserve -> fill -> submit: the record is built in per-CPU scratch */
	e = rec;
	__builtin_memset(e, 0, sizeof(*e));
	rs_fill_header(&e->hdr, RS_EVENT_EXEC);
	rs_fill_proc(&e->proc, p);
	e->old_tid = old_pid;
	e->argc = BPF_CORE_READ(bprm, argc);
	e->envc = BPF_CORE_READ(bprm, envc);

	/* bprm->file is what the kernel mapped: the interpreter for scripts;
	 * `script` the script's file, found above. */
	if (BPF_CORE_READ(bprm, interp) != BPF_CORE_READ(bprm, filename)) {
		e->args_flags |= RS_EXEC_SCRIPT;
		if (script)
			rs_fill_file(rec, &off, &e->file, BPF_CORE_READ(script, f_path.dentry),
				     BPF_CORE_READ(script, f_path.mnt));
		else
			e->args_flags |= RS_EXEC_SCRIPT_FROM_NAME;
		rs_fill_file(rec, &off, &e->interpreter, BPF_CORE_READ(file, f_path.dentry),
			     BPF_CORE_READ(file, f_path.mnt));
	} else {
		rs_fill_file(rec, &off, &e->file, BPF_CORE_READ(file, f_path.dentry),
			     BPF_CORE_READ(file, f_path.mnt));
	}
	/* tty, container id, kthread flag of the new image */
	rs_fill_meta(&e->meta, p);

	/* argv (and envp): the NUL-separated strings the new image sees on its stack */
	mm = BPF_CORE_READ(p, mm);
	rs_append_area(rec, &off, &e->argv, BPF_CORE_READ(mm, arg_start),
		       BPF_CORE_READ(mm, arg_end), &e->args_flags, RS_ARGS_TRUNCATED);
	if (rs_capture_env) {
		e->args_flags |= RS_ENVS_CAPTURED;
		rs_append_area(rec, &off, &e->envp, BPF_CORE_READ(mm, env_start),
			       BPF_CORE_READ(mm, env_end), &e->args_flags, RS_ENVS_TRUNCATED);
	}
	rs_append_str(rec, &off, &e->filename, BPF_CORE_READ(bprm, filename), false);
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
	rs_exec_names_fork(parent, child);
	if (rs_other_generation(__LINE__))
		return 0;
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
	/* the child's own cgroups: clone3(CLONE_INTO_CGROUP) may differ from the parent's */
	rs_fill_meta(&e->child, child);
	e->child_pid = child->tgid;
	e->child_tid = child->pid;
	e->parent_pid = parent->tgid;
	e->parent_tid = parent->pid;
	e->child_start_time = child->start_boottime;
	e->parent_start_time = BPF_CORE_READ(parent, group_leader, start_boottime);
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
	if (rs_other_generation(__LINE__))
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
