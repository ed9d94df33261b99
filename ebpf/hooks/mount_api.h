/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/mount_api.h - the new mount API as mount events, in the same record
 * as mount(2) (struct rs_file_event: req_path the mount point, req_path2
 * the source, dest the mount itself, walked from kernel objects):
 *
 *  - fsmount(fs_fd, flags, attr_flags): a new, detached mount of the
 *    filesystem context fs_fd holds: its type and source from the context
 *    (struct fs_context), the mount from the descriptor it returns;
 *  - move_mount(from_dfd, from_path, to_dfd, to_path, flags): attaches (or
 *    moves) a mount at to_path: with MOVE_MOUNT_F_EMPTY_PATH the mount is
 *    from_dfd's (an fsmount or open_tree descriptor), walked at exit from
 *    its new place, with its source (mnt_devname) and type; otherwise user
 *    space names it from its mount table;
 *  - open_tree(dfd, path, OPEN_TREE_CLONE...), open_tree_attr: a detached
 *    copy of the tree at path (a bind mount to be); without OPEN_TREE_CLONE
 *    open_tree only opens the tree (O_PATH-like) and is not reported;
 *  - mount_setattr(dfd, path, flags, attr, size): new attributes of the
 *    mount at path (attr_set in `mode`, attr_clr in `uid`).
 * A successful call moves the discarders revision, as mount(2) does: paths
 * below mount points may have changed.
 */
#ifndef RS_HOOK_MOUNT_API_H
#define RS_HOOK_MOUNT_API_H

#include "fim_exit.h"

/* typeless: resolved from kallsyms (a text symbol, on every kernel's list) */
extern const void fscontext_release __ksym __weak;

/* The mount behind a descriptor (an fsmount/open_tree fd, or any file's mount). */
static __always_inline struct vfsmount *rs_fd_mount(struct task_struct *task, long fd)
{
	struct file *file = rs_fd_file(task, fd);

	return file ? BPF_CORE_READ(file, f_path.mnt) : NULL;
}

/* Describe mount `vm` in e->dest (walked from its root: its mount point once
 * attached), with its filesystem type; flag it when it is not in the
 * caller's namespace (detached). */
static __always_inline void rs_mount_api_dest(void *rec, __u32 *off, struct rs_file_event *e,
					      struct task_struct *task, struct vfsmount *vm)
{
	struct mount *m;

	if (!vm)
		return;
	m = rs_real_mount(vm);
	rs_fill_file(rec, off, &e->dest, BPF_CORE_READ(vm, mnt_root), vm);
	e->fim_flags |= RS_FIM_DEST_KERNEL;
	if (BPF_CORE_READ(m, mnt_ns) != BPF_CORE_READ(task, nsproxy, mnt_ns))
		e->fim_flags |= RS_FIM_DETACHED;
	if (!e->fs_type.len)
		rs_append_str(rec, off, &e->fs_type, BPF_CORE_READ(vm, mnt_sb, s_type, name), false);
}

/* The caller's string is "" and the descriptor is meant (AT_EMPTY_PATH or
 * MOVE_MOUNT_F_EMPTY_PATH). */
static __always_inline bool rs_mount_api_empty(const char *upath, bool allowed)
{
	char first = 1;

	return allowed && (!upath || (!bpf_probe_read_user(&first, 1, upath) && first == 0));
}

static __always_inline int rs_mount_api_exit(struct trace_event_raw_sys_exit *ctx, struct rs_fim_call *c)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_file_event *e;
	__u32 nr = (__u32)ctx->id, off;
	long ret = ctx->ret;
	void *rec;

	if (!rs_type_enabled(c->type) || rs_is_self())
		return 0;
	if (nr == RS_NR_open_tree || nr == RS_NR_open_tree_attr) {
		if (!(c->flags & RS_OPEN_TREE_CLONE))
			return 0;   /* an O_PATH-like open of the tree: no mount is made */
	}
	if (ret >= 0)
		rs_bump_discarders_revision();   /* paths below mount points may have changed */
	if (!rs_type_sends(c->type))
		return 0;                        /* hooked for the filters' sake only */
	RS_STAT_INC(c->type, seen);
	rec = rs_record();
	if (!rec)
		return 0;
	e = rec;
	off = sizeof(*e);
	__builtin_memset(e, 0, sizeof(*e));
	rs_fill_header(&e->hdr, c->type);
	rs_fill_proc(&e->proc, task);
	e->retval = ret;
	e->syscall_nr = nr;
	e->flags = c->flags ? c->flags : c->at_flags;
	e->dirfd = c->dirfd;
	e->dirfd2 = c->dirfd2;
	if (c->mount_attr) {
		const struct mount_attr *ma = c->mount_attr;
		__u64 v = 0;

		if (!bpf_core_read_user(&v, sizeof(v), &ma->attr_set))
			e->mode = v;
		if (!bpf_core_read_user(&v, sizeof(v), &ma->attr_clr))
			e->uid = v;
	}

	if (nr == RS_NR_fsmount) {
		struct file *fsfile = rs_fd_file(task, c->fd);

		/* the filesystem context: the type and source fsconfig() set */
		if (fsfile && &fscontext_release && BPF_CORE_READ(fsfile, f_op, release) == &fscontext_release) {
			struct fs_context *fc = BPF_CORE_READ(fsfile, private_data);

			rs_append_str(rec, &off, &e->fs_type, BPF_CORE_READ(fc, fs_type, name), false);
			rs_append_str(rec, &off, &e->req_path2, BPF_CORE_READ(fc, source), false);
			e->fim_flags |= RS_FIM_SOURCE_KERNEL;
		}
		if (ret >= 0) {
			struct vfsmount *vm = rs_fd_mount(task, ret);

			/* a successful fsmount hands the context's source to the new
			 * mount (vfs_create_mount, 6.x: fc->source is NULL at exit) */
			if (vm && !e->req_path2.len) {
				rs_append_str(rec, &off, &e->req_path2, BPF_CORE_READ(rs_real_mount(vm), mnt_devname), false);
				e->fim_flags |= RS_FIM_SOURCE_KERNEL;
			}
			rs_mount_api_dest(rec, &off, e, task, vm);
		}
	} else if (nr == RS_NR_move_mount) {
		if (rs_mount_api_empty(c->path2, c->flags & RS_MOVE_MOUNT_F_EMPTY_PATH)) {
			struct vfsmount *vm = rs_fd_mount(task, c->dirfd2);

			if (vm) {
				rs_append_str(rec, &off, &e->req_path2, BPF_CORE_READ(rs_real_mount(vm), mnt_devname), false);
				e->fim_flags |= RS_FIM_SOURCE_KERNEL;
				if (ret == 0)
					rs_mount_api_dest(rec, &off, e, task, vm);
			}
		} else {
			rs_fim_base(rec, &off, task, &e->base2, &e->req_path2, c->dirfd2, c->path2);
		}
		rs_fim_base(rec, &off, task, &e->base, &e->req_path, c->dirfd, c->path);
	} else if (nr == RS_NR_open_tree || nr == RS_NR_open_tree_attr) {
		/* the source: the tree cloned (a "" path with AT_EMPTY_PATH: the dfd's) */
		rs_fim_base(rec, &off, task, &e->base2, &e->req_path2, c->dirfd2, c->path2);
		if (ret >= 0)
			rs_mount_api_dest(rec, &off, e, task, rs_fd_mount(task, ret));
	} else if (nr == RS_NR_mount_setattr) {
		if (rs_mount_api_empty(c->path, c->at_flags & RS_AT_EMPTY_PATH)) {
			if (ret == 0)
				rs_mount_api_dest(rec, &off, e, task, rs_fd_mount(task, c->dirfd));
		} else {
			rs_fim_base(rec, &off, task, &e->base, &e->req_path, c->dirfd, c->path);
		}
	}
	if ((e->req_path.len || e->req_path2.len) && rs_task_chrooted(task)) {
		struct rs_file root = {};

		if (rs_resolve_path(rec, &off, &root, BPF_CORE_READ(task, fs, root.dentry),
				    BPF_CORE_READ(task, fs, root.mnt)))
			e->root = root.path;
	}
	rs_submit(rec, off);
	return 0;
}

#endif /* RS_HOOK_MOUNT_API_H */
