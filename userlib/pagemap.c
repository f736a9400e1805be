/*
 * pagemap.c: the page map, address -> span record, so free() finds the
 * class of any pointer without a system call and without trusting a byte
 * next to the user's data.
 *
 * Two levels, like Go's arena index: a root of 2^17 pointers in .bss
 * covers the 47-bit user address space in 1 GiB steps; each leaf, mapped
 * on first use with guard pages around it, holds 2^18 record pointers, one
 * per 4 KiB page. Pages of a leaf are only backed once written, so the
 * map costs 8 bytes per page of heap, and lookups are two loads. Entries
 * are offsets (struct span_pagemap, internal.h): a root entry its leaf's
 * address biased by the root's index, so that a lookup indexes the leaf
 * with the page number as it is; a leaf entry its record's address less
 * the map's, so that 0 is the record that holds no object.
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

struct span_pagemap _span_pm;

static pthread_mutex_t pagemap_lock = SPAN_LOCK_INITIALIZER;

/* Root entry @i holds its leaf's address less this. */
static uintptr_t leaf_bias(uintptr_t i)
{
	return (i << SPAN_PM_LEAF_BITS) * sizeof(uintptr_t);
}

static uintptr_t *leaf_get(uintptr_t i)
{
	uintptr_t e = span_load_acquire(&_span_pm.root[i]);
	uintptr_t *leaf;

	if (e)
		return (uintptr_t *)(e + leaf_bias(i));
	pthread_mutex_lock(&pagemap_lock);
	e = _span_pm.root[i];
	leaf = e ? (uintptr_t *)(e + leaf_bias(i)) : NULL;
	if (!leaf) {
		leaf = _span_meta_map(LEAF_ENTRIES * sizeof(*leaf));
		/*
		 * An entry of 0 is "no leaf": a leaf mapped at exactly
		 * leaf_bias(i), a low address (never seen), is left mapped
		 * (address space, no memory) and another taken, which the
		 * first keeps from landing there.
		 */
		if (leaf && (uintptr_t)leaf == leaf_bias(i))
			leaf = _span_meta_map(LEAF_ENTRIES * sizeof(*leaf));
		if (leaf)
			span_store_release(&_span_pm.root[i],
					   (uintptr_t)leaf - leaf_bias(i));
	}
	pthread_mutex_unlock(&pagemap_lock);
	return leaf;
}

int _span_pagemap_set(uintptr_t addr, size_t pages, struct span *s)
{
	uintptr_t page = addr >> SPAN_PAGE_SHIFT;
	uintptr_t end = page + pages;
	uintptr_t e = s ? (uintptr_t)s - (uintptr_t)&_span_pm : 0;

	if ((addr >> SPAN_PM_LEAF_SHIFT) >= (1UL << SPAN_PM_ROOT_BITS) ||
	    end > (1UL << (SPAN_PM_ROOT_BITS + SPAN_PM_LEAF_BITS))) {
		errno = ENOMEM;
		return -1;
	}
	while (page < end) {
		uintptr_t *leaf = leaf_get(page >> SPAN_PM_LEAF_BITS);
		uintptr_t j = page & (LEAF_ENTRIES - 1);

		if (!leaf)
			return -1;
		for (; j < LEAF_ENTRIES && page < end; j++, page++)
			span_store_relaxed(&leaf[j], e);
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
