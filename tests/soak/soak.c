// SPDX-License-Identifier: GPL-2.0
/*
 * machvm-soak: every machvm operation at once, at random, for a while, and
 * a page never lost or wrong.  See print_manual() for what runs and the rules by
 * which a SIGBUS is allowed; README.md ("Soak") for make soak.
 *
 * Process tree (all forked from main, results in one shared mapping):
 *   worker i      faults pages of its own object: anonymous (default pager
 *                 only) or served by its own pager child; keeps the
 *                 generation it last wrote to every page and verifies every
 *                 page it reads against it (whole page)
 *   pager child   of a paged worker: blocking read(2) loop serving the
 *                 soak pattern, taking DATA_RETURNs (sometimes refusing
 *                 them); records in shared memory the generation it holds
 *                 for each page, which is what may be lost if it dies
 *   chaos k       pager kill/stop, admin (swap, limits, memcg, pageout,
 *                 destroy), signal storms: each its own random stream
 *   netmem        (--netmem) a worker on a netmem-server object of a
 *                 two-guest pair; guest b's server is lost part-way
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "mvm_genl.h"
#include "mvm_netmem.h"
#include "mvm_pair.h"
#include "mvm_test.h"
#include "kselftest.h"

#define MAX_WORKERS	32
#define MAX_ERRS	24
#define MAGIC		0x4d564d534f414b21ULL	/* "MVMSOAK!" */

/* Operation kinds: what the table counts. */
enum op {
	OP_READ, OP_WRITE, OP_KREAD, OP_KWRITE, OP_FORK, OP_MLOCK,
	OP_PAGER_KILL, OP_PAGER_STOP, OP_WORKER_STOP, OP_DESTROY,
	OP_SWAP_ADD, OP_SWAP_REMOVE, OP_SWAP_REFUSED, OP_LIMIT_GLOBAL,
	OP_LIMIT_OBJECT, OP_MEMCG, OP_PAGEOUT_RUN, OP_STORM, OP_SIGNALS,
	OP_RETURN_TAKEN, OP_RETURN_REFUSED, OP_NEW_OBJECT, OP_NODE_LOSS,
	OP_MAX
};

static const char *const op_names[OP_MAX] = {
	"page reads (verified)", "page writes", "kernel-mode reads (pipe)",
	"kernel-mode writes (pipe)", "forks (child verifies, writes)",
	"mlock/munlock", "pagers killed (and restarted)",
	"pagers stopped (SIGSTOP/SIGCONT)", "workers stopped",
	"objects destroyed (machvmctl)", "swap stores added",
	"swap stores removed", "swap removals refused",
	"global resident limit set", "object resident limit set",
	"memcg memory.max set", "pageout runs (forced)",
	"signal storms", "signals sent in storms",
	"data_returns taken by pagers", "data_returns refused by pagers",
	"objects created", "netmem node lost",
};

/* Why a fault ended in SIGBUS (or a kernel-mode access in EFAULT). */
enum why {
	W_PAGER_DEAD,		/* its pager held the page's latest copy */
	W_PAGER_STOPPED,	/* timed out while the pager was stopped */
	W_DESTROYED,		/* object destroyed */
	W_NODE_LOST,		/* netmem: a node was lost */
	W_MAX
};

static const char *const why_names[W_MAX] = {
	"pager killed, page was the pager's", "pager stopped past timeout",
	"object destroyed", "netmem node lost",
};

enum pstate { P_LIVE, P_DEAD, P_DESTROYED };

struct slot {
	_Atomic int pid;		/* worker */
	_Atomic int pager_pid;		/* 0: anonymous */
	_Atomic int state;		/* enum pstate */
	_Atomic uint32_t stop_seq;	/* odd while the pager is stopped */
	_Atomic uint64_t name;		/* object name, 0 while none */
	_Atomic uint64_t npages;
	_Atomic int64_t beat_ms;	/* last sign of life */
	_Atomic int done;		/* final sweep made and reported */
	_Atomic uint64_t swept;		/* pages the sweep has read so far */
	_Atomic uint64_t nlocked;	/* pages it has mlocked */
	_Atomic int busy;		/* 1 while chaos changes it */
	int anon;
	int netmem;			/* works on the netmem object */
};

struct results {
	_Atomic int stop;
	_Atomic uint64_t ops[OP_MAX];
	_Atomic uint64_t why[W_MAX];
	_Atomic uint64_t verified, written, lost, wrong, bad_sigbus;
	_Atomic uint64_t bad_return, unknown;
	_Atomic int nerr;
	_Atomic int chaos_op[3];	/* what each chaos process does (OP_*) */
	char err[MAX_ERRS][200];
	struct slot slot[MAX_WORKERS];
};

static struct results *R;
static struct {
	uint64_t seed;
	int seconds, anon, paged, npages, timeout_ms, tap, verbose;
	int no_memcg, no_destroy, no_storm, no_kill, no_stop, no_mlock;
	int no_swap;
	int netmem;		/* pair mode */
	int node;		/* pair mode: 0 (guest a) or 1 (guest b) */
	int netmem_fd;
} cfg = {
	.seconds = 120, .anon = 3, .paged = 3, .npages = 1024,
	.timeout_ms = 20000,
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void err(const char *fmt, ...)
{
	int i = atomic_fetch_add(&R->nerr, 1);
	va_list ap;
	char buf[200];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# soak ERROR: %s\n", buf);
	if (i < MAX_ERRS)
		memcpy(R->err[i], buf, sizeof(buf));
}

/* xorshift64*: one stream per process, from the seed and a stream number. */
struct rng { uint64_t s; };

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_init(struct rng *r, uint64_t stream)
{
	r->s = mix(cfg.seed ^ mix(stream + 1)) | 1;
}

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

static uint64_t rnd_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	return lo + rnd(r) % (hi - lo + 1);
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * Reap child @pid, waiting until the clock reads @end (ms) at most: every
 * wait for a child in the soak is bounded, so a task hung in the kernel
 * is reported, never waited on for ever.  0 if reaped (or not a child),
 * -1 if it still runs.  @status may be NULL.
 */
static int reap_by(int pid, int *status, int64_t end)
{
	while (waitpid(pid, status, WNOHANG) == 0) {
		if (now_ms() > end)
			return -1;
		sleep_ms(20);
	}
	return 0;
}

/*
 * The page contents: generation gen of page p of object instance oid.
 * Four header words (magic, oid, page, gen), then words derived from them.
 * Generation 0 of an anonymous object is zeros (its first touch).
 */
static void fill_page(uint64_t *w, uint64_t oid, uint64_t p, uint64_t gen)
{
	uint64_t base = mix(cfg.seed ^ mix(oid * 0x100000001b3ULL ^ mix(p) ^
					   (gen << 40)));

	w[0] = MAGIC;
	w[1] = oid;
	w[2] = p;
	w[3] = gen;
	for (size_t i = 4; i < PG / 8; i++)
		w[i] = base ^ (i * 0x9e3779b97f4a7c15ULL);
}

/* -1 if the page is gen's, else the first bad word; *got: its header gen. */
static long check_page(const uint64_t *w, uint64_t oid, uint64_t p,
		       uint64_t gen, int zero0, uint64_t *got)
{
	static uint64_t want[PG / 8];

	*got = w[3];
	if (gen == 0 && zero0) {
		for (size_t i = 0; i < PG / 8; i++)
			if (w[i])
				return i;
		return -1;
	}
	fill_page(want, oid, p, gen);
	for (size_t i = 0; i < PG / 8; i++)
		if (w[i] != want[i])
			return i;
	return -1;
}

/* ---- SIGBUS catching ------------------------------------------------- */

/*
 * Set around every access to a mapping.  The compiler inlines the 4 KiB
 * copies and would move them past a plain store: barriers keep the copy
 * between the two.
 */
static sigjmp_buf *volatile bus_env;
static void *volatile bus_addr;
static const char *volatile doing = "start";	/* for an unexpected SIGBUS */
static volatile sig_atomic_t usr1_count;

/* The compiler orders accesses across it (a signal handler reads them). */
static inline void barrier(void)
{
	atomic_signal_fence(memory_order_seq_cst);
}

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	bus_addr = si->si_addr;
	if (bus_env)
		siglongjmp(*bus_env, 1);
	{
		char b[160];
		int n = snprintf(b, sizeof(b), "# soak ERROR: pid %d: SIGBUS "
				 "at %p (code %d) outside a checked access,"
				 " while %s\n", getpid(), si->si_addr,
				 si->si_code, doing);

		char m[4096];
		int fd = open("/proc/self/maps", O_RDONLY);
		ssize_t k = fd < 0 ? 0 : read(fd, m, sizeof(m) - 1);

		if (write(2, b, n) < 0)
			_exit(98);
		/* Which mapping: the object's, or another. */
		if (k > 0 && write(2, m, k) < 0)
			_exit(98);
	}
	_exit(99);
}

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

static void handlers(void)
{
	struct sigaction sa = { .sa_sigaction = on_bus,
				.sa_flags = SA_SIGINFO | SA_NODEFER };
	struct sigaction su = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGUSR1, &su, NULL);
}

/* ---- the soak's pager ------------------------------------------------ */

/*
 * Serves object id on endpoint ep: generation held[p] of every page.
 * Takes returned pages (verifying them) unless it refuses one at random.
 */
static void pager_main(int ep, uint64_t id, uint64_t oid,
		       _Atomic uint64_t *held, uint64_t npages, int stream)
{
	struct rng r;
	char *buf = aligned_alloc(PG, MACHVM_MAX_XFER);
	struct machvm_msg m;

	rng_init(&r, stream);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "soak-pager");
	for (;;) {
		int ret = mvm_read_msg(ep, &m, 1000);
		struct machvm_cmd c = { .object = id };

		if (ret == -ETIMEDOUT)
			continue;
		if (ret) {
			err("pager of object %" PRIu64 ": read: %s", oid,
			    strerror(-ret));
			_exit(1);
		}
		switch (m.type) {
		case MACHVM_MSG_INIT:
			mvm_ready(ep, id, 1u << rnd_range(&r, 0, 3),
				  cfg.timeout_ms);
			break;
		case MACHVM_MSG_DATA_REQUEST:
			for (uint64_t o = 0; o < m.length; o += PG) {
				uint64_t p = (m.offset + o) / PG;

				fill_page((uint64_t *)(buf + o), oid, p,
					  atomic_load(&held[p]));
			}
			ret = mvm_supply(ep, id, m.offset, m.length, buf, 0);
			/* Out of memory (a memcg at its limit): again. */
			for (int k = 0; ret == -ENOMEM && k < 100; k++) {
				sleep_ms(20);
				ret = mvm_supply(ep, id, m.offset, m.length,
						 buf, 0);
			}
			if (ret && ret != -ENOENT)
				err("pager of object %" PRIu64
				    ": supply %#" PRIx64 "+%#" PRIx64 ": %s",
				    oid, m.offset, m.length, strerror(-ret));
			break;
		case MACHVM_MSG_DATA_RETURN:
			c.type = MACHVM_CMD_RETURN_COPY;
			c.offset = m.offset;
			c.length = m.length;
			c.addr = (uintptr_t)buf;
			c.seq = m.seq;
			if (mvm_cmd(ep, &c))
				break;	/* superseded: a newer return comes */
			c.type = MACHVM_CMD_RETURN_DONE;
			c.addr = 0;
			if (rnd(&r) % 10 == 0) {	/* refuse: default pager */
				c.error = EAGAIN;
				mvm_cmd(ep, &c);
				atomic_fetch_add(&R->ops[OP_RETURN_REFUSED], 1);
				break;
			}
			for (uint64_t o = 0; o < m.length; o += PG) {
				uint64_t p = (m.offset + o) / PG, got;
				const uint64_t *w = (uint64_t *)(buf + o);
				uint64_t g = w[3];

				if (w[1] != oid || w[2] != p ||
				    check_page(w, oid, p, g, 0, &got) >= 0 ||
				    g < atomic_load(&held[p])) {
					atomic_fetch_add(&R->bad_return, 1);
					err("object %" PRIu64 " page %" PRIu64
					    ": returned page is wrong (header"
					    " oid %" PRIu64 " page %" PRIu64
					    " gen %" PRIu64 ", held gen %"
					    PRIu64 ")", oid, p, w[1], w[2], g,
					    atomic_load(&held[p]));
					continue;
				}
				atomic_store(&held[p], g);
			}
			mvm_cmd(ep, &c);
			atomic_fetch_add(&R->ops[OP_RETURN_TAKEN], 1);
			break;
		case MACHVM_MSG_TERMINATE:
			_exit(0);
		default:
			break;
		}
		(void)npages;
	}
}

/* ---- workers --------------------------------------------------------- */

struct obj {
	int fd;
	volatile char *map;
	uint64_t npages, name, oid;
	_Atomic uint64_t *held;	/* pager's generations (paged) */
	uint64_t *gen;		/* what each page must hold */
	unsigned char *unknown;	/* torn by a SIGBUS mid-write */
	unsigned char *locked;
	uint64_t *seen;		/* netmem: newest gen seen of others' pages */
};

static struct slot *me;
static int me_idx;
static struct rng wr;
static uint64_t next_oid;

/* netmem: pages are dealt to the workers of both nodes in turn. */
static int nm_owner(uint64_t p)
{
	return (int)(p % (2 * cfg.paged));
}

static int own(uint64_t p)
{
	return !me->netmem || nm_owner(p) == cfg.node * cfg.paged +
					       (me_idx - cfg.anon);
}

static uint64_t pick_page(struct obj *o)
{
	uint64_t p = rnd(&wr) % o->npages;

	if (!me->netmem || rnd(&wr) % 4 == 0)
		return p;	/* netmem: a quarter of the reads elsewhere */
	p = p - p % (2 * cfg.paged) + cfg.node * cfg.paged +
	    (me_idx - cfg.anon);
	return p < o->npages ? p : p - 2 * cfg.paged;	/* the last round */
}

static void beat(void)
{
	atomic_store(&me->beat_ms, now_ms());
}

static int obj_create(struct obj *o)
{
	int dev = mvm_dev(), ep;
	size_t sz = o->npages * PG;
	struct machvm_region reg;

	if (dev < 0)
		return -errno;
	o->oid = ((uint64_t)me_idx << 32) | ++next_oid;
	memset(o->gen, 0, o->npages * sizeof(*o->gen));
	memset(o->unknown, 0, o->npages);
	memset(o->locked, 0, o->npages);
	atomic_store(&me->state, P_LIVE);
	if (me->netmem) {
		o->oid = 1;	/* the same object on both nodes */
		o->fd = dup(cfg.netmem_fd);
	} else if (me->anon) {
		struct machvm_anon_create ac = {
			.size = sz, .resident_limit = rnd_range(&wr, 0, 1) ?
				rnd_range(&wr, 16, o->npages) : 0 };

		if (ioctl(dev, MACHVM_IOC_ANON_CREATE, &ac)) {
			close(dev);
			return -errno;
		}
		o->fd = ac.fd;
	} else {
		struct machvm_object_create oc;
		pid_t pid;

		ep = mvm_pager(dev);
		if (ep < 0) {
			close(dev);
			return ep;
		}
		o->fd = mvm_object(ep, sz, PROT_READ | PROT_WRITE,
				   cfg.timeout_ms, &oc);
		if (o->fd < 0) {
			close(ep);
			close(dev);
			return o->fd;
		}
		for (uint64_t p = 0; p < o->npages; p++)
			atomic_store(&o->held[p], 0);
		pid = fork();
		if (pid == 0) {
			close(dev);
			close(o->fd);
			pager_main(ep, oc.id, o->oid, o->held, o->npages,
				   1000 + (int)o->oid);
		}
		close(ep);
		atomic_store(&me->pager_pid, pid);
	}
	o->map = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, o->fd, 0);
	if (o->map == MAP_FAILED) {
		close(dev);
		return -errno;
	}
	o->name = mvm_region(dev, (void *)o->map, &reg) ? 0 : reg.name;
	close(dev);
	atomic_store(&me->npages, o->npages);
	atomic_store(&me->name, o->name);
	atomic_fetch_add(&R->ops[OP_NEW_OBJECT], 1);
	return 0;
}

static void obj_drop(struct obj *o)
{
	int pid = atomic_exchange(&me->pager_pid, 0);

	atomic_store(&me->name, 0);
	doing = "munmap";
	munmap((void *)o->map, o->npages * PG);
	doing = "worker loop";
	close(o->fd);
	if (pid > 0) {
		/* Its object is gone: TERMINATE ends it; else kill it. */
		if (reap_by(pid, NULL, now_ms() + 5000)) {
			kill(pid, SIGKILL);
			if (reap_by(pid, NULL, now_ms() + 60000))
				err("pager %d survives SIGKILL", pid);
		}
	}
}

/*
 * Was a SIGBUS (or EFAULT) on page p allowed?  stop0: the pager's
 * stop_seq before the access.  Counts it by reason; else it is a lost page.
 */
static int judge_bus(struct obj *o, uint64_t p, uint32_t stop0,
		     const char *how)
{
	int st = atomic_load(&me->state);
	uint32_t stop1 = atomic_load(&me->stop_seq);

	if (st == P_DESTROYED) {
		atomic_fetch_add(&R->why[W_DESTROYED], 1);
		return 1;
	}
	if (cfg.netmem && st == P_DEAD) {
		atomic_fetch_add(&R->why[W_NODE_LOST], 1);
		return 1;
	}
	if (!me->anon && st == P_DEAD &&
	    atomic_load(&o->held[p]) == o->gen[p]) {
		atomic_fetch_add(&R->why[W_PAGER_DEAD], 1);
		return 1;
	}
	if (!me->anon && ((stop0 & 1) || stop1 != stop0)) {
		atomic_fetch_add(&R->why[W_PAGER_STOPPED], 1);
		return 1;
	}
	atomic_fetch_add(&R->bad_sigbus, 1);
	atomic_fetch_add(&R->lost, 1);
	err("LOST: %s of object %" PRIu64 " (name %" PRIu64 ", %s) page %"
	    PRIu64 " gen %" PRIu64 ": %s (pager state %d, held gen %" PRIu64
	    ")", how, o->oid, o->name, me->anon ? "anonymous" : "paged", p,
	    o->gen[p], cfg.netmem ? "SIGBUS/EFAULT on netmem" :
	    "SIGBUS/EFAULT not allowed here", st,
	    me->anon ? 0 : atomic_load(&o->held[p]));
	return 0;
}

static void judge_data(struct obj *o, uint64_t p, const uint64_t *w,
		       const char *how)
{
	uint64_t got;
	long bad;

	if (o->unknown[p])
		return;
	if (!own(p)) {
		/*
		 * Another worker's page, maybe being written (torn): every
		 * word of its header's generation h or of h - 1, and h never
		 * older than what we saw.
		 */
		uint64_t h = w[3], a[PG / 8], b[PG / 8];
		long i = 0;

		if (w[0] == 0 && w[1] == 0 && w[3] == 0) {
			memset(a, 0, sizeof(a));
			memcpy(b, a, sizeof(b));
			h = 0;
		} else {
			fill_page(a, o->oid, p, h);
			if (h > 1)
				fill_page(b, o->oid, p, h - 1);
			else
				memset(b, 0, sizeof(b));
		}
		if (w[0] == MAGIC && w[1] == o->oid && w[2] == p)
			for (i = 4; i < (long)(PG / 8); i++)
				if (w[i] != a[i] && w[i] != b[i])
					break;
		if ((h && (w[0] != MAGIC || w[1] != o->oid || w[2] != p ||
			   i < (long)(PG / 8))) || h < o->seen[p]) {
			atomic_fetch_add(&R->wrong, 1);
			err("WRONG: netmem page %" PRIu64 " (of another worker):"
			    " header %#" PRIx64 " oid %" PRIu64 " page %" PRIu64
			    " gen %" PRIu64 ", newest seen before %" PRIu64
			    ", first bad word %ld", p, w[0], w[1], w[2], h,
			    o->seen[p], i);
			return;
		}
		o->seen[p] = h;
		atomic_fetch_add(&R->verified, 1);
		return;
	}
	bad = check_page(w, o->oid, p, o->gen[p], me->anon || cfg.netmem,
			 &got);
	if (bad < 0) {
		atomic_fetch_add(&R->verified, 1);
		return;
	}
	atomic_fetch_add(&R->wrong, 1);
	err("WRONG: %s of object %" PRIu64 " (name %" PRIu64 ", %s) page %"
	    PRIu64 ": expected gen %" PRIu64 ", got header %#" PRIx64
	    " oid %" PRIu64 " page %" PRIu64 " gen %" PRIu64
	    ", first bad word %ld", how, o->oid, o->name,
	    me->anon ? "anonymous" : "paged", p, o->gen[p], w[0], w[1], w[2],
	    got, bad);
	o->unknown[p] = 1;	/* reported once */
}

/* Reads page p (user mode) and verifies it.  0, or 1 on SIGBUS. */
static int do_read(struct obj *o, uint64_t p)
{
	static uint64_t copy[PG / 8];
	sigjmp_buf env;
	uint32_t stop0 = atomic_load(&me->stop_seq);

	bus_env = &env;
	if (sigsetjmp(env, 1)) {
		bus_env = NULL;
		if (!o->unknown[p])
			judge_bus(o, p, stop0, "read");
		return 1;
	}
	barrier();
	memcpy(copy, (const void *)(o->map + p * PG), PG);
	barrier();
	bus_env = NULL;
	judge_data(o, p, copy, "read");
	atomic_fetch_add(&R->ops[OP_READ], 1);
	return 0;
}

static int do_write(struct obj *o, uint64_t p)
{
	static uint64_t page[PG / 8];
	sigjmp_buf env;
	uint32_t stop0 = atomic_load(&me->stop_seq);
	uint64_t g = o->gen[p] + 1;

	fill_page(page, o->oid, p, g);
	bus_env = &env;
	if (sigsetjmp(env, 1)) {
		bus_env = NULL;
		if (!o->unknown[p])
			judge_bus(o, p, stop0, "write");
		o->unknown[p] = 1;	/* maybe half written */
		return 1;
	}
	barrier();
	memcpy((void *)(o->map + p * PG), page, PG);
	barrier();
	bus_env = NULL;
	o->gen[p] = g;
	o->unknown[p] = 0;
	atomic_fetch_add(&R->written, 1);
	atomic_fetch_add(&R->ops[OP_WRITE], 1);
	return 0;
}

static int pipefd[2] = { -1, -1 };

static void drain(void)
{
	char b[PG];

	while (read(pipefd[0], b, sizeof(b)) > 0)
		;
}

/* The kernel reads the page (write(2) from the mapping into a pipe). */
static void do_kread(struct obj *o, uint64_t p)
{
	static uint64_t copy[PG / 8];
	uint32_t stop0 = atomic_load(&me->stop_seq);
	ssize_t n;

	drain();	/* a failed copy may leave part of a page behind */
	doing = "kernel-mode read";
	n = write(pipefd[1], (const void *)(o->map + p * PG), PG);
	doing = "worker loop";

	if (n < 0 && errno == EFAULT) {
		if (!o->unknown[p])
			judge_bus(o, p, stop0, "kernel-mode read");
		return;
	}
	if (n != PG) {
		int e = errno;	/* drain() ends in EAGAIN */

		drain();
		if (n >= 0 && !o->unknown[p])
			judge_bus(o, p, stop0, "kernel-mode read (short)");
		else if (n < 0)
			err("write(pipe, page): %s", strerror(e));
		return;
	}
	if (read(pipefd[0], copy, PG) != PG) {
		err("read(pipe): short");
		drain();
		return;
	}
	judge_data(o, p, copy, "kernel-mode read");
	atomic_fetch_add(&R->ops[OP_KREAD], 1);
}

/* The kernel writes the page (read(2) from a pipe into the mapping). */
static void do_kwrite(struct obj *o, uint64_t p)
{
	static uint64_t page[PG / 8];
	uint32_t stop0 = atomic_load(&me->stop_seq);
	uint64_t g = o->gen[p] + 1;
	ssize_t n;
	int avail = -1, e;

	fill_page(page, o->oid, p, g);
	drain();
	if (write(pipefd[1], page, PG) != PG) {
		err("write(pipe): %s", strerror(errno));
		drain();
		return;
	}
	ioctl(pipefd[0], FIONREAD, &avail);
	doing = "kernel-mode write";
	n = read(pipefd[0], (void *)(o->map + p * PG), PG);
	doing = "worker loop";
	if (n == PG) {
		o->gen[p] = g;
		o->unknown[p] = 0;
		atomic_fetch_add(&R->written, 1);
		atomic_fetch_add(&R->ops[OP_KWRITE], 1);
		return;
	}
	e = errno;	/* drain() ends in EAGAIN */
	drain();
	if (n < 0 && e != EFAULT) {
		err("read(pipe, page %" PRIu64 ") with %d bytes in the pipe: %s",
		    p, avail, strerror(e));
		return;
	}
	if (!o->unknown[p])
		judge_bus(o, p, stop0, "kernel-mode write");
	o->unknown[p] = 1;
}

/*
 * A child verifies some pages and writes others, then tells the parent
 * what it wrote (page, gen) through a pipe.  A page it could not write
 * comes back unknown.
 */
static void do_fork(struct obj *o)
{
	int pp[2];
	pid_t pid;
	uint64_t rec[2];
	int status;

	if (pipe(pp))
		return;
	doing = "fork";
	pid = fork();
	doing = "worker loop";
	if (pid < 0) {
		close(pp[0]);
		close(pp[1]);
		return;
	}
	if (pid == 0) {
		close(pp[0]);
		wr.s ^= 0x5555;
		for (int i = 0; i < 16; i++) {
			uint64_t p = rnd(&wr) % o->npages;

			if (rnd(&wr) & 1) {
				do_read(o, p);
				continue;
			}
			rec[0] = p;
			rec[1] = do_write(o, p) ? ~0ULL : o->gen[p];
			if (write(pp[1], rec, sizeof(rec)) != sizeof(rec))
				_exit(2);
		}
		_exit(0);
	}
	close(pp[1]);
	while (read(pp[0], rec, sizeof(rec)) == sizeof(rec)) {
		if (rec[1] == ~0ULL) {
			o->unknown[rec[0]] = 1;
		} else {
			o->gen[rec[0]] = rec[1];
			o->unknown[rec[0]] = 0;
		}
	}
	close(pp[0]);
	if (reap_by(pid, &status, now_ms() + 60000)) {
		err("forked child of worker %d stuck", me_idx);
		kill(pid, SIGKILL);
		if (reap_by(pid, &status, now_ms() + 60000))
			err("forked child of worker %d survives SIGKILL",
			    me_idx);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		err("forked child of worker %d: status %#x", me_idx, status);
	atomic_fetch_add(&R->ops[OP_FORK], 1);
}

static void do_mlock(struct obj *o)
{
	uint64_t p = rnd(&wr) % o->npages;
	uint64_t n = rnd_range(&wr, 1, 32);

	if (p + n > o->npages)
		n = o->npages - p;
	doing = "mlock/munlock";
	if (o->locked[p]) {
		munlock((void *)(o->map + p * PG), n * PG);
		memset(o->locked + p, 0, n);
	} else if (!mlock((void *)(o->map + p * PG), n * PG)) {
		memset(o->locked + p, 1, n);
	}
	n = 0;
	for (p = 0; p < o->npages; p++)
		n += o->locked[p];
	atomic_store(&me->nlocked, n);
	doing = "worker loop";
	atomic_fetch_add(&R->ops[OP_MLOCK], 1);
}

/* Every page once: the sweep after a pager loss or destroy, and at the end. */
static void sweep(struct obj *o)
{
	for (uint64_t p = 0; p < o->npages; p++) {
		atomic_store(&me->swept, p);
		do_read(o, p);
		if ((p & 63) == 0)
			beat();
	}
}

static void worker_main(int idx)
{
	struct obj o = { .npages = cfg.npages };
	int ret;

	me_idx = idx;
	me = &R->slot[idx];
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, me->anon ? "soak-anon" : "soak-paged");
	rng_init(&wr, idx);
	handlers();
	if (pipe2(pipefd, O_NONBLOCK) || fcntl(pipefd[1], F_SETFL, 0)) {
		err("worker %d: pipe: %s", idx, strerror(errno));
		_exit(1);
	}
	o.gen = calloc(o.npages, sizeof(*o.gen));
	o.unknown = calloc(o.npages, 1);
	o.locked = calloc(o.npages, 1);
	o.seen = calloc(o.npages, sizeof(*o.seen));
	o.held = mmap(NULL, o.npages * 8, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!o.gen || !o.unknown || !o.locked || !o.seen ||
	    o.held == MAP_FAILED) {
		err("worker %d: out of memory", idx);
		_exit(1);
	}
	ret = obj_create(&o);
	if (ret) {
		err("worker %d: object: %s", idx, strerror(-ret));
		_exit(1);
	}
	while (!atomic_load(&R->stop)) {
		uint64_t p = pick_page(&o);
		unsigned int c = rnd(&wr) % 100;
		static int swept;

		beat();
		if (me->netmem && !own(p) && ((c >= 40 && c < 85) || c >= 91))
			c = 0;	/* others' pages: read only */
		if (me->netmem) {
			/* A node lost: every page by the rules, once. */
			if (atomic_load(&me->state) != P_LIVE && !swept++)
				sweep(&o);
		} else if (atomic_load(&me->state) != P_LIVE) {
			/* Lost pager or destroyed: every page by the rules. */
			sweep(&o);
			obj_drop(&o);
			ret = obj_create(&o);
			if (ret) {
				err("worker %d: object: %s", idx,
				    strerror(-ret));
				_exit(1);
			}
			continue;
		}
		if (c < 40) {
			do_read(&o, p);
		} else if (c < 75) {
			do_write(&o, p);
		} else if (c < 85) {
			for (uint64_t i = 0; i < 16 && p + i < o.npages; i++)
				if (own(p + i) || rnd(&wr) % 4 == 0)
					do_read(&o, p + i);
		} else if (c < 91) {
			do_kread(&o, p);
		} else if (c < 97) {
			do_kwrite(&o, p);
		} else if (c < 98 && !me->netmem) {
			do_fork(&o);
		} else if (!cfg.no_mlock) {
			do_mlock(&o);
		}
	}
	sweep(&o);
	atomic_store(&me->done, 1);
	obj_drop(&o);
	_exit(0);
}

/* ---- chaos ----------------------------------------------------------- */

static struct rng cr;

static int pick_paged(void)
{
	int n = cfg.anon + cfg.paged, i = (int)(rnd(&cr) % n);

	for (int k = 0; k < n; k++, i = (i + 1) % n)
		if (!R->slot[i].anon && !R->slot[i].netmem &&
		    atomic_load(&R->slot[i].state) == P_LIVE &&
		    atomic_load(&R->slot[i].pager_pid) > 0)
			return i;
	return -1;
}

static int chaos_id;

static int stopped(void)
{
	return atomic_load(&R->stop);
}

/* Says what this chaos process does now, for a report if it hangs. */
static void chaos_doing(int op)
{
	atomic_store(&R->chaos_op[chaos_id], op);
}

/* Pager kills and SIGSTOP/SIGCONT of pagers and of workers. */
static void chaos_pagers(void)
{
	while (!stopped()) {
		int i = pick_paged(), c = (int)(rnd(&cr) % 10);
		struct slot *s;
		int pid;

		sleep_ms(rnd_range(&cr, 500, 4000));
		if (i < 0)
			continue;
		s = &R->slot[i];
		pid = atomic_load(&s->pager_pid);
		/*
		 * No pid (0: a pager being started; -1: none): kill() would
		 * signal the process group or every process, this one and
		 * the VM's watchdog included.
		 */
		if (pid <= 0)
			continue;
		chaos_doing(OP_PAGER_KILL + (c >= 3) + (c >= 8));
		if (c < 3 && !cfg.no_kill) {
			int live = P_LIVE;

			/*
			 * The state first: a SIGBUS after it is judged as
			 * one after the death.
			 */
			if (!atomic_compare_exchange_strong(&s->state, &live,
							    P_DEAD))
				continue;
			kill(pid, SIGKILL);
			atomic_fetch_add(&R->ops[OP_PAGER_KILL], 1);
		} else if (c < 8 && !cfg.no_stop) {
			int64_t ms = rnd_range(&cr, 100, cfg.timeout_ms * 3 / 2);

			atomic_fetch_add(&s->stop_seq, 1);
			kill(pid, SIGSTOP);
			while (ms > 0 && !stopped()) {
				sleep_ms(ms > 200 ? 200 : ms);
				ms -= 200;
			}
			kill(pid, SIGCONT);
			atomic_fetch_add(&s->stop_seq, 1);
			atomic_fetch_add(&R->ops[OP_PAGER_STOP], 1);
		} else {
			int w = (int)(rnd(&cr) % (cfg.anon + cfg.paged));
			int wp = atomic_load(&R->slot[w].pid);

			if (wp <= 0)	/* a dead worker's slot: see above */
				continue;
			kill(wp, SIGSTOP);
			sleep_ms(rnd_range(&cr, 10, 2000));
			kill(wp, SIGCONT);
			atomic_fetch_add(&R->ops[OP_WORKER_STOP], 1);
		}
	}
}

static char memcg[64];
static uint32_t swap_ids[8];	/* chaos_admin's own stores */
static int nswap;
static uint64_t po_limit, po_obj_limit;

static void write_file(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY);

	if (fd >= 0) {
		if (write(fd, v, strlen(v)) < 0 && cfg.verbose)
			fprintf(stderr, "# %s: %s\n", path, strerror(errno));
		close(fd);
	}
}

/* Swap stores, resident limits, memcg, pageout runs, object destroy. */
static void chaos_admin(void)
{
	const char *dir = getenv("MVM_DISK_DIR");
	int seq = 0;

	while (!stopped()) {
		int c = (int)(rnd(&cr) % 100);
		struct mvm_nlreply r;

		sleep_ms(rnd_range(&cr, 200, 1500));
		if (c < 15 && !cfg.no_swap && dir) {
			char path[128];
			uint32_t id;

			chaos_doing(OP_SWAP_ADD);
			if (nswap < 4 && (nswap == 0 || rnd(&cr) & 1)) {
				snprintf(path, sizeof(path), "%s/soak-%d.swap",
					 dir, seq++);
				unlink(path);
				if (!mvm_swap_add(path, rnd_range(&cr, 4, 32) << 20,
						  (int32_t)rnd_range(&cr, 1, 20),
						  &id)) {
					swap_ids[nswap++] = id;
					atomic_fetch_add(&R->ops[OP_SWAP_ADD], 1);
				}
			} else if (nswap > 0) {
				int k = (int)(rnd(&cr) % nswap);
				int ret;

				chaos_doing(OP_SWAP_REMOVE);
				ret = mvm_swap_remove(swap_ids[k]);

				if (!ret) {
					swap_ids[k] = swap_ids[--nswap];
					atomic_fetch_add(&R->ops[OP_SWAP_REMOVE], 1);
				} else {
					atomic_fetch_add(&R->ops[OP_SWAP_REFUSED], 1);
				}
			}
		} else if (c < 35) {
			struct mvm_nlattr a[] = {
				{ .type = MACHVM_A_PO_LIMIT,
				  .v = rnd_range(&cr, 256, 8192), .len = 8 },
				{ 0 },
			};
			if (!mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, a, &r))
				atomic_fetch_add(&R->ops[OP_LIMIT_GLOBAL], 1);
		} else if (c < 55) {
			int i = (int)(rnd(&cr) % (cfg.anon + cfg.paged));
			uint64_t name = atomic_load(&R->slot[i].name);
			struct mvm_nlattr a[] = {
				{ .type = MACHVM_A_OBJ_NAME, .v = name, .len = 8 },
				{ .type = MACHVM_A_OBJ_LIMIT,
				  .v = rnd(&cr) % 4 ? rnd_range(&cr, 16, cfg.npages) : 0,
				  .len = 8 },
				{ 0 },
			};
			if (name && !mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, a, &r))
				atomic_fetch_add(&R->ops[OP_LIMIT_OBJECT], 1);
		} else if (c < 70) {
			int i = (int)(rnd(&cr) % (cfg.anon + cfg.paged));
			uint64_t name = rnd(&cr) & 1 ?
				atomic_load(&R->slot[i].name) : 0;

			chaos_doing(OP_PAGEOUT_RUN);
			if (!mvm_pageout_run(rnd_range(&cr, 16, 1024), name, 1, &r))
				atomic_fetch_add(&R->ops[OP_PAGEOUT_RUN], 1);
		} else if (c < 85) {
			char path[128], v[32];

			if (cfg.no_memcg || !memcg[0])
				continue;
			snprintf(path, sizeof(path), "%s/memory.max", memcg);
			snprintf(v, sizeof(v), "%" PRIu64,
				 rnd_range(&cr, 8, 64) << 20);
			write_file(path, v);
			atomic_fetch_add(&R->ops[OP_MEMCG], 1);
		} else if (c < 90 && !cfg.no_destroy) {
			int i = pick_paged(), live = P_LIVE;
			char name[32];
			pid_t pid;
			int status;

			if (i < 0)
				continue;
			snprintf(name, sizeof(name), "%" PRIu64,
				 atomic_load(&R->slot[i].name));
			if (!atomic_compare_exchange_strong(&R->slot[i].state,
							    &live, P_DESTROYED))
				continue;
			chaos_doing(OP_DESTROY);
			pid = fork();
			if (pid == 0) {
				int null = open("/dev/null", O_WRONLY);

				dup2(null, 1);
				dup2(null, 2);
				execlp("machvmctl", "machvmctl", "object",
				       "destroy", name, (char *)NULL);
				_exit(127);
			}
			waitpid(pid, &status, 0);
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				atomic_fetch_add(&R->ops[OP_DESTROY], 1);
			/* 5: no such object: the worker moved on meanwhile. */
			else if (!WIFEXITED(status) || WEXITSTATUS(status) != 5)
				err("machvmctl object destroy %s: status %#x",
				    name, status);
		}
	}
}

/* Bursts of SIGUSR1 at every worker, some while they fault in the kernel. */
static void chaos_storm(void)
{
	int n = cfg.anon + cfg.paged;

	while (!stopped()) {
		int64_t end;

		sleep_ms(rnd_range(&cr, 500, 3000));
		end = now_ms() + (int64_t)rnd_range(&cr, 300, 3000);
		atomic_fetch_add(&R->ops[OP_STORM], 1);
		while (now_ms() < end && !stopped()) {
			for (int i = 0; i < n; i++) {
				int pid = atomic_load(&R->slot[i].pid);

				if (pid > 0 && !kill(pid, SIGUSR1))
					atomic_fetch_add(&R->ops[OP_SIGNALS], 1);
			}
			sleep_ms(1);
		}
	}
}

static pid_t spawn_chaos(void (*fn)(void), int stream)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		chaos_id = stream;
		rng_init(&cr, 100 + stream);
		fn();
		_exit(0);
	}
	return pid;
}

/* ---- setup, judging, the table --------------------------------------- */

static void setup_memcg(void)
{
	const char *cg = "/sys/fs/cgroup/machvm-soak";

	if (cfg.no_memcg)
		return;
	mkdir("/sys/fs/cgroup", 0755);
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) &&
	    mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL))
		return;
	write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	if (mkdir(cg, 0755) && errno != EEXIST)
		return;
	snprintf(memcg, sizeof(memcg), "%s", cg);
}

static uint64_t stat0[MACHVM_A_STAT_MAX + 1];

static void read_stats(uint64_t *out)
{
	struct mvm_nlreply r;

	if (!mvm_nl(MACHVM_GENL_CMD_GET_STATS, NULL, &r))
		memcpy(out, r.stat, sizeof(r.stat));
}

static const char *const kbad[] = {
	"Oops", "WARNING:", "BUG:", "general protection fault",
	"blocked for more than", "Kernel panic", "UBSAN", "KASAN",
	"soft lockup", "rcu_sched self-detected stall", "rcu: INFO",
};

/* Bad kernel messages since our mark: counted, hung tasks apart. */
static void kernel_log(const char *mark, int *bad, int *hung)
{
	int len = klogctl(10, NULL, 0);	/* SYSLOG_ACTION_SIZE_BUFFER */
	char *buf, *p, *line;

	*bad = *hung = 0;
	if (len <= 0)
		return;
	buf = malloc(len + 1);
	len = klogctl(3, buf, len);	/* SYSLOG_ACTION_READ_ALL */
	if (len <= 0)
		return;
	buf[len] = 0;
	p = strstr(buf, mark);	/* gone if the log wrapped: all of it */
	for (line = strtok(p ? p : buf, "\n"); line; line = strtok(NULL, "\n")) {
		for (size_t i = 0; i < ARRAY_SIZE(kbad); i++) {
			if (!strstr(line, kbad[i]))
				continue;
			if (i == 4)
				(*hung)++;
			else
				(*bad)++;
			err("kernel: %s", line);
			break;
		}
	}
	free(buf);
}

/*
 * A worker that overran the final phase: where it is (its state, wchan
 * and kernel stack) and how far its sweep got, before it is killed.
 */
static void dump_proc(const char *tag, int pid)
{
	static const char *const what[] = { "stat", "wchan", "stack" };
	char path[64], buf[2048];

	for (size_t k = 0; k < ARRAY_SIZE(what); k++) {
		int fd;
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/%s", pid, what[k]);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
			fprintf(stderr, "# soak: %s %s: %s\n", tag, what[k], l);
	}
}

/* The pageout thread's pid (by its name), or 0. */
static int pageoutd_pid(void)
{
	char path[64], comm[32];

	for (int pid = 2; pid < 4096; pid++) {
		int fd;
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n > 0 && !strncmp(comm, "machvm-pageoutd", 15))
			return pid;
	}
	return 0;
}

static void dump_task(int i, int pid)
{
	char tag[32];
	struct mvm_nlreply r;
	uint64_t glimit = 0, res = 0, limit = 0;
	int po;

	/* Where they are first: the netlink queries below may block too. */
	snprintf(tag, sizeof(tag), "worker %d", i);
	dump_proc(tag, pid);
	po = pageoutd_pid();
	if (po)
		dump_proc("machvm-pageoutd", po);

	if (!mvm_nl(MACHVM_GENL_CMD_GET_PAGEOUT, NULL, &r))
		glimit = r.a[MACHVM_A_PO_LIMIT];
	if (!mvm_object_info(atomic_load(&R->slot[i].name), &r)) {
		res = r.obj[MACHVM_OBJ_A_RESIDENT];
		limit = r.obj[MACHVM_OBJ_A_LIMIT];
	}
	fprintf(stderr, "# soak: worker %d (pid %d): final sweep at page %"
		PRIu64 " of %" PRIu64 "; %" PRIu64 " pages mlocked, %" PRIu64
		" resident, object limit %" PRIu64 ", global limit %" PRIu64
		"\n", i, pid, atomic_load(&R->slot[i].swept),
		atomic_load(&R->slot[i].npages),
		atomic_load(&R->slot[i].nlocked), res, limit, glimit);
}

/*
 * Kill worker @i and reap it, a minute at most: a task SIGKILL cannot end
 * is a kernel hang, reported (with where it is) and left behind rather
 * than hanging the soak.  0 if reaped.
 */
static int kill_and_reap(int i, int pid, int *status)
{
	char tag[32];

	kill(pid, SIGKILL);
	if (reap_by(pid, status, now_ms() + 60000)) {
		snprintf(tag, sizeof(tag), "unkillable worker %d", i);
		dump_proc(tag, pid);
		err("worker %d (pid %d) survives SIGKILL: hung in the kernel",
		    i, pid);
		return -1;
	}
	return 0;
}

static const char manual[] =
"NAME\n"
"       machvm-soak - every machvm operation at once, at random; no page lost\n"
"\n"
"SYNOPSIS\n"
"       machvm-soak [--seconds N] [--seed S] [--anon N] [--paged N]\n"
"                   [--pages N] [--timeout-ms MS] [--tap] [--no-OP]...\n"
"       machvm-soak --netmem [OPTIONS]     (on both guests of a pair)\n"
"\n"
"DESCRIPTION\n"
"       Runs for N seconds (default 120), then prints a table and exits 0 only\n"
"       if no page was lost or wrong, no worker hung or failed to report and\n"
"       the kernel logged no oops, WARN, BUG or hung task.  Needs root and the\n"
"       machvm module; uses $MVM_DISK_DIR (the VM's ext4 disk) for swap files\n"
"       and $MVM_SWAP_DEV (a raw disk) as the base swap store when set.\n"
"\n"
"       Workers, each with an object of --pages pages (default 1024):\n"
"       --anon N anonymous objects (default 3) and --paged N objects served by\n"
"       a pager child of the soak (default 3).  Every page holds a generation\n"
"       (the whole page derived from seed, object, page and generation); a\n"
"       worker knows the generation it last wrote to each page and checks the\n"
"       whole page on every read: reads, writes, runs of reads, reads and\n"
"       writes made by the kernel (write(2)/read(2) of the mapping through a\n"
"       pipe, during signal storms), forks (the child checks and writes, the\n"
"       parent learns what), mlock/munlock.  The pager records the generation\n"
"       it holds of each page (supplied, or taken back by data_return, which\n"
"       it verifies and refuses one time in ten).\n"
"\n"
"       At the same time, at random: pagers killed (the worker checks every\n"
"       page, then starts over on a new object with a new pager), pagers and\n"
"       workers stopped and continued, swap files added and removed, the\n"
"       global and the objects' resident limits changed, memory.max of the\n"
"       workers' memory cgroup changed, forced pageout runs, `machvmctl object\n"
"       destroy`, and storms of SIGUSR1 at every worker.\n"
"\n"
"       A fault may end in SIGBUS (EFAULT for the kernel's accesses) only if:\n"
"       the object was destroyed; its pager was killed and held the page's\n"
"       latest generation (the kernel need not keep a page its pager has);\n"
"       the pager was stopped during the fault (timeout); with --netmem, a\n"
"       node was lost (then a page read must still be right: never older than\n"
"       one seen before).  Anything else is a lost page; a page with other\n"
"       contents than its generation is a wrong page.  Both are reported\n"
"       with object, page, expected and found generation.\n"
"\n"
"OPTIONS\n"
"       --seconds N      how long (default 120)\n"
"       --seed S         the random seed (default: from the clock; printed)\n"
"       --anon N, --paged N, --pages N   workers and their object size\n"
"       --timeout-ms MS  the paged objects' fault timeout (default 20000)\n"
"       --tap            Kselftest TAP output (one case, soak)\n"
"       --no-kill, --no-stop, --no-destroy, --no-swap, --no-memcg,\n"
"       --no-storm, --no-mlock   leave that operation out\n"
"       --netmem         pair mode (scripts/vm.sh soak): on each guest of\n"
"                        a pair (MVM_NODE, MVM_SELF_IP, MVM_PEER_IP), a\n"
"                        netmem-server of one shared object and --paged\n"
"                        workers on it instead of paged objects; each\n"
"                        writes its own pages and reads the others' too\n"
"                        (torn by a concurrent write is fine, older than\n"
"                        seen is not).  Guest a's seed is used; between 30\n"
"                        and 60% of the run guest b's server is killed\n"
"                        (node loss).  No pager kills, stops or destroys.\n"
"       -v               more output\n"
"\n"
"EXIT STATUS\n"
"       0 clean, 1 a lost or wrong page, a hung or silent worker, a kernel\n"
"       problem, 2 usage.\n"
"\n"
"EXAMPLE\n"
"       machvm-soak --seconds 1200 --seed 42\n";

static void print_manual(FILE *f)
{
	fputs(manual, f);
}

static int parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seconds", 1, 0, 's' }, { "seed", 1, 0, 'S' },
		{ "anon", 1, 0, 'a' }, { "paged", 1, 0, 'p' },
		{ "pages", 1, 0, 'n' }, { "timeout-ms", 1, 0, 't' },
		{ "tap", 0, 0, 'T' }, { "help", 0, 0, 'h' },
		{ "no-kill", 0, &cfg.no_kill, 1 },
		{ "no-stop", 0, &cfg.no_stop, 1 },
		{ "no-destroy", 0, &cfg.no_destroy, 1 },
		{ "no-swap", 0, &cfg.no_swap, 1 },
		{ "no-memcg", 0, &cfg.no_memcg, 1 },
		{ "no-storm", 0, &cfg.no_storm, 1 },
		{ "no-mlock", 0, &cfg.no_mlock, 1 },
		{ "netmem", 0, &cfg.netmem, 1 },
		{ 0 },
	};
	int c;

	cfg.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	while ((c = getopt_long(argc, argv, "hv", lo, NULL)) != -1) {
		switch (c) {
		case 0:
			break;
		case 's':
			cfg.seconds = atoi(optarg);
			break;
		case 'S':
			cfg.seed = strtoull(optarg, NULL, 0);
			break;
		case 'a':
			cfg.anon = atoi(optarg);
			break;
		case 'p':
			cfg.paged = atoi(optarg);
			break;
		case 'n':
			cfg.npages = atoi(optarg);
			break;
		case 't':
			cfg.timeout_ms = atoi(optarg);
			break;
		case 'T':
			cfg.tap = 1;
			break;
		case 'v':
			cfg.verbose = 1;
			break;
		case 'h':
			print_manual(stdout);
			exit(0);
		default:
			print_manual(stderr);
			exit(2);
		}
	}
	if (optind != argc || cfg.seconds < 1 || cfg.anon < 0 ||
	    cfg.paged < 0 || cfg.anon + cfg.paged < 1 ||
	    cfg.anon + cfg.paged > MAX_WORKERS || cfg.npages < 16 ||
	    cfg.timeout_ms < 100 || (cfg.netmem && cfg.paged < 1)) {
		fprintf(stderr, "machvm-soak: bad arguments (--help)\n");
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int n, bad = 0, hung = 0, kbad_n = 0, silent = 0;
	pid_t chaos[3] = { 0 };
	uint64_t st[MACHVM_A_STAT_MAX + 1] = { 0 };
	char mark[64];
	int64_t start, end, loss_ms = 0;
	struct mvm_pair pr;
	struct mvm_nm nm = { .fd = -1 };
	int ctl = -1, lost = 0;

	if (parse(argc, argv))
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	R = mmap(NULL, sizeof(*R), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (R == MAP_FAILED)
		return 1;
	if (cfg.tap)
		printf("TAP version 13\n1..1\n");
	if (cfg.netmem) {
		/* Meet the other guest; a's seed and loss time for both. */
		char peers[64], size[32];
		uint64_t deal[2];
		int ret;

		if (mvm_pair_env(&pr)) {
			fprintf(stderr, "machvm-soak: --netmem: not a pair"
				" guest (MVM_NODE)\n");
			return 2;
		}
		cfg.node = pr.node == 'a' ? 0 : 1;
		cfg.no_kill = 1;
		cfg.no_stop = 1;
		cfg.no_destroy = 1;
		/* Generous: a starved TCG guest boots minutes late. */
		ctl = mvm_pair_connect(&pr, 7390, 900000);
		deal[0] = cfg.seed;
		deal[1] = cfg.seconds * 10LL * (30 + cfg.seed % 31);
		ret = ctl < 0 ? ctl : cfg.node == 0 ?
			mvm_write_full(ctl, deal, sizeof(deal)) :
			mvm_read_full(ctl, deal, sizeof(deal));
		cfg.seed = deal[0];
		loss_ms = (int64_t)deal[1];
		snprintf(peers, sizeof(peers), "10.0.2.1:7392,10.0.2.2:7392");
		snprintf(size, sizeof(size), "%dK", cfg.npages * 4);
		if (!ret)
			ret = mvm_nm_spawn(&nm, cfg.node ? "soakb" : "soaka",
					   cfg.node, peers, size,
					   "--peer-timeout 60000"
					   " --connect-timeout 600000");
		if (!ret)
			ret = mvm_nm_attach(&nm, 660000);
		if (!ret)
			ret = mvm_pair_barrier(ctl);
		if (ret) {
			printf("# soak: pair set-up failed: %s\n", strerror(-ret));
			if (nm.pid > 0)
				mvm_nm_dump(&nm);
			if (cfg.tap)
				printf("not ok 1 soak\n# Totals: pass:0 fail:1"
				       " xfail:0 xpass:0 skip:0 error:0\n");
			return 1;
		}
		cfg.netmem_fd = nm.fd;
		printf("# soak: netmem node %c, node b lost at %" PRId64
		       " s\n", pr.node, loss_ms / 1000);
	}
	printf("# soak: seed %" PRIu64 " (replay: --seed %" PRIu64 "), %d s, "
	       "%d anonymous + %d paged workers of %d pages\n", cfg.seed,
	       cfg.seed, cfg.seconds, cfg.anon, cfg.paged, cfg.npages);
	snprintf(mark, sizeof(mark), "machvm-soak: start %" PRIu64, cfg.seed);
	write_file("/dev/kmsg", mark);
	read_stats(stat0);
	{
		struct mvm_nlreply r;

		if (!mvm_nl(MACHVM_GENL_CMD_GET_PAGEOUT, NULL, &r)) {
			po_limit = r.a[MACHVM_A_PO_LIMIT];
			po_obj_limit = r.a[MACHVM_A_PO_OBJ_LIMIT];
		}
	}
	/* Base store: the raw disk, or a file; never removed while we run. */
	{
		const char *dev = getenv("MVM_SWAP_DEV"), *dir = getenv("MVM_DISK_DIR");
		char path[128];
		uint32_t id;
		int ret = -ENOENT;

		if (dev && *dev)
			ret = mvm_swap_add(dev, 0, 0, &id);
		if (ret && dir) {
			snprintf(path, sizeof(path), "%s/soak-base.swap", dir);
			ret = mvm_swap_add(path, 256 << 20, 0, &id);
		}
		if (ret)
			printf("# soak: no base swap store (%s); anonymous pages"
			       " stay resident unless a swap file is added\n",
			       strerror(-ret));
		else
			printf("# soak: base swap store %u\n", id);
	}
	setup_memcg();
	n = cfg.anon + cfg.paged;
	start = now_ms();
	for (int i = 0; i < n; i++) {
		pid_t pid;

		R->slot[i].anon = i < cfg.anon;
		R->slot[i].netmem = cfg.netmem && i >= cfg.anon;
		atomic_store(&R->slot[i].beat_ms, now_ms());
		pid = fork();
		if (pid == 0)
			worker_main(i);
		atomic_store(&R->slot[i].pid, pid);
		if (memcg[0] && i % 2 == 0) {
			char path[96], v[16];

			snprintf(path, sizeof(path), "%s/cgroup.procs", memcg);
			snprintf(v, sizeof(v), "%d", pid);
			write_file(path, v);
		}
	}
	if (!cfg.no_kill || !cfg.no_stop)
		chaos[0] = spawn_chaos(chaos_pagers, 0);
	/* The admin chaos keeps the swap ids: it removes them at the end. */
	chaos[1] = spawn_chaos(chaos_admin, 1);
	if (!cfg.no_storm)
		chaos[2] = spawn_chaos(chaos_storm, 2);
	end = start + cfg.seconds * 1000LL;
	while (now_ms() < end) {
		int64_t t = now_ms();

		sleep_ms(1000);
		if (cfg.netmem && !lost) {
			/*
			 * Node loss: b asks, a marks its workers (a SIGBUS
			 * from now on is judged as after the loss) and
			 * answers, b marks its own and kills its server.
			 */
			struct pollfd pf = { .fd = ctl, .events = POLLIN };
			char k = 'K';

			if (cfg.node == 1 && now_ms() - start >= loss_ms) {
				if (mvm_write_full(ctl, &k, 1) ||
				    mvm_read_full(ctl, &k, 1) || k != 'k')
					err("pair: node a did not answer the"
					    " loss");
				lost = 1;
			} else if (cfg.node == 0 && poll(&pf, 1, 0) == 1) {
				if (mvm_read_full(ctl, &k, 1) || k != 'K')
					err("pair: node b: bad loss message");
				lost = 1;
			}
			if (lost) {
				for (int i = 0; i < n; i++)
					if (R->slot[i].netmem)
						atomic_store(&R->slot[i].state,
							     P_DEAD);
				k = 'k';
				if (cfg.node == 0)
					mvm_write_full(ctl, &k, 1);
				else
					kill(nm.pid, SIGKILL);
				atomic_fetch_add(&R->ops[OP_NODE_LOSS], 1);
				printf("# soak: %" PRId64 " s: node b lost\n",
				       (now_ms() - start) / 1000);
			}
		}
		for (int i = 0; i < n; i++) {
			int64_t b = atomic_load(&R->slot[i].beat_ms);
			int pid = R->slot[i].pid, status;

			/* Three timeouts and a stopped pager's worth. */
			if (t - b > 5LL * cfg.timeout_ms + 60000 &&
			    !R->slot[i].done) {
				err("worker %d (pid %d) silent for %" PRId64
				    " ms: hung", i, pid, t - b);
				hung++;
				atomic_store(&R->slot[i].beat_ms, t);
			}
			if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
				err("worker %d died: status %#x", i, status);
				R->slot[i].pid = -1;
				silent++;
			}
		}
		if ((t - start) / 30000 != (now_ms() - start) / 30000)
			printf("# soak: %" PRId64 " s: %" PRIu64 " pages verified,"
			       " %" PRIu64 " written, %d errors\n",
			       (now_ms() - start) / 1000, atomic_load(&R->verified),
			       atomic_load(&R->written), atomic_load(&R->nerr));
	}
	atomic_store(&R->stop, 1);
	end = now_ms() + 120000;
	for (int k = 0; k < 3; k++) {
		if (chaos[k] <= 0 || !reap_by(chaos[k], NULL, end))
			continue;
		err("chaos process %d stuck in: %s", k,
		    op_names[atomic_load(&R->chaos_op[k])]);
		hung++;
		kill(chaos[k], SIGKILL);
		if (reap_by(chaos[k], NULL, now_ms() + 60000))
			err("chaos process %d survives SIGKILL", k);
	}
	/* Every pager running again (a chaos stop may have been cut short). */
	for (int i = 0; i < n; i++)
		if (R->slot[i].pager_pid > 0)
			kill(R->slot[i].pager_pid, SIGCONT);
	/* The workers' final sweep: every page once. */
	end = now_ms() + 10LL * cfg.timeout_ms + 120000;
	fprintf(stderr, "# soak: %" PRId64 " s: final sweep, %" PRId64
		" s at most\n", (now_ms() - start) / 1000,
		(end - now_ms()) / 1000);
	for (int i = 0; i < n; i++) {
		int pid = R->slot[i].pid, status = 0;

		if (pid <= 0)
			continue;
		kill(pid, SIGCONT);
		if (reap_by(pid, &status, end)) {
			dump_task(i, pid);
			err("worker %d (pid %d) never reported: killed", i, pid);
			if (kill_and_reap(i, pid, &status))
				hung++;
			silent++;
		}
		if (!R->slot[i].done) {
			if (WIFEXITED(status) || WIFSIGNALED(status))
				err("worker %d ended without its final sweep"
				    " (status %#x)", i, status);
			silent++;
		}
	}
	if (cfg.netmem) {
		/* Neither stops its server while the other may use it. */
		if (mvm_pair_barrier(ctl))
			err("pair: the other guest never finished");
		if (cfg.verbose)
			mvm_nm_dump(&nm);
		mvm_nm_stop(&nm, SIGTERM);
		close(ctl);
	}
	/* Put things back: swap stores, limits, memcg. */
	for (uint32_t id = 1; id < 1024; id++) {
		struct mvm_nlreply r;
		const char *dev = getenv("MVM_SWAP_DEV");

		if (mvm_swap_info(id, &r))
			continue;
		if (strstr(r.path, "/soak-") || (dev && !strcmp(r.path, dev))) {
			int ret = mvm_swap_remove(id);

			if (ret)
				err("swap remove %u (%s) at the end: %s", id,
				    r.path, strerror(-ret));
		}
	}
	if (po_limit) {
		struct mvm_nlattr a[] = {
			{ .type = MACHVM_A_PO_LIMIT, .v = po_limit, .len = 8 },
			{ .type = MACHVM_A_PO_OBJ_LIMIT, .v = po_obj_limit, .len = 8 },
			{ 0 },
		};
		struct mvm_nlreply r;

		mvm_nl(MACHVM_GENL_CMD_SET_PAGEOUT, a, &r);
	}
	if (memcg[0])
		rmdir(memcg);
	read_stats(st);
	kernel_log(mark, &kbad_n, &hung);

	printf("# soak| %-40s %12s\n", "operation", "count");
	for (int k = 0; k < OP_MAX; k++)
		printf("# soak| %-40s %12" PRIu64 "\n", op_names[k],
		       atomic_load(&R->ops[k]));
	printf("# soak| %-40s %12" PRIu64 "\n", "pages verified",
	       atomic_load(&R->verified));
	printf("# soak| %-40s %12" PRIu64 "\n", "pages written",
	       atomic_load(&R->written));
	printf("# soak| %-40s %12" PRIu64 "\n", "pageouts (kernel)",
	       st[MACHVM_A_STAT_PAGEOUTS] - stat0[MACHVM_A_STAT_PAGEOUTS]);
	printf("# soak| %-40s %12" PRIu64 "\n", "pageins from swap (kernel)",
	       st[MACHVM_A_STAT_PAGEINS] - stat0[MACHVM_A_STAT_PAGEINS]);
	printf("# soak| %-40s %12" PRIu64 "\n", "pages returned to pagers",
	       st[MACHVM_A_STAT_RETURNED] - stat0[MACHVM_A_STAT_RETURNED]);
	printf("# soak| %-40s %12" PRIu64 "\n", "pages taken by default pager",
	       st[MACHVM_A_STAT_DEFAULT_TAKEN] - stat0[MACHVM_A_STAT_DEFAULT_TAKEN]);
	printf("# soak| %-40s %12" PRIu64 "\n", "swap writes",
	       st[MACHVM_A_STAT_SWAP_WRITES] - stat0[MACHVM_A_STAT_SWAP_WRITES]);
	printf("# soak| %-40s %12" PRIu64 "\n", "faults ended by SIGBUS (kernel)",
	       st[MACHVM_A_STAT_SIGBUS] - stat0[MACHVM_A_STAT_SIGBUS]);
	for (int w = 0; w < W_MAX; w++)
		printf("# soak| SIGBUS/EFAULT: %-25s %12" PRIu64 "\n",
		       why_names[w], atomic_load(&R->why[w]));
	printf("# soak| %-40s %12" PRIu64 "\n", "LOST pages",
	       atomic_load(&R->lost));
	printf("# soak| %-40s %12" PRIu64 "\n", "WRONG pages",
	       atomic_load(&R->wrong));
	printf("# soak| %-40s %12" PRIu64 "\n", "wrong pages returned to pagers",
	       atomic_load(&R->bad_return));
	printf("# soak| %-40s %12d\n", "hung tasks or workers", hung);
	printf("# soak| %-40s %12d\n", "workers that never reported", silent);
	printf("# soak| %-40s %12d\n", "kernel oops/WARN/BUG", kbad_n);
	bad = atomic_load(&R->lost) || atomic_load(&R->wrong) ||
	      atomic_load(&R->bad_return) || hung || silent || kbad_n ||
	      atomic_load(&R->nerr);
	for (int i = 0; i < atomic_load(&R->nerr) && i < MAX_ERRS; i++)
		printf("# soak| error: %s\n", R->err[i]);
	printf("# soak| %s (seed %" PRIu64 ", %" PRId64 " s)\n",
	       bad ? "FAILED" : "PASSED", cfg.seed, (now_ms() - start) / 1000);
	if (cfg.tap) {
		printf("%s 1 soak\n", bad ? "not ok" : "ok");
		printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 "
		       "error:0\n", !bad, bad);
	}
	return bad;
}
