// SPDX-License-Identifier: GPL-2.0
/* Fixture: five programs that all load; the third names a tracepoint that
 * does not exist, so attaching it fails (ENOENT) after two succeeded. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 calls = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int rbk_p1(void *ctx) { __sync_fetch_and_add(&calls, 1); return 0; }

SEC("tracepoint/syscalls/sys_enter_getpid")
int rbk_p2(void *ctx) { __sync_fetch_and_add(&calls, 1); return 0; }

SEC("tracepoint/syscalls/sys_enter_no_such_syscall")
int rbk_p3(void *ctx) { __sync_fetch_and_add(&calls, 1); return 0; }

SEC("tracepoint/syscalls/sys_enter_getuid")
int rbk_p4(void *ctx) { __sync_fetch_and_add(&calls, 1); return 0; }

SEC("tracepoint/syscalls/sys_enter_getgid")
int rbk_p5(void *ctx) { __sync_fetch_and_add(&calls, 1); return 0; }
