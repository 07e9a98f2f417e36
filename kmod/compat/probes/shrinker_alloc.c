// SPDX-License-Identifier: GPL-2.0
/* shrinker_alloc()/shrinker_register() (6.7+; register_shrinker() before). */
#include <linux/shrinker.h>
struct shrinker *probe(void);
struct shrinker *probe(void)
{
	struct shrinker *s = shrinker_alloc(0, "probe");

	if (s)
		shrinker_register(s);
	return s;
}
