// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_remote: objects of the owned classes (8 and 16 bytes) that one
 * thread frees and another allocated (userlib/remote.c). Such an object
 * never goes back out from the freeing thread's bin: it reaches its
 * span's owner through the owner's inbox, or central when the owner is
 * gone (thread exit, or a thread a fork child does not have); a new
 * thread adopts a closed inbox; malloc_trim() empties idle owners'
 * inboxes, and a sender those of owners idle for the decay interval; a
 * thread keeps its own objects; sorts that find nothing to send back off.
 * Checked through the library's internal interfaces.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "kselftest_harness.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

#define SIZE	16	/* an owned class */
#define MANY	4096	/* more than a bin of the class holds */

static unsigned int cls;

static void init(void)
{
	span_free(span_malloc(1));
	cls = span_class_of(SIZE);
	/*
	 * No owner counts as idle (remote.c: after the decay interval
	 * without a restock its objects go to central), however slow the
	 * machine: the tests below decide what is idle themselves.
	 */
	_span_opt.decay_ms = UINT64_MAX / 2;
}

static struct span *span_of(void *p)
{
	return span_pagemap_get((uintptr_t)p);
}

/* Allocate up to MANY objects into @v until @p comes out; its index or -1. */
static int malloc_until(void **v, void *p)
{
	int i;

	for (i = 0; i < MANY; i++) {
		v[i] = span_malloc(SIZE);
		if (v[i] == p) {
			v[i + 1] = NULL;
			return i;
		}
	}
	v[i - 1] = NULL;
	return -1;
}

static void free_all(void **v)
{
	int i;

	for (i = 0; i < MANY && v[i]; i++)
		span_free(v[i]);
}

/* Objects the thread a test starts sees and does. */
struct remote_job {
	void *obj;		/* in: another thread's object to free */
	struct span_inbox *inbox;	/* out: this thread's inbox */
	int handed_out;		/* out: obj came out of this thread's malloc */
	int in_owner_inbox;	/* out: obj waits in @owner's inbox */
	struct span_inbox *owner;	/* in */
	pthread_barrier_t *hold;	/* in: wait here before exiting */
	void *own;		/* out: an object of this thread */
	void *own2;		/* out: another (alloc_two_and_hold()) */
};

static void *freer(void *arg)
{
	struct remote_job *j = arg;
	void **v = calloc(MANY + 1, sizeof(*v));
	int i;

	j->inbox = _span_tc.inbox;
	span_free(j->obj);
	for (i = 0; i < MANY; i++)
		v[i] = span_malloc(SIZE);
	for (i = 0; i < MANY; i++)
		j->handed_out |= v[i] == j->obj;
	if (j->owner)
		j->in_owner_inbox = _span_inbox_has(j->owner, cls, j->obj);
	for (i = 0; i < MANY; i++)
		span_free(v[i]);
	free(v);
	if (j->hold)
		pthread_barrier_wait(j->hold);
	return NULL;
}

/*
 * Passive false sharing: another thread frees our object; its malloc()
 * never hands that object out, and it comes back to us.
 */
TEST(foreign_free_goes_home)
{
	struct remote_job j = { 0 };
	void **v = calloc(MANY + 1, sizeof(*v));
	pthread_t t;

	init();
	j.obj = span_malloc(SIZE);
	j.owner = _span_tc.inbox;
	ASSERT_NE(NULL, j.owner);
	ASSERT_EQ(j.owner, span_of(j.obj)->owner);
	ASSERT_EQ(0, pthread_create(&t, NULL, freer, &j));
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_FALSE(j.handed_out) TH_LOG("the freeing thread reused it");
	EXPECT_TRUE(j.in_owner_inbox) TH_LOG("not sent to its owner");
	/* Still ours: our bin runs empty, the inbox refills it. */
	EXPECT_LE(0, malloc_until(v, j.obj)) TH_LOG("never came back");
	free_all(v);
	free(v);
}

static void *own_churn(void *arg)
{
	void **v = calloc(MANY + 1, sizeof(*v));
	void *p = span_malloc(SIZE);
	int *found = arg;

	span_free(p);
	/* Sorted with another thread alive: ours stays ours. */
	*found = malloc_until(v, p) >= 0 &&
		 !_span_inbox_has(_span_tc.inbox, cls, p);
	free_all(v);
	free(v);
	return NULL;
}

/* A thread's own frees stay with it while other threads run. */
TEST(own_free_stays)
{
	pthread_t t;
	int found = 0;

	init();
	ASSERT_EQ(0, pthread_create(&t, NULL, own_churn, &found));
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_TRUE(found);
}

static void *alloc_and_exit(void *arg)
{
	struct remote_job *j = arg;

	j->own = span_malloc(SIZE);
	j->inbox = _span_tc.inbox;
	return NULL;
}

static void *wait_on(void *arg)
{
	span_free(span_malloc(SIZE));	/* an inbox of its own */
	pthread_barrier_wait(arg);	/* has it */
	pthread_barrier_wait(arg);	/* the test is done */
	return NULL;
}

/* More of our own objects than a bin's cap holds. */
static void **alloc_many(void)
{
	void **v = calloc(MANY, sizeof(*v));
	int i;

	for (i = 0; i < MANY; i++)
		v[i] = span_malloc(SIZE);
	return v;
}

/*
 * Free @p so that the staging bin is sorted at once: @p, then @v (from
 * alloc_many()), which overflow it; the back-off of sorts that found only
 * our objects is cleared first. @v was allocated before @p's owner
 * allocated @p: a refill of ours from @p's span would make it ours, and
 * a refill after the sort could take @p back from central.
 */
static void free_and_sort(void *p, void **v)
{
	int i;

	_span_tc.sort_skip[cls - 1] = 0;	/* no back-off (cache.c) */
	span_free(p);
	for (i = 0; i < MANY; i++)
		span_free(v[i]);
	free(v);
}

/*
 * The owner exited: a free of its object goes to central (its inbox is
 * closed), and the next new thread reopens that inbox.
 */
TEST(exited_owner)
{
	struct remote_job j = { 0 }, k = { 0 };
	pthread_barrier_t hold;
	void **v;
	pthread_t t, other;

	init();
	ASSERT_EQ(0, pthread_barrier_init(&hold, NULL, 2));
	/* A third thread alive, so that this one sorts. */
	ASSERT_EQ(0, pthread_create(&other, NULL, wait_on, &hold));
	pthread_barrier_wait(&hold);	/* before the inbox below closes */
	v = alloc_many();
	ASSERT_EQ(0, pthread_create(&t, NULL, alloc_and_exit, &j));
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(j.inbox, span_of(j.own)->owner);
	EXPECT_FALSE(j.inbox->open);
	free_and_sort(j.own, v);
	EXPECT_TRUE(_span_central_has_free(span_of(j.own), (uintptr_t)j.own))
		TH_LOG("the exited owner's object is not in central");
	/* Adopted: a new thread takes the closed inbox. */
	ASSERT_EQ(0, pthread_create(&t, NULL, alloc_and_exit, &k));
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(j.inbox, k.inbox);
	span_free(k.own);
	pthread_barrier_wait(&hold);
	ASSERT_EQ(0, pthread_join(other, NULL));
	pthread_barrier_destroy(&hold);
}

static pthread_barrier_t hold_both;

/* Allocates (an inbox), then waits while the test looks, then exits. */
static void *alloc_and_report(void *arg)
{
	struct remote_job *j = arg;

	j->own = span_malloc(SIZE);
	pthread_barrier_wait(&hold_both);
	pthread_barrier_wait(&hold_both);
	span_free(j->own);
	return NULL;
}

static void *alloc_and_hold(void *arg)
{
	struct remote_job *j = arg;

	j->own = span_malloc(SIZE);
	j->inbox = _span_tc.inbox;
	pthread_barrier_wait(j->hold);	/* allocated */
	pthread_barrier_wait(j->hold);	/* the test is done */
	return NULL;
}

/*
 * A thread allocates an object and waits on @hold (twice: allocated, the
 * test is done); we free it and sort: it waits in that thread's inbox.
 */
static void send_to_held_owner(struct __test_metadata *_metadata,
			       struct remote_job *j, pthread_barrier_t *hold,
			       pthread_t *t)
{
	void **v;

	init();
	ASSERT_EQ(0, pthread_barrier_init(hold, NULL, 2));
	j->hold = hold;
	v = alloc_many();
	ASSERT_EQ(0, pthread_create(t, NULL, alloc_and_hold, j));
	pthread_barrier_wait(hold);
	free_and_sort(j->own, v);
	ASSERT_TRUE(_span_inbox_has(j->inbox, cls, j->own));
}

/*
 * fork(): the child has no thread for a live thread's inbox; it is closed
 * there, and what waited in it goes to central.
 */
TEST(fork_closes_other_inboxes)
{
	struct remote_job j = { 0 };
	pthread_barrier_t hold;
	int status;
	pthread_t t;
	pid_t pid;

	send_to_held_owner(_metadata, &j, &hold, &t);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		_exit(!j.inbox->open && _span_tc.inbox->open &&
		      !_span_inbox_has(j.inbox, cls, j.own) &&
		      _span_central_has_free(span_of(j.own),
					     (uintptr_t)j.own) ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child: inbox still open, or its object lost");
	/* The parent's thread still has it. */
	EXPECT_TRUE(j.inbox->open);
	EXPECT_TRUE(_span_inbox_has(j.inbox, cls, j.own));
	pthread_barrier_wait(&hold);
	ASSERT_EQ(0, pthread_join(t, NULL));
	pthread_barrier_destroy(&hold);
}

static void *alloc_two_and_hold(void *arg)
{
	struct remote_job *j = arg;

	j->own2 = span_malloc(SIZE);
	return alloc_and_hold(arg);
}

/*
 * An owner that has not restocked for the decay interval is idle: a
 * sender gives its run to central, and what waits in its inbox too.
 */
TEST(idle_owner_goes_to_central)
{
	struct remote_job j = { 0 };
	pthread_barrier_t hold;
	void **v, **v2;
	pthread_t t;

	init();
	ASSERT_EQ(0, pthread_barrier_init(&hold, NULL, 2));
	j.hold = &hold;
	v = alloc_many();	/* before the owner allocates (see above) */
	v2 = alloc_many();
	ASSERT_EQ(0, pthread_create(&t, NULL, alloc_two_and_hold, &j));
	pthread_barrier_wait(&hold);
	free_and_sort(j.own, v);
	ASSERT_TRUE(_span_inbox_has(j.inbox, cls, j.own));
	/* Its last restock long ago (boot time is far beyond 1 s). */
	_span_opt.decay_ms = 1000;
	j.inbox->active_ms = 0;
	free_and_sort(j.own2, v2);
	EXPECT_FALSE(_span_inbox_has(j.inbox, cls, j.own2));
	EXPECT_FALSE(_span_inbox_has(j.inbox, cls, j.own));
	EXPECT_TRUE(_span_central_has_free(span_of(j.own2),
					   (uintptr_t)j.own2));
	EXPECT_TRUE(_span_central_has_free(span_of(j.own), (uintptr_t)j.own));
	pthread_barrier_wait(&hold);
	ASSERT_EQ(0, pthread_join(t, NULL));
	pthread_barrier_destroy(&hold);
}

/* malloc_trim() empties the inbox of an owner that does not allocate. */
TEST(trim_empties_idle_inbox)
{
	struct remote_job j = { 0 };
	pthread_barrier_t hold;
	pthread_t t;

	send_to_held_owner(_metadata, &j, &hold, &t);
	span_trim();
	EXPECT_FALSE(_span_inbox_has(j.inbox, cls, j.own));
	EXPECT_TRUE(_span_central_has_free(span_of(j.own), (uintptr_t)j.own));
	EXPECT_TRUE(j.inbox->open);
	pthread_barrier_wait(&hold);
	ASSERT_EQ(0, pthread_join(t, NULL));
	pthread_barrier_destroy(&hold);
}

/*
 * Sorts that find only this thread's objects back off (skip up to
 * SPAN_SORT_QUIET_MAX staging overflows and restocks); one that finds
 * another thread's object ends the back-off.
 */
TEST(sort_backs_off)
{
	struct remote_job j = { 0 };
	pthread_barrier_t hold, other_hold;
	pthread_t t, other;
	int round, i, n;
	void **v;

	init();
	ASSERT_EQ(0, pthread_barrier_init(&hold, NULL, 2));
	ASSERT_EQ(0, pthread_barrier_init(&other_hold, NULL, 2));
	ASSERT_EQ(0, pthread_create(&other, NULL, wait_on, &other_hold));
	pthread_barrier_wait(&other_hold);
	ASSERT_FALSE(_span_remote_alone());
	/* Only our objects: each sort finds nothing to send. */
	for (round = 0; round < 1000 &&
	     _span_tc.sort_quiet[cls - 1] < SPAN_SORT_QUIET_MAX; round++) {
		void **w = alloc_many();

		for (i = 0; i < MANY; i++)
			span_free(w[i]);
		free(w);
	}
	EXPECT_EQ(SPAN_SORT_QUIET_MAX, _span_tc.sort_quiet[cls - 1]);
	/* Another thread's object (its span not refilled from by us since). */
	v = alloc_many();
	j.hold = &hold;
	ASSERT_EQ(0, pthread_create(&t, NULL, alloc_and_hold, &j));
	pthread_barrier_wait(&hold);
	/* The object, then just enough of ours to overflow once: one sort. */
	_span_tc.sort_skip[cls - 1] = 0;
	n = _span_tc.staged[cls - 1].room;
	span_free(j.own);
	ASSERT_LT(n, MANY);
	for (i = 0; i < n; i++)
		span_free(v[i]);
	EXPECT_EQ(0, _span_tc.sort_quiet[cls - 1]);
	EXPECT_EQ(0, _span_tc.staged[cls - 1].count);
	EXPECT_TRUE(_span_inbox_has(j.inbox, cls, j.own));
	for (; i < MANY; i++)
		span_free(v[i]);
	free(v);
	pthread_barrier_wait(&hold);
	ASSERT_EQ(0, pthread_join(t, NULL));
	pthread_barrier_wait(&other_hold);
	ASSERT_EQ(0, pthread_join(other, NULL));
	pthread_barrier_destroy(&hold);
	pthread_barrier_destroy(&other_hold);
}

/* Which bin the size table names for SIZE: 1 the staging bin, 0 the bin. */
static int table_names_staging(void)
{
	int32_t e = _span_bin_of[span_class_index(SIZE)];

	return e == span_free_bin_tp(cls) ? 1 : e == span_bin_tp(cls) ? 0 : -1;
}

/*
 * With one thread the size table names the staging bin, so malloc() pops
 * what free() pushed (a plain bin, no sort: the last freed comes out
 * first); a second thread with an inbox switches it to the bin, and its
 * exit switches it back.
 */
TEST(alone_plain_bin)
{
	struct remote_job j = { 0 };
	void *p, *q;
	pthread_t t;

	init();
	ASSERT_TRUE(_span_remote_alone());
	EXPECT_EQ(1, table_names_staging());
	p = span_malloc(SIZE);
	span_free(p);
	q = span_malloc(SIZE);
	EXPECT_EQ(p, q);
	span_free(q);
	j.hold = NULL;
	ASSERT_EQ(0, pthread_barrier_init(&hold_both, NULL, 2));
	ASSERT_EQ(0, pthread_create(&t, NULL, alloc_and_report, &j));
	pthread_barrier_wait(&hold_both);
	EXPECT_FALSE(_span_remote_alone());
	EXPECT_EQ(0, table_names_staging());
	pthread_barrier_wait(&hold_both);
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_TRUE(_span_remote_alone());
	EXPECT_EQ(1, table_names_staging());
	/* What was sorted into the bin meanwhile is still found. */
	p = span_malloc(SIZE);
	ASSERT_NE(NULL, p);
	span_free(p);
	pthread_barrier_destroy(&hold_both);
}

static void *open_and_hold(void *arg)
{
	void *p = span_malloc(SIZE);	/* its inbox: the table switches */

	pthread_barrier_wait(arg);
	pthread_barrier_wait(arg);
	span_free(p);
	return NULL;
}

/*
 * malloc()'s fast path found the staging bin empty (its count now -1),
 * then another thread's first allocation switched the table before the
 * slow path ran (review: the staging bin stayed at -1, and a later sort
 * walked 2^32 objects). The slow path settles both bins.
 */
TEST(switch_between_fast_and_slow_path)
{
	struct span_bin SPAN_BIN_SEG *staged, *bin;
	pthread_barrier_t hold;
	int32_t count;
	pthread_t t;
	void *p;

	init();
	ASSERT_TRUE(_span_remote_alone());
	staged = span_bin_ref(span_free_bin_tp(cls));
	bin = span_bin_ref(span_bin_tp(cls));
	/* Both bins empty, as malloc() leaves them (the objects kept). */
	while (span_bin_take(bin))
		span_bin_pop_taken(bin);
	span_bin_settle(bin);
	while (span_bin_take(staged))
		span_bin_pop_taken(staged);
	/* The fast path's take: the count is -1 now, as in malloc(). */
	count = staged->count;
	ASSERT_EQ(-1, count);
	ASSERT_EQ(0, pthread_barrier_init(&hold, NULL, 2));
	ASSERT_EQ(0, pthread_create(&t, NULL, open_and_hold, &hold));
	pthread_barrier_wait(&hold);
	ASSERT_FALSE(_span_remote_alone());
	p = _span_malloc_slow(SIZE);	/* where the fast path goes */
	ASSERT_NE(NULL, p);
	count = staged->count;
	EXPECT_EQ(0, count);
	count = bin->count;
	EXPECT_LE(0, count);
	span_free(p);
	pthread_barrier_wait(&hold);
	ASSERT_EQ(0, pthread_join(t, NULL));
	pthread_barrier_destroy(&hold);
}

TEST_HARNESS_MAIN
