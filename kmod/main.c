// SPDX-License-Identifier: GPL-2.0
/*
 * machvm: Mach-style memory objects and user-level pagers.
 *
 * Module init and exit.  Every subsystem has an init and an exit; init
 * unwinds in reverse order on error and exit tears down in exact reverse
 * order of init.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include "dev.h"
#include "fault.h"
#include "genl.h"
#include "object.h"
#include "pageout.h"
#include "swap.h"
#include "uring.h"
#include "version.h"

/* The sizes the ABI header states: a change is an ABI change. */
static void __init mvm_abi_check(void)
{
	BUILD_BUG_ON(sizeof(struct machvm_version) != 64);
	BUILD_BUG_ON(sizeof(struct machvm_pager_create) != 32);
	BUILD_BUG_ON(sizeof(struct machvm_attr) != 8);
	BUILD_BUG_ON(sizeof(struct machvm_object_create) != 64);
	BUILD_BUG_ON(sizeof(struct machvm_region) != 80);
	BUILD_BUG_ON(sizeof(struct machvm_anon_create) != 56);
	BUILD_BUG_ON(sizeof(struct machvm_msg) != 64);
	BUILD_BUG_ON(sizeof(struct machvm_cmd) != 64);
	BUILD_BUG_ON(sizeof(struct machvm_uring_cmd) != 16);
}

static int __init machvm_init(void)
{
	int ret;

	mvm_abi_check();

	ret = mvm_fault_init();
	if (ret)
		goto err_fault;
	ret = mvm_object_init();
	if (ret)
		goto err_object;
	ret = mvm_swap_init();
	if (ret)
		goto err_swap;
	ret = mvm_pageout_init();
	if (ret)
		goto err_pageout;
	ret = mvm_uring_init();
	if (ret)
		goto err_uring;
	ret = mvm_genl_init();
	if (ret)
		goto err_genl;
	ret = mvm_dev_init();
	if (ret)
		goto err_dev;
	pr_info("loaded, version %s, ABI %u\n", MACHVM_VERSION,
		MACHVM_ABI_VERSION);
	return 0;

err_dev:
	mvm_genl_exit();
err_genl:
	mvm_uring_exit();
err_uring:
	mvm_pageout_exit();
err_pageout:
	mvm_swap_exit();
err_swap:
	mvm_object_exit();
err_object:
	mvm_fault_exit();
err_fault:
	return ret;
}

static void __exit machvm_exit(void)
{
	mvm_dev_exit();
	mvm_genl_exit();
	mvm_uring_exit();
	mvm_pageout_exit();
	mvm_swap_exit();
	mvm_object_exit();
	mvm_fault_exit();
	pr_info("unloaded\n");
}

module_init(machvm_init);
module_exit(machvm_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Mach-style memory objects and user-level pagers");
MODULE_AUTHOR("machvm developers");
MODULE_VERSION(MACHVM_VERSION);
