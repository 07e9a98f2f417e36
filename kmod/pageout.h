/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pageout: resident-page tracking, the pageout daemon, data_return and
 * lock_request (pageout.c).
 */
#ifndef _MVM_PAGEOUT_H
#define _MVM_PAGEOUT_H

#include <linux/types.h>
#include "machvm.h"

struct folio;
struct mvm_object;

/*
 * Per-page pageout flags (struct mvm_pgbits in pageout.c; pgflags of
 * mvm_page_track() is a mask of BIT(MVM_PG_x)).
 */
enum {
	MVM_PG_REF,		/* referenced since the last scan */
	MVM_PG_RETURNING,	/* under DATA_RETURN: has a struct mvm_ret */
	MVM_PG_PRECIOUS,	/* supplied precious: return even when clean */
	MVM_PG_KEEP,		/* RETURNING for a lock_request without flush */
	MVM_PG_WLOCK,		/* write-locked: mapped read-only */
	MVM_PG_TRACKED,		/* resident and tracked */
	MVM_PG_NR
};

struct mvm_pageout_result {
	u64 scanned, freed, returning;
};

struct mvm_tunables {
	u64 limit, obj_limit;
	u32 high, low, batch, interval_ms;
};

/* Which members of struct mvm_tunables a SET_PAGEOUT gives. */
enum {
	MVM_TUN_LIMIT = BIT(0),
	MVM_TUN_OBJ_LIMIT = BIT(1),
	MVM_TUN_HIGH = BIT(2),
	MVM_TUN_LOW = BIT(3),
	MVM_TUN_BATCH = BIT(4),
	MVM_TUN_INTERVAL = BIT(5),
};

int mvm_pageout_init(void);
void mvm_pageout_exit(void);

/* Tracking, for object.c and fault.c. */
int mvm_page_track(struct mvm_object *obj, pgoff_t index,
		   unsigned long pgflags);
void mvm_pages_referenced(struct mvm_object *obj, pgoff_t start, pgoff_t end);
bool mvm_page_wlocked(struct mvm_object *obj, pgoff_t index);
int mvm_page_overwrite(struct mvm_object *obj, pgoff_t index,
		       struct folio *src, u32 lock);
void mvm_pages_release(struct mvm_object *obj);
void mvm_pageout_forget(struct mvm_object *obj);
void mvm_pages_untrack_absent(struct mvm_object *obj, pgoff_t start,
			      unsigned int n);

/* Resident limits. */
bool mvm_room(struct mvm_object *obj);
int mvm_throttle(struct mvm_object *obj);
bool mvm_mem_low(void);
int mvm_mem_wait(void);
void mvm_reclaim_object(struct mvm_object *obj, unsigned long nr);
u64 mvm_default_obj_limit(void);
void mvm_pageout_limit_changed(u64 old, u64 new);
void mvm_pageout_unstick(void);

/* An object's pager goes, or the object does. */
void mvm_pageout_orphan(struct mvm_object *obj);
bool mvm_pageout_terminate(struct mvm_object *obj);

/* Pager commands. */
int mvm_return_copy(struct mvm_object *obj, pgoff_t start, pgoff_t n,
		    u64 seq, char __user *dst);
int mvm_return_done(struct mvm_object *obj, pgoff_t start, pgoff_t n,
		    u64 seq, int error);
int mvm_lock_request(struct mvm_object *obj, pgoff_t start, pgoff_t n,
		     u32 flags, u32 lock);

/* Netlink. */
int mvm_pageout_run(u64 target, struct mvm_object *only, bool force,
		    struct mvm_pageout_result *res);
void mvm_pageout_get(struct mvm_tunables *t, u64 *resident, u64 *returning,
		     bool *stuck);
int mvm_pageout_set(const struct mvm_tunables *want, unsigned int which,
		    const char **why);

#endif /* _MVM_PAGEOUT_H */
