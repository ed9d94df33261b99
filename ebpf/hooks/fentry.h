/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/fentry.h - the precise hook set's captures for the file-integrity
 * types (see fim_precise.h). Each program only records the objects its
 * function was given; the syscall's sys_exit program (setattr.h, dirent.h)
 * emits the record. Argument positions are the same from 6.1 to 6.18
 * (checked by the kernel matrix, tests/kernels/); only the first argument of
 * the inode xattr hooks changed type (user_namespace -> mnt_idmap), unused.
 */
#ifndef RS_HOOK_FENTRY_H
#define RS_HOOK_FENTRY_H

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

SEC("fentry/security_path_chmod")
int BPF_PROG(rs_fentry_path_chmod, const struct path *path)
{
	return rs_precise_path_hook(RS_BIT(RS_EVENT_CHMOD), path);
}

SEC("fentry/security_path_chown")
int BPF_PROG(rs_fentry_path_chown, const struct path *path)
{
	return rs_precise_path_hook(RS_BIT(RS_EVENT_CHOWN), path);
}

SEC("fentry/vfs_utimes")
int BPF_PROG(rs_fentry_vfs_utimes, const struct path *path)
{
	return rs_precise_path_hook(RS_BIT(RS_EVENT_UTIMES), path);
}

SEC("fentry/security_path_unlink")
int BPF_PROG(rs_fentry_path_unlink, const struct path *dir, struct dentry *dentry)
{
	return rs_precise_dir_hook(RS_BIT(RS_EVENT_UNLINK), dir, dentry);
}

SEC("fentry/security_path_rmdir")
int BPF_PROG(rs_fentry_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	return rs_precise_dir_hook(RS_BIT(RS_EVENT_RMDIR), dir, dentry);
}

/* The new directory's dentry is still negative; the exit reads its inode. */
SEC("fentry/security_path_mkdir")
int BPF_PROG(rs_fentry_path_mkdir, const struct path *dir, struct dentry *dentry)
{
	return rs_precise_dir_hook(RS_BIT(RS_EVENT_MKDIR), dir, dentry);
}

/* Both ends are in one mount (the kernel refuses others with EXDEV first). */
SEC("fentry/security_path_rename")
int BPF_PROG(rs_fentry_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	struct rs_fim_capture *cap = rs_precise_begin(RS_BIT(RS_EVENT_RENAME), true);

	if (!cap)
		return 0;
	rs_precise_slot(cap, 0, BPF_CORE_READ(old_dir, dentry), old_dentry, BPF_CORE_READ(old_dir, mnt));
	rs_precise_slot(cap, 1, BPF_CORE_READ(new_dir, dentry), new_dentry, BPF_CORE_READ(new_dir, mnt));
	return 0;
}

SEC("fentry/security_path_link")
int BPF_PROG(rs_fentry_path_link, struct dentry *old_dentry, const struct path *new_dir,
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

/*
 * path_setxattr / path_removexattr take write access to the mount of the
 * resolved path just before the inode hook: the mount the caller reached.
 * Only the first of the call counts: overlayfs then takes its upper layer's
 * private mount and sets the xattr on the upper dentry again, through the
 * same hooks (seen on 6.12 with /tmp on overlayfs).
 */
SEC("fentry/mnt_want_write")
int BPF_PROG(rs_fentry_mnt_want_write, struct vfsmount *m)
{
	struct rs_fim_capture *cap = rs_precise_begin(RS_BIT_XATTR, false);

	if (cap && !cap->pending_mnt && !cap->count)
		cap->pending_mnt = m;
	return 0;
}

static __always_inline int rs_precise_xattr_hook(__u64 types, struct dentry *dentry)
{
	struct rs_fim_capture *cap = rs_precise_begin(types, false);

	if (cap && !cap->count)
		rs_precise_path_slot(cap, 0, dentry, cap->pending_mnt);
	return 0;
}

SEC("fentry/security_inode_setxattr")
int BPF_PROG(rs_fentry_inode_setxattr, void *idmap, struct dentry *dentry)
{
	return rs_precise_xattr_hook(RS_BIT(RS_EVENT_SETXATTR), dentry);
}

SEC("fentry/security_inode_removexattr")
int BPF_PROG(rs_fentry_inode_removexattr, void *idmap, struct dentry *dentry)
{
	return rs_precise_xattr_hook(RS_BIT(RS_EVENT_REMOVEXATTR), dentry);
}

#endif /* RS_HOOK_FENTRY_H */
