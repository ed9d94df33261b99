/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/compat.h - the 32-bit blind spot, counted.
 *
 * A 64-bit kernel runs i386 programs (and `int $0x80` from any program)
 * through its compat entry, with the i386 syscall numbers. The syscall
 * tracepoints (syscalls/sys_exit_*) skip those calls (the kernel gives them
 * no syscall number there), so no event type sees them: a chmod through
 * the compat entry changes the file unseen. This program, on the generic
 * raw sys_exit tracepoint, counts them per event type (rs_type_stats.compat)
 * so the blind spot is measured, not silent. It runs on *every* syscall of
 * the host (the compat test is its first load), so it is opt-in
 * (`--count-compat-syscalls`); bench/README.md has its cost.
 */
#ifndef RS_HOOK_COMPAT_H
#define RS_HOOK_COMPAT_H

#include "common.h"

SEC("tp_btf/sys_exit")
int BPF_PROG(rs_compat_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 type;

	if (!bpf_core_field_exists(task->thread_info.status) || !(task->thread_info.status & RS_TS_COMPAT))
		return 0;
	type = rs_compat_syscall_type(RS_SYSCALL_NR(regs));
	if (type && rs_type_enabled(type))
		RS_STAT_INC(type, compat);
	return 0;
}

#endif /* RS_HOOK_COMPAT_H */
