// SPDX-License-Identifier: GPL-2.0
/*
 * The fault path: a fault on a machvm mapping, from the page table to the
 * pager and back, and the data_requests and data_unlocks it waits on.
 *
 * A fault on a missing page queues one data_request (shared by every fault
 * on the same pages), drops the fault lock, spins a while for a fast
 * pager's answer (mvm_wait_spin()) and then sleeps killably until the
 * pager answers, the request times out, or the pager goes away; then it
 * returns VM_FAULT_RETRY, as userfaultfd does.  A fault whose request
 * failed owes its task a SIGBUS, paid on the retry.  Only a user-mode
 * fault's wait is interruptible; one interrupted by a signal leaves a
 * record of its request, so the retry after the handler goes on waiting
 * for that request, and its deadline, rather than start a new one.
 *
 * A missing page the kernel itself holds (a swap slot of the default
 * pager) or an anonymous object's page is filled in the fault, under the
 * object's page_mutex, without asking anyone.  Before a fault adds a page
 * it waits, bounded, for room under the resident limits (pageout.c).
 *
 * The first write to a write-locked page asks its pager for a data_unlock
 * (mvm_page_mkwrite).  The pager's answers complete the requests:
 * data_supply (object.c, mvm_complete_range), data_error and the pager's
 * death (mvm_fail_range).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/memcontrol.h>
#include <linux/mman.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/stat.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include "fault.h"
#include "genl.h"
#include "object.h"
#include "pageout.h"
#include "pager.h"
#include "compat/compat.h"

#define MVM_MAX_OWED		1024
#define MVM_OWED_TTL		(2 * HZ)
#define MVM_OWED_KEEP		(HZ / 2)	/* a paid SIGBUS, for kernel retries */
#define MVM_MEMCG_HEADROOM	256	/* pages kept free under a memcg limit */
#define MVM_MAX_REQS		4096	/* pending requests per object */

/*
 * What @task's retry of a fault at @index is owed.  @req NULL: a SIGBUS,
 * paid only if the page is still missing.  Otherwise the wait was cut
 * short by a signal: @req (a reference held) is the request the retry
 * goes on waiting for, with its deadline, instead of a new one.  Either
 * lasts only a while: a retry that never comes (the task longjmp'd away,
 * say) must not poison a later fault.  On obj->owed under obj->lock.
 */
struct mvm_owed {
	struct list_head node;
	struct task_struct *task;	/* holds a task reference */
	struct mvm_req *req;		/* holds a request reference, or NULL */
	pgoff_t index;
	unsigned long expires;		/* jiffies */
};

static struct kmem_cache *mvm_req_cache;

/*
 * The longest a fault spins for its pager's answer before it sleeps, in
 * microseconds (0: never spin).  KVM's halt_poll_ns default, 200 us.
 */
static unsigned int fault_spin_us = 200;
module_param(fault_spin_us, uint, 0644);
MODULE_PARM_DESC(fault_spin_us,
		 "longest spin of a fault for its pager's answer before it sleeps, us (0: none)");

#define MVM_SPIN_MIN_NS		(2 * NSEC_PER_USEC)

static void mvm_req_free(struct kref *ref)
{
	kmem_cache_free(mvm_req_cache, container_of(ref, struct mvm_req, ref));
}

static void mvm_req_put(struct mvm_req *req)
{
	kref_put(&req->ref, mvm_req_free);
}

/*
 * Settle a pending request: off obj->reqs and the pager's queue, its state
 * final.  The list's reference passes to the caller, who wakes the faults
 * waiting on it and drops that reference (mvm_req_wake_put()).
 */
static bool mvm_req_settle(struct mvm_object *obj, struct mvm_req *req,
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
	return true;
}

static void mvm_req_wake_put(struct mvm_req *req)
{
	wake_up_all(&req->wq);
	mvm_req_put(req);
}

/* Finish a pending request: wake its faults and drop the list's ref. */
static bool mvm_req_finish(struct mvm_object *obj, struct mvm_req *req,
			   int error)
{
	if (!mvm_req_settle(obj, req, error))
		return false;
	mvm_req_wake_put(req);
	return true;
}

/* Fail the requests overlapping [start, end); returns how many. */
unsigned int mvm_fail_range(struct mvm_object *obj, pgoff_t start,
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

/*
 * Complete every request in [start, end) whose pages are all resident.
 * The faults are woken after obj->lock is dropped: a wake-up (an IPI, a
 * CPU back from idle) under it would hold up every other fault and
 * supply on the object.  A fault that spins (mvm_wait_spin()) sees the
 * state at once.
 */
void mvm_complete_range(struct mvm_object *obj, pgoff_t start, pgoff_t end)
{
	struct address_space *mapping = obj->inode->i_mapping;
	struct mvm_req *req, *tmp;
	LIST_HEAD(done);	/* settled, the list's reference with them */
	pgoff_t i;

	spin_lock(&obj->lock);
	list_for_each_entry_safe(req, tmp, &obj->reqs, node) {
		if (req->unlock || req->start >= end ||
		    start >= req->start + req->npages)
			continue;
		for (i = req->start; i < req->start + req->npages; i++)
			if (!mvm_page_present(mapping, i))
				break;
		if (i < req->start + req->npages)
			wake_up_all(&req->wq);	/* some waiter's page came */
		else if (mvm_req_settle(obj, req, 0))
			list_add_tail(&req->node, &done);
	}
	spin_unlock(&obj->lock);
	list_for_each_entry_safe(req, tmp, &done, node) {
		list_del_init(&req->node);
		mvm_req_wake_put(req);
	}
}

static void mvm_owed_free(struct mvm_owed *o)
{
	if (o->req)
		mvm_req_put(o->req);
	put_task_struct(o->task);
	kfree(o);
}

static void mvm_owed_drop(struct mvm_object *obj, struct mvm_owed *o)
{
	lockdep_assert_held(&obj->lock);
	list_del(&o->node);
	obj->nr_owed--;
	mvm_owed_free(o);
}

/*
 * Record what current's retry of the fault at @index is owed: a SIGBUS
 * (@req NULL), or the rest of its wait on @req (a new reference is taken).
 */
static void mvm_owe(struct mvm_object *obj, pgoff_t index, struct mvm_req *req)
{
	struct mvm_owed *o = kmalloc(sizeof(*o), GFP_KERNEL_ACCOUNT);

	if (!o)
		return;	/* the retry re-requests the page instead */
	get_task_struct(current);
	o->task = current;
	o->req = req;
	o->index = index;
	o->expires = jiffies + MVM_OWED_TTL;
	if (req) {
		kref_get(&req->ref);
		/* Past the deadline the retry fails at once: a while more. */
		if (time_after(req->deadline, jiffies))
			o->expires = req->deadline + MVM_OWED_TTL;
	}
	spin_lock(&obj->lock);
	if (obj->nr_owed >= MVM_MAX_OWED)
		mvm_owed_drop(obj, list_first_entry(&obj->owed,
						    struct mvm_owed, node));
	list_add_tail(&o->node, &obj->owed);
	obj->nr_owed++;
	spin_unlock(&obj->lock);
}

static void mvm_owe_sigbus(struct mvm_object *obj, pgoff_t index)
{
	mvm_owe(obj, index, NULL);
}

/*
 * Take current's record for @index: true if a SIGBUS is owed.  With
 * @resume, a wait record of the kind @unlock (a data_unlock's, or a
 * data_request's) is taken too, its request returned in *@resume with the
 * record's reference; without, wait records stay for the fault that
 * waits.  Expired records of any task go.
 *
 * A SIGBUS paid to a fault from kernel mode (@vmf) stays owed a little
 * longer: copy_to_user() and friends try the bytes left again after a
 * fault, which would otherwise queue a new request and wait out a second
 * timeout before the call can fail.
 */
static bool mvm_take_owed(struct mvm_object *obj, pgoff_t index,
			  const struct vm_fault *vmf, struct mvm_req **resume,
			  bool unlock)
{
	bool keep = !(vmf->flags & FAULT_FLAG_USER);
	struct mvm_owed *o, *tmp;
	bool found = false;

	if (resume)
		*resume = NULL;
	if (!READ_ONCE(obj->nr_owed))
		return false;
	spin_lock(&obj->lock);
	list_for_each_entry_safe(o, tmp, &obj->owed, node) {
		if (time_after(jiffies, o->expires)) {
			mvm_owed_drop(obj, o);
			continue;
		}
		if (o->task != current || o->index != index)
			continue;
		if (!o->req) {
			found = true;
			if (keep) {
				if (time_after(o->expires,
					       jiffies + MVM_OWED_KEEP))
					o->expires = jiffies + MVM_OWED_KEEP;
				continue;
			}
		} else if (!resume) {
			continue;
		} else if (o->req->unlock == unlock && !*resume) {
			*resume = o->req;	/* the record's reference */
			o->req = NULL;
		}
		mvm_owed_drop(obj, o);
	}
	spin_unlock(&obj->lock);
	if (found && resume && *resume) {
		mvm_req_put(*resume);
		*resume = NULL;
	}
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
 * @access), on obj->reqs.  obj->lock held.  True if the pager is ready:
 * the caller then queues the message once the lock is dropped
 * (mvm_req_send()); until the pager is ready, requests wait off its
 * queue and mvm_object_ready() queues them.
 */
static bool mvm_req_add(struct mvm_object *obj, struct mvm_req *req, u32 type,
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
	/* Not READY yet: mvm_object_ready() queues it with the others. */
	return obj->state == MVM_OBJ_READY;
}

/*
 * Take obj->lock for a lookup that will usually queue a request, with a
 * new one in *@new: allocated before the lock rather than looking twice.
 * -ENOMEM when memory is short, -EIO when the object can no longer be
 * served; the lock is taken either way, and mvm_req_unlock_free() ends
 * the section.
 */
static int mvm_req_lock_new(struct mvm_object *obj, struct mvm_req **new)
	__acquires(&obj->lock)
{
	*new = kmem_cache_zalloc(mvm_req_cache, GFP_KERNEL);
	spin_lock(&obj->lock);
	if (!*new)
		return -ENOMEM;
	if (obj->destroyed || obj->orphaned)
		return -EIO;
	return 0;
}

/*
 * List @new (mvm_req_add()) unless the object has too many already;
 * @send: the caller queues its message (mvm_req_send()).
 */
static struct mvm_req *mvm_req_queue_new(struct mvm_object *obj,
					 struct mvm_req **new, u32 type,
					 u32 access, pgoff_t start,
					 pgoff_t npages, bool *send)
{
	struct mvm_req *req = *new;

	lockdep_assert_held(&obj->lock);
	if (obj->nr_reqs >= MVM_MAX_REQS)
		return ERR_PTR(-EBUSY);
	*new = NULL;
	*send = mvm_req_add(obj, req, type, access, start, npages);
	return req;
}

/*
 * Queue the message of a request this caller's mvm_req_queue_new() listed
 * (@send), now that obj->lock is dropped: queueing it pairs it with a
 * FETCH and wakes a pager thread, which must not hold up the object's
 * other faults and supplies.  A request settled meanwhile took its message
 * back (mvm_pager_unqueue() marks it gone) and is not queued.  The
 * caller's reference keeps @req.
 */
static void mvm_req_send(struct mvm_object *obj, struct mvm_req *req,
			 bool send)
{
	if (send)
		mvm_pager_queue(obj->pager, &req->msg);
}

/* End mvm_req_lock_new()'s section; frees the request if unused. */
static void mvm_req_unlock_free(struct mvm_object *obj, struct mvm_req *new)
	__releases(&obj->lock)
{
	spin_unlock(&obj->lock);
	if (new)
		kmem_cache_free(mvm_req_cache, new);
}

/*
 * Find or queue the request for @index.  Returns it with a reference,
 * NULL when the page turned up meanwhile, or an ERR_PTR.
 */
static struct mvm_req *mvm_get_req(struct mvm_object *obj, pgoff_t index,
				   u32 access)
{
	struct mvm_req *req, *tmp, *new;
	pgoff_t start, end, lo, hi, cluster;
	u64 expired = U64_MAX;	/* offset of a request reaped here */
	bool send = false;
	int ret;

	ret = mvm_req_lock_new(obj, &new);
	if (ret) {
		req = ERR_PTR(ret);
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

	/* One request for the free run of the cluster around @index. */
	cluster = obj->attr.cluster_pages;
	lo = round_down(index, cluster);
	hi = min_t(pgoff_t, lo + cluster, obj->npages);
	for (start = index; start > lo && !mvm_range_busy(obj, start - 1, start);)
		start--;
	for (end = index + 1; end < hi && !mvm_range_busy(obj, end, end + 1);)
		end++;
	req = mvm_req_queue_new(obj, &new, MACHVM_MSG_DATA_REQUEST, access,
				start, end - start, &send);
	if (!IS_ERR(req)) {
		atomic64_inc(&obj->requests);
		mvm_count(MACHVM_A_STAT_REQUESTS, 1);
	}
out:
	mvm_req_unlock_free(obj, new);
	mvm_req_send(obj, req, send);
	if (expired != U64_MAX)
		mvm_event(MACHVM_EVENT_PAGER_TIMEOUT, obj->name, mvm_object_pid(obj),
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
 * Only a user-mode fault waits interruptibly.  A fault from kernel mode
 * (copy_to_user(), GUP, io_uring) that returns VM_FAULT_RETRY with a
 * signal pending is retried by the architecture's fault handler at once
 * unless the signal is fatal, and would spin there until the request is
 * answered: userfaultfd had the same bug (fixed upstream in 2025 by
 * "mm/userfaultfd: prevent busy looping for tasks with signals pending").
 * Killable is what the architecture honours for kernel-mode faults.
 */
static bool mvm_fault_interruptible(struct vm_fault *vmf)
{
	return (vmf->flags & FAULT_FLAG_INTERRUPTIBLE) &&
	       (vmf->flags & FAULT_FLAG_USER);
}

/*
 * Before a fault sleeps on @req, spin a while for the answer, as KVM polls
 * before it halts a vCPU: a pager that answers within microseconds then
 * costs neither the sleep nor the wake-up (a reschedule IPI, a CPU back
 * from idle), which on a fast pager are most of a fault's return trip.
 * The spin gives way at once to any other task that wants this CPU (the
 * pager's own thread, say), and stops at a signal or after @obj's window
 * (obj->spin_ns).  Called without the fault lock.  True if @req settled.
 */
static bool mvm_wait_spin(struct mvm_object *obj, struct mvm_req *req,
			  u64 start)
{
	u64 window = READ_ONCE(obj->spin_ns);

	if (!window)
		return false;
	for (;;) {
		if (mvm_req_settled(req))
			return true;
		if (ktime_get_ns() - start >= window || need_resched() ||
		    !single_task_running() || signal_pending(current))
			return false;
		cpu_relax();
	}
}

/*
 * Then sleep on @req until it settles, the page arrives, or @timeout
 * (jiffies) passes: wait_event_*_timeout()'s result.  Interruptible only
 * for a user-mode fault (mvm_fault_interruptible()).
 */
static long mvm_wait_sleep(struct vm_fault *vmf, struct mvm_req *req,
			   struct address_space *mapping, pgoff_t index,
			   long timeout)
{
	if (mvm_fault_interruptible(vmf))
		return wait_event_interruptible_timeout(req->wq,
							mvm_req_done_for(req, mapping, index),
							timeout);
	return wait_event_killable_timeout(req->wq,
					   mvm_req_done_for(req, mapping, index),
					   timeout);
}

/*
 * Adapt @obj's spin window to a wait that took @waited ns, as KVM adapts
 * halt polling: an answer within fault_spin_us doubles it (up to
 * fault_spin_us; from 0, to MVM_SPIN_MIN_NS), a later one or a timeout
 * halves it, so a slow or silent pager soon costs its faults no spinning.
 */
static void mvm_spin_adapt(struct mvm_object *obj, u64 waited)
{
	u64 max = min_t(u64, (u64)READ_ONCE(fault_spin_us) * NSEC_PER_USEC,
			U32_MAX);
	u64 w = READ_ONCE(obj->spin_ns), nw;

	if (waited <= max)
		nw = min(max_t(u64, w * 2, MVM_SPIN_MIN_NS), max);
	else if (w / 2 >= MVM_SPIN_MIN_NS)
		nw = w / 2;
	else
		nw = 0;
	if (nw != w)
		WRITE_ONCE(obj->spin_ns, nw);
}

/* Time @req out if its deadline has passed; true if this call did. */
static bool mvm_req_expire(struct mvm_object *obj, struct mvm_req *req)
{
	bool expired = false;

	spin_lock(&obj->lock);
	if (time_after_eq(jiffies, req->deadline))
		expired = mvm_req_finish(obj, req, -ETIMEDOUT);
	spin_unlock(&obj->lock);
	return expired;
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
	bool timed_out = false, arrived;
	struct mvm_req *req;
	u64 start;
	long ret;
	int state;

	/*
	 * A retry after a signal cut the wait short goes on with the same
	 * request and deadline: a signal storm, or a handler that runs past
	 * the deadline, must not restart the wait (mvm_get_req() would reap
	 * the expired request and queue a new one, for ever).
	 */
	req = NULL;
	if ((vmf->flags & (FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_RETRY_NOWAIT)) ==
	    FAULT_FLAG_ALLOW_RETRY &&
	    mvm_take_owed(obj, index, vmf, &req, false))
		return VM_FAULT_SIGBUS;
	if (req) {
		timed_out = !mvm_req_settled(req) && mvm_req_expire(obj, req);
		if (timed_out)
			mvm_event(MACHVM_EVENT_PAGER_TIMEOUT, obj->name,
				  mvm_object_pid(obj), (u64)index << PAGE_SHIFT);
		if (mvm_req_settled(req)) {
			/* Acquire pairs with mvm_req_finish()'s release. */
			state = smp_load_acquire(&req->state);
			mvm_req_put(req);
			if (state == MVM_REQ_FAILED &&
			    !mvm_page_present(mapping, index))
				return VM_FAULT_SIGBUS;
			return 0;	/* answered: look again */
		}
	} else {
		req = mvm_get_req(obj, index, mvm_fault_access(vmf));
		if (!req)
			return 0;
		if (IS_ERR(req))
			return PTR_ERR(req) == -ENOMEM ? VM_FAULT_OOM :
							 VM_FAULT_SIGBUS;
	}
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

	start = ktime_get_ns();
	ret = (long)req->deadline - (long)jiffies;
	if (ret <= 0)
		ret = 1;
	if (!mvm_wait_spin(obj, req, start))
		ret = mvm_wait_sleep(vmf, req, mapping, index, ret);
	if (!ret) {
		spin_lock(&obj->lock);
		timed_out = mvm_req_finish(obj, req, -ETIMEDOUT);
		spin_unlock(&obj->lock);
	}
	state = smp_load_acquire(&req->state);	/* see mvm_req_finish() */
	arrived = mvm_page_present(mapping, index);
	if (ret >= 0)	/* answered or timed out; not cut short */
		mvm_spin_adapt(obj, ktime_get_ns() - start);

	if (timed_out)
		mvm_event(MACHVM_EVENT_PAGER_TIMEOUT, obj->name, mvm_object_pid(obj),
			  (u64)index << PAGE_SHIFT);
	if (ret >= 0 && state == MVM_REQ_FAILED && !arrived)
		mvm_owe_sigbus(obj, index);
	/* Interrupted: the retry, after the handler, goes on with @req. */
	else if (ret < 0 && !arrived && !fatal_signal_pending(current))
		mvm_owe(obj, index, req);
	mvm_req_put(req);
	fput(file);
	return VM_FAULT_RETRY;
}

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

/*
 * Fill a missing page the kernel can provide itself.  0: filled (look
 * again); -ENOENT: ask the pager; another -errno: the fault fails.  A
 * charge over a memcg limit pages out some of the object and retries.
 */
static int mvm_fill_local(struct mvm_object *obj, pgoff_t index)
{
	struct mvm_swapin rd = { .n = 0 };
	struct folio *spare;
	unsigned int nofs;
	int ret, tries;

	smp_rmb();	/* the page left the cache after its slot was set */
	/* The fast path of pager-backed objects (checked again under page_mutex). */
	if (!mvm_fills_zero(obj, index) && !atomic_long_read(&obj->nr_swapped))
		return -ENOENT;
	/*
	 * Our pages are not on Linux's LRU: keep some room under the task's
	 * memcg limit, or the next page table or slab charge there would
	 * call the OOM killer instead of waiting for pageout.
	 */
	if (atomic_long_read(&obj->nr_resident) &&
	    mvm_memcg_margin() < MVM_MEMCG_HEADROOM)
		mvm_reclaim_object(obj, MVM_MEMCG_HEADROOM);
	for (tries = 0; tries < 8; tries++) {
		/*
		 * The page is allocated before page_mutex: under memory
		 * pressure its reclaim may wait for the pageout thread,
		 * which takes that mutex.  Under the mutex, allocations stay
		 * small (tracking, and read-ahead folios that never retry:
		 * mvm_swapin_cluster()) and, in a NOFS scope, never wait for
		 * pageout (see mvm_reclaim_may_wait()).
		 */
		spare = mvm_fills_zero(obj, index) ||
			xa_load(&obj->swap, index) ?
			mvm_folio_alloc(obj) : NULL;
		mutex_lock(&obj->page_mutex);
		nofs = memalloc_nofs_save();
		ret = mvm_object_swapin_spare(obj, index, false, &spare, &rd);
		memalloc_nofs_restore(nofs);
		mutex_unlock(&obj->page_mutex);
		if (spare)
			folio_put(spare);	/* not needed after all */
		/* The read, without page_mutex: others' faults go on. */
		if (!ret && rd.n)
			ret = mvm_swapin_read(obj, &rd);
		if (ret != -ENOMEM)
			return ret;
		mvm_reclaim_object(obj, 32);
	}
	return ret;
}

/*
 * Before a fault adds page @index: wait, without the fault lock, for
 * pageout to make room under @obj's resident limits (@room false:
 * mvm_throttle()) or to bring free memory back above the high watermarks
 * (mvm_mem_wait()); then VM_FAULT_RETRY.  A wait that ends with no room
 * leaves a grant (obj->room_grants) for the retry: it goes ahead, over
 * the limit, and the next pageout pass trims the excess.  A killed wait
 * leaves nothing: the retry sees the signal.
 */
static vm_fault_t mvm_wait_room(struct vm_fault *vmf, struct mvm_object *obj,
				pgoff_t index, bool room)
{
	struct file *file = vmf->vma->vm_file;
	int err;

	get_file(file);
	release_fault_lock(vmf);
	if (room) {
		err = mvm_mem_wait();
		if (!err && mvm_mem_low())
			atomic_inc(&obj->room_grants);
	} else {
		err = mvm_throttle(obj);
		if (err == -ENOSPC) {
			pr_warn_ratelimited("object %llu: resident limit reached and nothing can be paged out (swap full?)\n",
					    obj->name);
			mvm_owe_sigbus(obj, index);
		} else if (!err && !mvm_room(obj)) {
			atomic_inc(&obj->room_grants);
		}
	}
	fput(file);
	return VM_FAULT_RETRY;
}

static vm_fault_t mvm_fault(struct vm_fault *vmf)
{
	struct file *file = vmf->vma->vm_file;
	struct mvm_object *obj = file->private_data;
	struct address_space *mapping = file->f_mapping;
	pgoff_t index = vmf->pgoff;
	struct folio *folio;
	vm_fault_t ret;
	bool room;
	int err;

	atomic64_inc(&obj->faults);
	mvm_count(MACHVM_A_STAT_FAULTS, 1);
	if (index >= obj->npages || READ_ONCE(obj->destroyed))
		goto sigbus;
	for (;;) {
		folio = mvm_folio_lock_get(mapping, index);
		if (folio) {
			mvm_pages_referenced(obj, index, index);
			/* Brought in by read-ahead: it was worth it. */
			if (folio_test_clear_readahead(folio))
				atomic_inc(&obj->ra_hits);
			vmf->page = folio_file_page(folio, index);
			return VM_FAULT_LOCKED;
		}
		/* The page is missing: a failed wait's retry ends here. */
		if (mvm_take_owed(obj, index, vmf, NULL, false))
			goto sigbus;
		/*
		 * No room under the resident limits, or free memory below
		 * the low watermarks: wait for pageout (never under GUP's
		 * lock), unless a wait left a grant, which this fault takes.
		 * A fault retried after its wait takes it too.
		 */
		room = mvm_room(obj);
		if ((!room || mvm_mem_low()) &&
		    !atomic_add_unless(&obj->room_grants, -1, 0) &&
		    (vmf->flags & FAULT_FLAG_ALLOW_RETRY) &&
		    !(vmf->flags & (FAULT_FLAG_RETRY_NOWAIT | FAULT_FLAG_TRIED)))
			return mvm_wait_room(vmf, obj, index, room);
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
	bool send = false;
	int ret;

	ret = mvm_req_lock_new(obj, &new);
	if (ret) {
		req = ERR_PTR(ret);
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
	new->unlock = true;	/* before it is on the list */
	req = mvm_req_queue_new(obj, &new, MACHVM_MSG_DATA_UNLOCK, PROT_WRITE,
				index, 1, &send);
out:
	mvm_req_unlock_free(obj, new);
	mvm_req_send(obj, req, send);
	return req;
}

#define MVM_UNLOCK_SLICE	(HZ / 10)

/*
 * First write to a page mapped read-only (every shared mapping is
 * write-notified).  A write-locked page asks its pager (data_unlock).
 * page_mkwrite cannot drop the fault lock and retry, so the wait is cut
 * into slices of 100 ms: each ends the fault with VM_FAULT_NOPAGE and the
 * write faults again, and goes on with the same request (a record on
 * obj->owed), so the request's deadline bounds the whole even when the
 * request is reaped and a signal handler runs between the slices.
 */
static vm_fault_t mvm_page_mkwrite(struct vm_fault *vmf)
{
	struct file *file = vmf->vma->vm_file;
	struct mvm_object *obj = file->private_data;
	struct folio *folio = page_folio(vmf->page);
	pgoff_t index = folio->index;
	struct mvm_req *req;
	long ret;
	int state;

	folio_lock(folio);
	if (folio->mapping != file->f_mapping) {
		folio_unlock(folio);
		return VM_FAULT_NOPAGE;
	}
	if (!mvm_page_wlocked(obj, index))
		return VM_FAULT_LOCKED;
	folio_unlock(folio);
	if (mvm_take_owed(obj, index, vmf, &req, true) &&
	    mvm_page_wlocked(obj, index))
		return VM_FAULT_SIGBUS;
	/* The slice before ended: go on with its request and deadline. */
	if (req) {
		if (!mvm_req_settled(req))
			mvm_req_expire(obj, req);
		/* Acquire pairs with mvm_req_finish()'s release of ->state. */
		state = smp_load_acquire(&req->state);
		if (state != MVM_REQ_PENDING) {
			mvm_req_put(req);
			req = NULL;
			if (state == MVM_REQ_FAILED &&
			    mvm_page_wlocked(obj, index))
				return VM_FAULT_SIGBUS;
		}
	}
	if (!req)
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
	state = smp_load_acquire(&req->state);
	if (mvm_page_wlocked(obj, index)) {
		if (state == MVM_REQ_FAILED)
			mvm_owe_sigbus(obj, index);
		else if (state == MVM_REQ_PENDING &&
			 !fatal_signal_pending(current))
			mvm_owe(obj, index, req);	/* for the next slice */
	}
	mvm_req_put(req);
	return VM_FAULT_NOPAGE;
}

/*
 * Fault-around: the pages it maps count as referenced, as a fault's page
 * does; marked after they are mapped, so that a scan in between unmaps
 * them again rather than find them mapped and unreferenced.
 *
 * When the faulting page itself is missing and only the pager can bring
 * it (not zero-filled here, nothing in swap), it maps nothing: the fault
 * goes on to mvm_fault() at once, waits for the pager and ends in
 * VM_FAULT_RETRY, whose fault-around maps the whole answer.  Walking the
 * range before that found nothing in almost every such fault and cost
 * each a page-table and page-cache walk of up to 16 pages (the profile of
 * four threads faulting at once).  A fault the kernel serves itself ends
 * without a retry, so it still maps its resident neighbours first.
 *
 * do_fault_around() asks for fault_around_bytes (64 KiB by default)
 * around a read fault; an object's cluster may be larger (up to 64
 * pages), and its pages come in together with the fault's answer.  Map
 * up to the end of the faulting page's cluster too, within what
 * do_fault_around() could have chosen: the same page table (whose
 * address range filemap_map_pages() walks) and the VMA.  The cluster size
 * is read without obj->lock: a stale one only maps fewer or more pages
 * that are there anyway.
 */
static vm_fault_t mvm_map_pages(struct vm_fault *vmf, pgoff_t start,
				pgoff_t end)
{
	struct vm_area_struct *vma = vmf->vma;
	struct mvm_object *obj = vma->vm_file->private_data;
	pgoff_t cluster = READ_ONCE(obj->attr.cluster_pages), last;
	unsigned long addr;
	vm_fault_t ret;

	if (!mvm_page_present(vma->vm_file->f_mapping, vmf->pgoff) &&
	    !mvm_fills_zero(obj, vmf->pgoff) &&
	    !atomic_long_read(&obj->nr_swapped))
		return 0;
	if (cluster > 1 && start <= vmf->pgoff) {
		addr = vma->vm_start + ((start - vma->vm_pgoff) << PAGE_SHIFT);
		last = start + PTRS_PER_PTE - 1 -
		       ((addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1));
		last = min3(last, vma->vm_pgoff + vma_pages(vma) - 1,
			    round_up(vmf->pgoff + 1, cluster) - 1);
		end = max(end, last);
	}
	ret = filemap_map_pages(vmf, start, end);
	mvm_pages_referenced(obj, start, end);
	return ret;
}

const struct vm_operations_struct mvm_vm_ops = {
	.fault = mvm_fault,
	.map_pages = mvm_map_pages,
	.page_mkwrite = mvm_page_mkwrite,
};

/* Anonymous objects have no locks: no write-notify, no extra fault. */
const struct vm_operations_struct mvm_anon_vm_ops = {
	.fault = mvm_fault,
	.map_pages = mvm_map_pages,
};

/* Free the SIGBUSes still owed on @obj (it is going: nobody else runs). */
void mvm_owed_free_all(struct mvm_object *obj)
{
	struct mvm_owed *o, *tmp;

	list_for_each_entry_safe(o, tmp, &obj->owed, node)
		mvm_owed_free(o);
}

int mvm_fault_init(void)
{
	mvm_req_cache = KMEM_CACHE(mvm_req, SLAB_ACCOUNT);
	return mvm_req_cache ? 0 : -ENOMEM;
}

void mvm_fault_exit(void)
{
	kmem_cache_destroy(mvm_req_cache);
}
