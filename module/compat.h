/* SPDX-License-Identifier: GPL-2.0 */
/*
 * spanalloc compat: the kernel interfaces that differ between the kernels
 * we build for (Debian's 6.1 and 6.12). Each SPANALLOC_HAVE_* comes from a
 * compile or export test that scripts/kconftest runs against the target
 * kernel's build tree, never from a version number.
 */
#ifndef SPANALLOC_COMPAT_H
#define SPANALLOC_COMPAT_H

#include <linux/mm.h>

#include "spanalloc_conftest.h"

#ifndef SPANALLOC_HAVE_VM_FLAGS_SET
/* Before 6.3 vm_flags was a plain field written under the mmap lock. */
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma,
				  vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/* Remove the page table entries of [@addr, @addr + @size) in one VMA only. */
static inline void spanalloc_zap(struct vm_area_struct *vma,
				 unsigned long addr, unsigned long size)
{
#ifdef SPANALLOC_HAVE_ZAP_PAGE_RANGE_SINGLE
	zap_page_range_single(vma, addr, size, NULL);
#else
	zap_page_range(vma, addr, size);
#endif
}

#endif /* SPANALLOC_COMPAT_H */
