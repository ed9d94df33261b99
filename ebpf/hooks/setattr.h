/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/setattr.h - chmod, chown, utimes, setxattr, removexattr: every
 * syscall variant, at sys_exit. Path-based variants get their object from the
 * ctime capture (fim.h); fd-based ones (and AT_EMPTY_PATH with "", and the
 * NULL path of utimensat/futimesat) from the descriptor's struct file.
 */
#ifndef RS_HOOK_SETATTR_H
#define RS_HOOK_SETATTR_H

#include "fim_exit.h"

#define RS_MODE_BITS 07777

/* A path-based call at (dirfd, path) with AT_* flags: fd-based when the
 * path is NULL or "" with AT_EMPTY_PATH; the last component is followed
 * unless AT_SYMLINK_NOFOLLOW. */
static __always_inline void rs_fim_at(struct rs_fim_call *c, long dirfd, const char *path, __u32 at_flags,
				      bool null_means_fd)
{
	c->dirfd = dirfd;
	c->path = path;
	if ((null_means_fd && !path) || rs_empty_path(path, at_flags)) {
		c->use_fd = true;
		c->fd = dirfd;
	}
	if (!(at_flags & RS_AT_SYMLINK_NOFOLLOW))
		c->fim_flags |= RS_FIM_FOLLOW;
}

/* -- chmod ---------------------------------------------------------------- */

SEC("tracepoint/syscalls/sys_exit_chmod")
int rs_exit_chmod(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	rs_fim_call_init(&c, RS_EVENT_CHMOD);
	rs_fim_at(&c, RS_AT_FDCWD, (const char *)r.a[0], 0, false);
	c.mode = r.a[1] & RS_MODE_BITS;
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_fchmod")
int rs_exit_fchmod(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	rs_fim_call_init(&c, RS_EVENT_CHMOD);
	c.use_fd = true;
	c.fd = (int)r.a[0];
	c.mode = r.a[1] & RS_MODE_BITS;
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_fchmodat")
int rs_exit_fchmodat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	rs_fim_call_init(&c, RS_EVENT_CHMOD);
	rs_fim_at(&c, (int)r.a[0], (const char *)r.a[1], 0, false);
	c.mode = r.a[2] & RS_MODE_BITS;
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_fchmodat2")
int rs_exit_fchmodat2(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	rs_fim_call_init(&c, RS_EVENT_CHMOD);
	rs_fim_at(&c, (int)r.a[0], (const char *)r.a[1], r.a[3], false);
	c.mode = r.a[2] & RS_MODE_BITS;
	c.flags = r.a[3];
	return rs_fim_exit(ctx, &c);
}

/* -- chown ---------------------------------------------------------------- */

static __always_inline int rs_chown_exit(struct trace_event_raw_sys_exit *ctx, long dirfd, const char *path,
					 __u32 uid, __u32 gid, __u32 at_flags)
{
	struct rs_fim_call c;

	rs_fim_call_init(&c, RS_EVENT_CHOWN);
	rs_fim_at(&c, dirfd, path, at_flags, false);
	c.uid = uid;
	c.gid = gid;
	c.flags = at_flags;
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_chown")
int rs_exit_chown(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_chown_exit(ctx, RS_AT_FDCWD, (const char *)r.a[0], r.a[1], r.a[2], 0);
}

SEC("tracepoint/syscalls/sys_exit_lchown")
int rs_exit_lchown(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_chown_exit(ctx, RS_AT_FDCWD, (const char *)r.a[0], r.a[1], r.a[2], RS_AT_SYMLINK_NOFOLLOW);
}

SEC("tracepoint/syscalls/sys_exit_fchownat")
int rs_exit_fchownat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_chown_exit(ctx, (int)r.a[0], (const char *)r.a[1], r.a[2], r.a[3], r.a[4]);
}

SEC("tracepoint/syscalls/sys_exit_fchown")
int rs_exit_fchown(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	rs_fim_call_init(&c, RS_EVENT_CHOWN);
	c.use_fd = true;
	c.fd = (int)r.a[0];
	c.uid = r.a[1];
	c.gid = r.a[2];
	return rs_fim_exit(ctx, &c);
}

/* -- utimes --------------------------------------------------------------- */

SEC("tracepoint/syscalls/sys_exit_utime")
int rs_exit_utime(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	rs_fim_call_init(&c, RS_EVENT_UTIMES);
	rs_fim_at(&c, RS_AT_FDCWD, (const char *)r.a[0], 0, false);
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_utimes")
int rs_exit_utimes(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	rs_fim_call_init(&c, RS_EVENT_UTIMES);
	rs_fim_at(&c, RS_AT_FDCWD, (const char *)r.a[0], 0, false);
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_utimensat")
int rs_exit_utimensat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	rs_fim_call_init(&c, RS_EVENT_UTIMES);
	/* utimensat(fd, NULL, times, 0) is futimens(fd, times). */
	rs_fim_at(&c, (int)r.a[0], (const char *)r.a[1], r.a[3], true);
	c.flags = r.a[3];
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_futimesat")
int rs_exit_futimesat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct rs_fim_call c;

	rs_syscall_args(&r);
	rs_fim_call_init(&c, RS_EVENT_UTIMES);
	rs_fim_at(&c, (int)r.a[0], (const char *)r.a[1], 0, true);
	return rs_fim_exit(ctx, &c);
}

/* -- setxattr / removexattr ------------------------------------------------- */

static __always_inline int rs_xattr_exit(struct trace_event_raw_sys_exit *ctx, __u32 type, long dirfd,
					 const char *path, __u32 at_flags, const char *name, __u32 flags)
{
	struct rs_fim_call c;

	rs_fim_call_init(&c, type);
	rs_fim_at(&c, dirfd, path, at_flags, false);
	c.xattr = name;
	c.flags = flags;
	return rs_fim_exit(ctx, &c);
}

static __always_inline int rs_fxattr_exit(struct trace_event_raw_sys_exit *ctx, __u32 type, long fd,
					  const char *name, __u32 flags)
{
	struct rs_fim_call c;

	rs_fim_call_init(&c, type);
	c.use_fd = true;
	c.fd = fd;
	c.xattr = name;
	c.flags = flags;
	return rs_fim_exit(ctx, &c);
}

SEC("tracepoint/syscalls/sys_exit_setxattr")
int rs_exit_setxattr(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_xattr_exit(ctx, RS_EVENT_SETXATTR, RS_AT_FDCWD, (const char *)r.a[0], 0,
			     (const char *)r.a[1], r.a[4]);
}

SEC("tracepoint/syscalls/sys_exit_lsetxattr")
int rs_exit_lsetxattr(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_xattr_exit(ctx, RS_EVENT_SETXATTR, RS_AT_FDCWD, (const char *)r.a[0], RS_AT_SYMLINK_NOFOLLOW,
			     (const char *)r.a[1], r.a[4]);
}

SEC("tracepoint/syscalls/sys_exit_fsetxattr")
int rs_exit_fsetxattr(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_fxattr_exit(ctx, RS_EVENT_SETXATTR, (int)r.a[0], (const char *)r.a[1], r.a[4]);
}

SEC("tracepoint/syscalls/sys_exit_setxattrat")
int rs_exit_setxattrat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;
	struct xattr_args xa = {};

	rs_syscall_args(&r);
	/* setxattrat(dfd, path, at_flags, name, struct xattr_args *, size) */
	bpf_probe_read_user(&xa, sizeof(xa), (void *)r.a[4]);
	return rs_xattr_exit(ctx, RS_EVENT_SETXATTR, (int)r.a[0], (const char *)r.a[1], r.a[2],
			     (const char *)r.a[3], xa.flags);
}

SEC("tracepoint/syscalls/sys_exit_removexattr")
int rs_exit_removexattr(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_xattr_exit(ctx, RS_EVENT_REMOVEXATTR, RS_AT_FDCWD, (const char *)r.a[0], 0,
			     (const char *)r.a[1], 0);
}

SEC("tracepoint/syscalls/sys_exit_lremovexattr")
int rs_exit_lremovexattr(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_xattr_exit(ctx, RS_EVENT_REMOVEXATTR, RS_AT_FDCWD, (const char *)r.a[0], RS_AT_SYMLINK_NOFOLLOW,
			     (const char *)r.a[1], 0);
}

SEC("tracepoint/syscalls/sys_exit_fremovexattr")
int rs_exit_fremovexattr(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	return rs_fxattr_exit(ctx, RS_EVENT_REMOVEXATTR, (int)r.a[0], (const char *)r.a[1], 0);
}

SEC("tracepoint/syscalls/sys_exit_removexattrat")
int rs_exit_removexattrat(struct trace_event_raw_sys_exit *ctx)
{
	struct rs_syscall_args r;

	rs_syscall_args(&r);
	/* removexattrat(dfd, path, at_flags, name) */
	return rs_xattr_exit(ctx, RS_EVENT_REMOVEXATTR, (int)r.a[0], (const char *)r.a[1], r.a[2],
			     (const char *)r.a[3], r.a[2]);
}

#endif /* RS_HOOK_SETATTR_H */
