// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc KUnit suites: the range allocator and the frame pool, tested
 * inside the kernel. Built as spanalloc_kunit.ko when the target kernel has
 * KUnit (the debug kernel); scripts/run-selftests loads it and collects the
 * KTAP results. The code under test is compiled into this module as is.
 */
#include <kunit/test.h>
#include <linux/random.h>

#include "range.c"
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
	KUNIT_EXPECT_EQ(test, 16UL, pool->nr_clean + pool->nr_dirty);
	/* The worker zeroes them all; taken again, they are clean. */
	flush_delayed_work(&pool->zero_work);
	KUNIT_EXPECT_EQ(test, 16UL, pool->nr_clean);
	KUNIT_ASSERT_EQ(test, 0, spanalloc_pool_take(pool, pages, 16, &done));
	KUNIT_EXPECT_EQ(test, 0UL, pool->nr_clean + pool->nr_dirty);
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
	KUNIT_EXPECT_EQ(test, 3UL, pool->nr_clean + pool->nr_dirty);
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
	KUNIT_EXPECT_EQ(test, 8UL, pool->nr_clean + pool->nr_dirty);
	spanalloc_pool_max_frames = old;
	spanalloc_pool_put(pool);
}

static struct kunit_case spanalloc_range_cases[] = {
	KUNIT_CASE(range_one_run),
	KUNIT_CASE(range_best_fit),
	KUNIT_CASE(range_coalesces),
	KUNIT_CASE(range_clone),
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
	{}
};

static struct kunit_suite spanalloc_pool_suite = {
	.name = "spanalloc_pool",
	.test_cases = spanalloc_pool_cases,
};

kunit_test_suites(&spanalloc_range_suite, &spanalloc_pool_suite);

MODULE_DESCRIPTION("KUnit tests of spanalloc's range allocator and frame pool");
MODULE_LICENSE("GPL");
