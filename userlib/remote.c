/*
 * remote.c: objects of the owned classes (internal.h: SPAN_OWNED_CLASSES,
 * 8 and 16 bytes) freed by a thread that does not own their span: the
 * sort of the staging bins and the inboxes.
 *
 * Passive false sharing: an object freed by another thread than the one
 * that allocated it goes into the freeing thread's bin, which hands it
 * out next, so two threads write objects on one cache line
 * (bench/falseshare: four 16-byte objects share a line). For the classes
 * whose objects are four or more to a line, a span names an owner: the
 * inbox of the thread that refilled from it last (central.c sets it under
 * the class lock). free() does not test it (its fast path is as for any
 * class): it pushes these objects on the class's staging bin, which
 * malloc() never pops. The thread cache's slow paths sort that bin here,
 * when it overflows or when the class's own bin runs empty: objects of
 * spans that name the sorting thread (or none) go to its bin, every other
 * one onto its owner's inbox, one compare-and-swap per run of objects of
 * one owner. The owner takes its inbox whole when its bin runs empty,
 * before it asks central.
 *
 * Ownership is a preference, not an invariant: a span's owner changes
 * when another thread refills from it, an object may reach a thread that
 * no longer owns its span (it keeps it), whole batches still pass through
 * the transfer cache, and any object may sit in any thread's bin, as
 * before. Nothing here needs a span's owner to be alive.
 *
 * An inbox lasts as long as the process. A thread that exits closes its
 * own: its objects go to central, and a push that finds it closed goes to
 * central too. The next new thread reopens it and so adopts the spans that
 * still name it. In a fork child the inboxes of the threads that did not
 * come along are closed the same way.
 *
 * An owner that stops allocating a class would keep what others send it:
 * an owner records when it last restocked (struct span_inbox.active_ms),
 * and a sender that finds it idle for the decay interval gives the run
 * and what waits in that inbox to central instead. malloc_trim() and the
 * reclaim before ENOMEM empty every open inbox into central
 * (_span_remote_flush_all()).
 *
 * Locks: remote_lock guards the list of inboxes and their open flags; it
 * is taken before central's locks (init.c's fork handler) and its holder
 * calls only the records below. Inbox lists are lock-free stacks that
 * others only push on (no lock) and that are only taken whole (the
 * owner's refill, a close, a flush: no ABA), under the inbox's take lock,
 * which a walk (the double-free check) holds too, so that it never
 * follows links of a list that was taken and handed out. A leaf: its
 * holder takes no other lock; a fork child makes every one anew.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "internal.h"

/* An inbox's list while no thread owns it: a push goes to central. */
#define INBOX_CLOSED	((void *)1)

static pthread_mutex_t remote_lock = SPAN_LOCK_INITIALIZER;
static struct span_inbox *inboxes;	/* every inbox, under remote_lock */
/* Open inboxes: written under remote_lock, read without it (a hint). */
static struct {
	_Alignas(64) uint32_t n;
} open_inboxes;

bool _span_remote_alone(void)
{
	return span_load_relaxed(&open_inboxes.n) <= 1;
}

/*
 * The entries are read by malloc()'s fast path without a lock: any value,
 * old or new, names a bin of the calling thread that holds objects of the
 * class, and the slow path settles both, whichever the table names when it
 * runs (cache.c).
 */
void _span_remote_table(bool alone)
{
	unsigned int i, cls;

	for (i = 0; i <= SPAN_CLASS_INDEX_MAX; i++) {
		cls = span_class_of(16 * (i + 1));
		if (!span_class_owned(cls))
			break;
		span_store_relaxed(&_span_bin_of[i], alone ?
				   span_free_bin_tp(cls) : span_bin_tp(cls));
	}
}

/* open_inboxes.n becomes @n (remote_lock held, or a fork child). */
static void open_count_set(uint32_t n)
{
	uint32_t was = open_inboxes.n;

	span_store_relaxed(&open_inboxes.n, n);
	if ((was <= 1) != (n <= 1))
		_span_remote_table(n <= 1);
}

struct span_inbox *_span_inbox_open(void)
{
	struct span_inbox *ib;
	unsigned int k;

	pthread_mutex_lock(&remote_lock);
	for (ib = inboxes; ib && ib->open; ib = ib->next)
		;
	if (!ib) {
		ib = _span_meta_alloc(sizeof(*ib));
		if (ib) {
			/* Whole before _span_remote_flush_all() can see it. */
			for (k = 0; k < SPAN_OWNED_CLASSES; k++)
				ib->head[k] = NULL;
			span_lock_reinit(&ib->take_lock);
			ib->next = inboxes;
			span_store_release(&inboxes, ib);
		}
	}
	if (ib) {
		ib->open = true;
		span_store_relaxed(&ib->active_ms, _span_now_ms());
		open_count_set(open_inboxes.n + 1);
		for (k = 0; k < SPAN_OWNED_CLASSES; k++)
			span_store_release(&ib->head[k], NULL);
	}
	pthread_mutex_unlock(&remote_lock);
	return ib;
}

/* Give the NULL-terminated chain @head of @cls to central. */
static void chain_to_central(unsigned int cls, void *head)
{
	uint32_t n = 0;
	void *p;

	for (p = head; p; p = *(void **)p)
		n++;
	if (n)
		_span_central_drain(cls, head, n);
}

/* Close @ib's lists; their objects go to central. */
static void inbox_shut(struct span_inbox *ib)
{
	void *heads[SPAN_OWNED_CLASSES];
	unsigned int k;

	pthread_mutex_lock(&ib->take_lock);
	for (k = 0; k < SPAN_OWNED_CLASSES; k++)
		heads[k] = __atomic_exchange_n(&ib->head[k], INBOX_CLOSED,
					       __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&ib->take_lock);
	for (k = 0; k < SPAN_OWNED_CLASSES; k++)
		if (heads[k] != INBOX_CLOSED)
			chain_to_central(k + 1, heads[k]);
}

void _span_inbox_close(struct span_inbox *ib)
{
	inbox_shut(ib);
	pthread_mutex_lock(&remote_lock);
	ib->open = false;
	open_count_set(open_inboxes.n - 1);
	pthread_mutex_unlock(&remote_lock);
}

uint32_t _span_inbox_take(struct span_inbox *ib, unsigned int cls,
			  void **head, void **tail)
{
	void **slot = &ib->head[cls - 1];
	uint32_t n = 0;
	void *p;

	if (!span_load_relaxed(slot))
		return 0;
	pthread_mutex_lock(&ib->take_lock);
	p = __atomic_exchange_n(slot, NULL, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&ib->take_lock);
	*head = p;
	for (; p; p = *(void **)p) {
		*tail = p;
		n++;
	}
	return n;
}

bool _span_inbox_has(struct span_inbox *ib, unsigned int cls, const void *p)
{
	bool found = false;
	void *q;

	pthread_mutex_lock(&ib->take_lock);
	q = span_load_acquire(&ib->head[cls - 1]);
	for (; q && q != INBOX_CLOSED && !found; q = *(void **)q)
		found = q == p;
	pthread_mutex_unlock(&ib->take_lock);
	return found;
}

/* Objects of one owner on their way to its inbox. */
struct remote_run {
	struct span_inbox *to;
	void *head, *tail;
	uint32_t count;
};

/* Runs kept apart in one sort: objects of a few owners may interleave. */
#define SORT_RUNS	4

void _span_inbox_active(struct span_inbox *ib)
{
	uint64_t now = _span_now_ms();

	if (span_load_relaxed(&ib->active_ms) != now)
		span_store_relaxed(&ib->active_ms, now);
}

/*
 * Give @ib's list of @cls to central unless the inbox is closed: anyone
 * may (a sender finding its owner idle, a flush), under its take lock.
 */
static void inbox_to_central(struct span_inbox *ib, unsigned int cls)
{
	void **slot = &ib->head[cls - 1];
	void *old;

	pthread_mutex_lock(&ib->take_lock);
	old = span_load_relaxed(slot);
	while (old && old != INBOX_CLOSED &&
	       !__atomic_compare_exchange_n(slot, &old, NULL, true,
					    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		;
	pthread_mutex_unlock(&ib->take_lock);
	if (old != INBOX_CLOSED)
		chain_to_central(cls, old);
}

/*
 * Has @ib's owner not restocked for the decay interval? Then what others
 * freed of its spans would wait in its inbox for nothing: senders give
 * it to central, with what waits there. *@now: read once per sort.
 */
static bool inbox_idle(struct span_inbox *ib, unsigned int cls, uint64_t *now)
{
	if (!*now)
		*now = _span_now_ms();
	if (*now - span_load_relaxed(&ib->active_ms) <= _span_opt.decay_ms)
		return false;
	inbox_to_central(ib, cls);
	return true;
}

/*
 * Push run @r onto its owner's inbox (central's, if closed or idle);
 * empty it.
 */
static void run_send(unsigned int cls, struct remote_run *r, uint64_t *now)
{
	void **slot;
	void *old;

	if (!r->count)
		return;
	slot = &r->to->head[cls - 1];
	old = span_load_relaxed(slot);
	if (old != INBOX_CLOSED && inbox_idle(r->to, cls, now))
		old = INBOX_CLOSED;
	do {
		if (old == INBOX_CLOSED) {
			*(void **)r->tail = NULL;
			_span_central_drain(cls, r->head, r->count);
			break;
		}
		*(void **)r->tail = old;
	} while (!__atomic_compare_exchange_n(slot, &old, r->head, true,
					      __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
	r->head = NULL;
	r->count = 0;
}

/* The run of owner @to (a slot emptied for it when all are taken). */
static struct remote_run *run_of(unsigned int cls, struct remote_run *runs,
				 struct span_inbox *to, unsigned int *next,
				 uint64_t *now)
{
	struct remote_run *r;
	unsigned int i;

	for (i = 0; i < SORT_RUNS; i++)
		if (runs[i].to == to)
			return &runs[i];
	for (i = 0; i < SORT_RUNS; i++)
		if (!runs[i].count)
			break;
	if (i == SORT_RUNS) {
		i = (*next)++ % SORT_RUNS;
		run_send(cls, &runs[i], now);
	}
	r = &runs[i];
	r->to = to;
	return r;
}

/*
 * The sort goes by runs of objects of one span (a bin gives back objects
 * much as it handed them out): per object it follows the link and tests
 * the span's range; per run it reads the page map and the owner once and
 * moves the run whole, and a run of this thread's spans keeps its links.
 */
void _span_remote_sort(unsigned int cls, void *head, uint32_t n,
		       struct span_inbox *me, struct span_sorted *own)
{
	struct remote_run runs[SORT_RUNS] = { 0 };
	void *own_head = NULL, **own_link = &own_head, *own_tail = NULL;
	uint32_t own_count = 0;
	unsigned int next = 0, i;
	uint64_t now = 0;

	while (n) {
		void *first = head, *last = head;
		struct span_inbox *to;
		uintptr_t lo, range;
		struct span *s;
		uint32_t k;

		/* No page, or a page of no span (the map's own record): no class. */
		if (!span_pagemap_find((uintptr_t)first, &s) || s->cls != cls)
			_span_invalid("free", first, "corrupted free list");
		lo = s->base;
		range = s->pages * SPAN_PAGE;
		for (k = 1; k < n; k++) {
			void *nx = *(void **)last;

			if ((uintptr_t)nx - lo >= range)
				break;
			last = nx;
		}
		n -= k;
		head = *(void **)last;
		/* Acquire: central's release, after the inbox was made. */
		to = span_load_acquire(&s->owner);
		if (likely(to == me || !to)) {
			*own_link = first;
			own_link = (void **)last;
			own_tail = last;
			own_count += k;
		} else {
			struct remote_run *r = run_of(cls, runs, to, &next,
						      &now);

			if (r->count)
				*(void **)r->tail = first;
			else
				r->head = first;
			r->tail = last;
			r->count += k;
		}
	}
	*own_link = NULL;
	own->head = own_head;
	own->tail = own_tail;
	own->count = own_count;
	for (i = 0; i < SORT_RUNS; i++)
		run_send(cls, &runs[i], &now);
}

/*
 * Without the lock (its holder calls no layer but the records): the list
 * only grows at its head, and a closed inbox's lists are left as they are.
 */
void _span_remote_flush_all(void)
{
	struct span_inbox *ib;
	unsigned int cls;

	for (ib = span_load_acquire(&inboxes); ib; ib = ib->next)
		for (cls = 1; cls <= SPAN_OWNED_CLASSES; cls++)
			inbox_to_central(ib, cls);
}

void _span_remote_lock(void)
{
	pthread_mutex_lock(&remote_lock);
}

void _span_remote_unlock(void)
{
	pthread_mutex_unlock(&remote_lock);
}

void _span_remote_after_fork_child(struct span_inbox *mine)
{
	struct span_inbox *ib;

	span_lock_reinit(&remote_lock);
	for (ib = inboxes; ib; ib = ib->next) {
		/* Its holder, if any, is not in the child. */
		span_lock_reinit(&ib->take_lock);
		if (ib == mine || !ib->open)
			continue;
		inbox_shut(ib);
		ib->open = false;
		open_count_set(open_inboxes.n - 1);
	}
}
