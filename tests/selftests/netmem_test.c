// SPDX-License-Identifier: GPL-2.0
/*
 * netmem-server on one machine: two (or three) servers on 127.0.0.1, each
 * with its own object, stand in for two machines.  Processes map one
 * server's object or the other's and must see one coherent memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_netmem.h"
#include "mvm_test.h"

#define SIZE "1M"
#define LEN (1024UL * 1024)
#define PEERS2 "127.0.0.1:7400,127.0.0.1:7401"
#define PEERS3 "127.0.0.1:7410,127.0.0.1:7411,127.0.0.1:7412"
#define res mvm_nm_res

FIXTURE(nm) {
	struct mvm_nm n[3];
	int nodes;
};

FIXTURE_SETUP(nm)
{
	ASSERT_EQ(0, mvm_nm_results());
	self->nodes = 2;
	ASSERT_EQ(0, mvm_nm_spawn(&self->n[0], "a", 0, PEERS2, SIZE, NULL));
	ASSERT_EQ(0, mvm_nm_spawn(&self->n[1], "b", 1, PEERS2, SIZE, NULL));
	ASSERT_EQ(0, mvm_nm_attach(&self->n[0], 20000));
	ASSERT_EQ(0, mvm_nm_attach(&self->n[1], 20000));
}

FIXTURE_TEARDOWN(nm)
{
	int i;

	for (i = 0; i < self->nodes; i++) {
		if (_metadata->passed == 0 || getenv("MVM_NM_LOGS"))
			mvm_nm_dump(&self->n[i]);
		mvm_nm_stop(&self->n[i], SIGTERM);
	}
}

/* Run fn on node's object; its exit code. */
static int on(struct mvm_nm *n, int (*fn)(volatile char *, void *), void *arg)
{
	return mvm_nm_wait(mvm_nm_worker(n->fd, LEN, fn, arg), 60000);
}

struct range {
	uint64_t first, count, seed;
};

static int fill_fn(volatile char *p, void *arg)
{
	struct range *r = arg;
	uint64_t i;

	for (i = r->first; i < r->first + r->count; i++)
		mvm_fill((char *)p + i * PG, i * PG + r->seed, PG);
	return 0;
}

static int check_fn(volatile char *p, void *arg)
{
	struct range *r = arg;
	uint64_t i;

	for (i = r->first; i < r->first + r->count; i++)
		if (mvm_check((char *)p + i * PG, i * PG + r->seed, PG))
			return 10;
	return 0;
}

static int zero_fn(volatile char *p, void *arg)
{
	struct range *r = arg;
	uint64_t i, j;

	for (i = r->first; i < r->first + r->count; i++)
		for (j = 0; j < PG; j += 8)
			if (*(volatile uint64_t *)(p + i * PG + j))
				return 11;
	return 0;
}

/* Writes on one node are what the other reads, both ways; untouched
 * pages read as zeros.
 */
TEST_F(nm, read_write_across_nodes)
{
	struct range a = { 0, 16, 0 }, b = { 8, 8, 0x1000 }, z = { 32, 32, 0 };
	struct range a_lo = { 0, 8, 0 };

	EXPECT_EQ(0, on(&self->n[0], fill_fn, &a));
	EXPECT_EQ(0, on(&self->n[1], check_fn, &a));
	EXPECT_EQ(0, on(&self->n[1], fill_fn, &b));
	EXPECT_EQ(0, on(&self->n[0], check_fn, &a_lo));
	EXPECT_EQ(0, on(&self->n[0], check_fn, &b));
	EXPECT_EQ(0, on(&self->n[1], check_fn, &b));
	EXPECT_EQ(0, on(&self->n[0], zero_fn, &z));
	EXPECT_EQ(0, on(&self->n[1], zero_fn, &z));
	/* Both read, then one writes: the other's copy is gone. */
	EXPECT_EQ(0, on(&self->n[0], check_fn, &b));
	EXPECT_EQ(0, on(&self->n[0], fill_fn, &a_lo));
	EXPECT_EQ(0, on(&self->n[1], check_fn, &a_lo));
}

static void run_counters(struct __test_metadata *_metadata,
			 struct mvm_nm *n, int nodes, int procs, int adds,
			 uint64_t base)
{
	pid_t pids[16];
	int i, k = 0;

	for (i = 0; i < nodes * procs; i++)
		pids[k++] = mvm_nm_worker(n[i % nodes].fd, LEN, mvm_nm_count_fn,
					  &adds);
	for (i = 0; i < k; i++)
		EXPECT_EQ(0, mvm_nm_wait(pids[i], 120000));
	for (i = 0; i < nodes; i++) {
		res[0] = 0;
		res[1] = 0;
		EXPECT_EQ(0, on(&n[i], mvm_nm_read_counters_fn, NULL));
		EXPECT_EQ(base + (uint64_t)nodes * procs * adds, res[0]);
		EXPECT_EQ(base + (uint64_t)nodes * procs * adds, res[1]);
	}
}

/*
 * 3,000 atomic adds from each node (two processes each) end exact: every
 * add moves the page between the nodes more often than not (longer runs:
 * make soak, make bench).
 */
TEST_F_TIMEOUT(nm, atomic_counter, 240)
{
	run_counters(_metadata, self->n, 2, 2, 1500, 0);
}

/* One page ping-ponged between writers on the two nodes. */
TEST_F_TIMEOUT(nm, ping_pong, 300)
{
	struct mvm_nm_pingpong a = { 100, 0 }, b = { 100, 1 };
	pid_t pa = mvm_nm_worker(self->n[0].fd, LEN, mvm_nm_pingpong_fn, &a);
	pid_t pb = mvm_nm_worker(self->n[1].fd, LEN, mvm_nm_pingpong_fn, &b);

	EXPECT_EQ(0, mvm_nm_wait(pa, 240000));
	EXPECT_EQ(0, mvm_nm_wait(pb, 240000));
	res[0] = 0;
	EXPECT_EQ(0, on(&self->n[0], mvm_nm_read_word_fn,
			(void *)MVM_NM_PINGPONG));
	EXPECT_EQ(200, res[0]);
}

/* A writer on node 0, readers on both nodes: each reader sees every
 * write, in order, and never a stale page.
 */
TEST_F_TIMEOUT(nm, readers_see_every_write, 300)
{
	uint64_t ack0 = MVM_NM_ACK0, ack1 = MVM_NM_ACK1;
	pid_t a = mvm_nm_worker(self->n[0].fd, LEN, mvm_nm_reader_fn, &ack0);
	pid_t b = mvm_nm_worker(self->n[1].fd, LEN, mvm_nm_reader_fn, &ack1);
	pid_t w = mvm_nm_worker(self->n[0].fd, LEN, mvm_nm_writer_fn, NULL);

	EXPECT_EQ(0, mvm_nm_wait(w, 240000));
	EXPECT_EQ(0, mvm_nm_wait(a, 240000));
	EXPECT_EQ(0, mvm_nm_wait(b, 240000));
}

/*
 * Node 1's server is killed while both nodes hammer a counter.  Nothing
 * hangs; node 0 keeps the pages it holds (page 11, and page 12 both read)
 * and still serves its own untouched pages (even: zeros); pages only node
 * 1 held (page 10), and untouched pages node 1 was home of (odd), get
 * SIGBUS.
 */
TEST_F_TIMEOUT(nm, node_killed_mid_run, 120)
{
	pid_t w[4];
	int i, rc;

	EXPECT_EQ(0, on(&self->n[1], mvm_nm_write_word_fn, (void *)10));
	EXPECT_EQ(0, on(&self->n[0], mvm_nm_write_word_fn, (void *)11));
	EXPECT_EQ(0, on(&self->n[0], mvm_nm_write_word_fn, (void *)12));
	EXPECT_EQ(0, on(&self->n[1], mvm_nm_read_word_fn, (void *)12));
	EXPECT_EQ(0x1234 + 12, res[0]);
	for (i = 0; i < 4; i++)
		w[i] = mvm_nm_worker(self->n[i % 2].fd, LEN, mvm_nm_count_forever_fn,
				     NULL);
	usleep(500000);
	mvm_nm_stop(&self->n[1], SIGKILL);
	usleep(300000);
	/*
	 * Each worker goes on (page 0 is resident where it runs) or got
	 * SIGBUS (node 0's: page 0 was lost with node 1; node 1's: their
	 * pager is gone); none waits forever.
	 */
	for (i = 0; i < 4; i++) {
		kill(w[i], SIGTERM);
		rc = mvm_nm_wait(w[i], 40000);
		EXPECT_TRUE(rc == 128 + SIGTERM || rc == 4);
	}
	res[0] = 0;
	EXPECT_EQ(0, on(&self->n[0], mvm_nm_read_word_fn, (void *)11));
	EXPECT_EQ(0x1234 + 11, res[0]);
	res[0] = 0;
	EXPECT_EQ(0, on(&self->n[0], mvm_nm_read_word_fn, (void *)12));
	EXPECT_EQ(0x1234 + 12, res[0]);
	EXPECT_EQ(0, on(&self->n[0], mvm_nm_write_word_fn, (void *)12));
	res[0] = 1;
	EXPECT_EQ(0, on(&self->n[0], mvm_nm_read_word_fn, (void *)20));
	EXPECT_EQ(0, res[0]);
	EXPECT_EQ(4, on(&self->n[0], mvm_nm_read_word_fn, (void *)10));
	EXPECT_EQ(4, on(&self->n[0], mvm_nm_read_word_fn, (void *)21));
	/* Lost for good, and the server is fine. */
	EXPECT_EQ(4, on(&self->n[0], mvm_nm_write_word_fn, (void *)10));
	EXPECT_EQ(0, kill(self->n[0].pid, 0));
}

static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Bad command lines (2) and peers that disagree or are missing (1). */
TEST(bad_setup)
{
	struct mvm_nm a, b;
	int sa, sb;

	EXPECT_EQ(2, run("netmem-server --peers 127.0.0.1:7420,127.0.0.1:7421 "
			 "--socket /tmp/x 2>/dev/null"));
	EXPECT_EQ(2, run("netmem-server --node 0 --peers 127.0.0.1:7420 "
			 "--socket /tmp/x 2>/dev/null"));
	EXPECT_EQ(2, run("netmem-server --node 2 --peers 127.0.0.1:7420,"
			 "127.0.0.1:7421 --socket /tmp/x 2>/dev/null"));
	EXPECT_EQ(2, run("netmem-server --node 0 --peers 127.0.0.1:7420,"
			 "127.0.0.1:0 --socket /tmp/x 2>/dev/null"));
	EXPECT_EQ(2, run("netmem-server --node 0 --peers 127.0.0.1:7420,"
			 "127.0.0.1:7421 --threads 2 --socket /tmp/x 2>/dev/null"));
	EXPECT_EQ(2, run("netmem-server --node 0 --peers 127.0.0.1:7420,"
			 "127.0.0.1:7421 2>/dev/null"));
	EXPECT_EQ(0, run("netmem-server --help | grep -q 'Lost servers'"));
	/* Nobody answers: exit 1 after --connect-timeout. */
	EXPECT_EQ(1, run("netmem-server --node 1 --peers 127.0.0.1:7420,"
			 "127.0.0.1:7421 --connect-timeout 500 --socket /tmp/x "
			 "2>/dev/null"));
	/* Sizes differ: both refuse. */
	ASSERT_EQ(0, mvm_nm_spawn(&a, "sa", 0, "127.0.0.1:7420,127.0.0.1:7421",
				  "1M", "--connect-timeout 5000"));
	ASSERT_EQ(0, mvm_nm_spawn(&b, "sb", 1, "127.0.0.1:7420,127.0.0.1:7421",
				  "2M", "--connect-timeout 5000"));
	EXPECT_EQ(-ECHILD, mvm_nm_attach(&b, 10000));
	EXPECT_EQ(-ECHILD, mvm_nm_attach(&a, 10000));
	sa = a.status;
	sb = b.status;
	EXPECT_TRUE(WIFEXITED(sa) && WEXITSTATUS(sa) == 1);
	EXPECT_TRUE(WIFEXITED(sb) && WEXITSTATUS(sb) == 1);
	EXPECT_EQ(0, run("grep -q 'pages of' /tmp/nm-sa.log"));
	EXPECT_EQ(0, run("grep -q 'pages of' /tmp/nm-sb.log"));
}

/* Three nodes: counters, and one lost while the others go on. */
TEST_F_TIMEOUT(nm, three_nodes, 240)
{
	int i;

	for (i = 0; i < 2; i++)
		mvm_nm_stop(&self->n[i], SIGTERM);
	self->nodes = 3;
	for (i = 0; i < 3; i++) {
		char tag[8];

		snprintf(tag, sizeof(tag), "t%d", i);
		ASSERT_EQ(0, mvm_nm_spawn(&self->n[i], tag, i, PEERS3, SIZE,
					  NULL));
	}
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, mvm_nm_attach(&self->n[i], 20000));
	run_counters(_metadata, self->n, 3, 1, 1000, 0);
	/*
	 * Node 2 goes.  The counters were read everywhere last: copies are
	 * on the survivors, who go on counting.  Page 3 (home 0) works; page
	 * 2, untouched, was homed at node 2: lost, as documented.
	 */
	mvm_nm_stop(&self->n[2], SIGKILL);
	run_counters(_metadata, self->n, 2, 1, 500, 3000);
	EXPECT_EQ(0, on(&self->n[0], mvm_nm_write_word_fn, (void *)3));
	res[0] = 0;
	EXPECT_EQ(0, on(&self->n[1], mvm_nm_read_word_fn, (void *)3));
	EXPECT_EQ(0x1234 + 3, res[0]);
	EXPECT_EQ(4, on(&self->n[1], mvm_nm_read_word_fn, (void *)2));
}

TEST_HARNESS_MAIN
