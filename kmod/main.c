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
#include "machvm.h"

static int __init machvm_init(void)
{
	int ret;

	ret = mvm_dev_init();
	if (ret)
		goto err_dev;
	pr_info("loaded, ABI %u\n", MACHVM_ABI_VERSION);
	return 0;

err_dev:
	return ret;
}

static void __exit machvm_exit(void)
{
	mvm_dev_exit();
	pr_info("unloaded\n");
}

module_init(machvm_init);
module_exit(machvm_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Mach-style memory objects and user-level pagers");
MODULE_AUTHOR("machvm developers");
