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
/*
 * Sends sig (0: none), reaps it (SIGKILL after 10 s), closes the fd;
 * returns its wait status.
 */
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

/* The shared workloads of the netmem tests (run with mvm_nm_worker). */
#define MVM_NM_WORD(p, pg) ((volatile uint64_t *)((p) + (pg) * 4096UL))
#define MVM_NM_PINGPONG	2	/* page of the ping-pong counter */
#define MVM_NM_FLAG	4	/* readers test: the value written */
#define MVM_NM_DATA	5	/* written just before FLAG */
#define MVM_NM_ACK0	6	/* last value the reader on node 0 saw */
#define MVM_NM_ACK1	7	/* the reader on node 1's */
#define MVM_NM_VALUES	100
/*
 * How long a workload may take before it reports 13: generous, because a
 * pair of TCG guests on a 2-core host moves a page in tens of
 * milliseconds while both spin (docs/benchmarks.md), and the readers
 * test needs some 15 messages per value.
 */
#define MVM_NM_DEADLINE_US	200000000LL

/* A shared anonymous page for workers' results: 0 or -errno. */
extern volatile uint64_t *mvm_nm_res;
int mvm_nm_results(void);

/* arg: int adds.  Atomic adds on words of pages 0 and 1 (two homes). */
int mvm_nm_count_fn(volatile char *p, void *arg);
int mvm_nm_count_forever_fn(volatile char *p, void *arg);
/* Pages 0 and 1's words to mvm_nm_res[0] and [1]. */
int mvm_nm_read_counters_fn(volatile char *p, void *arg);
/* arg: the page (uintptr_t).  Read to mvm_nm_res[0]; write 0x1234+page. */
int mvm_nm_read_word_fn(volatile char *p, void *arg);
int mvm_nm_write_word_fn(volatile char *p, void *arg);

struct mvm_nm_pingpong {
	int rounds, parity;
};

/*
 * Writes the next value of page MVM_NM_PINGPONG's counter whenever it
 * has our parity: 12 if a value was skipped, 13 on timeout.
 */
int mvm_nm_pingpong_fn(volatile char *p, void *arg);
/*
 * The writer stores 1..MVM_NM_VALUES to DATA then FLAG, each once both
 * readers acknowledged the last.  A reader (arg: uint64_t ack page) must
 * see every value in order (14 otherwise) and never a DATA older than
 * FLAG (15: a stale read).  Progress goes to mvm_nm_res[8] (writer) and
 * mvm_nm_res[8 + ack page] (readers); on a timeout (13) what they saw
 * last to [9..12] (writer: flag, data, acks) and [16 + ack], [24 + ack]
 * (reader: flag, data).
 */
int mvm_nm_reader_fn(volatile char *p, void *arg);
int mvm_nm_writer_fn(volatile char *p, void *arg);

#endif
