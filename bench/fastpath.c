/*
 * fastpath: N malloc(32)/free pairs after a warm-up, for instruction counts
 * under callgrind. Run with N and 2N: (Ir(2N) - Ir(N)) / N is the cost of one
 * malloc+free pair on the fast path, with start-up and warm-up cancelled.
 * Usage: fastpath N
 */
#include "common.h"

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000, i;
	void *keep[16];

	/* warm-up: thread cache and size class set up, a few objects live */
	for (i = 0; i < 16; i++)
		keep[i] = xmalloc(32);
	for (i = 0; i < 10000; i++) {
		void *p = malloc(32);

		sink(p);
		free(p);
	}
	for (i = 0; i < n; i++) {
		void *p = malloc(32);

		sink(p);
		free(p);
	}
	for (i = 0; i < 16; i++)
		free(keep[i]);
	return 0;
}
