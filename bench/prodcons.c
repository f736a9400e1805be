/*
 * prodcons: producer/consumer threads. Each producer only allocates
 * (16..256 B objects, filled in) and hands them over in batches of 256
 * through a small mutex-protected queue; its consumer only reads and frees.
 * Two pairs.
 */
#include <pthread.h>
#include "common.h"

#define PAIRS	2
#define BATCH	256
#define QLEN	8

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char **slot[QLEN];
	int head, tail, count;
};

static struct queue q[PAIRS];
static long batches;
static uint64_t sums[PAIRS];

static void put(struct queue *qu, char **b)
{
	pthread_mutex_lock(&qu->lock);
	while (qu->count == QLEN)
		pthread_cond_wait(&qu->cond, &qu->lock);
	qu->slot[qu->tail] = b;
	qu->tail = (qu->tail + 1) % QLEN;
	qu->count++;
	pthread_cond_broadcast(&qu->cond);
	pthread_mutex_unlock(&qu->lock);
}

static char **get(struct queue *qu)
{
	char **b;

	pthread_mutex_lock(&qu->lock);
	while (qu->count == 0)
		pthread_cond_wait(&qu->cond, &qu->lock);
	b = qu->slot[qu->head];
	qu->head = (qu->head + 1) % QLEN;
	qu->count--;
	pthread_cond_broadcast(&qu->cond);
	pthread_mutex_unlock(&qu->lock);
	return b;
}

static void *producer(void *arg)
{
	long id = (long)arg, i;
	uint64_t r = 1234 + id;
	int j;

	for (i = 0; i < batches; i++) {
		char **b = xmalloc(BATCH * sizeof(*b));

		for (j = 0; j < BATCH; j++) {
			size_t n = 16 + rnd(&r) % 241;

			b[j] = xmalloc(n);
			memset(b[j], j, 16);
		}
		put(&q[id], b);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	long id = (long)arg, i;
	uint64_t sum = 0;

	for (i = 0; i < batches; i++)
		sum += free_batch(get(&q[id]), BATCH);
	sums[id] = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	double scale = bench_scale(argc, argv);
	pthread_t p[PAIRS], c[PAIRS];
	uint64_t sum = 0;
	long i;

	batches = scaled(scale, 4000);
	for (i = 0; i < PAIRS; i++) {
		pthread_mutex_init(&q[i].lock, NULL);
		pthread_cond_init(&q[i].cond, NULL);
		pthread_create(&c[i], NULL, consumer, (void *)i);
		pthread_create(&p[i], NULL, producer, (void *)i);
	}
	for (i = 0; i < PAIRS; i++) {
		pthread_join(p[i], NULL);
		pthread_join(c[i], NULL);
		sum += sums[i];
	}
	printf("prodcons: %d pairs x %ld batches of %d, sum %llu\n", PAIRS,
	       batches, BATCH, (unsigned long long)sum);
	return 0;
}
