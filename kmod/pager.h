/* SPDX-License-Identifier: GPL-2.0 */
/* Pager endpoints and their message queues (pager.c). */
#ifndef _MVM_PAGER_H
#define _MVM_PAGER_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/pid.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include "machvm.h"

/* Most messages queued on one endpoint before optional ones are refused. */
#define MVM_MAX_QUEUED	65536

/*
 * A queued message; embedded in a request or standalone (@owned).  An
 * embedded message may be queued after its request's lock is dropped
 * (mvm_get_req()): @gone then keeps a request settled meanwhile from
 * queueing it, since the request may be freed once settled.
 */
struct mvm_msg {
	struct list_head node;	/* on pager->msgs; empty when not queued */
	bool owned;		/* kfree()d by the pager once delivered */
	bool gone;		/* embedded: delivered, or taken back before it
				 * was queued; never queued again.  Set under
				 * pager->lock, read locklessly only to skip
				 * that lock once true
				 */
	struct machvm_msg m;
};

/*
 * One pager endpoint (an anon file).  Refcounted: the endpoint file holds
 * one reference and every object it created holds one (obj->pager), so a
 * pager outlives its objects' last users.
 */
struct mvm_pager {
	struct kref ref;
	struct pid *pid;	/* creator's thread group; holds a reference */
	spinlock_t lock;	/* protects msgs, nr_msgs, fetches (and each
				 * fetch's state), dead, seq, last_task
				 */
	struct list_head msgs;	/* struct mvm_msg, oldest first; lock */
	struct list_head fetches; /* idle io_uring FETCHes, struct mvm_fetch;
				   * lock
				   */
	bool dead;		/* endpoint released: queue nothing more; lock */
	unsigned int nr_msgs;	/* length of msgs; lock (READ_ONCE hint) */
	u64 seq;		/* last message's sequence number; lock */
	u32 next_id;		/* cyclic id allocation; objects' xa_lock */
	void *last_task;	/* got the last message; compared only; lock */
	wait_queue_head_t wq;	/* read(2) and poll(2) */
	struct xarray objects;	/* control id -> object (holds a ref); its
				 * own xa_lock; entries leave only by
				 * xa_cmpxchg(obj -> NULL), so exactly one
				 * path drops that ref
				 */
	struct delayed_work monitor; /* idle / exiting-task FETCH reaper */
};

int mvm_pager_create(struct machvm_pager_create *pc,
		     struct machvm_pager_create __user *upc);
unsigned int mvm_pager_count(void);
void mvm_pager_get(struct mvm_pager *pager);
void mvm_pager_put(struct mvm_pager *pager);
u64 mvm_pager_queue(struct mvm_pager *pager, struct mvm_msg *msg);
bool mvm_pager_unqueue(struct mvm_pager *pager, struct mvm_msg *msg);
bool mvm_pager_pop(struct mvm_pager *pager, struct machvm_msg *out);
void mvm_pager_requeue(struct mvm_pager *pager, const struct machvm_msg *m);
int mvm_pager_exec(struct mvm_pager *pager, const struct machvm_cmd *c);

#endif /* _MVM_PAGER_H */
