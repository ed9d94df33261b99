// SPDX-License-Identifier: GPL-2.0
/* Fixture: one program per attach kind this kernel has, each counting the
 * getppid() calls of target_pid. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define NR_GETPPID 110 /* x86_64 */

const volatile __u32 target_pid = 0;
__u64 tp_hits = 0, tp_btf_hits = 0, raw_tp_hits = 0;

static __always_inline bool mine(void)
{
	return (__u32)(bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int kinds_tp(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&tp_hits, 1);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(kinds_tp_btf, struct pt_regs *regs, long id)
{
	if (id == NR_GETPPID && mine())
		__sync_fetch_and_add(&tp_btf_hits, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(kinds_raw_tp, struct pt_regs *regs, long id)
{
	if (id == NR_GETPPID && mine())
		__sync_fetch_and_add(&raw_tp_hits, 1);
	return 0;
}
