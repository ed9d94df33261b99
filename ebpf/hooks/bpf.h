/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/bpf.h - the bpf(2) syscall, at its exit.
 *
 * The command decides first (value approvers on bpf.cmd: most bpf() calls
 * are map lookups of the programs already running). Then the objects:
 *  - a descriptor the call returned (BPF_PROG_LOAD, BPF_MAP_CREATE,
 *    BPF_OBJ_GET, *_GET_FD_BY_ID) or took (map_fd, prog_fd, bpf_fd,
 *    attach_bpf_fd of the command's part of union bpf_attr) names a kernel
 *    struct bpf_prog or struct bpf_map (the file's f_op tells which): its
 *    type, attach type, name, id and tag are the kernel's;
 *  - a BPF_PROG_LOAD or BPF_MAP_CREATE that failed has no object: its
 *    attributes come from the caller's union bpf_attr;
 *  - BPF_PROG_LOAD: the helpers the program calls, from its instructions in
 *    the caller's memory (BPF_CALL with src_reg 0: imm is the helper id);
 *    the kernel rewrites them during verification, so the loaded program
 *    no longer says. The caller's memory is read again at exit: a racing
 *    thread could change it in between (the kernel copied it at entry).
 */
#ifndef RS_HOOK_BPF_H
#define RS_HOOK_BPF_H

#include "common.h"
#include "filters.h"
#include "task.h"

/* A program's or a map's file is told by its f_op->release: text symbols,
 * in kallsyms on every kernel (bpf_prog_fops and bpf_map_fops are data,
 * listed only with CONFIG_KALLSYMS_ALL). Typeless: resolved from kallsyms. */
extern const void bpf_prog_release __ksym __weak;
extern const void bpf_map_release __ksym __weak;

#define RS_BPF_INSNS_MAX 65536        /* instructions scanned for helper calls */
#define RS_BPF_SCAN_CHUNK 32          /* instructions read per step */
#define RS_BPF_CALL_INSN (RS_BPF_JMP | RS_BPF_CALL)   /* opcode of a call */
#define RS_BPF_HELPER_IDS 256          /* ids the bitmap holds (4 x 64 bits) */

_Static_assert(sizeof(((struct rs_bpf_event *)0)->prog_name) == RS_BPF_OBJ_NAME_LEN, "prog_name size");

/* A bpf call's arguments, filled by its sys_exit wrapper (exits.h). */
struct rs_bpf_call {
	__u32 type;
	__u32 cmd;
	__u32 size;
	__u32 _pad;
	const void *attr;
};

static __always_inline void rs_bpf_call_init(struct rs_bpf_call *c, __u32 type)
{
	__builtin_memset(c, 0, sizeof(*c));
	c->type = type;
}

/* The helper scan's state (a map value: the bpf_loop callback is verified once). */
struct rs_bpf_scan {
	__u64 insns;                  /* user pointer */
	__u32 cnt;
	__u32 flags;                  /* RS_BPF_HELPERS_OTHER */
	__u64 helpers[4];
	struct bpf_insn buf[RS_BPF_SCAN_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_bpf_scan);
} bpf_scan SEC(".maps");

static long rs_bpf_scan_step(__u32 i, void *ctx)
{
	__u32 zero = 0, n, j, size;
	struct rs_bpf_scan *s = bpf_map_lookup_elem(&bpf_scan, &zero);
	__u64 first = (__u64)i * RS_BPF_SCAN_CHUNK;

	if (!s || first >= s->cnt)
		return 1;
	/* exactly the instructions left: reading past the array may fault */
	n = s->cnt - first < RS_BPF_SCAN_CHUNK ? s->cnt - first : RS_BPF_SCAN_CHUNK;
	size = n * sizeof(struct bpf_insn);
	if (size == 0 || size > sizeof(s->buf))
		return 1;
	if (bpf_probe_read_user(s->buf, size, (const void *)(s->insns + first * sizeof(struct bpf_insn))))
		return 1;
	for (j = 0; j < RS_BPF_SCAN_CHUNK; j++) {
		struct bpf_insn *insn = &s->buf[j];
		__u32 id;

		if (j >= n)
			break;
		if (insn->code != RS_BPF_CALL_INSN || insn->src_reg != 0)
			continue;
		id = (__u32)insn->imm;
		if (id < RS_BPF_HELPER_IDS)
			s->helpers[(id >> 6) & 3] |= 1ULL << (id & 63);
		else
			s->flags |= RS_BPF_HELPERS_OTHER;
	}
	return 0;
}

/* The helpers a program about to be loaded calls (its instructions in user memory). */
static __always_inline void rs_bpf_scan_helpers(struct rs_bpf_event *e, __u64 insns, __u32 cnt)
{
	__u32 zero = 0;
	struct rs_bpf_scan *s = bpf_map_lookup_elem(&bpf_scan, &zero);

	if (!s || !insns)
		return;
	s->insns = insns;
	s->cnt = cnt > RS_BPF_INSNS_MAX ? RS_BPF_INSNS_MAX : cnt;
	s->flags = 0;
	__builtin_memset(s->helpers, 0, sizeof(s->helpers));
	bpf_loop(RS_BPF_INSNS_MAX / RS_BPF_SCAN_CHUNK, rs_bpf_scan_step, NULL, 0);
	__builtin_memcpy(e->helpers, s->helpers, sizeof(e->helpers));
	e->bpf_flags |= RS_BPF_PROG | RS_BPF_HELPERS | s->flags;
	if (cnt > RS_BPF_INSNS_MAX)
		e->bpf_flags |= RS_BPF_HELPERS_TRUNCATED;
}

/* A program's attributes from the kernel's object. */
static __always_inline void rs_bpf_fill_prog(struct rs_bpf_event *e, struct bpf_prog *prog)
{
	struct bpf_prog_aux *aux = BPF_CORE_READ(prog, aux);

	e->prog_type = BPF_CORE_READ(prog, type);
	e->prog_attach_type = BPF_CORE_READ(prog, expected_attach_type);
	e->prog_id = BPF_CORE_READ(aux, id);
	bpf_probe_read_kernel(e->prog_name, sizeof(e->prog_name), &aux->name);
	bpf_probe_read_kernel(e->prog_tag, sizeof(e->prog_tag), &prog->tag);
	e->bpf_flags |= RS_BPF_PROG | RS_BPF_PROG_KERNEL;
}

static __always_inline void rs_bpf_fill_map(struct rs_bpf_event *e, struct bpf_map *map)
{
	e->map_type = BPF_CORE_READ(map, map_type);
	e->map_id = BPF_CORE_READ(map, id);
	bpf_probe_read_kernel(e->map_name, sizeof(e->map_name), &map->name);
	e->bpf_flags |= RS_BPF_MAP | RS_BPF_MAP_KERNEL;
}

/* The program or map behind one of the caller's descriptors, if it is one. */
static __always_inline void rs_bpf_fill_fd(struct rs_bpf_event *e, struct task_struct *task, long fd)
{
	struct file *file;
	const void *release;
	void *obj;

	if (fd < 0)
		return;
	file = rs_fd_file(task, fd);
	if (!file)
		return;
	release = BPF_CORE_READ(file, f_op, release);
	obj = BPF_CORE_READ(file, private_data);
	if (!obj || !release)
		return;
	if (release == &bpf_prog_release && !(e->bpf_flags & RS_BPF_PROG_KERNEL))
		rs_bpf_fill_prog(e, obj);
	else if (release == &bpf_map_release && !(e->bpf_flags & RS_BPF_MAP_KERNEL))
		rs_bpf_fill_map(e, obj);
}

/* A 32-bit descriptor field of the caller's union bpf_attr (-1: unreadable). */
#define RS_BPF_ATTR_FD(attr, field)                                                     \
	({                                                                              \
		__u32 __fd = 0;                                                         \
		bpf_core_read_user(&__fd, sizeof(__fd), &((union bpf_attr *)(attr))->field) \
			? -1L : (long)(int)__fd;                                        \
	})

static __always_inline int rs_bpf_exit(struct trace_event_raw_sys_exit *ctx, struct rs_bpf_call *c)
{
	struct task_struct *task;
	const union bpf_attr *attr = c->attr;
	struct rs_bpf_event *e;
	long ret = ctx->ret;
	void *rec;

	if (!rs_type_sends(c->type) || rs_is_self())
		return 0;
	RS_STAT_INC(c->type, seen);
	if (!rs_filter_scalar(c->type, c->cmd, 0))
		return 0;
	rec = rs_record();
	if (!rec)
		return 0;
	task = bpf_get_current_task_btf();
	e = rec;
	__builtin_memset(e, 0, sizeof(*e));
	rs_fill_header(&e->hdr, c->type);
	rs_fill_proc(&e->proc, task);
	e->retval = ret;
	e->cmd = c->cmd;

	switch (c->cmd) {
	case BPF_PROG_LOAD: {
		__u64 insns = 0;
		__u32 cnt = 0;

		bpf_core_read_user(&cnt, sizeof(cnt), &attr->insn_cnt);
		bpf_core_read_user(&insns, sizeof(insns), &attr->insns);
		e->insn_cnt = cnt;
		rs_bpf_scan_helpers(e, insns, cnt);
		if (ret >= 0)
			rs_bpf_fill_fd(e, task, ret);
		if (!(e->bpf_flags & RS_BPF_PROG_KERNEL)) {
			/* no program (refused), or not found: what the caller asked for */
			bpf_core_read_user(&e->prog_type, sizeof(e->prog_type), &attr->prog_type);
			bpf_core_read_user(&e->prog_attach_type, sizeof(e->prog_attach_type), &attr->expected_attach_type);
			bpf_core_read_user(e->prog_name, sizeof(e->prog_name), &attr->prog_name);
			e->bpf_flags |= RS_BPF_PROG;
		}
		break;
	}
	case BPF_MAP_CREATE:
		if (ret >= 0)
			rs_bpf_fill_fd(e, task, ret);
		if (!(e->bpf_flags & RS_BPF_MAP_KERNEL)) {
			bpf_core_read_user(&e->map_type, sizeof(e->map_type), &attr->map_type);
			bpf_core_read_user(e->map_name, sizeof(e->map_name), &attr->map_name);
			e->bpf_flags |= RS_BPF_MAP;
		}
		break;
	case BPF_OBJ_GET:
	case BPF_PROG_GET_FD_BY_ID:
	case BPF_MAP_GET_FD_BY_ID:
		if (ret >= 0)
			rs_bpf_fill_fd(e, task, ret);
		break;
	case BPF_MAP_LOOKUP_ELEM:
	case BPF_MAP_UPDATE_ELEM:
	case BPF_MAP_DELETE_ELEM:
	case BPF_MAP_GET_NEXT_KEY:
	case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
	case BPF_MAP_FREEZE:
		rs_bpf_fill_fd(e, task, RS_BPF_ATTR_FD(attr, map_fd));
		break;
	case BPF_MAP_LOOKUP_BATCH:
	case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
	case BPF_MAP_UPDATE_BATCH:
	case BPF_MAP_DELETE_BATCH:
		rs_bpf_fill_fd(e, task, RS_BPF_ATTR_FD(attr, batch.map_fd));
		break;
	case BPF_OBJ_PIN:
		rs_bpf_fill_fd(e, task, RS_BPF_ATTR_FD(attr, bpf_fd));
		break;
	case BPF_OBJ_GET_INFO_BY_FD:
		rs_bpf_fill_fd(e, task, RS_BPF_ATTR_FD(attr, info.bpf_fd));
		break;
	case BPF_PROG_ATTACH:
	case BPF_PROG_DETACH:
		rs_bpf_fill_fd(e, task, RS_BPF_ATTR_FD(attr, attach_bpf_fd));
		if (e->bpf_flags & RS_BPF_PROG)
			bpf_core_read_user(&e->prog_attach_type, sizeof(e->prog_attach_type), &attr->attach_type);
		break;
	case BPF_PROG_TEST_RUN:
		rs_bpf_fill_fd(e, task, RS_BPF_ATTR_FD(attr, test.prog_fd));
		break;
	case BPF_RAW_TRACEPOINT_OPEN:
		rs_bpf_fill_fd(e, task, RS_BPF_ATTR_FD(attr, raw_tracepoint.prog_fd));
		break;
	case BPF_LINK_CREATE:
		rs_bpf_fill_fd(e, task, RS_BPF_ATTR_FD(attr, link_create.prog_fd));
		if (e->bpf_flags & RS_BPF_PROG)
			bpf_core_read_user(&e->prog_attach_type, sizeof(e->prog_attach_type),
					   &attr->link_create.attach_type);
		break;
	case BPF_LINK_UPDATE:
		rs_bpf_fill_fd(e, task, RS_BPF_ATTR_FD(attr, link_update.new_prog_fd));
		break;
	case BPF_PROG_BIND_MAP:
		rs_bpf_fill_fd(e, task, RS_BPF_ATTR_FD(attr, prog_bind_map.prog_fd));
		rs_bpf_fill_fd(e, task, RS_BPF_ATTR_FD(attr, prog_bind_map.map_fd));
		break;
	}
	rs_submit(rec, sizeof(*e));
	return 0;
}

#endif /* RS_HOOK_BPF_H */
