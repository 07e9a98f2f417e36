// SPDX-License-Identifier: GPL-2.0
/*
 * The io_uring transport: FETCH and COMMIT_AND_FETCH on a pager endpoint,
 * many commands in flight, bad commands, idle FETCHes, and a pager that
 * exits with commands in flight.
 */
#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_test.h"

#define SLOTS 32

struct slot {
	struct machvm_msg msg;
	struct machvm_cmd cmd;
	struct machvm_uring_cmd uc;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* liburing 2.3 has no io_uring_prep_uring_cmd: fill the SQE by hand. */
static void prep(struct io_uring *ring, int fd, unsigned int op,
		 struct slot *s, int i, int commit)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe)
		abort();	/* the rings here never fill up */
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = op;
	sqe->user_data = i;
	s->uc.reply = commit ? (uintptr_t)&s->cmd : 0;
	s->uc.msg = (uintptr_t)&s->msg;
	memcpy(sqe->cmd, &s->uc, sizeof(s->uc));
}

static int wait_cqe(struct io_uring *ring, int *res, double timeout)
{
	struct __kernel_timespec ts = { .tv_sec = (long)timeout,
		.tv_nsec = (long)((timeout - (long)timeout) * 1e9) };
	struct io_uring_cqe *cqe;
	int i;

	if (io_uring_wait_cqe_timeout(ring, &cqe, &ts))
		return -1;
	i = cqe->user_data;
	*res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return i;
}

/* Serve every message until @done: the uring pager loop in miniature. */
struct upager {
	int pager;
	struct io_uring ring;
	struct slot slots[SLOTS];
	char *buf;
	int requests, nops;
};

static void answer(struct upager *u, int i)
{
	struct slot *s = &u->slots[i];
	struct machvm_msg *m = &s->msg;

	memset(&s->cmd, 0, sizeof(s->cmd));
	s->cmd.object = m->object;
	switch (m->type) {
	case MACHVM_MSG_INIT:
		s->cmd.type = MACHVM_CMD_READY;
		break;
	case MACHVM_MSG_DATA_REQUEST:
		/* Each slot's data stays put until its SQE is consumed. */
		u->requests++;
		if (m->length > PG)
			abort();	/* cluster 1 here */
		mvm_fill(u->buf + i * PG, m->offset, m->length);
		s->cmd.type = MACHVM_CMD_DATA_SUPPLY;
		s->cmd.offset = m->offset;
		s->cmd.length = m->length;
		s->cmd.addr = (uintptr_t)(u->buf + i * PG);
		break;
	default:
		if (m->type == MACHVM_MSG_NOP)
			u->nops++;
		prep(&u->ring, u->pager, MACHVM_URING_FETCH, s, i, 0);
		return;
	}
	prep(&u->ring, u->pager, MACHVM_URING_COMMIT_AND_FETCH, s, i, 1);
}

static int upager_init_flags(struct upager *u, int pager, int nslots,
			     unsigned int flags)
{
	memset(u, 0, sizeof(*u));
	u->pager = pager;
	u->buf = aligned_alloc(PG, SLOTS * PG);
	if (io_uring_queue_init(64, &u->ring, flags))
		return -1;
	for (int i = 0; i < nslots; i++)
		prep(&u->ring, pager, MACHVM_URING_FETCH, &u->slots[i], i, 0);
	return io_uring_submit(&u->ring) == nslots ? 0 : -1;
}

static int upager_init(struct upager *u, int pager, int nslots)
{
	return upager_init_flags(u, pager, nslots, 0);
}

/* Serve until *done is set; returns the number of failed completions. */
static int upager_run(struct upager *u, volatile int *done)
{
	int bad = 0, res, i;

	while (!*done) {
		i = wait_cqe(&u->ring, &res, 0.05);
		if (i < 0)
			continue;
		if (res) {
			bad++;
			continue;
		}
		answer(u, i);
		/* Batch: drain what else completed before submitting. */
		while (io_uring_cq_ready(&u->ring)) {
			i = wait_cqe(&u->ring, &res, 0);
			if (i >= 0 && !res)
				answer(u, i);
			else if (i >= 0)
				bad++;
		}
		io_uring_submit(&u->ring);
	}
	return bad;
}

struct client {
	char *map;
	int pages;
	int first;
	int bad;
	volatile int *done;
	int *left;
	pthread_mutex_t *lock;
};

static void *client_main(void *p)
{
	struct client *c = p;

	for (int i = 0; i < c->pages; i++)
		if (mvm_check(c->map + (c->first + i) * PG,
			      (c->first + i) * PG, PG))
			c->bad = 1;
	pthread_mutex_lock(c->lock);
	if (--*c->left == 0)
		*c->done = 1;
	pthread_mutex_unlock(c->lock);
	return NULL;
}

FIXTURE(ur) {
	int dev, pager, fd;
	struct machvm_object_create oc;
	struct upager u;
};

FIXTURE_SETUP(ur)
{
	self->dev = mvm_dev();
	ASSERT_LE(0, self->dev);
	self->pager = mvm_pager(self->dev);
	ASSERT_LE(0, self->pager);
	self->fd = mvm_object(self->pager, 256 * PG, PROT_READ, 0, &self->oc);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(ur)
{
	close(self->fd);
	close(self->pager);
	close(self->dev);
}

FIXTURE_VARIANT(ur) {
	unsigned int ring_flags;
};

FIXTURE_VARIANT_ADD(ur, plain) {
	.ring_flags = 0,
};

/* Task work runs only when the pager waits for completions. */
FIXTURE_VARIANT_ADD(ur, defer_taskrun) {
	.ring_flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
};

/* Commands are issued by the ring's SQ thread, not the pager thread. */
FIXTURE_VARIANT_ADD(ur, sqpoll) {
	.ring_flags = IORING_SETUP_SQPOLL,
};

TEST_F(ur, fetch_and_commit_serve_threads)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	volatile int done = 0;
	int left = 8;
	struct client c[8];
	pthread_t th[8];
	char *map;

	ASSERT_EQ(0, upager_init_flags(&self->u, self->pager, SLOTS,
				       variant->ring_flags));
	map = mmap(NULL, 256 * PG, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	for (int i = 0; i < 8; i++) {
		c[i] = (struct client){ map, 32, 32 * i, 0, &done, &left,
					&lock };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, client_main, &c[i]));
	}
	EXPECT_EQ(0, upager_run(&self->u, &done));
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, c[i].bad);
	}
	EXPECT_EQ(256, self->u.requests);
	munmap(map, 256 * PG);
	io_uring_queue_exit(&self->u.ring);
}

TEST_F(ur, bad_commands_complete_with_errors)
{
	struct io_uring *ring = &self->u.ring;
	struct slot s = { 0 };
	int res;

	ASSERT_EQ(0, io_uring_queue_init(8, ring, 0));
	prep(ring, self->pager, 0x1234, &s, 1, 0);
	io_uring_submit(ring);
	ASSERT_EQ(1, wait_cqe(ring, &res, 2));
	EXPECT_EQ(-EOPNOTSUPP, res);

	/* ABI 1's raw opcode, and the right number with the wrong size. */
	prep(ring, self->pager, 0x4d01, &s, 11, 0);
	io_uring_submit(ring);
	ASSERT_EQ(11, wait_cqe(ring, &res, 2));
	EXPECT_EQ(-EOPNOTSUPP, res);
	prep(ring, self->pager, _IOWR(MACHVM_IOC_MAGIC, _IOC_NR(MACHVM_URING_FETCH),
				      struct machvm_cmd), &s, 12, 0);
	io_uring_submit(ring);
	ASSERT_EQ(12, wait_cqe(ring, &res, 2));
	EXPECT_EQ(-EOPNOTSUPP, res);

	prep(ring, self->pager, MACHVM_URING_FETCH, &s, 2, 1);
	io_uring_submit(ring);
	ASSERT_EQ(2, wait_cqe(ring, &res, 2));
	EXPECT_EQ(-EINVAL, res);

	prep(ring, self->pager, MACHVM_URING_COMMIT_AND_FETCH, &s, 3, 0);
	io_uring_submit(ring);
	ASSERT_EQ(3, wait_cqe(ring, &res, 2));
	EXPECT_EQ(-EINVAL, res);

	/* A bad command fails at once and nothing is left waiting. */
	s.cmd.type = MACHVM_CMD_DATA_SUPPLY;
	s.cmd.object = self->oc.id;
	s.cmd.offset = 1;
	prep(ring, self->pager, MACHVM_URING_COMMIT_AND_FETCH, &s, 4, 1);
	io_uring_submit(ring);
	ASSERT_EQ(4, wait_cqe(ring, &res, 2));
	EXPECT_EQ(-EINVAL, res);

	s.cmd.offset = 0;
	s.cmd.object = 999999;
	prep(ring, self->pager, MACHVM_URING_COMMIT_AND_FETCH, &s, 5, 1);
	io_uring_submit(ring);
	ASSERT_EQ(5, wait_cqe(ring, &res, 2));
	EXPECT_EQ(-ENOENT, res);

	/* A FETCH with nothing to do idles out with a NOP. */
	prep(ring, self->pager, MACHVM_URING_FETCH, &s, 6, 0);
	io_uring_submit(ring);
	ASSERT_EQ(6, wait_cqe(ring, &res, 5));
	EXPECT_EQ(0, res);
	EXPECT_EQ(MACHVM_MSG_NOP, s.msg.type);

	/* The URING_CMD on the device or an object fd is refused. */
	prep(ring, self->fd, MACHVM_URING_FETCH, &s, 7, 0);
	io_uring_submit(ring);
	ASSERT_EQ(7, wait_cqe(ring, &res, 2));
	EXPECT_GT(0, res);
	io_uring_queue_exit(ring);
}

TEST_F(ur, null_message_buffer_is_efault)
{
	struct io_uring *ring = &self->u.ring;
	struct io_uring_sqe *sqe;
	struct machvm_uring_cmd uc = { 0, 0 };
	int res;

	ASSERT_EQ(0, io_uring_queue_init(8, ring, 0));
	sqe = io_uring_get_sqe(ring);
	ASSERT_NE(NULL, sqe);
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = self->pager;
	sqe->cmd_op = MACHVM_URING_FETCH;
	sqe->user_data = 1;
	memcpy(sqe->cmd, &uc, sizeof(uc));
	io_uring_submit(ring);
	ASSERT_EQ(1, wait_cqe(ring, &res, 2));
	EXPECT_EQ(-EFAULT, res);
	io_uring_queue_exit(ring);
}

/* What upager_run_ordered() saw of the kernel's message order. */
struct order {
	unsigned long long prev_max;	/* highest seq of earlier batches */
	int inversions;	/* batches with a seq below prev_max */
	int multi;	/* batches of more than one message */
	int msgs;
};

/*
 * Serve as upager_run() does, taking what each wait left in the CQ ring as
 * one batch: no message of a batch may have a seq below one of an earlier
 * batch (the ABI header's "Message order"), and seqs only grow.
 */
static int upager_run_ordered(struct upager *u, volatile int *done,
			      struct order *o)
{
	struct __kernel_timespec ts = { .tv_nsec = 50 * 1000 * 1000 };
	struct io_uring_cqe *cqe;
	int bad = 0;

	while (!*done) {
		unsigned long long lo = ~0ULL, hi = 0;
		int idx[SLOTS], k = 0, n = 0;
		unsigned int head, seen = 0;

		if (io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts))
			continue;
		io_uring_for_each_cqe(&u->ring, head, cqe) {
			struct machvm_msg *m;

			seen++;
			if (cqe->res || cqe->user_data >= SLOTS) {
				bad++;
				continue;
			}
			idx[k++] = cqe->user_data;
			m = &u->slots[cqe->user_data].msg;
			if (m->type == MACHVM_MSG_NOP)
				continue;
			lo = m->seq < lo ? m->seq : lo;
			hi = m->seq > hi ? m->seq : hi;
			n++;
		}
		io_uring_cq_advance(&u->ring, seen);
		if (n) {
			if (lo <= o->prev_max)
				o->inversions++;
			if (hi > o->prev_max)
				o->prev_max = hi;
			o->msgs += n;
			o->multi += n > 1;
		}
		for (int j = 0; j < k; j++)
			answer(u, idx[j]);
		io_uring_submit(&u->ring);
	}
	return bad;
}

/*
 * Many faulting threads, one ring with 32 FETCHes: every message a ring
 * reaps comes after those of its earlier batches, with the default task
 * work and with DEFER_TASKRUN.  (Not SQPOLL: there the task work runs in
 * the SQ thread while the pager reaps, and the header makes no promise.)
 */
TEST(messages_reaped_in_seq_order)
{
	const unsigned int flags[] = {
		0, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	};

	for (int f = 0; f < 2; f++) {
		pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
		struct machvm_object_create oc;
		struct order o = { 0 };
		volatile int done = 0;
		int dev, pager, ofd, left = 16;
		struct client c[16];
		pthread_t th[16];
		struct upager u;
		char *map;

		dev = mvm_dev();
		ASSERT_LE(0, dev);
		pager = mvm_pager(dev);
		ASSERT_LE(0, pager);
		ofd = mvm_object(pager, 1024 * PG, PROT_READ, 0, &oc);
		ASSERT_LE(0, ofd);
		ASSERT_EQ(0, upager_init_flags(&u, pager, SLOTS, flags[f]));
		map = mmap(NULL, 1024 * PG, PROT_READ, MAP_SHARED, ofd, 0);
		ASSERT_NE(MAP_FAILED, map);
		for (int i = 0; i < 16; i++) {
			c[i] = (struct client){ map, 64, 64 * i, 0, &done,
						&left, &lock };
			ASSERT_EQ(0, pthread_create(&th[i], NULL, client_main,
						    &c[i]));
		}
		EXPECT_EQ(0, upager_run_ordered(&u, &done, &o));
		for (int i = 0; i < 16; i++) {
			pthread_join(th[i], NULL);
			EXPECT_EQ(0, c[i].bad);
		}
		TH_LOG("ring flags %#x: %d messages, %d batches of several, %d out of order",
		       flags[f], o.msgs, o.multi, o.inversions);
		EXPECT_EQ(1024, u.requests);
		EXPECT_EQ(0, o.inversions);
		EXPECT_LT(0, o.multi);	/* the order was put to the test */
		munmap(map, 1024 * PG);
		io_uring_queue_exit(&u.ring);
		free(u.buf);
		close(ofd);
		close(pager);
		close(dev);
	}
}

static int ring_up(int pager, void *u)
{
	return upager_init(u, pager, 16);
}

/* Answer init, then exit on the first data request. */
static int answer_init_then_exit(int pager, void *arg)
{
	struct upager *u = arg;
	int res, i;

	for (;;) {
		i = wait_cqe(&u->ring, &res, 10);
		if (i < 0 || res)
			return 3;
		if (u->slots[i].msg.type == MACHVM_MSG_DATA_REQUEST)
			return 0;
		answer(u, i);
		io_uring_submit(&u->ring);
	}
}

/* A pager process exits with FETCHes in flight and a fault waiting. */
TEST(pager_exits_with_commands_in_flight)
{
	struct upager u;
	const struct mvm_child_pager cp = {
		.prepare = ring_up, .serve = answer_init_then_exit, .arg = &u,
	};
	int fd, status;
	void *addr = NULL;
	pid_t pid;
	char *m;
	double t;

	pid = mvm_fork_pager(4 * PG, PROT_READ, 60000, &cp, &fd);
	ASSERT_LT(0, pid);
	ASSERT_LE(0, fd);
	m = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	t = now();
	EXPECT_EQ(1, mvm_touch(m + PG, 0, &addr));
	EXPECT_EQ(m + PG, (char *)addr);
	EXPECT_LT(now() - t, 10.0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	munmap(m, 4 * PG);
	close(fd);
}

/* The ring is closed while the pager lives on: nothing stays pinned. */
TEST(ring_closed_while_pager_lives)
{
	struct machvm_object_create oc;
	struct upager u;
	int dev = mvm_dev(), pager, ofd;
	struct machvm_msg msg;
	char *m;

	ASSERT_LE(0, dev);
	pager = mvm_pager(dev);
	ASSERT_LE(0, pager);
	ofd = mvm_object(pager, PG, PROT_READ, 0, &oc);
	ASSERT_LE(0, ofd);
	ASSERT_EQ(0, upager_init(&u, pager, 8));
	io_uring_queue_exit(&u.ring);
	/*
	 * Within the idle period the FETCHes drain; the blocking path then
	 * gets the init message, proving none swallowed it.
	 */
	sleep(3);
	m = mmap(NULL, PG, PROT_READ, MAP_SHARED, ofd, 0);
	ASSERT_NE(MAP_FAILED, m);
	ASSERT_EQ(0, mvm_read_msg(pager, &msg, 1000));
	EXPECT_EQ(MACHVM_MSG_INIT, msg.type);
	munmap(m, PG);
	close(ofd);
	close(pager);
	close(dev);
}

/*
 * MACHVM_IOC_FETCH_RELEASE: every idle FETCH completes at once with a NOP
 * (not after MACHVM_FETCH_IDLE_MS), and says how many it released.
 */
TEST(fetch_release_completes_idle_fetches)
{
	struct machvm_version v;
	int dev = mvm_dev(), pager, res, i, n;
	struct upager u;
	double t;

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, ioctl(dev, MACHVM_IOC_VERSION, &v));
	EXPECT_TRUE(v.features & MACHVM_F_FETCH_RELEASE);
	pager = mvm_pager(dev);
	ASSERT_LE(0, pager);
	EXPECT_EQ(-1, ioctl(pager, MACHVM_IOC_FETCH_RELEASE, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(dev, MACHVM_IOC_FETCH_RELEASE, 0));
	EXPECT_EQ(ENOTTY, errno);
	ASSERT_EQ(0, upager_init(&u, pager, 8));
	t = now();
	EXPECT_EQ(8, ioctl(pager, MACHVM_IOC_FETCH_RELEASE, 0));
	for (n = 0; n < 8; n++) {
		i = wait_cqe(&u.ring, &res, 1.0);
		if (i < 0)
			break;
		EXPECT_EQ(0, res);
		EXPECT_EQ(MACHVM_MSG_NOP, u.slots[i].msg.type);
	}
	EXPECT_EQ(8, n);
	/* Well within the idle period (MACHVM_FETCH_IDLE_MS, 2 s). */
	EXPECT_GT(MACHVM_FETCH_IDLE_MS / 2000.0, now() - t);
	EXPECT_EQ(0, ioctl(pager, MACHVM_IOC_FETCH_RELEASE, 0));
	io_uring_queue_exit(&u.ring);
	free(u.buf);
	close(pager);
	close(dev);
}

TEST_HARNESS_MAIN
