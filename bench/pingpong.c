/*
 * pingpong: objects cross threads in both directions. PAIRS pairs of
 * threads; each thread allocates a batch of BATCH objects of 16 B-4 KiB
 * (sizes drawn log-uniformly: as many 16-64 B as 1-4 KiB objects), fills
 * their first 16 bytes, sends the batch to its partner through a queue,
 * then takes the partner's batch, reads and frees every object. So every
 * free is of an object another thread allocated, and each thread both
 * allocates and frees (unlike prodcons, where a thread does one or the
 * other).
 */
#include <math.h>
#include "common.h"
#include "queue.h"

#define PAIRS	2
#define BATCH	256

static struct queue q[2 * PAIRS];	/* q[i]: into thread i */
static long rounds;
static uint64_t sums[2 * PAIRS];

static size_t pick_size(uint64_t *r)
{
	/* 2^(4 + 8u): 16 B .. 4 KiB, log-uniform */
	return (size_t)exp2(4.0 + 8.0 * rnd01(r));
}

static void *worker(void *arg)
{
	long id = (long)arg, partner = id ^ 1, i;
	uint64_t r = 0x9e3779b97f4a7c15ULL * (id + 1), sum = 0;
	int j;

	for (i = 0; i < rounds; i++) {
		char **b = xmalloc(BATCH * sizeof(*b));

		for (j = 0; j < BATCH; j++) {
			b[j] = xmalloc(pick_size(&r));
			memset(b[j], j, 16);
		}
		queue_put(&q[partner], b);
		b = queue_get(&q[id]);
		sum += free_batch(b, BATCH);
	}
	sums[id] = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	double scale = bench_scale(argc, argv);
	pthread_t t[2 * PAIRS];
	uint64_t sum = 0;
	long i;

	rounds = scaled(scale, 2000);
	for (i = 0; i < 2 * PAIRS; i++)
		queue_init(&q[i]);
	for (i = 0; i < 2 * PAIRS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (i = 0; i < 2 * PAIRS; i++) {
		pthread_join(t[i], NULL);
		sum += sums[i];
	}
	printf("pingpong: %d threads x %ld rounds x %d objects each way, sum %llu\n",
	       2 * PAIRS, rounds, BATCH, (unsigned long long)sum);
	return 0;
}
