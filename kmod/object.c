// SPDX-License-Identifier: GPL-2.0
/*
 * Memory objects: their files and page caches, mmap, creation and
 * termination, swap-in of their pages, netlink description, and the pager
 * commands that fill or fail pages (data_supply, data_unavailable,
 * data_error, ready, change_attributes, destroy; returns and lock_request
 * go to pageout.c).
 *
 * Each object has an inode of machvm's pseudo filesystem; its
 * address_space is the object's page cache, so MAP_SHARED mappings are
 * coherent and MAP_PRIVATE gets the kernel's own copy-on-write.  The fault
 * path (fault.c) fills that page cache through the object's pager.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/log2.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <net/genetlink.h>
#include <linux/pagemap.h>
#include <linux/pseudo_fs.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "fault.h"
#include "genl.h"
#include "object.h"
#include "pageout.h"
#include "pager.h"
#include "swap.h"
#include "compat/compat.h"

#define MACHVM_FS_MAGIC		0x4d61636d	/* "Macm" */
#define MVM_PROT_ALL		(PROT_READ | PROT_WRITE | PROT_EXEC)

#define MVM_READAHEAD		8	/* pages per swap-in, as page-cluster 3;
					 * more for a sequential reader
					 */

static struct vfsmount *mvm_mnt;

/* The pager's pid for events; anonymous objects have none. */
struct pid *mvm_object_pid(struct mvm_object *obj)
{
	return obj->pager ? obj->pager->pid : NULL;
}

/* Every object by name, for netlink; entries hold no reference. */
static DEFINE_XARRAY(mvm_registry);
static atomic_t mvm_nr_objects = ATOMIC_INIT(0);	/* in the registry */
static atomic64_t mvm_next_name = ATOMIC64_INIT(0);

static int mvm_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, MACHVM_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type mvm_fs_type = {
	.name = "machvm",
	.init_fs_context = mvm_init_fs_context,
	.kill_sb = kill_anon_super,
};

static const struct address_space_operations mvm_aops = {
	.dirty_folio = noop_dirty_folio,
};

static int mvm_attr_check(const struct machvm_attr *a)
{
	if (a->may_cache > 1 || a->copy_strategy > MACHVM_COPY_DELAY)
		return -EINVAL;
	if (a->cluster_pages > MACHVM_MAX_CLUSTER_PAGES ||
	    (a->cluster_pages && !is_power_of_2(a->cluster_pages)))
		return -EINVAL;
	if (a->timeout_ms && (a->timeout_ms < 10 || a->timeout_ms > 600000))
		return -EINVAL;
	return 0;
}

static void mvm_attr_apply(struct mvm_object *obj, const struct machvm_attr *a)
{
	lockdep_assert_held(&obj->lock);
	obj->attr.may_cache = a->may_cache;
	obj->attr.copy_strategy = a->copy_strategy;
	if (a->cluster_pages)
		WRITE_ONCE(obj->attr.cluster_pages, a->cluster_pages);
	if (a->timeout_ms)
		obj->attr.timeout_ms = a->timeout_ms;
}

struct folio *mvm_folio_alloc(struct mvm_object *obj)
{
	return filemap_alloc_folio(mapping_gfp_mask(obj->inode->i_mapping), 0);
}

/*
 * The pager has [start, start + n) now, or is about to: note it in the
 * existence map before the pages can leave memory (called without
 * page_mutex, before the command takes it: a page noted that the pager
 * then does not get only costs a DATA_REQUEST).  The words are reserved
 * first, with a sleeping allocation, so that the bits are set under the
 * array's lock with nothing to allocate.  If the map cannot grow, the
 * object stops trusting it for good (obj->exists_lost): every missing
 * page is asked of the pager again, as without MACHVM_READY_F_EXISTENCE,
 * since a page missing from the map would be zero-filled over the pager's
 * copy.
 */
void mvm_pager_gets(struct mvm_object *obj, pgoff_t start, pgoff_t n)
{
	unsigned long word, w;
	pgoff_t i;
	void *e;

	if (!n)
		return;
	for (word = start / MVM_EXISTS_BITS;
	     word <= (start + n - 1) / MVM_EXISTS_BITS; word++)
		if (xa_reserve(&obj->exists, word, GFP_KERNEL_ACCOUNT))
			goto lost;
	xa_lock(&obj->exists);
	for (i = start; i < start + n; i++) {
		e = xa_load(&obj->exists, i / MVM_EXISTS_BITS);
		w = xa_is_value(e) ? xa_to_value(e) : 0;
		if (w & BIT(i % MVM_EXISTS_BITS))
			continue;
		if (xa_is_err(__xa_store(&obj->exists, i / MVM_EXISTS_BITS,
					 xa_mk_value(w | BIT(i % MVM_EXISTS_BITS)),
					 GFP_NOWAIT | __GFP_NOWARN))) {
			xa_unlock(&obj->exists);
			goto lost;
		}
	}
	xa_unlock(&obj->exists);
	return;
lost:
	WRITE_ONCE(obj->exists_lost, true);
}

/* *@spare (taken) if there is one, else a new folio. */
static struct folio *mvm_spare_or_alloc(struct mvm_object *obj,
					struct folio **spare)
{
	struct folio *folio = spare ? *spare : NULL;

	if (!folio)
		return mvm_folio_alloc(obj);
	*spare = NULL;
	return folio;
}

/*
 * Insert locked @folio at @index and track it (page_mutex held).  The
 * folio is uptodate, or a swap-in's read into it is about to start
 * (mvm_swapin_read()).  A failed memcg charge is -ENOMEM, never an OOM
 * kill.
 */
int mvm_folio_insert(struct mvm_object *obj, struct folio *folio,
		     pgoff_t index, unsigned long pgflags)
{
	struct address_space *mapping = obj->inode->i_mapping;
	int ret;

	lockdep_assert_held(&obj->page_mutex);
	ret = filemap_add_folio(mapping, folio, index,
				mapping_gfp_mask(mapping) |
				__GFP_RETRY_MAYFAIL | __GFP_NOWARN);
	if (ret)
		return ret;
	if (mvm_page_track(obj, index, pgflags))
		pr_warn_ratelimited("object %llu: page %lu not tracked (no memory); it stays resident\n",
				    obj->name, index);
	return 0;
}

/*
 * The read-ahead stream of a swap-in at @index, with its window: how many
 * pages the swap-in reads at most (page_mutex held).  A reader that faults
 * where a stream's last swap-in ended is sequential (*@seq set): each such
 * swap-in doubles the window, up to MVM_IO_MAX, so a sequential pass costs
 * one I/O per MVM_IO_MAX pages rather than one per MVM_READAHEAD (a request
 * costs about the same at either size).  Any other swap-in starts a stream
 * with the window earned by its read-ahead, as Linux's swap read-ahead
 * does (__swapin_nr_pages()): the hits since the last such swap-in plus
 * two, rounded up to a power of two, up to MVM_READAHEAD; one page
 * without hits, and never less than half the last window.  A random
 * reader, whose read-ahead is never used, reads one page at a time: its
 * neighbours in swap would only push out its working set.  Under a
 * resident limit the window stays within a quarter of it, so read-ahead
 * never pushes out the object's own working set.  The caller sets the
 * stream's ->next.
 */
static struct mvm_ra_stream *mvm_swapin_window(struct mvm_object *obj,
					       pgoff_t index, bool *seq)
{
	u64 limit = READ_ONCE(obj->limit);
	struct mvm_ra_stream *ra = NULL;
	unsigned int i, w, hits;

	lockdep_assert_held(&obj->page_mutex);
	for (i = 0; i < MVM_RA_STREAMS; i++) {
		if (obj->ra[i].window && obj->ra[i].next == index) {
			ra = &obj->ra[i];
			w = min_t(unsigned int, ra->window * 2, MVM_IO_MAX);
			break;
		}
	}
	*seq = !!ra;
	if (!ra) {
		ra = &obj->ra[obj->ra_oldest];
		obj->ra_oldest = (obj->ra_oldest + 1) % MVM_RA_STREAMS;
		hits = atomic_xchg(&obj->ra_hits, 0);
		w = hits ? roundup_pow_of_two(min_t(unsigned int, hits + 2,
						    MVM_READAHEAD)) : 1;
		w = min_t(unsigned int, max(w, obj->ra_window / 2),
			  MVM_READAHEAD);
		obj->ra_window = w;
	}
	if (limit && w > MVM_READAHEAD && w > limit / 4)
		w = max_t(unsigned int, limit / 4, MVM_READAHEAD);
	ra->window = w;
	return ra;
}

/*
 * Start reading @index and the next pages whose slots follow its slot (up
 * to the read-ahead window, not resident) in one request, as Linux's swap
 * read-ahead does; the extra pages come in unreferenced, so they go first
 * if nobody touches them.  Outside a sequential stream they are flagged
 * readahead, as Linux flags its swap read-ahead: fault-around leaves them
 * unmapped, so their first touch faults and counts as a hit of the
 * read-ahead (mvm_fault()), which sizes the next window.  page_mutex
 * held.  The folios go into the page cache locked and not uptodate, and
 * tracked, as Linux's swap cache does:
 * from here every lookup of those pages waits on the folio lock, so the
 * read itself (mvm_swapin_read()) needs no page_mutex.  Read-ahead folios
 * are allocated as Linux's read-ahead does (no retries, no warning): at
 * most MVM_IO_MAX - 1 small allocations under page_mutex, each of which
 * may fail and only shortens the read.
 */
static int mvm_swapin_cluster(struct mvm_object *obj, pgoff_t index, u64 slot,
			      struct folio **spare, struct mvm_swapin *rd)
{
	struct address_space *mapping = obj->inode->i_mapping;
	bool seq;
	struct mvm_ra_stream *ra = mvm_swapin_window(obj, index, &seq);
	gfp_t ra_gfp = mapping_gfp_mask(mapping) | __GFP_NORETRY | __GFP_NOWARN;
	struct folio *folio;
	unsigned int n, i;
	void *entry;

	for (n = 1; n < ra->window && index + n < obj->npages; n++) {
		entry = xa_load(&obj->swap, index + n);
		if (!entry || xa_to_value(entry) != slot + n ||
		    MVM_SLOT_ID(slot + n) != MVM_SLOT_ID(slot) ||
		    mvm_page_present(mapping, index + n))
			break;
	}
	for (i = 0; i < n; i++) {
		folio = i ? filemap_alloc_folio(ra_gfp, 0) :
			    mvm_spare_or_alloc(obj, spare);
		if (!folio)
			break;
		if (i && !seq)
			folio_set_readahead(folio);
		if (mvm_folio_insert(obj, folio, index + i,
				     i ? 0 : BIT(MVM_PG_REF))) {
			folio_put(folio);
			break;
		}
		rd->folio[i] = folio;
	}
	ra->next = index + i;	/* where this read really ends */
	rd->index = index;
	rd->slot = slot;
	rd->n = i;
	return i ? 0 : -ENOMEM;
}

/*
 * Read the pages of a swap-in that mvm_swapin_cluster() started (with or
 * without page_mutex), unlock them, and drop our references.  A failed
 * read takes its folios out of the page cache before unlocking them, so
 * no lookup ever returns a page that is not uptodate; their slots stay,
 * and a later fault reads them again.  Their tracking is left for
 * mvm_swapin_read() or the caller to end, under page_mutex.
 */
static int mvm_swapin_io(struct mvm_object *obj, struct mvm_swapin *rd)
{
	struct address_space *mapping = obj->inode->i_mapping;
	unsigned int i;
	int ret;

	ret = mvm_slot_io_vec(rd->slot, rd->folio, rd->n, false);
	for (i = 0; i < rd->n; i++) {
		if (!ret)
			folio_mark_uptodate(rd->folio[i]);
		else
			mvm_remove_folio(mapping, rd->folio[i]);
		folio_unlock(rd->folio[i]);
		folio_put(rd->folio[i]);
	}
	if (!ret) {
		atomic64_add(rd->n, &obj->pageins);
		mvm_count(MACHVM_A_STAT_PAGEINS, rd->n);
	}
	return ret;
}

/*
 * Finish a swap-in that mvm_object_swapin_spare() left started in @rd,
 * without page_mutex (the fault path: other faults and pageout go on
 * while the read runs).  0, or the read's error (the pages are not
 * resident then).
 */
int mvm_swapin_read(struct mvm_object *obj, struct mvm_swapin *rd)
{
	int ret = mvm_swapin_io(obj, rd);

	if (ret) {
		mutex_lock(&obj->page_mutex);
		mvm_pages_untrack_absent(obj, rd->index, rd->n);
		mutex_unlock(&obj->page_mutex);
	}
	rd->n = 0;
	return ret;
}

/*
 * Read @index back from its swap slot, or zero-fill an anonymous page
 * (page_mutex held).  @dirty: the page's slot is given up and the page is
 * marked dirty (store removal, lock_request returns).  -ENOENT: neither
 * (the pager must supply it).  0 also when the page is already resident,
 * or (with @rd, not @dirty) on its way in: a read someone else started.
 * @spare: a folio allocated before page_mutex was taken, used (and set
 * to NULL) if a page is read or zero-filled; the caller puts what is left.
 * @rd: if not NULL, a read from swap is only started there, and the
 * caller finishes it with mvm_swapin_read() after dropping page_mutex;
 * else it is done here.
 */
int mvm_object_swapin_spare(struct mvm_object *obj, pgoff_t index, bool dirty,
			    struct folio **spare, struct mvm_swapin *rd)
{
	struct address_space *mapping = obj->inode->i_mapping;
	void *entry = xa_load(&obj->swap, index);
	struct mvm_swapin here;
	struct folio *folio;
	int ret;

	lockdep_assert_held(&obj->page_mutex);
	if (rd && !dirty && mvm_page_present(mapping, index))
		return 0;	/* the fault waits on its lock, not here */
	folio = mvm_folio_lock_get(mapping, index);
	if (folio)
		goto found;
	/* After DESTROY's truncation nothing comes back. */
	if (READ_ONCE(obj->destroyed) && !READ_ONCE(obj->releasing)) {
		if (!dirty)
			return -EIO;
		mvm_swap_forget_slot(obj, index);	/* a drain: data dead */
		return 0;
	}
	/* Zero-filled here: anonymous, or the pager said it does not have it. */
	if (!entry && !obj->anon && (dirty || !mvm_fills_zero(obj, index)))
		return -ENOENT;
	if (entry && !dirty) {
		if (rd)
			return mvm_swapin_cluster(obj, index, xa_to_value(entry),
						  spare, rd);
		ret = mvm_swapin_cluster(obj, index, xa_to_value(entry), spare,
					 &here);
		if (ret)
			return ret;
		ret = mvm_swapin_io(obj, &here);
		if (ret)
			mvm_pages_untrack_absent(obj, here.index, here.n);
		return ret;
	}
	folio = mvm_spare_or_alloc(obj, spare);
	if (!folio)
		return -ENOMEM;
	if (entry) {
		ret = mvm_slot_io(xa_to_value(entry), folio, false);
		if (ret)
			goto err;
	} else if (!want_init_on_alloc(mapping_gfp_mask(mapping))) {
		/*
		 * A new page (mvm_fills_zero()).  The folio is fresh
		 * from mvm_folio_alloc() (a spare is too): where the
		 * allocator clears every page (init_on_alloc, on in
		 * Debian's kernels) it is clear already.
		 */
		folio_zero_range(folio, 0, PAGE_SIZE);
	}
	folio_mark_uptodate(folio);
	ret = mvm_folio_insert(obj, folio, index, BIT(MVM_PG_REF));
	if (ret)
		goto err;
	if (entry) {
		atomic64_inc(&obj->pageins);
		mvm_count(MACHVM_A_STAT_PAGEINS, 1);
	}
found:
	if (dirty && entry) {
		mvm_swap_forget_slot(obj, index);
		folio_mark_dirty(folio);
	}
	folio_unlock(folio);
	folio_put(folio);
	return 0;
err:
	folio_put(folio);
	return ret;
}

int mvm_object_swapin_locked(struct mvm_object *obj, pgoff_t index, bool dirty)
{
	return mvm_object_swapin_spare(obj, index, dirty, NULL, NULL);
}

int mvm_object_swapin(struct mvm_object *obj, pgoff_t index, bool dirty)
{
	int ret;

	mutex_lock(&obj->page_mutex);
	ret = mvm_object_swapin_locked(obj, index, dirty);
	mutex_unlock(&obj->page_mutex);
	return ret;
}

/* PROT_* of @flags' VM_READ/WRITE/EXEC, or of VM_MAY* when @may. */
static u32 mvm_vma_prot(vm_flags_t flags, bool may)
{
	return ((flags & (may ? VM_MAYREAD : VM_READ)) ? PROT_READ : 0) |
	       ((flags & (may ? VM_MAYWRITE : VM_WRITE)) ? PROT_WRITE : 0) |
	       ((flags & (may ? VM_MAYEXEC : VM_EXEC)) ? PROT_EXEC : 0);
}

/*
 * MACHVM_IOC_REGION for @addr in @vma (mmap_lock held): -ENXIO unless the
 * mapping is a machvm object.
 */
int mvm_object_region(struct vm_area_struct *vma, struct machvm_region *r)
{
	struct mvm_object *obj;

	if (!vma->vm_file || vma->vm_file->f_op != &mvm_object_fops)
		return -ENXIO;
	obj = vma->vm_file->private_data;
	r->start = vma->vm_start;
	r->end = vma->vm_end;
	r->name = obj->name;
	r->size = obj->size;
	r->offset = ((u64)vma->vm_pgoff << PAGE_SHIFT) +
		    (round_down(r->addr, PAGE_SIZE) - vma->vm_start);
	r->prot = mvm_vma_prot(vma->vm_flags, false);
	r->max_prot = mvm_vma_prot(vma->vm_flags, true) & obj->max_prot;
	r->shared = !!(vma->vm_flags & VM_SHARED);
	return 0;
}

static int mvm_object_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct mvm_object *obj = file->private_data;
	u32 want = mvm_vma_prot(vma->vm_flags, false);

	if (READ_ONCE(obj->destroyed))
		return -ENXIO;
	if (want & ~obj->max_prot)
		return -EACCES;
	if (!(obj->max_prot & PROT_WRITE))
		vm_flags_clear(vma, VM_MAYWRITE);
	if (!(obj->max_prot & PROT_EXEC))
		vm_flags_clear(vma, VM_MAYEXEC);
	if (!(obj->max_prot & PROT_READ))
		vm_flags_clear(vma, VM_MAYREAD);
	/*
	 * Not VM_DONTEXPAND: Linux ignores mlock on such (VM_SPECIAL) vmas,
	 * and mlock must hold.  A mapping grown by mremap past the object's
	 * end gets SIGBUS there, as a file mapping past EOF does.
	 */
	vma->vm_ops = obj->anon ? &mvm_anon_vm_ops : &mvm_vm_ops;

	spin_lock(&obj->lock);
	if (!obj->mapped && obj->pager) {
		obj->mapped = true;
		if (obj->state == MVM_OBJ_NEW)	/* READY may come first */
			obj->state = MVM_OBJ_INIT_SENT;
		mvm_pager_queue(obj->pager, obj->init_msg);
		obj->init_msg = NULL;
	}
	spin_unlock(&obj->lock);
	return 0;
}

static void mvm_object_free(struct kref *ref)
{
	struct mvm_object *obj = container_of(ref, struct mvm_object, ref);

	WARN_ON_ONCE(!list_empty(&obj->reqs));
	if (xa_erase(&mvm_registry, obj->name))
		atomic_dec(&mvm_nr_objects);
	if (obj->inode) {
		mvm_pages_release(obj);
		mvm_swap_free_slots(obj);
	}
	mvm_pageout_forget(obj);
	mvm_pageout_limit_changed(obj->limit, 0);
	mvm_owed_free_all(obj);
	xa_destroy(&obj->exists);
	kfree(obj->init_msg);
	kfree(obj->term_msg);
	if (obj->inode)
		iput(obj->inode);
	if (obj->pager)
		mvm_pager_put(obj->pager);
	kfree(obj);
}

void mvm_object_put(struct mvm_object *obj)
{
	kref_put(&obj->ref, mvm_object_free);
}

/*
 * Stop serving: fail every waiting fault; later faults on holes SIGBUS
 * (but for pages the kernel zero-fills itself: an anonymous object's, and
 * with MACHVM_READY_F_EXISTENCE those the pager never had).
 */
static void mvm_object_kill(struct mvm_object *obj, bool destroy, int error)
{
	spin_lock(&obj->lock);
	if (destroy)
		obj->destroyed = true;
	else
		obj->orphaned = true;
	mvm_fail_range(obj, 0, obj->npages, error);
	spin_unlock(&obj->lock);
}

/* The pager is gone (called by the endpoint's release). */
void mvm_object_orphan(struct mvm_object *obj)
{
	mvm_object_kill(obj, false, -EIO);
	mvm_pageout_orphan(obj);
}

/* The last mapping and the last right are gone. */
/* Remove the control id; the pager hears terminate if it saw init. */
static void mvm_object_terminate(struct mvm_object *obj)
{
	struct mvm_object *entry;
	struct mvm_msg *term = NULL;

	entry = xa_cmpxchg(&obj->pager->objects, obj->id, obj, NULL, 0);
	if (entry != obj)
		return;
	spin_lock(&obj->lock);
	if (obj->mapped) {
		term = obj->term_msg;
		obj->term_msg = NULL;
	}
	spin_unlock(&obj->lock);
	if (term)
		mvm_pager_queue(obj->pager, term);
	mvm_object_put(obj);	/* the id table's */
}

/*
 * The data_returns of a terminating object are over (or there were none):
 * terminate now, once.  The caller holds a reference.
 */
void mvm_object_returns_done(struct mvm_object *obj)
{
	if (xchg(&obj->term_sent, true))
		return;
	mvm_object_terminate(obj);
	WRITE_ONCE(obj->releasing, false);	/* what is left is dropped */
}

/*
 * The last mapping and the last right are gone.  Written pages go back to
 * a live pager first (Mach cleans an object before terminating it); the
 * id table's reference keeps the object until they are answered.
 */
static int mvm_object_release(struct inode *inode, struct file *file)
{
	struct mvm_object *obj = file->private_data;
	bool clean = obj->pager && !READ_ONCE(obj->destroyed) &&
		     !READ_ONCE(obj->orphaned);

	if (clean)
		WRITE_ONCE(obj->releasing, true);	/* before destroyed */
	mvm_object_kill(obj, true, -EIO);
	if (obj->pager && !(clean && mvm_pageout_terminate(obj)))
		mvm_object_returns_done(obj);
	if (obj->announced) {
		mvm_count(MACHVM_A_STAT_OBJECTS_TERMINATED, 1);
		mvm_event(MACHVM_EVENT_OBJECT_TERMINATED, obj->name,
			  mvm_object_pid(obj), 0);
	}
	mvm_object_put(obj);
	return 0;
}

const struct file_operations mvm_object_fops = {
	.owner = THIS_MODULE,
	.mmap = mvm_object_mmap,
	.release = mvm_object_release,
	.llseek = noop_llseek,
};

static struct mvm_msg *mvm_msg_alloc(u32 type, struct mvm_object *obj)
{
	struct mvm_msg *m = kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);

	if (!m)
		return NULL;
	INIT_LIST_HEAD(&m->node);
	m->owned = true;
	m->m.type = type;
	m->m.object = obj->id;
	m->m.name = obj->name;
	m->m.size = obj->size;
	m->m.page_size = PAGE_SIZE;
	return m;
}

/* A new object of @size bytes (@pager NULL: anonymous), without a file. */
static struct mvm_object *mvm_object_alloc(struct mvm_pager *pager, u64 size,
					   u32 max_prot)
{
	struct mvm_object *obj;

	obj = kzalloc(sizeof(*obj), GFP_KERNEL_ACCOUNT);
	if (!obj)
		return NULL;
	kref_init(&obj->ref);	/* the file's */
	init_rwsem(&obj->supply_sem);
	mutex_init(&obj->page_mutex);
	xa_init(&obj->pages);
	xa_init(&obj->rets);
	/* The first window outside a stream: MVM_READAHEAD. */
	atomic_set(&obj->ra_hits, MVM_READAHEAD - 2);
	xa_init(&obj->swap);
	xa_init(&obj->exists);
	spin_lock_init(&obj->lock);
	INIT_LIST_HEAD(&obj->reqs);
	INIT_LIST_HEAD(&obj->owed);
	obj->state = MVM_OBJ_NEW;
	obj->attr.cluster_pages = MACHVM_DEFAULT_CLUSTER_PAGES;
	obj->attr.timeout_ms = MACHVM_DEFAULT_TIMEOUT_MS;
	obj->size = size;
	obj->npages = size >> PAGE_SHIFT;
	obj->max_prot = max_prot;
	obj->anon = !pager;
	obj->name = atomic64_inc_return(&mvm_next_name);
	if (pager) {
		mvm_pager_get(pager);
		obj->pager = pager;
	}
	return obj;
}

/* The object's inode and file (the file owns the object's first ref). */
static struct file *mvm_object_file(struct mvm_object *obj)
{
	struct inode *inode;
	struct file *file;

	inode = alloc_anon_inode(mvm_mnt->mnt_sb);
	if (IS_ERR(inode))
		return ERR_CAST(inode);
	inode->i_size = obj->size;
	/* A regular file's data pages (generic_error_remove_*() wants it). */
	inode->i_mode = S_IFREG | 0600;
	inode->i_mapping->a_ops = &mvm_aops;
	mapping_set_unevictable(inode->i_mapping);
	mapping_set_gfp_mask(inode->i_mapping, GFP_HIGHUSER);
	ihold(inode);		/* the object's */
	obj->inode = inode;

	/* The file's module reference; __fput() drops it. */
	__module_get(THIS_MODULE);
	file = alloc_file_pseudo(inode, mvm_mnt, "[machvm-object]", O_RDWR,
				 &mvm_object_fops);
	if (IS_ERR(file)) {
		module_put(THIS_MODULE);
		iput(inode);	/* the one the file would have taken */
		return file;
	}
	file->private_data = obj;
	return file;
}

/* Make @obj visible to netlink and count it; before fd_install(). */
static int mvm_object_publish(struct mvm_object *obj, u64 limit)
{
	int ret;

	/* Before anyone can name it (SET_PAGEOUT); undone by the free. */
	WRITE_ONCE(obj->limit, min_t(u64, limit, obj->npages));
	mvm_pageout_limit_changed(0, obj->limit);
	ret = xa_insert(&mvm_registry, obj->name, obj, GFP_KERNEL);
	if (ret)
		return ret;
	atomic_inc(&mvm_nr_objects);
	obj->announced = true;
	mvm_count(MACHVM_A_STAT_OBJECTS_CREATED, 1);
	mvm_event(MACHVM_EVENT_OBJECT_CREATED, obj->name, mvm_object_pid(obj), 0);
	return 0;
}

static int mvm_size_check(u64 size)
{
	if (!size || !PAGE_ALIGNED(size) ||
	    size > (MAX_LFS_FILESIZE & PAGE_MASK))
		return -EINVAL;
	return 0;
}

/*
 * MACHVM_IOC_OBJECT_CREATE: @oc was copied from @uoc; the answer is copied
 * back before the descriptor is installed, so a bad buffer leaks nothing.
 */
int mvm_object_create(struct mvm_pager *pager,
		      struct machvm_object_create *oc,
		      struct machvm_object_create __user *uoc)
{
	struct mvm_object *obj;
	struct file *file;
	u32 id;
	int fd, ret;

	if (mvm_size_check(oc->size))
		return -EINVAL;
	if (oc->max_prot & ~MVM_PROT_ALL || oc->flags || oc->pad ||
	    oc->reserved[0] || oc->reserved[1] || oc->id || oc->name ||
	    oc->fd)
		return -EINVAL;
	ret = mvm_attr_check(&oc->attr);
	if (ret)
		return ret;

	obj = mvm_object_alloc(pager, oc->size, oc->max_prot);
	if (!obj)
		return -ENOMEM;
	spin_lock(&obj->lock);
	mvm_attr_apply(obj, &oc->attr);
	spin_unlock(&obj->lock);

	/* Cyclic: a stale message or command never names a newer object. */
	ret = xa_alloc_cyclic(&pager->objects, &id, NULL, xa_limit_31b,
			      &pager->next_id, GFP_KERNEL);
	if (ret < 0)
		goto err_obj;
	obj->id = id;

	ret = -ENOMEM;
	obj->init_msg = mvm_msg_alloc(MACHVM_MSG_INIT, obj);
	obj->term_msg = mvm_msg_alloc(MACHVM_MSG_TERMINATE, obj);
	if (!obj->init_msg || !obj->term_msg)
		goto err_id;

	file = mvm_object_file(obj);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_id;
	}

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto err_file;
	}
	oc->id = id;
	oc->name = obj->name;
	oc->fd = fd;
	if (copy_to_user(uoc, oc, sizeof(*oc))) {
		ret = -EFAULT;
		goto err_fd;
	}
	kref_get(&obj->ref);	/* the id table's */
	xa_store(&pager->objects, id, obj, GFP_KERNEL);
	ret = mvm_object_publish(obj, mvm_default_obj_limit());
	if (ret) {
		if (xa_cmpxchg(&pager->objects, id, obj, NULL, 0) == obj)
			mvm_object_put(obj);
		goto err_fd;
	}
	/* Last: from here another thread may close it and free @obj. */
	fd_install(fd, file);
	return 0;

err_fd:
	put_unused_fd(fd);
err_file:
	xa_erase(&pager->objects, id);
	fput(file);		/* its release frees the object */
	return ret;
err_id:
	xa_erase(&pager->objects, id);
err_obj:
	mvm_object_put(obj);
	return ret;
}

/* MACHVM_IOC_ANON_CREATE on /dev/machvm (Mach's vm_allocate). */
int mvm_anon_create(struct machvm_anon_create *ac,
		    struct machvm_anon_create __user *uac)
{
	struct mvm_object *obj;
	struct file *file;
	int fd, ret;

	if (mvm_size_check(ac->size))
		return -EINVAL;
	if (ac->flags || ac->fd || ac->name || ac->reserved[0] ||
	    ac->reserved[1] || ac->reserved[2])
		return -EINVAL;
	obj = mvm_object_alloc(NULL, ac->size, MVM_PROT_ALL);
	if (!obj)
		return -ENOMEM;
	obj->state = MVM_OBJ_READY;
	file = mvm_object_file(obj);
	if (IS_ERR(file)) {
		mvm_object_put(obj);
		return PTR_ERR(file);
	}
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto err_file;
	}
	ac->fd = fd;
	ac->name = obj->name;
	if (copy_to_user(uac, ac, sizeof(*ac))) {
		ret = -EFAULT;
		goto err_fd;
	}
	ret = mvm_object_publish(obj, ac->resident_limit ?:
				 mvm_default_obj_limit());
	if (ret)
		goto err_fd;
	fd_install(fd, file);
	return 0;

err_fd:
	put_unused_fd(fd);
err_file:
	fput(file);
	return ret;
}

/* Netlink SET_PAGEOUT for one object (held by the caller); clamped. */
void mvm_object_set_limit(struct mvm_object *obj, u64 limit)
{
	u64 old;

	limit = min_t(u64, limit, obj->npages);
	old = xchg(&obj->limit, limit);
	mvm_pageout_limit_changed(old, limit);
}

/* Call @fn on every live object, each with a reference. */
void mvm_objects_walk(void (*fn)(struct mvm_object *, void *), void *arg)
{
	struct mvm_object *obj;
	u64 name = 0;

	while ((obj = mvm_object_next(&name))) {
		fn(obj, arg);
		mvm_object_put(obj);
	}
}

static int mvm_check_range(struct mvm_object *obj, const struct machvm_cmd *c)
{
	if (!c->length || c->length > MACHVM_MAX_XFER ||
	    !PAGE_ALIGNED(c->offset) || !PAGE_ALIGNED(c->length) ||
	    c->offset >= obj->size || c->length > obj->size - c->offset)
		return -EINVAL;
	return 0;
}

/*
 * Fill [offset, offset + length) from user memory, or with zeroes.  The
 * data is copied into new folios before any lock is taken (the copy may
 * fault, even on a machvm mapping served by this very pager); only the
 * insertion runs under supply_sem.  On -EFAULT / -ENOMEM the pages before
 * the failure are installed.
 */
static int mvm_supply(struct mvm_object *obj, const struct machvm_cmd *c,
		      bool zero)
{
	struct address_space *mapping = obj->inode->i_mapping;
	const char __user *src = u64_to_user_ptr(c->addr);
	gfp_t gfp = mapping_gfp_mask(mapping);
	pgoff_t start = c->offset >> PAGE_SHIFT;
	pgoff_t n = c->length >> PAGE_SHIFT;
	unsigned int not_taken = 0, taken = 0;
	struct mvm_msg *report = NULL;
	unsigned long pgflags = BIT(MVM_PG_REF) |
				((c->flags & MACHVM_SUPPLY_F_PRECIOUS) ?
				 BIT(MVM_PG_PRECIOUS) : 0) |
				((c->lock & PROT_WRITE) ? BIT(MVM_PG_WLOCK) : 0);
	bool overwrite = c->flags & MACHVM_SUPPLY_F_OVERWRITE;
	struct folio *stack_folios[16];
	struct folio **folios;
	pgoff_t i, filled;
	int ret = 0, err;

	if (!zero && !access_ok(src, c->length))
		return -EFAULT;
	if (c->flags & MACHVM_SUPPLY_F_REPORT) {
		if (READ_ONCE(obj->pager->nr_msgs) >= MVM_MAX_QUEUED)
			return -ENOBUFS;
		report = mvm_msg_alloc(MACHVM_MSG_SUPPLY_COMPLETED, obj);
		if (!report)
			return -ENOMEM;
	}
	folios = stack_folios;	/* the common case: a page or a cluster */
	if (n > ARRAY_SIZE(stack_folios)) {
		folios = kvcalloc(n, sizeof(*folios), GFP_KERNEL_ACCOUNT);
		if (!folios) {
			kfree(report);
			return -ENOMEM;
		}
	} else {
		memset(stack_folios, 0, sizeof(stack_folios));
	}

	for (i = 0; i < n; i++) {
		struct folio *folio;
		void *dst;

		if (!overwrite && mvm_page_present(mapping, start + i))
			continue;	/* not taken; no need to copy it */
		/*
		 * A zero page comes cleared from the allocator (which clears
		 * every page anyway where init_on_alloc is on, as in Debian's
		 * kernels: a memset after it would clear it twice).
		 */
		folio = filemap_alloc_folio(zero ? gfp | __GFP_ZERO : gfp, 0);
		if (!folio) {
			ret = -ENOMEM;
			break;
		}
		if (!zero) {
			dst = kmap_local_folio(folio, 0);
			if (copy_from_user(dst, src + (i << PAGE_SHIFT),
					   PAGE_SIZE))
				ret = -EFAULT;
			kunmap_local(dst);
		}
		if (ret) {
			folio_put(folio);
			break;
		}
		folio_mark_uptodate(folio);
		folios[i] = folio;
	}
	filled = i;
	if (!zero)	/* data from the pager: it has these pages */
		mvm_pager_gets(obj, start, filled);

	down_read(&obj->supply_sem);
	if (READ_ONCE(obj->destroyed)) {
		ret = -ENOENT;
		filled = 0;
	}
	mutex_lock(&obj->page_mutex);
	for (i = 0; i < filled; i++) {
		if (!folios[i]) {
			not_taken++;
			continue;
		}
		/* The default pager's copy (in swap) is newer than the pager's. */
		if (xa_load(&obj->swap, start + i)) {
			if (!overwrite) {
				not_taken++;
				continue;
			}
			mvm_swap_forget_slot(obj, start + i);
		}
		err = mvm_folio_insert(obj, folios[i], start + i, pgflags);
		if (err == -EEXIST && overwrite &&
		    !mvm_page_overwrite(obj, start + i, folios[i], c->lock)) {
			taken++;
			continue;
		}
		if (err && err != -EEXIST) {
			ret = err;
			break;
		}
		if (err) {
			not_taken++;
			continue;
		}
		folio_unlock(folios[i]);
		taken++;
	}
	mutex_unlock(&obj->page_mutex);
	mvm_complete_range(obj, start, start + n);
	up_read(&obj->supply_sem);

	for (i = 0; i < n; i++)
		if (folios[i])
			folio_put(folios[i]);	/* the cache has its own */
	if (folios != stack_folios)
		kvfree(folios);
	atomic64_add(taken, &obj->supplied);
	mvm_count(MACHVM_A_STAT_SUPPLIED, taken);
	mvm_count(MACHVM_A_STAT_NOT_TAKEN, not_taken);
	if (report && !ret) {
		report->m.offset = c->offset;
		report->m.length = c->length;
		report->m.count = not_taken;
		mvm_pager_queue(obj->pager, report);
		report = NULL;
	}
	kfree(report);
	return ret;
}

static void mvm_object_ready(struct mvm_object *obj,
			     const struct machvm_attr *a, u32 flags, bool ready)
{
	struct mvm_req *req;

	spin_lock(&obj->lock);
	mvm_attr_apply(obj, a);
	WRITE_ONCE(obj->cluster_return,
		   !!(flags & MACHVM_READY_F_CLUSTER_RETURN));
	WRITE_ONCE(obj->existence, !!(flags & MACHVM_READY_F_EXISTENCE));
	WRITE_ONCE(obj->temporary, !!(flags & MACHVM_READY_F_TEMPORARY));
	if (ready && obj->state != MVM_OBJ_READY) {
		obj->state = MVM_OBJ_READY;
		list_for_each_entry(req, &obj->reqs, node)
			mvm_pager_queue(obj->pager, &req->msg);
	}
	spin_unlock(&obj->lock);
}

static void mvm_object_destroy(struct mvm_object *obj)
{
	struct address_space *mapping = obj->inode->i_mapping;

	down_write(&obj->supply_sem);
	mvm_object_kill(obj, true, -EIO);
	up_write(&obj->supply_sem);
	unmap_mapping_range(mapping, 0, 0, 1);
	truncate_inode_pages(mapping, 0);
	mvm_pages_release(obj);
	mutex_lock(&obj->page_mutex);
	mvm_swap_free_slots(obj);
	mutex_unlock(&obj->page_mutex);
	mvm_event(MACHVM_EVENT_OBJECT_DESTROYED, obj->name, mvm_object_pid(obj), 0);
}

/* The object named @name, with a reference, or NULL. */
struct mvm_object *mvm_object_get(u64 name)
{
	struct mvm_object *obj;

	xa_lock(&mvm_registry);
	obj = xa_load(&mvm_registry, name);
	if (obj && !kref_get_unless_zero(&obj->ref))
		obj = NULL;
	xa_unlock(&mvm_registry);
	return obj;
}

/*
 * Take the control id from @obj's pager (the caller holds a reference).
 * True for the one caller that did: it alone destroys the object, and no
 * terminate follows.  False when the id is gone already (a DESTROY, an
 * administrative one, or terminate got there first).
 */
static bool mvm_object_unname(struct mvm_object *obj)
{
	if (xa_cmpxchg(&obj->pager->objects, obj->id, obj, NULL, 0) != obj)
		return false;
	mvm_object_put(obj);	/* the id table's */
	return true;
}

/*
 * Administrative DESTROY (netlink): the pager loses the control id.  Of
 * two racing destroys exactly one destroys; the other gets -ENOENT.
 */
int mvm_object_destroy_by_name(u64 name)
{
	struct mvm_object *obj = mvm_object_get(name);
	bool mine;

	if (!obj)
		return -ENOENT;
	if (obj->pager) {
		mine = !READ_ONCE(obj->destroyed) && mvm_object_unname(obj);
	} else {
		spin_lock(&obj->lock);
		mine = !obj->destroyed;
		obj->destroyed = true;	/* mvm_object_destroy() kills it */
		spin_unlock(&obj->lock);
	}
	if (mine)
		mvm_object_destroy(obj);
	mvm_object_put(obj);
	return mine ? 0 : -ENOENT;
}

/* The first object named *name or later, with a reference; advances. */
struct mvm_object *mvm_object_next(u64 *name)
{
	unsigned long index = *name;
	struct mvm_object *obj;

	xa_lock(&mvm_registry);
	xa_for_each_start(&mvm_registry, index, obj, index)
		if (kref_get_unless_zero(&obj->ref))
			break;
	xa_unlock(&mvm_registry);
	if (obj)
		*name = (u64)index + 1;
	return obj;
}

unsigned int mvm_object_count(void)
{
	return atomic_read(&mvm_nr_objects);
}

static u32 mvm_object_nl_state(struct mvm_object *obj)
{
	if (READ_ONCE(obj->destroyed))
		return MACHVM_OBJ_STATE_DESTROYED;
	switch (READ_ONCE(obj->state)) {
	case MVM_OBJ_NEW:
		return MACHVM_OBJ_STATE_NEW;
	case MVM_OBJ_INIT_SENT:
		return MACHVM_OBJ_STATE_INIT;
	default:
		return MACHVM_OBJ_STATE_READY;
	}
}

/* Resident pages of @obj whose dirty bit is known (set at unmap). */
static u64 mvm_object_dirty(struct mvm_object *obj)
{
	struct address_space *mapping = obj->inode->i_mapping;
	XA_STATE(xas, &mapping->i_pages, 0);
	struct folio *folio;
	u64 n = 0;

	rcu_read_lock();
	xas_for_each(&xas, folio, ULONG_MAX) {
		if (xas_retry(&xas, folio) || xa_is_value(folio))
			continue;
		if (folio_test_dirty(folio))
			n++;
		if (need_resched()) {
			xas_pause(&xas);
			rcu_read_unlock();
			cond_resched();
			rcu_read_lock();
		}
	}
	rcu_read_unlock();
	return n;
}

/*
 * Live mappings (VMAs) of @obj: those in its i_mmap tree.  Counted there
 * rather than by ->mmap/->open/->close, so that no kernel's unwinding of a
 * failed mmap can make it drift: a VMA enters the tree only once mmap can
 * no longer fail, and leaves it when it goes (6.1 kernels before the 2024
 * mmap_region error-path fixes freed a VMA whose ->mmap had succeeded
 * without calling ->close).
 */
static u32 mvm_object_mappings(struct mvm_object *obj)
{
	struct address_space *mapping = obj->inode->i_mapping;
	struct rb_node *node;
	u32 n = 0;

	i_mmap_lock_read(mapping);
	for (node = rb_first_cached(&mapping->i_mmap); node;
	     node = rb_next(node))
		n++;
	i_mmap_unlock_read(mapping);
	return n;
}

/* Put one MACHVM_A_OBJECT nest describing @obj. */
int mvm_object_fill(struct sk_buff *skb, struct mvm_object *obj)
{
	struct machvm_attr attr;
	struct nlattr *nest;
	struct mvm_req *req;
	u32 pending = 0;
	bool orphaned;

	spin_lock(&obj->lock);
	attr = obj->attr;
	orphaned = obj->orphaned;
	list_for_each_entry(req, &obj->reqs, node)
		pending++;
	spin_unlock(&obj->lock);

	nest = nla_nest_start(skb, MACHVM_A_OBJECT);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, MACHVM_OBJ_A_NAME, obj->name, MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_ID, obj->id, MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_SIZE, obj->size, MACHVM_OBJ_A_PAD) ||
	    nla_put_u32(skb, MACHVM_OBJ_A_MAX_PROT, obj->max_prot) ||
	    nla_put_u32(skb, MACHVM_OBJ_A_STATE, mvm_object_nl_state(obj)) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_RESIDENT,
			      atomic_long_read(&obj->nr_resident),
			      MACHVM_OBJ_A_PAD) ||
	    nla_put_u32(skb, MACHVM_OBJ_A_MAPPINGS,
			mvm_object_mappings(obj)) ||
	    nla_put_u32(skb, MACHVM_OBJ_A_PAGER_PID,
			obj->pager ? pid_vnr(obj->pager->pid) : 0) ||
	    nla_put_u32(skb, MACHVM_OBJ_A_PAGER_STATE,
			!obj->pager ? MACHVM_PAGER_STATE_NONE :
			orphaned ? MACHVM_PAGER_STATE_DEAD :
				   MACHVM_PAGER_STATE_LIVE) ||
	    nla_put_u32(skb, MACHVM_OBJ_A_PENDING, pending) ||
	    nla_put_u8(skb, MACHVM_OBJ_A_MAY_CACHE, attr.may_cache) ||
	    nla_put_u8(skb, MACHVM_OBJ_A_COPY, attr.copy_strategy) ||
	    nla_put_u32(skb, MACHVM_OBJ_A_CLUSTER, attr.cluster_pages) ||
	    nla_put_u32(skb, MACHVM_OBJ_A_TIMEOUT_MS, attr.timeout_ms) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_FAULTS,
			      atomic64_read(&obj->faults), MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_REQUESTS,
			      atomic64_read(&obj->requests), MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_SUPPLIED,
			      atomic64_read(&obj->supplied), MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_ERRORS,
			      atomic64_read(&obj->errors), MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_TIMEOUTS,
			      atomic64_read(&obj->timeouts), MACHVM_OBJ_A_PAD) ||
	    nla_put_u32(skb, MACHVM_OBJ_A_KIND, obj->anon ?
			MACHVM_OBJ_KIND_ANON : MACHVM_OBJ_KIND_PAGER) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_DIRTY, mvm_object_dirty(obj),
			      MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_SWAPPED,
			      atomic_long_read(&obj->nr_swapped), MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_LIMIT, READ_ONCE(obj->limit),
			      MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_PAGEOUTS,
			      atomic64_read(&obj->pageouts), MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_PAGEINS,
			      atomic64_read(&obj->pageins), MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_RETURNED,
			      atomic64_read(&obj->returned), MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_DEFAULT_TAKEN,
			      atomic64_read(&obj->default_taken), MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_SCANS,
			      atomic64_read(&obj->scans), MACHVM_OBJ_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_OBJ_A_REF_HITS,
			      atomic64_read(&obj->ref_hits), MACHVM_OBJ_A_PAD)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

/*
 * Pager commands: validate everything, then act.
 *
 * mvm_cmd_check() decides, from the command alone and the object's size,
 * whether a command is acceptable; only then does mvm_object_exec() change
 * anything, and what it then runs fails only as the ABI header says (a
 * partial DATA_SUPPLY, a destroyed object, memory).  mvm_cmd_rules says
 * which fields each command takes; every other field must be zero.
 */
enum {
	MVM_C_RANGE = BIT(0),	/* offset, length: pages of the object */
	MVM_C_ADDR = BIT(1),	/* addr: a user buffer of length bytes */
	MVM_C_ERROR = BIT(2),	/* error */
	MVM_C_LOCK = BIT(3),	/* lock: 0 or PROT_WRITE */
	MVM_C_ATTR = BIT(4),	/* attr */
	MVM_C_SEQ = BIT(5),	/* seq */
};

static const struct mvm_cmd_rule {
	u32 flags;		/* the flags it accepts */
	u32 takes;		/* MVM_C_*: the fields it takes */
} mvm_cmd_rules[] = {
	[MACHVM_CMD_READY] = { MACHVM_READY_F_ALL, MVM_C_ATTR },
	[MACHVM_CMD_DATA_SUPPLY] = { MACHVM_SUPPLY_F_ALL,
				     MVM_C_RANGE | MVM_C_ADDR | MVM_C_LOCK },
	[MACHVM_CMD_DATA_UNAVAILABLE] = { 0, MVM_C_RANGE },
	[MACHVM_CMD_DATA_ERROR] = { 0, MVM_C_RANGE | MVM_C_ERROR },
	[MACHVM_CMD_CHANGE_ATTRIBUTES] = { MACHVM_READY_F_ALL, MVM_C_ATTR },
	[MACHVM_CMD_DESTROY] = { 0, 0 },
	[MACHVM_CMD_RETURN_COPY] = { 0, MVM_C_RANGE | MVM_C_ADDR | MVM_C_SEQ },
	[MACHVM_CMD_RETURN_DONE] = { 0, MVM_C_RANGE | MVM_C_ERROR | MVM_C_SEQ },
	[MACHVM_CMD_LOCK_REQUEST] = { MACHVM_LOCK_F_ALL,
				      MVM_C_RANGE | MVM_C_LOCK },
};

/*
 * The command's type and fields, as far as they do not need the object:
 * a malformed command is -EINVAL whatever control id it names.
 */
int mvm_cmd_check_fields(const struct machvm_cmd *c)
{
	static const struct machvm_attr no_attr;
	const struct mvm_cmd_rule *r;

	if (c->type < MACHVM_CMD_READY || c->type >= ARRAY_SIZE(mvm_cmd_rules))
		return -EINVAL;
	r = &mvm_cmd_rules[c->type];
	if ((c->flags & ~r->flags) ||
	    (!(r->takes & MVM_C_RANGE) && (c->offset || c->length)) ||
	    (!(r->takes & MVM_C_ADDR) && c->addr) ||
	    (!(r->takes & MVM_C_ERROR) && c->error) ||
	    (!(r->takes & MVM_C_LOCK) && c->lock) ||
	    (!(r->takes & MVM_C_SEQ) && c->seq) ||
	    (!(r->takes & MVM_C_ATTR) &&
	     memcmp(&c->attr, &no_attr, sizeof(no_attr))))
		return -EINVAL;
	if ((r->takes & MVM_C_ATTR) && mvm_attr_check(&c->attr))
		return -EINVAL;
	if (c->lock & ~PROT_WRITE)
		return -EINVAL;
	switch (c->type) {
	case MACHVM_CMD_DATA_ERROR:	/* a positive errno */
		if (!c->error || c->error > MAX_ERRNO)
			return -EINVAL;
		break;
	case MACHVM_CMD_RETURN_DONE:	/* 0: taken, or a positive errno */
		if (c->error > MAX_ERRNO)
			return -EINVAL;
		break;
	case MACHVM_CMD_LOCK_REQUEST:
		if ((c->flags & MACHVM_LOCK_RETURN_MASK) >
		    MACHVM_LOCK_RETURN_ALL ||
		    (c->lock && !(c->flags & MACHVM_LOCK_F_LOCK)))
			return -EINVAL;
		break;
	}
	return 0;
}

/* All of the command against @obj: nothing has changed when it fails. */
static int mvm_cmd_check(struct mvm_object *obj, const struct machvm_cmd *c)
{
	int ret = mvm_cmd_check_fields(c);

	if (ret)
		return ret;
	if (!(mvm_cmd_rules[c->type].takes & MVM_C_RANGE))
		return 0;
	ret = mvm_check_range(obj, c);
	if (ret)
		return ret;
	if ((mvm_cmd_rules[c->type].takes & MVM_C_ADDR) &&
	    !access_ok(u64_to_user_ptr(c->addr), c->length))
		return -EFAULT;
	return 0;
}

/*
 * Execute one command of @obj's pager on @obj (held by the caller): check
 * all of it, then act.  Returns 0 or -errno.
 */
int mvm_object_exec(struct mvm_object *obj, const struct machvm_cmd *c)
{
	pgoff_t start = c->offset >> PAGE_SHIFT, n = c->length >> PAGE_SHIFT;
	unsigned int failed;
	int ret;

	ret = mvm_cmd_check(obj, c);
	if (ret)
		return ret;

	switch (c->type) {
	case MACHVM_CMD_READY:
	case MACHVM_CMD_CHANGE_ATTRIBUTES:
		mvm_object_ready(obj, &c->attr, c->flags,
				 c->type == MACHVM_CMD_READY);
		return 0;
	case MACHVM_CMD_DATA_SUPPLY:
		return mvm_supply(obj, c, false);
	case MACHVM_CMD_DATA_UNAVAILABLE:
		return mvm_supply(obj, c, true);
	case MACHVM_CMD_DATA_ERROR:
		spin_lock(&obj->lock);
		failed = mvm_fail_range(obj, start, start + n, -(int)c->error);
		spin_unlock(&obj->lock);
		atomic64_add(failed, &obj->errors);
		mvm_count(MACHVM_A_STAT_ERRORS, failed);
		return 0;
	case MACHVM_CMD_DESTROY:
		/* The id goes first: no terminate will follow. */
		if (!mvm_object_unname(obj))
			return -ENOENT;	/* another DESTROY, or terminated */
		mvm_object_destroy(obj);
		return 0;
	case MACHVM_CMD_RETURN_COPY:
		return mvm_return_copy(obj, start, n, c->seq,
				       u64_to_user_ptr(c->addr));
	case MACHVM_CMD_RETURN_DONE:
		return mvm_return_done(obj, start, n, c->seq, c->error);
	case MACHVM_CMD_LOCK_REQUEST:
		return mvm_lock_request(obj, start, n, c->flags, c->lock);
	}
	return -EINVAL;	/* not reached: mvm_cmd_check() knows every type */
}

int mvm_object_init(void)
{
	mvm_mnt = kern_mount(&mvm_fs_type);
	return PTR_ERR_OR_ZERO(mvm_mnt);
}

void mvm_object_exit(void)
{
	kern_unmount(mvm_mnt);
}
