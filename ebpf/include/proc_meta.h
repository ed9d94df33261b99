/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * proc_meta.h - what a process is besides its credentials: controlling tty,
 * container id, kernel-thread flag (struct rs_task_meta), filled at exec and
 * fork.
 *
 * Container id, resolved in the kernel: container runtimes name the cgroup of
 * a container after its 64-hex-digit id, either as the whole name
 * (`/docker/<id>`, `/kubepods/burstable/pod<uid>/<id>`, `/ecs/<task>/<id>`)
 * or as a systemd scope (`docker-<id>.scope`, `cri-containerd-<id>.scope`,
 * `crio-<id>.scope`, `libpod-<id>.scope`; `*-conmon-<id>.scope` is the
 * runtime's monitor, not the container). The walk tests the task's cgroup in
 * the default (v2) hierarchy, then in every v1 hierarchy not already seen,
 * each from the leaf up to RS_CGROUP_DEPTH levels (so sub-cgroups a container
 * makes inside itself still resolve), and stops at the first match.
 * It is done in the kernel, not from /proc/PID/cgroup in user space, because
 * the process may be gone by the time user space decodes the record (a
 * short-lived process in a container is the common case). The cost is
 * bounded: at most RS_CGROUP_WALK_MAX name reads per exec or fork; user
 * space caches nothing per cgroup for events (the id rides on the process
 * image), only for /proc snapshots.
 */
#ifndef RS_PROC_META_H
#define RS_PROC_META_H

#include "common.h"

#define RS_CGROUP_DEPTH 16           /* levels walked up from each leaf */
#define RS_CGROUP_HIERARCHIES 16     /* bound on CGROUP_SUBSYS_COUNT */
#define RS_CGROUP_WALK_MAX ((RS_CGROUP_HIERARCHIES + 1) * (RS_CGROUP_DEPTH + 1))
#define RS_CGROUP_NAME 128           /* longest cgroup name tested */
#define RS_CID_HEX 64

/* Walk state in a map value: the bpf_loop callback is verified once. */
struct rs_cgroup_walk {
	struct css_set *cset;
	struct cgroup *cur;          /* next cgroup to test; NULL: take the next hierarchy */
	void *dfl_root;              /* struct cgroup_root of the default hierarchy */
	void *seen[RS_CGROUP_HIERARCHIES]; /* v1 roots already walked */
	__u32 next_subsys;
	__u32 nr_subsys;
	__u32 depth;
	__u32 found;
	char name[2 * RS_CGROUP_NAME];     /* slack: masked offsets stay inside */
	char id[RS_CONTAINER_ID_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_cgroup_walk);
} cgroup_walk SEC(".maps");

#define RS_NAME_AT(w, i) ((w)->name[(i) & (2 * RS_CGROUP_NAME - 1)])

static __always_inline bool rs_is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Does the cgroup name in w->name (n bytes) carry a container id? */
static __always_inline bool rs_match_container(struct rs_cgroup_walk *w, __u32 n)
{
	__u32 start, k;

	if (n == RS_CID_HEX) {
		start = 0;
	} else if (n >= RS_CID_HEX + 7 && n < RS_CGROUP_NAME &&
		   RS_NAME_AT(w, n - 6) == '.' && RS_NAME_AT(w, n - 5) == 's' &&
		   RS_NAME_AT(w, n - 4) == 'c' && RS_NAME_AT(w, n - 3) == 'o' &&
		   RS_NAME_AT(w, n - 2) == 'p' && RS_NAME_AT(w, n - 1) == 'e' &&
		   RS_NAME_AT(w, n - 71) == '-') {
		start = n - 70;
		/* "<runtime>-conmon-<id>.scope": the monitor process, not the container */
		if (n >= RS_CID_HEX + 13 && RS_NAME_AT(w, n - 77) == 'c' &&
		    RS_NAME_AT(w, n - 76) == 'o' && RS_NAME_AT(w, n - 75) == 'n' &&
		    RS_NAME_AT(w, n - 74) == 'm' && RS_NAME_AT(w, n - 73) == 'o' &&
		    RS_NAME_AT(w, n - 72) == 'n')
			return false;
	} else {
		return false;
	}
	for (k = 0; k < RS_CID_HEX; k++)
		if (!rs_is_lower_hex(RS_NAME_AT(w, start + k)))
			return false;
	for (k = 0; k < RS_CID_HEX; k++)
		w->id[k] = RS_NAME_AT(w, start + k);
	w->id[RS_CID_HEX] = 0;
	return true;
}

static long rs_cgroup_step(__u32 i, void *ctx)
{
	__u32 zero = 0;
	struct rs_cgroup_walk *w = bpf_map_lookup_elem(&cgroup_walk, &zero);
	struct cgroup *cg;
	long n;

	if (!w)
		return 1;
	cg = w->cur;
	if (!cg) {
		/* Next v1 hierarchy: css_set->subsys[idx]->cgroup, unless it is
		 * on the default hierarchy (already walked) or its root was seen. */
		struct cgroup_subsys_state *css = NULL;
		__u32 idx = w->next_subsys;
		void *root;
		__u32 j;

		if (idx >= w->nr_subsys || idx >= RS_CGROUP_HIERARCHIES)
			return 1;
		w->next_subsys = idx + 1;
		struct css_set *cset = w->cset;

		bpf_core_read(&css, sizeof(css), &cset->subsys[idx]);
		cg = BPF_CORE_READ(css, cgroup);
		if (!cg)
			return 0;
		root = BPF_CORE_READ(cg, root);
		if (root == w->dfl_root)
			return 0;
		for (j = 0; j < RS_CGROUP_HIERARCHIES; j++)
			if (j < idx && w->seen[j] == root)
				return 0;
		w->seen[idx & (RS_CGROUP_HIERARCHIES - 1)] = root;
		w->cur = cg;
		w->depth = 0;
		return 0;
	}
	/* The root cgroup (level 0) has no name worth testing. */
	if (BPF_CORE_READ(cg, level) <= 0 || w->depth >= RS_CGROUP_DEPTH) {
		w->cur = NULL;
		return 0;
	}
	n = bpf_probe_read_kernel_str(w->name, RS_CGROUP_NAME, BPF_CORE_READ(cg, kn, name));
	if (n > 1 && rs_match_container(w, n - 1)) {
		w->found = 1;
		return 1;
	}
	w->cur = BPF_CORE_READ(cg, self.parent, cgroup);
	w->depth += 1;
	return 0;
}

/* The container id of `task` into out (RS_CONTAINER_ID_LEN bytes, NUL-terminated). */
static __always_inline void rs_container_id(struct task_struct *task, char *out)
{
	__u32 zero = 0;
	struct rs_cgroup_walk *w = bpf_map_lookup_elem(&cgroup_walk, &zero);
	__u32 nr = bpf_core_enum_value(enum cgroup_subsys_id, CGROUP_SUBSYS_COUNT);
	struct css_set *cset;
	struct cgroup *dfl;

	out[0] = 0;
	if (!w)
		return;
	cset = BPF_CORE_READ(task, cgroups);
	w->cset = cset;
	dfl = BPF_CORE_READ(cset, dfl_cgrp);
	w->cur = dfl;
	w->dfl_root = BPF_CORE_READ(dfl, root);
	w->next_subsys = 0;
	w->nr_subsys = nr < RS_CGROUP_HIERARCHIES ? nr : RS_CGROUP_HIERARCHIES;
	w->depth = 0;
	w->found = 0;
	bpf_loop(RS_CGROUP_WALK_MAX, rs_cgroup_step, NULL, 0);
	if (w->found)
		bpf_probe_read_kernel(out, RS_CONTAINER_ID_LEN, w->id);
}

static __always_inline void rs_fill_meta(struct rs_task_meta *m, struct task_struct *task)
{
	struct tty_struct *tty = BPF_CORE_READ(task, signal, tty);

	m->tty_name[0] = 0;
	if (tty)
		bpf_core_read_str(m->tty_name, sizeof(m->tty_name), &tty->name);
	m->task_flags = (BPF_CORE_READ(task, flags) & RS_PF_KTHREAD) ? RS_TASK_KTHREAD : 0;
	/* without CONFIG_AUDIT the kernel reports every login uid unset (INVALID_UID) */
	m->loginuid = bpf_core_field_exists(task->loginuid) ? BPF_CORE_READ(task, loginuid.val) : (__u32)-1;
	m->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	rs_container_id(task, m->container_id);
}

#endif /* RS_PROC_META_H */
