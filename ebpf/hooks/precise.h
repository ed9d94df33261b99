/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/precise.h - the precise hook sets' captures for the file-integrity
 * types (see fim_precise.h). Each program only records the objects its
 * function was given; the syscall's sys_exit program (setattr.h, dirent.h)
 * emits the record. Every capture comes in two flavors sharing one body:
 * fentry (hook set `fentry`, a trampoline: cheapest) and kprobe (hook set
 * `kprobe`, for kernels with kprobes but no fentry). The bodies read their
 * arguments with CO-RE reads only, valid in both. Argument positions are the same from 6.1 to 6.18
 * (checked by the kernel matrix, tests/kernels/); only the first argument of
 * the inode xattr hooks changed type (user_namespace -> mnt_idmap), unused.
 */
#ifndef RS_HOOK_PRECISE_H
#define RS_HOOK_PRECISE_H

#include "fim_precise.h"

#define RS_BIT_XATTR (RS_BIT(RS_EVENT_SETXATTR) | RS_BIT(RS_EVENT_REMOVEXATTR))

static __always_inline int rs_precise_path_hook(__u64 types, const struct path *path)
{
	struct rs_fim_capture *cap = rs_precise_begin(types, true);

	if (cap)
		rs_precise_path_slot(cap, 0, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt));
	return 0;
}

/* An entry being removed or made: `dentry` in directory `dir`. */
static __always_inline int rs_precise_dir_hook(__u64 types, const struct path *dir, struct dentry *dentry)
{
	struct rs_fim_capture *cap = rs_precise_begin(types, true);

	if (cap)
		rs_precise_slot(cap, 0, BPF_CORE_READ(dir, dentry), dentry, BPF_CORE_READ(dir, mnt));
	return 0;
}

/* fentry and kprobe programs on `fn` calling `body(types, args...)`. */
#define RS_PRECISE1(fn, name, body, types, t1, a1)					\
	SEC("fentry/" #fn) int BPF_PROG(rs_fentry_##name, t1 a1) { return body(types, a1); }	\
	SEC("kprobe/" #fn) int BPF_KPROBE(rs_kprobe_##name, t1 a1) { return body(types, a1); }
#define RS_PRECISE2(fn, name, body, types, t1, a1, t2, a2)				\
	SEC("fentry/" #fn) int BPF_PROG(rs_fentry_##name, t1 a1, t2 a2) { return body(types, a1, a2); } \
	SEC("kprobe/" #fn) int BPF_KPROBE(rs_kprobe_##name, t1 a1, t2 a2) { return body(types, a1, a2); }

RS_PRECISE1(security_path_chmod, path_chmod, rs_precise_path_hook, RS_BIT(RS_EVENT_CHMOD),
	    const struct path *, path)
RS_PRECISE1(security_path_chown, path_chown, rs_precise_path_hook, RS_BIT(RS_EVENT_CHOWN),
	    const struct path *, path)
RS_PRECISE1(vfs_utimes, vfs_utimes, rs_precise_path_hook, RS_BIT(RS_EVENT_UTIMES),
	    const struct path *, path)
RS_PRECISE2(security_path_unlink, path_unlink, rs_precise_dir_hook, RS_BIT(RS_EVENT_UNLINK),
	    const struct path *, dir, struct dentry *, dentry)
RS_PRECISE2(security_path_rmdir, path_rmdir, rs_precise_dir_hook, RS_BIT(RS_EVENT_RMDIR),
	    const struct path *, dir, struct dentry *, dentry)
/* The new directory's dentry is still negative; the exit reads its inode. */
RS_PRECISE2(security_path_mkdir, path_mkdir, rs_precise_dir_hook, RS_BIT(RS_EVENT_MKDIR),
	    const struct path *, dir, struct dentry *, dentry)

/* Both ends are in one mount (the kernel refuses others with EXDEV first). */
static __always_inline int rs_precise_rename(const struct path *old_dir, struct dentry *old_dentry,
					     const struct path *new_dir, struct dentry *new_dentry)
{
	struct rs_fim_capture *cap = rs_precise_begin(RS_BIT(RS_EVENT_RENAME), true);

	if (!cap)
		return 0;
	rs_precise_slot(cap, 0, BPF_CORE_READ(old_dir, dentry), old_dentry, BPF_CORE_READ(old_dir, mnt));
	rs_precise_slot(cap, 1, BPF_CORE_READ(new_dir, dentry), new_dentry, BPF_CORE_READ(new_dir, mnt));
	return 0;
}

SEC("fentry/security_path_rename")
int BPF_PROG(rs_fentry_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	return rs_precise_rename(old_dir, old_dentry, new_dir, new_dentry);
}

SEC("kprobe/security_path_rename")
int BPF_KPROBE(rs_kprobe_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	       const struct path *new_dir, struct dentry *new_dentry)
{
	return rs_precise_rename(old_dir, old_dentry, new_dir, new_dentry);
}

static __always_inline int rs_precise_link(struct dentry *old_dentry, const struct path *new_dir,
					   struct dentry *new_dentry)
{
	struct rs_fim_capture *cap = rs_precise_begin(RS_BIT(RS_EVENT_LINK), true);
	struct vfsmount *mnt;

	if (!cap)
		return 0;
	mnt = BPF_CORE_READ(new_dir, mnt);
	rs_precise_path_slot(cap, 0, old_dentry, mnt);
	rs_precise_slot(cap, 1, BPF_CORE_READ(new_dir, dentry), new_dentry, mnt);
	return 0;
}

SEC("fentry/security_path_link")
int BPF_PROG(rs_fentry_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	return rs_precise_link(old_dentry, new_dir, new_dentry);
}

SEC("kprobe/security_path_link")
int BPF_KPROBE(rs_kprobe_path_link, struct dentry *old_dentry, const struct path *new_dir,
	       struct dentry *new_dentry)
{
	return rs_precise_link(old_dentry, new_dir, new_dentry);
}

/*
 * path_setxattr / path_removexattr take write access to the mount of the
 * resolved path just before the inode hook: the mount the caller reached.
 * Only the first of the call counts: overlayfs then takes its upper layer's
 * private mount and sets the xattr on the upper dentry again, through the
 * same hooks (seen on 6.12 with /tmp on overlayfs).
 */
static __always_inline int rs_precise_want_write(__u64 types, struct vfsmount *m)
{
	struct rs_fim_capture *cap = rs_precise_begin(types, false);

	if (cap && !cap->pending_mnt && !cap->count)
		cap->pending_mnt = m;
	return 0;
}

RS_PRECISE1(mnt_want_write, mnt_want_write, rs_precise_want_write, RS_BIT_XATTR, struct vfsmount *, m)

static __always_inline int rs_precise_xattr_hook(__u64 types, void *idmap, struct dentry *dentry)
{
	struct rs_fim_capture *cap = rs_precise_begin(types, false);

	if (cap && !cap->count)
		rs_precise_path_slot(cap, 0, dentry, cap->pending_mnt);
	return 0;
}

/* The first argument is a user_namespace (< 6.3) or a mnt_idmap: unused. */
RS_PRECISE2(security_inode_setxattr, inode_setxattr, rs_precise_xattr_hook, RS_BIT(RS_EVENT_SETXATTR),
	    void *, idmap, struct dentry *, dentry)
RS_PRECISE2(security_inode_removexattr, inode_removexattr, rs_precise_xattr_hook,
	    RS_BIT(RS_EVENT_REMOVEXATTR), void *, idmap, struct dentry *, dentry)

#endif /* RS_HOOK_PRECISE_H */
