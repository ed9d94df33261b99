/*
 * activityloop OP ITERATIONS: one process-activity syscall in a loop;
 * prints ns/iteration. Each OP is a call the agent's process-activity
 * programs see, made cheap and repeatable:
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
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
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

static const struct {
	const char *name;
	void (*fn)(void);
} OPS[] = {
	{ "ptrace", op_ptrace }, { "kill", op_kill }, { "setuid", op_setuid }, { "setgid", op_setgid },
	{ "capset", op_capset }, { "memfd", op_memfd }, { "splice", op_splice }, { "prctl", op_prctl },
	{ "chdir", op_chdir }, { "fchdir", op_fchdir }, { "unshare", op_unshare }, { "setns", op_setns },
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
	}
	if ((!strcmp(op, "splice") || !strcmp(op, "fchdir") || !strcmp(op, "setns")) && fd < 0)
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
	setup(argv[1]);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++)
		fn();
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (tracee) {
		kill(tracee, SIGKILL);
		waitpid(tracee, NULL, 0);
	}
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	return 0;
}
