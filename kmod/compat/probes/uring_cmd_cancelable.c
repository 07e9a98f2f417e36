// SPDX-License-Identifier: GPL-2.0
/* io_uring_cmd_mark_cancelable() and IO_URING_F_CANCEL (6.7+). */
#include <linux/io_uring/cmd.h>
void probe(struct io_uring_cmd *cmd, unsigned int issue_flags);
void probe(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	if (!(issue_flags & IO_URING_F_CANCEL))
		io_uring_cmd_mark_cancelable(cmd, issue_flags);
}
