/*
 * options.c: the library's settings, all from environment variables named
 * SPANALLOC_*, read once at init with getenv() (which does not allocate).
 *
 *   SPANALLOC_BACKEND=kernel|mmap  force a backend (read by prim.c)
 *   SPANALLOC_ARENA_MB=N           kernel arena size (read by prim.c)
 *   SPANALLOC_STATS=1              print the statistics to stderr at exit
 *   SPANALLOC_DECAY_MS=N           how long empty spans and cached large
 *                                  spans wait before going back (500)
 *   SPANALLOC_LARGE_CACHE_MB=N     bytes of freed large spans kept (64)
 *   SPANALLOC_LARGE_CACHE_SPANS=N  freed large spans kept (16)
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "internal.h"

struct span_options _span_opt = {
	.decay_ms = 500,
	.large_cache_bytes = (size_t)64 << 20,
	.large_cache_spans = 16,
};

/* A decimal number from @name, or @def when unset or malformed. */
static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);
	uint64_t v = 0;

	if (!s || !*s)
		return def;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > UINT64_MAX / 10 - 9)
			return def;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	return v;
}

void _span_options_init(void)
{
	_span_opt.stats = env_u64("SPANALLOC_STATS", 0) != 0;
	_span_opt.decay_ms = env_u64("SPANALLOC_DECAY_MS", _span_opt.decay_ms);
	_span_opt.large_cache_bytes =
		env_u64("SPANALLOC_LARGE_CACHE_MB",
			_span_opt.large_cache_bytes >> 20) << 20;
	_span_opt.large_cache_spans =
		env_u64("SPANALLOC_LARGE_CACHE_SPANS",
			_span_opt.large_cache_spans);
}
