/*
 * counters.c: the process-wide counters (struct span_counters) that every
 * layer bumps on its slow paths, backend calls and mapped bytes among
 * them; stats.c reads them for span_stats(). Relaxed atomics, no lock.
 * The bottom of the layers: it calls nothing of the library.
 */
#include "internal.h"

struct span_counters _span_cnt;

void _span_stats_mapped(int64_t delta)
{
	uint64_t now = span_add_relaxed(&_span_cnt.mapped_bytes,
					(uint64_t)delta);
	uint64_t peak = span_load_relaxed(&_span_cnt.mapped_peak);

	while (now > peak &&
	       !__atomic_compare_exchange_n(&_span_cnt.mapped_peak, &peak, now,
					    true, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
}
