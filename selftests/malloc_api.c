// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_api: libspanalloc's malloc family against C11/POSIX: every
 * function, edge sizes (0, 1, 15, 16, 32 KiB, 32 KiB + 1, huge), size
 * overflow, alignments up to 1 MiB, errno, and memory really going back
 * to the backend. Links libspanalloc.a and calls the span_ names; prints
 * the backend in use (SPANALLOC_BACKEND=kernel|mmap picks it).
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

/*
 * The harness gives a test 30 s; a debug kernel (KASAN, lockdep) in
 * software emulation needs more. A hang guard, not a time limit.
 */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

#define SMALL_MAX	(32 * 1024)

static const size_t edge_sizes[] = {
	0, 1, 7, 8, 9, 15, 16, 17, 100, 1024, 1025, 4096, SMALL_MAX - 1,
	SMALL_MAX, SMALL_MAX + 1, 100000, 1 << 20, (4 << 20) + 3,
};

static bool aligned(const void *p, size_t a)
{
	return !((uintptr_t)p & (a - 1));
}

static void fill(void *p, size_t n, unsigned char seed)
{
	unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		c[i] = (unsigned char)(seed + i * 7);
}

static bool check(const void *p, size_t n, unsigned char seed)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i] != (unsigned char)(seed + i * 7))
			return false;
	return true;
}

/*
 * Resident KiB, counted from the page tables (smaps_rollup): 6.1 keeps a
 * task's RSS counter changes to itself for up to 64 events, so statm can
 * lag by megabytes of PTEs installed by SPAN_ALLOC.
 */
static long rss_kib(void)
{
	char line[256];
	long rss = -1;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Rss: %ld kB", &rss) == 1)
			break;
	fclose(f);
	return rss;
}

TEST(backend)
{
	struct span_stats st;
	void *p = span_malloc(1);

	ASSERT_NE(NULL, p);
	span_stats(&st);
	ASSERT_NE(NULL, st.backend);
	EXPECT_STREQ(span_backend(), st.backend);
	EXPECT_STRNE("none", st.backend);
	TH_LOG("backend: %s", st.backend);
	if (getenv("SPANALLOC_BACKEND"))
		EXPECT_STREQ(getenv("SPANALLOC_BACKEND"), st.backend);
	span_free(p);
}

TEST(sizes_edge)
{
	size_t i;

	for (i = 0; i < sizeof(edge_sizes) / sizeof(edge_sizes[0]); i++) {
		size_t n = edge_sizes[i];
		void *p = span_malloc(n);

		ASSERT_NE(NULL, p) TH_LOG("malloc(%zu)", n);
		ASSERT_LE(n, span_malloc_usable_size(p));
		if (n > 8)
			EXPECT_TRUE(aligned(p, 16)) TH_LOG("size %zu", n);
		EXPECT_TRUE(aligned(p, 8));
		fill(p, span_malloc_usable_size(p), (unsigned char)i);
		EXPECT_TRUE(check(p, span_malloc_usable_size(p),
				  (unsigned char)i));
		span_free(p);
	}
}

TEST(malloc_zero_unique)
{
	void *a = span_malloc(0), *b = span_malloc(0);

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	EXPECT_NE(a, b);
	span_free(a);
	span_free(b);
	span_free(NULL);
}

TEST(many_objects_distinct)
{
	enum { N = 20000 };
	static unsigned int *v[N];
	int i;

	for (i = 0; i < N; i++) {
		v[i] = span_malloc(8 + (i % 300) * 4);
		ASSERT_NE(NULL, v[i]);
		*v[i] = (unsigned int)i;
	}
	for (i = 0; i < N; i++)
		ASSERT_EQ((unsigned int)i, *v[i]);
	for (i = 0; i < N; i += 2)
		span_free(v[i]);
	for (i = 0; i < N; i += 2) {
		v[i] = span_malloc(8 + (i % 300) * 4);
		*v[i] = (unsigned int)i;
	}
	for (i = 0; i < N; i++) {
		ASSERT_EQ((unsigned int)i, *v[i]);
		span_free(v[i]);
	}
}

TEST(huge_and_overflow)
{
	void *p;

	errno = 0;
	EXPECT_EQ(NULL, span_malloc(SIZE_MAX));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, span_malloc((size_t)PTRDIFF_MAX + 1));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, span_calloc(SIZE_MAX / 2, 3));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, span_calloc((size_t)1 << 33, (size_t)1 << 33));
	EXPECT_EQ(ENOMEM, errno);

	p = span_malloc(10);
	ASSERT_NE(NULL, p);
	strcpy(p, "kept");
	errno = 0;
	EXPECT_EQ(NULL, span_reallocarray(p, SIZE_MAX / 4, 8));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_STREQ("kept", p);
	errno = 0;
	EXPECT_EQ(NULL, span_realloc(p, SIZE_MAX - 4096));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_STREQ("kept", p);
	p = span_reallocarray(p, 10, 10);
	ASSERT_NE(NULL, p);
	EXPECT_STREQ("kept", p);
	span_free(p);
}

TEST(calloc_zeroes)
{
	static const size_t sizes[] = { 1, 24, 1000, SMALL_MAX, SMALL_MAX + 1,
					300000 };
	size_t i, j;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		unsigned char *p;
		int round;

		/* Dirty memory of that size, free it, calloc it back. */
		for (round = 0; round < 3; round++) {
			p = span_malloc(n);
			ASSERT_NE(NULL, p);
			memset(p, 0xa5, n);
			span_free(p);
			p = span_calloc(1, n);
			ASSERT_NE(NULL, p);
			for (j = 0; j < n; j++)
				ASSERT_EQ(0, p[j]) TH_LOG("size %zu at %zu", n, j);
			span_free(p);
		}
	}
	EXPECT_NE(NULL, span_calloc(0, 5));
}

TEST(realloc_keeps_contents)
{
	static const size_t steps[] = { 1, 16, 100, 1000, 30000, 40000,
					200000, 3 << 20, 70000, 5000, 10, 0 };
	size_t i, have = 0;
	char *p = NULL;

	for (i = 0; steps[i]; i++) {
		size_t n = steps[i], keep = have < n ? have : n;

		p = span_realloc(p, n);
		ASSERT_NE(NULL, p) TH_LOG("realloc to %zu", n);
		EXPECT_TRUE(check(p, keep, 3)) TH_LOG("lost data at %zu", n);
		fill(p, n, 3);
		have = n;
	}
	/* glibc: realloc(p, 0) frees p and returns NULL. */
	EXPECT_EQ(NULL, span_realloc(p, 0));
}

TEST(realloc_in_place)
{
	char *p = span_malloc(100), *q;

	ASSERT_NE(NULL, p);
	/* Same class: the pointer stays. */
	q = span_realloc(p, 110);
	EXPECT_EQ(p, q);
	span_free(q);

	p = span_malloc(1 << 20);
	ASSERT_NE(NULL, p);
	fill(p, 1 << 20, 9);
	q = span_realloc(p, (1 << 20) - 5000);	/* shrink a little: in place */
	EXPECT_EQ(p, q);
	q = span_realloc(q, 64 << 20);		/* grow: mremap or copy */
	ASSERT_NE(NULL, q);
	EXPECT_TRUE(check(q, (1 << 20) - 5000, 9));
	memset(q + (1 << 20), 1, (63 << 20));
	span_free(q);
}

TEST(memalign_posix)
{
	size_t a, i;

	for (a = sizeof(void *); a <= (1 << 20); a <<= 1) {
		for (i = 0; i < sizeof(edge_sizes) / sizeof(edge_sizes[0]); i++) {
			void *p = (void *)1;
			size_t n = edge_sizes[i];

			errno = 1234;
			ASSERT_EQ(0, span_posix_memalign(&p, a, n));
			EXPECT_EQ(1234, errno);
			ASSERT_NE(NULL, p);
			EXPECT_TRUE(aligned(p, a))
				TH_LOG("align %zu size %zu: %p", a, n, p);
			EXPECT_LE(n, span_malloc_usable_size(p));
			memset(p, 0x11, n);
			span_free(p);
		}
	}
}

/*
 * Size 0 with an alignment above a page: the block once started at its
 * span's end, and its page map entry overwrote the next page's, a live
 * small span's (a free there then aborted "double free"). Found by a
 * review's stress test.
 */
TEST(memalign_zero_size_keeps_neighbours)
{
	static void *small[4096], *p[64];
	int i;

	for (i = 0; i < 4096; i++)
		ASSERT_NE(NULL, small[i] = span_malloc(1024));
	for (i = 0; i < 64; i++) {
		ASSERT_EQ(0, span_posix_memalign(&p[i], 8192, 0));
		EXPECT_TRUE(aligned(p[i], 8192));
	}
	for (i = 0; i < 4096; i++)
		span_free(small[i]);
	for (i = 0; i < 64; i++)
		span_free(p[i]);
}

TEST(memalign_posix_errors)
{
	static const size_t bad[] = { 0, 1, 3, 4, 12, 24, 4097 };
	size_t i;
	void *p;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = (void *)0x1;
		errno = 1234;
		EXPECT_EQ(EINVAL, span_posix_memalign(&p, bad[i], 16));
		EXPECT_EQ(1234, errno);
		EXPECT_EQ((void *)0x1, p);
	}
	errno = 1234;
	EXPECT_EQ(ENOMEM, span_posix_memalign(&p, 64, SIZE_MAX - 100));
	EXPECT_EQ(1234, errno);
}

TEST(alloc_aligned)
{
	size_t a;
	void *p;

	for (a = 1; a <= (1 << 20); a <<= 1) {
		p = span_aligned_alloc(a, 3 * a);
		ASSERT_NE(NULL, p);
		EXPECT_TRUE(aligned(p, a));
		memset(p, 0, 3 * a);
		span_free(p);
	}
	errno = 0;
	EXPECT_EQ(NULL, span_aligned_alloc(24, 48));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(NULL, span_aligned_alloc(0, 48));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(NULL, span_aligned_alloc(64, SIZE_MAX - 10));
	EXPECT_EQ(ENOMEM, errno);
}

TEST(memalign_valloc_pvalloc)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	p = span_memalign(48, 100);	/* rounds up to 64 like glibc */
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(aligned(p, 64));
	span_free(p);
	p = span_memalign(1 << 20, 10);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(aligned(p, 1 << 20));
	span_free(p);

	p = span_valloc(10);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(aligned(p, page));
	span_free(p);

	p = span_pvalloc(page + 1);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(aligned(p, page));
	EXPECT_LE((size_t)(2 * page), span_malloc_usable_size(p));
	span_free(p);
	p = span_pvalloc(0);
	ASSERT_NE(NULL, p);
	EXPECT_LE((size_t)page, span_malloc_usable_size(p));
	span_free(p);
	errno = 0;
	EXPECT_EQ(NULL, span_pvalloc(SIZE_MAX - 10));
	EXPECT_EQ(ENOMEM, errno);
}

TEST(sized_free)
{
	void *p = span_malloc(200), *q = span_aligned_alloc(4096, 5000);

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, q);
	span_free_sized(p, 200);
	span_free_aligned_sized(q, 4096, 5000);
	span_free_sized(NULL, 0);
}

/*
 * A large block freed and asked for again is the same block, from the
 * thread's cache (up to SPAN_TC_LARGE_PAGES) or the page heap's: no
 * system call after the first.
 */
TEST(large_cache_reuse)
{
	static const size_t sizes[] = { 200000, 1000000 };
	struct span_stats a, b;
	void *p, *first;
	size_t k;
	int i;

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		span_stats(&a);
		first = NULL;
		for (i = 0; i < 100; i++) {
			p = span_malloc(sizes[k]);
			ASSERT_NE(NULL, p);
			((char *)p)[sizes[k] - 1] = 1;
			if (!first)
				first = p;
			EXPECT_EQ(first, p);
			span_free(p);
		}
		span_stats(&b);
		EXPECT_GE(a.backend_allocs + 1, b.backend_allocs);
	}
	/* the 1 MB block went through the page heap every time */
	EXPECT_LE(a.large_cache_hits + 99, b.large_cache_hits);
}

#define MIB	((size_t)1 << 20)

/* A freed large block's pages serve a smaller one, no backend call. */
TEST(large_reuse_smaller)
{
	struct span_stats a, b;
	char *p, *q;

	span_trim();
	p = span_malloc(4 * MIB);
	ASSERT_NE(NULL, p);
	memset(p, 0x5a, 4 * MIB);
	span_free(p);
	span_stats(&a);
	EXPECT_LE(4 * MIB, a.large_cached_bytes);
	/* mmap: the front of the run; kernel: the span trimmed in place. */
	q = span_malloc(5 * MIB / 2);
	ASSERT_NE(NULL, q);
	span_stats(&b);
	EXPECT_EQ(p, q);
	EXPECT_EQ(a.backend_allocs, b.backend_allocs);
	EXPECT_EQ(a.large_cache_hits + 1, b.large_cache_hits);
	EXPECT_EQ(0x5a, q[5 * MIB / 2 - 1]);	/* the same, dirty pages */
	span_free(q);
}

/* calloc() of reused (dirty) large memory is zero, carved or whole. */
TEST(large_calloc_reused_is_zero)
{
	static const size_t sizes[] = { 4 * MIB, 4 * MIB, 5 * MIB / 2,
					100000, 3 * MIB + 1 };
	bool split = !strcmp(span_backend(), "mmap");
	size_t i, j;

	span_trim();
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *p = span_malloc(4 * MIB), *q;

		ASSERT_NE(NULL, p);
		memset(p, 0xa5, 4 * MIB);
		span_free(p);
		q = span_calloc(1, sizes[i]);
		ASSERT_NE(NULL, q);
		/* A kernel span is never cut below half (mmap: any size). */
		if (split || 2 * sizes[i] >= 4 * MIB)
			EXPECT_EQ(p, q) TH_LOG("calloc(%zu) not from the freed block",
					       sizes[i]);
		for (j = 0; j < sizes[i]; j++)
			if (q[j])
				break;
		EXPECT_EQ(sizes[i], j) TH_LOG("calloc(%zu): byte %zu is %#x",
					      sizes[i], j, q[j]);
		memset(q, 0xa5, sizes[i]);
		span_free(q);
		span_trim();	/* out of the thread's cache, into the runs */
	}
}

/* realloc shrinks a large block in place, then grows it back in place. */
TEST(large_realloc_in_place)
{
	struct span_stats a, b;
	char *p, *q;

	span_trim();
	p = span_malloc(4 * MIB);
	ASSERT_NE(NULL, p);
	fill(p, 4 * MIB, 11);
	span_stats(&a);
	q = span_realloc(p, MIB);		/* the tail goes back */
	EXPECT_EQ(p, q);
	EXPECT_GE(span_malloc_usable_size(q), MIB);
	EXPECT_LT(span_malloc_usable_size(q), 2 * MIB);	/* really shrunk */
	q = span_realloc(q, 3 * MIB);		/* and comes back */
	EXPECT_EQ(p, q);
	EXPECT_LE(3 * MIB, span_malloc_usable_size(q));
	EXPECT_TRUE(check(q, MIB, 11));
	q = span_realloc(q, 4 * MIB);
	EXPECT_EQ(p, q);
	EXPECT_TRUE(check(q, MIB, 11));
	memset(q + MIB, 1, 3 * MIB);
	span_stats(&b);
	EXPECT_EQ(a.backend_allocs, b.backend_allocs);
	EXPECT_EQ(a.large_allocs, b.large_allocs);	/* never moved */
	span_free(q);
}

/*
 * Freed large blocks stay mapped for reuse, then go back after the decay
 * without any further large call: RSS drops.
 */
TEST(large_memory_returns_after_decay)
{
	enum { N = 8 };
	struct span_stats st;
	long rss_peak, rss_freed, rss_after;
	char *v[N];
	void *w[4000];
	int i;

	span_trim();
	for (i = 0; i < N; i++) {
		v[i] = span_malloc(6 * MIB);
		ASSERT_NE(NULL, v[i]);
		memset(v[i], 1, 6 * MIB);
	}
	rss_peak = rss_kib();
	for (i = 0; i < N; i++)
		span_free(v[i]);
	span_stats(&st);
	rss_freed = rss_kib();
	TH_LOG("rss %ld -> %ld KiB, %llu KiB cached in %llu runs", rss_peak,
	       rss_freed, (unsigned long long)st.large_cached_bytes >> 10,
	       (unsigned long long)st.large_cached);
	EXPECT_LE(N * 6 * MIB, st.large_cached_bytes);	/* kept for reuse */
	usleep(600 * 1000);	/* SPANALLOC_DECAY_MS is 500 */
	for (i = 0; i < 4000; i++)	/* small slow paths sweep */
		w[i] = span_malloc(64);
	for (i = 0; i < 4000; i++)
		span_free(w[i]);
	span_stats(&st);
	rss_after = rss_kib();
	TH_LOG("after the decay: rss %ld KiB, %llu KiB cached", rss_after,
	       (unsigned long long)st.large_cached_bytes >> 10);
	EXPECT_EQ(0, st.large_cached_bytes);
	EXPECT_LT(rss_after + 40 * 1024, rss_peak);
}

/*
 * Peak then free: the spans go back to the backend (span_trim now, or the
 * decay on later slow paths), and the process's RSS really drops.
 */
TEST(memory_returns)
{
	enum { N = 400000 };	/* 400k x 64 B = 25 MiB */
	struct span_stats st;
	long rss_peak, rss_after;
	uint64_t mapped_peak;
	void **v = span_malloc(N * sizeof(*v));
	int i;

	ASSERT_NE(NULL, v);
	for (i = 0; i < N; i++) {
		v[i] = span_malloc(64);
		ASSERT_NE(NULL, v[i]);
		memset(v[i], 1, 64);
	}
	span_stats(&st);
	mapped_peak = st.mapped_bytes;
	rss_peak = rss_kib();
	for (i = 0; i < N; i++)
		span_free(v[i]);
	/* Decay: empty spans wait SPANALLOC_DECAY_MS (500 ms) ... */
	usleep(600 * 1000);
	for (i = 0; i < 4000; i++)	/* ... then go on a slow path */
		v[i] = span_malloc(64);
	for (i = 0; i < 4000; i++)
		span_free(v[i]);
	span_stats(&st);
	TH_LOG("mapped %llu -> %llu KiB after decay",
	       (unsigned long long)mapped_peak >> 10,
	       (unsigned long long)st.mapped_bytes >> 10);
	EXPECT_LT(st.mapped_bytes + (16 << 20), mapped_peak);
	span_trim();
	span_stats(&st);
	rss_after = rss_kib();
	TH_LOG("rss %ld -> %ld KiB", rss_peak, rss_after);
	EXPECT_LT(st.mapped_bytes + (20 << 20), mapped_peak);
	EXPECT_LT(rss_after + 16 * 1024, rss_peak);
	span_free(v);
}

/* span_pages_free() gives back only what span_pages_alloc() gave. */
TEST(pages_free_validates)
{
	char *blk = span_malloc(100000), *small = span_malloc(64);
	char *pages = span_pages_alloc(4);

	ASSERT_NE(NULL, blk);
	ASSERT_NE(NULL, pages);
	memset(blk, 5, 100000);
	memset(pages, 6, 4 * 4096);
	errno = 0;
	EXPECT_EQ(-1, span_pages_free(blk, 1));		/* a malloc'ed block */
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, span_pages_free(small, 1));
	EXPECT_EQ(-1, span_pages_free(pages + 4096, 1));	/* a middle page */
	EXPECT_EQ(-1, span_pages_free(pages, 3));		/* not its size */
	EXPECT_EQ(-1, span_pages_free(NULL, 1));
	EXPECT_EQ(5, blk[99999]);	/* still mapped and ours */
	EXPECT_EQ(6, pages[4 * 4096 - 1]);
	EXPECT_EQ(0, span_pages_free(pages, 4));
	errno = 0;
	EXPECT_EQ(-1, span_pages_free(pages, 4));		/* twice */
	EXPECT_EQ(EINVAL, errno);
	span_free(blk);
	span_free(small);
}

/*
 * Empty spans go back after the decay even when the program only
 * allocates afterwards (refills sweep, not only drains).
 */
TEST(decay_without_drains)
{
	enum { N = 64 * 1024 };	/* 64k x 512 B = 32 MiB */
	struct span_stats st;
	uint64_t empty, mapped;
	void **v = span_malloc(N * sizeof(*v));
	int i;

	ASSERT_NE(NULL, v);
	for (i = 0; i < N; i++)
		ASSERT_NE(NULL, v[i] = span_malloc(512));
	for (i = 0; i < N; i++)
		span_free(v[i]);
	span_stats(&st);
	empty = st.small_empty_spans;
	mapped = st.mapped_bytes;
	usleep(600 * 1000);	/* past SPANALLOC_DECAY_MS */
	/* Another class, allocations only: refills, no drain. */
	for (i = 0; i < 2000; i++)
		ASSERT_NE(NULL, v[i] = span_malloc(3000));
	span_stats(&st);
	TH_LOG("empty spans %llu -> %llu, mapped %llu -> %llu KiB",
	       (unsigned long long)empty,
	       (unsigned long long)st.small_empty_spans,
	       (unsigned long long)mapped >> 10,
	       (unsigned long long)st.mapped_bytes >> 10);
	EXPECT_LT(1000, empty);
	EXPECT_GT(empty / 10, st.small_empty_spans);
	for (i = 0; i < 2000; i++)
		span_free(v[i]);
	span_free(v);
}

TEST(stats_text)
{
	char buf[2048];
	int fds[2];
	ssize_t n;

	ASSERT_EQ(0, pipe(fds));
	span_stats_print(fds[1]);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	ASSERT_LT(0, n);
	buf[n] = 0;
	EXPECT_NE(NULL, strstr(buf, "spanalloc: backend "));
	EXPECT_NE(NULL, strstr(buf, span_backend()));
}

TEST_HARNESS_MAIN
