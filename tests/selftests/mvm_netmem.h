/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the network memory server's tests (netmem_test one-guest,
 * tests/pair/netmem_pair_test across two guests): start a netmem-server,
 * get its object, and run workers on a mapping of it in child processes.
 */
#ifndef MVM_NETMEM_H
#define MVM_NETMEM_H

#include <stdint.h>
#include <sys/types.h>

struct mvm_nm {
	pid_t pid;		/* the server */
	int status;		/* its wait status, once it exited */
	int fd;			/* its object, once attached */
	char sock[64];		/* its --socket */
	char log[64];		/* its stderr */
};

/*
 * Starts "netmem-server --node NODE --peers PEERS --size SIZE --socket
 * /tmp/nm-TAG.sock EXTRA..." (EXTRA: a space-separated list, or NULL),
 * stderr to /tmp/nm-TAG.log.  0 or -errno.  Does not wait for it.
 */
int mvm_nm_spawn(struct mvm_nm *n, const char *tag, unsigned int node,
		 const char *peers, const char *size, const char *extra);
/* Waits (timeout_ms) for its socket and receives the object: 0 or -errno. */
int mvm_nm_attach(struct mvm_nm *n, int timeout_ms);
/* Sends sig (0: none), reaps it (SIGKILL after 10 s), closes the fd;
 * returns its wait status. */
int mvm_nm_stop(struct mvm_nm *n, int sig);
/* Prints the server's log to stderr as "# " lines (on failure). */
void mvm_nm_dump(const struct mvm_nm *n);

/*
 * Runs fn(map, arg) in a child on a MAP_SHARED mapping of len bytes of
 * fd; the child exits with fn's value, or 4 on SIGBUS.  Returns its pid.
 */
pid_t mvm_nm_worker(int fd, size_t len, int (*fn)(volatile char *, void *),
		    void *arg);
/*
 * Waits for pid until deadline_ms; kills it (SIGKILL) past that and
 * returns -ETIMEDOUT; else its exit code (128+sig if signalled).
 */
int mvm_nm_wait(pid_t pid, int deadline_ms);

#endif
