// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_dlopen: libspanalloc.so loaded with dlopen() and unloaded with
 * dlclose() while a thread that used it still runs: the thread exits
 * cleanly (its cache's destructor is still mapped: the library is never
 * unloaded, -z nodelete), and the library can be opened and used again.
 * This program links no copy of the library; it finds libspanalloc.so
 * through $SPANALLOC_SO or next to itself (../userlib).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300	/* a hang guard, not a time limit */

static char so_path[4096];

/* Where libspanalloc.so is: $SPANALLOC_SO, or ../userlib next to us. */
static bool find_so(void)
{
	const char *env = getenv("SPANALLOC_SO");
	char exe[2048], *slash;
	ssize_t n;

	if (env) {
		snprintf(so_path, sizeof(so_path), "%s", env);
		return access(so_path, R_OK) == 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = 0;
	snprintf(so_path, sizeof(so_path), "%s/../userlib/libspanalloc.so", exe);
	return access(so_path, R_OK) == 0;
}

struct lib {
	void *handle;
	void *(*malloc)(size_t);
	void (*free)(void *);
};

static bool lib_open(struct lib *l)
{
	l->handle = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
	if (!l->handle)
		return false;
	l->malloc = (void *(*)(size_t))dlsym(l->handle, "span_malloc");
	l->free = (void (*)(void *))dlsym(l->handle, "span_free");
	return l->malloc && l->free;
}

static struct lib lib;
static int to_thread[2], to_main[2];

/* Uses the library (its cache and exit destructor), waits, exits. */
static void *user(void *arg)
{
	void *v[256];
	char c = 0;
	int i;

	(void)arg;
	for (i = 0; i < 256; i++)
		v[i] = lib.malloc(24 + i * 8);
	for (i = 0; i < 256; i++)
		lib.free(v[i]);
	v[0] = lib.malloc(100);		/* something in the cache */
	lib.free(v[0]);
	if (write(to_main[1], &c, 1) != 1 || read(to_thread[0], &c, 1) != 1)
		return (void *)1;
	return NULL;	/* the cache's destructor runs now */
}

/* In a child: 0 if the thread outlived dlclose() and exited cleanly. */
static int thread_exit_after_dlclose(void)
{
	pthread_t t;
	void *ret;
	char c = 0;

	if (pipe(to_thread) || pipe(to_main) || !lib_open(&lib))
		return 2;
	if (pthread_create(&t, NULL, user, NULL))
		return 3;
	if (read(to_main[0], &c, 1) != 1)
		return 4;
	if (dlclose(lib.handle))
		return 5;
	if (write(to_thread[1], &c, 1) != 1)
		return 6;
	if (pthread_join(t, &ret) || ret)
		return 7;
	/* Opened again, it works. */
	if (!lib_open(&lib))
		return 8;
	lib.free(lib.malloc(1000));
	return 0;
}

TEST(thread_exits_after_dlclose)
{
	int status = 0;
	pid_t pid;

	if (!find_so())
		SKIP(return, "libspanalloc.so not found (set SPANALLOC_SO)");
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(thread_exit_after_dlclose());
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("killed by signal %d",
					      WTERMSIG(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
