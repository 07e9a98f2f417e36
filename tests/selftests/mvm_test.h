/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the machvm Kselftests: raw ABI calls and a small
 * pager thread driven by the blocking read/write path.
 */
#ifndef MVM_TEST_H
#define MVM_TEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/machvm.h>

#define PG 4096UL

int mvm_dev(void);
int mvm_pager(int dev);
/* Returns the object fd or -errno; fills *oc. */
int mvm_object(int pager, uint64_t size, uint32_t prot, uint32_t timeout_ms,
	       struct machvm_object_create *oc);
/* 0, or -ETIMEDOUT when nothing came within timeout_ms. */
int mvm_read_msg(int pager, struct machvm_msg *m, int timeout_ms);
int mvm_cmd(int pager, const struct machvm_cmd *c);	/* 0 or -errno */
int mvm_ready(int pager, uint64_t obj, uint16_t cluster, uint32_t timeout_ms);
int mvm_ready_flags(int pager, uint64_t obj, uint16_t cluster,
		    uint32_t timeout_ms, uint32_t flags);
int mvm_supply(int pager, uint64_t obj, uint64_t off, uint64_t len,
	       const void *buf, uint32_t flags);
int mvm_unavailable(int pager, uint64_t obj, uint64_t off, uint64_t len);
int mvm_error(int pager, uint64_t obj, uint64_t off, uint64_t len, int err);
int mvm_region(int dev, void *addr, struct machvm_region *r);
/* An anonymous object: fd, or -errno; *name set (if name). */
int mvm_anon(uint64_t size, uint64_t limit, uint64_t *name);
/* Page @i of @base in the page cache (mincore): 1, 0, or -1. */
int mvm_resident(const void *base, uint64_t i);
/* Where swap files go: $MVM_DISK_DIR (an ext4 disk in the VM), or /tmp. */
const char *mvm_disk_dir(void);

uint64_t mvm_word(uint64_t off);	/* the test pattern at byte off */
void mvm_fill(void *buf, uint64_t off, size_t len);
int mvm_check(const void *buf, uint64_t off, size_t len); /* 0 if pattern */
/*
 * Fill @bytes of fresh anonymous memory with a non-zero pattern and free
 * it: the pages the next allocations get are likely these, so that a page
 * the module forgot to clear shows the pattern (where the kernel does not
 * clear every allocation itself: init_on_alloc=0, see scripts/vm.sh).
 * -1 if the memory cannot be had.
 */
int mvm_dirty_free_pages(size_t bytes);
/* The offset of the first non-zero byte of @buf, or -1 if all are zero. */
long mvm_first_nonzero(const void *buf, size_t len);

/* Touch one byte; returns 0, or 1 if SIGBUS hit (*bus_addr set). */
int mvm_touch(volatile char *p, int write, void **bus_addr);

int mvm_send_fd(int sock, int fd);
int mvm_recv_fd(int sock);
/* The object's descriptor from a pager's --socket @path (retrying 10 s). */
int mvm_pager_socket_fd(const char *path);
/*
 * A pager's --json statistics, one JSON object a line, in file @path:
 * @key's number in the last line (or -1); mvm_stats_request() asks
 * process @pid for a new line (SIGUSR1) and waits 5 s for it (0 or -1).
 */
long long mvm_stats_value(const char *path, const char *key);
int mvm_stats_request(pid_t pid, const char *path);
/* memtester's path in the VM, or NULL. */
const char *mvm_memtester_path(void);
/* The first @len - 1 bytes of file @path in @buf, NUL-terminated ("" if none). */
char *mvm_slurp(const char *path, char *buf, size_t len);

/*
 * A pager in a process of its own, for tests where it dies: the child
 * opens an endpoint, creates an object of @size bytes (@prot,
 * @timeout_ms), calls @prepare (may be NULL; nonzero: exit 2) before it
 * passes the object's fd to the parent, then exits with what @serve
 * returns.  The parent gets the fd in *@fd.  The child's pid, or -1.
 */
struct mvm_child_pager {
	int (*prepare)(int pager, void *arg);
	int (*serve)(int pager, void *arg);
	void *arg;
};

pid_t mvm_fork_pager(uint64_t size, uint32_t prot, uint32_t timeout_ms,
		     const struct mvm_child_pager *cp, int *fd);

enum mvm_mode { MVM_PATTERN, MVM_ZERO, MVM_ERROR, MVM_SILENT };

struct mvm_server {
	int pager;
	enum mvm_mode mode;
	int delay_ms;
	uint16_t cluster;
	uint32_t timeout_ms;
	uint32_t ready_flags;	/* MACHVM_READY_F_* for its READYs */
	atomic_int stop;
	atomic_int inits, requests, terminates, req_pages;
	atomic_int returns;	/* DATA_RETURNs seen (never answered) */
	atomic_int readies;	/* READY commands sent */
	atomic_int page0_requests;
	pthread_t th;
};

void mvm_server_start(struct mvm_server *s, int pager, enum mvm_mode mode);
void mvm_server_stop(struct mvm_server *s);

#endif
