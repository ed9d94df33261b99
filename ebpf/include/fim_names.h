/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fim_names.h - names compared with the caller's path string: its last
 * component, read from user memory into a per-CPU scratch, against a dentry's
 * d_name; the alias of a hard-linked inode named like the caller's path.
 * Loops are bpf_loop() callbacks with their cursors in the scratch map value.
 */
#ifndef RS_FIM_NAMES_H
#define RS_FIM_NAMES_H

#include "common.h"
#include "path.h"

#define RS_ALIAS_MAX 8          /* dentry aliases (hard links) compared per inode */
#define RS_TRAILING_SLASH_MAX 16

/* Per-CPU scratch for comparing names with the caller's string. The cursors
 * are bpf_loop() state: kept in the map value, the callbacks verify once. */
struct rs_fim_scratch {
	__u32 end;                    /* the string's length without trailing slashes */
	__u32 start;                  /* its last component starts here */
	__u32 cmp_len;
	__u32 mismatch;
	/* rs_fim_choose() */
	__u32 type;
	__u32 count;
	__u32 dev;
	__u32 last;
	__u32 best_seq;
	__u32 nondir;
	__u32 nondir_seq;
	__u32 dir;
	__u32 dir_seq;
	__u32 fresh;
	__u32 obj;
	__u32 obj2;
	__u32 overlay_seq;
	__u32 overlay_dev;
	char req[RS_PATH_MAX];
	char name[RS_NAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_fim_scratch);
} fim_scratch SEC(".maps");

static __always_inline struct dentry *rs_alias_dentry(struct hlist_node *node)
{
	return (struct dentry *)((void *)node - bpf_core_field_offset(struct dentry, d_u.d_alias));
}

static __always_inline struct rs_fim_scratch *rs_fim_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&fim_scratch, &zero);
}

static long rs_trailing_slash_step(__u32 i, void *ctx)
{
	struct rs_fim_scratch *s = rs_fim_scratch();

	if (!s || s->end <= 1 || s->req[(s->end - 1) & (RS_PATH_MAX - 1)] != '/')
		return 1;
	s->end -= 1;
	return 0;
}

static long rs_basename_step(__u32 i, void *ctx)
{
	struct rs_fim_scratch *s = rs_fim_scratch();

	if (!s || s->start == 0 || s->req[(s->start - 1) & (RS_PATH_MAX - 1)] == '/')
		return 1;
	s->start -= 1;
	return 0;
}

/*
 * The last component of the user string `ustr`, read into the per-CPU
 * scratch: returns its length (0: none, e.g. "/" or "") and leaves its start
 * in s->start. Trailing slashes are skipped ("dir/" names "dir").
 */
static __always_inline __u32 rs_user_basename(struct rs_fim_scratch *s, const char *ustr)
{
	long n;
	__u32 len;

	s->start = 0;
	if (!ustr)
		return 0;
	n = bpf_probe_read_user_str(s->req, sizeof(s->req), ustr);
	if (n <= 1)
		return 0;
	s->end = (__u32)n - 1;
	bpf_loop(RS_TRAILING_SLASH_MAX, rs_trailing_slash_step, NULL, 0);
	s->start = s->end;
	bpf_loop(RS_NAME_MAX, rs_basename_step, NULL, 0);
	len = s->end - s->start;
	if (len == 0 || len > RS_NAME_MAX - 1)
		return 0;
	return len;
}

static long rs_name_cmp_step(__u32 i, void *ctx)
{
	struct rs_fim_scratch *s = rs_fim_scratch();

	if (!s || i >= s->cmp_len)
		return 1;
	if (s->name[i & (RS_NAME_MAX - 1)] != s->req[(s->start + i) & (RS_PATH_MAX - 1)]) {
		s->mismatch = 1;
		return 1;
	}
	return 0;
}

/* d_name of `d` equals s->req[s->start, s->start + len). */
static __always_inline bool rs_name_equals(struct rs_fim_scratch *s, struct dentry *d, __u32 len)
{
	struct qstr q = BPF_CORE_READ(d, d_name);

	if (q.len != len || len > RS_NAME_MAX - 1)
		return false;
	if (bpf_probe_read_kernel(s->name, RS_MASKED(len, RS_NAME_MAX - 1), q.name))
		return false;
	s->cmp_len = len;
	s->mismatch = 0;
	bpf_loop(RS_NAME_MAX - 1, rs_name_cmp_step, NULL, 0);
	return !s->mismatch;
}

/* The alias of `inode` (not `exclude`) named like the last component of `ustr`. */
static __always_inline struct dentry *rs_alias_named(struct inode *inode, const char *ustr,
						     struct dentry *exclude)
{
	struct rs_fim_scratch *s = rs_fim_scratch();
	struct hlist_node *node;
	__u32 len, a;

	if (!s)
		return NULL;
	len = rs_user_basename(s, ustr);
	if (!len)
		return NULL;
	node = BPF_CORE_READ(inode, i_dentry.first);
	for (a = 0; a < RS_ALIAS_MAX; a++) {
		if (!node)
			break;
		struct dentry *d = rs_alias_dentry(node);

		if (d != exclude && rs_name_equals(s, d, len))
			return d;
		node = BPF_CORE_READ(node, next);
	}
	return NULL;
}

#endif /* RS_FIM_NAMES_H */
