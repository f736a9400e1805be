// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_pageheap: libspanalloc's page heap and where its pages come from,
 * on the backend the environment picks (SPANALLOC_BACKEND): many live
 * large blocks churning without a backend call per step (review H1).
 * Links libspanalloc.a and calls the span_ names.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spanalloc.h"
#include "kselftest_harness.h"

/* A hang guard for the debug kernel under emulation, not a time limit. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

#define KIB	((size_t)1 << 10)
#define MIB	((size_t)1 << 20)

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* 33 KiB .. 1 MiB: an octave at random, then uniform in it. */
static size_t large_size(uint64_t *r)
{
	size_t lo = (33 * KIB) << (rnd(r) % 5), n = lo + rnd(r) % lo;

	return n < MIB ? n : MIB;
}

/*
 * 64 and then 256 live blocks, each step freeing one at random and
 * allocating another: the freed blocks are holes between live ones. Once
 * the page heap has the pages, a step must not cost a backend call (the
 * review measured 0.8 per step with more than 16 holes).
 */
TEST(large_churn_many_live)
{
	static const int live[] = { 64, 256 };
	enum { WARM = 1000, STEPS = 3000 };
	uint64_t r = 42, calls;
	struct span_stats a, b;
	char *slot[256] = { 0 };
	unsigned int l;
	int i;

	for (l = 0; l < 2; l++) {
		for (i = 0; i < WARM + STEPS; i++) {
			int k = (int)(rnd(&r) % (uint64_t)live[l]);
			size_t n = large_size(&r);

			if (i == WARM)
				span_stats(&a);
			span_free(slot[k]);
			slot[k] = span_malloc(n);
			ASSERT_NE(NULL, slot[k]);
			slot[k][0] = slot[k][n - 1] = 1;
		}
		span_stats(&b);
		calls = b.backend_calls - a.backend_calls;
		TH_LOG("%d live: %llu backend calls in %d steps, %llu KiB cached",
		       live[l], (unsigned long long)calls, STEPS,
		       (unsigned long long)b.large_cached_bytes >> 10);
		/*
		 * mmap: runs split and merge, nearly every step is a hit;
		 * kernel: a run is a whole span, trimmed or grown in place
		 * by one SPAN_RESIZE at times.
		 */
		EXPECT_LT(calls, strcmp(b.backend, "mmap") ? STEPS / 4 : STEPS / 50);
		for (i = 0; i < live[l]; i++) {
			span_free(slot[i]);
			slot[i] = NULL;
		}
	}
}

TEST_HARNESS_MAIN
