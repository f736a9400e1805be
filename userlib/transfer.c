/*
 * transfer.c: the transfer cache (TCMalloc's TransferCache), one per size
 * class, between the thread caches and the central lists' spans.
 *
 * It holds whole batches: up to TRANSFER_SLOTS chains of exactly
 * span_class.batch objects, NULL-terminated, as a thread cache's drain
 * left them. A drain of a full batch pushes its chain, a refill of a full
 * batch pops one: each an O(1) critical section that touches no object
 * and no span record. So when one thread frees what another allocates
 * (producer/consumer, queues), batches go from bin to bin without being
 * taken apart into their spans and put together again. Only when the cache
 * is full (drain) or empty (refill) does central.c do the per-span work.
 *
 * Capacity, set at init (it needs the class table): up to 64 batches and
 * 1 MiB of a class (TCMalloc's bound for a class's transfer cache), so a
 * program that frees a burst of objects and allocates as many again
 * (glibc's bench-malloc-simple: 1,600 1 KiB blocks) finds them here, not
 * in their spans: at 128 KiB, 1,600 x 1 KiB took 27 ns a pair and
 * tcmalloc 13 (bench/batch's cells, natively). Unlike the bins' caps
 * (sizeclass.c), the same on both backends: these are the process's, and
 * the reclaim before ENOMEM empties them (memcg_pressure, 30 runs).
 *
 * Objects here are out of their spans (freemap bit 0, as in a bin) and
 * keep the double-free mark in word 1 (their span's address): a free()
 * that finds it asks
 * _span_transfer_has(), which walks this class's chains (cold path).
 *
 * Decay: a sweep (central.c, once per decay interval) gives back to the
 * spans as many chains as the class never needed during the interval (its
 * low-water mark), so an idle class's objects reach their spans, the spans
 * empty and their pages go back. A forced collect (reclaim) gives back
 * all.
 *
 * Lock order: a transfer lock is a leaf, never held while taking another
 * lock; the fork handler takes them after the central class locks
 * (central.c's lock_all).
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "internal.h"

#define TRANSFER_SLOTS		SPAN_TRANSFER_SLOTS	/* chains per class */
#define TRANSFER_MAX_BYTES	(1024 * 1024)	/* and at most this much */

struct transfer {
	pthread_mutex_t lock;
	uint32_t n;		/* chains held */
	uint32_t low;		/* fewest chains held since the last sweep */
	uint32_t slots;		/* capacity of this class */
	void *chain[TRANSFER_SLOTS];
} __attribute__((aligned(64)));

static struct transfer transfers[SPAN_NUM_CLASSES] = {
	[0 ... SPAN_NUM_CLASSES - 1] = { .lock = SPAN_LOCK_INITIALIZER },
};

void _span_transfer_init(void)
{
	unsigned int cls;

	/* Slots of one batch each within the byte bound, at least one. */
	for (cls = 1; cls < SPAN_NUM_CLASSES; cls++) {
		const struct span_class *sc = &_span_classes[cls];
		uint64_t n = TRANSFER_MAX_BYTES /
			     ((uint64_t)sc->batch * sc->size);

		transfers[cls].slots = n < 1 ? 1 : n > TRANSFER_SLOTS ?
				       TRANSFER_SLOTS : (uint32_t)n;
	}
}

bool _span_transfer_put(unsigned int cls, void *chain)
{
	struct transfer *t = &transfers[cls];
	bool ok = false;

	pthread_mutex_lock(&t->lock);
	if (t->n < t->slots) {
		t->chain[t->n++] = chain;
		ok = true;
	}
	pthread_mutex_unlock(&t->lock);
	return ok;
}

void *_span_transfer_get(unsigned int cls)
{
	struct transfer *t = &transfers[cls];
	void *chain = NULL;

	pthread_mutex_lock(&t->lock);
	if (t->n) {
		chain = t->chain[--t->n];
		if (t->n < t->low)
			t->low = t->n;
	}
	pthread_mutex_unlock(&t->lock);
	return chain;
}

uint32_t _span_transfer_take_idle(unsigned int cls, bool force, void **out)
{
	struct transfer *t = &transfers[cls];
	uint32_t k, i;

	if (!span_load_relaxed(&t->n))
		return 0;
	pthread_mutex_lock(&t->lock);
	k = force ? t->n : t->low < t->n ? t->low : t->n;
	for (i = 0; i < k; i++)
		out[i] = t->chain[--t->n];
	t->low = t->n;
	pthread_mutex_unlock(&t->lock);
	return k;
}

bool _span_transfer_has(unsigned int cls, const void *p)
{
	struct transfer *t = &transfers[cls];
	bool found = false;
	uint32_t i;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < t->n && !found; i++) {
		const void *q;

		for (q = t->chain[i]; q; q = *(void *const *)q)
			if (q == p) {
				found = true;
				break;
			}
	}
	pthread_mutex_unlock(&t->lock);
	return found;
}

uint64_t _span_transfer_objects(unsigned int cls)
{
	return (uint64_t)span_load_relaxed(&transfers[cls].n) *
	       _span_classes[cls].batch;
}

void _span_transfer_lock_all(void)
{
	unsigned int cls;

	for (cls = 0; cls < SPAN_NUM_CLASSES; cls++)
		pthread_mutex_lock(&transfers[cls].lock);
}

void _span_transfer_unlock_all(void)
{
	unsigned int cls = SPAN_NUM_CLASSES;

	while (cls--)
		pthread_mutex_unlock(&transfers[cls].lock);
}

void _span_transfer_reinit(void)
{
	unsigned int cls;

	for (cls = 0; cls < SPAN_NUM_CLASSES; cls++)
		span_lock_reinit(&transfers[cls].lock);
}
