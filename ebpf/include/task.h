/* SPDX-License-Identifier: GPL-2.0-only */
/* task.h - reading the calling task: its syscall arguments, fds, cwd, root. */
#ifndef RS_TASK_H
#define RS_TASK_H

#include "common.h"

/*
 * Syscall arguments at sys_exit, from the task's saved user registers
 * (the ABI's registers: syscall_table.h). The kernel never writes them back
 * during a syscall (only the return value), so at exit they are the
 * arguments the syscall ran with - no sys_enter program, no map.
 */
static __always_inline void rs_syscall_args(struct rs_syscall_args *args)
{
	struct task_struct *task = bpf_get_current_task_btf();

	/* bpf_task_pt_regs() returns a BTF pointer: direct (inline) loads. */
	rs_syscall_args_of((struct pt_regs *)bpf_task_pt_regs(task), args);
}

/* The struct file behind a descriptor of `task`, or NULL. */
static __always_inline struct file *rs_fd_file(struct task_struct *task, long fd)
{
	/* task is a BTF pointer: direct loads down to the fd array; the array
	 * slot itself needs a probe read (a variable index into BTF memory). */
	struct fdtable *fdt = task->files->fdt;
	struct file **fds;
	struct file *file = NULL;

	if (fd < 0 || fd >= fdt->max_fds)
		return NULL;
	fds = fdt->fd;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd & 0xffffff]);
	return file;
}

/*
 * The directory a path lookup starts from: the task's root for an absolute
 * path, its cwd for AT_FDCWD, otherwise the directory fd. `first` is the
 * first byte of the user's path string.
 */
static __always_inline bool rs_lookup_base(struct task_struct *task, long dirfd, char first,
					   struct dentry **dentry, struct vfsmount **mnt)
{
	struct file *file;

	if (first == '/') {
		*dentry = BPF_CORE_READ(task, fs, root.dentry);
		*mnt = BPF_CORE_READ(task, fs, root.mnt);
		return true;
	}
	if ((int)dirfd == RS_AT_FDCWD) {
		*dentry = BPF_CORE_READ(task, fs, pwd.dentry);
		*mnt = BPF_CORE_READ(task, fs, pwd.mnt);
		return true;
	}
	file = rs_fd_file(task, (int)dirfd);
	if (!file)
		return false;
	*dentry = BPF_CORE_READ(file, f_path.dentry);
	*mnt = BPF_CORE_READ(file, f_path.mnt);
	return true;
}

#endif /* RS_TASK_H */
