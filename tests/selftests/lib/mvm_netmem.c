// SPDX-License-Identifier: GPL-2.0
/* See mvm_netmem.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mvm_netmem.h"
#include "mvm_test.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int mvm_nm_spawn(struct mvm_nm *n, const char *tag, unsigned int node,
		 const char *peers, const char *size, const char *extra)
{
	char nodebuf[16], extras[512], *argv[64], *save = NULL, *tok;
	int argc = 0, logfd;

	memset(n, 0, sizeof(*n));
	n->fd = -1;
	snprintf(n->sock, sizeof(n->sock), "/tmp/nm-%s.sock", tag);
	snprintf(n->log, sizeof(n->log), "/tmp/nm-%s.log", tag);
	snprintf(nodebuf, sizeof(nodebuf), "%u", node);
	snprintf(extras, sizeof(extras), "%s", extra ? extra : "");
	unlink(n->sock);
	argv[argc++] = "netmem-server";
	argv[argc++] = "--node";
	argv[argc++] = nodebuf;
	argv[argc++] = "--peers";
	argv[argc++] = (char *)peers;
	argv[argc++] = "--size";
	argv[argc++] = (char *)size;
	argv[argc++] = "--socket";
	argv[argc++] = n->sock;
	for (tok = strtok_r(extras, " ", &save); tok && argc < 62;
	     tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	logfd = open(n->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0)
		return -errno;
	n->pid = fork();
	if (n->pid < 0) {
		close(logfd);
		return -errno;
	}
	if (n->pid == 0) {
		dup2(logfd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(logfd);
	return 0;
}

int mvm_nm_attach(struct mvm_nm *n, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long end = now_ms() + timeout_ms;
	int s, st;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", n->sock);
	while (now_ms() < end) {
		if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
			n->pid = 0;
			n->status = st;
			return -ECHILD;		/* it exited */
		}
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			return -errno;
		if (!connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
			n->fd = mvm_recv_fd(s);
			close(s);
			return n->fd < 0 ? -EPROTO : 0;
		}
		close(s);
		usleep(20000);
	}
	return -ETIMEDOUT;
}

int mvm_nm_stop(struct mvm_nm *n, int sig)
{
	long long end = now_ms() + 10000;
	int st = 0;

	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	if (n->pid <= 0)
		return 0;
	if (sig)
		kill(n->pid, sig);
	while (waitpid(n->pid, &st, WNOHANG) == 0) {
		if (now_ms() > end) {
			kill(n->pid, SIGKILL);
			waitpid(n->pid, &st, 0);
			break;
		}
		usleep(10000);
	}
	n->pid = 0;
	return st;
}

void mvm_nm_dump(const struct mvm_nm *n)
{
	char line[512];
	FILE *f = fopen(n->log, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "# [%s] %s", n->log, line);
	fclose(f);
}

static sigjmp_buf bus_jmp;

static void on_bus(int sig)
{
	siglongjmp(bus_jmp, 1);
}

pid_t mvm_nm_worker(int fd, size_t len, int (*fn)(volatile char *, void *),
		    void *arg)
{
	pid_t pid = fork();
	char *p;

	if (pid)
		return pid;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		_exit(3);
	signal(SIGBUS, on_bus);
	if (sigsetjmp(bus_jmp, 1))
		_exit(4);
	_exit(fn(p, arg));
}

int mvm_nm_wait(pid_t pid, int deadline_ms)
{
	long long end = now_ms() + deadline_ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			break;
		if (r < 0)
			return -errno;
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -ETIMEDOUT;
		}
		usleep(5000);
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}
