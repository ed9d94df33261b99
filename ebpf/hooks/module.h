/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/module.h - load_module (init_module, finit_module) and unload_module
 * (delete_module).
 *
 * The module tracepoints fire inside the call, in the calling task, with the
 * kernel's struct module: module_load in load_module() once the image is
 * parsed and its name known, just before its init function runs; module_free
 * in free_module() when delete_module (or a failed load) frees it. They copy
 * the name into the task's storage, stamped with the syscall; the sys_exit
 * program adds the return value, the file of finit_module's descriptor, the
 * parameters (the caller's string: the kernel's copy, mod->args, has been
 * split in place by parse_args by then, "alpha=3" reads "alpha"), and emits
 * the record. A load that fails before the kernel parsed the image
 * (-ENOEXEC, -EPERM) has no name. The tracepoints
 * exist only with CONFIG_MODULES (the table's requires_tracepoints): without
 * them, the type is left out.
 */
#ifndef RS_HOOK_MODULE_H
#define RS_HOOK_MODULE_H

#include "common.h"
#include "path.h"
#include "task.h"

#define RS_MODULE_NAME_MAX 64

/* A module call's arguments, filled by its sys_exit wrapper (exits.h). */
struct rs_module_call {
	__u32 type;
	__u32 flags;
	const void *image;            /* init_module */
	unsigned long len;
	long fd;                      /* finit_module; -1 otherwise */
	const char *args;             /* the caller's parameter string */
	const char *name;             /* delete_module: the caller's name string */
};

static __always_inline void rs_module_call_init(struct rs_module_call *c, __u32 type)
{
	__builtin_memset(c, 0, sizeof(*c));
	c->type = type;
	c->fd = -1;
}

/* What the module tracepoints saw during the call. */
struct rs_module_capture {
	__u64 arg0;                   /* the call's first argument and number: */
	__u32 nr;                     /* a capture of another call is never taken */
	__u32 have_name;
	char name[RS_MODULE_NAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rs_module_capture);
} module_capture SEC(".maps");

/* Keep a struct module's name for the current call of `nr`. */
static __always_inline int rs_module_capture(struct module *mod, long want_nr, long want_nr2)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct rs_module_capture *cap;
	long nr = RS_SYSCALL_NR(regs);

	if (nr != want_nr && nr != want_nr2)
		return 0;
	if (rs_is_self())
		return 0;
	cap = bpf_task_storage_get(&module_capture, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!cap)
		return 0;
	cap->nr = nr;
	cap->arg0 = RS_SYSCALL_ARG0(regs);
	cap->have_name = bpf_probe_read_kernel_str(cap->name, sizeof(cap->name), mod->name) > 0;
	return 0;
}

SEC("tp_btf/module_load")
int BPF_PROG(rs_module_load, struct module *mod)
{
	return rs_module_capture(mod, RS_NR_init_module, RS_NR_finit_module);
}

SEC("tp_btf/module_free")
int BPF_PROG(rs_module_free, struct module *mod)
{
	return rs_module_capture(mod, RS_NR_delete_module, RS_NR_delete_module);
}

static __always_inline int rs_module_exit(struct trace_event_raw_sys_exit *ctx, struct rs_module_call *c)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct rs_module_capture *cap = bpf_task_storage_get(&module_capture, task, 0, 0);
	struct rs_module_event *e;
	__u32 nr = (__u32)ctx->id, off = sizeof(*e);
	long ret = ctx->ret;
	bool mine;
	void *rec;

	mine = cap && cap->nr == nr && cap->arg0 == RS_SYSCALL_ARG0(regs);
	if (!rs_type_sends(c->type) || rs_is_self())
		goto out;
	RS_STAT_INC(c->type, seen);
	/* no approvers: module loads are rare, every one is sent */
	e = rec = rs_record_begin(struct rs_module_event, c->type, task);
	if (!rec)
		goto out;
	e->retval = ret;
	e->syscall_nr = nr;
	e->flags = c->flags;
	if (c->image)
		e->mod_flags |= RS_MOD_FROM_MEMORY;
	if (c->fd >= 0) {
		struct file *file = rs_fd_file(task, c->fd);

		if (file)
			rs_fill_file(rec, &off, &e->file, BPF_CORE_READ(file, f_path.dentry),
				     BPF_CORE_READ(file, f_path.mnt));
	}
	if (mine && cap->have_name) {
		bpf_probe_read_kernel_str(e->name, sizeof(e->name), cap->name);
		e->mod_flags |= RS_MOD_NAME_KERNEL;
	} else if (c->name) {
		bpf_probe_read_user_str(e->name, sizeof(e->name), c->name);
	}
	if (c->args) {
		rs_append_str(rec, &off, &e->args, c->args, true);
		if (e->args.len >= RS_PATH_MAX - 1)
			e->mod_flags |= RS_MOD_ARGS_TRUNCATED;
	}
	rs_submit(rec, off);
out:
	if (cap)
		cap->nr = 0;
	return 0;
}

#endif /* RS_HOOK_MODULE_H */
