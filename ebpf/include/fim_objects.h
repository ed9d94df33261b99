/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fim_objects.h - at sys_exit, which captured inodes are the object and the
 * destination of a path-based call (rs_fim_choose), and their files and
 * paths in the record (rs_fim_objects). See fim.h for the capture.
 */
#ifndef RS_FIM_OBJECTS_H
#define RS_FIM_OBJECTS_H

#include "fim.h"
#include "filters.h"

/* What one watched syscall passed, normalized by its exit program. */
/* How a call looks its path up (the event type's `init` in the table). */
enum rs_lookup {
	RS_LOOKUP_PLAIN = 0,          /* never follows the last symlink (entries made, removed, renamed) */
	RS_LOOKUP_FOLLOW = 1,         /* follows it unless AT_SYMLINK_NOFOLLOW; "" + AT_EMPTY_PATH: the dirfd */
	RS_LOOKUP_LINK = 2,           /* linkat: follows only with AT_SYMLINK_FOLLOW; "" + AT_EMPTY_PATH: the dirfd */
};

/* A file-integrity call's arguments, filled by its sys_exit wrapper (exits.h,
 * generated from the table's argument roles). */
struct rs_fim_call {
	__u32 type;                   /* enum rs_event_type */
	__u32 flags;                  /* reported in rs_file_event.flags */
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__u32 fim_flags;              /* RS_FIM_FOLLOW */
	__u32 at_flags;               /* AT_* flags of the lookup */
	__u32 lookup;                 /* enum rs_lookup */
	long dirfd;                   /* start of `path` */
	const char *path;
	long dirfd2;                  /* start of `path2` */
	const char *path2;
	const char *xattr;
	const char *fstype;
	const void *xattr_args;       /* setxattrat: struct xattr_args (user memory), holds the flags */
	const void *mount_attr;       /* mount_setattr, open_tree_attr: struct mount_attr (user memory) */
	long fd;                      /* the object's descriptor when use_fd */
	bool use_fd;
	bool null_means_fd;           /* a NULL path is the dirfd's file (utimensat, futimesat) */
	bool need_base;               /* always send the caller's strings and bases (mount) */
};

/* The value a type's flags approvers test (RS_APPROVE_FLAGS): chmod's new
 * mode (chmod.file.destination.mode, `mode & (S_ISUID | S_ISGID) > 0`),
 * every other type's call flags. */
static __always_inline __u64 rs_fim_filter_flags(const struct rs_fim_call *c)
{
	return c->type == RS_EVENT_CHMOD ? c->mode : c->flags;
}

static __always_inline void rs_fim_call_init(struct rs_fim_call *c, __u32 type)
{
	__builtin_memset(c, 0, sizeof(*c));
	c->type = type;
	c->dirfd = RS_AT_FDCWD;
	c->dirfd2 = RS_AT_FDCWD;
	c->fd = -1;
}

/* The caller passed "" with AT_EMPTY_PATH: the object is the descriptor itself. */
static __always_inline bool rs_empty_path(const char *upath, __u32 at_flags)
{
	char c = 1;

	if (!(at_flags & RS_AT_EMPTY_PATH))
		return false;
	if (!upath)
		return true;
	if (bpf_probe_read_user(&c, 1, upath))
		return false;
	return c == 0;
}

/* The wrapper's arguments -> what the lookup means: a descriptor's file, or
 * a path whose last symlink is followed or not. */
static __always_inline void rs_fim_lookup(struct rs_fim_call *c)
{
	if (c->xattr_args) {
		struct xattr_args xa = {};

		bpf_probe_read_user(&xa, sizeof(xa), c->xattr_args);
		c->flags = xa.flags;
	}
	if (c->use_fd)
		return;
	switch (c->lookup) {
	case RS_LOOKUP_FOLLOW:
		if ((c->null_means_fd && !c->path) || rs_empty_path(c->path, c->at_flags)) {
			c->use_fd = true;
			c->fd = c->dirfd;
		}
		if (!(c->at_flags & RS_AT_SYMLINK_NOFOLLOW))
			c->fim_flags |= RS_FIM_FOLLOW;
		break;
	case RS_LOOKUP_LINK:
		if (c->at_flags & RS_AT_SYMLINK_FOLLOW)
			c->fim_flags |= RS_FIM_FOLLOW;
		if (rs_empty_path(c->path, c->at_flags)) {
			c->use_fd = true;
			c->fd = c->dirfd;
		}
		break;
	}
}

/* The struct path behind a descriptor (AT_FDCWD: the cwd). */
static __always_inline bool rs_fd_path(struct task_struct *task, long fd,
				       struct dentry **dentry, struct vfsmount **mnt)
{
	struct file *file;

	if ((int)fd == RS_AT_FDCWD) {
		*dentry = BPF_CORE_READ(task, fs, pwd.dentry);
		*mnt = BPF_CORE_READ(task, fs, pwd.mnt);
		return true;
	}
	file = rs_fd_file(task, (int)fd);
	if (!file)
		return false;
	*dentry = BPF_CORE_READ(file, f_path.dentry);
	*mnt = BPF_CORE_READ(file, f_path.mnt);
	return true;
}

static __always_inline void rs_fim_fill_fstype(struct rs_file *f, struct super_block *sb)
{
	bpf_probe_read_kernel_str(f->fstype, sizeof(f->fstype), BPF_CORE_READ(sb, s_type, name));
}

/* The slot still describes a live inode (attributes can be re-read). An
 * inode captured while being set up (overlayfs) had no number yet. */
static __always_inline bool rs_slot_inode_live(struct rs_fim_slot *s)
{
	struct inode *inode = s->inode;
	__u64 ino;

	if (!inode || BPF_CORE_READ(inode, i_sb, s_dev) != s->file.dev)
		return false;
	ino = BPF_CORE_READ(inode, i_ino);
	return ino == s->file.inode || (s->file.inode == 0 && ino != 0);
}

/*
 * The file a slot names, into `f` and the record: attributes (re-read at exit
 * when `refresh` and the inode is still live), the path it had when the
 * kernel changed it: the captured parent walked + the captured name.
 */
static __always_inline void rs_fim_slot_file(void *rec, __u32 *off, struct rs_file *f,
					     struct rs_fim_slot *s, bool refresh)
{
	struct dentry *d = s->dentry;
	struct dentry *parent = s->parent;
	struct inode *inode = s->inode;

	if (refresh && rs_slot_inode_live(s)) {
		__builtin_memset(f, 0, sizeof(*f));
		rs_fill_inode_attrs(f, s->inode);
	} else {
		__builtin_memcpy(f, &s->file, sizeof(*f));
		rs_fim_fill_fstype(f, s->sb);
	}
	f->path.off = 0;
	f->path.len = 0;
	if (!d) {
		/* A new inode (mkdir): its alias exists by now. */
		struct hlist_node *first = BPF_CORE_READ(inode, i_dentry.first);

		if (!first || !rs_slot_inode_live(s))
			return;
		d = rs_alias_dentry(first);
		if (BPF_CORE_READ(d, d_inode) != inode)
			return;
		rs_resolve_dentry(rec, off, f, d, NULL, 0);
		return;
	}
	if (d == parent) {
		/* The root of its filesystem. */
		rs_resolve_dentry(rec, off, f, d, NULL, 0);
		return;
	}
	if (!parent || BPF_CORE_READ(parent, d_inode) != s->parent_inode)
		return;
	rs_resolve_dentry(rec, off, f, parent, s->name, s->name_len);
}

/* The current path of `d`, an alias of the object `src` describes (rename:
 * the dentry after d_move; link: the new alias): the same inode. */
static __always_inline void rs_fim_dentry_file(void *rec, __u32 *off, struct rs_file *f,
					       struct rs_file *src, struct dentry *d)
{
	__builtin_memcpy(f, src, sizeof(*f));
	f->flags &= ~(RS_FILE_SB_RELATIVE | RS_FILE_PATH_TRUNCATED | RS_FILE_DETACHED | RS_FILE_DISCONNECTED);
	f->path.off = 0;
	f->path.len = 0;
	rs_resolve_dentry(rec, off, f, d, NULL, 0);
}

/*
 * Only the directory fired (overlayfs whiteouts, ...): the path is that
 * directory + the last component of the caller's string.
 */
static __always_inline bool rs_fim_parent_file(void *rec, __u32 *off, struct rs_file *f,
					       struct rs_fim_slot *dir, const char *upath)
{
	struct rs_fim_scratch *s = rs_fim_scratch();
	__u32 len;

	if (!s || !dir->dentry)
		return false;
	len = rs_user_basename(s, upath);
	if (!len)
		return false;
	__builtin_memset(f, 0, sizeof(*f));
	f->dev = dir->file.dev;
	f->flags = dir->file.flags & RS_FILE_OVERLAY;
	rs_fim_fill_fstype(f, dir->sb);
	rs_resolve_dentry(rec, off, f, dir->dentry, &s->req[s->start & (RS_PATH_MAX - 1)], len);
	return f->path.len != 0;
}

/* Which captured slots are the object(s): slot index + 1, 0 for none. */
struct rs_fim_pick {
	__u32 obj;
	__u32 obj2;         /* rename exchange: the other file */
	__u32 dir;          /* the directory the object is in (parent-only fallback, link) */
};

static __always_inline bool rs_slot_moved(struct rs_fim_slot *s)
{
	struct dentry *d = s->dentry;

	if (!d || BPF_CORE_READ(d, d_inode) != s->inode)
		return false;
	return BPF_CORE_READ(d, d_parent) != s->parent || BPF_CORE_READ(d, d_name.hash_len) != s->hash_len;
}

/* bpf_loop() context of the choice: constant pointers only (the loop state
 * is in the scratch map value). */
struct rs_choose_ctx {
	struct rs_fim_capture *cap;
	struct rs_fim_scratch *s;
};

/* The choice runs as bpf_loop() callbacks over the slots, its state in the
 * per-CPU scratch: the verifier checks each callback once instead of every
 * combination of branches across the unrolled slots. */
static long rs_choose_last_step(__u32 i, struct rs_choose_ctx *ctx)
{
	struct rs_fim_scratch *s = ctx->s;
	struct rs_fim_capture *cap = ctx->cap;
	struct rs_fim_slot *slot;

	if (!s || !cap || i >= s->count)
		return 1;
	slot = &cap->slot[i & (RS_FIM_SLOTS - 1)];
	if (slot->seq > s->best_seq) {
		s->best_seq = slot->seq;
		s->last = i;
	}
	if ((slot->file.flags & RS_FILE_OVERLAY) && slot->seq > s->overlay_seq) {
		s->overlay_seq = slot->seq;
		s->overlay_dev = slot->file.dev;
	}
	return 0;
}

static long rs_choose_kind_step(__u32 i, struct rs_choose_ctx *ctx)
{
	struct rs_fim_scratch *s = ctx->s;
	struct rs_fim_capture *cap = ctx->cap;
	struct rs_fim_slot *slot;

	if (!s || !cap || i >= s->count)
		return 1;
	slot = &cap->slot[i & (RS_FIM_SLOTS - 1)];
	if (slot->file.dev != s->dev)
		return 0;
	if (RS_S_ISDIR(slot->file.mode)) {
		if (slot->seq > s->dir_seq && slot->dentry) {
			s->dir_seq = slot->seq;
			s->dir = i + 1;
		}
	} else if (slot->seq > s->nondir_seq && slot->dentry) {
		/* (an inode without an alias is new: not what unlink or link named) */
		s->nondir_seq = slot->seq;
		s->nondir = i + 1;
	}
	if (!slot->dentry)
		s->fresh = i + 1;
	if (s->type == RS_EVENT_RENAME && rs_slot_moved(slot)) {
		if (!s->obj)
			s->obj = i + 1;
		else if (!s->obj2)
			s->obj2 = i + 1;
	}
	return 0;
}

/* Pair k = (child i, parent j): a captured directory inside another one. */
static long rs_choose_subdir_step(__u32 k, struct rs_choose_ctx *ctx)
{
	struct rs_fim_scratch *s = ctx->s;
	struct rs_fim_capture *cap = ctx->cap;
	__u32 i = k / RS_FIM_SLOTS, j = k % RS_FIM_SLOTS;
	struct rs_fim_slot *c, *p;

	if (!s || !cap || i >= s->count)
		return 1;
	if (j >= s->count || i == j)
		return 0;
	c = &cap->slot[i & (RS_FIM_SLOTS - 1)];
	p = &cap->slot[j & (RS_FIM_SLOTS - 1)];
	if (c->file.dev == s->dev && p->file.dev == s->dev && RS_S_ISDIR(c->file.mode) &&
	    c->dentry && p->dentry == c->parent)
		s->obj = i + 1;
	return 0;
}

/*
 * Choose among the inodes a call changed. The object's filesystem is
 * overlayfs if any of them is an overlayfs inode (overlayfs works through
 * its layers' inodes, which update too), else the one of the last inode
 * updated (all the inodes of a call share one superblock). Then, per type:
 *   chmod, chown, utimes, setxattr, removexattr: the last one updated;
 *   unlink: the last non-directory; its directory as fallback;
 *   rmdir: the directory whose parent is another captured directory;
 *   mkdir: the inode that had no alias (new);
 *   link: the last non-directory, and the last directory (the new parent);
 *   rename: the inodes whose dentry moved (two for RENAME_EXCHANGE).
 */
static __always_inline void rs_fim_choose(struct rs_fim_capture *cap, __u32 type, struct rs_fim_pick *p)
{
	struct rs_fim_scratch *s = rs_fim_scratch();
	struct rs_choose_ctx ctx = { .cap = cap, .s = s };

	p->obj = 0;
	p->obj2 = 0;
	p->dir = 0;
	if (rs_precise_hooks && cap->precise) {
		/* fentry/kprobe captures (fim_precise.h): slot 0 is the object;
		 * slot 1, rename's target, an inode when one was replaced or
		 * exchanged */
		p->obj = 1;
		if (type == RS_EVENT_RENAME && cap->count > 1 && cap->slot[1].inode)
			p->obj2 = 2;
		return;
	}
	if (!s)
		return;
	s->type = type;
	s->count = cap->count < RS_FIM_SLOTS ? cap->count : RS_FIM_SLOTS;
	s->last = 0;
	s->best_seq = 0;
	s->overlay_seq = 0;
	s->overlay_dev = 0;
	bpf_loop(RS_FIM_SLOTS, rs_choose_last_step, &ctx, 0);
	if (!s->best_seq)
		return;
	/* An overlayfs inode wins over the layers' ones (it is what the caller
	 * named; the lower filesystem's inodes may update last, e.g. on the
	 * final iput of an upper file). */
	s->dev = s->overlay_seq ? s->overlay_dev : cap->slot[s->last & (RS_FIM_SLOTS - 1)].file.dev;
	s->nondir = 0;
	s->nondir_seq = 0;
	s->dir = 0;
	s->dir_seq = 0;
	s->fresh = 0;
	s->obj = 0;
	s->obj2 = 0;
	bpf_loop(RS_FIM_SLOTS, rs_choose_kind_step, &ctx, 0);
	switch (type) {
	case RS_EVENT_UNLINK:
	case RS_EVENT_LINK:
		s->obj = s->nondir;
		break;
	case RS_EVENT_MKDIR:
		s->obj = s->fresh;
		break;
	case RS_EVENT_RMDIR:
		bpf_loop(RS_FIM_SLOTS * RS_FIM_SLOTS, rs_choose_subdir_step, &ctx, 0);
		break;
	case RS_EVENT_RENAME:
		break;
	default:
		s->obj = s->last + 1;
		break;
	}
	p->obj = s->obj;
	p->obj2 = s->obj2;
	p->dir = s->dir;
}

/* The dentry the kernel filters judge for a slot: its alias, if it is still
 * the name it had in the directory it had (else NULL: the caller's string
 * decides by its last component). */
static __always_inline struct dentry *rs_fim_filter_dentry(struct rs_fim_slot *s)
{
	struct dentry *d = s->dentry;
	struct inode *inode = s->inode;

	if (!d) {
		/* mkdir: the new directory's alias, made by now */
		struct hlist_node *first = BPF_CORE_READ(inode, i_dentry.first);

		if (!first)
			return NULL;
		d = rs_alias_dentry(first);
		return BPF_CORE_READ(d, d_inode) == inode ? d : NULL;
	}
	if (BPF_CORE_READ(d, d_parent) != s->parent || BPF_CORE_READ(d, d_name.hash_len) != s->hash_len)
		return NULL;
	return d;
}

/* rename/unlink/rmdir/link moved or removed an inode: discarders decided
 * before now no longer hold for it (filters.h). From the captured numbers:
 * a removed inode may be freed by now. */
static __always_inline void rs_fim_tombstone(struct rs_fim_slot *s)
{
	/* (the count of moves too: a per-CPU discard_cache entry of this inode
	 * must miss, or a link's new name would stay discarded) */
	rs_inode_number_moved(s->file.inode);
}

/*
 * rename's destination for the kernel filters: the object's dentry, moved
 * there by now, through the mount the record's file.destination is walked
 * through (rs_fim_dentry_file). Precise captures (slot 1 is the target) and
 * a second file of an exchange have none here: sent.
 */
static __always_inline bool rs_fim_send_rename(struct rs_fim_slot *s, struct rs_fim_call *c, const char *upath)
{
	struct dentry *dest = s && !s->mnt ? s->dentry : NULL;
	struct mount *m = NULL;

	if (dest && (rs_policy_approve(RS_EVENT_RENAME) & RS_APPROVE_PREFIX))
		m = rs_sb_mount_for(BPF_CORE_READ(dest, d_sb), dest);
	return rs_filter_at(RS_EVENT_RENAME, NULL, NULL, c->flags, upath, dest, m);
}

/*
 * The kernel filters' decision for the object in slot `s` (filters.h).
 * rename's object has moved by now: it is judged by the last component of
 * the caller's old path (rename does not follow it, so that is the name it
 * had) and without discarders, its destination by its new name and path;
 * any other object whose dentry cannot be trusted any more by the caller's
 * string. Discarders need the mount: only with a single mount in the
 * caller's mount namespace.
 */
static __always_inline bool rs_fim_send(struct rs_fim_slot *s, struct rs_fim_call *c, const char *upath)
{
	struct dentry *d = NULL;
	struct mount *m;

	if (c->type == RS_EVENT_RENAME)
		return rs_fim_send_rename(s, c, upath);
	if (s)
		d = rs_fim_filter_dentry(s);
	if (!d)
		return rs_filter(c->type, NULL, NULL, rs_fim_filter_flags(c), upath);
	/* the mount the call went through (precise sets), else the caller's view */
	m = s->mnt ? rs_real_mount(s->mnt) : rs_sb_mount_for(s->sb, d);
	return rs_filter(c->type, d, m ? &m->mnt : NULL, rs_fim_filter_flags(c), upath);
}

/* rs_fim_decide() verdicts */
#define RS_FIM_SEND 1          /* the record of the object */
#define RS_FIM_SEND_SECOND 2   /* RENAME_EXCHANGE: the record of the other file */

/*
 * Before any record is built: which captured inodes are the objects (into
 * *p), the tombstones of moved/removed inodes, and the kernel filters'
 * verdict (0: drop). For RENAME_EXCHANGE each file is judged on its own old
 * name.
 */
static __always_inline __u32 rs_fim_decide(struct rs_fim_capture *cap, struct rs_fim_call *c, long ret,
					   struct rs_fim_pick *p)
{
	bool exchange;
	struct rs_fim_slot *s;
	__u32 verdict = 0;

	rs_fim_choose(cap, c->type, p);
	if (!p->obj)
		return rs_fim_send(NULL, c, c->path) ? RS_FIM_SEND : 0;
	s = &cap->slot[(p->obj - 1) & (RS_FIM_SLOTS - 1)];
	exchange = p->obj2 && (c->flags & RS_RENAME_EXCHANGE);
	if (ret == 0 && (c->type == RS_EVENT_UNLINK || c->type == RS_EVENT_RMDIR ||
			 c->type == RS_EVENT_RENAME || c->type == RS_EVENT_LINK)) {
		rs_fim_tombstone(s);
		if (p->obj2)
			rs_fim_tombstone(&cap->slot[(p->obj2 - 1) & (RS_FIM_SLOTS - 1)]);
	}
	if (rs_fim_send(s, c, c->path))
		verdict |= RS_FIM_SEND;
	if (exchange && rs_fim_send(NULL, c, c->path2))
		verdict |= RS_FIM_SEND_SECOND;
	return verdict;
}

/*
 * The object and destination of a path-based call from the captured inodes
 * chosen by rs_fim_decide(). Returns how many records the call makes (2:
 * RENAME_EXCHANGE, with the second file's attributes in *second).
 */
static __always_inline __u32 rs_fim_objects(void *rec, __u32 *off, struct rs_file_event *e,
					    struct rs_fim_capture *cap, struct rs_fim_call *c,
					    struct rs_fim_pick *p, struct rs_file *second)
{
	struct rs_fim_slot *s, *dir = NULL;
	bool removed = c->type == RS_EVENT_UNLINK || c->type == RS_EVENT_RMDIR;

	if (p->dir)
		dir = &cap->slot[(p->dir - 1) & (RS_FIM_SLOTS - 1)];
	if (!p->obj) {
		/* Nothing named the object itself; its directory may have fired. */
		if (dir && (removed || c->type == RS_EVENT_MKDIR) &&
		    rs_fim_parent_file(rec, off, &e->file, dir, c->path))
			e->fim_flags |= RS_FIM_OBJ_PARENT;
		/* link on overlayfs: only the new directory's ctime changes. */
		if (dir && c->type == RS_EVENT_LINK && rs_fim_parent_file(rec, off, &e->dest, dir, c->path2))
			e->fim_flags |= RS_FIM_DEST_PARENT;
		return 1;
	}
	s = &cap->slot[(p->obj - 1) & (RS_FIM_SLOTS - 1)];
	/* Attributes as captured (the last ctime update), re-read for the calls
	 * that may set some after the ctime (utimes sets mtime after it) and
	 * for a new inode (mkdir: captured while being set up). */
	rs_fim_slot_file(rec, off, &e->file, s, !removed && c->type != RS_EVENT_RENAME && c->type != RS_EVENT_LINK);
	e->fim_flags |= RS_FIM_OBJ_INODE;

	if (c->type == RS_EVENT_RENAME && s->dentry) {
		rs_fim_dentry_file(rec, off, &e->dest, &e->file, s->dentry);
		e->fim_flags |= RS_FIM_DEST_KERNEL;
		if (p->obj2 && (c->flags & RS_RENAME_EXCHANGE)) {
			struct rs_fim_slot *s2 = &cap->slot[(p->obj2 - 1) & (RS_FIM_SLOTS - 1)];

			__builtin_memcpy(second, &s2->file, sizeof(*second));
			rs_fim_fill_fstype(second, s2->sb);
			return 2;
		}
	} else if (c->type == RS_EVENT_LINK && s->inode) {
		struct dentry *alias = rs_alias_named(s->inode, c->path2, s->dentry);

		if (alias) {
			rs_fim_dentry_file(rec, off, &e->dest, &e->file, alias);
			e->fim_flags |= RS_FIM_DEST_KERNEL;
		} else if (dir && rs_fim_parent_file(rec, off, &e->dest, dir, c->path2)) {
			e->fim_flags |= RS_FIM_DEST_PARENT;
		}
	}
	return 1;
}

#endif /* RS_FIM_OBJECTS_H */
