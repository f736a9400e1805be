// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_glibc: the rest of glibc's malloc interface (<malloc.h>) answered
 * by spanalloc: mallinfo/mallinfo2 count its memory, malloc_stats and
 * malloc_info (glibc's XML) describe it, malloc_trim gives memory back
 * (RSS drops), mallopt maps M_TRIM_THRESHOLD and refuses the rest with 0.
 *
 * Linked with libspanalloc-malloc.a, so spanalloc is this program's malloc
 * without LD_PRELOAD; it calls only the C library's names, so the same
 * source built plainly runs against any allocator under LD_PRELOAD.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300	/* a hang guard, not a time limit */

#define MIB	(1UL << 20)

/* Resident KiB from smaps_rollup, read without malloc. */
static long rss_kib(void)
{
	static char buf[4096];
	ssize_t n;
	char *p;
	int fd = open("/proc/self/smaps_rollup", O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strstr(buf, "\nRss:");
	return p ? strtol(p + 5, NULL, 10) : -1;
}

static const char *allocator(void)
{
	const char *(*backend)(void) = (const char *(*)(void))
		dlsym(RTLD_DEFAULT, "span_backend");

	return backend ? backend() : "not spanalloc";
}

TEST(mallinfo2_counts_memory)
{
	struct mallinfo2 before, live, after;
	/* 4 MiB of 1 KiB objects: a thread cache keeps at most ~1 MiB of them */
	void *small[4096], *large[4];
	int i;

	TH_LOG("allocator: %s", allocator());
	before = mallinfo2();
	for (i = 0; i < 4096; i++)
		ASSERT_NE(NULL, small[i] = malloc(1024));
	for (i = 0; i < 4; i++)
		ASSERT_NE(NULL, large[i] = malloc(MIB));
	live = mallinfo2();
	TH_LOG("arena %zu uordblks %zu fordblks %zu hblks %zu hblkhd %zu",
	       live.arena, live.uordblks, live.fordblks, live.hblks,
	       live.hblkhd);
	EXPECT_LE(before.uordblks + 4 * MIB, live.uordblks);
	EXPECT_LE(live.uordblks + live.fordblks, live.arena);
	EXPECT_LE(before.hblks + 4, live.hblks);
	EXPECT_LE(before.hblkhd + 4 * MIB, live.hblkhd);
	for (i = 0; i < 4096; i++)
		free(small[i]);
	for (i = 0; i < 4; i++)
		free(large[i]);
	after = mallinfo2();
	EXPECT_EQ(before.hblks, after.hblks);
	EXPECT_GT(live.uordblks, after.uordblks + 2 * MIB);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
TEST(mallinfo_is_mallinfo2_in_ints)
{
	void *p = malloc(3 * MIB);
	struct mallinfo2 m2;
	struct mallinfo m;

	ASSERT_NE(NULL, p);
	memset(p, 1, 3 * MIB);
	m2 = mallinfo2();
	m = mallinfo();

	EXPECT_EQ((int)m2.hblks, m.hblks);
	EXPECT_EQ((int)m2.hblkhd, m.hblkhd);
	EXPECT_LE(3 * MIB, (size_t)m.hblkhd);
	EXPECT_LT(0, m.arena);
	free(p);
}
#pragma GCC diagnostic pop

/* malloc_trim(0) gives empty spans back at once: RSS drops. */
TEST(malloc_trim_returns_memory)
{
	enum { N = 32 * MIB / 256 };
	static void *v[N];
	long rss_live, rss_freed, rss_trimmed;
	int i;

	for (i = 0; i < N; i++) {
		ASSERT_NE(NULL, v[i] = malloc(256));
		memset(v[i], 7, 256);
	}
	rss_live = rss_kib();
	for (i = 0; i < N; i++)
		free(v[i]);
	rss_freed = rss_kib();
	EXPECT_EQ(1, malloc_trim(0));
	rss_trimmed = rss_kib();
	TH_LOG("rss: live %ld KiB, freed %ld KiB, trimmed %ld KiB", rss_live,
	       rss_freed, rss_trimmed);
	EXPECT_LT(rss_trimmed + 24 * 1024, rss_live);
	EXPECT_EQ(0, malloc_trim(0));	/* nothing left to give back */
}

static char *info_text(size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	if (malloc_info(0, f) != 0) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	return buf;
}

/* glibc's XML, with the memory in it. */
TEST(malloc_info_xml)
{
	void *p = malloc(8 * MIB), *v[1000];
	const char *cur;
	size_t len, current;
	char *xml;
	int i;

	ASSERT_NE(NULL, p);
	memset(p, 1, 8 * MIB);
	for (i = 0; i < 1000; i++)
		v[i] = malloc(100);
	for (i = 0; i < 1000; i += 2)
		free(v[i]);
	xml = info_text(&len);
	ASSERT_NE(NULL, xml);
	EXPECT_EQ(0, strncmp(xml, "<malloc version=\"1\">\n<heap nr=\"0\">\n", 35))
		TH_LOG("%s", xml);
	EXPECT_EQ(0, strcmp(xml + len - 10, "</malloc>\n")) TH_LOG("%s", xml);
	EXPECT_NE(NULL, strstr(xml, "<sizes>\n")) TH_LOG("%s", xml);
	EXPECT_NE(NULL, strstr(xml, "</heap>\n")) TH_LOG("%s", xml);
	EXPECT_NE(NULL, strstr(xml, "<total type=\"mmap\" count=\"")) TH_LOG("%s", xml);
	/* The last (total) system size covers the 8 MiB block. */
	cur = strstr(xml, "</heap>");
	ASSERT_NE(NULL, cur);
	cur = strstr(cur, "<system type=\"current\" size=\"");
	ASSERT_NE(NULL, cur);
	current = strtoull(cur + 29, NULL, 10);
	TH_LOG("system current %zu", current);
	EXPECT_LE(8 * MIB, current);
	free(xml);
	errno = 0;
	EXPECT_EQ(-1, malloc_info(1, stdout));
	EXPECT_EQ(EINVAL, errno);
	for (i = 1; i < 1000; i += 2)
		free(v[i]);
	free(p);
}

/* malloc_stats() writes glibc's lines and spanalloc's to stderr. */
TEST(malloc_stats_text)
{
	char out[4096];
	int fds[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		dup2(fds[1], 2);
		malloc_stats();
		_exit(0);
	}
	close(fds[1]);
	while (got < (ssize_t)sizeof(out) - 1 &&
	       (n = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += n;
	out[got] = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	EXPECT_NE(NULL, strstr(out, "Arena 0:\nsystem bytes     = ")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "max mmap bytes   = ")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "spanalloc: backend ")) TH_LOG("%s", out);
}

/*
 * A freed large block stays as a free run (free bytes grow); after
 * M_TRIM_THRESHOLD 0 the next free gives every run back at once.
 */
TEST(mallopt_trim_threshold)
{
	struct mallinfo2 m0, m1, m2;
	void *p = malloc(4 * MIB), *q = malloc(4 * MIB);

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, q);
	memset(p, 1, 4 * MIB);
	memset(q, 1, 4 * MIB);
	m0 = mallinfo2();
	free(p);
	m1 = mallinfo2();
	EXPECT_EQ(1, mallopt(M_TRIM_THRESHOLD, 0));
	free(q);
	m2 = mallinfo2();
	TH_LOG("free bytes %zu -> %zu -> %zu", m0.fordblks, m1.fordblks,
	       m2.fordblks);
	EXPECT_LE(m0.fordblks + 4 * MIB, m1.fordblks);
	EXPECT_LT(m2.fordblks + 2 * MIB, m1.fordblks);
	/* nor does a thread keep a block of a size it would cache */
	p = malloc(128 << 10);
	ASSERT_NE(NULL, p);
	memset(p, 1, 128 << 10);
	m1 = mallinfo2();
	free(p);
	m2 = mallinfo2();
	EXPECT_LE(m2.hblkhd + (128 << 10), m1.hblkhd)
		TH_LOG("live large bytes %zu -> %zu", m1.hblkhd, m2.hblkhd);
	EXPECT_EQ(0, mallopt(M_TRIM_THRESHOLD, -1));
}

/* Options spanalloc has nothing for: refused, as glibc refuses unknown ones. */
TEST(mallopt_others_refused)
{
	EXPECT_EQ(0, mallopt(M_ARENA_MAX, 1));
	EXPECT_EQ(0, mallopt(M_MMAP_THRESHOLD, 1 << 20));
	EXPECT_EQ(0, mallopt(M_MXFAST, 0));
	EXPECT_EQ(0, mallopt(M_PERTURB, 0x55));
	EXPECT_EQ(0, mallopt(12345, 1));
}

TEST_HARNESS_MAIN
