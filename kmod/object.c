// SPDX-License-Identifier: GPL-2.0
/*
 * Memory objects: their files and page caches, mmap, the fault path and
 * the pager commands that fill or fail pages.
 *
 * Each object has an inode of machvm's pseudo filesystem; its
 * address_space is the object's page cache, so MAP_SHARED mappings are
 * coherent and MAP_PRIVATE gets the kernel's own copy-on-write.  A fault
 * on a missing page queues one data_request (shared by every fault on the
 * same pages), drops the fault lock and sleeps killably until the pager
 * answers, the request times out, or the pager goes away; then it returns
 * VM_FAULT_RETRY, as userfaultfd does.  A fault whose request failed owes
 * its task a SIGBUS, paid on the retry.
 *
 * A missing page the kernel itself holds (a swap slot of the default
 * pager) or an anonymous object's page is filled in the fault, under the
 * object's page_mutex, without asking anyone.  Before a fault adds a page
 * it waits, bounded, for room under the resident limits (pageout.c).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/log2.h>
#include <linux/memcontrol.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <net/genetlink.h>
#include <linux/pagemap.h>
#include <linux/pseudo_fs.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "machvm.h"
#include "compat/compat.h"

#define MACHVM_FS_MAGIC		0x4d61636d	/* "Macm" */
#define MVM_MAX_OWED		1024
#define MVM_PROT_ALL		(PROT_READ | PROT_WRITE | PROT_EXEC)

/*
 * A SIGBUS due to @task on its retry of a fault at @index.  Paid only if
 * the page is still missing, and only for a short while: a retry that
 * never comes (the task longjmp'd away, say) must not poison a later one.
 */
struct mvm_owed {
	struct list_head node;
	struct task_struct *task;	/* holds a task reference */
	pgoff_t index;
	unsigned long expires;		/* jiffies */
};

#define MVM_OWED_TTL		(2 * HZ)
#define MVM_MEMCG_HEADROOM	256	/* pages kept free under a memcg limit */
#define MVM_READAHEAD		8	/* pages per swap-in, as page-cluster 3 */
#define MVM_MAX_REQS		4096	/* pending requests per object */

static struct vfsmount *mvm_mnt;

/* The pager's pid for events; anonymous objects have none. */
static struct pid *mvm_obj_pid(struct mvm_object *obj)
{
	return obj->pager ? obj->pager->pid : NULL;
}

/* Every object by name, for netlink; entries hold no reference. */
static DEFINE_XARRAY(mvm_registry);
static atomic_t mvm_nr_objects = ATOMIC_INIT(0);	/* in the registry */
static struct kmem_cache *mvm_req_cache;
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

int mvm_attr_check(const struct machvm_attr *a)
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
		obj->attr.cluster_pages = a->cluster_pages;
	if (a->timeout_ms)
		obj->attr.timeout_ms = a->timeout_ms;
}

static void mvm_req_free(struct kref *ref)
{
	kmem_cache_free(mvm_req_cache, container_of(ref, struct mvm_req, ref));
}

static void mvm_req_put(struct mvm_req *req)
{
	kref_put(&req->ref, mvm_req_free);
}

/* Finish a pending request: wake its faults and drop the list's ref. */
static bool mvm_req_finish(struct mvm_object *obj, struct mvm_req *req,
			   int error)
{
	lockdep_assert_held(&obj->lock);
	if (req->state != MVM_REQ_PENDING)
		return false;
	list_del_init(&req->node);
	obj->nr_reqs--;
	mvm_pager_unqueue(obj->pager, &req->msg);
	if (error == -ETIMEDOUT) {
		atomic64_inc(&obj->timeouts);
		mvm_count(MACHVM_A_STAT_TIMEOUTS, 1);
	}
	req->error = error;
	/* Pairs with the waiters' acquire: they see error once state moves. */
	smp_store_release(&req->state, error ? MVM_REQ_FAILED : MVM_REQ_DONE);
	wake_up_all(&req->wq);
	mvm_req_put(req);
	return true;
}

/* Fail the requests overlapping [start, end); returns how many. */
static unsigned int mvm_fail_range(struct mvm_object *obj, pgoff_t start,
				   pgoff_t end, int error)
{
	struct mvm_req *req, *tmp;
	unsigned int n = 0;

	lockdep_assert_held(&obj->lock);
	list_for_each_entry_safe(req, tmp, &obj->reqs, node)
		if (req->start < end && start < req->start + req->npages)
			n += mvm_req_finish(obj, req, error);
	return n;
}

static bool mvm_page_present(struct address_space *mapping, pgoff_t index)
{
	void *entry = xa_load(&mapping->i_pages, index);

	return entry && !xa_is_value(entry);
}

/* Complete every request in [start, end) whose pages are all resident. */
static void mvm_complete_range(struct mvm_object *obj, pgoff_t start,
			       pgoff_t end)
{
	struct address_space *mapping = obj->inode->i_mapping;
	struct mvm_req *req, *tmp;
	pgoff_t i;

	spin_lock(&obj->lock);
	list_for_each_entry_safe(req, tmp, &obj->reqs, node) {
		if (req->unlock || req->start >= end ||
		    start >= req->start + req->npages)
			continue;
		for (i = req->start; i < req->start + req->npages; i++)
			if (!mvm_page_present(mapping, i))
				break;
		if (i == req->start + req->npages)
			mvm_req_finish(obj, req, 0);
		else
			wake_up_all(&req->wq);	/* some waiter's page came */
	}
	spin_unlock(&obj->lock);
}

static void mvm_owed_drop(struct mvm_object *obj, struct mvm_owed *o)
{
	lockdep_assert_held(&obj->lock);
	list_del(&o->node);
	obj->nr_owed--;
	put_task_struct(o->task);
	kfree(o);
}

/* Record that current must get SIGBUS when it retries the fault. */
static void mvm_owe_sigbus(struct mvm_object *obj, pgoff_t index)
{
	struct mvm_owed *o = kmalloc(sizeof(*o), GFP_KERNEL_ACCOUNT);

	if (!o)
		return;	/* the retry re-requests the page instead */
	get_task_struct(current);
	o->task = current;
	o->index = index;
	o->expires = jiffies + MVM_OWED_TTL;
	spin_lock(&obj->lock);
	if (obj->nr_owed >= MVM_MAX_OWED)
		mvm_owed_drop(obj, list_first_entry(&obj->owed,
						    struct mvm_owed, node));
	list_add_tail(&o->node, &obj->owed);
	obj->nr_owed++;
	spin_unlock(&obj->lock);
}

static bool mvm_take_owed(struct mvm_object *obj, pgoff_t index)
{
	struct mvm_owed *o, *tmp;
	bool found = false;

	if (!READ_ONCE(obj->nr_owed))
		return false;
	spin_lock(&obj->lock);
	list_for_each_entry_safe(o, tmp, &obj->owed, node) {
		if (o->task == current && o->index == index) {
			found = time_before(jiffies, o->expires);
			mvm_owed_drop(obj, o);
		} else if (time_after(jiffies, o->expires)) {
			mvm_owed_drop(obj, o);
		}
	}
	spin_unlock(&obj->lock);
	return found;
}

static bool mvm_range_busy(struct mvm_object *obj, pgoff_t start,
			   pgoff_t end)
{
	struct address_space *mapping = obj->inode->i_mapping;
	struct mvm_req *req;
	pgoff_t i;

	lockdep_assert_held(&obj->lock);
	list_for_each_entry(req, &obj->reqs, node)
		if (req->start < end && start < req->start + req->npages)
			return true;
	for (i = start; i < end; i++)	/* resident, or in swap */
		if (mvm_page_present(mapping, i) || xa_load(&obj->swap, i))
			return true;
	return false;
}

/*
 * Start @req (zeroed, not yet listed) for [start, start + npages): the
 * list's reference and the caller's, a deadline, its message (@type,
 * @access), on obj->reqs and, once the pager is ready, on its queue
 * (until then requests wait off it).  obj->lock held.
 */
static void mvm_req_add(struct mvm_object *obj, struct mvm_req *req, u32 type,
			u32 access, pgoff_t start, pgoff_t npages)
{
	lockdep_assert_held(&obj->lock);
	kref_init(&req->ref);	/* the list's */
	kref_get(&req->ref);	/* the caller's */
	init_waitqueue_head(&req->wq);
	INIT_LIST_HEAD(&req->msg.node);
	req->start = start;
	req->npages = npages;
	req->state = MVM_REQ_PENDING;
	req->deadline = jiffies + msecs_to_jiffies(obj->attr.timeout_ms);
	req->msg.m.type = type;
	req->msg.m.access = access;
	req->msg.m.object = obj->id;
	req->msg.m.name = obj->name;
	req->msg.m.offset = (u64)start << PAGE_SHIFT;
	req->msg.m.length = (u64)npages << PAGE_SHIFT;
	list_add_tail(&req->node, &obj->reqs);
	obj->nr_reqs++;
	if (obj->state == MVM_OBJ_READY)
		mvm_pager_queue(obj->pager, &req->msg);
}

/*
 * Find or queue the request for @index.  Returns it with a reference,
 * NULL when the page turned up meanwhile, or an ERR_PTR.
 */
static struct mvm_req *mvm_get_req(struct mvm_object *obj, pgoff_t index,
				   u32 access)
{
	struct mvm_req *req, *tmp, *new = NULL;
	pgoff_t start, end, lo, hi, cluster;
	u64 expired = U64_MAX;	/* offset of a request reaped here */

again:
	spin_lock(&obj->lock);
	if (obj->destroyed || obj->orphaned) {
		req = ERR_PTR(-EIO);
		goto out;
	}
	list_for_each_entry_safe(req, tmp, &obj->reqs, node) {
		/* Reap requests nobody waited out (killed, NOWAIT faults). */
		if (time_after_eq(jiffies, req->deadline)) {
			expired = (u64)req->start << PAGE_SHIFT;
			mvm_req_finish(obj, req, -ETIMEDOUT);
			continue;
		}
		if (!req->unlock && index >= req->start &&
		    index < req->start + req->npages) {
			kref_get(&req->ref);
			goto out;
		}
	}
	req = NULL;
	if (mvm_page_present(obj->inode->i_mapping, index))
		goto out;
	if (obj->nr_reqs >= MVM_MAX_REQS) {
		req = ERR_PTR(-EBUSY);
		goto out;
	}
	/* Only a fault that starts a request allocates one. */
	if (!new) {
		spin_unlock(&obj->lock);
		new = kmem_cache_zalloc(mvm_req_cache, GFP_KERNEL);
		if (!new)
			return ERR_PTR(-ENOMEM);
		goto again;
	}

	/* One request for the free run of the cluster around @index. */
	cluster = obj->attr.cluster_pages;
	lo = round_down(index, cluster);
	hi = min_t(pgoff_t, lo + cluster, obj->npages);
	for (start = index; start > lo && !mvm_range_busy(obj, start - 1, start);)
		start--;
	for (end = index + 1; end < hi && !mvm_range_busy(obj, end, end + 1);)
		end++;
	req = new;
	new = NULL;
	mvm_req_add(obj, req, MACHVM_MSG_DATA_REQUEST, access, start,
		    end - start);
	atomic64_inc(&obj->requests);
	mvm_count(MACHVM_A_STAT_REQUESTS, 1);
out:
	spin_unlock(&obj->lock);
	if (new)
		kmem_cache_free(mvm_req_cache, new);
	if (expired != U64_MAX)
		mvm_event(MACHVM_EVENT_PAGER_TIMEOUT, obj->name, mvm_obj_pid(obj),
			  expired);
	return req;
}

static bool mvm_req_settled(struct mvm_req *req)
{
	/* Acquire pairs with mvm_req_finish()'s release of ->state. */
	return smp_load_acquire(&req->state) != MVM_REQ_PENDING;
}

/* Wake condition of a fault on @index: its request settled or page came. */
static bool mvm_req_done_for(struct mvm_req *req,
			     struct address_space *mapping, pgoff_t index)
{
	return mvm_req_settled(req) || mvm_page_present(mapping, index);
}

static u32 mvm_fault_access(struct vm_fault *vmf)
{
	return (vmf->flags & FAULT_FLAG_WRITE) ? PROT_READ | PROT_WRITE :
						 PROT_READ;
}

/*
 * Wait for the pager to fill @index.  Called with the fault lock held;
 * returns the vm_fault_t for the fault (VM_FAULT_RETRY once the lock is
 * dropped), or 0 to look the page up again (lock still held).
 */
static vm_fault_t mvm_wait_page(struct vm_fault *vmf, struct mvm_object *obj,
				pgoff_t index)
{
	struct address_space *mapping = obj->inode->i_mapping;
	struct file *file = vmf->vma->vm_file;
	struct mvm_req *req;
	bool timed_out = false, arrived;
	long ret;
	int state;

	req = mvm_get_req(obj, index, mvm_fault_access(vmf));
	if (!req)
		return 0;
	if (IS_ERR(req))
		return PTR_ERR(req) == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;

	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT) {
		mvm_req_put(req);
		return VM_FAULT_RETRY;	/* lock kept, as the caller expects */
	}
	if (!(vmf->flags & FAULT_FLAG_ALLOW_RETRY)) {
		/*
		 * GUP that cannot drop the lock (ptrace, /proc/pid/mem, core
		 * dumps): never sleep on user space under mmap_lock.  The
		 * request stays queued; userfaultfd answers the same way.
		 */
		mvm_req_put(req);
		return VM_FAULT_SIGBUS;
	}

	/* The file pins the object, the inode and this module. */
	get_file(file);
	release_fault_lock(vmf);

	ret = (long)req->deadline - (long)jiffies;
	if (ret <= 0)
		ret = 1;
	if (vmf->flags & FAULT_FLAG_INTERRUPTIBLE)
		ret = wait_event_interruptible_timeout(req->wq,
						       mvm_req_done_for(req, mapping, index),
						       ret);
	else
		ret = wait_event_killable_timeout(req->wq,
						  mvm_req_done_for(req, mapping, index),
						  ret);
	if (!ret) {
		spin_lock(&obj->lock);
		timed_out = mvm_req_finish(obj, req, -ETIMEDOUT);
		spin_unlock(&obj->lock);
	}
	state = smp_load_acquire(&req->state);	/* see mvm_req_finish() */
	arrived = mvm_page_present(mapping, index);
	mvm_req_put(req);

	if (timed_out)
		mvm_event(MACHVM_EVENT_PAGER_TIMEOUT, obj->name, mvm_obj_pid(obj),
			  (u64)index << PAGE_SHIFT);
	/* Interrupted: the retry, after the signal, waits again. */
	if (ret >= 0 && state == MVM_REQ_FAILED && !arrived)
		mvm_owe_sigbus(obj, index);
	fput(file);
	return VM_FAULT_RETRY;
}

struct folio *mvm_folio_alloc(struct mvm_object *obj)
{
	return filemap_alloc_folio(mapping_gfp_mask(obj->inode->i_mapping), 0);
}

/*
 * Insert locked, uptodate @folio at @index and track it (page_mutex
 * held).  A failed memcg charge is -ENOMEM, never an OOM kill.
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
 * Read @index and the next pages whose slots follow its slot (up to
 * MVM_READAHEAD, not resident) in one request, as Linux's swap
 * read-ahead does; the extra pages come in unreferenced, so they go first
 * if nobody touches them.  page_mutex held.
 */
static int mvm_swapin_cluster(struct mvm_object *obj, pgoff_t index, u64 slot)
{
	struct address_space *mapping = obj->inode->i_mapping;
	struct folio *folios[MVM_READAHEAD];
	unsigned int n, i, in = 0;
	void *entry;
	int ret;

	for (n = 1; n < MVM_READAHEAD && index + n < obj->npages; n++) {
		entry = xa_load(&obj->swap, index + n);
		if (!entry || xa_to_value(entry) != slot + n ||
		    MVM_SLOT_ID(slot + n) != MVM_SLOT_ID(slot) ||
		    mvm_page_present(mapping, index + n))
			break;
	}
	for (i = 0; i < n; i++) {
		folios[i] = mvm_folio_alloc(obj);
		if (!folios[i])
			break;
	}
	n = i;
	if (!n)
		return -ENOMEM;
	ret = mvm_slot_io_vec(slot, folios, n, false);
	for (i = 0; i < n; i++) {
		if (!ret) {
			folio_mark_uptodate(folios[i]);
			if (!mvm_folio_insert(obj, folios[i], index + i,
					      i ? 0 : BIT(MVM_PG_REF))) {
				folio_unlock(folios[i]);
				in++;
			} else if (!i) {
				ret = -ENOMEM;
			}
		}
		folio_put(folios[i]);
	}
	atomic64_add(in, &obj->pageins);
	mvm_count(MACHVM_A_STAT_PAGEINS, in);
	return ret;
}

/*
 * Read @index back from its swap slot, or zero-fill an anonymous page
 * (page_mutex held).  @dirty: the page's slot is given up and the page is
 * marked dirty (store removal, lock_request returns).  -ENOENT: neither
 * (the pager must supply it).  0 also when the page is already resident.
 */
int mvm_swapin_locked(struct mvm_object *obj, pgoff_t index, bool dirty)
{
	struct address_space *mapping = obj->inode->i_mapping;
	void *entry = xa_load(&obj->swap, index);
	struct folio *folio;
	int ret;

	lockdep_assert_held(&obj->page_mutex);
	folio = mvm_folio_lock_get(mapping, index);
	if (folio)
		goto found;
	/* After DESTROY's truncation nothing comes back. */
	if (READ_ONCE(obj->destroyed) && !READ_ONCE(obj->releasing)) {
		if (!dirty)
			return -EIO;
		mvm_object_forget_slot(obj, index);	/* a drain: data dead */
		return 0;
	}
	if (!entry && !obj->anon)
		return -ENOENT;
	if (entry && !dirty)
		return mvm_swapin_cluster(obj, index, xa_to_value(entry));
	folio = mvm_folio_alloc(obj);
	if (!folio)
		return -ENOMEM;
	if (entry) {
		ret = mvm_slot_io(xa_to_value(entry), folio, false);
		if (ret)
			goto err;
	} else {
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
		mvm_object_forget_slot(obj, index);
		folio_mark_dirty(folio);
	}
	folio_unlock(folio);
	folio_put(folio);
	return 0;
err:
	folio_put(folio);
	return ret;
}

int mvm_object_swapin(struct mvm_object *obj, pgoff_t index, bool dirty)
{
	int ret;

	mutex_lock(&obj->page_mutex);
	ret = mvm_swapin_locked(obj, index, dirty);
	mutex_unlock(&obj->page_mutex);
	return ret;
}

/*
 * Fill a missing page the kernel can provide itself.  0: filled (look
 * again); -ENOENT: ask the pager; another -errno: the fault fails.  A
 * charge over a memcg limit pages out some of the object and retries.
 */
/* Pages the faulting task's memcg (and its ancestors) can still charge. */
static unsigned long mvm_memcg_margin(void)
{
	struct mem_cgroup *memcg, *m;
	unsigned long margin = ULONG_MAX, max, use;

	if (mem_cgroup_disabled() || !current->mm)
		return margin;
	memcg = get_mem_cgroup_from_mm(current->mm);
	/* The root is unlimited: its max is PAGE_COUNTER_MAX. */
	for (m = memcg; m; m = parent_mem_cgroup(m)) {
		max = READ_ONCE(m->memory.max);
		use = page_counter_read(&m->memory);
		margin = min(margin, max > use ? max - use : 0);
	}
	mem_cgroup_put(memcg);
	return margin;
}

static int mvm_fill_local(struct mvm_object *obj, pgoff_t index)
{
	int ret, tries;

	smp_rmb();	/* the page left the cache after its slot was set */
	if (!obj->anon && !atomic_long_read(&obj->nr_swapped))
		return -ENOENT;	/* fast path of pager-backed objects */
	/*
	 * Our pages are not on Linux's LRU: keep some room under the task's
	 * memcg limit, or the next page table or slab charge there would
	 * call the OOM killer instead of waiting for pageout.
	 */
	if (atomic_long_read(&obj->nr_resident) &&
	    mvm_memcg_margin() < MVM_MEMCG_HEADROOM)
		mvm_reclaim_object(obj, MVM_MEMCG_HEADROOM);
	for (tries = 0; tries < 8; tries++) {
		mutex_lock(&obj->page_mutex);
		ret = mvm_swapin_locked(obj, index, false);
		mutex_unlock(&obj->page_mutex);
		if (ret != -ENOMEM)
			return ret;
		mvm_reclaim_object(obj, 32);
	}
	return ret;
}

static vm_fault_t mvm_fault(struct vm_fault *vmf)
{
	struct file *file = vmf->vma->vm_file;
	struct mvm_object *obj = file->private_data;
	struct address_space *mapping = file->f_mapping;
	pgoff_t index = vmf->pgoff;
	struct folio *folio;
	vm_fault_t ret;
	int err;

	atomic64_inc(&obj->faults);
	mvm_count(MACHVM_A_STAT_FAULTS, 1);
	if (index >= obj->npages || READ_ONCE(obj->destroyed))
		goto sigbus;
	for (;;) {
		folio = mvm_folio_lock_get(mapping, index);
		if (folio) {
			mvm_page_referenced(obj, index);
			vmf->page = folio_file_page(folio, index);
			return VM_FAULT_LOCKED;
		}
		/* The page is missing: a failed wait's retry ends here. */
		if (mvm_take_owed(obj, index))
			goto sigbus;
		/*
		 * Room under the resident limits: wait for pageout without
		 * the fault lock, then retry (once; never under GUP's lock).
		 */
		if ((vmf->flags & FAULT_FLAG_ALLOW_RETRY) &&
		    !(vmf->flags & (FAULT_FLAG_RETRY_NOWAIT | FAULT_FLAG_TRIED)) &&
		    !mvm_room(obj)) {
			get_file(file);
			release_fault_lock(vmf);
			if (mvm_throttle(obj)) {
				pr_warn_ratelimited("object %llu: resident limit reached and nothing can be paged out (swap full?)\n",
						    obj->name);
				mvm_owe_sigbus(obj, index);
			}
			fput(file);
			return VM_FAULT_RETRY;
		}
		err = mvm_fill_local(obj, index);
		if (!err)
			continue;
		if (err != -ENOENT)
			goto sigbus;
		ret = mvm_wait_page(vmf, obj, index);
		if (ret & VM_FAULT_SIGBUS)
			goto sigbus;
		if (ret)
			return ret;
	}
sigbus:
	mvm_count(MACHVM_A_STAT_SIGBUS, 1);
	return VM_FAULT_SIGBUS;
}

static void mvm_vm_open(struct vm_area_struct *vma)
{
	struct mvm_object *obj = vma->vm_file->private_data;

	atomic_inc(&obj->mappings);
}

static void mvm_vm_close(struct vm_area_struct *vma)
{
	struct mvm_object *obj = vma->vm_file->private_data;

	atomic_dec(&obj->mappings);
}

/* Complete the data_unlocks pending on [start, end): unlocked or gone. */
void mvm_unlock_complete(struct mvm_object *obj, pgoff_t start, pgoff_t end)
{
	struct mvm_req *req, *tmp;

	spin_lock(&obj->lock);
	list_for_each_entry_safe(req, tmp, &obj->reqs, node)
		if (req->unlock && req->start >= start && req->start < end)
			mvm_req_finish(obj, req, 0);
	spin_unlock(&obj->lock);
}

/*
 * The data_unlock for @index, queued if new, with a reference; NULL if
 * the page is not write-locked (any more); an ERR_PTR on failure.
 */
static struct mvm_req *mvm_get_unlock(struct mvm_object *obj, pgoff_t index)
{
	struct mvm_req *req, *new;

	new = kmem_cache_zalloc(mvm_req_cache, GFP_KERNEL);
	if (!new)
		return ERR_PTR(-ENOMEM);
	spin_lock(&obj->lock);
	if (obj->destroyed || obj->orphaned) {
		req = ERR_PTR(-EIO);
		goto out;
	}
	list_for_each_entry(req, &obj->reqs, node) {
		if (req->unlock && req->start == index) {
			kref_get(&req->ref);
			goto out;
		}
	}
	req = NULL;
	/* Under obj->lock: an unlock after this completes the new one. */
	if (!mvm_page_wlocked(obj, index))
		goto out;
	if (obj->nr_reqs >= MVM_MAX_REQS) {
		req = ERR_PTR(-EBUSY);
		goto out;
	}
	req = new;
	new = NULL;
	req->unlock = true;
	mvm_req_add(obj, req, MACHVM_MSG_DATA_UNLOCK, PROT_WRITE, index, 1);
out:
	spin_unlock(&obj->lock);
	if (new)
		kmem_cache_free(mvm_req_cache, new);
	return req;
}

#define MVM_UNLOCK_SLICE	(HZ / 10)

/*
 * First write to a page mapped read-only (every shared mapping is
 * write-notified).  A write-locked page asks its pager (data_unlock).
 * page_mkwrite cannot drop the fault lock and retry, so the wait is cut
 * into slices of 100 ms: each ends the fault with VM_FAULT_NOPAGE and the
 * write faults again; the request's timeout bounds the whole.
 */
static vm_fault_t mvm_page_mkwrite(struct vm_fault *vmf)
{
	struct file *file = vmf->vma->vm_file;
	struct mvm_object *obj = file->private_data;
	struct folio *folio = page_folio(vmf->page);
	pgoff_t index = folio->index;
	struct mvm_req *req;
	long ret;

	folio_lock(folio);
	if (folio->mapping != file->f_mapping) {
		folio_unlock(folio);
		return VM_FAULT_NOPAGE;
	}
	if (!mvm_page_wlocked(obj, index))
		return VM_FAULT_LOCKED;
	folio_unlock(folio);
	if (mvm_take_owed(obj, index) && mvm_page_wlocked(obj, index))
		return VM_FAULT_SIGBUS;
	req = mvm_get_unlock(obj, index);
	if (IS_ERR(req))
		return PTR_ERR(req) == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
	if (!req)
		return VM_FAULT_NOPAGE;	/* unlocked meanwhile: write again */
	ret = (long)req->deadline - (long)jiffies;
	ret = wait_event_killable_timeout(req->wq, mvm_req_settled(req) ||
					  !mvm_page_wlocked(obj, index),
					  clamp_t(long, ret, 1,
						  MVM_UNLOCK_SLICE));
	if (!ret && time_after_eq(jiffies, req->deadline)) {
		spin_lock(&obj->lock);
		mvm_req_finish(obj, req, -ETIMEDOUT);
		spin_unlock(&obj->lock);
	}
	/* Acquire pairs with mvm_req_finish()'s release of ->state. */
	if (smp_load_acquire(&req->state) == MVM_REQ_FAILED &&
	    mvm_page_wlocked(obj, index))
		mvm_owe_sigbus(obj, index);
	mvm_req_put(req);
	return VM_FAULT_NOPAGE;
}

/* Fault-around: the faulting page counts as referenced. */
static vm_fault_t mvm_map_pages(struct vm_fault *vmf, pgoff_t start,
				pgoff_t end)
{
	mvm_page_referenced(vmf->vma->vm_file->private_data, vmf->pgoff);
	return filemap_map_pages(vmf, start, end);
}

static const struct vm_operations_struct mvm_vm_ops = {
	.open = mvm_vm_open,
	.close = mvm_vm_close,
	.fault = mvm_fault,
	.map_pages = mvm_map_pages,
	.page_mkwrite = mvm_page_mkwrite,
};

/* Anonymous objects have no locks: no write-notify, no extra fault. */
static const struct vm_operations_struct mvm_anon_vm_ops = {
	.open = mvm_vm_open,
	.close = mvm_vm_close,
	.fault = mvm_fault,
	.map_pages = mvm_map_pages,
};

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
	vm_flags_set(vma, VM_DONTEXPAND);
	vma->vm_ops = obj->anon ? &mvm_anon_vm_ops : &mvm_vm_ops;
	atomic_inc(&obj->mappings);

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
	struct mvm_owed *o, *tmp;

	WARN_ON_ONCE(!list_empty(&obj->reqs));
	if (xa_erase(&mvm_registry, obj->name))
		atomic_dec(&mvm_nr_objects);
	if (obj->inode) {
		mvm_pages_release(obj);
		mvm_object_free_slots(obj);
	}
	mvm_object_limit_changed(obj->limit, 0);
	list_for_each_entry_safe(o, tmp, &obj->owed, node) {
		put_task_struct(o->task);
		kfree(o);
	}
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

/* Stop serving: fail every waiting fault; later faults on holes SIGBUS. */
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
			  mvm_obj_pid(obj), 0);
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
	xa_init(&obj->swap);
	spin_lock_init(&obj->lock);
	INIT_LIST_HEAD(&obj->reqs);
	INIT_LIST_HEAD(&obj->owed);
	obj->state = MVM_OBJ_NEW;
	obj->attr.cluster_pages = 1;
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
	mvm_object_limit_changed(0, obj->limit);
	ret = xa_insert(&mvm_registry, obj->name, obj, GFP_KERNEL);
	if (ret)
		return ret;
	atomic_inc(&mvm_nr_objects);
	obj->announced = true;
	mvm_count(MACHVM_A_STAT_OBJECTS_CREATED, 1);
	mvm_event(MACHVM_EVENT_OBJECT_CREATED, obj->name, mvm_obj_pid(obj), 0);
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

/* Netlink SET_PAGEOUT for one object. */
int mvm_object_set_limit(u64 name, u64 limit)
{
	struct mvm_object *obj = mvm_object_get(name);
	u64 old;

	if (!obj)
		return -ENOENT;
	limit = min_t(u64, limit, obj->npages);
	old = xchg(&obj->limit, limit);
	mvm_object_limit_changed(old, limit);
	mvm_object_put(obj);
	return 0;
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
		folio = filemap_alloc_folio(gfp, 0);
		if (!folio) {
			ret = -ENOMEM;
			break;
		}
		dst = kmap_local_folio(folio, 0);
		if (zero)
			memset(dst, 0, PAGE_SIZE);
		else if (copy_from_user(dst, src + (i << PAGE_SHIFT), PAGE_SIZE))
			ret = -EFAULT;
		kunmap_local(dst);
		if (ret) {
			folio_put(folio);
			break;
		}
		folio_mark_uptodate(folio);
		folios[i] = folio;
	}
	filled = i;

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
			mvm_object_forget_slot(obj, start + i);
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
			     const struct machvm_attr *a, bool ready)
{
	struct mvm_req *req;

	spin_lock(&obj->lock);
	mvm_attr_apply(obj, a);
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
	mvm_object_free_slots(obj);
	mutex_unlock(&obj->page_mutex);
	mvm_event(MACHVM_EVENT_OBJECT_DESTROYED, obj->name, mvm_obj_pid(obj), 0);
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

/* Administrative DESTROY (netlink): the pager loses the control id. */
int mvm_object_destroy_by_name(u64 name)
{
	struct mvm_object *obj = mvm_object_get(name);

	if (!obj)
		return -ENOENT;
	if (READ_ONCE(obj->destroyed)) {
		mvm_object_put(obj);
		return -ENOENT;
	}
	if (obj->pager &&
	    xa_cmpxchg(&obj->pager->objects, obj->id, obj, NULL, 0) == obj)
		mvm_object_put(obj);	/* the id table's */
	mvm_object_destroy(obj);
	mvm_object_put(obj);
	return 0;
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
	if (nla_put_u64_64bit(skb, MACHVM_A_OBJ_NAME, obj->name, MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_ID, obj->id, MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_SIZE, obj->size, MACHVM_A_PAD) ||
	    nla_put_u32(skb, MACHVM_A_OBJ_MAX_PROT, obj->max_prot) ||
	    nla_put_u32(skb, MACHVM_A_OBJ_STATE, mvm_object_nl_state(obj)) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_RESIDENT,
			      atomic_long_read(&obj->nr_resident),
			      MACHVM_A_PAD) ||
	    nla_put_u32(skb, MACHVM_A_OBJ_MAPPINGS,
			atomic_read(&obj->mappings)) ||
	    nla_put_u32(skb, MACHVM_A_OBJ_PAGER_PID,
			obj->pager ? pid_vnr(obj->pager->pid) : 0) ||
	    nla_put_u32(skb, MACHVM_A_OBJ_PAGER_STATE,
			!obj->pager ? MACHVM_PAGER_STATE_NONE :
			orphaned ? MACHVM_PAGER_STATE_DEAD :
				   MACHVM_PAGER_STATE_LIVE) ||
	    nla_put_u32(skb, MACHVM_A_OBJ_PENDING, pending) ||
	    nla_put_u8(skb, MACHVM_A_OBJ_MAY_CACHE, attr.may_cache) ||
	    nla_put_u8(skb, MACHVM_A_OBJ_COPY, attr.copy_strategy) ||
	    nla_put_u32(skb, MACHVM_A_OBJ_CLUSTER, attr.cluster_pages) ||
	    nla_put_u32(skb, MACHVM_A_OBJ_TIMEOUT_MS, attr.timeout_ms) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_FAULTS,
			      atomic64_read(&obj->faults), MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_REQUESTS,
			      atomic64_read(&obj->requests), MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_SUPPLIED,
			      atomic64_read(&obj->supplied), MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_ERRORS,
			      atomic64_read(&obj->errors), MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_TIMEOUTS,
			      atomic64_read(&obj->timeouts), MACHVM_A_PAD) ||
	    nla_put_u32(skb, MACHVM_A_OBJ_KIND, obj->anon ?
			MACHVM_OBJ_KIND_ANON : MACHVM_OBJ_KIND_PAGER) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_DIRTY, mvm_object_dirty(obj),
			      MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_SWAPPED,
			      atomic_long_read(&obj->nr_swapped), MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_LIMIT, READ_ONCE(obj->limit),
			      MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_PAGEOUTS,
			      atomic64_read(&obj->pageouts), MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_PAGEINS,
			      atomic64_read(&obj->pageins), MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_RETURNED,
			      atomic64_read(&obj->returned), MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_DEFAULT_TAKEN,
			      atomic64_read(&obj->default_taken), MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_SCANS,
			      atomic64_read(&obj->scans), MACHVM_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_A_OBJ_REF_HITS,
			      atomic64_read(&obj->ref_hits), MACHVM_A_PAD)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

/* Execute one validated-here command on @obj (held by the caller). */
int mvm_object_exec(struct mvm_object *obj, const struct machvm_cmd *c)
{
	static const struct machvm_attr no_attr;
	unsigned int n;
	int ret;

	if (c->type != MACHVM_CMD_READY &&
	    c->type != MACHVM_CMD_CHANGE_ATTRIBUTES &&
	    memcmp(&c->attr, &no_attr, sizeof(no_attr)))
		return -EINVAL;
	switch (c->type) {
	case MACHVM_CMD_READY:
	case MACHVM_CMD_CHANGE_ATTRIBUTES:
		if (c->flags || c->offset || c->length || c->addr || c->error)
			return -EINVAL;
		ret = mvm_attr_check(&c->attr);
		if (ret)
			return ret;
		mvm_object_ready(obj, &c->attr, c->type == MACHVM_CMD_READY);
		return 0;
	case MACHVM_CMD_DATA_SUPPLY:
		if (c->flags & ~MACHVM_SUPPLY_F_ALL || c->error ||
		    c->lock & ~PROT_WRITE)
			return -EINVAL;
		ret = mvm_check_range(obj, c);
		return ret ? ret : mvm_supply(obj, c, false);
	case MACHVM_CMD_DATA_UNAVAILABLE:
		if (c->flags || c->addr || c->error)
			return -EINVAL;
		ret = mvm_check_range(obj, c);
		return ret ? ret : mvm_supply(obj, c, true);
	case MACHVM_CMD_DATA_ERROR:
		if (c->flags || c->addr || !c->error || c->error > MAX_ERRNO)
			return -EINVAL;
		ret = mvm_check_range(obj, c);
		if (ret)
			return ret;
		spin_lock(&obj->lock);
		n = mvm_fail_range(obj, c->offset >> PAGE_SHIFT,
				   (c->offset + c->length) >> PAGE_SHIFT,
				   -(int)c->error);
		spin_unlock(&obj->lock);
		atomic64_add(n, &obj->errors);
		mvm_count(MACHVM_A_STAT_ERRORS, n);
		return 0;
	case MACHVM_CMD_DESTROY:
		if (c->flags || c->offset || c->length || c->addr || c->error)
			return -EINVAL;
		/* The caller removed the id; no terminate will follow. */
		mvm_object_destroy(obj);
		return 0;
	case MACHVM_CMD_RETURN_COPY:
		if (c->flags || c->error)
			return -EINVAL;
		ret = mvm_check_range(obj, c);
		if (ret)
			return ret;
		if (!access_ok(u64_to_user_ptr(c->addr), c->length))
			return -EFAULT;
		return mvm_return_copy(obj, c->offset >> PAGE_SHIFT,
				       c->length >> PAGE_SHIFT, c->seq,
				       u64_to_user_ptr(c->addr));
	case MACHVM_CMD_RETURN_DONE:
		if (c->flags || c->addr || c->error > MAX_ERRNO)
			return -EINVAL;
		ret = mvm_check_range(obj, c);
		if (ret)
			return ret;
		return mvm_return_done(obj, c->offset >> PAGE_SHIFT,
				       c->length >> PAGE_SHIFT, c->seq, c->error);
	case MACHVM_CMD_LOCK_REQUEST:
		if (c->flags & ~MACHVM_LOCK_F_ALL || c->addr || c->error ||
		    (c->flags & MACHVM_LOCK_RETURN_MASK) >
		    MACHVM_LOCK_RETURN_ALL || c->lock & ~PROT_WRITE ||
		    (c->lock && !(c->flags & MACHVM_LOCK_F_LOCK)))
			return -EINVAL;
		ret = mvm_check_range(obj, c);
		if (ret)
			return ret;
		return mvm_lock_request(obj, c->offset >> PAGE_SHIFT,
					c->length >> PAGE_SHIFT, c->flags,
					c->lock);
	default:
		return -EINVAL;
	}
}

int mvm_object_init(void)
{
	mvm_req_cache = KMEM_CACHE(mvm_req, SLAB_ACCOUNT);
	if (!mvm_req_cache)
		return -ENOMEM;
	mvm_mnt = kern_mount(&mvm_fs_type);
	if (IS_ERR(mvm_mnt)) {
		kmem_cache_destroy(mvm_req_cache);
		return PTR_ERR(mvm_mnt);
	}
	return 0;
}

void mvm_object_exit(void)
{
	kern_unmount(mvm_mnt);
	kmem_cache_destroy(mvm_req_cache);
}
