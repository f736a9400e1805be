/*
 * central.c: the central lists (Go's mcentral), one per size class, shared
 * by every thread of the process.
 *
 * A class keeps its spans that have free objects (partial), and its spans
 * whose objects are all free (empty), newest first. Thread caches refill
 * and drain in batches (struct span_class.batch objects), and a whole
 * batch goes first through the class's transfer cache (transfer.c): a
 * drain parks its chain there and a refill takes one, in O(1), so the
 * class lock below is taken only when that cache is full or empty. A free
 * from another thread than the allocating one lands in the freeing
 * thread's bin (above 16 bytes; remote.c sends smaller objects back to
 * the thread that refilled from their span last, which a refill here
 * names in span->owner under the class lock); its batch reaches the next
 * thread that refills through the transfer cache, or comes back here,
 * where each object returns to its own span's free list: sorted by span
 * and checked before the class lock, one splice per span under it. A refill reserves never-used
 * objects under the lock and links them after it, and takes a span's
 * whole free list in O(1) when it fits in the batch (its freemap bits are
 * cleared after the unlock); only a list longer than the rest of the
 * batch is still cut one object at a time under the lock.
 *
 * An empty span is reused first (newest first); one left empty for
 * SPANALLOC_DECAY_MS goes back to the backend, which unmaps its frames, so
 * RSS drops. The decay runs on this file's slow paths (drains and refills,
 * of any class) and sweeps every class at most once per decay interval; a sweep gives back the expired
 * spans of all classes in one backend batch, the backend's stashes of
 * classes idle for the interval (prim.h), and the large page heap's
 * expired free runs (pageheap.c), so those pages go back too.
 *
 * Lock order: a class lock is never held while taking another lock of
 * this library, except by the fork handler, which takes every class lock
 * in class order, then every transfer lock (transfer.c), then large.c's, then the page map's, then the records',
 * then the backend's stash locks (leaves: prim.c takes no other lock).
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "internal.h"
#include "prim.h"

struct central {
	pthread_mutex_t lock;
	struct span_list partial;
	struct span_list empty;
	uint64_t spans;		/* spans of this class that exist */
	uint64_t refills;
	uint64_t drains;
} __attribute__((aligned(64)));

static struct central centrals[SPAN_NUM_CLASSES] = {
	[0 ... SPAN_NUM_CLASSES - 1] = { .lock = SPAN_LOCK_INITIALIZER },
};

static uint64_t last_sweep_ms;

/*
 * A refill reserves never-used objects of up to this many spans under the
 * lock and links them after: the first writes to a fresh span (its page
 * faults, on the mmap backend) happen outside the critical section.
 */
#define REFILL_RANGES	4

struct fresh_range {
	uintptr_t start;
	uint32_t count;
};

/* A span's whole free list, taken under the lock, its bits cleared after. */
struct taken_list {
	struct span *span;
	void *head;
};

/* Objects on @s's free list: its free ones minus its never-used tail. */
static uint32_t list_len(const struct span *s, uintptr_t end, uint32_t size)
{
	return s->nfree - (uint32_t)((end - s->bump) / size);
}

static uint32_t obj_index(const struct span *s, uintptr_t a)
{
	return (uint32_t)(((uint64_t)(a - s->base) *
			   _span_classes[s->cls].divmul) >> 32);
}

/* Object @a of @s leaves central: its bit goes from 1 to 0. */
static void freemap_take(struct span *s, uintptr_t a)
{
	uint32_t i = obj_index(s, a);

	span_and_relaxed(&s->freemap[i / 64], ~(1ULL << (i % 64)));
}

/*
 * Freemap bits gathered per word, so that a run of objects that share a
 * word costs one atomic operation, not one each: objects of a chain are
 * mostly in address order (a bin gives them back as they were handed out).
 */
struct freemap_word {
	struct span *span;
	uint32_t w;		/* word index; mask == 0: none gathered */
	uint64_t mask;
};

/* Objects of @f->mask leave central: one atomic AND. */
static void freemap_take_flush(struct freemap_word *f)
{
	if (f->mask)
		span_and_relaxed(&f->span->freemap[f->w], ~f->mask);
	f->mask = 0;
}

/* Object @a of @s leaves central (bit gathered in @f). */
static void freemap_take_gather(struct freemap_word *f, struct span *s,
				uintptr_t a)
{
	uint32_t i = obj_index(s, a);

	if (f->mask && (f->span != s || f->w != i / 64))
		freemap_take_flush(f);
	f->span = s;
	f->w = i / 64;
	f->mask |= 1ULL << (i % 64);
}

/* Objects [@a, @a + @k objects) of @s leave central, never used before. */
static void freemap_take_range(struct span *s, uintptr_t a, uint32_t k)
{
	uint32_t i = obj_index(s, a), end = i + k;

	while (i < end) {
		uint32_t w = i / 64, hi = end - w * 64 < 64 ? end - w * 64 : 64;
		uint64_t bits = hi == 64 ? ~0ULL : (1ULL << hi) - 1;

		bits &= ~0ULL << (i % 64);
		span_and_relaxed(&s->freemap[w], ~bits);
		i = (w + 1) * 64;
	}
}

/*
 * Clear the freemap bits of the NULL-terminated list @head of @s and hang
 * it after *@tailp; the new tail link.
 */
static void **take_list(void **tailp, struct span *s, void *head)
{
	struct freemap_word f = { 0 };
	void *obj;

	*tailp = head;
	for (obj = head; obj; obj = *(void **)obj) {
		freemap_take_gather(&f, s, (uintptr_t)obj);
		tailp = obj;
	}
	freemap_take_flush(&f);
	return tailp;
}

/* Link @k objects of @size from @start after *@tailp; the new tail link. */
static void **link_range(void **tailp, uintptr_t start, uint32_t k,
			 uint32_t size)
{
	while (k--) {
		*tailp = (void *)start;
		tailp = (void **)start;
		start += size;
	}
	return tailp;
}

/*
 * Objects of @f->mask come back: a bit already 1 means one was freed twice.
 * Atomic, so that drains do it before they take the class lock; always
 * before the objects reach their span (a refill may take them at once).
 */
static void freemap_put_flush(struct freemap_word *f)
{
	struct span *s = f->span;
	uint64_t twice;

	if (!f->mask)
		return;
	twice = span_fetch_or_relaxed(&s->freemap[f->w], f->mask) & f->mask;
	if (twice) {
		uint32_t i = f->w * 64 + (uint32_t)__builtin_ctzll(twice);

		_span_invalid("free", (void *)(s->base + (uintptr_t)i *
					       _span_classes[s->cls].size),
			      "double free");
	}
	f->mask = 0;
}

/* Object @a of @s comes back (bit gathered in @f; twice in it: a double free). */
static void freemap_put_gather(struct freemap_word *f, struct span *s,
			       uintptr_t a)
{
	uint32_t i = obj_index(s, a);
	uint64_t bit = 1ULL << (i % 64);

	if (i >= s->nobjs)
		_span_invalid("free", (void *)a, "past the last object of its span");
	if (f->mask && (f->span != s || f->w != i / 64))
		freemap_put_flush(f);
	if (f->mask & bit)
		_span_invalid("free", (void *)a, "double free");
	f->span = s;
	f->w = i / 64;
	f->mask |= bit;
}

/* Move the empty spans of @c whose decay expired onto @out (lock held). */
static void central_expire(struct central *c, uint64_t now, bool force,
			   struct span_list *out)
{
	struct span *s;

	while ((s = c->empty.last) &&
	       (force || now - s->stamp_ms >= _span_opt.decay_ms)) {
		_span_list_remove(&c->empty, s);
		c->spans--;
		_span_list_push(out, s);
	}
}

/* Sweep every class once per decay interval (no lock held). */
static void central_maybe_sweep(uint64_t now)
{
	uint64_t last = span_load_relaxed(&last_sweep_ms);

	if (now - last < _span_opt.decay_ms ||
	    !__atomic_compare_exchange_n(&last_sweep_ms, &last, now, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	_span_central_collect(false);
}

uint32_t _span_central_refill(unsigned int cls, uint32_t want, void **chain,
			      struct span_inbox *owner, bool *reclaim)
{
	const struct span_class *sc = &_span_classes[cls];
	struct central *c = &centrals[cls];
	void *head = NULL, **tailp = &head;
	struct fresh_range fresh[REFILL_RANGES];
	struct taken_list lists[REFILL_RANGES];
	uint32_t n = 0, nfresh = 0, nlists = 0, i;

	/* A whole batch from the transfer cache: no span touched. */
	if (want == sc->batch && (head = _span_transfer_get(cls))) {
		n = want;
		goto out_sweep;
	}
	pthread_mutex_lock(&c->lock);
	while (n < want) {
		struct span *s = c->partial.first;
		uintptr_t end;

		if (!s) {
			s = c->empty.first;
			if (s) {
				_span_list_remove(&c->empty, s);
			} else {
				pthread_mutex_unlock(&c->lock);
				s = _span_span_new(sc->pages, cls, reclaim);
				pthread_mutex_lock(&c->lock);
				if (!s)
					break;
				s->limit = sc->limit;	/* free() may take its objects */
				c->spans++;
			}
			s->state = SPAN_STATE_PARTIAL;
			_span_list_push(&c->partial, s);
		}
		/* remote.c reads it, acquire; a thread without one keeps it */
		if (span_class_owned(cls) && owner)
			span_store_release(&s->owner, owner);
		end = s->base + (uintptr_t)s->nobjs * sc->size;
		if (s->free && nlists < REFILL_RANGES &&
		    list_len(s, end, sc->size) <= want - n) {
			/* The span's whole free list: O(1), bits cleared after. */
			uint32_t len = list_len(s, end, sc->size);

			lists[nlists].span = s;
			lists[nlists++].head = s->free;
			s->free = NULL;
			s->nfree -= len;
			n += len;
		}
		while (n < want && s->free) {	/* longer than needed */
			void *obj = s->free;

			s->free = *(void **)obj;
			freemap_take(s, (uintptr_t)obj);
			*tailp = obj;
			tailp = obj;
			s->nfree--;
			n++;
		}
		if (n < want && s->bump < end) {
			uint32_t k = (uint32_t)((end - s->bump) / sc->size);

			if (nfresh == REFILL_RANGES)
				break;	/* the chain is long enough */
			if (k > want - n)
				k = want - n;
			fresh[nfresh].start = s->bump;
			fresh[nfresh++].count = k;
			freemap_take_range(s, s->bump, k);
			s->bump += (uintptr_t)k * sc->size;
			s->nfree -= k;
			n += k;
		}
		if (!s->nfree) {
			_span_list_remove(&c->partial, s);
			s->state = SPAN_STATE_FULL;
		}
	}
	c->refills++;
	pthread_mutex_unlock(&c->lock);
	/* Whole lists taken: their objects leave central now. */
	for (i = 0; i < nlists; i++)
		tailp = take_list(tailp, lists[i].span, lists[i].head);
	/* Never-used objects are linked outside the lock (their first touch). */
	for (i = 0; i < nfresh; i++)
		tailp = link_range(tailp, fresh[i].start, fresh[i].count, sc->size);
	*tailp = NULL;
out_sweep:
	*chain = head;
	/* Refills sweep too: a program that only allocates gives back. */
	central_maybe_sweep(_span_now_ms());
	return n;
}

/*
 * A drain sorts its objects by span before it takes the lock: a group is
 * one span's objects, linked, with their count (at most DRAIN_GROUPS
 * spans per lock hold).
 */
#define DRAIN_GROUPS	8

struct drain_group {
	struct span *span;
	void *head, *tail;
	uint32_t count;
};

/* Splice group @g into its span's free list (class lock held): O(1). */
static void span_splice(struct central *c, struct drain_group *g,
			uint64_t *now)
{
	struct span *s = g->span;

	if ((s->state != SPAN_STATE_FULL && s->state != SPAN_STATE_PARTIAL) ||
	    s->nfree + g->count > s->nobjs)
		_span_invalid("free", g->head, "double free");
	*(void **)g->tail = s->free;
	s->free = g->head;
	if (s->state == SPAN_STATE_FULL) {
		s->state = SPAN_STATE_PARTIAL;
		_span_list_push(&c->partial, s);
	}
	s->nfree += g->count;
	if (s->nfree == s->nobjs) {
		_span_list_remove(&c->partial, s);
		s->state = SPAN_STATE_EMPTY;
		s->free = NULL;
		s->bump = s->base;
		if (!*now)
			*now = _span_now_ms();
		s->stamp_ms = *now;
		_span_list_push(&c->empty, s);
	}
}

/* Splice @n groups under the class lock; expired empty spans onto @dead. */
static void central_splice(struct central *c, struct drain_group *g,
			   uint32_t n, struct span_list *dead, uint64_t *now)
{
	uint32_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < n; i++)
		span_splice(c, &g[i], now);
	c->drains++;
	if (c->empty.count) {
		if (!*now)
			*now = _span_now_ms();
		central_expire(c, *now, false, dead);
	}
	pthread_mutex_unlock(&c->lock);
}

/*
 * Put @n objects of @cls chained from @head back into their spans, and
 * move the class's expired empty spans onto @dead. Only when the transfer
 * cache is full, or a sweep empties it. The per-object work (page map,
 * freemap bit, sorting by span) is done before the lock; under it, one
 * splice per span.
 */
static void central_put_chain(unsigned int cls, void *head, uint32_t n,
			      struct span_list *dead, uint64_t *now)
{
	struct central *c = &centrals[cls];
	struct drain_group g[DRAIN_GROUPS];
	struct freemap_word f = { 0 };
	struct span *s = NULL;
	uintptr_t lo = 0, hi = 0;
	uint32_t ng = 0, i = 0;

	while (n--) {
		void *obj = head;
		uintptr_t a = (uintptr_t)obj;

		head = *(void **)obj;
		if (a - lo >= hi - lo) {
			s = span_pagemap_get(a);
			if (!s || s->cls != cls)
				_span_invalid("free", obj, "corrupted free list");
			lo = s->base;
			hi = s->base + s->pages * SPAN_PAGE;
		}
		freemap_put_gather(&f, s, a);
		if (i == ng || g[i].span != s) {
			for (i = 0; i < ng && g[i].span != s; i++)
				;
			if (i == DRAIN_GROUPS) {
				/*
				 * @f holds only bits of @s (a span change
				 * flushed the rest), which is in no group.
				 */
				central_splice(c, g, ng, dead, now);
				ng = i = 0;
			}
			if (i == ng)
				g[ng++] = (struct drain_group){ .span = s, .tail = obj };
		}
		*(void **)obj = g[i].head;
		g[i].head = obj;
		g[i].count++;
	}
	freemap_put_flush(&f);
	if (ng)
		central_splice(c, g, ng, dead, now);
}

void _span_central_drain(unsigned int cls, void *head, uint32_t n)
{
	struct span_list dead = { 0 };
	uint64_t now = 0;

	/* A whole batch goes to the transfer cache while it has room. */
	if (n == _span_classes[cls].batch && _span_transfer_put(cls, head))
		return;
	central_put_chain(cls, head, n, &dead, &now);
	_span_span_release_list(&dead);
	if (now)
		central_maybe_sweep(now);
}

void _span_central_collect(bool force)
{
	struct span_list dead = { 0 };
	uint64_t now = _span_now_ms();
	unsigned int cls;

	for (cls = 1; cls < SPAN_NUM_CLASSES; cls++) {
		struct central *c = &centrals[cls];
		void *chains[SPAN_TRANSFER_SLOTS];
		uint32_t k = _span_transfer_take_idle(cls, force, chains);
		uint64_t t = now;

		/* Batches nobody asked for during the interval: to their spans. */
		while (k--)
			central_put_chain(cls, chains[k], _span_classes[cls].batch,
					  &dead, &t);
		if (!span_load_relaxed(&c->empty.count))
			continue;
		if (force)
			pthread_mutex_lock(&c->lock);
		else if (pthread_mutex_trylock(&c->lock) != 0)
			continue;
		central_expire(c, now, force, &dead);
		pthread_mutex_unlock(&c->lock);
	}
	/* Every class's expired spans in one batch, then idle stashes. */
	_span_span_release_list(&dead);
	_span_prim_stash_trim(force ? 0 : _span_opt.decay_ms);
	/* And the large page heap's free runs past their decay. */
	_span_ph_collect(force);
}

bool _span_central_has_free(struct span *s, uintptr_t a)
{
	struct central *c = &centrals[s->cls];
	bool free = false;

	pthread_mutex_lock(&c->lock);
	if (s->state == SPAN_STATE_FULL || s->state == SPAN_STATE_PARTIAL ||
	    s->state == SPAN_STATE_EMPTY) {
		uint32_t i = obj_index(s, a);

		free = i < s->nobjs &&
		       (span_load_relaxed(&s->freemap[i / 64]) >> (i % 64) & 1);
	}
	pthread_mutex_unlock(&c->lock);
	return free || _span_transfer_has(s->cls, (void *)a);
}

void _span_central_lock_all(void)
{
	unsigned int cls;

	for (cls = 0; cls < SPAN_NUM_CLASSES; cls++)
		pthread_mutex_lock(&centrals[cls].lock);
	_span_transfer_lock_all();
}

void _span_central_unlock_all(void)
{
	unsigned int cls = SPAN_NUM_CLASSES;

	_span_transfer_unlock_all();
	while (cls--)
		pthread_mutex_unlock(&centrals[cls].lock);
}

void _span_central_reinit(void)
{
	unsigned int cls;

	for (cls = 0; cls < SPAN_NUM_CLASSES; cls++)
		span_lock_reinit(&centrals[cls].lock);
	_span_transfer_reinit();
}

uint64_t _span_central_class_free(unsigned int cls)
{
	struct central *c = &centrals[cls];
	uint64_t objs;
	struct span *s;

	pthread_mutex_lock(&c->lock);
	objs = c->empty.count * (uint64_t)_span_classes[cls].nobjs;
	for (s = c->partial.first; s; s = s->next)
		objs += s->nfree;
	pthread_mutex_unlock(&c->lock);
	return objs + _span_transfer_objects(cls);
}

void _span_central_stats(struct span_stats *st)
{
	unsigned int cls;

	for (cls = 1; cls < SPAN_NUM_CLASSES; cls++) {
		struct central *c = &centrals[cls];
		const struct span_class *sc = &_span_classes[cls];
		struct span *s;
		uint64_t free_objs = 0;

		pthread_mutex_lock(&c->lock);
		for (s = c->partial.first; s; s = s->next)
			free_objs += s->nfree;
		st->small_spans += c->spans;
		st->small_span_bytes += c->spans * sc->pages * SPAN_PAGE;
		st->small_empty_spans += c->empty.count;
		st->small_central_free_bytes += (free_objs +
			c->empty.count * (uint64_t)sc->nobjs +
			_span_transfer_objects(cls)) * sc->size;
		st->refills += c->refills;
		st->drains += c->drains;
		pthread_mutex_unlock(&c->lock);
	}
}
