// SPDX-License-Identifier: GPL-2.0
/* generic_error_remove_folio() (6.8+; generic_error_remove_page() before). */
#include <linux/mm.h>
int probe(struct address_space *mapping, struct folio *folio);
int probe(struct address_space *mapping, struct folio *folio)
{
	return generic_error_remove_folio(mapping, folio);
}
