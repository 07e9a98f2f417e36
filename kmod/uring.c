// SPDX-License-Identifier: GPL-2.0
/*
 * The io_uring transport, in ublk's style: a pager keeps many
 * IORING_OP_URING_CMD FETCHes in flight on its endpoint; each completes
 * with one message, copied to the pager's buffer in the pager's own task
 * (task work).  COMMIT_AND_FETCH executes the pager's answer at issue time,
 * in the submitting task, then waits as a FETCH.
 *
 * A FETCH is IDLE (on pager->fetches) until a message is paired with it:
 * then it is KICKED, owns a copy of the message, and only its task work
 * may complete it.  A message whose task work cannot deliver it (the task
 * is exiting, the ring dying) goes back to the head of the queue.
 *
 * No command is pinned forever: an idle FETCH completes with a NOP message
 * after MACHVM_FETCH_IDLE_MS (so a ring closed while the pager lives
 * drains), one whose submitting task is exiting completes with -ECANCELED
 * (the monitor work), and where the kernel can cancel uring commands
 * (IO_URING_F_CANCEL) idle FETCHes are cancelled at once.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "pager.h"
#include "uring.h"
#include "compat/compat.h"

#define MVM_MONITOR_PERIOD	(HZ / 4)

enum mvm_fetch_state { MVM_FETCH_IDLE, MVM_FETCH_KICKED };

/* What a kicked FETCH's task work does. */
enum mvm_fetch_action {
	MVM_FETCH_DELIVER,	/* copy out ->msg (a queued message) */
	MVM_FETCH_NOP,		/* idle too long: deliver a NOP */
	MVM_FETCH_CANCEL,	/* the submitting task is exiting */
};

/*
 * One FETCH in flight, from issue to completion.  Whoever kicks it (under
 * pager->lock) hands it, with its action and message, to its task work,
 * which alone touches it from then on.
 */
struct mvm_fetch {
	struct list_head node;		/* on pager->fetches while IDLE;
					 * pager->lock
					 */
	enum mvm_fetch_state state;	/* pager->lock */
	enum mvm_fetch_action action;	/* set with KICKED, pager->lock */
	struct io_uring_cmd *cmd;	/* set at issue, constant */
	struct mvm_pager *pager;	/* pinned by the command's file;
					 * constant
					 */
	struct task_struct *task;	/* the submitter; holds a reference;
					 * constant
					 */
	bool iowq;			/* issued from io-wq: task is a worker;
					 * constant
					 */
	u64 msg_addr;			/* constant */
	unsigned long armed;		/* jiffies; constant */
	struct machvm_msg msg;		/* set with KICKED (DELIVER),
					 * pager->lock
					 */
};

static struct kmem_cache *mvm_fetch_cache;

static struct mvm_fetch **mvm_pdu(struct io_uring_cmd *cmd)
{
	BUILD_BUG_ON(sizeof(struct mvm_fetch *) > sizeof(cmd->pdu));
	return (struct mvm_fetch **)cmd->pdu;
}

/* Complete a FETCH that is no longer IDLE; @f is gone afterwards. */
static void mvm_fetch_done(struct mvm_fetch *f, int res,
			   unsigned int issue_flags)
{
	struct io_uring_cmd *cmd = f->cmd;

	/* Not IDLE: the cancel callback leaves it alone, so free first
	 * (completing may drop the last reference to this module).
	 */
	put_task_struct(f->task);
	kmem_cache_free(mvm_fetch_cache, f);
	io_uring_cmd_done(cmd, res, 0, issue_flags);
}

/* Make @f IDLE again; the monitor must be running while any is. */
static void mvm_fetch_park(struct mvm_pager *pager, struct mvm_fetch *f)
{
	lockdep_assert_held(&pager->lock);
	f->state = MVM_FETCH_IDLE;
	list_add_tail(&f->node, &pager->fetches);
	if (!delayed_work_pending(&pager->monitor))
		schedule_delayed_work(&pager->monitor, MVM_MONITOR_PERIOD);
}

static bool mvm_tw_task_dead(unsigned int issue_flags)
{
#ifdef MACHVM_HAVE_URING_TASK_DEAD
	if (issue_flags & IO_URING_F_TASK_DEAD)
		return true;
#endif
	return current->flags & (PF_EXITING | PF_KTHREAD);
}

static void mvm_fetch_tw(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	struct mvm_fetch *f = *mvm_pdu(cmd);
	struct mvm_pager *pager = f->pager;
	struct machvm_msg nop = { .type = MACHVM_MSG_NOP };
	const struct machvm_msg *msg = &nop;

	if (f->action == MVM_FETCH_CANCEL || mvm_tw_task_dead(issue_flags)) {
		if (f->action == MVM_FETCH_DELIVER)
			mvm_pager_requeue(pager, &f->msg);
		mvm_fetch_done(f, -ECANCELED, issue_flags);
		return;
	}
	if (f->action == MVM_FETCH_DELIVER)
		msg = &f->msg;
	if (copy_to_user(u64_to_user_ptr(f->msg_addr), msg, sizeof(*msg)))
		mvm_fetch_done(f, -EFAULT, issue_flags); /* message lost */
	else
		mvm_fetch_done(f, 0, issue_flags);
}

/*
 * The idle FETCH to hand the next message to: the oldest one of a thread
 * other than the one that got the previous message, so that consecutive
 * faults spread over the pager's threads instead of piling onto the one
 * whose FETCHes happen to be first in the list.
 */
static struct mvm_fetch *mvm_pick_fetch(struct mvm_pager *pager)
{
	struct mvm_fetch *f;

	lockdep_assert_held(&pager->lock);
	list_for_each_entry(f, &pager->fetches, node)
		if (f->task != pager->last_task)
			return f;
	return list_first_entry_or_null(&pager->fetches, struct mvm_fetch,
					node);
}

/*
 * Pair the oldest queued message with an idle FETCH (pager->lock held):
 * the FETCH, now KICKED and owning a copy of the message, or NULL when
 * either is missing.  The caller sends it (mvm_uring_send()) before it
 * drops the lock.  Queueing a message and parking a FETCH each pair in
 * the same critical section, so that after either there are never both
 * queued messages and idle FETCHes: one pairing is always enough.
 */
struct mvm_fetch *mvm_uring_pair(struct mvm_pager *pager)
{
	struct mvm_fetch *f;

	lockdep_assert_held(&pager->lock);
	if (list_empty(&pager->msgs))
		return NULL;
	f = mvm_pick_fetch(pager);
	if (!f || !mvm_pager_pop(pager, &f->msg))
		return NULL;
	pager->last_task = f->task;
	list_del_init(&f->node);
	f->state = MVM_FETCH_KICKED;
	f->action = MVM_FETCH_DELIVER;
	return f;
}

/*
 * Hand a FETCH paired by mvm_uring_pair() to its task work, under the
 * same pager->lock section as the pairing.  Messages are paired in seq
 * order, so each ring gets its task works in seq order too, and io_uring
 * runs a ring's task works in batches taken in the order they were added
 * (within a batch the order may be reversed): a message given to a ring
 * is never reaped before one given to it earlier, except within the same
 * batch of completions, where the pager sorts by seq.  This is the order
 * the ABI header promises.  Adding task work only takes locks that nest
 * inside a spinlock (the task's, the ring's wait queue's).
 */
void mvm_uring_send(struct mvm_fetch *f)
{
	lockdep_assert_held(&f->pager->lock);
	io_uring_cmd_complete_in_task(f->cmd, mvm_fetch_tw);
}

/*
 * Complete idle FETCHes: those whose task is exiting (-ECANCELED) and,
 * with @all, every other one, else those idle for MACHVM_FETCH_IDLE_MS
 * (a NOP message).  One at a time, so none is ever off-list and IDLE.
 * Returns how many were given a NOP.
 */
static unsigned int mvm_uring_kick_idle(struct mvm_pager *pager, bool all)
{
	unsigned long idle = msecs_to_jiffies(MACHVM_FETCH_IDLE_MS);
	unsigned int nops = 0;
	struct mvm_fetch *f;
	bool found;

	do {
		found = false;
		spin_lock(&pager->lock);
		list_for_each_entry(f, &pager->fetches, node) {
			if (!f->iowq && (f->task->flags & PF_EXITING))
				f->action = MVM_FETCH_CANCEL;
			else if (all || time_after(jiffies, f->armed + idle))
				f->action = MVM_FETCH_NOP;
			else
				continue;
			nops += f->action == MVM_FETCH_NOP;
			list_del_init(&f->node);
			f->state = MVM_FETCH_KICKED;
			found = true;
			break;
		}
		spin_unlock(&pager->lock);
		if (found)
			io_uring_cmd_complete_in_task(f->cmd, mvm_fetch_tw);
	} while (found);
	return nops;
}

/* MACHVM_IOC_FETCH_RELEASE: every idle FETCH completes now (a NOP). */
unsigned int mvm_uring_release_idle(struct mvm_pager *pager)
{
	return mvm_uring_kick_idle(pager, true);
}

/* Expire idle FETCHes, and look again later while any is left. */
void mvm_uring_monitor(struct work_struct *work)
{
	struct mvm_pager *pager = container_of(to_delayed_work(work),
					       struct mvm_pager, monitor);

	mvm_uring_kick_idle(pager, false);
	spin_lock(&pager->lock);
	if (!list_empty(&pager->fetches))
		schedule_delayed_work(&pager->monitor, MVM_MONITOR_PERIOD);
	spin_unlock(&pager->lock);
}

#ifdef MACHVM_HAVE_URING_CMD_CANCELABLE
static bool mvm_is_cancel(unsigned int issue_flags)
{
	return issue_flags & IO_URING_F_CANCEL;
}

/* Called under the ring's uring_lock when the ring or task goes away. */
static void mvm_uring_cancel(struct io_uring_cmd *cmd,
			     unsigned int issue_flags)
{
	struct mvm_fetch *f = *mvm_pdu(cmd);
	struct mvm_pager *pager = f->pager;
	bool idle;

	spin_lock(&pager->lock);
	idle = f->state == MVM_FETCH_IDLE;
	if (idle) {
		list_del_init(&f->node);
		f->state = MVM_FETCH_KICKED;
	}
	spin_unlock(&pager->lock);
	/* A kicked FETCH completes from its task work. */
	if (idle)
		mvm_fetch_done(f, -ECANCELED, issue_flags);
}

static void mvm_mark_cancelable(struct io_uring_cmd *cmd,
				unsigned int issue_flags)
{
	io_uring_cmd_mark_cancelable(cmd, issue_flags);
}
#else
static bool mvm_is_cancel(unsigned int issue_flags)
{
	return false;
}

static void mvm_uring_cancel(struct io_uring_cmd *cmd,
			     unsigned int issue_flags)
{
}

static void mvm_mark_cancelable(struct io_uring_cmd *cmd,
				unsigned int issue_flags)
{
}
#endif

int mvm_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	struct mvm_pager *pager = cmd->file->private_data;
	const struct machvm_uring_cmd *uc;
	struct machvm_cmd c;
	struct mvm_fetch *f;
	u64 reply, msg;
	int ret;

	/* First: on a cancel the SQE may be gone. */
	if (mvm_is_cancel(issue_flags)) {
		mvm_uring_cancel(cmd, issue_flags);
		return 0;
	}
	if (issue_flags & IO_URING_F_IOPOLL)
		return -EOPNOTSUPP;
	uc = mvm_uring_cmd_payload(cmd);
	reply = READ_ONCE(uc->reply);
	msg = READ_ONCE(uc->msg);
	/* The whole _IOWR encoding must match, size included. */
	switch (cmd->cmd_op) {
	case MACHVM_URING_FETCH:
		if (reply)
			return -EINVAL;
		break;
	case MACHVM_URING_COMMIT_AND_FETCH:
		if (!reply)
			return -EINVAL;
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (!msg || !IS_ALIGNED(msg, 8) ||
	    !access_ok(u64_to_user_ptr(msg), sizeof(struct machvm_msg)))
		return -EFAULT;

	/* Everything that can fail fails before the command runs. */
	if (reply && copy_from_user(&c, u64_to_user_ptr(reply), sizeof(c)))
		return -EFAULT;
	f = kmem_cache_alloc(mvm_fetch_cache, GFP_KERNEL_ACCOUNT);
	if (!f)
		return -ENOMEM;
	if (reply) {
		ret = mvm_pager_exec(pager, &c);
		if (ret) {
			kmem_cache_free(mvm_fetch_cache, f);
			return ret;
		}
	}
	INIT_LIST_HEAD(&f->node);
	f->cmd = cmd;
	f->pager = pager;
	get_task_struct(current);
	f->task = current;
	f->iowq = issue_flags & IO_URING_F_IOWQ;
	f->msg_addr = msg;
	f->armed = jiffies;
	*mvm_pdu(cmd) = f;
	mvm_mark_cancelable(cmd, issue_flags);

	/* Park it, and give it a queued message at once if there is one. */
	spin_lock(&pager->lock);
	mvm_fetch_park(pager, f);
	f = mvm_uring_pair(pager);
	if (f)
		mvm_uring_send(f);
	spin_unlock(&pager->lock);
	return -EIOCBQUEUED;
}

/* The endpoint is being released: no command can be in flight. */
void mvm_uring_release(struct mvm_pager *pager)
{
	cancel_delayed_work_sync(&pager->monitor);
	WARN_ON_ONCE(!list_empty(&pager->fetches));
}

int mvm_uring_init(void)
{
	mvm_fetch_cache = KMEM_CACHE(mvm_fetch, SLAB_ACCOUNT);
	return mvm_fetch_cache ? 0 : -ENOMEM;
}

void mvm_uring_exit(void)
{
	kmem_cache_destroy(mvm_fetch_cache);
}
