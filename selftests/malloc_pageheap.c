// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_pageheap: libspanalloc's page heap and where its pages come from,
 * on the backend the environment picks (SPANALLOC_BACKEND), against the
 * review of 938911b: many live large blocks churning without a backend
 * call per step (H1); a heap with every other span empty in a few
 * mappings, its memory back after the decay (H2); calloc(8 GiB) lazy
 * (H4); the kernel refusing spans (a full arena) answered with anonymous
 * memory (H4); ENOMEM under RLIMIT_AS, the module's heap limit and a
 * memory cgroup's memory.max answered by giving the caches back (M1), as
 * far as glibc gets.
 *
 * Links libspanalloc.a and calls the span_ names; the program's own
 * malloc is glibc's, the peer some tests measure against. Tests that need
 * a fresh library (an environment variable read at start, a cgroup the
 * heap must be made in) run this program again (CHILD_ENV).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "kselftest_harness.h"

/* A hang guard for the debug kernel under emulation, not a time limit. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

#define KIB	((size_t)1 << 10)
#define MIB	((size_t)1 << 20)
#define GIB	((size_t)1 << 30)
#define CHILD_ENV	"MALLOC_PAGEHEAP_CHILD"

/* fill_after_free() writes a byte here per MiB of small objects, or -1. */
static int progress_fd = -1;

static bool backend_is(const char *name)
{
	return !strcmp(span_backend(), name);
}

/* Resident KiB from the page tables (smaps_rollup; statm lags on 6.1). */
static long rss_kib(void)
{
	char line[256];
	long rss = -1;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Rss: %ld kB", &rss) == 1)
			break;
	fclose(f);
	return rss;
}

/* Resident KiB of [@p, @p + @len) (mincore), -1 on error. */
static long resident_kib(const void *p, size_t len)
{
	size_t pages = len / 4096, i;
	unsigned char *vec = mmap(NULL, pages, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long kib = 0;

	if (vec == MAP_FAILED)
		return -1;
	if (mincore((void *)p, len, vec))
		kib = -1;
	for (i = 0; kib >= 0 && i < pages; i++)
		kib += (vec[i] & 1) * 4;
	munmap(vec, pages);
	return kib;
}

/* Mappings of this process: lines of /proc/self/maps. */
static int mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int c, n = 0;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Small slow paths: drains that run the decay's sweep. */
static void sweep(void)
{
	void *w[4000];
	int i;

	for (i = 0; i < 4000; i++)
		w[i] = span_malloc(64);
	for (i = 0; i < 4000; i++)
		span_free(w[i]);
}

/*
 * Run this program again with CHILD_ENV=@mode and @env (NAME=VALUE or
 * NULL) added; its exit status, or -1.
 */
static int run_again(const char *mode, const char *env)
{
	char exe[4096], m[64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int status;
	pid_t pid;

	if (n <= 0)
		return -1;
	exe[n] = 0;
	snprintf(m, sizeof(m), "%s=%s", CHILD_ENV, mode);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		putenv(m);
		if (env)
			putenv((char *)env);
		execl(exe, exe, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* 33 KiB .. 1 MiB: an octave at random, then uniform in it. */
static size_t large_size(uint64_t *r)
{
	size_t lo = (33 * KIB) << (rnd(r) % 5), n = lo + rnd(r) % lo;

	return n < MIB ? n : MIB;
}

/*
 * 64 and then 256 live blocks, each step freeing one at random and
 * allocating another: the freed blocks are holes between live ones. Once
 * the page heap has the pages, a step must not cost a backend call (the
 * review measured 0.8 per step with more than 16 holes). The decay is
 * set far out for the test: under emulation with a loaded host the steps
 * can be slow enough for runs to age out (6.1 guest, mmap backend: 109
 * madvise calls in 3000 steps), which is the decay working, not a cliff.
 */
TEST(large_churn_many_live)
{
	static const int live[] = { 64, 256 };
	enum { WARM = 1000, STEPS = 3000 };
	uint64_t r = 42, calls, decay = _span_opt.decay_ms;
	struct span_stats a, b;
	char *slot[256] = { 0 };
	unsigned int l;
	int i;

	span_free(span_malloc(1));	/* init reads the options */
	_span_opt.decay_ms = 600000;
	for (l = 0; l < 2; l++) {
		for (i = 0; i < WARM + STEPS; i++) {
			int k = (int)(rnd(&r) % (uint64_t)live[l]);
			size_t n = large_size(&r);

			if (i == WARM)
				span_stats(&a);
			span_free(slot[k]);
			slot[k] = span_malloc(n);
			ASSERT_NE(NULL, slot[k]);
			slot[k][0] = slot[k][n - 1] = 1;
		}
		span_stats(&b);
		calls = b.backend_calls - a.backend_calls;
		TH_LOG("%d live: %llu backend calls in %d steps, %llu KiB cached",
		       live[l], (unsigned long long)calls, STEPS,
		       (unsigned long long)b.large_cached_bytes >> 10);
		/*
		 * Runs split and merge on both backends (on the kernel's in
		 * kernel regions): nearly every step is a hit. (When each
		 * kernel run was a whole span, about one step in ten was a
		 * SPAN_ALLOC or SPAN_RESIZE.)
		 */
		EXPECT_LT(calls, STEPS / 50);
		for (i = 0; i < live[l]; i++) {
			span_free(slot[i]);
			slot[i] = NULL;
		}
	}
	_span_opt.decay_ms = decay;
}

/*
 * A million small objects, then every other span emptied (the review's
 * vmalimit: one mapping per span reached vm.max_map_count): the heap
 * stays in a few mappings, and after the decay its empty spans' memory
 * goes back (RSS drops) without splitting any.
 */
TEST(every_other_span_empty)
{
	enum { N = 1000000, SIZE = 64 };
	long rss_full, rss_after;
	int maps_full, maps_after;
	size_t i, freed = 0;
	void **v = span_malloc(N * sizeof(*v));

	ASSERT_NE(NULL, v);
	for (i = 0; i < N; i++) {
		v[i] = span_malloc(SIZE);
		ASSERT_NE(NULL, v[i]);
		memset(v[i], 1, SIZE);
	}
	rss_full = rss_kib();
	maps_full = mappings();
	for (i = 0; i < N; i++) {
		struct span *s = span_pagemap_get((uintptr_t)v[i]);

		ASSERT_NE(NULL, s);
		/* Neighbouring spans of a class alternate. */
		if ((s->base / (s->pages * SPAN_PAGE)) & 1) {
			span_free(v[i]);
			v[i] = NULL;
			freed++;
		}
	}
	EXPECT_LT(N / 3, freed);
	usleep((_span_opt.decay_ms * 3 / 2) * 1000);
	sweep();
	rss_after = rss_kib();
	maps_after = mappings();
	TH_LOG("%s: %zu of %d freed; mappings %d -> %d; rss %ld -> %ld KiB",
	       span_backend(), freed, N, maps_full, maps_after, rss_full,
	       rss_after);
	EXPECT_LT(maps_full, 200);
	EXPECT_LT(maps_after, 200);
	EXPECT_LT(rss_after + (long)(freed * SIZE / KIB) / 2, rss_full);
	for (i = 0; i < N; i++)
		span_free(v[i]);
	span_free(v);
}

/* Transparent huge pages on every anonymous mapping? */
static bool thp_always(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	return strstr(buf, "[always]");
}

/*
 * calloc(1, 8 GiB) works as on glibc, in a guest of 1 GiB too, and
 * touching a page of it costs about a page (one huge page where THP is
 * "always", as for glibc's) (review H4: the kernel backend made every
 * large span of frames at once, and refused this one). Measured on the
 * block (mincore): with THP "always" the library's own records may take
 * a huge page of their own (6.1 guest: RSS +4108 KiB once, +2060-2128
 * usually), which is not the block's cost.
 */
TEST(calloc_8gib_is_lazy)
{
	struct span_stats st;
	long rss0, rss1, block;
	char *p;

	span_trim();
	rss_kib();	/* its own first stdio buffers are not the heap's */
	rss0 = rss_kib();
	p = span_calloc(1, 8 * GIB);
	ASSERT_NE(NULL, p);
	p[4 * GIB] = 1;
	rss1 = rss_kib();
	block = resident_kib(p, 8 * GIB);
	TH_LOG("the block: %ld KiB resident", block);
	EXPECT_LE(0, block);
	EXPECT_LT(block, thp_always() ? 2048 + 256 : 256);
	span_stats(&st);
	TH_LOG("%s: rss %ld -> %ld KiB; %llu MiB of anonymous spans, %llu "
	       "regions", span_backend(), rss0, rss1,
	       (unsigned long long)st.anon_span_bytes >> 20,
	       (unsigned long long)st.regions);
	/* and the process: the block, and records up to a huge page */
	EXPECT_LT(rss1 - rss0, thp_always() ? 2 * 2048 + 256 : 256);
	EXPECT_LE(8 * GIB, st.anon_span_bytes);
	EXPECT_EQ(0, p[0]);
	EXPECT_EQ(0, p[8 * GIB - 1]);
	EXPECT_EQ(1, p[4 * GIB]);
	span_free(p);
	span_stats(&st);
	EXPECT_GT(8 * GIB, st.anon_span_bytes);
	span_trim();
	EXPECT_LT(resident_kib(p, 8 * GIB), 256);	/* freed: -1 if unmapped */
	EXPECT_LT(rss_kib(), rss0 + (thp_always() ? 2048 + 256 : 256));
}

/* The fallback child: 64 MiB of small and 32 MiB of large in a 16 MiB arena. */
static int fallback_child(void)
{
	enum { N = (64 << 20) / 256, L = 32 };
	struct span_stats st;
	unsigned int *v[N];
	char *l[L];
	int i;

	for (i = 0; i < N; i++) {
		v[i] = span_malloc(256);
		if (!v[i])
			return 10;
		*v[i] = (unsigned int)i;
	}
	for (i = 0; i < L; i++) {
		l[i] = span_malloc(MIB);
		if (!l[i])
			return 11;
		memset(l[i], i, MIB);
	}
	span_stats(&st);
	if (strcmp(st.backend, "kernel"))
		return 12;
	if (!st.anon_fallbacks || st.anon_span_bytes < 64 * MIB)
		return 13;
	for (i = 0; i < N; i++)
		if (*v[i] != (unsigned int)i)
			return 14;
	for (i = 0; i < L; i++)
		if (l[i][MIB - 1] != (char)i)
			return 15;
	for (i = 0; i < N; i++)
		span_free(v[i]);
	for (i = 0; i < L; i++)
		span_free(l[i]);
	span_trim();
	span_stats(&st);
	return st.anon_span_bytes || st.large_live ? 16 : 0;
}

/*
 * The kernel says ENOMEM (here: a 16 MiB arena, full): new spans, small
 * and large, come from anonymous memory instead of failing, the stats
 * say so, and free() sends each back where it came from.
 */
TEST(kernel_full_falls_back_to_anonymous)
{
	if (!backend_is("kernel"))
		SKIP(return, "the kernel backend's test (backend %s)",
		     span_backend());
	EXPECT_EQ(0, run_again("fallback", "SPANALLOC_ARENA_MB=16"));
}

/* Virtual size of this process in bytes. */
static size_t vm_bytes(void)
{
	unsigned long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return pages * 4096;
}

/*
 * The review's limit test: @big blocks of @size bytes written and freed,
 * then 256-byte objects until NULL (at most @cap MiB). Returns the MiB of
 * small objects reached.
 */
static int fill_after_free(void *(*alloc)(size_t), void (*release)(void *),
			   int big, size_t size, int cap)
{
	size_t n = 0, max = (size_t)cap * MIB / 256;
	char *v[100];
	int i;

	for (i = 0; i < big; i++) {
		v[i] = alloc(size);
		if (!v[i])
			return 0;
		memset(v[i], 1, size);
	}
	for (i = 0; i < big; i++)
		release(v[i]);
	for (; n < max; n++) {
		char *p = alloc(256);

		if (!p)
			break;
		memset(p, 2, 256);
		if (progress_fd >= 0 && (n + 1) % (MIB / 256) == 0 &&
		    write(progress_fd, "", 1) != 1)
			return 0;
	}
	return (int)(n * 256 / MIB);
}

/* In a child under RLIMIT_AS of its size + 160 MiB: the MiB reached. */
static int fill_under_rlimit(bool span)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		struct rlimit rl;

		rl.rlim_cur = rl.rlim_max = vm_bytes() + 160 * MIB;
		if (setrlimit(RLIMIT_AS, &rl))
			_exit(255);
		_exit(span ? fill_after_free(span_malloc, span_free, 100, MIB, 200) :
			     fill_after_free(malloc, free, 100, MIB, 200));
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * ENOMEM with free memory in hand (review M1): freed large blocks stayed
 * mapped while small mallocs failed. Now the caches go back first, and
 * spanalloc gets at least as far as glibc.
 */
TEST(rlimit_as_as_far_as_glibc)
{
	int glibc = fill_under_rlimit(false), span = fill_under_rlimit(true);

	TH_LOG("%s: small objects after freeing 100 MiB under RLIMIT_AS: "
	       "glibc %d MiB, spanalloc %d MiB", span_backend(), glibc, span);
	ASSERT_LT(0, glibc);
	EXPECT_LE(glibc, span);
}

#define HEAP_MAX	"/sys/module/spanalloc/parameters/heap_max_frames"

/* Read (@set NULL) or write module parameter file @path; 0 or -1. */
static int param(const char *path, char *get, size_t len, const char *set)
{
	int fd = open(path, set ? O_WRONLY : O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	if (set) {
		n = write(fd, set, strlen(set));
		n = n == (ssize_t)strlen(set) ? 0 : -1;
	} else {
		n = read(fd, get, len - 1);
		if (n > 0)
			get[n] = 0;
		n = n > 0 ? 0 : -1;
	}
	close(fd);
	return (int)n;
}

/*
 * The same on the kernel backend with every heap held to 64 MiB of frames
 * (the module's heap_max_frames; SPAN_ALLOC says ENOMEM past it): 28 MiB
 * of large blocks (1.75 MiB: kernel regions) freed, then small objects up
 * to 48 MiB. Before, the freed blocks' frames stayed cached and small
 * mallocs failed at about 34 MiB; now they go back and the span is asked
 * for again. (memcg_max_as_far_as_glibc: the same under a memory cgroup.)
 */
TEST(heap_limit_as_far_as_glibc)
{
	char old[32];
	int glibc, span;

	if (!backend_is("kernel"))
		SKIP(return, "the kernel backend's test (backend %s)",
		     span_backend());
	if (param(HEAP_MAX, old, sizeof(old), NULL) ||
	    param(HEAP_MAX, NULL, 0, "16384"))
		SKIP(return, "cannot set %s (root needed)", HEAP_MAX);
	glibc = run_again("limit-glibc", NULL);
	span = run_again("limit-span", NULL);
	param(HEAP_MAX, NULL, 0, old);
	TH_LOG("small objects after freeing 28 MiB with 64 MiB of frames per "
	       "heap: glibc %d MiB, spanalloc %d MiB", glibc, span);
	ASSERT_EQ(48, glibc);
	EXPECT_EQ(glibc, span);
}

#define CGROOT		"/sys/fs/cgroup"
#define PROGRESS_ENV	"MALLOC_PAGEHEAP_PROGRESS_FD"

/* Write @val to @dir/@file; 0 or -1 with errno. */
static int cg_write(const char *dir, const char *file, const char *val)
{
	char path[512];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		err = errno ? errno : EIO;
	close(fd);
	errno = err;
	return err ? -1 : 0;
}

/*
 * Run this program again as @mode in memory cgroup @cg (moved there
 * before exec, so its whole heap is made and charged there): the MiB of
 * small objects it reached, counted as it goes, so a child the cgroup's
 * OOM killer ends still counts. *@killed says whether a signal ended it.
 */
static int run_in_memcg(const char *cg, const char *mode, bool *killed)
{
	char exe[4096], m[64], fdenv[64], pidbuf[32], c;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int p[2], status, reached = 0;
	pid_t pid;

	if (n <= 0 || pipe(p))
		return -1;
	exe[n] = 0;
	snprintf(m, sizeof(m), "%s=%s", CHILD_ENV, mode);
	snprintf(fdenv, sizeof(fdenv), "%s=%d", PROGRESS_ENV, p[1]);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		close(p[0]);
		snprintf(pidbuf, sizeof(pidbuf), "%d", getpid());
		if (cg_write(cg, "cgroup.procs", pidbuf))
			_exit(126);
		putenv(m);
		putenv(fdenv);
		execl(exe, exe, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (read(p[0], &c, 1) == 1)
		reached++;
	close(p[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	*killed = WIFSIGNALED(status);
	if (WIFEXITED(status) && WEXITSTATUS(status) >= 126)
		return -1;
	return reached;
}

/*
 * Under a memory cgroup of 64 MiB (memory.max, no swap), on either
 * backend: 28 MiB of large blocks written and freed, then 256-byte
 * objects up to 48 MiB. glibc gives the freed blocks back and gets there;
 * spanalloc must too: its cached runs go back when the kernel says ENOMEM
 * (the module answers ENOMEM at the cgroup's limit, since e987891, where
 * it once called the cgroup's OOM killer from inside the ioctl).
 */
TEST(memcg_max_as_far_as_glibc)
{
	char cg[256];
	bool gk = false, sk = false;
	int glibc, span;

	if (geteuid())
		SKIP(return, "root needed to make a memory cgroup");
	if (access(CGROOT "/cgroup.controllers", F_OK))
		SKIP(return, "no cgroup2 at " CGROOT);
	/* The memory controller for the root's children (may be on). */
	(void)cg_write(CGROOT, "cgroup.subtree_control", "+memory");
	snprintf(cg, sizeof(cg), CGROOT "/malloc_pageheap.%d", getpid());
	if (mkdir(cg, 0755) && errno != EEXIST)
		SKIP(return, "cannot make %s: %s", cg, strerror(errno));
	if (cg_write(cg, "memory.max", "64M")) {
		rmdir(cg);
		SKIP(return, "no memory controller in %s", cg);
	}
	/* No swap: what does not fit fails or is killed, not swapped. */
	if (cg_write(cg, "memory.swap.max", "0") && errno != ENOENT) {
		rmdir(cg);
		SKIP(return, "cannot set memory.swap.max: %s", strerror(errno));
	}
	glibc = run_in_memcg(cg, "memcg-glibc", &gk);
	span = run_in_memcg(cg, "memcg-span", &sk);
	rmdir(cg);
	TH_LOG("%s: small objects after freeing 28 MiB in a 64 MiB memory "
	       "cgroup: glibc %d MiB%s, spanalloc %d MiB%s", span_backend(),
	       glibc, gk ? " (killed)" : "", span, sk ? " (killed)" : "");
	ASSERT_LT(0, glibc);
	EXPECT_LE(glibc, span);
	EXPECT_FALSE(sk);
}

/* This program run again by run_again(): @mode says what to do. */
static int child_main(const char *mode)
{
	const char *fd = getenv(PROGRESS_ENV);

	if (fd)
		progress_fd = atoi(fd);
	if (!strcmp(mode, "fallback"))
		return fallback_child();
	if (!strcmp(mode, "limit-glibc") || !strcmp(mode, "memcg-glibc"))
		return fill_after_free(malloc, free, 16, 7 * MIB / 4, 48);
	if (!strcmp(mode, "limit-span") || !strcmp(mode, "memcg-span"))
		return fill_after_free(span_malloc, span_free, 16, 7 * MIB / 4,
				       48);
	return 127;
}

__attribute__((constructor)) static void maybe_child(void)
{
	const char *mode = getenv(CHILD_ENV);

	if (mode)
		_exit(child_main(mode));
}

TEST_HARNESS_MAIN
