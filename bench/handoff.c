/*
 * handoff: many threads allocate, hand over and free. N threads stand in a
 * ring; each allocates a batch of BATCH objects of 16-512 B, passes it to
 * the next thread through a queue, takes the previous thread's batch and
 * frees it. Run twice: with 8 threads (more threads than cores on a small
 * machine) and with as many threads as the machine has CPUs (skipped when
 * that is 8 as well). The wall time covers both; each phase's time is a
 * metric.
 */
#include <unistd.h>
#include "common.h"
#include "queue.h"

#define MIN_THREADS	8
#define MAX_THREADS	256
#define BATCH		128

static struct queue q[MAX_THREADS];	/* q[i]: into thread i */
static int nthreads;
static long rounds;
static uint64_t sums[MAX_THREADS];

static void *worker(void *arg)
{
	long id = (long)arg, i;
	uint64_t r = 0x9e3779b97f4a7c15ULL * (id + 1), sum = 0;
	int j;

	for (i = 0; i < rounds; i++) {
		char **b = xmalloc(BATCH * sizeof(*b));

		for (j = 0; j < BATCH; j++) {
			size_t n = 16 + rnd(&r) % 497;

			b[j] = xmalloc(n);
			b[j][0] = (char)j;
			b[j][n - 1] = (char)i;
		}
		queue_put(&q[(id + 1) % nthreads], b);
		b = queue_get(&q[id]);
		for (j = 0; j < BATCH; j++) {
			sum += (unsigned char)b[j][0];
			free(b[j]);
		}
		free(b);
	}
	sums[id] = sum;
	return NULL;
}

/* One phase with @n threads, @total batches in all; its time in seconds. */
static double phase(int n, long total, uint64_t *sum)
{
	pthread_t t[MAX_THREADS];
	double t0 = now_s();
	long i;

	nthreads = n;
	rounds = total / n > 0 ? total / n : 1;
	for (i = 0; i < n; i++)
		queue_init(&q[i]);
	for (i = 0; i < n; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		*sum += sums[i];
	}
	return now_s() - t0;
}

int main(int argc, char **argv)
{
	double scale = bench_scale(argc, argv);
	long total = scaled(scale, 16000), ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t sum = 0;
	double t8, tn = 0;

	if (ncpu < 1)
		ncpu = 1;
	if (ncpu > MAX_THREADS)
		ncpu = MAX_THREADS;
	t8 = phase(MIN_THREADS, total, &sum);
	if (ncpu != MIN_THREADS)
		tn = phase((int)ncpu, total, &sum);
	printf("handoff: %ld batches of %d in a ring of %d threads %.3f s, of %ld threads %.3f s, sum %llu\n",
	       total, BATCH, MIN_THREADS, t8, ncpu, tn, (unsigned long long)sum);
	printf("metric ring8_s %.4f\nmetric ringcpus_s %.4f\n", t8, tn);
	return 0;
}
