// SPDX-License-Identifier: GPL-2.0
/*
 * Linux memory-management semantics that machvm objects must keep:
 * mlock'ed pages (mlock, mlock2 MLOCK_ONFAULT, mlockall MCL_CURRENT and
 * MCL_FUTURE) are never paged out nor unmapped by the scan, and munlock
 * releases them; fault-around neighbours count as referenced; the
 * mappings counter stays exact across failed mmaps, forks, splits and
 * moves; a failed SWAP_ADD leaves no file it created.
 *
 * Swap files go to $MVM_DISK_DIR (an ext4 disk in the test VM).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_test.h"
#include "mvm_genl.h"

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif

static uint64_t obj_attr(uint64_t name, int attr)
{
	return mvm_info(name).obj[attr];
}

/* Page @i of @base mapped by a page-table entry (pagemap): 1, 0, -1. */
static int mapped(const void *base, uint64_t i)
{
	uint64_t e = 0;
	off_t off = ((uintptr_t)base / PG + i) * sizeof(e);
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, &e, sizeof(e), off);
	close(fd);
	if (n != sizeof(e))
		return -1;
	return !!(e & (1ULL << 63));
}

/* Pages of [0, n) resident. */
static uint64_t count_resident(const void *base, uint64_t n)
{
	uint64_t i, c = 0;

	for (i = 0; i < n; i++)
		c += mvm_resident(base, i) == 1;
	return c;
}

/* Force one pass over @name's pages (reference bits ignored): freed. */
static uint64_t force_pageout(uint64_t name, uint64_t target)
{
	struct mvm_nlreply r;

	memset(&r, 0, sizeof(r));
	if (mvm_pageout_run(target, name, 1, &r))
		return ~0ULL;
	return r.a[MACHVM_A_PO_FREED];
}

/*
 * Page out every page of [0, n) of @name (mapped at @base): true once
 * none is resident.  A page a per-CPU batch still holds (munlock's, the
 * LRU's) stays for that pass, so passes repeat for up to 10 s.
 */
static int all_paged_out(uint64_t name, const void *base, uint64_t n)
{
	int i;

	for (i = 0; i < 100; i++) {
		force_pageout(name, n);
		if (!count_resident(base, n))
			return 1;
		usleep(100000);
	}
	return 0;
}

static void fill(char *p, uint64_t n, char seed)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		memset(p + i * PG, (char)(seed + i), PG);
}

static uint64_t check(const char *p, uint64_t n, char seed)
{
	uint64_t i, bad = 0;

	for (i = 0; i < n; i++)
		bad += p[i * PG] != (char)(seed + i) ||
		       p[i * PG + PG - 1] != (char)(seed + i);
	return bad;
}

#define NPG 64

FIXTURE(lk) {
	uint32_t id;
	char path[256];
	uint64_t name;
	int fd;
	char *p;
};

/* The fixture's type, for helpers (checkpatch cannot parse the macro). */
typedef FIXTURE_DATA(lk) lk_fixture;

FIXTURE_SETUP(lk)
{
	snprintf(self->path, sizeof(self->path), "%s/mvm-mmsem.swap",
		 mvm_disk_dir());
	unlink(self->path);
	self->id = 0;
	ASSERT_EQ(0, mvm_swap_add(self->path, 4 << 20, 0, &self->id));
	self->fd = mvm_anon(NPG * PG, 0, &self->name);
	ASSERT_LE(0, self->fd);
	self->p = NULL;
}

FIXTURE_TEARDOWN(lk)
{
	if (self->p)
		munmap(self->p, NPG * PG);
	if (self->fd >= 0)
		close(self->fd);
	if (self->id)
		mvm_swap_remove(self->id);
	unlink(self->path);
}

/*
 * mlock() half of a written object: a forced pageout takes only the other
 * half, leaves the locked pages mapped (no fault on them), and munlock()
 * lets them go.
 */
TEST_F(lk, mlock_pages_never_paged_out)
{
	uint64_t i, out0;

	self->p = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->p);
	fill(self->p, NPG, 3);
	ASSERT_EQ(0, mlock(self->p, NPG / 2 * PG));
	out0 = obj_attr(self->name, MACHVM_OBJ_A_PAGEOUTS);
	EXPECT_EQ(NPG / 2, force_pageout(self->name, NPG));
	EXPECT_EQ(0, force_pageout(self->name, NPG));
	EXPECT_EQ(out0 + NPG / 2, obj_attr(self->name, MACHVM_OBJ_A_PAGEOUTS));
	EXPECT_EQ(NPG / 2, obj_attr(self->name, MACHVM_OBJ_A_RESIDENT));
	for (i = 0; i < NPG / 2; i++) {
		EXPECT_EQ(1, mvm_resident(self->p, i)) TH_LOG("page %lu", i);
		EXPECT_EQ(1, mapped(self->p, i)) TH_LOG("page %lu", i);
	}
	EXPECT_EQ(NPG / 2, count_resident(self->p, NPG));
	/* The daemon's own scans (reference bits honoured) too. */
	ASSERT_EQ(0, mvm_pageout_run(NPG, self->name, 0,
				     &(struct mvm_nlreply){ 0 }));
	EXPECT_EQ(NPG / 2, count_resident(self->p, NPG / 2));
	EXPECT_EQ(0, check(self->p, NPG, 3));
	/* munlock: the pages may go again. */
	ASSERT_EQ(0, munlock(self->p, NPG / 2 * PG));
	EXPECT_TRUE(all_paged_out(self->name, self->p, NPG));
	EXPECT_EQ(0, obj_attr(self->name, MACHVM_OBJ_A_RESIDENT));
	EXPECT_EQ(0, check(self->p, NPG, 3));
}

/* MLOCK_ONFAULT: a page locks when touched; the touched ones stay. */
TEST_F(lk, mlock2_onfault_touched_pages_stay)
{
	uint64_t i;

	self->p = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->p);
	ASSERT_EQ(0, syscall(SYS_mlock2, self->p, NPG * PG, MLOCK_ONFAULT));
	for (i = 0; i < NPG; i += 2)
		memset(self->p + i * PG, (char)(i + 1), PG);
	force_pageout(self->name, NPG);
	force_pageout(self->name, NPG);
	for (i = 0; i < NPG; i += 2) {
		EXPECT_EQ(1, mvm_resident(self->p, i)) TH_LOG("page %lu", i);
		EXPECT_EQ((char)(i + 1), self->p[i * PG]);
	}
	ASSERT_EQ(0, munlock(self->p, NPG * PG));
	EXPECT_TRUE(all_paged_out(self->name, self->p, NPG));
}

/*
 * mlockall() in a child: MCL_CURRENT locks the mapping it has, MCL_FUTURE
 * the one it makes next (populated at mmap).  Exit status: 0, or the
 * number of the failed step.
 */
static int mlockall_child(int fd, uint64_t name, int flags)
{
	char *p = NULL;
	uint64_t i;

	if (flags & MCL_CURRENT) {
		p = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, 0);
		if (p == MAP_FAILED)
			return 1;
		fill(p, NPG, 9);
	}
	if (mlockall(flags))
		return 2;
	if (!p) {
		p = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, 0);
		if (p == MAP_FAILED)
			return 3;
		if (count_resident(p, NPG) != NPG)	/* populated */
			return 4;
		fill(p, NPG, 9);
	}
	force_pageout(name, NPG);
	force_pageout(name, NPG);
	for (i = 0; i < NPG; i++)
		if (mvm_resident(p, i) != 1 || mapped(p, i) != 1)
			return 5;
	if (check(p, NPG, 9))
		return 6;
	if (munlockall())
		return 7;
	if (!all_paged_out(name, p, NPG))
		return 8;
	if (check(p, NPG, 9))
		return 9;
	return 0;
}

static int run_child(int fd, uint64_t name, int flags)
{
	int status = -1;
	pid_t pid = fork();

	if (pid == 0)
		_exit(mlockall_child(fd, name, flags));
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

TEST_F(lk, mlockall_current)
{
	EXPECT_EQ(0, run_child(self->fd, self->name, MCL_CURRENT));
}

TEST_F(lk, mlockall_future)
{
	EXPECT_EQ(0, run_child(self->fd, self->name, MCL_FUTURE));
}

/*
 * Under the object's resident limit, the pageout daemon takes the
 * unlocked pages only; what the locked process reads is its own.
 */
TEST_F(lk, mlock_under_resident_limit)
{
	uint64_t i, name;
	char *q;
	int fd;

	fd = mvm_anon(4 * NPG * PG, NPG, &name);
	ASSERT_LE(0, fd);
	q = mmap(NULL, 4 * NPG * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 0);
	ASSERT_NE(MAP_FAILED, q);
	fill(q, NPG / 2, 1);
	ASSERT_EQ(0, mlock(q, NPG / 2 * PG));
	/* Three times the limit through the rest. */
	for (i = NPG / 2; i < 4 * NPG; i++)
		memset(q + i * PG, (char)(1 + i), PG);
	for (i = 0; i < NPG / 2; i++) {
		EXPECT_EQ(1, mvm_resident(q, i)) TH_LOG("page %lu", i);
		EXPECT_EQ(1, mapped(q, i)) TH_LOG("page %lu", i);
	}
	EXPECT_EQ(0, check(q, 4 * NPG, 1));
	munmap(q, 4 * NPG * PG);
	close(fd);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Set a resident limit: @name's (name 0: the global one).  0 or -errno. */
static int set_limit(uint64_t name, uint64_t limit)
{
	struct mvm_nlattr a[] = {
		{ .type = MACHVM_A_OBJ_NAME, .v = name, .len = 8 },
		{ .type = MACHVM_A_OBJ_LIMIT, .v = limit, .len = 8 },
		{ 0 },
	};
	struct mvm_nlreply r;

	if (!name) {
		a[0].type = MACHVM_A_PO_LIMIT;
		a[0].v = limit;
		a[1].type = 0;
	}
	return mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, a, &r);
}

/*
 * More pages mlocked than a resident limit allows: pageout can free none
 * of them, so a fault over the limit must go ahead at once, not wait for
 * room that never comes (10 s a fault, and a 1024-page sweep hours).
 * @global: the global limit, else the object's.  @populate: the faults
 * are mlock()'s populate (GUP, whose retry after a wait starts over
 * without FAULT_FLAG_TRIED: it waited again, forever), else touches.
 * Milliseconds the faults on NPG / 32 fresh pages took, or -1.
 */
static int64_t mlocked_over_limit(struct __test_metadata *_metadata,
				  lk_fixture *self, int global, int populate)
{
	struct mvm_nlreply r;
	uint64_t i, old = 0;
	int64_t t;

	self->p = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->fd, 0);
	if (self->p == MAP_FAILED) {
		self->p = NULL;
		return -1;
	}
	fill(self->p, NPG / 2, 5);
	if (mlock(self->p, NPG / 2 * PG))
		return -1;
	if (global) {
		if (mvm_nl(MACHVM_GENL_CMD_GET_PAGEOUT, NULL, &r))
			return -1;
		old = r.a[MACHVM_A_PO_LIMIT];
	}
	if (set_limit(global ? 0 : self->name, NPG / 4))
		return -1;
	t = mono_ms();
	if (populate)
		EXPECT_EQ(0, mlock(self->p + NPG / 2 * PG, NPG / 32 * PG));
	for (i = NPG / 2; i < NPG / 2 + NPG / 32; i++)
		memset(self->p + i * PG, (char)(5 + i), PG);
	t = mono_ms() - t;
	EXPECT_EQ(0, set_limit(global ? 0 : self->name, global ? old : 0));
	EXPECT_EQ(0, check(self->p, NPG / 2 + NPG / 32, 5));
	for (i = 0; i < NPG / 2 + (populate ? NPG / 32 : 0); i++)
		EXPECT_EQ(1, mapped(self->p, i)) TH_LOG("page %lu", i);
	EXPECT_EQ(0, munlock(self->p, (NPG / 2 + NPG / 32) * PG));
	TH_LOG("%d faults (%s) over the %s limit: %lld ms", NPG / 32,
	       populate ? "mlock" : "touch", global ? "global" : "object's",
	       (long long)t);
	return t;
}

/* Each of the NPG / 32 faults well under the 10 s a wait for room took. */
static void faults_go_ahead(struct __test_metadata *_metadata,
			    lk_fixture *self, int global, int populate)
{
	int64_t ms = mlocked_over_limit(_metadata, self, global, populate);

	ASSERT_LE(0, ms);
	EXPECT_GT(NPG / 32 * 1000, ms);
}

TEST_F(lk, mlocked_over_object_limit_faults_go_ahead)
{
	faults_go_ahead(_metadata, self, 0, 0);
}

TEST_F(lk, mlocked_over_global_limit_faults_go_ahead)
{
	faults_go_ahead(_metadata, self, 1, 0);
}

/* The soak's hang (seed 603091715182 on 6.1): mlock()ing over a limit. */
TEST_F(lk, mlock_populate_over_object_limit_goes_ahead)
{
	faults_go_ahead(_metadata, self, 0, 1);
}

TEST_F(lk, mlock_populate_over_global_limit_goes_ahead)
{
	faults_go_ahead(_metadata, self, 1, 1);
}

/*
 * Fault-around maps a faulting page's resident neighbours: they are as
 * referenced as the page itself, and survive the next scan.
 */
TEST(fault_around_neighbours_referenced)
{
	const uint64_t win = 16;	/* fault_around_bytes: 64 KiB */
	uint64_t name, i, nmapped = 0;
	struct mvm_nlreply r;
	char *res, *p;
	volatile char c;
	int fd;

	fd = mvm_anon(NPG * PG, 0, &name);
	ASSERT_LE(0, fd);
	/* A mapping aligned to the fault-around window. */
	res = mmap(NULL, (NPG + win) * PG, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, res);
	p = (char *)(((uintptr_t)res + win * PG - 1) & ~(win * PG - 1));
	ASSERT_EQ(p, mmap(p, NPG * PG, PROT_READ, MAP_SHARED | MAP_FIXED,
			  fd, 0));
	for (i = 0; i < NPG; i++)
		c = p[i * PG];
	/* Sweep one clears every bit (and unmaps), sweep two takes page 0. */
	ASSERT_EQ(0, mvm_pageout_run(1, name, 0, &r));
	ASSERT_EQ(1, r.a[MACHVM_A_PO_FREED]);
	ASSERT_EQ(0, mvm_resident(p, 0));
	for (i = 1; i < NPG; i++)
		ASSERT_EQ(0, mapped(p, i)) TH_LOG("page %lu", i);
	/* One read fault: fault-around maps pages 1..15 with page 2. */
	c = p[2 * PG];
	(void)c;
	for (i = 1; i < win; i++)
		nmapped += mapped(p, i) == 1;
	ASSERT_EQ(win - 1, nmapped) TH_LOG("fault-around is off?");
	/* The next pass gives them their second chance: page 16 goes. */
	ASSERT_EQ(0, mvm_pageout_run(1, name, 0, &r));
	EXPECT_EQ(1, r.a[MACHVM_A_PO_FREED]);
	for (i = 1; i < win; i++)
		EXPECT_EQ(1, mvm_resident(p, i)) TH_LOG("page %lu", i);
	EXPECT_EQ(0, mvm_resident(p, win));
	munmap(res, (NPG + win) * PG);
	close(fd);
}

/* Exit status of a child running @fn: 0 or its failed step. */
static int in_child(int (*fn)(int, uint64_t), int fd, uint64_t name)
{
	int status = -1;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(fd, name));
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

/* Under MDWE (6.3+), a writable and executable mmap is refused. */
static int mdwe_child(int fd, uint64_t name)
{
	void *p;

	if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0))
		return 0;		/* 6.1: no MDWE; nothing to try */
	p = mmap(NULL, PG, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED,
		 fd, 0);
	if (p != MAP_FAILED)
		return 1;
	/* The parent's mapping and this child's copy of it. */
	return obj_attr(name, MACHVM_OBJ_A_MAPPINGS) != 2 ? 2 : 0;
}

/* The mapping count follows live VMAs through every way they come and go. */
TEST(mappings_count_exact)
{
	struct machvm_object_create oc;
	struct mvm_server s;
	uint64_t name;
	int dev, pager, fd, st = -1;
	char *res, *p;
	pid_t pid;

	dev = mvm_dev();
	ASSERT_LE(0, dev);
	pager = mvm_pager(dev);
	ASSERT_LE(0, pager);
	fd = mvm_object(pager, 64 * PG, PROT_READ | PROT_WRITE | PROT_EXEC,
			5000, &oc);
	ASSERT_LE(0, fd);
	name = oc.name;
	mvm_server_start(&s, pager, MVM_PATTERN);
	EXPECT_EQ(0, obj_attr(name, MACHVM_OBJ_A_MAPPINGS));
	res = mmap(NULL, 64 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	ASSERT_NE(MAP_FAILED, res);
	p = mmap(res, 16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 fd, 0);
	ASSERT_EQ(res, p);
	EXPECT_EQ(1, obj_attr(name, MACHVM_OBJ_A_MAPPINGS));
	/* Refused mmaps change nothing. */
	EXPECT_EQ(0, in_child(mdwe_child, fd, name));
	EXPECT_EQ(1, obj_attr(name, MACHVM_OBJ_A_MAPPINGS));
	/* Split by munmap of a page, then by mprotect of one. */
	ASSERT_EQ(0, munmap(p + 4 * PG, PG));
	EXPECT_EQ(2, obj_attr(name, MACHVM_OBJ_A_MAPPINGS));
	ASSERT_EQ(0, mprotect(p + 8 * PG, PG, PROT_READ));
	EXPECT_EQ(4, obj_attr(name, MACHVM_OBJ_A_MAPPINGS));
	/* Part of one moved: [9, 10) stays, [10, 16) goes to [40, 46). */
	ASSERT_EQ(p + 40 * PG, mremap(p + 10 * PG, 6 * PG, 6 * PG,
				      MREMAP_MAYMOVE | MREMAP_FIXED,
				      p + 40 * PG));
	EXPECT_EQ(5, obj_attr(name, MACHVM_OBJ_A_MAPPINGS));
	/* A fork copies them; its exit drops the copies. */
	pid = fork();
	if (pid == 0)
		_exit(obj_attr(name, MACHVM_OBJ_A_MAPPINGS) == 10 ? 0 : 1);
	ASSERT_LT(0, pid);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_EQ(0, WEXITSTATUS(st));
	EXPECT_EQ(5, obj_attr(name, MACHVM_OBJ_A_MAPPINGS));
	munmap(res, 64 * PG);
	EXPECT_EQ(0, obj_attr(name, MACHVM_OBJ_A_MAPPINGS));
	mvm_server_stop(&s);
	close(fd);
	close(pager);
	close(dev);
}

/*
 * A SWAP_ADD that fails removes the file it created, on every failure
 * path (too small, too large, no room for it); a file that was there
 * stays.
 */
static void swap_add_fails_clean(struct __test_metadata *_metadata,
				 const char *dir)
{
	static const struct { uint64_t size; int err; } bad[] = {
		{ 8 * PG, -ENOSPC },		/* under 16 pages */
		{ 0, -ENOSPC },			/* a new file is empty */
		{ 1ULL << 46, -EINVAL },	/* over 2^33 pages */
		{ 1ULL << 44, 0 },		/* 16 TiB: no room */
	};
	char path[300];
	struct stat st;
	uint32_t id = 0;
	unsigned int i;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/mvm-mmsem-bad.swap", dir);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		unlink(path);
		ret = mvm_swap_add(path, bad[i].size, 0, &id);
		if (bad[i].err) {
			EXPECT_EQ(bad[i].err, ret)
				TH_LOG("%s size %llu", dir,
				       (unsigned long long)bad[i].size);
		} else {	/* EFBIG on ext4, ENOSPC on tmpfs */
			EXPECT_GT(0, ret) TH_LOG("%s: %d", dir, ret);
		}
		if (!ret)
			mvm_swap_remove(id);
		errno = 0;
		EXPECT_EQ(-1, stat(path, &st))
			TH_LOG("%s size %llu: left behind", dir,
			       (unsigned long long)bad[i].size);
		EXPECT_EQ(ENOENT, errno);
	}
	/* Not created by the call: stays. */
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 8 * PG));
	close(fd);
	EXPECT_EQ(-ENOSPC, mvm_swap_add(path, 0, 0, &id));
	EXPECT_EQ(0, stat(path, &st));
	EXPECT_EQ(8 * PG, st.st_size);
	unlink(path);
}

TEST(swap_add_failure_removes_created_file)
{
	swap_add_fails_clean(_metadata, mvm_disk_dir());
	/* /tmp: tmpfs, without O_DIRECT on 6.1 (the open's second try). */
	swap_add_fails_clean(_metadata, "/tmp");
}

TEST_HARNESS_MAIN
