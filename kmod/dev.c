// SPDX-License-Identifier: GPL-2.0
/*
 * The /dev/machvm misc device: version and feature query, pager endpoint
 * creation, anonymous objects (Mach's vm_allocate) and region queries
 * (Mach's vm_region).  Opening it grants nothing.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>
#include "dev.h"
#include "object.h"
#include "pager.h"

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

static long mvm_ioc_pager_create(void __user *arg)
{
	struct machvm_pager_create pc;

	if (copy_from_user(&pc, arg, sizeof(pc)))
		return -EFAULT;
	if (pc.flags || pc.fd || memchr_inv(pc.reserved, 0, sizeof(pc.reserved)))
		return -EINVAL;
	return mvm_pager_create(&pc, arg);
}

static long mvm_ioc_anon_create(void __user *arg)
{
	struct machvm_anon_create ac;

	if (copy_from_user(&ac, arg, sizeof(ac)))
		return -EFAULT;
	return mvm_anon_create(&ac, arg);
}

static long mvm_ioc_region(void __user *arg)
{
	struct mm_struct *mm = current->mm;
	struct machvm_region r;
	struct vm_area_struct *vma;
	int ret;

	if (copy_from_user(&r, arg, sizeof(r)))
		return -EFAULT;
	if (r.start || r.end || r.name || r.offset || r.size || r.prot ||
	    r.max_prot || r.shared || r.pad || r.reserved[0] || r.reserved[1])
		return -EINVAL;
	if (!mm)
		return -EINVAL;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, r.addr);
	if (!vma) {
		mmap_read_unlock(mm);
		return -ENOMEM;
	}
	ret = mvm_object_region(vma, &r);
	mmap_read_unlock(mm);
	if (ret)
		return ret;
	return copy_to_user(arg, &r, sizeof(r)) ? -EFAULT : 0;
}

static long mvm_dev_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case MACHVM_IOC_VERSION:
		return mvm_ioc_version(uarg);
	case MACHVM_IOC_PAGER_CREATE:
		return mvm_ioc_pager_create(uarg);
	case MACHVM_IOC_REGION:
		return mvm_ioc_region(uarg);
	case MACHVM_IOC_ANON_CREATE:
		return mvm_ioc_anon_create(uarg);
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
