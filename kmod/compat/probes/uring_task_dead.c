// SPDX-License-Identifier: GPL-2.0
/* IO_URING_F_TASK_DEAD: task work running for a task that is gone. */
#include <linux/io_uring/cmd.h>
int probe(unsigned int issue_flags);
int probe(unsigned int issue_flags)
{
	return issue_flags & IO_URING_F_TASK_DEAD;
}
