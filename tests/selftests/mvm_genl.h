/* SPDX-License-Identifier: GPL-2.0 */
/* A raw generic-netlink client of the machvm family, for the tests. */
#ifndef MVM_GENL_H
#define MVM_GENL_H

#include <stdint.h>
#include "machvm.h"

/* One request attribute: a string, or a number of len bytes (1, 4, 8). */
struct mvm_nlattr {
	int type;
	uint64_t v;
	int len;
	const char *str;
};

/* Every attribute of the reply (nests flattened), by type. */
struct mvm_nlreply {
	uint64_t a[MACHVM_A_MAX + 1];
	char have[MACHVM_A_MAX + 1];
	uint64_t stat[MACHVM_A_STAT_MAX + 1];
	char path[256];
	int count;		/* messages in the reply (dumps) */
};

/* 0 or the kernel's -errno. */
int mvm_nl(int cmd, const struct mvm_nlattr *attrs, struct mvm_nlreply *out);
int mvm_nl_dump(int cmd, struct mvm_nlreply *out);
int mvm_swap_add(const char *path, uint64_t size, int32_t prio, uint32_t *id);
int mvm_swap_remove(uint32_t id);
int mvm_swap_info(uint32_t id, struct mvm_nlreply *r);
int mvm_object_info(uint64_t name, struct mvm_nlreply *r);
int mvm_pageout_run(uint64_t target, uint64_t name, int force,
		    struct mvm_nlreply *r);
uint64_t mvm_stat(int stat);

#endif
