// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_misuse: libspanalloc catches the misuse its span records make
 * cheap to see — a pointer it never handed out, an interior pointer, a
 * double free — and says so on one line of stderr before abort():
 *   spanalloc: free(): invalid pointer 0x... (why)
 * Each case runs in a child whose stderr is a pipe; the parent checks the
 * child died of SIGABRT and printed that line with the right address.
 * The last test does the same through LD_PRELOAD of libspanalloc.so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
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

/*
 * Run @fn(@arg) in a child with stderr captured into @out. Returns the
 * child's wait status.
 */
static int run_child(void (*fn)(void *), void *arg, char *out, size_t len)
{
	int fds[2], status = 0;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		struct sigaction sa = { .sa_handler = SIG_DFL };

		sigaction(SIGABRT, &sa, NULL);
		dup2(fds[1], 2);
		close(fds[0]);
		alarm(120);	/* a hang guard, not a time limit */
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	while (got + 1 < len && (n = read(fds[0], out + got,
					  len - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	return status;
}

/* @addr 0: any address (a double free found later, in a batch). */
static void expect_abort(struct __test_metadata *_metadata,
			 void (*fn)(void *), void *arg,
			 const char *fn_name, uintptr_t addr)
{
	char out[512], want[128];
	int status = run_child(fn, arg, out, sizeof(out));

	snprintf(want, sizeof(want), "spanalloc: %s(): invalid pointer 0x",
		 fn_name);
	if (addr)
		snprintf(want, sizeof(want),
			 "spanalloc: %s(): invalid pointer 0x%lx", fn_name,
			 (unsigned long)addr);
	ASSERT_TRUE(WIFSIGNALED(status)) TH_LOG("status %#x, stderr: %s",
						 status, out);
	EXPECT_EQ(SIGABRT, WTERMSIG(status));
	EXPECT_NE(NULL, strstr(out, want)) TH_LOG("want '%s', got '%s'",
						  want, out);
	if (!addr)
		EXPECT_NE(NULL, strstr(out, "double free")) TH_LOG("%s", out);
	/* One line, nothing else. */
	EXPECT_EQ(strlen(out) - 1, (size_t)(strchr(out, '\n') - out));
}

static void do_free(void *p)
{
	span_free(p);
}

static void do_realloc(void *p)
{
	span_realloc(p, 100);
}

static void do_usable(void *p)
{
	span_malloc_usable_size(p);
}

static void do_double_free(void *p)
{
	span_free(p);
	span_free(p);
}

static void do_double_free_later(void *p)
{
	void *v[4096];
	int i;

	span_free(p);
	/* Other frees of the class in between: caught when they drain. */
	for (i = 0; i < 4096; i++)
		v[i] = span_malloc(48);
	for (i = 0; i < 4096; i++)
		span_free(v[i]);
	span_free(p);
	for (i = 0; i < 4096; i++)
		v[i] = span_malloc(48);
	for (i = 0; i < 4096; i++)
		span_free(v[i]);
}

static void do_nothing(void *p)
{
	span_free(p);
}

TEST(valid_free_does_not_abort)
{
	char out[256];
	void *p = span_malloc(32);
	int status = run_child(do_nothing, p, out, sizeof(out));

	TH_LOG("backend: %s", span_backend());
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_STREQ("", out);
}

TEST(free_stack_pointer)
{
	int local;

	expect_abort(_metadata, do_free, &local, "free", (uintptr_t)&local);
}

TEST(free_wild_pointers)
{
	static char data[64];
	void *p = (void *)(uintptr_t)0xdead0000beef0ULL;

	expect_abort(_metadata, do_free, data, "free", (uintptr_t)data);
	expect_abort(_metadata, do_free, p, "free", (uintptr_t)p);
	p = (void *)(uintptr_t)0xffff800000001000ULL;
	expect_abort(_metadata, do_free, p, "free", (uintptr_t)p);
}

TEST(free_interior_small)
{
	char *p = span_malloc(100);

	ASSERT_NE(NULL, p);
	expect_abort(_metadata, do_free, p + 16, "free", (uintptr_t)(p + 16));
	expect_abort(_metadata, do_free, p + 1, "free", (uintptr_t)(p + 1));
}

TEST(free_interior_large)
{
	char *p = span_malloc(1 << 20);

	ASSERT_NE(NULL, p);
	expect_abort(_metadata, do_free, p + 4096, "free",
		     (uintptr_t)(p + 4096));
	expect_abort(_metadata, do_free, p + 8, "free", (uintptr_t)(p + 8));
}

TEST(double_free_small)
{
	void *p = span_malloc(40);

	ASSERT_NE(NULL, p);
	expect_abort(_metadata, do_double_free, p, "free", (uintptr_t)p);
}

TEST(double_free_small_later)
{
	void *p = span_malloc(48);

	ASSERT_NE(NULL, p);
	expect_abort(_metadata, do_double_free_later, p, "free", 0);
}

/* glibc's tcache finds free(a); free(b); free(a) at the second free(a). */
static void do_double_free_aba(void *arg)
{
	size_t size = (size_t)arg;
	void *a = span_malloc(size), *b = span_malloc(size);

	span_free(a);
	span_free(b);
	span_free(a);
	/* Not caught: a would be handed out twice. */
	a = span_malloc(size);
	b = span_malloc(size);
	if (a == span_malloc(size) || b == a)
		_exit(3);
	_exit(2);
}

TEST(double_free_not_consecutive)
{
	static const size_t sizes[] = { 1, 8, 16, 32, 100, 1024, 4000, 32768 };
	unsigned int i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char out[512];
		int status = run_child(do_double_free_aba,
				       (void *)sizes[i], out, sizeof(out));

		EXPECT_TRUE(WIFSIGNALED(status))
			TH_LOG("size %zu: status %#x (exit 3: the same object "
			       "handed out twice)", sizes[i], status);
		EXPECT_NE(NULL, strstr(out, "spanalloc: free(): invalid pointer 0x"))
			TH_LOG("size %zu: %s", sizes[i], out);
		EXPECT_NE(NULL, strstr(out, "(double free)"))
			TH_LOG("size %zu: %s", sizes[i], out);
	}
}

static void *free_in_thread(void *p)
{
	span_free(p);
	return NULL;
}

/* Run @fn(@p) in a new thread and wait for it (exit 3 if it cannot). */
static void in_thread(void *(*fn)(void *), void *p)
{
	pthread_t t;

	if (pthread_create(&t, NULL, fn, p) || pthread_join(t, NULL))
		_exit(3);
}

/*
 * A 16-byte object freed by another thread waits in its owner's inbox
 * (remote.c); the owner frees it again.
 */
static void do_double_free_remote(void *p)
{
	in_thread(free_in_thread, p);
	span_free(p);
	_exit(2);
}

/* @fn(p) on a 16-byte object of this thread (which has an inbox) aborts. */
static void expect_remote_double_free(struct __test_metadata *_metadata,
				      void (*fn)(void *))
{
	void *p;

	span_free(span_malloc(16));	/* this thread's inbox */
	p = span_malloc(16);
	ASSERT_NE(NULL, p);
	expect_abort(_metadata, fn, p, "free", (uintptr_t)p);
}

TEST(double_free_remote)
{
	expect_remote_double_free(_metadata, do_double_free_remote);
}

static void *free_twice_in_thread(void *p)
{
	span_free(p);	/* its first free: sorted, p sent to its owner */
	span_free(p);
	return NULL;
}

/* A thread frees another's 16-byte object twice (review of remote.c). */
static void do_double_free_sent(void *p)
{
	in_thread(free_twice_in_thread, p);
	_exit(2);
}

TEST(double_free_sent_to_owner)
{
	expect_remote_double_free(_metadata, do_double_free_sent);
}

static void *drained;

/* The first free went back to central with a batch: still caught at once. */
static void do_double_free_drained(void *p)
{
	void *v[2048];
	int i;

	for (i = 0; i < 2048; i++)
		v[i] = span_malloc(48);
	span_free(p);
	for (i = 0; i < 2048; i++)
		span_free(v[i]);
	drained = p;
	span_free(p);
	_exit(2);
}

TEST(double_free_after_drain)
{
	void *p = span_malloc(48);

	ASSERT_NE(NULL, p);
	expect_abort(_metadata, do_double_free_drained, p, "free",
		     (uintptr_t)p);
}

/*
 * The double-free mark (word 1 of a cached object: its span's record) is
 * only a hint: an object whose data equals it is freed as any other (the
 * bin and central say it is not free).
 */
static void do_mark_in_data(void *arg)
{
	uint64_t *a = span_malloc(64), *b, mark;
	int i;

	(void)arg;
	span_free(a);
	mark = a[1];		/* what a freed object's word 1 holds */
	b = span_malloc(64);
	for (i = 0; i < 1000; i++) {
		uint64_t *c = span_malloc(64);

		c[0] = 0;
		c[1] = mark;
		span_free(c);
	}
	b[1] = mark;
	span_free(b);
	_exit(0);
}

TEST(mark_in_data_is_no_double_free)
{
	char out[256];
	int status = run_child(do_mark_in_data, NULL, out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("%s", out);
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_STREQ("", out);
}

/*
 * The first byte after a small span's last object: a multiple of the size
 * from the span's start, inside the span (class 144: 56 objects, 128 bytes
 * of tail in 8 KiB), but no object.
 */
static char *span_tail(size_t size, size_t nobjs)
{
	char *p = span_malloc(size);
	uintptr_t page = (uintptr_t)p & ~(uintptr_t)4095;
	uintptr_t base = ((uintptr_t)p - page) % size ? page - 4096 : page;

	return (char *)(base + nobjs * size);
}

TEST(free_span_tail)
{
	char *tail = span_tail(144, 56);

	expect_abort(_metadata, do_free, tail, "free", (uintptr_t)tail);
	expect_abort(_metadata, do_realloc, tail, "realloc", (uintptr_t)tail);
	expect_abort(_metadata, do_usable, tail, "malloc_usable_size",
		     (uintptr_t)tail);
	tail = span_tail(48, 170);
	expect_abort(_metadata, do_free, tail, "free", (uintptr_t)tail);
}

TEST(double_free_large)
{
	void *p = span_malloc(100000);

	ASSERT_NE(NULL, p);
	expect_abort(_metadata, do_double_free, p, "free", (uintptr_t)p);
}

static void do_free_then_usable(void *p)
{
	span_free(p);
	span_malloc_usable_size(p);
}

static void do_free_then_realloc(void *p)
{
	span_free(p);
	span_realloc(p, 1 << 20);
}

/*
 * A large block in the freeing thread's cache (still mapped): freed
 * again, or asked its size, or reallocated, found.
 */
TEST(double_free_large_thread_cached)
{
	char out[512];
	void *p;

	if (!strcmp(span_backend(), "kernel"))
		SKIP(return, "the kernel backend's large spans are not kept by threads");
	span_free(span_malloc(32));	/* this thread's cache is set up */
	p = span_malloc(64 << 10);
	ASSERT_NE(NULL, p);
	expect_abort(_metadata, do_double_free, p, "free", (uintptr_t)p);
	run_child(do_double_free, p, out, sizeof(out));
	EXPECT_NE(NULL, strstr(out, "(double free)")) TH_LOG("%s", out);
	expect_abort(_metadata, do_free_then_usable, p, "malloc_usable_size",
		     (uintptr_t)p);
	run_child(do_free_then_usable, p, out, sizeof(out));
	EXPECT_NE(NULL, strstr(out, "(freed pointer)")) TH_LOG("%s", out);
	expect_abort(_metadata, do_free_then_realloc, p, "realloc",
		     (uintptr_t)p);
}

static void *trim_thread(void *arg)
{
	(void)arg;
	span_trim();
	return NULL;
}

/*
 * Two large blocks in this thread's cache, then another thread trims (so
 * this thread's next large free flushes its cache first, merging the two
 * runs and dropping b's record): the second free of b is still a double
 * free, found before the flush.
 */
static void do_double_free_after_trim_elsewhere(void *arg)
{
	void *a = span_malloc(64 << 10), *b = span_malloc(64 << 10);
	pthread_t t;

	(void)arg;
	span_free(a);
	span_free(b);
	if (pthread_create(&t, NULL, trim_thread, NULL) ||
	    pthread_join(t, NULL))
		_exit(3);
	span_free(b);
	_exit(0);
}

TEST(double_free_large_after_trim_elsewhere)
{
	char out[512];
	int status;

	if (!strcmp(span_backend(), "kernel"))
		SKIP(return, "the kernel backend's large spans are not kept by threads");
	status = run_child(do_double_free_after_trim_elsewhere, NULL, out,
			   sizeof(out));
	ASSERT_TRUE(WIFSIGNALED(status)) TH_LOG("status %#x: %s", status, out);
	EXPECT_NE(NULL, strstr(out, "(double free)")) TH_LOG("%s", out);
}

/*
 * b is freed after a, right behind it: on mmap its pages merge into a's
 * free run and b's page maps to nothing; a second free is still caught.
 */
TEST(double_free_large_merged)
{
	char *big, *a, *b;

	span_trim();
	big = span_malloc(4 << 20);
	ASSERT_NE(NULL, big);
	span_free(big);
	a = span_malloc(1 << 20);
	b = span_malloc(1 << 20);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	span_free(a);
	expect_abort(_metadata, do_double_free, b, "free", (uintptr_t)b);
}

/* A freed large block's memory carved for another: its old pointer is bad. */
TEST(free_large_after_carve)
{
	char *big, *a;

	span_trim();
	big = span_malloc(4 << 20);
	ASSERT_NE(NULL, big);
	span_free(big);
	a = span_malloc(1 << 20);
	ASSERT_NE(NULL, a);
	expect_abort(_metadata, do_free, big + (2 << 20), "free",
		     (uintptr_t)big + (2 << 20));
}

TEST(realloc_invalid)
{
	char *p = span_malloc(64);
	int local;

	ASSERT_NE(NULL, p);
	expect_abort(_metadata, do_realloc, &local, "realloc",
		     (uintptr_t)&local);
	expect_abort(_metadata, do_realloc, p + 8, "realloc",
		     (uintptr_t)(p + 8));
}

TEST(usable_size_invalid)
{
	int local;

	expect_abort(_metadata, do_usable, &local, "malloc_usable_size",
		     (uintptr_t)&local);
}

/* Where libspanalloc.so is: $SPANALLOC_SO, or ../userlib next to us. */
static bool find_so(char *path, size_t len)
{
	const char *env = getenv("SPANALLOC_SO");
	char exe[2048];
	ssize_t n;
	char *slash;

	if (env) {
		snprintf(path, len, "%s", env);
		return access(path, R_OK) == 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = 0;
	snprintf(path, len, "%s/../userlib/libspanalloc.so", exe);
	if (access(path, R_OK) == 0)
		return true;
	snprintf(path, len, "%s/libspanalloc.so", exe);
	return access(path, R_OK) == 0;
}

static const char *preload_so;

static void preload_exec(void *arg)
{
	char env[4200];

	snprintf(env, sizeof(env), "LD_PRELOAD=%s", preload_so);
	putenv(env);
	execl("/bin/sh", "sh", "-c", (const char *)arg, (char *)NULL);
	_exit(127);
}

/* Through LD_PRELOAD: programs run, misuse in them is caught. */
TEST(preload)
{
	char so[4096], out[1024];
	int status;

	if (!find_so(so, sizeof(so)))
		SKIP(return, "libspanalloc.so not found (set SPANALLOC_SO)");
	preload_so = so;
	status = run_child(preload_exec,
			   "SPANALLOC_STATS=1 sh -c 'x=$(seq 1 2000 | sort -rn | head -1); echo $x >&2'",
			   out, sizeof(out));
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("%s", out);
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_NE(NULL, strstr(out, "2000\n")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "spanalloc: backend ")) TH_LOG("%s", out);
	TH_LOG("%.*s", (int)(strchr(out, '\n') ? strchr(out, '\n') - out : 0),
	       strstr(out, "spanalloc: backend ") ?: "");
}

TEST_HARNESS_MAIN
