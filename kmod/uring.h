/* SPDX-License-Identifier: GPL-2.0 */
/* The io_uring transport of pager endpoints (uring.c). */
#ifndef _MVM_URING_H
#define _MVM_URING_H

struct io_uring_cmd;
struct mvm_fetch;
struct mvm_pager;
struct work_struct;

int mvm_uring_init(void);
void mvm_uring_exit(void);
int mvm_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags);
struct mvm_fetch *mvm_uring_pair(struct mvm_pager *pager);
void mvm_uring_send(struct mvm_fetch *f);
void mvm_uring_monitor(struct work_struct *work);
unsigned int mvm_uring_release_idle(struct mvm_pager *pager);
void mvm_uring_release(struct mvm_pager *pager);

#endif /* _MVM_URING_H */
