/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * probe.bpf.c - the agent's CO-RE object: every hook of every hook set.
 * The loader enables (autoload) only the programs of the chosen hook set and
 * of the event types the policy needs.
 */
#include "common.h"
#include "filters.h"
#include "hooks/open.h"
#include "hooks/process.h"
#include "hooks/ctime.h"
#include "fim_exit.h"
#include "hooks/precise.h"
#include "hooks/activity.h"
#include "hooks/cgroup.h"
/* engineer B (issue 9): modules, bpf, memory, io_uring, the new mount API, compat */
#include "hooks/module.h"
#include "hooks/bpf.h"
#include "hooks/mem.h"
#include "hooks/io_uring.h"
#include "hooks/mount_api.h"
#include "hooks/compat.h"
#include "hooks/net.h"
#include "hooks/dns.h"
/* generated from the event-type table: one sys_exit program per syscall,
 * calling the bodies above (open.h, fim_exit.h, activity.h, module.h, bpf.h,
 * mem.h, io_uring.h, mount_api.h, net.h) */
#include "hooks/exits.h"

char LICENSE[] SEC("license") = "GPL";

/* Every record struct appears in the object's BTF through this anchor, even
 * those only reached by casts: tests/foundation/test_layout.py compares them
 * with cffi's view of events.h, and `bpftool btf dump` shows them. */
union rs_btf_anchor {
	struct rs_event_header header;
	struct rs_file_event file;
	struct rs_exec_event exec;
	struct rs_fork_event fork;
	struct rs_exit_event exit;
	struct rs_activity_event activity;
	struct rs_target target;
	struct rs_task_meta task_meta;
	struct rs_type_stats stats;
	struct rs_basename_key basename_key;
	struct rs_discarder_key discarder_key;
	struct rs_discarder_value discarder_value;
	struct rs_inode_key inode_key;
	struct rs_value_key value_key;
	struct rs_module_event module;
	struct rs_bpf_event bpf;
	struct rs_mem_event mem;
	struct rs_io_uring_event io_uring;
	struct rs_ip_endpoint ip_endpoint;
	struct rs_net_event net;
	struct rs_dns_event dns;
	struct rs_addr_key addr_key;
	struct rs_port_key port_key;
	struct rs_prefix_key prefix_key;
} rs_btf_anchor __attribute__((unused));
