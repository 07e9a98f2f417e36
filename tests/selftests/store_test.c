// SPDX-License-Identifier: GPL-2.0
/*
 * store-pager (libmachvm's StorePager over the compress store) against the
 * real module: a checksummed workload several times the object's resident
 * limit goes out to the store and comes back byte for byte; the pages
 * really were returned to the pager; and a dead store-pager ends faults on
 * pages only its store held with SIGBUS, never a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_genl.h"
#include "mvm_test.h"

#define ST_SIZE		(4UL << 20)
#define ST_PAGES	(ST_SIZE / PG)
#define ST_LIMIT	"512K"
#define ST_LIMIT_PAGES	128
#define ST_TIMEOUT	"2000"
#define ST_SOCK		"/tmp/store.s"
#define ST_STATS	"/tmp/store.json"

enum kind { SAME, TEXT, RANDOM };

static enum kind page_kind(uint64_t i)
{
	return (enum kind)(i % 3);
}

/*
 * Page i of generation gen: one repeated word (same-filled), text-like
 * bytes zstd shrinks well, or xorshift noise it cannot shrink.
 */
static void fill(char *pg, uint64_t i, uint64_t gen)
{
	uint64_t *w = (uint64_t *)pg;
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ gen;
	size_t k;

	switch (page_kind(i)) {
	case SAME:
		for (k = 0; k < PG / 8; k++)
			w[k] = x;
		break;
	case TEXT:
		for (k = 0; k < PG; k++)
			pg[k] = "machvm store page "[(k + i + gen) % 18];
		memcpy(pg, &x, sizeof(x));
		break;
	case RANDOM:
		for (k = 0; k < PG / 8; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			w[k] = x;
		}
		break;
	}
}

static int page_ok(const char *p, uint64_t i, uint64_t gen)
{
	static char want[PG];

	fill(want, i, gen);
	return !memcmp(p, want, PG);
}

FIXTURE(store)
{
	pid_t pid;
	int fd;
	char *p;
	uint64_t name;
};

FIXTURE_SETUP(store)
{
	struct machvm_region r;
	int dev;

	unlink(ST_SOCK);
	unlink(ST_STATS);
	self->pid = fork();
	ASSERT_LE(0, self->pid);
	if (self->pid == 0) {
		int out = open(ST_STATS, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(out, 1);
		execlp("store-pager", "store-pager", "--store", "compress:3",
		       "--size", "4M", "--resident", ST_LIMIT, "--timeout",
		       ST_TIMEOUT, "--json", "--socket", ST_SOCK, NULL);
		_exit(127);
	}
	self->fd = mvm_pager_socket_fd(ST_SOCK);
	ASSERT_LE(0, self->fd);
	self->p = mmap(NULL, ST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->p);
	dev = mvm_dev();
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, mvm_region(dev, self->p, &r));
	close(dev);
	self->name = r.name;
	EXPECT_EQ(ST_LIMIT_PAGES, mvm_info(self->name).obj[MACHVM_OBJ_A_LIMIT]);
}

FIXTURE_TEARDOWN(store)
{
	int st;

	if (self->p && self->p != MAP_FAILED)
		munmap(self->p, ST_SIZE);
	if (self->fd >= 0)
		close(self->fd);
	if (self->pid > 0) {
		kill(self->pid, SIGTERM);
		waitpid(self->pid, &st, 0);
	}
	unlink(ST_STATS);
}

static uint64_t check_all(char *p, uint64_t gen)
{
	uint64_t i, bad = 0;

	for (i = 0; i < ST_PAGES; i++)
		bad += !page_ok(p + i * PG, i, gen);
	return bad;
}

/*
 * 4M written through a 512K resident limit, twice (the second pass
 * overwrites pages the store already holds), read back in order and in
 * reverse: every byte as written, every page out through the pager.
 */
TEST_F(store, pages_round_trip_through_the_store)
{
	struct mvm_nlreply r;
	uint64_t i, gen;

	for (gen = 1; gen <= 2; gen++) {
		for (i = 0; i < ST_PAGES; i++)
			fill(self->p + i * PG, i, gen);
		EXPECT_GE(ST_LIMIT_PAGES, mvm_info(self->name).obj[MACHVM_OBJ_A_RESIDENT]);
	}
	/* Everything still resident goes out too. */
	ASSERT_EQ(0, mvm_pageout_run(ST_PAGES, self->name, 1, &r));
	ASSERT_TRUE(mvm_wait_resident(self->name, 0, 5000));
	r = mvm_info(self->name);
	EXPECT_LE(2 * ST_PAGES - ST_LIMIT_PAGES, r.obj[MACHVM_OBJ_A_RETURNED]);
	EXPECT_EQ(0, r.obj[MACHVM_OBJ_A_DEFAULT_TAKEN]);
	EXPECT_EQ(0, r.obj[MACHVM_OBJ_A_SWAPPED]);

	ASSERT_EQ(0, mvm_stats_request(self->pid, ST_STATS));
	EXPECT_EQ(ST_PAGES, mvm_stats_value(ST_STATS, "pages"));
	EXPECT_LE((ST_PAGES + 2) / 3, mvm_stats_value(ST_STATS, "same_filled"));
	EXPECT_LE(ST_PAGES / 3, mvm_stats_value(ST_STATS, "incompressible"));
	/* Same-filled pages cost 8 bytes, text a few dozen: well under. */
	EXPECT_GT(ST_SIZE * 3 / 4, mvm_stats_value(ST_STATS, "bytes_stored"));
	EXPECT_LT(0, mvm_stats_value(ST_STATS, "bytes_stored"));

	EXPECT_EQ(0, check_all(self->p, 2));
	for (i = ST_PAGES; i-- > 0;)
		if (!page_ok(self->p + i * PG, i, 2))
			break;
	EXPECT_EQ((uint64_t)-1, i);
	r = mvm_info(self->name);
	EXPECT_LE(ST_PAGES, r.obj[MACHVM_OBJ_A_SUPPLIED]);
	EXPECT_EQ(0, r.obj[MACHVM_OBJ_A_ERRORS]);
	EXPECT_EQ(0, r.obj[MACHVM_OBJ_A_TIMEOUTS]);
}

/*
 * Once store-pager is gone, a page only its store held cannot come back:
 * the fault ends with SIGBUS within the object's timeout.
 */
TEST_F(store, dead_pager_gives_sigbus_not_a_hang)
{
	struct mvm_nlreply r;
	struct timespec t0, t1;
	void *bus = NULL;
	uint64_t i;
	int st;

	for (i = 0; i < 64; i++)
		fill(self->p + i * PG, i, 7);
	ASSERT_EQ(0, mvm_pageout_run(ST_PAGES, self->name, 1, &r));
	ASSERT_TRUE(mvm_wait_resident(self->name, 0, 5000));
	EXPECT_LE(64, mvm_info(self->name).obj[MACHVM_OBJ_A_RETURNED]);
	/* Alive: page 5 comes back. */
	EXPECT_TRUE(page_ok(self->p + 5 * PG, 5, 7));

	ASSERT_EQ(0, kill(self->pid, SIGKILL));
	ASSERT_EQ(self->pid, waitpid(self->pid, &st, 0));
	self->pid = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(1, mvm_touch(self->p + 40 * PG, 0, &bus));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	EXPECT_EQ(self->p + 40 * PG, (char *)bus);
	/* The timeout is 2 s; allow the VM's slowness, not a hang. */
	EXPECT_GT(10, t1.tv_sec - t0.tv_sec);
}

/* Runs @cmd: its exit status (-1 if it did not run), its output in @out. */
static int run_cmd(const char *cmd, char *out, size_t len)
{
	FILE *f = popen(cmd, "r");
	size_t n;

	out[0] = 0;
	if (!f)
		return -1;
	n = fread(out, 1, len - 1, f);
	out[n] = 0;
	return WEXITSTATUS(pclose(f));
}

/* Bad arguments: one line, exit 2; an unknown store names the known. */
TEST(store_pager_bad_arguments)
{
	char out[512];

	EXPECT_EQ(2, run_cmd("store-pager --store nosuch --socket /tmp/x.s 2>&1",
			     out, sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "compress"));
	EXPECT_EQ(2, run_cmd("store-pager --store compress:99 --socket /tmp/x.s 2>&1",
			     out, sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "level"));
}

/* machvm-run --pager compress: an unmodified program (memtester) with
 * its heap served by store-pager under a 2M resident limit.
 */
FIXTURE(mrun)
{
	int unused;
};

FIXTURE_SETUP(mrun)
{
}

FIXTURE_TEARDOWN(mrun)
{
}

TEST_F_TIMEOUT(mrun, memtester_heap_in_the_compress_store, 300)
{
	static char err[65536], out[65536];
	const char *mt = mvm_memtester_path();
	char cmd[512];
	const char *puts;
	int st;

	if (!mt)
		SKIP(return, "memtester is not in the VM");
	snprintf(cmd, sizeof(cmd),
		 "MEMTESTER_TEST_MASK=0x1 /bin/machvm-run --pager compress "
		 "--resident 2M --size 16M --verbose -- %s 8M 1 "
		 ">/tmp/mrun.out 2>/tmp/mrun.err", mt);
	st = system(cmd);
	mvm_slurp("/tmp/mrun.err", err, sizeof(err));
	mvm_slurp("/tmp/mrun.out", out, sizeof(out));
	ksft_print_msg("machvm-run said:\n%s", err);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	EXPECT_NE(NULL, strstr(err, "heap in machvm object"));
	/* The pager's object, named as machvmctl objects shows it. */
	EXPECT_EQ(NULL, strstr(err, "heap in machvm object 0,"));
	EXPECT_NE(NULL, strstr(out, "Done."));
	/* store-pager's last word: pages went through its store. */
	puts = strstr(err, ", puts ");
	ASSERT_NE(NULL, puts);
	EXPECT_LT(512, atoll(puts + 7));
}

TEST_HARNESS_MAIN
