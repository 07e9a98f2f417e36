/* SPDX-License-Identifier: GPL-2.0 */
/*
 * machvm internal interfaces shared by the module's files.
 */
#ifndef _MACHVM_H
#define _MACHVM_H

#include <linux/types.h>
#include "uapi/machvm.h"

#define MACHVM_FEATURES	0ULL

int mvm_dev_init(void);
void mvm_dev_exit(void);

#endif /* _MACHVM_H */
