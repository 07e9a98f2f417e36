/* SPDX-License-Identifier: GPL-2.0 */
/* The "machvm" generic netlink family and its events (genl.c). */
#ifndef _MVM_GENL_H
#define _MVM_GENL_H

#include <linux/types.h>

struct pid;

int mvm_genl_init(void);
void mvm_genl_exit(void);
void mvm_event(u32 event, u64 name, struct pid *pager, u64 offset);
void mvm_swap_event(u32 event, u32 id, const char *path);

#endif /* _MVM_GENL_H */
