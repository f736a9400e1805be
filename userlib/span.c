/*
 * span.c: small spans, with their records (record.c). Their pages come
 * from the backend (prim.h) or the page heap's regions of anonymous memory
 * (pageheap.c), and are entered into the page map here.
 *
 * Small spans: on the kernel backend from prim.c's stashes; when the
 * kernel says ENOMEM, the caller gives the caches back (_span_reclaim(),
 * cache.c) and asks again, then the span comes from anonymous memory
 * instead. On the mmap
 * backend always from the page heap. Going back, a span returns where it
 * came from (span->region): kernel spans in batches, and a batch the
 * kernel refuses is kept and tried again, never forgotten; anonymous
 * spans become free runs of the page heap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>

#include "internal.h"
#include "prim.h"

#define RELEASE_CHUNK	64	/* spans per backend batch */

/*
 * Pages for a small span of @cls from the kernel (a stash); NULL + errno.
 * When it says no with @reclaim, *@reclaim is set (the caller reclaims and
 * asks again without); without, the kernel is not asked for a while.
 */
static struct span *small_kernel(size_t pages, unsigned int cls,
				 bool *reclaim)
{
	struct span *s;
	void *mem;

	if (_span_kernel_refusing()) {
		errno = ENOMEM;
		return NULL;
	}
	s = _span_record_alloc(cls);
	if (!s)
		return NULL;
	mem = _span_prim_alloc(pages, cls);
	if (!mem && reclaim) {
		*reclaim = true;
		s->cls = cls;
		_span_record_drop(s);
		errno = ENOMEM;
		return NULL;
	}
	if (!mem) {
		_span_kernel_refused();
		span_add_relaxed(&_span_cnt.prim_errors, 1);
		s->cls = cls;
		_span_record_drop(s);
		errno = ENOMEM;
		return NULL;
	}
	s->base = (uintptr_t)mem;
	s->region = NULL;
	span_add_relaxed(&_span_cnt.prim_allocs, 1);
	_span_stats_mapped((int64_t)(pages * SPAN_PAGE));
	return s;
}

/* Anonymous pages for a small span of @cls (the page heap); NULL + errno. */
static struct span *small_anon(size_t pages, unsigned int cls, bool fallback,
				bool *reclaim)
{
	struct span *s = _span_ph_small(pages, fallback, reclaim);
	struct span_list back = { 0 };

	if (!s)
		return NULL;
	s->freemap = _span_meta_alloc(_span_freemap_bytes(cls));
	if (!s->freemap) {
		s->stamp_ms = _span_now_ms();
		_span_list_push(&back, s);
		_span_ph_small_free(&back);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

struct span *_span_span_new(size_t pages, unsigned int cls, bool *reclaim)
{
	bool kernel = _span_prim_backend() == SPAN_BACKEND_KERNEL;
	struct span *s = NULL;

	if (kernel)
		s = small_kernel(pages, cls, reclaim);
	if (!s && reclaim && *reclaim)
		return NULL;	/* reclaim first, then anonymous memory */
	if (!s)		/* the mmap backend, or the kernel said no */
		s = small_anon(pages, cls, kernel, reclaim);
	if (!s)
		return NULL;
	s->cls = cls;
	s->bin = span_free_bin_tp(cls);
	s->owner = NULL;
	s->pages = pages;
	s->bump = s->base;
	s->free = NULL;
	s->magic = _span_classes[cls].magic;
	s->limit = 0;	/* central sets it, under its lock, when objects go out */
	s->nobjs = _span_classes[cls].nobjs;
	s->nfree = s->nobjs;
	s->user = 0;
	_span_freemap_fill(s);
	if (_span_pagemap_set(s->base, pages, s) != 0) {
		struct span_list l = { 0 };

		s->stamp_ms = 0;
		_span_list_push(&l, s);
		_span_span_release_list(&l);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

/*
 * Kernel spans whose SPAN_FREE failed: kept (still counted as mapped) and
 * tried again with the next batch, never forgotten. Under the records' lock (record.c).
 */
static struct span_list stuck;

/* Give back kernel spans @v[0..n) in one batch; keep those that fail. */
static void kernel_release(struct span **v, size_t n)
{
	void *bases[RELEASE_CHUNK] = { 0 }, *failed[RELEASE_CHUNK];
	size_t pages[RELEASE_CHUNK] = { 0 }, i, k = 0, nfailed;
	uint64_t bytes = 0;

	for (i = 0; i < n; i++) {
		bases[i] = (void *)v[i]->base;
		pages[i] = v[i]->pages;
	}
	nfailed = _span_prim_free_batch(bases, pages, n, failed);
	for (i = 0; i < n; i++) {
		/* failed[] lists the spans that did not go, in order. */
		if (k < nfailed && failed[k] == bases[i]) {
			k++;
			_span_record_lock();
			_span_list_push(&stuck, v[i]);
			_span_record_unlock();
			continue;
		}
		bytes += v[i]->pages * SPAN_PAGE;
		_span_record_drop(v[i]);
	}
	if (nfailed)
		span_add_relaxed(&_span_cnt.prim_errors, nfailed);
	span_add_relaxed(&_span_cnt.prim_frees, n - nfailed);
	_span_stats_mapped(-(int64_t)bytes);
}

/* Small span @s of the page heap's regions becomes a bare page range. */
static void small_to_pages(struct span *s)
{
	_span_meta_free(s->freemap, _span_freemap_bytes(s->cls));
	s->freemap = NULL;
	s->cls = 0;
	s->magic = 0;
	s->limit = 0;	/* else a large block carved here passes as an object */
	s->free = NULL;
	s->nfree = s->nobjs = 0;
}

void _span_span_release_list(struct span_list *l)
{
	struct span *v[RELEASE_CHUNK], *s;
	struct span_list anon = { 0 };
	size_t n = 0;

	_span_record_lock();
	while ((s = stuck.first)) {	/* what failed last time, again */
		_span_list_remove(&stuck, s);
		_span_list_push(l, s);
	}
	_span_record_unlock();
	while ((s = l->first)) {
		_span_list_remove(l, s);
		if (s->cls)
			_span_pagemap_set(s->base, s->pages, NULL);
		if (s->region) {
			small_to_pages(s);
			_span_list_push(&anon, s);
			continue;
		}
		if (s->cls) {
			_span_meta_free(s->freemap, _span_freemap_bytes(s->cls));
			s->freemap = NULL;
			s->cls = 0;
		}
		v[n++] = s;
		if (n == RELEASE_CHUNK) {
			kernel_release(v, n);
			n = 0;
		}
	}
	if (n)
		kernel_release(v, n);
	if (anon.count)
		_span_ph_small_free(&anon);
}

