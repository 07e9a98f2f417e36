// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz: well over 100,000 random and malformed commands, ioctls and
 * io_uring commands against live endpoints and objects while faults are
 * being served.  Every call must come back with success or a documented
 * errno; the kernel must not warn (the harness reads the kernel log); the
 * served data must stay intact.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_test.h"

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* A value that is often interesting: edges, near-valid, random. */
static uint64_t pick(uint64_t valid)
{
	switch (rnd() % 8) {
	case 0: return 0;
	case 1: return valid;
	case 2: return valid + PG;
	case 3: return valid + 1;
	case 4: return ~0ULL - (rnd() % 4096);
	case 5: return rnd() % (1ULL << 32);
	case 6: return (rnd() % 128) * PG;
	default: return rnd();
	}
}

static int allowed(int err)
{
	return err == EINVAL || err == ENOENT || err == EFAULT ||
	       err == ENOTTY || err == EOPNOTSUPP || err == ENOMEM ||
	       err == EBADF || err == EAGAIN || err == EACCES ||
	       err == ENXIO;
}

#define NOBJ 3
#define OBJ_PAGES 64

TEST(random_commands)
{
	struct machvm_object_create oc[NOBJ];
	struct mvm_server srv = { 0 };
	int dev = mvm_dev(), pager, other, fds[NOBJ];
	uint64_t ids[NOBJ + 2];
	char *buf, *map, *hole;
	long calls = 0, ok = 0;

	ASSERT_LE(0, dev);
	pager = mvm_pager(dev);
	other = mvm_pager(dev);
	ASSERT_LE(0, pager);
	ASSERT_LE(0, other);
	for (int i = 0; i < NOBJ; i++) {
		fds[i] = mvm_object(pager, OBJ_PAGES * PG,
				    PROT_READ | PROT_WRITE, 0, &oc[i]);
		ASSERT_LE(0, fds[i]);
		ids[i] = oc[i].id;
	}
	ids[NOBJ] = oc[0].name;		/* names are not handles */
	ids[NOBJ + 1] = 0;
	buf = aligned_alloc(PG, 2 * MACHVM_MAX_XFER);
	ASSERT_NE(NULL, buf);
	/* Addresses guaranteed to fault: a PROT_NONE reservation. */
	hole = mmap(NULL, MACHVM_MAX_XFER, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);

	/* A client faults object 0 while the fuzzer works the endpoint. */
	mvm_server_start(&srv, pager, MVM_PATTERN);
	map = mmap(NULL, OBJ_PAGES * PG, PROT_READ, MAP_SHARED, fds[0], 0);
	ASSERT_NE(MAP_FAILED, map);

	for (int it = 0; it < 100000; it++) {
		struct machvm_cmd c;
		int target = (rnd() % 16) ? pager : other;
		uint64_t off;
		ssize_t n;

		memset(&c, 0, sizeof(c));
		c.type = rnd() % 9;
		c.object = ids[rnd() % (NOBJ + 2)];
		if (rnd() % 16 == 0)
			c.object = pick(ids[0]);
		off = pick(0);
		c.offset = off;
		c.length = pick(PG);
		c.flags = (rnd() % 4) ? 0 : pick(1);
		c.error = (rnd() % 2) ? EIO : pick(EIO);
		c.attr.cluster_pages = rnd() % 80;
		c.attr.timeout_ms = (rnd() % 2) ? 0 : pick(1000);
		c.attr.copy_strategy = rnd() % 4;
		c.attr.may_cache = rnd() % 3;
		if (rnd() % 32 == 0)
			c.lock = rnd();
		if (rnd() % 32 == 0)
			c.seq = rnd();
		/* Data always the pattern of where it lands. */
		if (c.offset < OBJ_PAGES * PG && c.length <= MACHVM_MAX_XFER)
			mvm_fill(buf, c.offset, c.length);
		switch (rnd() % 4) {
		case 0: c.addr = (uintptr_t)buf; break;
		case 1: c.addr = pick((uintptr_t)buf); break;
		default: c.addr = (uintptr_t)buf; break;
		}
		/* Object 0 is the client's: only data it can check. */
		if (c.object == ids[0]) {
			if (c.type == MACHVM_CMD_DESTROY ||
			    c.type == MACHVM_CMD_DATA_UNAVAILABLE)
				c.type = MACHVM_CMD_DATA_ERROR;
			if (c.type == MACHVM_CMD_DATA_ERROR)
				c.offset = OBJ_PAGES * PG; /* out of range */
			c.attr.timeout_ms = 0;	/* keep the default */
		}
		if (c.type == MACHVM_CMD_DATA_SUPPLY && c.addr != (uintptr_t)buf)
			c.addr = (uintptr_t)hole + (rnd() % 2);

		switch (rnd() % 10) {
		case 0:	/* short or odd-sized writes */
			n = write(target, &c, rnd() % (2 * sizeof(c)));
			break;
		case 1: {	/* several commands in one write */
			struct machvm_cmd cs[4] = { c, c, c, c };

			cs[rnd() % 4].type = rnd();
			n = write(target, cs, sizeof(cs));
			break;
		}
		default:
			n = write(target, &c, sizeof(c));
		}
		calls++;
		if (n >= 0)
			ok++;
		else
			ASSERT_TRUE(allowed(errno)) TH_LOG("errno %d", errno);

		/* Random ioctls on every kind of fd. */
		if (it % 4 == 0) {
			int fdsel[] = { dev, pager, fds[rnd() % NOBJ], other };
			unsigned long cmds[] = {
				MACHVM_IOC_VERSION, MACHVM_IOC_PAGER_CREATE,
				MACHVM_IOC_REGION, MACHVM_IOC_OBJECT_CREATE,
				_IOWR('M', rnd() % 256, struct machvm_region),
				rnd() };
			union {
				struct machvm_object_create oc;
				struct machvm_region r;
				struct machvm_pager_create pc;
				uint64_t w[16];
			} u;
			unsigned long cmd = cmds[rnd() % 6];
			int r;

			for (int k = 0; k < 16; k++)
				u.w[k] = (rnd() % 3) ? 0 : pick(PG);
			if (rnd() % 2) {
				u.w[0] = (rnd() % 64 + 1) * PG;	/* size */
				u.w[1] = rnd() % 8;		/* prot */
			}
			r = ioctl(fdsel[rnd() % 4], cmd,
				  (rnd() % 8) ? (void *)&u : (void *)pick(8));
			calls++;
			if (r == 0) {
				ok++;
				if (cmd == MACHVM_IOC_OBJECT_CREATE)
					close(u.oc.fd);
				if (cmd == MACHVM_IOC_PAGER_CREATE)
					close(u.pc.fd);
			} else {
				ASSERT_TRUE(allowed(errno))
					TH_LOG("ioctl %lx errno %d", cmd, errno);
			}
		}
		/* Closed endpoints: replace the second one now and then, with
		 * an object mapped and faulting, and keep using the old fd
		 * number (EBADF, or whatever now holds it).
		 */
		if (it % 10000 == 5000) {
			struct machvm_object_create ocx;
			int fx, dead = other;
			char *mx;

			fx = mvm_object(other, 4 * PG, PROT_READ, 0, &ocx);
			ASSERT_LE(0, fx);
			mx = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fx, 0);
			ASSERT_NE(MAP_FAILED, mx);
			close(other);
			/* Its pager is gone: faults end at once with SIGBUS. */
			ASSERT_EQ(1, mvm_touch(mx, 0, NULL));
			munmap(mx, 4 * PG);
			close(fx);
			write(dead, &c, sizeof(c));
			ASSERT_TRUE(allowed(errno));
			other = mvm_pager(dev);
			ASSERT_LE(0, other);
		}
		/* Keep the client faulting. */
		if (it % 1000 == 0)
			ASSERT_EQ(0, mvm_check(map + (it / 1000 % OBJ_PAGES) * PG,
					       (it / 1000 % OBJ_PAGES) * PG, PG));
	}
	/* Every page the client sees is still exactly the pattern. */
	EXPECT_EQ(0, mvm_check(map, 0, OBJ_PAGES * PG));
	TH_LOG("%ld calls, %ld succeeded", calls, ok);
	EXPECT_GE(calls, 100000);
	munmap(map, OBJ_PAGES * PG);
	mvm_server_stop(&srv);
	for (int i = 0; i < NOBJ; i++)
		close(fds[i]);
	close(other);
	close(pager);
	close(dev);
	munmap(hole, MACHVM_MAX_XFER);
	free(buf);
}

TEST(random_uring_commands)
{
	struct io_uring ring;
	int dev = mvm_dev(), pager, fd;
	struct machvm_object_create oc;
	struct machvm_msg msgs[64];
	struct machvm_cmd cmd;
	long inflight = 0, done = 0;

	ASSERT_LE(0, dev);
	pager = mvm_pager(dev);
	ASSERT_LE(0, pager);
	fd = mvm_object(pager, 16 * PG, PROT_READ, 0, &oc);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, io_uring_queue_init(128, &ring, 0));
	for (int it = 0; it < 20000; it++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct machvm_uring_cmd uc;
		struct io_uring_cqe *cqe;

		ASSERT_NE(NULL, sqe);
		memset(&cmd, 0, sizeof(cmd));
		cmd.type = rnd() % 8;
		cmd.object = (rnd() % 2) ? oc.id : pick(oc.id);
		cmd.offset = pick(0);
		cmd.length = pick(PG);
		cmd.addr = (uintptr_t)msgs;
		uc.reply = (rnd() % 3) ? (uintptr_t)&cmd : pick(8);
		uc.msg = (rnd() % 4) ? (uintptr_t)&msgs[rnd() % 64] : pick(8);
		memset(sqe, 0, sizeof(*sqe));
		sqe->opcode = IORING_OP_URING_CMD;
		sqe->fd = (rnd() % 8) ? pager : fd;
		sqe->cmd_op = (rnd() % 4) ? MACHVM_URING_FETCH + rnd() % 2 :
					    (uint32_t)rnd();
		memcpy(sqe->cmd, &uc, sizeof(uc));
		ASSERT_EQ(1, io_uring_submit(&ring));
		inflight++;
		/* Reap what completed; FETCHes that wait stay in flight. */
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			done++;
		}
		/* Keep the number in flight bounded: feed them messages. */
		while (inflight > 64) {
			char *m = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
			struct machvm_object_create oc2;
			int fd2 = mvm_object(pager, PG, PROT_READ, 0, &oc2);
			char *m2 = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd2,
					0);

			/* Each first mmap queues one INIT message. */
			munmap(m2, PG);
			close(fd2);
			munmap(m, PG);
			ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			done++;
		}
	}
	TH_LOG("%ld io_uring commands completed, %ld in flight at close",
	       done, inflight);
	io_uring_queue_exit(&ring);
	close(fd);
	close(pager);
	close(dev);
}

TEST_HARNESS_MAIN
