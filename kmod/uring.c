// SPDX-License-Identifier: GPL-2.0
/*
 * The io_uring transport, in ublk's style: a pager keeps many
 * IORING_OP_URING_CMD FETCHes in flight on its endpoint; each completes
 * with one message, copied to the pager's buffer in the pager's own task
 * (task work).  COMMIT_AND_FETCH executes the pager's answer at issue time,
 * in the submitting task, then waits as a FETCH.
 *
 * No command is pinned forever: a FETCH idle for MACHVM_FETCH_IDLE_MS
 * completes with a NOP message (so a ring closed while the pager lives
 * drains), one whose submitting task is exiting completes with -ECANCELED
 * (the monitor work), and where the kernel can cancel uring commands
 * (IO_URING_F_CANCEL) idle FETCHes are cancelled at once.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "machvm.h"
#include "compat/compat.h"

#define MVM_FETCH_DELIVER	0
#define MVM_FETCH_NOP		1
#define MVM_MONITOR_PERIOD	(HZ / 4)

/*
 * One FETCH in flight.  Lives from issue to completion; on
 * pager->fetches (under pager->lock) while idle, off it once kicked.
 */
struct mvm_fetch {
	struct list_head node;
	struct io_uring_cmd *cmd;
	struct mvm_pager *pager;	/* pinned by the command's file */
	struct task_struct *task;	/* the submitter; holds a reference */
	u64 msg_addr;
	unsigned long armed;		/* jiffies */
	int result;			/* MVM_FETCH_* or -errno */
};

static struct kmem_cache *mvm_fetch_cache;

static struct mvm_fetch **mvm_pdu(struct io_uring_cmd *cmd)
{
	BUILD_BUG_ON(sizeof(struct mvm_fetch *) > sizeof(cmd->pdu));
	return (struct mvm_fetch **)cmd->pdu;
}

static void mvm_fetch_free(struct mvm_fetch *f)
{
	put_task_struct(f->task);
	kmem_cache_free(mvm_fetch_cache, f);
}

/*
 * Complete a FETCH; @f is gone afterwards.  Done first: until then the
 * command may still be on io_uring's cancelable list, whose cancel
 * callback reads @f through the pdu.
 */
static void mvm_fetch_done(struct mvm_fetch *f, int res,
			   unsigned int issue_flags)
{
	io_uring_cmd_done(f->cmd, res, 0, issue_flags);
	mvm_fetch_free(f);
}

static void mvm_fetch_tw(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	struct mvm_fetch *f = *mvm_pdu(cmd);
	struct mvm_pager *pager = f->pager;
	struct machvm_msg msg = { .type = MACHVM_MSG_NOP };
	int res = f->result;

	if (res < 0 || (current->flags & (PF_EXITING | PF_KTHREAD))) {
		if (res == MVM_FETCH_DELIVER) {
			/* Leave the message queued for another consumer. */
			spin_lock(&pager->lock);
			pager->nr_kicked--;
			spin_unlock(&pager->lock);
			mvm_uring_kick(pager);
		}
		mvm_fetch_done(f, res < 0 ? res : -ECANCELED, issue_flags);
		return;
	}
	if (res == MVM_FETCH_DELIVER) {
		spin_lock(&pager->lock);
		pager->nr_kicked--;
		if (!mvm_pager_pop(pager, &msg)) {
			/* A reader took it first: wait again. */
			list_add_tail(&f->node, &pager->fetches);
			spin_unlock(&pager->lock);
			return;
		}
		spin_unlock(&pager->lock);
	}
	if (copy_to_user(u64_to_user_ptr(f->msg_addr), &msg, sizeof(msg)))
		res = -EFAULT;	/* the message is lost; its fault times out */
	else
		res = 0;
	mvm_fetch_done(f, res, issue_flags);
}

/* Hand queued messages to idle FETCHes. */
void mvm_uring_kick(struct mvm_pager *pager)
{
	struct mvm_fetch *f;

	for (;;) {
		spin_lock(&pager->lock);
		if (pager->nr_msgs <= pager->nr_kicked ||
		    list_empty(&pager->fetches)) {
			spin_unlock(&pager->lock);
			return;
		}
		f = list_first_entry(&pager->fetches, struct mvm_fetch, node);
		list_del_init(&f->node);
		f->result = MVM_FETCH_DELIVER;
		pager->nr_kicked++;
		spin_unlock(&pager->lock);
		io_uring_cmd_complete_in_task(f->cmd, mvm_fetch_tw);
	}
}

void mvm_uring_monitor(struct work_struct *work)
{
	struct mvm_pager *pager = container_of(to_delayed_work(work),
					       struct mvm_pager, monitor);
	unsigned long idle = msecs_to_jiffies(MACHVM_FETCH_IDLE_MS);
	struct mvm_fetch *f, *tmp;
	LIST_HEAD(expired);
	bool more;

	spin_lock(&pager->lock);
	list_for_each_entry_safe(f, tmp, &pager->fetches, node) {
		if (f->task->flags & PF_EXITING)
			f->result = -ECANCELED;
		else if (time_after(jiffies, f->armed + idle))
			f->result = MVM_FETCH_NOP;
		else
			continue;
		list_move_tail(&f->node, &expired);
	}
	more = !list_empty(&pager->fetches);
	spin_unlock(&pager->lock);

	list_for_each_entry_safe(f, tmp, &expired, node) {
		list_del_init(&f->node);
		io_uring_cmd_complete_in_task(f->cmd, mvm_fetch_tw);
	}
	if (more)
		schedule_delayed_work(&pager->monitor, MVM_MONITOR_PERIOD);
}

#ifdef MACHVM_HAVE_URING_CMD_CANCELABLE
static void mvm_uring_cancel(struct io_uring_cmd *cmd,
			     unsigned int issue_flags)
{
	struct mvm_fetch *f = *mvm_pdu(cmd);
	struct mvm_pager *pager = f->pager;
	bool idle;

	spin_lock(&pager->lock);
	idle = !list_empty(&f->node);
	list_del_init(&f->node);
	spin_unlock(&pager->lock);
	/* A kicked FETCH is about to complete from task work. */
	if (idle)
		mvm_fetch_done(f, -ECANCELED, issue_flags);
}

static void mvm_mark_cancelable(struct io_uring_cmd *cmd,
				unsigned int issue_flags)
{
	io_uring_cmd_mark_cancelable(cmd, issue_flags);
}
#else
static void mvm_uring_cancel(struct io_uring_cmd *cmd,
			     unsigned int issue_flags)
{
}

static void mvm_mark_cancelable(struct io_uring_cmd *cmd,
				unsigned int issue_flags)
{
}
#endif

static bool mvm_is_cancel(unsigned int issue_flags)
{
#ifdef MACHVM_HAVE_URING_CMD_CANCELABLE
	return issue_flags & IO_URING_F_CANCEL;
#else
	return false;
#endif
}

int mvm_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	struct mvm_pager *pager = cmd->file->private_data;
	const struct machvm_uring_cmd *uc = mvm_uring_cmd_payload(cmd);
	u64 reply = READ_ONCE(uc->reply);
	u64 msg = READ_ONCE(uc->msg);
	struct machvm_cmd c;
	struct mvm_fetch *f;
	int ret;

	if (mvm_is_cancel(issue_flags)) {
		mvm_uring_cancel(cmd, issue_flags);
		return 0;
	}
	if (issue_flags & IO_URING_F_IOPOLL)
		return -EOPNOTSUPP;
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
	f = kmem_cache_alloc(mvm_fetch_cache, GFP_KERNEL);
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
	f->msg_addr = msg;
	f->armed = jiffies;
	f->result = MVM_FETCH_DELIVER;
	*mvm_pdu(cmd) = f;
	mvm_mark_cancelable(cmd, issue_flags);

	spin_lock(&pager->lock);
	list_add_tail(&f->node, &pager->fetches);
	spin_unlock(&pager->lock);
	mvm_uring_kick(pager);
	if (!delayed_work_pending(&pager->monitor))
		schedule_delayed_work(&pager->monitor, MVM_MONITOR_PERIOD);
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
	mvm_fetch_cache = KMEM_CACHE(mvm_fetch, 0);
	return mvm_fetch_cache ? 0 : -ENOMEM;
}

void mvm_uring_exit(void)
{
	kmem_cache_destroy(mvm_fetch_cache);
}
