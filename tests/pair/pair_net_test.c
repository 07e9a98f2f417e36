// SPDX-License-Identifier: GPL-2.0
/*
 * Pair mode's network (scripts/vm.sh pair): runs on both guests at once.
 * Node b connects to node a over TCP; each sends 1 MiB of its own pattern
 * while receiving the other's, and checks it byte for byte.  Then the TCP
 * round-trip time of a 1-byte ping-pong (b pings, a echoes), printed as
 * "# tcp_rtt: ..." with p50 and p99: the baseline of the network memory
 * server's benchmarks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_pair.h"

#define XCHG_BYTES (1024 * 1024UL)
#define RTT_WARMUP 20
#define RTT_ROUNDS 1000
#define DEADLINE_MS 60000
#define PORT_XCHG 7101
#define PORT_RTT 7102
#define RTT_FMT \
	"tcp_rtt: rounds=%d p50_us=%.1f p99_us=%.1f min_us=%.1f max_us=%.1f\n"

/* Byte i of node's stream: differs per node and per position. */
static uint8_t pattern(char node, size_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u ^
		     (node == 'a' ? 0x5a17u : 0xb0b5u);

	return (uint8_t)(x >> 24 ^ x >> 8 ^ i / 4096);
}

struct sender {
	int fd;
	const uint8_t *buf;
	size_t len;
	int err;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;

	s->err = mvm_write_full(s->fd, s->buf, s->len);
	return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

FIXTURE(pair)
{
	struct mvm_pair p;
	char peer_node;
};

FIXTURE_SETUP(pair)
{
	ASSERT_EQ(0, mvm_pair_env(&self->p))
	TH_LOG("not in pair mode: MVM_NODE, MVM_SELF_IP, MVM_PEER_IP unset");
	self->peer_node = self->p.node == 'a' ? 'b' : 'a';
}

FIXTURE_TEARDOWN(pair)
{
}

TEST_F_TIMEOUT(pair, exchange_1mib_both_ways, 150)
{
	struct sender s = { 0 };
	uint8_t *out, *in, c;
	pthread_t th;
	size_t i;
	int fd, rc;

	out = malloc(XCHG_BYTES);
	in = malloc(XCHG_BYTES);
	ASSERT_TRUE(out && in);
	for (i = 0; i < XCHG_BYTES; i++)
		out[i] = pattern(self->p.node, i);
	memset(in, 0, XCHG_BYTES);

	fd = mvm_pair_connect(&self->p, PORT_XCHG, DEADLINE_MS);
	ASSERT_LE(0, fd)
	TH_LOG("node %c: no connection to the peer: %s", self->p.node,
	       strerror(-fd));
	s = (struct sender){ .fd = fd, .buf = out, .len = XCHG_BYTES };
	ASSERT_EQ(0, pthread_create(&th, NULL, send_all, &s));
	rc = mvm_read_full(fd, in, XCHG_BYTES);
	pthread_join(th, NULL);
	ASSERT_EQ(0, s.err) TH_LOG("send: %s", strerror(-s.err));
	ASSERT_EQ(0, rc) TH_LOG("receive: %s", strerror(-rc));
	for (i = 0; i < XCHG_BYTES; i++)
		if (in[i] != pattern(self->peer_node, i))
			break;
	EXPECT_EQ(XCHG_BYTES, i)
	TH_LOG("byte %zu: got %#x, want %#x", i, in[i],
	       pattern(self->peer_node, i));

	/* Exactly 1 MiB: after the barrier the peer sends nothing more. */
	ASSERT_EQ(0, mvm_pair_barrier(fd));
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	EXPECT_EQ(0, recv(fd, &c, 1, 0));
	close(fd);
	free(out);
	free(in);
}

TEST_F_TIMEOUT(pair, tcp_rtt_1byte, 150)
{
	long long *rtt, t0;
	int fd, one = 1, i;
	uint8_t c, got;

	rtt = calloc(RTT_ROUNDS, sizeof(*rtt));
	ASSERT_NE(NULL, rtt);
	fd = mvm_pair_connect(&self->p, PORT_RTT, DEADLINE_MS);
	ASSERT_LE(0, fd)
	TH_LOG("node %c: no connection to the peer: %s", self->p.node,
	       strerror(-fd));
	ASSERT_EQ(0,
		  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)));
	ASSERT_EQ(0, mvm_pair_barrier(fd));
	for (i = 0; i < RTT_WARMUP + RTT_ROUNDS; i++) {
		c = (uint8_t)i;
		if (self->p.node == 'a') { /* echo */
			ASSERT_EQ(0, mvm_read_full(fd, &got, 1));
			ASSERT_EQ(c, got);
			ASSERT_EQ(0, mvm_write_full(fd, &got, 1));
			continue;
		}
		t0 = now_ns();
		ASSERT_EQ(0, mvm_write_full(fd, &c, 1));
		ASSERT_EQ(0, mvm_read_full(fd, &got, 1));
		if (i >= RTT_WARMUP)
			rtt[i - RTT_WARMUP] = now_ns() - t0;
		ASSERT_EQ(c, got);
	}
	ASSERT_EQ(0, mvm_pair_barrier(fd));
	close(fd);
	if (self->p.node == 'b') {
		qsort(rtt, RTT_ROUNDS, sizeof(*rtt), cmp_ll);
		ksft_print_msg(RTT_FMT, RTT_ROUNDS, rtt[RTT_ROUNDS / 2] / 1e3,
			       rtt[RTT_ROUNDS * 99 / 100] / 1e3, rtt[0] / 1e3,
			       rtt[RTT_ROUNDS - 1] / 1e3);
		fflush(stdout);
		EXPECT_LT(0, rtt[0]);
	}
	free(rtt);
}

TEST_HARNESS_MAIN
