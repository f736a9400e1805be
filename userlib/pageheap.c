/*
 * pageheap.c: the page heap of large spans in userspace (TCMalloc's
 * PageHeap, Go's mheap in miniature). Pages freed by large allocations
 * stay mapped and dirty here as free runs, and new large allocations are
 * carved out of them, so most large mallocs cost no system call and no
 * page fault. This file owns the free runs, where a large span's pages
 * come from and go to, and when they go back to the backend.
 *
 * A free run is a struct span in state SPAN_STATE_CACHED: on a size bin
 * (best fit, ties to the lower address), on the age list (newest first),
 * and in the page map at its first and last pages (and nowhere else), so
 * a freed span finds its free neighbours in O(1), and free() of a run's
 * start is reported as a double free.
 *
 * Backends differ in what a run can be:
 *   mmap    any page range: a request takes the front of the best run and
 *           the tail stays a run; a freed span merges with the runs before
 *           and after it (they may come from different mmap()s: munmap and
 *           madvise work across them, mremap is never used on runs);
 *           realloc grows in place into the run after a span, and a shrink
 *           gives the tail back as a run.
 *   kernel  a run is a whole kernel span (SPAN_FREE takes span starts
 *           only): no split, no merge. A run up to a third bigger than the
 *           request is handed out whole; up to twice the request it is
 *           trimmed first with _span_prim_resize() (in place, the tail's
 *           frames go back to the kernel); failing both, the biggest run
 *           of at least half the request is grown in place if the arena
 *           pages after it are free. _span_prim_resize() also grows and
 *           shrinks spans for realloc. A module without SPAN_RESIZE
 *           answers EOPNOTSUPP once and is not asked again.
 *
 * Every page of a run taken from the backend fresh reads as zero, and so
 * does a run made only of such pages (span->zero); a freed span is dirty.
 * calloc() clears only dirty memory.
 *
 * Giving back: free runs are bounded in bytes by
 * max(SPANALLOC_LARGE_CACHE_MB, bytes of live large allocations), never by
 * their number (with more than a few live blocks the holes between them
 * are many, and a count bound gave back a run on nearly every free: the
 * review's H1); above that the oldest go back first (on mmap only the
 * excess of the oldest run: its tail is unmapped).
 * A run not touched for SPANALLOC_DECAY_MS goes back whole. The checks run
 * on every large malloc and free, and on central.c's periodic sweep, so
 * RSS drops after the decay even if the program makes no large call.
 * Backend calls are made outside the lock, except for record allocation.
 *
 * Lock order: this file's lock, then the page map's, then the records'
 * (span.c); never held while taking a central lock or a stash lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>

#include "internal.h"
#include "prim.h"

#define NBINS	256
#define SCAN_MAX	32	/* fitting runs looked at per bin */

static struct {
	pthread_mutex_t lock;
	struct span_list bins[NBINS];
	uint64_t nonempty[NBINS / 64];
	struct span *young;		/* age list: newest run ... */
	struct span *old;		/* ... oldest run */
	size_t runs;
	size_t free_bytes;
	uint64_t live;
	uint64_t live_bytes;
	uint64_t allocs;
	uint64_t hits;
	bool no_resize;			/* kernel module without SPAN_RESIZE */
} ph = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t span_bytes(const struct span *s)
{
	return s->pages * SPAN_PAGE;
}

static uintptr_t span_end(const struct span *s)
{
	return s->base + span_bytes(s);
}

/* Runs can be split and merged: any page range of anonymous memory. */
static bool runs_split(void)
{
	return _span_prim_backend() == SPAN_BACKEND_MMAP;
}

/* ---- bins: 4 per power of two of pages, each an unsorted list ---- */

static unsigned int bin_of(size_t pages)
{
	unsigned int b = 63 - (unsigned int)__builtin_clzl(pages);

	return b < 2 ? (unsigned int)pages :
		b * 4 + (unsigned int)((pages >> (b - 2)) & 3);
}

static void bin_add(struct span *r)
{
	unsigned int i = bin_of(r->pages);

	_span_list_push(&ph.bins[i], r);
	ph.nonempty[i / 64] |= 1ULL << (i % 64);
}

static void bin_del(struct span *r)
{
	unsigned int i = bin_of(r->pages);

	_span_list_remove(&ph.bins[i], r);
	if (!ph.bins[i].count)
		ph.nonempty[i / 64] &= ~(1ULL << (i % 64));
}

/* The first non-empty bin at or after @i, or NBINS. */
static unsigned int bin_next(unsigned int i)
{
	while (i < NBINS) {
		uint64_t w = ph.nonempty[i / 64] & (~0ULL << (i % 64));

		if (w)
			return (i & ~63U) + (unsigned int)__builtin_ctzll(w);
		i = (i & ~63U) + 64;
	}
	return NBINS;
}

/* ---- the age list ---- */

static void age_push(struct span *r)
{
	r->newer = NULL;
	r->older = ph.young;
	if (ph.young)
		ph.young->newer = r;
	else
		ph.old = r;
	ph.young = r;
}

static void age_del(struct span *r)
{
	if (r->newer)
		r->newer->older = r->older;
	else
		ph.young = r->older;
	if (r->older)
		r->older->newer = r->newer;
	else
		ph.old = r->newer;
	r->newer = r->older = NULL;
}

/* ---- runs: the page map at both ends, a bin, the age list ---- */

static void run_mark(struct span *r, struct span *to)
{
	(void)_span_pagemap_set(r->base, 1, to);
	if (r->pages > 1)
		(void)_span_pagemap_set(span_end(r) - SPAN_PAGE, 1, to);
}

/* The run that starts at @a, or NULL. */
static struct span *run_at(uintptr_t a)
{
	struct span *r = span_pagemap_get(a);

	return r && !r->cls && r->state == SPAN_STATE_CACHED && r->base == a ?
		r : NULL;
}

/* The run that ends at @a, or NULL. */
static struct span *run_before(uintptr_t a)
{
	struct span *r = span_pagemap_get(a - SPAN_PAGE);

	return r && !r->cls && r->state == SPAN_STATE_CACHED &&
		span_end(r) == a ? r : NULL;
}

static void run_add(struct span *r, uint64_t now)
{
	r->state = SPAN_STATE_CACHED;
	r->user = 0;
	r->stamp_ms = now;
	bin_add(r);
	age_push(r);
	run_mark(r, r);
	ph.runs++;
	ph.free_bytes += span_bytes(r);
}

static void run_del(struct span *r)
{
	run_mark(r, NULL);
	bin_del(r);
	age_del(r);
	ph.runs--;
	ph.free_bytes -= span_bytes(r);
}

/* Run @r becomes [@base, +@pages pages): same age, new bin and marks. */
static void run_move(struct span *r, uintptr_t base, size_t pages)
{
	run_mark(r, NULL);
	bin_del(r);
	ph.free_bytes -= span_bytes(r);
	r->base = base;
	r->pages = pages;
	bin_add(r);
	run_mark(r, r);
	ph.free_bytes += span_bytes(r);
}

/* Pages of @s (in no run) become a run, merged with its neighbours. */
static void run_insert(struct span *s, uint64_t now)
{
	struct span *l, *n;

	if (runs_split()) {
		l = run_before(s->base);
		n = run_at(span_end(s));
		if (l) {
			run_del(l);
			s->base = l->base;
			s->pages += l->pages;
			s->zero &= l->zero;
			_span_record_drop(l);
		}
		if (n) {
			run_del(n);
			s->pages += n->pages;
			s->zero &= n->zero;
			_span_record_drop(n);
		}
	}
	run_add(s, now);
}

/* Best fit for @pages: the smallest run big enough, the lowest of equals. */
static struct span *run_find(size_t pages)
{
	struct span *r, *best = NULL;
	unsigned int i;

	for (i = bin_next(bin_of(pages)); i < NBINS && !best;
	     i = bin_next(i + 1)) {
		unsigned int seen = 0;

		/* A bin is unsorted: the best of its first SCAN_MAX fits. */
		for (r = ph.bins[i].first; r && seen < SCAN_MAX; r = r->next) {
			if (r->pages < pages)
				continue;
			seen++;
			if (!best || r->pages < best->pages ||
			    (r->pages == best->pages && r->base < best->base))
				best = r;
		}
	}
	if (best && !runs_split()) {
		/* Whole spans: a third more at most, twice if trimmed. */
		size_t most = span_load_relaxed(&ph.no_resize) ?
			      pages + pages / 3 : 2 * pages;

		if (best->pages > most)
			best = NULL;
	}
	return best;
}

/*
 * Kernel: the biggest run of at least half of @pages but less, to grow in
 * place (the arena pages after it may be free); NULL if none.
 */
static struct span *run_find_grow(size_t pages)
{
	struct span *r, *best = NULL;
	unsigned int i, lo = bin_of(pages / 2 ? pages / 2 : 1);

	if (runs_split() || span_load_relaxed(&ph.no_resize))
		return NULL;
	for (i = bin_of(pages) + 1; i-- > lo && !best;) {
		for (r = ph.bins[i].first; r; r = r->next)
			if (r->pages < pages && 2 * r->pages >= pages &&
			    (!best || r->pages > best->pages))
				best = r;
	}
	return best;
}

static size_t cache_limit(void)
{
	if (!_span_opt.large_cache_bytes)
		return 0;
	return ph.live_bytes > _span_opt.large_cache_bytes ?
		ph.live_bytes : _span_opt.large_cache_bytes;
}

/*
 * Runs past their decay (all if @force), then the oldest while over the
 * bounds, onto @dead (lock held).
 */
static void runs_expire(uint64_t now, bool force, struct span_list *dead)
{
	size_t limit = cache_limit();
	struct span *r, *t;

	while ((r = ph.old)) {
		bool expired = force || now - r->stamp_ms >= _span_opt.decay_ms;
		size_t pages;

		if (!expired && ph.free_bytes <= limit)
			break;
		/* Pages over the limit, rounded up. */
		pages = (ph.free_bytes - limit + SPAN_PAGE - 1) >>
			SPAN_PAGE_SHIFT;
		if (!expired && runs_split() && pages < r->pages &&
		    (t = _span_record_new())) {
			/* Only the excess: the oldest run's tail goes. */
			run_move(r, r->base, r->pages - pages);
			t->base = span_end(r);
			t->pages = pages;
			t->state = SPAN_STATE_CACHED;
			_span_list_push(dead, t);
			continue;
		}
		run_del(r);
		_span_list_push(dead, r);
	}
}

static void ph_free_run(struct span *r);

static void release(struct span_list *dead)
{
	if (dead->count)
		_span_span_release_list(dead);
}

/* ---- what large.c asks for ---- */

/*
 * Resize the whole kernel span @s to @pages in place (SPAN_RESIZE) and
 * count the change in the mapped bytes; the caller sets @s->pages. False if
 * the kernel cannot, remembering a module that lacks the command.
 */
static bool kernel_resize(struct span *s, size_t pages)
{
	if (_span_prim_resize((void *)s->base, s->pages, pages) !=
	    (void *)s->base) {
		if (errno == EOPNOTSUPP)
			span_store_relaxed(&ph.no_resize, true);
		return false;
	}
	_span_stats_mapped(((int64_t)pages - (int64_t)s->pages) *
			   (int64_t)SPAN_PAGE);
	return true;
}

struct span *_span_ph_alloc(size_t pages)
{
	struct span_list dead = { 0 };
	uint64_t now = _span_now_ms();
	struct span *r, *t;

	pthread_mutex_lock(&ph.lock);
	runs_expire(now, false, &dead);
	r = run_find(pages);
	if (r && runs_split() && r->pages > pages &&
	    (t = _span_record_new())) {
		/* The front goes out, the tail stays a run, as old as it was. */
		*t = *r;
		t->next = t->prev = t->older = t->newer = NULL;
		t->pages = pages;
		run_move(r, r->base + pages * SPAN_PAGE, r->pages - pages);
		r = t;
	} else if (r) {
		run_del(r);	/* all of it (no record for a split: a bit more) */
	} else if ((r = run_find_grow(pages))) {
		run_del(r);
	}
	pthread_mutex_unlock(&ph.lock);
	release(&dead);

	/* A kernel span too small: grow it in place; too big: trim it. */
	if (r && (r->pages < pages ||
		  (!runs_split() && r->pages - pages > r->pages / 4))) {
		if (kernel_resize(r, pages)) {
			r->pages = pages;
		} else {
			ph_free_run(r);
			r = NULL;
		}
	}
	if (!r) {
		r = _span_span_new(pages, 0);
		if (!r)
			return NULL;
		r->zero = 1;	/* the backend hands out zeroed pages */
		pthread_mutex_lock(&ph.lock);
	} else {
		pthread_mutex_lock(&ph.lock);
		ph.hits++;
	}
	r->state = SPAN_STATE_LARGE;
	ph.allocs++;
	ph.live++;
	ph.live_bytes += span_bytes(r);
	pthread_mutex_unlock(&ph.lock);
	return r;
}

/* A run taken but not used goes back as it was (dirty or not). */
static void ph_free_run(struct span *r)
{
	struct span_list dead = { 0 };
	uint64_t now = _span_now_ms();

	pthread_mutex_lock(&ph.lock);
	run_insert(r, now);
	runs_expire(now, false, &dead);
	pthread_mutex_unlock(&ph.lock);
	release(&dead);
}

void _span_ph_free(struct span *s)
{
	struct span_list dead = { 0 };
	uint64_t now = _span_now_ms();

	pthread_mutex_lock(&ph.lock);
	ph.live--;
	ph.live_bytes -= span_bytes(s);
	s->zero = 0;
	run_insert(s, now);
	runs_expire(now, false, &dead);
	pthread_mutex_unlock(&ph.lock);
	release(&dead);
}

bool _span_ph_fits(size_t pages)
{
	bool fits;

	pthread_mutex_lock(&ph.lock);
	fits = run_find(pages) != NULL;
	pthread_mutex_unlock(&ph.lock);
	return fits;
}

/* mmap: grow into the run after @s, or give its tail back as a run. */
static bool resize_split(struct span *s, size_t pages)
{
	struct span_list dead = { 0 };
	uint64_t now = _span_now_ms();
	struct span *n, *t;
	bool ok = false;

	pthread_mutex_lock(&ph.lock);
	if (pages > s->pages) {
		size_t need = pages - s->pages;

		n = run_at(span_end(s));
		if (n && n->pages >= need) {
			if (n->pages > need) {
				run_move(n, n->base + need * SPAN_PAGE,
					 n->pages - need);
			} else {
				run_del(n);
				_span_record_drop(n);
			}
			ok = true;
		}
	} else if ((t = _span_record_new())) {
		t->base = s->base + pages * SPAN_PAGE;
		t->pages = s->pages - pages;
		run_insert(t, now);
		ok = true;
	}
	if (ok) {
		ph.live_bytes += pages * SPAN_PAGE;
		ph.live_bytes -= span_bytes(s);
		s->pages = pages;
		runs_expire(now, false, &dead);
	}
	pthread_mutex_unlock(&ph.lock);
	release(&dead);
	return ok;
}

bool _span_ph_resize(struct span *s, size_t pages)
{
	if (pages == s->pages)
		return true;
	if (runs_split())
		return resize_split(s, pages);
	if (span_load_relaxed(&ph.no_resize))
		return false;
	if (!kernel_resize(s, pages))
		return false;
	pthread_mutex_lock(&ph.lock);
	ph.live_bytes += pages * SPAN_PAGE;
	ph.live_bytes -= span_bytes(s);
	s->pages = pages;
	pthread_mutex_unlock(&ph.lock);
	return true;
}

void *_span_ph_remap(struct span *s, size_t pages)
{
	void *moved;

	if (!runs_split() || s->user != s->base)
		return NULL;
	moved = _span_prim_resize((void *)s->base, s->pages, pages);
	if (!moved)
		return NULL;
	_span_stats_mapped(((int64_t)pages - (int64_t)s->pages) *
			   (int64_t)SPAN_PAGE);
	pthread_mutex_lock(&ph.lock);
	ph.live_bytes += pages * SPAN_PAGE;
	ph.live_bytes -= span_bytes(s);
	pthread_mutex_unlock(&ph.lock);
	s->base = (uintptr_t)moved;
	s->pages = pages;
	return moved;
}

void _span_ph_collect(bool force)
{
	struct span_list dead = { 0 };

	if (!force && !span_load_relaxed(&ph.runs))
		return;
	pthread_mutex_lock(&ph.lock);
	runs_expire(_span_now_ms(), force, &dead);
	pthread_mutex_unlock(&ph.lock);
	release(&dead);
}

void _span_ph_lock(void)
{
	pthread_mutex_lock(&ph.lock);
}

void _span_ph_unlock(void)
{
	pthread_mutex_unlock(&ph.lock);
}

void _span_ph_reinit(void)
{
	pthread_mutex_init(&ph.lock, NULL);
}

void _span_ph_stats(struct span_stats *st)
{
	pthread_mutex_lock(&ph.lock);
	st->large_live = ph.live;
	st->large_live_bytes = ph.live_bytes;
	st->large_cached = ph.runs;
	st->large_cached_bytes = ph.free_bytes;
	st->large_allocs = ph.allocs;
	st->large_cache_hits = ph.hits;
	pthread_mutex_unlock(&ph.lock);
}
