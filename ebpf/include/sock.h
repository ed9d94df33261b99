/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * sock.h - sockets behind descriptors, their endpoints, and who owns them:
 * shared by the syscall-exit programs (hooks/net.h) and the tc classifier
 * (hooks/dns.h).
 */
#ifndef RS_SOCK_H
#define RS_SOCK_H

#include <bpf/bpf_endian.h>
#include "common.h"
#include "task.h"

/* AF_INET, AF_INET6, the RS_NR_* syscall numbers: generated in events.h
 * from the kernel's headers (codegen/eventtypes.py). The DNS port is DNS's. */
#define RS_DNS_PORT 53

/*
 * Who connected a socket to a DNS server (port 53), recorded at connect()
 * exit, keyed by the struct sock's address. The classifier reads it for a
 * query it cannot attribute to the task sending it (a packet sent from
 * softirq after neighbour resolution, io_uring...). `ino` (the socket's
 * inode number, unique while it lives) proves the entry is this socket's
 * and not a freed one's whose memory was reused.
 */
struct rs_sock_owner {
	struct rs_proc_ctx proc;
	__u64 ino;
	__u32 pid;
	__u32 tid;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct rs_sock_owner);
} sock_owners SEC(".maps");

/* struct socket_alloc puts the socket and its inode side by side. */
static __always_inline __u64 rs_socket_ino(struct socket *so)
{
	struct socket_alloc *sa = (void *)so - bpf_core_field_offset(struct socket_alloc, socket);

	return BPF_CORE_READ(sa, vfs_inode.i_ino);
}

/* The socket behind `fd` of `task`, or NULL when fd is not a socket. */
static __always_inline struct socket *rs_fd_socket(struct task_struct *task, long fd)
{
	struct file *file = rs_fd_file(task, fd);
	struct socket *so;

	if (!file)
		return NULL;
	/* private_data is a socket only for socket files: the socket's back
	 * pointer proves it (an O_PATH file of a socket inode has none). */
	so = BPF_CORE_READ(file, private_data);
	if (!so || BPF_CORE_READ(so, file) != file)
		return NULL;
	return so;
}

/* The address family of a struct sock (AF_INET, AF_INET6, ...). */
static __always_inline __u16 rs_sk_family(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_family);
}

static __always_inline __u32 rs_sk_netns(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* The socket's local (bound) and remote (connected) endpoints. */
static __always_inline void rs_sk_endpoints(struct sock *sk, struct rs_ip_endpoint *local,
					    struct rs_ip_endpoint *remote)
{
	__u16 family = rs_sk_family(sk);

	__builtin_memset(local, 0, sizeof(*local));
	__builtin_memset(remote, 0, sizeof(*remote));
	local->family = remote->family = family;
	local->port = BPF_CORE_READ(sk, __sk_common.skc_num);
	remote->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == RS_AF_INET) {
		bpf_core_read(local->addr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(remote->addr, 4, &sk->__sk_common.skc_daddr);
	} else if (family == RS_AF_INET6 &&
		   bpf_core_field_exists(sk->__sk_common.skc_v6_daddr)) {
		bpf_core_read(local->addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(remote->addr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

/* sockaddr_in / sockaddr_in6 as the caller passed it (uapi layout: family,
 * port in network order, then the IPv4 address at 4 or the IPv6 address at 8). */
static __always_inline void rs_user_sockaddr(const void *uaddr, long addrlen, struct rs_ip_endpoint *ep)
{
	__u8 buf[28] = {};
	__u32 n = addrlen > 28 ? 28 : (__u32)addrlen;
	__u16 family, port;

	__builtin_memset(ep, 0, sizeof(*ep));
	if (!uaddr || addrlen < 8 || bpf_probe_read_user(buf, n & 31, uaddr))
		return;
	family = buf[0] | (buf[1] << 8);
	port = (buf[2] << 8) | buf[3];
	if (family == RS_AF_INET) {
		__builtin_memcpy(ep->addr, &buf[4], 4);
	} else if (family == RS_AF_INET6 && n >= 24) {
		__builtin_memcpy(ep->addr, &buf[8], 16);
	} else {
		return;
	}
	ep->family = family;
	ep->port = port;
}

/* Keep the task's context as the owner of a socket connected to DNS. */
static __always_inline void rs_sock_owner_set(struct task_struct *task, struct socket *so, struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct rs_sock_owner *o;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 ino = rs_socket_ino(so);

	o = bpf_map_lookup_elem(&sock_owners, &key);
	if (o && o->ino == ino && o->pid == (__u32)(pid_tgid >> 32))
		return; /* already this process's */
	/* the record buffer is free between records: build the value there */
	o = rs_record();
	if (!o)
		return;
	rs_fill_proc(&o->proc, task);
	o->ino = ino;
	o->pid = pid_tgid >> 32;
	o->tid = (__u32)pid_tgid;
	bpf_map_update_elem(&sock_owners, &key, o, BPF_ANY);
}

#endif /* RS_SOCK_H */
