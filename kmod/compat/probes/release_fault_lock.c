// SPDX-License-Identifier: GPL-2.0
/* release_fault_lock(): faults may hold a per-VMA lock (6.4+). */
#include <linux/mm.h>
void probe(struct vm_fault *vmf);
void probe(struct vm_fault *vmf)
{
	release_fault_lock(vmf);
}
