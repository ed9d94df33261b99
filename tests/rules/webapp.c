/* A stand-in web application for the demo rules (tests/rules/test_demo_policies.py).
 *   webapp read PATH [DELAY_S]   open+read PATH after DELAY_S seconds (default 0)
 *   webapp spawn PATH [ARG...]   fork, exec PATH in the child, wait for it
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "read") == 0) {
		char buf[64];
		if (argc >= 4)
			sleep(atoi(argv[3]));
		int fd = open(argv[2], O_RDONLY);
		if (fd < 0) {
			perror("open");
			return 1;
		}
		if (read(fd, buf, sizeof(buf)) < 0)
			perror("read");
		close(fd);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "spawn") == 0) {
		pid_t pid = fork();
		if (pid == 0) {
			execv(argv[2], &argv[2]);
			perror("execv");
			_exit(127);
		}
		int status = 0;
		waitpid(pid, &status, 0);
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	}
	fprintf(stderr, "usage: webapp read PATH [DELAY_S] | webapp spawn PATH [ARG...]\n");
	return 2;
}
