/* SPDX-License-Identifier: GPL-2.0 */
/* The fault path: data_requests, data_unlocks, waits, vm_ops (fault.c). */
#ifndef _MVM_FAULT_H
#define _MVM_FAULT_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/wait.h>
#include "pager.h"

struct mvm_object;

enum mvm_req_state { MVM_REQ_PENDING, MVM_REQ_DONE, MVM_REQ_FAILED };

/*
 * One outstanding data_request (or data_unlock).  Refcounted: the
 * object's request list holds one while it is pending, each sleeping
 * fault one, each record of a wait a signal cut short (struct mvm_owed,
 * fault.c) one.  Its embedded message sits on the pager queue until
 * delivered; it is taken off the queue (under the pager lock) before the
 * request can go.  Every field but @state is written before the request
 * is listed or under obj->lock.
 */
struct mvm_req {
	struct kref ref;
	struct list_head node;	/* on obj->reqs while pending; obj->lock.
				 * Once settled, on the local list of the
				 * completer that wakes its faults
				 * (mvm_complete_range()), then empty
				 */
	pgoff_t start;
	pgoff_t npages;
	unsigned long deadline;	/* jiffies */
	int state;		/* enum mvm_req_state; obj->lock, READ_ONCE
				 * (acquire) by waiters
				 */
	int error;		/* set before state leaves PENDING */
	bool unlock;		/* a data_unlock, not a data_request */
	wait_queue_head_t wq;
	struct mvm_msg msg;	/* the data_request or data_unlock */
};

/* The vm_ops of pager-backed and of anonymous objects' mappings. */
extern const struct vm_operations_struct mvm_vm_ops;
extern const struct vm_operations_struct mvm_anon_vm_ops;

int mvm_fault_init(void);
void mvm_fault_exit(void);
unsigned int mvm_fail_range(struct mvm_object *obj, pgoff_t start,
			    pgoff_t end, int error);
void mvm_complete_range(struct mvm_object *obj, pgoff_t start, pgoff_t end);
void mvm_unlock_complete(struct mvm_object *obj, pgoff_t start, pgoff_t end);
void mvm_owed_free_all(struct mvm_object *obj);

#endif /* _MVM_FAULT_H */
