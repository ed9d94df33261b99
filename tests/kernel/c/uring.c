/*
 * uring.c - io_uring from raw syscalls (no liburing), for the io_uring tests.
 *
 *   uring open PATH    set up a ring, submit IORING_OP_OPENAT of PATH (O_RDONLY),
 *                      print the completion's result (an fd or -errno)
 *   uring badop        submit a request with an opcode the kernel does not know:
 *                      refused while it is prepared (-EINVAL)
 *   uring nop N        submit N IORING_OP_NOP requests
 *
 * Prints "pid PID" first, then one "res N" per completion.
 */
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static int setup(struct ring *r, unsigned entries)
{
	struct io_uring_params p;
	void *sq, *cq;

	memset(&p, 0, sizeof(p));
	r->fd = syscall(__NR_io_uring_setup, entries, &p);
	if (r->fd < 0)
		return -1;
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -1;
	r->sq_tail = sq + p.sq_off.tail;
	r->sq_mask = sq + p.sq_off.ring_mask;
	r->sq_array = sq + p.sq_off.array;
	r->cq_head = cq + p.cq_off.head;
	r->cq_tail = cq + p.cq_off.tail;
	r->cq_mask = cq + p.cq_off.ring_mask;
	r->cqes = cq + p.cq_off.cqes;
	return 0;
}

static struct io_uring_sqe *next_sqe(struct ring *r)
{
	unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];

	memset(sqe, 0, sizeof(*sqe));
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	return sqe;
}

static int submit_and_wait(struct ring *r, unsigned n)
{
	unsigned head, i;

	if (syscall(__NR_io_uring_enter, r->fd, n, n, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
		perror("io_uring_enter");
		return -1;
	}
	head = *r->cq_head;
	for (i = 0; head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE); i++, head++)
		printf("res %d\n", r->cqes[head & *r->cq_mask].res);
	__atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
	return 0;
}

int main(int argc, char **argv)
{
	struct ring r;
	struct io_uring_sqe *sqe;
	unsigned i, n = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: %s open PATH | badop | nop N\n", argv[0]);
		return 2;
	}
	printf("pid %d\n", getpid());
	fflush(stdout);
	if (setup(&r, 8)) {
		perror("io_uring_setup");
		return 1;
	}
	if (!strcmp(argv[1], "open") && argc > 2) {
		sqe = next_sqe(&r);
		sqe->opcode = IORING_OP_OPENAT;
		sqe->fd = AT_FDCWD;
		sqe->addr = (unsigned long)argv[2];
		sqe->open_flags = O_RDONLY;
		sqe->user_data = 42;
	} else if (!strcmp(argv[1], "badop")) {
		sqe = next_sqe(&r);
		sqe->opcode = 250;
		sqe->user_data = 43;
	} else if (!strcmp(argv[1], "nop") && argc > 2) {
		n = atoi(argv[2]);
		if (n < 1 || n > 8)
			return 2;
		for (i = 0; i < n; i++) {
			sqe = next_sqe(&r);
			sqe->opcode = IORING_OP_NOP;
			sqe->user_data = 100 + i;
		}
	} else {
		return 2;
	}
	return submit_and_wait(&r, n) ? 1 : 0;
}
