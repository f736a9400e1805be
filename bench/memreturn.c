/*
 * memreturn: memory return. Build a peak of ~SCALE*96 MiB of small objects
 * (32..512 B) plus some 256 KiB blocks, all written; free 90% of them
 * (random choice) and keep 10%; then run a light, steady churn of small
 * objects for 0.3 s, as a program that went back to normal would. Reports
 * RSS at the peak, right after the frees, and after the 0.3 s
 * (metric rss_after_kb): how much an allocator gives back without being told.
 */
#include "common.h"

#define LARGE	(256 * 1024)

int main(int argc, char **argv)
{
	double scale = bench_scale(argc, argv);
	size_t target = (size_t)(scale * 96 * 1024 * 1024), total = 0;
	long n = 0, cap = 1 << 16, i, kept = 0;
	char **objs = xmalloc(cap * sizeof(*objs));
	uint64_t r = 5;
	long rss_peak, rss_freed, rss_after;
	double end;
	char *ring[256] = { 0 };

	while (total < target) {
		size_t sz = (n % 64 == 63) ? LARGE : 32 + rnd(&r) % 481;

		if (n == cap) {
			cap *= 2;
			objs = realloc(objs, cap * sizeof(*objs));
			if (!objs)
				return 1;
		}
		objs[n] = xmalloc(sz);
		memset(objs[n], 1, sz < 4096 ? sz : 64);
		if (sz >= 4096)
			touch(objs[n], sz, 1);
		total += sz;
		n++;
	}
	rss_peak = rss_kb();
	for (i = 0; i < n; i++) {
		if (rnd(&r) % 10 == 0) {
			objs[kept++] = objs[i];
			continue;
		}
		free(objs[i]);
	}
	rss_freed = rss_kb();
	end = now_s() + 0.3;
	for (i = 0; now_s() < end; i++) {
		int k = i & 255;
		int j;

		for (j = 0; j < 64; j++) {
			free(ring[(k + j) & 255]);
			ring[(k + j) & 255] = xmalloc(32 + (i + j) % 200);
		}
	}
	rss_after = rss_kb();
	for (i = 0; i < 256; i++)
		free(ring[i]);
	for (i = 0; i < kept; i++)
		free(objs[i]);
	free(objs);
	printf("memreturn: %ld objects, %zu MiB; RSS peak %ld KiB, after free %ld KiB, after 0.3 s %ld KiB\n",
	       n, total >> 20, rss_peak, rss_freed, rss_after);
	printf("metric rss_freed_kb %ld\nmetric rss_after_kb %ld\n", rss_freed,
	       rss_after);
	return 0;
}
