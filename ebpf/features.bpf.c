/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * features.bpf.c - one tiny program per hook kind, each loaded and attached
 * on its own by `rsagent probe` to learn what this kernel really allows.
 * Every program only counts a hit, so loading one has no side effect.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

__u64 hits = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int feat_tracepoint(void *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(feat_tp_btf, struct task_struct *parent, struct task_struct *child)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int feat_raw_tp(void *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

/* The timestamp group (6.13+) names the inode a path-based syscall changes. */
SEC("tp_btf/ctime_ns_xchg")
int BPF_PROG(feat_ctime_tp, struct inode *inode)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("kprobe/vfs_open")
int BPF_KPROBE(feat_kprobe)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("fentry/vfs_open")
int BPF_PROG(feat_fentry, const struct path *path, struct file *file)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

/* The LSM path hooks (CONFIG_SECURITY_PATH) hand over the struct path of
 * every path-based change; the precise hook set needs them. */
SEC("fentry/security_path_unlink")
int BPF_PROG(feat_security_path, const struct path *dir, struct dentry *dentry)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("kprobe/security_path_unlink")
int BPF_KPROBE(feat_kprobe_security_path)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(feat_lsm, struct file *file)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

/* bpf_loop (5.17+) and bpf_task_pt_regs (5.15+) are needed by the probes. */
static long feat_loop_cb(__u32 i, void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int feat_helpers(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();

	bpf_loop(1, feat_loop_cb, NULL, 0);
	if (bpf_task_pt_regs(task))
		__sync_fetch_and_add(&hits, 1);
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} feat_ringbuf SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int feat_ringbuf_prog(void *ctx)
{
	__u64 v = 1;

	bpf_ringbuf_output(&feat_ringbuf, &v, sizeof(v), 0);
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} feat_task_storage SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int feat_task_storage_prog(void *ctx)
{
	__u64 *v = bpf_task_storage_get(&feat_task_storage, bpf_get_current_task_btf(), 0,
					BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (v)
		*v += 1;
	return 0;
}

/* bpf_find_vma (5.17+) from a syscall tracepoint: mprotect's capture on the
 * tracepoint hook set (hooks/mem.h). */
static long feat_vma_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int feat_find_vma(struct trace_event_raw_sys_enter *ctx)
{
	__u64 data = 0;

	/* no ctx->args[0]: getppid has no argument, and a program that reads
	 * past a tracepoint's record is refused at attach (EACCES) */
	bpf_find_vma(bpf_get_current_task_btf(), 0, feat_vma_cb, &data, 0);
	return 0;
}

/* The DNS classifier (hooks/dns.h) reads the current task, its saved
 * registers and the packet's kernel sk_buff from a sched_cls program. */
SEC("tc")
int feat_tc(struct __sk_buff *skb)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct sk_buff *kskb = (struct sk_buff *)skb;
	struct sock *sk = NULL;

	bpf_probe_read_kernel(&sk, sizeof(sk), &kskb->sk);
	if (sk && bpf_task_pt_regs(task))
		__sync_fetch_and_add(&hits, 1);
	return -1; /* TC_ACT_UNSPEC */
}
