// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "kselftest.h"
#include "mvm_test.h"

int mvm_dev(void)
{
	return open(MACHVM_DEVICE, O_RDWR | O_CLOEXEC);
}

int mvm_pager(int dev)
{
	struct machvm_pager_create pc = { 0 };

	if (ioctl(dev, MACHVM_IOC_PAGER_CREATE, &pc))
		return -errno;
	return pc.fd;
}

int mvm_anon(uint64_t size, uint64_t limit, uint64_t *name)
{
	struct machvm_anon_create ac = { .size = size, .resident_limit = limit };
	int dev = mvm_dev(), ret;

	if (dev < 0)
		return -errno;
	ret = ioctl(dev, MACHVM_IOC_ANON_CREATE, &ac);
	close(dev);
	if (ret)
		return -errno;
	if (name)
		*name = ac.name;
	return ac.fd;
}

int mvm_resident(const void *base, uint64_t i)
{
	unsigned char v = 0;

	if (mincore((char *)base + i * PG, PG, &v))
		return -1;
	return v & 1;
}

const char *mvm_disk_dir(void)
{
	const char *d = getenv("MVM_DISK_DIR");

	return d && *d ? d : "/tmp";
}

int mvm_object(int pager, uint64_t size, uint32_t prot, uint32_t timeout_ms,
	       struct machvm_object_create *oc)
{
	memset(oc, 0, sizeof(*oc));
	oc->size = size;
	oc->max_prot = prot;
	oc->attr.timeout_ms = timeout_ms;
	if (ioctl(pager, MACHVM_IOC_OBJECT_CREATE, oc))
		return -errno;
	return oc->fd;
}

int mvm_read_msg(int pager, struct machvm_msg *m, int timeout_ms)
{
	struct pollfd p = { .fd = pager, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	n = read(pager, m, sizeof(*m));
	if (n < 0)
		return -errno;
	return n == sizeof(*m) ? 0 : -EIO;
}

int mvm_cmd(int pager, const struct machvm_cmd *c)
{
	ssize_t n = write(pager, c, sizeof(*c));

	if (n < 0)
		return -errno;
	return n == sizeof(*c) ? 0 : -EIO;
}

int mvm_ready_flags(int pager, uint64_t obj, uint16_t cluster,
		    uint32_t timeout_ms, uint32_t flags)
{
	struct machvm_cmd c = { .type = MACHVM_CMD_READY, .object = obj,
				.flags = flags };

	c.attr.cluster_pages = cluster;
	c.attr.timeout_ms = timeout_ms;
	return mvm_cmd(pager, &c);
}

int mvm_ready(int pager, uint64_t obj, uint16_t cluster, uint32_t timeout_ms)
{
	return mvm_ready_flags(pager, obj, cluster, timeout_ms, 0);
}

int mvm_supply(int pager, uint64_t obj, uint64_t off, uint64_t len,
	       const void *buf, uint32_t flags)
{
	struct machvm_cmd c = { .type = MACHVM_CMD_DATA_SUPPLY, .object = obj,
				.offset = off, .length = len,
				.addr = (uintptr_t)buf, .flags = flags };
	return mvm_cmd(pager, &c);
}

int mvm_unavailable(int pager, uint64_t obj, uint64_t off, uint64_t len)
{
	struct machvm_cmd c = { .type = MACHVM_CMD_DATA_UNAVAILABLE,
				.object = obj, .offset = off, .length = len };
	return mvm_cmd(pager, &c);
}

int mvm_error(int pager, uint64_t obj, uint64_t off, uint64_t len, int err)
{
	struct machvm_cmd c = { .type = MACHVM_CMD_DATA_ERROR, .object = obj,
				.offset = off, .length = len, .error = err };
	return mvm_cmd(pager, &c);
}

int mvm_region(int dev, void *addr, struct machvm_region *r)
{
	memset(r, 0, sizeof(*r));
	r->addr = (uintptr_t)addr;
	return ioctl(dev, MACHVM_IOC_REGION, r) ? -errno : 0;
}

uint64_t mvm_word(uint64_t off)
{
	return (off & ~7ULL) ^ 0x9e3779b97f4a7c15ULL;
}

void mvm_fill(void *buf, uint64_t off, size_t len)
{
	uint64_t *w = buf;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = mvm_word(off + i * 8);
}

int mvm_check(const void *buf, uint64_t off, size_t len)
{
	const uint64_t *w = buf;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != mvm_word(off + i * 8))
			return -1;
	return 0;
}

int mvm_dirty_free_pages(size_t bytes)
{
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	memset(p, 0xa5, bytes);
	munmap(p, bytes);
	return 0;
}

long mvm_first_nonzero(const void *buf, size_t len)
{
	const unsigned char *c = buf;

	for (size_t i = 0; i < len; i++)
		if (c[i])
			return (long)i;
	return -1;
}

static __thread sigjmp_buf *touch_env;
static __thread void *touch_addr;

static void bus_handler(int sig, siginfo_t *si, void *uc)
{
	touch_addr = si->si_addr;
	if (touch_env)
		siglongjmp(*touch_env, 1);
	_exit(99);
}

int mvm_touch(volatile char *p, int write, void **bus_addr)
{
	struct sigaction sa = { .sa_sigaction = bus_handler,
				.sa_flags = SA_SIGINFO | SA_NODEFER };
	sigjmp_buf env;

	sigaction(SIGBUS, &sa, NULL);
	touch_env = &env;
	if (sigsetjmp(env, 1)) {
		touch_env = NULL;
		if (bus_addr)
			*bus_addr = touch_addr;
		return 1;
	}
	if (write)
		*p = 1;
	else
		(void)*p;
	touch_env = NULL;
	return 0;
}

int mvm_send_fd(int sock, int fd)
{
	char c = 0;
	struct iovec iov = { &c, 1 };
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = u.b, .msg_controllen = sizeof(u.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	memset(&u, 0, sizeof(u));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == 1 ? 0 : -errno;
}

int mvm_recv_fd(int sock)
{
	char c;
	struct iovec iov = { &c, 1 };
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = u.b, .msg_controllen = sizeof(u.b) };
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &mh, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

pid_t mvm_fork_pager(uint64_t size, uint32_t prot, uint32_t timeout_ms,
		     const struct mvm_child_pager *cp, int *fd)
{
	struct machvm_object_create oc;
	int sv[2], pager, ofd;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		pager = mvm_pager(mvm_dev());
		ofd = mvm_object(pager, size, prot, timeout_ms, &oc);
		if (ofd < 0 || (cp->prepare && cp->prepare(pager, cp->arg)) ||
		    mvm_send_fd(sv[1], ofd))
			_exit(2);
		close(ofd);
		close(sv[1]);
		_exit(cp->serve(pager, cp->arg));
	}
	close(sv[1]);
	*fd = pid > 0 ? mvm_recv_fd(sv[0]) : -1;
	close(sv[0]);
	return pid;
}

static void answer(struct mvm_server *s, const struct machvm_msg *m)
{
	static __thread char *buf;

	if (!buf)
		buf = aligned_alloc(PG, MACHVM_MAX_XFER);
	switch (m->type) {
	case MACHVM_MSG_INIT:
		atomic_fetch_add(&s->inits, 1);
		mvm_ready_flags(s->pager, m->object, s->cluster, s->timeout_ms,
				s->ready_flags);
		atomic_fetch_add(&s->readies, 1);
		break;
	case MACHVM_MSG_TERMINATE:
		atomic_fetch_add(&s->terminates, 1);
		break;
	case MACHVM_MSG_DATA_RETURN:
		atomic_fetch_add(&s->returns, 1);
		break;
	case MACHVM_MSG_DATA_REQUEST:
		atomic_fetch_add(&s->requests, 1);
		atomic_fetch_add(&s->req_pages, m->length / PG);
		if (m->offset == 0)
			atomic_fetch_add(&s->page0_requests, 1);
		if (s->delay_ms)
			usleep(s->delay_ms * 1000);
		switch (s->mode) {
		case MVM_PATTERN:
			mvm_fill(buf, m->offset, m->length);
			mvm_supply(s->pager, m->object, m->offset, m->length,
				   buf, 0);
			break;
		case MVM_ZERO:
			mvm_unavailable(s->pager, m->object, m->offset,
					m->length);
			break;
		case MVM_ERROR:
			mvm_error(s->pager, m->object, m->offset, m->length,
				  EIO);
			break;
		case MVM_SILENT:
			break;
		}
		break;
	}
}

static void *server_main(void *arg)
{
	struct mvm_server *s = arg;
	struct machvm_msg m;

	while (!atomic_load(&s->stop))
		if (!mvm_read_msg(s->pager, &m, 50))
			answer(s, &m);
	return NULL;
}

void mvm_server_start(struct mvm_server *s, int pager, enum mvm_mode mode)
{
	s->pager = pager;
	s->mode = mode;
	atomic_store(&s->stop, 0);
	if (!s->cluster)
		s->cluster = 1;
	pthread_create(&s->th, NULL, server_main, s);
}

void mvm_server_stop(struct mvm_server *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
}

int mvm_pager_socket_fd(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int i, s, fd;

	if (strlen(path) >= sizeof(a.sun_path))
		return -1;
	strcpy(a.sun_path, path);
	for (i = 0; i < 500; i++) {
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			return -1;
		if (!connect(s, (struct sockaddr *)&a, sizeof(a))) {
			fd = mvm_recv_fd(s);
			close(s);
			return fd;
		}
		close(s);
		usleep(20000);
	}
	return -1;
}

long long mvm_stats_value(const char *path, const char *key)
{
	char buf[8192], pat[64], *line, *at;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	at = strstr(line, pat);
	return at ? atoll(at + strlen(pat)) : -1;
}

int mvm_stats_request(pid_t pid, const char *path)
{
	struct stat st0, st1;
	int i;

	if (stat(path, &st0))
		st0.st_size = 0;
	kill(pid, SIGUSR1);
	for (i = 0; i < 250; i++) {
		if (!stat(path, &st1) && st1.st_size > st0.st_size)
			return 0;
		usleep(20000);
	}
	return -1;
}

const char *mvm_memtester_path(void)
{
	static const char *const paths[] = {
		"/usr/bin/memtester", "/usr/sbin/memtester", "/bin/memtester",
		"/sbin/memtester",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(paths); i++)
		if (!access(paths[i], X_OK))
			return paths[i];
	return NULL;
}

char *mvm_slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, len - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}
