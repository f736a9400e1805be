// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_units: libspanalloc's components one by one, through their
 * internal (_span_) interfaces: the size-class table and its lookup, the
 * divisibility and index constants free() relies on, the page map, the
 * page heap's runs and regions, the thread cache's bins, the options
 * (ignored in a setuid program), and the generated header against the
 * runtime table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "kselftest_harness.h"

/*
 * The harness gives a test 30 s; a debug kernel (KASAN, lockdep) in
 * software emulation needs more. A hang guard, not a time limit.
 */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

static void init(void)
{
	span_free(span_malloc(1));	/* runs the process-wide init */
}

TEST(class_table)
{
	static const uint32_t table[SPAN_NUM_CLASSES][2] =
		SPANALLOC_CLASS_TABLE_INIT;
	unsigned int cls;

	init();
	ASSERT_LT(SPAN_NUM_CLASSES, 256);
	EXPECT_EQ(SPAN_SMALL_MAX, _span_classes[SPAN_NUM_CLASSES - 1].size);
	EXPECT_EQ(8, _span_classes[1].size);
	for (cls = 1; cls < SPAN_NUM_CLASSES; cls++) {
		const struct span_class *c = &_span_classes[cls];
		uint32_t span = c->pages * SPANALLOC_CLASS_PAGE_SIZE;
		uint32_t prev = _span_classes[cls - 1].size;

		EXPECT_EQ(table[cls][0], c->size);
		EXPECT_EQ(table[cls][1], c->pages);
		EXPECT_LT(prev, c->size);
		/* 16-byte alignment above the 8-byte class. */
		if (c->size > 8)
			EXPECT_EQ(0, c->size % 16) TH_LOG("class %u", cls);
		/* Tail waste <= 12.5%, internal waste <= 12.5% above 128. */
		EXPECT_LE((uint64_t)(span % c->size) * 8, span)
			TH_LOG("class %u tail", cls);
		if (c->size > 128)
			EXPECT_LE((uint64_t)(c->size - prev - 1) * 8, c->size)
				TH_LOG("class %u waste", cls);
		EXPECT_EQ(span / c->size, c->nobjs);
		EXPECT_LE(2, c->batch);
		EXPECT_LE(c->batch, c->cap);
	}
}

/* Every size maps to the smallest class that holds it. */
TEST(class_lookup)
{
	size_t size;

	init();
	for (size = 0; size <= SPAN_SMALL_MAX; size++) {
		unsigned int cls = span_class_of(size);

		ASSERT_LT(0, cls) TH_LOG("size %zu", size);
		ASSERT_LE(size, _span_classes[cls].size) TH_LOG("size %zu", size);
		/* Every object holds the link and the double-free mark. */
		ASSERT_LE(SPAN_MIN_OBJECT, _span_classes[cls].size);
		if (_span_classes[cls].size > SPAN_MIN_OBJECT)
			ASSERT_LT(_span_classes[cls - 1].size, size)
				TH_LOG("size %zu not in smallest class", size);
	}
	EXPECT_LE(span_class_index(SPAN_SMALL_MAX), SPAN_CLASS_INDEX_MAX);
}

/*
 * free()'s object check (interior pointers and the span's tail after the
 * last object) and central's object index, exact per class.
 */
TEST(class_magic)
{
	unsigned int cls;

	init();
	for (cls = 1; cls < SPAN_NUM_CLASSES; cls++) {
		const struct span_class *c = &_span_classes[cls];
		uint64_t off, span = (uint64_t)c->pages * SPAN_PAGE;
		struct span s = {
			.base = 1UL << 30, .magic = c->magic, .limit = c->limit,
			.cls = cls,
		};

		for (off = 0; off < span; off++) {
			bool obj = span_is_object(&s, s.base + off);

			ASSERT_EQ(off % c->size == 0 && off / c->size < c->nobjs,
				  obj)
				TH_LOG("class %u off %llu", cls,
				       (unsigned long long)off);
			ASSERT_EQ(off / c->size, (off * c->divmul) >> 32)
				TH_LOG("class %u off %llu", cls,
				       (unsigned long long)off);
		}
	}
}

TEST(class_aligned)
{
	size_t align, size;

	init();
	for (align = 8; align <= SPAN_PAGE; align <<= 1)
		for (size = 1; size <= SPAN_SMALL_MAX; size = size * 3 + 1) {
			unsigned int cls = _span_class_aligned(size, align);

			ASSERT_LT(0, cls);
			EXPECT_LE(size, _span_classes[cls].size);
			EXPECT_EQ(0, _span_classes[cls].size % align);
		}
	EXPECT_EQ(0, _span_class_aligned(SPAN_SMALL_MAX + 1, 16));
	EXPECT_EQ(0, _span_class_aligned(16, 2 * SPAN_PAGE));
}

/* 4 GiB of address space reserved: no live span can be in it. */
static char *reserve_4g(void)
{
	char *mem = mmap(NULL, 4UL << 30, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return mem == MAP_FAILED ? NULL : mem;
}

TEST(pagemap)
{
	static struct span a, b;
	uintptr_t base;
	char *mem;

	init();
	mem = reserve_4g();
	ASSERT_NE(NULL, mem);
	/* Straddle a 1 GiB leaf boundary. */
	base = (((uintptr_t)mem + (1UL << 30)) & ~((1UL << 30) - 1)) -
	       3 * SPAN_PAGE;
	EXPECT_EQ(NULL, span_pagemap_get(base));
	ASSERT_EQ(0, _span_pagemap_set(base, 6, &a));
	EXPECT_EQ(NULL, span_pagemap_get(base - 1));
	EXPECT_EQ(&a, span_pagemap_get(base));
	EXPECT_EQ(&a, span_pagemap_get(base + 3 * SPAN_PAGE));
	EXPECT_EQ(&a, span_pagemap_get(base + 6 * SPAN_PAGE - 1));
	EXPECT_EQ(NULL, span_pagemap_get(base + 6 * SPAN_PAGE));
	ASSERT_EQ(0, _span_pagemap_set(base + 6 * SPAN_PAGE, 1, &b));
	EXPECT_EQ(&b, span_pagemap_get(base + 6 * SPAN_PAGE + 100));
	ASSERT_EQ(0, _span_pagemap_set(base, 7, NULL));
	EXPECT_EQ(NULL, span_pagemap_get(base + 3 * SPAN_PAGE));
	EXPECT_EQ(NULL, span_pagemap_get(base + 6 * SPAN_PAGE));
	/* Outside the 47-bit user range: never found, never stored. */
	EXPECT_EQ(NULL, span_pagemap_get(1ULL << 47));
	EXPECT_EQ(NULL, span_pagemap_get(UINTPTR_MAX));
	EXPECT_NE(0, _span_pagemap_set(1ULL << 47, 1, &a));
	munmap(mem, 4UL << 30);
}

/*
 * free()'s lookup: a page of a leaf with no span gives the record that
 * admits no object (so a wild pointer fails the object test, not a NULL
 * test); no leaf, or outside the user range: nothing.
 */
TEST(pagemap_find_none)
{
	static struct span a;
	struct span *s = NULL;
	uintptr_t base;
	char *mem;

	init();
	mem = reserve_4g();
	ASSERT_NE(NULL, mem);
	base = ((uintptr_t)mem + (1UL << 30)) & ~((1UL << 30) - 1);
	EXPECT_FALSE(span_pagemap_find(base + (1UL << 30), &s));
	ASSERT_EQ(0, _span_pagemap_set(base, 1, &a));
	ASSERT_TRUE(span_pagemap_find(base, &s));
	EXPECT_EQ(&a, s);
	ASSERT_TRUE(span_pagemap_find(base + SPAN_PAGE, &s));
	EXPECT_EQ(&_span_pm.none, s);
	EXPECT_FALSE(span_is_object(s, base + SPAN_PAGE));
	EXPECT_FALSE(span_is_object(s, 0));
	EXPECT_EQ(NULL, span_pagemap_get(base + SPAN_PAGE));
	/* The last page of the leaf: indexed without a mask. */
	ASSERT_EQ(0, _span_pagemap_set(base + (1UL << 30) - SPAN_PAGE, 1, &a));
	EXPECT_EQ(&a, span_pagemap_get(base + (1UL << 30) - 1));
	EXPECT_EQ(NULL, span_pagemap_get(base + (1UL << 30) - SPAN_PAGE - 1));
	ASSERT_EQ(0, _span_pagemap_set(base, 1, NULL));
	ASSERT_EQ(0, _span_pagemap_set(base + (1UL << 30) - SPAN_PAGE, 1, NULL));
	EXPECT_EQ(NULL, span_pagemap_get(base));
	EXPECT_FALSE(span_pagemap_find(1ULL << 47, &s));
	EXPECT_FALSE(span_pagemap_find(UINTPTR_MAX, &s));
	munmap(mem, 4UL << 30);
}

/* Live objects map to their span; the record is not in user memory. */
TEST(pagemap_live_objects)
{
	void *small = span_malloc(100), *large = span_malloc(1 << 20);
	struct span *s;

	ASSERT_NE(NULL, small);
	ASSERT_NE(NULL, large);
	s = span_pagemap_get((uintptr_t)small);
	ASSERT_NE(NULL, s);
	EXPECT_EQ(span_class_of(100), s->cls);
	EXPECT_EQ((char *)&_span_tc.bins[s->cls], span_tp() + s->bin);
	EXPECT_LE(s->base, (uintptr_t)small);
	EXPECT_GT(s->base + s->pages * SPAN_PAGE, (uintptr_t)small);
	EXPECT_TRUE((uintptr_t)s < s->base ||
		    (uintptr_t)s >= s->base + s->pages * SPAN_PAGE);
	s = span_pagemap_get((uintptr_t)large);
	ASSERT_NE(NULL, s);
	EXPECT_EQ(0, s->cls);
	EXPECT_EQ((uintptr_t)large, s->user);
	EXPECT_EQ(SPAN_STATE_LARGE, s->state);
	span_free(large);
	/* Freed: nothing, or a free run of the page heap starting there. */
	s = span_pagemap_get((uintptr_t)large);
	if (s) {
		EXPECT_EQ(SPAN_STATE_CACHED, s->state);
		EXPECT_EQ((uintptr_t)large, s->base);
		EXPECT_EQ(0, s->user);
	}
	span_free(small);
}

/*
 * A span record is reused: once a small span's pages go back to the page
 * heap, the record (or its memory) may describe a large block next, and
 * free()'s fast path must not take that block for a small object. A stale
 * limit did (a large block went into a thread cache bin, and a later
 * drain aborted with "double free" under load).
 */
TEST(reused_record_is_no_small_span)
{
	unsigned int cls = span_class_of(SPAN_SMALL_MAX);
	const struct span_class *sc = &_span_classes[cls];
	struct span *v[3], *s;
	struct span_list l;
	void *p;
	int i;

	init();
	/* A large block the size of one such span. */
	ASSERT_LT(SPAN_SMALL_MAX, sc->pages * SPAN_PAGE);
	for (i = 0; i < 3; i++) {
		v[i] = _span_span_new(sc->pages, cls, NULL);
		ASSERT_NE(NULL, v[i]);
		v[i]->limit = sc->limit;	/* as central does */
		v[i]->state = SPAN_STATE_EMPTY;
		v[i]->stamp_ms = 0;
	}
	/* The middle one goes: between live spans, its run stays as is. */
	memset(&l, 0, sizeof(l));
	_span_list_push(&l, v[1]);
	_span_span_release_list(&l);
	p = span_malloc(sc->pages * SPAN_PAGE);
	ASSERT_NE(NULL, p);
	s = span_pagemap_get((uintptr_t)p);
	ASSERT_NE(NULL, s);
	EXPECT_EQ(0, s->cls);
	EXPECT_FALSE(span_is_object(s, (uintptr_t)p));
	span_free(p);
	memset(&l, 0, sizeof(l));
	_span_list_push(&l, v[0]);
	_span_list_push(&l, v[2]);
	_span_span_release_list(&l);
}

/*
 * Is a large span of @bytes anonymous memory (its free pages go back in
 * any part), not of a kernel region (only as a whole region or its tail)?
 */
static bool large_is_anon(size_t bytes)
{
	return strcmp(span_backend(), "kernel") ||
	       (_span_opt.lazy_bytes && bytes >= _span_opt.lazy_bytes);
}

/*
 * The large page heap: a freed span is one free run mapped at its first
 * and last pages; a smaller request takes the run's front and the rest
 * stays a run, and freeing it merges them back into one (in anonymous
 * memory and in kernel regions alike).
 */
TEST(pageheap_runs)
{
	struct span_stats st;
	struct span *r, *s;
	char *big, *a;

	init();
	span_trim();
	big = span_malloc(4 << 20);
	ASSERT_NE(NULL, big);
	span_free(big);
	span_stats(&st);
	EXPECT_EQ(1, st.large_cached);
	EXPECT_EQ(4 << 20, st.large_cached_bytes);
	r = span_pagemap_get((uintptr_t)big);
	ASSERT_NE(NULL, r);
	EXPECT_EQ(SPAN_STATE_CACHED, r->state);
	EXPECT_EQ(r, span_pagemap_get((uintptr_t)big + (4 << 20) - 1));
	EXPECT_EQ(NULL, span_pagemap_get((uintptr_t)big + (1 << 20)));

	a = span_malloc(1 << 20);
	ASSERT_NE(NULL, a);
	span_stats(&st);
	EXPECT_EQ(big, a);
	EXPECT_EQ(1, st.large_cached);
	EXPECT_EQ(3 << 20, st.large_cached_bytes);
	r = span_pagemap_get((uintptr_t)big + (1 << 20));
	ASSERT_NE(NULL, r);
	EXPECT_EQ(SPAN_STATE_CACHED, r->state);
	EXPECT_EQ((uintptr_t)big + (1 << 20), r->base);
	s = span_pagemap_get((uintptr_t)a);
	ASSERT_NE(NULL, s);
	EXPECT_EQ(SPAN_STATE_LARGE, s->state);
	span_free(a);
	span_stats(&st);
	EXPECT_EQ(1, st.large_cached);		/* merged */
	EXPECT_EQ(4 << 20, st.large_cached_bytes);
	r = span_pagemap_get((uintptr_t)big);
	ASSERT_NE(NULL, r);
	EXPECT_EQ((uintptr_t)big, r->base);
	EXPECT_EQ(1024, r->pages);
	EXPECT_EQ(NULL, span_pagemap_get((uintptr_t)big + (1 << 20)));
	span_trim();
	span_stats(&st);
	EXPECT_EQ(0, st.large_cached);
	EXPECT_EQ(NULL, span_pagemap_get((uintptr_t)big));
}

/*
 * Over the byte bound, the oldest run goes back: in anonymous memory only
 * the excess, from its tail (the head stays mapped and reusable), in a
 * kernel region the whole run (here the whole region).
 */
TEST(pageheap_bound)
{
	size_t saved = _span_opt.large_cache_bytes;
	bool split;
	struct span_stats st;
	struct span *r;
	char *big;

	init();
	split = large_is_anon(4 << 20);
	span_trim();
	_span_opt.large_cache_bytes = 1 << 20;
	big = span_malloc(4 << 20);
	ASSERT_NE(NULL, big);
	span_free(big);
	span_stats(&st);
	if (split) {
		EXPECT_EQ(1, st.large_cached);
		EXPECT_EQ(1 << 20, st.large_cached_bytes);
		r = span_pagemap_get((uintptr_t)big);
		ASSERT_NE(NULL, r);
		EXPECT_EQ(256, r->pages);
		EXPECT_EQ(r, span_pagemap_get((uintptr_t)big + (1 << 20) - 1));
		EXPECT_EQ(NULL, span_pagemap_get((uintptr_t)big + (4 << 20) - 1));
	} else {
		EXPECT_EQ(0, st.large_cached);
	}
	_span_opt.large_cache_bytes = saved;
	span_trim();
}

/*
 * While the kernel refuses spans (a memory cgroup's limit, say), the page
 * heap keeps no free run: a freed large span goes back at once. Once the
 * refusal is older than the decay interval, it keeps runs again.
 * (selftests/memcg_pressure: unkillable workers that kept their freed
 * pages at the limit could not make progress there.)
 */
TEST(refusing_kernel_keeps_no_runs)
{
	uint64_t decay = _span_opt.decay_ms;
	size_t bound = _span_opt.large_cache_bytes;
	struct span_stats st;
	char *big, *mid;

	init();
	span_trim();
	_span_opt.large_cache_bytes = 64 << 20;	/* whatever the environment */
	/*
	 * 1 MiB: a kernel region on the kernel backend (under lazy_bytes),
	 * freed; the next anonymous region reuses its metadata (it used to
	 * inherit the kernel flag and stay as one 64 MiB "kernel" run).
	 */
	mid = span_malloc(1 << 20);
	ASSERT_NE(NULL, mid);
	memset(mid, 1, 1 << 20);
	_span_opt.decay_ms = 3600 * 1000;	/* the refusal lasts the test */
	_span_kernel_refused();
	ASSERT_TRUE(_span_kernel_refusing());
	span_free(mid);
	big = span_malloc(4 << 20);		/* anonymous on both backends */
	ASSERT_NE(NULL, big);
	memset(big, 1, 4 << 20);
	span_free(big);
	span_stats(&st);
	EXPECT_EQ(0, st.large_cached_bytes) TH_LOG("the page heap kept a run");
	EXPECT_EQ(0, st.large_cached);

	_span_opt.decay_ms = decay;
	usleep((decay + 20) * 1000);		/* the refusal is over */
	ASSERT_FALSE(_span_kernel_refusing());
	big = span_malloc(4 << 20);
	ASSERT_NE(NULL, big);
	memset(big, 1, 4 << 20);
	span_free(big);
	span_stats(&st);
	EXPECT_LE(4 << 20, st.large_cached_bytes);
	span_trim();
	_span_opt.large_cache_bytes = bound;
}

/*
 * Kernel regions: large blocks are cut from one large span of the module
 * without a system call each; a free run between live blocks stays
 * (pinned: the module frees only whole spans and tails), a run at the
 * region's end goes back by shortening the region, and a region that is
 * all free goes back whole. calloc of pages that were dirty is zeroed.
 */
TEST(pageheap_kernel_regions)
{
	const size_t K256 = 256 << 10;
	struct span_stats st0, st;
	char *a, *b, *c, *z;
	struct span *r;
	size_t i, held;

	init();
	if (strcmp(span_backend(), "kernel"))
		SKIP(return, "kernel regions are the kernel backend's (backend %s)",
		     span_backend());
	span_trim();
	span_stats(&st0);
	a = span_malloc(K256);
	span_stats(&st);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(st0.kernel_regions + 1, st.kernel_regions);
	b = span_malloc(K256);
	c = span_malloc(K256);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, c);
	span_stats(&st0);
	EXPECT_EQ(st.backend_calls, st0.backend_calls);	/* no system call */
	EXPECT_EQ(st.kernel_regions, st0.kernel_regions);
	EXPECT_EQ(a + K256, b);
	EXPECT_EQ(b + K256, c);

	memset(b, 0xaa, K256);
	span_free(b);
	span_trim();
	r = span_pagemap_get((uintptr_t)b);
	ASSERT_NE(NULL, r);		/* pinned between a and c: kept */
	EXPECT_EQ(SPAN_STATE_CACHED, r->state);
	EXPECT_EQ(1, r->pinned);
	EXPECT_EQ(K256 >> SPAN_PAGE_SHIFT, r->pages);
	z = span_calloc(1, K256);	/* reuses b's dirty pages */
	ASSERT_EQ(b, z);
	for (i = 0; i < K256; i++)
		if (z[i])
			break;
	EXPECT_EQ(K256, i);
	span_free(z);

	r = span_pagemap_get((uintptr_t)a);
	ASSERT_NE(NULL, r);
	held = r->region->pages * SPAN_PAGE;
	EXPECT_LE(3 * K256, held);
	span_stats(&st0);
	span_free(c);			/* b + c + the rest: the tail */
	span_trim();
	span_stats(&st);
	EXPECT_EQ(st0.kernel_regions, st.kernel_regions);
	EXPECT_EQ(st0.kernel_region_bytes - (held - K256),
		  st.kernel_region_bytes);
	/* A shortened region is no span given back (review L10). */
	EXPECT_EQ(st0.backend_frees, st.backend_frees);
	EXPECT_EQ(NULL, span_pagemap_get((uintptr_t)b));
	r = span_pagemap_get((uintptr_t)a);
	ASSERT_NE(NULL, r);
	EXPECT_EQ(SPAN_STATE_LARGE, r->state);
	EXPECT_EQ((uintptr_t)a, r->region->base);
	EXPECT_EQ(K256 >> SPAN_PAGE_SHIFT, r->region->pages);

	span_free(a);			/* the whole region */
	span_trim();
	span_stats(&st0);
	EXPECT_EQ(st.kernel_regions - 1, st0.kernel_regions);
	EXPECT_EQ(st.kernel_region_bytes - K256, st0.kernel_region_bytes);
	EXPECT_EQ(st.backend_frees + 1, st0.backend_frees);
	EXPECT_LE(st0.backend_frees, st0.backend_allocs);
	EXPECT_EQ(NULL, span_pagemap_get((uintptr_t)a));
}

/*
 * realloc of a large block grows and shrinks in place within its kernel
 * region while a fork() child shares the heap's frames, without a system
 * call (review L7: a block that was a kernel span of its own was resized
 * with SPAN_RESIZE, which the module refuses with EBUSY while a relative
 * shares the span, so every realloc paid a failing ioctl and copied).
 */
TEST(realloc_in_place_after_fork)
{
	const size_t K256 = 256 << 10;
	struct span_stats st0, st;
	char *a, *r, c;
	int p[2], status;
	pid_t pid;

	init();
	if (strcmp(span_backend(), "kernel"))
		SKIP(return, "a kernel backend test (backend %s)", span_backend());
	a = span_malloc(K256);
	ASSERT_NE(NULL, a);
	memset(a, 7, K256);
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(p[1]);
		_exit(read(p[0], &c, 1) == 0 ? 0 : 1);
	}
	close(p[0]);
	span_stats(&st0);
	r = span_realloc(a, K256 / 4);	/* the tail goes back as a run */
	EXPECT_EQ(a, r);
	r = span_realloc(a, K256);	/* and is taken again */
	EXPECT_EQ(a, r);
	span_stats(&st);
	EXPECT_EQ(st0.backend_calls, st.backend_calls);
	EXPECT_EQ(st0.backend_errors, st.backend_errors);
	EXPECT_EQ(7, r[K256 / 4 - 1]);
	close(p[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	span_free(r);
}

/* Bins: LIFO, counted, bounded by max, refilled by a batch. */
TEST(thread_cache_bins)
{
	unsigned int cls = span_class_of(200);
	struct span_bin *bin;
	void *p, *q;
	uint32_t i;

	init();
	span_trim();	/* empty our bins */
	bin = &_span_tc.bins[cls];
	EXPECT_EQ(0, bin->count);
	p = span_malloc(200);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(_span_classes[cls].batch - 1, bin->count);
	span_free(p);
	EXPECT_EQ(p, bin->head);
	q = span_malloc(193);	/* same class: LIFO gives p back */
	EXPECT_EQ(p, q);
	span_free(q);
	for (i = 0; i < 4 * _span_classes[cls].cap; i++) {
		void *x = span_malloc(200);

		EXPECT_LE(bin->count, _span_tc.max[cls]);
		EXPECT_EQ(_span_tc.max[cls] - bin->count, bin->room);
		span_free(x);
	}
	EXPECT_LE(bin->count, _span_classes[cls].cap);
}

/*
 * A burst of frees fills the class's transfer cache to its capacity (whole
 * batches: 1 MiB of 1 KiB objects, on both backends), and the refills that
 * follow take them back before any span.
 */
TEST(transfer_cache_capacity)
{
	unsigned int cls = span_class_of(1024);
	const struct span_class *sc = &_span_classes[cls];
	uint64_t slots = 1024 * 1024 / ((uint64_t)sc->batch * sc->size);
	enum { N = 4096 };	/* drains more than 64 batches: any cap shows */
	static void *p[N];
	int i;

	init();
	span_trim();	/* empty bins and transfer caches */
	EXPECT_EQ(0, _span_transfer_objects(cls));
	for (i = 0; i < N; i++)
		ASSERT_NE(NULL, p[i] = span_malloc(1024));
	for (i = 0; i < N; i++)
		span_free(p[i]);
	/* at most max stays in the bin: over 3,000 objects were drained */
	ASSERT_LE(_span_tc.max[cls], N / 4);
	EXPECT_EQ(slots * sc->batch, _span_transfer_objects(cls));
	/* the bin holds what it kept; then the refills empty the cache */
	for (i = 0; i < N; i++)
		ASSERT_NE(NULL, p[i] = span_malloc(1024));
	EXPECT_EQ(0, _span_transfer_objects(cls));
	for (i = 0; i < N; i++)
		span_free(p[i]);
}

/*
 * The fast paths reach a bin by its offset from the thread pointer (an
 * %fs-relative operand on x86-64), as the size table and the span record
 * give it: in every thread that is the thread's own bin. (This function
 * mixes the two kinds of access on purpose, which the library does not:
 * a compiler that took them as never aliasing would fail it loudly.)
 */
static void *bin_ref_thread(void *arg)
{
	unsigned int cls = span_class_of(200);
	struct span_bin SPAN_BIN_SEG *ref = span_bin_ref(span_bin_tp(cls));
	struct span_bin *bin = &_span_tc.bins[cls];
	int32_t room = bin->room;
	int *ok = arg;

	ref->room = 12345;
	*ok = bin->room == 12345 &&
	      span_bin_ref(_span_bin_of[span_class_index(200)]) == ref;
	bin->room = 54321;
	*ok = *ok && ref->room == 54321;
	bin->room = room;
	return NULL;
}

TEST(thread_cache_bin_refs)
{
	pthread_t t;
	int ok = 0, ok_thread = 0;

	init();
	bin_ref_thread(&ok);
	EXPECT_TRUE(ok);
	ASSERT_EQ(0, pthread_create(&t, NULL, bin_ref_thread, &ok_thread));
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_TRUE(ok_thread);
}

/* (max - batch) * size over @tc's bins: what they grew past one batch. */
static size_t tc_grown(const struct span_tcache *tc)
{
	size_t sum = 0;
	unsigned int c;

	for (c = 1; c < SPAN_NUM_CLASSES; c++)
		sum += (size_t)(tc->max[c] - (int32_t)_span_classes[c].batch) *
		       _span_classes[c].size;
	return sum;
}

/* Allocate then free @n objects of @size: the bin grows to hold them. */
static void churn_class(size_t size, uint32_t n)
{
	void **v = span_malloc(n * sizeof(*v));
	uint32_t i;

	for (i = 0; i < n; i++)
		v[i] = span_malloc(size);
	for (i = 0; i < n; i++)
		span_free(v[i]);
	span_free(v);
}

static const size_t budget_sizes[] = { 64, 256, 512, 1024, 2048, 4096, 3072 };
static int budget_ok[8];

/*
 * In a thread of its own (a fresh cache): each class in turn caches a
 * whole cap's worth; all the bins together never grow past
 * SPAN_TCACHE_GROWTH, so the later classes take from the first.
 */
static void *budget_thread(void *arg)
{
	struct span_tcache *tc = &_span_tc;
	unsigned int first = span_class_of(budget_sizes[0]), c, k;

	(void)arg;
	for (k = 0; k < sizeof(budget_sizes) / sizeof(budget_sizes[0]); k++) {
		c = span_class_of(budget_sizes[k]);
		/* a batch per refill: cap / batch rounds reach the cap */
		churn_class(budget_sizes[k], _span_classes[c].cap);
		budget_ok[k] = tc->max[c] == (int32_t)_span_classes[c].cap &&
			       tc->bins[c].count <= tc->max[c] &&
			       tc->grown == tc_grown(tc) &&
			       tc->grown <= SPAN_TCACHE_GROWTH;
	}
	/* the first class gave up some of its max, and its bin followed */
	budget_ok[7] = tc->max[first] < (int32_t)_span_classes[first].cap &&
		       tc->bins[first].count <= tc->max[first] &&
		       tc->bins[first].room == tc->max[first] - tc->bins[first].count;
	return NULL;
}

/* A thread's bins grow to their classes' caps within one budget. */
TEST(thread_cache_budget)
{
	size_t total = 0;
	pthread_t t;
	unsigned int k;

	init();
	for (k = 0; k < sizeof(budget_sizes) / sizeof(budget_sizes[0]); k++) {
		const struct span_class *sc =
			&_span_classes[span_class_of(budget_sizes[k])];

		total += (size_t)(sc->cap - sc->batch) * sc->size;
	}
	if (total <= SPAN_TCACHE_GROWTH)
		SKIP(return, "%s backend: caps too small to need the budget",
		     span_backend());
	ASSERT_EQ(0, pthread_create(&t, NULL, budget_thread, NULL));
	ASSERT_EQ(0, pthread_join(t, NULL));
	for (k = 0; k < sizeof(budget_sizes) / sizeof(budget_sizes[0]); k++) {
		unsigned long size = budget_sizes[k];

		EXPECT_TRUE(budget_ok[k])
			TH_LOG("%lu-byte objects: max short of the cap, or over the budget",
			       size);
	}
	EXPECT_TRUE(budget_ok[7]) TH_LOG("no class gave up max, or its bin kept more");
}

#define K64	(64 << 10)

/* The state of the large span whose pointer is @p, or -1 if none maps it. */
static int large_state(void *p)
{
	struct span *s = span_pagemap_get((uintptr_t)p);

	return s ? (int)s->state : -1;
}

static int large_exit_ok;

/* A thread that frees large blocks and exits: its cache lets them go. */
static void *large_then_exit(void *arg)
{
	void *v[3];
	int i;

	(void)arg;
	span_free(span_malloc(32));	/* a live thread cache */
	for (i = 0; i < 3; i++)
		v[i] = span_malloc(K64);
	for (i = 0; i < 3; i++)
		span_free(v[i]);
	large_exit_ok = _span_tc.nlarge == 3 &&
			large_state(v[0]) == SPAN_STATE_THREAD;
	return NULL;
}

/*
 * A thread keeps the large spans it freed (up to SPAN_TC_LARGE_SLOTS,
 * SPAN_TC_LARGE_BYTES) and gives one back to a large malloc() that it
 * fits with at most half as many pages again to spare, zeroed for
 * calloc(), without the page heap; trim
 * and thread exit let them go (span_stats() counts them live until then).
 */
TEST(thread_cache_large)
{
	struct span_stats st0, st;
	char *p, *q, *r, *v[12];
	pthread_t t;
	size_t i;
	int kept;

	init();
	span_trim();
	span_free(span_malloc(32));
	ASSERT_EQ(SPAN_TC_LIVE, _span_tc.state);
	ASSERT_EQ(0, _span_tc.nlarge);
	span_stats(&st0);

	p = span_malloc(K64);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(SPAN_STATE_LARGE, large_state(p));
	if (strcmp(span_backend(), "mmap")) {
		/* the kernel backend's spans are never kept by a thread */
		span_free(p);
		EXPECT_NE(SPAN_STATE_THREAD, large_state(p));
		EXPECT_EQ(0, _span_tc.nlarge);
		return;
	}
	memset(p, 0xaa, K64);
	span_stats(&st0);	/* the page heap's runs changed: from here */
	span_free(p);
	EXPECT_EQ(SPAN_STATE_THREAD, large_state(p));
	EXPECT_EQ(1, _span_tc.nlarge);
	span_stats(&st);	/* the page heap has it handed out still */
	EXPECT_EQ(st0.large_live, st.large_live);

	r = span_malloc(32 * 1024 + 1);	/* 9 pages: 16 is too many */
	ASSERT_NE(NULL, r);
	EXPECT_NE(p, r);
	EXPECT_EQ(SPAN_STATE_THREAD, large_state(p));
	q = span_malloc(10 * 4096);	/* 10 + 10 / 2 < 16: still too many */
	ASSERT_NE(NULL, q);
	EXPECT_NE(p, q);
	span_free(q);
	q = span_malloc(11 * 4096);	/* 11 + 11 / 2 >= 16: takes it */
	EXPECT_EQ(p, q);
	span_free(q);
	EXPECT_EQ(SPAN_STATE_THREAD, large_state(p));
	span_stats(&st0);
	q = span_calloc(1, K64 - 4096);	/* 15 pages: takes it, zeroed */
	EXPECT_EQ(p, q);
	EXPECT_EQ(SPAN_STATE_LARGE, large_state(p));
	for (i = 0; i < K64 - 4096; i++)
		if (q[i])
			break;
	EXPECT_EQ(K64 - 4096, i) TH_LOG("calloc from the thread's cache not zeroed");
	span_stats(&st);	/* not from the page heap */
	EXPECT_EQ(st0.large_allocs, st.large_allocs);
	EXPECT_EQ(st0.large_live, st.large_live);
	span_free(q);
	span_free(r);
	span_trim();
	span_stats(&st);
	EXPECT_EQ(st0.large_live - 3, st.large_live) TH_LOG("trim lets them go");
	st0 = st;

	/* 12 x 256 KiB: only the newest fit in SPAN_TC_LARGE_BYTES */
	EXPECT_EQ(0, _span_tc.nlarge);
	EXPECT_NE(SPAN_STATE_THREAD, large_state(p));
	ASSERT_LT(SPAN_TC_LARGE_BYTES / (4 * K64), 12);
	for (i = 0; i < 12; i++)
		v[i] = span_malloc(4 * K64);
	for (i = 0; i < 12; i++)
		span_free(v[i]);
	EXPECT_EQ(SPAN_TC_LARGE_BYTES / (4 * K64), _span_tc.nlarge);
	EXPECT_LE(_span_tc.large_bytes, SPAN_TC_LARGE_BYTES);
	for (kept = 0, i = 0; i < 12; i++)
		kept += large_state(v[i]) == SPAN_STATE_THREAD;
	EXPECT_EQ(SPAN_TC_LARGE_BYTES / (4 * K64), kept);
	EXPECT_EQ(SPAN_STATE_THREAD, large_state(v[11]));
	EXPECT_NE(SPAN_STATE_THREAD, large_state(v[0]));
	span_trim();
	EXPECT_EQ(0, _span_tc.nlarge);

	ASSERT_EQ(0, pthread_create(&t, NULL, large_then_exit, NULL));
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_TRUE(large_exit_ok);
	span_stats(&st);
	EXPECT_EQ(st0.large_live, st.large_live) TH_LOG("an exited thread's spans");
}

static pthread_barrier_t trim_barrier;
static int trim_ok[3];

/*
 * Fills a bin and its cache of large spans, waits while the main thread
 * trims, then checks both are still there (no slow path yet) and gone
 * after its next slow path (a class it never used: a refill).
 */
static void *trim_target(void *arg)
{
	unsigned int cls = span_class_of(200);
	void *v[40], *big;
	int i;

	(void)arg;
	for (i = 0; i < 40; i++)
		v[i] = span_malloc(200);
	for (i = 0; i < 40; i++)
		span_free(v[i]);
	big = span_malloc(K64);
	span_free(big);
	trim_ok[0] = _span_tc.bins[cls].count > 0;
	pthread_barrier_wait(&trim_barrier);	/* main trims */
	pthread_barrier_wait(&trim_barrier);
	trim_ok[1] = _span_tc.bins[cls].count > 0;
	span_free(span_malloc(3000));		/* a refill: the slow path */
	trim_ok[2] = _span_tc.bins[cls].count == 0 && _span_tc.nlarge == 0;
	return NULL;
}

/* malloc_trim() in one thread empties the others' caches too. */
TEST(trim_reaches_other_threads)
{
	pthread_t t;

	init();
	ASSERT_EQ(0, pthread_barrier_init(&trim_barrier, NULL, 2));
	ASSERT_EQ(0, pthread_create(&t, NULL, trim_target, NULL));
	pthread_barrier_wait(&trim_barrier);
	span_trim();
	pthread_barrier_wait(&trim_barrier);
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_TRUE(trim_ok[0]) TH_LOG("the thread cached nothing");
	EXPECT_TRUE(trim_ok[1]) TH_LOG("flushed before its slow path");
	EXPECT_TRUE(trim_ok[2]) TH_LOG("not flushed by its slow path");
	pthread_barrier_destroy(&trim_barrier);
}

#define CHILD_ENV	"MALLOC_UNITS_CHILD"
#define NOBODY		65534

/* Copy file @from to @to with mode @mode; 0 or -1. */
static int copy_file(const char *from, const char *to, mode_t mode)
{
	int in = open(from, O_RDONLY), out;
	char buf[65536];
	ssize_t n;

	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (out < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	close(in);
	close(out);
	return n < 0 ? -1 : 0;
}

/*
 * Run @exe as user and group nobody with SPANALLOC_DECAY_MS=4321: 1 if
 * the library took the setting, 0 if not, -1 if it could not run.
 */
static int decay_as_nobody(const char *exe)
{
	char *envp[] = { CHILD_ENV "=1", "SPANALLOC_DECAY_MS=4321", NULL };
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(126);
		execle(exe, exe, (char *)NULL, envp);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) > 1)
		return -1;
	return WEXITSTATUS(status);
}

/*
 * In a program that runs with privileges its caller lacks (AT_SECURE:
 * here a setuid-root copy of this test run by nobody), the SPANALLOC_
 * variables are ignored (review L12); without the setuid bit the same
 * copy, run the same way, takes them.
 */
TEST(options_ignored_when_secure)
{
	char dir[] = "/tmp/malloc_units.XXXXXX", exe[64];
	struct statvfs vfs;
	int plain, secure;

	if (geteuid())
		SKIP(return, "root needed to make a setuid copy");
	if (!mkdtemp(dir))
		SKIP(return, "mkdtemp: %s", strerror(errno));
	snprintf(exe, sizeof(exe), "%s/copy", dir);
	if (chmod(dir, 0755) || copy_file("/proc/self/exe", exe, 0755) ||
	    statvfs(dir, &vfs) || (vfs.f_flag & ST_NOSUID)) {
		unlink(exe);
		rmdir(dir);
		SKIP(return, "no setuid copy possible in %s", dir);
	}
	plain = decay_as_nobody(exe);
	secure = chmod(exe, 04755) ? -1 : decay_as_nobody(exe);
	unlink(exe);
	rmdir(dir);
	EXPECT_EQ(1, plain);
	EXPECT_EQ(0, secure);
}

/* A child of options_ignored_when_secure: did SPANALLOC_DECAY_MS count? */
__attribute__((constructor)) static void maybe_child(void)
{
	if (!getenv(CHILD_ENV))
		return;
	init();
	_exit(_span_opt.decay_ms == 4321);
}

TEST_HARNESS_MAIN
