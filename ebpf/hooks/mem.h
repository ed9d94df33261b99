/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/mem.h - mmap, mprotect and pkey_mprotect.
 *
 * mmap, at sys_exit: the protection and flags asked for, the file of a
 * file-backed mapping (the descriptor's struct file), the address (retval).
 *
 * mprotect needs what the mapping was *before* the call (vm_protection: a
 * transition to executable memory is PROT_EXEC on memory that was
 * writable, or anonymous). Captured inside the call, kept in the task's
 * storage (stamped with the syscall and its first two arguments) until the
 * sys_exit program emits the record:
 *  - tracepoint set: at sys_enter, bpf_find_vma() looks the mapping holding
 *    the start address up (under the mmap lock, taken with a trylock: when
 *    another thread holds it, the lookup fails and vm_protection is absent);
 *  - fentry/kprobe sets: security_file_mprotect(vma, reqprot, prot), which
 *    the kernel calls for each mapping of the range with the lock held; the
 *    first one (the start address's) is kept.
 * The capture also decides the approvers (req_protection in the low half,
 * vm_protection in the high half of the flags value), so a dropped call
 * costs no record. A call that fails before any mapping is found
 * (unaligned, unmapped) is decided at exit on req_protection alone.
 */
#ifndef RS_HOOK_MEM_H
#define RS_HOOK_MEM_H

#include "common.h"
#include "filters.h"
#include "path.h"
#include "task.h"
#include "call_ctx.h"

#define RS_MEM_UNKNOWN_VM (0xffffffffULL << 32)  /* vm_protection unknown: any vm mask approves */

/* A memory call's arguments, filled by its sys_exit wrapper (exits.h). */
struct rs_mem_call {
	__u32 type;
	__u32 prot;
	__u32 flags;
	__s32 fd;
	__s32 pkey;
	__u32 _pad;
	__u64 addr;
	__u64 len;
};

static __always_inline void rs_mem_call_init(struct rs_mem_call *c, __u32 type)
{
	__builtin_memset(c, 0, sizeof(*c));
	c->type = type;
	c->fd = -1;
	c->pkey = -1;
}

/* What the mprotect capture found, per task. */
struct rs_mem_capture {
	__u64 arg0;
	__u64 arg1;
	__u32 nr;
	__u32 mem_flags;              /* RS_MEM_VMA, RS_MEM_VMA_PRECISE */
	__u32 decided;                /* the approvers ran */
	__u32 send;                   /* ... and let it through */
	__u64 vm_flags;
	struct file *file;            /* the mapping's file (NULL: anonymous) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rs_mem_capture);
} mem_capture SEC(".maps");

static __always_inline __u64 rs_mprotect_value(__u32 prot, __u64 vm_flags, bool known)
{
	return (known ? (vm_flags & 0xffffffffULL) << 32 : RS_MEM_UNKNOWN_VM) | prot;
}

/* The capture of the current mprotect: the mapping's flags and file, and
 * the approvers' verdict. Only the first mapping of a call counts. */
static __always_inline void rs_mem_capture_vma(struct task_struct *task, __u64 vm_flags, struct file *file,
					       __u32 prot, __u32 how)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct rs_mem_capture *cap;
	__u32 nr = RS_SYSCALL_NR(regs);
	__u64 a0 = RS_SYSCALL_ARG0(regs), a1 = RS_SYSCALL_ARG1(regs);

	cap = bpf_task_storage_get(&mem_capture, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!cap)
		return;
	if (cap->nr == nr && cap->arg0 == a0 && cap->arg1 == a1 && cap->decided)
		return;   /* a later mapping of the same call */
	cap->nr = nr;
	cap->arg0 = a0;
	cap->arg1 = a1;
	cap->mem_flags = how;
	cap->vm_flags = vm_flags;
	cap->file = file;
	cap->decided = 1;
	cap->send = rs_filter_scalar(RS_EVENT_MPROTECT, 0, rs_mprotect_value(prot, vm_flags, how & RS_MEM_VMA));
}

/* -- tracepoint set: sys_enter + bpf_find_vma ----------------------------- */

struct rs_vma_found {
	__u64 vm_flags;
	struct file *file;
	__u32 found;
	__u32 _pad;
};

static long rs_vma_found_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct rs_vma_found *v = data;

	v->vm_flags = vma->vm_flags;
	v->file = vma->vm_file;
	v->found = 1;
	return 0;
}

static __always_inline int rs_mprotect_enter(__u64 start, __u32 prot)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_vma_found v = {};
	__u64 mask = 0;
	__u32 zero_type = RS_EVENT_MPROTECT;
	__u64 *m;

	if (!rs_type_enabled(RS_EVENT_MPROTECT) || rs_is_self())
		return 0;
	/* Approvers on req_protection alone decide before the lookup. */
	if (rs_policy_approve(RS_EVENT_MPROTECT) == RS_APPROVE_FLAGS) {
		m = bpf_map_lookup_elem(&flags_approvers, &zero_type);
		mask = m ? *m : 0;
		if (!(mask >> 32) && !(mask & prot)) {
			rs_mem_capture_vma(task, 0, NULL, prot, 0);
			return 0;
		}
	}
	bpf_find_vma(task, start, rs_vma_found_cb, &v, 0);
	rs_mem_capture_vma(task, v.vm_flags, v.file, prot, v.found ? RS_MEM_VMA : 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mprotect")
int rs_enter_mprotect(struct trace_event_raw_sys_enter *ctx)
{
	return rs_mprotect_enter(ctx->args[0], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_pkey_mprotect")
int rs_enter_pkey_mprotect(struct trace_event_raw_sys_enter *ctx)
{
	return rs_mprotect_enter(ctx->args[0], ctx->args[2]);
}

/* -- fentry/kprobe sets: security_file_mprotect ---------------------------- */

static __always_inline int rs_precise_file_mprotect(struct vm_area_struct *vma, unsigned long reqprot)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs;
	long nr;

	if (task->flags & (RS_PF_KTHREAD | RS_PF_IO_WORKER))
		return 0;
	nr = rs_current_nr(task, &regs);
	if ((nr != RS_NR_mprotect && nr != RS_NR_pkey_mprotect) || !rs_type_enabled(RS_EVENT_MPROTECT) ||
	    rs_is_self())
		return 0;
	rs_mem_capture_vma(task, BPF_CORE_READ(vma, vm_flags), BPF_CORE_READ(vma, vm_file), reqprot,
			   RS_MEM_VMA | RS_MEM_VMA_PRECISE);
	return 0;
}

SEC("fentry/security_file_mprotect")
int BPF_PROG(rs_fentry_file_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot)
{
	return rs_precise_file_mprotect(vma, reqprot);
}

SEC("kprobe/security_file_mprotect")
int BPF_KPROBE(rs_kprobe_file_mprotect, struct vm_area_struct *vma, unsigned long reqprot)
{
	return rs_precise_file_mprotect(vma, reqprot);
}

/* -- sys_exit ------------------------------------------------------------- */

/* mmap's approvers: its flags (protection in the high half) and the basename
 * of its file; an anonymous mapping has no name, a basename rule cannot
 * match it. Counts drops. */
static __always_inline bool rs_filter_mmap(__u64 flags, struct dentry *dentry)
{
	__u32 kinds = rs_policy_approve(RS_EVENT_MMAP);
	bool ok = false;

	if (!kinds)
		return true;
	if (kinds & RS_APPROVE_FLAGS)
		ok = rs_approve_flags(RS_EVENT_MMAP, flags);
	if (!ok && (kinds & RS_APPROVE_BASENAME) && dentry)
		ok = rs_approve_basename(RS_EVENT_MMAP, dentry);
	if (!ok)
		RS_STAT_INC(RS_EVENT_MMAP, dropped_approver);
	return ok;
}

static __always_inline int rs_mem_exit(struct trace_event_raw_sys_exit *ctx, struct rs_mem_call *c)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_mem_capture *cap = NULL;
	struct rs_mem_event *e;
	struct file *file = NULL;
	struct dentry *dentry = NULL;
	__u32 nr = (__u32)ctx->id, off = sizeof(*e), mem_flags = 0;
	__u64 vm_flags = 0;
	long ret = ctx->ret;
	bool send;
	void *rec;

	if (c->type == RS_EVENT_MPROTECT) {
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

		cap = bpf_task_storage_get(&mem_capture, task, 0, 0);
		if (cap && !(cap->decided && cap->nr == nr && cap->arg0 == RS_SYSCALL_ARG0(regs) &&
			     cap->arg1 == RS_SYSCALL_ARG1(regs))) {
			cap->decided = 0;   /* another call's (its exit was missed) */
			cap = NULL;
		}
	}
	if (!rs_type_sends(c->type) || rs_is_self())
		goto out;
	RS_STAT_INC(c->type, seen);
	if (c->type == RS_EVENT_MMAP) {
		if (c->fd >= 0 && !(c->flags & RS_MAP_ANONYMOUS))
			file = rs_fd_file(task, c->fd);
		if (file)
			dentry = BPF_CORE_READ(file, f_path.dentry);
		send = rs_filter_mmap(((__u64)c->prot << 32) | c->flags, dentry);
	} else if (cap) {
		send = cap->send;   /* (a drop was counted by the capture) */
		file = cap->file;
		vm_flags = cap->vm_flags;
		mem_flags = cap->mem_flags;
	} else {
		/* nothing captured: the call failed before any mapping was found */
		send = rs_filter_scalar(c->type, 0, rs_mprotect_value(c->prot, 0, false));
	}
	if (!send)
		goto out;
	e = rec = rs_record_begin(struct rs_mem_event, c->type, task);
	if (!rec)
		goto out;
	e->retval = ret;
	e->syscall_nr = nr;
	e->addr = c->addr;
	e->len = c->len;
	e->prot = c->prot;
	e->flags = c->flags;
	e->fd = c->fd;
	e->pkey = c->pkey;
	e->vm_flags = vm_flags;
	e->mem_flags = mem_flags;
	if (file)
		rs_fill_file(rec, &off, &e->file, BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt));
	rs_submit(rec, off);
out:
	if (cap)
		cap->decided = 0;
	return 0;
}

#endif /* RS_HOOK_MEM_H */
