/*
 * pareto: mixed sizes with a Pareto distribution (shape 1.2, scale 8 B, cut
 * at 1 KiB: many tiny objects, a long tail) and random lifetimes: a working
 * set of 50000 objects, each step frees a random one and allocates a new one.
 * Objects are written in full (memset), as a program would.
 */
#include <math.h>
#include "common.h"

#define LIVE	50000

static size_t pareto_size(uint64_t *r)
{
	double u = rnd01(r), x = 8.0 / pow(1.0 - u, 1.0 / 1.2);

	return x > 1024 ? 1024 : (size_t)x;
}

int main(int argc, char **argv)
{
	double scale = bench_scale(argc, argv);
	long steps = scaled(scale, 1000000), i;
	char **live = xmalloc(LIVE * sizeof(*live));
	uint64_t r = 7, sum = 0, bytes = 0;

	for (i = 0; i < LIVE; i++) {
		size_t n = pareto_size(&r);

		live[i] = xmalloc(n);
		memset(live[i], (int)i, n);
	}
	for (i = 0; i < steps; i++) {
		size_t k = rnd(&r) % LIVE, n = pareto_size(&r);

		sum += (unsigned char)live[k][0];
		free(live[k]);
		live[k] = xmalloc(n);
		memset(live[k], (int)i, n);
		bytes += n;
	}
	for (i = 0; i < LIVE; i++)
		free(live[i]);
	free(live);
	printf("pareto: %ld replacements, mean size %.1f B, sum %llu\n", steps,
	       (double)bytes / steps, (unsigned long long)sum);
	return 0;
}
