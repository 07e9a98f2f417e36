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

#endif /* _MACHVM_COMPAT_H */
