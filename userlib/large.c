/*
 * large.c: allocations above SPANALLOC_SMALL_MAX (and page-or-more
 * alignments): one span of whole pages each, straight from the backend.
 *
 * A freed large span goes to a small cache (at most
 * SPANALLOC_LARGE_CACHE_SPANS spans and SPANALLOC_LARGE_CACHE_MB bytes,
 * newest first), so a free/malloc pair of about the same size costs no
 * system call; spans cached longer than SPANALLOC_DECAY_MS, or pushed out
 * by newer ones, go back to the backend. A request takes the smallest
 * cached span that is big enough and wastes at most a quarter of it.
 *
 * The page map holds only the page of the pointer handed out (span->user),
 * so free() of anything else in a large span is an invalid pointer, and a
 * cached span is in no page map at all (a second free is caught).
 *
 * realloc() stays in place when the span has room, and on the mmap
 * backend moves pages with mremap() instead of copying.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "prim.h"

static struct {
	pthread_mutex_t lock;
	struct span_list cache;
	size_t cache_bytes;
	uint64_t live;
	uint64_t live_bytes;
	uint64_t allocs;
	uint64_t hits;
} large = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t span_bytes(const struct span *s)
{
	return s->pages * SPAN_PAGE;
}

/* Take cached spans older than the decay (all if @force) off the cache. */
static void large_expire(uint64_t now, bool force, struct span_list *out)
{
	struct span *s;

	while ((s = large.cache.last) &&
	       (force || now - s->stamp_ms >= _span_opt.decay_ms ||
		large.cache.count > _span_opt.large_cache_spans ||
		large.cache_bytes > _span_opt.large_cache_bytes)) {
		_span_list_remove(&large.cache, s);
		large.cache_bytes -= span_bytes(s);
		_span_list_push(out, s);
	}
}

static struct span *cache_take(size_t pages)
{
	struct span *s, *best = NULL;

	pthread_mutex_lock(&large.lock);
	for (s = large.cache.first; s; s = s->next) {
		if (s->pages >= pages && s->pages - pages <= s->pages / 4 &&
		    (!best || s->pages < best->pages))
			best = s;
	}
	if (best) {
		_span_list_remove(&large.cache, best);
		large.cache_bytes -= span_bytes(best);
		large.hits++;
	}
	pthread_mutex_unlock(&large.lock);
	return best;
}

static void large_account(struct span *s, int sign)
{
	pthread_mutex_lock(&large.lock);
	if (sign > 0) {
		large.live++;
		large.live_bytes += span_bytes(s);
		large.allocs++;
	} else {
		large.live--;
		large.live_bytes -= span_bytes(s);
	}
	pthread_mutex_unlock(&large.lock);
}

void *_span_large_alloc(size_t size, size_t align, bool zero)
{
	size_t pages, extra = align > SPAN_PAGE ? align - SPAN_PAGE : 0;
	struct span *s;
	bool fresh = false;

	if (size > PTRDIFF_MAX - extra - SPAN_PAGE) {
		errno = ENOMEM;
		return NULL;
	}
	pages = (size + extra + SPAN_PAGE - 1) >> SPAN_PAGE_SHIFT;
	s = cache_take(pages);
	if (!s) {
		s = _span_span_new(pages, 0);
		if (!s)
			return NULL;
		fresh = true;	/* the backend hands out zeroed pages */
	}
	s->user = (s->base + align - 1) & ~(uintptr_t)(align - 1);
	s->state = SPAN_STATE_LARGE;
	if (_span_pagemap_set(s->user, 1, s) != 0) {
		_span_span_release(s);
		errno = ENOMEM;
		return NULL;
	}
	large_account(s, 1);
	if (zero && !fresh)
		memset((void *)s->user, 0, size);
	return (void *)s->user;
}

void _span_large_free(struct span *s, void *p, const char *fn)
{
	struct span_list dead = { 0 };

	if ((uintptr_t)p != s->user || s->state != SPAN_STATE_LARGE)
		_span_invalid(fn, p, "interior pointer");
	_span_pagemap_set(s->user, 1, NULL);
	large_account(s, -1);
	s->state = SPAN_STATE_CACHED;
	s->stamp_ms = _span_now_ms();
	pthread_mutex_lock(&large.lock);
	if (span_bytes(s) <= _span_opt.large_cache_bytes &&
	    _span_opt.large_cache_spans) {
		_span_list_push(&large.cache, s);
		large.cache_bytes += span_bytes(s);
	} else {
		_span_list_push(&dead, s);
	}
	large_expire(s->stamp_ms, false, &dead);
	pthread_mutex_unlock(&large.lock);
	_span_span_release_list(&dead);
}

size_t _span_large_usable(const struct span *s)
{
	return s->base + span_bytes(s) - s->user;
}

void *_span_large_resize(struct span *s, void *p, size_t size)
{
	size_t pages, usable = _span_large_usable(s);
	void *moved;

	if ((uintptr_t)p != s->user || s->state != SPAN_STATE_LARGE)
		_span_invalid("realloc", p, "interior pointer");
	if (size <= SPAN_SMALL_MAX || size > PTRDIFF_MAX - SPAN_PAGE)
		return NULL;
	if (size <= usable && size >= usable / 2)
		return p;
	/* Only the mmap backend can move or trim pages (mremap). */
	if (_span_prim_backend() != SPAN_BACKEND_MMAP || s->user != s->base)
		return NULL;
	pages = (size + SPAN_PAGE - 1) >> SPAN_PAGE_SHIFT;
	moved = _span_prim_resize((void *)s->base, s->pages, pages);
	if (!moved)
		return NULL;
	pthread_mutex_lock(&large.lock);
	large.live_bytes += (pages - s->pages) * SPAN_PAGE;
	pthread_mutex_unlock(&large.lock);
	_span_pagemap_set(s->user, 1, NULL);
	_span_stats_mapped(((int64_t)pages - (int64_t)s->pages) *
			   (int64_t)SPAN_PAGE);
	s->base = s->user = (uintptr_t)moved;
	s->pages = pages;
	_span_pagemap_set(s->user, 1, s);
	return moved;
}

void _span_large_collect(bool force)
{
	struct span_list dead = { 0 };

	pthread_mutex_lock(&large.lock);
	large_expire(_span_now_ms(), force, &dead);
	pthread_mutex_unlock(&large.lock);
	_span_span_release_list(&dead);
}

void _span_large_lock(void)
{
	pthread_mutex_lock(&large.lock);
}

void _span_large_unlock(void)
{
	pthread_mutex_unlock(&large.lock);
}

void _span_large_reinit(void)
{
	pthread_mutex_init(&large.lock, NULL);
}

void _span_large_stats(struct span_stats *st)
{
	pthread_mutex_lock(&large.lock);
	st->large_live = large.live;
	st->large_live_bytes = large.live_bytes;
	st->large_cached = large.cache.count;
	st->large_cached_bytes = large.cache_bytes;
	st->large_allocs = large.allocs;
	st->large_cache_hits = large.hits;
	pthread_mutex_unlock(&large.lock);
}
