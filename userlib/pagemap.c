/*
 * pagemap.c: the page map, address -> span record, so free() finds the
 * class of any pointer without a system call and without trusting a byte
 * next to the user's data.
 *
 * Two levels, like Go's arena index: a root of 2^17 pointers in .bss
 * covers the 47-bit user address space in 1 GiB steps; each leaf, mapped
 * on first use with guard pages around it, holds 2^18 record pointers, one
 * per 4 KiB page. Pages of a leaf are only backed once written, so the
 * map costs 8 bytes per page of heap, and lookups are two loads.
 *
 * Leaves are created under a lock and published with a release store;
 * entries are single words written when a span is made or released, which
 * happens before any pointer into it reaches another thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>

#include "internal.h"

#define LEAF_ENTRIES	(1UL << SPAN_PM_LEAF_BITS)

struct span **_span_pagemap_root[1UL << SPAN_PM_ROOT_BITS];

static pthread_mutex_t pagemap_lock = SPAN_LOCK_INITIALIZER;

static struct span **leaf_get(uintptr_t i)
{
	struct span **leaf = span_load_acquire(&_span_pagemap_root[i]);

	if (leaf)
		return leaf;
	pthread_mutex_lock(&pagemap_lock);
	leaf = _span_pagemap_root[i];
	if (!leaf) {
		leaf = _span_meta_map(LEAF_ENTRIES * sizeof(*leaf));
		if (leaf)
			span_store_release(&_span_pagemap_root[i], leaf);
	}
	pthread_mutex_unlock(&pagemap_lock);
	return leaf;
}

int _span_pagemap_set(uintptr_t addr, size_t pages, struct span *s)
{
	uintptr_t page = addr >> SPAN_PAGE_SHIFT;
	uintptr_t end = page + pages;

	if ((addr >> SPAN_PM_LEAF_SHIFT) >= (1UL << SPAN_PM_ROOT_BITS) ||
	    end > (1UL << (SPAN_PM_ROOT_BITS + SPAN_PM_LEAF_BITS))) {
		errno = ENOMEM;
		return -1;
	}
	while (page < end) {
		struct span **leaf = leaf_get(page >> SPAN_PM_LEAF_BITS);
		uintptr_t j = page & (LEAF_ENTRIES - 1);

		if (!leaf)
			return -1;
		for (; j < LEAF_ENTRIES && page < end; j++, page++)
			span_store_relaxed(&leaf[j], s);
	}
	return 0;
}

void _span_pagemap_lock(void)
{
	pthread_mutex_lock(&pagemap_lock);
}

void _span_pagemap_unlock(void)
{
	pthread_mutex_unlock(&pagemap_lock);
}

void _span_pagemap_reinit(void)
{
	span_lock_reinit(&pagemap_lock);
}
