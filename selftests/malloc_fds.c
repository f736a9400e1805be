// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_fds: libspanalloc against programs that close or replace every
 * descriptor, as daemons and spawners do: close_range(3, ~0U, 0), a
 * close() loop up to the descriptor limit, dup2() over the library's
 * device descriptor. On the kernel backend the library must notice, open
 * /dev/spanalloc again (the module finds the heap by mm: the same heap and
 * arena) and go on, never touching the descriptor the program took over;
 * free() keeps errno through all of it. Each case allocates and frees
 * 256 MiB after the descriptors went, in a child of its own. On the mmap
 * backend the same programs run (nothing to lose); the dup2() cases skip.
 * And a forced backend that cannot start says so once and takes no
 * descriptor per malloc.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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

#define MIB		(1UL << 20)
#define LARGE_N		128		/* 128 x 1 MiB ... */
#define SMALL_SIZE	2048		/* ... + 128 MiB of 2 KiB objects */
#define SMALL_N		(128 * MIB / SMALL_SIZE)

static void *large[LARGE_N];
static void *small[SMALL_N];

static bool is_kernel(void)
{
	return !strcmp(span_backend(), "kernel");
}

/* The descriptor of /dev/spanalloc the library holds, or -1. */
static int device_fd(void)
{
	char path[300], target[64];
	struct dirent *d;
	int fd = -1;
	DIR *dir = opendir("/proc/self/fd");

	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", d->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (!strcmp(target, "/dev/spanalloc") &&
		    atoi(d->d_name) != dirfd(dir))
			fd = atoi(d->d_name);
	}
	closedir(dir);
	return fd;
}

/* 256 MiB, every block written at both ends; 0 or a line number. */
static int alloc_256(void)
{
	size_t i;

	for (i = 0; i < LARGE_N; i++) {
		char *p = span_malloc(MIB);

		if (!p)
			return __LINE__;
		p[0] = 1;
		p[MIB - 1] = 2;
		large[i] = p;
	}
	for (i = 0; i < SMALL_N; i++) {
		char *p = span_malloc(SMALL_SIZE);

		if (!p)
			return __LINE__;
		p[0] = 3;
		p[SMALL_SIZE - 1] = 4;
		small[i] = p;
	}
	return 0;
}

/* Free it all; errno must come through every free() as it was. */
static int free_256(void)
{
	size_t i;

	for (i = 0; i < LARGE_N; i++) {
		errno = EDOM;
		span_free(large[i]);
		if (errno != EDOM)
			return __LINE__;
	}
	for (i = 0; i < SMALL_N; i++) {
		errno = EDOM;
		span_free(small[i]);
		if (errno != EDOM)
			return __LINE__;
	}
	return 0;
}

static void close_every_fd(void)
{
	if (syscall(SYS_close_range, 3, ~0U, 0) != 0) {
		long max = sysconf(_SC_OPEN_MAX), fd;

		for (fd = 3; fd < max; fd++)
			close((int)fd);
	}
}

static void close_loop(void)
{
	long max = sysconf(_SC_OPEN_MAX), fd;

	for (fd = 3; fd < max; fd++)
		close((int)fd);
}

/*
 * Run @body in a child (it may close the harness's descriptors); the
 * child exits with 0 or the failing line. Returns that exit code, or 255
 * for a signal.
 */
static int in_child(int (*body)(void))
{
	int status = 0;
	pid_t pid = fork();

	if (pid < 0)
		return 254;
	if (!pid)
		_exit(body());
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

/* The kernel backend opened the device again at least once. */
static int reopened(void)
{
	struct span_stats st;

	span_stats(&st);
	return !is_kernel() || st.backend_reopens > 0;
}

static int closed_then_alloc(void)
{
	int err;

	span_free(span_malloc(100));	/* the backend is up */
	close_every_fd();
	if ((err = alloc_256()) || (err = free_256()))
		return err;
	span_trim();
	if (!reopened())
		return __LINE__;
	/* And again: the new descriptor is as good as the first. */
	if ((err = alloc_256()) || (err = free_256()))
		return err;
	return 0;
}

static int alloc_closed_then_free(void)
{
	int err;

	if ((err = alloc_256()))
		return err;
	close_every_fd();
	span_trim();			/* backend calls with no descriptor */
	if ((err = free_256()))
		return err;
	span_trim();
	return reopened() ? 0 : __LINE__;
}

static int close_loop_then_alloc(void)
{
	int err;

	span_free(span_malloc(100));
	close_loop();
	if ((err = alloc_256()) || (err = free_256()))
		return err;
	return reopened() ? 0 : __LINE__;
}

/* dup2() of /dev/null over the library's descriptor. */
static int dup2_then_alloc(void)
{
	int fd = device_fd(), null = open("/dev/null", O_RDWR), err;
	char path[32], target[64];
	ssize_t n;

	if (fd < 0 || null < 0 || dup2(null, fd) != fd)
		return __LINE__;
	close(null);
	if ((err = alloc_256()) || (err = free_256()))
		return err;
	span_trim();
	if (!reopened())
		return __LINE__;
	/* The program's descriptor is still the program's /dev/null. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return __LINE__;
	target[n] = 0;
	return strcmp(target, "/dev/null") ? __LINE__ : 0;
}

/* Closed, then a fork(): the child inherits no device fd, reopens its own. */
static int closed_then_fork(void)
{
	int status = 0, err;
	pid_t pid;

	span_free(span_malloc(100));
	close_every_fd();
	pid = fork();
	if (pid < 0)
		return __LINE__;
	if (!pid) {
		err = alloc_256();
		_exit(err ? err : free_256());
	}
	if ((err = alloc_256()) || (err = free_256()))
		return err;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : __LINE__;
}

TEST(close_range_then_alloc_256mib)
{
	TH_LOG("backend: %s", span_backend());
	EXPECT_EQ(0, in_child(closed_then_alloc));
}

TEST(alloc_then_close_range_then_free)
{
	EXPECT_EQ(0, in_child(alloc_closed_then_free));
}

TEST(close_loop_then_alloc_256mib)
{
	EXPECT_EQ(0, in_child(close_loop_then_alloc));
}

TEST(close_range_then_fork)
{
	EXPECT_EQ(0, in_child(closed_then_fork));
}

TEST(dup2_over_device_fd)
{
	if (!is_kernel())
		SKIP(return, "no device descriptor on the %s backend",
		     span_backend());
	EXPECT_EQ(0, in_child(dup2_then_alloc));
}

/* The library keeps its descriptor out of the low numbers programs use. */
TEST(device_fd_is_high)
{
	if (!is_kernel())
		SKIP(return, "no device descriptor on the %s backend",
		     span_backend());
	EXPECT_LE(512, device_fd());
}

/* Open descriptors of this process. */
static int count_fds(void)
{
	struct dirent *d;
	int n = 0;
	DIR *dir = opendir("/proc/self/fd");

	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* Run with the kernel backend forced and unusable: 0 if no fd leaked. */
static int forced_backend_fails(void)
{
	int before = count_fds(), i;

	for (i = 0; i < 5; i++)
		if (span_malloc(100))
			return 3;
	return count_fds() == before ? 0 : 4;
}

/*
 * SPANALLOC_BACKEND=kernel with an arena of 0 MiB cannot start, with or
 * without the module: every malloc fails, with one line said once and no
 * descriptor taken per call (SPANALLOC_STATS dup()ed stderr every time).
 */
TEST(forced_backend_fails_once)
{
	char out[1024], *line;
	int fds[2], status = 0, lines = 0;
	ssize_t n, got = 0;
	pid_t pid;

	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		dup2(fds[1], 2);
		close(fds[0]);
		setenv("SPANALLOC_BACKEND", "kernel", 1);
		setenv("SPANALLOC_ARENA_MB", "0", 1);
		setenv("SPANALLOC_STATS", "1", 1);
		execl("/proc/self/exe", "malloc_fds", "--forced-backend-fails",
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (got < (ssize_t)sizeof(out) - 1 &&
	       (n = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += n;
	out[got] = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("%s", out);
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("%s", out);
	for (line = out; (line = strstr(line, "spanalloc: ")); line++)
		lines++;
	EXPECT_EQ(1, lines) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "/dev/spanalloc")) TH_LOG("%s", out);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--forced-backend-fails"))
		return forced_backend_fails();
	return test_harness_run(argc, argv);
}
