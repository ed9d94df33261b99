/*
 * fimloop MODE DIR ITERATIONS: a file-integrity load in a loop; prints
 * ns/iteration.
 *   open  open()+close() of DIR/target (must exist)
 *   cru   create (open O_CREAT)+close, rename, unlink of DIR/a -> DIR/b
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char target[4096], a[4096], b[4096];

	if (argc != 4 || (strcmp(argv[1], "open") && strcmp(argv[1], "cru"))) {
		fprintf(stderr, "usage: %s open|cru DIR ITERATIONS\n", argv[0]);
		return 2;
	}
	snprintf(target, sizeof(target), "%s/target", argv[2]);
	snprintf(a, sizeof(a), "%s/a", argv[2]);
	snprintf(b, sizeof(b), "%s/b", argv[2]);
	long n = atol(argv[3]);
	int cru = !strcmp(argv[1], "cru");
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		int fd = cru ? open(a, O_CREAT | O_WRONLY, 0644) : open(target, O_RDONLY);

		if (fd < 0) {
			perror("open");
			return 1;
		}
		close(fd);
		if (cru && (rename(a, b) || unlink(b))) {
			perror("rename/unlink");
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	printf("%.1f\n", ns / n);
	return 0;
}
