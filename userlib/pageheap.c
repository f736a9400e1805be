/*
 * pageheap.c: the page heap in userspace (TCMalloc's PageHeap, Go's mheap
 * in miniature): free runs of pages, carved into spans, and where a span's
 * pages come from and go to. Large spans always come from here; small
 * spans do when they are anonymous memory (span.c asks).
 *
 * Where pages come from (struct span.region, region.c):
 *   anonymous  an anonymous region: on the mmap backend every span, small
 *              and large; on the kernel backend large spans of
 *              SPANALLOC_LAZY_MB or more (populated on demand by page
 *              faults, as glibc's are: review H4), and any span the kernel
 *              refused with ENOMEM (a limit, the arena full).
 *   kernel     a kernel region (one large span of the module, populated):
 *              large spans below the threshold on the kernel backend.
 * Small spans of the kernel backend (region NULL) are prim.c's stashes'
 * and never come here. free() finds its way from the span's record.
 *
 * A free run is a struct span in state SPAN_STATE_CACHED: on a size bin
 * (best fit, ties to the lower address) and in the page map at its first
 * and last pages (and nowhere else), so a freed span finds its free
 * neighbours in O(1), and free() of a run's start is a double free. Runs
 * are of three kinds:
 *   dirty      pages of freed anonymous spans, resident: split at will,
 *              merged with dirty neighbours of the same region;
 *   clean      anonymous pages never touched or given back with
 *              MADV_DONTNEED (span->zero): they read as zero and cost no
 *              memory; split, and merged with clean neighbours of the same
 *              region. A region that is one clean run is unmapped (one
 *              region of the default size is kept as a spare);
 *   kernel     pages of a kernel region, resident: split at will, merged
 *              with every free neighbour of the same region (zero only if
 *              all parts were: calloc skips the memset of fresh frames).
 *              The module frees only a whole span or its tail, so a kernel
 *              run goes back only when it is its region's tail (the region
 *              is shortened) or all of it (the region is freed); one
 *              between live blocks is *pinned*: it stays, for reuse, on
 *              no age list and outside the byte bound, until it merges
 *              into a tail or is taken. A module without SPAN_RESIZE
 *              answers EOPNOTSUPP once; then only whole regions go back.
 * A request takes a dirty or kernel run first (no fault, no system call),
 * then a clean run (faults, no system call), then a new region. realloc
 * grows a span in place into the runs after it and shrinks it by giving
 * its tail back as a dirty (or kernel) run.
 *
 * Giving back: dirty and unpinned kernel runs are bounded by bytes,
 * max(SPANALLOC_LARGE_CACHE_MB, bytes of live large allocations), and by
 * age, SPANALLOC_DECAY_MS; never by their number (with many live blocks
 * the holes between them are many runs, and a count bound gave back a run
 * on nearly every free: the review's H1). Past a bound the oldest go back
 * first: a dirty run's excess tail becomes clean, a kernel run goes back
 * whole (a region's tail by SPAN_RESIZE, a whole region by SPAN_FREE). Small spans that central.c gives back have waited out the decay
 * already: they become clean at once. The checks run on every large malloc
 * and free and on central.c's periodic sweep. A backend call that fails
 * never makes the library forget memory: the run stays as it was and is
 * tried again later.
 *
 * When the backend says ENOMEM, the library first gives back its caches
 * (_span_reclaim(): thread cache, empty spans, stashes, every run, spare
 * regions) and tries again (review M1): this file fails with *reclaim
 * set, and the top (cache.c, alloc.c) reclaims and asks again; only then
 * does it fall back to anonymous memory (kernel) or fail. A kernel that
 * refused even then is not asked again for the decay interval: new spans
 * go to regions, and the byte bound is 0: at a cgroup's limit the pages
 * the library keeps are charged and only the library can give them back.
 *
 * Backend calls are made outside the lock, except for record allocation.
 * Lock order: this file's lock, then the page map's, then the records'
 * (record.c); never held while taking a central lock or a stash lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>

#include "internal.h"
#include "prim.h"

#define NBINS		256
#define SCAN_MAX	32	/* fitting runs looked at per bin */
#define REGION_PAGES	((size_t)64 << (20 - SPAN_PAGE_SHIFT))

struct bins {
	struct span_list l[NBINS];
	uint64_t nonempty[NBINS / 64];
};

static struct {
	pthread_mutex_t lock;
	struct bins dirty;		/* dirty and kernel runs */
	struct bins clean;		/* clean runs */
	struct span *young;		/* age list of dirty runs: newest ... */
	struct span *old;		/* ... oldest */
	size_t runs;			/* dirty and unpinned kernel runs */
	size_t free_bytes;		/* ... their bytes */
	size_t pinned;			/* pinned kernel runs */
	size_t pinned_bytes;
	size_t clean_bytes;
	struct region *spare;		/* a whole clean region kept */
	uint64_t live;
	uint64_t live_bytes;
	uint64_t allocs;
	uint64_t hits;
	uint64_t anon_bytes;		/* live spans of anonymous regions */
	uint64_t fallbacks;
	uint64_t errors;
	bool no_resize;			/* module without SPAN_RESIZE */
} ph = { .lock = SPAN_LOCK_INITIALIZER };

/* What run_find() may take. */
enum {
	TAKE_DIRTY = 1,		/* dirty runs */
	TAKE_KERNEL = 2,	/* kernel runs */
	TAKE_CLEAN = 4,		/* clean runs */
};

static size_t span_bytes(const struct span *s)
{
	return s->pages * SPAN_PAGE;
}

static uintptr_t span_end(const struct span *s)
{
	return s->base + span_bytes(s);
}

/* Pages of a kernel region (else of an anonymous one)? */
static bool in_kernel(const struct span *r)
{
	return r->region->kernel;
}

static bool run_clean(const struct span *r)
{
	return !in_kernel(r) && r->zero;
}

/*
 * A kernel run that cannot go back now: not its region's tail, or a tail
 * but not the whole region when the module has no SPAN_RESIZE (else it
 * would be taken off and put back at every check while the bound is 0).
 */
static bool kernel_pinned(const struct span *r)
{
	const struct region *g = r->region;

	if (!g->kernel)
		return false;
	if (span_end(r) != g->base + g->pages * SPAN_PAGE)
		return true;
	return r->base != g->base && span_load_relaxed(&ph.no_resize);
}

/* Large spans of this size come from regions, not from the kernel. */
static bool want_anon(size_t pages)
{
	size_t lazy = _span_opt.lazy_bytes >> SPAN_PAGE_SHIFT;

	return _span_prim_backend() != SPAN_BACKEND_KERNEL ||
	       (lazy && pages >= lazy);
}

/* ---- bins: 4 per power of two of pages, each an unsorted list ---- */

static unsigned int bin_of(size_t pages)
{
	unsigned int b = 63 - (unsigned int)__builtin_clzl(pages);

	return b < 2 ? (unsigned int)pages :
		b * 4 + (unsigned int)((pages >> (b - 2)) & 3);
}

static struct bins *bins_of(const struct span *r)
{
	return run_clean(r) ? &ph.clean : &ph.dirty;
}

static void bin_add(struct span *r)
{
	struct bins *b = bins_of(r);
	unsigned int i = bin_of(r->pages);

	_span_list_push(&b->l[i], r);
	b->nonempty[i / 64] |= 1ULL << (i % 64);
}

static void bin_del(struct span *r)
{
	struct bins *b = bins_of(r);
	unsigned int i = bin_of(r->pages);

	_span_list_remove(&b->l[i], r);
	if (!b->l[i].count)
		b->nonempty[i / 64] &= ~(1ULL << (i % 64));
}

/* The first non-empty bin of @b at or after @i, or NBINS. */
static unsigned int bin_next(const struct bins *b, unsigned int i)
{
	while (i < NBINS) {
		uint64_t w = b->nonempty[i / 64] & (~0ULL << (i % 64));

		if (w)
			return (i & ~63U) + (unsigned int)__builtin_ctzll(w);
		i = (i & ~63U) + 64;
	}
	return NBINS;
}

/* ---- the age list of dirty and kernel runs ---- */

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

static bool is_run(const struct span *r)
{
	/* relaxed: a thread's cache changes a live span's state unlocked */
	return r && !r->cls &&
	       span_load_relaxed(&r->state) == SPAN_STATE_CACHED;
}

/* The run of the same region and kind as @s that starts at @a, or NULL. */
static struct span *run_at(const struct span *s, uintptr_t a)
{
	struct span *r = span_pagemap_get(a);

	return is_run(r) && r->base == a && r->region == s->region &&
		(in_kernel(r) || r->zero == s->zero) ? r : NULL;
}

/* The run of the same region and kind as @s that ends at @a, or NULL. */
static struct span *run_before(const struct span *s, uintptr_t a)
{
	struct span *r = span_pagemap_get(a - SPAN_PAGE);

	return is_run(r) && span_end(r) == a && r->region == s->region &&
		(in_kernel(r) || r->zero == s->zero) ? r : NULL;
}

/* @r (stamp set) becomes a run. */
static void run_add(struct span *r)
{
	r->state = SPAN_STATE_CACHED;
	r->user = 0;
	bin_add(r);
	run_mark(r, r);
	r->pinned = kernel_pinned(r);
	if (run_clean(r)) {
		ph.clean_bytes += span_bytes(r);
	} else if (r->pinned) {
		ph.pinned++;
		ph.pinned_bytes += span_bytes(r);
	} else {
		age_push(r);
		ph.runs++;
		ph.free_bytes += span_bytes(r);
	}
}

static void run_del(struct span *r)
{
	run_mark(r, NULL);
	bin_del(r);
	if (run_clean(r)) {
		ph.clean_bytes -= span_bytes(r);
	} else if (r->pinned) {
		ph.pinned--;
		ph.pinned_bytes -= span_bytes(r);
	} else {
		age_del(r);
		ph.runs--;
		ph.free_bytes -= span_bytes(r);
	}
}

/*
 * Run @r becomes [@base, +@pages pages): same kind and age, and the same
 * end if it is a kernel run (a pinned run stays pinned, a tail a tail,
 * except that a tail that loses its front may become pinned: run_take()).
 */
static void run_move(struct span *r, uintptr_t base, size_t pages)
{
	size_t *bytes = run_clean(r) ? &ph.clean_bytes :
		r->pinned ? &ph.pinned_bytes : &ph.free_bytes;

	run_mark(r, NULL);
	bin_del(r);
	*bytes -= span_bytes(r);
	r->base = base;
	r->pages = pages;
	bin_add(r);
	run_mark(r, r);
	*bytes += span_bytes(r);
}

/*
 * Pages of @s (in no run, s->zero and s->stamp_ms set) become a run,
 * merged with its neighbours of the same region and kind; the merged run
 * is as young as its youngest part, and zero if all parts were. Returns
 * the run.
 */
static struct span *run_insert(struct span *s)
{
	struct span *l = run_before(s, s->base), *n = run_at(s, span_end(s));

	if (l) {
		run_del(l);
		s->base = l->base;
		s->pages += l->pages;
		s->zero &= l->zero;
		if (l->stamp_ms > s->stamp_ms)
			s->stamp_ms = l->stamp_ms;
		_span_record_drop(l);
	}
	if (n) {
		run_del(n);
		s->pages += n->pages;
		s->zero &= n->zero;
		if (n->stamp_ms > s->stamp_ms)
			s->stamp_ms = n->stamp_ms;
		_span_record_drop(n);
	}
	run_add(s);
	return s;
}

/* May @r serve @pages as one of @take? */
static bool run_fits(const struct span *r, size_t pages, unsigned int take)
{
	if (r->pages < pages)
		return false;
	if (in_kernel(r))
		return take & TAKE_KERNEL;
	return take & (r->zero ? TAKE_CLEAN : TAKE_DIRTY);
}

/* Best fit in @b: the smallest run that fits, the lowest of equals. */
static struct span *bins_find(const struct bins *b, size_t pages,
			      unsigned int take)
{
	struct span *r, *best = NULL;
	unsigned int i;

	for (i = bin_next(b, bin_of(pages)); i < NBINS && !best;
	     i = bin_next(b, i + 1)) {
		unsigned int seen = 0;

		/* A bin is unsorted: the best of its first SCAN_MAX fits. */
		for (r = b->l[i].first; r && seen < SCAN_MAX; r = r->next) {
			if (!run_fits(r, pages, take))
				continue;
			seen++;
			if (!best || r->pages < best->pages ||
			    (r->pages == best->pages && r->base < best->base))
				best = r;
		}
	}
	return best;
}

static struct span *run_find(size_t pages, unsigned int take)
{
	struct span *r = NULL;

	if (take & (TAKE_DIRTY | TAKE_KERNEL))
		r = bins_find(&ph.dirty, pages, take);
	if (!r && (take & TAKE_CLEAN))
		r = bins_find(&ph.clean, pages, take);
	return r;
}

/*
 * Take @pages from run @r (lock held): the front as a record of its own
 * (the tail stays a run, as old as it was), or the whole run if it fits
 * exactly or no record is to be had.
 */
static struct span *run_take(struct span *r, size_t pages)
{
	struct span *t;

	if (r->region == ph.spare)
		ph.spare = NULL;
	if (r->pages == pages || !(t = _span_record_new())) {
		run_del(r);
		t = r;
	} else {
		t->base = r->base;
		t->pages = pages;
		t->region = r->region;
		t->zero = r->zero;
		run_move(r, r->base + pages * SPAN_PAGE, r->pages - pages);
		/* No longer its region's start: pinned without SPAN_RESIZE */
		if (!r->pinned && kernel_pinned(r)) {
			run_del(r);
			run_add(r);
		}
	}
	t->next = t->prev = t->older = t->newer = NULL;
	if (!in_kernel(t)) {
		ph.anon_bytes += span_bytes(t);
		if (t->zero)	/* clean pages become memory again */
			_span_stats_mapped((int64_t)span_bytes(t));
	}
	return t;
}

/* When the kernel last refused a span even after a reclaim (ms), or 0. */
static uint64_t kernel_refused_ms;

/* The kernel refused a span within the decay interval before @now. */
static bool kernel_refusing_at(uint64_t now)
{
	uint64_t t = span_load_relaxed(&kernel_refused_ms);

	/* t > now: another thread saw a refusal after our clock read */
	return t && (t > now || now - t < _span_opt.decay_ms);
}

/*
 * Bytes of dirty and unpinned kernel runs kept: none while the kernel
 * refuses spans (a memory limit was reached: cached pages are charged, and
 * nothing but the library can give them back; a cgroup's processes that
 * cannot be OOM-killed stop making progress at the limit).
 */
static size_t cache_limit(uint64_t now)
{
	if (!_span_opt.large_cache_bytes || kernel_refusing_at(now))
		return 0;
	return ph.live_bytes > _span_opt.large_cache_bytes ?
		ph.live_bytes : _span_opt.large_cache_bytes;
}

/*
 * Runs past their decay (all if @force), then the oldest while over the
 * bound, onto @dead (lock held).
 */
static void runs_expire(uint64_t now, bool force, struct span_list *dead)
{
	size_t limit = cache_limit(now);
	struct span *r, *t;

	while ((r = ph.old)) {
		bool expired = force || now - r->stamp_ms >= _span_opt.decay_ms;
		size_t pages;

		if (!expired && ph.free_bytes <= limit)
			break;
		/* Pages over the limit, rounded up. */
		pages = (ph.free_bytes - limit + SPAN_PAGE - 1) >>
			SPAN_PAGE_SHIFT;
		if (!expired && !in_kernel(r) && pages < r->pages &&
		    (t = _span_record_new())) {
			/* Only the excess: the oldest run's tail goes. */
			run_move(r, r->base, r->pages - pages);
			t->base = span_end(r);
			t->pages = pages;
			t->region = r->region;
			t->stamp_ms = r->stamp_ms;
			_span_list_push(dead, t);
			continue;
		}
		run_del(r);
		_span_list_push(dead, r);
	}
}

/*
 * Clean run @r covers its whole region: onto @unmap unless kept as the
 * spare (lock held).
 */
static void region_maybe_unmap(struct span *r, bool force,
			       struct span_list *unmap)
{
	struct region *g = r->region;

	if (!run_clean(r) || r->base != g->base || r->pages != g->pages)
		return;
	if (!force && g->pages == REGION_PAGES && (!ph.spare || ph.spare == g)) {
		ph.spare = g;
		return;
	}
	if (ph.spare == g)
		ph.spare = NULL;
	run_del(r);
	_span_list_push(unmap, r);
}

/* Unmap the regions of the whole clean runs on @unmap (no lock held). */
static void unmap_regions(struct span_list *unmap)
{
	struct span *r;

	while ((r = unmap->first)) {
		_span_list_remove(unmap, r);
		if (_span_region_free(r->region) == 0) {
			span_add_relaxed(&_span_cnt.prim_frees, 1);
			_span_record_drop(r);
			continue;
		}
		pthread_mutex_lock(&ph.lock);
		ph.errors++;
		run_insert(r);	/* kept; the next collect tries again */
		pthread_mutex_unlock(&ph.lock);
	}
}

/*
 * Kernel run @r (off every list, no lock held) goes back: its whole
 * region (SPAN_FREE), or its region's tail (SPAN_RESIZE). True if it did;
 * else the caller keeps it.
 */
static bool kernel_release(struct span *r)
{
	struct region *g = r->region;
	size_t keep = (r->base - g->base) >> SPAN_PAGE_SHIFT;
	struct span *p;

	if (!keep) {
		if (_span_region_free(g) != 0)
			return false;
		/* A span back; a shortened region is not (review L10). */
		span_add_relaxed(&_span_cnt.prim_frees, 1);
	} else {
		if (span_load_relaxed(&ph.no_resize))
			return false;
		if (_span_region_shrink(g, keep) != 0) {
			if (errno == EOPNOTSUPP)
				span_store_relaxed(&ph.no_resize, true);
			return false;
		}
		pthread_mutex_lock(&ph.lock);
		g->pages = keep;
		/* A run freed meanwhile at the new end is a tail now. */
		p = span_pagemap_get(g->base + (keep - 1) * SPAN_PAGE);
		if (is_run(p) && p->pinned && !kernel_pinned(p)) {
			run_del(p);
			run_add(p);
		}
		pthread_mutex_unlock(&ph.lock);
	}
	_span_stats_mapped(-(int64_t)span_bytes(r));
	_span_record_drop(r);
	return true;
}

/*
 * Give back what runs_expire() took (no lock held): kernel runs to the
 * kernel, dirty runs' pages with MADV_DONTNEED (they become clean runs),
 * then regions that are one clean run. What fails is kept and tried again
 * later.
 */
static void release(struct span_list *dead, bool force)
{
	struct span_list unmap = { 0 };
	struct span *r;

	while ((r = dead->first)) {
		int err = 0;

		_span_list_remove(dead, r);
		if (in_kernel(r)) {
			if (kernel_release(r))
				continue;
			err = -1;
		} else {
			err = _span_region_release(r->base, r->pages);
		}
		pthread_mutex_lock(&ph.lock);
		if (err) {
			ph.errors++;
			r->stamp_ms = _span_now_ms();	/* later */
		} else {
			_span_stats_mapped(-(int64_t)span_bytes(r));
			r->zero = 1;
		}
		r = run_insert(r);
		region_maybe_unmap(r, force, &unmap);
		pthread_mutex_unlock(&ph.lock);
	}
	unmap_regions(&unmap);
}

/* ---- anonymous pages and kernel regions ---- */

/*
 * New region @g becomes one free run of the page heap, zero throughout (a
 * fresh mapping, or the kernel's zeroed pages). A kernel region also counts
 * as mapped here and is stamped now. -1 + ENOMEM without a record (the
 * region goes back).
 */
static int region_run(struct region *g, bool kernel)
{
	struct span *r = _span_record_new();

	if (!r) {
		(void)_span_region_free(g);
		errno = ENOMEM;
		return -1;
	}
	span_add_relaxed(&_span_cnt.prim_allocs, 1);
	if (kernel) {
		_span_stats_mapped((int64_t)(g->pages * SPAN_PAGE));
		r->stamp_ms = _span_now_ms();
	}
	r->base = g->base;
	r->pages = g->pages;
	r->region = g;
	r->zero = 1;
	pthread_mutex_lock(&ph.lock);
	run_insert(r);
	pthread_mutex_unlock(&ph.lock);
	return 0;
}

bool _span_kernel_refusing(void)
{
	return span_load_relaxed(&kernel_refused_ms) &&
	       kernel_refusing_at(_span_now_ms());
}

void _span_kernel_refused(void)
{
	span_store_relaxed(&kernel_refused_ms, _span_now_ms());
}

/*
 * @pages of anonymous memory with a record of their own (state FREE): a
 * dirty or clean run's front, or a new region's. NULL + errno; on ENOMEM
 * with @reclaim, *@reclaim is set: the caller gives its caches back and
 * asks again without (internal.h).
 */
static struct span *anon_take(size_t pages, bool *reclaim)
{
	struct region *g;
	struct span *r;

	for (;;) {
		pthread_mutex_lock(&ph.lock);
		r = run_find(pages, TAKE_DIRTY | TAKE_CLEAN);
		if (r)
			r = run_take(r, pages);
		pthread_mutex_unlock(&ph.lock);
		if (r)
			return r;
		g = _span_region_new(pages);
		if (!g) {
			if (reclaim)
				*reclaim = true;
			errno = ENOMEM;
			return NULL;
		}
		if (region_run(g, false))
			return NULL;
	}
}

/*
 * @pages of a kernel region with a record of their own: a kernel run's
 * front, or a new region's. NULL + errno; on ENOMEM with @reclaim,
 * *@reclaim is set (the caller reclaims and asks again without), else the
 * kernel is not asked again for a while.
 */
static struct span *kernel_take(size_t pages, bool *reclaim)
{
	struct region *g;
	struct span *r;

	if (_span_kernel_refusing())
		return NULL;
	for (;;) {
		pthread_mutex_lock(&ph.lock);
		r = run_find(pages, TAKE_KERNEL);
		if (r)
			r = run_take(r, pages);
		pthread_mutex_unlock(&ph.lock);
		if (r)
			return r;
		g = _span_region_kernel(pages);
		if (!g) {
			span_add_relaxed(&_span_cnt.prim_errors, 1);
			if (!reclaim || errno != ENOMEM) {
				_span_kernel_refused();
				return NULL;
			}
			*reclaim = true;
			return NULL;
		}
		if (region_run(g, true))
			return NULL;
	}
}

/* ---- what large.c and span.c ask for ---- */

struct span *_span_ph_alloc(size_t pages, bool *reclaim)
{
	struct span_list dead = { 0 };
	uint64_t now = _span_now_ms();
	bool anon = want_anon(pages), hit;
	struct span *r;

	pthread_mutex_lock(&ph.lock);
	runs_expire(now, false, &dead);
	r = run_find(pages, TAKE_DIRTY | (anon ? 0 : TAKE_KERNEL));
	if (r)
		r = run_take(r, pages);
	pthread_mutex_unlock(&ph.lock);
	release(&dead, false);

	hit = r;
	if (!r && !anon) {
		r = kernel_take(pages, reclaim);
		if (!r && reclaim && *reclaim)
			return NULL;	/* reclaim first, then regions */
		if (!r) {
			anon = true;	/* the kernel said no: regions */
			span_add_relaxed(&ph.fallbacks, 1);
		}
	}
	if (!r && anon)
		r = anon_take(pages, reclaim);
	if (!r)
		return NULL;
	pthread_mutex_lock(&ph.lock);
	r->state = SPAN_STATE_LARGE;
	ph.hits += hit;
	ph.allocs++;
	ph.live++;
	ph.live_bytes += span_bytes(r);
	pthread_mutex_unlock(&ph.lock);
	return r;
}

void _span_ph_free(struct span *s)
{
	struct span_list dead = { 0 };
	uint64_t now = _span_now_ms();

	pthread_mutex_lock(&ph.lock);
	ph.live--;
	ph.live_bytes -= span_bytes(s);
	if (!in_kernel(s))
		ph.anon_bytes -= span_bytes(s);
	s->zero = 0;
	s->stamp_ms = now;
	run_insert(s);
	runs_expire(now, false, &dead);
	pthread_mutex_unlock(&ph.lock);
	release(&dead, false);
}

struct span *_span_ph_small(size_t pages, bool fallback, bool *reclaim)
{
	struct span *r = anon_take(pages, reclaim);

	if (r && fallback)
		span_add_relaxed(&ph.fallbacks, 1);
	return r;
}

void _span_ph_small_free(struct span_list *l)
{
	struct span_list dead = { 0 };
	struct span *s;

	pthread_mutex_lock(&ph.lock);
	while ((s = l->first)) {
		_span_list_remove(l, s);
		ph.anon_bytes -= span_bytes(s);
		s->zero = 0;
		run_insert(s);	/* as old as the span was empty */
	}
	runs_expire(_span_now_ms(), false, &dead);
	pthread_mutex_unlock(&ph.lock);
	release(&dead, false);
}

/*
 * Span @s grows in place into the free runs of its region after it, or
 * gives its tail back as a run.
 */
static bool resize_run(struct span *s, size_t pages)
{
	struct span_list dead = { 0 };
	uint64_t now = _span_now_ms();
	struct span *n, *t;
	size_t have = 0, need;
	uintptr_t a;
	bool ok = false;

	pthread_mutex_lock(&ph.lock);
	if (pages > s->pages) {
		need = pages - s->pages;
		/* Enough free pages of its region right after @s? */
		a = span_end(s);
		while (have < need && (n = span_pagemap_get(a)) && is_run(n) &&
		       n->base == a && n->region == s->region) {
			have += n->pages;
			a = span_end(n);
		}
		ok = have >= need;
		while (ok && need) {
			n = span_pagemap_get(span_end(s));
			if (n->pages > need) {
				if (run_clean(n))
					_span_stats_mapped((int64_t)(need * SPAN_PAGE));
				run_move(n, n->base + need * SPAN_PAGE,
					 n->pages - need);
				s->pages += need;
				break;
			}
			if (run_clean(n))
				_span_stats_mapped((int64_t)span_bytes(n));
			if (n->region == ph.spare)
				ph.spare = NULL;
			run_del(n);
			s->pages += n->pages;
			need -= n->pages;
			_span_record_drop(n);
		}
	} else if ((t = _span_record_new())) {
		t->base = s->base + pages * SPAN_PAGE;
		t->pages = s->pages - pages;
		t->region = s->region;
		t->stamp_ms = now;
		s->pages = pages;
		run_insert(t);
		runs_expire(now, false, &dead);
		ok = true;
	}
	pthread_mutex_unlock(&ph.lock);
	release(&dead, false);
	return ok;
}

bool _span_ph_resize(struct span *s, size_t pages)
{
	size_t old = s->pages;

	if (pages == s->pages)
		return true;
	if (!resize_run(s, pages))
		return false;
	pthread_mutex_lock(&ph.lock);
	ph.live_bytes += pages * SPAN_PAGE;
	ph.live_bytes -= old * SPAN_PAGE;
	if (!in_kernel(s)) {
		ph.anon_bytes += pages * SPAN_PAGE;
		ph.anon_bytes -= old * SPAN_PAGE;
	}
	pthread_mutex_unlock(&ph.lock);
	return true;
}

void _span_ph_collect(bool force)
{
	struct span_list dead = { 0 }, unmap = { 0 };
	struct span *r;

	if (!force && !span_load_relaxed(&ph.runs))
		return;
	pthread_mutex_lock(&ph.lock);
	runs_expire(_span_now_ms(), force, &dead);
	/* Forced: the spare region too. */
	if (force && ph.spare && (r = span_pagemap_get(ph.spare->base)))
		region_maybe_unmap(r, true, &unmap);
	pthread_mutex_unlock(&ph.lock);
	unmap_regions(&unmap);
	release(&dead, force);
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
	span_lock_reinit(&ph.lock);
}

void _span_ph_stats(struct span_stats *st)
{
	pthread_mutex_lock(&ph.lock);
	st->large_live = ph.live;
	st->large_live_bytes = ph.live_bytes;
	st->large_cached = ph.runs + ph.pinned;
	st->large_cached_bytes = ph.free_bytes + ph.pinned_bytes;
	st->large_allocs = ph.allocs;
	st->large_cache_hits = ph.hits;
	st->released_bytes = ph.clean_bytes;
	st->anon_span_bytes = ph.anon_bytes;
	st->anon_fallbacks = ph.fallbacks;
	st->backend_errors += ph.errors;
	pthread_mutex_unlock(&ph.lock);
}
