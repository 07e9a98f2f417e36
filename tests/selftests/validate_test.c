// SPDX-License-Identifier: GPL-2.0
/*
 * A refused command changes nothing.  For every pager command (write(2)
 * and io_uring), ioctl and generic-netlink request: each field it must
 * not have, each bad range and value, each attribute it does not take is
 * refused, and afterwards the object is still served (a fault still gets
 * its page), its attributes and pages are as they were (GET_OBJECT), its
 * control id still works, and the pageout tunables are unchanged
 * (GET_PAGEOUT).  Also: the attribute zeroes (cluster_pages, timeout_ms)
 * mean what the ABI header says, and racing destroys destroy once.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_genl.h"
#include "mvm_test.h"

#define NPAGES 64

/* A netlink request attribute: a number of len bytes. */
#define NA(t, val, l) { .type = (t), .v = (val), .len = (l) }

/* What GET_OBJECT says of an object: what a refused command must keep. */
struct objstate {
	uint64_t state, resident, cluster, timeout, may_cache, copy, limit;
	uint64_t swapped, pending;
};

static int objstate(uint64_t name, struct objstate *s)
{
	struct mvm_nlreply r;
	int ret = mvm_object_info(name, &r);

	if (ret)
		return ret;
	s->state = r.obj[MACHVM_OBJ_A_STATE];
	s->resident = r.obj[MACHVM_OBJ_A_RESIDENT];
	s->cluster = r.obj[MACHVM_OBJ_A_CLUSTER];
	s->timeout = r.obj[MACHVM_OBJ_A_TIMEOUT_MS];
	s->may_cache = r.obj[MACHVM_OBJ_A_MAY_CACHE];
	s->copy = r.obj[MACHVM_OBJ_A_COPY];
	s->limit = r.obj[MACHVM_OBJ_A_LIMIT];
	s->swapped = r.obj[MACHVM_OBJ_A_SWAPPED];
	s->pending = r.obj[MACHVM_OBJ_A_PENDING];
	return 0;
}

/* The six tunables of GET_PAGEOUT. */
struct tunables {
	uint64_t limit, high, low, obj_limit, batch, interval;
};

static int tunables(struct tunables *t)
{
	struct mvm_nlreply r;
	int ret = mvm_nl(MACHVM_GENL_CMD_GET_PAGEOUT, NULL, &r);

	t->limit = r.a[MACHVM_A_PO_LIMIT];
	t->high = r.a[MACHVM_A_PO_HIGH];
	t->low = r.a[MACHVM_A_PO_LOW];
	t->obj_limit = r.a[MACHVM_A_PO_OBJ_LIMIT];
	t->batch = r.a[MACHVM_A_PO_BATCH];
	t->interval = r.a[MACHVM_A_PO_INTERVAL_MS];
	return ret;
}

static int set_tunables(const struct tunables *t)
{
	struct mvm_nlattr a[] = {
		NA(MACHVM_A_PO_LIMIT, t->limit, 8),
		NA(MACHVM_A_PO_HIGH, t->high, 4),
		NA(MACHVM_A_PO_LOW, t->low, 4),
		NA(MACHVM_A_PO_OBJ_LIMIT, t->obj_limit, 8),
		NA(MACHVM_A_PO_BATCH, t->batch, 4),
		NA(MACHVM_A_PO_INTERVAL_MS, t->interval, 4),
		{ 0 },
	};

	return mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, a, NULL);
}

FIXTURE(obj)
{
	int dev, pager, fd;
	struct machvm_object_create oc;
	struct mvm_server srv;
	char *map;
	int next;		/* next page never touched */
	struct tunables tun;	/* restored at teardown */
};

/* The fixture's type by name, for the helpers that take it. */
typedef FIXTURE_DATA(obj) obj_fixture;

FIXTURE_SETUP(obj)
{
	self->dev = mvm_dev();
	ASSERT_LE(0, self->dev);
	self->pager = mvm_pager(self->dev);
	ASSERT_LE(0, self->pager);
	self->fd = mvm_object(self->pager, NPAGES * PG, PROT_READ | PROT_WRITE,
			      0, &self->oc);
	ASSERT_LE(0, self->fd);
	memset(&self->srv, 0, sizeof(self->srv));
	self->srv.cluster = 1;
	self->srv.timeout_ms = 60000;	/* never a timeout under TCG load */
	mvm_server_start(&self->srv, self->pager, MVM_PATTERN);
	self->map = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	/* Pages 0..7 resident: flush/return/supply have something to hit. */
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(0, mvm_check(self->map + i * PG, i * PG, PG));
	self->next = 8;
	ASSERT_EQ(0, tunables(&self->tun));
}

FIXTURE_TEARDOWN(obj)
{
	set_tunables(&self->tun);
	mvm_server_stop(&self->srv);
	munmap(self->map, NPAGES * PG);
	close(self->fd);
	close(self->pager);
	close(self->dev);
}

/*
 * The object is as it was: same GET_OBJECT state, its control id works
 * (a CHANGE_ATTRIBUTES that keeps everything), the resident pages still
 * hold their data, and a fault on a page never touched still gets it.
 * That fault adds its cluster to the resident pages, so @was is taken
 * again afterwards, for the next check against it.
 */
static void still_served(struct __test_metadata *_metadata,
			 obj_fixture *self, struct objstate *was,
			 const char *what)
{
	struct machvm_cmd keep = { .type = MACHVM_CMD_CHANGE_ATTRIBUTES,
				   .object = self->oc.id };
	struct objstate now;

	ASSERT_EQ(0, objstate(self->oc.name, &now)) TH_LOG("%s", what);
	EXPECT_EQ(was->state, now.state) TH_LOG("%s: state", what);
	EXPECT_EQ(was->resident, now.resident) TH_LOG("%s: resident", what);
	EXPECT_EQ(was->cluster, now.cluster) TH_LOG("%s: cluster", what);
	EXPECT_EQ(was->timeout, now.timeout) TH_LOG("%s: timeout", what);
	EXPECT_EQ(was->may_cache, now.may_cache) TH_LOG("%s: may_cache", what);
	EXPECT_EQ(was->copy, now.copy) TH_LOG("%s: copy", what);
	EXPECT_EQ(was->limit, now.limit) TH_LOG("%s: limit", what);
	EXPECT_EQ(was->swapped, now.swapped) TH_LOG("%s: swapped", what);
	keep.attr.may_cache = now.may_cache;
	keep.attr.copy_strategy = now.copy;
	EXPECT_EQ(0, mvm_cmd(self->pager, &keep)) TH_LOG("%s: control id", what);
	EXPECT_EQ(0, mvm_check(self->map, 0, 8 * PG)) TH_LOG("%s: data", what);
	ASSERT_LT(self->next, NPAGES) TH_LOG("test needs more pages");
	EXPECT_EQ(0, mvm_touch(self->map + self->next * PG, 0, NULL))
		TH_LOG("%s: fault on page %d", what, self->next);
	EXPECT_EQ(0, mvm_check(self->map + self->next * PG, self->next * PG,
			       PG)) TH_LOG("%s: fault data", what);
	self->next++;
	ASSERT_EQ(0, objstate(self->oc.name, was)) TH_LOG("%s", what);
}

/* The fields a command takes (the others must be zero). */
enum {
	T_RANGE = 1,
	T_ADDR = 2,
	T_ERROR = 4,
	T_LOCK = 8,
	T_ATTR = 16,
	T_SEQ = 32,
};

struct cmdspec {
	uint32_t type;
	const char *name;
	uint32_t flags_ok;	/* flags it accepts */
	int takes;
};

static const struct cmdspec cmds[] = {
	{ MACHVM_CMD_READY, "READY", MACHVM_READY_F_ALL, T_ATTR },
	{ MACHVM_CMD_DATA_SUPPLY, "DATA_SUPPLY", MACHVM_SUPPLY_F_ALL,
	  T_RANGE | T_ADDR | T_LOCK },
	{ MACHVM_CMD_DATA_UNAVAILABLE, "DATA_UNAVAILABLE", 0, T_RANGE },
	{ MACHVM_CMD_DATA_ERROR, "DATA_ERROR", 0, T_RANGE | T_ERROR },
	{ MACHVM_CMD_CHANGE_ATTRIBUTES, "CHANGE_ATTRIBUTES", MACHVM_READY_F_ALL,
	  T_ATTR },
	{ MACHVM_CMD_DESTROY, "DESTROY", 0, 0 },
	{ MACHVM_CMD_RETURN_COPY, "RETURN_COPY", 0, T_RANGE | T_ADDR | T_SEQ },
	{ MACHVM_CMD_RETURN_DONE, "RETURN_DONE", 0,
	  T_RANGE | T_ERROR | T_SEQ },
	{ MACHVM_CMD_LOCK_REQUEST, "LOCK_REQUEST", MACHVM_LOCK_F_ALL,
	  T_RANGE | T_LOCK },
};

/*
 * A command that would act if it were not for one field: a range over
 * resident pages, a valid buffer, flags that flush and return.
 */
static struct machvm_cmd base(const struct cmdspec *s, uint64_t id,
			      void *buf)
{
	struct machvm_cmd c = { .type = s->type, .object = id };

	if (s->takes & T_RANGE) {
		c.offset = 0;
		c.length = 4 * PG;
	}
	if (s->takes & T_ADDR)
		c.addr = (uintptr_t)buf;
	if (s->type == MACHVM_CMD_DATA_ERROR)
		c.error = EIO;
	if (s->type == MACHVM_CMD_DATA_SUPPLY)
		c.flags = MACHVM_SUPPLY_F_OVERWRITE | MACHVM_SUPPLY_F_REPORT;
	if (s->type == MACHVM_CMD_LOCK_REQUEST)
		c.flags = MACHVM_LOCK_F_FLUSH | MACHVM_LOCK_RETURN_NONE;
	return c;
}

/* The refused variants of @s, each one field away from base(). */
static int variants(const struct cmdspec *s, uint64_t id, void *buf,
		    struct machvm_cmd *out, const char **why)
{
	struct machvm_cmd b = base(s, id, buf);
	int n = 0;

#define V(expr, text) do { out[n] = b; { struct machvm_cmd *c = &out[n]; \
	expr; } why[n++] = text; } while (0)
	V(c->flags |= ~s->flags_ok & 0xffffffffu, "unknown flags");
	V(c->flags |= 1u << 31, "flag bit 31");
	if (!(s->takes & T_RANGE)) {
		V(c->offset = PG, "offset set");
		V(c->length = PG, "length set");
	} else {
		V(c->offset = 1, "unaligned offset");
		V(c->length = 0, "length 0");
		V(c->length = PG + 1, "unaligned length");
		V(c->length = MACHVM_MAX_XFER + PG, "length over MAX_XFER");
		V(c->offset = NPAGES * PG, "offset at the end");
		V(c->offset = (NPAGES - 2) * PG, "range past the end");
		V(c->offset = ~0ULL & ~(PG - 1), "offset near 2^64");
	}
	if (!(s->takes & T_ADDR))
		V(c->addr = (uintptr_t)buf, "addr set");
	if (!(s->takes & T_ERROR))
		V(c->error = EIO, "error set");
	else
		V(c->error = 4096, "error over MAX_ERRNO");
	if (s->type == MACHVM_CMD_DATA_ERROR)
		V(c->error = 0, "error 0");
	if (!(s->takes & T_LOCK)) {
		V(c->lock = PROT_WRITE, "lock set");
	} else {
		V(c->lock = PROT_READ, "lock PROT_READ");
		V(c->lock = 0x80000000u, "lock bit 31");
	}
	if (s->type == MACHVM_CMD_LOCK_REQUEST) {
		V(c->lock = PROT_WRITE, "lock without LOCK_F_LOCK");
		V(c->flags |= 3, "should_return 3");
	}
	if (!(s->takes & T_SEQ))
		V(c->seq = 1, "seq set");
	if (!(s->takes & T_ATTR)) {
		V(c->attr.cluster_pages = 1, "attr.cluster_pages set");
		V(c->attr.timeout_ms = 1000, "attr.timeout_ms set");
		V(c->attr.may_cache = 1, "attr.may_cache set");
		V(c->attr.copy_strategy = 1, "attr.copy_strategy set");
	} else {
		V(c->attr.cluster_pages = 3, "cluster_pages 3");
		V(c->attr.cluster_pages = 65, "cluster_pages 65");
		V(c->attr.cluster_pages = 128, "cluster_pages 128");
		V(c->attr.timeout_ms = 9, "timeout_ms 9");
		V(c->attr.timeout_ms = 600001, "timeout_ms 600001");
		V(c->attr.may_cache = 2, "may_cache 2");
		V(c->attr.copy_strategy = 3, "copy_strategy 3");
	}
#undef V
	return n;
}

/* The bug of issue 12: a refused DESTROY destroyed the control id. */
TEST_F(obj, refused_destroy_keeps_object)
{
	struct machvm_cmd c = { .type = MACHVM_CMD_DESTROY,
				.object = self->oc.id };
	struct objstate was;

	ASSERT_EQ(0, objstate(self->oc.name, &was));
	c.offset = PG;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	still_served(_metadata, self, &was, "DESTROY offset");
	c.offset = 0;
	c.length = PG;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	still_served(_metadata, self, &was, "DESTROY length");

	/* The real one works once; then the id is gone, faults SIGBUS. */
	c.length = 0;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_EQ(-ENOENT, mvm_cmd(self->pager, &c));
	EXPECT_EQ(1, mvm_touch(self->map + self->next * PG, 0, NULL));
	EXPECT_EQ(1, mvm_touch(self->map, 0, NULL));
	ASSERT_EQ(0, objstate(self->oc.name, &was));
	EXPECT_EQ(MACHVM_OBJ_STATE_DESTROYED, was.state);
}

/* Every command, every refused variant, nothing changed after any. */
TEST_F(obj, refused_commands_change_nothing)
{
	char *buf = aligned_alloc(PG, MACHVM_MAX_XFER + 2 * PG);
	struct machvm_cmd v[64];
	const char *why[64];
	struct objstate was;
	char what[128];

	ASSERT_NE(NULL, buf);
	/* Data that differs from the pattern: a supply taken would show. */
	memset(buf, 0x5a, MACHVM_MAX_XFER + 2 * PG);
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		int n = variants(&cmds[i], self->oc.id, buf, v, why);

		ASSERT_LE(n, 64);
		ASSERT_EQ(0, objstate(self->oc.name, &was));
		for (int k = 0; k < n; k++) {
			snprintf(what, sizeof(what), "%s: %s", cmds[i].name,
				 why[k]);
			EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &v[k]))
				TH_LOG("%s", what);
		}
		snprintf(what, sizeof(what), "%s (%d variants)", cmds[i].name,
			 n);
		still_served(_metadata, self, &was, what);
		/* Unknown control ids: the next free one, a name, 2^32. */
		v[0] = base(&cmds[i], self->oc.id + 1, buf);
		EXPECT_EQ(-ENOENT, mvm_cmd(self->pager, &v[0]))
			TH_LOG("%s: unknown id", cmds[i].name);
		v[0].object = 1ULL << 32 | self->oc.id;
		EXPECT_EQ(-ENOENT, mvm_cmd(self->pager, &v[0]))
			TH_LOG("%s: id above 2^32", cmds[i].name);
		/* A buffer outside the address space. */
		if (cmds[i].takes & T_ADDR) {
			v[0] = base(&cmds[i], self->oc.id, buf);
			v[0].addr = ~0ULL - PG + 1;
			EXPECT_EQ(-EFAULT, mvm_cmd(self->pager, &v[0]))
				TH_LOG("%s: kernel address", cmds[i].name);
		}
		still_served(_metadata, self, &was, cmds[i].name);
	}
	/* Types 0, 10, 2^32-1 are no command at all. */
	v[0] = (struct machvm_cmd){ .object = self->oc.id };
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &v[0]));
	v[0].type = MACHVM_CMD_LOCK_REQUEST + 1;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &v[0]));
	v[0].type = ~0u;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &v[0]));
	still_served(_metadata, self, &was, "unknown types");
	free(buf);
}

/*
 * write(2) runs commands in order and stops at the first refused one:
 * the ones before it ran, it and the ones after did not.
 */
TEST_F(obj, write_batch_stops_at_refused)
{
	struct machvm_cmd c[3] = {
		{ .type = MACHVM_CMD_CHANGE_ATTRIBUTES, .object = self->oc.id },
		{ .type = MACHVM_CMD_DESTROY, .object = self->oc.id,
		  .offset = PG },
		{ .type = MACHVM_CMD_DESTROY, .object = self->oc.id },
	};
	struct objstate was;

	c[0].attr.cluster_pages = 4;
	EXPECT_EQ((ssize_t)sizeof(c[0]), write(self->pager, c, sizeof(c)));
	ASSERT_EQ(0, objstate(self->oc.name, &was));
	EXPECT_EQ(4, was.cluster);
	EXPECT_EQ(MACHVM_OBJ_STATE_READY, was.state);
	still_served(_metadata, self, &was, "batch");
	/* Odd sizes run nothing. */
	EXPECT_EQ(-1, write(self->pager, &c[2], sizeof(c[2]) - 8));
	EXPECT_EQ(EINVAL, errno);
	still_served(_metadata, self, &was, "odd-sized write");
}

static int uring_cmd(struct io_uring *ring, int fd, uint32_t op,
		     const struct machvm_cmd *reply, struct machvm_msg *msg)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct machvm_uring_cmd uc = { .reply = (uintptr_t)reply,
				       .msg = (uintptr_t)msg };
	struct io_uring_cqe *cqe;
	int res;

	if (!sqe)
		return -EBUSY;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = op;
	memcpy(sqe->cmd, &uc, sizeof(uc));
	if (io_uring_submit(ring) != 1)
		return -EIO;
	if (io_uring_wait_cqe(ring, &cqe))
		return -EIO;
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

/* COMMIT_AND_FETCH: a refused command or a bad msg buffer runs nothing. */
TEST_F(obj, uring_refused_commit_changes_nothing)
{
	struct machvm_cmd d = { .type = MACHVM_CMD_DESTROY,
				.object = self->oc.id, .length = PG };
	alignas(8) struct machvm_msg msg;
	struct io_uring ring;
	struct objstate was;

	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	ASSERT_EQ(0, objstate(self->oc.name, &was));
	EXPECT_EQ(-EINVAL, uring_cmd(&ring, self->pager,
				     MACHVM_URING_COMMIT_AND_FETCH, &d, &msg));
	still_served(_metadata, self, &was, "uring DESTROY length");
	/* A valid DESTROY whose msg buffer is bad: refused before it runs. */
	d.length = 0;
	EXPECT_EQ(-EFAULT, uring_cmd(&ring, self->pager,
				     MACHVM_URING_COMMIT_AND_FETCH, &d, NULL));
	EXPECT_EQ(-EFAULT, uring_cmd(&ring, self->pager,
				     MACHVM_URING_COMMIT_AND_FETCH, &d,
				     (void *)((char *)&msg + 1)));
	still_served(_metadata, self, &was, "uring bad msg");
	/* FETCH with a reply, unknown op: nothing runs. */
	EXPECT_EQ(-EINVAL, uring_cmd(&ring, self->pager, MACHVM_URING_FETCH,
				     &d, &msg));
	EXPECT_EQ(-EOPNOTSUPP, uring_cmd(&ring, self->pager, 0x4d7f, &d,
					 &msg));
	still_served(_metadata, self, &was, "uring FETCH with reply");
	io_uring_queue_exit(&ring);
}

/* Issue 12 item 3: the attribute zeroes, at creation and afterwards. */
TEST_F(obj, cluster_and_timeout_zero_keep)
{
	struct machvm_object_create oc;
	struct machvm_cmd c = { .type = MACHVM_CMD_CHANGE_ATTRIBUTES,
				.object = self->oc.id };
	struct objstate s;
	int fd, before;

	/* OBJECT_CREATE: 0 is the default. */
	fd = mvm_object(self->pager, NPAGES * PG, PROT_READ, 0, &oc);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, objstate(oc.name, &s));
	EXPECT_EQ(MACHVM_DEFAULT_CLUSTER_PAGES, s.cluster);
	EXPECT_EQ(MACHVM_DEFAULT_TIMEOUT_MS, s.timeout);
	close(fd);
	memset(&oc, 0, sizeof(oc));
	oc.size = NPAGES * PG;
	oc.max_prot = PROT_READ;
	oc.attr.cluster_pages = 8;
	oc.attr.timeout_ms = 700;
	fd = ioctl(self->pager, MACHVM_IOC_OBJECT_CREATE, &oc);
	ASSERT_EQ(0, fd);
	ASSERT_EQ(0, objstate(oc.name, &s));
	EXPECT_EQ(8, s.cluster);
	EXPECT_EQ(700, s.timeout);
	close(oc.fd);
	for (int bad = 0; bad < 4; bad++) {
		static const uint16_t cl[] = { 3, 65, 128, 0xffff };

		memset(&oc, 0, sizeof(oc));
		oc.size = NPAGES * PG;
		oc.attr.cluster_pages = cl[bad];
		EXPECT_EQ(-1, ioctl(self->pager, MACHVM_IOC_OBJECT_CREATE, &oc));
		EXPECT_EQ(EINVAL, errno) TH_LOG("cluster %u", cl[bad]);
	}

	/* CHANGE_ATTRIBUTES: 16 then 0 keeps 16 (and the timeout). */
	c.attr.cluster_pages = 16;
	c.attr.timeout_ms = 30000;
	ASSERT_EQ(0, mvm_cmd(self->pager, &c));
	c.attr.cluster_pages = 0;
	c.attr.timeout_ms = 0;
	c.attr.may_cache = 1;
	c.attr.copy_strategy = MACHVM_COPY_DELAY;
	ASSERT_EQ(0, mvm_cmd(self->pager, &c));
	ASSERT_EQ(0, objstate(self->oc.name, &s));
	EXPECT_EQ(16, s.cluster);
	EXPECT_EQ(30000, s.timeout);
	EXPECT_EQ(1, s.may_cache);		/* always set */
	EXPECT_EQ(MACHVM_COPY_DELAY, s.copy);
	/* READY, too (the object is ready already: no state change). */
	c.type = MACHVM_CMD_READY;
	c.attr.may_cache = 0;
	c.attr.copy_strategy = 0;
	ASSERT_EQ(0, mvm_cmd(self->pager, &c));
	ASSERT_EQ(0, objstate(self->oc.name, &s));
	EXPECT_EQ(16, s.cluster);
	EXPECT_EQ(30000, s.timeout);
	EXPECT_EQ(0, s.may_cache);
	/* And the faults use it: one request for 16 pages. */
	before = atomic_load(&self->srv.req_pages);
	ASSERT_EQ(0, mvm_check(self->map + 32 * PG, 32 * PG, PG));
	EXPECT_EQ(16, atomic_load(&self->srv.req_pages) - before);
	/* Out-of-range values change nothing. */
	c.attr.cluster_pages = 3;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	c.attr.cluster_pages = 0;
	c.attr.timeout_ms = 5;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	ASSERT_EQ(0, objstate(self->oc.name, &s));
	EXPECT_EQ(16, s.cluster);
	EXPECT_EQ(30000, s.timeout);
}

/* OBJECT_CREATE and ANON_CREATE refused: no object, no descriptor. */
TEST_F(obj, refused_creates_create_nothing)
{
	struct mvm_nlreply r0, r1;
	int fd0 = dup(0), fd1;

	ASSERT_LE(0, fd0);
	close(fd0);
	ASSERT_EQ(0, mvm_nl(MACHVM_GENL_CMD_GET_STATUS, NULL, &r0));
	for (int k = 0; k < 12; k++) {
		struct machvm_object_create oc = { .size = 4 * PG };

		switch (k) {
		case 0:
			oc.flags = 1;
			break;
		case 1:
			oc.pad = 1;
			break;
		case 2:
			oc.reserved[1] = 1;
			break;
		case 3:
			oc.id = 1;
			break;
		case 4:
			oc.name = 1;
			break;
		case 5:
			oc.fd = 3;
			break;
		case 6:
			oc.size = 0;
			break;
		case 7:
			oc.size = PG + 1;
			break;
		case 8:
			oc.max_prot = 8;
			break;
		case 9:
			oc.attr.may_cache = 2;
			break;
		case 10:
			oc.attr.copy_strategy = 3;
			break;
		case 11:
			oc.attr.timeout_ms = 1;
			break;
		}
		EXPECT_EQ(-1, ioctl(self->pager, MACHVM_IOC_OBJECT_CREATE, &oc))
			TH_LOG("OBJECT_CREATE variant %d", k);
		EXPECT_EQ(EINVAL, errno) TH_LOG("OBJECT_CREATE variant %d", k);
	}
	for (int k = 0; k < 6; k++) {
		struct machvm_anon_create ac = { .size = 4 * PG };

		switch (k) {
		case 0:
			ac.flags = 1;
			break;
		case 1:
			ac.fd = 3;
			break;
		case 2:
			ac.name = 1;
			break;
		case 3:
			ac.reserved[2] = 1;
			break;
		case 4:
			ac.size = 0;
			break;
		case 5:
			ac.size = 3;
			break;
		}
		EXPECT_EQ(-1, ioctl(self->dev, MACHVM_IOC_ANON_CREATE, &ac))
			TH_LOG("ANON_CREATE variant %d", k);
		EXPECT_EQ(EINVAL, errno) TH_LOG("ANON_CREATE variant %d", k);
	}
	ASSERT_EQ(0, mvm_nl(MACHVM_GENL_CMD_GET_STATUS, NULL, &r1));
	EXPECT_EQ(r0.a[MACHVM_A_NR_OBJECTS], r1.a[MACHVM_A_NR_OBJECTS]);
	fd1 = dup(0);
	EXPECT_EQ(fd0, fd1);	/* no descriptor installed */
	close(fd1);
}

/* A request with an attribute its command does not take: refused. */
TEST_F(obj, netlink_refused_changes_nothing)
{
	const uint64_t name = self->oc.name;
	struct tunables t0, t1;
	struct objstate was;
	struct mvm_nlreply r;
	int nswap0, nswap1;

	ASSERT_EQ(0, tunables(&t0));
	ASSERT_EQ(0, objstate(name, &was));
	ASSERT_EQ(0, mvm_nl_dump(MACHVM_GENL_CMD_GET_SWAP, &r));
	nswap0 = r.count;

	/* SET_PAGEOUT: each tunable out of range, with a valid one. */
	{
		struct { int attr, len; uint64_t v; const char *why; } bad[] = {
			{ MACHVM_A_PO_LIMIT, 8, 15, "limit 15" },
			{ MACHVM_A_PO_LIMIT, 8, (1ULL << 40) + 1, "limit 2^40+1" },
			{ MACHVM_A_PO_OBJ_LIMIT, 8, (1ULL << 40) + 1,
			  "obj_limit 2^40+1" },
			{ MACHVM_A_PO_HIGH, 4, 101, "high 101" },
			{ MACHVM_A_PO_HIGH, 4, t0.low, "high == low" },
			{ MACHVM_A_PO_LOW, 4, 0, "low 0" },
			{ MACHVM_A_PO_LOW, 4, t0.high, "low == high" },
			{ MACHVM_A_PO_BATCH, 4, 0, "batch 0" },
			{ MACHVM_A_PO_BATCH, 4, 65537, "batch 65537" },
			{ MACHVM_A_PO_INTERVAL_MS, 4, 9, "interval 9" },
			{ MACHVM_A_PO_INTERVAL_MS, 4, 60001, "interval 60001" },
			{ MACHVM_A_PO_TARGET, 8, 1, "TARGET not taken" },
			{ MACHVM_A_SWAP_PATH, 0, 0, "SWAP_PATH not taken" },
			{ MACHVM_A_PO_RESIDENT, 8, 1, "RESIDENT (a reply)" },
			{ MACHVM_A_PO_BATCH, 8, 7, "batch as a u64" },
			{ MACHVM_A_MAX + 1, 4, 1, "unknown attribute" },
		};

		for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
			struct mvm_nlattr a[] = {
				NA(MACHVM_A_PO_BATCH, t0.batch == 7 ? 9 : 7, 4),
				NA(MACHVM_A_PO_INTERVAL_MS,
				   t0.interval == 777 ? 778 : 777, 4),
				NA(bad[i].attr, bad[i].v, bad[i].len),
				NA(MACHVM_A_OBJ_NAME, name, 8),
				NA(MACHVM_A_OBJ_LIMIT, 3, 8),
				{ 0 },
			};

			if (bad[i].attr == MACHVM_A_SWAP_PATH)
				a[2].str = "/tmp/x";
			EXPECT_EQ(-EINVAL,
				  mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, a, NULL))
				TH_LOG("SET_PAGEOUT %s", bad[i].why);
			ASSERT_EQ(0, tunables(&t1));
			EXPECT_EQ(0, memcmp(&t0, &t1, sizeof(t0)))
				TH_LOG("SET_PAGEOUT %s changed a tunable",
				       bad[i].why);
		}
		still_served(_metadata, self, &was, "SET_PAGEOUT refused");
	}
	/* SET_PAGEOUT: a name without a limit, a limit without a name. */
	{
		struct mvm_nlattr a[] = {
			NA(MACHVM_A_PO_BATCH, t0.batch == 7 ? 9 : 7, 4),
			NA(MACHVM_A_OBJ_NAME, name, 8), { 0 },
		};

		EXPECT_EQ(-EINVAL, mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, a, NULL));
		a[1].type = MACHVM_A_OBJ_LIMIT;
		EXPECT_EQ(-EINVAL, mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, a, NULL));
		ASSERT_EQ(0, tunables(&t1));
		EXPECT_EQ(0, memcmp(&t0, &t1, sizeof(t0)));
	}
	/* RUN_PAGEOUT, DESTROY_OBJECT, GET_*: attributes not taken. */
	{
		struct mvm_nlattr run[] = {
			NA(MACHVM_A_OBJ_NAME, name, 8),
			NA(MACHVM_A_PO_FORCE, 1, 1),
			NA(MACHVM_A_PO_BATCH, 1, 4), { 0 },
		};
		struct mvm_nlattr force2[] = {
			NA(MACHVM_A_OBJ_NAME, name, 8),
			NA(MACHVM_A_PO_FORCE, 2, 1), { 0 },
		};
		struct mvm_nlattr destroy[] = {
			NA(MACHVM_A_OBJ_NAME, name, 8),
			NA(MACHVM_A_OBJ_LIMIT, 1, 8), { 0 },
		};
		struct mvm_nlattr status[] = {
			NA(MACHVM_A_OBJ_NAME, name, 8), { 0 },
		};

		EXPECT_EQ(-EINVAL, mvm_nl(MACHVM_GENL_CMD_RUN_PAGEOUT, run, &r));
		/* Out of the policy's range: netlink itself says ERANGE. */
		EXPECT_EQ(-ERANGE,
			  mvm_nl(MACHVM_GENL_CMD_RUN_PAGEOUT, force2, &r));
		EXPECT_EQ(-EINVAL,
			  mvm_nl(MACHVM_GENL_CMD_DESTROY_OBJECT, destroy, &r));
		EXPECT_EQ(-EINVAL,
			  mvm_nl(MACHVM_GENL_CMD_DESTROY_OBJECT, NULL, &r));
		EXPECT_EQ(-EINVAL,
			  mvm_nl(MACHVM_GENL_CMD_GET_STATUS, status, &r));
		EXPECT_EQ(-EINVAL,
			  mvm_nl(MACHVM_GENL_CMD_GET_PAGEOUT, status, &r));
		EXPECT_EQ(-EINVAL,
			  mvm_nl(MACHVM_GENL_CMD_GET_STATS, status, &r));
		/* Unknown object: nothing paged out. */
		EXPECT_EQ(-ENOENT, mvm_pageout_run(1000, ~0ULL >> 1, 1, &r));
		still_served(_metadata, self, &was, "RUN_PAGEOUT/DESTROY");
	}
	/* SWAP_ADD / SWAP_REMOVE refused: no store, no file. */
	{
		const char *path = "/tmp/validate-swap";
		struct mvm_nlattr add[] = {
			{ .type = MACHVM_A_SWAP_PATH, .str = path },
			NA(MACHVM_A_SWAP_SIZE, 64 * PG, 8),
			NA(MACHVM_A_OBJ_NAME, name, 8), { 0 },
		};
		struct mvm_nlattr rm[] = {
			NA(MACHVM_A_SWAP_ID, 999, 4),
			{ .type = MACHVM_A_SWAP_PATH, .str = path }, { 0 },
		};
		struct stat st;

		unlink(path);
		EXPECT_EQ(-EINVAL, mvm_nl(MACHVM_GENL_CMD_SWAP_ADD, add, &r));
		EXPECT_EQ(-1, stat(path, &st)) TH_LOG("SWAP_ADD left %s", path);
		add[0] = add[1];	/* no path */
		add[1] = (struct mvm_nlattr){ 0 };
		EXPECT_EQ(-EINVAL, mvm_nl(MACHVM_GENL_CMD_SWAP_ADD, add, &r));
		EXPECT_EQ(-EINVAL, mvm_nl(MACHVM_GENL_CMD_SWAP_REMOVE, rm, &r));
		rm[1] = (struct mvm_nlattr){ 0 };
		EXPECT_EQ(-ENOENT, mvm_nl(MACHVM_GENL_CMD_SWAP_REMOVE, rm, &r));
		EXPECT_EQ(-EINVAL, mvm_nl(MACHVM_GENL_CMD_SWAP_REMOVE, NULL, &r));
		ASSERT_EQ(0, mvm_nl_dump(MACHVM_GENL_CMD_GET_SWAP, &r));
		nswap1 = r.count;
		EXPECT_EQ(nswap0, nswap1);
	}
	ASSERT_EQ(0, tunables(&t1));
	EXPECT_EQ(0, memcmp(&t0, &t1, sizeof(t0)));
}

/*
 * SET_PAGEOUT naming an object that died: -ENOENT and no tunable set
 * (deterministic: the object is gone before the request), then the race
 * itself, many times: whenever the request fails, nothing was applied.
 */
struct churn {
	int pager;
	atomic_ullong name;
	atomic_int stop;
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(&c->stop)) {
		struct machvm_object_create oc;
		int fd = mvm_object(c->pager, 4 * PG, PROT_READ, 0, &oc);

		if (fd < 0)
			continue;
		atomic_store(&c->name, oc.name);
		close(fd);	/* gone: the name dies with it */
	}
	return NULL;
}

TEST_F(obj, set_pageout_dead_object_sets_nothing)
{
	struct machvm_object_create oc;
	struct tunables t0, t1;
	struct churn ch = { .pager = self->pager };
	pthread_t th;
	int fd, enoent = 0, ok = 0;
	uint64_t batch;

	ASSERT_EQ(0, tunables(&t0));
	fd = mvm_object(self->pager, 4 * PG, PROT_READ, 0, &oc);
	ASSERT_LE(0, fd);
	close(fd);
	{
		struct mvm_nlattr a[] = {
			NA(MACHVM_A_PO_BATCH, t0.batch == 7 ? 9 : 7, 4),
			NA(MACHVM_A_OBJ_NAME, oc.name, 8),
			NA(MACHVM_A_OBJ_LIMIT, 2, 8), { 0 },
		};

		EXPECT_EQ(-ENOENT, mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, a, NULL));
		ASSERT_EQ(0, tunables(&t1));
		EXPECT_EQ(t0.batch, t1.batch);
	}

	batch = t0.batch;
	pthread_create(&th, NULL, churn_main, &ch);
	for (int i = 0; i < 1000; i++) {
		uint64_t want = 100 + i % 500;
		struct mvm_nlattr a[] = {
			NA(MACHVM_A_PO_BATCH, want == batch ? want + 1 : want, 4),
			NA(MACHVM_A_OBJ_NAME, atomic_load(&ch.name), 8),
			NA(MACHVM_A_OBJ_LIMIT, 2, 8), { 0 },
		};
		int ret = mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, a, NULL);

		if (ret == 0) {
			batch = a[0].v;
			ok++;
		} else {
			ASSERT_EQ(-ENOENT, ret);
			enoent++;
		}
		ASSERT_EQ(0, tunables(&t1));
		ASSERT_EQ(batch, t1.batch) TH_LOG("iteration %d: %s", i,
						  ret ? "refused but applied" :
						  "applied wrong");
	}
	atomic_store(&ch.stop, 1);
	pthread_join(th, NULL);
	TH_LOG("%d applied, %d refused (object gone)", ok, enoent);
}

/* Concurrent SET_PAGEOUTs never leave low >= high. */
struct marks {
	int attr;
	uint32_t a, b;
	atomic_int *stop;
};

static void *marks_main(void *arg)
{
	struct marks *m = arg;

	for (int i = 0; !atomic_load(m->stop); i++) {
		struct mvm_nlattr a[] = {
			NA(m->attr, (i & 1) ? m->a : m->b, 4), { 0 },
		};

		mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, a, NULL);
	}
	return NULL;
}

TEST_F(obj, set_pageout_concurrent_keeps_low_below_high)
{
	struct tunables t = self->tun, now;
	atomic_int stop = 0;
	struct marks lo = { MACHVM_A_PO_LOW, 10, 70, &stop };
	struct marks hi = { MACHVM_A_PO_HIGH, 90, 50, &stop };
	pthread_t a, b;

	t.high = 90;
	t.low = 10;
	ASSERT_EQ(0, set_tunables(&t));
	pthread_create(&a, NULL, marks_main, &lo);
	pthread_create(&b, NULL, marks_main, &hi);
	for (int i = 0; i < 2000; i++) {
		ASSERT_EQ(0, tunables(&now));
		ASSERT_LT(now.low, now.high) TH_LOG("iteration %d", i);
	}
	atomic_store(&stop, 1);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
}

/* The pager's DESTROY and the admin's: whichever is second, -ENOENT. */
struct racer {
	int pager;
	uint64_t id, name;
	pthread_barrier_t *go;
	int ret;
};

static void *pager_destroy(void *arg)
{
	struct racer *r = arg;
	struct machvm_cmd c = { .type = MACHVM_CMD_DESTROY, .object = r->id };

	pthread_barrier_wait(r->go);
	r->ret = mvm_cmd(r->pager, &c);
	return NULL;
}

static void *admin_destroy(void *arg)
{
	struct racer *r = arg;
	struct mvm_nlattr a[] = { NA(MACHVM_A_OBJ_NAME, r->name, 8), { 0 } };

	pthread_barrier_wait(r->go);
	r->ret = mvm_nl(MACHVM_GENL_CMD_DESTROY_OBJECT, a, NULL);
	return NULL;
}

TEST_F(obj, racing_destroys_destroy_once)
{
	struct machvm_object_create oc;
	struct mvm_nlattr a[2] = { NA(MACHVM_A_OBJ_NAME, 0, 8), { 0 } };
	struct machvm_cmd c = { .type = MACHVM_CMD_DESTROY };
	pthread_barrier_t go;
	int fd;

	/* In order, both ways round. */
	fd = mvm_object(self->pager, 4 * PG, PROT_READ, 0, &oc);
	ASSERT_LE(0, fd);
	c.object = oc.id;
	a[0].v = oc.name;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_EQ(-ENOENT, mvm_nl(MACHVM_GENL_CMD_DESTROY_OBJECT, a, NULL));
	close(fd);
	fd = mvm_object(self->pager, 4 * PG, PROT_READ, 0, &oc);
	ASSERT_LE(0, fd);
	c.object = oc.id;
	a[0].v = oc.name;
	EXPECT_EQ(0, mvm_nl(MACHVM_GENL_CMD_DESTROY_OBJECT, a, NULL));
	EXPECT_EQ(-ENOENT, mvm_nl(MACHVM_GENL_CMD_DESTROY_OBJECT, a, NULL));
	EXPECT_EQ(-ENOENT, mvm_cmd(self->pager, &c));
	close(fd);
	/* An anonymous object: the admin's second destroy is refused. */
	{
		struct machvm_anon_create ac = { .size = 4 * PG };

		ASSERT_EQ(0, ioctl(self->dev, MACHVM_IOC_ANON_CREATE, &ac));
		a[0].v = ac.name;
		EXPECT_EQ(0, mvm_nl(MACHVM_GENL_CMD_DESTROY_OBJECT, a, NULL));
		EXPECT_EQ(-ENOENT,
			  mvm_nl(MACHVM_GENL_CMD_DESTROY_OBJECT, a, NULL));
		close(ac.fd);
	}

	/* At once, many times: exactly one wins each time. */
	pthread_barrier_init(&go, NULL, 2);
	for (int i = 0; i < 200; i++) {
		struct racer p = { .pager = self->pager, .go = &go };
		struct racer n = { .go = &go };
		pthread_t tp, tn;

		fd = mvm_object(self->pager, 4 * PG, PROT_READ, 0, &oc);
		ASSERT_LE(0, fd);
		p.id = oc.id;
		n.name = oc.name;
		pthread_create(&tp, NULL, pager_destroy, &p);
		pthread_create(&tn, NULL, admin_destroy, &n);
		pthread_join(tp, NULL);
		pthread_join(tn, NULL);
		ASSERT_TRUE((p.ret == 0 && n.ret == -ENOENT) ||
			    (p.ret == -ENOENT && n.ret == 0))
			TH_LOG("iteration %d: pager %d, admin %d", i, p.ret,
			       n.ret);
		close(fd);
	}
	pthread_barrier_destroy(&go);
}

TEST_HARNESS_MAIN
