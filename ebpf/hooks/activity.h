/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/activity.h - process activity: ptrace, signals, credentials
 * (setuid, setgid, capset), memfd_create, splice, prctl, chdir, unshare,
 * setns. One record (struct rs_activity_event), one body called by every
 * syscall's generated sys_exit wrapper (exits.h).
 *
 * What the kernel names, per type, on every hook set:
 * - credentials: the caller's cred at sys_exit, after commit_creds();
 * - ptrace: the tracee, found in the tracer's own list of tracees
 *   (task->ptraced) by the number the caller's pid namespace gives it:
 *   before the call (rs_enter_ptrace: PTRACE_DETACH unlinks it) and after
 *   it (a successful PTRACE_ATTACH/SEIZE links it); PTRACE_TRACEME: the
 *   caller itself;
 * - signal: the task a signal is generated for (tp_btf/signal_generate,
 *   after the permission check; the first one of a process group);
 *   pidfd_send_signal: also the pidfd's process;
 * - memfd_create, chdir, splice, setns: the descriptors' and the task's
 *   struct files and paths after the call; splice's pipe flags before
 *   (rs_enter_splice) and after.
 * The precise sets add the task a call looked up even when the call then
 * fails: find_get_task_by_vpid() inside ptrace (an attach refused with
 * EPERM), check_kill_permission() inside the signal calls (a refused
 * signal, kill(pid, 0)). Without them (tracepoint set) such a target is
 * looked up by pid in user space, and only when the caller's pid namespace
 * is the host's.
 *
 * Captures made before the exit live in the calling task's storage,
 * stamped with the syscall number and its first two arguments (as
 * call_ctx.h does), and are taken by the exit of that very call.
 */
#ifndef RS_HOOK_ACTIVITY_H
#define RS_HOOK_ACTIVITY_H

#include "common.h"
#include "filters.h"
#include "path.h"
#include "task.h"
#include "call_ctx.h"

/* A call's arguments, filled by its sys_exit wrapper (exits.h). */
struct rs_activity_call {
	__u32 type;
	int pid;
	int sig;
	int fd;
	int fd_out;
	int option;
	long request;
	unsigned long addr;
	unsigned long flags;
	unsigned long arg2;
	const char *str;
};

static __always_inline void rs_activity_call_init(struct rs_activity_call *c, __u32 type)
{
	__builtin_memset(c, 0, sizeof(*c));
	c->type = type;
	c->fd = -1;
	c->fd_out = -1;
}

/* What programs inside or before a call found for its exit. */
struct rs_activity_capture {
	__u64 arg0;
	__u64 arg1;
	__u32 nr;
	__u32 flags;                  /* RS_ACT_TARGET, RS_ACT_TARGET_PRECISE, RS_ACT_PIPE_ENTRY */
	__u32 pipe_entry_flags;
	__u32 _pad0;
	struct rs_target target;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rs_activity_capture);
} activity_capture SEC(".maps");

#define RS_PTRACED_MAX 32             /* tracees of one tracer looked at */
#define RS_PIDNS_LEVELS 32            /* MAX_PID_NS_LEVEL */
#define RS_NAME_ARG_MAX RS_NAME_MAX   /* bytes of a name argument kept (prctl, memfd_create) */

static __always_inline struct rs_activity_capture *rs_activity_capture_begin(struct task_struct *task, long nr,
									     struct pt_regs *regs)
{
	struct rs_activity_capture *cap;
	__u64 a0, a1;

	cap = bpf_task_storage_get(&activity_capture, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!cap)
		return NULL;
	a0 = RS_SYSCALL_ARG0_CORE(regs);
	a1 = RS_SYSCALL_ARG1_CORE(regs);
	if (cap->nr != nr || cap->arg0 != a0 || cap->arg1 != a1) {
		cap->nr = nr;
		cap->arg0 = a0;
		cap->arg1 = a1;
		cap->flags = 0;
	}
	return cap;
}

/* At sys_exit: what was captured for this very call, into the record; the
 * capture is emptied either way. */
static __always_inline void rs_activity_capture_take(struct task_struct *task, __u32 nr, struct pt_regs *regs,
						     struct rs_activity_event *e)
{
	struct rs_activity_capture *cap = bpf_task_storage_get(&activity_capture, task, 0, 0);

	if (!cap)
		return;
	if (cap->flags && cap->nr == nr && cap->arg0 == RS_SYSCALL_ARG0(regs) && cap->arg1 == RS_SYSCALL_ARG1(regs)) {
		e->flags |= cap->flags;
		e->pipe_entry_flags = cap->pipe_entry_flags;
		if (cap->flags & RS_ACT_TARGET)
			__builtin_memcpy(&e->target, &cap->target, sizeof(e->target));
	}
	cap->nr = 0;
	cap->flags = 0;
}

/* -- tasks ------------------------------------------------------------------ */

/* Another task's context, as rs_fill_proc() gives the caller's (probe reads:
 * `task` need not be a BTF pointer). */
static __always_inline void rs_fill_target(struct rs_target *t, struct task_struct *task)
{
	const struct cred *cred = BPF_CORE_READ(task, cred);
	struct rs_proc_ctx *p = &t->ctx;

	t->pid = BPF_CORE_READ(task, tgid);
	t->tid = BPF_CORE_READ(task, pid);
	t->start_time = BPF_CORE_READ(task, group_leader, start_boottime);
	p->ppid = BPF_CORE_READ(task, real_parent, tgid);
	p->uid = BPF_CORE_READ(cred, uid.val);
	p->gid = BPF_CORE_READ(cred, gid.val);
	p->euid = BPF_CORE_READ(cred, euid.val);
	p->egid = BPF_CORE_READ(cred, egid.val);
	p->fsuid = BPF_CORE_READ(cred, fsuid.val);
	p->fsgid = BPF_CORE_READ(cred, fsgid.val);
	p->_pad0 = 0;
	bpf_core_read(&p->cap_effective, sizeof(p->cap_effective), &cred->cap_effective);
	bpf_core_read(&p->cap_permitted, sizeof(p->cap_permitted), &cred->cap_permitted);
	p->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	p->start_time = t->start_time;
	BPF_CORE_READ_STR_INTO(&p->comm, task, comm);
}

/* The caller's pid namespace and its depth. */
static __always_inline __u32 rs_pidns_of(struct task_struct *task, struct pid_namespace **ns)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	__u32 level = BPF_CORE_READ(pid, level);
	struct upid u = {};

	bpf_core_read(&u, sizeof(u), &pid->numbers[level & (RS_PIDNS_LEVELS - 1)]);
	*ns = u.ns;
	return level;
}

/* The thread id namespace `ns` (at depth `level`) gives `task`; 0 when it
 * does not see it. */
static __always_inline int rs_task_vnr(struct task_struct *task, struct pid_namespace *ns, __u32 level)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	struct upid u = {};

	if (!pid || BPF_CORE_READ(pid, level) < level)
		return 0;
	bpf_core_read(&u, sizeof(u), &pid->numbers[level & (RS_PIDNS_LEVELS - 1)]);
	return u.ns == ns ? u.nr : 0;
}

/* The tracee of `tracer` the tracer's pid namespace calls `vpid`. */
static __always_inline struct task_struct *rs_tracee_of(struct task_struct *tracer, int vpid)
{
	struct list_head *head = &tracer->ptraced;
	struct list_head *pos = BPF_CORE_READ(tracer, ptraced.next);
	struct pid_namespace *ns;
	__u32 level = rs_pidns_of(tracer, &ns);

	for (int i = 0; i < RS_PTRACED_MAX; i++) {
		struct task_struct *child;

		if (!pos || pos == head)
			return NULL;
		child = (void *)pos - bpf_core_field_offset(struct task_struct, ptrace_entry);
		if (rs_task_vnr(child, ns, level) == vpid)
			return child;
		pos = BPF_CORE_READ(child, ptrace_entry.next);
	}
	return NULL;
}

/* The task of a struct pid: its thread-group leader, else its thread. */
static __always_inline struct task_struct *rs_pid_task(struct pid *pid)
{
	int types[2] = { bpf_core_enum_value(enum pid_type, PIDTYPE_TGID),
			 bpf_core_enum_value(enum pid_type, PIDTYPE_PID) };

	if (!pid)
		return NULL;
	for (int i = 0; i < 2; i++) {
		__u32 k = types[i] & 3;
		struct hlist_node *first = NULL;

		bpf_core_read(&first, sizeof(first),
			      (void *)pid + bpf_core_field_offset(struct pid, tasks) + k * sizeof(struct hlist_head));
		if (first)
			return (void *)first - bpf_core_field_offset(struct task_struct, pid_links) -
			       k * sizeof(struct hlist_node);
	}
	return NULL;
}

/* The process a pidfd names: a pidfs inode's struct pid (6.9+; i_private,
 * also the file's private_data before 6.13), or an anon inode "[pidfd]"
 * file's private_data (before 6.9). */
static __always_inline struct task_struct *rs_pidfd_task(struct file *f)
{
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	unsigned long magic = BPF_CORE_READ(inode, i_sb, s_magic);
	struct pid *pid = NULL;

	if (magic == RS_PID_FS_MAGIC) {
		pid = BPF_CORE_READ(inode, i_private);
	} else if (magic == RS_ANON_INODE_FS_MAGIC) {
		char name[8] = {};
		const char want[8] = "[pidfd]";

		bpf_probe_read_kernel(name, sizeof(name), BPF_CORE_READ(f, f_path.dentry, d_name.name));
		for (int i = 0; i < 8; i++)
			if (name[i] != want[i])
				return NULL;
	} else {
		return NULL;
	}
	if (!pid)
		pid = BPF_CORE_READ(f, private_data);
	return rs_pid_task(pid);
}

/* -- captures before and inside calls ----------------------------------------- */

/* The signal target of a signal syscall: `sig` must be the call's (a signal
 * an interrupt generates while the task runs one is not its). */
static __always_inline int rs_capture_signal_target(int sig, struct task_struct *t, bool precise)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct rs_activity_capture *cap;
	struct rs_syscall_args args;
	struct pt_regs *regs;
	int path_arg, idx;
	long nr;

	if (!t || !rs_type_enabled(RS_EVENT_SIGNAL) || (cur->flags & (RS_PF_KTHREAD | RS_PF_IO_WORKER)))
		return 0;
	nr = rs_current_nr(cur, &regs);
	if (!(rs_syscall_types(nr, &path_arg) & (1ULL << RS_EVENT_SIGNAL)))
		return 0;
	idx = rs_syscall_arg_sig(nr);
	if (idx < 0 || idx > 5)
		return 0;
	rs_syscall_args_of(regs, &args);
	if ((int)args.a[idx] != sig || rs_is_self())
		return 0;
	cap = rs_activity_capture_begin(cur, nr, regs);
	if (!cap || (cap->flags & RS_ACT_TARGET))
		return 0; /* a process group: the first target */
	rs_fill_target(&cap->target, t);
	cap->flags |= RS_ACT_TARGET | (precise ? RS_ACT_TARGET_PRECISE : 0);
	return 0;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(rs_signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
	     int result)
{
	return rs_capture_signal_target(sig, task, false);
}

SEC("tracepoint/syscalls/sys_enter_ptrace")
int rs_enter_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_activity_capture *cap;
	struct task_struct *child;
	long request = ctx->args[0];

	/* an attach links its tracee during the call: the exit finds it */
	if (request == RS_PTRACE_TRACEME || request == RS_PTRACE_ATTACH || request == RS_PTRACE_SEIZE ||
	    rs_is_self())
		return 0;
	child = rs_tracee_of(task, (int)ctx->args[1]);
	if (!child)
		return 0;
	cap = rs_activity_capture_begin(task, RS_NR_ptrace, (struct pt_regs *)bpf_task_pt_regs(task));
	if (!cap)
		return 0;
	rs_fill_target(&cap->target, child);
	cap->flags |= RS_ACT_TARGET;
	return 0;
}

/* Precise sets: the task ptrace looked up, whatever the call's fate. */
static __always_inline int rs_precise_tracee(struct task_struct *t)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct rs_activity_capture *cap;
	struct pt_regs *regs;

	if (!t || (cur->flags & (RS_PF_KTHREAD | RS_PF_IO_WORKER)))
		return 0;
	if (rs_current_nr(cur, &regs) != RS_NR_ptrace || !rs_type_enabled(RS_EVENT_PTRACE) || rs_is_self())
		return 0;
	cap = rs_activity_capture_begin(cur, RS_NR_ptrace, regs);
	if (!cap)
		return 0;
	rs_fill_target(&cap->target, t);
	cap->flags |= RS_ACT_TARGET | RS_ACT_TARGET_PRECISE;
	return 0;
}

SEC("fexit/find_get_task_by_vpid")
int BPF_PROG(rs_fentry_find_get_task_by_vpid, pid_t nr, struct task_struct *ret)
{
	return rs_precise_tracee(ret);
}

SEC("kretprobe/find_get_task_by_vpid")
int BPF_KRETPROBE(rs_kprobe_find_get_task_by_vpid, struct task_struct *ret)
{
	return rs_precise_tracee(ret);
}

SEC("fentry/check_kill_permission")
int BPF_PROG(rs_fentry_check_kill_permission, int sig, struct kernel_siginfo *info, struct task_struct *t)
{
	return rs_capture_signal_target(sig, t, true);
}

SEC("kprobe/check_kill_permission")
int BPF_KPROBE(rs_kprobe_check_kill_permission, int sig, struct kernel_siginfo *info, struct task_struct *t)
{
	return rs_capture_signal_target(sig, t, true);
}

/* -- pipes -------------------------------------------------------------------- */

/* The pipe behind a file, or NULL (pipes and FIFOs: i_pipe of an S_IFIFO inode). */
static __always_inline struct pipe_inode_info *rs_file_pipe(struct file *f)
{
	struct inode *inode = BPF_CORE_READ(f, f_inode);

	if (!inode || (BPF_CORE_READ(inode, i_mode) & RS_S_IFMT) != RS_S_IFIFO)
		return NULL;
	return BPF_CORE_READ(inode, i_pipe);
}

/* The flags of a pipe's last buffer (the slot before its head: the one a
 * write merges into). */
static __always_inline __u32 rs_pipe_last_flags(struct pipe_inode_info *pipe)
{
	unsigned int head = BPF_CORE_READ(pipe, head);
	unsigned int ring = BPF_CORE_READ(pipe, ring_size);
	struct pipe_buffer *bufs = BPF_CORE_READ(pipe, bufs);
	struct pipe_buffer *last;

	if (!bufs || !ring)
		return 0;
	last = (void *)bufs + ((head - 1) & (ring - 1)) * bpf_core_type_size(struct pipe_buffer);
	return BPF_CORE_READ(last, flags);
}

SEC("tracepoint/syscalls/sys_enter_splice")
int rs_enter_splice(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_activity_capture *cap;
	struct pipe_inode_info *pipe;
	struct file *out;

	if (rs_is_self())
		return 0;
	out = rs_fd_file(task, (int)ctx->args[2]);
	pipe = out ? rs_file_pipe(out) : NULL;
	if (!pipe)
		return 0;
	cap = rs_activity_capture_begin(task, RS_NR_splice, (struct pt_regs *)bpf_task_pt_regs(task));
	if (!cap)
		return 0;
	cap->pipe_entry_flags = rs_pipe_last_flags(pipe);
	cap->flags |= RS_ACT_PIPE_ENTRY;
	return 0;
}

/* -- the exit --------------------------------------------------------------------- */

/* A bounded user string (a name argument) at *off. */
static __always_inline void rs_append_user_name(void *rec, __u32 *off, struct rs_str *s, const char *src)
{
	__u32 o = *off;
	long n;

	s->off = 0;
	s->len = 0;
	if (!src || o > RS_RECORD_MAX - RS_NAME_ARG_MAX)
		return;
	n = bpf_probe_read_user_str(rec + RS_REC_OFF(o), RS_NAME_ARG_MAX, src);
	if (n <= 0)
		return;
	s->off = o;
	s->len = n - 1;
	*off = o + n;
}

static __always_inline void rs_fill_file_of(void *rec, __u32 *off, struct rs_file *f, struct file *file)
{
	struct path p = {};

	if (!file)
		return;
	bpf_core_read(&p, sizeof(p), &file->f_path);
	rs_fill_file(rec, off, f, p.dentry, p.mnt);
}

/* proc_ns_operations.type: the kind of a namespace before 6.18 moved it to
 * ns_common.ns_type. */
struct proc_ns_operations___old {
	int type;
} __attribute__((preserve_access_index));

/* setns: the namespace a namespace file names. */
static __always_inline bool rs_nsfs_file(void *rec, __u32 *off, struct rs_activity_event *e, struct file *f)
{
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	struct ns_common *ns;
	const struct proc_ns_operations *ops;

	if (BPF_CORE_READ(inode, i_sb, s_magic) != RS_NSFS_MAGIC)
		return false;
	ns = BPF_CORE_READ(inode, i_private);
	ops = BPF_CORE_READ(ns, ops);
	if (bpf_core_field_exists(ns->ns_type))
		e->ns_type = BPF_CORE_READ(ns, ns_type);
	else
		e->ns_type = BPF_CORE_READ((struct proc_ns_operations___old *)ops, type);
	e->ns_inum = BPF_CORE_READ(ns, inum);
	rs_append_str(rec, off, &e->ns_name, BPF_CORE_READ(ops, name), false);
	e->flags |= RS_ACT_NS_FILE;
	return true;
}

/* The call a record is about: its number, its six argument registers, the
 * caller's pid namespace depth. */
static __always_inline void rs_activity_call_of(struct rs_activity_event *e, struct task_struct *task,
						struct pt_regs *regs, __u32 nr)
{
	e->syscall_nr = nr;
	e->args[0] = RS_SYSCALL_ARG0(regs);
	e->args[1] = RS_SYSCALL_ARG1(regs);
	e->args[2] = RS_SYSCALL_ARG2(regs);
	e->args[3] = RS_SYSCALL_ARG3(regs);
	e->args[4] = RS_SYSCALL_ARG4(regs);
	e->args[5] = RS_SYSCALL_ARG5(regs);
	e->pidns_level = task->thread_pid->level;
}

/* clone3: the flags of its struct clone_args (user memory; the first member). */
static __always_inline __u64 rs_clone3_flags(const struct clone_args *uargs)
{
	__u64 flags = 0;

	bpf_probe_read_user(&flags, sizeof(flags), &uargs->flags);
	return flags;
}

static __always_inline int rs_activity_exit(struct trace_event_raw_sys_exit *ctx, struct rs_activity_call *c)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct rs_activity_event *e;
	struct dentry *dentry = NULL;
	struct vfsmount *mnt = NULL;
	__u32 type = c->type, off = sizeof(*e);
	__u32 nr = (__u32)ctx->id;
	long ret = ctx->ret;
	bool send = true;
	void *rec;

	if (rs_is_self())
		return 0;
	/* clone, clone3 (unshare type): only a child made in new namespaces, reported once, by the
	 * parent (the child returns 0 from the same call) */
	if (type == RS_EVENT_UNSHARE && nr != RS_NR_unshare && (ret == 0 || !(c->flags & RS_CLONE_NEW_MASK)))
		return 0;
	RS_STAT_INC(type, seen);
	rec = rs_record();
	if (!rec)
		return 0;
	e = rec;
	__builtin_memset(e, 0, sizeof(*e));
	if (nr == RS_NR_clone3)
		e->clone_flags = c->flags;
	if (type == RS_EVENT_PTRACE || type == RS_EVENT_SIGNAL || type == RS_EVENT_SPLICE)
		rs_activity_capture_take(task, nr, regs, e);

	/* What each type names, and its in-kernel filter (before the record is built). */
	if (type == RS_EVENT_PTRACE) {
		struct task_struct *t = NULL;

		if (c->request == RS_PTRACE_TRACEME)
			t = task;
		else if (!(e->flags & RS_ACT_TARGET))
			t = rs_tracee_of(task, c->pid);
		if (t) {
			rs_fill_target(&e->target, t);
			e->flags |= RS_ACT_TARGET;
		}
		send = rs_filter_scalar(type, c->request, 0);
	} else if (type == RS_EVENT_SIGNAL) {
		if (c->fd >= 0 && !(e->flags & RS_ACT_TARGET)) {
			struct file *f = rs_fd_file(task, c->fd);
			struct task_struct *t = f ? rs_pidfd_task(f) : NULL;

			if (t) {
				rs_fill_target(&e->target, t);
				e->flags |= RS_ACT_TARGET | RS_ACT_PIDFD;
			}
		}
		send = rs_filter_scalar(type, (__u32)c->sig, 0);
	} else if (type == RS_EVENT_MEMFD_CREATE) {
		send = rs_filter_scalar(type, 0, c->flags);
	} else if (type == RS_EVENT_PRCTL) {
		/* a rename updates the process cache's name: never dropped */
		send = (c->option == RS_PR_SET_NAME && ret == 0) || rs_filter_scalar(type, (__u32)c->option, 0);
	} else if (type == RS_EVENT_UNSHARE) {
		send = rs_filter_scalar(type, 0, c->flags);
	} else if (type == RS_EVENT_SETNS) {
		struct file *f = rs_fd_file(task, c->fd);

		if (f && !rs_nsfs_file(rec, &off, e, f)) {
			struct task_struct *t = rs_pidfd_task(f);

			if (t) {
				rs_fill_target(&e->target, t);
				e->flags |= RS_ACT_TARGET | RS_ACT_PIDFD;
				e->ns_type = c->flags;
			}
		}
		send = rs_filter_scalar(type, 0, e->ns_type);
	} else if (type == RS_EVENT_SPLICE) {
		struct file *in = rs_fd_file(task, c->fd), *out = rs_fd_file(task, c->fd_out);
		struct pipe_inode_info *opipe = out ? rs_file_pipe(out) : NULL;
		struct file *f = in;

		if (opipe) {
			e->flags |= RS_ACT_PIPE_OUT;
			e->pipe_exit_flags = rs_pipe_last_flags(opipe);
		}
		if (out && !opipe && in && rs_file_pipe(in)) {
			f = out; /* pipe -> file: the file written */
			e->flags |= RS_ACT_FILE_IS_OUT;
		}
		if (f) {
			struct path p = {};

			bpf_core_read(&p, sizeof(p), &f->f_path);
			dentry = p.dentry;
			mnt = p.mnt;
		}
		send = rs_filter(type, dentry, mnt, e->pipe_exit_flags, NULL);
	} else if (type == RS_EVENT_CHDIR) {
		if (ret == 0) {
			dentry = BPF_CORE_READ(task, fs, pwd.dentry);
			mnt = BPF_CORE_READ(task, fs, pwd.mnt);
		} else if (c->fd >= 0) {
			struct file *f = rs_fd_file(task, c->fd);
			struct path p = {};

			if (f) {
				bpf_core_read(&p, sizeof(p), &f->f_path);
				dentry = p.dentry;
				mnt = p.mnt;
				e->flags |= RS_ACT_FILE_FD;
			}
		}
		send = rs_filter(type, dentry, mnt, 0, c->str);
	}
	if (!send)
		return 0;

	rs_fill_header(&e->hdr, type);
	rs_fill_proc(&e->proc, task);
	e->retval = ret;
	rs_activity_call_of(e, task, regs, nr);

	if (type == RS_EVENT_MEMFD_CREATE) {
		rs_append_user_name(rec, &off, &e->str, c->str);
		if (ret >= 0)
			rs_fill_file_of(rec, &off, &e->file, rs_fd_file(task, ret));
	} else if (type == RS_EVENT_PRCTL) {
		if (c->option == RS_PR_SET_NAME)
			rs_append_user_name(rec, &off, &e->str, (const char *)c->arg2);
	} else if (type == RS_EVENT_SPLICE || type == RS_EVENT_CHDIR) {
		if (dentry)
			rs_fill_file(rec, &off, &e->file, dentry, mnt);
		if (type == RS_EVENT_CHDIR && dentry && c->str) {
			/* the caller's string as given (chdir.syscall.path) */
			rs_append_str(rec, &off, &e->str, c->str, true);
		} else if (type == RS_EVENT_CHDIR && c->str) {
			/* a chdir that failed: the caller's string and where its lookup starts */
			rs_fim_base(rec, &off, task, &e->base, &e->str, RS_AT_FDCWD, c->str);
			if (rs_task_chrooted(task)) {
				struct rs_file root = {};

				if (rs_resolve_path(rec, &off, &root, BPF_CORE_READ(task, fs, root.dentry),
						    BPF_CORE_READ(task, fs, root.mnt)))
					e->root = root.path;
			}
		}
	}
	rs_submit(rec, off);
	return 0;
}

#endif /* RS_HOOK_ACTIVITY_H */
