/*
 * largemt: threads that each allocate and free large blocks at once, the
 * buffers of a server's workers (issue 12, item 3): THREADS threads, each
 * with LIVE blocks it replaces at random, 3 of 4 of one of seven buffer
 * sizes of 33-256 KiB, the rest any size in that range, touched one byte
 * per page. An allocator whose large path takes one process-wide lock
 * makes the threads queue on it.
 *   metric steps_per_s: replacements per second over all threads.
 */
#include <math.h>
#include <pthread.h>
#include "common.h"

#define THREADS	4
#define LIVE	8
#define KIB	1024UL

static const size_t buffers[] = { 33 * KIB, 48 * KIB, 64 * KIB, 96 * KIB,
				  128 * KIB, 192 * KIB, 256 * KIB };
static long steps;
static uint64_t sums[THREADS];

static size_t pick(uint64_t *r)
{
	uint64_t x = rnd(r);

	if (x & 3)
		return buffers[(x >> 8) % (sizeof(buffers) / sizeof(buffers[0]))];
	return (size_t)(33 * KIB * pow(256.0 / 33, rnd01(r)));
}

static void *worker(void *arg)
{
	long id = (long)arg, i;
	uint64_t r = 0x9e3779b97f4a7c15ULL * (id + 1), sum = 0;
	char *slot[LIVE] = { 0 };

	for (i = 0; i < steps; i++) {
		size_t k = rnd(&r) % LIVE, n = pick(&r);

		sum += replace_block(&slot[k], n, (unsigned char)i);
	}
	for (i = 0; i < LIVE; i++)
		free(slot[i]);
	sums[id] = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	double scale = bench_scale(argc, argv), t0;
	pthread_t t[THREADS];
	uint64_t sum = 0;
	long i;

	steps = scaled(scale, 20000);
	t0 = now_s();
	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < THREADS; i++)
		sum += sums[i];
	printf("largemt: %d threads x %ld replacements of 33-256 KiB blocks, sum %llu\n",
	       THREADS, steps, (unsigned long long)sum);
	printf("metric steps_per_s %.0f\n", THREADS * steps / (now_s() - t0));
	return 0;
}
