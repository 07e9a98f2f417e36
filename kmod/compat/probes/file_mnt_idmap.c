// SPDX-License-Identifier: GPL-2.0
/* file_mnt_idmap() and idmapped vfs_unlink() (6.3+; user namespaces before). */
#include <linux/fs.h>
#include <linux/mount.h>
int probe(struct file *f, struct inode *dir, struct dentry *d);
int probe(struct file *f, struct inode *dir, struct dentry *d)
{
	return vfs_unlink(file_mnt_idmap(f), dir, d, NULL);
}
