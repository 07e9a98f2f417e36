// SPDX-License-Identifier: GPL-2.0
/* Rendezvous of pair-mode tests; see mvm_pair.h. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "mvm_pair.h"

int mvm_pair_env(struct mvm_pair *p)
{
	const char *node = getenv("MVM_NODE");
	const char *self = getenv("MVM_SELF_IP");
	const char *peer = getenv("MVM_PEER_IP");

	memset(p, 0, sizeof(*p));
	if (!node || (strcmp(node, "a") && strcmp(node, "b")) || !self ||
	    !peer || inet_pton(AF_INET, self, &p->self) != 1 ||
	    inet_pton(AF_INET, peer, &p->peer) != 1)
		return -EINVAL;
	p->node = node[0];
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int set_timeouts(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

static int pair_accept(const struct mvm_pair *p, uint16_t port, int ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr = p->self };
	struct pollfd pfd;
	int one = 1, ls, fd, rc;

	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0)
		return -errno;
	if (setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 1)) {
		rc = -errno;
		close(ls);
		return rc;
	}
	pfd = (struct pollfd){ .fd = ls, .events = POLLIN };
	rc = poll(&pfd, 1, ms);
	if (rc <= 0) {
		rc = rc ? -errno : -ETIMEDOUT;
		close(ls);
		return rc;
	}
	fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	rc = fd < 0 ? -errno : fd;
	close(ls);
	return rc;
}

static int pair_dial(const struct mvm_pair *p, uint16_t port, int ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr = p->peer };
	long long end = now_ms() + ms;
	int fd, rc = -ETIMEDOUT;

	while (now_ms() < end) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		/* SO_SNDTIMEO bounds connect() too. */
		set_timeouts(fd, 1000);
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return fd;
		rc = -errno; /* not listening yet: ECONNREFUSED */
		close(fd);
		usleep(20000);
	}
	return rc;
}

int mvm_pair_connect(const struct mvm_pair *p, uint16_t port, int timeout_ms)
{
	int fd, rc;

	fd = p->node == 'a' ? pair_accept(p, port, timeout_ms) :
			      pair_dial(p, port, timeout_ms);
	if (fd < 0)
		return fd;
	rc = set_timeouts(fd, timeout_ms);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

int mvm_write_full(int fd, const void *buf, size_t len)
{
	const char *b = buf;
	ssize_t n;

	while (len) {
		n = send(fd, b, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		b += n;
		len -= n;
	}
	return 0;
}

int mvm_read_full(int fd, void *buf, size_t len)
{
	char *b = buf;
	ssize_t n;

	while (len) {
		n = recv(fd, b, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n == 0)
			return -EPIPE;
		b += n;
		len -= n;
	}
	return 0;
}

int mvm_pair_barrier(int sock)
{
	char c = 'B';
	int rc;

	rc = mvm_write_full(sock, &c, 1);
	if (!rc)
		rc = mvm_read_full(sock, &c, 1);
	if (!rc && c != 'B')
		rc = -EPROTO;
	return rc;
}

int mvm_pair_sync(const struct mvm_pair *p, uint16_t port, int timeout_ms)
{
	int fd, rc;

	fd = mvm_pair_connect(p, port, timeout_ms);
	if (fd < 0)
		return fd;
	rc = mvm_pair_barrier(fd);
	close(fd);
	return rc;
}
