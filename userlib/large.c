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
 * On the mmap backend a thread keeps the last few large spans it freed (up to
 * SPAN_TC_LARGE_SLOTS of at most SPAN_TC_LARGE_PAGES pages, and
 * SPAN_TC_LARGE_BYTES in all; struct span_tcache) and hands one out again
 * to a large malloc() that it fits with at most half as many pages again
 * to spare, without the page
 * heap's lock: threads that each allocate and free blocks of 32-256 KiB do
 * not queue on one mutex (TCMalloc caches up to 256 KiB per thread). Such
 * a span stays in the page map in state SPAN_STATE_THREAD, so a second
 * free() of it is a double free; the page heap sees it as in use until
 * the cache lets it go: when full (oldest first), at thread exit, and in
 * malloc_trim() and the reclaim before ENOMEM (cache.c's flush).
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
void _span_large_check(const struct span *s, const void *p, const char *fn)
{
	uint32_t state = span_load_relaxed(&s->state);

	if ((state == SPAN_STATE_CACHED || state == SPAN_STATE_THREAD) &&
	    (uintptr_t)p == s->base)
		_span_invalid(fn, p, strstr(fn, "free") ? "double free" :
			      "freed pointer");
	if ((uintptr_t)p != s->user || state != SPAN_STATE_LARGE)
		_span_invalid(fn, p, "interior pointer");
}

/* Remove entry @i of @tc's large spans, keeping the others' age order. */
static struct span *thread_take_at(struct span_tcache *tc, uint32_t i)
{
	struct span *s = tc->large[i];

	for (; i + 1 < tc->nlarge; i++)
		tc->large[i] = tc->large[i + 1];
	tc->nlarge--;
	tc->large_bytes -= span_bytes(s);
	return s;
}

/* Back to the page heap: @s leaves the page map and becomes a free run. */
static void large_release(struct span *s)
{
	_span_pagemap_set(s->user, 1, NULL);
	_span_ph_free(s);
}

/*
 * A span of this thread's cache with @pages to @pages + @pages / 2 pages
 * (a buffer size to the next: largemt's 33-256 KiB buffers are 1.33x and
 * 1.5x apart; within a quarter 9.5% of its mallocs missed, 2.7% now, and
 * a miss takes the page heap's lock twice, to evict and to allocate),
 * newest first; NULL when none fits. A hit costs no memory: the span's
 * pages were the cache's already.
 */
static struct span *thread_take(size_t pages)
{
	struct span_tcache *tc = &_span_tc;
	uint32_t i;

	for (i = tc->nlarge; i-- > 0;) {
		size_t have = tc->large[i]->pages;

		if (have >= pages && have <= pages + pages / 2) {
			struct span *s = thread_take_at(tc, i);

			span_store_relaxed(&s->state, SPAN_STATE_LARGE);
			return s;
		}
	}
	return NULL;
}

/* Keep @s, just freed, in this thread's cache; false if it does not go. */
static bool thread_keep(struct span *s)
{
	struct span_tcache *tc = &_span_tc;
	size_t bytes = span_bytes(s);

	/*
	 * The mmap backend only. On the kernel backend frames are charged
	 * and mapped whole; with spans kept here (and roomier bins)
	 * selftests/memcg_pressure's unkillable workers alone filled their
	 * cgroup's limit and stopped making progress (1 run in 8); with
	 * spans kept here alone, 4 runs in 217 (without, none in 114).
	 */
	if (tc->state != SPAN_TC_LIVE || s->user != s->base ||
	    s->pages > SPAN_TC_LARGE_PAGES ||
	    _span_prim_backend() != SPAN_BACKEND_MMAP ||
	    !span_load_relaxed(&_span_opt.large_cache_bytes))
		return false;	/* SPANALLOC_LARGE_CACHE_MB=0: keep none */
	while (tc->nlarge == SPAN_TC_LARGE_SLOTS ||
	       (tc->nlarge && tc->large_bytes + bytes > SPAN_TC_LARGE_BYTES)) {
		struct span *old = thread_take_at(tc, 0);

		span_store_relaxed(&old->state, SPAN_STATE_LARGE);
		large_release(old);
	}
	s->zero = 0;
	span_store_relaxed(&s->state, SPAN_STATE_THREAD);
	tc->large[tc->nlarge++] = s;
	tc->large_bytes += bytes;
	return true;
}

void _span_large_flush_thread(struct span_tcache *tc)
{
	while (tc->nlarge) {
		struct span *s = thread_take_at(tc, tc->nlarge - 1);

		span_store_relaxed(&s->state, SPAN_STATE_LARGE);
		large_release(s);
	}
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
	if (!extra && pages <= SPAN_TC_LARGE_PAGES) {
		s = thread_take(pages);
		if (s) {
			if (zero)
				memset((void *)s->user, 0, size);
			return (void *)s->user;
		}
	}
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

void _span_large_free(struct span *s)
{
	if (!thread_keep(s))
		large_release(s);
}

size_t _span_large_usable(const struct span *s)
{
	return s->base + span_bytes(s) - s->user;
}

void *_span_large_resize(struct span *s, void *p, size_t size)
{
	size_t pages, usable = _span_large_usable(s);
	size_t head = (s->user - s->base) >> SPAN_PAGE_SHIFT;

	_span_large_check(s, p, "realloc");
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

/*
 * The spans in threads' caches count as live here: the page heap has them
 * handed out (at most SPAN_TC_LARGE_SLOTS per thread; span_trim() gives
 * back the calling thread's now, the others' at their next slow path).
 */
void _span_large_stats(struct span_stats *st)
{
	_span_ph_stats(st);
}
