// SPDX-License-Identifier: GPL-2.0
/*
 * Pager endpoints: the message queue from the kernel to a pager, the
 * commands from the pager, and the blocking read(2)/write(2) transport.
 *
 * Messages are queued on pager->msgs and handed to whichever consumer
 * comes first: a reader (read(2)) or an idle io_uring FETCH (uring.c).
 * When the endpoint is released every object it served is orphaned: its
 * waiting faults fail and later faults on missing pages get SIGBUS.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "genl.h"
#include "object.h"
#include "pager.h"
#include "uring.h"

#define MVM_READ_BATCH	16

static atomic_t mvm_nr_pagers = ATOMIC_INIT(0);

unsigned int mvm_pager_count(void)
{
	return atomic_read(&mvm_nr_pagers);
}

static void mvm_pager_free(struct kref *ref)
{
	struct mvm_pager *pager = container_of(ref, struct mvm_pager, ref);

	WARN_ON_ONCE(!xa_empty(&pager->objects));
	xa_destroy(&pager->objects);
	put_pid(pager->pid);
	kfree(pager);
}

void mvm_pager_get(struct mvm_pager *pager)
{
	kref_get(&pager->ref);
}

void mvm_pager_put(struct mvm_pager *pager)
{
	kref_put(&pager->ref, mvm_pager_free);
}

static u64 mvm_pager_add(struct mvm_pager *pager, struct mvm_msg *msg,
			 bool head)
{
	struct mvm_fetch *f;
	bool readers;
	u64 seq;

	spin_lock(&pager->lock);
	if (pager->dead || (!msg->owned && msg->gone)) {
		spin_unlock(&pager->lock);
		if (msg->owned)
			kfree(msg);
		return 0;
	}
	if (head) {
		list_add(&msg->node, &pager->msgs);
	} else {
		msg->m.seq = ++pager->seq;
		list_add_tail(&msg->node, &pager->msgs);
	}
	seq = msg->m.seq;	/* @msg may be gone once unlocked */
	pager->nr_msgs++;
	f = mvm_uring_pair(pager);	/* an idle FETCH takes it now */
	if (f)
		mvm_uring_send(f);	/* in seq order: see mvm_uring_send() */
	readers = pager->nr_msgs;	/* what is left is for read(2) */
	spin_unlock(&pager->lock);
	if (readers && wq_has_sleeper(&pager->wq))
		wake_up_interruptible(&pager->wq);
	return seq;
}

/*
 * Queue @msg for the pager; owned messages are freed if it is gone.  An
 * embedded message taken back already (mvm_pager_unqueue()) is not
 * queued.  Returns the message's seq, 0 if the pager is gone or the
 * message was not queued.
 */
u64 mvm_pager_queue(struct mvm_pager *pager, struct mvm_msg *msg)
{
	return mvm_pager_add(pager, msg, false);
}

/*
 * Put back, first in line, a copy of a message a consumer took but could
 * not deliver (its io_uring slot died).  Lost if memory is short: the
 * fault behind it then times out.
 */
void mvm_pager_requeue(struct mvm_pager *pager, const struct machvm_msg *m)
{
	struct mvm_msg *msg = kmalloc(sizeof(*msg), GFP_KERNEL_ACCOUNT);

	if (!msg)
		return;
	INIT_LIST_HEAD(&msg->node);
	msg->owned = true;
	msg->m = *m;
	mvm_pager_add(pager, msg, true);
}

/*
 * Take embedded @msg off the queue if it is still there (not yet
 * delivered), and keep it from being queued later: true if it was queued.
 */
bool mvm_pager_unqueue(struct mvm_pager *pager, struct mvm_msg *msg)
{
	bool queued;

	/* Delivered or taken back: never queued again, skip the lock. */
	if (READ_ONCE(msg->gone))
		return false;
	spin_lock(&pager->lock);
	queued = !list_empty(&msg->node);
	if (queued) {
		list_del_init(&msg->node);
		pager->nr_msgs--;
	}
	WRITE_ONCE(msg->gone, true);
	spin_unlock(&pager->lock);
	return queued;
}

/* Pop the oldest message into @out; false when the queue is empty. */
bool mvm_pager_pop(struct mvm_pager *pager, struct machvm_msg *out)
{
	struct mvm_msg *msg;

	lockdep_assert_held(&pager->lock);
	msg = list_first_entry_or_null(&pager->msgs, struct mvm_msg, node);
	if (!msg)
		return false;
	list_del_init(&msg->node);
	pager->nr_msgs--;
	*out = msg->m;
	if (msg->owned)
		kfree(msg);
	else
		WRITE_ONCE(msg->gone, true);
	return true;
}

static struct mvm_object *mvm_pager_lookup(struct mvm_pager *pager, u64 id)
{
	struct mvm_object *obj;

	if (id > U32_MAX)
		return NULL;
	xa_lock(&pager->objects);
	obj = xa_load(&pager->objects, id);
	if (obj)
		kref_get(&obj->ref);
	xa_unlock(&pager->objects);
	return obj;
}

/*
 * Execute one command from the pager.  Returns 0 or -errno; a command
 * refused (-EINVAL, -ENOENT, -EFAULT from its checks) changed nothing.
 */
int mvm_pager_exec(struct mvm_pager *pager, const struct machvm_cmd *c)
{
	struct mvm_object *obj;
	int ret;

	ret = mvm_cmd_check_fields(c);
	if (ret)
		return ret;
	obj = mvm_pager_lookup(pager, c->object);
	if (!obj)
		return -ENOENT;
	ret = mvm_object_exec(obj, c);
	mvm_object_put(obj);
	return ret;
}

static ssize_t mvm_pager_read(struct file *file, char __user *buf,
			      size_t count, loff_t *ppos)
{
	struct mvm_pager *pager = file->private_data;
	struct machvm_msg msgs[MVM_READ_BATCH];
	size_t n = 0, max = min_t(size_t, count / sizeof(msgs[0]),
				  MVM_READ_BATCH);
	int ret;

	if (!max)
		return -EINVAL;
	for (;;) {
		spin_lock(&pager->lock);
		while (n < max && mvm_pager_pop(pager, &msgs[n]))
			n++;
		spin_unlock(&pager->lock);
		if (n)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(pager->wq,
					       !list_empty_careful(&pager->msgs));
		if (ret)
			return ret;
	}
	/* A pager that reads into a bad buffer loses these messages; the
	 * faults behind them time out.
	 */
	if (copy_to_user(buf, msgs, n * sizeof(msgs[0])))
		return -EFAULT;
	return n * sizeof(msgs[0]);
}

static ssize_t mvm_pager_write(struct file *file, const char __user *buf,
			       size_t count, loff_t *ppos)
{
	struct mvm_pager *pager = file->private_data;
	struct machvm_cmd c;
	size_t done = 0;
	int ret;

	if (!count || count % sizeof(c))
		return -EINVAL;
	while (done < count) {
		if (copy_from_user(&c, buf + done, sizeof(c))) {
			ret = -EFAULT;
			goto out;
		}
		ret = mvm_pager_exec(pager, &c);
		if (ret)
			goto out;
		done += sizeof(c);
		if (fatal_signal_pending(current))
			break;
		cond_resched();
	}
	return done;
out:
	return done ? done : ret;
}

static __poll_t mvm_pager_poll(struct file *file, poll_table *wait)
{
	struct mvm_pager *pager = file->private_data;
	__poll_t mask = EPOLLOUT | EPOLLWRNORM;

	poll_wait(file, &pager->wq, wait);
	if (!list_empty_careful(&pager->msgs))
		mask |= EPOLLIN | EPOLLRDNORM;
	return mask;
}

static long mvm_pager_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	struct mvm_pager *pager = file->private_data;
	void __user *uarg = (void __user *)arg;
	struct machvm_object_create oc;

	switch (cmd) {
	case MACHVM_IOC_OBJECT_CREATE:
		if (copy_from_user(&oc, uarg, sizeof(oc)))
			return -EFAULT;
		return mvm_object_create(pager, &oc, uarg);
	case MACHVM_IOC_FETCH_RELEASE:
		if (arg)
			return -EINVAL;
		return mvm_uring_release_idle(pager);
	default:
		return -ENOTTY;
	}
}

static int mvm_pager_release(struct inode *inode, struct file *file)
{
	struct mvm_pager *pager = file->private_data;
	struct machvm_msg scratch;
	struct mvm_object *obj;
	unsigned long id;

	spin_lock(&pager->lock);
	pager->dead = true;
	while (mvm_pager_pop(pager, &scratch))
		;
	spin_unlock(&pager->lock);
	mvm_uring_release(pager);

	xa_for_each(&pager->objects, id, obj) {
		if (xa_cmpxchg(&pager->objects, id, obj, NULL, 0) != obj)
			continue;
		mvm_object_orphan(obj);
		mvm_object_put(obj);
	}
	atomic_dec(&mvm_nr_pagers);
	mvm_count(MACHVM_A_STAT_PAGERS_DIED, 1);
	mvm_event(MACHVM_EVENT_PAGER_DIED, 0, pager->pid, 0);
	mvm_pager_put(pager);
	return 0;
}

static const struct file_operations mvm_pager_fops = {
	.owner = THIS_MODULE,
	.read = mvm_pager_read,
	.write = mvm_pager_write,
	.poll = mvm_pager_poll,
	.unlocked_ioctl = mvm_pager_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.uring_cmd = mvm_uring_cmd,
	.release = mvm_pager_release,
	.llseek = noop_llseek,
};

/*
 * MACHVM_IOC_PAGER_CREATE: @pc was copied from @upc; the answer is copied
 * back before the descriptor is installed, so a bad buffer leaks nothing.
 */
int mvm_pager_create(struct machvm_pager_create *pc,
		     struct machvm_pager_create __user *upc)
{
	struct mvm_pager *pager;
	struct file *file;
	int fd;

	pager = kzalloc(sizeof(*pager), GFP_KERNEL_ACCOUNT);
	if (!pager)
		return -ENOMEM;
	kref_init(&pager->ref);	/* the endpoint file's */
	spin_lock_init(&pager->lock);
	INIT_LIST_HEAD(&pager->msgs);
	INIT_LIST_HEAD(&pager->fetches);
	init_waitqueue_head(&pager->wq);
	xa_init_flags(&pager->objects, XA_FLAGS_ALLOC1);
	INIT_DELAYED_WORK(&pager->monitor, mvm_uring_monitor);
	pager->pid = get_pid(task_tgid(current));

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		goto err_pager;
	file = anon_inode_getfile("[machvm-pager]", &mvm_pager_fops, pager,
				  O_RDWR);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		fd = PTR_ERR(file);
		goto err_pager;
	}
	/* From here the file owns @pager; its release undoes this. */
	atomic_inc(&mvm_nr_pagers);
	mvm_event(MACHVM_EVENT_PAGER_ATTACHED, 0, pager->pid, 0);
	pc->fd = fd;
	if (copy_to_user(upc, pc, sizeof(*pc))) {
		put_unused_fd(fd);
		fput(file);
		return -EFAULT;
	}
	fd_install(fd, file);
	return 0;

err_pager:
	put_pid(pager->pid);
	kfree(pager);
	return fd;
}
