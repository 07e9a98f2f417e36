// SPDX-License-Identifier: GPL-2.0
/* io_uring_sqe_cmd() and struct io_uring_cmd::sqe. */
#include <linux/io_uring/cmd.h>
const void *probe(struct io_uring_cmd *cmd);
const void *probe(struct io_uring_cmd *cmd)
{
	return io_uring_sqe_cmd(cmd->sqe);
}
