/*
 * falseshare: false-sharing check, in the two forms of Hoard's tests.
 *   - passive (cache-scratch): the main thread allocates one small object per
 *     worker, back to back, and hands them out; each worker frees it, then
 *     repeatedly allocates an object of the same size, writes it many times
 *     and frees it. An allocator that gives a freed object back to the
 *     thread that frees it keeps workers on separate cache lines.
 *   - active (cache-thrash): each worker allocates its own small objects and
 *     writes them many times; objects of two threads on one cache line
 *     thrash it.
 * Only shows natively: QEMU/TCG models no caches.
 */
#include <pthread.h>
#include "common.h"

#define THREADS	2
#define OBJ	8

static long iters, writes;
static char *handed[THREADS];

static void hammer(volatile char *p)
{
	long w;

	for (w = 0; w < writes; w++)
		p[w % OBJ]++;
}

static void *scratch(void *arg)
{
	long id = (long)arg, i;
	char *p = handed[id];

	hammer(p);
	free(p);
	for (i = 0; i < iters; i++) {
		p = xmalloc(OBJ);
		hammer(p);
		free(p);
	}
	return NULL;
}

static void *thrash(void *arg)
{
	long i;

	(void)arg;
	for (i = 0; i < iters; i++) {
		char *p = xmalloc(OBJ);

		hammer(p);
		free(p);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double scale = bench_scale(argc, argv);
	pthread_t t[THREADS];
	double t0, t1, t2;
	long i;

	iters = scaled(scale, 20000);
	writes = 500;
	t0 = now_s();
	for (i = 0; i < THREADS; i++)
		handed[i] = xmalloc(OBJ);
	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, scratch, (void *)i);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	t1 = now_s();
	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, thrash, NULL);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	t2 = now_s();
	printf("falseshare: %d threads x %ld objects x %ld writes; passive %.3f s, active %.3f s\n",
	       THREADS, iters, writes, t1 - t0, t2 - t1);
	printf("metric passive_s %.4f\nmetric active_s %.4f\n", t1 - t0, t2 - t1);
	return 0;
}
