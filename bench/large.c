/*
 * large: large-object churn, 64 KiB .. 16 MiB.
 *   - random: 8 live slots, each step frees one and allocates a block of a
 *     log-uniform size, touching one byte per page;
 *   - realloc growth: a buffer grown from 64 KiB to 16 MiB by realloc in
 *     steps of 1.5x (a vector/string builder), its new part touched, then
 *     freed.
 */
#include <math.h>
#include "common.h"

#define SLOTS	8
#define KIB	1024UL
#define MIB	(1024UL * 1024)

int main(int argc, char **argv)
{
	double scale = bench_scale(argc, argv);
	long steps = scaled(scale, 600), grows = scaled(scale, 12), i;
	char *slot[SLOTS] = { 0 };
	uint64_t r = 99, sum = 0;

	for (i = 0; i < steps; i++) {
		size_t k = rnd(&r) % SLOTS;
		size_t n = (size_t)(64 * KIB * pow(256.0, rnd01(&r)));

		sum += replace_block(&slot[k], n, (unsigned char)i);
	}
	for (i = 0; i < SLOTS; i++)
		free(slot[i]);
	for (i = 0; i < grows; i++) {
		size_t n = 64 * KIB, old = 0;
		char *p = NULL;

		while (n <= 16 * MIB) {
			char *q = realloc(p, n);

			if (!q) {
				fprintf(stderr, "large: realloc(%zu) failed\n", n);
				return 1;
			}
			p = q;
			if (old)
				sum += (unsigned char)p[old - 1];
			touch(p + old, n - old, (unsigned char)n);
			old = n;
			n = n * 3 / 2;
		}
		free(p);
	}
	printf("large: %ld random blocks, %ld realloc growths, sum %llu\n",
	       steps, grows, (unsigned long long)sum);
	return 0;
}
