/* SPDX-License-Identifier: GPL-2.0 */
/* Memory objects: files, page caches, creation, commands (object.c). */
#ifndef _MVM_OBJECT_H
#define _MVM_OBJECT_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/xarray.h>
#include "machvm.h"
#include "swap.h"

struct mvm_msg;
struct mvm_pager;
struct sk_buff;

enum mvm_obj_state { MVM_OBJ_NEW, MVM_OBJ_INIT_SENT, MVM_OBJ_READY };

#define MVM_RA_STREAMS	4	/* sequential swap-in streams per object */

/*
 * One memory object.  Refcounted: the object file (file->private_data)
 * holds one, the pager's id table holds one while the control id is live;
 * a sleeping fault holds the file.  The object owns one reference on its
 * inode, whose address_space is the object's page cache; pages go when
 * the last reference does.
 *
 * Swap slots: obj->swap maps a page index to an xa_mk_value() of
 * MVM_SLOT(store id, slot) (swap.h).  An entry means the store holds the
 * page as of the last time it was written there; it stays while the page
 * lives (resident again or not) so a clean page is dropped without I/O,
 * and goes when the page is freed, taken by its pager, or the object dies.
 */
struct mvm_object {
	struct kref ref;
	struct rw_semaphore supply_sem;	/* read: supply; write: destroy */
	/*
	 * Serializes every change of which pages are resident or in swap:
	 * insertions (supply, swap-in, zero-fill), removals (pageout,
	 * flush, destroy), obj->pages and obj->swap.  Not held across swap
	 * I/O of the fault path and the pageout thread (the pages under I/O
	 * stay locked in the page cache instead: mvm_swapin_read(),
	 * mvm_wb_write()); held across other callers' swap I/O, never while
	 * waiting on user space.
	 */
	struct mutex page_mutex;
	struct xarray pages;	/* index / BITS_PER_LONG -> struct mvm_pgbits
				 * (pageout.c); page_mutex, and RCU for
				 * lockless readers
				 */
	struct xarray rets;	/* index -> struct mvm_ret (pageout.c) of a
				 * page under DATA_RETURN; page_mutex
				 */
	/*
	 * The pageout clock (pageout.c): the object's place on mvm_clock,
	 * from its first tracked page to its free (clock: mvm_lru_lock;
	 * clocked: set under page_mutex, cleared when the last reference
	 * is gone), and the index its next visit begins at (hand: passes,
	 * under mvm_pageout_mutex).
	 */
	struct list_head clock;
	bool clocked;
	pgoff_t hand;
	struct xarray swap;	/* index -> slot value; page_mutex */
	/*
	 * The existence map: index / MVM_EXISTS_BITS -> a value entry with a
	 * bit per page the pager has (supplied with data, or its DATA_RETURN
	 * taken); never cleared while the object lives.  Set under the
	 * array's lock (mvm_pager_gets()) before the pages can leave memory;
	 * read locklessly (RCU), and authoritatively under page_mutex after
	 * the page was found missing (mvm_object_swapin_spare()).
	 */
	struct xarray exists;
	bool existence;		/* MACHVM_READY_F_EXISTENCE: pages not in
				 * the map are zero-filled here, never asked
				 * for; WRITE_ONCE under lock, READ_ONCE
				 */
	bool temporary;		/* MACHVM_READY_F_TEMPORARY: pages dropped,
				 * not returned, at termination; WRITE_ONCE
				 * under lock, READ_ONCE
				 */
	bool exists_lost;	/* the map missed a page (no memory): never
				 * trusted again; WRITE_ONCE, READ_ONCE
				 */
	atomic_long_t nr_resident;	/* tracked pages */
	atomic_long_t nr_swapped;	/* entries in swap */
	/*
	 * Swap read-ahead (mvm_swapin_window()), page_mutex: the sequential
	 * streams last seen, each the index its reader faults on next (just
	 * past its last swap-in) and the window that swap-in asked for.  A
	 * swap-in at a stream's next index doubles its window, up to
	 * MVM_IO_MAX; any other starts a stream (replacing the oldest) with
	 * the window its read-ahead has earned (ra_window).  Several, so
	 * that threads reading their own parts of one object each stay
	 * sequential.
	 */
	struct mvm_ra_stream {
		pgoff_t next;
		unsigned int window;
	} ra[MVM_RA_STREAMS];
	unsigned int ra_oldest;	/* the stream a new one replaces */
	/*
	 * Read-ahead outside streams, as Linux's swap read-ahead adapts its
	 * window: ra_hits counts faults that found a page such a read brought
	 * in (folio flag readahead; mvm_fault(), without page_mutex), and
	 * each such swap-in sizes its window from the hits since the last one
	 * (ra_window: the last such window; page_mutex).
	 */
	atomic_t ra_hits;
	unsigned int ra_window;
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
	/*
	 * Faults that may add a page without waiting for room: one for each
	 * wait for room that ended with none (mvm_wait_room()).  The waiting
	 * fault returned VM_FAULT_RETRY; its retry, or any fault that would
	 * wait, takes the grant (mvm_fault()).  A retry from GUP (mlock,
	 * MAP_POPULATE, madvise populate) starts over without
	 * FAULT_FLAG_TRIED: without the grant it would wait again, forever,
	 * over mlocked pages.
	 */
	atomic_t room_grants;
	/*
	 * How long a fault spins for its pager's answer before it sleeps
	 * (mvm_wait_spin()), nanoseconds, 0: it sleeps at once.  Adapted by
	 * the faults that wait (mvm_spin_adapt()); READ_ONCE/WRITE_ONCE, a
	 * lost update costs one fault a spin too long or too short.
	 */
	u32 spin_ns;
	spinlock_t lock;	/* see each field's comment */
	enum mvm_obj_state state;	/* lock */
	bool destroyed;		/* DESTROY or terminate: no more pages; lock */
	bool orphaned;		/* its pager is gone; lock */
	bool mapped;		/* mmap()ed at least once (init sent); lock */
	bool announced;		/* creation completed (counted, announced);
				 * lock
				 */
	bool cluster_return;	/* the pager takes DATA_RETURNs of several
				 * pages (MACHVM_READY_F_CLUSTER_RETURN);
				 * WRITE_ONCE under lock, READ_ONCE
				 */
	unsigned int nr_reqs;	/* length of reqs; lock */
	struct machvm_attr attr;	/* lock; cluster_pages also read
					 * locklessly by fault-around
					 * (mvm_map_pages): WRITE_ONCE
					 */
	struct list_head reqs;	/* pending struct mvm_req (fault.h); lock */
	struct list_head owed;	/* struct mvm_owed: SIGBUS due on retry,
				 * or the request an interrupted wait
				 * goes on with; lock
				 */
	unsigned int nr_owed;	/* length of owed; lock */
	struct mvm_msg *init_msg;	/* preallocated, sent on first mmap;
					 * lock
					 */
	struct mvm_msg *term_msg;	/* preallocated, sent at the end;
					 * lock
					 */

	/* Set at creation, constant after. */
	struct mvm_pager *pager;	/* holds a pager reference */
	struct inode *inode;		/* holds an inode reference */
	u64 id;
	u64 name;
	u64 size;
	pgoff_t npages;
	u32 max_prot;

	/* Statistics, read locklessly by netlink. */
	atomic64_t faults, requests, supplied, errors, timeouts;
	atomic64_t pageouts, pageins, returned, default_taken, scans, ref_hits;
};

/* A page (not a shadow entry) at @index in @mapping's page cache. */
static inline bool mvm_page_present(struct address_space *mapping,
				    pgoff_t index)
{
	void *entry = xa_load(&mapping->i_pages, index);

	return entry && !xa_is_value(entry);
}

/* Bits of the existence map per entry: what a value entry holds. */
#define MVM_EXISTS_BITS	(BITS_PER_LONG - 1)

/* Does the pager have page @index (the existence map)?  See obj->exists. */
static inline bool mvm_pager_has(struct mvm_object *obj, pgoff_t index)
{
	void *e = xa_load(&obj->exists, index / MVM_EXISTS_BITS);

	return xa_is_value(e) &&
	       (xa_to_value(e) & BIT(index % MVM_EXISTS_BITS));
}

/*
 * Is a missing page @index, not in swap, zero-filled here rather than
 * asked of the pager?  For an anonymous object, and for one whose pager
 * said MACHVM_READY_F_EXISTENCE and does not have the page.
 */
static inline bool mvm_fills_zero(struct mvm_object *obj, pgoff_t index)
{
	return obj->anon ||
	       (READ_ONCE(obj->existence) && !READ_ONCE(obj->exists_lost) &&
		!mvm_pager_has(obj, index));
}

/*
 * A page in the cache whose swap-in read is under way: locked, not yet
 * uptodate (no other page is ever in the cache not uptodate).
 */
static inline bool mvm_page_reading(struct address_space *mapping,
				    pgoff_t index)
{
	struct folio *folio;
	bool reading;

	rcu_read_lock();
	folio = xa_load(&mapping->i_pages, index);
	reading = folio && !xa_is_value(folio) && !folio_test_uptodate(folio);
	rcu_read_unlock();
	return reading;
}

/*
 * A swap-in started under page_mutex and read after it is dropped
 * (mvm_object_swapin_spare(), mvm_swapin_read()): the folios of
 * [index, index + n), locked in the page cache, not uptodate, tracked,
 * each with our reference, read from slots slot .. slot + n - 1.  On the
 * stack of the task that reads; nobody else sees it.
 */
struct mvm_swapin {
	struct folio *folio[MVM_IO_MAX];
	pgoff_t index;
	u64 slot;
	unsigned int n;
};

extern const struct file_operations mvm_object_fops;

int mvm_object_init(void);
void mvm_object_exit(void);
int mvm_object_create(struct mvm_pager *pager,
		      struct machvm_object_create *oc,
		      struct machvm_object_create __user *uoc);
int mvm_anon_create(struct machvm_anon_create *ac,
		    struct machvm_anon_create __user *uac);
void mvm_object_put(struct mvm_object *obj);
struct pid *mvm_object_pid(struct mvm_object *obj);
void mvm_object_orphan(struct mvm_object *obj);
void mvm_object_returns_done(struct mvm_object *obj);
int mvm_cmd_check_fields(const struct machvm_cmd *c);
int mvm_object_exec(struct mvm_object *obj, const struct machvm_cmd *c);

struct mvm_object *mvm_object_get(u64 name);
struct mvm_object *mvm_object_next(u64 *name);
void mvm_objects_walk(void (*fn)(struct mvm_object *, void *), void *arg);
unsigned int mvm_object_count(void);
int mvm_object_destroy_by_name(u64 name);
void mvm_object_set_limit(struct mvm_object *obj, u64 limit);
int mvm_object_region(struct vm_area_struct *vma, struct machvm_region *r);
int mvm_object_fill(struct sk_buff *skb, struct mvm_object *obj);

struct folio *mvm_folio_alloc(struct mvm_object *obj);
void mvm_pager_gets(struct mvm_object *obj, pgoff_t start, pgoff_t n);
int mvm_folio_insert(struct mvm_object *obj, struct folio *folio,
		     pgoff_t index, unsigned long pgflags);
int mvm_object_swapin(struct mvm_object *obj, pgoff_t index, bool dirty);
int mvm_object_swapin_spare(struct mvm_object *obj, pgoff_t index, bool dirty,
			    struct folio **spare, struct mvm_swapin *rd);
int mvm_swapin_read(struct mvm_object *obj, struct mvm_swapin *rd);
int mvm_object_swapin_locked(struct mvm_object *obj, pgoff_t index,
			     bool dirty);

#endif /* _MVM_OBJECT_H */
