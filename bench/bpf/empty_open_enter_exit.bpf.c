/* The floor for `rsagent run` on open: empty programs on sys_enter AND sys_exit
 * of every open syscall (what a classic enter/exit syscall probe costs),
 * plus the scheduler hooks the agent always attaches. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/syscalls/sys_enter_open") int empty_enter_open(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_open") int empty_exit_open(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_enter_openat") int empty_enter_openat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_openat") int empty_exit_openat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_enter_openat2") int empty_enter_openat2(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_openat2") int empty_exit_openat2(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_enter_creat") int empty_enter_creat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_creat") int empty_exit_creat(void *ctx) { return 0; }
SEC("tp_btf/sched_process_exec") int BPF_PROG(empty_exec) { return 0; }
SEC("tp_btf/sched_process_fork") int BPF_PROG(empty_fork) { return 0; }
SEC("tp_btf/sched_process_exit") int BPF_PROG(empty_exit) { return 0; }
