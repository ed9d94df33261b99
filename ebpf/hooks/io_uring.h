/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hooks/io_uring.h - io_uring: a ring set up, a request submitted.
 *
 * Requests submitted to a ring run their operation without the syscall the
 * operation stands for (IORING_OP_OPENAT opens a file without openat(2)):
 * the syscall tracepoints never see them. The io_uring tracepoints do:
 *  - io_uring_submit_req(req) (io_uring_submit_sqe before 6.4) fires for every request the kernel accepted,
 *    in the submitting task (io_uring_enter's caller, or the ring's SQPOLL
 *    thread, a thread of the same process), after the request's prep: its
 *    opcode, flags (req->flags' low bits are the SQE's IOSQE_* bits, the
 *    kernel copies them as they are) and user_data are set, and an open
 *    request holds the kernel's copy of its path (struct io_open);
 *  - io_uring_req_failed(sqe, req, err) fires for a request the kernel
 *    refused while preparing it (bad opcode, bad flags...): retval -errno.
 * io_uring_setup itself is a syscall (its sys_exit program).
 * What the operations then do (the file an IORING_OP_READ reads, the
 * address an IORING_OP_CONNECT reaches, their results) is not reported.
 */
#ifndef RS_HOOK_IO_URING_H
#define RS_HOOK_IO_URING_H

#include "common.h"
#include "filters.h"
#include "path.h"
#include "task.h"

#define RS_IOSQE_MASK 0xff            /* REQ_F_* bits 0-7 are the IOSQE_* bits (io_init_req copies them) */

/* io_uring_setup's arguments, filled by its sys_exit wrapper (exits.h). */
struct rs_iou_call {
	__u32 type;
	__u32 entries;
	const void *params;           /* struct io_uring_params (user memory) */
};

static __always_inline void rs_iou_call_init(struct rs_iou_call *c, __u32 type)
{
	__builtin_memset(c, 0, sizeof(*c));
	c->type = type;
}

/* A record of `action`, or NULL when the filters drop it. */
static __always_inline struct rs_io_uring_event *rs_iou_record(struct task_struct *task, __u32 action, __s32 op)
{
	struct rs_io_uring_event *e;

	if (!rs_type_sends(RS_EVENT_IO_URING) || rs_is_self())
		return NULL;
	RS_STAT_INC(RS_EVENT_IO_URING, seen);
	if (!rs_filter_scalar(RS_EVENT_IO_URING, (__u64)(__s64)op, 0))
		return NULL;
	e = rs_record();
	if (!e)
		return NULL;
	__builtin_memset(e, 0, sizeof(*e));
	rs_fill_header(&e->hdr, RS_EVENT_IO_URING);
	rs_fill_proc(&e->proc, task);
	e->action = action;
	e->op = op;
	e->dfd = -1;
	return e;
}

static __always_inline int rs_io_uring_setup_exit(struct trace_event_raw_sys_exit *ctx, struct rs_iou_call *c)
{
	struct task_struct *task = bpf_get_current_task_btf();
	const struct io_uring_params *params = c->params;
	struct rs_io_uring_event *e = rs_iou_record(task, RS_IOU_SETUP, -1);

	if (!e)
		return 0;
	e->retval = ctx->ret;
	e->entries = c->entries;
	if (params)
		bpf_core_read_user(&e->flags, sizeof(e->flags), &params->flags);
	rs_submit(e, sizeof(*e));
	return 0;
}

/* An open request's path (the kernel's copy) and the directory it starts from. */
static __always_inline void rs_iou_open_path(struct rs_io_uring_event *e, __u32 *off, struct task_struct *task,
					     struct io_kiocb *req)
{
	struct io_open *open = (void *)req;   /* io_kiocb_to_cmd(): the command data is the request's start */
	struct dentry *dentry = NULL;
	struct vfsmount *mnt = NULL;
	const char *name;
	char first = 0;

	if (!bpf_core_type_exists(struct io_open))
		return;
	e->dfd = BPF_CORE_READ(open, dfd);
	name = BPF_CORE_READ(open, filename, name);
	if (!name)
		return;
	rs_append_str(e, off, &e->req_path, name, false);
	if (e->req_path.len)
		first = ((char *)e)[e->req_path.off & (RS_RECORD_MAX - 1)];
	if (rs_lookup_base(task, e->dfd, first, &dentry, &mnt))
		rs_fill_file(e, off, &e->base, dentry, mnt);
}

static __always_inline int rs_iou_submit(struct io_kiocb *req)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_io_uring_event *e;
	__u32 off = sizeof(*e);
	__s32 op = BPF_CORE_READ(req, opcode);

	e = rs_iou_record(task, RS_IOU_SUBMIT, op);
	if (!e)
		return 0;
	e->flags = BPF_CORE_READ(req, flags) & RS_IOSQE_MASK;
	e->user_data = BPF_CORE_READ(req, cqe.user_data);
	if (op == IORING_OP_OPENAT || op == IORING_OP_OPENAT2)
		rs_iou_open_path(e, &off, task, req);
	rs_submit(e, off);
	return 0;
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(rs_io_uring_submit, struct io_kiocb *req)
{
	return rs_iou_submit(req);
}

/* The same tracepoint before 6.4 (io_uring_submit_sqe(req, force_nonblock)):
 * loaded where the kernel has it instead (program_tracepoints). */
SEC("tp_btf/io_uring_submit_sqe")
int BPF_PROG(rs_io_uring_submit_sqe, struct io_kiocb *req)
{
	return rs_iou_submit(req);
}

SEC("tp_btf/io_uring_req_failed")
int BPF_PROG(rs_io_uring_req_failed, const struct io_uring_sqe *sqe, struct io_kiocb *req, int error)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rs_io_uring_event *e = rs_iou_record(task, RS_IOU_SUBMIT, BPF_CORE_READ(sqe, opcode));

	if (!e)
		return 0;
	e->retval = error;
	e->flags = BPF_CORE_READ(sqe, flags);
	e->user_data = BPF_CORE_READ(sqe, user_data);
	rs_submit(e, sizeof(*e));
	return 0;
}

#endif /* RS_HOOK_IO_URING_H */
