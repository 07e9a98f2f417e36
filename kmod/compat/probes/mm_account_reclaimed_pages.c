// SPDX-License-Identifier: GPL-2.0
/* mm_account_reclaimed_pages() (6.4+; reclaim_state->reclaimed_slab before). */
#include <linux/swap.h>
void probe(void);
void probe(void)
{
	mm_account_reclaimed_pages(1);
}
