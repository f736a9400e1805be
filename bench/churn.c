/*
 * churn: single-thread small-object churn, many sizes (8 B .. 2 KiB, most
 * small), in two free orders:
 *   - LIFO: allocate a burst, free it newest first (stack-like lifetimes);
 *   - random: a pool of live objects, each step frees a random one and
 *     allocates a new object of a random size in its place.
 */
#include "common.h"

#define BURST	256
#define POOL	20000

static size_t pick_size(uint64_t *r)
{
	uint64_t x = rnd(r);

	switch (x & 7) {
	case 0: case 1: case 2: return 8 + (x >> 8) % 57;	/* 8..64 */
	case 3: case 4: return 64 + (x >> 8) % 193;		/* 64..256 */
	case 5: case 6: return 256 + (x >> 8) % 769;		/* 256..1024 */
	default: return 1024 + (x >> 8) % 1025;			/* 1..2 KiB */
	}
}

int main(int argc, char **argv)
{
	double scale = bench_scale(argc, argv);
	long rounds = scaled(scale, 2000), steps = scaled(scale, 600000);
	static char *burst[BURST];
	char **pool = xmalloc(POOL * sizeof(*pool));
	uint64_t r = 42, sum = 0;
	long i, j;

	for (i = 0; i < rounds; i++) {
		for (j = 0; j < BURST; j++) {
			size_t n = pick_size(&r);

			burst[j] = xmalloc(n);
			burst[j][0] = (char)j;
			burst[j][n - 1] = (char)i;
		}
		for (j = BURST - 1; j >= 0; j--) {
			sum += (unsigned char)burst[j][0];
			free(burst[j]);
		}
	}
	for (j = 0; j < POOL; j++) {
		pool[j] = xmalloc(pick_size(&r));
		pool[j][0] = 1;
	}
	for (i = 0; i < steps; i++) {
		size_t k = rnd(&r) % POOL, n = pick_size(&r);

		sum += (unsigned char)pool[k][0];
		free(pool[k]);
		pool[k] = xmalloc(n);
		pool[k][0] = (char)i;
		pool[k][n - 1] = 0;
	}
	for (j = 0; j < POOL; j++)
		free(pool[j]);
	free(pool);
	printf("churn: %ld LIFO bursts of %d, %ld random replacements, sum %llu\n",
	       rounds, BURST, steps, (unsigned long long)sum);
	return 0;
}
