/*
 * span.c: span records and spans. Records (struct span) live in their own
 * mappings, fenced by PROT_NONE guard pages, so an overflow out of user
 * data cannot reach them; spans themselves come from the backend (prim.h)
 * and are entered into the page map here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>

#include "internal.h"
#include "prim.h"

#define RECORD_CHUNK	(64 * 1024)

static struct {
	pthread_mutex_t lock;
	struct span *free;		/* unused records */
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

static struct span *record_alloc(void)
{
	struct span *s;

	pthread_mutex_lock(&records.lock);
	if (!records.free) {
		struct span *chunk = _span_meta_map(RECORD_CHUNK);
		size_t i, n = RECORD_CHUNK / sizeof(*chunk);

		if (!chunk) {
			pthread_mutex_unlock(&records.lock);
			errno = ENOMEM;
			return NULL;
		}
		for (i = 0; i < n; i++) {
			chunk[i].next = records.free;
			records.free = &chunk[i];
		}
	}
	s = records.free;
	records.free = s->next;
	pthread_mutex_unlock(&records.lock);
	return s;
}

static void record_free(struct span *s)
{
	*s = (struct span){ .state = SPAN_STATE_FREE };
	pthread_mutex_lock(&records.lock);
	s->next = records.free;
	records.free = s;
	pthread_mutex_unlock(&records.lock);
}

struct span *_span_span_new(size_t pages, unsigned int cls)
{
	struct span *s = record_alloc();
	void *mem;

	if (!s)
		return NULL;
	mem = _span_prim_alloc(pages, cls);
	if (!mem) {
		span_add_relaxed(&_span_cnt.prim_errors, 1);
		record_free(s);
		errno = ENOMEM;
		return NULL;
	}
	*s = (struct span){
		.base = (uintptr_t)mem,
		.cls = cls,
		.pages = pages,
		.bump = (uintptr_t)mem,
	};
	if (cls) {
		s->magic = _span_classes[cls].magic;
		s->nobjs = _span_classes[cls].nobjs;
		s->nfree = s->nobjs;
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
