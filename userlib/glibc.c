/*
 * glibc.c: the rest of glibc's malloc interface (<malloc.h>) that real
 * programs call, answered from spanalloc's own state: mallinfo(),
 * mallinfo2(), malloc_stats(), malloc_info() (glibc's XML), malloc_trim()
 * (span_trim(): memory really goes back) and mallopt() (M_TRIM_THRESHOLD
 * maps onto the large page heap's byte bound; every other option is
 * refused with 0, as glibc refuses the ones it does not know).
 *
 * Like override.c, this file is in libspanalloc.so and
 * libspanalloc-malloc.a only: with libspanalloc.a the program keeps the C
 * library's malloc, and these names must stay the C library's too.
 *
 * glibc's words for spanalloc's memory:
 *   arena     spans of size classes, stashed spans, free large runs: all
 *             that is not a live large block (glibc: the heap, not mmap)
 *   hblk(hd)  live large blocks, count and bytes (glibc: mmapped chunks)
 *   fordblks  free bytes: free objects in central, free large runs,
 *             stashed spans
 *   uordblks  arena - fordblks: objects handed out or in thread caches
 *   ordblks   free chunks: empty small spans and free large runs
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>

#include "internal.h"

#define SPAN_EXPORT	__attribute__((visibility("default")))

/* mallinfo2's numbers, from span_stats(). */
static struct mallinfo2 info_get(void)
{
	struct mallinfo2 mi = { 0 };
	struct span_stats st;
	uint64_t arena, free_bytes;

	span_stats(&st);
	arena = st.mapped_bytes > st.large_live_bytes ?
		st.mapped_bytes - st.large_live_bytes : 0;
	free_bytes = st.small_central_free_bytes + st.large_cached_bytes +
		     st.stashed_bytes;
	if (free_bytes > arena)
		free_bytes = arena;	/* counters read one by one */
	mi.arena = arena;
	mi.ordblks = st.small_empty_spans + st.large_cached;
	mi.hblks = st.large_live;
	mi.hblkhd = st.large_live_bytes;
	mi.uordblks = arena - free_bytes;
	mi.fordblks = free_bytes;
	return mi;
}

SPAN_EXPORT struct mallinfo2 mallinfo2(void)
{
	return info_get();
}

/* glibc's old struct of ints: the same numbers, cut to int as glibc does. */
SPAN_EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = info_get();
	struct mallinfo mi = {
		.arena = (int)m2.arena,
		.ordblks = (int)m2.ordblks,
		.hblks = (int)m2.hblks,
		.hblkhd = (int)m2.hblkhd,
		.uordblks = (int)m2.uordblks,
		.fordblks = (int)m2.fordblks,
	};

	return mi;
}

/* glibc's lines on stderr, then spanalloc's own (span_stats_print()). */
SPAN_EXPORT void malloc_stats(void)
{
	struct mallinfo2 mi = info_get();
	struct span_stats st;
	char buf[512];
	int n;

	span_stats(&st);
	n = snprintf(buf, sizeof(buf),
		"Arena 0:\n"
		"system bytes     = %10zu\n"
		"in use bytes     = %10zu\n"
		"Total (incl. mmap):\n"
		"system bytes     = %10zu\n"
		"in use bytes     = %10zu\n"
		"max mmap regions = %10zu\n"
		"max mmap bytes   = %10zu\n",
		mi.arena, mi.uordblks, mi.arena + mi.hblkhd,
		mi.uordblks + mi.hblkhd, mi.hblks, mi.hblkhd);
	if (n > 0)
		_span_write_str(2, buf);
	span_stats_print(2);
}

/*
 * glibc's XML: one heap; per size class the free objects in central
 * (from, to: the sizes the class serves); totals; system bytes now and at
 * the peak. Returns 0, or -1 with EINVAL for nonzero @options (glibc).
 */
SPAN_EXPORT int malloc_info(int options, FILE *fp)
{
	struct mallinfo2 mi;
	struct span_stats st;
	unsigned int cls, prev = 0;
	uint64_t objs, free_objs = 0;
	int ready;

	if (options) {
		errno = EINVAL;
		return -1;
	}
	mi = info_get();
	span_stats(&st);
	fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", fp);
	ready = span_load_acquire(&_span_ready);
	for (cls = 1; cls < SPAN_NUM_CLASSES && ready; cls++) {
		uint32_t size = _span_classes[cls].size;

		objs = _span_central_class_free(cls);
		if (objs)
			fprintf(fp, "  <size from=\"%u\" to=\"%u\" total=\"%llu\" count=\"%llu\"/>\n",
				prev + 1, size,
				(unsigned long long)(objs * size),
				(unsigned long long)objs);
		free_objs += objs;
		prev = size;
	}
	fprintf(fp, "</sizes>\n"
		"<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
		"<total type=\"rest\" count=\"%llu\" size=\"%zu\"/>\n"
		"<system type=\"current\" size=\"%zu\"/>\n"
		"<system type=\"max\" size=\"%llu\"/>\n"
		"<aspace type=\"total\" size=\"%zu\"/>\n"
		"<aspace type=\"mprotect\" size=\"%zu\"/>\n"
		"</heap>\n",
		(unsigned long long)(free_objs + st.large_cached), mi.fordblks,
		mi.arena, (unsigned long long)st.mapped_peak, mi.arena,
		mi.arena);
	fprintf(fp, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
		"<total type=\"rest\" count=\"%llu\" size=\"%zu\"/>\n"
		"<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
		"<system type=\"current\" size=\"%llu\"/>\n"
		"<system type=\"max\" size=\"%llu\"/>\n"
		"<aspace type=\"total\" size=\"%llu\"/>\n"
		"<aspace type=\"mprotect\" size=\"%llu\"/>\n"
		"</malloc>\n",
		(unsigned long long)(free_objs + st.large_cached), mi.fordblks,
		mi.hblks, mi.hblkhd, (unsigned long long)st.mapped_bytes,
		(unsigned long long)st.mapped_peak,
		(unsigned long long)st.mapped_bytes,
		(unsigned long long)st.mapped_bytes);
	return 0;
}

/*
 * Give back what can go now (span_trim(): this thread's cache, the other
 * threads' at their next slow path, every thread's inbox, empty small
 * spans, stashes, free large runs). @pad is ignored: nothing is kept at a
 * heap top. Returns 1 if memory went back to the system, as glibc.
 */
SPAN_EXPORT int malloc_trim(size_t pad)
{
	struct span_stats before, after;

	(void)pad;
	span_stats(&before);
	span_trim();
	span_stats(&after);
	return after.mapped_bytes < before.mapped_bytes;
}

/*
 * M_TRIM_THRESHOLD (glibc: free bytes kept before giving memory back) sets
 * the large page heap's byte bound, SPANALLOC_LARGE_CACHE_MB. Others: 0.
 */
SPAN_EXPORT int mallopt(int param, int value)
{
	if (unlikely(!span_load_acquire(&_span_ready)))
		_span_init();	/* the environment is read first */
	switch (param) {
	case M_TRIM_THRESHOLD:
		if (value < 0)
			return 0;
		span_store_relaxed(&_span_opt.large_cache_bytes,
				   (size_t)value);
		return 1;
	default:
		return 0;
	}
}
