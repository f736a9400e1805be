// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc frame pools: where frames come from and where freed ones wait.
 *
 * One pool per memory cgroup, shared by every heap of that cgroup: a frame
 * stays charged to the cgroup that first allocated it (the kernel offers
 * modules no way to move a charge), so it may only be reused there.
 *
 * Frames come from the buddy allocator in the largest chunks it gives
 * cheaply: as high an order as the request needs, up to 2 MiB (order 9),
 * tried without retries or warnings, falling back one order at a time down
 * to single pages; each chunk is split into order-0 pages so that every frame
 * can be mapped, copied on write and released on its own. They are charged
 * to the caller's cgroup (__GFP_ACCOUNT), and asked for with
 * __GFP_RETRY_MAYFAIL, so that a cgroup limit or a full machine makes
 * SPAN_ALLOC fail with -ENOMEM (malloc returns NULL) rather than wake the
 * OOM killer.
 *
 * A span's frames come back to the pool only if nothing else holds them:
 * page_count() == 1, our own reference. A frame still mapped by a page
 * table (a fork() child that has not written to it) or pinned for I/O is
 * put and never handed out again by us. Returned frames are *dirty*; a
 * worker zeroes them in the background and moves them to the *clean* list,
 * so the allocation path rarely zeroes: it takes clean frames first, then
 * dirty ones zeroed on the spot, then fresh ones from the buddy allocator
 * (zeroed by it). Above pool_max_frames per pool, frames go back to the
 * buddy allocator at once, and a shrinker gives pooled frames back under
 * memory pressure.
 *
 * The pool lock is taken once per batch of up to SPANALLOC_POOL_BATCH frames,
 * never per frame, so there is no per-CPU cache in front of it.
 *
 * Lock order: pools_lock (mutex) -> spanalloc_pool.lock (spinlock).
 */
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "compat.h"
#include "internal.h"

#ifndef MAX_PAGE_ORDER
/* Before 6.8 the largest order was MAX_ORDER - 1. */
#define MAX_PAGE_ORDER		(MAX_ORDER - 1)
#endif

/* Largest chunk asked of the buddy allocator: 2 MiB on x86-64. */
#define SPANALLOC_CHUNK_ORDER	min(SPANALLOC_MAX_CHUNK_ORDER, MAX_PAGE_ORDER)

/* Frames moved per hold of the pool lock. */
#define SPANALLOC_POOL_BATCH	64

/* How long fewer than a batch of dirty frames wait for the zeroing worker. */
#define SPANALLOC_ZERO_DELAY_MS	10

/**
 * struct spanalloc_pool - free frames of one memory cgroup
 * @kref:	heaps and frame sets using the pool.
 * @node:	entry in spanalloc_pools, under pools_lock.
 * @memcg:	the cgroup its frames are charged to (a css reference), or
 *		NULL without memory cgroups.
 * @lock:	protects the lists and counts below.
 * @clean:	zeroed frames, linked through page->lru.
 * @dirty:	frames waiting to be zeroed.
 * @nr_clean:	length of @clean.
 * @nr_dirty:	length of @dirty.
 * @zero_work:	the worker zeroing @dirty: at once for a batch's worth,
 *		after SPANALLOC_ZERO_DELAY_MS for less, so that a span freed
 *		and made again at once costs no wake-up.
 */
struct spanalloc_pool {
	struct kref kref;
	struct list_head node;
	struct mem_cgroup *memcg;

	spinlock_t lock;		/* protects the lists and counts */
	struct list_head clean;
	struct list_head dirty;
	unsigned long nr_clean;
	unsigned long nr_dirty;
	struct delayed_work zero_work;
};

static LIST_HEAD(spanalloc_pools);
static DEFINE_MUTEX(pools_lock);	/* protects spanalloc_pools */

unsigned long spanalloc_pool_max_frames = 16384;

static void pool_count(struct spanalloc_pool *pool, long clean, long dirty)
{
	lockdep_assert_held(&pool->lock);
	pool->nr_clean += clean;
	pool->nr_dirty += dirty;
	atomic_long_add(clean + dirty, &spanalloc_stats.pool_frames);
	atomic_long_add(clean, &spanalloc_stats.pool_clean);
}

/* Zero dirty frames in batches, without the lock while zeroing. */
static void pool_zero_work(struct work_struct *work)
{
	struct spanalloc_pool *pool =
		container_of(to_delayed_work(work), struct spanalloc_pool,
			     zero_work);
	struct page *page, *next;
	LIST_HEAD(batch);
	long n;

	for (;;) {
		n = 0;
		spin_lock(&pool->lock);
		list_for_each_entry_safe(page, next, &pool->dirty, lru) {
			list_move(&page->lru, &batch);
			if (++n == SPANALLOC_POOL_BATCH)
				break;
		}
		/* Still counted as dirty while off the list, being zeroed. */
		spin_unlock(&pool->lock);
		if (!n)
			break;
		list_for_each_entry(page, &batch, lru)
			clear_highpage(page);
		atomic_long_add(n, &spanalloc_stats.zeroed_ahead);
		spin_lock(&pool->lock);
		list_splice_init(&batch, &pool->clean);
		pool_count(pool, n, -n);
		spin_unlock(&pool->lock);
		cond_resched();
	}
}

/*
 * Move up to @nr frames from @list into @pages. Returns how many. Caller
 * holds pool->lock.
 */
static unsigned long pool_take_list(struct list_head *list, struct page **pages,
				    unsigned long nr)
{
	unsigned long n = 0;
	struct page *page;

	while (n < nr && !list_empty(list)) {
		page = list_first_entry(list, struct page, lru);
		list_del(&page->lru);
		pages[n++] = page;
	}
	return n;
}

/* Fill @pages from the buddy allocator, zeroed, in the largest chunks. */
static int pool_take_buddy(struct page **pages, unsigned long nr,
			   unsigned long *done)
{
	/* A limit means -ENOMEM for the caller, never the OOM killer. */
	const gfp_t gfp = GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT |
			  __GFP_RETRY_MAYFAIL;
	unsigned int order = SPANALLOC_CHUNK_ORDER;
	struct page *page;
	unsigned long i;

	while (*done < nr) {
		if (fatal_signal_pending(current))
			return -EINTR;
		while (order && (1UL << order) > nr - *done)
			order--;
		page = alloc_pages(order ? gfp | __GFP_NORETRY | __GFP_NOWARN :
				   gfp, order);
		if (!page) {
			if (!order)
				return -ENOMEM;
			order--;
			continue;
		}
		atomic_long_inc(&spanalloc_stats.chunks[order]);
		atomic_long_add(1UL << order, &spanalloc_stats.frames_alloced);
		if (order)
			split_page(page, order);
		for (i = 0; i < (1UL << order); i++)
			pages[(*done)++] = page + i;
		cond_resched();
	}
	return 0;
}

/**
 * spanalloc_pool_take() - fill @pages with @nr zeroed frames
 * @pool:	the pool of the caller's cgroup.
 * @pages:	out: the frames, one reference each.
 * @nr:		how many.
 * @done:	out: how many of @pages were filled, also on error.
 *
 * Context: process context, may sleep.
 * Return: 0, -ENOMEM or -EINTR (fatal signal).
 */
int spanalloc_pool_take(struct spanalloc_pool *pool, struct page **pages,
			unsigned long nr, unsigned long *done)
{
	unsigned long n, i;
	bool dirty;

	*done = 0;
	while (*done < nr) {
		spin_lock(&pool->lock);
		dirty = false;
		n = pool_take_list(&pool->clean, pages + *done,
				   min(nr - *done, SPANALLOC_POOL_BATCH));
		pool_count(pool, -(long)n, 0);
		if (!n) {
			n = pool_take_list(&pool->dirty, pages + *done,
					   min(nr - *done, SPANALLOC_POOL_BATCH));
			pool_count(pool, 0, -(long)n);
			dirty = true;
		}
		spin_unlock(&pool->lock);
		if (!n)
			break;
		if (dirty) {
			for (i = 0; i < n; i++)
				clear_highpage(pages[*done + i]);
			atomic_long_add(n, &spanalloc_stats.zeroed_sync);
		}
		*done += n;
		cond_resched();
	}
	return pool_take_buddy(pages, nr, done);
}

/**
 * spanalloc_pool_give() - take back frames we hold one reference on
 * @pool:	the pool they were taken from.
 * @pages:	the frames.
 * @nr:		how many.
 *
 * Context: process context, may sleep.
 */
void spanalloc_pool_give(struct spanalloc_pool *pool, struct page **pages,
			 unsigned long nr)
{
	unsigned long i, kept = 0, room;
	LIST_HEAD(list);

	spin_lock(&pool->lock);
	room = READ_ONCE(spanalloc_pool_max_frames);
	room = room > pool->nr_clean + pool->nr_dirty ?
	       room - pool->nr_clean - pool->nr_dirty : 0;
	spin_unlock(&pool->lock);

	for (i = 0; i < nr; i++) {
		/* Only a frame nobody else maps or pins may be reused. */
		if (kept < room && page_count(pages[i]) == 1) {
			list_add(&pages[i]->lru, &list);
			kept++;
		} else {
			put_page(pages[i]);
			atomic_long_inc(&spanalloc_stats.frames_freed);
		}
	}
	if (!kept)
		return;
	spin_lock(&pool->lock);
	list_splice(&list, &pool->dirty);
	pool_count(pool, 0, kept);
	room = pool->nr_dirty;
	spin_unlock(&pool->lock);
	queue_delayed_work(system_unbound_wq, &pool->zero_work,
			   room >= SPANALLOC_POOL_BATCH ? 0 :
			   msecs_to_jiffies(SPANALLOC_ZERO_DELAY_MS));
}

/* Give up to @nr pooled frames (dirty first) back to the buddy allocator. */
static unsigned long pool_drain(struct spanalloc_pool *pool, unsigned long nr)
{
	struct page *batch[SPANALLOC_POOL_BATCH];
	unsigned long freed = 0, n, d, i;

	while (freed < nr) {
		spin_lock(&pool->lock);
		d = pool_take_list(&pool->dirty, batch,
				   min(nr - freed, SPANALLOC_POOL_BATCH));
		n = pool_take_list(&pool->clean, batch + d,
				   min(nr - freed, SPANALLOC_POOL_BATCH) - d);
		pool_count(pool, -(long)n, -(long)d);
		spin_unlock(&pool->lock);
		if (!n && !d)
			break;
		for (i = 0; i < n + d; i++)
			put_page(batch[i]);
		atomic_long_add(n + d, &spanalloc_stats.frames_freed);
		freed += n + d;
	}
	return freed;
}

/**
 * spanalloc_pool_get() - the pool of current's memory cgroup
 *
 * Context: process context, may sleep.
 * Return: the pool with a reference, or NULL when out of memory.
 */
struct spanalloc_pool *spanalloc_pool_get(void)
{
	struct mem_cgroup *memcg = get_mem_cgroup_from_mm(current->mm);
	struct spanalloc_pool *pool;

	mutex_lock(&pools_lock);
	list_for_each_entry(pool, &spanalloc_pools, node) {
		if (pool->memcg == memcg) {
			kref_get(&pool->kref);
			mutex_unlock(&pools_lock);
			mem_cgroup_put(memcg);
			return pool;
		}
	}
	pool = kzalloc(sizeof(*pool), GFP_KERNEL);
	if (pool) {
		kref_init(&pool->kref);
		pool->memcg = memcg;
		spin_lock_init(&pool->lock);
		INIT_LIST_HEAD(&pool->clean);
		INIT_LIST_HEAD(&pool->dirty);
		INIT_DELAYED_WORK(&pool->zero_work, pool_zero_work);
		list_add(&pool->node, &spanalloc_pools);
	} else {
		mem_cgroup_put(memcg);
	}
	mutex_unlock(&pools_lock);
	return pool;
}

/* The last user is gone: every pooled frame goes back to the system. */
static void pool_release(struct kref *kref)
	__releases(&pools_lock)
{
	struct spanalloc_pool *pool =
		container_of(kref, struct spanalloc_pool, kref);

	list_del(&pool->node);
	mutex_unlock(&pools_lock);
	cancel_delayed_work_sync(&pool->zero_work);
	pool_drain(pool, ULONG_MAX);
	mem_cgroup_put(pool->memcg);
	kfree(pool);
}

/**
 * spanalloc_pool_get_ref() - take another reference on @pool
 * @pool:	a pool the caller holds a reference on.
 */
void spanalloc_pool_get_ref(struct spanalloc_pool *pool)
{
	kref_get(&pool->kref);
}

/**
 * spanalloc_pool_put() - drop a reference from spanalloc_pool_get()
 * @pool:	the pool.
 *
 * Context: process context, may sleep.
 */
void spanalloc_pool_put(struct spanalloc_pool *pool)
{
	kref_put_mutex(&pool->kref, pool_release, &pools_lock);
}

/* ---- the shrinker: pooled frames back to the system under pressure ---- */

static unsigned long spanalloc_shrink_count(struct shrinker *shrinker,
					    struct shrink_control *sc)
{
	long n = atomic_long_read(&spanalloc_stats.pool_frames);

	return n > 0 ? n : SHRINK_EMPTY;
}

static unsigned long spanalloc_shrink_scan(struct shrinker *shrinker,
					   struct shrink_control *sc)
{
	struct spanalloc_pool *pool;
	unsigned long freed = 0;

	if (!mutex_trylock(&pools_lock))
		return SHRINK_STOP;
	list_for_each_entry(pool, &spanalloc_pools, node) {
		if (freed >= sc->nr_to_scan)
			break;
		freed += pool_drain(pool, sc->nr_to_scan - freed);
	}
	mutex_unlock(&pools_lock);
	atomic_long_add(freed, &spanalloc_stats.shrinker_freed);
	return freed ? freed : SHRINK_STOP;
}

#ifdef SPANALLOC_HAVE_SHRINKER_ALLOC
static struct shrinker *spanalloc_shrinker;

/**
 * spanalloc_pool_init() - register the pools' shrinker
 *
 * Return: 0 or -ENOMEM.
 */
int spanalloc_pool_init(void)
{
	spanalloc_shrinker = shrinker_alloc(0, "spanalloc-pool");
	if (!spanalloc_shrinker)
		return -ENOMEM;
	spanalloc_shrinker->count_objects = spanalloc_shrink_count;
	spanalloc_shrinker->scan_objects = spanalloc_shrink_scan;
	shrinker_register(spanalloc_shrinker);
	return 0;
}

/**
 * spanalloc_pool_exit() - unregister the shrinker; every pool is gone
 */
void spanalloc_pool_exit(void)
{
	shrinker_free(spanalloc_shrinker);
}
#else
static struct shrinker spanalloc_shrinker = {
	.count_objects	= spanalloc_shrink_count,
	.scan_objects	= spanalloc_shrink_scan,
	.seeks		= DEFAULT_SEEKS,
};

int spanalloc_pool_init(void)
{
	return register_shrinker(&spanalloc_shrinker, "spanalloc-pool");
}

void spanalloc_pool_exit(void)
{
	unregister_shrinker(&spanalloc_shrinker);
}
#endif
