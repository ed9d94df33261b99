/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/ctime.h - the inode a path-based syscall changes, from the timestamp
 * tracepoints (6.13+). A filesystem updates an inode's ctime through one of
 * three: ctime_ns_xchg (multigrain ctime changed: ext4, tmpfs, ...),
 * ctime_xchg_skip (multigrain, unchanged within the clock's granularity) and
 * inode_set_ctime_to_ts (others, and overlayfs copying attributes up). All
 * three fire inside the syscall, in the calling task; see fim.h.
 */
#ifndef RS_HOOK_CTIME_H
#define RS_HOOK_CTIME_H

#include "fim.h"

SEC("tp_btf/ctime_ns_xchg")
int BPF_PROG(rs_ctime_ns_xchg, struct inode *inode, u32 old, u32 new, u32 cur)
{
	return rs_fim_capture(inode);
}

SEC("tp_btf/ctime_xchg_skip")
int BPF_PROG(rs_ctime_xchg_skip, struct inode *inode, struct timespec64 *ctime)
{
	return rs_fim_capture(inode);
}

SEC("tp_btf/inode_set_ctime_to_ts")
int BPF_PROG(rs_inode_set_ctime, struct inode *inode, struct timespec64 *ctime)
{
	return rs_fim_capture(inode);
}

#endif /* RS_HOOK_CTIME_H */
