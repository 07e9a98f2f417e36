// SPDX-License-Identifier: GPL-2.0
/*
 * The default pager's backing stores: swap files and swap partitions.
 *
 * A store is a file (any filesystem; its blocks allocated up front with
 * fallocate, so pageout never waits on a filesystem allocation) or a block
 * device opened exclusively.  Pages are written and read synchronously
 * with O_DIRECT where the filesystem supports it.  Each store has a bitmap
 * of page slots; stores are tried in priority order.  A slot is named by
 * MVM_SLOT(store id, slot number) in an object's swap xarray.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/blkdev.h>
#include <linux/delay.h>
#include <linux/bvec.h>
#include <linux/falloc.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/namei.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <net/genetlink.h>
#include "genl.h"
#include "object.h"
#include "pageout.h"
#include "swap.h"
#include "compat/compat.h"

#define MVM_MAX_STORES		32	/* ids 1..MVM_MAX_STORES */
#define MVM_MIN_SLOTS		16
#define MVM_MAX_SLOTS		BIT_ULL(33)	/* a 1 GiB bitmap */

/*
 * One swap store.  Published in mvm_stores[] under mvm_stores_sem (write);
 * every I/O and slot operation holds the semaphore for read, so a store
 * is never freed under one.  Removal first stops allocations, reads every
 * page back, then unpublishes.
 */
struct mvm_store {
	u32 id;
	s32 prio;
	u32 kind;		/* MACHVM_SWAP_KIND_* */
	bool direct;		/* opened O_DIRECT */
	bool removing;		/* no new slots; under mvm_stores_sem write */
	bool created;		/* SWAP_ADD created the file; until published */
	struct file *file;	/* holds a file reference */
	char *path;
	unsigned long nslots;

	spinlock_t lock;	/* protects bitmap, used, hint */
	unsigned long *bitmap;
	unsigned long used;
	unsigned long hint;	/* next-fit start */

	atomic64_t reads, writes;
};

/*
 * Published stores, by id.  Read: any slot operation or I/O (the store
 * stays); write: publishing, unpublishing, the removing flag.
 */
static DECLARE_RWSEM(mvm_stores_sem);
static struct mvm_store *mvm_stores[MVM_MAX_STORES + 1];
static bool mvm_swap_full_sent;	/* SWAP_FULL announced; atomic flag */

static struct mvm_store *mvm_store_by_id(u32 id)
{
	lockdep_assert_held(&mvm_stores_sem);
	return id && id <= MVM_MAX_STORES ? mvm_stores[id] : NULL;
}

/* Take up to @want contiguous free slots (next fit); how many, 0: none. */
static unsigned int mvm_store_take(struct mvm_store *s, unsigned int want,
				   unsigned long *slot)
{
	unsigned long n = s->nslots;
	unsigned int got;

	spin_lock(&s->lock);
	for (got = want; got; got /= 2) {
		n = bitmap_find_next_zero_area(s->bitmap, s->nslots, s->hint,
					       got, 0);
		if (n >= s->nslots)
			n = bitmap_find_next_zero_area(s->bitmap, s->nslots, 0,
						       got, 0);
		if (n < s->nslots)
			break;
	}
	if (got) {
		bitmap_set(s->bitmap, n, got);
		s->used += got;
		s->hint = n + got;
	}
	spin_unlock(&s->lock);
	*slot = n;
	return got;
}

/*
 * Up to @want contiguous free slots on the highest-priority store with
 * room: returns how many (at least one) with the first in *slot, or
 * -ENOSPC.
 */
int mvm_slot_alloc_run(unsigned int want, u64 *slot)
{
	struct mvm_store *best = NULL, *s;
	unsigned long n = 0;
	int i, ret = -ENOSPC;
	unsigned int got;

	down_read(&mvm_stores_sem);
	for (;;) {
		best = NULL;
		for (i = 1; i <= MVM_MAX_STORES; i++) {
			s = mvm_stores[i];
			if (!s || s->removing || READ_ONCE(s->used) >= s->nslots)
				continue;
			if (!best || s->prio > best->prio)
				best = s;
		}
		if (!best)
			break;
		got = mvm_store_take(best, want, &n);
		if (got) {
			*slot = MVM_SLOT(best->id, n);
			ret = got;
			break;
		}
	}
	up_read(&mvm_stores_sem);
	if (ret < 0) {
		mvm_count(MACHVM_A_STAT_SWAP_FULL, 1);
		if (!xchg(&mvm_swap_full_sent, true))
			mvm_swap_event(MACHVM_EVENT_SWAP_FULL, 0, NULL);
	} else {
		mvm_count(MACHVM_A_STAT_SWAPPED, ret);
	}
	return ret;
}

void mvm_slot_free(u64 slot)
{
	struct mvm_store *s;
	unsigned long n = MVM_SLOT_NR(slot);

	down_read(&mvm_stores_sem);
	s = mvm_store_by_id(MVM_SLOT_ID(slot));
	if (!WARN_ON_ONCE(!s || n >= s->nslots)) {
		spin_lock(&s->lock);
		if (!WARN_ON_ONCE(!__test_and_clear_bit(n, s->bitmap)))
			s->used--;
		spin_unlock(&s->lock);
		mvm_count(MACHVM_A_STAT_SWAPPED, -1);
	}
	up_read(&mvm_stores_sem);
	WRITE_ONCE(mvm_swap_full_sent, false);
	mvm_pageout_unstick();
}

/*
 * Write @nr folios to the contiguous slots from @slot, or read them from
 * there, in one request (the folios are locked, or not yet in any cache).
 * At most MVM_IO_MAX pages.
 */
int mvm_slot_io_vec(u64 slot, struct folio **folios, unsigned int nr,
		    bool write)
{
	struct bio_vec bv[MVM_IO_MAX];
	struct mvm_store *s;
	struct iov_iter it;
	loff_t pos = (loff_t)MVM_SLOT_NR(slot) << PAGE_SHIFT;
	size_t len = (size_t)nr << PAGE_SHIFT;
	ssize_t n = -ENOENT;
	unsigned int i, noio;

	if (WARN_ON_ONCE(!nr || nr > MVM_IO_MAX))
		return -EINVAL;
	for (i = 0; i < nr; i++)
		bvec_set_page(&bv[i], folio_page(folios[i], 0), PAGE_SIZE, 0);
	iov_iter_bvec(&it, write ? ITER_SOURCE : ITER_DEST, bv, nr, len);
	/* No reclaim recursion into a store (see the lock order). */
	noio = memalloc_noio_save();
	down_read(&mvm_stores_sem);
	s = mvm_store_by_id(MVM_SLOT_ID(slot));
	if (s && MVM_SLOT_NR(slot) + nr <= s->nslots) {
		if (write) {
			file_start_write(s->file);
			n = vfs_iter_write(s->file, &it, &pos, 0);
			file_end_write(s->file);
			atomic64_add(nr, &s->writes);
		} else {
			n = vfs_iter_read(s->file, &it, &pos, 0);
			atomic64_add(nr, &s->reads);
		}
	}
	up_read(&mvm_stores_sem);
	memalloc_noio_restore(noio);
	if (n == len)
		return 0;
	pr_err_ratelimited("swap %s of slot %llu:%llu failed: %zd\n",
			   write ? "write" : "read", MVM_SLOT_ID(slot) + 0ULL,
			   MVM_SLOT_NR(slot), n);
	return n < 0 ? n : -EIO;
}

int mvm_slot_io(u64 slot, struct folio *folio, bool write)
{
	return mvm_slot_io_vec(slot, &folio, 1, write);
}

/* Give up the slot of @index of @obj, if it has one (page_mutex held). */
void mvm_swap_forget_slot(struct mvm_object *obj, pgoff_t index)
{
	void *entry = xa_erase(&obj->swap, index);

	if (entry) {
		atomic_long_dec(&obj->nr_swapped);
		mvm_slot_free(xa_to_value(entry));
	}
}

/* Free every slot of @obj (destroyed or dying: no page comes back). */
void mvm_swap_free_slots(struct mvm_object *obj)
{
	unsigned long index;
	void *entry;

	xa_for_each(&obj->swap, index, entry)
		mvm_swap_forget_slot(obj, index);
}

/*
 * A SWAP_ADD that fails removes the file it created, if the path still
 * names it (nobody renamed or replaced it meanwhile).  The open file holds
 * the mount's write access that vfs_unlink() needs.
 */
static void mvm_store_unlink(struct file *f)
{
	struct dentry *dentry = dget(f->f_path.dentry);
	struct dentry *parent = dget_parent(dentry);
	struct inode *dir = d_inode(parent);
	int ret = -ESTALE;

	/* Our own reference, as a lookup's: the file's dentry stays positive. */
	inode_lock_nested(dir, I_MUTEX_PARENT);
	if (dentry->d_parent == parent && !d_unhashed(dentry) &&
	    d_inode(dentry) == file_inode(f))
		ret = mvm_vfs_unlink(f, dir, dentry);
	inode_unlock(dir);
	dput(parent);
	dput(dentry);
	if (ret)
		pr_warn_ratelimited("swap add failed; cannot remove the file it created (%d)\n",
				    ret);
}

static void mvm_store_free(struct mvm_store *s)
{
	if (s->file && s->created)
		mvm_store_unlink(s->file);
	if (s->file)
		fput(s->file);
	kvfree(s->bitmap);
	kfree(s->path);
	kfree(s);
}

/* Open (or create: *created) the store at @path. */
static struct file *mvm_store_open(const char *path, u32 *kind, bool *direct,
				   bool *created)
{
	struct path p;
	struct file *f;
	umode_t mode;
	int flags, ret;

	*created = false;
	ret = kern_path(path, LOOKUP_FOLLOW, &p);
	if (ret == -ENOENT) {
		*kind = MACHVM_SWAP_KIND_FILE;
		flags = O_RDWR | O_LARGEFILE | O_CREAT | O_EXCL;
		goto open;
	}
	if (ret)
		return ERR_PTR(ret);
	mode = d_inode(p.dentry)->i_mode;
	path_put(&p);
	if (S_ISBLK(mode)) {
		*kind = MACHVM_SWAP_KIND_BDEV;
		flags = O_RDWR | O_LARGEFILE | O_EXCL;	/* claim it */
	} else if (S_ISREG(mode)) {
		*kind = MACHVM_SWAP_KIND_FILE;
		flags = O_RDWR | O_LARGEFILE;
	} else {
		return ERR_PTR(-EINVAL);
	}
open:
	*direct = true;
	f = filp_open(path, flags | O_DIRECT, 0600);
	if (IS_ERR(f) && PTR_ERR(f) == -EINVAL &&
	    *kind == MACHVM_SWAP_KIND_FILE) {
		/*
		 * No O_DIRECT here (tmpfs on 6.1).  With O_EXCL the open
		 * failed after creating the file: it is ours all the same.
		 */
		*direct = false;
		f = filp_open(path, flags & ~(O_CREAT | O_EXCL), 0600);
	}
	*created = !IS_ERR(f) && (flags & O_EXCL) &&
		   *kind == MACHVM_SWAP_KIND_FILE;
	return f;
}

/*
 * SWAP_ADD.  @size 0: a file's current size or the whole device.  On
 * error *why says what was wrong (for the netlink extack).
 */
int mvm_swap_add(const char *path, u64 size, s32 prio, u32 *id,
		 const char **why)
{
	struct mvm_store *s;
	struct inode *inode;
	u64 have;
	int i, ret;

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	spin_lock_init(&s->lock);
	s->prio = prio;
	s->path = kstrdup(path, GFP_KERNEL);
	if (!s->path) {
		ret = -ENOMEM;
		goto err;
	}
	down_read(&mvm_stores_sem);
	ret = 0;
	for (i = 1; i <= MVM_MAX_STORES; i++)
		if (mvm_stores[i] && !strcmp(mvm_stores[i]->path, path))
			ret = -EBUSY;
	up_read(&mvm_stores_sem);
	if (ret) {
		*why = "path is already a swap store";
		goto err;
	}
	s->file = mvm_store_open(path, &s->kind, &s->direct, &s->created);
	if (IS_ERR(s->file)) {
		ret = PTR_ERR(s->file);
		s->file = NULL;
		*why = "cannot open the path (a regular file or block device)";
		goto err;
	}
	inode = file_inode(s->file);
	if (s->kind == MACHVM_SWAP_KIND_BDEV)
		inode = s->file->f_mapping->host;
	have = i_size_read(inode);
	if (!size)
		size = have;
	s->nslots = size >> PAGE_SHIFT;
	if (s->nslots > MVM_MAX_SLOTS) {
		ret = -EINVAL;
		*why = "a store holds at most 2^33 pages";
		goto err;
	}
	if (s->nslots < MVM_MIN_SLOTS) {
		ret = -ENOSPC;
		*why = "a store needs at least 16 pages";
		goto err;
	}
	if (s->kind == MACHVM_SWAP_KIND_BDEV) {
		if (size > have) {
			ret = -EINVAL;
			*why = "size is larger than the device";
			goto err;
		}
	} else {
		/* Every slot's blocks now, sparse file or not. */
		ret = vfs_fallocate(s->file, 0, 0,
				    (loff_t)s->nslots << PAGE_SHIFT);
		if (ret) {
			*why = "cannot allocate the file's space";
			goto err;
		}
	}
	s->bitmap = kvcalloc(BITS_TO_LONGS(s->nslots), sizeof(long),
			     GFP_KERNEL);
	if (!s->bitmap) {
		ret = -ENOMEM;
		goto err;
	}
	down_write(&mvm_stores_sem);
	ret = -ENOSPC;
	*why = "too many swap stores";
	for (i = 1; i <= MVM_MAX_STORES; i++) {
		if (mvm_stores[i] && file_inode(mvm_stores[i]->file) ==
		    file_inode(s->file)) {
			ret = -EBUSY;	/* the same file by another path */
			*why = "path is already a swap store";
			break;
		}
	}
	for (i = 1; ret == -ENOSPC && i <= MVM_MAX_STORES; i++) {
		if (!mvm_stores[i]) {
			s->id = i;
			s->created = false;	/* published: the file stays */
			mvm_stores[i] = s;
			ret = 0;
		}
	}
	up_write(&mvm_stores_sem);
	if (ret)
		goto err;
	*id = s->id;
	WRITE_ONCE(mvm_swap_full_sent, false);
	mvm_pageout_unstick();
	pr_info("swap store %u: %s, %lu pages, priority %d%s\n", s->id,
		s->path, s->nslots, s->prio, s->direct ? "" : ", buffered");
	mvm_swap_event(MACHVM_EVENT_SWAP_ADDED, s->id, s->path);
	return 0;
err:
	mvm_store_free(s);
	return ret;
}

struct mvm_swapin_ctx {
	u32 id;
	int error;
	unsigned long moved;
};

/* Read every page @ctx->id holds for @obj back into memory. */
static void mvm_store_drain_object(struct mvm_object *obj, void *arg)
{
	struct mvm_swapin_ctx *ctx = arg;
	unsigned long index;
	void *entry;
	int ret;

	if (ctx->error)
		return;
	xa_for_each(&obj->swap, index, entry) {
		if (MVM_SLOT_ID(xa_to_value(entry)) != ctx->id)
			continue;
		ret = mvm_object_swapin(obj, index, true);
		if (ret) {
			ctx->error = ret;
			return;
		}
		ctx->moved++;
		cond_resched();
	}
}

int mvm_swap_remove(u32 id, const char **why)
{
	struct mvm_swapin_ctx ctx = { .id = id };
	struct mvm_store *s;
	unsigned long used;
	u64 room;
	int i;

	down_write(&mvm_stores_sem);
	s = mvm_store_by_id(id);
	if (!s || s->removing) {
		up_write(&mvm_stores_sem);
		*why = "no such swap store";
		return -ENOENT;
	}
	used = READ_ONCE(s->used);
	room = si_mem_available();
	if (used > room) {
		up_write(&mvm_stores_sem);
		*why = "not enough free memory to read the store's pages back";
		return -ENOMEM;
	}
	s->removing = true;
	up_write(&mvm_stores_sem);

	/* Pages come back dirty: pageout writes them to other stores. */
	mvm_objects_walk(mvm_store_drain_object, &ctx);
	/* An object dying meanwhile frees its slots in a moment. */
	for (i = 0; i < 50 && !ctx.error && READ_ONCE(s->used); i++)
		msleep(20);

	down_write(&mvm_stores_sem);
	if (ctx.error || s->used) {
		s->removing = false;
		up_write(&mvm_stores_sem);
		*why = ctx.error == -ENOMEM ?
		       "out of memory while reading the store's pages back" :
		       "cannot read the store's pages back";
		return ctx.error ?: -EBUSY;
	}
	mvm_stores[id] = NULL;
	up_write(&mvm_stores_sem);
	pr_info("swap store %u removed (%lu pages read back)\n", id,
		ctx.moved);
	mvm_swap_event(MACHVM_EVENT_SWAP_REMOVED, id, s->path);
	mvm_store_free(s);
	return 0;
}

/* Put one MACHVM_A_SWAP nest for store @id; -ENOENT if none. */
int mvm_swap_fill(struct sk_buff *skb, u32 id)
{
	struct nlattr *nest;
	struct mvm_store *s;
	int ret = -ENOENT;

	down_read(&mvm_stores_sem);
	s = mvm_store_by_id(id);
	if (!s)
		goto out;
	ret = -EMSGSIZE;
	nest = nla_nest_start(skb, MACHVM_A_SWAP);
	if (!nest)
		goto out;
	if (nla_put_u32(skb, MACHVM_SWAP_A_ID, s->id) ||
	    nla_put_string(skb, MACHVM_SWAP_A_PATH, s->path) ||
	    nla_put_u32(skb, MACHVM_SWAP_A_KIND, s->kind) ||
	    nla_put_s32(skb, MACHVM_SWAP_A_PRIO, s->prio) ||
	    nla_put_u64_64bit(skb, MACHVM_SWAP_A_SLOTS, s->nslots,
			      MACHVM_SWAP_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_SWAP_A_USED, READ_ONCE(s->used),
			      MACHVM_SWAP_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_SWAP_A_WRITES,
			      atomic64_read(&s->writes), MACHVM_SWAP_A_PAD) ||
	    nla_put_u64_64bit(skb, MACHVM_SWAP_A_READS,
			      atomic64_read(&s->reads), MACHVM_SWAP_A_PAD) ||
	    nla_put_u8(skb, MACHVM_SWAP_A_DIRECT, s->direct)) {
		nla_nest_cancel(skb, nest);
		goto out;
	}
	nla_nest_end(skb, nest);
	ret = 0;
out:
	up_read(&mvm_stores_sem);
	return ret;
}

/* The first store id >= *id, or 0 when there is none. */
int mvm_swap_next(u32 *id)
{
	u32 i;

	down_read(&mvm_stores_sem);
	for (i = max_t(u32, *id, 1); i <= MVM_MAX_STORES; i++)
		if (mvm_stores[i])
			break;
	up_read(&mvm_stores_sem);
	*id = i;
	return i <= MVM_MAX_STORES ? i : 0;
}

int mvm_swap_init(void)
{
	return 0;
}

/* Module exit: no object is left, so no slot is in use. */
void mvm_swap_exit(void)
{
	int i;

	for (i = 1; i <= MVM_MAX_STORES; i++) {
		if (!mvm_stores[i])
			continue;
		WARN_ON_ONCE(mvm_stores[i]->used);
		mvm_store_free(mvm_stores[i]);
		mvm_stores[i] = NULL;
	}
}
