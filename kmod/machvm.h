/* SPDX-License-Identifier: GPL-2.0 */
/*
 * machvm: what every file of the module shares, and nothing else: the
 * ABI header, the feature bits, the global counters and the lock order.
 * Each subsystem declares its own interface in its own header (object.h,
 * fault.h, pager.h, uring.h, pageout.h, swap.h, genl.h, dev.h).
 *
 * Lock order (outermost first); a lock is only ever taken after the ones
 * to its left:
 *
 *   obj->supply_sem -> mvm_pageout_mutex -> obj->page_mutex ->
 *   folio lock -> mvm_stores_sem (read; swap I/O) -> obj->lock ->
 *   pager->lock
 *
 * and the innermost spinlocks, under which no other lock is taken:
 * mvm_lru_lock (pageout.c), mvm_tun_lock (pageout.c), store->lock
 * (swap.c), the xarray locks of mvm_registry (object.c) and of
 * pager->objects (pager.h).  mvm_stores_sem is taken for write only with
 * no other lock held (store add and removal, swap.c).
 *
 * Swap I/O runs under memalloc_noio_save(): reclaim never recurses into a
 * store, and the shrinker never does I/O from direct reclaim.
 */
#ifndef _MACHVM_H
#define _MACHVM_H

#include <linux/percpu.h>
#include <linux/types.h>
#include <linux/machvm.h>

#define MACHVM_FEATURES	(MACHVM_F_OBJECTS | MACHVM_F_URING_CMD | \
			 MACHVM_F_REGION | MACHVM_F_PAGEOUT | MACHVM_F_ANON | \
			 MACHVM_F_LOCKS | MACHVM_F_CLUSTER_RETURN | \
			 MACHVM_F_FETCH_RELEASE | MACHVM_F_EXISTENCE | \
			 MACHVM_F_TEMPORARY)

/*
 * Global counters, MACHVM_A_STAT_* (index = attribute), per CPU so that
 * no fault writes a cache line another CPU writes too; summed when read
 * (mvm_stat_read(), genl.c).  A gauge (resident, swapped) may be negative
 * on one CPU: only the sum means anything.
 */
struct mvm_stats {
	s64 v[MACHVM_A_STAT_MAX + 1];
};
DECLARE_PER_CPU(struct mvm_stats, mvm_stats);

static inline void mvm_count(int stat, long n)
{
	this_cpu_add(mvm_stats.v[stat], n);
}

u64 mvm_stat_read(int stat);

#endif /* _MACHVM_H */
