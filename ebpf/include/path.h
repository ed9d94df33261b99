/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * path.h - absolute paths from kernel objects.
 *
 * rs_resolve_path() walks a struct path (dentry + vfsmount) up to the root of
 * the task's mount namespace, crossing mount points through struct mount
 * (mnt_parent / mnt_mountpoint), the way the kernel's prepend_path() does.
 * It deliberately ignores chroot: a chrooted process reading /etc/passwd
 * inside its root reports the host path of the object it really touched.
 *
 * Without a mount (a dentry named by an inode tracepoint has none), the walk
 * stops at the superblock's root and the path is relative to it
 * (RS_FILE_SB_RELATIVE) unless the superblock has exactly one mount in the
 * caller's mount namespace through which the dentry can be reached
 * (rs_sb_mount_for), which is then the mount. A walk may start at a directory with a
 * last component given as bytes (the name a dentry had inside the syscall).
 *
 * Components are prepended, last first, into a per-CPU scratch buffer, then
 * copied into the record. The walk is one bpf_loop() callback per component
 * (verified once, runs up to RS_PATH_DEPTH_MAX times); past that depth or
 * past RS_PATH_MAX bytes, the path is the longest suffix that fitted and the
 * file gets RS_FILE_PATH_TRUNCATED.
 */
#ifndef RS_PATH_H
#define RS_PATH_H

#include "common.h"

/* `v & mask` that the compiler cannot drop: a clamp seen earlier lets clang
 * remove a plain mask, and the verifier then sees a signed range where a
 * helper wants an unsigned size. */
#define RS_MASKED(v, mask)                                              \
	({                                                              \
		__u64 __v = (v);                                        \
		asm volatile("%[val] &= %[lim]" : [val] "+r"(__v) : [lim] "i"(mask)); \
		__v;                                                    \
	})

#define RS_PATH_DEPTH_MAX 2048          /* PATH_MAX / 2: one-letter components */
#define RS_PATH_BUF (2 * RS_PATH_MAX)   /* scratch: power of two for masking */

/* Loop state lives in the map value, not on the stack: the verifier then sees
 * every iteration start from the same unknown state and verifies the
 * callback once instead of unrolling it. */
struct rs_walk_state {
	struct dentry *dentry;
	struct mount *mnt;
	struct dentry *mnt_root;   /* mnt's root dentry, read once per mount crossed */
	const char *tail;      /* the walk's input: a last component (kernel memory), */
	__u32 tail_len;        /* of tail_len bytes (0: none) */
	__u32 off;             /* first byte of the path in data[] */
	__u32 flags;           /* RS_FILE_* learned during the walk */
	__u32 done;
};

struct rs_path_buf {
	struct rs_walk_state w;
	char data[RS_PATH_BUF + RS_NAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_path_buf);
} path_buf SEC(".maps");

static __always_inline struct mount *rs_real_mount(struct vfsmount *vfsmnt)
{
	/* container_of(vfsmnt, struct mount, mnt), offset relocated by CO-RE */
	return (struct mount *)((void *)vfsmnt - bpf_core_field_offset(struct mount, mnt));
}

/*
 * A dentry's parent, name and inode with one probe read of its head when
 * CO-RE places them there (within the first RS_DENTRY_HEAD bytes, 8-byte
 * aligned: so on every kernel seen), else one read each. The walks below go
 * through dentries that are not BTF pointers (read from memory), where each
 * bpf_probe_read_kernel costs a helper call.
 */
#define RS_DENTRY_HEAD 64

struct rs_dentry_head {
	struct dentry *parent;
	const unsigned char *name;
	__u32 len;
	struct inode *inode;
};

static __always_inline int rs_read_dentry(struct dentry *d, struct rs_dentry_head *h)
{
	__u32 op = bpf_core_field_offset(struct dentry, d_parent);
	__u32 on = bpf_core_field_offset(struct dentry, d_name);
	__u32 oi = bpf_core_field_offset(struct dentry, d_inode);
	__u64 head[RS_DENTRY_HEAD / 8];

	if (op % 8 == 0 && on % 8 == 0 && oi % 8 == 0 && op + 8 <= RS_DENTRY_HEAD &&
	    on + 16 <= RS_DENTRY_HEAD && oi + 8 <= RS_DENTRY_HEAD) {
		if (bpf_probe_read_kernel(head, sizeof(head), d))
			return -1;
		h->parent = (struct dentry *)head[(op / 8) & (RS_DENTRY_HEAD / 8 - 1)];
		/* struct qstr: { u32 hash; u32 len; } as hash_len, then name */
		h->len = head[(on / 8) & (RS_DENTRY_HEAD / 8 - 1)] >> 32;
		h->name = (const unsigned char *)head[(on / 8 + 1) & (RS_DENTRY_HEAD / 8 - 1)];
		h->inode = (struct inode *)head[(oi / 8) & (RS_DENTRY_HEAD / 8 - 1)];
	} else {
		struct qstr name = BPF_CORE_READ(d, d_name);

		h->parent = BPF_CORE_READ(d, d_parent);
		h->len = name.len;
		h->name = name.name;
		h->inode = BPF_CORE_READ(d, d_inode);
	}
	return 0;
}

static long rs_walk_step(__u32 i, void *ctx)
{
	__u32 zero = 0;
	struct rs_path_buf *b = bpf_map_lookup_elem(&path_buf, &zero);

	if (!b)
		return 1;

	struct rs_walk_state *w = &b->w;
	struct dentry *d = w->dentry;
	struct mount *mnt = w->mnt;
	struct rs_dentry_head h;
	struct dentry *parent;

	if (rs_read_dentry(d, &h)) {
		w->flags |= RS_FILE_DISCONNECTED;
		w->done = 1;
		return 1;
	}
	parent = h.parent;
	if (!mnt) {
		/* No mount: stop at the superblock's root. */
		if (d == parent || !parent) {
			w->flags |= RS_FILE_SB_RELATIVE;
			w->done = 1;
			return 1;
		}
	} else if (d == w->mnt_root) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

		if (up == mnt || !up) {
			/* Root of the mount tree. A mount that is its own parent
			 * but has a namespace is the namespace root; without one
			 * it was detached (lazy umount, open_tree clone). */
			if (!BPF_CORE_READ(mnt, mnt_ns))
				w->flags |= RS_FILE_DETACHED;
			w->done = 1;
			return 1;
		}
		/* Cross to the mount point in the parent mount. */
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		w->mnt_root = BPF_CORE_READ(up, mnt.mnt_root);
		return 0;
	} else if (d == parent || !parent) {
		/* Not the mount root, yet its own parent: a disconnected dentry.
		 * The file itself (first step): a pseudo file on an internal mount
		 * (memfd_create, O_TMPFILE...) that no directory holds: its own
		 * name is all the kernel has (/proc shows "/memfd:NAME"). Deeper:
		 * the path is a suffix. */
		w->flags |= RS_FILE_DISCONNECTED;
		w->done = 1;
		if (i != 0 || !parent)
			return 1;
	}

	__u32 len = h.len;
	__u32 off = w->off;

	if (len > RS_NAME_MAX - 1)
		len = RS_NAME_MAX - 1;
	if (off > RS_PATH_BUF - 1 || off < len + 1) {
		w->flags |= RS_FILE_PATH_TRUNCATED;
		w->done = 1;
		return 1;
	}
	off -= len;
	bpf_probe_read_kernel(&b->data[off & (RS_PATH_BUF - 1)], len & (RS_NAME_MAX - 1), h.name);
	off -= 1;
	b->data[off & (RS_PATH_BUF - 1)] = '/';
	w->off = off;
	w->dentry = parent;
	return w->done ? 1 : 0;
}

/*
 * The walk of the path in path_buf's w (dentry, mnt, tail) into its data.
 * A global function: verified once per program, not inlined into (and
 * re-verified, bpf_loop callback included, at) each of a hook's call sites.
 * Its input comes through the map value, not as arguments: a global
 * function takes scalars, and the callers' kernel pointers may be BTF ones.
 * Returns 0, or -1 without the buffer.
 */
__noinline int rs_walk_buf(void)
{
	__u32 zero = 0;
	struct rs_path_buf *b = bpf_map_lookup_elem(&path_buf, &zero);
	__u32 off = RS_PATH_MAX - 1;
	struct mount *mnt;
	__u32 tail_len;

	if (!b)
		return -1;
	tail_len = b->w.tail_len;
	if (tail_len > RS_NAME_MAX - 1)
		tail_len = RS_NAME_MAX - 1;
	tail_len = RS_MASKED(tail_len, RS_NAME_MAX - 1);
	if (b->w.tail && tail_len) {
		off -= tail_len;
		bpf_probe_read_kernel(&b->data[off & (RS_PATH_BUF - 1)], tail_len, b->w.tail);
		off -= 1;
		b->data[off & (RS_PATH_BUF - 1)] = '/';
	}
	mnt = b->w.mnt;
	b->w.mnt_root = mnt ? BPF_CORE_READ(mnt, mnt.mnt_root) : NULL;
	/* The path ends at RS_PATH_MAX - 1, so it is at most RS_PATH_MAX - 1 long. */
	b->w.off = off;
	b->w.flags = 0;
	b->w.done = 0;
	bpf_loop(RS_PATH_DEPTH_MAX, rs_walk_step, NULL, 0);
	if (!b->w.done)
		b->w.flags |= RS_FILE_PATH_TRUNCATED;
	return 0;
}

/*
 * Walk from `dentry` (in `mnt`, or NULL: up to the superblock root) into the
 * per-CPU buffer, after a last component `tail` of `tail_len` bytes (kernel
 * memory; 0: none). Returns the buffer, the path at data[w.off, RS_PATH_MAX - 1).
 */
static __always_inline struct rs_path_buf *rs_walk(struct dentry *dentry, struct mount *mnt,
						   const char *tail, __u32 tail_len)
{
	__u32 zero = 0;
	struct rs_path_buf *b = bpf_map_lookup_elem(&path_buf, &zero);

	if (!b)
		return NULL;
	b->w.dentry = dentry;
	b->w.mnt = mnt;
	b->w.tail = tail;
	b->w.tail_len = tail_len;
	if (rs_walk_buf())
		return NULL;
	return b;
}

/* Copy the walked path into the record at *off as `f->path`. */
static __always_inline bool rs_emit_walk(void *rec, __u32 *off, struct rs_file *f, struct rs_path_buf *b)
{
	__u32 len, start;
	__u32 o = *off;

	f->flags |= b->w.flags;
	start = b->w.off;
	if (start > RS_PATH_MAX - 1)
		return true;
	len = (RS_PATH_MAX - 1) - start;
	if (len == 0) {
		/* The walk started at the root: the path is "/". */
		start -= 1;
		b->data[start & (RS_PATH_BUF - 1)] = '/';
		len = 1;
	}
	if (o > RS_RECORD_MAX - RS_PATH_MAX) {
		((struct rs_event_header *)rec)->flags |= RS_HDR_TRUNCATED;
		return false;
	}
	bpf_probe_read_kernel(rec + RS_REC_OFF(o), len & (RS_PATH_MAX - 1), &b->data[start & (RS_PATH_BUF - 1)]);
	f->path.off = o;
	f->path.len = len & (RS_PATH_MAX - 1);
	*off = o + f->path.len;
	return true;
}

/*
 * Resolve a struct path into `f->path`, appended to the record at *off.
 * Returns false when the record had no room for it.
 */
static __always_inline bool rs_resolve_path(void *rec, __u32 *off, struct rs_file *f,
					     struct dentry *dentry, struct vfsmount *vfsmnt)
{
	struct rs_path_buf *b;

	f->path.off = 0;
	f->path.len = 0;
	if (!dentry || !vfsmnt)
		return true;
	b = rs_walk(dentry, rs_real_mount(vfsmnt), NULL, 0);
	if (!b)
		return true;
	return rs_emit_walk(rec, off, f, b);
}

/* struct super_block's mounts: a singly linked list through
 * mount.mnt_next_for_sb (6.18), a list_head through mount.mnt_instance on
 * older kernels. */
struct super_block___old {
	struct list_head s_mounts;
} __attribute__((preserve_access_index));

struct mount___old {
	struct list_head mnt_instance;
} __attribute__((preserve_access_index));

#define RS_SB_MOUNTS_MAX 32     /* mounts of one superblock looked at */
#define RS_SB_CANDIDATES 8      /* of them in the caller's namespace, told apart by ancestry */
#define RS_COVER_DEPTH 512      /* levels walked up to find which mount roots are ancestors */

/* Mounts of one superblock in the caller's namespace, and which of their
 * roots are ancestors of a dentry (in a map value: the bpf_loop callback is
 * verified once). */
struct rs_cover_state {
	struct super_block *sb;       /* rs_sb_mount_find's input */
	struct dentry *dentry;
	struct mount *found;          /* and its answer */
	struct dentry *d;
	struct mount *mnt[RS_SB_CANDIDATES];
	struct dentry *root[RS_SB_CANDIDATES];
	__u32 n;
	__u32 covers;                 /* bit i: root[i] is an ancestor of (or is) the dentry */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_cover_state);
} cover_scratch SEC(".maps");

static __always_inline void rs_cover_add(struct rs_cover_state *c, struct mount *m, struct mnt_namespace *ns)
{
	__u32 n = c->n;

	if (BPF_CORE_READ(m, mnt_ns) != ns)
		return;
	if (n < RS_SB_CANDIDATES) {
		c->mnt[n & (RS_SB_CANDIDATES - 1)] = m;
		c->root[n & (RS_SB_CANDIDATES - 1)] = BPF_CORE_READ(m, mnt.mnt_root);
	}
	c->n = n + 1;
}

static long rs_cover_step(__u32 i, void *ctx)
{
	__u32 zero = 0;
	struct rs_cover_state *c = bpf_map_lookup_elem(&cover_scratch, &zero);
	struct dentry *d, *parent;

	if (!c || !c->d)
		return 1;
	/* through a local: BPF_CORE_READ(c->d, ...) would also relocate our own
	 * struct rs_cover_state, which no kernel's BTF knows */
	d = c->d;
#pragma unroll
	for (int j = 0; j < RS_SB_CANDIDATES; j++)
		if (j < c->n && c->root[j] == d)
			c->covers |= 1U << j;
	parent = BPF_CORE_READ(d, d_parent);
	if (!parent || parent == d) {
		c->d = NULL;
		return 1;
	}
	c->d = parent;
	return 0;
}

/*
 * The mount of a superblock in the calling task's mount namespace through
 * which `dentry` is reached: its only mount there, or, when it has several
 * (a bind mount of a subdirectory: /run/netns, a container's volume...), the
 * only one whose root is an ancestor of the dentry. NULL when none or
 * several qualify (the same tree visible through two mounts: user space
 * places the path with the caller's string) or past RS_SB_MOUNTS_MAX
 * mounts. A container's filesystems have one mount in the container's
 * namespace and one in the host's: the caller's namespace decides, as an
 * open's vfsmount would. `dentry` NULL: no disambiguation.
 */
static __always_inline struct mount *rs_sb_mount_search(struct rs_cover_state *c)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct mnt_namespace *ns = BPF_CORE_READ(task, nsproxy, mnt_ns);
	/* through locals: BPF_CORE_READ(c->sb, ...) would relocate our own struct */
	struct super_block *sb = c->sb;
	struct dentry *dentry = c->dentry;
	__u32 i, complete = 0;
	struct mount *found = NULL;

	c->n = 0;
	c->covers = 0;
	if (bpf_core_field_exists(struct mount, mnt_next_for_sb)) {
		struct mount *m = (struct mount *)BPF_CORE_READ(sb, s_mounts);

		for (i = 0; i < RS_SB_MOUNTS_MAX; i++) {
			if (!m) {
				complete = 1;
				break;
			}
			rs_cover_add(c, m, ns);
			m = BPF_CORE_READ(m, mnt_next_for_sb);
		}
	} else {
		struct super_block___old *osb = (void *)sb;
		struct list_head *head = &osb->s_mounts;
		struct list_head *pos = BPF_CORE_READ(osb, s_mounts.next);

		for (i = 0; i < RS_SB_MOUNTS_MAX; i++) {
			if (!pos || pos == head) {
				complete = 1;
				break;
			}
			rs_cover_add(c, (struct mount *)((void *)pos -
							 bpf_core_field_offset(struct mount___old, mnt_instance)), ns);
			pos = BPF_CORE_READ(pos, next);
		}
	}
	if (!complete || !c->n || c->n > RS_SB_CANDIDATES)
		return NULL;
	if (c->n == 1)
		return c->mnt[0];
	if (!dentry)
		return NULL;
	c->d = dentry;
	bpf_loop(RS_COVER_DEPTH, rs_cover_step, NULL, 0);
	if (c->d)
		return NULL;          /* deeper than RS_COVER_DEPTH: undecided */
#pragma unroll
	for (int j = 0; j < RS_SB_CANDIDATES; j++) {
		if (!(c->covers & (1U << j)))
			continue;
		if (found)
			return NULL;  /* reached through two mounts */
		found = c->mnt[j];
	}
	return found;
}

/*
 * rs_sb_mount_search with its input and answer in cover_scratch. A global
 * function: verified once per program, not inlined into (and re-verified,
 * its loops and bpf_loop callback included, at) each call site; its input
 * goes through the map value since a global function takes scalars only.
 */
__noinline int rs_sb_mount_find(void)
{
	__u32 zero = 0;
	struct rs_cover_state *c = bpf_map_lookup_elem(&cover_scratch, &zero);

	if (!c)
		return -1;
	c->found = rs_sb_mount_search(c);
	return 0;
}

static __always_inline struct mount *rs_sb_mount_for(struct super_block *sb, struct dentry *dentry)
{
	__u32 zero = 0;
	struct rs_cover_state *c = bpf_map_lookup_elem(&cover_scratch, &zero);

	if (!c)
		return NULL;
	c->sb = sb;
	c->dentry = dentry;
	c->found = NULL;
	if (rs_sb_mount_find())
		return NULL;
	return c->found;
}

static __always_inline struct mount *rs_sb_mount_in_ns(struct super_block *sb)
{
	return rs_sb_mount_for(sb, NULL);
}

/*
 * The path of `dentry` (+ `/tail` when tail_len > 0), through the mount of
 * its superblock in the caller's mount namespace when there is only one,
 * else relative to the superblock's root (RS_FILE_SB_RELATIVE). Sets
 * f->mount_id when the mount is known.
 */
static __always_inline bool rs_resolve_dentry(void *rec, __u32 *off, struct rs_file *f,
					       struct dentry *dentry, const char *tail, __u32 tail_len)
{
	struct mount *mnt;
	struct rs_path_buf *b;

	f->path.off = 0;
	f->path.len = 0;
	if (!dentry)
		return true;
	mnt = rs_sb_mount_for(BPF_CORE_READ(dentry, d_sb), dentry);
	if (mnt)
		f->mount_id = BPF_CORE_READ(mnt, mnt_id);
	else
		f->mount_id = 0;
	b = rs_walk(dentry, mnt, tail, tail_len);
	if (!b)
		return true;
	return rs_emit_walk(rec, off, f, b);
}

#define RS_OVERLAYFS_SUPER_MAGIC 0x794c7630
#define RS_NSEC_PER_SEC 1000000000ULL

/* struct inode's timestamps moved: i_ctime/i_mtime (<= 6.5), __i_ctime (6.6+),
 * __i_mtime (6.7 - 6.10), i_[cm]time_sec/_nsec (6.11+; bit 31 of
 * i_ctime_nsec is the multigrain "queried" flag, not part of the time). */
struct inode___old {
	struct timespec64 i_ctime;
	struct timespec64 __i_ctime;
	struct timespec64 i_mtime;
	struct timespec64 __i_mtime;
} __attribute__((preserve_access_index));

#define RS_TS_NS(ts) ((ts).tv_sec * RS_NSEC_PER_SEC + (ts).tv_nsec)

/* overlayfs: the file is on an overlay mount; the ovl inode knows whether
 * it has an upper-layer dentry (written or created in the container). */
static __always_inline void rs_fill_overlay(struct rs_file *f, struct inode *inode, unsigned long magic)
{
	if (magic != RS_OVERLAYFS_SUPER_MAGIC)
		return;
	f->flags |= RS_FILE_OVERLAY;
	if (bpf_core_type_exists(struct ovl_inode)) {
		struct ovl_inode *oi = (void *)inode - bpf_core_field_offset(struct ovl_inode, vfs_inode);

		if (BPF_CORE_READ(oi, __upperdentry))
			f->flags |= RS_FILE_UPPER_LAYER;
	}
}

static __always_inline void rs_fill_times(struct rs_file *f, struct inode *inode)
{
	struct inode___old *old = (void *)inode;

	if (bpf_core_field_exists(inode->i_ctime_sec))
		f->ctime_ns = BPF_CORE_READ(inode, i_ctime_sec) * RS_NSEC_PER_SEC +
			      (BPF_CORE_READ(inode, i_ctime_nsec) & ~(1U << 31));
	else if (bpf_core_field_exists(old->__i_ctime))
		f->ctime_ns = RS_TS_NS(BPF_CORE_READ(old, __i_ctime));
	else
		f->ctime_ns = RS_TS_NS(BPF_CORE_READ(old, i_ctime));

	if (bpf_core_field_exists(inode->i_mtime_sec))
		f->mtime_ns = BPF_CORE_READ(inode, i_mtime_sec) * RS_NSEC_PER_SEC +
			      BPF_CORE_READ(inode, i_mtime_nsec);
	else if (bpf_core_field_exists(old->__i_mtime))
		f->mtime_ns = RS_TS_NS(BPF_CORE_READ(old, __i_mtime));
	else
		f->mtime_ns = RS_TS_NS(BPF_CORE_READ(old, i_mtime));
}

/* Inode attributes, fs type and overlay layer of an inode. */
static __always_inline void rs_fill_inode_attrs(struct rs_file *f, struct inode *inode)
{
	struct super_block *sb = BPF_CORE_READ(inode, i_sb);
	const char *fsname = BPF_CORE_READ(sb, s_type, name);

	bpf_probe_read_kernel_str(f->fstype, sizeof(f->fstype), fsname);
	f->dev = BPF_CORE_READ(sb, s_dev);
	f->flags |= RS_FILE_PRESENT;
	f->inode = BPF_CORE_READ(inode, i_ino);
	f->mode = BPF_CORE_READ(inode, i_mode);
	f->uid = BPF_CORE_READ(inode, i_uid.val);
	f->gid = BPF_CORE_READ(inode, i_gid.val);
	f->nlink = BPF_CORE_READ(inode, __i_nlink);
	rs_fill_times(f, inode);
	rs_fill_overlay(f, inode, BPF_CORE_READ(sb, s_magic));
}

/* Inode attributes, fs type and overlay layer of a dentry's inode. */
static __always_inline void rs_fill_inode(struct rs_file *f, struct dentry *dentry)
{
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);
	struct super_block *sb = BPF_CORE_READ(dentry, d_sb);
	const char *fsname = BPF_CORE_READ(sb, s_type, name);

	if (inode) {
		rs_fill_inode_attrs(f, inode);
		return;
	}
	bpf_probe_read_kernel_str(f->fstype, sizeof(f->fstype), fsname);
	f->dev = BPF_CORE_READ(sb, s_dev);
}

/* Everything about the file behind a struct path. */
static __always_inline bool rs_fill_file(void *rec, __u32 *off, struct rs_file *f,
					 struct dentry *dentry, struct vfsmount *vfsmnt)
{
	struct mount *mnt;

	if (!dentry || !vfsmnt)
		return true;
	mnt = rs_real_mount(vfsmnt);
	f->mount_id = BPF_CORE_READ(mnt, mnt_id);
	rs_fill_inode(f, dentry);
	return rs_resolve_path(rec, off, f, dentry, vfsmnt);
}

#endif /* RS_PATH_H */
