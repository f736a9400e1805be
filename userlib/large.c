/*
 * large.c: allocations above SPANALLOC_SMALL_MAX (and page-or-more
 * alignments): one span of whole pages each, from the large page heap
 * (pageheap.c), which carves it out of the pages of freed large spans
 * when it can and asks the backend otherwise.
 *
 * The page map holds only the page of the pointer handed out (span->user),
 * so free() of anything else in a large span is an invalid pointer; a
 * freed span becomes a free run (state CACHED), mapped only at its first
 * and last pages, so a second free() of the same pointer finds the run
 * (double free), or nothing once the run merged with the one before it.
 *
 * calloc() clears only pages that may be dirty: pages fresh from the
 * backend are zero.
 *
 * realloc() keeps the pointer when the span has room; otherwise it
 * resizes the span in place (growing into the free runs of its region
 * after it, shrinking by giving the tail back), and failing that the
 * caller copies. Pages are never moved with mremap(): that would cut a
 * hole in a region.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "prim.h"

static size_t span_bytes(const struct span *s)
{
	return s->pages * SPAN_PAGE;
}

/* @p must be the pointer handed out by live large span @s. */
static void check_live(const struct span *s, const void *p, const char *fn)
{
	if (s->state == SPAN_STATE_CACHED && (uintptr_t)p == s->base)
		_span_invalid(fn, p, "double free");
	if ((uintptr_t)p != s->user || s->state != SPAN_STATE_LARGE)
		_span_invalid(fn, p, "interior pointer");
}

void *_span_large_alloc(size_t size, size_t align, bool zero, bool *reclaim)
{
	size_t pages, extra = align > SPAN_PAGE ? align - SPAN_PAGE : 0;
	struct span *s;

	/* At least a byte: else the block may start at its span's end. */
	size = size ? size : 1;
	if (size > PTRDIFF_MAX - extra - SPAN_PAGE) {
		errno = ENOMEM;
		return NULL;
	}
	pages = (size + extra + SPAN_PAGE - 1) >> SPAN_PAGE_SHIFT;
	s = _span_ph_alloc(pages, reclaim);
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->user = (s->base + align - 1) & ~(uintptr_t)(align - 1);
	if (_span_pagemap_set(s->user, 1, s) != 0) {
		_span_ph_free(s);
		errno = ENOMEM;
		return NULL;
	}
	if (zero && !s->zero)
		memset((void *)s->user, 0, size);
	return (void *)s->user;
}

void _span_large_free(struct span *s, void *p, const char *fn)
{
	check_live(s, p, fn);
	_span_pagemap_set(s->user, 1, NULL);
	_span_ph_free(s);
}

size_t _span_large_usable(const struct span *s)
{
	return s->base + span_bytes(s) - s->user;
}

void *_span_large_resize(struct span *s, void *p, size_t size)
{
	size_t pages, usable = _span_large_usable(s);
	size_t head = (s->user - s->base) >> SPAN_PAGE_SHIFT;

	check_live(s, p, "realloc");
	if (size <= SPAN_SMALL_MAX || size > PTRDIFF_MAX - SPAN_PAGE)
		return NULL;
	if (size <= usable && size >= usable / 2)
		return p;
	pages = head + ((size + SPAN_PAGE - 1) >> SPAN_PAGE_SHIFT);
	if (_span_ph_resize(s, pages))
		return p;
	return NULL;	/* the caller copies */
}

void _span_large_collect(bool force)
{
	_span_ph_collect(force);
}

void _span_large_lock(void)
{
	_span_ph_lock();
}

void _span_large_unlock(void)
{
	_span_ph_unlock();
}

void _span_large_reinit(void)
{
	_span_ph_reinit();
}

void _span_large_stats(struct span_stats *st)
{
	_span_ph_stats(st);
}
