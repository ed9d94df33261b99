/* SPDX-License-Identifier: GPL-2.0-only */
/* The floor of the network benchmark: empty programs on exactly the hooks
 * the network event types use (the socket calls' sys_exit tracepoints and a
 * tc egress classifier that passes every packet on). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/syscalls/sys_exit_connect")
int empty_connect(void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_exit_bind")
int empty_bind(void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_exit_accept")
int empty_accept(void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_exit_accept4")
int empty_accept4(void *ctx) { return 0; }

SEC("tc")
int empty_tc(struct __sk_buff *skb) { return -1; /* TC_ACT_UNSPEC */ }
