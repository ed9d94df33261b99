/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/dirent.h - directory entry changes: mkdir, rmdir, unlink, rename,
 * link, every syscall variant, at sys_exit. Objects come from the ctime
 * capture (fim.h): the changed inodes and their parents; rename's destination
 * is the moved dentry walked again after d_move, link's the inode's new alias.
 */
#ifndef RS_HOOK_DIRENT_H
#define RS_HOOK_DIRENT_H

#include "fim_exit.h"

/* -- mkdir ---------------------------------------------------------------- */

static __always_inline int rs_mkdir_exit(struct trace_event_raw_sys_exit *ctx, long dirfd, const char *path,
					 __u32 mode)
{
	struct rs_fim_call c;

	rs_fim_call_init(&c, RS_EVENT_MKDIR);
	c.dirfd = dirfd;
	c.path = path;
	c.mode = mode;
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_mkdir")
int rs_exit_mkdir(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_mkdir_exit(ctx, RS_AT_FDCWD, (const char *)r.a[0], r.a[1]);
}

SEC("tracepoint/syscalls/sys_exit_mkdirat")
int rs_exit_mkdirat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_mkdir_exit(ctx, (int)r.a[0], (const char *)r.a[1], r.a[2]);
}

/* -- rmdir, unlink ---------------------------------------------------------- */

static __always_inline int rs_remove_exit(struct trace_event_raw_sys_exit *ctx, __u32 type, long dirfd,
					  const char *path, __u32 flags)
{
	struct rs_fim_call c;

	rs_fim_call_init(&c, type);
	c.dirfd = dirfd;
	c.path = path;
	c.flags = flags;
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_rmdir")
int rs_exit_rmdir(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_remove_exit(ctx, RS_EVENT_RMDIR, RS_AT_FDCWD, (const char *)r.a[0], 0);
}

SEC("tracepoint/syscalls/sys_exit_unlink")
int rs_exit_unlink(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_remove_exit(ctx, RS_EVENT_UNLINK, RS_AT_FDCWD, (const char *)r.a[0], 0);
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int rs_exit_unlinkat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	__u32 flags;

	rs_syscall_args(&r);
	flags = r.a[2];
	/* unlinkat(AT_REMOVEDIR) is rmdir. */
	return rs_remove_exit(ctx, (flags & RS_AT_REMOVEDIR) ? RS_EVENT_RMDIR : RS_EVENT_UNLINK,
			      (int)r.a[0], (const char *)r.a[1], flags);
}

/* -- rename --------------------------------------------------------------- */

static __always_inline int rs_rename_exit(struct trace_event_raw_sys_exit *ctx, long olddirfd, const char *oldpath,
					  long newdirfd, const char *newpath, __u32 flags)
{
	struct rs_fim_call c;

	rs_fim_call_init(&c, RS_EVENT_RENAME);
	c.dirfd = olddirfd;
	c.path = oldpath;
	c.dirfd2 = newdirfd;
	c.path2 = newpath;
	c.flags = flags;
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_rename")
int rs_exit_rename(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_rename_exit(ctx, RS_AT_FDCWD, (const char *)r.a[0], RS_AT_FDCWD, (const char *)r.a[1], 0);
}

SEC("tracepoint/syscalls/sys_exit_renameat")
int rs_exit_renameat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_rename_exit(ctx, (int)r.a[0], (const char *)r.a[1], (int)r.a[2], (const char *)r.a[3], 0);
}

SEC("tracepoint/syscalls/sys_exit_renameat2")
int rs_exit_renameat2(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_rename_exit(ctx, (int)r.a[0], (const char *)r.a[1], (int)r.a[2], (const char *)r.a[3], r.a[4]);
}

/* -- link ----------------------------------------------------------------- */

SEC("tracepoint/syscalls/sys_exit_link")
int rs_exit_link(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	rs_fim_call_init(&c, RS_EVENT_LINK);
	c.path = (const char *)r.a[0];
	c.path2 = (const char *)r.a[1];
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_linkat")
int rs_exit_linkat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;
	__u32 flags;

	rs_syscall_args(&r);
	flags = r.a[4];
	rs_fim_call_init(&c, RS_EVENT_LINK);
	c.dirfd = (int)r.a[0];
	c.path = (const char *)r.a[1];
	c.dirfd2 = (int)r.a[2];
	c.path2 = (const char *)r.a[3];
	c.flags = flags;
	if (flags & RS_AT_SYMLINK_FOLLOW)
		c.fim_flags |= RS_FIM_FOLLOW;
	if (rs_empty_path(c.path, flags)) {
		/* linkat(fd, "", ..., AT_EMPTY_PATH): link the descriptor's file. */
		c.use_fd = true;
		c.fd = c.dirfd;
	}
	return rs_fim_exit(ctx, &c);
}

#endif /* RS_HOOK_DIRENT_H */
