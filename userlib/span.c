/*
 * span.c: span records and spans. Records (struct span) and the free
 * bitmaps of small spans live in their own mappings, fenced by PROT_NONE
 * guard pages, so an overflow out of user data cannot reach them; spans
 * themselves come from the backend (prim.h) or the page heap's regions
 * of anonymous memory (pageheap.c), and are entered into the page map
 * here.
 *
 * Small spans: on the kernel backend from prim.c's stashes; when the
 * kernel says ENOMEM, the caches go back (_span_reclaim()) and it asks
 * again, then the span comes from anonymous memory instead. On the mmap
 * backend always from the page heap. Going back, a span returns where it
 * came from (span->region): kernel spans in batches, and a batch the
 * kernel refuses is kept and tried again, never forgotten; anonymous
 * spans become free runs of the page heap.
 *
 * Metadata blocks come from a tiny slab: sizes in 16-byte steps up to
 * META_MAX, one free list each, carved from 64 KiB guarded chunks; a block
 * whose size is a multiple of 64 (a record) starts on a cache line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>

#include "internal.h"
#include "prim.h"

#define META_CHUNK	(64 * 1024)
#define META_STEP	16
#define META_MAX	256
#define RELEASE_CHUNK	64	/* spans per backend batch */

_Static_assert(sizeof(struct span) % 64 == 0 && sizeof(struct span) <= META_MAX,
	       "records are whole cache lines from the metadata slab");

struct meta_free {
	struct meta_free *next;
};

static struct {
	pthread_mutex_t lock;
	struct meta_free *free[META_MAX / META_STEP + 1];
	char *bump;
	char *end;
} records = { .lock = PTHREAD_MUTEX_INITIALIZER };

void *_span_meta_map(size_t bytes)
{
	size_t len = bytes + 2 * SPAN_PAGE;
	char *p = mmap(NULL, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + SPAN_PAGE, bytes, PROT_READ | PROT_WRITE) != 0) {
		munmap(p, len);
		return NULL;
	}
	return p + SPAN_PAGE;
}

static void *meta_alloc(size_t bytes)
{
	size_t i = (bytes + META_STEP - 1) / META_STEP;
	void *p;

	pthread_mutex_lock(&records.lock);
	p = records.free[i];
	if (p) {
		records.free[i] = records.free[i]->next;
	} else {
		/* Whole cache lines (records) start on one: span layout. */
		if (!(i * META_STEP % 64) && records.bump)
			records.bump = (char *)(((uintptr_t)records.bump + 63) &
						~(uintptr_t)63);
		if (records.bump > records.end ||
		    (size_t)(records.end - records.bump) < i * META_STEP) {
			records.bump = _span_meta_map(META_CHUNK);
			if (!records.bump) {
				records.end = NULL;
				pthread_mutex_unlock(&records.lock);
				errno = ENOMEM;
				return NULL;
			}
			records.end = records.bump + META_CHUNK;
		}
		p = records.bump;
		records.bump += i * META_STEP;
	}
	pthread_mutex_unlock(&records.lock);
	return p;
}

static void meta_free(void *p, size_t bytes);

void *_span_meta_alloc(size_t bytes)
{
	return meta_alloc(bytes);
}

void _span_meta_free(void *p, size_t bytes)
{
	meta_free(p, bytes);
}

static void meta_free(void *p, size_t bytes)
{
	size_t i = (bytes + META_STEP - 1) / META_STEP;
	struct meta_free *m = p;

	pthread_mutex_lock(&records.lock);
	m->next = records.free[i];
	records.free[i] = m;
	pthread_mutex_unlock(&records.lock);
}

static size_t freemap_bytes(unsigned int cls)
{
	return ((_span_classes[cls].nobjs + 63) / 64) * sizeof(uint64_t);
}

static struct span *record_alloc(unsigned int cls)
{
	struct span *s = meta_alloc(sizeof(*s));
	uint64_t *map = NULL;

	if (!s)
		return NULL;
	if (cls) {
		map = meta_alloc(freemap_bytes(cls));
		if (!map) {
			meta_free(s, sizeof(*s));
			return NULL;
		}
	}
	s->freemap = map;
	/*
	 * Records are reused: a stale magic or limit would let free()'s fast
	 * path take a large block or a free run for a small object.
	 */
	s->magic = 0;
	s->limit = 0;
	return s;
}

static void record_free(struct span *s)
{
	if (s->freemap)
		meta_free(s->freemap, freemap_bytes(s->cls));
	meta_free(s, sizeof(*s));
}

struct span *_span_record_new(void)
{
	struct span *s = record_alloc(0);

	if (s)
		*s = (struct span){ 0 };
	return s;
}

void _span_record_drop(struct span *s)
{
	record_free(s);
}

/* When the kernel last refused a span even after a reclaim (ms), or 0. */
static uint64_t kernel_refused_ms;

bool _span_kernel_refusing(void)
{
	uint64_t t = span_load_relaxed(&kernel_refused_ms);

	return t && _span_now_ms() - t < _span_opt.decay_ms;
}

void _span_kernel_refused(void)
{
	span_store_relaxed(&kernel_refused_ms, _span_now_ms());
}

/*
 * Pages for a small span of @cls from the kernel (a stash); on ENOMEM the
 * caches go back and it asks once more. NULL + errno.
 */
static struct span *small_kernel(size_t pages, unsigned int cls)
{
	struct span *s;
	void *mem;

	if (_span_kernel_refusing()) {
		errno = ENOMEM;
		return NULL;
	}
	s = record_alloc(cls);
	if (!s)
		return NULL;
	mem = _span_prim_alloc(pages, cls);
	if (!mem) {
		_span_reclaim();
		mem = _span_prim_alloc(pages, cls);
	}
	if (!mem) {
		_span_kernel_refused();
		span_add_relaxed(&_span_cnt.prim_errors, 1);
		s->cls = cls;
		record_free(s);
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
static struct span *small_anon(size_t pages, unsigned int cls, bool fallback)
{
	struct span *s = _span_ph_small(pages, fallback);
	struct span_list back = { 0 };

	if (!s)
		return NULL;
	s->freemap = meta_alloc(freemap_bytes(cls));
	if (!s->freemap) {
		s->stamp_ms = _span_now_ms();
		_span_list_push(&back, s);
		_span_ph_small_free(&back);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

struct span *_span_span_new(size_t pages, unsigned int cls)
{
	bool kernel = _span_prim_backend() == SPAN_BACKEND_KERNEL;
	struct span *s = NULL;

	if (kernel)
		s = small_kernel(pages, cls);
	if (!s)		/* the mmap backend, or the kernel said no */
		s = small_anon(pages, cls, kernel);
	if (!s)
		return NULL;
	s->cls = cls;
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
 * tried again with the next batch, never forgotten. Under records.lock.
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
			pthread_mutex_lock(&records.lock);
			_span_list_push(&stuck, v[i]);
			pthread_mutex_unlock(&records.lock);
			continue;
		}
		bytes += v[i]->pages * SPAN_PAGE;
		record_free(v[i]);
	}
	if (nfailed)
		span_add_relaxed(&_span_cnt.prim_errors, nfailed);
	span_add_relaxed(&_span_cnt.prim_frees, n - nfailed);
	_span_stats_mapped(-(int64_t)bytes);
}

/* Small span @s of the page heap's regions becomes a bare page range. */
static void small_to_pages(struct span *s)
{
	meta_free(s->freemap, freemap_bytes(s->cls));
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

	pthread_mutex_lock(&records.lock);
	while ((s = stuck.first)) {	/* what failed last time, again */
		_span_list_remove(&stuck, s);
		_span_list_push(l, s);
	}
	pthread_mutex_unlock(&records.lock);
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
			meta_free(s->freemap, freemap_bytes(s->cls));
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

void _span_span_lock(void)
{
	pthread_mutex_lock(&records.lock);
}

void _span_span_unlock(void)
{
	pthread_mutex_unlock(&records.lock);
}

void _span_span_reinit(void)
{
	pthread_mutex_init(&records.lock, NULL);
}

/* ---- intrusive lists of spans (caller holds the owning lock) ---- */

void _span_list_push(struct span_list *l, struct span *s)
{
	s->prev = NULL;
	s->next = l->first;
	if (l->first)
		l->first->prev = s;
	else
		l->last = s;
	l->first = s;
	l->count++;
}

void _span_list_remove(struct span_list *l, struct span *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		l->first = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		l->last = s->prev;
	s->next = s->prev = NULL;
	l->count--;
}

void _span_freemap_fill(struct span *s)
{
	uint32_t i, words = (s->nobjs + 63) / 64;

	for (i = 0; i < words; i++)
		s->freemap[i] = ~0ULL;
	if (s->nobjs % 64)
		s->freemap[words - 1] = (1ULL << (s->nobjs % 64)) - 1;
}
