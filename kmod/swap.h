/* SPDX-License-Identifier: GPL-2.0 */
/* The default pager's backing stores and their slots (swap.c). */
#ifndef _MVM_SWAP_H
#define _MVM_SWAP_H

#include <linux/types.h>
#include "machvm.h"

struct folio;
struct mvm_object;
struct sk_buff;

#define MVM_IO_MAX	32	/* pages per swap request */

/* A slot as stored in obj->swap: xa_mk_value(MVM_SLOT(store id, slot)). */
#define MVM_SLOT_SHIFT		40
#define MVM_SLOT(id, slot)	(((u64)(id) << MVM_SLOT_SHIFT) | (slot))
#define MVM_SLOT_ID(v)		((u32)((v) >> MVM_SLOT_SHIFT))
#define MVM_SLOT_NR(v)		((v) & ((1ULL << MVM_SLOT_SHIFT) - 1))

int mvm_swap_init(void);
void mvm_swap_exit(void);

int mvm_slot_alloc_run(unsigned int want, u64 *slot);
void mvm_slot_free(u64 slot);
int mvm_slot_io(u64 slot, struct folio *folio, bool write);
int mvm_slot_io_vec(u64 slot, struct folio **folios, unsigned int nr,
		    bool write);
void mvm_swap_forget_slot(struct mvm_object *obj, pgoff_t index);
void mvm_swap_free_slots(struct mvm_object *obj);

/* Netlink. */
int mvm_swap_add(const char *path, u64 size, s32 prio, u32 *id,
		 const char **why);
int mvm_swap_remove(u32 id, const char **why);
int mvm_swap_fill(struct sk_buff *skb, u32 id);
int mvm_swap_next(u32 *id);

#endif /* _MVM_SWAP_H */
