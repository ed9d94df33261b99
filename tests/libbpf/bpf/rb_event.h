/* The record ringbuf_pid.bpf.c sends to user space; the tests cdef this
 * same file. Fixed-width types, explicit padding, 64 bytes. */
#ifndef RB_EVENT_H
#define RB_EVENT_H

struct rb_event {
	__u32 pid;
	__u32 tid;
	__u64 magic;
	__u64 seq;
	__u8 tag[16];
	__u8 _pad[24];
};

#endif
