// SPDX-License-Identifier: GPL-2.0
/*
 * The /dev/machvm misc device: version and feature query.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>
#include "machvm.h"

static long mvm_ioc_version(void __user *arg)
{
	struct machvm_version v = {
		.abi_version = MACHVM_ABI_VERSION,
		.page_size = PAGE_SIZE,
		.features = MACHVM_FEATURES,
		.max_object_size = MAX_LFS_FILESIZE & PAGE_MASK,
	};

	return copy_to_user(arg, &v, sizeof(v)) ? -EFAULT : 0;
}

static long mvm_dev_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case MACHVM_IOC_VERSION:
		return mvm_ioc_version(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations mvm_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = mvm_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice mvm_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "machvm",
	.fops = &mvm_dev_fops,
	.mode = 0666,
};

int mvm_dev_init(void)
{
	return misc_register(&mvm_misc);
}

void mvm_dev_exit(void)
{
	misc_deregister(&mvm_misc);
}
