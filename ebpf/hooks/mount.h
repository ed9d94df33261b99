/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/mount.h - mount(2) and umount2(2) at sys_exit.
 *
 * No inode names a mount: the record carries the caller's target and source
 * strings with the kernel-walked directories they start from; user space
 * normalizes them and refreshes its mount table (agent/mounts.py), which
 * gives the new mount's id, mount point and filesystem type.
 */
#ifndef RS_HOOK_MOUNT_H
#define RS_HOOK_MOUNT_H

#include "fim_exit.h"

SEC("tracepoint/syscalls/sys_exit_mount")
int rs_exit_mount(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	/* mount(source, target, fstype, flags, data) */
	rs_fim_call_init(&c, RS_EVENT_MOUNT);
	c.path = (const char *)r.a[1];
	c.path2 = (const char *)r.a[0];
	c.fstype = (const char *)r.a[2];
	c.flags = r.a[3];
	c.need_base = true;
	return rs_fim_exit(ctx, &c);
}

/* The syscall is umount2; its tracepoint is named after the kernel function. */
SEC("tracepoint/syscalls/sys_exit_umount")
int rs_exit_umount(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	rs_fim_call_init(&c, RS_EVENT_UMOUNT);
	c.path = (const char *)r.a[0];
	c.flags = r.a[1];
	c.need_base = true;
	return rs_fim_exit(ctx, &c);
}

#endif /* RS_HOOK_MOUNT_H */
