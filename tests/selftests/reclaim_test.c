// SPDX-License-Identifier: GPL-2.0
/*
 * Linux memory pressure against machvm's dirty pages, with no Linux swap
 * (the test guest has none): a process that dirties an anonymous object
 * much bigger than the memory left to it, as fast as it can, must finish
 * with every page intact and must not be OOM-killed.  machvm's pages are
 * unevictable to Linux; the only way out is machvm's own pageout to a
 * swap store, reached from Linux reclaim through the shrinker (direct
 * reclaim waits for the pageout thread) and from the fault path (a
 * faulting task waits for room before it allocates).
 *
 *  - guest_low_memory_hog: hugetlb pages take most of the guest's free
 *    memory (a guest with little free memory); the object's resident
 *    limit and the global one stay far above what is left, so only
 *    Linux's reclaim can ask machvm for memory.
 *  - memcg_fast_hog: the same hog, two threads, in a memory cgroup whose
 *    memory.max (8M) is a quarter of the object.
 *
 * The hog runs with oom_score_adj 1000: if memory runs out, it is the one
 * killed, and the test sees the SIGKILL.  No time is asserted, but both
 * tests share the program's 600 s in the VM (TCG, maybe on a busy host):
 * the sizes are kept small, and each test logs how long the hog wrote and
 * read and what machvm did meanwhile (pageouts, swap writes, waits).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_test.h"
#include "mvm_genl.h"

/* A field of /proc/meminfo, in kB; 0 if missing. */
static uint64_t meminfo_kb(const char *field)
{
	char line[256];
	size_t n = strlen(field);
	uint64_t v = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			v = strtoull(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

static uint64_t read_u64(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return 0;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return strtoull(buf, NULL, 10);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Word @k of page @i: cheap to make, so the hog is fast. */
static inline uint64_t word(uint64_t i, uint64_t k)
{
	return ((i << 9 | k) + 1) * 0x9e3779b97f4a7c15ULL;
}

struct hog {
	char *p;
	uint64_t first, end;	/* pages [first, end) */
	uint64_t bad;
};

static void *hog_write(void *arg)
{
	struct hog *h = arg;
	uint64_t i, k;

	for (i = h->first; i < h->end; i++) {
		uint64_t *w = (uint64_t *)(h->p + i * PG);

		for (k = 0; k < PG / 8; k++)
			w[k] = word(i, k);
	}
	return NULL;
}

static void *hog_check(void *arg)
{
	struct hog *h = arg;
	uint64_t i, k;

	for (i = h->first; i < h->end; i++) {
		const uint64_t *w = (const uint64_t *)(h->p + i * PG);

		for (k = 0; k < PG / 8; k++)
			if (w[k] != word(i, k)) {
				h->bad++;
				break;
			}
	}
	return NULL;
}

static void hog_run(char *p, uint64_t n, int threads,
		    void *(*fn)(void *), uint64_t *bad)
{
	struct hog h[8];
	pthread_t th[8];
	int t;

	for (t = 0; t < threads; t++) {
		h[t].p = p;
		h[t].first = n * t / threads;
		h[t].end = n * (t + 1) / threads;
		h[t].bad = 0;
		if (pthread_create(&th[t], NULL, fn, &h[t]))
			_exit(20);
	}
	for (t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		*bad += h[t].bad;
	}
}

/*
 * The hog, in a child: an anonymous object of @n pages, written by
 * @threads threads, then read back.  Exit 0: every page right; 1: wrong
 * pages; 10+: set-up failed.  @cgroup: join it first.
 */
static pid_t hog_start(uint64_t n, int threads, const char *cgroup)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	{
		struct machvm_anon_create ac = { .size = n * PG };
		char buf[300];
		uint64_t bad = 0;
		double t0, t1;
		int dev;
		char *p;

		/* Killed with the test (a timeout): no hog outlives it. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() == 1)
			_exit(14);
		if (write_file("/proc/self/oom_score_adj", "1000"))
			_exit(10);
		if (cgroup) {
			snprintf(buf, sizeof(buf), "%s/cgroup.procs", cgroup);
			snprintf(buf + 200, 100, "%d", getpid());
			if (write_file(buf, buf + 200))
				_exit(11);
		}
		dev = mvm_dev();
		if (dev < 0 || ioctl(dev, MACHVM_IOC_ANON_CREATE, &ac))
			_exit(12);
		p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
			 ac.fd, 0);
		if (p == MAP_FAILED)
			_exit(13);
		t0 = now_s();
		hog_run(p, n, threads, hog_write, &bad);
		t1 = now_s();
		hog_run(p, n, threads, hog_check, &bad);
		fprintf(stderr, "# hog: %llu pages written in %.1f s, read in %.1f s\n",
			(unsigned long long)n, t1 - t0, now_s() - t1);
		if (bad) {
			fprintf(stderr, "# hog: %llu wrong pages\n",
				(unsigned long long)bad);
			_exit(1);
		}
		_exit(0);
	}
}

/* Wait for the hog; 0 if it finished with every page right. */
static int hog_wait(struct __test_metadata *_metadata, pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status)) {
		TH_LOG("hog killed by signal %d (%s)", WTERMSIG(status),
		       WTERMSIG(status) == SIGKILL ? "OOM killer?" : "?");
		return -1;
	}
	if (WEXITSTATUS(status))
		TH_LOG("hog exited with %d", WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

/* What machvm did for the hog: pageouts, swap writes, waits. */
static void log_stats(struct __test_metadata *_metadata, const uint64_t *s0)
{
	static const int st[] = { MACHVM_A_STAT_PAGEOUTS,
				  MACHVM_A_STAT_SWAP_WRITES,
				  MACHVM_A_STAT_PAGEINS,
				  MACHVM_A_STAT_LIMIT_WAITS,
				  MACHVM_A_STAT_SWAP_FULL };
	uint64_t d[5];
	unsigned int i;

	for (i = 0; i < 5; i++)
		d[i] = mvm_stat(st[i]) - s0[i];
	TH_LOG("pageouts %llu swap writes %llu pageins %llu waits %llu swap full %llu",
	       (unsigned long long)d[0], (unsigned long long)d[1],
	       (unsigned long long)d[2], (unsigned long long)d[3],
	       (unsigned long long)d[4]);
}

static void stats_now(uint64_t *s0)
{
	s0[0] = mvm_stat(MACHVM_A_STAT_PAGEOUTS);
	s0[1] = mvm_stat(MACHVM_A_STAT_SWAP_WRITES);
	s0[2] = mvm_stat(MACHVM_A_STAT_PAGEINS);
	s0[3] = mvm_stat(MACHVM_A_STAT_LIMIT_WAITS);
	s0[4] = mvm_stat(MACHVM_A_STAT_SWAP_FULL);
}

FIXTURE(rcl) {
	uint32_t id;
	char path[256];
	uint64_t hugepages;	/* nr_hugepages before */
};

FIXTURE_SETUP(rcl)
{
	snprintf(self->path, sizeof(self->path), "%s/mvm-reclaim.swap",
		 mvm_disk_dir());
	unlink(self->path);
	self->id = 0;
	self->hugepages = read_u64("/proc/sys/vm/nr_hugepages");
}

FIXTURE_TEARDOWN(rcl)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu",
		 (unsigned long long)self->hugepages);
	write_file("/proc/sys/vm/nr_hugepages", buf);
	if (self->id)
		mvm_swap_remove(self->id);
	unlink(self->path);
}

/*
 * Little free memory, no Linux swap, machvm's limits far away: Linux's
 * reclaim is what must make machvm page out, and direct reclaim must see
 * progress (without the wait for the pageout thread, it saw none: every
 * page was dirty, and the hog was OOM-killed).
 */
TEST_F_TIMEOUT(rcl, guest_low_memory_hog, 600)
{
	const uint64_t leave_kb = 128 << 10;	/* free memory left */
	uint64_t free_kb, huge_kb, want, got, n, s0[5];
	struct mvm_nlreply r;
	char buf[32];
	pid_t pid;

	huge_kb = meminfo_kb("Hugepagesize");
	free_kb = meminfo_kb("MemFree");
	ASSERT_LT(0, huge_kb);
	ASSERT_LT(leave_kb + 64 * huge_kb, free_kb);
	want = self->hugepages + (free_kb - leave_kb) / huge_kb;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)want);
	ASSERT_EQ(0, write_file("/proc/sys/vm/nr_hugepages", buf));
	got = read_u64("/proc/sys/vm/nr_hugepages");
	free_kb = meminfo_kb("MemFree");
	TH_LOG("hugetlb pages %llu of %llu; MemFree %llu kB",
	       (unsigned long long)got, (unsigned long long)want,
	       (unsigned long long)free_kb);
	ASSERT_GT(2 * leave_kb, free_kb) TH_LOG("could not take memory away");

	/* 1.5 times the free memory, all of it written (and read back). */
	n = 3 * free_kb / 2 / (PG >> 10);
	ASSERT_EQ(0, mvm_swap_add(self->path, n * PG + (16 << 20), 0,
				  &self->id));
	ASSERT_EQ(0, mvm_nl(MACHVM_GENL_CMD_GET_PAGEOUT, NULL, &r));
	ASSERT_LT(n, r.a[MACHVM_A_PO_LIMIT]) TH_LOG("the global limit would act");

	stats_now(s0);
	pid = hog_start(n, 2, NULL);
	ASSERT_LE(0, pid);
	EXPECT_EQ(0, hog_wait(_metadata, pid));
	log_stats(_metadata, s0);
}

/* The same hog, two threads, in a memcg a quarter of its size. */
TEST_F_TIMEOUT(rcl, memcg_fast_hog, 600)
{
	const char *cg = "/sys/fs/cgroup/mvm-reclaim";
	const uint64_t n = (32 << 20) / PG;
	uint64_t s0[5];
	char buf[300];
	pid_t pid;

	ASSERT_EQ(0, mvm_swap_add(self->path, n * PG + (16 << 20), 0,
				  &self->id));
	mkdir("/sys/fs/cgroup", 0755);
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK))
		ASSERT_EQ(0, mount("none", "/sys/fs/cgroup", "cgroup2", 0,
				   NULL));
	write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	rmdir(cg);
	ASSERT_EQ(0, mkdir(cg, 0755));
	snprintf(buf, sizeof(buf), "%s/memory.max", cg);
	ASSERT_EQ(0, write_file(buf, "8M"));
	snprintf(buf, sizeof(buf), "%s/memory.swap.max", cg);
	write_file(buf, "0");	/* no Linux swap here either */

	stats_now(s0);
	pid = hog_start(n, 2, cg);
	ASSERT_LE(0, pid);
	EXPECT_EQ(0, hog_wait(_metadata, pid));
	log_stats(_metadata, s0);
	snprintf(buf, sizeof(buf), "%s/memory.events", cg);
	{
		char ev[512] = "";
		int fd = open(buf, O_RDONLY);

		if (fd >= 0) {
			if (read(fd, ev, sizeof(ev) - 1) < 0)
				ev[0] = 0;
			close(fd);
		}
		EXPECT_NE(NULL, strstr(ev, "oom_kill 0\n")) TH_LOG("%s", ev);
	}
	rmdir(cg);
}

TEST_HARNESS_MAIN
