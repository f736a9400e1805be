// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_static: a static binary (-static) linked with
 * libspanalloc-malloc.a gets spanalloc as its malloc, the C library's own
 * allocations included (stdio buffers, strdup, qsort's scratch), with
 * threads that exit and fork() while they allocate.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spanalloc.h"
#include "kselftest_harness.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300	/* a hang guard, not a time limit */

/* span_malloc_usable_size() aborts on a pointer spanalloc did not hand out. */
TEST(malloc_is_spanalloc)
{
	char *p = malloc(100), *s = strdup("static"), *a = NULL;

	TH_LOG("backend: %s", span_backend());
	ASSERT_NE(NULL, p);
	EXPECT_EQ(112, span_malloc_usable_size(p));
	EXPECT_LE(7, span_malloc_usable_size(s));
	ASSERT_LT(0, asprintf(&a, "%0*d", 5000, 7));
	EXPECT_LE(5001, span_malloc_usable_size(a));
	free(p);
	free(s);
	free(a);
	p = calloc(1, 1 << 20);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(1 << 20, span_malloc_usable_size(p));
	p = realloc(p, 3 << 20);
	ASSERT_NE(NULL, p);
	free(p);
}

static void *worker(void *arg)
{
	void *v[1000];
	int i, round;

	(void)arg;
	for (round = 0; round < 20; round++) {
		for (i = 0; i < 1000; i++) {
			v[i] = malloc(16 + (i * 37) % 3000);
			if (!v[i])
				return (void *)1;
			memset(v[i], i, 16);
		}
		for (i = 0; i < 1000; i++)
			free(v[i]);
	}
	return NULL;
}

TEST(threads_exit_and_fork)
{
	pthread_t t[4];
	struct span_stats st;
	void *ret;
	int i, status;
	pid_t pid;

	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, worker, NULL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(worker(NULL) ? 1 : 0);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, pthread_join(t[i], &ret));
		EXPECT_EQ(NULL, ret);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	span_stats(&st);
	EXPECT_LE(4, st.threads_exited);
}

/* glibc's names come from the same archive. */
TEST(mallinfo2_is_spanalloc)
{
	void *p = malloc(2 << 20);
	struct mallinfo2 mi;

	ASSERT_NE(NULL, p);
	memset(p, 1, 2 << 20);
	mi = mallinfo2();
	EXPECT_LE(2 << 20, mi.hblkhd);
	free(p);
}

TEST_HARNESS_MAIN
