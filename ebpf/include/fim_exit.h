/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fim_exit.h - the common sys_exit of every file-integrity syscall: the
 * record (struct rs_file_event) from the call's arguments, the objects the
 * kernel named (fim_objects.h), the caller's strings and their kernel-walked
 * start directories, the new mount of a mount(2).
 */
#ifndef RS_FIM_EXIT_H
#define RS_FIM_EXIT_H

#include "fim_objects.h"
#include "fim_precise.h"

/* The task's root is not its mount namespace's root (chroot, pivot inside). */
static __always_inline bool rs_task_chrooted(struct task_struct *task)
{
	struct vfsmount *vm = BPF_CORE_READ(task, fs, root.mnt);
	struct dentry *root = BPF_CORE_READ(task, fs, root.dentry);
	struct mount *m = rs_real_mount(vm);

	return root != BPF_CORE_READ(vm, mnt_root) || BPF_CORE_READ(m, mnt_parent) != m;
}

/* The start directory of `upath` into `f` (see rs_lookup_base). */
static __always_inline void rs_fim_base(void *rec, __u32 *off, struct task_struct *task,
					struct rs_file *f, struct rs_str *req, long dirfd, const char *upath)
{
	struct dentry *dentry = NULL;
	struct vfsmount *mnt = NULL;
	char first = 0;

	if (!upath)
		return;
	rs_append_str(rec, off, req, upath, true);
	if (req->len)
		first = ((char *)rec)[req->off & (RS_RECORD_MAX - 1)];
	if (rs_lookup_base(task, dirfd, first, &dentry, &mnt))
		rs_fill_file(rec, off, f, dentry, mnt);
}

/* A file the kernel did not fully place (no object, or no single mount). */
static __always_inline bool rs_file_unplaced(struct rs_file *f)
{
	return !f->path.len || (f->flags & RS_FILE_SB_RELATIVE);
}

/* A mount namespace's mounts: an rb-tree by mnt_id_unique with a pointer to
 * its last node (6.18); older kernels: the rb-tree alone, or a list. */
struct mnt_namespace___list {
	struct list_head list;
} __attribute__((preserve_access_index));

struct mount___list {
	struct list_head mnt_list;
} __attribute__((preserve_access_index));

#define RS_RB_DEPTH_MAX 64

/* The newest mount of the task's mount namespace. */
static __always_inline struct mount *rs_newest_mount(struct task_struct *task)
{
	struct mnt_namespace *ns = BPF_CORE_READ(task, nsproxy, mnt_ns);
	struct rb_node *node;
	__u32 i;

	if (!ns)
		return NULL;
	if (bpf_core_field_exists(ns->mnt_last_node)) {
		node = BPF_CORE_READ(ns, mnt_last_node);
	} else if (bpf_core_field_exists(ns->mounts)) {
		node = BPF_CORE_READ(ns, mounts.rb_node);
		for (i = 0; i < RS_RB_DEPTH_MAX && node; i++) {
			struct rb_node *right = BPF_CORE_READ(node, rb_right);

			if (!right)
				break;
			node = right;
		}
	} else {
		struct mnt_namespace___list *ons = (void *)ns;
		struct list_head *last = BPF_CORE_READ(ons, list.prev);

		if (!last || last == &ons->list)
			return NULL;
		return (struct mount *)((void *)last - bpf_core_field_offset(struct mount___list, mnt_list));
	}
	if (!node)
		return NULL;
	return (struct mount *)((void *)node - bpf_core_field_offset(struct mount, mnt_node));
}

/* mount(2) that made a mount: the namespace's newest one, walked from its
 * root (its mount point, id, filesystem). User space checks that its mount
 * point is the target (another mount may have come in between). */
static __always_inline void rs_fim_new_mount(void *rec, __u32 *off, struct rs_file_event *e,
					     struct task_struct *task)
{
	struct mount *m = rs_newest_mount(task);

	if (!m)
		return;
	e->dest.mount_id = BPF_CORE_READ(m, mnt_id);
	rs_fill_inode(&e->dest, BPF_CORE_READ(m, mnt.mnt_root));
	rs_resolve_path(rec, off, &e->dest, BPF_CORE_READ(m, mnt.mnt_root), &m->mnt);
	e->fim_flags |= RS_FIM_DEST_KERNEL;
}

/* The common sys_exit of every file-integrity syscall. */
static __always_inline int rs_fim_exit(struct trace_event_raw_sys_exit *ctx, struct rs_fim_call *c)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_fim_capture *cap = bpf_task_storage_get(&fim_capture, task, 0, 0);
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct dentry *fd_dentry = NULL;
	struct vfsmount *fd_mnt = NULL;
	struct rs_fim_pick pick = {};
	struct rs_file_event *e;
	struct rs_file second;
	__u32 off = sizeof(*e), records = 1, verdict = RS_FIM_SEND, stale = 0;
	/* syscalls/sys_exit_* records hold `int __syscall_nr`: the upper half of
	 * the `long id` that vmlinux.h declares is padding. */
	__u32 nr = (__u32)ctx->id;
	long ret = ctx->ret;
	bool captured = false;
	void *rec;

	if (!rs_type_enabled(c->type) || rs_is_self())
		goto out;
	rs_fim_lookup(c);
	if (rs_type_sends(c->type))
		RS_STAT_INC(c->type, seen);
	if (cap && cap->count && (cap->nr != nr || cap->arg0 != RS_SYSCALL_ARG0(regs) || cap->arg1 != RS_SYSCALL_ARG1(regs))) {
		/* Captures of another call (its exit was missed): not this call's objects. */
		stale = RS_FIM_STALE;
		cap->count = 0;
	}

	/* The kernel filters decide first: a dropped event costs no record. */
	if (c->use_fd) {
		if (rs_fd_path(task, c->fd, &fd_dentry, &fd_mnt)) {
			/* tombstone first: it must not depend on the event being sent */
			if (c->type == RS_EVENT_LINK && ret == 0)
				rs_inode_moved(BPF_CORE_READ(fd_dentry, d_inode));
			if (!rs_type_sends(c->type) || !rs_filter(c->type, fd_dentry, fd_mnt, rs_fim_filter_flags(c), NULL))
				goto out;
		}
	} else if (cap && cap->count) {
		captured = true;
		verdict = rs_fim_decide(cap, c, ret, &pick);
		if (!verdict)
			goto out;
	} else if (!rs_filter(c->type, NULL, NULL, rs_fim_filter_flags(c), c->path)) {
		/* No kernel object (the call failed): the caller's string decides. */
		goto out;
	}
	if ((c->type == RS_EVENT_MOUNT || c->type == RS_EVENT_UMOUNT) && ret == 0)
		rs_bump_discarders_revision();   /* paths below mount points changed */
	if (!rs_type_sends(c->type))
		goto out;                        /* hooked for the filters' sake only */

	e = rec = rs_record_begin(struct rs_file_event, c->type, task);
	if (!rec)
		goto out;
	e->retval = ret;
	e->syscall_nr = nr;
	e->flags = c->flags;
	e->mode = c->mode;
	e->uid = c->uid;
	e->gid = c->gid;
	e->dirfd = c->dirfd;
	e->dirfd2 = c->dirfd2;
	e->fim_flags = c->fim_flags | stale;

	if (fd_dentry) {
		rs_fill_file(rec, &off, &e->file, fd_dentry, fd_mnt);
		/* the filter walked exactly this file's parents */
		if (rs_policy_discard(c->type))
			rs_filter_parents(e->parent_inodes);
		e->fim_flags |= RS_FIM_OBJ_FD;
		if (c->type == RS_EVENT_LINK && c->path2) {
			/* linkat(fd, "", ..., AT_EMPTY_PATH): the new alias of the fd's inode. */
			struct inode *inode = BPF_CORE_READ(fd_dentry, d_inode);
			struct dentry *alias = inode ? rs_alias_named(inode, c->path2, fd_dentry) : NULL;

			if (alias) {
				rs_fill_inode(&e->dest, alias);
				rs_resolve_dentry(rec, &off, &e->dest, alias, NULL, 0);
				e->fim_flags |= RS_FIM_DEST_KERNEL;
			}
		}
	} else if (captured) {
		if (rs_precise_hooks && cap->precise)
			records = rs_precise_objects(rec, &off, e, cap, c, &second);
		else
			records = rs_fim_objects(rec, &off, e, cap, c, &pick, &second);
	}
	if (c->type == RS_EVENT_MOUNT && ret == 0 && !(c->flags & RS_MS_NOT_NEW))
		rs_fim_new_mount(rec, &off, e, task);
	if (c->xattr)
		rs_append_str(rec, &off, &e->xattr_name, c->xattr, true);
	if (c->fstype)
		rs_append_str(rec, &off, &e->fs_type, c->fstype, true);
	/* The caller's strings and start directories: the path of a failed call,
	 * and the hint that places an RS_FILE_SB_RELATIVE path on a mount. */
	if (c->need_base || rs_file_unplaced(&e->file))
		rs_fim_base(rec, &off, task, &e->base, &e->req_path, c->dirfd, c->path);
	if (c->path2 && (c->need_base || rs_file_unplaced(&e->dest)))
		rs_fim_base(rec, &off, task, &e->base2, &e->req_path2, c->dirfd2, c->path2);
	if ((e->req_path.len || e->req_path2.len) && rs_task_chrooted(task)) {
		struct rs_file root = {};

		if (rs_resolve_path(rec, &off, &root, BPF_CORE_READ(task, fs, root.dentry),
				    BPF_CORE_READ(task, fs, root.mnt)))
			e->root = root.path;
	}
	if (records == 2)
		e->fim_flags |= RS_FIM_EXCHANGE;
	if (verdict & RS_FIM_SEND)
		rs_submit(rec, off);

	if (records == 2 && (verdict & RS_FIM_SEND_SECOND)) {
		/* RENAME_EXCHANGE: the other file went the other way. */
		struct rs_str from = e->dest.path;
		struct rs_str to = e->file.path;

		__builtin_memcpy(&e->file, &second, sizeof(second));
		__builtin_memcpy(&e->dest, &second, sizeof(second));
		e->file.path = from;
		e->dest.path = to;
		RS_STAT_INC(c->type, seen);
		rs_submit(rec, off);
	}
out:
	/* Done with this call's captures. The storage itself stays with the task
	 * (freed when the task exits): deleting and re-creating it costs ~6 us
	 * per call here; a capture resets it when the syscall number differs. */
	if (cap) {
		cap->nr = 0;
		cap->count = 0;
		cap->precise = 0;
		cap->pending_mnt = NULL;
	}
	return 0;
}

#endif /* RS_FIM_EXIT_H */
