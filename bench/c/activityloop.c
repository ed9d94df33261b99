/*
 * activityloop OP ITERATIONS: one process-activity or kernel syscall in a
 * loop; prints ns/iteration. Each OP is a call the agent's process-activity
 * and kernel programs see, made cheap and repeatable:
 *
 *   ptrace    PTRACE_PEEKDATA of a stopped tracee (forked, PTRACE_TRACEME)
 *   kill      kill(self, SIGUSR1) with SIGUSR1 ignored (a signal is generated)
 *   setuid    setresuid(-1, -1, -1)          setgid   setresgid(-1, -1, -1)
 *   capset    capset() with the current sets
 *   memfd     memfd_create() + close()
 *   splice    splice 1 byte of a file into a pipe + read() it back
 *   prctl     prctl(PR_GET_DUMPABLE)
 *   chdir     chdir("/tmp")                  fchdir   fchdir(fd of /tmp)
 *   unshare   unshare(0)
 *   setns     setns(fd of /proc/self/ns/uts, CLONE_NEWUTS): the namespace it is in
 *   bpfmap    bpf(BPF_MAP_CREATE) of a 1-entry array + close()
 *   bpfbad    bpf(BPF_MAP_LOOKUP_ELEM) of fd -1: fails (-EBADF)
 *   mmapanon  mmap() of an anonymous PROT_READ|PROT_EXEC page + munmap()
 *   mmapfile  mmap() of this program's first page, PROT_READ|PROT_EXEC + munmap()
 *   mprotect  mprotect() of one page, RW -> RX and RX -> RW on alternate calls
 *   initmod   init_module() of an empty image: fails (-ENOEXEC; -ENOSYS without module support)
 *   finitmod  finit_module() of /etc/hostname: fails (-ENOEXEC; -ENOSYS without module support)
 *   delmod    delete_module() of a name no module has: fails (-ENOENT; -ENOSYS without module support)
 *   uringsetup io_uring_setup() of a 1-entry ring + close()
 *   uringnop  io_uring_enter() of one IORING_OP_NOP + reaping its completion (raw syscalls and
 *             the rings mmapped, no liburing)
 *   opentree  open_tree(OPEN_TREE_CLONE) of a directory in /tmp + close(), in a private mount
 *             namespace (a detached bind mount, dropped at close)
 *   fsmount   fsmount() of a tmpfs context never created (FSCONFIG_CMD_CREATE): fails (-EINVAL)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
static struct __user_cap_data_struct caps[2];
static int fd = -1, pipefd[2] = { -1, -1 };
static pid_t tracee;
static long word;
static char *page, tmpdir[] = "/tmp/rsagent-bench-XXXXXX";
static long pagesize, calls;
static union bpf_attr map_attr = { .map_type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8,
				   .max_entries = 1 };
static union bpf_attr bad_attr = { .map_fd = -1 };

/* io_uring from raw syscalls: the submission and completion rings, mmapped */
static struct {
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
} ring;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void op_ptrace(void) { word = ptrace(PTRACE_PEEKDATA, tracee, &word, 0); }
static void op_kill(void) { kill(getpid(), SIGUSR1); }
static void op_setuid(void) { setresuid(-1, -1, -1); }
static void op_setgid(void) { setresgid(-1, -1, -1); }
static void op_capset(void) { syscall(SYS_capset, &hdr, caps); }
static void op_memfd(void) { close(memfd_create("bench", 0)); }
static void op_prctl(void) { prctl(PR_GET_DUMPABLE, 0, 0, 0, 0); }
static void op_unshare(void) { unshare(0); }

static void op_splice(void)
{
	loff_t off = 0;
	char byte;

	if (splice(fd, &off, pipefd[1], NULL, 1, 0) != 1 || read(pipefd[0], &byte, 1) != 1)
		die("splice");
}

static void op_chdir(void)
{
	if (chdir("/tmp"))
		die("chdir");
}

static void op_fchdir(void)
{
	if (fchdir(fd))
		die("fchdir");
}

static void op_setns(void)
{
	if (setns(fd, CLONE_NEWUTS))
		die("setns");
}

static void op_bpfmap(void)
{
	int map = syscall(SYS_bpf, BPF_MAP_CREATE, &map_attr, sizeof(map_attr));

	if (map < 0)
		die("bpf(BPF_MAP_CREATE)");
	close(map);
}

static void op_bpfbad(void) { syscall(SYS_bpf, BPF_MAP_LOOKUP_ELEM, &bad_attr, sizeof(bad_attr)); }

static void op_mmap(int flags, int mfd)
{
	void *p = mmap(NULL, pagesize, PROT_READ | PROT_EXEC, flags, mfd, 0);

	if (p == MAP_FAILED)
		die("mmap");
	munmap(p, pagesize);
}

static void op_mmapanon(void) { op_mmap(MAP_PRIVATE | MAP_ANONYMOUS, -1); }
static void op_mmapfile(void) { op_mmap(MAP_PRIVATE, fd); }

static void op_mprotect(void)
{
	if (mprotect(page, pagesize, calls++ & 1 ? PROT_READ | PROT_WRITE : PROT_READ | PROT_EXEC))
		die("mprotect");
}

static void op_initmod(void) { syscall(SYS_init_module, NULL, 0, ""); }
static void op_finitmod(void) { syscall(SYS_finit_module, fd, "", 0); }
static void op_delmod(void) { syscall(SYS_delete_module, "rsagent_bench_no_such_module", O_NONBLOCK); }

static void op_uringsetup(void)
{
	struct io_uring_params p;
	int r;

	memset(&p, 0, sizeof(p));
	r = syscall(SYS_io_uring_setup, 1, &p);
	if (r < 0)
		die("io_uring_setup");
	close(r);
}

static void op_uringnop(void)
{
	unsigned tail = *ring.sq_tail, idx = tail & *ring.sq_mask, head;

	memset(&ring.sqes[idx], 0, sizeof(ring.sqes[idx]));
	ring.sqes[idx].opcode = IORING_OP_NOP;
	ring.sq_array[idx] = idx;
	__atomic_store_n(ring.sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) != 1)
		die("io_uring_enter");
	head = *ring.cq_head;
	if (head == __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE) || ring.cqes[head & *ring.cq_mask].res)
		die("io_uring NOP completion");
	__atomic_store_n(ring.cq_head, head + 1, __ATOMIC_RELEASE);
}

static void op_opentree(void)
{
	int tree = syscall(SYS_open_tree, AT_FDCWD, tmpdir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

	if (tree < 0)
		die("open_tree");
	close(tree);
}

static void op_fsmount(void) { syscall(SYS_fsmount, fd, FSMOUNT_CLOEXEC, 0); }

static void setup_uring(void)
{
	struct io_uring_params p;
	char *sq, *cq;

	memset(&p, 0, sizeof(p));
	fd = syscall(SYS_io_uring_setup, 1, &p);
	if (fd < 0)
		die("io_uring_setup");
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
	ring.sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || ring.sqes == MAP_FAILED)
		die("mmap of the io_uring rings");
	ring.sq_tail = (unsigned *)(sq + p.sq_off.tail);
	ring.sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	ring.sq_array = (unsigned *)(sq + p.sq_off.array);
	ring.cq_head = (unsigned *)(cq + p.cq_off.head);
	ring.cq_tail = (unsigned *)(cq + p.cq_off.tail);
	ring.cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	ring.cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
}

/* a private mount namespace (nothing propagates out of it) and a directory to clone */
static void setup_mountns(void)
{
	if (unshare(CLONE_NEWNS) || syscall(SYS_mount, "none", "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die("private mount namespace");
	if (!mkdtemp(tmpdir))
		die("mkdtemp");
}

static const struct {
	const char *name;
	void (*fn)(void);
} OPS[] = {
	{ "ptrace", op_ptrace }, { "kill", op_kill }, { "setuid", op_setuid }, { "setgid", op_setgid },
	{ "capset", op_capset }, { "memfd", op_memfd }, { "splice", op_splice }, { "prctl", op_prctl },
	{ "chdir", op_chdir }, { "fchdir", op_fchdir }, { "unshare", op_unshare }, { "setns", op_setns },
	{ "bpfmap", op_bpfmap }, { "bpfbad", op_bpfbad }, { "mmapanon", op_mmapanon }, { "mmapfile", op_mmapfile },
	{ "mprotect", op_mprotect }, { "initmod", op_initmod }, { "finitmod", op_finitmod }, { "delmod", op_delmod },
	{ "uringsetup", op_uringsetup }, { "uringnop", op_uringnop }, { "opentree", op_opentree },
	{ "fsmount", op_fsmount },
};

static void setup(const char *op)
{
	if (!strcmp(op, "ptrace")) {
		tracee = fork();
		if (tracee == 0) {
			ptrace(PTRACE_TRACEME, 0, 0, 0);
			raise(SIGSTOP);
			_exit(0);
		}
		waitpid(tracee, NULL, 0);
	} else if (!strcmp(op, "kill")) {
		signal(SIGUSR1, SIG_IGN);
	} else if (!strcmp(op, "capset")) {
		if (syscall(SYS_capget, &hdr, caps))
			die("capget");
	} else if (!strcmp(op, "splice")) {
		if (pipe(pipefd))
			die("pipe");
		fd = open("/etc/hostname", O_RDONLY);
	} else if (!strcmp(op, "fchdir")) {
		fd = open("/tmp", O_RDONLY | O_DIRECTORY);
	} else if (!strcmp(op, "setns")) {
		fd = open("/proc/self/ns/uts", O_RDONLY);
	} else if (!strcmp(op, "mmapfile")) {
		fd = open("/proc/self/exe", O_RDONLY);
	} else if (!strcmp(op, "finitmod")) {
		fd = open("/etc/hostname", O_RDONLY);
	} else if (!strcmp(op, "mprotect")) {
		page = mmap(NULL, pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED)
			die("mmap");
	} else if (!strcmp(op, "uringnop")) {
		setup_uring();
	} else if (!strcmp(op, "opentree")) {
		setup_mountns();
	} else if (!strcmp(op, "fsmount")) {
		fd = syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	}
	if (fd < 0 && (!strcmp(op, "splice") || !strcmp(op, "fchdir") || !strcmp(op, "setns") ||
		       !strcmp(op, "mmapfile") || !strcmp(op, "finitmod") || !strcmp(op, "fsmount")))
		die("open");
}

int main(int argc, char **argv)
{
	void (*fn)(void) = NULL;
	struct timespec a, b;
	long n, i;

	if (argc != 3) {
		fprintf(stderr, "usage: %s OP ITERATIONS\n", argv[0]);
		return 2;
	}
	for (i = 0; i < (long)(sizeof(OPS) / sizeof(OPS[0])); i++)
		if (!strcmp(argv[1], OPS[i].name))
			fn = OPS[i].fn;
	if (!fn) {
		fprintf(stderr, "unknown op %s\n", argv[1]);
		return 2;
	}
	n = atol(argv[2]);
	pagesize = sysconf(_SC_PAGESIZE);
	setup(argv[1]);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++)
		fn();
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (tracee) {
		kill(tracee, SIGKILL);
		waitpid(tracee, NULL, 0);
	}
	if (!strcmp(argv[1], "opentree"))
		rmdir(tmpdir);
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	return 0;
}
