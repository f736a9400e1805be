/*
 * span.c: span records and spans. Records (struct span) and the free
 * bitmaps of small spans live in their own mappings, fenced by PROT_NONE
 * guard pages, so an overflow out of user data cannot reach them; spans
 * themselves come from the backend (prim.h) and are entered into the page
 * map here.
 *
 * Metadata blocks come from a tiny slab: sizes in 16-byte steps up to
 * META_MAX, one free list each, carved from 64 KiB guarded chunks.
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
		if ((size_t)(records.end - records.bump) < i * META_STEP) {
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

struct span *_span_span_new(size_t pages, unsigned int cls)
{
	struct span *s = record_alloc(cls);
	uint64_t *map;
	void *mem;

	if (!s)
		return NULL;
	mem = _span_prim_alloc(pages, cls);
	if (!mem) {
		span_add_relaxed(&_span_cnt.prim_errors, 1);
		s->cls = cls;
		record_free(s);
		errno = ENOMEM;
		return NULL;
	}
	map = s->freemap;
	*s = (struct span){
		.freemap = map,
		.base = (uintptr_t)mem,
		.cls = cls,
		.pages = pages,
		.bump = (uintptr_t)mem,
	};
	if (cls) {
		s->magic = _span_classes[cls].magic;
		s->nobjs = _span_classes[cls].nobjs;
		s->nfree = s->nobjs;
		_span_freemap_fill(s);
		if (_span_pagemap_set(s->base, pages, s) != 0) {
			_span_pagemap_set(s->base, pages, NULL);
			_span_prim_free(mem, pages);
			record_free(s);
			errno = ENOMEM;
			return NULL;
		}
	}
	span_add_relaxed(&_span_cnt.prim_allocs, 1);
	_span_stats_mapped((int64_t)(pages * SPAN_PAGE));
	return s;
}

void _span_span_release(struct span *s)
{
	if (s->cls)
		_span_pagemap_set(s->base, s->pages, NULL);
	if (_span_prim_free((void *)s->base, s->pages) != 0)
		span_add_relaxed(&_span_cnt.prim_errors, 1);
	span_add_relaxed(&_span_cnt.prim_frees, 1);
	_span_stats_mapped(-(int64_t)(s->pages * SPAN_PAGE));
	record_free(s);
}

void _span_span_release_list(struct span_list *l)
{
	enum { CHUNK = 64 };
	void *bases[CHUNK];
	size_t pages[CHUNK];
	uint64_t bytes = 0;
	struct span *s;
	size_t n = 0;

	while ((s = l->first) || n) {
		if (s) {
			_span_list_remove(l, s);
			if (s->cls)
				_span_pagemap_set(s->base, s->pages, NULL);
			bases[n] = (void *)s->base;
			pages[n] = s->pages;
			bytes += s->pages * SPAN_PAGE;
			n++;
			record_free(s);
		}
		if (n == CHUNK || (!l->first && n)) {
			size_t failed = _span_prim_free_batch(bases, pages, n);

			if (failed)
				span_add_relaxed(&_span_cnt.prim_errors, failed);
			span_add_relaxed(&_span_cnt.prim_frees, n);
			_span_stats_mapped(-(int64_t)bytes);
			bytes = 0;
			n = 0;
		}
	}
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
