/* SPDX-License-Identifier: GPL-2.0 */
/*
 * machvm internal interfaces shared by the module's files.
 *
 * Objects and their lifetimes
 * ---------------------------
 *
 * struct mvm_pager - one pager endpoint (an anon file).  Refcounted: the
 *   endpoint file holds one reference and every object it created holds
 *   one (obj->pager), so a pager outlives its objects' last users.
 *
 * struct mvm_object - one memory object.  Refcounted: the object file
 *   (file->private_data) holds one, the pager's id table holds one while
 *   the control id is live; a sleeping fault holds the file.  The object owns
 *   one reference on its inode, whose address_space is the object's page
 *   cache; pages go when the last reference does.
 *
 * struct mvm_req - one outstanding data_request.  Refcounted: the object's
 *   request list holds one while it is pending, each sleeping fault one.
 *   Its embedded message sits on the pager queue until delivered; it is
 *   taken off the queue (under the pager lock) before the request can go.
 *
 * struct mvm_page - pageout bookkeeping of one resident page (pageout.c).
 *   Exists while the page is in the object's page cache and tracked;
 *   created and freed only under obj->page_mutex, so holding that mutex
 *   keeps every mvm_page of the object alive.  Its list node is under
 *   mvm_lru_lock.  Holds no references: the object frees its pages (all
 *   of them, under page_mutex) before it goes.
 *
 * struct mvm_store - one swap store (swap.c).  Published in mvm_stores[]
 *   under mvm_stores_sem (write); every I/O and slot operation holds the
 *   semaphore for read, so a store is never freed under one.  Removal
 *   first stops allocations, reads every page back, then unpublishes.
 *
 * Swap slots: obj->swap maps a page index to an xa_mk_value() of
 *   MVM_SLOT(store id, slot).  An entry means the store holds the page as
 *   of the last time it was written there; it stays while the page lives
 *   (resident again or not) so a clean page is dropped without I/O, and
 *   goes when the page is freed, taken by its pager, or the object dies.
 *
 * Lock order: obj->supply_sem -> mvm_pageout_mutex -> obj->page_mutex ->
 *   folio lock -> mvm_stores_sem (read; swap I/O) -> obj->lock ->
 *   pager->lock; mvm_lru_lock and store->lock are innermost spinlocks.
 *   Swap I/O runs under memalloc_noio_save(): reclaim never recurses
 *   into a store, and the shrinker never does I/O from direct reclaim.
 */
#ifndef _MACHVM_H
#define _MACHVM_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include "uapi/machvm.h"

#define MACHVM_FEATURES	(MACHVM_F_OBJECTS | MACHVM_F_URING_CMD | \
			 MACHVM_F_REGION | MACHVM_F_PAGEOUT | MACHVM_F_ANON | \
			 MACHVM_F_LOCKS)

/* Most messages queued on one endpoint before optional ones are refused. */
#define MVM_MAX_QUEUED	65536

/* A queued message; embedded in a request or standalone (@owned). */
struct mvm_msg {
	struct list_head node;	/* on pager->msgs; empty when not queued */
	bool owned;		/* kfree()d by the pager once delivered */
	struct machvm_msg m;
};

/* Global counters, MACHVM_A_STAT_* (index = attribute). */
extern atomic64_t mvm_stats[MACHVM_A_STAT_MAX + 1];

static inline void mvm_count(int stat, long n)
{
	atomic64_add(n, &mvm_stats[stat]);
}

struct mvm_pager {
	struct kref ref;
	struct pid *pid;	/* creator's thread group; holds a reference */
	spinlock_t lock;	/* protects msgs, nr_msgs, fetches (and each
				 * fetch's state), dead, seq, last_task
				 */
	struct list_head msgs;	/* struct mvm_msg, oldest first */
	struct list_head fetches; /* idle io_uring FETCHes, struct mvm_fetch */
	bool dead;		/* endpoint released: queue nothing more */
	unsigned int nr_msgs;	/* length of msgs */
	u64 seq;
	u32 next_id;		/* cyclic id allocation; under objects' lock */
	void *last_task;	/* got the last message; compared only */
	wait_queue_head_t wq;	/* read(2) and poll(2) */
	struct xarray objects;	/* control id -> object (holds a ref); entries
				 * leave only by xa_cmpxchg(obj -> NULL), so
				 * exactly one path drops that ref
				 */
	struct delayed_work monitor; /* idle / exiting-task FETCH reaper */
};

enum mvm_obj_state { MVM_OBJ_NEW, MVM_OBJ_INIT_SENT, MVM_OBJ_READY };

struct mvm_object {
	struct kref ref;
	struct rw_semaphore supply_sem;	/* read: supply; write: destroy */
	/*
	 * Serializes every change of which pages are resident or in swap:
	 * insertions (supply, swap-in, zero-fill), removals (pageout,
	 * flush, destroy), obj->pages and obj->swap.  Held across one page's
	 * swap I/O, never while waiting on user space.
	 */
	struct mutex page_mutex;
	struct xarray pages;	/* index -> struct mvm_page; page_mutex */
	struct xarray swap;	/* index -> slot value; page_mutex */
	atomic_long_t nr_resident;	/* tracked pages */
	atomic_long_t nr_swapped;	/* entries in swap */
	u64 limit;		/* resident limit, pages, 0: none; WRITE_ONCE */
	bool anon;		/* no pager: zero-fill, default pager */
	bool releasing;		/* last right gone, returning written pages;
				 * WRITE_ONCE/READ_ONCE
				 */
	bool terminating;	/* every terminate-time return started
				 * (set under page_mutex)
				 */
	bool term_sent;		/* terminate done; xchg */
	atomic_t nr_ret;	/* pages under DATA_RETURN */
	spinlock_t lock;	/* protects the fields down to term_msg */
	enum mvm_obj_state state;
	bool destroyed;		/* DESTROY or terminate: no more pages */
	bool orphaned;		/* its pager is gone */
	bool mapped;		/* mmap()ed at least once (init sent) */
	bool announced;		/* creation completed (counted, announced) */
	unsigned int nr_reqs;	/* length of reqs */
	struct machvm_attr attr;
	struct list_head reqs;	/* pending struct mvm_req */
	struct list_head owed;	/* struct mvm_owed: SIGBUS due on retry */
	unsigned int nr_owed;
	struct mvm_msg *init_msg;	/* preallocated, sent on first mmap */
	struct mvm_msg *term_msg;	/* preallocated, sent at the end */

	/* Set at creation, constant after. */
	struct mvm_pager *pager;	/* holds a pager reference */
	struct inode *inode;		/* holds an inode reference */
	u64 id;
	u64 name;
	u64 size;
	pgoff_t npages;
	u32 max_prot;

	/* Statistics, read locklessly by netlink. */
	atomic_t mappings;	/* live VMAs */
	atomic64_t faults, requests, supplied, errors, timeouts;
	atomic64_t pageouts, pageins, returned, default_taken, scans, ref_hits;
};

/* enum mvm_page flag bits (struct mvm_page.flags, atomic bitops). */
enum {
	MVM_PG_REF,		/* referenced since the last scan */
	MVM_PG_RETURNING,	/* under DATA_RETURN; on mvm_returning */
	MVM_PG_PRECIOUS,	/* supplied precious: return even when clean */
	MVM_PG_KEEP,		/* RETURNING for a lock_request without flush */
	MVM_PG_WLOCK,		/* write-locked: mapped read-only */
};

struct mvm_page {
	struct list_head lru;	/* mvm_fifo or mvm_returning; mvm_lru_lock */
	struct rcu_head rcu;	/* freed after a grace period: faults set
				 * MVM_PG_REF under rcu_read_lock() only
				 */
	struct mvm_object *obj;	/* owner; no reference (see above) */
	pgoff_t index;
	unsigned long flags;	/* MVM_PG_* */
	unsigned long deadline;	/* RETURNING: answer due (jiffies);
				 * mvm_lru_lock
				 */
	u64 ret_seq;		/* RETURNING: seq of its DATA_RETURN;
				 * page_mutex
				 */
};

#define MVM_SLOT_SHIFT		40
#define MVM_SLOT(id, slot)	(((u64)(id) << MVM_SLOT_SHIFT) | (slot))
#define MVM_SLOT_ID(v)		((u32)((v) >> MVM_SLOT_SHIFT))
#define MVM_SLOT_NR(v)		((v) & ((1ULL << MVM_SLOT_SHIFT) - 1))

enum mvm_req_state { MVM_REQ_PENDING, MVM_REQ_DONE, MVM_REQ_FAILED };

struct mvm_req {
	struct kref ref;
	struct list_head node;	/* on obj->reqs while pending */
	pgoff_t start;
	pgoff_t npages;
	unsigned long deadline;	/* jiffies */
	int state;		/* enum mvm_req_state; READ_ONCE by waiters */
	int error;
	bool unlock;		/* a data_unlock, not a data_request */
	wait_queue_head_t wq;
	struct mvm_msg msg;	/* the data_request or data_unlock */
};

struct sk_buff;

extern const struct file_operations mvm_object_fops;

int mvm_dev_init(void);
void mvm_dev_exit(void);

int mvm_object_init(void);
void mvm_object_exit(void);
int mvm_object_create(struct mvm_pager *pager,
		      struct machvm_object_create *oc,
		      struct machvm_object_create __user *uoc);
void mvm_object_put(struct mvm_object *obj);
void mvm_object_orphan(struct mvm_object *obj);
int mvm_object_exec(struct mvm_object *obj, const struct machvm_cmd *c);
int mvm_attr_check(const struct machvm_attr *a);

int mvm_object_destroy_by_name(u64 name);
struct mvm_object *mvm_object_get(u64 name);
int mvm_object_region(struct vm_area_struct *vma, struct machvm_region *r);
int mvm_object_fill(struct sk_buff *skb, struct mvm_object *obj);
struct mvm_object *mvm_object_next(u64 *name);
unsigned int mvm_object_count(void);

int mvm_pager_create(struct machvm_pager_create *pc,
		     struct machvm_pager_create __user *upc);
unsigned int mvm_pager_count(void);
void mvm_pager_get(struct mvm_pager *pager);
void mvm_pager_put(struct mvm_pager *pager);
u64 mvm_pager_queue(struct mvm_pager *pager, struct mvm_msg *msg);
bool mvm_pager_unqueue(struct mvm_pager *pager, struct mvm_msg *msg);
int mvm_pager_exec(struct mvm_pager *pager, const struct machvm_cmd *c);
bool mvm_pager_pop(struct mvm_pager *pager, struct machvm_msg *out);
void mvm_pager_requeue(struct mvm_pager *pager, const struct machvm_msg *m);

int mvm_anon_create(struct machvm_anon_create *ac,
		    struct machvm_anon_create __user *uac);
struct folio *mvm_folio_alloc(struct mvm_object *obj);
int mvm_folio_insert(struct mvm_object *obj, struct folio *folio,
		     pgoff_t index, unsigned long pgflags);
int mvm_object_swapin(struct mvm_object *obj, pgoff_t index, bool dirty);
int mvm_swapin_locked(struct mvm_object *obj, pgoff_t index, bool dirty);
void mvm_objects_walk(void (*fn)(struct mvm_object *, void *), void *arg);

/* pageout.c */
struct mvm_pageout_result {
	u64 scanned, freed, returning;
};

struct mvm_tunables {
	u64 limit, obj_limit;
	u32 high, low, batch, interval_ms;
};

int mvm_pageout_init(void);
void mvm_pageout_exit(void);
int mvm_page_track(struct mvm_object *obj, pgoff_t index,
		   unsigned long pgflags);
void mvm_page_referenced(struct mvm_object *obj, pgoff_t index);
void mvm_pages_release(struct mvm_object *obj);
bool mvm_room(struct mvm_object *obj);
bool mvm_page_wlocked(struct mvm_object *obj, pgoff_t index);
void mvm_unlock_complete(struct mvm_object *obj, pgoff_t start, pgoff_t end);
int mvm_page_overwrite(struct mvm_object *obj, pgoff_t index,
		       struct folio *src, u32 lock);
int mvm_throttle(struct mvm_object *obj);
void mvm_reclaim_object(struct mvm_object *obj, unsigned long nr);
void mvm_pageout_orphan(struct mvm_object *obj);
bool mvm_pageout_terminate(struct mvm_object *obj);
void mvm_object_returns_done(struct mvm_object *obj);
int mvm_pageout_run(u64 target, struct mvm_object *only, bool force,
		    struct mvm_pageout_result *res);
void mvm_pageout_get(struct mvm_tunables *t, u64 *resident, u64 *returning,
		     bool *stuck);
int mvm_pageout_set(const struct mvm_tunables *t, const char **why);
u64 mvm_default_obj_limit(void);
void mvm_object_limit_changed(u64 old, u64 new);
int mvm_object_set_limit(u64 name, u64 limit);
void mvm_pageout_unstick(void);
int mvm_return_copy(struct mvm_object *obj, pgoff_t start, pgoff_t n,
		    u64 seq, char __user *dst);
int mvm_return_done(struct mvm_object *obj, pgoff_t start, pgoff_t n,
		    u64 seq, int error);
int mvm_lock_request(struct mvm_object *obj, pgoff_t start, pgoff_t n,
		     u32 flags, u32 lock);
u64 mvm_object_dirty(struct mvm_object *obj);

/* swap.c */
int mvm_swap_init(void);
void mvm_swap_exit(void);
#define MVM_IO_MAX	32	/* pages per swap request */
#define MVM_MAX_LIMIT	BIT_ULL(40)	/* pages; keeps the arithmetic sane */
int mvm_slot_alloc_run(unsigned int want, u64 *slot);
int mvm_slot_io_vec(u64 slot, struct folio **folios, unsigned int nr,
		    bool write);
void mvm_slot_free(u64 slot);
int mvm_slot_io(u64 slot, struct folio *folio, bool write);
void mvm_object_free_slots(struct mvm_object *obj);
void mvm_object_forget_slot(struct mvm_object *obj, pgoff_t index);
int mvm_swap_add(const char *path, u64 size, s32 prio, u32 *id,
		 const char **why);
int mvm_swap_remove(u32 id, const char **why);
int mvm_swap_fill(struct sk_buff *skb, u32 id);
int mvm_swap_next(u32 *id);

int mvm_genl_init(void);
void mvm_genl_exit(void);
void mvm_event(u32 event, u64 name, struct pid *pager, u64 offset);
void mvm_swap_event(u32 event, u32 id, const char *path);

int mvm_uring_init(void);
void mvm_uring_exit(void);
int mvm_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags);
void mvm_uring_kick(struct mvm_pager *pager);
void mvm_uring_monitor(struct work_struct *work);
void mvm_uring_release(struct mvm_pager *pager);

#endif /* _MACHVM_H */
