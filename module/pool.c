// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc frame pools: where frames come from and where freed ones wait.
 *
 * One pool per memory cgroup, shared by every heap of that cgroup: a frame
 * stays charged to the cgroup that first allocated it (the kernel offers
 * modules no way to move a charge), so it may only be reused there. New
 * frames are charged to the pool's cgroup (set_active_memcg()), not to
 * whichever task happens to ask.
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
 * memory pressure (below).
 *
 * Per-CPU caches. In front of each pool's shared lists, every CPU keeps a
 * small cache of *clean* frames (struct spanalloc_pcp), so that a span of a
 * few pages takes its frames without the shared lock: a request of up to
 * SPANALLOC_PCP_BATCH frames is served from the local cache, which is refilled
 * from the shared clean list SPANALLOC_PCP_BATCH frames at a time (one hold of
 * the pool lock serves 32 one-page spans, 4 spans of 8 pages). A cache holds
 * at most SPANALLOC_PCP_HIGH frames (2 batches): 256 KiB per CPU, little
 * enough to strand nothing that matters, and counted in the pool's total, so
 * that pool_max_frames bounds a pool's memory whatever the number of CPUs.
 * Larger requests go to the shared lists directly, then to the local cache.
 *
 * Freed frames do not go to the per-CPU caches: they are dirty, and must be
 * zeroed before anyone sees them. They go to the shared dirty list in one
 * hold of the lock per SPANALLOC_POOL_BATCH frames, where the worker (which
 * runs on any CPU) zeroes them into the shared clean list. A per-CPU dirty
 * list would hide frames from the worker or move zeroing back onto the
 * allocation path. So the caches only ever hold clean frames, and a frame
 * reaches one only through a refill.
 *
 * Each cache has its own spinlock, uncontended but for the rare drain from
 * another CPU: the shrinker, the pool_max_frames trim, pool destruction and
 * a buddy allocation failure (frames idle on other CPUs are used before
 * -ENOMEM) walk every possible CPU's cache, and the CPU hotplug "dead"
 * callback moves a dead CPU's cache to the shared clean list. Nothing runs in
 * interrupt context, so no lock disables interrupts.
 *
 * Counting: pool_frames and pool_clean include the cached frames; a pool's
 * total (for its watermark) is its shared counts plus the sum of its caches.
 * Each pool also counts its frames node by node (@nodes[].frames), for the
 * shrinker.
 *
 * The shrinker is memcg- and NUMA-aware. Reclaim of a cgroup that hit its
 * memory.max calls a shrinker only if the cgroup's bit for that shrinker is
 * set on the node being reclaimed, and only list_lru_add() sets it for a
 * module. So every pool puts one small *marker* object per memory node into
 * a memcg-aware list_lru tied to the shrinker: allocated on that node from
 * a SLAB_ACCOUNT cache while the pool's cgroup is the active one, it lands
 * on the list of (node, cgroup), and when the cgroup is removed the kernel
 * moves it to the parent's list, as it moves the charges of the pool's
 * frames. The shrinker, asked about (node, cgroup), walks that one list:
 * its count is the frames on that node of the pools found there, and its
 * scan gives back frames of that node from those pools, so reclaim of one
 * cgroup never empties another's pool, and reclaim of one node frees
 * frames of that node. A marker is a pool's ticket to reclaim, nothing
 * more: it holds no frames and the pool outlives it by nothing (the pool's
 * markers leave the list under pools_lock before the pool is freed).
 *
 * Lock order: pools_lock (mutex) -> the list_lru's node lock (spinlock,
 * held only to walk markers) ; pools_lock -> spanalloc_pcp.lock (spinlock)
 * -> spanalloc_pool.lock (spinlock).
 */
#include <linux/cpuhotplug.h>
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/list_lru.h>
#include <linux/memcontrol.h>
#include <linux/mmzone.h>
#include <linux/nodemask.h>
#include <linux/mm.h>
#include <linux/percpu.h>
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

/*
 * Per-CPU caches: requests of up to SPANALLOC_PCP_BATCH frames are served
 * from them, refilled that many at a time; a cache holds at most
 * SPANALLOC_PCP_HIGH (two refills' worth, so that a refill always fits).
 */
#define SPANALLOC_PCP_BATCH	32UL
#define SPANALLOC_PCP_HIGH	(2 * SPANALLOC_PCP_BATCH)

/* How long fewer than a batch of dirty frames wait for the zeroing worker. */
#define SPANALLOC_ZERO_DELAY_MS	10

/**
 * struct spanalloc_pcp - one CPU's cache of clean frames of one pool
 * @lock:	protects @frames and @nr; taken by the owning CPU, and by
 *		others only to drain the cache.
 * @frames:	zeroed frames, linked through page->lru.
 * @nr:		length of @frames, at most SPANALLOC_PCP_HIGH; read without
 *		the lock to sum a pool's caches.
 */
struct spanalloc_pcp {
	spinlock_t lock;		/* protects @frames and @nr */
	struct list_head frames;
	unsigned long nr;
};

/**
 * struct spanalloc_pool_marker - a pool's entry in the shrinker's list_lru
 * @item:	on pool_lru's list of the marker's node and memory cgroup.
 * @pool:	the pool it stands for.
 */
struct spanalloc_pool_marker {
	struct list_head item;
	struct spanalloc_pool *pool;
};

/**
 * struct spanalloc_pool_node - a pool on one memory node
 * @marker:	its marker on this node, or NULL if none could be put here.
 * @frames:	the pool's frames on this node, wherever they wait.
 */
struct spanalloc_pool_node {
	struct spanalloc_pool_marker *marker;
	atomic_long_t frames;
};

/**
 * struct spanalloc_pool - free frames of one memory cgroup
 * @kref:	heaps and frame sets using the pool.
 * @node:	entry in spanalloc_pools, under pools_lock.
 * @memcg:	the cgroup its frames are charged to (a css reference), or
 *		NULL without memory cgroups.
 * @pcp:	the per-CPU caches of clean frames in front of the lists.
 * @nodes:	per memory node (nr_node_ids of them): marker, frame count.
 * @lock:	protects the lists and counts below.
 * @clean:	zeroed frames, linked through page->lru.
 * @dirty:	frames waiting to be zeroed.
 * @nr_clean:	length of @clean.
 * @nr_dirty:	length of @dirty, plus the frames the worker is zeroing.
 * @zero_work:	the worker zeroing @dirty: at once for a batch's worth,
 *		after SPANALLOC_ZERO_DELAY_MS for less, so that a span freed
 *		and made again at once costs no wake-up.
 */
struct spanalloc_pool {
	struct kref kref;
	struct list_head node;
	struct mem_cgroup *memcg;
	struct spanalloc_pcp __percpu *pcp;
	struct spanalloc_pool_node *nodes;

	spinlock_t lock;		/* protects the lists and counts */
	struct list_head clean;
	struct list_head dirty;
	unsigned long nr_clean;
	unsigned long nr_dirty;
	struct delayed_work zero_work;
};

static LIST_HEAD(spanalloc_pools);
static DEFINE_MUTEX(pools_lock);	/* protects spanalloc_pools */

/* The markers' slab cache; the KUnit module's copy of pool.c names its own. */
#ifndef SPANALLOC_MARKER_CACHE
#define SPANALLOC_MARKER_CACHE	"spanalloc_pool_marker"
#endif

/* The pools' markers, by node and memory cgroup; the shrinker walks it. */
static struct list_lru pool_lru;
static struct kmem_cache *pool_marker_cache;
/* Set once pool_lru is ready: on 6.1 the shrinker is registered first. */
static bool pool_lru_ready;

unsigned long spanalloc_pool_max_frames = 16384;
unsigned long spanalloc_memcg_headroom_kb = 1024;

static void pool_count(struct spanalloc_pool *pool, long clean, long dirty)
{
	lockdep_assert_held(&pool->lock);
	pool->nr_clean += clean;
	pool->nr_dirty += dirty;
	atomic_long_add(clean + dirty, &spanalloc_stats.pool_frames);
	atomic_long_add(clean, &spanalloc_stats.pool_clean);
}

/*
 * Count @nr frames into (@sign 1) or out of (@sign -1) @pool's per-node
 * counts, one atomic per run of frames of the same node.
 */
static void pool_count_nodes(struct spanalloc_pool *pool, struct page **pages,
			     unsigned long nr, long sign)
{
	unsigned long i, run = 0;
	int nid = NUMA_NO_NODE;

	for (i = 0; i < nr; i++) {
		if (page_to_nid(pages[i]) != nid) {
			if (run)
				atomic_long_add(sign * run,
						&pool->nodes[nid].frames);
			nid = page_to_nid(pages[i]);
			run = 0;
		}
		run++;
	}
	if (run)
		atomic_long_add(sign * run, &pool->nodes[nid].frames);
}

/* Whether @page may be given back for reclaim of node @nid (or any). */
static bool pool_on_node(struct page *page, int nid)
{
	return nid == NUMA_NO_NODE || page_to_nid(page) == nid;
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
 * holds the list's lock.
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

/*
 * Move up to @nr frames of node @nid (NUMA_NO_NODE: any) from @from to @to.
 * Returns how many. With a node, frames of other nodes are walked past.
 */
static unsigned long pool_move_list(struct list_head *from,
				    struct list_head *to, unsigned long nr,
				    int nid)
{
	struct page *page, *next;
	unsigned long n = 0;

	if (nid == NUMA_NO_NODE) {
		while (n < nr && !list_empty(from)) {
			list_move(from->next, to);
			n++;
		}
		return n;
	}
	list_for_each_entry_safe(page, next, from, lru) {
		if (n == nr)
			break;
		if (pool_on_node(page, nid)) {
			list_move(&page->lru, to);
			n++;
		}
	}
	return n;
}

/*
 * Frames in @pool's per-CPU caches, offline CPUs' included. Exact under
 * pool->lock, where no frame is between a cache and the shared lists;
 * without it, a sum that may be stale by frames being taken.
 */
static unsigned long pool_pcp_count(struct spanalloc_pool *pool)
{
	unsigned long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(per_cpu_ptr(pool->pcp, cpu)->nr);
	return sum;
}

/*
 * Fill @pages[*done..nr) from this CPU's cache of @pool; with @refill, first
 * top the cache up from the shared clean list if it has too few.
 */
static void pool_pcp_take(struct spanalloc_pool *pool, struct page **pages,
			  unsigned long nr, unsigned long *done, bool refill)
{
	struct spanalloc_pcp *pcp;
	unsigned long n;

	if (*done >= nr)
		return;
	/*
	 * Preemption may move us to another CPU before the lock is held, and
	 * that CPU may go offline and have its cache drained meanwhile: a
	 * refill then would strand frames in a dead CPU's cache (review L2).
	 * Under the lock we stay on our CPU: use its cache only if it is
	 * still ours, else take nothing from a cache this time.
	 */
	pcp = raw_cpu_ptr(pool->pcp);
	spin_lock(&pcp->lock);
	if (unlikely(pcp != raw_cpu_ptr(pool->pcp))) {
		spin_unlock(&pcp->lock);
		return;
	}
	if (refill && pcp->nr < nr - *done) {
		spin_lock(&pool->lock);
		n = pool_move_list(&pool->clean, &pcp->frames,
				   min(SPANALLOC_PCP_BATCH,
				       SPANALLOC_PCP_HIGH - pcp->nr),
				   NUMA_NO_NODE);
		pool->nr_clean -= n;
		WRITE_ONCE(pcp->nr, pcp->nr + n);
		spin_unlock(&pool->lock);
	}
	n = pool_take_list(&pcp->frames, pages + *done, nr - *done);
	WRITE_ONCE(pcp->nr, pcp->nr - n);
	spin_unlock(&pcp->lock);
	if (n) {
		pool_count_nodes(pool, pages + *done, n, -1);
		atomic_long_sub(n, &spanalloc_stats.pool_frames);
		atomic_long_sub(n, &spanalloc_stats.pool_clean);
		*done += n;
	}
}

/*
 * Empty @cpu's cache of @pool, up to @nr frames: into the shared clean list
 * with @to_shared (they stay pooled), else those of node @nid (NUMA_NO_NODE:
 * any) back to the buddy allocator. Returns how many frames left the cache.
 * Any CPU may drain any cache.
 */
static unsigned long pool_pcp_drain_cpu(struct spanalloc_pool *pool, int cpu,
					unsigned long nr, bool to_shared,
					int nid)
{
	struct spanalloc_pcp *pcp = per_cpu_ptr(pool->pcp, cpu);
	struct page *page;
	unsigned long n;
	LIST_HEAD(list);

	spin_lock(&pcp->lock);
	n = pool_move_list(&pcp->frames, &list, nr,
			   to_shared ? NUMA_NO_NODE : nid);
	if (n && to_shared) {
		spin_lock(&pool->lock);
		list_splice(&list, &pool->clean);
		pool->nr_clean += n;
		WRITE_ONCE(pcp->nr, pcp->nr - n);
		spin_unlock(&pool->lock);
	} else {
		WRITE_ONCE(pcp->nr, pcp->nr - n);
	}
	spin_unlock(&pcp->lock);
	if (!n || to_shared)
		return n;
	while (!list_empty(&list)) {
		page = list_first_entry(&list, struct page, lru);
		list_del(&page->lru);
		pool_count_nodes(pool, &page, 1, -1);
		put_page(page);
	}
	atomic_long_sub(n, &spanalloc_stats.pool_frames);
	atomic_long_sub(n, &spanalloc_stats.pool_clean);
	atomic_long_add(n, &spanalloc_stats.frames_freed);
	return n;
}

/* pool_pcp_drain_cpu() on every possible CPU, up to @nr frames in all. */
static unsigned long pool_pcp_drain(struct spanalloc_pool *pool,
				    unsigned long nr, bool to_shared, int nid)
{
	unsigned long moved = 0;
	int cpu;

	for_each_possible_cpu(cpu) {
		if (moved >= nr)
			break;
		moved += pool_pcp_drain_cpu(pool, cpu, nr - moved, to_shared,
					    nid);
		cond_resched();
	}
	return moved;
}

/*
 * Fill @pages[*done..nr) from the shared clean list, or, if @dirty is set,
 * from the dirty list, zeroing the frames here.
 */
static void pool_take_shared(struct spanalloc_pool *pool, struct page **pages,
			     unsigned long nr, unsigned long *done, bool dirty)
{
	unsigned long n, i;

	while (*done < nr) {
		spin_lock(&pool->lock);
		if (dirty) {
			n = pool_take_list(&pool->dirty, pages + *done,
					   min(nr - *done, SPANALLOC_POOL_BATCH));
			pool_count(pool, 0, -(long)n);
		} else {
			n = pool_take_list(&pool->clean, pages + *done,
					   min(nr - *done, SPANALLOC_POOL_BATCH));
			pool_count(pool, -(long)n, 0);
		}
		spin_unlock(&pool->lock);
		if (!n)
			break;
		pool_count_nodes(pool, pages + *done, n, -1);
		if (dirty) {
			for (i = 0; i < n; i++)
				clear_highpage(pages[*done + i]);
			atomic_long_add(n, &spanalloc_stats.zeroed_sync);
		}
		*done += n;
		cond_resched();
	}
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
 * A request of up to SPANALLOC_PCP_BATCH frames is served from this CPU's
 * cache first. Then come the shared clean list, this CPU's cache, the shared
 * dirty list (zeroed here), the buddy allocator, and when that fails, the
 * frames idle in other CPUs' caches.
 *
 * Context: process context, may sleep.
 * Return: 0, -ENOMEM or -EINTR (fatal signal).
 */
int spanalloc_pool_take(struct spanalloc_pool *pool, struct page **pages,
			unsigned long nr, unsigned long *done)
{
	struct mem_cgroup *old_memcg;
	int err;

	*done = 0;
	if (nr <= SPANALLOC_PCP_BATCH)
		pool_pcp_take(pool, pages, nr, done, true);
	pool_take_shared(pool, pages, nr, done, false);
	pool_pcp_take(pool, pages, nr, done, false);
	pool_take_shared(pool, pages, nr, done, true);
	/*
	 * New frames are charged to the pool's cgroup, whoever asks: a heap
	 * made in one cgroup may be used by a task that moved to another, or
	 * refault through another's GUP (ptrace, process_vm_readv).
	 */
	old_memcg = set_active_memcg(pool->memcg);
	err = pool_take_buddy(pages, nr, done);
	if (err == -ENOMEM &&
	    pool_pcp_drain(pool, ULONG_MAX, true, NUMA_NO_NODE)) {
		pool_take_shared(pool, pages, nr, done, false);
		err = pool_take_buddy(pages, nr, done);
	}
	set_active_memcg(old_memcg);
	return err;
}

/*
 * Give up to @nr pooled frames of node @nid (NUMA_NO_NODE: any) back to the
 * buddy allocator: dirty first, then clean, then those in the per-CPU caches
 * of every CPU.
 */
static unsigned long pool_drain(struct spanalloc_pool *pool, int nid,
				unsigned long nr)
{
	unsigned long freed = 0, n, d, want;
	struct page *page, *next;
	LIST_HEAD(list);

	while (freed < nr) {
		want = min(nr - freed, SPANALLOC_POOL_BATCH);
		spin_lock(&pool->lock);
		d = pool_move_list(&pool->dirty, &list, want, nid);
		n = pool_move_list(&pool->clean, &list, want - d, nid);
		pool_count(pool, -(long)n, -(long)d);
		spin_unlock(&pool->lock);
		if (!n && !d)
			break;
		list_for_each_entry_safe(page, next, &list, lru) {
			list_del(&page->lru);
			pool_count_nodes(pool, &page, 1, -1);
			put_page(page);
		}
		atomic_long_add(n + d, &spanalloc_stats.frames_freed);
		freed += n + d;
		cond_resched();
	}
	if (freed < nr)
		freed += pool_pcp_drain(pool, nr - freed, false, nid);
	return freed;
}

/*
 * Frames the cgroup of @memcg and each of its ancestors can still be
 * charged before its limit (memory.max, or memory.limit_in_bytes on cgroup
 * v1): the least of them. Usage includes the per-CPU charge stocks, so
 * this errs on the small side. The root has no limit. The memory cgroup
 * offers modules no function for this (mem_cgroup_margin() is mm's own);
 * the page counters are read as its header defines them.
 */
static unsigned long pool_memcg_margin(struct mem_cgroup *memcg)
{
	unsigned long margin = ULONG_MAX;
#ifdef CONFIG_MEMCG
	unsigned long usage, max;

	for (; memcg; memcg = parent_mem_cgroup(memcg)) {
		usage = page_counter_read(&memcg->memory);
		max = READ_ONCE(memcg->memory.max);
		margin = min(margin, max > usage ? max - usage : 0);
	}
#endif
	return margin;
}

/*
 * Charge @nr pages to the active cgroup and free them again: the charge
 * reclaims what the cgroup can give (page cache, swap, pooled frames
 * through the shrinker), and fails without the OOM killer when it cannot.
 * In chunks as large as the buddy allocator gives without effort (one
 * charge each), then single pages.
 */
static int pool_charge_probe(unsigned long nr)
{
	const gfp_t gfp = GFP_HIGHUSER | __GFP_ACCOUNT | __GFP_RETRY_MAYFAIL |
			  __GFP_NOWARN;
	unsigned int order = SPANALLOC_CHUNK_ORDER;
	struct page *page, *next;
	unsigned long got = 0, i;
	LIST_HEAD(probe);
	int err = 0;

	while (got < nr) {
		if (fatal_signal_pending(current)) {
			err = -EINTR;
			break;
		}
		while (order && (1UL << order) > nr - got)
			order--;
		page = alloc_pages(order ? gfp | __GFP_NORETRY : gfp, order);
		if (!page && order) {
			order = 0;
			continue;
		}
		if (!page) {
			err = -ENOMEM;
			break;
		}
		if (order)
			split_page(page, order);
		for (i = 0; i < (1UL << order); i++)
			list_add(&page[i].lru, &probe);
		got += 1UL << order;
	}
	list_for_each_entry_safe(page, next, &probe, lru) {
		list_del(&page->lru);
		__free_page(page);
	}
	return err;
}

/**
 * spanalloc_pool_headroom() - leave room in the pool's cgroup for faults
 * @pool:	the pool whose cgroup a request just charged.
 *
 * Called by the ioctls that hand out frames, after taking them. When the
 * pool's cgroup (or an ancestor) has less than memcg_headroom_kb left below
 * its limit, the pool's own frames go back to the system first (no
 * reclaim, no memory.events); if that is not enough, memcg_headroom_kb of
 * pages are charged and freed again (pool_charge_probe()), which reclaims
 * for room or fails. Then the request fails with -ENOMEM while the cgroup
 * still has room for the faults its process takes next (page tables, the
 * library's own records): a cgroup's limit is met by an ioctl that says
 * -ENOMEM, where the library can give back what it caches and ask again,
 * and not by a page fault, which at the limit can only wake the OOM
 * killer. Best effort: other tasks of the cgroup may take the room. Near
 * the limit each request pays for the probe (one 1 MiB allocation, or 256
 * pages when the buddy allocator has no such block), and the probe's
 * reclaim counts in the cgroup's memory.events as any charge's does.
 *
 * Context: process context, may sleep.
 * Return: 0, -ENOMEM or -EINTR.
 */
int spanalloc_pool_headroom(struct spanalloc_pool *pool)
{
	unsigned long want = READ_ONCE(spanalloc_memcg_headroom_kb) >>
			     (PAGE_SHIFT - 10);
	unsigned long margin = pool_memcg_margin(pool->memcg);
	struct mem_cgroup *old_memcg;
	int err;

	if (margin >= want)
		return 0;
	pool_drain(pool, NUMA_NO_NODE, want - margin);
	margin = pool_memcg_margin(pool->memcg);
	if (margin >= want)
		return 0;
	/* Charging @want pages is what shows that @want pages are free. */
	old_memcg = set_active_memcg(pool->memcg);
	err = pool_charge_probe(want);
	set_active_memcg(old_memcg);
	return err;
}

/**
 * spanalloc_pool_shed() - give @nr pooled frames back to the system
 * @pool:	a pool.
 * @nr:		how many, at most.
 *
 * For a request that failed with -ENOMEM after taking frames: they went to
 * the pool, still charged to its cgroup, which is at its limit.
 *
 * Context: process context, may sleep.
 */
void spanalloc_pool_shed(struct spanalloc_pool *pool, unsigned long nr)
{
	pool_drain(pool, NUMA_NO_NODE, nr);
}

/**
 * spanalloc_pool_give() - take back frames we hold one reference on
 * @pool:	the pool they were taken from.
 * @pages:	the frames.
 * @nr:		how many.
 *
 * The frames go to the shared dirty list, up to pool_max_frames in the pool
 * (per-CPU caches included); the others go back to the buddy allocator. A
 * pool found above its watermark (lowered, or raced past by another free)
 * is trimmed to it, per-CPU caches last.
 *
 * Context: process context, may sleep.
 */
void spanalloc_pool_give(struct spanalloc_pool *pool, struct page **pages,
			 unsigned long nr)
{
	unsigned long i, kept = 0, max, room, total, dirty, cached;
	LIST_HEAD(list);

	/*
	 * The per-CPU caches are summed once, outside the lock (review M4):
	 * the watermark is a bound kept within a batch, not an exact count.
	 */
	max = READ_ONCE(spanalloc_pool_max_frames);
	cached = pool_pcp_count(pool);
	spin_lock(&pool->lock);
	total = pool->nr_clean + pool->nr_dirty + cached;
	spin_unlock(&pool->lock);
	room = max > total ? max - total : 0;

	for (i = 0; i < nr; i++) {
		/*
		 * Only a frame nobody else maps or pins may be reused, and
		 * never one memory_failure() marked poisoned.
		 */
		if (kept < room && page_count(pages[i]) == 1 &&
		    !PageHWPoison(pages[i])) {
			list_add(&pages[i]->lru, &list);
			pool_count_nodes(pool, &pages[i], 1, 1);
			kept++;
		} else {
			put_page(pages[i]);
			atomic_long_inc(&spanalloc_stats.frames_freed);
		}
	}
	if (kept) {
		spin_lock(&pool->lock);
		list_splice(&list, &pool->dirty);
		pool_count(pool, 0, kept);
		total = pool->nr_clean + pool->nr_dirty + cached;
		dirty = pool->nr_dirty;
		spin_unlock(&pool->lock);
		/* A full batch is zeroed now, even if a later run is queued. */
		if (dirty >= SPANALLOC_POOL_BATCH)
			mod_delayed_work(system_unbound_wq, &pool->zero_work, 0);
		else
			queue_delayed_work(system_unbound_wq, &pool->zero_work,
					   msecs_to_jiffies(SPANALLOC_ZERO_DELAY_MS));
	}
	if (total > max)
		pool_drain(pool, NUMA_NO_NODE, total - max);
}

/**
 * spanalloc_pool_pcp_frames() - frames in the per-CPU caches of every pool
 *
 * They are counted in pool_frames and pool_clean as well.
 *
 * Context: process context, may sleep.
 * Return: the sum; exact while no frame is being taken.
 */
unsigned long spanalloc_pool_pcp_frames(void)
{
	struct spanalloc_pool *pool;
	unsigned long sum = 0;

	mutex_lock(&pools_lock);
	list_for_each_entry(pool, &spanalloc_pools, node)
		sum += pool_pcp_count(pool);
	mutex_unlock(&pools_lock);
	return sum;
}

/*
 * Put @pool's markers on pool_lru, one per memory node where one can be
 * allocated, each charged to the pool's cgroup. The first comes from
 * kmem_cache_alloc_lru(), which also makes the cgroup's lists in pool_lru
 * (and its ancestors'); the others are placed on their nodes.
 */
static int pool_add_markers(struct spanalloc_pool *pool)
{
	const gfp_t gfp = GFP_KERNEL | __GFP_ZERO | __GFP_THISNODE |
			  __GFP_NOWARN;
	struct spanalloc_pool_marker *marker;
	struct mem_cgroup *old_memcg;
	int nid;

	old_memcg = set_active_memcg(pool->memcg);
	marker = kmem_cache_alloc_lru(pool_marker_cache, &pool_lru,
				      GFP_KERNEL | __GFP_ZERO);
	if (marker)
		pool->nodes[page_to_nid(virt_to_page(marker))].marker = marker;
	for_each_node_state(nid, N_MEMORY) {
		if (!marker || pool->nodes[nid].marker)
			continue;
		/* Without one here, reclaim of this node leaves the pool be. */
		pool->nodes[nid].marker =
			kmem_cache_alloc_node(pool_marker_cache, gfp, nid);
	}
	set_active_memcg(old_memcg);
	if (!marker)
		return -ENOMEM;

	for_each_node(nid) {
		marker = pool->nodes[nid].marker;
		if (!marker)
			continue;
		marker->pool = pool;
		/* list_lru_add() adds only an item that is list_empty(). */
		INIT_LIST_HEAD(&marker->item);
		spanalloc_lru_add(&pool_lru, &marker->item);
	}
	return 0;
}

/* Take @pool's markers off pool_lru and free them. */
static void pool_del_markers(struct spanalloc_pool *pool)
{
	struct spanalloc_pool_marker *marker;
	int nid;

	for_each_node(nid) {
		marker = pool->nodes[nid].marker;
		if (!marker)
			continue;
		if (marker->pool)
			spanalloc_lru_del(&pool_lru, &marker->item);
		kmem_cache_free(pool_marker_cache, marker);
		pool->nodes[nid].marker = NULL;
	}
}

static void pool_free(struct spanalloc_pool *pool)
{
	if (pool->nodes)
		pool_del_markers(pool);
	kfree(pool->nodes);
	free_percpu(pool->pcp);
	kfree(pool);
}

/* A new pool for @memcg, with empty per-CPU caches; NULL without memory. */
static struct spanalloc_pool *pool_alloc(struct mem_cgroup *memcg)
{
	struct spanalloc_pool *pool;
	struct spanalloc_pcp *pcp;
	int cpu;

	pool = kzalloc(sizeof(*pool), GFP_KERNEL);
	if (!pool)
		return NULL;
	pool->pcp = alloc_percpu(struct spanalloc_pcp);
	pool->nodes = kcalloc(nr_node_ids, sizeof(*pool->nodes), GFP_KERNEL);
	if (!pool->pcp || !pool->nodes) {
		pool_free(pool);
		return NULL;
	}
	for_each_possible_cpu(cpu) {
		pcp = per_cpu_ptr(pool->pcp, cpu);
		spin_lock_init(&pcp->lock);
		INIT_LIST_HEAD(&pcp->frames);
	}
	kref_init(&pool->kref);
	pool->memcg = memcg;
	spin_lock_init(&pool->lock);
	INIT_LIST_HEAD(&pool->clean);
	INIT_LIST_HEAD(&pool->dirty);
	INIT_DELAYED_WORK(&pool->zero_work, pool_zero_work);
	if (pool_add_markers(pool)) {
		pool_free(pool);
		return NULL;
	}
	return pool;
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
	pool = pool_alloc(memcg);
	if (pool)
		list_add(&pool->node, &spanalloc_pools);
	else
		mem_cgroup_put(memcg);
	mutex_unlock(&pools_lock);
	return pool;
}

/*
 * The last user is gone: every pooled frame goes back to the system. The
 * markers leave pool_lru under pools_lock, so the shrinker, which walks
 * pool_lru under pools_lock or under the list's own lock, never meets a
 * freed pool.
 */
static void pool_release(struct kref *kref)
	__releases(&pools_lock)
{
	struct spanalloc_pool *pool =
		container_of(kref, struct spanalloc_pool, kref);
	int nid;

	list_del(&pool->node);
	pool_del_markers(pool);
	mutex_unlock(&pools_lock);
	cancel_delayed_work_sync(&pool->zero_work);
	pool_drain(pool, NUMA_NO_NODE, ULONG_MAX);
	WARN_ON_ONCE(pool->nr_clean || pool->nr_dirty || pool_pcp_count(pool));
	for_each_node(nid)
		WARN_ON_ONCE(atomic_long_read(&pool->nodes[nid].frames));
	mem_cgroup_put(pool->memcg);
	pool_free(pool);
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

/*
 * CPU hotplug: once @cpu is dead, its caches go to their pools' shared clean
 * lists, where every CPU finds them. Runs on a control CPU.
 */
static int pool_cpu_dead(unsigned int cpu)
{
	struct spanalloc_pool *pool;

	mutex_lock(&pools_lock);
	list_for_each_entry(pool, &spanalloc_pools, node)
		pool_pcp_drain_cpu(pool, cpu, ULONG_MAX, true, NUMA_NO_NODE);
	mutex_unlock(&pools_lock);
	return 0;
}

/* ---- the shrinker: pooled frames back to the system under pressure ---- */

/* Pools met on one list of pool_lru, at most this many per scan. */
#define SPANALLOC_SHRINK_POOLS	16

/**
 * struct spanalloc_pool_walk - what a walk of one list of pool_lru found
 * @nid:	the node of the list.
 * @frames:	the frames on @nid of the pools met.
 * @pools:	the pools met (a list holds one pool per cgroup, more only
 *		after the kernel moved the markers of removed cgroups to it).
 * @nr:		how many of @pools.
 */
struct spanalloc_pool_walk {
	int nid;
	unsigned long frames;
	struct spanalloc_pool *pools[SPANALLOC_SHRINK_POOLS];
	unsigned int nr;
};

/*
 * Under the list's lock, where a pool whose marker is listed is not freed:
 * add up the pools' frames on the walk's node, and note the first pools.
 */
static enum lru_status pool_walk_one(struct list_head *item,
				     struct list_lru_one *list,
				     spinlock_t *lock, void *arg)
{
	struct spanalloc_pool_marker *marker =
		container_of(item, struct spanalloc_pool_marker, item);
	struct spanalloc_pool_walk *walk = arg;
	long n = atomic_long_read(&marker->pool->nodes[walk->nid].frames);

	walk->frames += max(n, 0L);
	if (walk->nr < ARRAY_SIZE(walk->pools))
		walk->pools[walk->nr++] = marker->pool;
	return LRU_SKIP;
}

/* Walk the list of (sc->nid, sc->memcg): the pools on it, and their frames. */
static void pool_walk(struct shrink_control *sc,
		      struct spanalloc_pool_walk *walk)
{
	unsigned long markers = ARRAY_SIZE(walk->pools);

	walk->nid = sc->nid;
	list_lru_walk_one(&pool_lru, sc->nid, sc->memcg, pool_walk_one, walk,
			  &markers);
}

/*
 * The frames on sc->nid of the pools of sc->memcg (and of its removed
 * descendants, whose markers the kernel moved to it). 0, not SHRINK_EMPTY,
 * while any pool is listed: SHRINK_EMPTY would clear the cgroup's bit, and
 * nothing would set it again when the pool fills.
 */
static unsigned long spanalloc_shrink_count(struct shrinker *shrinker,
					    struct shrink_control *sc)
{
	struct spanalloc_pool_walk walk = {};

	/* Pairs with pool_lru_init(): a ready list is an initialised one. */
	if (!smp_load_acquire(&pool_lru_ready))
		return SHRINK_EMPTY;
	pool_walk(sc, &walk);
	return walk.nr ? walk.frames : SHRINK_EMPTY;
}

/*
 * Give back up to sc->nr_to_scan frames on sc->nid from the pools of
 * sc->memcg. pools_lock is only tried: the shrinker may run inside an
 * allocation made under it (a new pool). Holding it keeps the pools met
 * alive after the walk.
 */
static unsigned long spanalloc_shrink_scan(struct shrinker *shrinker,
					   struct shrink_control *sc)
{
	struct spanalloc_pool_walk walk = {};
	unsigned long freed = 0;
	unsigned int i;

	/* Pairs with pool_lru_init(): a ready list is an initialised one. */
	if (!smp_load_acquire(&pool_lru_ready) || !mutex_trylock(&pools_lock))
		return SHRINK_STOP;
	pool_walk(sc, &walk);
	for (i = 0; i < walk.nr && freed < sc->nr_to_scan; i++)
		freed += pool_drain(walk.pools[i], sc->nid,
				    sc->nr_to_scan - freed);
	mutex_unlock(&pools_lock);
	atomic_long_add(freed, &spanalloc_stats.shrinker_freed);
	return freed ? freed : SHRINK_STOP;
}

/* The dynamic CPU hotplug state of pool_cpu_dead(). */
static int spanalloc_cpuhp_state;

static int pool_cpuhp_init(void)
{
	int ret;

	ret = cpuhp_setup_state_nocalls(CPUHP_BP_PREPARE_DYN, "spanalloc:dead",
					NULL, pool_cpu_dead);
	if (ret < 0)
		return ret;
	spanalloc_cpuhp_state = ret;
	return 0;
}

/* What the shrinker and its list_lru need besides the shrinker itself. */
static int pool_lru_init(struct shrinker *shrinker)
{
	int err;

	err = list_lru_init_memcg(&pool_lru, shrinker);
	if (err)
		return err;
	/* Pairs with the shrinker's acquire: it may already be running. */
	smp_store_release(&pool_lru_ready, true);
	return 0;
}

#define SPANALLOC_SHRINKER_FLAGS	(SHRINKER_MEMCG_AWARE | SHRINKER_NUMA_AWARE)

#ifdef SPANALLOC_HAVE_SHRINKER_ALLOC
static struct shrinker *spanalloc_shrinker;

/* The shrinker's id comes with shrinker_alloc(), before it can run. */
static int pool_shrinker_init(void)
{
	int err;

	spanalloc_shrinker = shrinker_alloc(SPANALLOC_SHRINKER_FLAGS,
					    "spanalloc-pool");
	if (!spanalloc_shrinker)
		return -ENOMEM;
	spanalloc_shrinker->count_objects = spanalloc_shrink_count;
	spanalloc_shrinker->scan_objects = spanalloc_shrink_scan;
	err = pool_lru_init(spanalloc_shrinker);
	if (err) {
		shrinker_free(spanalloc_shrinker);
		return err;
	}
	shrinker_register(spanalloc_shrinker);
	return 0;
}

static void pool_shrinker_exit(void)
{
	shrinker_free(spanalloc_shrinker);
}
#else
static struct shrinker spanalloc_shrinker = {
	.count_objects	= spanalloc_shrink_count,
	.scan_objects	= spanalloc_shrink_scan,
	.seeks		= DEFAULT_SEEKS,
	.flags		= SPANALLOC_SHRINKER_FLAGS,
};

/*
 * Before shrinker_alloc() the id comes with registration: the shrinker
 * may run before pool_lru is ready, and finds nothing (pool_lru_ready).
 */
static int pool_shrinker_init(void)
{
	int err;

	err = register_shrinker(&spanalloc_shrinker, "spanalloc-pool");
	if (err)
		return err;
	err = pool_lru_init(&spanalloc_shrinker);
	if (err)
		unregister_shrinker(&spanalloc_shrinker);
	return err;
}

static void pool_shrinker_exit(void)
{
	unregister_shrinker(&spanalloc_shrinker);
}
#endif

/**
 * spanalloc_pool_init() - the pools' marker cache, shrinker and CPU hotplug
 * callback
 *
 * Return: 0 or a negative errno.
 */
int spanalloc_pool_init(void)
{
	int err;

	/* Charged to the pool's cgroup: that puts it on the cgroup's list. */
	pool_marker_cache = kmem_cache_create(SPANALLOC_MARKER_CACHE,
					      sizeof(struct spanalloc_pool_marker),
					      0, SLAB_ACCOUNT, NULL);
	if (!pool_marker_cache)
		return -ENOMEM;
	err = pool_cpuhp_init();
	if (err)
		goto out_cache;
	err = pool_shrinker_init();
	if (err)
		goto out_cpuhp;
	return 0;

out_cpuhp:
	cpuhp_remove_state_nocalls(spanalloc_cpuhp_state);
out_cache:
	kmem_cache_destroy(pool_marker_cache);
	return err;
}

/**
 * spanalloc_pool_exit() - undo spanalloc_pool_init()
 *
 * Context: every pool is gone.
 */
void spanalloc_pool_exit(void)
{
	/* Unregistering waits for the shrinker: nobody walks pool_lru now. */
	pool_shrinker_exit();
	WRITE_ONCE(pool_lru_ready, false);
	list_lru_destroy(&pool_lru);
	cpuhp_remove_state_nocalls(spanalloc_cpuhp_state);
	kmem_cache_destroy(pool_marker_cache);
}
