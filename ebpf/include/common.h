/* SPDX-License-Identifier: GPL-2.0-only */
/* common.h - maps and helpers shared by every hook: the ring buffer, scratch
 * records, per-type counters, the calling task's context. */
#ifndef RS_COMMON_H
#define RS_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.h"
#include "syscall_table.h"  /* generated: the syscall ABI and the table's syscalls */

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* Set by the loader before load. */
const volatile __u32 rs_agent_tgid = 0;   /* our own process: never reported */
/* Bit (1 << enum rs_event_type) set for each event type the policy needs;
 * hooks shared by several types (the ctime tracepoints) test it. */
const volatile __u64 rs_event_mask = ~0ULL;

static __always_inline bool rs_type_enabled(__u32 type)
{
	return (rs_event_mask >> (type & 63)) & 1;
}

/* Bit set for each event type whose records user space wants. A type hooked
 * but not sent (rename, unlink, rmdir, link, mount, umount while only
 * discarders need them) still keeps the in-kernel filters right: tombstones
 * and the discarders revision. */
const volatile __u64 rs_send_mask = ~0ULL;

/* policy.h: whether the object sends the type at all (a constant per call
 * site, so a type hooked only for the filters compiles without a record) */
static __always_inline bool rs_policy_sends(__u32 type);

static __always_inline bool rs_type_sends(__u32 type)
{
	return rs_policy_sends(type) && ((rs_send_mask >> (type & 63)) & 1);
}

/* Events to user space. Sizes set by the loader (bpf_map__set_max_entries).
 * Lifecycle events (RS_LIFECYCLE_TYPES, the table's `lifecycle` types: exec,
 * fork, exit, the credential changes setuid/setgid/capset and prctl, whose
 * PR_SET_NAME renames) have their own buffer, which user space reads first:
 * a storm of file events can fill `events` without costing the process
 * cache a single fork, credential change or name. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} lifecycle_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RS_EVENT_TYPE_MAX);
	__type(key, __u32);
	__type(value, struct rs_type_stats);
} type_stats SEC(".maps");

/* One record under construction per CPU. Programs on these hooks run with
 * preemption disabled, so a CPU never builds two records at once. */
struct rs_record_buf {
	/* Twice the largest record: an offset masked with RS_RECORD_MAX - 1 plus
	 * a bounded length always stays inside, whatever the compiler does to
	 * the bound checks the verifier sees. */
	__u8 data[2 * RS_RECORD_MAX];
};

/* Offset into a record, masked for the verifier (the logic checks bounds first). */
#define RS_REC_OFF(o) ((o) & (RS_RECORD_MAX - 1))

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_record_buf);
} record_buf SEC(".maps");

static __always_inline struct rs_type_stats *rs_stats(__u32 type)
{
	return bpf_map_lookup_elem(&type_stats, &type);
}

#define RS_STAT_INC(type, field)                                    \
	do {                                                        \
		struct rs_type_stats *__s = rs_stats(type);         \
		if (__s)                                            \
			__s->field += 1; /* per-CPU: no atomics */  \
	} while (0)

static __always_inline void *rs_record(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&record_buf, &zero);
}

/* True for our own agent's threads: their file activity is not reported. */
/* This object's generation (set by the loader; 0: the only one, no handoff). */
const volatile __u32 rs_generation = 0;

/* Shared between the generations: the new object reuses the old one's map. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_handoff);
} handoff SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);                     /* tid */
	__type(value, struct rs_handoff_task);
} handoff_tasks SEC(".maps");

/*
 * Whether this hook invocation is another generation's to report, while a
 * reload hands the events over from the attached object (generation N) to
 * a new one (N + 1) attached beside it. Each hook runs in attach order, the
 * old object's program then the new one's, for the same invocation, on the
 * same task; user space flips `gen` from N to N + 1 at one instant. An
 * invocation is reported by N if N's program saw gen == N, else by N + 1:
 * N marks the task (site, gen) when it takes one during the handoff, and
 * N + 1, seeing the mark of its own call site, leaves it. Outside a handoff
 * (incoming == 0) it costs one array lookup.
 */
/* A global function: verified once, not inlined into (and re-verified in)
 * every hook; returns nonzero when the invocation is not ours. */
__noinline int rs_other_generation(__u32 site)
{
	__u32 zero = 0, tid;
	struct rs_handoff *h = bpf_map_lookup_elem(&handoff, &zero);
	struct rs_handoff_task *t, mark;
	__u64 gen, incoming;

	if (!h)
		return false;
	gen = *(volatile __u64 *)&h->gen;
	incoming = *(volatile __u64 *)&h->incoming;
	if (!incoming)
		return gen && gen != rs_generation;
	tid = (__u32)bpf_get_current_pid_tgid();
	if (rs_generation == incoming - 1) {            /* the outgoing object */
		if (gen != rs_generation)
			return true;
		mark.site = site;
		mark.gen = rs_generation;
		bpf_map_update_elem(&handoff_tasks, &tid, &mark, BPF_ANY);
		return false;
	}
	if (rs_generation != incoming)
		return true;                            /* neither: a leftover */
	t = bpf_map_lookup_elem(&handoff_tasks, &tid);
	if (gen != rs_generation) {                     /* not ours yet: N took it */
		if (t)
			bpf_map_delete_elem(&handoff_tasks, &tid);
		return true;
	}
	if (t && t->site == site && t->gen == rs_generation - 1) {
		bpf_map_delete_elem(&handoff_tasks, &tid);
		return true;                            /* N took this very invocation */
	}
	if (t)
		bpf_map_delete_elem(&handoff_tasks, &tid);
	return false;
}

static __always_inline bool rs_is_self_at(__u32 site)
{
	if (rs_agent_tgid && (bpf_get_current_pid_tgid() >> 32) == rs_agent_tgid)
		return true;
	return rs_other_generation(site);
}

/*
 * Not ours to report: the agent itself, or another generation's turn.
 * Every hook calls it once per invocation, before any work (its line tells
 * the generations' marks apart).
 */
#define rs_is_self() rs_is_self_at(__LINE__)

static __always_inline void rs_fill_header(struct rs_event_header *hdr, __u32 type)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	hdr->type = type;
	hdr->size = 0;
	hdr->timestamp = bpf_ktime_get_boot_ns();
	hdr->pid = pid_tgid >> 32;
	hdr->tid = (__u32)pid_tgid;
	hdr->cpu = bpf_get_smp_processor_id();
	hdr->flags = (rs_generation & 1) ? RS_HDR_GEN_ODD : 0;
}

/*
 * `task` is a BTF pointer (bpf_get_current_task_btf() or a tp_btf argument):
 * fields are read with direct loads, which the verifier turns into inline
 * fault-safe loads (~1 ns) instead of bpf_probe_read_kernel calls (~30 ns).
 * CO-RE relocates every offset.
 */
/* The task's lineage and credentials (every field but cgroup_id and comm). */
static __always_inline void rs_fill_proc_creds(struct rs_proc_ctx *p, struct task_struct *task)
{
	const struct cred *cred = task->cred;

	p->ppid = task->real_parent->tgid;
	p->uid = cred->uid.val;
	p->gid = cred->gid.val;
	p->euid = cred->euid.val;
	p->egid = cred->egid.val;
	p->fsuid = cred->fsuid.val;
	p->fsgid = cred->fsgid.val;
	p->_pad0 = 0;
	/* kernel_cap_t is a struct { u64 val; } since 6.3 and { u32 cap[2]; } before */
	bpf_core_read(&p->cap_effective, sizeof(p->cap_effective), &cred->cap_effective);
	bpf_core_read(&p->cap_permitted, sizeof(p->cap_permitted), &cred->cap_permitted);
	p->start_time = task->group_leader->start_boottime;
}

static __always_inline void rs_fill_proc(struct rs_proc_ctx *p, struct task_struct *task)
{
	rs_fill_proc_creds(p, task);
	p->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(p->comm, sizeof(p->comm));
}

/* What every record begins with (events.h: each record struct's first two members). */
struct rs_record_start {
	struct rs_event_header hdr;
	struct rs_proc_ctx proc;
};

/*
 * A record of struct T begun in the per-CPU buffer: its fixed part zeroed,
 * the header of `type` and the calling task's context filled. NULL when the
 * buffer cannot be had. The size is a constant (sizeof), so the zeroing is
 * inlined stores.
 */
#define rs_record_begin(T, type, task) ({							\
	_Static_assert(__builtin_offsetof(T, proc) == __builtin_offsetof(struct rs_record_start, proc),	\
		       #T " must begin with its header and process context");				\
	(T *)rs_record_begin_sized(sizeof(T), (type), (task));						\
})

static __always_inline void *rs_record_begin_sized(__u32 size, __u32 type, struct task_struct *task)
{
	struct rs_record_start *r = rs_record();

	if (!r)
		return NULL;
	__builtin_memset(r, 0, size);
	rs_fill_header(&r->hdr, type);
	rs_fill_proc(&r->proc, task);
	return r;
}

/* Round a record size up to 8 and bound it for the verifier. */
static __always_inline __u32 rs_record_size(__u32 size)
{
	size = (size + 7) & ~7U;
	if (size > RS_RECORD_MAX)
		size = RS_RECORD_MAX;
	return size;
}

/*
 * Wake-up batching. A wake-up of the consumer per record costs ~10 us of the
 * producing task's time on this VM (irq_work; bench/README.md, "Process
 * monitoring"). A record is written without one unless it takes the ring's
 * unread data across a multiple of 1/RS_WAKEUP_FRACTION of the ring: a burst
 * wakes the consumer a few times per ring's worth, not once per record (a
 * crossing missed in a race between CPUs is caught at the next one). A lone
 * record waits for the consumer's bounded poll timeout (the runtime's
 * poll_timeout_ms), which it consumes after whether or not it was woken.
 */
#define RS_WAKEUP_FRACTION 8

static __always_inline __u64 rs_wakeup_flags(void *ring, __u32 size)
{
	__u64 step = bpf_ringbuf_query(ring, BPF_RB_RING_SIZE) / RS_WAKEUP_FRACTION;
	__u64 avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);

	if (step == 0 || avail / step != (avail + size) / step)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Write a finished record; count it as sent or lost. */
static __always_inline void rs_submit(void *rec, __u32 size)
{
	struct rs_event_header *hdr = rec;
	__u32 type = hdr->type;
	long err;

	size = rs_record_size(size);
	hdr->size = size;
	if ((RS_LIFECYCLE_TYPES >> (type & 63)) & 1)
		err = bpf_ringbuf_output(&lifecycle_events, rec, size,
					 rs_wakeup_flags(&lifecycle_events, size));
	else
		err = bpf_ringbuf_output(&events, rec, size, rs_wakeup_flags(&events, size));
	if (err == 0)
		RS_STAT_INC(type, sent);
	else
		RS_STAT_INC(type, lost);
}

/*
 * Append a NUL-free string at *off in the record and describe it in *s.
 * The source is in kernel (user = false) or user memory; at most `max` bytes.
 * Returns false when it did not fit (the record gets RS_HDR_TRUNCATED).
 */
static __always_inline bool rs_append_str(void *rec, __u32 *off, struct rs_str *s,
					  const void *src, bool user)
{
	__u32 o = *off;
	long n;

	s->off = 0;
	s->len = 0;
	if (!src)
		return true;
	if (o > RS_RECORD_MAX - RS_PATH_MAX) {
		((struct rs_event_header *)rec)->flags |= RS_HDR_TRUNCATED;
		return false;
	}
	if (user)
		n = bpf_probe_read_user_str(rec + RS_REC_OFF(o), RS_PATH_MAX, src);
	else
		n = bpf_probe_read_kernel_str(rec + RS_REC_OFF(o), RS_PATH_MAX, src);
	if (n <= 0)
		return true;
	s->off = o;
	s->len = n - 1;
	*off = o + n;
	return true;
}

/*
 * Append `len` bytes of user memory (len < RS_ARGS_MAX) at *off.
 * Returns false when it did not fit or could not be read.
 */
static __always_inline bool rs_append_user_bytes(void *rec, __u32 *off, struct rs_str *s,
						 const void *src, __u32 len)
{
	__u32 o = *off;

	s->off = 0;
	s->len = 0;
	if (o > RS_RECORD_MAX - RS_ARGS_MAX) {
		((struct rs_event_header *)rec)->flags |= RS_HDR_TRUNCATED;
		return false;
	}
	len &= RS_ARGS_MAX - 1;
	if (!len || bpf_probe_read_user(rec + RS_REC_OFF(o), len, src) != 0)
		return false;
	s->off = o;
	s->len = len;
	*off = o + len;
	return true;
}

#endif /* RS_COMMON_H */
