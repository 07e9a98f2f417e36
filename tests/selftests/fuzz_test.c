// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz: well over 100,000 random and malformed commands, ioctls and
 * io_uring commands against live endpoints and objects while faults are
 * being served.  Nothing is avoided: DESTROY, DATA_UNAVAILABLE, DATA_ERROR
 * and attribute changes hit the object the client faults, too.  Every call
 * must come back with success or a documented errno; the kernel must not
 * warn (the harness reads the kernel log); and the objects must be what
 * the commands that succeeded made them (the test keeps a model): data or
 * zeroes where DATA_UNAVAILABLE went, SIGBUS once destroyed, attributes
 * as last set, a control id live until a DESTROY of it succeeded.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_genl.h"
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
	       err == ENXIO || err == ESTALE || err == ENOBUFS;
}

#define NOBJ 3
#define OBJ_PAGES 64

/*
 * What the commands that succeeded say each object must be: the test's
 * model, checked against the kernel as it goes and at the end.
 */
struct model {
	int fd;
	struct machvm_object_create oc;
	bool destroyed;
	uint16_t cluster;
	uint32_t timeout;
	uint8_t may_cache, copy;
	bool may_zero[OBJ_PAGES];	/* a DATA_UNAVAILABLE covered it */
};

/*
 * Zero the fields @c's type does not take (the ABI header's table), so
 * that some random commands are well-formed and act: DESTROY included.
 */
static void well_formed(struct machvm_cmd *c)
{
	static const struct machvm_attr none;
	bool range = c->type != MACHVM_CMD_READY &&
		     c->type != MACHVM_CMD_CHANGE_ATTRIBUTES &&
		     c->type != MACHVM_CMD_DESTROY;

	if (!range) {
		c->offset = 0;
		c->length = 0;
	} else {
		c->offset = (rnd() % OBJ_PAGES) * PG;
		c->length = (rnd() % (OBJ_PAGES - c->offset / PG) + 1) * PG;
	}
	if (c->type != MACHVM_CMD_DATA_SUPPLY &&
	    c->type != MACHVM_CMD_RETURN_COPY)
		c->addr = 0;
	if (c->type == MACHVM_CMD_DATA_ERROR)
		c->error = EIO;
	else if (c->type != MACHVM_CMD_RETURN_DONE)
		c->error = 0;
	else
		c->error %= 2;
	if (c->type == MACHVM_CMD_DATA_SUPPLY)
		c->flags &= MACHVM_SUPPLY_F_ALL;
	else if (c->type == MACHVM_CMD_LOCK_REQUEST)
		c->flags &= MACHVM_LOCK_F_FLUSH | MACHVM_LOCK_RETURN_DIRTY;
	else
		c->flags = 0;
	if (c->type != MACHVM_CMD_DATA_SUPPLY &&
	    c->type != MACHVM_CMD_LOCK_REQUEST)
		c->lock = 0;
	else
		c->lock = 0;
	if (c->type != MACHVM_CMD_RETURN_COPY &&
	    c->type != MACHVM_CMD_RETURN_DONE)
		c->seq = 0;
	if (c->type != MACHVM_CMD_READY &&
	    c->type != MACHVM_CMD_CHANGE_ATTRIBUTES) {
		c->attr = none;
	} else {
		static const uint16_t clusters[] = { 0, 1, 2, 8, 64 };

		c->attr.may_cache %= 2;
		c->attr.copy_strategy %= 3;
		c->attr.cluster_pages = clusters[rnd() % ARRAY_SIZE(clusters)];
		c->attr.timeout_ms = (rnd() % 2) ? 0 : 1000 + rnd() % 9000;
	}
}

/* The test's own SIGBUS catcher for whole-page reads. */
static sigjmp_buf *page_env;

static void page_bus(int sig)
{
	if (page_env)
		siglongjmp(*page_env, 1);
	_exit(98);
}

/*
 * Page @p of a mapping: 0 the pattern, 1 zeroes, 2 anything else, -1 a
 * SIGBUS.
 */
static int page_read(const char *map, int p)
{
	static const char zero[PG];
	struct sigaction sa = { .sa_handler = page_bus,
				.sa_flags = SA_NODEFER };
	volatile int ret;
	sigjmp_buf env;

	sigaction(SIGBUS, &sa, NULL);
	page_env = &env;
	if (sigsetjmp(env, 1)) {
		page_env = NULL;
		return -1;
	}
	if (!mvm_check(map + p * PG, p * PG, PG))
		ret = 0;
	else
		ret = memcmp(map + p * PG, zero, PG) ? 2 : 1;
	page_env = NULL;
	return ret;
}

/*
 * Page @p of object 0 is what the model says: its data (or zeroes where
 * a DATA_UNAVAILABLE went), or SIGBUS when destroyed.  A fault that timed
 * out (timeout_ms can be 1 s here, and TCG is slow) is tried again.
 */
static int page_ok(const struct model *m, const char *map, int p)
{
	int r = -1;

	for (int tries = 0; tries < 50 && r < 0; tries++) {
		r = page_read(map, p);
		if (m->destroyed)
			return r == -1;
	}
	return r == 0 || (r == 1 && m->may_zero[p]);
}

/* GET_OBJECT agrees with the model. */
static int attrs_ok(const struct model *m)
{
	struct mvm_nlreply r;
	bool destroyed;

	if (mvm_object_info(m->oc.name, &r))
		return 0;
	destroyed = r.obj[MACHVM_OBJ_A_STATE] == MACHVM_OBJ_STATE_DESTROYED;
	if (destroyed != m->destroyed)
		return 0;
	return m->destroyed ||
	       (r.obj[MACHVM_OBJ_A_CLUSTER] == m->cluster &&
		r.obj[MACHVM_OBJ_A_TIMEOUT_MS] == m->timeout &&
		r.obj[MACHVM_OBJ_A_MAY_CACHE] == m->may_cache &&
		r.obj[MACHVM_OBJ_A_COPY] == m->copy);
}

/* A new object in slot @k (object 0: mapped, INIT answered). */
static int model_new(struct model *m, int pager, char **map)
{
	struct mvm_nlreply r;

	memset(m, 0, sizeof(*m));
	m->fd = mvm_object(pager, OBJ_PAGES * PG, PROT_READ | PROT_WRITE, 0,
			   &m->oc);
	if (m->fd < 0)
		return -1;
	m->cluster = MACHVM_DEFAULT_CLUSTER_PAGES;
	m->timeout = MACHVM_DEFAULT_TIMEOUT_MS;
	if (!map)
		return 0;
	*map = mmap(NULL, OBJ_PAGES * PG, PROT_READ, MAP_SHARED, m->fd, 0);
	if (*map == MAP_FAILED)
		return -1;
	/* The server's READY (cluster 1, timeout kept) comes first. */
	for (int i = 0; i < 6000; i++) {
		if (mvm_object_info(m->oc.name, &r))
			return -1;
		if (r.obj[MACHVM_OBJ_A_STATE] == MACHVM_OBJ_STATE_READY)
			return 0;
		usleep(10000);
	}
	return -1;
}

/* What a command that succeeded on @m did. */
static void model_apply(struct model *m, const struct machvm_cmd *c)
{
	switch (c->type) {
	case MACHVM_CMD_DESTROY:
		m->destroyed = true;
		break;
	case MACHVM_CMD_READY:
	case MACHVM_CMD_CHANGE_ATTRIBUTES:
		m->may_cache = c->attr.may_cache;
		m->copy = c->attr.copy_strategy;
		if (c->attr.cluster_pages)
			m->cluster = c->attr.cluster_pages;
		if (c->attr.timeout_ms)
			m->timeout = c->attr.timeout_ms;
		break;
	case MACHVM_CMD_DATA_UNAVAILABLE:
		for (uint64_t p = c->offset / PG;
		     p < (c->offset + c->length) / PG && p < OBJ_PAGES; p++)
			m->may_zero[p] = true;
		break;
	}
}

TEST(random_commands)
{
	struct model mod[NOBJ];
	struct mvm_server srv = { 0 };
	int dev = mvm_dev(), pager, other;
	uint64_t ids[NOBJ + 2];
	char *buf, *map, *hole;
	long calls = 0, ok = 0, destroys = 0, refused_destroys = 0;

	ASSERT_LE(0, dev);
	pager = mvm_pager(dev);
	other = mvm_pager(dev);
	ASSERT_LE(0, pager);
	ASSERT_LE(0, other);
	/* A client faults object 0 while the fuzzer works the endpoint. */
	mvm_server_start(&srv, pager, MVM_PATTERN);
	for (int i = 0; i < NOBJ; i++) {
		ASSERT_EQ(0, model_new(&mod[i], pager, i ? NULL : &map));
		ids[i] = mod[i].oc.id;
	}
	ids[NOBJ] = mod[0].oc.name;	/* names are not handles */
	ids[NOBJ + 1] = 0;
	buf = aligned_alloc(PG, 2 * MACHVM_MAX_XFER);
	ASSERT_NE(NULL, buf);
	/* Addresses guaranteed to fault: a PROT_NONE reservation. */
	hole = mmap(NULL, MACHVM_MAX_XFER, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);

	for (int it = 0; it < 100000; it++) {
		struct machvm_cmd c, cs[4];
		int target = (rnd() % 16) ? pager : other;
		int ncmd = 1, done;
		ssize_t n;

		memset(&c, 0, sizeof(c));
		c.type = rnd() % 9;
		c.object = ids[rnd() % (NOBJ + 2)];
		if (rnd() % 16 == 0)
			c.object = pick(ids[0]);
		c.offset = pick(0);
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
		switch (rnd() % 4) {
		case 0:
			c.addr = (uintptr_t)buf;
			break;
		case 1:
			c.addr = pick((uintptr_t)buf);
			break;
		default:
			c.addr = (uintptr_t)buf;
			break;
		}
		/* Some are well-formed, so that they act (DESTROY too). */
		if (rnd() % 16 == 0)
			well_formed(&c);
		/* Data always the pattern of where it lands. */
		if (c.offset < OBJ_PAGES * PG && c.length <= MACHVM_MAX_XFER)
			mvm_fill(buf, c.offset, c.length);
		if (c.type == MACHVM_CMD_DATA_SUPPLY && c.addr != (uintptr_t)buf)
			c.addr = (uintptr_t)hole + (rnd() % 2);

		cs[0] = c;
		switch (rnd() % 10) {
		case 0:	/* short or odd-sized writes */
			n = write(target, &c, rnd() % (2 * sizeof(c)));
			break;
		case 1:	/* several commands in one write */
			cs[1] = c;
			cs[2] = c;
			cs[3] = c;
			cs[rnd() % 4].type = rnd();
			ncmd = 4;
			n = write(target, cs, sizeof(cs));
			break;
		default:
			n = write(target, &c, sizeof(c));
		}
		calls++;
		if (n >= 0)
			ok++;
		else
			ASSERT_TRUE(allowed(errno)) TH_LOG("errno %d", errno);
		done = n > 0 ? n / (ssize_t)sizeof(c) : 0;
		ASSERT_LE(done, ncmd);
		/* The model: what ran, and what the refused one left. */
		for (int j = 0; j < ncmd; j++) {
			int k = -1;

			for (int i = 0; i < NOBJ; i++)
				if (cs[j].object == ids[i])
					k = i;
			if (j < done) {
				/* Nothing names anything on the other one. */
				ASSERT_EQ(pager, target);
				ASSERT_LE(0, k)
					TH_LOG("id %llu ran",
					       (unsigned long long)cs[j].object);
				ASSERT_FALSE(mod[k].destroyed)
					TH_LOG("a command ran on a destroyed id");
				model_apply(&mod[k], &cs[j]);
				if (cs[j].type == MACHVM_CMD_DESTROY)
					destroys++;
			} else if (j == done && n < 0 && ncmd == 1 &&
				   target == pager && k >= 0 &&
				   !mod[k].destroyed) {
				/* Refused: the id lives (RETURN_COPY's
				 * ENOENT is about pages, not the id).
				 */
				ASSERT_TRUE(errno != ENOENT ||
					    cs[j].type == MACHVM_CMD_RETURN_COPY)
					TH_LOG("type %u on a live id: ENOENT",
					       cs[j].type);
				if (cs[j].type == MACHVM_CMD_DESTROY)
					refused_destroys++;
			}
		}
		/* A destroyed object is dead everywhere; then replace it. */
		for (int k = 0; k < NOBJ; k++) {
			struct machvm_cmd keep = {
				.type = MACHVM_CMD_CHANGE_ATTRIBUTES,
				.object = ids[k] };

			if (!mod[k].destroyed)
				continue;
			ASSERT_TRUE(attrs_ok(&mod[k]));
			ASSERT_EQ(-ENOENT, mvm_cmd(pager, &keep));
			if (k == 0) {
				for (int p = 0; p < OBJ_PAGES; p += 7)
					ASSERT_TRUE(page_ok(&mod[0], map, p));
				munmap(map, OBJ_PAGES * PG);
			}
			close(mod[k].fd);
			ASSERT_EQ(0, model_new(&mod[k], pager,
					       k ? NULL : &map));
			ids[k] = mod[k].oc.id;
		}

		/* Random ioctls on every kind of fd. */
		if (it % 4 == 0) {
			int fdsel[] = { dev, pager, mod[rnd() % NOBJ].fd,
					other };
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
			ASSERT_TRUE(page_ok(&mod[0], map, it / 1000 % OBJ_PAGES))
				TH_LOG("page %d", it / 1000 % OBJ_PAGES);
	}
	/*
	 * The end state is the one the commands that succeeded made: every
	 * page of object 0 is its data (or zeroes where a DATA_UNAVAILABLE
	 * went), every object's attributes are the last ones set, and every
	 * control id not destroyed still works.
	 */
	for (int p = 0; p < OBJ_PAGES; p++) {
		EXPECT_TRUE(page_ok(&mod[0], map, p))
			TH_LOG("page %d", p);
	}
	for (int k = 0; k < NOBJ; k++) {
		struct machvm_cmd keep = { .type = MACHVM_CMD_CHANGE_ATTRIBUTES,
					   .object = ids[k] };

		EXPECT_TRUE(attrs_ok(&mod[k])) TH_LOG("object %d", k);
		keep.attr.may_cache = mod[k].may_cache;
		keep.attr.copy_strategy = mod[k].copy;
		EXPECT_EQ(0, mvm_cmd(pager, &keep)) TH_LOG("object %d", k);
	}
	TH_LOG("%ld calls, %ld succeeded, %ld destroys, %ld refused destroys",
	       calls, ok, destroys, refused_destroys);
	EXPECT_GE(calls, 100000);
	EXPECT_GT(destroys, 0);
	EXPECT_GT(refused_destroys, 0);
	munmap(map, OBJ_PAGES * PG);
	mvm_server_stop(&srv);
	for (int i = 0; i < NOBJ; i++)
		close(mod[i].fd);
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
		sqe->cmd_op = (rnd() % 4) ? ((rnd() % 2) ?
					     MACHVM_URING_COMMIT_AND_FETCH :
					     MACHVM_URING_FETCH) :
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
