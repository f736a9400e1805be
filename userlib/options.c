/*
 * options.c: the library's settings, all from environment variables named
 * SPANALLOC_*, read once at init, and the environment lookup itself.
 *
 * Under LD_PRELOAD the first malloc comes from the dynamic loader (for the
 * main thread's TLS) before libc has set up environ, so getenv() sees
 * nothing yet; _span_env() then reads /proc/self/environ with plain
 * open/read, no allocation.
 *
 * In a program that runs with privileges its caller lacks (setuid,
 * setgid, file capabilities: AT_SECURE), every variable is ignored, as
 * glibc's secure_getenv() does and for the same reason: the environment
 * is the unprivileged caller's, and SPANALLOC_STATS would make the program
 * write to a descriptor, the others change how much memory it holds
 * (review L12). The defaults apply.
 *
 *   SPANALLOC_BACKEND=kernel|mmap  force a backend (read by prim.c)
 *   SPANALLOC_ARENA_MB=N           kernel arena size (read by prim.c)
 *   SPANALLOC_STATS=1              print the statistics to stderr at exit
 *   SPANALLOC_DECAY_MS=N           how long empty spans and cached large
 *                                  spans wait before going back (500)
 *   SPANALLOC_LARGE_CACHE_MB=N     bytes of free runs the large page heap
 *                                  keeps, or the live large bytes if more
 *                                  (64; 0 keeps none)
 *   SPANALLOC_LAZY_MB=N            kernel backend: large allocations of N
 *                                  MiB or more are anonymous memory,
 *                                  populated on demand (2; 0: never)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "internal.h"

struct span_options _span_opt = {
	.decay_ms = 500,
	.large_cache_bytes = (size_t)64 << 20,
	.lazy_bytes = (size_t)2 << 20,
};

#define ENV_VALUE_MAX	128
#define ENV_SLOTS	8

/* Values found in /proc/self/environ; few, short, read during init. */
static char env_values[ENV_SLOTS][ENV_VALUE_MAX];
static unsigned int env_next;

/* Scan /proc/self/environ for "@name=" and copy its value out. */
static const char *env_from_proc(const char *name)
{
	size_t nlen = strlen(name), have = 0;
	char buf[4096], *out = NULL;
	bool at_start = true;
	ssize_t n;
	int fd;

	fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	/*
	 * Walk entries through a window; an entry of interest is kept whole
	 * (the name plus up to ENV_VALUE_MAX bytes), others are skipped.
	 */
	while ((n = read(fd, buf + have, sizeof(buf) - have)) > 0) {
		size_t len = have + (size_t)n, i = 0;

		while (i < len) {
			char *end = memchr(buf + i, 0, len - i);

			if (!end) {
				if (i == 0 && len == sizeof(buf)) {
					/* A huge entry: not ours, drop it. */
					at_start = false;
					i = len;
				}
				break;
			}
			if (at_start && (size_t)(end - (buf + i)) > nlen &&
			    !memcmp(buf + i, name, nlen) && buf[i + nlen] == '=') {
				out = env_values[env_next++ % ENV_SLOTS];
				strncpy(out, buf + i + nlen + 1,
					ENV_VALUE_MAX - 1);
				out[ENV_VALUE_MAX - 1] = 0;
			}
			at_start = true;
			i = (size_t)(end - buf) + 1;
		}
		memmove(buf, buf + i, len - i);
		have = len - i;
	}
	close(fd);
	return out;
}

const char *_span_env(const char *name)
{
	if (getauxval(AT_SECURE))
		return NULL;
	if (environ)
		return getenv(name);
	return env_from_proc(name);
}

/* A decimal number from @name, or @def when unset or malformed. */
static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = _span_env(name);
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
	_span_opt.stats_verbose = env_u64("SPANALLOC_STATS", 0) >= 2;
	_span_opt.decay_ms = env_u64("SPANALLOC_DECAY_MS", _span_opt.decay_ms);
	_span_opt.large_cache_bytes =
		env_u64("SPANALLOC_LARGE_CACHE_MB",
			_span_opt.large_cache_bytes >> 20) << 20;
	_span_opt.lazy_bytes =
		env_u64("SPANALLOC_LAZY_MB", _span_opt.lazy_bytes >> 20) << 20;
}
