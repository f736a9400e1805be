/*
 * stats.c: statistics. Counters (counters.c) are only touched on slow
 * paths (backend calls, batches, large allocations), never per malloc or
 * free, so the fast paths stay lean; span_stats() gathers them with the
 * per-class and large-cache numbers, span_stats_print() formats them
 * without malloc.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "prim.h"

SPAN_API void span_stats(struct span_stats *st)
{
	struct span_prim_counters pc;

	memset(st, 0, sizeof(*st));
	st->backend = _span_prim_backend_name(_span_prim_backend());
	st->mapped_bytes = span_load_relaxed(&_span_cnt.mapped_bytes);
	st->mapped_peak = span_load_relaxed(&_span_cnt.mapped_peak);
	st->backend_allocs = span_load_relaxed(&_span_cnt.prim_allocs);
	st->backend_frees = span_load_relaxed(&_span_cnt.prim_frees);
	st->backend_errors = span_load_relaxed(&_span_cnt.prim_errors);
	st->threads = span_load_relaxed(&_span_cnt.threads);
	st->threads_exited = span_load_relaxed(&_span_cnt.threads_exited);
	st->reclaims = span_load_relaxed(&_span_cnt.reclaims);
	_span_prim_counters(&pc);
	st->backend_calls = pc.calls;
	st->stashed_spans = pc.stashed_spans;
	st->stashed_bytes = pc.stashed_bytes;
	_span_region_stats(st);
	st->backend_reopens = pc.reopens;
	if (!span_load_acquire(&_span_ready))
		return;
	_span_central_stats(st);
	_span_large_stats(st);
}

#define KIB(x)	((unsigned long long)(x) >> 10)

SPAN_API void span_stats_print(int fd)
{
	struct span_stats st;
	char buf[1024];
	int n;

	span_stats(&st);
	n = snprintf(buf, sizeof(buf),
		"spanalloc: backend %s\n"
		"spanalloc: mapped %llu KiB (peak %llu KiB), backend spans "
		"%llu allocated, %llu freed, %llu errors\n"
		"spanalloc: small: %llu spans (%llu KiB), %llu empty, "
		"%llu KiB free in central, %llu refills, %llu drains\n"
		"spanalloc: large: %llu live (%llu KiB), %llu cached "
		"(%llu KiB), %llu allocated, %llu from cache\n"
		"spanalloc: threads: %llu caches, %llu exited\n",
		st.backend, KIB(st.mapped_bytes), KIB(st.mapped_peak),
		(unsigned long long)st.backend_allocs,
		(unsigned long long)st.backend_frees,
		(unsigned long long)st.backend_errors,
		(unsigned long long)st.small_spans, KIB(st.small_span_bytes),
		(unsigned long long)st.small_empty_spans,
		KIB(st.small_central_free_bytes),
		(unsigned long long)st.refills, (unsigned long long)st.drains,
		(unsigned long long)st.large_live, KIB(st.large_live_bytes),
		(unsigned long long)st.large_cached,
		KIB(st.large_cached_bytes),
		(unsigned long long)st.large_allocs,
		(unsigned long long)st.large_cache_hits,
		(unsigned long long)st.threads,
		(unsigned long long)st.threads_exited);
	if (n > 0)
		_span_write_str(fd, buf);
}

/*
 * Where SPANALLOC_STATS goes: a copy of stderr taken at init, because
 * programs may close fd 2 before exit (gnulib's close_stdout does).
 */
static int stats_fd = -1;

void _span_stats_init(void)
{
	if (_span_opt.stats)
		stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 64);
}

/*
 * SPANALLOC_STATS=2: also the backend's system calls and stashes, and the
 * anonymous memory of the page heap.
 */
static void stats_print_backend(int fd)
{
	struct span_stats st;
	char buf[512];
	int n;

	span_stats(&st);
	n = snprintf(buf, sizeof(buf),
		"spanalloc: backend calls %llu, stashed %llu spans (%llu KiB), "
		"device reopened %llu times\n"
		"spanalloc: anonymous: %llu regions (%llu KiB), %llu KiB "
		"given back, %llu KiB in spans, %llu fallbacks, "
		"%llu reclaims\n"
		"spanalloc: kernel regions: %llu (%llu KiB)\n",
		(unsigned long long)st.backend_calls,
		(unsigned long long)st.stashed_spans, KIB(st.stashed_bytes),
		(unsigned long long)st.backend_reopens,
		(unsigned long long)st.regions, KIB(st.region_bytes),
		KIB(st.released_bytes), KIB(st.anon_span_bytes),
		(unsigned long long)st.anon_fallbacks,
		(unsigned long long)st.reclaims,
		(unsigned long long)st.kernel_regions,
		KIB(st.kernel_region_bytes));
	if (n > 0)
		_span_write_str(fd, buf);
}

void _span_stats_at_exit(void)
{
	int fd = stats_fd >= 0 ? stats_fd : 2;

	/* Not started (a forced backend that failed said so already). */
	if (!_span_opt.stats || !span_load_acquire(&_span_ready))
		return;
	span_stats_print(fd);
	if (_span_opt.stats_verbose)
		stats_print_backend(fd);
}
