// SPDX-License-Identifier: GPL-2.0
/*
 * Pageout and the default pager: anonymous objects larger than their
 * resident limit through a swap file and a swap partition, second-chance
 * order, pagers that take, refuse, ignore or die with data_returns
 * outstanding, lock_request, a full swap, store removal under load, a
 * memcg-limited process, and module unload refused while objects live.
 *
 * Swap files go to $MVM_DISK_DIR (an ext4 disk in the test VM), the swap
 * partition is $MVM_SWAP_DEV (see tests/vm/init).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_test.h"
#include "mvm_genl.h"

static void swap_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", mvm_disk_dir(), name);
	unlink(buf);
}

/* The pattern of page @i under @seed (seed 0: mvm_word's). */
static void fill_page(char *p, uint64_t i, uint64_t seed)
{
	uint64_t *w = (uint64_t *)p;
	size_t k;

	for (k = 0; k < PG / 8; k++)
		w[k] = mvm_word(i * PG + k * 8) ^ seed;
}

static int page_ok(const char *p, uint64_t i, uint64_t seed)
{
	const uint64_t *w = (const uint64_t *)p;
	size_t k;

	for (k = 0; k < PG / 8; k++)
		if (w[k] != (mvm_word(i * PG + k * 8) ^ seed))
			return 0;
	return 1;
}

/* Wait up to @ms for store @id to have @want slots in use. */
static int wait_swap_used(uint32_t id, uint64_t want, int ms)
{
	struct mvm_nlreply r;

	for (; ms > 0; ms -= 20) {
		if (!mvm_swap_info(id, &r) && r.swap[MACHVM_SWAP_A_USED] == want)
			return 1;
		usleep(20000);
	}
	return 0;
}

/* Write and verify @n pages of an anonymous object with @limit, via swap. */
static void anon_roundtrip(struct __test_metadata *_metadata, uint64_t n,
			   uint64_t limit)
{
	uint64_t name, i, bad = 0;
	struct mvm_nlreply r;
	char *p;
	int fd;

	fd = mvm_anon(n * PG, limit, &name);
	ASSERT_LE(0, fd);
	p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < n; i++)
		fill_page(p + i * PG, i, 0x5a5a5a5a12345678ULL);
	r = mvm_info(name);
	EXPECT_GE(limit, r.obj[MACHVM_OBJ_A_RESIDENT]);
	EXPECT_LT(0, r.obj[MACHVM_OBJ_A_PAGEOUTS]);
	EXPECT_LT(0, r.obj[MACHVM_OBJ_A_SWAPPED]);
	for (i = 0; i < n; i++)
		bad += !page_ok(p + i * PG, i, 0x5a5a5a5a12345678ULL);
	EXPECT_EQ(0, bad);
	r = mvm_info(name);
	EXPECT_LT(0, r.obj[MACHVM_OBJ_A_PAGEINS]);
	EXPECT_GE(limit, r.obj[MACHVM_OBJ_A_RESIDENT]);
	EXPECT_EQ(MACHVM_OBJ_KIND_ANON, r.obj[MACHVM_OBJ_A_KIND]);
	EXPECT_EQ(MACHVM_PAGER_STATE_NONE, r.obj[MACHVM_OBJ_A_PAGER_STATE]);
	munmap(p, n * PG);
	close(fd);
}

/*
 * An anonymous object of @n pages, mapped at *@p, each page filled under
 * @seed, then every page paged out to swap (a store must be added).
 */
static int anon_swapped_out(struct __test_metadata *_metadata, uint64_t n,
			    uint64_t seed, uint64_t *name, char **p)
{
	struct mvm_nlreply r;
	uint64_t i;
	int fd;

	fd = mvm_anon(n * PG, 0, name);
	ASSERT_LE(0, fd);
	*p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, *p);
	for (i = 0; i < n; i++)
		fill_page(*p + i * PG, i, seed);
	ASSERT_EQ(0, mvm_pageout_run(n, *name, 1, &r));
	EXPECT_EQ(0, mvm_info(*name).obj[MACHVM_OBJ_A_RESIDENT]);
	return fd;
}

FIXTURE(swp) {
	uint32_t id, id2;
	char path[256], path2[256];
	int frozen;	/* fd of mvm_disk_dir() while frozen, or -1 */
};

FIXTURE_SETUP(swp)
{
	swap_path(self->path, sizeof(self->path), "mvm-test.swap");
	swap_path(self->path2, sizeof(self->path2), "mvm-test2.swap");
	self->id = 0;
	self->id2 = 0;
	self->frozen = -1;
}

FIXTURE_TEARDOWN(swp)
{
	if (self->frozen >= 0) {
		ioctl(self->frozen, FITHAW, 0);
		close(self->frozen);
	}
	if (self->id)
		mvm_swap_remove(self->id);
	if (self->id2)
		mvm_swap_remove(self->id2);
	unlink(self->path);
	unlink(self->path2);
}

TEST_F(swp, anon_4x_limit_swap_file)
{
	struct mvm_nlreply r;

	ASSERT_EQ(0, mvm_swap_add(self->path, 64 << 20, 0, &self->id));
	ASSERT_EQ(0, mvm_swap_info(self->id, &r));
	EXPECT_EQ(MACHVM_SWAP_KIND_FILE, r.swap[MACHVM_SWAP_A_KIND]);
	EXPECT_EQ((64 << 20) / PG, r.swap[MACHVM_SWAP_A_SLOTS]);
	anon_roundtrip(_metadata, 2048, 512);
	/* The object is gone (once a pass in flight lets go): so are its
	 * slots.
	 */
	EXPECT_TRUE(wait_swap_used(self->id, 0, 3000));
	ASSERT_EQ(0, mvm_swap_info(self->id, &r));
	EXPECT_LT(0, r.swap[MACHVM_SWAP_A_WRITES]);
	EXPECT_LT(0, r.swap[MACHVM_SWAP_A_READS]);
}

TEST_F(swp, anon_4x_limit_swap_partition)
{
	const char *dev = getenv("MVM_SWAP_DEV");
	struct mvm_nlreply r;

	ASSERT_NE(NULL, dev) TH_LOG("no swap partition in this VM");
	ASSERT_EQ(0, mvm_swap_add(dev, 0, 0, &self->id));
	ASSERT_EQ(0, mvm_swap_info(self->id, &r));
	EXPECT_EQ(MACHVM_SWAP_KIND_BDEV, r.swap[MACHVM_SWAP_A_KIND]);
	EXPECT_EQ(1, r.swap[MACHVM_SWAP_A_DIRECT]);
	/* Claimed exclusively: a second add fails. */
	EXPECT_EQ(-EBUSY, mvm_swap_add(dev, 0, 0, &self->id2));
	anon_roundtrip(_metadata, 2048, 512);
	EXPECT_TRUE(wait_swap_used(self->id, 0, 3000));
	ASSERT_EQ(0, mvm_swap_info(self->id, &r));
	EXPECT_LT(0, r.swap[MACHVM_SWAP_A_READS]);
}

TEST_F(swp, add_rejects_bad_input)
{
	char small[300];

	snprintf(small, sizeof(small), "%s/mvm-small.swap", mvm_disk_dir());
	unlink(small);
	EXPECT_EQ(-ENOSPC, mvm_swap_add(small, 8 * PG, 0, &self->id2));
	unlink(small);
	EXPECT_EQ(-EINVAL, mvm_swap_add("/dev/null", 0, 0, &self->id2));
	EXPECT_EQ(-ENOENT, mvm_swap_add("/nonexistent/dir/x", 1 << 20, 0,
					&self->id2));
	ASSERT_EQ(0, mvm_swap_add(self->path, 1 << 20, 0, &self->id));
	EXPECT_EQ(-EBUSY, mvm_swap_add(self->path, 1 << 20, 0, &self->id2));
	EXPECT_EQ(-ENOENT, mvm_swap_remove(999));
	self->id2 = 0;
}

/* A page touched between two passes outlives an untouched one. */
TEST_F(swp, second_chance_order)
{
	struct mvm_nlreply r;
	uint64_t name, i;
	volatile char *p;
	int fd;

	ASSERT_EQ(0, mvm_swap_add(self->path, 1 << 20, 0, &self->id));
	fd = mvm_anon(16 * PG, 0, &name);
	ASSERT_LE(0, fd);
	p = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < 16; i++)
		p[i * PG] = (char)(i + 1);
	/* Every page was just touched: one sweep clears the bits, then the
	 * oldest page goes.
	 */
	ASSERT_EQ(0, mvm_pageout_run(1, name, 0, &r));
	EXPECT_EQ(1, r.a[MACHVM_A_PO_FREED]);
	EXPECT_EQ(0, mvm_resident((void *)p, 0));
	EXPECT_EQ(1, mvm_resident((void *)p, 1));
	EXPECT_EQ(16, mvm_info(name).obj[MACHVM_OBJ_A_REF_HITS]);
	/* The sweep unmapped them all: their dirty bits are known now. */
	EXPECT_EQ(15, mvm_info(name).obj[MACHVM_OBJ_A_DIRTY]);
	/*
	 * Touch page 1 (the next in line), not page 2: by a write, as a
	 * read's fault-around would map (and reference) page 2 with it.
	 */
	p[1 * PG] = 2;
	ASSERT_EQ(0, mvm_pageout_run(1, name, 0, &r));
	EXPECT_EQ(1, r.a[MACHVM_A_PO_FREED]);
	EXPECT_EQ(1, mvm_resident((void *)p, 1));
	EXPECT_EQ(0, mvm_resident((void *)p, 2));
	for (i = 0; i < 16; i++)
		EXPECT_EQ((char)(i + 1), p[i * PG]);
	munmap((void *)p, 16 * PG);
	close(fd);
}

/*
 * The clock sweeps an object in index order, from where its hand stopped,
 * not in the order pages came in: here they come in out of order and far
 * apart (64-page groups 0, 1, 3, 1093 and 4093 of a sparse 1 GiB object).
 */
TEST_F(swp, clock_sweeps_sparse_object_in_index_order)
{
	const uint64_t touch[] = { 5, 70000, 200, 262000, 64, 63 };
	const uint64_t n = ARRAY_SIZE(touch), size = 1ULL << 30;
	struct mvm_nlreply r;
	uint64_t name, i;
	char *p;
	int fd;

	ASSERT_EQ(0, mvm_swap_add(self->path, 1 << 20, 0, &self->id));
	fd = mvm_anon(size, 0, &name);
	ASSERT_LE(0, fd);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < n; i++)
		fill_page(p + touch[i] * PG, touch[i], 9);
	/* One sweep clears every bit, the next takes the lowest index. */
	ASSERT_EQ(0, mvm_pageout_run(1, name, 0, &r));
	EXPECT_EQ(1, r.a[MACHVM_A_PO_FREED]);
	EXPECT_EQ(n, mvm_info(name).obj[MACHVM_OBJ_A_REF_HITS]);
	EXPECT_EQ(0, mvm_resident(p, 5));
	/* FIFO order would take 70000 next; the hand is at 6. */
	ASSERT_EQ(0, mvm_pageout_run(1, name, 0, &r));
	EXPECT_EQ(1, r.a[MACHVM_A_PO_FREED]);
	EXPECT_EQ(0, mvm_resident(p, 63));
	EXPECT_EQ(1, mvm_resident(p, 70000));
	/* Touched since the hand passed: 64 stays, 200 goes. */
	*(volatile char *)(p + 64 * PG) = p[64 * PG];
	ASSERT_EQ(0, mvm_pageout_run(1, name, 0, &r));
	EXPECT_EQ(1, r.a[MACHVM_A_PO_FREED]);
	EXPECT_EQ(1, mvm_resident(p, 64));
	EXPECT_EQ(0, mvm_resident(p, 200));
	EXPECT_EQ(n + 1, mvm_info(name).obj[MACHVM_OBJ_A_REF_HITS]);
	ASSERT_EQ(0, mvm_pageout_run(2, name, 0, &r));
	EXPECT_EQ(2, r.a[MACHVM_A_PO_FREED]);
	EXPECT_EQ(0, mvm_resident(p, 70000));
	EXPECT_EQ(0, mvm_resident(p, 262000));
	EXPECT_EQ(1, mvm_resident(p, 64));
	EXPECT_EQ(1, mvm_info(name).obj[MACHVM_OBJ_A_RESIDENT]);
	for (i = 0; i < n; i++) {
		EXPECT_TRUE(page_ok(p + touch[i] * PG, touch[i], 9))
			TH_LOG("page %llu", (unsigned long long)touch[i]);
	}
	munmap(p, size);
	close(fd);
}

/* Every store full: the fault that needs room gets SIGBUS, nothing is
 * corrupted, and a new store makes everything readable again.
 */
TEST_F(swp, swap_full)
{
	uint64_t name, i, written = 0, full0;
	void *bus = NULL;
	char *p;
	int fd;

	ASSERT_EQ(0, mvm_swap_add(self->path, 32 * PG, 0, &self->id));
	fd = mvm_anon(256 * PG, 32, &name);
	ASSERT_LE(0, fd);
	p = mmap(NULL, 256 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	full0 = mvm_stat(MACHVM_A_STAT_SWAP_FULL);
	for (i = 0; i < 256; i++) {
		if (mvm_touch(p + i * PG, 1, &bus))
			break;
		fill_page(p + i * PG, i, 7);
		written++;
	}
	EXPECT_EQ(p + written * PG, (char *)bus);
	EXPECT_LE(48, written);
	EXPECT_GE(80, written);
	EXPECT_LT(full0, mvm_stat(MACHVM_A_STAT_SWAP_FULL));
	ASSERT_EQ(0, mvm_swap_add(self->path2, 1 << 20, 0, &self->id2));
	for (i = 0; i < written; i++)
		if (!page_ok(p + i * PG, i, 7))
			break;
	EXPECT_EQ(written, i);
	munmap(p, 256 * PG);
	close(fd);
}

/* Removing a store reads its pages back while others use the object. */
static volatile int load_stop;
static char *load_base;
static uint64_t load_pages;
static volatile uint64_t load_bad, load_rounds;

static void *load_fn(void *arg)
{
	uint64_t x = 88172645463325252ULL, i;

	while (!load_stop) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = x % load_pages;
		if (!page_ok(load_base + i * PG, i, 3))
			load_bad++;
		fill_page(load_base + i * PG, i, 3);	/* dirty it again */
		load_rounds++;
	}
	return NULL;
}

TEST_F(swp, store_removal_under_load)
{
	const uint64_t n = 2048;
	struct mvm_nlreply r;
	pthread_t th;
	uint64_t name, i, bad = 0;
	char *p;
	int fd;

	ASSERT_EQ(0, mvm_swap_add(self->path, 16 << 20, 10, &self->id));
	ASSERT_EQ(0, mvm_swap_add(self->path2, 16 << 20, 0, &self->id2));
	fd = mvm_anon(n * PG, 256, &name);
	ASSERT_LE(0, fd);
	p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < n; i++)
		fill_page(p + i * PG, i, 3);
	ASSERT_EQ(0, mvm_swap_info(self->id, &r));
	EXPECT_LT(1000, r.swap[MACHVM_SWAP_A_USED]);	/* the higher priority */
	load_base = p;
	load_pages = n;
	load_stop = 0;
	ASSERT_EQ(0, pthread_create(&th, NULL, load_fn, NULL));
	usleep(200000);
	EXPECT_EQ(0, mvm_swap_remove(self->id));
	usleep(200000);
	load_stop = 1;
	pthread_join(th, NULL);
	EXPECT_EQ(-ENOENT, mvm_swap_info(self->id, &r));
	self->id = 0;
	EXPECT_EQ(0, load_bad);
	EXPECT_LT(0, load_rounds);
	for (i = 0; i < n; i++)
		bad += !page_ok(p + i * PG, i, 3);
	EXPECT_EQ(0, bad);
	ASSERT_EQ(0, mvm_swap_info(self->id2, &r));
	EXPECT_LT(0, r.swap[MACHVM_SWAP_A_USED]);
	munmap(p, n * PG);
	close(fd);
}

/* A process in a memory cgroup smaller than what it writes: machvm pages
 * its own pages out when a charge fails instead of invoking the OOM killer.
 */
TEST_F(swp, memcg_limited_process)
{
	const char *cg = "/sys/fs/cgroup/mvm-test";
	char buf[64];
	int status, cfd;
	pid_t pid;

	ASSERT_EQ(0, mvm_swap_add(self->path, 96 << 20, 0, &self->id));
	mkdir("/sys/fs/cgroup", 0755);
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK))
		ASSERT_EQ(0, mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL));
	cfd = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY);
	ASSERT_LE(0, cfd);
	write(cfd, "+memory", 7);
	close(cfd);
	rmdir(cg);
	ASSERT_EQ(0, mkdir(cg, 0755));
	snprintf(buf, sizeof(buf), "%s/memory.max", cg);
	cfd = open(buf, O_WRONLY);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(3, write(cfd, "16M", 3));
	close(cfd);

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		const uint64_t n = (64 << 20) / PG;
		uint64_t name, i;
		char *p;
		int fd;

		snprintf(buf, sizeof(buf), "%s/cgroup.procs", cg);
		fd = open(buf, O_WRONLY);
		if (fd < 0 || dprintf(fd, "%d", getpid()) <= 0)
			_exit(10);
		close(fd);
		fd = mvm_anon(n * PG, 0, &name);
		if (fd < 0)
			_exit(11);
		p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 0);
		if (p == MAP_FAILED)
			_exit(12);
		for (i = 0; i < n; i++)
			fill_page(p + i * PG, i, 9);
		for (i = 0; i < n; i++)
			if (!page_ok(p + i * PG, i, 9))
				_exit(13);
		if (!mvm_info(name).obj[MACHVM_OBJ_A_PAGEOUTS])
			_exit(14);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("child killed by signal %d",
					      WTERMSIG(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	rmdir(cg);
}

/*
 * Linux reclaims machvm memory through the shrinker: drop_caches runs
 * every shrinker, and clean pages (with a swap copy) go without I/O;
 * referenced ones after a second chance.
 */
TEST_F(swp, shrinker_gives_memory_back)
{
	const uint64_t n = 4096;
	uint64_t name, i, bad = 0, writes, res;
	int fd, k;
	char *p;

	ASSERT_EQ(0, mvm_swap_add(self->path, 32 << 20, 0, &self->id));
	/* Everything to swap, then back: resident, clean, with a slot. */
	fd = anon_swapped_out(_metadata, n, 5, &name, &p);
	for (i = 0; i < n; i++)
		bad += !page_ok(p + i * PG, i, 5);
	EXPECT_EQ(0, bad);
	EXPECT_EQ(n, mvm_info(name).obj[MACHVM_OBJ_A_RESIDENT]);
	writes = mvm_stat(MACHVM_A_STAT_SWAP_WRITES);
	/*
	 * Every page was just read: all referenced.  The shrinker must clear
	 * the bits and free on its next calls, not stop at the first.  A
	 * call that finds the pageout thread in a pass (kicked by the one
	 * before) frees nothing and ends that drop_caches, so drop until
	 * half is gone, ten times at most.
	 */
	res = n;
	for (k = 0; k < 10 && res >= n / 2; k++) {
		int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);

		ASSERT_LE(0, dc);
		ASSERT_EQ(2, write(dc, "2\n", 2));
		close(dc);
		res = mvm_info(name).obj[MACHVM_OBJ_A_RESIDENT];
		if (res >= n / 2)
			usleep(100000);
	}
	EXPECT_GT(n / 2, res) TH_LOG("still resident: %llu",
				     (unsigned long long)res);
	EXPECT_EQ(writes, mvm_stat(MACHVM_A_STAT_SWAP_WRITES));
	for (i = 0; i < n; i++)
		bad += !page_ok(p + i * PG, i, 5);
	EXPECT_EQ(0, bad);
	munmap(p, n * PG);
	close(fd);
}

/* Read requests the block device @dev has completed (/sys/block/X/stat). */
static long dev_reads(const char *dev)
{
	const char *base = strrchr(dev, '/');
	char path[128];
	long reads = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/%s/stat", base ? base + 1 : dev);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &reads) != 1)
		reads = -1;
	fclose(f);
	return reads;
}

/*
 * A sequential reader of paged-out pages gets a growing read-ahead: 8
 * pages, then 16, then 32 per read from the store (README).  Counted on
 * the partition's own read requests: at 8 pages a read, 1024 pages would
 * take 128 of them; with the window grown, about 33.  A reader of every
 * sixteenth page (never where a read-ahead ended, never using what it
 * read ahead) reads at most 8 pages a fault, fewer as its window shrinks.
 */
TEST_F(swp, sequential_swapin_reads_ahead)
{
	const char *dev = getenv("MVM_SWAP_DEV");
	const uint64_t n = 1024;
	struct mvm_nlreply r;
	uint64_t name, i, bad = 0, in0;
	long reads;
	char *p;
	int fd;

	ASSERT_NE(NULL, dev) TH_LOG("no swap partition in this VM");
	ASSERT_EQ(0, mvm_swap_add(dev, 0, 0, &self->id));
	fd = anon_swapped_out(_metadata, n, 7, &name, &p);

	/* Every sixteenth page: each read is a new stream, 8 pages or less. */
	in0 = mvm_info(name).obj[MACHVM_OBJ_A_PAGEINS];
	reads = dev_reads(dev);
	ASSERT_LE(0, reads);
	for (i = 0; i < n; i += 16)
		bad += !page_ok(p + i * PG, i, 7);
	reads = dev_reads(dev) - reads;
	/* One read per fault, none of them grown past 8 pages. */
	EXPECT_GE(n / 2, mvm_info(name).obj[MACHVM_OBJ_A_PAGEINS] - in0);
	EXPECT_EQ((long)(n / 16), reads);

	/* Everything out again, then in order. */
	ASSERT_EQ(0, mvm_pageout_run(n, name, 1, &r));
	ASSERT_EQ(0, mvm_info(name).obj[MACHVM_OBJ_A_RESIDENT]);
	in0 = mvm_info(name).obj[MACHVM_OBJ_A_PAGEINS];
	reads = dev_reads(dev);
	for (i = 0; i < n; i++)
		bad += !page_ok(p + i * PG, i, 7);
	reads = dev_reads(dev) - reads;
	EXPECT_EQ(0, bad);
	EXPECT_EQ(n, mvm_info(name).obj[MACHVM_OBJ_A_PAGEINS] - in0);
	EXPECT_GE((long)(n / 16), reads) TH_LOG("%ld reads for %llu pages",
						reads, (unsigned long long)n);
	EXPECT_LE((long)(n / 32), reads);
	munmap(p, n * PG);
	close(fd);
}

/*
 * Pages written in an interleaved order (as several threads each filling
 * their own part of one object would) still get slots in index order
 * within a pageout batch, so reading one part back in order reads ahead:
 * here 4 parts of 256 pages, written a page of each in turn under a
 * resident limit of 256 (pageout takes them in FIFO order), then the rest
 * paged out.  Batches of up to 32 pages hold runs of 8 of each part; with
 * slots in FIFO order instead, every swap-in of part 0 was one page.
 */
TEST_F(swp, interleaved_writers_get_contiguous_slots)
{
	const char *dev = getenv("MVM_SWAP_DEV");
	const uint64_t part = 256, n = 4 * part;
	struct mvm_nlreply r;
	uint64_t name, i, k, bad = 0;
	long reads;
	char *p;
	int fd;

	ASSERT_NE(NULL, dev) TH_LOG("no swap partition in this VM");
	ASSERT_EQ(0, mvm_swap_add(dev, 0, 0, &self->id));
	fd = mvm_anon(n * PG, part, &name);
	ASSERT_LE(0, fd);
	p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < part; i++)
		for (k = 0; k < 4; k++)
			fill_page(p + (k * part + i) * PG, k * part + i, 3);
	ASSERT_EQ(0, mvm_pageout_run(n, name, 1, &r));
	ASSERT_EQ(0, mvm_info(name).obj[MACHVM_OBJ_A_RESIDENT]);
	reads = dev_reads(dev);
	ASSERT_LE(0, reads);
	for (i = 0; i < part; i++)
		bad += !page_ok(p + i * PG, i, 3);
	reads = dev_reads(dev) - reads;
	EXPECT_EQ(0, bad);
	EXPECT_GE((long)(part / 4), reads)
		TH_LOG("%ld reads for %llu pages", reads,
		       (unsigned long long)part);
	munmap(p, n * PG);
	close(fd);
}

/*
 * A swap-in whose read fails (the store file cut short under it) ends the
 * fault with SIGBUS and leaves nothing behind: the page is not in the
 * page cache, not counted resident, and the next touch fails again rather
 * than seeing a page that was never read.
 */
TEST_F(swp, swapin_read_error_fails_cleanly)
{
	const uint64_t n = 64;
	uint64_t name, i;
	void *addr;
	char *p;
	int fd;

	ASSERT_EQ(0, mvm_swap_add(self->path, 16 << 20, 0, &self->id));
	fd = anon_swapped_out(_metadata, n, 11, &name, &p);
	ASSERT_EQ(0, truncate(self->path, 0));
	for (i = 0; i < n; i += 8) {
		addr = NULL;
		EXPECT_EQ(1, mvm_touch(p + i * PG, 0, &addr));
		EXPECT_EQ(p + i * PG, addr);
		EXPECT_EQ(1, mvm_touch(p + i * PG, 0, NULL));
		EXPECT_EQ(0, mvm_resident(p, i));
	}
	EXPECT_EQ(0, mvm_info(name).obj[MACHVM_OBJ_A_RESIDENT]);
	EXPECT_EQ(n, mvm_info(name).obj[MACHVM_OBJ_A_SWAPPED]);
	EXPECT_EQ(0, mvm_info(name).obj[MACHVM_OBJ_A_PAGEINS]);
	munmap(p, n * PG);
	close(fd);
	EXPECT_TRUE(wait_swap_used(self->id, 0, 3000));
}

struct po_run {
	uint64_t name;
	atomic_int tid;
	int ret;
	atomic_int done;
};

static void *po_run_fn(void *arg)
{
	struct po_run *po = arg;
	struct mvm_nlreply r;

	atomic_store(&po->tid, syscall(SYS_gettid));
	po->ret = mvm_pageout_run(0, po->name, 1, &r);
	atomic_store(&po->done, 1);
	return NULL;
}

/* Has thread @tid slept in @fn (its wchan) within @ms? */
static int sleeps_in(pid_t tid, const char *fn, int ms)
{
	char path[64], buf[128];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", tid);
	for (; ms > 0; ms -= 10) {
		fd = open(path, O_RDONLY);
		if (fd >= 0) {
			len = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (len > 0) {
				buf[len] = '\0';
				if (strstr(buf, fn))
					return 1;
			}
		}
		usleep(10000);
	}
	return 0;
}

struct touch_run {
	volatile char *p;
	atomic_int done;
};

static void *touch_fn(void *arg)
{
	struct touch_run *t = arg;

	(void)t->p[0];
	atomic_store(&t->done, 1);
	return NULL;
}

/*
 * Pageout writes without the object's page_mutex: while its write to the
 * swap file waits (the file system frozen: the write waits for the thaw),
 * a fault on another page of the object, one in swap, still reads it
 * back.  When pageout held the mutex across the write, that fault waited
 * for the thaw.
 */
TEST_F(swp, fault_not_held_up_by_pageout_write)
{
	const uint64_t n = 64;
	struct po_run po = { 0 };
	struct touch_run t = { 0 };
	pthread_t po_th, t_th;
	uint64_t name, i, bad = 0;
	int fd, ms;
	char *p;

	ASSERT_EQ(0, mvm_swap_add(self->path, 16 << 20, 0, &self->id));
	fd = anon_swapped_out(_metadata, n, 21, &name, &p);
	/* The second half back in, and written again: dirty. */
	for (i = n / 2; i < n; i++)
		fill_page(p + i * PG, i, 21);
	ASSERT_EQ(n / 2, mvm_info(name).obj[MACHVM_OBJ_A_RESIDENT]);

	self->frozen = open(mvm_disk_dir(), O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, self->frozen);
	ASSERT_EQ(0, ioctl(self->frozen, FIFREEZE, 0)) {
		close(self->frozen);
		self->frozen = -1;
	}
	po.name = name;
	ASSERT_EQ(0, pthread_create(&po_th, NULL, po_run_fn, &po));
	for (ms = 0; ms < 5000 && !atomic_load(&po.tid); ms += 10)
		usleep(10000);
	/* Pageout's write of the dirty half waits for the thaw. */
	EXPECT_TRUE(sleeps_in(atomic_load(&po.tid), "rwsem", 5000));
	EXPECT_EQ(0, atomic_load(&po.done));
	/* Page 0 is in swap: reading it needs no write. */
	t.p = p;
	ASSERT_EQ(0, pthread_create(&t_th, NULL, touch_fn, &t));
	for (ms = 0; ms < 10000 && !atomic_load(&t.done); ms += 10)
		usleep(10000);
	EXPECT_TRUE(atomic_load(&t.done)) TH_LOG("the fault waited for the write");
	ASSERT_EQ(0, ioctl(self->frozen, FITHAW, 0));
	close(self->frozen);
	self->frozen = -1;
	pthread_join(t_th, NULL);
	pthread_join(po_th, NULL);
	EXPECT_EQ(0, po.ret);
	for (i = 0; i < n; i++)
		bad += !page_ok(p + i * PG, i, 21);
	EXPECT_EQ(0, bad);
	munmap(p, n * PG);
	close(fd);
}

/* Reads in flight on @dev's queue (/sys/block/X/inflight), or -1. */
static long dev_inflight_reads(int fd)
{
	char buf[64], *end;
	ssize_t len;
	long reads;

	len = pread(fd, buf, sizeof(buf) - 1, 0);
	if (len <= 0)
		return -1;
	buf[len] = '\0';
	reads = strtol(buf, &end, 10);
	return end == buf ? -1 : reads;
}

struct par_reader {
	char *p;
	uint64_t first, n, bad;
	atomic_int *finished;
};

static void *par_read_fn(void *arg)
{
	struct par_reader *r = arg;
	uint64_t i;

	for (i = r->first; i < r->first + r->n; i++)
		r->bad += !page_ok(r->p + i * PG, i, 13);
	atomic_fetch_add(r->finished, 1);
	return NULL;
}

/*
 * A swap-in reads without the object's page_mutex (the folios wait in the
 * page cache, locked, as Linux's swap cache does): two threads faulting
 * on different paged-out parts of one object have their reads in flight
 * at once, where one object used to read one request at a time.  Seen on
 * the partition's own queue.
 */
TEST_F(swp, swapin_reads_run_in_parallel)
{
	const char *dev = getenv("MVM_SWAP_DEV");
	const uint64_t n = 4096;
	struct par_reader rd[2];
	atomic_int finished = 0;
	pthread_t th[2];
	char path[128];
	uint64_t name;
	long most = 0, v;
	int fd, qfd, k;
	char *p;

	ASSERT_NE(NULL, dev) TH_LOG("no swap partition in this VM");
	snprintf(path, sizeof(path), "/sys/block/%s/inflight",
		 strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev);
	qfd = open(path, O_RDONLY);
	ASSERT_LE(0, qfd);
	ASSERT_EQ(0, mvm_swap_add(dev, 0, 0, &self->id));
	fd = anon_swapped_out(_metadata, n, 13, &name, &p);
	for (k = 0; k < 2; k++) {
		rd[k] = (struct par_reader){ p, k * n / 2, n / 2, 0,
					     &finished };
		ASSERT_EQ(0, pthread_create(&th[k], NULL, par_read_fn, &rd[k]));
	}
	while (atomic_load(&finished) < 2 && most < 2) {
		v = dev_inflight_reads(qfd);
		most = v > most ? v : most;
	}
	for (k = 0; k < 2; k++) {
		pthread_join(th[k], NULL);
		EXPECT_EQ(0, rd[k].bad);
	}
	EXPECT_LE(2, most) TH_LOG("at most %ld reads in flight", most);
	close(qfd);
	munmap(p, n * PG);
	close(fd);
}

/*
 * A pager thread with a copy of its object in memory.  SRV_HALF: take the
 * first half of a return of several pages, ignore the rest (a single page
 * is taken).
 */
enum { SRV_ACCEPT, SRV_REFUSE, SRV_IGNORE, SRV_HALF };

struct srv {
	int pager, mode;
	uint32_t supply_flags;
	uint32_t supply_lock;		/* lock value of every supply */
	int grant_unlocks;		/* answer DATA_UNLOCK by unlocking */
	/*
	 * With grant_unlocks: right after each unlock, take the object back
	 * (every page, RETURN_DIRTY, write-locked), as a coherence pager
	 * does for a reader elsewhere; at its LOCK_COMPLETED page 0 must
	 * equal the store (word 0; a difference counts in ->relock_stale).
	 */
	int relock;
	const volatile uint64_t *view;	/* a mapping of the object */
	int relocks_sent;		/* relocks issued (srv thread only) */
	atomic_int relocks;		/* and completed */
	atomic_int relocks_checked, relock_stale;
	atomic_int unlocks;
	atomic_int precious_returns;
	atomic_uint_least64_t last_seq;	/* of the last DATA_RETURN */
	uint32_t ready_flags;		/* MACHVM_READY_F_* sent in READY */
	atomic_int return_pages;	/* pages of every DATA_RETURN */
	atomic_int max_return_pages;	/* of the longest */
	uint64_t npages;
	char *store;
	atomic_int stop, requests, returns, dirty_returns, completed;
	pthread_t th;
};

static void *srv_fn(void *arg)
{
	struct srv *s = arg;
	struct machvm_msg m;
	struct machvm_cmd c;

	while (!s->stop) {
		if (mvm_read_msg(s->pager, &m, 50))
			continue;
		switch (m.type) {
		case MACHVM_MSG_INIT:
			memset(&c, 0, sizeof(c));
			c.type = MACHVM_CMD_READY;
			c.object = m.object;
			c.flags = s->ready_flags;
			c.attr.cluster_pages = 1;
			c.attr.timeout_ms = 300;
			mvm_cmd(s->pager, &c);
			break;
		case MACHVM_MSG_DATA_REQUEST:
			s->requests++;
			memset(&c, 0, sizeof(c));
			c.type = MACHVM_CMD_DATA_SUPPLY;
			c.flags = s->supply_flags;
			c.lock = s->supply_lock;
			c.object = m.object;
			c.offset = m.offset;
			c.length = m.length;
			c.addr = (uintptr_t)(s->store + m.offset);
			mvm_cmd(s->pager, &c);
			break;
		case MACHVM_MSG_DATA_UNLOCK:
			s->unlocks++;
			if (!s->grant_unlocks)
				break;
			memset(&c, 0, sizeof(c));
			c.type = MACHVM_CMD_LOCK_REQUEST;
			c.flags = MACHVM_LOCK_F_LOCK;
			c.object = m.object;
			c.offset = m.offset;
			c.length = m.length;
			mvm_cmd(s->pager, &c);
			if (!s->relock)
				break;
			c.offset = 0;
			c.length = s->npages * PG;
			c.flags = MACHVM_LOCK_RETURN_DIRTY | MACHVM_LOCK_F_LOCK;
			c.lock = PROT_WRITE;
			if (!mvm_cmd(s->pager, &c))
				s->relocks_sent++;
			break;
		case MACHVM_MSG_DATA_RETURN:
			s->last_seq = m.seq;
			s->returns++;
			s->return_pages += m.length / PG;
			if ((int)(m.length / PG) > s->max_return_pages)
				s->max_return_pages = m.length / PG;
			if (m.flags & MACHVM_RETURN_F_DIRTY)
				s->dirty_returns++;
			if (m.flags & MACHVM_RETURN_F_PRECIOUS)
				s->precious_returns++;
			if (s->mode == SRV_IGNORE)
				break;
			memset(&c, 0, sizeof(c));
			c.object = m.object;
			c.offset = m.offset;
			c.length = m.length;
			c.seq = m.seq;
			if (s->mode == SRV_HALF && m.length > PG)
				c.length = (m.length / PG / 2) * PG;
			if (s->mode == SRV_ACCEPT || s->mode == SRV_HALF) {
				c.type = MACHVM_CMD_RETURN_COPY;
				c.addr = (uintptr_t)(s->store + m.offset);
				if (mvm_cmd(s->pager, &c))
					break;
				c.addr = 0;
			} else {
				c.error = EIO;
			}
			c.type = MACHVM_CMD_RETURN_DONE;
			mvm_cmd(s->pager, &c);
			break;
		case MACHVM_MSG_LOCK_COMPLETED:
			s->completed++;
			/*
			 * The unlock's own completion has nothing to check,
			 * nor has a relock's that a newer unlock overtook
			 * (the writer's next data_unlock can come first).
			 */
			if (!s->relock || m.length != s->npages * PG ||
			    ++s->relocks != s->relocks_sent)
				break;
			s->relocks_checked++;
			if (s->view[0] != *(uint64_t *)s->store)
				s->relock_stale++;
			break;
		}
	}
	return NULL;
}

FIXTURE(ext) {
	uint32_t id;
	char path[256];
	int dev, pager, fd;
	struct machvm_object_create oc;
	struct srv s;
	char *p;
};

/* The fixture's type by name, for the helpers that take it. */
typedef FIXTURE_DATA(ext) ext_fixture;

#define EXT_PAGES 32

FIXTURE_SETUP(ext)
{
	uint64_t i;

	swap_path(self->path, sizeof(self->path), "mvm-ext.swap");
	ASSERT_EQ(0, mvm_swap_add(self->path, 4 << 20, 0, &self->id));
	self->dev = mvm_dev();
	ASSERT_LE(0, self->dev);
	self->pager = mvm_pager(self->dev);
	ASSERT_LE(0, self->pager);
	self->fd = mvm_object(self->pager, EXT_PAGES * PG,
			      PROT_READ | PROT_WRITE, 300, &self->oc);
	ASSERT_LE(0, self->fd);
	memset(&self->s, 0, sizeof(self->s));
	self->s.pager = self->pager;
	self->s.npages = EXT_PAGES;
	self->s.store = malloc(EXT_PAGES * PG);
	for (i = 0; i < EXT_PAGES; i++)
		fill_page(self->s.store + i * PG, i, 0);
	self->p = mmap(NULL, EXT_PAGES * PG, PROT_READ | PROT_WRITE,
		       MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->p);
}

FIXTURE_TEARDOWN(ext)
{
	if (self->s.th) {
		self->s.stop = 1;
		pthread_join(self->s.th, NULL);
	}
	munmap(self->p, EXT_PAGES * PG);
	close(self->fd);
	close(self->pager);
	close(self->dev);
	mvm_swap_remove(self->id);
	unlink(self->path);
	free(self->s.store);
}

static void ext_start(struct __test_metadata *_metadata, struct srv *s,
		      int mode)
{
	s->mode = mode;
	ASSERT_EQ(0, pthread_create(&s->th, NULL, srv_fn, s));
}

/* Read every page (pager data), then write a new pattern over it. */
static void ext_dirty_all(struct __test_metadata *_metadata, char *p)
{
	uint64_t i;

	for (i = 0; i < EXT_PAGES; i++)
		ASSERT_TRUE(page_ok(p + i * PG, i, 0));
	for (i = 0; i < EXT_PAGES; i++)
		fill_page(p + i * PG, i, 0xabc);
}

static uint64_t ext_check(char *p, uint64_t seed)
{
	uint64_t i, bad = 0;

	for (i = 0; i < EXT_PAGES; i++)
		bad += !page_ok(p + i * PG, i, seed);
	return bad;
}

/*
 * Every page written (0xabc) and paged out, forced, to the pager serving
 * in @mode; waits (@ms at most) until none is resident.  Returns how many
 * pages the pass sent back to the pager (MACHVM_A_PO_RETURNING).
 */
static uint64_t ext_page_out_all(struct __test_metadata *_metadata,
				 ext_fixture *self, int mode, int ms)
{
	struct mvm_nlreply r;

	ext_start(_metadata, &self->s, mode);
	ext_dirty_all(_metadata, self->p);
	ASSERT_EQ(0, mvm_pageout_run(EXT_PAGES, self->oc.name, 1, &r));
	ASSERT_TRUE(mvm_wait_resident(self->oc.name, 0, ms));
	return r.a[MACHVM_A_PO_RETURNING];
}

/*
 * The pager took none: every page went to the default pager (swap) and
 * reads back intact from there, the pager not asked.
 */
static void ext_expect_default_took_all(struct __test_metadata *_metadata,
					ext_fixture *self)
{
	struct mvm_nlreply r = mvm_info(self->oc.name);
	int req0;

	EXPECT_EQ(EXT_PAGES, r.obj[MACHVM_OBJ_A_DEFAULT_TAKEN]);
	EXPECT_EQ(EXT_PAGES, r.obj[MACHVM_OBJ_A_SWAPPED]);
	EXPECT_EQ(0, r.obj[MACHVM_OBJ_A_RETURNED]);
	req0 = self->s.requests;
	EXPECT_EQ(0, ext_check(self->p, 0xabc));
	EXPECT_EQ(0, self->s.requests - req0);
}

/* Waits (2 s at most) until the srv counter *v reaches want; returns it. */
static int srv_wait(atomic_int *v, int want)
{
	int i;

	for (i = 0; i < 100 && *v < want; i++)
		usleep(20000);
	return *v;
}

/*
 * Page 0 written (0x55) and sent back by pageout to a pager that does not
 * answer (SRV_IGNORE): returns that DATA_RETURN's seq, the return still
 * under way.
 */
static uint64_t ext_return_unanswered(struct __test_metadata *_metadata,
				      ext_fixture *self)
{
	struct mvm_nlreply r;

	ext_start(_metadata, &self->s, SRV_IGNORE);
	EXPECT_TRUE(page_ok(self->p, 0, 0));
	fill_page(self->p, 0, 0x55);
	EXPECT_EQ(0, mvm_pageout_run(1, self->oc.name, 1, &r));
	EXPECT_EQ(1, r.a[MACHVM_A_PO_RETURNING]);
	EXPECT_EQ(1, srv_wait(&self->s.returns, 1));
	return self->s.last_seq;
}

TEST_F(ext, pager_takes_returned_pages)
{
	struct mvm_nlreply r;
	uint64_t name = self->oc.name;
	int req0;

	EXPECT_EQ(EXT_PAGES,
		  ext_page_out_all(_metadata, self, SRV_ACCEPT, 3000));
	EXPECT_EQ(EXT_PAGES, self->s.dirty_returns);
	r = mvm_info(name);
	EXPECT_EQ(EXT_PAGES, r.obj[MACHVM_OBJ_A_RETURNED]);
	EXPECT_EQ(0, r.obj[MACHVM_OBJ_A_DEFAULT_TAKEN]);
	EXPECT_EQ(0, r.obj[MACHVM_OBJ_A_SWAPPED]);
	/* The pager has the data now: faults ask it and get the writes. */
	req0 = self->s.requests;
	EXPECT_EQ(0, ext_check(self->p, 0xabc));
	EXPECT_EQ(EXT_PAGES, self->s.requests - req0);
}

TEST_F(ext, pager_refuses_nothing_lost)
{
	ext_page_out_all(_metadata, self, SRV_REFUSE, 3000);
	/* Served from swap, transparently: the pager is not asked. */
	ext_expect_default_took_all(_metadata, self);
	EXPECT_EQ(EXT_PAGES, mvm_info(self->oc.name).obj[MACHVM_OBJ_A_PAGEINS]);
}

/*
 * A pager that said MACHVM_READY_F_CLUSTER_RETURN gets contiguous written
 * pages in DATA_RETURNs of several pages (Mach's data_return of a range),
 * each with the right bytes; it takes them all with one RETURN_COPY and
 * one RETURN_DONE per message.
 */
TEST_F(ext, cluster_return_carries_contiguous_pages)
{
	struct machvm_cmd c = { .type = MACHVM_CMD_CHANGE_ATTRIBUTES,
				.object = self->oc.id, .flags = 1U << 7 };
	uint64_t name = self->oc.name, i, bad = 0;
	struct mvm_nlreply r;

	c.attr.cluster_pages = 1;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));	/* unknown flag */
	self->s.ready_flags = MACHVM_READY_F_CLUSTER_RETURN;
	EXPECT_EQ(EXT_PAGES,
		  ext_page_out_all(_metadata, self, SRV_ACCEPT, 3000));
	EXPECT_EQ(EXT_PAGES, self->s.return_pages);
	EXPECT_LT(1, self->s.max_return_pages);
	EXPECT_GT(EXT_PAGES, self->s.returns);
	EXPECT_GE(MACHVM_RETURN_MAX_PAGES, self->s.max_return_pages);
	TH_LOG("%d pages in %d DATA_RETURNs, the longest %d",
	       (int)self->s.return_pages, (int)self->s.returns,
	       (int)self->s.max_return_pages);
	/* The pager's store has every written page. */
	for (i = 0; i < EXT_PAGES; i++)
		bad += !page_ok(self->s.store + i * PG, i, 0xabc);
	EXPECT_EQ(0, bad);
	r = mvm_info(name);
	EXPECT_EQ(EXT_PAGES, r.obj[MACHVM_OBJ_A_RETURNED]);
	EXPECT_EQ(0, r.obj[MACHVM_OBJ_A_DEFAULT_TAKEN]);
	EXPECT_EQ(0, ext_check(self->p, 0xabc));
}

/* A cluster refused: every page to the default pager, none lost. */
TEST_F(ext, cluster_return_refused_nothing_lost)
{
	self->s.ready_flags = MACHVM_READY_F_CLUSTER_RETURN;
	ext_page_out_all(_metadata, self, SRV_REFUSE, 3000);
	EXPECT_LT(1, self->s.max_return_pages);
	ext_expect_default_took_all(_metadata, self);
}

/*
 * Half of each cluster answered (SRV_HALF: RETURN_COPY and RETURN_DONE on
 * the first half of the range): those pages are taken, the rest time out
 * to the default pager.  Nothing is lost.
 */
TEST_F(ext, cluster_return_answered_in_part)
{
	uint64_t name = self->oc.name;
	struct mvm_nlreply r;

	self->s.ready_flags = MACHVM_READY_F_CLUSTER_RETURN;
	ext_page_out_all(_metadata, self, SRV_HALF, 5000);
	EXPECT_LT(1, self->s.max_return_pages);
	r = mvm_info(name);
	EXPECT_LT(0, r.obj[MACHVM_OBJ_A_RETURNED]);
	EXPECT_LT(0, r.obj[MACHVM_OBJ_A_DEFAULT_TAKEN]);
	EXPECT_EQ(EXT_PAGES, r.obj[MACHVM_OBJ_A_RETURNED] +
			     r.obj[MACHVM_OBJ_A_DEFAULT_TAKEN]);
	EXPECT_EQ(0, ext_check(self->p, 0xabc));
}

/* Precious pages come back even when nobody wrote them. */
TEST_F(ext, precious_pages_returned_clean)
{
	struct mvm_nlreply r;
	uint64_t name = self->oc.name;

	self->s.supply_flags = MACHVM_SUPPLY_F_PRECIOUS;
	ext_start(_metadata, &self->s, SRV_ACCEPT);
	EXPECT_EQ(0, ext_check(self->p, 0));
	ASSERT_EQ(0, mvm_pageout_run(EXT_PAGES, name, 1, &r));
	EXPECT_EQ(EXT_PAGES, r.a[MACHVM_A_PO_RETURNING]);
	ASSERT_TRUE(mvm_wait_resident(name, 0, 3000));
	EXPECT_EQ(EXT_PAGES, self->s.precious_returns);
	EXPECT_EQ(0, self->s.dirty_returns);
	EXPECT_EQ(0, ext_check(self->p, 0));
}

/* Clean pages of a live pager are dropped, not returned or swapped. */
TEST_F(ext, clean_pages_dropped)
{
	struct mvm_nlreply r;
	uint64_t name = self->oc.name;

	ext_start(_metadata, &self->s, SRV_ACCEPT);
	EXPECT_EQ(0, ext_check(self->p, 0));
	ASSERT_EQ(0, mvm_pageout_run(EXT_PAGES, name, 1, &r));
	EXPECT_EQ(EXT_PAGES, r.a[MACHVM_A_PO_FREED]);
	EXPECT_EQ(0, r.a[MACHVM_A_PO_RETURNING]);
	EXPECT_EQ(0, self->s.returns);
	EXPECT_EQ(0, mvm_info(name).obj[MACHVM_OBJ_A_SWAPPED]);
	EXPECT_EQ(0, ext_check(self->p, 0));
}

TEST_F(ext, pager_silent_times_out)
{
	struct mvm_nlreply r;
	uint64_t name = self->oc.name;

	ext_start(_metadata, &self->s, SRV_IGNORE);
	ext_dirty_all(_metadata, self->p);
	ASSERT_EQ(0, mvm_pageout_run(EXT_PAGES, name, 1, &r));
	/* timeout_ms is 300; the daemon looks at least once a second. */
	ASSERT_TRUE(mvm_wait_resident(name, 0, 5000));
	EXPECT_EQ(EXT_PAGES, self->s.returns);
	EXPECT_EQ(EXT_PAGES, mvm_info(name).obj[MACHVM_OBJ_A_DEFAULT_TAKEN]);
	EXPECT_EQ(0, ext_check(self->p, 0xabc));
}

TEST_F(ext, lock_request_return_and_flush)
{
	struct machvm_cmd c = {
		.type = MACHVM_CMD_LOCK_REQUEST,
		.object = self->oc.id,
		.length = EXT_PAGES * PG,
		.flags = MACHVM_LOCK_RETURN_DIRTY,
	};
	uint64_t i;
	int req0;

	ext_start(_metadata, &self->s, SRV_ACCEPT);
	for (i = 0; i < EXT_PAGES; i++)
		ASSERT_TRUE(page_ok(self->p + i * PG, i, 0));
	for (i = 0; i < 8; i++)		/* pages 0-7 dirty, the rest clean */
		fill_page(self->p + i * PG, i, 0x77);
	ASSERT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_EQ(1, srv_wait(&self->s.completed, 1));
	EXPECT_EQ(8, self->s.returns);
	EXPECT_EQ(8, self->s.dirty_returns);
	/* Returned without flush: still resident and intact. */
	for (i = 0; i < EXT_PAGES; i++)
		EXPECT_EQ(1, mvm_resident(self->p, i));
	/* Flush without return: gone; faults get the pager's copy, which
	 * has the writes since it took them.
	 */
	c.flags = MACHVM_LOCK_RETURN_NONE | MACHVM_LOCK_F_FLUSH;
	ASSERT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_EQ(2, srv_wait(&self->s.completed, 2));
	for (i = 0; i < EXT_PAGES; i++)
		EXPECT_EQ(0, mvm_resident(self->p, i));
	req0 = self->s.requests;
	for (i = 0; i < EXT_PAGES; i++)
		EXPECT_TRUE(page_ok(self->p + i * PG, i, i < 8 ? 0x77 : 0));
	EXPECT_EQ(EXT_PAGES, self->s.requests - req0);
	/* Bad flags are refused. */
	c.flags = 3;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	c.flags = 1U << 5;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
}

/* An answer naming another DATA_RETURN's seq never ends this one. */
TEST_F(ext, stale_return_answers_ignored)
{
	struct machvm_cmd c = {
		.type = MACHVM_CMD_RETURN_DONE,
		.object = self->oc.id,
		.length = PG,
	};
	uint64_t name = self->oc.name, seq;
	char buf[PG];

	seq = ext_return_unanswered(_metadata, self);
	ASSERT_EQ(1, self->s.returns);
	c.seq = seq + 1000;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));		/* skipped */
	EXPECT_EQ(0, mvm_info(name).obj[MACHVM_OBJ_A_RETURNED]);
	EXPECT_EQ(1, mvm_resident(self->p, 0));
	c.type = MACHVM_CMD_RETURN_COPY;
	c.addr = (uintptr_t)buf;
	EXPECT_EQ(-ESTALE, mvm_cmd(self->pager, &c));
	c.seq = seq;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_TRUE(page_ok(buf, 0, 0x55));
	c.type = MACHVM_CMD_RETURN_DONE;
	c.addr = 0;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_EQ(1, mvm_info(name).obj[MACHVM_OBJ_A_RETURNED]);
	EXPECT_EQ(0, mvm_resident(self->p, 0));
	/* seq rides only on RETURN_COPY and RETURN_DONE. */
	c.type = MACHVM_CMD_DATA_UNAVAILABLE;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
}

/*
 * A lock_request that wants a page back while an earlier DATA_RETURN of it
 * is unanswered (a write may have come after that one's copy) sends it
 * again under a new seq, before LOCK_COMPLETED; the old seq is stale.
 */
TEST_F(ext, lock_request_supersedes_return)
{
	struct machvm_cmd c = {
		.type = MACHVM_CMD_LOCK_REQUEST,
		.object = self->oc.id,
		.length = PG,
		.flags = MACHVM_LOCK_RETURN_DIRTY | MACHVM_LOCK_F_FLUSH,
	};
	uint64_t name = self->oc.name, seq1, seq2;
	char buf[PG];

	seq1 = ext_return_unanswered(_metadata, self);
	ASSERT_EQ(1, self->s.returns);
	fill_page(self->p, 0, 0x66);	/* after the pager could have copied */
	ASSERT_EQ(0, mvm_cmd(self->pager, &c));
	ASSERT_EQ(1, srv_wait(&self->s.completed, 1));
	ASSERT_EQ(2, self->s.returns);
	EXPECT_EQ(2, self->s.dirty_returns);
	seq2 = self->s.last_seq;
	EXPECT_NE(seq1, seq2);
	memset(&c, 0, sizeof(c));
	c.type = MACHVM_CMD_RETURN_COPY;
	c.object = self->oc.id;
	c.length = PG;
	c.addr = (uintptr_t)buf;
	c.seq = seq1;
	EXPECT_EQ(-ESTALE, mvm_cmd(self->pager, &c));
	c.seq = seq2;
	ASSERT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_TRUE(page_ok(buf, 0, 0x66));
	c.type = MACHVM_CMD_RETURN_DONE;
	c.addr = 0;
	c.seq = seq1;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));		/* skipped */
	EXPECT_EQ(1, mvm_resident(self->p, 0));
	c.seq = seq2;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_EQ(0, mvm_resident(self->p, 0));		/* flushed */
	EXPECT_EQ(1, mvm_info(name).obj[MACHVM_OBJ_A_RETURNED]);
}

/* DATA_SUPPLY with MACHVM_SUPPLY_F_OVERWRITE replaces a resident page
 * (written, even), applies its lock value; without it nothing changes.
 */
TEST_F(ext, supply_overwrite)
{
	struct machvm_cmd c = {
		.type = MACHVM_CMD_DATA_SUPPLY,
		.object = self->oc.id,
		.length = PG,
	};
	char *buf = aligned_alloc(PG, PG);

	ASSERT_NE(NULL, buf);
	self->s.grant_unlocks = 1;
	ext_start(_metadata, &self->s, SRV_ACCEPT);
	fill_page(self->p, 0, 0x21);		/* resident, written */
	fill_page(buf, 0, 0x22);
	c.addr = (uintptr_t)buf;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_TRUE(page_ok(self->p, 0, 0x21));	/* not taken */
	c.flags = MACHVM_SUPPLY_F_OVERWRITE;
	c.lock = PROT_WRITE;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_TRUE(page_ok(self->p, 0, 0x22));
	EXPECT_EQ(0, self->s.unlocks);
	fill_page(self->p, 0, 0x23);		/* locked: asks first */
	EXPECT_EQ(1, self->s.unlocks);
	EXPECT_TRUE(page_ok(self->p, 0, 0x23));
	/* A missing page is simply supplied. */
	fill_page(buf, 5, 0x24);
	c.offset = 5 * PG;
	c.lock = 0;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_TRUE(page_ok(self->p + 5 * PG, 5, 0x24));
	c.flags = 1U << 3;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	free(buf);
}

/* Pages supplied write-locked: reads are free, the first write asks the
 * pager (data_unlock) and goes on once it unlocks; later writes do not ask.
 */
TEST_F(ext, write_lock_and_unlock)
{
	uint64_t i;

	self->s.supply_lock = PROT_WRITE;
	self->s.grant_unlocks = 1;
	ext_start(_metadata, &self->s, SRV_ACCEPT);
	for (i = 0; i < 4; i++)
		ASSERT_TRUE(page_ok(self->p + i * PG, i, 0));
	EXPECT_EQ(0, self->s.unlocks);
	fill_page(self->p, 0, 0x11);
	EXPECT_EQ(1, self->s.unlocks);
	fill_page(self->p, 0, 0x12);	/* unlocked now */
	EXPECT_EQ(1, self->s.unlocks);
	EXPECT_TRUE(page_ok(self->p, 0, 0x12));
	EXPECT_TRUE(page_ok(self->p + PG, 1, 0));	/* still locked: fine */
	/* A write fault on a missing page supplied locked asks too. */
	fill_page(self->p + 8 * PG, 8, 0x13);
	EXPECT_EQ(2, self->s.unlocks);
	EXPECT_TRUE(page_ok(self->p + 8 * PG, 8, 0x13));
}

#define RELOCKS 300

struct relock_writer {
	volatile uint64_t *w;
	const struct srv *s;
	uint64_t last;		/* the last value written */
};

/* Writes 1, 2, ... to word 0 until the pager took the page back RELOCKS
 * times (or 60 s passed).
 */
static void *relock_writer_fn(void *arg)
{
	struct relock_writer *rw = arg;
	time_t end = time(NULL) + 60;
	uint64_t v;

	for (v = 1; rw->s->relocks < RELOCKS && time(NULL) < end; v++)
		*rw->w = v;
	rw->last = v - 1;
	return NULL;
}

/*
 * A write racing a lock_request that write-locks and returns dirty pages
 * is either returned by it or asks the pager (data_unlock) afterwards:
 * at LOCK_COMPLETED the pager's copy is the page.  Here the pager takes
 * the object back right after each unlock while a writer writes on.
 */
TEST_F_TIMEOUT(ext, lock_request_catches_racing_write, 120)
{
	struct relock_writer rw = { (volatile uint64_t *)self->p, &self->s, 0 };
	pthread_t th;

	self->s.supply_lock = PROT_WRITE;
	self->s.grant_unlocks = 1;
	self->s.relock = 1;
	self->s.view = (const volatile uint64_t *)self->p;
	ext_start(_metadata, &self->s, SRV_ACCEPT);
	/* All resident, write-locked: each relock has every page to do. */
	ASSERT_EQ(0, ext_check(self->p, 0));
	ASSERT_EQ(0, pthread_create(&th, NULL, relock_writer_fn, &rw));
	pthread_join(th, NULL);
	EXPECT_EQ(rw.last, self->s.view[0]);
	EXPECT_LE(RELOCKS, self->s.relocks);
	EXPECT_LT(0, self->s.relocks_checked);
	TH_LOG("%d relocks, %d checked, writer at %llu", self->s.relocks,
	       self->s.relocks_checked, (unsigned long long)rw.last);
	EXPECT_EQ(0, self->s.relock_stale)
		TH_LOG("%d of %d stale", self->s.relock_stale,
		       self->s.relocks_checked);
}

/* lock_request write-locks resident pages in every mapping at once. */
TEST_F(ext, lock_request_write_protects)
{
	struct machvm_cmd c = {
		.type = MACHVM_CMD_LOCK_REQUEST,
		.object = self->oc.id,
		.length = 2 * PG,
		.flags = MACHVM_LOCK_F_LOCK,
		.lock = PROT_WRITE,
	};
	char *q;

	self->s.grant_unlocks = 1;
	ext_start(_metadata, &self->s, SRV_ACCEPT);
	q = mmap(NULL, EXT_PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
		 self->fd, 0);
	ASSERT_NE(MAP_FAILED, q);
	fill_page(self->p, 0, 0x21);	/* writable, mapped in p */
	EXPECT_TRUE(page_ok(q, 0, 0x21));	/* and read through q */
	EXPECT_EQ(0, self->s.unlocks);
	ASSERT_EQ(0, mvm_cmd(self->pager, &c));
	EXPECT_TRUE(page_ok(self->p, 0, 0x21));	/* reads need nothing */
	EXPECT_EQ(0, self->s.unlocks);
	fill_page(q, 0, 0x22);		/* through the other mapping */
	EXPECT_EQ(1, self->s.unlocks);
	EXPECT_TRUE(page_ok(self->p, 0, 0x22));
	munmap(q, EXT_PAGES * PG);
	/* Bad lock values are refused. */
	c.lock = PROT_READ;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	c.lock = PROT_WRITE;
	c.flags = 0;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	c.type = MACHVM_CMD_DESTROY;
	c.length = 0;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
}

/* A pager that never unlocks: the writer gets SIGBUS after the timeout;
 * reads go on.
 */
TEST_F(ext, unanswered_unlock_gives_sigbus)
{
	void *bus = NULL;
	double t0;

	self->s.supply_lock = PROT_WRITE;
	ext_start(_metadata, &self->s, SRV_ACCEPT);
	ASSERT_TRUE(page_ok(self->p, 0, 0));
	t0 = (double)time(NULL);
	EXPECT_EQ(1, mvm_touch(self->p, 1, &bus));
	EXPECT_EQ(self->p, (char *)bus);
	EXPECT_GE(5, (double)time(NULL) - t0);	/* timeout_ms is 300 */
	EXPECT_LE(1, self->s.unlocks);
	EXPECT_TRUE(page_ok(self->p, 0, 0));
}

TEST_F(ext, return_commands_validate)
{
	struct machvm_cmd c = {
		.type = MACHVM_CMD_RETURN_COPY,
		.object = self->oc.id,
		.length = PG,
	};
	char buf[PG];

	ext_start(_metadata, &self->s, SRV_ACCEPT);
	ASSERT_TRUE(page_ok(self->p, 0, 0));
	c.addr = (uintptr_t)buf;
	EXPECT_EQ(-ENOENT, mvm_cmd(self->pager, &c));	/* not returning */
	c.offset = 1;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	c.offset = 0;
	c.type = MACHVM_CMD_RETURN_DONE;
	c.addr = 0;
	c.error = 5000;
	EXPECT_EQ(-EINVAL, mvm_cmd(self->pager, &c));
	c.error = 0;
	EXPECT_EQ(0, mvm_cmd(self->pager, &c));	/* nothing to end: no-op */
	EXPECT_EQ(1, mvm_resident(self->p, 0));
}

/* Pager killed with dirty pages under DATA_RETURN: the kernel keeps what
 * it holds; only pages nobody but the dead pager had fault with SIGBUS.
 */
TEST(pager_killed_with_returns_outstanding)
{
	char path[256];
	struct mvm_nlreply r;
	int sv[2], fd, status;
	uint64_t name, i;
	uint32_t id;
	void *bus;
	char *p;
	pid_t pid;

	swap_path(path, sizeof(path), "mvm-kill.swap");
	ASSERT_EQ(0, mvm_swap_add(path, 4 << 20, 0, &id));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct machvm_object_create oc;
		static struct srv s;
		int dev = mvm_dev(), pager = mvm_pager(dev), ofd;

		ofd = mvm_object(pager, 64 * PG, PROT_READ | PROT_WRITE, 30000,
				 &oc);
		if (ofd < 0 || mvm_send_fd(sv[1], ofd))
			_exit(1);
		s.pager = pager;
		s.npages = 32;	/* pages 32-63 never supplied */
		s.store = malloc(64 * PG);
		for (i = 0; i < 64; i++)
			fill_page(s.store + i * PG, i, 0);
		s.mode = SRV_IGNORE;
		srv_fn(&s);
		_exit(0);
	}
	close(sv[1]);
	fd = mvm_recv_fd(sv[0]);
	ASSERT_LE(0, fd);
	p = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < 32; i++)
		ASSERT_TRUE(page_ok(p + i * PG, i, 0));
	for (i = 0; i < 16; i++)
		fill_page(p + i * PG, i, 0x99);	/* 0-15 dirty */
	{
		struct machvm_region rg = { .addr = (uintptr_t)p };
		int dev = mvm_dev();

		ASSERT_EQ(0, ioctl(dev, MACHVM_IOC_REGION, &rg));
		name = rg.name;
		close(dev);
	}
	/* 0-15 go to the (silent) pager, 16-31 are clean and dropped. */
	ASSERT_EQ(0, mvm_pageout_run(32, name, 1, &r));
	EXPECT_EQ(16, r.a[MACHVM_A_PO_RETURNING]);
	EXPECT_EQ(16, r.a[MACHVM_A_PO_FREED]);
	/* 24-31 come back from the live pager, resident and clean. */
	for (i = 24; i < 32; i++)
		ASSERT_TRUE(page_ok(p + i * PG, i, 0));
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	/* The default pager took 0-15 when the pager died. */
	EXPECT_EQ(16, mvm_info(name).obj[MACHVM_OBJ_A_DEFAULT_TAKEN]);
	for (i = 0; i < 16; i++)
		EXPECT_TRUE(page_ok(p + i * PG, i, 0x99));
	for (i = 24; i < 32; i++)
		EXPECT_TRUE(page_ok(p + i * PG, i, 0));
	for (i = 16; i < 24; i++)
		EXPECT_EQ(1, mvm_touch(p + i * PG, 0, &bus));
	for (i = 32; i < 64; i += 8)
		EXPECT_EQ(1, mvm_touch(p + i * PG, 0, &bus));
	munmap(p, 64 * PG);
	close(fd);
	mvm_swap_remove(id);
	unlink(path);
}

TEST(anon_create_rejects_bad_input)
{
	struct machvm_anon_create ac;
	int dev = mvm_dev();

	ASSERT_LE(0, dev);
	memset(&ac, 0, sizeof(ac));
	EXPECT_EQ(-1, ioctl(dev, MACHVM_IOC_ANON_CREATE, &ac));
	EXPECT_EQ(EINVAL, errno);
	ac.size = PG + 1;
	EXPECT_EQ(-1, ioctl(dev, MACHVM_IOC_ANON_CREATE, &ac));
	EXPECT_EQ(EINVAL, errno);
	ac.size = PG;
	ac.flags = 1;
	EXPECT_EQ(-1, ioctl(dev, MACHVM_IOC_ANON_CREATE, &ac));
	EXPECT_EQ(EINVAL, errno);
	ac.flags = 0;
	ac.fd = 3;
	EXPECT_EQ(-1, ioctl(dev, MACHVM_IOC_ANON_CREATE, &ac));
	EXPECT_EQ(EINVAL, errno);
	ac.fd = 0;
	ac.reserved[2] = 1;
	EXPECT_EQ(-1, ioctl(dev, MACHVM_IOC_ANON_CREATE, &ac));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(dev, MACHVM_IOC_ANON_CREATE, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	close(dev);
}

/* Zero-fill on first touch (even from recycled memory), MAP_PRIVATE
 * copy-on-write, no swap needed while under the limit.
 */
TEST(anon_zero_fill_and_private)
{
	uint64_t name;
	char *s, *q;
	int fd = mvm_anon(64 * PG, 0, &name);

	ASSERT_LE(0, fd);
	s = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	q = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ASSERT_NE(MAP_FAILED, s);
	ASSERT_NE(MAP_FAILED, q);
	ASSERT_EQ(0, mvm_dirty_free_pages(16 << 20));
	EXPECT_EQ(-1, mvm_first_nonzero(s, 64 * PG));
	s[0] = 1;
	EXPECT_EQ(1, q[0]);	/* private, not yet written: shares */
	q[PG] = 5;
	EXPECT_EQ(0, s[PG]);	/* private write stays private */
	EXPECT_EQ(64, mvm_info(name).obj[MACHVM_OBJ_A_RESIDENT]);
	munmap(s, 64 * PG);
	munmap(q, 64 * PG);
	close(fd);
}

TEST(unload_refused_while_objects_live)
{
	int fd = mvm_anon(PG, 0, NULL);

	ASSERT_LE(0, fd);
	EXPECT_NE(0, syscall(SYS_delete_module, "machvm", O_NONBLOCK));
	EXPECT_TRUE(errno == EWOULDBLOCK || errno == EBUSY) TH_LOG("errno %d",
								   errno);
	close(fd);
}

TEST(pageout_tunables)
{
	struct mvm_nlattr bad[] = {
		{ .type = MACHVM_A_PO_LOW, .v = 99, .len = 4 },
		{ .type = MACHVM_A_PO_HIGH, .v = 50, .len = 4 },
		{ 0 },
	};
	struct mvm_nlattr set[] = {
		{ .type = MACHVM_A_PO_BATCH, .v = 32, .len = 4 }, { 0 },
	};
	struct mvm_nlreply r, r0;

	ASSERT_EQ(0, mvm_nl(MACHVM_GENL_CMD_GET_PAGEOUT, NULL, &r0));
	EXPECT_LT(r0.a[MACHVM_A_PO_LOW], r0.a[MACHVM_A_PO_HIGH]);
	EXPECT_EQ(-EINVAL, mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, bad, &r));
	EXPECT_EQ(-EINVAL, mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, NULL, &r));
	ASSERT_EQ(0, mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, set, &r));
	EXPECT_EQ(32, r.a[MACHVM_A_PO_BATCH]);
	EXPECT_EQ(r0.a[MACHVM_A_PO_LIMIT], r.a[MACHVM_A_PO_LIMIT]);
	set[0].v = r0.a[MACHVM_A_PO_BATCH];
	ASSERT_EQ(0, mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, set, &r));
}

TEST_HARNESS_MAIN
