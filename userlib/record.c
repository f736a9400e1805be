/*
 * record.c: span records (struct span) and the other metadata of the
 * library (small spans' free bitmaps, the page map's leaves, region
 * descriptors), and the intrusive span lists. Metadata lives in its own
 * mappings, fenced by PROT_NONE guard pages, so an overflow out of user
 * data cannot reach it, and never next to user data.
 *
 * Metadata blocks come from a tiny slab: sizes in 16-byte steps up to
 * META_MAX, one free list each, carved from 64 KiB guarded chunks; a block
 * whose size is a multiple of 64 (a record) starts on a cache line.
 *
 * The bottom of the layers with clock.c and counters.c: it calls only the
 * system (mmap, mprotect). Its lock (records.lock) is a leaf, also held
 * by span.c around its list of spans the kernel refused to take back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>

#include "internal.h"

#define META_CHUNK	(64 * 1024)
#define META_STEP	16
#define META_MAX	256

/* free()'s fast path reads line 0 only. */
_Static_assert(offsetof(struct span, state) == 64,
	       "struct span: line 0 is what free() reads");
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
} records = { .lock = SPAN_LOCK_INITIALIZER };

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

size_t _span_freemap_bytes(unsigned int cls)
{
	return ((_span_classes[cls].nobjs + 63) / 64) * sizeof(uint64_t);
}

struct span *_span_record_alloc(unsigned int cls)
{
	struct span *s = meta_alloc(sizeof(*s));
	uint64_t *map = NULL;

	if (!s)
		return NULL;
	if (cls) {
		map = meta_alloc(_span_freemap_bytes(cls));
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
		meta_free(s->freemap, _span_freemap_bytes(s->cls));
	meta_free(s, sizeof(*s));
}

struct span *_span_record_new(void)
{
	struct span *s = _span_record_alloc(0);

	if (s)
		*s = (struct span){ 0 };
	return s;
}

void _span_record_drop(struct span *s)
{
	record_free(s);
}

void _span_record_lock(void)
{
	pthread_mutex_lock(&records.lock);
}

void _span_record_unlock(void)
{
	pthread_mutex_unlock(&records.lock);
}

void _span_record_reinit(void)
{
	span_lock_reinit(&records.lock);
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
