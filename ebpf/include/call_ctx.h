/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * call_ctx.h - objects the precise hooks (hook sets `fentry`, `kprobe`) find
 * inside a syscall, kept in the calling task's local storage until the
 * syscall's exit program (the same one the `tracepoint` set uses) emits the
 * record. Per task, not a shared hash: no contention, freed with the task.
 *
 * A capture is stamped with the syscall number and its first two
 * arguments; the exit program uses it only when they match its own call, so
 * leftovers of a call whose exit was missed (programs attached mid-call)
 * are never taken for another call's objects.
 *
 * Opens have their own small context (72 bytes per task) rather than the
 * file-integrity capture (fim.h, ~3 KB with its slots): nearly every task
 * opens files, few change them.
 *
 * The loader sets rs_precise_hooks when it loads a precise set; with the
 * `tracepoint` set the verifier prunes every use (a const volatile), so the
 * exit programs cost nothing more there.
 */
#ifndef RS_CALL_CTX_H
#define RS_CALL_CTX_H

#include "common.h"

const volatile __u32 rs_precise_hooks = 0;


/* One object of a call, as the kernel function had it. */
struct rs_call_obj {
	struct dentry *dentry;
	struct vfsmount *mnt;
	struct inode *inode;          /* dentry->d_inode then: proves the dentry still names it */
};

struct rs_call_ctx {
	__u64 arg0;
	__u64 arg1;
	__u32 nr;
	__u32 count;                  /* 0 or 1: obj holds the call's object */
	struct rs_call_obj obj;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rs_call_ctx);
} call_ctx SEC(".maps");

/* The current syscall's number; -1 for kernel threads. */
static __always_inline long rs_current_nr(struct task_struct *task, struct pt_regs **regs)
{
	*regs = (struct pt_regs *)bpf_task_pt_regs(task);
	return RS_SYSCALL_NR_CORE(*regs);
}

/* The task's context for the current call, created and stamped on first use. */
static __always_inline struct rs_call_ctx *rs_call_ctx_begin(struct task_struct *task, long nr,
							     struct pt_regs *regs)
{
	struct rs_call_ctx *c = bpf_task_storage_get(&call_ctx, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	__u64 a0, a1;

	if (!c)
		return NULL;
	a0 = RS_SYSCALL_ARG0_CORE(regs);
	a1 = RS_SYSCALL_ARG1_CORE(regs);
	if (c->nr != nr || c->arg0 != a0 || c->arg1 != a1) {
		c->nr = nr;
		c->arg0 = a0;
		c->arg1 = a1;
		c->count = 0;
	}
	return c;
}

/* Keep the object (struct path) of the current call; the last one wins. */
static __always_inline void rs_call_ctx_set(struct rs_call_ctx *c, struct dentry *dentry, struct vfsmount *mnt)
{
	c->obj.dentry = dentry;
	c->obj.mnt = mnt;
	c->obj.inode = BPF_CORE_READ(dentry, d_inode);
	c->count = 1;
}

/*
 * At sys_exit: the objects captured for this very call (number and first
 * two arguments match), or NULL. The context is reset either way, so it
 * never outlives its call.
 */
static __always_inline struct rs_call_ctx *rs_call_ctx_take(struct task_struct *task, __u32 nr)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct rs_call_ctx *c;
	bool mine;

	if (!rs_precise_hooks)
		return NULL;
	c = bpf_task_storage_get(&call_ctx, task, 0, 0);
	if (!c)
		return NULL;
	mine = c->count && c->nr == nr && c->arg0 == RS_SYSCALL_ARG0_CORE(regs) &&
	       c->arg1 == RS_SYSCALL_ARG1_CORE(regs);
	c->nr = 0;
	if (!mine) {
		c->count = 0;
		return NULL;
	}
	return c;
}

/* A captured object whose dentry still names the inode it named then. */
static __always_inline bool rs_call_obj_valid(struct rs_call_obj *o)
{
	struct dentry *d = o->dentry; /* a plain load: rs_call_obj is ours, not the kernel's */

	return d && o->mnt && o->inode && BPF_CORE_READ(d, d_inode) == o->inode;
}

#endif /* RS_CALL_CTX_H */
