/*
 * netloop MODE ITERATIONS [RATE]: network loads for bench/bench_net.py, on loopback.
 *
 *   tcp    connect()+close() of a TCP socket to a listener on 127.0.0.1 (a
 *          child accepts and closes); the client closes with SO_LINGER 0
 *          (RST, no TIME_WAIT: the ports never run out). Prints ns/iteration.
 *   dns    a DNS query (sendto 127.0.0.1:53) and the wait for its answer
 *          from a child bound to 127.0.0.1:53 that echoes it back with QR set.
 *          Prints ns/iteration.
 *   flood  ITERATIONS queries, each a distinct name and id (sendto, no answer
 *          awaited), back to back or paced at RATE queries/s; a child bound
 *          to 127.0.0.1:53 drains them. Prints queries/s sent.
 *
 * Run it in a network namespace of its own (the bench makes one).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* A query for "q<i>.bench.rsagent.example", id i: returns its length. */
static int query(unsigned char *buf, long i)
{
	char label[24];
	int n = snprintf(label, sizeof(label), "q%ld", i);
	unsigned char *p = buf;
	const char *rest[] = { "bench", "rsagent", "example" };

	*p++ = i >> 8; *p++ = i; *p++ = 0x01; *p++ = 0x00;  /* id, RD */
	*p++ = 0; *p++ = 1; memset(p, 0, 6); p += 6;        /* qdcount 1 */
	*p++ = n; memcpy(p, label, n); p += n;
	for (int k = 0; k < 3; k++) {
		int l = strlen(rest[k]);
		*p++ = l; memcpy(p, rest[k], l); p += l;
	}
	*p++ = 0;
	*p++ = 0; *p++ = 1; *p++ = 0; *p++ = 1;             /* A, IN */
	return p - buf;
}

static pid_t udp_server(int echo, int *ready)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = loopback(53);
	int big = 8 << 20;
	pid_t pid;

	setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (bind(s, (struct sockaddr *)&a, sizeof(a))) {
		perror("bind 127.0.0.1:53");
		exit(1);
	}
	pid = fork();
	if (pid == 0) {
		unsigned char buf[1500];
		struct sockaddr_in from;
		socklen_t fl;

		for (;;) {
			fl = sizeof(from);
			ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
			if (n > 3 && echo) {
				buf[2] |= 0x80;  /* QR: a response */
				sendto(s, buf, n, 0, (struct sockaddr *)&from, fl);
			}
		}
	}
	close(s);
	*ready = 1;
	return pid;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s tcp|dns|flood ITERATIONS [RATE]\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1];
	long n = atol(argv[2]);
	double rate = argc == 4 ? atof(argv[3]) : 0;
	int ready = 0;
	pid_t child;
	double a, b;

	if (!strcmp(mode, "tcp")) {
		int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		struct sockaddr_in addr = loopback(0);
		socklen_t len = sizeof(addr);
		struct linger lg = { 1, 0 };

		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(ls, (struct sockaddr *)&addr, sizeof(addr)) || listen(ls, 4096) ||
		    getsockname(ls, (struct sockaddr *)&addr, &len)) {
			perror("listener");
			return 1;
		}
		child = fork();
		if (child == 0) {
			for (;;) {
				int c = accept(ls, NULL, NULL);
				if (c >= 0)
					close(c);
			}
		}
		a = now_ns();
		for (long i = 0; i < n; i++) {
			int s = socket(AF_INET, SOCK_STREAM, 0);

			if (connect(s, (struct sockaddr *)&addr, sizeof(addr))) {
				perror("connect");
				return 1;
			}
			setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(s);
		}
		b = now_ns();
		printf("%.1f\n", (b - a) / n);
	} else if (!strcmp(mode, "dns") || !strcmp(mode, "flood")) {
		int flood = !strcmp(mode, "flood");
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in srv = loopback(53);
		unsigned char q[128], r[1500];
		int big = 8 << 20;

		child = udp_server(!flood, &ready);
		setsockopt(s, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		a = now_ns();
		for (long i = 0; i < n; i++) {
			int len = query(q, flood ? i : 0x4242);

			if (rate > 0 && i % 16 == 0) {
				/* paced: sleep until the i-th query is due */
				double due = a + i * 1e9 / rate, t = now_ns();

				if (due > t) {
					struct timespec d = { (time_t)((due - t) / 1e9), (long)((due - t)) % 1000000000L };
					nanosleep(&d, NULL);
				}
			}

			if (sendto(s, q, len, 0, (struct sockaddr *)&srv, sizeof(srv)) != len) {
				perror("sendto");
				return 1;
			}
			if (!flood && recv(s, r, sizeof(r), 0) < 0) {
				perror("recv");
				return 1;
			}
		}
		b = now_ns();
		if (flood)
			printf("%.0f\n", n / ((b - a) / 1e9));
		else
			printf("%.1f\n", (b - a) / n);
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}
