/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Rendezvous for pair-mode tests (scripts/vm.sh pair, tests/pair/): the
 * same binary runs on two guests at once, node a (listens) and node b
 * (connects), named by MVM_NODE, MVM_SELF_IP and MVM_PEER_IP (see
 * tests/vm/init).  A test meets its peer with mvm_pair_connect() on a port
 * of its own (each test a different one), and may then step in lockstep
 * with mvm_pair_barrier().  Everything gives up after a deadline, so a
 * dead or failing peer fails the test instead of hanging it.
 */
#ifndef MVM_PAIR_H
#define MVM_PAIR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct mvm_pair {
	char node; /* 'a' listens, 'b' connects */
	struct in_addr self;
	struct in_addr peer;
};

/* Fills *p from the environment: 0, or -EINVAL outside pair mode. */
int mvm_pair_env(struct mvm_pair *p);
/*
 * A TCP connection to the peer on port: a accepts one, b connects and
 * retries until a listens.  Both give up after timeout_ms.  Returns the
 * socket, whose reads and writes time out after timeout_ms, or -errno.
 */
int mvm_pair_connect(const struct mvm_pair *p, uint16_t port, int timeout_ms);
/* Both sides send one byte and wait for the other's: 0 or -errno. */
int mvm_pair_barrier(int sock);
/* Connect on port, barrier, close: 0 or -errno. */
int mvm_pair_sync(const struct mvm_pair *p, uint16_t port, int timeout_ms);
/* All of len, or -errno (-EPIPE: the peer closed early). */
int mvm_write_full(int fd, const void *buf, size_t len);
int mvm_read_full(int fd, void *buf, size_t len);

#endif
