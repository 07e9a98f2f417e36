/* SPDX-License-Identifier: GPL-2.0 */
/* /dev/machvm (dev.c). */
#ifndef _MVM_DEV_H
#define _MVM_DEV_H

int mvm_dev_init(void);
void mvm_dev_exit(void);

#endif /* _MVM_DEV_H */
