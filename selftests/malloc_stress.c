// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_stress: the malloc API under threads, forks and signals, for a
 * fixed number of operations, checking every byte it owns.
 *
 * Each worker thread runs a sequence fixed by the seed: malloc, calloc,
 * realloc, memalign, posix_memalign, aligned_alloc and free of sizes from
 * 0 to 512 KiB (mostly small), malloc_usable_size of each block, blocks
 * handed to other threads through a shared exchange. Every block is filled
 * with a pattern derived from its address, size and the seed, and checked
 * byte for byte before it is freed or reallocated (the prefix realloc
 * keeps, against the old address's pattern); calloc's blocks are checked
 * zero, alignments checked. Thread 0 forks now and then: the child checks
 * its blocks, runs a sequence of its own and exits; a signaller thread
 * interrupts the workers with SIGUSR1 (no SA_RESTART) throughout.
 *
 * The program links no allocator: the test runs it again (--run) with
 * LD_PRELOAD of libspanalloc.so (next to it, or $SPANALLOC_SO), or of
 * $MALLOC_STRESS_PRELOAD when set (empty: the C library's malloc), so the
 * same test runs against the peers:
 *   MALLOC_STRESS_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
 *       build/selftests/malloc_stress
 * $MALLOC_STRESS_OPS (operations per thread, default 15000) and
 * $MALLOC_STRESS_SEED (default 1) change the run; $MALLOC_STRESS_NO_ALIGNED=1
 * leaves out memalign, posix_memalign and aligned_alloc (Debian's mimalloc
 * 2.0.9 hands out misaligned blocks when the size is a multiple of the
 * alignment). A zero-byte block's alignment is not checked (jemalloc's
 * memalign(a, 0) is not aligned).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 600	/* a hang guard, not a time limit */

#define THREADS		4
#define SLOTS		512	/* blocks a thread holds at most */
#define EXCHANGE	64	/* slots of blocks handed between threads */
#define FORKS		4	/* forks of thread 0 per run */
#define CHILD_OPS	3000

struct block {
	unsigned char *p;
	size_t size;
	bool zero;		/* calloc: all zero until filled */
};

struct worker {
	pthread_t thread;
	unsigned int id;
	uint64_t rng;
	struct block slots[SLOTS];
	uint64_t bytes_checked;
	uint64_t ops;
	volatile sig_atomic_t signals;
	char error[256];
};

static struct {
	pthread_mutex_t lock;
	struct block b;
} exchange[EXCHANGE];

static struct worker workers[THREADS];
static uint64_t seed = 1, ops_per_thread = 15000;
static bool aligned_api = true;
static volatile int workers_done;
static int forks_done;

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The pattern of the block at @p of @size: 8 bytes per step. */
static uint64_t pattern_word(const void *p, size_t size, size_t i)
{
	uint64_t s = (uintptr_t)p ^ (size << 40) ^ seed ^ (i * 0x100000001b3ULL);

	return splitmix(&s);
}

static void fill(const struct block *b)
{
	size_t i;

	for (i = 0; i < b->size; i += 8) {
		uint64_t w = pattern_word(b->p, b->size, i);
		size_t n = b->size - i < 8 ? b->size - i : 8;

		memcpy(b->p + i, &w, n);
	}
}

/* First @len bytes of @b against the pattern of (@was, @size); -1: good. */
static long check_prefix(const unsigned char *p, const void *was,
			 size_t size, size_t len)
{
	size_t i, j;

	for (i = 0; i < len; i += 8) {
		uint64_t w = pattern_word(was, size, i);
		size_t n = len - i < 8 ? len - i : 8;

		for (j = 0; j < n; j++)
			if (p[i + j] != ((const unsigned char *)&w)[j])
				return (long)(i + j);
	}
	return -1;
}

static bool fail(struct worker *w, const char *what, const void *p,
		 size_t size, long at)
{
	if (!w->error[0])
		snprintf(w->error, sizeof(w->error),
			 "thread %u op %llu: %s (block %p size %zu at %ld)",
			 w->id, (unsigned long long)w->ops, what, p, size, at);
	return false;
}

static bool check(struct worker *w, const struct block *b)
{
	long at;
	size_t i;

	if (b->zero) {
		for (i = 0; i < b->size; i++)
			if (b->p[i])
				return fail(w, "calloc block not zero", b->p,
					    b->size, (long)i);
	} else if ((at = check_prefix(b->p, b->p, b->size, b->size)) >= 0) {
		return fail(w, "block changed", b->p, b->size, at);
	}
	w->bytes_checked += b->size;
	return true;
}

/* Mostly small: 70% up to 256 B, 25% to 4 KiB, 4.5% to 32 KiB, 0.5% more. */
static size_t pick_size(uint64_t r)
{
	unsigned int c = (unsigned int)(r % 1000);

	r >>= 10;
	if (c < 700)
		return r % 257;
	if (c < 950)
		return 257 + r % 3840;
	if (c < 995)
		return 4097 + r % 28672;
	return 32769 + r % (512 * 1024);
}

/*
 * What C asks of malloc: alignment for any type that fits in @size
 * (fundamental types: up to 16 bytes on x86-64).
 */
static size_t fundamental_align(size_t size)
{
	size_t a = 1;

	while (a < 16 && 2 * a <= size)
		a *= 2;
	return a;
}

static bool allocate(struct worker *w, struct block *b, uint64_t r)
{
	size_t size = pick_size(r), align = (size_t)16 << ((r >> 40) % 9);
	unsigned int how = (unsigned int)((r >> 50) % (aligned_api ? 8 : 5));
	void *p = NULL;

	b->zero = false;
	switch (how) {
	case 0:
	case 1:
	case 2:
		p = malloc(size);
		align = fundamental_align(size);
		break;
	case 3:
		p = calloc(1 + size % 7, size / 7 + 1);
		size = (1 + size % 7) * (size / 7 + 1);
		b->zero = true;
		align = fundamental_align(size);
		break;
	case 4:
		p = realloc(NULL, size);
		align = fundamental_align(size);
		break;
	case 5:
		p = memalign(align, size);
		break;
	case 6:
		if (posix_memalign(&p, align, size))
			p = NULL;
		break;
	default:
		size = (size + align - 1) & ~(align - 1);
		p = aligned_alloc(align, size);
		break;
	}
	if (!p)
		return size ? fail(w, "allocation returned NULL", NULL, size, how) :
			true;
	if (size && ((uintptr_t)p & (align - 1)))
		return fail(w, how < 5 ? "misaligned" : how == 5 ? "memalign misaligned" :
			    how == 6 ? "posix_memalign misaligned" :
			    "aligned_alloc misaligned", p, size, (long)align);
	if (malloc_usable_size(p) < size)
		return fail(w, "usable size too small", p, size,
			    (long)malloc_usable_size(p));
	b->p = p;
	b->size = size;
	if (b->zero && !check(w, b))
		return false;
	if (!(r & (1ULL << 63)) || !b->zero) {
		b->zero = false;
		fill(b);
	}
	return true;
}

static bool resize(struct worker *w, struct block *b, uint64_t r)
{
	size_t size = pick_size(r) + 1, keep = b->size < size ? b->size : size;
	void *was = b->p;
	unsigned char *p;
	long at;

	if (!check(w, b))
		return false;
	p = realloc(b->p, size);
	if (!p)
		return fail(w, "realloc returned NULL", was, size, -1);
	if (b->zero) {
		for (at = 0; at < (long)keep; at++)
			if (p[at])
				return fail(w, "realloc lost zeros", p, size, at);
	} else if ((at = check_prefix(p, was, b->size, keep)) >= 0) {
		return fail(w, "realloc lost data", p, size, at);
	}
	b->p = p;
	b->size = size;
	b->zero = false;
	fill(b);
	return true;
}

static bool release(struct worker *w, struct block *b)
{
	if (b->p && !check(w, b))
		return false;
	free(b->p);
	b->p = NULL;
	return true;
}

/*
 * Set in a fork child: it has one thread, and another thread of the parent
 * may have held an exchange lock at the fork, so the child never takes one.
 */
static bool in_fork_child;

/* Swap @b with an exchange slot's block; free what came out. */
static bool hand_over(struct worker *w, struct block *b, uint64_t r)
{
	unsigned int j = (unsigned int)(r % EXCHANGE);
	struct block got;

	if (in_fork_child)
		return release(w, b);
	if (!check(w, b))
		return false;
	pthread_mutex_lock(&exchange[j].lock);
	got = exchange[j].b;
	exchange[j].b = *b;
	pthread_mutex_unlock(&exchange[j].lock);
	b->p = NULL;
	return release(w, &got);
}

static bool step(struct worker *w)
{
	uint64_t r = splitmix(&w->rng);
	struct block *b = &w->slots[r % SLOTS];

	w->ops++;
	r >>= 9;
	if (!b->p)
		return allocate(w, b, splitmix(&w->rng));
	switch (r % 10) {
	case 0:
	case 1:
		return resize(w, b, splitmix(&w->rng));
	case 2:
		return hand_over(w, b, r >> 8);
	default:
		return release(w, b);
	}
}

/* Thread 0's fork: the child checks its blocks, runs on, frees them. */
static bool fork_once(struct worker *w)
{
	int status = 0;
	uint64_t i;
	pid_t pid = fork();

	if (pid < 0)
		return fail(w, "fork failed", NULL, 0, errno);
	if (!pid) {
		in_fork_child = true;
		for (i = 0; i < SLOTS; i++)
			if (w->slots[i].p && !check(w, &w->slots[i]))
				goto out;
		for (i = 0; i < CHILD_OPS; i++)
			if (!step(w))
				goto out;
		for (i = 0; i < SLOTS; i++)
			if (!release(w, &w->slots[i]))
				goto out;
out:
		if (w->error[0])
			fprintf(stderr, "fork child: %s\n", w->error);
		_exit(w->error[0] ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	forks_done++;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return fail(w, "fork child failed", NULL, 0, status);
	return true;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t i, every = ops_per_thread / (FORKS + 1);

	w->rng = seed * 0x2545f4914f6cdd1dULL + w->id;
	for (i = 1; i <= ops_per_thread; i++) {
		if (!step(w))
			return NULL;
		if (!w->id && every && i % every == 0 && !fork_once(w))
			return NULL;
	}
	for (i = 0; i < SLOTS; i++)
		if (!release(w, &w->slots[i]))
			return NULL;
	return NULL;
}

static __thread struct worker *self;

static void on_signal(int sig)
{
	int saved = errno;

	(void)sig;
	if (self)
		self->signals++;
	errno = saved;
}

static void *work_with_signals(void *arg)
{
	self = arg;
	return work(arg);
}

/* Interrupt a random worker every 100 us until all are done. */
static void *signaller(void *arg)
{
	uint64_t r = seed;
	struct timespec ts = { 0, 100000 };

	(void)arg;
	while (!__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE)) {
		pthread_kill(workers[splitmix(&r) % THREADS].thread, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static const char *allocator_name(void)
{
	static const char *const probes[][2] = {
		{ "span_backend", "spanalloc" }, { "mallctl", "jemalloc" },
		{ "tc_malloc", "tcmalloc" }, { "mi_malloc", "mimalloc" },
	};
	unsigned int i;

	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		if (dlsym(RTLD_DEFAULT, probes[i][0]))
			return probes[i][1];
	return "glibc";
}

static int run(void)
{
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */
	uint64_t signals = 0, bytes = 0, ops = 0;
	const char *env;
	pthread_t sig;
	unsigned int i;
	int bad = 0;

	env = getenv("MALLOC_STRESS_OPS");
	if (env && *env)
		ops_per_thread = strtoull(env, NULL, 10);
	env = getenv("MALLOC_STRESS_SEED");
	if (env && *env)
		seed = strtoull(env, NULL, 10);
	env = getenv("MALLOC_STRESS_NO_ALIGNED");
	aligned_api = !env || !*env || !strcmp(env, "0");
	sigaction(SIGUSR1, &sa, NULL);
	for (i = 0; i < EXCHANGE; i++)
		pthread_mutex_init(&exchange[i].lock, NULL);
	for (i = 0; i < THREADS; i++) {
		workers[i].id = i;
		if (pthread_create(&workers[i].thread, NULL, work_with_signals,
				   &workers[i]))
			return 2;
	}
	if (pthread_create(&sig, NULL, signaller, NULL))
		return 2;
	for (i = 0; i < THREADS; i++)
		pthread_join(workers[i].thread, NULL);
	__atomic_store_n(&workers_done, 1, __ATOMIC_RELEASE);
	pthread_join(sig, NULL);
	for (i = 0; i < EXCHANGE; i++)
		bad |= !release(&workers[0], &exchange[i].b);
	for (i = 0; i < THREADS; i++) {
		if (workers[i].error[0]) {
			fprintf(stderr, "stress: %s\n", workers[i].error);
			bad = 1;
		}
		signals += workers[i].signals;
		bytes += workers[i].bytes_checked;
		ops += workers[i].ops;
	}
	printf("stress: %s, seed %llu, %u threads, %llu operations, %d forks, "
	       "%llu signals, %llu MiB checked: %s\n", allocator_name(),
	       (unsigned long long)seed, THREADS, (unsigned long long)ops,
	       forks_done, (unsigned long long)signals,
	       (unsigned long long)(bytes >> 20), bad ? "FAILED" : "ok");
	return bad;
}

/* The allocator to preload: $MALLOC_STRESS_PRELOAD, or libspanalloc.so. */
static bool preload_path(char *path, size_t len)
{
	const char *env = getenv("MALLOC_STRESS_PRELOAD");
	char exe[2048], *slash;
	ssize_t n;

	if (env) {
		snprintf(path, len, "%s", env);
		return !*env || access(path, R_OK) == 0;
	}
	env = getenv("SPANALLOC_SO");
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
	return access(path, R_OK) == 0;
}

TEST(threads_forks_signals)
{
	char so[4096], out[4096];
	int fds[2], status = 0;
	ssize_t n, got = 0;
	pid_t pid;

	if (!preload_path(so, sizeof(so)))
		SKIP(return, "no allocator to preload (set SPANALLOC_SO)");
	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		if (*so)
			setenv("LD_PRELOAD", so, 1);
		else
			unsetenv("LD_PRELOAD");
		execl("/proc/self/exe", "malloc_stress", "--run", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (got < (ssize_t)sizeof(out) - 1 &&
	       (n = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += n;
	out[got] = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	TH_LOG("preload '%s': %s", so, out);
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("signal %d", WTERMSIG(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_NE(NULL, strstr(out, ": ok\n"));
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--run"))
		return run();
	return test_harness_run(argc, argv);
}
