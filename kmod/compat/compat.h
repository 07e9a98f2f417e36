/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences between the kernels machvm supports, decided by
 * compile probes (the files in compat/probes, run by compat/probe.sh into
 * compat-generated.h), never by version numbers.  The rest of the module
 * uses only the names defined here.
 */
#ifndef _MACHVM_COMPAT_H
#define _MACHVM_COMPAT_H

#include "compat-generated.h"
#include <linux/mm.h>

#ifdef MACHVM_HAVE_IO_URING_CMD_H
#include <linux/io_uring/cmd.h>
#else
#include <linux/io_uring.h>
#endif

#ifdef MACHVM_HAVE_IO_URING_SQE_CMD
static inline const void *mvm_uring_cmd_payload(struct io_uring_cmd *cmd)
{
	return io_uring_sqe_cmd(cmd->sqe);
}
#else
static inline const void *mvm_uring_cmd_payload(struct io_uring_cmd *cmd)
{
	return cmd->cmd;
}
#endif

#ifndef MACHVM_HAVE_VM_FLAGS_SET
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma,
				  vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

#ifndef MACHVM_HAVE_RELEASE_FAULT_LOCK
static inline void release_fault_lock(struct vm_fault *vmf)
{
	mmap_read_unlock(vmf->vma->vm_mm);
}
#endif

/* Tell reclaim about pages freed outside its LRU scan (a shrinker's). */
#include <linux/sched.h>
#include <linux/swap.h>
#ifndef MACHVM_HAVE_MM_ACCOUNT_RECLAIMED_PAGES
static inline void mm_account_reclaimed_pages(unsigned long pages)
{
	if (current->reclaim_state)
		current->reclaim_state->reclaimed_slab += pages;
}
#endif

/*
 * The locked folio at @index with a reference, or NULL: filemap_lock_folio()
 * returns NULL on some kernels, ERR_PTR(-ENOENT) on others.
 */
#include <linux/pagemap.h>
static inline struct folio *mvm_folio_lock_get(struct address_space *mapping,
					       pgoff_t index)
{
	struct folio *folio = filemap_lock_folio(mapping, index);

	return IS_ERR_OR_NULL(folio) ? NULL : folio;
}

/* Remove a locked folio from its page cache, whatever its refcount. */
#ifdef MACHVM_HAVE_GENERIC_ERROR_REMOVE_FOLIO
static inline int mvm_remove_folio(struct address_space *mapping,
				   struct folio *folio)
{
	return generic_error_remove_folio(mapping, folio);
}
#else
static inline int mvm_remove_folio(struct address_space *mapping,
				   struct folio *folio)
{
	return generic_error_remove_page(mapping, &folio->page);
}
#endif

/*
 * One shrinker, allocated and registered, or unregistered and freed: the
 * 6.7+ shrinker_alloc() API, or a static one with register_shrinker().
 */
#include <linux/shrinker.h>
#include <linux/slab.h>
#ifdef MACHVM_HAVE_SHRINKER_ALLOC
static inline struct shrinker *
mvm_shrinker_create(unsigned long (*count)(struct shrinker *,
					   struct shrink_control *),
		    unsigned long (*scan)(struct shrinker *,
					  struct shrink_control *))
{
	struct shrinker *s = shrinker_alloc(0, "machvm");

	if (!s)
		return NULL;
	s->count_objects = count;
	s->scan_objects = scan;
	s->seeks = DEFAULT_SEEKS;
	shrinker_register(s);
	return s;
}

static inline void mvm_shrinker_destroy(struct shrinker *s)
{
	shrinker_free(s);
}
#else
static inline struct shrinker *
mvm_shrinker_create(unsigned long (*count)(struct shrinker *,
					   struct shrink_control *),
		    unsigned long (*scan)(struct shrinker *,
					  struct shrink_control *))
{
	struct shrinker *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return NULL;
	s->count_objects = count;
	s->scan_objects = scan;
	s->seeks = DEFAULT_SEEKS;
	if (register_shrinker(s, "machvm")) {
		kfree(s);
		return NULL;
	}
	return s;
}

static inline void mvm_shrinker_destroy(struct shrinker *s)
{
	unregister_shrinker(s);
	kfree(s);
}
#endif

/* Unlink @dentry from @dir (locked) on the mount @f was opened through. */
#include <linux/fs.h>
#include <linux/mount.h>
static inline int mvm_vfs_unlink(struct file *f, struct inode *dir,
				 struct dentry *dentry)
{
#ifdef MACHVM_HAVE_FILE_MNT_IDMAP
	return vfs_unlink(file_mnt_idmap(f), dir, dentry, NULL);
#else
	return vfs_unlink(file_mnt_user_ns(f), dir, dentry, NULL);
#endif
}

#endif /* _MACHVM_COMPAT_H */
