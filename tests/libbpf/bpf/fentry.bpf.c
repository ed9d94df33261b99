// SPDX-License-Identifier: GPL-2.0
/* Fixture: an fentry program (EPERM on the development kernel, which has
 * no BPF trampolines) next to a tracepoint program that loads fine. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/syscalls/sys_enter_getppid")
int fe_ok(void *ctx)
{
	return 0;
}

SEC("fentry/do_nanosleep")
int BPF_PROG(fe_nanosleep, void *t)
{
	return 0;
}
