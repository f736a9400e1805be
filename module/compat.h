/* SPDX-License-Identifier: GPL-2.0 */
/*
 * spanalloc compat: the kernel interfaces that differ between the kernels
 * we build for (Debian's 6.1 and 6.12). Each SPANALLOC_HAVE_* comes from a
 * compile or export test that scripts/kconftest runs against the target
 * kernel's build tree, never from a version number.
 */
#ifndef SPANALLOC_COMPAT_H
#define SPANALLOC_COMPAT_H

#include <linux/list_lru.h>
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

/*
 * Put @item, a slab object, on @lru's list of the node and memory cgroup
 * the object was allocated on and charged to (list_lru_add_obj() since
 * 6.8, when list_lru_add() began to take them as arguments).
 */
static inline bool spanalloc_lru_add(struct list_lru *lru,
				     struct list_head *item)
{
#ifdef SPANALLOC_HAVE_LIST_LRU_ADD_OBJ
	return list_lru_add_obj(lru, item);
#else
	return list_lru_add(lru, item);
#endif
}

static inline bool spanalloc_lru_del(struct list_lru *lru,
				     struct list_head *item)
{
#ifdef SPANALLOC_HAVE_LIST_LRU_ADD_OBJ
	return list_lru_del_obj(lru, item);
#else
	return list_lru_del(lru, item);
#endif
}

#endif /* SPANALLOC_COMPAT_H */
