/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/dns.h - DNS queries on tc egress (a direct-action classifier on
 * the clsact qdisc of every watched interface, attached by the agent
 * through netlink: agent/net/).
 *
 * Per packet: IPv4 or IPv6 (extension headers walked), UDP to port 53, a
 * DNS header with QR clear and opcode QUERY; then the first question is
 * parsed in the kernel with a bounded walk (bpf_loop, at most
 * RS_DNS_WALK_STEPS labels or pointers). Malformed messages never loop and
 * are counted per reason in dns_stats (enum rs_dns_stat), not sent: a label
 * over 63 bytes, a name over 255, a message that ends inside its header or
 * question, a compression pointer that does not point strictly backward to
 * before the name being read (which is every pointer in a query's first
 * question: there is no earlier name to point to).
 *
 * Attribution (tc sees packets, not processes), in order:
 *  1. the sending task: tc egress runs inside dev_queue_xmit, i.e. in the
 *     sendto/sendmsg/sendmmsg/write/writev of the task sending on the socket
 *     in the common case. The current task counts only if it is in one of
 *     those calls *on the packet's very socket* (its fd argument resolves to
 *     skb->sk), which rules out a softirq that happened to interrupt
 *     another task;
 *  2. the socket's owner recorded when it was connected to port 53
 *     (sock_owners, written by rs_exit_connect, validated by the socket's
 *     inode number): a query sent later from softirq (after neighbour
 *     resolution) or by io_uring;
 *  3. otherwise none (hdr.pid 0), counted as RS_DNS_STAT_UNATTRIBUTED.
 * A packet without a local socket (forwarded or bridged through this
 * namespace) is counted (RS_DNS_STAT_FORWARDED) and not reported: the
 * namespace it was sent from sees it with its process.
 *
 * Helpers: only those of the base set for privileged programs (task,
 * probe-read, ring buffer, bpf_loop), so the program loads on 6.1 too.
 * The classifier's context is the kernel's struct sk_buff; it is read with
 * CO-RE probe reads for the fields __sk_buff does not expose (the socket's
 * address, the header offsets, the device's namespace).
 */
#ifndef RS_HOOK_DNS_H
#define RS_HOOK_DNS_H

#include "common.h"
#include "sock.h"
#include "task.h"

/* RS_TC_ACT_UNSPEC (let the next filter decide), RS_ETH_P_*, RS_IP_MF,
 * RS_IP_OFFSET, RS_IPPROTO_* (IPv6 extension headers): generated in events.h
 * from the kernel's headers; IPPROTO_UDP: vmlinux.h's enum. */
#define RS_DNS_HDR_LEN 12
#define RS_DNS_QR 0x8000
#define RS_DNS_OPCODE(flags) (((flags) >> 11) & 0xF)
#define RS_DNS_WALK_STEPS 136         /* 127 labels fit in 255 bytes, plus a few pointers */
#define RS_IPV6_EXT_MAX 4             /* extension headers walked before the UDP header */
#define RS_DNS_TYPE_A 1               /* RFC 1035 3.2.2 */
#define RS_DNS_TYPE_AAAA 28           /* RFC 3596 */
#define RS_DNS_CLASS_IN 1             /* RFC 1035 3.2.4 */

/* Per CPU: the record under construction and the DNS message's first bytes.
 * Not the syscall programs' record_buf: a classifier may run in a softirq
 * that interrupted one of them on the same CPU. The slack areas let a
 * label copy at a masked offset stay inside the map value. */
struct rs_dns_scratch {
	struct rs_dns_event ev;
	__u8 slack0[128];
	__u8 pkt[RS_DNS_PKT_MAX];
	__u8 slack1[128];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_dns_scratch);
} dns_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RS_DNS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} dns_stats SEC(".maps");

/* Shared by the generations (agent/runtime.py SHARED_MAPS). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_dns_handoff);
} dns_handoff SEC(".maps");

/*
 * Whether this packet is another generation's to report. A reload attaches
 * the new classifier beside the old one on every interface (another filter
 * on the same hook) before the switch: both run on each packet, in the
 * filters' order (which tc picks), back to back on one CPU. The first to
 * run reads the generation from `handoff` and notes it for this skb; the
 * second, finding the other one's note for the same skb, follows it instead
 * of reading `handoff` again (which the switch may have changed in
 * between). So each packet is reported once whichever order tc runs them
 * in, and a lone classifier (no reload) costs one per-CPU write.
 */
static __always_inline bool rs_dns_other_generation(__u64 skb)
{
	__u32 zero = 0;
	struct rs_handoff *h = bpf_map_lookup_elem(&handoff, &zero);
	struct rs_dns_handoff *m = bpf_map_lookup_elem(&dns_handoff, &zero);
	__u64 gen;

	if (!h || !m)
		return false;
	if (m->skb == skb && m->marker && m->marker != rs_generation) {
		gen = m->decided;       /* the other generation ran first on this packet */
		m->skb = 0;
		m->marker = 0;
	} else {
		gen = *(volatile __u64 *)&h->gen;
		m->skb = skb;
		m->marker = rs_generation;
		m->decided = gen;
	}
	return gen && gen != rs_generation;
}

static __always_inline void rs_dns_count(__u32 what)
{
	__u64 *c = bpf_map_lookup_elem(&dns_stats, &what);

	if (c)
		*c += 1; /* per CPU, and classifiers do not nest on a CPU */
}

static __always_inline struct rs_dns_scratch *rs_dns_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&dns_scratch, &zero);
}

/* The walk over the question's name, one label (or pointer) per step. */
struct rs_dns_walk {
	__u32 pos;                    /* offset of the next label in pkt */
	__u32 end;                    /* bytes of the message in pkt */
	__u32 out;                    /* bytes written to ev.name */
	__u32 limit;                  /* a pointer must point before this */
	__u32 after;                  /* offset right after the name (0: not known yet) */
	__u32 err;                    /* enum rs_dns_stat; 0: none */
	__u32 done;
};

#define RS_PKT(s, off) ((s)->pkt[(off) & (RS_DNS_PKT_MAX - 1)])

static long rs_dns_label(__u32 i, void *ctx)
{
	struct rs_dns_walk *w = ctx;
	struct rs_dns_scratch *s = rs_dns_scratch();
	__u32 pos = w->pos, len, size;

	if (!s || pos >= w->end) {
		w->err = RS_DNS_STAT_TRUNCATED;
		return 1;
	}
	len = RS_PKT(s, pos);
	if (len == 0) {
		/* the root label ends the name */
		s->ev.name[w->out & (RS_DNS_NAME_MAX - 1)] = 0;
		w->out += 1;
		if (!w->after)
			w->after = pos + 1;
		w->done = 1;
		return 1;
	}
	if ((len & 0xC0) == 0xC0) {
		__u32 target;

		if (pos + 1 >= w->end) {
			w->err = RS_DNS_STAT_TRUNCATED;
			return 1;
		}
		target = ((len & 0x3F) << 8) | RS_PKT(s, pos + 1);
		if (!w->after)
			w->after = pos + 2;
		/* strictly backward and before the name read so far: every jump
		 * lowers the limit, so pointers can never loop */
		if (target < RS_DNS_HDR_LEN || target >= w->limit) {
			w->err = RS_DNS_STAT_BAD_POINTER;
			return 1;
		}
		w->limit = target;
		w->pos = target;
		return 0;
	}
	if (len & 0xC0) {
		/* 0x40-0xBF: a label over 63 bytes (reserved label types) */
		w->err = RS_DNS_STAT_BAD_LABEL;
		return 1;
	}
	size = len + 1;
	if (pos + size > w->end) {
		w->err = RS_DNS_STAT_TRUNCATED;
		return 1;
	}
	/* this label and at least the root label must fit 255 bytes */
	if (w->out + size + 1 > RS_DNS_NAME_MAX - 1) {
		w->err = RS_DNS_STAT_NAME_TOO_LONG;
		return 1;
	}
	bpf_probe_read_kernel(&s->ev.name[w->out & (RS_DNS_NAME_MAX - 1)], size & 127,
			      &s->pkt[pos & (RS_DNS_PKT_MAX - 1)]);
	w->out += size;
	w->pos = pos + size;
	return 0;
}

/* cgroup v2 id of a task (what bpf_get_current_cgroup_id returns for current). */
static __always_inline __u64 rs_task_cgroup_id(struct task_struct *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

/* rs_fill_proc without the helpers tc programs lack on older kernels. */
static __always_inline void rs_fill_proc_task(struct rs_proc_ctx *p, struct task_struct *task)
{
	rs_fill_proc_creds(p, task);
	p->cgroup_id = rs_task_cgroup_id(task);
	bpf_probe_read_kernel(p->comm, sizeof(p->comm), task->comm);
}

/* Is `task` in a call sending on the socket `sk` (its first argument)? */
static __always_inline bool rs_task_sends_on(struct task_struct *task, __u64 sk)
{
	struct pt_regs *regs;
	struct socket *so;
	long nr;

	if (task->flags & RS_PF_KTHREAD)
		return false;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	nr = RS_SYSCALL_NR(regs);
	if (!rs_related_syscall_dns(nr))
		return false;
	so = rs_fd_socket(task, RS_SYSCALL_ARG0(regs));
	return so && (__u64)BPF_CORE_READ(so, sk) == sk;
}

/* IPv4 or IPv6 + UDP to port 53 at `l3` (`from_server`: from port 53, a
 * response): the endpoints and the offset of the UDP payload, or 0. */
static __always_inline __u32 rs_dns_udp(struct __sk_buff *skb, __u32 l3, struct rs_dns_event *ev,
					const bool from_server)
{
	const __u32 port_at = from_server ? 0 : 2;  /* the server's port in the UDP header */
	__u8 b[40];
	__u32 l4;
	__u8 next;

	if (bpf_skb_load_bytes(skb, l3, b, 20))
		return 0;
	if ((b[0] >> 4) == 4) {
		__u16 frag = (b[6] << 8) | b[7];

		if ((b[0] & 0xF) < 5)
			return 0;
		next = b[9];
		l4 = l3 + (b[0] & 0xF) * 4;
		if (frag & RS_IP_OFFSET)
			return 0; /* not the first fragment: no UDP header here */
		ev->l3_protocol = RS_ETH_P_IP;
		ev->src.family = ev->dst.family = RS_AF_INET;
		__builtin_memcpy(ev->src.addr, &b[12], 4);
		__builtin_memcpy(ev->dst.addr, &b[16], 4);
		if (next != IPPROTO_UDP)
			return 0;
		if (frag & RS_IP_MF) {
			__u8 u[4];

			if (!bpf_skb_load_bytes(skb, l4, u, 4) && ((u[port_at] << 8) | u[port_at + 1]) == RS_DNS_PORT)
				rs_dns_count(RS_DNS_STAT_FRAGMENT);
			return 0;
		}
	} else if ((b[0] >> 4) == 6) {
		if (bpf_skb_load_bytes(skb, l3, b, 40))
			return 0;
		next = b[6];
		l4 = l3 + 40;
		ev->l3_protocol = RS_ETH_P_IPV6;
		ev->src.family = ev->dst.family = RS_AF_INET6;
		__builtin_memcpy(ev->src.addr, &b[8], 16);
		__builtin_memcpy(ev->dst.addr, &b[24], 16);
#pragma unroll
		for (int i = 0; i < RS_IPV6_EXT_MAX; i++) {
			__u8 x[8];

			if (next != RS_IPPROTO_HOPOPTS && next != RS_IPPROTO_ROUTING &&
			    next != RS_IPPROTO_DSTOPTS && next != RS_IPPROTO_FRAGMENT)
				break;
			if (bpf_skb_load_bytes(skb, l4, x, 8))
				return 0;
			if (next == RS_IPPROTO_FRAGMENT) {
				__u8 u[4];

				if (((x[2] << 8) | x[3]) & 0xFFF8)
					return 0; /* not the first fragment */
				if (x[0] == IPPROTO_UDP && !bpf_skb_load_bytes(skb, l4 + 8, u, 4) &&
				    ((u[port_at] << 8) | u[port_at + 1]) == RS_DNS_PORT)
					rs_dns_count(RS_DNS_STAT_FRAGMENT);
				return 0;
			}
			next = x[0];
			l4 += (x[1] + 1) * 8;
		}
		if (next != IPPROTO_UDP)
			return 0;
	} else {
		return 0;
	}
	if (bpf_skb_load_bytes(skb, l4, b, 8))
		return 0;
	ev->src.port = (b[0] << 8) | b[1];
	ev->dst.port = (b[2] << 8) | b[3];
	if ((from_server ? ev->src.port : ev->dst.port) != RS_DNS_PORT)
		return 0;
	ev->l4_protocol = IPPROTO_UDP;
	return l4 + 8;
}

/* Both classifiers' start: a UDP datagram to port 53 (`from_server`: from
 * it) of this generation, the scratch's event zeroed up to its name. The
 * offset of the DNS message, or 0 (then *sp is not set). */
static __always_inline __u32 rs_dns_begin(struct __sk_buff *skb, const bool from_server,
					  struct rs_dns_scratch **sp)
{
	struct sk_buff *kskb = (struct sk_buff *)skb;
	struct rs_dns_scratch *s;
	__u16 mh, nh;
	__u32 off;

	mh = BPF_CORE_READ(kskb, mac_header);
	nh = BPF_CORE_READ(kskb, network_header);
	if (nh < mh || nh - mh > 64)
		return 0;
	s = rs_dns_scratch();
	if (!s)
		return 0;
	__builtin_memset(&s->ev, 0, offsetof(struct rs_dns_event, name));
	/* nh - mh: 14 on Ethernet-like devices, 0 on L3 devices */
	off = rs_dns_udp(skb, nh - mh, &s->ev, from_server);
	if (!off || rs_dns_other_generation((__u64)kskb))
		return 0;  /* (another generation's: a reload, the other classifier reports it) */
	*sp = s;
	return off;
}

/* Both classifiers' end: the question's type and class, the record's common
 * part, and its output, ending after the name. `s` must be fetched after the
 * walks (the verifier tracks no pointer across their callbacks). True: sent. */
static __always_inline bool rs_dns_send(struct __sk_buff *skb, struct rs_dns_scratch *s,
					const struct rs_dns_walk *w, __u32 len, __u8 direction)
{
	struct sk_buff *kskb = (struct sk_buff *)skb;
	struct rs_dns_event *ev = &s->ev;
	__u32 size;

	ev->qtype = (RS_PKT(s, w->after) << 8) | RS_PKT(s, w->after + 1);
	ev->qclass = (RS_PKT(s, w->after + 2) << 8) | RS_PKT(s, w->after + 3);
	ev->name_len = w->out;
	ev->hdr.type = RS_EVENT_DNS;
	ev->hdr.timestamp = bpf_ktime_get_boot_ns();
	ev->hdr.cpu = bpf_get_smp_processor_id();
	ev->hdr.flags = (rs_generation & 1) ? RS_HDR_GEN_ODD : 0;
	ev->ifindex = skb->ifindex;
	ev->netns = BPF_CORE_READ(kskb, dev, nd_net.net, ns.inum);
	ev->pkt_len = skb->len;
	ev->dns_len = len;
	ev->direction = direction;
	size = (offsetof(struct rs_dns_event, name) + w->out + 7) & ~7U;
	if (size > sizeof(*ev))
		size = sizeof(*ev);
	ev->hdr.size = size;
	return bpf_ringbuf_output(&events, ev, size, rs_wakeup_flags(&events, size)) == 0;
}

SEC("tc")
int rs_tc_dns(struct __sk_buff *skb)
{
	/* The context is the kernel's struct sk_buff (bpf_cast_to_kern_ctx
	 * makes that explicit from 6.3 on; probe reads work everywhere). */
	struct sk_buff *kskb = (struct sk_buff *)skb;
	struct rs_dns_walk w = {};
	struct rs_dns_scratch *s = NULL;
	struct rs_dns_event *ev;
	struct rs_sock_owner *owner;
	struct task_struct *task;
	__u32 off, len, n, err, by = 0;
	__u16 flags;
	__u64 sk;

	off = rs_dns_begin(skb, false, &s);
	if (!off || !s)
		return RS_TC_ACT_UNSPEC;
	ev = &s->ev;
	RS_STAT_INC(RS_EVENT_DNS, seen);
	sk = (__u64)BPF_CORE_READ(kskb, sk);
	if (!sk) {
		rs_dns_count(RS_DNS_STAT_FORWARDED);
		return RS_TC_ACT_UNSPEC;
	}

	/* the DNS message */
	len = skb->len > off ? skb->len - off : 0;
	if (len < RS_DNS_HDR_LEN) {
		rs_dns_count(RS_DNS_STAT_TRUNCATED);
		return RS_TC_ACT_UNSPEC;
	}
	n = len < RS_DNS_PKT_MAX ? len : RS_DNS_PKT_MAX;
	if (bpf_skb_load_bytes(skb, off, s->pkt, n)) {
		rs_dns_count(RS_DNS_STAT_TRUNCATED);
		return RS_TC_ACT_UNSPEC;
	}
	flags = (s->pkt[2] << 8) | s->pkt[3];
	if ((flags & RS_DNS_QR) || RS_DNS_OPCODE(flags) != 0) {
		rs_dns_count(RS_DNS_STAT_NOT_QUERY);
		return RS_TC_ACT_UNSPEC;
	}
	ev->id = (s->pkt[0] << 8) | s->pkt[1];
	ev->flags = flags;
	ev->qdcount = (s->pkt[4] << 8) | s->pkt[5];
	if (!ev->qdcount) {
		rs_dns_count(RS_DNS_STAT_NO_QUESTION);
		return RS_TC_ACT_UNSPEC;
	}
	w.pos = RS_DNS_HDR_LEN;
	w.end = n;
	w.limit = RS_DNS_HDR_LEN;
	bpf_loop(RS_DNS_WALK_STEPS, rs_dns_label, &w, 0);
	err = w.err;
	if (!err && !w.done)
		err = RS_DNS_STAT_BAD_POINTER; /* steps exhausted: a chain of pointers */
	if (!err && w.after + 4 > w.end)
		err = RS_DNS_STAT_TRUNCATED;   /* no room for the type and class */
	if (err) {
		rs_dns_count(err);
		return RS_TC_ACT_UNSPEC;
	}
	/* re-fetched: the walk ran in callbacks (the verifier tracks no pointer across them) */
	s = rs_dns_scratch();
	if (!s)
		return RS_TC_ACT_UNSPEC;
	ev = &s->ev;

	/* who sent it */
	task = bpf_get_current_task_btf();
	if (rs_task_sends_on(task, sk)) {
		by = RS_DNS_BY_SENDER;
		ev->hdr.pid = task->tgid;
		ev->hdr.tid = task->pid;
		rs_fill_proc_task(&ev->proc, task);
	} else {
		owner = bpf_map_lookup_elem(&sock_owners, &sk);
		if (owner) {
			struct socket *so = BPF_CORE_READ((struct sock *)sk, sk_socket);

			if (so && rs_socket_ino(so) == owner->ino) {
				by = RS_DNS_BY_OWNER;
				ev->hdr.pid = owner->pid;
				ev->hdr.tid = owner->tid;
				ev->proc = owner->proc;
			}
		}
	}
	if (rs_agent_tgid && ev->hdr.pid == rs_agent_tgid) {
		rs_dns_count(RS_DNS_STAT_OWN); /* our own lookups */
		return RS_TC_ACT_UNSPEC;
	}
	rs_dns_count(RS_DNS_STAT_PARSED);
	if (!by)
		rs_dns_count(RS_DNS_STAT_UNATTRIBUTED);

	ev->dns_flags = by;
	if (rs_dns_send(skb, s, &w, len, RS_NET_EGRESS))
		RS_STAT_INC(RS_EVENT_DNS, sent);
	else
		RS_STAT_INC(RS_EVENT_DNS, lost);
	return RS_TC_ACT_UNSPEC;
}

/*
 * DNS responses on tc ingress: the name asked and the addresses the server
 * gave for it, which user space keeps (agent/net/hostnames.py) to name the
 * peers of later connects (`connect.addr.hostname`). UDP from port 53, QR
 * set, opcode QUERY, exactly one question (walked as a query's: no pointer
 * is valid in it); then the answer section, one step per label of an
 * answer's owner name or per record's fixed part (bpf_loop, at most
 * RS_DNS_RR_STEPS steps and RS_DNS_RR_MAX records): owner names are skipped
 * (a compression pointer ends one and must point strictly backward, before
 * that name; it is not followed), A and AAAA records of class IN are kept
 * (the first RS_DNS_ANSWERS_MAX), CNAMEs and the rest skipped by their
 * rdlength. A record running past the message is malformed (counted, not
 * sent); past the bytes read (RS_DNS_PKT_MAX), the answers before it are
 * sent (RS_DNS_STAT_RESP_CUT).
 */
struct rs_dns_rr_walk {
	__u32 pos;                    /* offset of the next label or record part in pkt */
	__u32 end;                    /* bytes of the message in pkt */
	__u32 len;                    /* bytes of the whole message */
	__u32 name_at;                /* where the current owner name started */
	__u32 left;                   /* answer records still to walk */
	__u32 in_name;
	__u32 n;                      /* answers kept */
	__u32 err;                    /* enum rs_dns_stat (a query's malformed reason); 0: none */
	__u32 done;
	__u32 cut;
};

static __always_inline long rs_dns_rr_short(struct rs_dns_rr_walk *w)
{
	if (w->end < w->len)
		w->cut = 1;           /* the message goes on past what was read */
	else
		w->err = RS_DNS_STAT_TRUNCATED;
	return 1;
}

static long rs_dns_rr(__u32 i, void *ctx)
{
	struct rs_dns_rr_walk *w = ctx;
	struct rs_dns_scratch *s = rs_dns_scratch();
	struct rs_dns_answer *a;
	__u32 pos = w->pos, len, type, klass, ttl, rdlen, data;

	if (!s) {
		w->err = RS_DNS_STAT_TRUNCATED;
		return 1;
	}
	if (w->in_name) {
		if (pos >= w->end)
			return rs_dns_rr_short(w);
		len = RS_PKT(s, pos);
		if (len == 0) {
			w->pos = pos + 1;
			w->in_name = 0;
			return 0;
		}
		if ((len & 0xC0) == 0xC0) {
			__u32 target;

			if (pos + 1 >= w->end)
				return rs_dns_rr_short(w);
			target = ((len & 0x3F) << 8) | RS_PKT(s, pos + 1);
			if (target < RS_DNS_HDR_LEN || target >= w->name_at) {
				w->err = RS_DNS_STAT_BAD_POINTER;
				return 1;
			}
			w->pos = pos + 2;     /* the pointer ends the name (not followed: not needed) */
			w->in_name = 0;
			return 0;
		}
		if (len & 0xC0) {
			w->err = RS_DNS_STAT_BAD_LABEL;
			return 1;
		}
		if (pos + 1 + len - w->name_at > RS_DNS_NAME_MAX - 1) {
			w->err = RS_DNS_STAT_NAME_TOO_LONG;
			return 1;
		}
		w->pos = pos + 1 + len;
		return 0;
	}
	/* the record's fixed part: type, class, ttl, rdlength, then rdata */
	if (pos + 10 > w->end)
		return rs_dns_rr_short(w);
	type = (RS_PKT(s, pos) << 8) | RS_PKT(s, pos + 1);
	klass = (RS_PKT(s, pos + 2) << 8) | RS_PKT(s, pos + 3);
	ttl = ((__u32)RS_PKT(s, pos + 4) << 24) | ((__u32)RS_PKT(s, pos + 5) << 16) |
	      ((__u32)RS_PKT(s, pos + 6) << 8) | RS_PKT(s, pos + 7);
	rdlen = (RS_PKT(s, pos + 8) << 8) | RS_PKT(s, pos + 9);
	data = pos + 10;
	if (data + rdlen > w->end)
		return rs_dns_rr_short(w);
	if (klass == RS_DNS_CLASS_IN && w->n < RS_DNS_ANSWERS_MAX &&
	    ((type == RS_DNS_TYPE_A && rdlen == 4) || (type == RS_DNS_TYPE_AAAA && rdlen == 16))) {
		a = &s->ev.answers[w->n & (RS_DNS_ANSWERS_MAX - 1)];
		if (type == RS_DNS_TYPE_A) {
			bpf_probe_read_kernel(a->addr, 4, &s->pkt[data & (RS_DNS_PKT_MAX - 1)]);
			a->family = RS_AF_INET;
		} else {
			bpf_probe_read_kernel(a->addr, 16, &s->pkt[data & (RS_DNS_PKT_MAX - 1)]);
			a->family = RS_AF_INET6;
		}
		a->ttl = ttl;
		w->n += 1;
	}
	w->pos = data + rdlen;
	w->left -= 1;
	if (!w->left) {
		w->done = 1;
		return 1;
	}
	w->in_name = 1;
	w->name_at = w->pos;
	return 0;
}

SEC("tc")
int rs_tc_dns_response(struct __sk_buff *skb)
{
	struct rs_dns_walk w = {};
	struct rs_dns_rr_walk rr = {};
	struct rs_dns_scratch *s = NULL;
	struct rs_dns_event *ev;
	__u32 off, len, n, err;
	__u16 flags;

	off = rs_dns_begin(skb, true, &s);
	if (!off || !s)
		return RS_TC_ACT_UNSPEC;
	ev = &s->ev;
	len = skb->len > off ? skb->len - off : 0;
	if (len < RS_DNS_HDR_LEN) {
		rs_dns_count(RS_DNS_STAT_RESPONSE);
		rs_dns_count(RS_DNS_STAT_RESP_TRUNCATED);
		return RS_TC_ACT_UNSPEC;
	}
	n = len < RS_DNS_PKT_MAX ? len : RS_DNS_PKT_MAX;
	if (bpf_skb_load_bytes(skb, off, s->pkt, n)) {
		rs_dns_count(RS_DNS_STAT_RESPONSE);
		rs_dns_count(RS_DNS_STAT_RESP_TRUNCATED);
		return RS_TC_ACT_UNSPEC;
	}
	rs_dns_count(RS_DNS_STAT_RESPONSE);
	flags = (s->pkt[2] << 8) | s->pkt[3];
	ev->qdcount = (s->pkt[4] << 8) | s->pkt[5];
	if (!(flags & RS_DNS_QR) || RS_DNS_OPCODE(flags) != 0 || ev->qdcount > 1) {
		rs_dns_count(RS_DNS_STAT_RESP_SKIPPED);
		return RS_TC_ACT_UNSPEC;
	}
	if (!ev->qdcount) {
		rs_dns_count(RS_DNS_STAT_RESP_NO_QUESTION);
		return RS_TC_ACT_UNSPEC;
	}
	ev->id = (s->pkt[0] << 8) | s->pkt[1];
	ev->flags = flags;
	ev->rcode = flags & 0xF;
	ev->ancount = (s->pkt[6] << 8) | s->pkt[7];

	/* the question, as a query's */
	w.pos = RS_DNS_HDR_LEN;
	w.end = n;
	w.limit = RS_DNS_HDR_LEN;
	bpf_loop(RS_DNS_WALK_STEPS, rs_dns_label, &w, 0);
	err = w.err;
	if (!err && !w.done)
		err = RS_DNS_STAT_BAD_POINTER;
	if (!err && w.after + 4 > w.end)
		err = RS_DNS_STAT_TRUNCATED;

	/* the answers */
	if (!err && ev->ancount) {
		rr.pos = rr.name_at = w.after + 4;
		rr.end = n;
		rr.len = len;
		rr.in_name = 1;
		rr.left = ev->ancount < RS_DNS_RR_MAX ? ev->ancount : RS_DNS_RR_MAX;
		bpf_loop(RS_DNS_RR_STEPS, rs_dns_rr, &rr, 0);
		err = rr.err;
		if (!err && (!rr.done || ev->ancount > RS_DNS_RR_MAX))
			rr.cut = 1;   /* more records than walked */
	}
	if (err) {
		/* the query's reasons, in the same order for responses */
		rs_dns_count(err - RS_DNS_STAT_TRUNCATED + RS_DNS_STAT_RESP_TRUNCATED);
		return RS_TC_ACT_UNSPEC;
	}
	s = rs_dns_scratch();
	if (!s)
		return RS_TC_ACT_UNSPEC;
	ev = &s->ev;
	if (rr.cut)
		rs_dns_count(RS_DNS_STAT_RESP_CUT);
	ev->answer_count = rr.n;
	if (rs_dns_send(skb, s, &w, len, RS_NET_INGRESS))
		rs_dns_count(RS_DNS_STAT_RESP_PARSED);
	else
		rs_dns_count(RS_DNS_STAT_RESP_LOST);
	return RS_TC_ACT_UNSPEC;
}

#endif /* RS_HOOK_DNS_H */
