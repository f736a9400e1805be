// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc KUnit suites: the range allocator and the frame pool, tested
 * inside the kernel. Built as spanalloc_kunit.ko when the target kernel has
 * KUnit (the debug kernel); scripts/run-selftests loads it and collects the
 * KTAP results. The code under test is compiled into this module as is.
 */
#include <kunit/test.h>
#include <linux/preempt.h>
#include <linux/random.h>

#include "range.c"
/* Slab cache names are unique: spanalloc.ko has "spanalloc_pool_marker". */
#define SPANALLOC_MARKER_CACHE	"spanalloc_kunit_marker"
#include "pool.c"

/* pool.c counts into the module's stats; this module has its own. */
struct spanalloc_stats spanalloc_stats;

static void range_one_run(struct kunit *test)
{
	struct spanalloc_range_tree tree;
	unsigned long first;

	KUNIT_ASSERT_EQ(test, 0, spanalloc_range_init(&tree, 100));
	KUNIT_EXPECT_EQ(test, 100UL, tree.free_pages);
	KUNIT_EXPECT_EQ(test, 0, spanalloc_range_alloc(&tree, 100, &first));
	KUNIT_EXPECT_EQ(test, 0UL, first);
	KUNIT_EXPECT_EQ(test, -ENOMEM, spanalloc_range_alloc(&tree, 1, &first));
	KUNIT_EXPECT_EQ(test, 0UL, tree.free_pages);
	spanalloc_range_destroy(&tree);
}

static void range_free(struct spanalloc_range_tree *tree, unsigned long first,
		       unsigned long pages)
{
	spanalloc_range_free(tree, first, pages,
			     kmalloc(sizeof(struct spanalloc_range), GFP_KERNEL));
}

static void range_best_fit(struct kunit *test)
{
	struct spanalloc_range_tree tree;
	unsigned long first;

	/*
	 * Free runs of 5 at 0, 3 at 10, 8 at 20 (the rest taken):
	 *   [0..5) free, [5..10) used, [10..13) free, [13..20) used,
	 *   [20..28) free, [28..100) used
	 */
	KUNIT_ASSERT_EQ(test, 0, spanalloc_range_init(&tree, 100));
	KUNIT_ASSERT_EQ(test, 0, spanalloc_range_alloc(&tree, 100, &first));
	range_free(&tree, 0, 5);
	range_free(&tree, 10, 3);
	range_free(&tree, 20, 8);
	KUNIT_EXPECT_EQ(test, 16UL, tree.free_pages);

	KUNIT_EXPECT_EQ(test, 0, spanalloc_range_alloc(&tree, 3, &first));
	KUNIT_EXPECT_EQ(test, 10UL, first);
	KUNIT_EXPECT_EQ(test, 0, spanalloc_range_alloc(&tree, 4, &first));
	KUNIT_EXPECT_EQ(test, 0UL, first);
	KUNIT_EXPECT_EQ(test, 0, spanalloc_range_alloc(&tree, 2, &first));
	KUNIT_EXPECT_EQ(test, 20UL, first);
	KUNIT_EXPECT_EQ(test, -ENOMEM, spanalloc_range_alloc(&tree, 7, &first));
	spanalloc_range_destroy(&tree);
}

static void range_coalesces(struct kunit *test)
{
	struct spanalloc_range_tree tree;
	unsigned long first;

	KUNIT_ASSERT_EQ(test, 0, spanalloc_range_init(&tree, 30));
	KUNIT_ASSERT_EQ(test, 0, spanalloc_range_alloc(&tree, 30, &first));
	range_free(&tree, 0, 10);
	range_free(&tree, 20, 10);
	/* The middle run merges with both neighbours: one run of 30. */
	range_free(&tree, 10, 10);
	KUNIT_EXPECT_EQ(test, 0, spanalloc_range_alloc(&tree, 30, &first));
	KUNIT_EXPECT_EQ(test, 0UL, first);
	KUNIT_EXPECT_TRUE(test, RB_EMPTY_ROOT(&tree.by_start));
	spanalloc_range_destroy(&tree);
}

static void range_clone(struct kunit *test)
{
	struct spanalloc_range_tree tree, copy;
	unsigned long a, b;

	KUNIT_ASSERT_EQ(test, 0, spanalloc_range_init(&tree, 64));
	KUNIT_ASSERT_EQ(test, 0, spanalloc_range_alloc(&tree, 16, &a));
	KUNIT_ASSERT_EQ(test, 0, spanalloc_range_clone(&copy, &tree));
	KUNIT_EXPECT_EQ(test, tree.free_pages, copy.free_pages);
	/* The copy moves on by itself. */
	KUNIT_EXPECT_EQ(test, 0, spanalloc_range_alloc(&copy, 48, &b));
	KUNIT_EXPECT_EQ(test, 48UL, tree.free_pages);
	spanalloc_range_destroy(&copy);
	spanalloc_range_destroy(&tree);
}

/* Growing a span in place: only the free run starting right after it. */
static void range_take_exact(struct kunit *test)
{
	struct spanalloc_range_tree tree;
	unsigned long first;

	KUNIT_ASSERT_EQ(test, 0, spanalloc_range_init(&tree, 40));
	KUNIT_ASSERT_EQ(test, 0, spanalloc_range_alloc(&tree, 40, &first));
	range_free(&tree, 10, 10);
	KUNIT_EXPECT_EQ(test, -ENOMEM, spanalloc_range_take(&tree, 9, 1));
	KUNIT_EXPECT_EQ(test, -ENOMEM, spanalloc_range_take(&tree, 11, 1));
	KUNIT_EXPECT_EQ(test, -ENOMEM, spanalloc_range_take(&tree, 10, 11));
	KUNIT_EXPECT_EQ(test, 10UL, tree.free_pages);
	/* The front of the run goes; the rest stays free, found by size. */
	KUNIT_EXPECT_EQ(test, 0, spanalloc_range_take(&tree, 10, 4));
	KUNIT_EXPECT_EQ(test, 6UL, tree.free_pages);
	KUNIT_EXPECT_EQ(test, 0, spanalloc_range_alloc(&tree, 6, &first));
	KUNIT_EXPECT_EQ(test, 14UL, first);
	/* A whole run. */
	range_free(&tree, 14, 6);
	KUNIT_EXPECT_EQ(test, 0, spanalloc_range_take(&tree, 14, 6));
	KUNIT_EXPECT_TRUE(test, RB_EMPTY_ROOT(&tree.by_start));
	KUNIT_EXPECT_TRUE(test, RB_EMPTY_ROOT(&tree.by_size));
	KUNIT_EXPECT_EQ(test, -ENOMEM, spanalloc_range_take(&tree, 0, 1));
	spanalloc_range_destroy(&tree);
}

/* Random allocs and frees against a bitmap of what is taken. */
static void range_random_against_model(struct kunit *test)
{
	enum { PAGES = 512, SLOTS = 64 };
	unsigned long first[SLOTS], len[SLOTS], i, j, free_pages = PAGES;
	struct spanalloc_range_tree tree;
	unsigned long *used;
	int step, err;

	used = kunit_kzalloc(test, BITS_TO_LONGS(PAGES) * sizeof(long),
			     GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, used);
	memset(len, 0, sizeof(len));
	KUNIT_ASSERT_EQ(test, 0, spanalloc_range_init(&tree, PAGES));
	for (step = 0; step < 4000; step++) {
		i = get_random_u32_below(SLOTS);
		if (len[i]) {
			bitmap_clear(used, first[i], len[i]);
			range_free(&tree, first[i], len[i]);
			free_pages += len[i];
			len[i] = 0;
		} else {
			len[i] = 1 + get_random_u32_below(32);
			err = spanalloc_range_alloc(&tree, len[i], &first[i]);
			if (err) {
				KUNIT_EXPECT_EQ(test, -ENOMEM, err);
				len[i] = 0;
				continue;
			}
			KUNIT_ASSERT_LE(test, first[i] + len[i],
					(unsigned long)PAGES);
			for (j = first[i]; j < first[i] + len[i]; j++)
				KUNIT_ASSERT_FALSE(test, test_bit(j, used));
			bitmap_set(used, first[i], len[i]);
			free_pages -= len[i];
		}
		KUNIT_ASSERT_EQ(test, free_pages, tree.free_pages);
	}
	spanalloc_range_destroy(&tree);
}

/* Every frame in @pool: shared lists, being zeroed, per-CPU caches. */
static unsigned long pool_frames_of(struct spanalloc_pool *pool)
{
	unsigned long n;

	spin_lock(&pool->lock);
	n = pool->nr_clean + pool->nr_dirty + pool_pcp_count(pool);
	spin_unlock(&pool->lock);
	return n;
}

/* A counter of spanalloc_stats, as the unsigned count it is. */
static unsigned long stat_read(atomic_long_t *counter)
{
	return atomic_long_read(counter);
}

static bool page_is_zero(struct page *page)
{
	void *va = kmap_local_page(page);
	bool zero = !memchr_inv(va, 0, PAGE_SIZE);

	kunmap_local(va);
	return zero;
}

/*
 * Put @n clean frames on @pool's shared clean list: taken from the buddy
 * allocator (the pool is new and empty), dirtied, given back, zeroed.
 */
static void pool_prime(struct kunit *test, struct spanalloc_pool *pool,
		       unsigned long n)
{
	struct page **pages = kunit_kcalloc(test, n, sizeof(*pages),
					    GFP_KERNEL);
	unsigned long done, i;

	KUNIT_ASSERT_NOT_NULL(test, pages);
	KUNIT_ASSERT_EQ(test, 0UL, pool_frames_of(pool));
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, pages, n, &done));
	for (i = 0; i < n; i++)
		memset_page(pages[i], 0, 0x5a, PAGE_SIZE);
	spanalloc_pool_give(pool, pages, n);
	flush_delayed_work(&pool->zero_work);
	KUNIT_ASSERT_EQ(test, n, pool->nr_clean);
	KUNIT_ASSERT_EQ(test, 0UL, pool_pcp_count(pool));
}

static void pool_hands_out_zeroed_frames(struct kunit *test)
{
	struct spanalloc_pool *pool = spanalloc_pool_get();
	struct page *pages[16];
	unsigned long done, i;
	void *va;

	KUNIT_ASSERT_NOT_NULL(test, pool);
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, pages, 16, &done));
	KUNIT_EXPECT_EQ(test, 16UL, done);
	for (i = 0; i < 16; i++) {
		KUNIT_EXPECT_EQ(test, 1, page_count(pages[i]));
		va = kmap_local_page(pages[i]);
		KUNIT_EXPECT_TRUE(test, !memchr_inv(va, 0, PAGE_SIZE));
		memset(va, 0xab, PAGE_SIZE);
		kunmap_local(va);
	}
	spanalloc_pool_give(pool, pages, 16);
	KUNIT_EXPECT_EQ(test, 16UL, pool_frames_of(pool));
	/* The worker zeroes them all; taken again, they are clean. */
	flush_delayed_work(&pool->zero_work);
	KUNIT_EXPECT_EQ(test, 16UL, pool->nr_clean);
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, pages, 16, &done));
	KUNIT_EXPECT_EQ(test, 0UL, pool_frames_of(pool));
	for (i = 0; i < 16; i++) {
		va = kmap_local_page(pages[i]);
		KUNIT_EXPECT_TRUE(test, !memchr_inv(va, 0, PAGE_SIZE));
		kunmap_local(va);
	}
	spanalloc_pool_give(pool, pages, 16);
	spanalloc_pool_put(pool);
}

static void pool_keeps_no_shared_frame(struct kunit *test)
{
	struct spanalloc_pool *pool = spanalloc_pool_get();
	struct page *pages[4];
	unsigned long done;

	KUNIT_ASSERT_NOT_NULL(test, pool);
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, pages, 4, &done));
	/* Someone else (a page table, a pin) still holds frame 2. */
	get_page(pages[2]);
	spanalloc_pool_give(pool, pages, 4);
	KUNIT_EXPECT_EQ(test, 3UL, pool_frames_of(pool));
	KUNIT_EXPECT_EQ(test, 1, page_count(pages[2]));
	put_page(pages[2]);
	spanalloc_pool_put(pool);
}

static void pool_respects_watermark(struct kunit *test)
{
	unsigned long old = spanalloc_pool_max_frames, done;
	struct spanalloc_pool *pool = spanalloc_pool_get();
	struct page *pages[32];

	KUNIT_ASSERT_NOT_NULL(test, pool);
	spanalloc_pool_max_frames = 8;
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, pages, 32, &done));
	spanalloc_pool_give(pool, pages, 32);
	KUNIT_EXPECT_EQ(test, 8UL, pool_frames_of(pool));
	spanalloc_pool_max_frames = old;
	spanalloc_pool_put(pool);
}

/*
 * Small takes come from this CPU's cache: one refill of SPANALLOC_PCP_BATCH
 * from the shared clean list, then none until the cache is empty.
 */
static void pool_pcp_serves_small_takes(struct kunit *test)
{
	const unsigned long b = SPANALLOC_PCP_BATCH;
	struct spanalloc_pool *pool = spanalloc_pool_get();
	unsigned long done, i, alloced, pooled;
	struct spanalloc_pcp *pcp;
	struct page **pages;

	KUNIT_ASSERT_NOT_NULL(test, pool);
	pages = kunit_kcalloc(test, b, sizeof(*pages), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pages);
	pool_prime(test, pool, 2 * b);
	alloced = stat_read(&spanalloc_stats.frames_alloced);
	pooled = stat_read(&spanalloc_stats.pool_frames);

	migrate_disable();
	pcp = raw_cpu_ptr(pool->pcp);
	KUNIT_EXPECT_EQ(test, 0, spanalloc_pool_take(pool, pages, 1, &done));
	KUNIT_EXPECT_EQ(test, b, pool->nr_clean);
	KUNIT_EXPECT_EQ(test, b - 1, pcp->nr);
	/* The rest of the batch, four frames at a time: no refill. */
	for (i = 1; i + 4 <= b; i += 4) {
		KUNIT_EXPECT_EQ(test, 0, spanalloc_pool_take(pool, pages + i,
							     4, &done));
		KUNIT_EXPECT_EQ(test, 4UL, done);
	}
	KUNIT_EXPECT_EQ(test, 0, spanalloc_pool_take(pool, pages + i, b - i,
						     &done));
	KUNIT_EXPECT_EQ(test, b, pool->nr_clean);
	KUNIT_EXPECT_EQ(test, 0UL, pcp->nr);
	KUNIT_EXPECT_EQ(test, alloced,
			stat_read(&spanalloc_stats.frames_alloced));
	KUNIT_EXPECT_EQ(test, pooled - b,
			stat_read(&spanalloc_stats.pool_frames));
	for (i = 0; i < b; i++) {
		KUNIT_EXPECT_EQ(test, 1, page_count(pages[i]));
		KUNIT_EXPECT_TRUE(test, page_is_zero(pages[i]));
	}
	/* Freed frames are dirty: they go to the shared list, not the cache. */
	spanalloc_pool_give(pool, pages, b);
	KUNIT_EXPECT_EQ(test, 0UL, pcp->nr);
	migrate_enable();

	KUNIT_EXPECT_EQ(test, 2 * b, pool_frames_of(pool));
	KUNIT_EXPECT_EQ(test, pooled,
			stat_read(&spanalloc_stats.pool_frames));
	spanalloc_pool_put(pool);
}

/* A large take uses the shared list, then this CPU's cache, then the buddy. */
static void pool_large_take_uses_cache_before_buddy(struct kunit *test)
{
	const unsigned long b = SPANALLOC_PCP_BATCH;
	struct spanalloc_pool *pool = spanalloc_pool_get();
	struct spanalloc_pcp *pcp;
	unsigned long done, alloced;
	struct page **pages;

	KUNIT_ASSERT_NOT_NULL(test, pool);
	pages = kunit_kcalloc(test, 2 * b, sizeof(*pages), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pages);
	pool_prime(test, pool, 2 * b);
	alloced = stat_read(&spanalloc_stats.frames_alloced);

	migrate_disable();
	pcp = raw_cpu_ptr(pool->pcp);
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, pages, 1, &done));
	KUNIT_ASSERT_EQ(test, b - 1, pcp->nr);
	KUNIT_EXPECT_EQ(test, 0, spanalloc_pool_take(pool, pages + 1, b + 8,
						     &done));
	KUNIT_EXPECT_EQ(test, 0UL, pool->nr_clean);
	KUNIT_EXPECT_EQ(test, b - 9, pcp->nr);
	migrate_enable();
	KUNIT_EXPECT_EQ(test, alloced,
			stat_read(&spanalloc_stats.frames_alloced));
	spanalloc_pool_give(pool, pages, b + 9);
	spanalloc_pool_put(pool);
}

/* Draining a pool, and destroying it, empties every per-CPU cache. */
static void pool_drain_empties_pcp(struct kunit *test)
{
	const unsigned long b = SPANALLOC_PCP_BATCH;
	unsigned long pooled = stat_read(&spanalloc_stats.pool_frames);
	unsigned long clean = stat_read(&spanalloc_stats.pool_clean);
	struct spanalloc_pool *pool = spanalloc_pool_get();
	unsigned long done, freed;
	struct page *page;

	KUNIT_ASSERT_NOT_NULL(test, pool);
	pool_prime(test, pool, 2 * b);
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, &page, 1, &done));
	KUNIT_ASSERT_EQ(test, b - 1, pool_pcp_count(pool));
	spanalloc_pool_give(pool, &page, 1);
	flush_delayed_work(&pool->zero_work);
	KUNIT_EXPECT_EQ(test, 2 * b, pool_frames_of(pool));
	KUNIT_EXPECT_EQ(test, pooled + 2 * b,
			stat_read(&spanalloc_stats.pool_frames));

	freed = stat_read(&spanalloc_stats.frames_freed);
	KUNIT_EXPECT_EQ(test, 2 * b, pool_drain(pool, NUMA_NO_NODE, ULONG_MAX));
	KUNIT_EXPECT_EQ(test, 0UL, pool_pcp_count(pool));
	KUNIT_EXPECT_EQ(test, 0UL, pool_frames_of(pool));
	KUNIT_EXPECT_EQ(test, freed + 2 * b,
			stat_read(&spanalloc_stats.frames_freed));
	KUNIT_EXPECT_EQ(test, pooled,
			stat_read(&spanalloc_stats.pool_frames));
	KUNIT_EXPECT_EQ(test, clean,
			stat_read(&spanalloc_stats.pool_clean));

	/* The last reference gives back the cached frames too. */
	pool_prime(test, pool, 2 * b);
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, &page, 1, &done));
	KUNIT_ASSERT_EQ(test, b - 1, pool_pcp_count(pool));
	spanalloc_pool_give(pool, &page, 1);
	spanalloc_pool_put(pool);
	KUNIT_EXPECT_EQ(test, pooled,
			stat_read(&spanalloc_stats.pool_frames));
	KUNIT_EXPECT_EQ(test, clean,
			stat_read(&spanalloc_stats.pool_clean));
}

/* The shrinker's count over every node with memory. */
static unsigned long shrink_count_all(struct shrink_control *sc)
{
	unsigned long sum = 0, n;
	int nid;

	for_each_node_state(nid, N_MEMORY) {
		sc->nid = nid;
		n = spanalloc_shrink_count(NULL, sc);
		if (n != SHRINK_EMPTY)
			sum += n;
	}
	return sum;
}

/* The shrinker's scan, node by node, until @nr frames are freed. */
static unsigned long shrink_scan_all(struct shrink_control *sc,
				     unsigned long nr)
{
	unsigned long freed = 0, n;
	int nid;

	for_each_node_state(nid, N_MEMORY) {
		if (freed >= nr)
			break;
		sc->nid = nid;
		sc->nr_to_scan = nr - freed;
		n = spanalloc_shrink_scan(NULL, sc);
		if (n != SHRINK_STOP)
			freed += n;
	}
	return freed;
}

/*
 * The shrinker counts and frees cached frames, after the shared ones. It
 * counts the pool's own frames: a kthread's pool is the root cgroup's, on
 * the lists without a cgroup, as sc->memcg NULL asks.
 */
static void pool_shrinker_includes_pcp(struct kunit *test)
{
	const unsigned long b = SPANALLOC_PCP_BATCH;
	unsigned long pooled = stat_read(&spanalloc_stats.pool_frames);
	struct spanalloc_pool *pool = spanalloc_pool_get();
	struct shrink_control sc = { .gfp_mask = GFP_KERNEL };
	struct page *page;
	unsigned long done;

	KUNIT_ASSERT_NOT_NULL(test, pool);
	pool_prime(test, pool, 2 * b);
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, &page, 1, &done));
	spanalloc_pool_give(pool, &page, 1);
	flush_delayed_work(&pool->zero_work);
	KUNIT_ASSERT_EQ(test, b + 1, pool->nr_clean);
	KUNIT_ASSERT_EQ(test, b - 1, pool_pcp_count(pool));

	KUNIT_EXPECT_EQ(test, 2 * b, shrink_count_all(&sc));
	/* Ten more than the shared list holds: ten come from the caches. */
	KUNIT_EXPECT_EQ(test, b + 11, shrink_scan_all(&sc, b + 11));
	KUNIT_EXPECT_EQ(test, 0UL, pool->nr_clean);
	KUNIT_EXPECT_EQ(test, b - 11, pool_pcp_count(pool));
	KUNIT_EXPECT_EQ(test, b - 11, shrink_scan_all(&sc, b));
	KUNIT_EXPECT_EQ(test, 0UL, pool_frames_of(pool));
	KUNIT_EXPECT_EQ(test, 0UL, shrink_count_all(&sc));
	KUNIT_EXPECT_EQ(test, pooled,
			stat_read(&spanalloc_stats.pool_frames));
	spanalloc_pool_put(pool);
}

/*
 * Every pool has a marker on pool_lru for its node, and an empty pool is
 * counted 0, never SHRINK_EMPTY (that would clear its cgroup's bit); a
 * cgroup without pools is SHRINK_EMPTY.
 */
static void pool_marker_on_each_node(struct kunit *test)
{
	struct spanalloc_pool *pool = spanalloc_pool_get();
	struct shrink_control sc = { .gfp_mask = GFP_KERNEL };
	int nid;

	KUNIT_ASSERT_NOT_NULL(test, pool);
	for_each_node_state(nid, N_MEMORY) {
		KUNIT_EXPECT_NOT_NULL(test, pool->nodes[nid].marker);
		sc.nid = nid;
		KUNIT_EXPECT_EQ(test, 0UL, spanalloc_shrink_count(NULL, &sc));
	}
	spanalloc_pool_put(pool);
	sc.nid = first_memory_node;
	KUNIT_EXPECT_EQ(test, SHRINK_EMPTY, spanalloc_shrink_count(NULL, &sc));
}

/* Cached frames count against pool_max_frames; a give trims them too. */
static void pool_watermark_counts_pcp(struct kunit *test)
{
	const unsigned long b = SPANALLOC_PCP_BATCH;
	unsigned long old = spanalloc_pool_max_frames, done, got = 0;
	struct spanalloc_pool *pool = spanalloc_pool_get();
	struct page *page, *fresh[4];

	KUNIT_ASSERT_NOT_NULL(test, pool);
	pool_prime(test, pool, 2 * b);
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, &page, 1, &done));
	KUNIT_ASSERT_EQ(test, b - 1, pool_pcp_count(pool));
	KUNIT_ASSERT_EQ(test, 2 * b - 1, pool_frames_of(pool));

	/* Room for one: kept, and nothing else moves. */
	spanalloc_pool_max_frames = 2 * b;
	spanalloc_pool_give(pool, &page, 1);
	flush_delayed_work(&pool->zero_work);
	KUNIT_EXPECT_EQ(test, 2 * b, pool_frames_of(pool));
	KUNIT_EXPECT_EQ(test, b - 1, pool_pcp_count(pool));

	/* The watermark falls below the shared frames: caches are trimmed. */
	spanalloc_pool_max_frames = b / 2;
	KUNIT_ASSERT_EQ(test, 0, pool_take_buddy(fresh, 4, &got));
	spanalloc_pool_give(pool, fresh, 4);
	KUNIT_EXPECT_EQ(test, b / 2, pool_frames_of(pool));
	KUNIT_EXPECT_EQ(test, b / 2, pool_pcp_count(pool));
	KUNIT_EXPECT_EQ(test, 0UL, pool->nr_clean + pool->nr_dirty);
	spanalloc_pool_max_frames = old;
	spanalloc_pool_put(pool);
}

/* A dead CPU's cache moves to the shared clean list, every frame kept. */
static void pool_cpu_dead_moves_cache(struct kunit *test)
{
	const unsigned long b = SPANALLOC_PCP_BATCH;
	unsigned long pooled = stat_read(&spanalloc_stats.pool_frames);
	struct spanalloc_pool *pool = spanalloc_pool_get();
	unsigned long done;
	struct page *page;
	int cpu;

	KUNIT_ASSERT_NOT_NULL(test, pool);
	pool_prime(test, pool, 2 * b);
	migrate_disable();
	cpu = smp_processor_id();
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, &page, 1, &done));
	KUNIT_EXPECT_EQ(test, b - 1, per_cpu_ptr(pool->pcp, cpu)->nr);
	migrate_enable();
	spanalloc_pool_give(pool, &page, 1);
	flush_delayed_work(&pool->zero_work);

	/* As the hotplug core calls it once @cpu is offline. */
	KUNIT_EXPECT_EQ(test, 0, pool_cpu_dead(cpu));
	KUNIT_EXPECT_EQ(test, 0UL, per_cpu_ptr(pool->pcp, cpu)->nr);
	KUNIT_EXPECT_EQ(test, 2 * b, pool->nr_clean);
	KUNIT_EXPECT_EQ(test, pooled + 2 * b,
			stat_read(&spanalloc_stats.pool_frames));
	spanalloc_pool_put(pool);
}

static struct kunit_case spanalloc_range_cases[] = {
	KUNIT_CASE(range_one_run),
	KUNIT_CASE(range_best_fit),
	KUNIT_CASE(range_coalesces),
	KUNIT_CASE(range_clone),
	KUNIT_CASE(range_take_exact),
	KUNIT_CASE(range_random_against_model),
	{}
};

static struct kunit_suite spanalloc_range_suite = {
	.name = "spanalloc_range",
	.test_cases = spanalloc_range_cases,
};

static struct kunit_case spanalloc_pool_cases[] = {
	KUNIT_CASE(pool_hands_out_zeroed_frames),
	KUNIT_CASE(pool_keeps_no_shared_frame),
	KUNIT_CASE(pool_respects_watermark),
	KUNIT_CASE(pool_pcp_serves_small_takes),
	KUNIT_CASE(pool_large_take_uses_cache_before_buddy),
	KUNIT_CASE(pool_drain_empties_pcp),
	KUNIT_CASE(pool_shrinker_includes_pcp),
	KUNIT_CASE(pool_marker_on_each_node),
	KUNIT_CASE(pool_watermark_counts_pcp),
	KUNIT_CASE(pool_cpu_dead_moves_cache),
	{}
};

/* This module's copy of pool.c has its own shrinker and marker list. */
static int pool_suite_init(struct kunit_suite *suite)
{
	return spanalloc_pool_init();
}

static void pool_suite_exit(struct kunit_suite *suite)
{
	spanalloc_pool_exit();
}

static struct kunit_suite spanalloc_pool_suite = {
	.name = "spanalloc_pool",
	.suite_init = pool_suite_init,
	.suite_exit = pool_suite_exit,
	.test_cases = spanalloc_pool_cases,
};

kunit_test_suites(&spanalloc_range_suite, &spanalloc_pool_suite);

MODULE_DESCRIPTION("KUnit tests of spanalloc's range allocator and frame pool");
MODULE_LICENSE("GPL");
