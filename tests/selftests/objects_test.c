// SPDX-License-Identifier: GPL-2.0
/*
 * Memory objects and pager-served faults over the blocking transport:
 * every message and its errors, coherence, copy-on-write, sparse objects,
 * many threads, pager death, timeouts, capabilities.
 */
#define _GNU_SOURCE	/* RUSAGE_THREAD */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_test.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

FIXTURE(obj) {
	int dev, pager, fd;
	struct machvm_object_create oc;
	struct mvm_server srv;
	char *map;
	size_t len;
	int server;
};

FIXTURE_SETUP(obj)
{
	memset(&self->srv, 0, sizeof(self->srv));
	self->dev = mvm_dev();
	ASSERT_LE(0, self->dev);
	self->pager = mvm_pager(self->dev);
	ASSERT_LE(0, self->pager);
	self->len = 64 * PG;
	self->fd = mvm_object(self->pager, self->len,
			      PROT_READ | PROT_WRITE, 0, &self->oc);
	ASSERT_LE(0, self->fd);
	self->map = NULL;
	self->server = 0;
}

typedef FIXTURE_DATA(obj) obj_fixture;

FIXTURE_TEARDOWN(obj)
{
	if (self->server)
		mvm_server_stop(&self->srv);
	if (self->map)
		munmap(self->map, self->len);
	close(self->fd);
	close(self->pager);
	close(self->dev);
}

static char *map_obj(int fd, size_t len, int prot, int flags, off_t off)
{
	char *p = mmap(NULL, len, prot, flags, fd, off);

	return p == MAP_FAILED ? NULL : p;
}

/* The server started in @mode, then self->map: the object, read-only. */
static void serve_and_map(struct __test_metadata *_metadata,
			  obj_fixture *self, enum mvm_mode mode)
{
	mvm_server_start(&self->srv, self->pager, mode);
	self->server = 1;
	self->map = map_obj(self->fd, self->len, PROT_READ, MAP_SHARED, 0);
	ASSERT_NE(NULL, self->map);
}

/*
 * As serve_and_map(), writable, with the server's READYs saying @flags
 * (MACHVM_READY_F_*, which the module must have as @feature), and once
 * the READY is in: the object's first fault already sees the flags.
 */
static void serve_ready_and_map(struct __test_metadata *_metadata,
				obj_fixture *self, enum mvm_mode mode,
				uint32_t flags, uint64_t feature)
{
	struct machvm_version v;
	int i;

	ASSERT_EQ(0, ioctl(self->dev, MACHVM_IOC_VERSION, &v));
	ASSERT_TRUE(v.features & feature);
	self->srv.ready_flags = flags;
	mvm_server_start(&self->srv, self->pager, mode);
	self->server = 1;
	self->map = map_obj(self->fd, self->len, PROT_READ | PROT_WRITE,
			    MAP_SHARED, 0);
	ASSERT_NE(NULL, self->map);
	for (i = 0; i < 500 && !atomic_load(&self->srv.readies); i++)
		usleep(10000);
	ASSERT_EQ(1, atomic_load(&self->srv.readies));
}

/* Requests time out after @timeout_ms, one page each. */
static void set_timeout(struct __test_metadata *_metadata,
			obj_fixture *self, uint32_t timeout_ms)
{
	struct machvm_cmd c = { .type = MACHVM_CMD_CHANGE_ATTRIBUTES,
				.object = self->oc.id };

	c.attr.timeout_ms = timeout_ms;
	c.attr.cluster_pages = 1;
	ASSERT_EQ(0, mvm_cmd(self->pager, &c));
}

TEST_F(obj, create_fields)
{
	struct stat st;

	EXPECT_NE(0, self->oc.id);
	EXPECT_NE(0, self->oc.name);
	ASSERT_EQ(0, fstat(self->fd, &st));
	EXPECT_EQ(self->len, st.st_size);
	EXPECT_NE(0, fcntl(self->fd, F_GETFD) & FD_CLOEXEC);
}

TEST_F(obj, create_rejects_bad_input)
{
	struct machvm_object_create oc;
	int bad_sizes[] = { 0, 1, 4095, 4097 };

	for (int i = 0; i < 4; i++) {
		EXPECT_EQ(-EINVAL, mvm_object(self->pager, bad_sizes[i],
					      PROT_READ, 0, &oc));
	}
	EXPECT_EQ(-EINVAL, mvm_object(self->pager, ~0ULL & ~(PG - 1), PROT_READ,
				      0, &oc));
	EXPECT_EQ(-EINVAL, mvm_object(self->pager, PG, 0x10, 0, &oc));
	EXPECT_EQ(-EINVAL, mvm_object(self->pager, PG, PROT_READ, 5, &oc));
	memset(&oc, 0, sizeof(oc));
	oc.size = PG;
	oc.flags = 1;
	EXPECT_EQ(-1, ioctl(self->pager, MACHVM_IOC_OBJECT_CREATE, &oc));
	EXPECT_EQ(EINVAL, errno);
	oc.flags = 0;
	oc.reserved[1] = 1;
	EXPECT_EQ(-1, ioctl(self->pager, MACHVM_IOC_OBJECT_CREATE, &oc));
	EXPECT_EQ(EINVAL, errno);
	oc.reserved[1] = 0;
	oc.attr.cluster_pages = 3;
	EXPECT_EQ(-1, ioctl(self->pager, MACHVM_IOC_OBJECT_CREATE, &oc));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->pager, MACHVM_IOC_OBJECT_CREATE, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	/* Objects are made on pager endpoints, not on the device. */
	memset(&oc, 0, sizeof(oc));
	oc.size = PG;
	EXPECT_EQ(-1, ioctl(self->dev, MACHVM_IOC_OBJECT_CREATE, &oc));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(obj, init_on_first_mmap_then_requests_wait_for_ready)
{
	struct machvm_msg m;
	char page[PG];
	pid_t child;
	int status;

	/* Nothing before the first mapping. */
	EXPECT_EQ(-ETIMEDOUT, mvm_read_msg(self->pager, &m, 100));
	self->map = map_obj(self->fd, self->len, PROT_READ, MAP_SHARED, 0);
	ASSERT_NE(NULL, self->map);
	ASSERT_EQ(0, mvm_read_msg(self->pager, &m, 1000));
	EXPECT_EQ(MACHVM_MSG_INIT, m.type);
	EXPECT_EQ(self->oc.id, m.object);
	EXPECT_EQ(self->oc.name, m.name);
	EXPECT_EQ(self->len, m.size);
	EXPECT_EQ(PG, m.page_size);

	child = fork();
	ASSERT_LE(0, child);
	if (child == 0)
		_exit(mvm_check(self->map + 3 * PG, 3 * PG, PG) ? 1 : 0);
	/* The fault waits, but no request reaches us before READY. */
	EXPECT_EQ(-ETIMEDOUT, mvm_read_msg(self->pager, &m, 300));
	ASSERT_EQ(0, mvm_ready(self->pager, self->oc.id, 1, 0));
	ASSERT_EQ(0, mvm_read_msg(self->pager, &m, 1000));
	EXPECT_EQ(MACHVM_MSG_DATA_REQUEST, m.type);
	EXPECT_EQ(3 * PG, m.offset);
	EXPECT_EQ(PG, m.length);
	EXPECT_EQ(PROT_READ, m.access);
	mvm_fill(page, 3 * PG, PG);
	ASSERT_EQ(0, mvm_supply(self->pager, self->oc.id, 3 * PG, PG, page, 0));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(obj, supply_serves_every_page)
{
	serve_and_map(_metadata, self, MVM_PATTERN);
	EXPECT_EQ(0, mvm_check(self->map, 0, self->len));
	EXPECT_EQ(64, atomic_load(&self->srv.requests));
	/* Resident now: reading again asks nothing. */
	EXPECT_EQ(0, mvm_check(self->map, 0, self->len));
	EXPECT_EQ(64, atomic_load(&self->srv.requests));
}

/*
 * The fixture's object replaced by a read-only one of @cluster pages per
 * request, served (MVM_PATTERN, in clusters) and mapped at self->map.
 */
static void cluster_object(struct __test_metadata *_metadata,
			   obj_fixture *self, uint32_t cluster)
{
	struct machvm_object_create oc = { .size = self->len,
					   .max_prot = PROT_READ };

	oc.attr.cluster_pages = cluster;
	ASSERT_EQ(0, ioctl(self->pager, MACHVM_IOC_OBJECT_CREATE, &oc));
	close(self->fd);
	self->fd = oc.fd;
	self->srv.cluster = cluster;
	serve_and_map(_metadata, self, MVM_PATTERN);
}

TEST_F(obj, cluster_requests)
{
	cluster_object(_metadata, self, 16);
	EXPECT_EQ(0, mvm_check(self->map, 0, self->len));
	EXPECT_EQ(4, atomic_load(&self->srv.requests));
	EXPECT_EQ(64, atomic_load(&self->srv.req_pages));
}

/* Page faults (minor and major) the calling thread has taken. */
static long thread_faults(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru))
		return -1;
	return ru.ru_minflt + ru.ru_majflt;
}

/*
 * A read fault maps its whole cluster, not only fault_around_bytes (16
 * pages) of it: 64 pages read in order take one fault that waits for the
 * pager and its retry, not a fault per 16 pages.  Two if the mapping
 * straddles a page table's range.
 */
TEST_F(obj, cluster_mapped_by_one_fault)
{
	long faults;
	size_t i;
	int sum = 0;

	cluster_object(_metadata, self, 64);
	faults = thread_faults();
	ASSERT_LE(0, faults);
	for (i = 0; i < self->len; i += PG)
		sum += ((volatile char *)self->map)[i];
	faults = thread_faults() - faults;
	EXPECT_EQ(1, atomic_load(&self->srv.requests));
	EXPECT_EQ(64, atomic_load(&self->srv.req_pages));
	EXPECT_GE(2, faults) TH_LOG("%ld faults for one 64-page cluster (sum %d)",
				    faults, sum);
	EXPECT_EQ(0, mvm_check(self->map, 0, self->len));
}

/* DATA_UNAVAILABLE pages read as zeroes, even made from recycled memory. */
TEST_F(obj, unavailable_zero_fills)
{
	mvm_server_start(&self->srv, self->pager, MVM_ZERO);
	self->server = 1;
	self->map = map_obj(self->fd, self->len, PROT_READ | PROT_WRITE,
			    MAP_SHARED, 0);
	ASSERT_NE(NULL, self->map);
	ASSERT_EQ(0, mvm_dirty_free_pages(16 << 20));
	EXPECT_EQ(-1, mvm_first_nonzero(self->map, self->len));
	self->map[5] = 42;
	EXPECT_EQ(42, self->map[5]);
}

/*
 * MACHVM_READY_F_EXISTENCE: the kernel zero-fills every page the pager
 * does not have, without asking, and asks for those it has: here the
 * pages it supplied, after a LOCK_REQUEST flushed the kernel's copies.
 */
TEST_F(obj, existence_map_asks_only_for_pages_the_pager_has)
{
	struct machvm_cmd flush = {
		.type = MACHVM_CMD_LOCK_REQUEST,
		.object = self->oc.id,
		.length = self->len,
		.flags = MACHVM_LOCK_RETURN_NONE | MACHVM_LOCK_F_FLUSH,
	};
	char *buf = aligned_alloc(PG, 8 * PG);
	size_t i;

	ASSERT_NE(NULL, buf);
	serve_ready_and_map(_metadata, self, MVM_PATTERN,
			    MACHVM_READY_F_EXISTENCE, MACHVM_F_EXISTENCE);

	/* Nothing is the pager's: zeroes, and it is never asked. */
	ASSERT_EQ(0, mvm_dirty_free_pages(16 << 20));
	EXPECT_EQ(-1, mvm_first_nonzero(self->map, self->len));
	EXPECT_EQ(0, atomic_load(&self->srv.requests));

	/* Pages 8-15 become the pager's; every copy here is flushed. */
	mvm_fill(buf, 8 * PG, 8 * PG);
	ASSERT_EQ(0, mvm_supply(self->pager, self->oc.id, 8 * PG, 8 * PG, buf,
				MACHVM_SUPPLY_F_OVERWRITE));
	ASSERT_EQ(0, mvm_cmd(self->pager, &flush));
	for (i = 0; i < 64; i++)
		ASSERT_EQ(0, mvm_resident(self->map, i)) TH_LOG("page %zu", i);

	/* Its pages come from it (the pattern); the rest are zeroes again. */
	EXPECT_EQ(0, mvm_check(self->map + 8 * PG, 8 * PG, 8 * PG));
	EXPECT_EQ(-1, mvm_first_nonzero(self->map, 8 * PG));
	EXPECT_EQ(-1, mvm_first_nonzero(self->map + 16 * PG, self->len - 16 * PG));
	EXPECT_LE(1, atomic_load(&self->srv.requests));
	EXPECT_EQ(8, atomic_load(&self->srv.req_pages));
	free(buf);
}

/*
 * MACHVM_READY_F_TEMPORARY: once the last mapping and right are gone, the
 * written pages are dropped (no DATA_RETURN) and TERMINATE comes at once;
 * without the flag the same pages are returned.
 */
TEST_F(obj, temporary_object_drops_pages_at_terminate)
{
	struct machvm_object_create oc2;
	char *m2;
	int fd2, i;

	serve_ready_and_map(_metadata, self, MVM_ZERO,
			    MACHVM_READY_F_TEMPORARY, MACHVM_F_TEMPORARY);
	memset(self->map, 7, self->len);
	munmap(self->map, self->len);
	self->map = NULL;
	close(self->fd);
	self->fd = -1;
	for (i = 0; i < 500 && !atomic_load(&self->srv.terminates); i++)
		usleep(10000);
	EXPECT_EQ(1, atomic_load(&self->srv.terminates));
	EXPECT_EQ(0, atomic_load(&self->srv.returns));

	/* Not temporary: the written pages go back to the pager. */
	self->srv.ready_flags = 0;
	fd2 = mvm_object(self->pager, self->len, PROT_READ | PROT_WRITE, 0,
			 &oc2);
	ASSERT_LE(0, fd2);
	m2 = map_obj(fd2, self->len, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	ASSERT_NE(NULL, m2);
	memset(m2, 7, self->len);
	munmap(m2, self->len);
	close(fd2);
	for (i = 0; i < 500 && !atomic_load(&self->srv.returns); i++)
		usleep(10000);
	EXPECT_LT(0, atomic_load(&self->srv.returns));
}

TEST_F(obj, data_error_sigbus_at_own_address)
{
	void *addr = NULL;

	serve_and_map(_metadata, self, MVM_ERROR);
	EXPECT_EQ(1, mvm_touch(self->map + 7 * PG + 123, 0, &addr));
	EXPECT_EQ(self->map + 7 * PG + 123, (char *)addr);
	/* A later fault asks again (and fails again). */
	EXPECT_EQ(1, mvm_touch(self->map + 7 * PG, 0, &addr));
	EXPECT_EQ(2, atomic_load(&self->srv.requests));
}

TEST_F(obj, unsolicited_supply_and_supply_completed)
{
	struct machvm_msg m;
	char buf[4 * PG];

	mvm_fill(buf, 8 * PG, sizeof(buf));
	ASSERT_EQ(0, mvm_supply(self->pager, self->oc.id, 8 * PG, sizeof(buf),
				buf, MACHVM_SUPPLY_F_REPORT));
	ASSERT_EQ(0, mvm_read_msg(self->pager, &m, 1000));
	EXPECT_EQ(MACHVM_MSG_SUPPLY_COMPLETED, m.type);
	EXPECT_EQ(8 * PG, m.offset);
	EXPECT_EQ(sizeof(buf), m.length);
	EXPECT_EQ(0, m.count);
	/* Half of it again: two pages already resident, not taken. */
	ASSERT_EQ(0, mvm_supply(self->pager, self->oc.id, 10 * PG, 4 * PG,
				buf, MACHVM_SUPPLY_F_REPORT));
	ASSERT_EQ(0, mvm_read_msg(self->pager, &m, 1000));
	EXPECT_EQ(MACHVM_MSG_SUPPLY_COMPLETED, m.type);
	EXPECT_EQ(2, m.count);

	/* The supplied pages map without any request. */
	self->map = map_obj(self->fd, self->len, PROT_READ, MAP_SHARED, 0);
	ASSERT_NE(NULL, self->map);
	ASSERT_EQ(0, mvm_read_msg(self->pager, &m, 1000));
	EXPECT_EQ(MACHVM_MSG_INIT, m.type);
	EXPECT_EQ(0, mvm_check(self->map + 8 * PG, 8 * PG, 2 * PG));
	EXPECT_EQ(-ETIMEDOUT, mvm_read_msg(self->pager, &m, 200));
}

TEST_F(obj, commands_reject_bad_fields)
{
	char buf[PG] = { 0 };
	void *bad = (void *)(uintptr_t)atoi("8");
	struct machvm_cmd c;

	EXPECT_EQ(-EINVAL, mvm_supply(self->pager, self->oc.id, 1, PG, buf, 0));
	EXPECT_EQ(-EINVAL, mvm_supply(self->pager, self->oc.id, 0, 1, buf, 0));
	EXPECT_EQ(-EINVAL, mvm_supply(self->pager, self->oc.id, 0, 0, buf, 0));
	EXPECT_EQ(-EINVAL, mvm_supply(self->pager, self->oc.id, self->len, PG,
				      buf, 0));
	EXPECT_EQ(-EINVAL, mvm_supply(self->pager, self->oc.id, 63 * PG,
				      2 * PG, buf, 0));
	EXPECT_EQ(-EINVAL, mvm_supply(self->pager, self->oc.id, 0, PG, buf,
				      0x80));
	EXPECT_EQ(-EINVAL, mvm_supply(self->pager, self->oc.id,
				      ~0ULL & ~(PG - 1), 2 * PG, buf, 0));
	EXPECT_EQ(-EFAULT, mvm_supply(self->pager, self->oc.id, 0, PG,
				      (void *)8, 0));
	EXPECT_EQ(-ENOENT, mvm_supply(self->pager, self->oc.id + 1000, 0, PG,
				      buf, 0));
	EXPECT_EQ(-EINVAL, mvm_error(self->pager, self->oc.id, 0, PG, 0));
	EXPECT_EQ(-EINVAL, mvm_error(self->pager, self->oc.id, 0, PG, 5000));
	EXPECT_EQ(-EINVAL, mvm_ready(self->pager, self->oc.id, 65, 0));
	EXPECT_EQ(-EINVAL, mvm_ready(self->pager, self->oc.id, 1, 5));
	memset(&c, 0, sizeof(c));
	c.type = 99;
	c.object = self->oc.id;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	c.type = MACHVM_CMD_READY;
	c.seq = 1;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	c.seq = 0;
	/* Attributes ride only on READY and CHANGE_ATTRIBUTES. */
	c.type = MACHVM_CMD_DATA_UNAVAILABLE;
	c.offset = 0;
	c.length = PG;
	c.attr.timeout_ms = 1000;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	c.attr.timeout_ms = 0;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_EQ(-1, write(self->pager, &c, sizeof(c) - 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, write(self->pager, bad, sizeof(c)));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, read(self->pager, buf, 10));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, fcntl(self->pager, F_SETFL, O_NONBLOCK));
	EXPECT_EQ(-1, read(self->pager, buf, sizeof(buf)));
	EXPECT_EQ(EAGAIN, errno);
}

TEST_F(obj, terminate_after_last_mapping_and_right)
{
	struct machvm_msg m;

	self->map = map_obj(self->fd, self->len, PROT_READ, MAP_SHARED, 0);
	ASSERT_NE(NULL, self->map);
	ASSERT_EQ(0, mvm_read_msg(self->pager, &m, 1000));
	EXPECT_EQ(MACHVM_MSG_INIT, m.type);
	close(self->fd);
	self->fd = -1;
	/* The mapping still holds the object. */
	EXPECT_EQ(-ETIMEDOUT, mvm_read_msg(self->pager, &m, 200));
	munmap(self->map, self->len);
	self->map = NULL;
	ASSERT_EQ(0, mvm_read_msg(self->pager, &m, 1000));
	EXPECT_EQ(MACHVM_MSG_TERMINATE, m.type);
	EXPECT_EQ(self->oc.id, m.object);
	/* The control id is dead. */
	EXPECT_EQ(-ENOENT, mvm_unavailable(self->pager, self->oc.id, 0, PG));
}

TEST_F(obj, region_names_and_offsets)
{
	struct machvm_object_create oc2;
	struct machvm_region r, r2;
	char *map2, *other;
	int fd2;

	mvm_server_start(&self->srv, self->pager, MVM_ZERO);
	self->server = 1;
	self->len = 8 * PG;
	self->map = map_obj(self->fd, self->len, PROT_READ, MAP_SHARED,
			    2 * PG);
	ASSERT_NE(NULL, self->map);
	ASSERT_EQ(0, mvm_region(self->dev, self->map + PG + 5, &r));
	EXPECT_EQ(self->oc.name, r.name);
	EXPECT_EQ(3 * PG, r.offset);
	EXPECT_EQ((uintptr_t)self->map, r.start);
	EXPECT_EQ((uintptr_t)self->map + self->len, r.end);
	EXPECT_EQ(PROT_READ, r.prot);
	EXPECT_EQ(PROT_READ | PROT_WRITE, r.max_prot);
	EXPECT_EQ(1, r.shared);
	EXPECT_EQ(64 * PG, r.size);

	map2 = map_obj(self->fd, PG, PROT_READ, MAP_PRIVATE, 0);
	ASSERT_NE(NULL, map2);
	ASSERT_EQ(0, mvm_region(self->dev, map2, &r2));
	EXPECT_EQ(r.name, r2.name);
	EXPECT_EQ(0, r2.shared);
	munmap(map2, PG);

	fd2 = mvm_object(self->pager, PG, PROT_READ, 0, &oc2);
	ASSERT_LE(0, fd2);
	map2 = map_obj(fd2, PG, PROT_READ, MAP_SHARED, 0);
	ASSERT_NE(NULL, map2);
	ASSERT_EQ(0, mvm_region(self->dev, map2, &r2));
	EXPECT_NE(r.name, r2.name);
	EXPECT_EQ(oc2.name, r2.name);
	munmap(map2, PG);
	close(fd2);

	other = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, other);
	EXPECT_EQ(-ENXIO, mvm_region(self->dev, other, &r2));
	munmap(other, PG);
	EXPECT_EQ(-ENOMEM, mvm_region(self->dev, other, &r2));
	memset(&r2, 0, sizeof(r2));
	r2.addr = (uintptr_t)self->map;
	r2.reserved[0] = 1;
	EXPECT_EQ(-1, ioctl(self->dev, MACHVM_IOC_REGION, &r2));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(obj, shared_mappings_coherent_across_processes)
{
	int to_child[2], to_parent[2];
	char c = 0;
	pid_t pid;
	int status;

	mvm_server_start(&self->srv, self->pager, MVM_ZERO);
	self->server = 1;
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* Its own mapping, made after fork. */
		char *m = map_obj(self->fd, self->len, PROT_READ | PROT_WRITE,
				  MAP_SHARED, 0);

		if (!m)
			_exit(2);
		strcpy(m + 10 * PG, "from the child");
		if (write(to_parent[1], &c, 1) != 1 ||
		    read(to_child[0], &c, 1) != 1)
			_exit(3);
		_exit(strcmp(m + 20 * PG, "from the parent") ? 1 : 0);
	}
	self->map = map_obj(self->fd, self->len, PROT_READ | PROT_WRITE,
			    MAP_SHARED, 0);
	ASSERT_NE(NULL, self->map);
	ASSERT_EQ(1, read(to_parent[0], &c, 1));
	EXPECT_STREQ("from the child", self->map + 10 * PG);
	strcpy(self->map + 20 * PG, "from the parent");
	ASSERT_EQ(1, write(to_child[1], &c, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(obj, private_mapping_is_copy_on_write)
{
	char *shared, *priv2;

	mvm_server_start(&self->srv, self->pager, MVM_PATTERN);
	self->server = 1;
	self->map = map_obj(self->fd, self->len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE, 0);
	ASSERT_NE(NULL, self->map);
	shared = map_obj(self->fd, self->len, PROT_READ, MAP_SHARED, 0);
	ASSERT_NE(NULL, shared);
	priv2 = map_obj(self->fd, self->len, PROT_READ, MAP_PRIVATE, 0);
	ASSERT_NE(NULL, priv2);
	EXPECT_EQ(0, mvm_check(self->map, 0, PG));
	memset(self->map, 0x5a, PG);
	memset(self->map + 5 * PG, 0x5a, PG);	/* write fault on a hole */
	EXPECT_EQ(0x5a, self->map[100]);
	EXPECT_EQ(0, mvm_check(shared, 0, PG));
	EXPECT_EQ(0, mvm_check(shared + 5 * PG, 5 * PG, PG));
	EXPECT_EQ(0, mvm_check(priv2, 0, PG));
	munmap(shared, self->len);
	munmap(priv2, self->len);
}

TEST(sparse_1tib_object)
{
	struct machvm_object_create oc;
	struct mvm_server srv = { 0 };
	uint64_t size = 1ULL << 40;
	uint64_t offs[] = { 0, size / 2, size - PG };
	int dev = mvm_dev(), pager, fd;
	char *m;

	ASSERT_LE(0, dev);
	pager = mvm_pager(dev);
	ASSERT_LE(0, pager);
	fd = mvm_object(pager, size, PROT_READ, 0, &oc);
	ASSERT_LE(0, fd);
	mvm_server_start(&srv, pager, MVM_PATTERN);
	m = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(0, mvm_check(m + offs[i], offs[i], PG));
	EXPECT_EQ(3, atomic_load(&srv.requests));
	munmap(m, size);
	mvm_server_stop(&srv);
	close(fd);
	close(pager);
	close(dev);
}

/* /proc/meminfo's Slab, in bytes; -1 if unreadable. */
static long long slab_bytes(void)
{
	char buf[8192], *l;

	if (!mvm_slurp("/proc/meminfo", buf, sizeof(buf)))
		return -1;
	l = strstr(buf, "\nSlab:");
	return l ? strtoll(l + 6, NULL, 10) * 1024 : -1;
}

/*
 * Slab bytes that writing each page of a @size mapping of @fd adds, to
 * *@grew (may be negative: others free meanwhile).  Closes @fd.
 */
static int slab_growth(int fd, uint64_t size, long long *grew)
{
	long long before = slab_bytes();
	uint64_t off;
	char *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED || before < 0)
		return -1;
	for (off = 0; off < size; off += PG)
		p[off] = 1;
	*grew = slab_bytes() - before;
	munmap(p, size);
	return 0;
}

/*
 * The module's own bookkeeping of a resident page is a few bytes
 * (ARCHITECTURE.md, decision 9: 16 at most): the slab
 * that 256 MiB of an anonymous object adds, less what as many pages of a
 * memfd add (Linux's own page cache index), over the pages.  The best of
 * two rounds, as other slab users come and go meanwhile.
 */
TEST(resident_pages_cost_little_metadata)
{
	const uint64_t n = 65536, size = n * PG;
	long long best = -1, m = 0, f = 0;
	uint64_t name;
	int round, fd;

	for (round = 0; round < 2; round++) {
		fd = memfd_create("metadata", MFD_CLOEXEC);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, ftruncate(fd, size));
		ASSERT_EQ(0, slab_growth(fd, size, &f));
		fd = mvm_anon(size, 0, &name);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, slab_growth(fd, size, &m));
		TH_LOG("slab: machvm object %lld bytes, memfd %lld bytes",
		       m, f);
		if (best < 0 || m - f < best)
			best = m - f > 0 ? m - f : 0;
	}
	EXPECT_GE(16 * n, best)
		TH_LOG("%.1f bytes per resident page", (double)best / n);
}

struct thr_arg {
	char *map;
	int idx;
	int bad;
};

static void *fault_thread(void *p)
{
	struct thr_arg *a = p;

	/* Everyone hits page 0, then a page of its own. */
	if (mvm_check(a->map, 0, PG))
		a->bad = 1;
	if (mvm_check(a->map + (1 + a->idx) * PG, (1 + a->idx) * PG, PG))
		a->bad = 1;
	return NULL;
}

TEST_F(obj, sixteen_threads_same_and_different_pages)
{
	pthread_t th[16];
	struct thr_arg a[16];

	self->srv.delay_ms = 100;	/* so the faults overlap */
	serve_and_map(_metadata, self, MVM_PATTERN);
	for (int i = 0; i < 16; i++) {
		a[i] = (struct thr_arg){ self->map, i, 0 };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, fault_thread, &a[i]));
	}
	for (int i = 0; i < 16; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, a[i].bad);
	}
	/* Concurrent faults on one page shared one request. */
	EXPECT_EQ(1, atomic_load(&self->srv.page0_requests));
	EXPECT_EQ(17, atomic_load(&self->srv.requests));
}

TEST_F(obj, request_timeout_gives_sigbus)
{
	void *addr;
	double t;

	set_timeout(_metadata, self, 300);
	serve_and_map(_metadata, self, MVM_SILENT);
	t = now();
	EXPECT_EQ(1, mvm_touch(self->map + 2 * PG, 0, &addr));
	t = now() - t;
	EXPECT_EQ(self->map + 2 * PG, (char *)addr);
	EXPECT_GE(t, 0.25);
	EXPECT_LT(t, 5.0);
}

TEST_F(obj, waiting_fault_is_killable)
{
	pid_t pid;
	int status;
	double t;

	serve_and_map(_metadata, self, MVM_SILENT);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		(void)*(volatile char *)self->map;
		_exit(0);
	}
	usleep(200 * 1000);
	t = now();
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_LT(now() - t, 1.0);
}

/* Serve page 0, then die on the first request after it. */
static int serve_one_page_then_die(int pager, void *arg)
{
	struct machvm_msg msg;
	char page[PG];

	mvm_fill(page, 0, PG);
	for (;;) {
		if (mvm_read_msg(pager, &msg, 5000))
			return 3;
		if (msg.type == MACHVM_MSG_INIT)
			mvm_ready(pager, msg.object, 1, 0);
		if (msg.type != MACHVM_MSG_DATA_REQUEST)
			continue;
		if (msg.offset)
			return 0;
		mvm_supply(pager, msg.object, 0, PG, page, 0);
	}
}

/* A pager in another process dies while a fault waits on it. */
TEST(pager_death_mid_fault)
{
	const struct mvm_child_pager cp = { .serve = serve_one_page_then_die };
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
	EXPECT_EQ(0, mvm_check(m, 0, PG));
	t = now();
	EXPECT_EQ(1, mvm_touch(m + 2 * PG, 0, &addr));
	EXPECT_LT(now() - t, 10.0);	/* not the 60 s timeout */
	EXPECT_EQ(m + 2 * PG, (char *)addr);
	/* Later faults on holes fail at once; resident pages stay. */
	EXPECT_EQ(1, mvm_touch(m + 3 * PG, 0, &addr));
	EXPECT_EQ(0, mvm_check(m, 0, PG));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	munmap(m, 4 * PG);
	close(fd);
}

TEST_F(obj, only_the_owning_pager_commands_its_objects)
{
	int other = mvm_pager(self->dev);
	char page[PG];

	ASSERT_LE(0, other);
	mvm_fill(page, 0, PG);
	EXPECT_EQ(-ENOENT, mvm_supply(other, self->oc.id, 0, PG, page, 0));
	EXPECT_EQ(-ENOENT, mvm_error(other, self->oc.id, 0, PG, EIO));
	EXPECT_EQ(-ENOENT, mvm_ready(other, self->oc.id, 1, 0));
	/* A name is not a handle. */
	EXPECT_EQ(-ENOENT, mvm_supply(self->pager, self->oc.name + 100000, 0,
				      PG, page, 0));
	/* The device and the endpoint are no object rights. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ, MAP_SHARED,
				   self->dev, 0));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ, MAP_SHARED,
				   self->pager, 0));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ, MAP_SHARED,
				   other, 0));
	close(other);
}

TEST_F(obj, no_right_no_mapping)
{
	char path[64];
	pid_t pid;
	int status;

	/* Another user cannot reach the object through /proc. */
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), self->fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		if (setgid(65534) || setuid(65534))
			_exit(2);
		fd = open(path, O_RDWR);
		_exit(fd < 0 ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(obj, max_protection_is_enforced)
{
	struct machvm_object_create oc;
	int fd = mvm_object(self->pager, PG, PROT_READ, 0, &oc);
	char *m;

	ASSERT_LE(0, fd);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ | PROT_WRITE,
				   MAP_SHARED, fd, 0));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE, fd, 0));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_EXEC, MAP_SHARED, fd, 0));
	m = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_EQ(-1, mprotect(m, PG, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	munmap(m, PG);
	close(fd);
}

TEST_F(obj, destroy_revokes_pages)
{
	struct machvm_cmd c = { .type = MACHVM_CMD_DESTROY,
				.object = self->oc.id };
	void *addr;

	serve_and_map(_metadata, self, MVM_PATTERN);
	EXPECT_EQ(0, mvm_check(self->map, 0, PG));
	ASSERT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_EQ(1, mvm_touch(self->map, 0, &addr));
	EXPECT_EQ(-ENOENT, mvm_cmd(self->pager, &c));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ, MAP_SHARED,
				   self->fd, 0));
}

TEST_F(obj, control_ids_are_not_reused)
{
	struct machvm_object_create oc2, oc3;
	int fd2, fd3;

	fd2 = mvm_object(self->pager, PG, PROT_READ, 0, &oc2);
	ASSERT_LE(0, fd2);
	close(fd2);	/* never mapped: gone at once, id freed */
	fd3 = mvm_object(self->pager, PG, PROT_READ, 0, &oc3);
	ASSERT_LE(0, fd3);
	EXPECT_NE(oc2.id, oc3.id);
	EXPECT_NE(oc2.name, oc3.name);
	/* A late command for the dead id reaches nothing. */
	EXPECT_EQ(-ENOENT, mvm_unavailable(self->pager, oc2.id, 0, PG));
	close(fd3);
}

/* A cluster request answered for the faulting page alone frees its fault. */
TEST_F(obj, fault_wakes_when_its_own_page_arrives)
{
	struct machvm_object_create oc = { .size = self->len,
					   .max_prot = PROT_READ };
	struct machvm_msg m;
	char page[PG];
	pid_t pid;
	int status;
	double t;

	oc.attr.cluster_pages = 16;
	oc.attr.timeout_ms = 8000;
	ASSERT_EQ(0, ioctl(self->pager, MACHVM_IOC_OBJECT_CREATE, &oc));
	close(self->fd);
	self->fd = oc.fd;
	ASSERT_EQ(0, mvm_ready(self->pager, oc.id, 16, 0));
	self->map = map_obj(self->fd, self->len, PROT_READ, MAP_SHARED, 0);
	ASSERT_NE(NULL, self->map);
	ASSERT_EQ(0, mvm_read_msg(self->pager, &m, 1000));	/* init */
	t = now();
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(mvm_check(self->map + 3 * PG, 3 * PG, PG) ? 1 : 0);
	ASSERT_EQ(0, mvm_read_msg(self->pager, &m, 2000));
	ASSERT_EQ(MACHVM_MSG_DATA_REQUEST, m.type);
	EXPECT_EQ(0, m.offset);
	EXPECT_EQ(16 * PG, m.length);
	EXPECT_EQ(oc.name, m.name);
	mvm_fill(page, 3 * PG, PG);
	ASSERT_EQ(0, mvm_supply(self->pager, oc.id, 3 * PG, PG, page, 0));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_LT(now() - t, 4.0);	/* not the 8 s timeout */
}

/* GUP that cannot drop mmap_lock never sleeps on a pager. */
TEST_F(obj, proc_mem_read_does_not_wait_on_the_pager)
{
	char path[64], c;
	double t;
	int fd;

	serve_and_map(_metadata, self, MVM_SILENT);
	snprintf(path, sizeof(path), "/proc/%d/mem", getpid());
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	t = now();
	EXPECT_EQ(-1, pread(fd, &c, 1, (off_t)(uintptr_t)self->map));
	EXPECT_LT(now() - t, 2.0);	/* the timeout is 5 s */
	close(fd);
}

static volatile int usr1_seen;
static volatile double usr1_at;

static void on_usr1(int sig)
{
	usr1_seen++;
	usr1_at = now();
}

/* A waiting fault lets signal handlers run, then waits on. */
TEST_F(obj, waiting_fault_runs_signal_handlers)
{
	int to_parent[2];
	pid_t pid;
	int status;

	set_timeout(_metadata, self, 2000);
	serve_and_map(_metadata, self, MVM_SILENT);
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		double t0 = now();
		void *addr;
		int r;

		signal(SIGUSR1, on_usr1);
		r = mvm_touch(self->map, 0, &addr);
		/* SIGBUS after the 2 s timeout; the handler ran at once,
		 * not when the wait ended.
		 */
		_exit(r == 1 && usr1_seen == 1 && usr1_at - t0 < 1.5 &&
		      now() - t0 >= 1.9 ? 0 : 1);
	}
	usleep(500 * 1000);
	kill(pid, SIGUSR1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(obj, report_queue_is_bounded)
{
	char page[PG];
	int i, ret = 0;

	mvm_fill(page, 0, PG);
	for (i = 0; i < 70000; i++) {
		ret = mvm_supply(self->pager, self->oc.id, 0, PG, page,
				 MACHVM_SUPPLY_F_REPORT);
		if (ret)
			break;
	}
	EXPECT_EQ(-ENOBUFS, ret);
	EXPECT_EQ(65536, i);
	/* Plain supplies still work. */
	EXPECT_EQ(0, mvm_supply(self->pager, self->oc.id, 0, PG, page, 0));
}

TEST_HARNESS_MAIN
