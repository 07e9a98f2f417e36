// SPDX-License-Identifier: GPL-2.0
/*
 * Pageout: a second-chance clock over every resident machvm page, the
 * data_return protocol with pagers, lock_request, and the default pager's
 * side of eviction (writing pages to swap slots).
 *
 * Every tracked page has a few bits of state (struct mvm_pgbits), and
 * every object with tracked pages is on the pageout clock (mvm_clock).
 * The kthread machvm-pageoutd visits the objects in turn and sweeps each
 * one's pages in index order from where its hand stopped last, as a
 * clock: a page whose reference bit is set loses the bit and is unmapped
 * (its next touch is a soft fault that sets the bit again: the reference
 * bit is emulated, Linux does not export the page-table walk); an
 * unreferenced page is evicted, in batches of neighbours:
 *
 *  - clean, and a copy exists (its pager's, or a swap slot, or it is an
 *    anonymous page never written, i.e. still zero): dropped;
 *  - dirty or precious, its pager alive: DATA_RETURN; the page stays, on
 *    mvm_returning, until the pager takes it (freed), refuses it, does not
 *    answer in time, or dies (then the default pager writes it to swap:
 *    Mach's double paging);
 *  - otherwise written to a swap slot, then dropped.
 *
 * Eviction holds the object's page_mutex (fault-path swap-in and zero-fill
 * hold it too; the swap write itself runs without it, see mvm_wb_write())
 * and the folio lock from the unmap to the removal: nothing can map the
 * page meanwhile, and a page with references beyond the page cache's
 * (pinned, GUP, in flight) is not removed; it simply stays.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/freezer.h>
#include <linux/highmem.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/percpu_counter.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/swap.h>
#include <linux/uaccess.h>
#include "fault.h"
#include "object.h"
#include "pageout.h"
#include "pager.h"
#include "swap.h"
#include "compat/compat.h"

#define MVM_MAX_LIMIT	BIT_ULL(40)	/* pages; keeps the arithmetic sane */

/*
 * Pageout state of resident pages, 64 (BITS_PER_LONG) to a struct: word
 * w[MVM_PG_x] holds flag MVM_PG_x of pages base..base + 63, where base is
 * the struct's obj->pages key times 64.  A page is tracked while
 * MVM_PG_TRACKED is set: from its insertion in the object's page cache to
 * its removal (and, after a swap-in whose read failed, until
 * mvm_swapin_read() untracks it or mvm_page_track() takes it for the
 * page's next insertion).  Bits change with atomic bitops; TRACKED,
 * RETURNING, PRECIOUS, KEEP and WLOCK only under obj->page_mutex, REF
 * also without it (faults set it, passes clear it), and a page's bits
 * other than REF are clear while it is untracked.  Allocated by the
 * first tracked page of its 64 and freed, after an RCU grace period, with
 * the last (both under page_mutex): lockless readers (faults) look it up
 * under rcu_read_lock().  Holds no references: the object untracks all
 * its pages (mvm_pages_release()) before it goes.
 *
 * This is the whole per-page cost of pageout: about one byte per
 * resident page where pages are dense, and the eviction order comes from
 * a clock over each object's indexes (mvm_clock_scan()), not from a list
 * node per page.
 */
struct mvm_pgbits {
	unsigned long w[MVM_PG_NR];
	struct rcu_head rcu;
};

#define MVM_PGB_SHIFT	ilog2(BITS_PER_LONG)
#define MVM_PGB_MASK	(BITS_PER_LONG - 1)

/*
 * A page under DATA_RETURN (MVM_PG_RETURNING): in obj->rets under
 * page_mutex and on mvm_returning under mvm_lru_lock, from
 * mvm_return_start_run() to mvm_return_end(), which frees it.  Only pages
 * on their way back to a pager have one.
 */
struct mvm_ret {
	struct list_head lru;	/* mvm_returning; mvm_lru_lock */
	struct mvm_object *obj;	/* owner; no reference (see above) */
	pgoff_t index;		/* constant */
	unsigned long deadline;	/* answer due (jiffies); constant */
	u64 seq;		/* of its DATA_RETURN; page_mutex */
};

static struct kmem_cache *mvm_pgbits_cache;

static unsigned long resident_limit;
module_param(resident_limit, ulong, 0444);
MODULE_PARM_DESC(resident_limit,
		 "Global resident-page limit at load (0: half of RAM)");
static unsigned long object_limit;
module_param(object_limit, ulong, 0444);
MODULE_PARM_DESC(object_limit,
		 "Default per-object resident limit in pages (0: none)");
static unsigned int high_pct = 95;
module_param(high_pct, uint, 0444);
MODULE_PARM_DESC(high_pct, "Pageout starts above this % of the limit");
static unsigned int low_pct = 85;
module_param(low_pct, uint, 0444);
MODULE_PARM_DESC(low_pct, "Pageout stops at this % of the limit");
static unsigned int scan_batch = 64;
module_param(scan_batch, uint, 0444);
MODULE_PARM_DESC(scan_batch, "Pages scanned per step");
static unsigned int interval_ms = 1000;
module_param(interval_ms, uint, 0444);
MODULE_PARM_DESC(interval_ms, "Period of the idle scan, milliseconds");

/*
 * Run-time tunables; written under mvm_tun_lock (innermost), read with
 * READ_ONCE.
 */
static DEFINE_SPINLOCK(mvm_tun_lock);
static struct mvm_tunables mvm_tun;

/*
 * mvm_lru_lock protects mvm_clock (the objects with tracked pages, in the
 * order the pageout clock visits them: each visit moves one to the tail),
 * mvm_nr_clocked, mvm_returning (every struct mvm_ret) and
 * mvm_nr_returning.  Taken when an object gets its first page and when it
 * goes, when a DATA_RETURN starts and ends, and by passes; never per
 * fault.  Innermost.
 */
static DEFINE_SPINLOCK(mvm_lru_lock);
static LIST_HEAD(mvm_clock);
static LIST_HEAD(mvm_returning);
static unsigned long mvm_nr_clocked, mvm_nr_returning;

/*
 * Tracked pages of every object.  Per-CPU: every fault that adds a page
 * counts it, and a shared counter would be a cache line every CPU writes.
 * Reads near a limit add the CPUs' parts up (percpu_counter_compare()).
 */
static struct percpu_counter mvm_nr_resident;
static atomic_t mvm_nr_limited = ATOMIC_INIT(0);	/* objects with a limit */

/*
 * One pass at a time: the daemon, a netlink RUN, a shrinker, a reclaim.
 * mvm_pass_owner is the task holding it (written under it, read by
 * reclaim in the same task only: an allocation inside a pass must never
 * wait for the next pass).
 */
static DEFINE_MUTEX(mvm_pageout_mutex);
static struct task_struct *mvm_pass_owner;
static struct task_struct *mvm_pageoutd;
static DECLARE_WAIT_QUEUE_HEAD(mvm_pageout_wq);
static DECLARE_WAIT_QUEUE_HEAD(mvm_room_wq);	/* faults waiting for room */
static bool mvm_kicked;		/* work for the daemon */
static bool mvm_stuck;		/* over a limit, nothing can go */
/*
 * The daemon's passes begun and ended: how a fault waiting for room learns
 * that a whole pass has gone by since it began to wait (mvm_throttle).
 * Written under mvm_pageout_mutex.
 */
static unsigned long mvm_passes_begun, mvm_passes_done;
/*
 * Faults waiting in mvm_mem_wait() for free memory to be back above the
 * high watermarks.  While there are any, the daemon's passes free up to
 * the high marks, not only when memory is below the low ones: a waiter
 * between the two would otherwise wait out its whole second.
 */
static atomic_t mvm_mem_waiters = ATOMIC_INIT(0);
static atomic_long_t mvm_shrink_want = ATOMIC_LONG_INIT(0);
/*
 * Reclaim found only referenced pages last time: ignore the bits until a
 * pass frees what was asked (Linux reclaims referenced pages too when
 * pressure stays).
 */
static bool mvm_shrink_force;
static struct shrinker *mvm_shrinker;

/*
 * Direct reclaim waiting for the pageout thread (see mvm_shrink_scan()).
 * While mvm_reclaim_waiters is non-zero, every page that leaves a cache
 * adds one to mvm_reclaim_credit, and waiters take their share of it out:
 * a page freed is reported to reclaim once, by the one waiter that took
 * it.  Waiters sleep on mvm_room_wq, which every freed page wakes.
 * mvm_reclaim_futile (jiffies): a wait just ended with nothing freed;
 * until then reclaim does not wait again (the thread is stuck or slow,
 * and reclaim should go on to its other sources, or to the OOM killer).
 */
static atomic_t mvm_reclaim_waiters = ATOMIC_INIT(0);
static atomic_long_t mvm_reclaim_credit = ATOMIC_LONG_INIT(0);
static unsigned long mvm_reclaim_futile;
#define MVM_RECLAIM_WAIT	(HZ / 10)	/* longest wait in one scan */
#define MVM_RECLAIM_BACKOFF	HZ		/* after a futile one */

enum {
	MVM_EV_KEPT, MVM_EV_FREED, MVM_EV_RETURNING, MVM_EV_FULL,
	MVM_EV_WRITE,	/* queued on the write batch, folio locked */
};

/*
 * Pages of one object to write to swap together (page_mutex held; their
 * folios locked and unmapped), then dropped unless @keep; and the counts.
 */
struct mvm_wb {
	unsigned int n;
	/*
	 * DATA_RETURN candidates (folios locked and unmapped) of a pager
	 * taking cluster returns, at the end of idx[] and folio[]: a batch
	 * has at most MVM_IO_MAX pages, each queued here or above once.
	 */
	unsigned int nret;
	bool keep;
	bool unlocked;		/* writes drop page_mutex: mvm_wb_write() */
	u64 written, freed;
	unsigned long full;
	pgoff_t idx[MVM_IO_MAX];
	struct folio *folio[MVM_IO_MAX];
};

#define MVM_WB_RELOCK_TRIES	100	/* of page_mutex after a write */

#define MVM_PASS_FORCE	BIT(0)	/* ignore reference bits */
#define MVM_PASS_NOIO	BIT(1)	/* drop only; no I/O, no messages */
#define MVM_PASS_AUTO	BIT(2)	/* watermarks and object limits */
#define MVM_PASS_TRY	BIT(3)	/* never sleep on a page_mutex */

/*
 * Wake the daemon.  Faults kick on every page added above a mark: one
 * already kicked, and not yet awake, is not written or woken again.
 */
static void mvm_pageout_kick(void)
{
	if (READ_ONCE(mvm_kicked))
		return;
	WRITE_ONCE(mvm_kicked, true);
	wake_up(&mvm_pageout_wq);
}

void mvm_pageout_unstick(void)
{
	if (READ_ONCE(mvm_stuck)) {
		WRITE_ONCE(mvm_stuck, false);
		mvm_pageout_kick();
	}
}

u64 mvm_default_obj_limit(void)
{
	return READ_ONCE(mvm_tun.obj_limit);
}

static unsigned long mvm_mark(u64 limit, u32 pct)
{
	return mul_u64_u32_div(limit, pct, 100);
}

static bool mvm_obj_over(struct mvm_object *obj, bool hard)
{
	u64 limit = READ_ONCE(obj->limit);

	if (!limit)
		return false;
	return atomic_long_read(&obj->nr_resident) >
	       (hard ? limit : mvm_mark(limit, READ_ONCE(mvm_tun.low)));
}

/* Room for one more page of @obj under both limits? */
bool mvm_room(struct mvm_object *obj)
{
	u64 limit = READ_ONCE(obj->limit);

	if (percpu_counter_compare(&mvm_nr_resident,
				   READ_ONCE(mvm_tun.limit)) >= 0)
		return false;
	return !limit || atomic_long_read(&obj->nr_resident) < limit;
}

/*
 * Free pages, and the sum of the low and high watermarks, of the zones
 * machvm's pages come from (GFP_HIGHUSER: every zone but ZONE_DMA, which
 * its lowmem reserve keeps for others).
 */
static void mvm_mem_state(unsigned long *free, unsigned long *low,
			  unsigned long *high)
{
	struct zone *zone;
	int nid, z;

	*free = *low = *high = 0;
	for_each_online_node(nid) {
		for (z = 0; z < MAX_NR_ZONES; z++) {
			zone = &NODE_DATA(nid)->node_zones[z];
#ifdef CONFIG_ZONE_DMA
			if (z == ZONE_DMA)
				continue;
#endif
			if (!managed_zone(zone))
				continue;
			*free += zone_page_state(zone, NR_FREE_PAGES);
			*low += low_wmark_pages(zone);
			*high += high_wmark_pages(zone);
		}
	}
}

/* Tracked pages not under DATA_RETURN: what a pass may scan.  A hint. */
static unsigned long mvm_nr_scannable(void)
{
	long n = percpu_counter_read_positive(&mvm_nr_resident) -
		 (long)READ_ONCE(mvm_nr_returning);

	return n > 0 ? n : 0;
}

/*
 * Pages machvm should free for Linux: memory fell below the low
 * watermarks (where kswapd wakes; direct reclaim and the OOM killer are
 * next), so free what brings it back above the high ones, as kswapd
 * does.  0 when memory is fine, or when nothing of ours can go.
 */
static unsigned long mvm_mem_need(bool waiting)
{
	/* Lockless: read on every fault that adds a page; a hint. */
	unsigned long free, low, high, can = mvm_nr_scannable();

	if (READ_ONCE(mvm_stuck) || !can)
		return 0;
	mvm_mem_state(&free, &low, &high);
	/* A waiter waits until the high mark: hysteresis. */
	if (free >= (waiting ? high : low))
		return 0;
	return min(high - free, can);
}

/* Pages to free now to get from above the high mark down to the low. */
static unsigned long mvm_global_need(void)
{
	u64 limit = READ_ONCE(mvm_tun.limit);
	long res = percpu_counter_sum(&mvm_nr_resident);
	long high = mvm_mark(limit, READ_ONCE(mvm_tun.high));
	long low = mvm_mark(limit, READ_ONCE(mvm_tun.low));

	return res > high ? res - low : 0;
}

/* Above the high mark?  Per fault: exact only near the mark. */
static bool mvm_global_high(void)
{
	u64 limit = READ_ONCE(mvm_tun.limit);

	return percpu_counter_compare(&mvm_nr_resident,
				      mvm_mark(limit,
					       READ_ONCE(mvm_tun.high))) > 0;
}

/* The bits of @index, or NULL (page_mutex or rcu_read_lock() held). */
static struct mvm_pgbits *mvm_pgb(struct mvm_object *obj, pgoff_t index)
{
	return xa_load(&obj->pages, index >> MVM_PGB_SHIFT);
}

static bool mvm_pg_test(struct mvm_object *obj, pgoff_t index, int flag)
{
	struct mvm_pgbits *b = mvm_pgb(obj, index);

	return b && test_bit(index & MVM_PGB_MASK, &b->w[flag]);
}

/* Is @index tracked?  page_mutex held. */
static bool mvm_tracked(struct mvm_object *obj, pgoff_t index)
{
	lockdep_assert_held(&obj->page_mutex);
	return mvm_pg_test(obj, index, MVM_PG_TRACKED);
}

/* Set @flag of tracked @index.  page_mutex held. */
static void mvm_pg_set(struct mvm_object *obj, pgoff_t index, int flag)
{
	struct mvm_pgbits *b = mvm_pgb(obj, index);

	if (b)
		set_bit(index & MVM_PGB_MASK, &b->w[flag]);
}

static bool mvm_pg_test_clear(struct mvm_object *obj, pgoff_t index,
			      int flag)
{
	struct mvm_pgbits *b = mvm_pgb(obj, index);

	return b && test_and_clear_bit(index & MVM_PGB_MASK, &b->w[flag]);
}

/*
 * The first page in [*@index, @stop] with @flag set (page_mutex or
 * rcu_read_lock() held): true, with *@index set and *@pgbp its bits, or
 * false.
 */
static bool mvm_pg_find(struct mvm_object *obj, pgoff_t *index, pgoff_t stop,
			int flag, struct mvm_pgbits **pgbp)
{
	unsigned long key = *index >> MVM_PGB_SHIFT;
	unsigned long bit = *index & MVM_PGB_MASK;
	struct mvm_pgbits *b;

	for (b = xa_find(&obj->pages, &key, stop >> MVM_PGB_SHIFT, XA_PRESENT);
	     b; b = xa_find_after(&obj->pages, &key, stop >> MVM_PGB_SHIFT,
				  XA_PRESENT)) {
		if (key != *index >> MVM_PGB_SHIFT)
			bit = 0;
		bit = find_next_bit(&b->w[flag], BITS_PER_LONG, bit);
		if (bit >= BITS_PER_LONG)
			continue;
		if ((key << MVM_PGB_SHIFT) + bit > stop)
			return false;
		*index = (key << MVM_PGB_SHIFT) + bit;
		*pgbp = b;
		return true;
	}
	return false;
}

static void mvm_pgbits_free_rcu(struct rcu_head *head)
{
	kmem_cache_free(mvm_pgbits_cache,
			container_of(head, struct mvm_pgbits, rcu));
}

/* Put @obj on the pageout clock, the first time it has a page. */
static void mvm_clock_join(struct mvm_object *obj)
{
	lockdep_assert_held(&obj->page_mutex);
	if (obj->clocked)
		return;
	spin_lock(&mvm_lru_lock);
	list_add_tail(&obj->clock, &mvm_clock);
	mvm_nr_clocked++;
	spin_unlock(&mvm_lru_lock);
	obj->clocked = true;
}

/* @obj is going (no reference left, its pages untracked): off the clock. */
void mvm_pageout_forget(struct mvm_object *obj)
{
	if (!obj->clocked)
		return;
	spin_lock(&mvm_lru_lock);
	list_del(&obj->clock);
	mvm_nr_clocked--;
	spin_unlock(&mvm_lru_lock);
	obj->clocked = false;
	WARN_ON_ONCE(!xa_empty(&obj->pages) || !xa_empty(&obj->rets));
}

/* Start tracking @index of @obj (page_mutex held, page just inserted). */
int mvm_page_track(struct mvm_object *obj, pgoff_t index,
		   unsigned long pgflags)
{
	unsigned int bit = index & MVM_PGB_MASK, flag;
	struct mvm_pgbits *b;
	int ret;

	lockdep_assert_held(&obj->page_mutex);
	b = mvm_pgb(obj, index);
	if (b && test_bit(bit, &b->w[MVM_PG_TRACKED])) {
		/*
		 * Left by a swap-in whose read failed, not untracked yet
		 * (mvm_swapin_read() takes page_mutex after the folios
		 * left the cache): it tracks the new page.
		 */
		for_each_set_bit(flag, &pgflags, MVM_PG_NR)
			set_bit(bit, &b->w[flag]);
		return 0;
	}
	if (!b) {
		/*
		 * Not charged to the faulting task's memcg: under its limit
		 * a charge here would OOM-kill it rather than let pageout
		 * make room.
		 */
		b = kmem_cache_zalloc(mvm_pgbits_cache, GFP_KERNEL);
		if (!b)
			return -ENOMEM;
		ret = xa_err(xa_store(&obj->pages, index >> MVM_PGB_SHIFT, b,
				      GFP_KERNEL));
		if (ret) {
			kmem_cache_free(mvm_pgbits_cache, b);
			return ret;	/* stays resident, untracked */
		}
	}
	/* MVM_PG_REF: just touched.  A stale REF (see above) may stay. */
	for_each_set_bit(flag, &pgflags, MVM_PG_NR)
		set_bit(bit, &b->w[flag]);
	set_bit(bit, &b->w[MVM_PG_TRACKED]);
	mvm_clock_join(obj);
	atomic_long_inc(&obj->nr_resident);
	percpu_counter_inc(&mvm_nr_resident);
	mvm_count(MACHVM_A_STAT_RESIDENT, 1);
	if (mvm_global_high() || mvm_obj_over(obj, true))
		mvm_pageout_kick();
	return 0;
}

static void mvm_return_end(struct mvm_object *obj, pgoff_t index);

/* Stop tracking @index (page_mutex held; the page left the cache). */
static void mvm_page_untrack(struct mvm_object *obj, pgoff_t index)
{
	unsigned int bit = index & MVM_PGB_MASK, flag;
	struct mvm_pgbits *b = mvm_pgb(obj, index);
	bool wlocked;

	lockdep_assert_held(&obj->page_mutex);
	if (WARN_ON_ONCE(!b || !test_bit(bit, &b->w[MVM_PG_TRACKED])))
		return;
	mvm_return_end(obj, index);
	wlocked = test_bit(bit, &b->w[MVM_PG_WLOCK]);
	for (flag = 0; flag < MVM_PG_NR; flag++)
		clear_bit(bit, &b->w[flag]);
	if (!b->w[MVM_PG_TRACKED]) {
		xa_erase(&obj->pages, index >> MVM_PGB_SHIFT);
		/* Faults may be reading it: see mvm_pages_referenced(). */
		call_rcu(&b->rcu, mvm_pgbits_free_rcu);
	}
	atomic_long_dec(&obj->nr_resident);
	percpu_counter_dec(&mvm_nr_resident);
	mvm_count(MACHVM_A_STAT_RESIDENT, -1);
	if (atomic_read(&mvm_reclaim_waiters))
		atomic_long_inc(&mvm_reclaim_credit);	/* woken below */
	/* Writers waiting for an unlock retry and find the page gone. */
	if (wlocked)
		mvm_unlock_complete(obj, index, index + 1);
	if (READ_ONCE(mvm_stuck))
		mvm_pageout_unstick();
	if (wq_has_sleeper(&mvm_room_wq))
		wake_up_all(&mvm_room_wq);
}

/*
 * Stop tracking the pages of [@start, @start + @n) that are not in the
 * page cache (page_mutex held): a swap-in whose read failed took them out.
 */
void mvm_pages_untrack_absent(struct mvm_object *obj, pgoff_t start,
			      unsigned int n)
{
	struct address_space *mapping = obj->inode->i_mapping;
	pgoff_t i;

	lockdep_assert_held(&obj->page_mutex);
	for (i = start; i < start + n; i++)
		if (mvm_tracked(obj, i) && !mvm_page_present(mapping, i))
			mvm_page_untrack(obj, i);
}

/* Is resident @index write-locked?  Lockless (RCU), as the bit may change. */
bool mvm_page_wlocked(struct mvm_object *obj, pgoff_t index)
{
	bool locked;

	rcu_read_lock();
	locked = mvm_pg_test(obj, index, MVM_PG_WLOCK);
	rcu_read_unlock();
	return locked;
}

/*
 * A fault found [@start, @end] resident, or fault-around mapped it (x86
 * maps those pages young): set the reference bits of its tracked pages
 * that do not have it yet (a bit already set is not written again).
 * Lockless: under rcu_read_lock() the bits stay readable even if their
 * pages go meanwhile; a bit set on a page just untracked is harmless (see
 * struct mvm_pgbits).
 */
void mvm_pages_referenced(struct mvm_object *obj, pgoff_t start, pgoff_t end)
{
	struct mvm_pgbits *b = NULL;
	unsigned int bit;
	pgoff_t i;

	rcu_read_lock();
	for (i = start; i <= end; i++) {
		bit = i & MVM_PGB_MASK;
		if (i == start || !bit)
			b = mvm_pgb(obj, i);
		if (b && test_bit(bit, &b->w[MVM_PG_TRACKED]) &&
		    !test_bit(bit, &b->w[MVM_PG_REF]))
			set_bit(bit, &b->w[MVM_PG_REF]);
	}
	rcu_read_unlock();
}

/* The object's pages are gone or going (destroy, free): forget them. */
void mvm_pages_release(struct mvm_object *obj)
{
	struct mvm_pgbits *pgb;
	pgoff_t index;

	mutex_lock(&obj->page_mutex);
	for (index = 0;
	     mvm_pg_find(obj, &index, ULONG_MAX, MVM_PG_TRACKED, &pgb);
	     index++)
		mvm_page_untrack(obj, index);
	mutex_unlock(&obj->page_mutex);
}

static void mvm_unmap_page(struct mvm_object *obj, pgoff_t index)
{
	unmap_mapping_range(obj->inode->i_mapping, (loff_t)index << PAGE_SHIFT,
			    PAGE_SIZE, 0);
}

/*
 * From reclaim (MVM_PASS_TRY), unmap only if nobody holds i_mmap_rwsem: a
 * task that allocates while holding it for write may be the one
 * reclaiming.  False: left mapped.
 */
static bool mvm_unmap_try(struct mvm_object *obj, pgoff_t index,
			  unsigned int mode)
{
	struct address_space *mapping = obj->inode->i_mapping;

	if (mode & MVM_PASS_TRY) {
		if (!i_mmap_trylock_read(mapping))
			return false;
		i_mmap_unlock_read(mapping);
	}
	mvm_unmap_page(obj, index);
	return true;
}

/*
 * mlock: is @index of @obj inside a VM_LOCKED vma (mlock, mlock2 with or
 * without MLOCK_ONFAULT, mlockall's MCL_CURRENT and MCL_FUTURE, MAP_LOCKED)?
 * Such a page is never paged out, and the second-chance scan leaves it
 * mapped.  Reclaim learns it the same way: its rmap walk finds the
 * VM_LOCKED vma (PG_mlocked is only a hint there: its count may undercount
 * and the munlock that clears it is batched per CPU).  The object's vmas
 * are in its own i_mmap tree, ordered by vm_pgoff, so the walk stops past
 * @index.  A page of an MLOCK_ONFAULT range counts once resident, touched
 * there or not (its whole range is charged to RLIMIT_MEMLOCK anyway).
 * vm_flags change under the mmap lock only: read once, as rmap does.
 * MVM_PASS_TRY (reclaim) never sleeps on i_mmap_rwsem: busy means locked.
 */
static bool mvm_mlocked(struct mvm_object *obj, pgoff_t index,
			unsigned int mode)
{
	struct address_space *mapping = obj->inode->i_mapping;
	struct vm_area_struct *vma;
	struct rb_node *node;
	bool locked = false;

	if (RB_EMPTY_ROOT(&mapping->i_mmap.rb_root))
		return false;
	if (!(mode & MVM_PASS_TRY))
		i_mmap_lock_read(mapping);
	else if (!i_mmap_trylock_read(mapping))
		return true;
	for (node = rb_first_cached(&mapping->i_mmap); node;
	     node = rb_next(node)) {
		vma = rb_entry(node, struct vm_area_struct, shared.rb);
		if (vma->vm_pgoff > index)
			break;
		if (index - vma->vm_pgoff < vma_pages(vma) &&
		    (READ_ONCE(vma->vm_flags) & VM_LOCKED)) {
			locked = true;
			break;
		}
	}
	i_mmap_unlock_read(mapping);
	return locked;
}

/* How mvm_drop() may drop a page. */
enum {
	MVM_DROP_DISCARD = BIT(0),	/* even if written (dirty) */
	/*
	 * Even with references beyond the cache's, as truncation does: a
	 * fault waiting on the folio lock finds it gone and asks again.  For
	 * a page that must go now (flush: a copy elsewhere may be written
	 * next).  A page pinned for DMA still stays.
	 */
	MVM_DROP_FORCE = BIT(1),
};

/*
 * Remove the locked, unmapped @folio of tracked @index from the cache
 * (page_mutex held).  Nothing can map it while it is locked; a page
 * pinned for DMA stays.
 */
static bool mvm_drop(struct mvm_object *obj, pgoff_t index,
		     struct folio *folio, unsigned int how)
{
	/* The cache's and the caller's; and a per-CPU LRU batch's, maybe. */
	int refs = folio_nr_pages(folio) + 1 + !folio_test_lru(folio);
	bool busy = (how & MVM_DROP_FORCE) ? folio_maybe_dma_pinned(folio) :
		    folio_ref_count(folio) > refs;

	if (folio_mapped(folio) || busy ||
	    (!(how & MVM_DROP_DISCARD) && folio_test_dirty(folio)) ||
	    mvm_remove_folio(obj->inode->i_mapping, folio))
		return false;
	atomic64_inc(&obj->pageouts);
	mvm_count(MACHVM_A_STAT_PAGEOUTS, 1);
	mvm_page_untrack(obj, index);	/* wakes writers waiting for unlock */
	return true;
}

/*
 * DATA_SUPPLY with MACHVM_SUPPLY_F_OVERWRITE on a resident page: it gets
 * @src's contents, clean, with lock value @lock; its mappings go first
 * (the next touch faults it back in) and its swap copy is forgotten.
 * page_mutex held.  -ENOENT: not resident after all.
 */
int mvm_page_overwrite(struct mvm_object *obj, pgoff_t index,
		       struct folio *src, u32 lock)
{
	struct folio *folio;
	void *from, *to;

	lockdep_assert_held(&obj->page_mutex);
	folio = mvm_folio_lock_get(obj->inode->i_mapping, index);
	if (!folio)
		return -ENOENT;
	mvm_unmap_page(obj, index);
	to = kmap_local_folio(folio, 0);
	from = kmap_local_folio(src, 0);
	memcpy(to, from, PAGE_SIZE);
	kunmap_local(from);
	kunmap_local(to);
	folio_cancel_dirty(folio);
	mvm_swap_forget_slot(obj, index);
	if (mvm_tracked(obj, index)) {
		if (lock & PROT_WRITE)
			mvm_pg_set(obj, index, MVM_PG_WLOCK);
		else if (mvm_pg_test_clear(obj, index, MVM_PG_WLOCK))
			mvm_unlock_complete(obj, index, index + 1);
	}
	folio_unlock(folio);
	folio_put(folio);
	return 0;
}

/*
 * The DATA_RETURN of @index, if any, ends: the page is the pageout
 * clock's again (page_mutex held).
 */
static void mvm_return_end(struct mvm_object *obj, pgoff_t index)
{
	struct mvm_ret *r;

	lockdep_assert_held(&obj->page_mutex);
	if (!mvm_pg_test_clear(obj, index, MVM_PG_RETURNING))
		return;
	mvm_pg_test_clear(obj, index, MVM_PG_KEEP);
	r = xa_erase(&obj->rets, index);
	if (WARN_ON_ONCE(!r))
		return;
	spin_lock(&mvm_lru_lock);
	list_del(&r->lru);
	mvm_nr_returning--;
	spin_unlock(&mvm_lru_lock);
	atomic_dec(&obj->nr_ret);
	kfree(r);
}

/*
 * Send @n pages of @obj, contiguous from @idx[0] (their folios locked and
 * unmapped), to the pager in one DATA_RETURN of @n pages
 * (n <= MACHVM_RETURN_MAX_PAGES; n > 1 only if the pager said
 * MACHVM_READY_F_CLUSTER_RETURN, and all with the same dirty and precious
 * state, see mvm_ret_key()).  Every page gets the message's seq and its
 * own deadline; each is answered, copied and timed out on its own.
 * page_mutex held.  -EBUSY when the pager cannot take messages, -ENOMEM
 * (then no page changed).
 */
static int mvm_return_start_run(struct mvm_object *obj, pgoff_t *idx,
				struct folio **folio, unsigned int n,
				unsigned long extra, u32 msgflags)
{
	struct mvm_pager *pager = obj->pager;
	bool precious = mvm_pg_test(obj, idx[0], MVM_PG_PRECIOUS);
	unsigned long deadline, was_dirty = 0;
	LIST_HEAD(rets);
	struct mvm_ret *r, *tmp;
	struct mvm_msg *msg;
	unsigned int i;
	u64 seq;

	lockdep_assert_held(&obj->page_mutex);
	BUILD_BUG_ON(MACHVM_RETURN_MAX_PAGES > BITS_PER_LONG);
	if (WARN_ON_ONCE(!n || n > MACHVM_RETURN_MAX_PAGES))
		return -EINVAL;
	if (!pager || READ_ONCE(obj->orphaned) || READ_ONCE(pager->dead) ||
	    READ_ONCE(pager->nr_msgs) >= MVM_MAX_QUEUED)
		return -EBUSY;
	msg = kzalloc(sizeof(*msg), GFP_KERNEL_ACCOUNT);
	if (!msg)
		return -ENOMEM;
	deadline = jiffies + msecs_to_jiffies(READ_ONCE(obj->attr.timeout_ms));
	for (i = 0; i < n; i++) {
		r = kmalloc(sizeof(*r), GFP_KERNEL);
		if (!r)
			goto nomem;
		r->obj = obj;
		r->index = idx[i];
		r->deadline = deadline;
		r->seq = 0;
		list_add_tail(&r->lru, &rets);
		if (xa_insert(&obj->rets, idx[i], r, GFP_KERNEL))
			goto nomem;
	}
	/* A page the default pager holds is newer than the pager's copy. */
	for (i = 0; i < n; i++)
		if (folio_clear_dirty_for_io(folio[i]) ||
		    xa_load(&obj->swap, idx[i]))
			__set_bit(i, &was_dirty);
	INIT_LIST_HEAD(&msg->node);
	msg->owned = true;
	msg->m.type = MACHVM_MSG_DATA_RETURN;
	msg->m.object = obj->id;
	msg->m.name = obj->name;
	msg->m.offset = (u64)idx[0] << PAGE_SHIFT;
	msg->m.length = (u64)n << PAGE_SHIFT;
	msg->m.flags = msgflags | (was_dirty ? MACHVM_RETURN_F_DIRTY : 0) |
		       (precious ? MACHVM_RETURN_F_PRECIOUS : 0);
	for (i = 0; i < n; i++) {
		if (extra & BIT(MVM_PG_KEEP))
			mvm_pg_set(obj, idx[i], MVM_PG_KEEP);
		mvm_pg_set(obj, idx[i], MVM_PG_RETURNING);
	}
	spin_lock(&mvm_lru_lock);
	list_splice_tail(&rets, &mvm_returning);
	mvm_nr_returning += n;
	spin_unlock(&mvm_lru_lock);
	atomic_add(n, &obj->nr_ret);
	/* Answers need page_mutex, held here: the seq is set before any. */
	seq = mvm_pager_queue(pager, msg);
	for (i = 0; i < n; i++) {
		if (seq) {
			r = xa_load(&obj->rets, idx[i]);
			r->seq = seq;
			continue;
		}
		mvm_return_end(obj, idx[i]);	/* the pager just went */
		if (test_bit(i, &was_dirty))
			folio_mark_dirty(folio[i]);
	}
	return seq ? 0 : -EBUSY;

nomem:
	list_for_each_entry_safe(r, tmp, &rets, lru) {
		xa_cmpxchg(&obj->rets, r->index, r, NULL, 0);
		kfree(r);
	}
	kfree(msg);
	return -ENOMEM;
}

/* One page: see mvm_return_start_run(). */
static int mvm_return_start(struct mvm_object *obj, pgoff_t index,
			    struct folio *folio, unsigned long extra,
			    u32 msgflags)
{
	return mvm_return_start_run(obj, &index, &folio, 1, extra, msgflags);
}

/*
 * Drop page_mutex; a terminating object whose last return just ended is
 * terminated now.  The caller holds a reference.
 */
static void mvm_obj_unlock(struct mvm_object *obj)
{
	/* Decided under the mutex: terminating means every return began. */
	bool done = obj->terminating && !atomic_read(&obj->nr_ret);

	mutex_unlock(&obj->page_mutex);
	if (done)
		mvm_object_returns_done(obj);
}

/*
 * Order @wb's pages by index (insertion sort: at most MVM_IO_MAX), so
 * that pages next to each other in the object get slots next to each
 * other: a swap-in reads ahead only along consecutive slots
 * (mvm_swapin_cluster()).  The clock batches pages in index order, but
 * a return run the pager could not take joins the batch after them.
 */
static void mvm_wb_sort(struct mvm_wb *wb)
{
	struct folio *folio;
	unsigned int i, j;
	pgoff_t index;

	for (i = 1; i < wb->n; i++) {
		index = wb->idx[i];
		folio = wb->folio[i];
		for (j = i; j > 0 && wb->idx[j - 1] > index; j--) {
			wb->idx[j] = wb->idx[j - 1];
			wb->folio[j] = wb->folio[j - 1];
		}
		wb->idx[j] = index;
		wb->folio[j] = folio;
	}
}

/*
 * Write @run pages of @wb from @i to slots from @slot (page_mutex held,
 * their folios locked, unmapped and cleaned for I/O; @new: the slots are
 * new).  With wb->unlocked, the write runs without page_mutex, as Linux's
 * reclaim writes under the folio lock alone: faults on the object's other
 * pages (swap-ins, zero-fills) go on meanwhile, and nobody can map,
 * change or drop the batch's pages, whose folios stay locked.  Taking
 * page_mutex back while holding them would invert the lock order
 * (page_mutex, then a folio lock) for a holder that waits for one of
 * them (a store removal's swap-in, a supply), so it is only tried, for a
 * few milliseconds.  If it stays taken, the batch is given up: this
 * run's pages stay, dirty, their new slots given back, the later runs'
 * pages stay unwritten, every folio is unlocked, and only then is the
 * mutex taken.  -EAGAIN then, with wb->n 0.
 */
static int mvm_wb_write(struct mvm_object *obj, struct mvm_wb *wb,
			unsigned int i, unsigned int run, u64 slot, bool new)
{
	unsigned int j, tries;
	int ret;

	if (!wb->unlocked)
		return mvm_slot_io_vec(slot, &wb->folio[i], run, true);
	mutex_unlock(&obj->page_mutex);
	ret = mvm_slot_io_vec(slot, &wb->folio[i], run, true);
	for (tries = 0; tries < MVM_WB_RELOCK_TRIES; tries++) {
		if (mutex_trylock(&obj->page_mutex))
			return ret;
		usleep_range(20, 50);
	}
	for (j = i; j < wb->n; j++) {
		if (j < i + run) {
			folio_mark_dirty(wb->folio[j]);
			if (new)
				mvm_slot_free(slot + j - i);
		}
		folio_unlock(wb->folio[j]);
		folio_put(wb->folio[j]);
	}
	wb->n = 0;
	mutex_lock(&obj->page_mutex);
	return -EAGAIN;
}

/*
 * Write the batch: pages without a slot get a run of contiguous slots and
 * go in one request; pages with one go in runs of consecutive slots.
 * Then each is dropped (unless wb->keep) and its folio unlocked and put.
 */
static void mvm_wb_flush(struct mvm_object *obj, struct mvm_wb *wb)
{
	unsigned int i = 0, j, run;
	void *entry;
	u64 slot;
	bool new;
	int ret;

	lockdep_assert_held(&obj->page_mutex);
	mvm_wb_sort(wb);
	while (i < wb->n) {
		entry = xa_load(&obj->swap, wb->idx[i]);
		new = !entry;
		if (entry) {
			slot = xa_to_value(entry);
			for (run = 1; i + run < wb->n; run++) {
				entry = xa_load(&obj->swap, wb->idx[i + run]);
				if (!entry || xa_to_value(entry) != slot + run)
					break;
			}
		} else {
			for (run = 1; i + run < wb->n; run++)
				if (xa_load(&obj->swap, wb->idx[i + run]))
					break;
			ret = mvm_slot_alloc_run(run, &slot);
			if (ret < 0) {
				for (j = i; j < i + run; j++) {
					folio_unlock(wb->folio[j]);
					folio_put(wb->folio[j]);
				}
				wb->full += run;
				i += run;
				continue;
			}
			run = ret;
		}
		for (j = i; j < i + run; j++)
			folio_clear_dirty_for_io(wb->folio[j]);
		ret = mvm_wb_write(obj, wb, i, run, slot, new);
		if (ret == -EAGAIN)
			return;	/* the batch was given up */
		for (j = i; j < i + run; j++) {
			pgoff_t index = wb->idx[j];
			struct folio *folio = wb->folio[j];

			if (!ret && new &&
			    xa_err(xa_store(&obj->swap, index,
					    xa_mk_value(slot + j - i),
					    GFP_KERNEL)))
				ret = -ENOMEM;	/* this one and the rest stay */
			if (ret) {
				folio_mark_dirty(folio);
				if (new)
					mvm_slot_free(slot + j - i);
			} else {
				if (new) {
					atomic_long_inc(&obj->nr_swapped);
					/* Before the page leaves the cache:
					 * see mvm_fill_local().
					 */
					smp_mb__after_atomic();
				}
				mvm_count(MACHVM_A_STAT_SWAP_WRITES, 1);
				wb->written++;
				if (!wb->keep)
					wb->freed += mvm_drop(obj, index, folio,
							      0);
			}
			folio_unlock(folio);
			folio_put(folio);
		}
		i += run;
	}
	wb->n = 0;
}

/*
 * The default pager takes a page its pager refused, did not answer for,
 * or lost with its death: write it to swap, then drop it (unless a
 * lock_request asked to keep it).  page_mutex held.
 */
static int mvm_default_take(struct mvm_object *obj, pgoff_t index)
{
	bool keep = mvm_pg_test(obj, index, MVM_PG_KEEP);
	struct mvm_wb wb = { .n = 0 };
	struct folio *folio;
	int ret;

	lockdep_assert_held(&obj->page_mutex);
	mvm_return_end(obj, index);
	folio = mvm_folio_lock_get(obj->inode->i_mapping, index);
	if (!folio) {
		mvm_page_untrack(obj, index);
		return MVM_EV_FREED;
	}
	if (!keep && mvm_mlocked(obj, index, 0)) {
		/* mlocked since the return began: stays, still to write. */
		folio_mark_dirty(folio);
		folio_unlock(folio);
		folio_put(folio);
		return MVM_EV_KEPT;
	}
	mvm_unmap_page(obj, index);
	if (READ_ONCE(obj->releasing)) {
		/* Nobody can read it any more: no need to keep it. */
		ret = mvm_drop(obj, index, folio, MVM_DROP_DISCARD) ?
		      MVM_EV_FREED : MVM_EV_KEPT;
		folio_unlock(folio);
		folio_put(folio);
		return ret;
	}
	/* The pager's copy is stale or missing: always written. */
	folio_mark_dirty(folio);
	wb.keep = keep;
	wb.idx[0] = index;
	wb.folio[0] = folio;
	wb.n = 1;
	mvm_wb_flush(obj, &wb);
	if (wb.written) {
		atomic64_inc(&obj->default_taken);
		mvm_count(MACHVM_A_STAT_DEFAULT_TAKEN, 1);
	}
	return wb.freed ? MVM_EV_FREED : wb.full ? MVM_EV_FULL : MVM_EV_KEPT;
}

/* Page out @index of @obj.  page_mutex held.  Returns MVM_EV_*. */
static int mvm_evict(struct mvm_object *obj, pgoff_t index, unsigned int mode,
		     struct mvm_wb *wb)
{
	struct address_space *mapping = obj->inode->i_mapping;
	bool dirty, precious, live, has_slot, mapped;
	struct folio *folio;
	int ret;

	lockdep_assert_held(&obj->page_mutex);
	if (!mvm_tracked(obj, index) ||
	    mvm_pg_test(obj, index, MVM_PG_RETURNING))
		return MVM_EV_KEPT;
	/* Being read in (without page_mutex): not worth a wait here. */
	if (mvm_page_reading(mapping, index))
		return MVM_EV_KEPT;
	folio = mvm_folio_lock_get(mapping, index);
	if (!folio) {
		mvm_page_untrack(obj, index);	/* it went some other way */
		return MVM_EV_FREED;
	}
	/*
	 * mlocked: stays, mapped.  Checked again after the unmap when it was
	 * mapped: an mlock() that found it mapped (populated) just before.
	 */
	mapped = folio_mapped(folio);
	if (!READ_ONCE(obj->destroyed) && mvm_mlocked(obj, index, mode))
		goto keep;
	/* Unmapping harvests the dirty bits. */
	mvm_unmap_try(obj, index, mode);
	if (folio_mapped(folio))
		goto keep;
	if (mapped && !READ_ONCE(obj->destroyed) &&
	    mvm_mlocked(obj, index, mode))
		goto keep;
	dirty = folio_test_dirty(folio);
	precious = mvm_pg_test(obj, index, MVM_PG_PRECIOUS);
	has_slot = xa_load(&obj->swap, index);
	live = obj->pager && !READ_ONCE(obj->orphaned) &&
	       (!READ_ONCE(obj->destroyed) || READ_ONCE(obj->releasing));
	if (READ_ONCE(obj->destroyed) && !READ_ONCE(obj->releasing)) {
		/* Destroyed, or gone with no pager to tell: never read again. */
		ret = mvm_drop(obj, index, folio, MVM_DROP_DISCARD) ?
		      MVM_EV_FREED : MVM_EV_KEPT;
		goto out;
	}

	if (live && (dirty || precious)) {
		if (mode & MVM_PASS_NOIO)
			goto keep;
		if (READ_ONCE(obj->cluster_return) &&
		    !WARN_ON_ONCE(wb->n + wb->nret >= MVM_IO_MAX)) {
			/* With its neighbours, in mvm_ret_flush(). */
			wb->nret++;
			wb->idx[MVM_IO_MAX - wb->nret] = index;
			wb->folio[MVM_IO_MAX - wb->nret] = folio;
			return MVM_EV_RETURNING;
		}
		if (!mvm_return_start(obj, index, folio, 0, 0)) {
			folio_unlock(folio);
			folio_put(folio);
			return MVM_EV_RETURNING;
		}
		/* The pager cannot take messages: the default pager does. */
		atomic64_inc(&obj->default_taken);
		mvm_count(MACHVM_A_STAT_DEFAULT_TAKEN, 1);
		dirty = true;
	}
	/*
	 * Clean and without a slot: the pager has it, or it is an anonymous
	 * page never written (zero).  An orphan's page has no other copy.
	 */
	if (dirty || (!has_slot && !obj->anon && !live)) {
		if (mode & MVM_PASS_NOIO)
			goto keep;
		/* Written with its neighbours in mvm_wb_flush(). */
		if (WARN_ON_ONCE(wb->n + wb->nret >= MVM_IO_MAX))
			goto keep;
		wb->idx[wb->n] = index;
		wb->folio[wb->n++] = folio;
		return MVM_EV_WRITE;
	}
	ret = mvm_drop(obj, index, folio, 0) ? MVM_EV_FREED : MVM_EV_KEPT;
out:
	folio_unlock(folio);
	folio_put(folio);
	return ret;
keep:
	folio_unlock(folio);
	folio_put(folio);
	return MVM_EV_KEPT;
}

struct mvm_pass {
	u64 target;			/* pages to free (0: none globally) */
	struct mvm_object *only;	/* or NULL */
	unsigned int mode;		/* MVM_PASS_* */
	struct mvm_pageout_result res;
	unsigned long full;
	unsigned long max_scan;		/* 0: two sweeps of the clock */
	unsigned int pending;		/* candidates batched, not yet done */
	unsigned long aged;		/* reference bits cleared (unlocked) */
};

/* Pages of one DATA_RETURN share this: written (or in swap), precious. */
static unsigned int mvm_ret_key(struct mvm_object *obj, pgoff_t index,
				struct folio *folio)
{
	return (folio_test_dirty(folio) || xa_load(&obj->swap, index)) |
	       mvm_pg_test(obj, index, MVM_PG_PRECIOUS) << 1;
}

/*
 * Send the returns mvm_evict() queued in @wb: sorted by index, cut into
 * runs of contiguous pages with the same mvm_ret_key() (at most
 * MACHVM_RETURN_MAX_PAGES), one DATA_RETURN each, as Mach's data_return
 * carries a range.  A run the pager cannot take now goes to the write
 * batch (the default pager).  page_mutex held.  Returns the pages that
 * could not be sent.
 */
static unsigned int mvm_ret_flush(struct mvm_object *obj, struct mvm_wb *wb)
{
	unsigned int i, j, run, n = wb->nret, failed = 0;
	pgoff_t *idx = &wb->idx[MVM_IO_MAX - n];
	struct folio **folio = &wb->folio[MVM_IO_MAX - n];

	lockdep_assert_held(&obj->page_mutex);
	BUILD_BUG_ON(MVM_IO_MAX > MACHVM_RETURN_MAX_PAGES);
	for (i = 1; i < n; i++)		/* insertion sort: n <= 32 */
		for (j = i; j && idx[j - 1] > idx[j]; j--) {
			swap(idx[j - 1], idx[j]);
			swap(folio[j - 1], folio[j]);
		}
	for (i = 0; i < n; i += run) {
		for (run = 1; i + run < n; run++)
			if (idx[i + run] != idx[i] + run ||
			    mvm_ret_key(obj, idx[i + run], folio[i + run]) !=
			    mvm_ret_key(obj, idx[i], folio[i]))
				break;
		if (!mvm_return_start_run(obj, &idx[i], &folio[i], run, 0, 0)) {
			for (j = i; j < i + run; j++) {
				folio_unlock(folio[j]);
				folio_put(folio[j]);
			}
			continue;
		}
		/*
		 * The pager cannot take messages: the default pager does.
		 * Moved down to the write batch; as wb->n + n <= MVM_IO_MAX,
		 * a slot written is never one not yet read.
		 */
		for (j = i; j < i + run; j++) {
			atomic64_inc(&obj->default_taken);
			mvm_count(MACHVM_A_STAT_DEFAULT_TAKEN, 1);
			wb->idx[wb->n] = idx[j];
			wb->folio[wb->n++] = folio[j];
		}
		failed += run;
	}
	wb->nret = 0;
	return failed;
}

/* Candidates of one object, evicted together under its page_mutex. */
struct mvm_batch {
	unsigned int n;
	pgoff_t index[MVM_IO_MAX];
};

static void mvm_batch_flush(struct mvm_pass *p, struct mvm_object *obj,
			    struct mvm_batch *b)
{
	struct mvm_wb wb = { .n = 0 };
	unsigned int i;
	int ret;

	if (!b->n)
		return;
	if (p->mode & MVM_PASS_TRY) {
		if (!mutex_trylock(&obj->page_mutex))
			goto out;
	} else {
		mutex_lock(&obj->page_mutex);
	}
	/* From reclaim, never sleep on the mutex again (see above). */
	wb.unlocked = !(p->mode & MVM_PASS_TRY);
	for (i = 0; i < b->n; i++) {
		ret = mvm_evict(obj, b->index[i], p->mode, &wb);
		if (ret == MVM_EV_FREED)
			p->res.freed++;
		else if (ret == MVM_EV_RETURNING)
			p->res.returning++;
		else if (ret == MVM_EV_FULL)
			p->full++;
	}
	p->res.returning -= mvm_ret_flush(obj, &wb);
	mvm_wb_flush(obj, &wb);
	p->res.freed += wb.freed;
	p->full += wb.full;
	mvm_obj_unlock(obj);
out:
	b->n = 0;
	p->pending = 0;
}

static bool mvm_pass_wants(struct mvm_pass *p, struct mvm_object *obj)
{
	if (p->only && obj != p->only)
		return false;
	if (p->res.freed + p->res.returning + p->pending < p->target)
		return true;
	return (p->mode & MVM_PASS_AUTO) && mvm_obj_over(obj, false);
}

static bool mvm_pass_done(struct mvm_pass *p)
{
	if (p->res.freed + p->res.returning + p->pending < p->target)
		return false;
	return !(p->mode & MVM_PASS_AUTO) || !atomic_read(&mvm_nr_limited);
}

/*
 * The next object for the clock to visit, with a reference: the pass's
 * only object, or the head of mvm_clock, which goes to the tail.  NULL
 * when there is none.
 */
static struct mvm_object *mvm_clock_next(struct mvm_pass *p)
{
	struct mvm_object *obj, *found = NULL;
	unsigned long n;

	if (p->only) {
		kref_get(&p->only->ref);
		return p->only;
	}
	spin_lock(&mvm_lru_lock);
	for (n = mvm_nr_clocked; n && !found; n--) {
		obj = list_first_entry(&mvm_clock, struct mvm_object, clock);
		list_move_tail(&obj->clock, &mvm_clock);
		if (kref_get_unless_zero(&obj->ref))
			found = obj;
	}
	spin_unlock(&mvm_lru_lock);
	return found;
}

#define MVM_CLOCK_VISIT	64	/* pages a visit looks at, at most */

/*
 * One visit of the clock to @obj: from its hand on, in index order
 * (wrapping around at the end), look at up to MVM_CLOCK_VISIT tracked
 * pages not under DATA_RETURN, while the pass wants pages of @obj.  A
 * referenced page loses its bit and is unmapped (its second chance: its
 * next touch faults and sets the bit again); an unreferenced one is
 * batched and, at the end of the visit, evicted.  As Linux's clock over
 * its LRU lists, and Mach's FIFO before it, a page touched since the
 * hand last passed it stays.  Pages are read and bits cleared without
 * page_mutex (under RCU); eviction looks at each page again under it.
 * Returns the pages looked at.
 */
static unsigned int mvm_clock_scan(struct mvm_pass *p, struct mvm_object *obj,
				   unsigned long budget)
{
	pgoff_t index = obj->hand, stop = ULONG_MAX, aged[MVM_CLOCK_VISIT];
	struct mvm_batch b = { .n = 0 };
	unsigned int naged = 0, seen = 0, i, bit;
	struct mvm_pgbits *pgb;
	bool wrapped = false;

	budget = min_t(unsigned long, budget, MVM_CLOCK_VISIT);
	rcu_read_lock();
	for (;;) {
		if (!mvm_pg_find(obj, &index, stop, MVM_PG_TRACKED, &pgb)) {
			/* Around once, back to where the visit began. */
			index = obj->hand;
			if (wrapped || !index)
				break;
			wrapped = true;
			stop = index - 1;
			index = 0;
			continue;
		}
		bit = index & MVM_PGB_MASK;
		if (test_bit(bit, &pgb->w[MVM_PG_RETURNING])) {
			index++;
			continue;
		}
		if (seen == budget || b.n == MVM_IO_MAX ||
		    !mvm_pass_wants(p, obj))
			break;		/* the hand stops here */
		seen++;
		if (!(p->mode & MVM_PASS_FORCE) &&
		    test_and_clear_bit(bit, &pgb->w[MVM_PG_REF])) {
			aged[naged++] = index++;
			continue;
		}
		b.index[b.n++] = index++;
		p->pending = b.n;
	}
	obj->hand = index;
	rcu_read_unlock();
	p->res.scanned += seen;
	mvm_count(MACHVM_A_STAT_SCANS, seen);
	atomic64_add(seen, &obj->scans);
	for (i = 0; i < naged; i++) {
		/*
		 * Second chance; the next touch faults and says so.  An
		 * mlocked page stays mapped: no fault on it.
		 */
		if (mvm_mlocked(obj, aged[i], p->mode))
			continue;
		p->aged++;
		if (mvm_unmap_try(obj, aged[i], p->mode)) {
			atomic64_inc(&obj->ref_hits);
			mvm_count(MACHVM_A_STAT_REF_HITS, 1);
		}
	}
	mvm_batch_flush(p, obj, &b);
	return seen;
}

/*
 * One pass of the pageout clock (mvm_pageout_mutex held): the objects in
 * turn, a visit each (mvm_clock_scan()), until the pass has what it
 * wants or has looked at every page twice.
 */
static void mvm_pass_run(struct mvm_pass *p)
{
	unsigned long max_scan, idle = 0;
	struct mvm_object *obj;
	unsigned int seen;

	lockdep_assert_held(&mvm_pageout_mutex);
	WRITE_ONCE(mvm_pass_owner, current);
	max_scan = 2 * mvm_nr_scannable() + READ_ONCE(mvm_tun.batch);
	if (p->max_scan)
		max_scan = min(max_scan, p->max_scan);

	while (p->res.scanned < max_scan && !mvm_pass_done(p)) {
		if (fatal_signal_pending(current) ||
		    (current == mvm_pageoutd && kthread_should_stop()))
			break;
		obj = mvm_clock_next(p);
		if (!obj)
			break;
		seen = 0;
		if (mvm_pass_wants(p, obj))
			seen = mvm_clock_scan(p, obj,
					      max_scan - p->res.scanned);
		mvm_object_put(obj);
		/* A round of the objects in which no page was looked at. */
		if (seen)
			idle = 0;
		else if (p->only || ++idle > READ_ONCE(mvm_nr_clocked))
			break;
		cond_resched();
	}
	WRITE_ONCE(mvm_pass_owner, NULL);
	if (p->res.freed && wq_has_sleeper(&mvm_room_wq))
		wake_up_all(&mvm_room_wq);
}

/* Netlink RUN_PAGEOUT: one pass now, in the caller. */
int mvm_pageout_run(u64 target, struct mvm_object *only, bool force,
		    struct mvm_pageout_result *res)
{
	struct mvm_pass p = {
		.only = only,
		.mode = force ? MVM_PASS_FORCE : 0,
	};

	p.target = target ?: max_t(u64, mvm_global_need(),
				   READ_ONCE(mvm_tun.batch));
	if (mutex_lock_killable(&mvm_pageout_mutex))
		return -EINTR;
	mvm_pass_run(&p);
	mutex_unlock(&mvm_pageout_mutex);
	*res = p.res;
	return 0;
}

/* A charge failed (memcg limit): page out some of @obj's own pages. */
void mvm_reclaim_object(struct mvm_object *obj, unsigned long nr)
{
	struct mvm_pass p = {
		.target = nr,
		.only = obj,
		.mode = MVM_PASS_FORCE,
	};

	if (mutex_lock_killable(&mvm_pageout_mutex))
		return;
	mvm_pass_run(&p);
	mutex_unlock(&mvm_pageout_mutex);
}

/* Has the daemon's pass number @pass ended? */
static bool mvm_pass_ended(unsigned long pass)
{
	/* Pairs with mvm_daemon_pass()'s release: what it freed is seen. */
	return (long)(smp_load_acquire(&mvm_passes_done) - pass) >= 0;
}

/*
 * Would the pages under DATA_RETURN, once gone, make room for @obj under
 * both limits?  If not, waiting for them is no use.
 */
static bool mvm_returns_make_room(struct mvm_object *obj)
{
	u64 limit = READ_ONCE(obj->limit);

	if (limit && atomic_long_read(&obj->nr_resident) -
		     atomic_read(&obj->nr_ret) >= limit)
		return false;
	return percpu_counter_compare(&mvm_nr_resident,
				      READ_ONCE(mvm_tun.limit) +
				      READ_ONCE(mvm_nr_returning)) < 0;
}

/*
 * Before a fault adds a page: wait (killable) while the global or the
 * object's limit is reached and pageout makes room.  -ENOSPC when nothing
 * can be paged out (swap full, say).  A whole daemon pass since the wait
 * began that left no room is enough: other faults took what it freed, or
 * what holds the limit cannot go (mlocked or pinned pages: no later pass
 * frees them either), and the fault goes ahead over the limit; the next
 * pass takes the excess.  Only pages under DATA_RETURN that would make
 * room are worth waiting for, and for 10 s at most.
 */
int mvm_throttle(struct mvm_object *obj)
{
	unsigned long deadline = jiffies + 10 * HZ, pass;
	long ret;

	if (mvm_room(obj))
		return 0;
	mvm_count(MACHVM_A_STAT_LIMIT_WAITS, 1);
	/* The first daemon pass to begin from now on. */
	pass = READ_ONCE(mvm_passes_begun) + 1;
	for (;;) {
		mvm_pageout_kick();
		if (READ_ONCE(mvm_stuck))
			return -ENOSPC;
		ret = wait_event_killable_timeout(mvm_room_wq,
						  mvm_room(obj) ||
						  READ_ONCE(mvm_stuck) ||
						  mvm_pass_ended(pass),
						  HZ / 10);
		if (ret < 0)
			return ret;
		if (mvm_room(obj) || time_after(jiffies, deadline))
			return 0;
		if (!mvm_pass_ended(pass))
			continue;
		if (!mvm_returns_make_room(obj))
			return 0;
		pass = READ_ONCE(mvm_passes_begun) + 1;
	}
}

/*
 * Before a fault adds a page while memory is below the low watermarks
 * (mvm_mem_need()): wait (killable) until pageout brings it back above
 * the high ones, at most a second, then go ahead whatever happened.
 * This is how a task that dirties machvm memory fast is held back before
 * it allocates: without it, it dirtied pages faster than they could be
 * written, memory ran out, and (with no Linux swap) Linux's reclaim found
 * nothing it could free and called the OOM killer.  Like Linux's own
 * throttling of dirtying tasks (balance_dirty_pages()), it costs the
 * dirtier time only when memory is short.  No wait when machvm has no
 * page it could free or pageout said nothing can go.  The fault lock is
 * dropped (see mvm_fault()).
 */
bool mvm_mem_low(void)
{
	return mvm_mem_need(false);
}

int mvm_mem_wait(void)
{
	unsigned long deadline = jiffies + HZ, pass;
	long ret;

	mvm_count(MACHVM_A_STAT_LIMIT_WAITS, 1);
	atomic_inc(&mvm_mem_waiters);
	for (;;) {
		/* Each pass that ends short of the mark: kick the next. */
		pass = READ_ONCE(mvm_passes_begun) + 1;
		mvm_pageout_kick();
		ret = wait_event_killable_timeout(mvm_room_wq,
						  !mvm_mem_need(true) ||
						  mvm_pass_ended(pass),
						  HZ / 10);
		if (ret < 0)
			break;
		ret = 0;
		if (!mvm_mem_need(true) || time_after(jiffies, deadline))
			break;
	}
	atomic_dec(&mvm_mem_waiters);
	return ret;
}

/* Returns due: the default pager takes the pages not answered in time. */
static void mvm_expire_returns(void)
{
	struct { struct mvm_object *obj; pgoff_t index; } due[32];
	struct mvm_ret *r;
	unsigned int n, i;

	do {
		n = 0;
		spin_lock(&mvm_lru_lock);
		list_for_each_entry(r, &mvm_returning, lru) {
			if (n == ARRAY_SIZE(due))
				break;
			if (time_before(jiffies, r->deadline) ||
			    !kref_get_unless_zero(&r->obj->ref))
				continue;
			due[n].obj = r->obj;
			due[n].index = r->index;
			n++;
		}
		spin_unlock(&mvm_lru_lock);
		for (i = 0; i < n; i++) {
			struct mvm_object *obj = due[i].obj;

			mutex_lock(&obj->page_mutex);
			r = xa_load(&obj->rets, due[i].index);
			if (r && time_after_eq(jiffies, r->deadline)) {
				pr_info_ratelimited("object %llu: pager did not take page %lu in time; default pager takes it\n",
						    obj->name, due[i].index);
				mvm_default_take(obj, due[i].index);
			}
			mvm_obj_unlock(obj);
			mvm_object_put(obj);
		}
	} while (n == ARRAY_SIZE(due));
}

static void mvm_daemon_pass(void)
{
	struct mvm_pass p = { .mode = MVM_PASS_AUTO };
	long shrink = atomic_long_xchg(&mvm_shrink_want, 0);
	bool need;

	p.target = max3(mvm_global_need(), (unsigned long)shrink,
			mvm_mem_need(atomic_read(&mvm_mem_waiters) > 0));
	if (shrink && READ_ONCE(mvm_shrink_force))
		p.mode |= MVM_PASS_FORCE;	/* reclaim is waiting */
	/*
	 * A task in direct reclaim waits for this pass (mvm_reclaim_wait())
	 * and may hold an object's page_mutex or i_mmap lock: never sleep on
	 * those while anyone waits, take other pages.
	 */
	if (atomic_read(&mvm_reclaim_waiters))
		p.mode |= MVM_PASS_TRY;
	mutex_lock(&mvm_pageout_mutex);
	WRITE_ONCE(mvm_passes_begun, mvm_passes_begun + 1);
	mvm_pass_run(&p);
	/* What it freed before the count: pairs with mvm_pass_ended(). */
	smp_store_release(&mvm_passes_done, mvm_passes_done + 1);
	mutex_unlock(&mvm_pageout_mutex);
	if (wq_has_sleeper(&mvm_room_wq))
		wake_up_all(&mvm_room_wq);
	/*
	 * Pages were wanted (a limit is exceeded), none could go and swap is
	 * full.  Referenced, pinned or busy pages are not "stuck": they go
	 * on a later pass.
	 */
	spin_lock(&mvm_lru_lock);
	need = p.full && !p.res.freed && !p.res.returning && !mvm_nr_returning;
	spin_unlock(&mvm_lru_lock);
	if (need != READ_ONCE(mvm_stuck)) {
		WRITE_ONCE(mvm_stuck, need);
		if (need)
			pr_warn_ratelimited("pageout: nothing can be paged out (swap full or no swap store)\n");
		wake_up_all(&mvm_room_wq);
	}
}

static int mvm_pageoutd_fn(void *unused)
{
	set_freezable();
	while (!kthread_should_stop()) {
		wait_event_freezable_timeout(mvm_pageout_wq,
					     READ_ONCE(mvm_kicked) ||
					     kthread_should_stop(),
					     msecs_to_jiffies(READ_ONCE(mvm_tun.interval_ms)));
		WRITE_ONCE(mvm_kicked, false);
		if (kthread_should_stop())
			break;
		mvm_expire_returns();
		mvm_daemon_pass();
	}
	return 0;
}

/* The pager of @obj died: the default pager takes what it was given. */
void mvm_pageout_orphan(struct mvm_object *obj)
{
	struct mvm_pgbits *pgb;
	pgoff_t index;

	mutex_lock(&obj->page_mutex);
	for (index = 0;
	     mvm_pg_find(obj, &index, ULONG_MAX, MVM_PG_RETURNING, &pgb);
	     index++)
		mvm_default_take(obj, index);
	mvm_obj_unlock(obj);
}

/*
 * The object's last mapping and right are gone: send its written and
 * precious pages back to the pager, unless it is temporary (its pages
 * go with it).  True if returns are outstanding (then the last one to
 * end terminates the object).
 */
bool mvm_pageout_terminate(struct mvm_object *obj)
{
	struct mvm_pgbits *pgb;
	struct folio *folio;
	unsigned long index;
	void *entry;
	bool pending;
	int ret;

	mutex_lock(&obj->page_mutex);
	if (READ_ONCE(obj->temporary))
		goto out;
	/*
	 * Pages only swap holds are newer than the pager's: read them back
	 * to return them (memory for them is needed only until then).
	 */
	xa_for_each(&obj->swap, index, entry)
		if (!mvm_tracked(obj, index))
			mvm_object_swapin_locked(obj, index, false);
	for (index = 0;
	     mvm_pg_find(obj, &index, ULONG_MAX, MVM_PG_TRACKED, &pgb);
	     index++) {
		if (test_bit(index & MVM_PGB_MASK, &pgb->w[MVM_PG_RETURNING]))
			continue;
		folio = mvm_folio_lock_get(obj->inode->i_mapping, index);
		if (!folio)
			continue;
		mvm_unmap_page(obj, index);
		if (folio_test_dirty(folio) || xa_load(&obj->swap, index) ||
		    mvm_pg_test(obj, index, MVM_PG_PRECIOUS)) {
			ret = mvm_return_start(obj, index, folio, 0, 0);
			if (ret)
				pr_warn_ratelimited("object %llu: written page %lu dropped at terminate: its pager cannot take it (%d)\n",
						    obj->name, index, ret);
		}
		folio_unlock(folio);
		folio_put(folio);
	}
out:
	/* Every return has begun: the last to end terminates the object. */
	obj->terminating = true;
	pending = atomic_read(&obj->nr_ret);
	mutex_unlock(&obj->page_mutex);
	return pending;
}

/* 0 if page @index is under the DATA_RETURN @seq, else -ENOENT/-ESTALE. */
static int mvm_return_check(struct mvm_object *obj, pgoff_t index, u64 seq)
{
	struct mvm_ret *r = xa_load(&obj->rets, index);

	lockdep_assert_held(&obj->page_mutex);
	if (!r)
		return -ENOENT;
	return r->seq == seq ? 0 : -ESTALE;
}

/*
 * RETURN_COPY: copy pages under DATA_RETURN to the pager.  Every page is
 * checked before any is copied, so a wrong range or seq writes nothing;
 * only a page whose return ends during the copy (answered or superseded
 * meanwhile) stops it part-way.
 */
int mvm_return_copy(struct mvm_object *obj, pgoff_t start, pgoff_t n,
		    u64 seq, char __user *dst)
{
	struct folio *folio;
	unsigned long left;
	pgoff_t i;
	void *src;
	int ret = 0;

	mutex_lock(&obj->page_mutex);
	for (i = 0; i < n && !ret; i++)
		ret = mvm_return_check(obj, start + i, seq);
	mutex_unlock(&obj->page_mutex);
	if (ret)
		return ret;

	for (i = 0; i < n; i++) {
		folio = NULL;
		mutex_lock(&obj->page_mutex);
		ret = mvm_return_check(obj, start + i, seq);
		if (!ret)
			folio = mvm_folio_lock_get(obj->inode->i_mapping,
						   start + i);
		if (folio)
			folio_unlock(folio);	/* our reference keeps it */
		mutex_unlock(&obj->page_mutex);
		if (!folio)
			return ret ?: -ENOENT;
		/* No lock held: the copy may fault, even on this object. */
		src = kmap_local_folio(folio, 0);
		left = copy_to_user(dst + (i << PAGE_SHIFT), src, PAGE_SIZE);
		kunmap_local(src);
		folio_put(folio);
		if (left)
			return -EFAULT;
	}
	return 0;
}

/* RETURN_DONE: taken (error 0) or refused. */
int mvm_return_done(struct mvm_object *obj, pgoff_t start, pgoff_t n,
		    u64 seq, int error)
{
	struct folio *folio;
	pgoff_t i;
	bool keep;

	if (!error)	/* before any page can go: see mvm_pager_gets() */
		mvm_pager_gets(obj, start, n);
	mutex_lock(&obj->page_mutex);
	for (i = start; i < start + n; i++) {
		if (mvm_return_check(obj, i, seq))
			continue;
		if (error) {
			mvm_default_take(obj, i);
			continue;
		}
		keep = mvm_pg_test(obj, i, MVM_PG_KEEP);
		mvm_return_end(obj, i);
		mvm_swap_forget_slot(obj, i);	/* the pager has it now */
		atomic64_inc(&obj->returned);
		mvm_count(MACHVM_A_STAT_RETURNED, 1);
		if (keep)
			continue;
		folio = mvm_folio_lock_get(obj->inode->i_mapping, i);
		if (!folio) {
			mvm_page_untrack(obj, i);
			continue;
		}
		/* mlocked since: stays, mapped (the pager has a copy). */
		if (!mvm_mlocked(obj, i, 0)) {
			mvm_unmap_page(obj, i);
			/* Written since: stays; the pager has it: it goes. */
			mvm_drop(obj, i, folio, MVM_DROP_FORCE);
		}
		folio_unlock(folio);
		folio_put(folio);
	}
	mvm_obj_unlock(obj);
	return 0;
}

/* LOCK_REQUEST on [start, start + n); queues LOCK_COMPLETED last. */
int mvm_lock_request(struct mvm_object *obj, pgoff_t start, pgoff_t n,
		     u32 flags, u32 lock)
{
	u32 should_return = flags & MACHVM_LOCK_RETURN_MASK;
	bool flush = flags & MACHVM_LOCK_F_FLUSH;
	struct address_space *mapping = obj->inode->i_mapping;
	struct mvm_msg *done;
	struct folio *folio;
	bool dirty, ret, superseded, ended = false;
	unsigned int failed = 0;	/* pages that could not be returned */
	pgoff_t i;

	done = kzalloc(sizeof(*done), GFP_KERNEL_ACCOUNT);
	if (!done)
		return -ENOMEM;
	mvm_count(MACHVM_A_STAT_LOCK_REQUESTS, 1);
	mutex_lock(&obj->page_mutex);
	for (i = start; i < start + n; i++) {
		if (!mvm_tracked(obj, i) && xa_load(&obj->swap, i)) {
			if (should_return != MACHVM_LOCK_RETURN_NONE) {
				/* The default pager holds it: it is dirty. */
				if (mvm_object_swapin_locked(obj, i, true))
					failed++;
			} else if (flush) {
				mvm_swap_forget_slot(obj, i);
			}
		}
		if (!mvm_tracked(obj, i))
			continue;
		superseded = false;
		if (mvm_pg_test(obj, i, MVM_PG_RETURNING)) {
			if (should_return == MACHVM_LOCK_RETURN_NONE) {
				if (flush)
					mvm_pg_test_clear(obj, i, MVM_PG_KEEP);
				continue;
			}
			/*
			 * Under an earlier DATA_RETURN, whose copy may predate
			 * a write: that return ends unanswered (its late
			 * answers are stale) and the page goes back again,
			 * as this request says, before LOCK_COMPLETED.
			 */
			mvm_return_end(obj, i);
			superseded = true;
			ended = true;
		}
		folio = mvm_folio_lock_get(mapping, i);
		if (!folio) {
			mvm_page_untrack(obj, i);
			continue;
		}
		/*
		 * The write lock first, under the folio lock, as
		 * page_mkwrite() tests it: a write fault after this asks
		 * the pager, and one before left its mark in the PTE that
		 * the unmap moves to the folio.  Locked after the dirty
		 * test, a write in between would stay, unreturned.
		 */
		if ((flags & MACHVM_LOCK_F_LOCK) && (lock & PROT_WRITE))
			mvm_pg_set(obj, i, MVM_PG_WLOCK);
		mvm_unmap_page(obj, i);
		if (superseded)		/* the pager may not have its data */
			folio_mark_dirty(folio);
		/* In swap too: the default pager's copy is newer. */
		dirty = folio_test_dirty(folio) || xa_load(&obj->swap, i);
		ret = should_return == MACHVM_LOCK_RETURN_ALL ||
		      (should_return == MACHVM_LOCK_RETURN_DIRTY &&
		       (dirty || mvm_pg_test(obj, i, MVM_PG_PRECIOUS)));
		if (ret) {
			/* Not returned (-EBUSY, -ENOMEM): kept, not flushed. */
			if (mvm_return_start(obj, i, folio,
					     flush ? 0 : BIT(MVM_PG_KEEP),
					     flush ? MACHVM_RETURN_F_FLUSH : 0))
				failed++;
		} else if (flush && mvm_drop(obj, i, folio, MVM_DROP_DISCARD |
							 MVM_DROP_FORCE)) {
			/* Flush without return discards, changes or not. */
			mvm_swap_forget_slot(obj, i);
		}
		folio_unlock(folio);
		folio_put(folio);
	}
	/*
	 * The lock value, on what is still resident (write locks on the pages
	 * looked at above are set already).
	 */
	for (i = start; i < start + n && (flags & MACHVM_LOCK_F_LOCK); i++) {
		if (!mvm_tracked(obj, i))
			continue;
		if (lock & PROT_WRITE) {
			/* Write-protect it everywhere: writes fault again. */
			if (!mvm_pg_test(obj, i, MVM_PG_WLOCK)) {
				mvm_pg_set(obj, i, MVM_PG_WLOCK);
				mvm_unmap_page(obj, i);
			}
		} else if (mvm_pg_test_clear(obj, i, MVM_PG_WLOCK)) {
			mvm_unlock_complete(obj, i, i + 1);
		}
	}
	if (ended)	/* a return we ended may have been a dying object's last */
		mvm_obj_unlock(obj);
	else
		mutex_unlock(&obj->page_mutex);
	INIT_LIST_HEAD(&done->node);
	done->owned = true;
	done->m.type = MACHVM_MSG_LOCK_COMPLETED;
	done->m.object = obj->id;
	done->m.name = obj->name;
	done->m.offset = (u64)start << PAGE_SHIFT;
	done->m.length = (u64)n << PAGE_SHIFT;
	done->m.count = failed;
	mvm_pager_queue(obj->pager, done);
	return 0;
}

static unsigned long mvm_shrink_count(struct shrinker *s,
				      struct shrink_control *sc)
{
	return mvm_nr_scannable();
}

/*
 * May this reclaim wait for the pageout thread?  Only a task that may
 * sleep in reclaim (__GFP_DIRECT_RECLAIM) and may enter I/O and file
 * systems (__GFP_IO and __GFP_FS, after the task's scoped NOIO/NOFS, as
 * Linux's reclaim gives them): the thread writes to a swap file, so a
 * task inside a file system or in a NOIO section must not wait for it.
 * Only from reclaim (current->reclaim_state; drop_caches takes what goes
 * without I/O).  Never kswapd (it pages out itself, and others wait for
 * it), never the thread, never a task inside a pass (it holds
 * mvm_pageout_mutex), never when pageout said it cannot free anything or
 * just failed to.  A waiter may hold an object's page_mutex (the fault
 * path's fill allocates before it, and under it in a NOFS scope; see
 * mvm_fill_local(); a pager's supply does not): while anyone waits, the
 * thread's passes only trylock page_mutex (MVM_PASS_TRY), so it never
 * sleeps on a lock a waiter holds.  Every wait is killable and ends after
 * MVM_RECLAIM_WAIT whatever the thread does.  On kernels before 6.7 the
 * caller (shrink_slab()) holds shrinker_rwsem for read across it, as
 * around any shrinker that sleeps.
 */
static bool mvm_reclaim_may_wait(const struct shrink_control *sc)
{
	const gfp_t need = __GFP_DIRECT_RECLAIM | __GFP_IO | __GFP_FS;

	return (sc->gfp_mask & need) == need && current->reclaim_state &&
	       !current_is_kswapd() &&
	       current != mvm_pageoutd && READ_ONCE(mvm_pass_owner) != current &&
	       !READ_ONCE(mvm_stuck) &&
	       time_after_eq(jiffies, READ_ONCE(mvm_reclaim_futile));
}

/* Take up to @want pages of credit: pages freed that nobody reported. */
static unsigned long mvm_reclaim_take(unsigned long want)
{
	long c = atomic_long_read(&mvm_reclaim_credit), got;

	do {
		if (c <= 0)
			return 0;
		got = min_t(long, c, want);
	} while (!atomic_long_try_cmpxchg(&mvm_reclaim_credit, &c, c - got));
	return got;
}

/*
 * Wait up to MVM_RECLAIM_WAIT (killable) for the pageout thread to free
 * @want pages; returns the pages freed meanwhile that this task may
 * count (each freed page is counted by one waiter only).
 */
static unsigned long mvm_reclaim_wait(unsigned long want)
{
	unsigned long deadline = jiffies + MVM_RECLAIM_WAIT, got = 0;
	long left;

	atomic_inc(&mvm_reclaim_waiters);
	mvm_pageout_kick();
	for (;;) {
		got += mvm_reclaim_take(want - got);
		left = (long)(deadline - jiffies);
		if (got >= want || left <= 0 || READ_ONCE(mvm_stuck))
			break;
		if (wait_event_killable_timeout(mvm_room_wq,
						atomic_long_read(&mvm_reclaim_credit) > 0 ||
						READ_ONCE(mvm_stuck), left) < 0)
			break;
	}
	/* The last waiter out: pages freed from now on are nobody's. */
	if (atomic_dec_and_test(&mvm_reclaim_waiters))
		atomic_long_set(&mvm_reclaim_credit, 0);
	if (!got)
		WRITE_ONCE(mvm_reclaim_futile, jiffies + MVM_RECLAIM_BACKOFF);
	return got;
}

/*
 * Linux needs memory.  kswapd pages out now, writing to swap as Linux's
 * own reclaim does (never sleeping on our locks).  Direct reclaim first
 * drops what needs no I/O (it may be inside a file system and must not
 * sleep on our locks); if that is not enough, the rest is asked of the
 * pageout thread, and a reclaimer that may block (mvm_reclaim_may_wait())
 * waits for it, a bounded time, and reports the pages it freed.  Without
 * that wait, a task dirtying machvm pages faster than kswapd writes them
 * found nothing to reclaim (machvm pages are unevictable to Linux, and
 * without Linux swap so is anonymous memory) and was OOM-killed, although
 * machvm could have written its pages to a swap store.
 *
 * Freed pages are reported with mm_account_reclaimed_pages() (that is
 * what reclaim counts as progress) and returned: the pages this pass
 * freed, plus those the thread freed while we waited and that no other
 * waiter counted.
 */
static unsigned long mvm_shrink_scan(struct shrinker *s,
				     struct shrink_control *sc)
{
	bool io = current_is_kswapd() &&
		  (sc->gfp_mask & (__GFP_IO | __GFP_FS)) ==
		  (__GFP_IO | __GFP_FS);
	struct mvm_pass p = {
		.target = sc->nr_to_scan,
		.mode = MVM_PASS_TRY | (io ? 0 : MVM_PASS_NOIO) |
			(READ_ONCE(mvm_shrink_force) ? MVM_PASS_FORCE : 0),
		.max_scan = 4 * sc->nr_to_scan + MVM_IO_MAX,
	};
	unsigned long freed;

	/* Busy: another pass (maybe the thread's) runs; or it is ours. */
	if (mutex_trylock(&mvm_pageout_mutex)) {
		mvm_pass_run(&p);
		mutex_unlock(&mvm_pageout_mutex);
		WRITE_ONCE(mvm_shrink_force,
			   p.res.freed < sc->nr_to_scan / 2);
		/*
		 * Only referenced pages: their bits are clear now and the
		 * next call frees (forced).  Say 0, not SHRINK_STOP, so that
		 * reclaim calls again, as Linux's own LRUs rotate referenced
		 * objects and go on.
		 */
		if (!p.res.freed && p.aged)
			return 0;
	}
	freed = p.res.freed;
	if (freed < sc->nr_to_scan) {
		atomic_long_add(sc->nr_to_scan - freed, &mvm_shrink_want);
		if (mvm_reclaim_may_wait(sc))
			freed += mvm_reclaim_wait(sc->nr_to_scan - freed);
		else
			mvm_pageout_kick();
	}
	mm_account_reclaimed_pages(freed);	/* progress, for reclaim */
	return freed ?: SHRINK_STOP;
}

void mvm_pageout_get(struct mvm_tunables *t, u64 *resident, u64 *returning,
		     bool *stuck)
{
	spin_lock(&mvm_tun_lock);
	*t = mvm_tun;
	spin_unlock(&mvm_tun_lock);
	*resident = percpu_counter_sum_positive(&mvm_nr_resident);
	spin_lock(&mvm_lru_lock);
	*returning = mvm_nr_returning;
	spin_unlock(&mvm_lru_lock);
	*stuck = READ_ONCE(mvm_stuck);
}

static int mvm_tunables_check(const struct mvm_tunables *t, const char **why)
{
	if (t->limit < 16 || t->limit > MVM_MAX_LIMIT) {
		*why = "limit must be 16 to 2^40 pages";
		return -EINVAL;
	}
	if (t->obj_limit > MVM_MAX_LIMIT) {
		*why = "object limit must be at most 2^40 pages";
		return -EINVAL;
	}
	if (!t->low || t->low >= t->high || t->high > 100) {
		*why = "watermarks need 1 <= low < high <= 100";
		return -EINVAL;
	}
	if (!t->batch || t->batch > 65536) {
		*why = "batch must be 1..65536";
		return -EINVAL;
	}
	if (t->interval_ms < 10 || t->interval_ms > 60000) {
		*why = "interval must be 10..60000 ms";
		return -EINVAL;
	}
	return 0;
}

/*
 * SET_PAGEOUT: the tunables in @which (MVM_TUN_*) take their values from
 * @want, the others keep theirs.  The result is checked whole, and
 * applied only if it passes, under one lock: a concurrent SET_PAGEOUT
 * can neither slip an invalid pair (low >= high) in between nor be lost.
 */
int mvm_pageout_set(const struct mvm_tunables *want, unsigned int which,
		    const char **why)
{
	struct mvm_tunables t;
	int ret;

	spin_lock(&mvm_tun_lock);
	t = mvm_tun;
	if (which & MVM_TUN_LIMIT)
		t.limit = want->limit;
	if (which & MVM_TUN_OBJ_LIMIT)
		t.obj_limit = want->obj_limit;
	if (which & MVM_TUN_HIGH)
		t.high = want->high;
	if (which & MVM_TUN_LOW)
		t.low = want->low;
	if (which & MVM_TUN_BATCH)
		t.batch = want->batch;
	if (which & MVM_TUN_INTERVAL)
		t.interval_ms = want->interval_ms;
	ret = mvm_tunables_check(&t, why);
	if (!ret) {
		WRITE_ONCE(mvm_tun.limit, t.limit);
		WRITE_ONCE(mvm_tun.obj_limit, t.obj_limit);
		WRITE_ONCE(mvm_tun.high, t.high);
		WRITE_ONCE(mvm_tun.low, t.low);
		WRITE_ONCE(mvm_tun.batch, t.batch);
		WRITE_ONCE(mvm_tun.interval_ms, t.interval_ms);
	}
	spin_unlock(&mvm_tun_lock);
	if (ret)
		return ret;
	mvm_pageout_unstick();
	mvm_pageout_kick();
	wake_up_all(&mvm_room_wq);
	return 0;
}

/* Count objects with their own limit (the daemon scans for them). */
void mvm_pageout_limit_changed(u64 old, u64 new)
{
	if (!old && new)
		atomic_inc(&mvm_nr_limited);
	else if (old && !new)
		atomic_dec(&mvm_nr_limited);
	mvm_pageout_kick();
}

int mvm_pageout_init(void)
{
	struct mvm_tunables t = {
		.limit = resident_limit ?: totalram_pages() / 2,
		.obj_limit = object_limit,
		.high = high_pct,
		.low = low_pct,
		.batch = scan_batch,
		.interval_ms = interval_ms,
	};
	const char *why = NULL;
	int ret;

	ret = mvm_tunables_check(&t, &why);
	if (ret) {
		pr_err("bad module parameters: %s\n", why);
		return ret;
	}
	mvm_tun = t;
	ret = percpu_counter_init(&mvm_nr_resident, 0, GFP_KERNEL);
	if (ret)
		return ret;
	mvm_pgbits_cache = KMEM_CACHE(mvm_pgbits, 0);
	if (!mvm_pgbits_cache) {
		ret = -ENOMEM;
		goto err_counter;
	}
	mvm_pageoutd = kthread_run(mvm_pageoutd_fn, NULL, "machvm-pageoutd");
	if (IS_ERR(mvm_pageoutd)) {
		ret = PTR_ERR(mvm_pageoutd);
		goto err_cache;
	}
	mvm_shrinker = mvm_shrinker_create(mvm_shrink_count, mvm_shrink_scan);
	if (!mvm_shrinker) {
		ret = -ENOMEM;
		goto err_thread;
	}
	return 0;

err_thread:
	kthread_stop(mvm_pageoutd);
err_cache:
	kmem_cache_destroy(mvm_pgbits_cache);
err_counter:
	percpu_counter_destroy(&mvm_nr_resident);
	return ret;
}

void mvm_pageout_exit(void)
{
	mvm_shrinker_destroy(mvm_shrinker);
	kthread_stop(mvm_pageoutd);
	rcu_barrier();	/* mvm_pgbits frees in flight */
	kmem_cache_destroy(mvm_pgbits_cache);
	percpu_counter_destroy(&mvm_nr_resident);
}
