// SPDX-License-Identifier: GPL-2.0
/*
 * netmem-server between two machines (scripts/vm.sh pair): each guest runs
 * one server (node a is index 0, b index 1) and processes on its object;
 * the two objects must behave as one memory.  Each test starts servers of
 * its own (own ports) and meets the peer test over a control connection
 * (mvm_pair.h) to step in lockstep; every wait has a deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_netmem.h"
#include "mvm_pair.h"
#include "mvm_test.h"

#define LEN (1024UL * 1024)
#define DEADLINE_MS 240000
#define res mvm_nm_res

FIXTURE(np) {
	struct mvm_pair p;
	struct mvm_nm n;
	int me;		/* 0 on a, 1 on b */
	int ctl;	/* control connection to the peer test */
};

/* Each test its own ports: variant-free, so by name. */
static uint16_t port_of(const char *name)
{
	uint16_t h = 0;

	while (*name)
		h = h * 31 + (unsigned char)*name++;
	return 7600 + (h % 300) * 2;
}

FIXTURE_SETUP(np)
{
	char peers[96];
	uint16_t port = port_of(_metadata->name);

	ASSERT_EQ(0, mvm_pair_env(&self->p));
	ASSERT_EQ(0, mvm_nm_results());
	self->me = self->p.node == 'a' ? 0 : 1;
	self->ctl = mvm_pair_connect(&self->p, port + 1, DEADLINE_MS);
	ASSERT_LE(0, self->ctl);
	snprintf(peers, sizeof(peers), "10.0.2.1:%u,10.0.2.2:%u", port, port);
	ASSERT_EQ(0, mvm_nm_spawn(&self->n, self->me ? "pb" : "pa", self->me,
				  peers, "1M", NULL));
	ASSERT_EQ(0, mvm_nm_attach(&self->n, 60000));
	ASSERT_EQ(0, mvm_pair_barrier(self->ctl));
}

FIXTURE_TEARDOWN(np)
{
	/* Neither stops its server while the other still uses it. */
	mvm_pair_barrier(self->ctl);
	if (_metadata->passed == 0 || getenv("MVM_NM_LOGS"))
		mvm_nm_dump(&self->n);
	mvm_nm_stop(&self->n, SIGTERM);
	close(self->ctl);
}

static int on(struct mvm_nm *n, int (*fn)(volatile char *, void *), void *arg)
{
	return mvm_nm_wait(mvm_nm_worker(n->fd, LEN, fn, arg), DEADLINE_MS);
}

/* 1,500 atomic adds on each machine (two processes each) end exact on
 * both (longer runs: make soak and make bench).
 */
TEST_F_TIMEOUT(np, atomic_counter, 300)
{
	int adds = 750;
	pid_t a = mvm_nm_worker(self->n.fd, LEN, mvm_nm_count_fn, &adds);
	pid_t b = mvm_nm_worker(self->n.fd, LEN, mvm_nm_count_fn, &adds);

	EXPECT_EQ(0, mvm_nm_wait(a, DEADLINE_MS));
	EXPECT_EQ(0, mvm_nm_wait(b, DEADLINE_MS));
	ASSERT_EQ(0, mvm_pair_barrier(self->ctl));
	EXPECT_EQ(0, on(&self->n, mvm_nm_read_counters_fn, NULL));
	EXPECT_EQ(3000, res[0]);
	EXPECT_EQ(3000, res[1]);
}

/* One page ping-ponged between a writer on each machine. */
TEST_F_TIMEOUT(np, ping_pong, 300)
{
	struct mvm_nm_pingpong pp = { 50, self->me };

	EXPECT_EQ(0, on(&self->n, mvm_nm_pingpong_fn, &pp));
	ASSERT_EQ(0, mvm_pair_barrier(self->ctl));
	EXPECT_EQ(0, on(&self->n, mvm_nm_read_word_fn,
			(void *)MVM_NM_PINGPONG));
	EXPECT_EQ(100, res[0]);
}

/* The writer on a; a reader on each machine sees every write, in order,
 * and never a stale page.
 */
TEST_F_TIMEOUT(np, readers_see_every_write, 300)
{
	uint64_t ack = self->me ? MVM_NM_ACK1 : MVM_NM_ACK0;
	time_t t0;
	pid_t r, w;

	t0 = time(NULL);
	r = mvm_nm_worker(self->n.fd, LEN, mvm_nm_reader_fn, &ack);
	w = self->me ? 0 :
	    mvm_nm_worker(self->n.fd, LEN, mvm_nm_writer_fn, NULL);

	if (w)
		EXPECT_EQ(0, mvm_nm_wait(w, DEADLINE_MS));
	EXPECT_EQ(0, mvm_nm_wait(r, DEADLINE_MS));
	TH_LOG("%ld s", (long)(time(NULL) - t0));
	TH_LOG("writer at %llu (sees flag %llu data %llu acks %llu %llu), "
	       "reader at %llu (sees flag %llu data %llu)",
	       (unsigned long long)res[8], (unsigned long long)res[9],
	       (unsigned long long)res[10], (unsigned long long)res[11],
	       (unsigned long long)res[12], (unsigned long long)res[8 + ack],
	       (unsigned long long)res[16 + ack],
	       (unsigned long long)res[24 + ack]);
}

/*
 * b's server is killed while both machines hammer a counter.  Nothing
 * hangs anywhere.  a keeps what it holds (page 11, written by a; page 12,
 * read by both) and serves its untouched pages (20: zeros); pages only b
 * held (10) and untouched pages b was home of (21) get SIGBUS on a.
 */
TEST_F_TIMEOUT(np, node_killed_mid_run, 300)
{
	pid_t w;
	int rc;

	if (self->me) {
		EXPECT_EQ(0, on(&self->n, mvm_nm_write_word_fn, (void *)10));
	} else {
		EXPECT_EQ(0, on(&self->n, mvm_nm_write_word_fn, (void *)11));
		EXPECT_EQ(0, on(&self->n, mvm_nm_write_word_fn, (void *)12));
	}
	ASSERT_EQ(0, mvm_pair_barrier(self->ctl));
	if (self->me) {
		EXPECT_EQ(0, on(&self->n, mvm_nm_read_word_fn, (void *)12));
		EXPECT_EQ(0x1234 + 12, res[0]);
	}
	ASSERT_EQ(0, mvm_pair_barrier(self->ctl));
	w = mvm_nm_worker(self->n.fd, LEN, mvm_nm_count_forever_fn, NULL);
	usleep(500000);
	if (self->me)
		mvm_nm_stop(&self->n, SIGKILL);
	usleep(500000);
	/* Going on (page 0 resident here) or SIGBUS; never stuck. */
	kill(w, SIGTERM);
	rc = mvm_nm_wait(w, 40000);
	EXPECT_TRUE(rc == 128 + SIGTERM || rc == 4);
	if (!self->me) {
		res[0] = 0;
		EXPECT_EQ(0, on(&self->n, mvm_nm_read_word_fn, (void *)11));
		EXPECT_EQ(0x1234 + 11, res[0]);
		res[0] = 0;
		EXPECT_EQ(0, on(&self->n, mvm_nm_read_word_fn, (void *)12));
		EXPECT_EQ(0x1234 + 12, res[0]);
		EXPECT_EQ(0, on(&self->n, mvm_nm_write_word_fn, (void *)12));
		res[0] = 1;
		EXPECT_EQ(0, on(&self->n, mvm_nm_read_word_fn, (void *)20));
		EXPECT_EQ(0, res[0]);
		EXPECT_EQ(4, on(&self->n, mvm_nm_read_word_fn, (void *)10));
		EXPECT_EQ(4, on(&self->n, mvm_nm_read_word_fn, (void *)21));
		EXPECT_EQ(0, kill(self->n.pid, 0));
		EXPECT_EQ(0, system("grep -q 'lost node 1' /tmp/nm-pa.log"));
	}
}

TEST_HARNESS_MAIN
