/*
 * pages.c: the span layer of the public API (spanalloc.h): whole pages from
 * the page heap, for programs that manage their own objects.
 *
 * Each span handed out has a record (state SPAN_STATE_PAGES) in the page
 * map at its first page, so span_pages_free() gives back only what
 * span_pages_alloc() gave, with the same number of pages, once: never a
 * malloc'ed block, a span the allocator owns, or a page in the middle.
 */
#include <errno.h>
#include <pthread.h>

#include "internal.h"
#include "prim.h"

static pthread_mutex_t pages_lock = PTHREAD_MUTEX_INITIALIZER;

SPAN_API void *span_pages_alloc(size_t pages)
{
	struct span *r;
	void *p;

	if (!_span_init()) {
		errno = ENOMEM;
		return NULL;
	}
	r = _span_record_new();
	if (!r)
		return NULL;
	p = _span_prim_alloc(pages, 0);
	if (!p) {
		_span_record_drop(r);
		return NULL;
	}
	r->base = (uintptr_t)p;
	r->pages = pages;
	r->state = SPAN_STATE_PAGES;
	if (_span_pagemap_set(r->base, 1, r) != 0) {
		_span_prim_free(p, pages);
		_span_record_drop(r);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

SPAN_API int span_pages_free(void *p, size_t pages)
{
	struct span *r;

	pthread_mutex_lock(&pages_lock);
	r = p ? span_pagemap_get((uintptr_t)p) : NULL;
	if (!r || r->state != SPAN_STATE_PAGES || r->base != (uintptr_t)p ||
	    r->pages != pages) {
		pthread_mutex_unlock(&pages_lock);
		errno = EINVAL;
		return -1;
	}
	_span_pagemap_set(r->base, 1, NULL);
	r->state = SPAN_STATE_FREE;
	pthread_mutex_unlock(&pages_lock);
	if (_span_prim_free(p, pages) != 0)
		span_add_relaxed(&_span_cnt.prim_errors, 1);
	_span_record_drop(r);
	return 0;
}

SPAN_API const char *span_backend(void)
{
	return _span_prim_backend_name(_span_prim_init());
}
