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

volatile uint64_t *mvm_nm_res;
int mvm_nm_results(void)
{
	void *p = mmap(NULL, PG, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	mvm_nm_res = p;
	return 0;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int mvm_nm_count_fn(volatile char *p, void *arg)
{
	const int *adds = arg;
	int i;

	for (i = 0; i < *adds; i++) {
		__atomic_fetch_add(MVM_NM_WORD(p, 0), 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(MVM_NM_WORD(p, 1), 1, __ATOMIC_SEQ_CST);
	}
	return 0;
}

int mvm_nm_count_forever_fn(volatile char *p, void *arg)
{
	for (;;)
		__atomic_fetch_add(MVM_NM_WORD(p, 0), 1, __ATOMIC_SEQ_CST);
	return 0;
}

int mvm_nm_read_counters_fn(volatile char *p, void *arg)
{
	mvm_nm_res[0] = *MVM_NM_WORD(p, 0);
	mvm_nm_res[1] = *MVM_NM_WORD(p, 1);
	return 0;
}

int mvm_nm_read_word_fn(volatile char *p, void *arg)
{
	mvm_nm_res[0] = *MVM_NM_WORD(p, (uintptr_t)arg);
	return 0;
}

int mvm_nm_write_word_fn(volatile char *p, void *arg)
{
	*MVM_NM_WORD(p, (uintptr_t)arg) = 0x1234 + (uintptr_t)arg;
	return 0;
}

int mvm_nm_pingpong_fn(volatile char *p, void *arg)
{
	struct mvm_nm_pingpong *pp = arg;
	volatile uint64_t *w = MVM_NM_WORD(p, MVM_NM_PINGPONG);
	int64_t end = now_us() + MVM_NM_DEADLINE_US;
	uint64_t want;
	int i;

	for (i = 0; i < pp->rounds; i++) {
		want = 2 * (uint64_t)i + pp->parity;
		while (*w != want) {
			if (*w > want)
				return 12;	/* a write was lost or doubled */
			if (now_us() > end)
				return 13;
		}
		*w = want + 1;
	}
	return 0;
}

int mvm_nm_reader_fn(volatile char *p, void *arg)
{
	const uint64_t *ack = arg;
	int64_t end = now_us() + MVM_NM_DEADLINE_US;
	uint64_t last = 0, v;

	while (last < MVM_NM_VALUES) {
		v = *MVM_NM_WORD(p, MVM_NM_FLAG);
		if (v == last) {
			if (now_us() > end) {
				mvm_nm_res[16 + *ack] = v;
				mvm_nm_res[24 + *ack] = *MVM_NM_WORD(p, MVM_NM_DATA);
				return 13;
			}
			continue;
		}
		if (v != last + 1)
			return 14;	/* a write went unseen */
		if (*MVM_NM_WORD(p, MVM_NM_DATA) < v)
			return 15;	/* stale read */
		last = v;
		*MVM_NM_WORD(p, *ack) = v;
		mvm_nm_res[8 + *ack] = v;	/* progress, for the log */
	}
	return 0;
}

int mvm_nm_writer_fn(volatile char *p, void *arg)
{
	int64_t end = now_us() + MVM_NM_DEADLINE_US;
	uint64_t v;

	for (v = 1; v <= MVM_NM_VALUES; v++) {
		mvm_nm_res[8] = v;	/* progress, for the log */
		*MVM_NM_WORD(p, MVM_NM_DATA) = v;
		*MVM_NM_WORD(p, MVM_NM_FLAG) = v;
		while (*MVM_NM_WORD(p, MVM_NM_ACK0) < v ||
		       *MVM_NM_WORD(p, MVM_NM_ACK1) < v)
			if (now_us() > end) {
				mvm_nm_res[9] = *MVM_NM_WORD(p, MVM_NM_FLAG);
				mvm_nm_res[10] = *MVM_NM_WORD(p, MVM_NM_DATA);
				mvm_nm_res[11] = *MVM_NM_WORD(p, MVM_NM_ACK0);
				mvm_nm_res[12] = *MVM_NM_WORD(p, MVM_NM_ACK1);
				return 13;
			}
	}
	return 0;
}

static long long now_ms(void)
{
	return now_us() / 1000;
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
