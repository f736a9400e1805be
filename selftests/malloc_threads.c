// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_threads: libspanalloc under threads — churn with objects freed by
 * other threads than their allocator, thread caches handed back at thread
 * exit, and fork() while other threads allocate (the child must not
 * inherit a held lock, and must see its own copy of the heap), and large
 * blocks carved, merged and resized from every thread at once. Every
 * object carries a pattern checked before it is freed, so an object
 * handed out twice shows.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spanalloc.h"
#include "kselftest_harness.h"

/*
 * The harness gives a test 30 s; a debug kernel (KASAN, lockdep) in
 * software emulation needs more. A hang guard, not a time limit.
 */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

#define THREADS	4
#define RING	1024

/* Objects start with their size and a tag, and are filled with the tag. */
struct obj {
	size_t size;
	uint64_t tag;
};

static void *obj_new(size_t size, uint64_t tag)
{
	struct obj *o;

	if (size < sizeof(*o))
		size = sizeof(*o);
	o = span_malloc(size);
	if (!o)
		return NULL;
	o->size = size;
	o->tag = tag;
	memset(o + 1, (int)(tag & 0xff), size - sizeof(*o));
	return o;
}

static bool obj_ok(const struct obj *o)
{
	const unsigned char *c = (const void *)(o + 1);
	size_t i;

	for (i = 0; i < o->size - sizeof(*o); i++)
		if (c[i] != (unsigned char)(o->tag & 0xff))
			return false;
	return true;
}

/* A ring per thread: others push objects into it, the owner frees them. */
struct ring {
	_Atomic(void *) slot[RING];
};

static struct ring rings[THREADS];
static atomic_int bad;
static atomic_bool stop;

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *churn(void *arg)
{
	long id = (long)arg, i;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
	void *mine[256] = { 0 };

	for (i = 0; i < 40000; i++) {
		uint64_t r = xorshift(&seed);
		unsigned int k = r % 256;
		size_t size = (r >> 16) % 64 == 0 ? (r >> 24) % 40000 :
			      (r >> 24) % 300;
		struct obj *o = mine[k], *x;

		if (o) {
			if (!obj_ok(o))
				atomic_fetch_add(&bad, 1);
			/* Half the time, another thread frees it. */
			if (r & 1) {
				struct ring *to = &rings[(r >> 8) % THREADS];

				o = atomic_exchange(&to->slot[(r >> 32) % RING],
						    o);
			}
			if (o) {
				if (!obj_ok(o))
					atomic_fetch_add(&bad, 1);
				span_free(o);
			}
		}
		mine[k] = obj_new(size, r);
		/* Drain our own ring now and then. */
		x = atomic_exchange(&rings[id].slot[r % RING], NULL);
		if (x) {
			if (!obj_ok(x))
				atomic_fetch_add(&bad, 1);
			span_free(x);
		}
	}
	for (i = 0; i < 256; i++)
		span_free(mine[i]);
	return NULL;
}

TEST(cross_thread_churn)
{
	pthread_t t[THREADS];
	struct span_stats st;
	long i, j;

	TH_LOG("backend: %s", span_backend());
	for (i = 0; i < THREADS; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, churn, (void *)i));
	for (i = 0; i < THREADS; i++)
		ASSERT_EQ(0, pthread_join(t[i], NULL));
	EXPECT_EQ(0, atomic_load(&bad));
	for (i = 0; i < THREADS; i++)
		for (j = 0; j < RING; j++) {
			struct obj *o = atomic_exchange(&rings[i].slot[j],
							NULL);

			if (o) {
				EXPECT_TRUE(obj_ok(o));
				span_free(o);
			}
		}
	span_trim();	/* this thread's cached large spans go back too */
	span_stats(&st);
	EXPECT_LE((uint64_t)THREADS, st.threads_exited);
	EXPECT_EQ(0, st.large_live);
}

static void *alloc_and_exit(void *arg)
{
	void *v[200];
	int i;

	(void)arg;
	for (i = 0; i < 200; i++)
		v[i] = span_malloc(64);
	for (i = 0; i < 200; i++)
		span_free(v[i]);
	return NULL;
}

/* A thread's cached objects go back to central when it exits. */
TEST(thread_exit_flushes)
{
	struct span_stats a, b;
	pthread_t t;

	span_stats(&a);
	ASSERT_EQ(0, pthread_create(&t, NULL, alloc_and_exit, NULL));
	ASSERT_EQ(0, pthread_join(t, NULL));
	span_stats(&b);
	EXPECT_EQ(a.threads + 1, b.threads);
	EXPECT_EQ(a.threads_exited + 1, b.threads_exited);
	/* Everything it freed is back in central: at least 200 x 64 B. */
	EXPECT_LE(a.small_central_free_bytes + 200 * 64,
		  b.small_central_free_bytes);
}

/*
 * A destructor of the program's that runs after the thread cache's (it
 * sets its value again, so it runs in each of the destructor rounds): the
 * cache is dead by then, every malloc goes to central and every free back.
 */
static pthread_key_t late_key;
static atomic_int late_rounds, late_bad;

static void late_destructor(void *arg)
{
	void *v[300];
	int i;

	for (i = 0; i < 300; i++) {
		v[i] = obj_new(16 + i % 7 * 48, i);
		if (!v[i])
			atomic_fetch_add(&late_bad, 1);
	}
	for (i = 0; i < 300; i++) {
		if (v[i] && !obj_ok(v[i]))
			atomic_fetch_add(&late_bad, 1);
		span_free(v[i]);
	}
	if (atomic_fetch_add(&late_rounds, 1) < 2)
		pthread_setspecific(late_key, arg);
}

static void *alloc_with_late_destructor(void *arg)
{
	void *p = span_malloc(64);

	pthread_setspecific(late_key, arg);
	span_free(p);
	return NULL;
}

/*
 * malloc and free in destructors after the thread cache's own (review of
 * the bin counters: a malloc in a dead cache once left its bin's count at
 * -1, and the next free drained 2^32 objects).
 */
TEST(malloc_after_thread_cache_exit)
{
	struct span_stats a, b;
	pthread_t t;

	ASSERT_EQ(0, pthread_key_create(&late_key, late_destructor));
	span_stats(&a);
	ASSERT_EQ(0, pthread_create(&t, NULL, alloc_with_late_destructor,
				    (void *)1));
	ASSERT_EQ(0, pthread_join(t, NULL));
	span_stats(&b);
	EXPECT_EQ(3, atomic_load(&late_rounds));
	EXPECT_EQ(0, atomic_load(&late_bad));
	EXPECT_EQ(a.threads_exited + 1, b.threads_exited);
	pthread_key_delete(late_key);
}

static void *spin_alloc(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg | 1;

	while (!atomic_load(&stop)) {
		void *v[64];
		int i;

		for (i = 0; i < 64; i++)
			v[i] = obj_new(xorshift(&seed) % 2000, i);
		if (xorshift(&seed) % 8 == 0)
			span_free(obj_new(100000 + i, 1));
		for (i = 0; i < 64; i++) {
			if (!obj_ok(v[i]))
				atomic_fetch_add(&bad, 1);
			span_free(v[i]);
		}
	}
	return NULL;
}

/* fork() while others allocate: the child allocates freely, no deadlock. */
TEST(fork_while_allocating)
{
	pthread_t t[THREADS];
	long i;
	int k;

	atomic_store(&stop, false);
	for (i = 0; i < THREADS; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, spin_alloc,
					    (void *)(i + 1)));
	for (k = 0; k < 10; k++) {
		int status = 0;
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid) {
			void *v[1000];
			int j;

			alarm(120);	/* a hang guard, not a time limit */
			for (j = 0; j < 1000; j++)
				v[j] = obj_new(j % 100 ? (size_t)j * 37 % 3000 : 100000, j);
			for (j = 0; j < 1000; j++) {
				if (!obj_ok(v[j]))
					_exit(2);
				span_free(v[j]);
			}
			_exit(0);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFEXITED(status)) TH_LOG("child status %#x",
						       status);
		EXPECT_EQ(0, WEXITSTATUS(status));
	}
	atomic_store(&stop, true);
	for (i = 0; i < THREADS; i++)
		ASSERT_EQ(0, pthread_join(t[i], NULL));
	EXPECT_EQ(0, atomic_load(&bad));
}

/*
 * After fork the parent frees objects and reuses their memory (other
 * sizes, so spans may change class); the child's objects keep their
 * contents, and the child can still free them.
 */
TEST(fork_then_parent_reuses)
{
	enum { N = 3000 };
	static struct obj *v[N];
	int fds[2], status = 0, i;
	char go;
	pid_t pid;

	for (i = 0; i < N; i++)
		v[i] = obj_new(16 + (size_t)(i % 50) * 16, (uint64_t)i);
	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		alarm(120);	/* a hang guard, not a time limit */
		close(fds[1]);
		if (read(fds[0], &go, 1) != 1)
			_exit(3);
		for (i = 0; i < N; i++)
			if (v[i]->tag != (uint64_t)i || !obj_ok(v[i]))
				_exit(2);
		for (i = 0; i < N; i++)
			span_free(v[i]);
		span_trim();
		for (i = 0; i < N; i++)
			span_free(obj_new(1000, 1));
		_exit(0);
	}
	close(fds[0]);
	for (i = 0; i < N; i++)
		span_free(v[i]);
	span_trim();	/* spans go back to the backend now */
	for (i = 0; i < N; i++)
		v[i] = obj_new(700, 0xee);
	ASSERT_EQ(1, write(fds[1], "g", 1));
	close(fds[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("child status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
	for (i = 0; i < N; i++)
		span_free(v[i]);
}

/*
 * Large blocks from every thread at once: carved from and merged into the
 * same free runs, grown and shrunk by realloc. Each block holds its owner
 * and size at both ends and in the middle; an overlap would show.
 */
#define LARGE_SLOTS	6

static void large_stamp(uint64_t *p, size_t bytes, uint64_t tag)
{
	size_t n = bytes / sizeof(uint64_t);

	p[0] = tag;
	p[n / 2] = tag;
	p[n - 1] = tag;
}

static bool large_ok(const uint64_t *p, size_t bytes, uint64_t tag)
{
	size_t n = bytes / sizeof(uint64_t);

	return p[0] == tag && p[n / 2] == tag && p[n - 1] == tag;
}

static void *large_churn(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 7919 + 17, tag;
	uint64_t *slot[LARGE_SLOTS] = { 0 };
	size_t size[LARGE_SLOTS] = { 0 };
	int i, k;

	for (i = 0; i < 1500 && !atomic_load(&bad); i++) {
		k = (int)(xorshift(&seed) % LARGE_SLOTS);
		if (slot[k] && !large_ok(slot[k], size[k],
					 ((uintptr_t)arg << 32) | size[k]))
			atomic_fetch_add(&bad, 1);
		if (slot[k] && xorshift(&seed) % 3 == 0) {
			size_t n = 40000 + xorshift(&seed) % (3 << 20);
			size_t keep = n < size[k] ? n : size[k];
			uint64_t *q = span_realloc(slot[k], n);

			if (!q) {
				atomic_fetch_add(&bad, 1);
				break;
			}
			/* What was kept of the old block is still there. */
			if (q[0] != (((uintptr_t)arg << 32) | size[k]) ||
			    (keep == size[k] &&
			     q[keep / sizeof(uint64_t) - 1] != q[0]))
				atomic_fetch_add(&bad, 1);
			slot[k] = q;
			size[k] = n & ~(size_t)7;
		} else {
			span_free(slot[k]);
			size[k] = (40000 + xorshift(&seed) % (3 << 20)) & ~7UL;
			slot[k] = span_malloc(size[k]);
			if (!slot[k]) {
				atomic_fetch_add(&bad, 1);
				break;
			}
		}
		tag = ((uintptr_t)arg << 32) | size[k];
		large_stamp(slot[k], size[k], tag);
	}
	for (k = 0; k < LARGE_SLOTS; k++)
		span_free(slot[k]);
	return NULL;
}

TEST(large_threads_churn)
{
	pthread_t t[THREADS];
	uintptr_t i;

	atomic_store(&bad, 0);
	for (i = 0; i < THREADS; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, large_churn,
					    (void *)(i + 1)));
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	EXPECT_EQ(0, atomic_load(&bad));
}

TEST_HARNESS_MAIN
