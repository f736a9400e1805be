/*
 * cache.c: the thread cache (Go's mcache, TCMalloc's ThreadCache): the slow
 * paths behind the inline fast paths of internal.h.
 *
 * Each thread has, per size class, a bin: a singly-linked free list, its
 * length and its room below the bin's max, in initial-exec TLS (struct
 * span_tcache _span_tc). malloc pops, free pushes: no lock, no atomic
 * read-modify-write, no system call; each tests the counter it decrements
 * (struct span_bin).
 * When a bin is empty, _span_alloc_class_slow() (from the fast path, or
 * alloc.c's _span_malloc_slow()) refills it with a batch from
 * central.c; when it grows past its max, _span_bin_overflow() drains a
 * batch back. A bin's max starts at one batch and grows by a batch on each
 * refill up to the class's cap (slow start), so idle classes hold little.
 * What all of a thread's bins grow past their first batch is bounded
 * (SPAN_TCACHE_GROWTH): a class that needs more takes a batch of max from
 * another that grew, round robin, whose bin drains down to its new max
 * (TCMalloc's per-thread budget and stealing, without the global one).
 *
 * A thread's cache starts zeroed (max 0), so its first free overflows and
 * its first malloc misses: both land here and set the cache up, which
 * registers the pthread key whose destructor hands everything back when
 * the thread exits. After that the cache is DEAD: every free drains at
 * once and every malloc takes one object straight from central.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>

#include "internal.h"

__thread struct span_tcache _span_tc;

static pthread_key_t cache_key;
static int cache_key_ok;
/*
 * Bumped by _span_cache_flush(); a thread whose last seen value differs
 * flushes at its next slow path (once, however many bumps). Read by every
 * slow path, written seldom: a cache line of its own.
 */
static struct {
	_Alignas(64) uint64_t n;
} flush_gen;

/*
 * This thread's bin of @cls as the fast paths reach it (span_bin_ref()):
 * the bins are touched through that one kind of pointer only, here too.
 * (The struct span_tcache a function below takes is always this thread's.)
 */
static struct span_bin SPAN_BIN_SEG *bin_of(unsigned int cls)
{
	return span_bin_ref(span_bin_tp(cls));
}

/* @bin's room under max @max, after its count changed. */
static void bin_set_room(struct span_bin SPAN_BIN_SEG *bin, int32_t max)
{
	bin->room = bin->count < max ? max - bin->count : 0;
}

static void bin_drain(unsigned int cls, struct span_bin SPAN_BIN_SEG *bin,
		      uint32_t n)
{
	void *head = bin->head, *p = head;
	uint32_t i;

	if (!n) {
		bin_set_room(bin, _span_tc.max[cls]);
		return;
	}
	for (i = 1; i < n; i++)
		p = *(void **)p;
	bin->head = *(void **)p;
	*(void **)p = NULL;	/* a chain of its own: the transfer cache's */
	bin->count -= n;
	bin_set_room(bin, _span_tc.max[cls]);
	_span_central_drain(cls, head, n);
}

/* The staging bin of owned class @cls (span->bin of its spans). */
static struct span_bin SPAN_BIN_SEG *staged_of(unsigned int cls)
{
	return span_bin_ref(span_free_bin_tp(cls));
}

static void cache_flush(struct span_tcache *tc)
{
	unsigned int cls;
	void *head, *tail;
	uint32_t n;

	_span_large_flush_thread(tc);
	for (cls = 1; cls < SPAN_NUM_CLASSES; cls++)
		bin_drain(cls, bin_of(cls), bin_of(cls)->count);
	for (cls = 1; cls <= SPAN_OWNED_CLASSES; cls++) {
		bin_drain(cls, staged_of(cls), staged_of(cls)->count);
		if (tc->inbox &&
		    (n = _span_inbox_take(tc->inbox, cls, &head, &tail)))
			_span_central_drain(cls, head, n);
	}
}

static void cache_exit(void *arg)
{
	struct span_tcache *tc = arg;
	unsigned int cls;

	tc->state = SPAN_TC_DEAD;
	tc->grown = 0;
	for (cls = 0; cls < SPAN_NUM_CLASSES; cls++) {
		tc->max[cls] = 0;
		bin_set_room(bin_of(cls), 0);
		if (span_class_owned(cls))
			bin_set_room(staged_of(cls), 0);
	}
	cache_flush(tc);
	if (tc->inbox)
		_span_inbox_close(tc->inbox);
	tc->inbox = NULL;
	span_add_relaxed(&_span_cnt.threads_exited, 1);
}

void _span_cache_key_init(void)
{
	if (pthread_key_create(&cache_key, cache_exit) == 0)
		span_store_release(&cache_key_ok, 1);
}

static void cache_setup(struct span_tcache *tc)
{
	unsigned int cls;
	int saved;

	for (cls = 1; cls < SPAN_NUM_CLASSES; cls++) {
		tc->max[cls] = (int32_t)_span_classes[cls].batch;
		bin_set_room(bin_of(cls), tc->max[cls]);
		if (span_class_owned(cls))
			bin_set_room(staged_of(cls), tc->max[cls]);
	}
	/*
	 * Without one (ENOMEM) its refills name no owner; others' objects
	 * still go to theirs. A failed open leaves errno as it was.
	 */
	saved = errno;
	tc->inbox = _span_inbox_open();
	errno = saved;
	tc->flush_gen = span_load_relaxed(&flush_gen.n);
	tc->state = SPAN_TC_LIVE;
	span_add_relaxed(&_span_cnt.threads, 1);
	/* May allocate (keys past the first 32): the cache works already. */
	if (span_load_acquire(&cache_key_ok))
		pthread_setspecific(cache_key, tc);
}

/* Another thread asked for a flush (malloc_trim(), a reclaim): do it. */
static SPAN_COLD void cache_catch_up(struct span_tcache *tc, uint64_t gen)
{
	tc->flush_gen = gen;
	cache_flush(tc);
}

/*
 * True when @tc may cache objects; sets it up on first use. The thread
 * cache's slow paths (refill, drain, large malloc and free) pass here: a
 * thread that has not met the last flush request flushes first.
 */
static inline bool cache_ready(struct span_tcache *tc)
{
	if (likely(tc->state == SPAN_TC_LIVE)) {
		uint64_t gen = span_load_relaxed(&flush_gen.n);

		if (unlikely(tc->flush_gen != gen))
			cache_catch_up(tc, gen);
		return true;
	}
	if (tc->state == SPAN_TC_UNINIT) {
		cache_setup(tc);
		return true;
	}
	return false;
}

bool _span_cache_prepare(void)
{
	return cache_ready(&_span_tc);
}

void _span_reclaim(void)
{
	span_add_relaxed(&_span_cnt.reclaims, 1);
	_span_cache_flush();
	_span_central_collect(true);	/* stashes and the page heap too */
}

/*
 * Up to @want objects of @cls from central; when the backend says ENOMEM,
 * the caches go back and it asks once more (review M1). 0 on ENOMEM.
 */
static uint32_t refill(unsigned int cls, uint32_t want, void **chain)
{
	struct span_inbox *me = _span_tc.inbox;
	bool reclaim = false;
	uint32_t n = _span_central_refill(cls, want, chain, me, &reclaim);

	if (!n && reclaim) {
		_span_reclaim();
		n = _span_central_refill(cls, want, chain, me, NULL);
	}
	return n;
}

/* Drain @bin of @cls down to its max (its room set either way). */
static void bin_drain_to_max(struct span_tcache *tc, unsigned int cls,
			     struct span_bin SPAN_BIN_SEG *bin)
{
	bin_drain(cls, bin, bin->count > tc->max[cls] ?
		  (uint32_t)(bin->count - tc->max[cls]) : 0);
}

/*
 * Take up to a batch of max from a class other than @except that grew
 * past its first batch; that bin drains down to its new max. False when
 * none did.
 */
static bool cache_steal(struct span_tcache *tc, unsigned int except)
{
	unsigned int i, v;
	int32_t take;

	for (i = 1; i < SPAN_NUM_CLASSES; i++) {
		const struct span_class *vc;

		v = 1 + tc->steal_next++ % (SPAN_NUM_CLASSES - 1);
		vc = &_span_classes[v];
		take = tc->max[v] - (int32_t)vc->batch;
		if (v == except || take <= 0)
			continue;
		if (take > (int32_t)vc->batch)
			take = (int32_t)vc->batch;
		tc->max[v] -= take;
		tc->grown -= (size_t)take * vc->size;
		bin_drain_to_max(tc, v, bin_of(v));
		if (span_class_owned(v))	/* malloc's bin while alone */
			bin_drain_to_max(tc, v, staged_of(v));
		return true;
	}
	return false;
}

/*
 * A refill of @cls found its bin empty: its max grows by a batch, up to
 * the class's cap, within the thread's budget (taken from other classes
 * when it is spent; the max stays when none has any to give).
 */
static void cache_grow(struct span_tcache *tc, unsigned int cls)
{
	const struct span_class *sc = &_span_classes[cls];
	int32_t add = (int32_t)sc->cap - tc->max[cls];
	size_t bytes;

	if (add <= 0)
		return;
	if (add > (int32_t)sc->batch)
		add = (int32_t)sc->batch;
	bytes = (size_t)add * sc->size;
	while (tc->grown + bytes > SPAN_TCACHE_GROWTH)
		if (!cache_steal(tc, cls))
			return;
	tc->max[cls] += add;
	tc->grown += bytes;
}

/*
 * How many objects an overflowing bin gives back: a whole batch (what the
 * transfer cache takes, one lock hold), or more if the bin is further
 * over its max than that.
 */
static uint32_t overflow_count(const struct span_bin SPAN_BIN_SEG *bin,
			       int32_t max, uint32_t batch)
{
	uint32_t over = (uint32_t)(bin->count - max), count = bin->count;

	if (over > batch)
		return over;
	return batch < count ? batch : count;
}

/*
 * Put @n objects chained from @head to @tail on @bin (of @cls); a batch
 * or more over its max goes on to central.
 */
static void bin_add(unsigned int cls, struct span_bin SPAN_BIN_SEG *bin,
		    void *head, void *tail, uint32_t n)
{
	int32_t max = _span_tc.max[cls];

	*(void **)tail = bin->head;
	bin->head = head;
	bin->count += (int32_t)n;
	if (bin->count > max)
		bin_drain(cls, bin, overflow_count(bin, max,
						   _span_classes[cls].batch));
	else
		bin_set_room(bin, max);
}

/* Move bin @from of @cls whole to @to, which is empty. */
static void bin_move_all(struct span_tcache *tc, unsigned int cls,
			 struct span_bin SPAN_BIN_SEG *to,
			 struct span_bin SPAN_BIN_SEG *from)
{
	to->head = from->head;
	to->count = from->count;
	bin_set_room(to, tc->max[cls]);
	from->head = NULL;
	from->count = 0;
	bin_set_room(from, tc->max[cls]);
}

/*
 * Sort owned class @cls's staging bin (remote.c): objects of spans this
 * thread owns go to @bin, the others to their owners.
 */
static void staged_sort(struct span_tcache *tc, unsigned int cls,
			struct span_bin SPAN_BIN_SEG *bin)
{
	struct span_bin SPAN_BIN_SEG *staged = staged_of(cls);
	bool alone = _span_remote_alone();
	struct span_sorted own;
	uint32_t n = staged->count;
	void *head = staged->head;

	if (alone || tc->sort_skip[cls - 1]) {
		/*
		 * No other thread to sort for (malloc() pops the staging bin:
		 * the size table names it), or none of this thread's last
		 * sorts found another's object: a plain bin's overflow.
		 */
		if (n > (uint32_t)tc->max[cls])
			bin_drain(cls, staged,
				  overflow_count(staged, tc->max[cls],
						 _span_classes[cls].batch));
		else	/* its max grew since its room was set */
			bin_set_room(staged, tc->max[cls]);
		if (alone)
			return;
		tc->sort_skip[cls - 1]--;
		if (!bin->count)
			bin_move_all(tc, cls, bin, staged);
		return;
	}
	staged->head = NULL;
	staged->count = 0;
	bin_set_room(staged, tc->max[cls]);
	if (!n)
		return;
	_span_remote_sort(cls, head, n, tc->inbox, &own);
	if (own.count)
		bin_add(cls, bin, own.head, own.tail, own.count);
	/* Back off while sorts find only this thread's objects. */
	if (own.count < n) {
		tc->sort_quiet[cls - 1] = 0;
	} else {
		tc->sort_quiet[cls - 1] = tc->sort_quiet[cls - 1] * 2 + 1;
		if (tc->sort_quiet[cls - 1] > SPAN_SORT_QUIET_MAX)
			tc->sort_quiet[cls - 1] = SPAN_SORT_QUIET_MAX;
	}
	tc->sort_skip[cls - 1] = tc->sort_quiet[cls - 1];
}

/*
 * The bin malloc() pops for owned class @cls: the one the size table
 * names (the staging bin while one thread runs). Class 1 (8 bytes) has no
 * entry of its own: its bin.
 */
static struct span_bin SPAN_BIN_SEG *owned_malloc_bin(unsigned int cls)
{
	return span_bin_ref(span_malloc_bin_tp(cls));
}

/*
 * Owned class @cls's bin @bin (owned_malloc_bin()) ran empty: restock it
 * from the other bin of the class (sorted, when @bin is not the staging
 * bin), else from the inbox. True when it holds an object (taken, for the
 * caller to pop).
 */
static bool owned_restock(struct span_tcache *tc, unsigned int cls,
			  struct span_bin SPAN_BIN_SEG *bin)
{
	struct span_bin SPAN_BIN_SEG *own = bin_of(cls);
	void *head, *tail;
	uint32_t n;

	if (tc->inbox)
		_span_inbox_active(tc->inbox);
	if (bin != own) {	/* malloc() pops the staging bin */
		if (own->count)	/* left from when others ran */
			bin_move_all(tc, cls, bin, own);
	} else {
		staged_sort(tc, cls, bin);
	}
	if (!bin->count && tc->inbox &&
	    (n = _span_inbox_take(tc->inbox, cls, &head, &tail)))
		bin_add(cls, bin, head, tail, n);
	if (!span_bin_take(bin)) {
		span_bin_settle(bin);
		return false;
	}
	return true;
}

SPAN_NOINLINE void *_span_alloc_class_slow(unsigned int cls)
{
	struct span_tcache *tc = &_span_tc;
	struct span_bin SPAN_BIN_SEG *bin = bin_of(cls);
	const struct span_class *sc = &_span_classes[cls];
	void *chain, *p;
	uint32_t n;

	span_bin_settle(bin);	/* the fast path's -1 */
	if (span_class_owned(cls)) {
		/*
		 * Either bin may have taken it: the table may have switched
		 * since the fast path read it (review: a staging bin left at
		 * -1 after another thread's first allocation).
		 */
		span_bin_settle(staged_of(cls));
		bin = owned_malloc_bin(cls);
	}
	if (!cache_ready(tc)) {
		if (!refill(cls, 1, &chain)) {
			errno = ENOMEM;
			return NULL;
		}
		return span_obj_out(chain);
	}
	/* Filled by a free before the cache was set up. */
	if (span_bin_take(bin))
		return span_bin_pop_taken(bin);
	span_bin_settle(bin);	/* span_bin_take()'s -1 */
	/* Empty by count but not by link: a free list made into a cycle. */
	if (unlikely(bin->head))
		_span_invalid("free", bin->head, "double free");
	/* Owned classes: this thread's frees, then other threads'. */
	if (span_class_owned(cls) && owned_restock(tc, cls, bin))
		return span_bin_pop_taken(bin);
	cache_grow(tc, cls);
	bin_set_room(bin, tc->max[cls]);	/* also if refill fails */
	n = refill(cls, sc->batch, &chain);
	if (!n) {
		errno = ENOMEM;
		return NULL;
	}
	p = chain;
	bin->head = *(void **)p;
	bin->count = (int32_t)n - 1;
	bin_set_room(bin, tc->max[cls]);
	return span_obj_out(p);
}

/*
 * free()'s slow paths keep errno: POSIX asks free() to, and a drain or a
 * large free may make a backend call that fails (and is dealt with).
 */
SPAN_NOINLINE void _span_bin_overflow(const struct span *s)
{
	struct span_tcache *tc = &_span_tc;
	struct span_bin SPAN_BIN_SEG *bin = span_bin_ref(s->bin);
	unsigned int cls = s->cls;
	int saved = errno;

	bin->count++;	/* the object span_bin_push() did not count */
	if (!cache_ready(tc))
		bin_drain(cls, bin, bin->count);
	else if (span_class_owned(cls))
		staged_sort(tc, cls, bin_of(cls));
	else if (bin->count > tc->max[cls])
		bin_drain(cls, bin, overflow_count(bin, tc->max[cls],
						   _span_classes[cls].batch));
	else
		bin_set_room(bin, tc->max[cls]);
	errno = saved;
}

/* Is @p one of the first @n objects of @bin's list? */
static bool bin_has(const struct span_bin SPAN_BIN_SEG *bin, uint32_t n,
		    const void *p)
{
	void *q;

	for (q = bin->head; q && n; q = *(void **)q, n--)
		if (q == p)
			return true;
	return false;
}

/*
 * Owned class: is @p of @s in this thread's bin, its inbox, or the inbox
 * of its span's owner (where this thread's sort may have sent it)?
 */
static bool owned_has(struct span *s, const void *p)
{
	struct span_bin SPAN_BIN_SEG *own = bin_of(s->cls);
	struct span_inbox *ib = _span_tc.inbox;
	struct span_inbox *to = span_load_acquire(&s->owner);

	return bin_has(own, own->count, p) ||
	       (ib && _span_inbox_has(ib, s->cls, p)) ||
	       (to && to != ib && _span_inbox_has(to, s->cls, p));
}

/*
 * Word 1 of @p holds @s: @p was freed already and is in this thread's bin
 * (for an owned class: its staging bin, bin or inbox, or the inbox of the
 * span's owner) or back in central (a double free), or the program's data
 * happens to equal it (free it).
 */
SPAN_COLD void _span_free_suspect(void *p, struct span *s, const char *fn)
{
	struct span_bin SPAN_BIN_SEG *bin = span_bin_ref(s->bin);
	int saved = errno;

	if (bin_has(bin, bin->count, p) ||
	    (span_class_owned(s->cls) && owned_has(s, p)) ||
	    _span_central_has_free(s, (uintptr_t)p))
		_span_invalid(fn, p, "double free");
	if (!span_bin_push(bin, p))
		_span_bin_overflow(s);
	errno = saved;
}

void _span_cache_flush(void)
{
	struct span_tcache *tc = &_span_tc;

	tc->flush_gen = span_add_relaxed(&flush_gen.n, 1);
	if (tc->state != SPAN_TC_UNINIT)
		cache_flush(tc);
	_span_remote_flush_all();	/* idle owners' too */
}
