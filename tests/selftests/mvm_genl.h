/* SPDX-License-Identifier: GPL-2.0 */
/* A raw generic-netlink client of the machvm family, for the tests. */
#ifndef MVM_GENL_H
#define MVM_GENL_H

#include <stdint.h>
#include <linux/machvm.h>

/* One request attribute: a string, or a number of len bytes (1, 4, 8). */
struct mvm_nlattr {
	int type;
	uint64_t v;
	int len;
	const char *str;
};

/* Every attribute of the reply, by type: each nest's in its own array. */
struct mvm_nlreply {
	uint64_t a[MACHVM_A_MAX + 1];		/* top level */
	char have[MACHVM_A_MAX + 1];
	uint64_t obj[MACHVM_OBJ_A_MAX + 1];	/* MACHVM_A_OBJECT */
	uint64_t swap[MACHVM_SWAP_A_MAX + 1];	/* MACHVM_A_SWAP */
	uint64_t stat[MACHVM_A_STAT_MAX + 1];	/* MACHVM_A_STATS */
	char path[256];		/* MACHVM_SWAP_A_PATH or MACHVM_A_SWAP_PATH */
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
/* The object's GET_OBJECT reply (all zero if it failed). */
struct mvm_nlreply mvm_info(uint64_t name);
/* Wait up to @ms for the object's resident count to reach <= @want: 1, or 0. */
int mvm_wait_resident(uint64_t name, uint64_t want, int ms);

#endif
