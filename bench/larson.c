/*
 * larson: a server-style workload after Larson & Krishnan's benchmark.
 * THREADS workers share SLOTS pointers cut into one chunk per worker. In each
 * epoch a worker replaces random objects of its chunk (free the old one,
 * allocate 16..512 B); between epochs the chunks move on to the next worker,
 * so most frees are of objects that another thread allocated.
 */
#include <pthread.h>
#include "common.h"

#define THREADS	4
#define CHUNK	4000

static char *slots[THREADS][CHUNK];
static pthread_barrier_t bar;
static long epochs, steps;
static uint64_t sums[THREADS];

static void *worker(void *arg)
{
	long id = (long)arg, e, i;
	uint64_t r = 0x9e3779b97f4a7c15ULL * (id + 1), sum = 0;

	for (e = 0; e < epochs; e++) {
		char **c = slots[(id + e) % THREADS];

		for (i = 0; i < steps; i++) {
			size_t k = rnd(&r) % CHUNK, n = 16 + rnd(&r) % 497;

			if (c[k]) {
				sum += (unsigned char)c[k][0];
				free(c[k]);
			}
			c[k] = xmalloc(n);
			c[k][0] = (char)i;
			c[k][n - 1] = (char)e;
		}
		pthread_barrier_wait(&bar);
	}
	sums[id] = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	double scale = bench_scale(argc, argv);
	pthread_t t[THREADS];
	uint64_t sum = 0;
	long i, k;

	epochs = 40;
	steps = scaled(scale, 8000);
	pthread_barrier_init(&bar, NULL, THREADS);
	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		sum += sums[i];
	}
	for (i = 0; i < THREADS; i++)
		for (k = 0; k < CHUNK; k++)
			free(slots[i][k]);
	printf("larson: %d threads x %ld epochs x %ld replacements, sum %llu\n",
	       THREADS, epochs, steps, (unsigned long long)sum);
	return 0;
}
