/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/net.h - connect, bind, accept and accept4 at syscall exit.
 *
 * The socket is found from the descriptor (fd -> struct file -> struct
 * socket -> struct sock) and its endpoints read from the kernel object after
 * the call, so a successful call reports what the kernel did (the peer a
 * socket is connected to, the port bind() picked for port 0, the address
 * accept() got), not what the caller's memory holds at exit. A failed
 * connect or bind has no kernel state worth reading: the record carries the
 * caller's sockaddr instead (RS_NET_FROM_USER). Only AF_INET and AF_INET6
 * sockets are reported; accept only when it returned a socket.
 *
 * connect() to port 53 also records the socket's owner for the DNS
 * classifier (sock.h, hooks/dns.h). The sys_exit programs themselves are
 * generated from the event-type table (hooks/exits.h).
 */
#ifndef RS_HOOK_NET_H
#define RS_HOOK_NET_H

#include "common.h"
#include "filters.h"
#include "sock.h"
#include "task.h"

/* What a socket call's sys_exit wrapper hands over (generated: hooks/exits.h,
 * from NET_CALL in codegen/eventtypes.py). */
struct rs_net_call {
	__u32 type;                   /* RS_EVENT_CONNECT, _BIND, _ACCEPT */
	int fd;                       /* the socket (accept: the listening one) */
	const void *uaddr;            /* connect, bind: the caller's sockaddr */
	int addrlen;
};

static __always_inline void rs_net_call_init(struct rs_net_call *c, __u32 type)
{
	__builtin_memset(c, 0, sizeof(*c));
	c->type = type;
}

/* No address and no port: a UDP socket "connected" to AF_UNSPEC. */
static __always_inline bool rs_ep_unset(const struct rs_ip_endpoint *ep)
{
	__u64 w[2];

	__builtin_memcpy(w, ep->addr, sizeof(w));
	return !ep->port && !w[0] && !w[1];
}

/* Build and send one record for a socket call of `type`. */
static __always_inline int rs_net_emit(struct trace_event_raw_sys_exit *ctx, __u32 type,
				       struct task_struct *task, struct sock *sk, long fd,
				       struct rs_ip_endpoint *local, struct rs_ip_endpoint *remote,
				       __u32 net_flags)
{
	struct rs_ip_endpoint *ep;
	struct rs_net_event *e;
	__u16 port;
	void *rec;

	/* the endpoint and port the rules see as <type>.addr */
	switch (type) {
	case RS_EVENT_BIND:
		ep = local;
		port = local->port;
		break;
	case RS_EVENT_ACCEPT:
		ep = remote;
		port = local->port;
		break;
	default:
		ep = remote;
		port = remote->port;
		break;
	}
	if (!rs_net_filter(type, ep, port))
		return 0;
	rec = rs_record();
	if (!rec)
		return 0;
	e = rec;
	__builtin_memset(e, 0, sizeof(*e));
	rs_fill_header(&e->hdr, type);
	rs_fill_proc(&e->proc, task);
	e->retval = ctx->ret;
	e->local = *local;
	e->remote = *remote;
	e->syscall_nr = ctx->id;
	e->fd = fd;
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	e->sock_type = BPF_CORE_READ(sk, sk_type);
	e->net_flags = net_flags;
	e->netns = rs_sk_netns(sk);
	rs_submit(rec, sizeof(*e));
	return 0;
}

/* The inet socket behind fd (NULL for other families and non-sockets). */
static __always_inline struct sock *rs_inet_sock(struct task_struct *task, long fd, struct socket **sop)
{
	struct socket *so = rs_fd_socket(task, fd);
	struct sock *sk;
	__u16 family;

	if (!so)
		return NULL;
	sk = BPF_CORE_READ(so, sk);
	if (!sk)
		return NULL;
	family = rs_sk_family(sk);
	if (family != RS_AF_INET && family != RS_AF_INET6)
		return NULL;
	*sop = so;
	return sk;
}

static __always_inline int rs_connect_exit(struct trace_event_raw_sys_exit *ctx, struct rs_net_call *c,
					   struct task_struct *task)
{
	struct rs_ip_endpoint local, remote;
	struct socket *so = NULL;
	struct sock *sk;
	__u32 flags = 0;
	long ret = ctx->ret;

	sk = rs_inet_sock(task, c->fd, &so);
	if (!sk)
		return 0;
	rs_sk_endpoints(sk, &local, &remote);
	if (ret == 0 || ret == -RS_EINPROGRESS) {
		/* connected (or on its way): the peer is in the socket. A
		 * successful connect to AF_UNSPEC dissolves a UDP association:
		 * no peer left, nothing to report. */
		if (rs_ep_unset(&remote))
			return 0;
		if (remote.port == RS_DNS_PORT)
			rs_sock_owner_set(task, so, sk);
	} else {
		rs_user_sockaddr(c->uaddr, c->addrlen, &remote);
		flags |= RS_NET_FROM_USER;
	}
	if (!rs_type_sends(RS_EVENT_CONNECT))
		return 0; /* hooked for the DNS owners only */
	RS_STAT_INC(RS_EVENT_CONNECT, seen);
	return rs_net_emit(ctx, RS_EVENT_CONNECT, task, sk, c->fd, &local, &remote, flags);
}

static __always_inline int rs_bind_exit(struct trace_event_raw_sys_exit *ctx, struct rs_net_call *c,
					struct task_struct *task)
{
	struct rs_ip_endpoint local, remote;
	struct socket *so = NULL;
	struct sock *sk;
	__u32 flags = 0;

	sk = rs_inet_sock(task, c->fd, &so);
	if (!sk)
		return 0;
	RS_STAT_INC(RS_EVENT_BIND, seen);
	rs_sk_endpoints(sk, &local, &remote);
	if (ctx->ret != 0) {
		rs_user_sockaddr(c->uaddr, c->addrlen, &local);
		flags |= RS_NET_FROM_USER;
	}
	return rs_net_emit(ctx, RS_EVENT_BIND, task, sk, c->fd, &local, &remote, flags);
}

static __always_inline int rs_accept_exit(struct trace_event_raw_sys_exit *ctx, struct rs_net_call *c,
					  struct task_struct *task)
{
	struct rs_ip_endpoint local, remote;
	struct socket *so = NULL;
	struct sock *sk;
	long ret = ctx->ret;

	if (ret < 0)
		return 0;
	/* accept returned the connection's socket */
	sk = rs_inet_sock(task, ret, &so);
	if (!sk)
		return 0;
	RS_STAT_INC(RS_EVENT_ACCEPT, seen);
	rs_sk_endpoints(sk, &local, &remote);
	return rs_net_emit(ctx, RS_EVENT_ACCEPT, task, sk, c->fd, &local, &remote, 0);
}

/* The body of every socket call's sys_exit wrapper. */
static __always_inline int rs_net_exit(struct trace_event_raw_sys_exit *ctx, struct rs_net_call *c)
{
	struct task_struct *task;

	if (rs_is_self())
		return 0;
	task = bpf_get_current_task_btf();
	switch (c->type) {
	case RS_EVENT_CONNECT:
		return rs_connect_exit(ctx, c, task);
	case RS_EVENT_BIND:
		return rs_bind_exit(ctx, c, task);
	default:
		return rs_accept_exit(ctx, c, task);
	}
}

#endif /* RS_HOOK_NET_H */
