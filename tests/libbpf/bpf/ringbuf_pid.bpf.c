// SPDX-License-Identifier: GPL-2.0
/* Fixture: getppid() of one process -> a ring-buffer record, plus maps of
 * several kinds for the CRUD tests. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "rb_event.h"

char LICENSE[] SEC("license") = "GPL";

/* set by the loader before load (.rodata) */
const volatile __u32 target_pid = 0;
const volatile __u64 magic = 0;
const volatile __u8 tag[16] = {};
/* writable at run time (.data / .bss) */
volatile __u32 enabled = 1;
__u64 hits = 0;
__u64 seq = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} hash_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} array_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} percpu_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} percpu_hash SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int handle_getppid(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rb_event *e;
	__u32 zero = 0;
	__u32 *pc;

	/* filter: only the process the loader named */
	if ((__u32)(id >> 32) != target_pid || !enabled)
		return 0;
	__sync_fetch_and_add(&hits, 1);
	/* per-CPU counter, so the per-CPU test sees one CPU's slot move */
	pc = bpf_map_lookup_elem(&percpu_map, &zero);
	if (pc)
		*pc += 1;
	/* reserve -> check -> fill -> submit */
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->magic = magic;
	e->seq = __sync_fetch_and_add(&seq, 1);
	/* element by element: each read of the volatile array is a real load */
	for (int i = 0; i < sizeof(e->tag); i++)
		e->tag[i] = tag[i];
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
