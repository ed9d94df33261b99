// SPDX-License-Identifier: GPL-2.0
/* Fixture: compiles, but the verifier rejects it: a map value is used
 * without the NULL check (a hash map: for an array and a
 * constant in-range key, recent verifiers know the value is not NULL). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int vr_good(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int vr_bad(void *ctx)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&counters, &zero);

	*v += 1; /* no NULL check: rejected */
	return 0;
}
