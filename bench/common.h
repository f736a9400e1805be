/*
 * common.h: helpers shared by the bench/ workloads (not a test).
 *
 * Every workload is a plain C program that uses only the malloc API, so the
 * allocator under test is whatever the dynamic linker binds malloc to
 * (glibc, or a library put in front with LD_PRELOAD). Each takes one
 * argument, a scale factor (default 1.0) that multiplies its amount of work,
 * so that runs under QEMU/TCG and native runs can be sized differently.
 *
 * Output: free text, plus lines "metric NAME VALUE" that bench/launch keeps.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_scale(int argc, char **argv)
{
	double s = argc > 1 ? atof(argv[1]) : 1.0;

	if (!(s > 0)) {
		fprintf(stderr, "usage: %s [SCALE > 0]\n", argv[0]);
		exit(2);
	}
	return s;
}

/* iterations scaled, at least 1 */
static inline long scaled(double scale, long n)
{
	long v = (long)(n * scale);

	return v > 0 ? v : 1;
}

static inline void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "bench: malloc(%zu) failed\n", n);
		exit(1);
	}
	return p;
}

/* xorshift64*: deterministic, per-thread state */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline double rnd01(uint64_t *s)
{
	return (rnd(s) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* resident set size of this process now, in KiB (from /proc/self/statm) */
static inline long rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * 4;
}

/* touch a block the way a program would: first and last byte, one per page */
static inline void touch(void *p, size_t n, unsigned char v)
{
	unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i += 4096)
		c[i] = v;
	if (n)
		c[n - 1] = v;
}

/* keeps the compiler from dropping malloc/free pairs */
static volatile uintptr_t bench_sink;

/*
 * The receiving end of a hand-over: read byte 15 of each of the @n objects
 * of batch @b (written by the thread that made them), free them and the
 * batch; the bytes' sum, so the reads stay.
 */
/*
 * Replace the block in *@slot (if any) by a new one of @n bytes, touched
 * with @v; returns the old block's first byte, read before it is freed.
 */
static inline uint64_t replace_block(char **slot, size_t n, unsigned char v)
{
	uint64_t seen = *slot ? (unsigned char)**slot : 0;

	free(*slot);
	*slot = xmalloc(n);
	touch(*slot, n, v);
	return seen;
}

static inline uint64_t free_batch(char **b, int n)
{
	uint64_t sum = 0;
	int j;

	for (j = 0; j < n; j++) {
		sum += (unsigned char)b[j][15];
		free(b[j]);
	}
	free(b);
	return sum;
}

static inline void sink(const void *p)
{
	bench_sink += (uintptr_t)p;
}

#endif
