/*
 * queue.h: a bounded queue of pointer batches between threads, for the
 * bench/ workloads that hand objects over (pingpong, handoff). A mutex, two
 * condition variables, QUEUE_LEN slots; put() blocks while full, get()
 * while empty. Not a test, and no allocator in it: the slots are static.
 */
#ifndef BENCH_QUEUE_H
#define BENCH_QUEUE_H

#include <pthread.h>

#define QUEUE_LEN	8

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t nonempty, nonfull;
	void *slot[QUEUE_LEN];
	int head, count;
};

static inline void queue_init(struct queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->nonempty, NULL);
	pthread_cond_init(&q->nonfull, NULL);
	q->head = q->count = 0;
}

static inline void queue_put(struct queue *q, void *b)
{
	pthread_mutex_lock(&q->lock);
	while (q->count == QUEUE_LEN)
		pthread_cond_wait(&q->nonfull, &q->lock);
	q->slot[(q->head + q->count) % QUEUE_LEN] = b;
	q->count++;
	pthread_cond_signal(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
}

static inline void *queue_get(struct queue *q)
{
	void *b;

	pthread_mutex_lock(&q->lock);
	while (q->count == 0)
		pthread_cond_wait(&q->nonempty, &q->lock);
	b = q->slot[q->head];
	q->head = (q->head + 1) % QUEUE_LEN;
	q->count--;
	pthread_cond_signal(&q->nonfull);
	pthread_mutex_unlock(&q->lock);
	return b;
}

#endif
