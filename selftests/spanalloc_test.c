// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc_test: the module's ABI, one behaviour per test.
 *
 * Opens /dev/spanalloc (skips when the module is not loaded), maps an arena
 * and drives the ioctls of uapi/spanalloc.h: their results, every bad field
 * with its exact errno, arena misuse, process exit and fork. Frame counts
 * are read from /sys/class/misc/spanalloc/stats/ to prove nothing leaked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/spanalloc.h>
#include <linux/userfaultfd.h>

#include "kselftest_harness.h"

/*
 * The harness gives a test 30 s; a debug kernel (KASAN, lockdep) in
 * software emulation needs more. A hang guard, not a time limit.
 */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

#define DEV		"/dev/spanalloc"
#define STATS		"/sys/class/misc/spanalloc/stats/"
#define ARENA_BYTES	(256UL << 20)

static long page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* A number read from file @path, or -1. */
static long read_long(const char *path)
{
	char buf[64];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static long read_stat(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), STATS "%s", name);
	return read_long(path);
}

static int span_alloc(int fd, uint64_t pages, uint32_t size_class,
		      void **addr)
{
	struct spanalloc_span_alloc req = {
		.pages = pages,
		.size_class = size_class,
	};

	*addr = NULL;
	if (ioctl(fd, SPANALLOC_IOC_SPAN_ALLOC, &req))
		return -errno;
	*addr = (void *)(uintptr_t)req.addr;
	return 0;
}

static int span_free(int fd, void *addr)
{
	struct spanalloc_span_free req = { .addr = (uintptr_t)addr };

	if (ioctl(fd, SPANALLOC_IOC_SPAN_FREE, &req))
		return -errno;
	return 0;
}

static int span_resize(int fd, void *addr, uint64_t pages)
{
	struct spanalloc_span_resize req = {
		.addr = (uintptr_t)addr,
		.pages = pages,
	};

	return ioctl(fd, SPANALLOC_IOC_SPAN_RESIZE, &req) ? -errno : 0;
}

static long heap_pages(int fd)
{
	struct spanalloc_info info;

	return ioctl(fd, SPANALLOC_IOC_INFO, &info) ? -1 : (long)info.heap_pages;
}

/* Does touching @p (read if !write) raise a signal? Which one? */
static int touch_signal(volatile char *p, int write)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		if (write)
			*p = 1;
		else
			(void)*p;
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static int device_present(void)
{
	return access(DEV, F_OK) == 0;
}

FIXTURE(dev) {
	int fd;
	char *arena;
	long page;
};

FIXTURE_SETUP(dev)
{
	self->arena = MAP_FAILED;
	self->page = page_size();
	if (!device_present())
		SKIP(return, DEV " not present: module not loaded");
	self->fd = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
	self->arena = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
			   MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->arena);
}

FIXTURE_TEARDOWN(dev)
{
	if (self->arena != MAP_FAILED)
		munmap(self->arena, ARENA_BYTES);
	if (self->fd >= 0)
		close(self->fd);
}

/* An open device and no arena: what a process has before its mmap. */
FIXTURE(bare) {
	int fd;
};

FIXTURE_SETUP(bare)
{
	self->fd = -1;
	if (!device_present())
		SKIP(return, DEV " not present: module not loaded");
	self->fd = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(bare)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* ---- open, close, INFO ------------------------------------------------- */

TEST(open_close)
{
	long heaps;
	int fd;

	if (!device_present())
		SKIP(return, "module not loaded");
	heaps = read_stat("heaps");
	fd = open(DEV, O_RDWR);
	ASSERT_LE(0, fd);
	/* An open without mmap makes no heap. */
	EXPECT_EQ(heaps, read_stat("heaps"));
	EXPECT_EQ(0, close(fd));
}

TEST_F(bare, info_without_arena)
{
	struct spanalloc_info info;

	memset(&info, 0xff, sizeof(info));
	ASSERT_EQ(0, ioctl(self->fd, SPANALLOC_IOC_INFO, &info));
	EXPECT_EQ(SPANALLOC_ABI_VERSION, info.abi_version);
	EXPECT_EQ(page_size(), info.page_size);
	EXPECT_LE(ARENA_BYTES, info.arena_max_bytes);
	EXPECT_LT(0, info.heap_max_pages);
	EXPECT_EQ(0, info.arena_start);
	EXPECT_EQ(0, info.arena_bytes);
	EXPECT_EQ(0, info.heap_pages);
	EXPECT_EQ(0, info.reserved[0]);
}

TEST_F(dev, info_with_arena)
{
	struct spanalloc_info info;
	void *span = NULL;

	ASSERT_EQ(0, span_alloc(self->fd, 3, 0, &span));
	ASSERT_EQ(0, ioctl(self->fd, SPANALLOC_IOC_INFO, &info));
	EXPECT_EQ((uintptr_t)self->arena, info.arena_start);
	EXPECT_EQ(ARENA_BYTES, info.arena_bytes);
	EXPECT_EQ(3, info.heap_pages);
	EXPECT_EQ(1, info.heap_spans);
}

TEST_F(dev, info_efault)
{
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_INFO, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(dev, unknown_command_enotty)
{
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, _IO(SPANALLOC_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(dev, wrong_size_command_enotty)
{
	char big[sizeof(struct spanalloc_span_alloc) + 8] = { 0 };
	unsigned long cmd = _IOC(_IOC_READ | _IOC_WRITE, SPANALLOC_IOC_MAGIC,
				 _IOC_NR(SPANALLOC_IOC_SPAN_ALLOC),
				 sizeof(big));

	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, cmd, big));
	EXPECT_EQ(ENOTTY, errno);
}

/* ---- SPAN_ALLOC / SPAN_FREE --------------------------------------------- */

TEST_F(dev, alloc_free_one)
{
	long spans = read_stat("spans");
	void *span = NULL;

	ASSERT_EQ(0, span_alloc(self->fd, 1, 0, &span));
	EXPECT_LE((uintptr_t)self->arena, (uintptr_t)span);
	EXPECT_GT((uintptr_t)self->arena + ARENA_BYTES, (uintptr_t)span);
	EXPECT_EQ(0, (uintptr_t)span % self->page);
	EXPECT_EQ(spans + 1, read_stat("spans"));
	EXPECT_EQ(0, span_free(self->fd, span));
	EXPECT_EQ(spans, read_stat("spans"));
}

TEST_F(dev, span_is_zeroed_and_writable)
{
	unsigned char *span;
	size_t i, n = 16 * (size_t)self->page;

	ASSERT_EQ(0, span_alloc(self->fd, 16, 5, (void **)&span));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, span[i]);
	memset(span, 0xa5, n);
	for (i = 0; i < n; i += 997)
		ASSERT_EQ(0xa5, span[i]);
}

TEST_F(dev, reused_range_is_zeroed)
{
	unsigned char *a, *b;
	long i;

	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&a));
	memset(a, 0x5a, 4 * self->page);
	ASSERT_EQ(0, span_free(self->fd, a));
	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&b));
	/* Best fit hands the same range back; its frames are new and clean. */
	EXPECT_EQ(a, b);
	for (i = 0; i < 4 * self->page; i++)
		ASSERT_EQ(0, b[i]);
}

TEST_F(dev, many_spans_keep_their_data)
{
	enum { N = 200 };
	uint64_t *spans[N];
	long words, i, j;

	for (i = 0; i < N; i++) {
		long pages = 1 + i % 7;

		ASSERT_EQ(0, span_alloc(self->fd, pages, i % 64,
					(void **)&spans[i]));
		words = pages * self->page / sizeof(uint64_t);
		for (j = 0; j < words; j++)
			spans[i][j] = ((uint64_t)i << 32) | j;
	}
	/* Free every other one, then check the survivors word by word. */
	for (i = 0; i < N; i += 2)
		ASSERT_EQ(0, span_free(self->fd, spans[i]));
	for (i = 1; i < N; i += 2) {
		words = (1 + i % 7) * self->page / sizeof(uint64_t);
		for (j = 0; j < words; j++)
			ASSERT_EQ(((uint64_t)i << 32) | j, spans[i][j]);
	}
	for (i = 1; i < N; i += 2)
		ASSERT_EQ(0, span_free(self->fd, spans[i]));
}

TEST_F(dev, freed_span_faults)
{
	void *span = NULL;

	ASSERT_EQ(0, span_alloc(self->fd, 2, 0, &span));
	ASSERT_EQ(0, span_free(self->fd, span));
	EXPECT_EQ(SIGBUS, touch_signal(span, 0));
	EXPECT_EQ(SIGBUS, touch_signal((char *)span + self->page, 1));
}

TEST_F(dev, untouched_arena_faults)
{
	EXPECT_EQ(SIGBUS, touch_signal(self->arena + ARENA_BYTES / 2, 0));
}

TEST_F(dev, arena_full_enomem)
{
	uint64_t pages = ARENA_BYTES / self->page;
	void *span = NULL, *none;

	EXPECT_EQ(-ENOMEM, span_alloc(self->fd, pages + 1, 0, &none));
	/* Half the arena taken: one page more than the other half fails. */
	ASSERT_EQ(0, span_alloc(self->fd, pages / 2, 0, &span));
	EXPECT_EQ(-ENOMEM, span_alloc(self->fd, pages / 2 + 1, 0, &none));
	EXPECT_EQ(0, span_free(self->fd, span));
}

TEST_F(dev, free_coalesces)
{
	uint64_t half = ARENA_BYTES / self->page / 2;
	void *a, *b, *c;

	ASSERT_EQ(0, span_alloc(self->fd, half, 0, &a));
	ASSERT_EQ(0, span_alloc(self->fd, half, 0, &b));
	ASSERT_EQ(0, span_free(self->fd, a));
	ASSERT_EQ(0, span_free(self->fd, b));
	/* Only a merged free range holds the whole arena. */
	ASSERT_EQ(0, span_alloc(self->fd, 2 * half, 0, &c));
	EXPECT_EQ(self->arena, c);
	EXPECT_EQ(0, span_free(self->fd, c));
}

/* ---- batches and KEEP_RANGE ----------------------------------------------- */

static int alloc_batch(int fd, uint64_t pages, uint32_t count, uint64_t *addrs,
		       uint32_t *made)
{
	struct spanalloc_span_alloc_batch req = {
		.pages = pages, .addrs = (uintptr_t)addrs, .count = count,
	};

	if (ioctl(fd, SPANALLOC_IOC_SPAN_ALLOC_BATCH, &req))
		return -errno;
	*made = req.count;
	return 0;
}

static int free_batch(int fd, uint32_t count, uint64_t *addrs, uint32_t flags,
		      uint32_t *done)
{
	struct spanalloc_span_free_batch req = {
		.addrs = (uintptr_t)addrs, .count = count, .flags = flags,
	};
	int err = ioctl(fd, SPANALLOC_IOC_SPAN_FREE_BATCH, &req) ? -errno : 0;

	*done = req.count;
	return err;
}

TEST_F(dev, batch_alloc_free)
{
	uint64_t addrs[SPANALLOC_BATCH_MAX];
	uint32_t made = 0, done = 0, i;
	long frames = read_stat("frames");

	ASSERT_EQ(0, alloc_batch(self->fd, 2, 64, addrs, &made));
	ASSERT_EQ(64, made);
	for (i = 0; i < made; i++) {
		char *p = (char *)(uintptr_t)addrs[i];

		EXPECT_EQ(0, p[0]);
		memset(p, i, 2 * self->page);
		if (i)
			EXPECT_NE(addrs[i - 1], addrs[i]);
	}
	EXPECT_EQ(frames + 128, read_stat("frames"));
	for (i = 0; i < made; i++)
		EXPECT_EQ((char)i, ((char *)(uintptr_t)addrs[i])[self->page]);
	ASSERT_EQ(0, free_batch(self->fd, made, addrs, 0, &done));
	EXPECT_EQ(64, done);
	EXPECT_EQ(frames, read_stat("frames"));
}

TEST_F(dev, batch_alloc_partial_when_arena_fills)
{
	uint64_t quarter = ARENA_BYTES / self->page / 4, addrs[8];
	uint32_t made = 0, done = 0;

	/* Only three quarters fit after the first: the batch stops there. */
	ASSERT_EQ(0, alloc_batch(self->fd, quarter + 1, 8, addrs, &made));
	EXPECT_EQ(3, made);
	ASSERT_EQ(0, free_batch(self->fd, made, addrs, 0, &done));
	EXPECT_EQ(3, done);
}

TEST_F(dev, batch_bad_fields)
{
	struct spanalloc_span_alloc_batch a;
	struct spanalloc_span_free_batch f;
	uint64_t addrs[4];
	uint32_t made;

	EXPECT_EQ(-EINVAL, alloc_batch(self->fd, 1, 0, addrs, &made));
	EXPECT_EQ(-EINVAL, alloc_batch(self->fd, 1, SPANALLOC_BATCH_MAX + 1,
				       addrs, &made));
	EXPECT_EQ(-EINVAL, alloc_batch(self->fd, 0, 1, addrs, &made));
	EXPECT_EQ(-EFAULT, alloc_batch(self->fd, 1, 4, (uint64_t *)8, &made));
	memset(&a, 0, sizeof(a));
	a.pages = 1;
	a.count = 1;
	a.addrs = (uintptr_t)addrs;
	a.reserved0 = 1;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_ALLOC_BATCH, &a));
	EXPECT_EQ(EINVAL, errno);
	a.reserved0 = 0;
	a.size_class = SPANALLOC_MAX_SIZE_CLASS + 1;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_ALLOC_BATCH, &a));
	EXPECT_EQ(EINVAL, errno);

	memset(&f, 0, sizeof(f));
	f.addrs = (uintptr_t)addrs;
	f.count = 1;
	f.flags = 2;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_FREE_BATCH, &f));
	EXPECT_EQ(EINVAL, errno);
	f.flags = 0;
	f.reserved[1] = 1;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_FREE_BATCH, &f));
	EXPECT_EQ(EINVAL, errno);
	f.reserved[1] = 0;
	f.addrs = 8;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_FREE_BATCH, &f));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(dev, batch_free_stops_at_bad_address)
{
	uint64_t addrs[4];
	uint32_t made = 0, done = 0;
	void *span;

	ASSERT_EQ(0, alloc_batch(self->fd, 1, 4, addrs, &made));
	ASSERT_EQ(4, made);
	addrs[2] += 8;	/* not a span start */
	EXPECT_EQ(-EINVAL, free_batch(self->fd, 4, addrs, 0, &done));
	EXPECT_EQ(2, done);
	/* The ones from the bad address on are still live. */
	EXPECT_EQ(0, span_free(self->fd, (void *)(uintptr_t)addrs[3]));
	EXPECT_EQ(0, span_free(self->fd, (void *)(uintptr_t)(addrs[2] - 8)));
	EXPECT_EQ(-EINVAL, span_free(self->fd, (void *)(uintptr_t)addrs[0]));
	(void)span;
}

TEST_F(dev, keep_range_drops_frames_keeps_span)
{
	struct spanalloc_span_free req = { .flags = SPANALLOC_FREE_KEEP_RANGE };
	long frames = read_stat("frames");
	struct spanalloc_info info;
	unsigned char *span;

	ASSERT_EQ(0, span_alloc(self->fd, 8, 7, (void **)&span));
	memset(span, 0x77, 8 * self->page);
	req.addr = (uintptr_t)span;
	ASSERT_EQ(0, ioctl(self->fd, SPANALLOC_IOC_SPAN_FREE, &req));
	EXPECT_EQ(frames, read_stat("frames"));
	ASSERT_EQ(0, ioctl(self->fd, SPANALLOC_IOC_INFO, &info));
	EXPECT_EQ(1, info.heap_spans);
	/* Touched again: zeroes, one new frame per page touched. */
	EXPECT_EQ(0, span[0]);
	span[3 * self->page] = 5;
	EXPECT_EQ(5, span[3 * self->page]);
	EXPECT_EQ(frames + 2, read_stat("frames"));
	/* The range is still the span's: a full free works and counts. */
	EXPECT_EQ(0, span_free(self->fd, span));
	EXPECT_EQ(frames, read_stat("frames"));
}

TEST_F(dev, keep_range_after_fork_keeps_child_data)
{
	struct spanalloc_span_free req = { .flags = SPANALLOC_FREE_KEEP_RANGE };
	struct fork_case_lite { unsigned char *span; } fc;
	int pipefd[2], status;
	pid_t pid;
	char c;

	ASSERT_EQ(0, span_alloc(self->fd, 2, 0, (void **)&fc.span));
	memset(fc.span, 0x11, 2 * self->page);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (read(pipefd[0], &c, 1) != 1)
			_exit(2);
		_exit(fc.span[0] == 0x11 && fc.span[self->page] == 0x11 ? 0 : 1);
	}
	req.addr = (uintptr_t)fc.span;
	ASSERT_EQ(0, ioctl(self->fd, SPANALLOC_IOC_SPAN_FREE, &req));
	fc.span[0] = 0x99;	/* a hole filled in the parent only */
	ASSERT_EQ(1, write(pipefd[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* ---- per-heap stats ------------------------------------------------------ */

static int heap_stats(int fd, struct spanalloc_heap_stats *st,
		      struct spanalloc_class_stat *classes, uint32_t n)
{
	memset(st, 0, sizeof(*st));
	st->classes = (uintptr_t)classes;
	st->nr_classes = n;
	return ioctl(fd, SPANALLOC_IOC_HEAP_STATS, st) ? -errno : 0;
}

TEST_F(dev, heap_stats_by_class)
{
	struct spanalloc_class_stat classes[SPANALLOC_NUM_CLASSES];
	struct spanalloc_heap_stats st;
	void *small[3], *large;
	int i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, span_alloc(self->fd, 2, 5, &small[i]));
	ASSERT_EQ(0, span_alloc(self->fd, 10, 0, &large));
	ASSERT_EQ(0, span_free(self->fd, small[1]));
	ASSERT_EQ(0, heap_stats(self->fd, &st, classes, SPANALLOC_NUM_CLASSES));
	EXPECT_EQ(SPANALLOC_NUM_CLASSES, st.nr_classes);
	EXPECT_EQ(3, st.spans);
	EXPECT_EQ(14, st.pages);
	EXPECT_EQ(4, st.spans_made);
	EXPECT_EQ(1, st.spans_freed);
	EXPECT_EQ(5, st.calls);
	EXPECT_EQ(2, classes[5].spans);
	EXPECT_EQ(4, classes[5].pages);
	EXPECT_EQ(1, classes[0].spans);
	EXPECT_EQ(10, classes[0].pages);
	EXPECT_EQ(0, classes[6].spans);
	/* No array: the totals alone. */
	ASSERT_EQ(0, heap_stats(self->fd, &st, NULL, 0));
	EXPECT_EQ(3, st.spans);
}

/*
 * chunks_by_order: the buddy allocations by order since the module was
 * loaded, orders 0 to 9 on one line; pcp_frames read while a pool lives
 * (the sum over pools; with no heap there is no pool to sum).
 */
TEST_F(dev, stats_chunks_by_order_and_pcp_frames)
{
	char buf[256], *p, *end;
	long n, v, sum = 0;
	int fd, orders = 0;
	void *span;

	ASSERT_EQ(0, span_alloc(self->fd, 8, 0, &span));
	fd = open(STATS "chunks_by_order", O_RDONLY);
	ASSERT_LE(0, fd);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_LT(0, n);
	buf[n] = '\0';
	for (p = buf; *p != '\n' && orders < 64; p = end) {
		v = strtol(p, &end, 10);
		ASSERT_NE(p, end);
		EXPECT_LE(0, v);
		sum += v;
		orders++;
	}
	EXPECT_EQ(10, orders);
	/* This span's frames came from the buddy allocator, now or before. */
	EXPECT_LT(0, sum);
	EXPECT_LE(0, read_stat("pcp_frames"));
	EXPECT_EQ(0, span_free(self->fd, span));
}

TEST_F(dev, heap_stats_bad_fields)
{
	struct spanalloc_class_stat classes[SPANALLOC_NUM_CLASSES + 1];
	struct spanalloc_heap_stats st;

	EXPECT_EQ(-EINVAL, heap_stats(self->fd, &st, classes,
				      SPANALLOC_NUM_CLASSES + 1));
	EXPECT_EQ(-EINVAL, heap_stats(self->fd, &st, NULL, 1));
	EXPECT_EQ(-EFAULT, heap_stats(self->fd, &st, (void *)8, 4));
	memset(&st, 0, sizeof(st));
	st.reserved0 = 1;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_HEAP_STATS, &st));
	EXPECT_EQ(EINVAL, errno);
	memset(&st, 0, sizeof(st));
	st.reserved[1] = 1;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_HEAP_STATS, &st));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_HEAP_STATS, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(bare, heap_stats_without_arena_enxio)
{
	struct spanalloc_heap_stats st;

	EXPECT_EQ(-ENXIO, heap_stats(self->fd, &st, NULL, 0));
}

TEST_F(dev, debugfs_lists_every_heap)
{
	char line[1024], want[64];
	int found = 0;
	void *span;
	FILE *f;

	ASSERT_EQ(0, span_alloc(self->fd, 3, 7, &span));
	f = fopen("/sys/kernel/debug/spanalloc/heaps", "r");
	if (!f)
		SKIP(return, "no debugfs spanalloc/heaps (debugfs not mounted?)");
	snprintf(want, sizeof(want), "%d ", getpid());
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, want, strlen(want)) && strstr(line, " 7:1:3"))
			found++;
	fclose(f);
	EXPECT_EQ(1, found);
}

/* ---- the frame pool ------------------------------------------------------ */

static int write_param(const char *name, long value)
{
	char path[128], buf[32];
	int fd, n, ok;

	snprintf(path, sizeof(path), "/sys/module/spanalloc/parameters/%s",
		 name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld", value);
	ok = write(fd, buf, n) == n;
	close(fd);
	return ok ? 0 : -1;
}

static long read_param(const char *name)
{
	char path[128], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/module/spanalloc/parameters/%s",
		 name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* Wait up to 5 s for the zeroing worker to make @want frames clean. */
static int wait_clean(long want)
{
	int i;

	for (i = 0; i < 500; i++) {
		if (read_stat("pool_clean") >= want)
			return 0;
		usleep(10000);
	}
	return -1;
}

TEST_F(dev, pool_reuses_freed_frames)
{
	long alloced, pooled;
	void *a, *b;

	ASSERT_EQ(0, span_alloc(self->fd, 64, 0, &a));
	pooled = read_stat("pool_frames");
	ASSERT_EQ(0, span_free(self->fd, a));
	EXPECT_EQ(pooled + 64, read_stat("pool_frames"));
	/* Frames being zeroed are off the lists for a moment. */
	ASSERT_EQ(0, wait_clean(64));
	alloced = read_stat("frames_alloced");
	ASSERT_EQ(0, span_alloc(self->fd, 64, 0, &b));
	/* Served from the pool: nothing new from the buddy allocator. */
	EXPECT_EQ(alloced, read_stat("frames_alloced"));
	EXPECT_EQ(pooled, read_stat("pool_frames"));
	EXPECT_EQ(0, span_free(self->fd, b));
}

TEST_F(dev, pool_zeroes_ahead)
{
	long ahead = read_stat("zeroed_ahead"), sync;
	unsigned char *span;
	long i;

	ASSERT_EQ(0, span_alloc(self->fd, 32, 0, (void **)&span));
	memset(span, 0xee, 32 * self->page);
	ASSERT_EQ(0, span_free(self->fd, span));
	ASSERT_EQ(0, wait_clean(32));
	EXPECT_LE(ahead + 32, read_stat("zeroed_ahead"));
	sync = read_stat("zeroed_sync");
	ASSERT_EQ(0, span_alloc(self->fd, 32, 0, (void **)&span));
	EXPECT_EQ(sync, read_stat("zeroed_sync"));
	for (i = 0; i < 32 * self->page; i++)
		ASSERT_EQ(0, span[i]);
}

TEST_F(dev, pool_watermark_returns_excess)
{
	long old = read_param("pool_max_frames"), freed;
	void *span;

	ASSERT_LE(0, old);
	if (write_param("pool_max_frames", 16))
		SKIP(return, "cannot set pool_max_frames (not root?)");
	ASSERT_EQ(0, span_alloc(self->fd, 256, 0, &span));
	freed = read_stat("frames_freed");
	ASSERT_EQ(0, span_free(self->fd, span));
	EXPECT_GE(16, read_stat("pool_frames"));
	EXPECT_LE(freed + 240, read_stat("frames_freed"));
	write_param("pool_max_frames", old);
}

TEST_F(dev, pool_not_reused_while_fork_child_maps_frames)
{
	long pooled, freed;
	int pipefd[2], status;
	unsigned char *span;
	pid_t pid;
	char c;

	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&span));
	memset(span, 0x11, 4 * self->page);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* Keep reading the frames through the copied PTEs. */
		if (read(pipefd[0], &c, 1) != 1)
			_exit(2);
		_exit(span[0] == 0x11 && span[4 * self->page - 1] == 0x11 ?
		      0 : 1);
	}
	pooled = read_stat("pool_frames");
	freed = read_stat("frames_freed");
	/* Both heaps hold the frames: the parent's free keeps them. */
	ASSERT_EQ(0, span_free(self->fd, span));
	EXPECT_EQ(pooled, read_stat("pool_frames"));
	ASSERT_EQ(1, write(pipefd[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The child's exit let go of the last reference: back to the pool. */
	EXPECT_EQ(pooled + 4, read_stat("pool_frames") + read_stat("frames_freed") - freed);
}

TEST_F(dev, shrinker_drop_caches)
{
	void *span;
	int fd;

	ASSERT_EQ(0, span_alloc(self->fd, 128, 0, &span));
	ASSERT_EQ(0, span_free(self->fd, span));
	ASSERT_LE(128, read_stat("pool_frames"));
	ASSERT_EQ(0, wait_clean(read_stat("pool_frames")));
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		SKIP(return, "no /proc/sys/vm/drop_caches (not root?)");
	/* 2: slab objects, i.e. every shrinker. */
	ASSERT_EQ(1, write(fd, "2", 1));
	close(fd);
	EXPECT_EQ(0, read_stat("pool_frames"));
	EXPECT_LE(128, read_stat("shrinker_freed"));
}

/*
 * Reclaim reaches the shrinker: proactive reclaim of the root cgroup
 * (memory.reclaim) runs the same shrink_slab() passes as a memory hog
 * would, at falling priority, without depending on how much memory is
 * free. Each write asks for 128 MiB; a write that finds nothing to
 * reclaim fails with EAGAIN after reclaim at the lowest priority, where
 * every shrinker is asked for all it holds.
 */
TEST_F(dev, shrinker_under_reclaim)
{
	long old = read_param("pool_max_frames"), pool_pages = 32768;
	long start_freed;
	void *span;
	int fd, i;

	fd = open("/sys/fs/cgroup/memory.reclaim", O_WRONLY);
	if (fd < 0)
		SKIP(return, "no /sys/fs/cgroup/memory.reclaim (cgroup2, root)");
	if (write_param("pool_max_frames", pool_pages)) {
		close(fd);
		SKIP(return, "cannot set pool_max_frames (not root?)");
	}
	if (span_alloc(self->fd, pool_pages, 0, &span)) {
		write_param("pool_max_frames", old);
		close(fd);
		SKIP(return, "not enough memory for a 128 MiB pool");
	}
	ASSERT_EQ(0, span_free(self->fd, span));
	ASSERT_LE(pool_pages, read_stat("pool_frames"));
	start_freed = read_stat("shrinker_freed");
	for (i = 0; i < 64 && read_stat("shrinker_freed") == start_freed; i++)
		if (write(fd, "128M", 4) < 0 && errno != EAGAIN)
			break;
	close(fd);
	write_param("pool_max_frames", old);
	EXPECT_LT(start_freed, read_stat("shrinker_freed"));
	EXPECT_GT(pool_pages, read_stat("pool_frames"));
}

/* Write @str to the file @path; 0 or -1. */
static int write_file(const char *path, const char *str)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, str, strlen(str)) == (ssize_t)strlen(str);
	close(fd);
	return ok ? 0 : -1;
}

/*
 * The child of shrinker_relieves_its_memcg, already in the limited cgroup:
 * a heap of its own there (the arena inherited from the parent is given
 * up, and with it the parent's heap and pool), 32 MiB through the pool,
 * then 48 MiB of anonymous memory under a 64 MiB memory.max. Only the
 * shrinker, called for this cgroup, can make room. Exits 0 when it got
 * through; the memcg OOM killer's SIGKILL otherwise.
 */
static int memcg_child(int fd, void *arena, long pool_pages)
{
	const size_t anon_bytes = 48UL << 20;
	void *span;
	char *p;
	size_t i;

	if (munmap(arena, ARENA_BYTES))
		return 10;
	arena = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		     fd, 0);
	if (arena == MAP_FAILED)
		return 11;
	if (span_alloc(fd, pool_pages, 0, &span))
		return 12;
	memset(span, 1, pool_pages * page_size());
	if (span_free(fd, span))
		return 13;
	p = mmap(NULL, anon_bytes, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 14;
	for (i = 0; i < anon_bytes; i += page_size())
		p[i] = (char)i | 1;
	return 0;
}

/*
 * Reclaim of a cgroup at its memory.max reaches the pool of that cgroup
 * (review M2): the frames a pool keeps are charged to its cgroup, so a
 * shrinker that memcg reclaim never calls lets the cgroup OOM with a full
 * pool. No swap for the cgroup (memory.swap.max 0), so nothing else in it
 * can give way. And only that cgroup's pool: the parent's, in the root
 * cgroup, keeps its frames.
 */
TEST_F(dev, shrinker_relieves_its_memcg)
{
	long old = read_param("pool_max_frames"), pool_pages = 8192;
	long start_freed, parent_pooled, parent_pages = 2048;
	char dir[64], path[96];
	void *span;
	int status;
	pid_t pid;

	if (write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory") &&
	    errno != EBUSY)
		SKIP(return, "no memory controller in cgroup2 (not root?)");
	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/spanalloc-memcg-%d",
		 getpid());
	if (mkdir(dir, 0755))
		SKIP(return, "cannot make a cgroup: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/memory.swap.max", dir);
	if (write_file(path, "0")) {
		rmdir(dir);
		SKIP(return, "no memory.swap.max (swap accounting off)");
	}
	snprintf(path, sizeof(path), "%s/memory.max", dir);
	ASSERT_EQ(0, write_file(path, "64M"));
	ASSERT_EQ(0, write_param("pool_max_frames", pool_pages));
	ASSERT_EQ(0, span_alloc(self->fd, parent_pages, 0, &span));
	ASSERT_EQ(0, span_free(self->fd, span));
	parent_pooled = read_stat("pool_frames");
	ASSERT_LE(parent_pages, parent_pooled);
	start_freed = read_stat("shrinker_freed");

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
		_exit(write_file(path, "0") ? 9 :
		      memcg_child(self->fd, self->arena, pool_pages));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	write_param("pool_max_frames", old);
	rmdir(dir);
	EXPECT_TRUE(WIFEXITED(status)) {
		TH_LOG("the child was killed by signal %d: the memcg OOMed "
		       "with the pool full", WTERMSIG(status));
	}
	if (WIFEXITED(status))
		EXPECT_EQ(0, WEXITSTATUS(status));
	/* At least the 16 MiB that did not fit. */
	EXPECT_LE(start_freed + 4096, read_stat("shrinker_freed"));
	/* The child's pool went with its heap; the parent's is whole. */
	EXPECT_EQ(parent_pooled, read_stat("pool_frames"));
}

/* ---- every bad field, with its errno --------------------------------- */

TEST_F(dev, alloc_zero_pages_einval)
{
	void *span = NULL;

	EXPECT_EQ(-EINVAL, span_alloc(self->fd, 0, 0, &span));
}

TEST_F(dev, alloc_bad_class_einval)
{
	void *span = NULL;

	EXPECT_EQ(-EINVAL, span_alloc(self->fd, 1, SPANALLOC_MAX_SIZE_CLASS + 1,
				      &span));
	EXPECT_EQ(0, span_alloc(self->fd, 1, SPANALLOC_MAX_SIZE_CLASS, &span));
}

TEST_F(dev, alloc_bad_flags_einval)
{
	struct spanalloc_span_alloc req = { .pages = 1, .flags = 1 };

	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_ALLOC, &req));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(dev, alloc_reserved_einval)
{
	struct spanalloc_span_alloc req = { .pages = 1 };
	int i;

	for (i = 0; i < 2; i++) {
		memset(&req, 0, sizeof(req));
		req.pages = 1;
		req.reserved[i] = 1;
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_ALLOC, &req));
		EXPECT_EQ(EINVAL, errno);
	}
	/* @addr is an output: a caller must not pass garbage in it. */
	memset(&req, 0, sizeof(req));
	req.pages = 1;
	req.addr = 0x1000;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_ALLOC, &req));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(dev, alloc_huge_enomem)
{
	void *span = NULL;

	EXPECT_EQ(-ENOMEM, span_alloc(self->fd, UINT64_MAX, 0, &span));
	EXPECT_EQ(-ENOMEM, span_alloc(self->fd, 1ULL << 40, 0, &span));
}

TEST_F(dev, alloc_efault)
{
	long frames = read_stat("frames");
	struct spanalloc_span_alloc *ro;

	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_ALLOC, (void *)8));
	EXPECT_EQ(EFAULT, errno);

	/* Readable but not writable: the span is made, then taken back. */
	ro = mmap(NULL, self->page, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	ro->pages = 4;
	ASSERT_EQ(0, mprotect(ro, self->page, PROT_READ));
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_ALLOC, ro));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(frames, read_stat("frames"));
	munmap(ro, self->page);
}

/*
 * The other thread of batch_efault_spares_a_newer_span: once the kernel's
 * copy of the addresses stops at the userfaultfd page, it frees the first
 * span (its address already copied), makes a new one in its place, then
 * unmaps the page the copy waits for, so that the copy fails.
 */
struct efault_race {
	int fd, uffd;
	uint64_t *addrs;
	char *wait_page;
	long page;
	void *renewed;
	int err;
};

static void *efault_race_thread(void *arg)
{
	struct efault_race *r = arg;
	struct uffdio_range range = {
		.start = (uintptr_t)r->wait_page, .len = r->page,
	};
	struct pollfd pfd = { .fd = r->uffd, .events = POLLIN };
	struct uffd_msg msg;

	if (poll(&pfd, 1, 60000) != 1 ||
	    read(r->uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT) {
		r->err = 1;
		return NULL;
	}
	if (span_free(r->fd, (void *)(uintptr_t)r->addrs[0]) ||
	    span_alloc(r->fd, 2, 9, &r->renewed))
		r->err = 2;
	munmap(r->wait_page, r->page);
	ioctl(r->uffd, UFFDIO_WAKE, &range);
	return NULL;
}

/*
 * A batch whose addresses cannot all be copied out is taken back, but only
 * the spans it made (review L5: it freed by address, so a span another
 * thread made at a freed address went too). userfaultfd holds the copy
 * midway, with two addresses written, while the other thread reuses one.
 */
TEST_F(dev, batch_efault_spares_a_newer_span)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct spanalloc_span_alloc_batch req = {
		.pages = 2, .size_class = 9, .count = 4,
	};
	struct efault_race r = { .fd = self->fd, .page = self->page };
	pthread_t thread;
	char *buf;
	int ret;

	r.uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (r.uffd < 0)
		SKIP(return, "no userfaultfd for kernel faults (not root?)");
	ASSERT_EQ(0, ioctl(r.uffd, UFFDIO_API, &api));
	buf = mmap(NULL, 2 * self->page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	buf[0] = 1;
	r.wait_page = buf + self->page;
	reg.range.start = (uintptr_t)r.wait_page;
	reg.range.len = self->page;
	ASSERT_EQ(0, ioctl(r.uffd, UFFDIO_REGISTER, &reg));
	/* Two addresses on the present page, two on the one that waits. */
	r.addrs = (uint64_t *)(r.wait_page - 2 * sizeof(uint64_t));
	req.addrs = (uintptr_t)r.addrs;
	ASSERT_EQ(0, pthread_create(&thread, NULL, efault_race_thread, &r));

	errno = 0;
	ret = ioctl(self->fd, SPANALLOC_IOC_SPAN_ALLOC_BATCH, &req);
	ASSERT_EQ(0, pthread_join(thread, NULL));
	close(r.uffd);
	ASSERT_EQ(0, r.err);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	if ((uintptr_t)r.renewed != r.addrs[0]) {
		span_free(self->fd, r.renewed);
		munmap(buf, self->page);
		SKIP(return, "the new span went elsewhere: no reuse to test");
	}
	/* The other thread's span is alive; ours went back. */
	EXPECT_EQ(0, touch_signal(r.renewed, 1));
	EXPECT_EQ(0, span_free(self->fd, r.renewed));
	EXPECT_EQ(-EINVAL, span_free(self->fd, (void *)(uintptr_t)r.addrs[1]));
	munmap(buf, self->page);
}

TEST_F(dev, free_not_span_start_einval)
{
	char *span = NULL;

	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&span));
	EXPECT_EQ(-EINVAL, span_free(self->fd, span + self->page));
	EXPECT_EQ(-EINVAL, span_free(self->fd, span + 1));
	EXPECT_EQ(-EINVAL, span_free(self->fd, self->arena + ARENA_BYTES));
	EXPECT_EQ(-EINVAL, span_free(self->fd, self->arena - self->page));
	EXPECT_EQ(-EINVAL, span_free(self->fd, NULL));
	EXPECT_EQ(-EINVAL, span_free(self->fd, (void *)UINTPTR_MAX));
	/* None of that touched the span. */
	span[0] = 1;
	EXPECT_EQ(0, span_free(self->fd, span));
}

TEST_F(dev, free_twice_einval)
{
	void *span = NULL;

	ASSERT_EQ(0, span_alloc(self->fd, 1, 0, &span));
	EXPECT_EQ(0, span_free(self->fd, span));
	EXPECT_EQ(-EINVAL, span_free(self->fd, span));
}

TEST_F(dev, free_bad_flags_reserved_einval)
{
	struct spanalloc_span_free req;
	void *span = NULL;
	int i;

	ASSERT_EQ(0, span_alloc(self->fd, 1, 0, &span));
	for (i = 0; i < 4; i++) {
		memset(&req, 0, sizeof(req));
		req.addr = (uintptr_t)span;
		if (i == 0)
			req.flags = ~SPANALLOC_FREE_VALID_FLAGS;
		else if (i == 1)
			req.reserved0 = 1;
		else
			req.reserved[i - 2] = 1;
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_FREE, &req));
		EXPECT_EQ(EINVAL, errno);
	}
	EXPECT_EQ(0, span_free(self->fd, span));
}

TEST_F(dev, free_efault)
{
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_FREE, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(bare, span_ioctls_without_arena_enxio)
{
	void *span = NULL;

	EXPECT_EQ(-ENXIO, span_alloc(self->fd, 1, 0, &span));
	EXPECT_EQ(-ENXIO, span_free(self->fd, (void *)0x10000));
	EXPECT_EQ(-ENXIO, span_resize(self->fd, (void *)0x10000, 2));
}

/* ---- mmap misuse -------------------------------------------------------- */

TEST_F(dev, second_arena_ebusy)
{
	void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->fd, 0);

	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EBUSY, errno);
}

TEST_F(bare, mmap_misuse)
{
	static const struct {
		const char *what;
		int prot, flags;
		off_t off;
		size_t len;
		int err;
	} cases[] = {
		{ "private", PROT_READ | PROT_WRITE, MAP_PRIVATE, 0, 1 << 20,
		  EINVAL },
		{ "offset", PROT_READ | PROT_WRITE, MAP_SHARED, 1 << 12,
		  1 << 20, EINVAL },
		{ "read-only", PROT_READ, MAP_SHARED, 0, 1 << 20, EINVAL },
		{ "exec", PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED, 0,
		  1 << 20, EPERM },
	};
	struct spanalloc_info info;
	unsigned int i;
	void *p;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		p = mmap(NULL, cases[i].len, cases[i].prot, cases[i].flags, self->fd,
			 cases[i].off);
		EXPECT_EQ(MAP_FAILED, p) TH_LOG("%s", cases[i].what);
		EXPECT_EQ(cases[i].err, errno) TH_LOG("%s", cases[i].what);
	}
	ASSERT_EQ(0, ioctl(self->fd, SPANALLOC_IOC_INFO, &info));
	errno = 0;
	p = mmap(NULL, info.arena_max_bytes + (1UL << 20),
		 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	/* None of that left a heap behind: a good mmap still works. */
	p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	EXPECT_NE(MAP_FAILED, p);
}

TEST_F(dev, partial_munmap_einval)
{
	errno = 0;
	EXPECT_EQ(-1, munmap(self->arena + self->page, self->page));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(dev, mprotect_answers)
{
	void *span = NULL;

	ASSERT_EQ(0, span_alloc(self->fd, 1, 0, &span));
	errno = 0;
	EXPECT_EQ(-1, mprotect(self->arena, ARENA_BYTES, PROT_READ));
	EXPECT_EQ(EACCES, errno);
	errno = 0;
	EXPECT_EQ(-1, mprotect(self->arena, ARENA_BYTES,
			       PROT_READ | PROT_WRITE | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
	/* A part: refused the same way, before the arena could split. */
	errno = 0;
	EXPECT_EQ(-1, mprotect(self->arena, self->page, PROT_READ));
	EXPECT_EQ(EACCES, errno);
	/* Read-write on the whole is what it is already. */
	EXPECT_EQ(0, mprotect(self->arena, ARENA_BYTES,
			      PROT_READ | PROT_WRITE));
	*(volatile char *)span = 1;
	EXPECT_EQ(0, span_free(self->fd, span));
}

TEST_F(dev, mremap_refused)
{
	void *p;

	p = mremap(self->arena, ARENA_BYTES, ARENA_BYTES * 2, 0);
	EXPECT_EQ(MAP_FAILED, p);
	p = mremap(self->arena, ARENA_BYTES, ARENA_BYTES * 2, MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, p);
}

/*
 * Moving the arena without growing it passes VM_DONTEXPAND: the core mm
 * copies the VMA (->open in the same mm) and asks ->mremap, which refuses;
 * the copy is closed again and the heap must live on with its data.
 */
TEST_F(dev, mremap_move_refused_heap_lives_on)
{
	char *span, *target, *again;
	void *p;

	ASSERT_EQ(0, span_alloc(self->fd, 2, 0, (void **)&span));
	memset(span, 0x6b, 2 * self->page);
	target = mmap(NULL, ARENA_BYTES, PROT_NONE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, target);
	p = mremap(self->arena, ARENA_BYTES, ARENA_BYTES,
		   MREMAP_MAYMOVE | MREMAP_FIXED, target);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	if (p == MAP_FAILED)
		munmap(target, ARENA_BYTES);
	/* Closing the copy did not end the heap: spans work as before. */
	EXPECT_EQ(0x6b, span[2 * self->page - 1]);
	EXPECT_EQ(2, heap_pages(self->fd));
	ASSERT_EQ(0, span_alloc(self->fd, 1, 0, (void **)&again));
	again[0] = 1;
	EXPECT_EQ(0, span_free(self->fd, again));
	EXPECT_EQ(0, span_free(self->fd, span));
}

/*
 * A shared mapping: MADV_DONTNEED drops the entries, the data stays and a
 * refault maps it again (one fault maps the page and the next ones).
 */
TEST_F(dev, madvise_dontneed_keeps_data)
{
	long refills = read_stat("fault_refills");
	char *span = NULL;

	ASSERT_EQ(0, span_alloc(self->fd, 2, 0, (void **)&span));
	memset(span, 7, 2 * self->page);
	ASSERT_EQ(0, madvise(span, 2 * self->page, MADV_DONTNEED));
	EXPECT_EQ(7, span[0]);
	EXPECT_EQ(7, span[self->page + 5]);
	EXPECT_EQ(refills + 1, read_stat("fault_refills"));
	span[1] = 3;
	EXPECT_EQ(3, span[1]);
	EXPECT_EQ(0, span_free(self->fd, span));
}

TEST_F(dev, munmap_whole_arena_ends_heap)
{
	long heaps = read_stat("heaps"), frames = read_stat("frames");
	void *span = NULL;

	ASSERT_EQ(0, span_alloc(self->fd, 8, 0, &span));
	EXPECT_EQ(frames + 8, read_stat("frames"));
	ASSERT_EQ(0, munmap(self->arena, ARENA_BYTES));
	self->arena = MAP_FAILED;
	EXPECT_EQ(heaps - 1, read_stat("heaps"));
	EXPECT_EQ(frames, read_stat("frames"));
	EXPECT_EQ(-ENXIO, span_alloc(self->fd, 1, 0, &span));
}

/* ---- process exit and fork ---------------------------------------------- */

TEST(exit_without_free_returns_frames)
{
	long frames, heaps, spans;
	int status;
	pid_t pid;

	if (!device_present())
		SKIP(return, "module not loaded");
	frames = read_stat("frames");
	heaps = read_stat("heaps");
	spans = read_stat("spans");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = open(DEV, O_RDWR);
		void *span = NULL;
		int i;

		if (fd < 0 || mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
				   MAP_SHARED, fd, 0) == MAP_FAILED)
			_exit(2);
		for (i = 0; i < 64; i++)
			if (span_alloc(fd, 1 + i, 0, &span))
				_exit(3);
		_exit(read_stat("frames") == frames + 64 * 65 / 2 ? 0 : 4);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(frames, read_stat("frames"));
	EXPECT_EQ(heaps, read_stat("heaps"));
	EXPECT_EQ(spans, read_stat("spans"));
}

TEST(kill_9_returns_frames)
{
	int pipefd[2], status;
	long frames;
	pid_t pid;
	char c;

	if (!device_present())
		SKIP(return, "module not loaded");
	frames = read_stat("frames");
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = open(DEV, O_RDWR);
		void *span = NULL;

		mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		     fd, 0);
		span_alloc(fd, 100, 0, &span);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	EXPECT_EQ(frames + 100, read_stat("frames"));
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(frames, read_stat("frames"));
	close(pipefd[0]);
	close(pipefd[1]);
}

/* Run @fn in a child; return its exit status (or 128 + signal). */
static int in_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(arg));
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct fork_case {
	int fd;
	unsigned char *span;
	long bytes;
};

static int child_sees_then_writes(void *arg)
{
	struct fork_case *fc = arg;
	long i;

	for (i = 0; i < fc->bytes; i++)
		if (fc->span[i] != 0x11)
			return 1;
	memset(fc->span, 0x22, fc->bytes);
	return 0;
}

TEST_F(dev, fork_child_writes_stay_in_child)
{
	struct fork_case fc = { .fd = self->fd, .bytes = 8 * self->page };
	long i;

	ASSERT_EQ(0, span_alloc(self->fd, 8, 0, (void **)&fc.span));
	memset(fc.span, 0x11, fc.bytes);
	EXPECT_EQ(0, in_child(child_sees_then_writes, &fc));
	for (i = 0; i < fc.bytes; i++)
		ASSERT_EQ(0x11, fc.span[i]);
}

static int child_waits_then_checks(void *arg)
{
	struct fork_case *fc = arg;
	char c;
	long i;

	/* fd is a pipe here: wait for the parent's writes. */
	if (read(fc->fd, &c, 1) != 1)
		return 2;
	for (i = 0; i < fc->bytes; i++)
		if (fc->span[i] != 0x11)
			return 1;
	return 0;
}

TEST_F(dev, fork_parent_writes_stay_in_parent)
{
	struct fork_case fc = { .bytes = 8 * self->page };
	int pipefd[2], status;
	pid_t pid;

	ASSERT_EQ(0, span_alloc(self->fd, 8, 0, (void **)&fc.span));
	memset(fc.span, 0x11, fc.bytes);
	ASSERT_EQ(0, pipe(pipefd));
	fc.fd = pipefd[0];
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_waits_then_checks(&fc));
	memset(fc.span, 0x33, fc.bytes);
	ASSERT_EQ(1, write(pipefd[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0x33, fc.span[fc.bytes - 1]);
}

static int child_frees_and_allocates(void *arg)
{
	struct fork_case *fc = arg;
	struct spanalloc_info info;
	void *again;

	if (ioctl(fc->fd, SPANALLOC_IOC_INFO, &info) || info.heap_spans != 1)
		return 1;
	/* The child's heap: freeing its copy does not touch the parent's. */
	if (span_free(fc->fd, fc->span))
		return 2;
	if (span_alloc(fc->fd, 8, 0, &again) || again != fc->span)
		return 3;
	memset(again, 0x44, fc->bytes);
	return 0;
}

TEST_F(dev, fork_child_has_own_heap)
{
	struct fork_case fc = { .fd = self->fd, .bytes = 8 * self->page };
	long frames = read_stat("frames");
	struct spanalloc_info info;
	long i;

	ASSERT_EQ(0, span_alloc(self->fd, 8, 0, (void **)&fc.span));
	memset(fc.span, 0x11, fc.bytes);
	EXPECT_EQ(0, in_child(child_frees_and_allocates, &fc));
	for (i = 0; i < fc.bytes; i++)
		ASSERT_EQ(0x11, fc.span[i]);
	ASSERT_EQ(0, ioctl(self->fd, SPANALLOC_IOC_INFO, &info));
	EXPECT_EQ(1, info.heap_spans);
	EXPECT_EQ(frames + 8, read_stat("frames"));
	EXPECT_EQ(0, span_free(self->fd, fc.span));
	EXPECT_EQ(frames, read_stat("frames"));
}

static int child_keeps_old_span(void *arg)
{
	struct fork_case *fc = arg;
	char c;
	long i;

	if (read(fc->fd, &c, 1) != 1)
		return 2;
	for (i = 0; i < fc->bytes; i++)
		if (fc->span[i] != 0x11)
			return 1;
	return 0;
}

/*
 * The trap of design.md: after fork the parent frees span X and reuses
 * its range for a span of another class; the child, still holding X,
 * must see X's data and X's record, not the parent's new span.
 */
TEST_F(dev, fork_reuse_after_fork)
{
	struct fork_case fc = { .bytes = 8 * self->page };
	int pipefd[2], status;
	void *reused = NULL;
	pid_t pid;

	ASSERT_EQ(0, span_alloc(self->fd, 8, 3, (void **)&fc.span));
	memset(fc.span, 0x11, fc.bytes);
	ASSERT_EQ(0, pipe(pipefd));
	fc.fd = pipefd[0];
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_keeps_old_span(&fc));
	ASSERT_EQ(0, span_free(self->fd, fc.span));
	ASSERT_EQ(0, span_alloc(self->fd, 8, 9, &reused));
	EXPECT_EQ(fc.span, reused);
	memset(reused, 0x55, fc.bytes);
	ASSERT_EQ(1, write(pipefd[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

static int child_dontneed(void *arg)
{
	struct fork_case *fc = arg;

	if (madvise(fc->span, fc->bytes, MADV_DONTNEED))
		return 1;
	/* The child's data is still there ... */
	if (fc->span[0] != 0x11)
		return 2;
	fc->span[0] = 9;
	return 0;
}

TEST_F(dev, fork_dontneed_in_child_keeps_parent)
{
	struct fork_case fc = { .fd = self->fd, .bytes = 2 * self->page };

	ASSERT_EQ(0, span_alloc(self->fd, 2, 0, (void **)&fc.span));
	memset(fc.span, 0x11, fc.bytes);
	EXPECT_EQ(0, in_child(child_dontneed, &fc));
	/* ... and the parent's data is untouched. */
	EXPECT_EQ(0x11, fc.span[0]);
	EXPECT_EQ(0x11, fc.span[fc.bytes - 1]);
}

/* ---- the span view ----------------------------------------------------------- */

static uint64_t *map_view(int fd, int prot, int flags, size_t *bytes)
{
	struct spanalloc_info info;
	void *v;

	if (ioctl(fd, SPANALLOC_IOC_INFO, &info))
		return NULL;
	*bytes = info.view_bytes;
	v = mmap(NULL, info.view_bytes, prot, flags, fd, SPANALLOC_VIEW_OFFSET);
	return v == MAP_FAILED ? NULL : v;
}

static uint64_t view_of(uint64_t *view, char *arena, void *p, long page)
{
	return view[((char *)p - arena) / page];
}

TEST_F(dev, view_shows_spans)
{
	char *a = NULL, *b = NULL;
	uint64_t *view, e;
	size_t bytes;
	long i;

	view = map_view(self->fd, PROT_READ, MAP_SHARED, &bytes);
	ASSERT_NE(NULL, view);
	EXPECT_EQ(ARENA_BYTES / self->page * 8, bytes);
	ASSERT_EQ(0, span_alloc(self->fd, 3, 7, (void **)&a));
	ASSERT_EQ(0, span_alloc(self->fd, 600, 0, (void **)&b));
	for (i = 0; i < 3; i++) {
		e = view_of(view, self->arena, a + i * self->page, self->page);
		EXPECT_EQ(7, SPANALLOC_VIEW_CLASS(e));
		EXPECT_EQ((a - self->arena) / self->page + 1,
			  SPANALLOC_VIEW_FIRST(e));
	}
	/* A large span crossing view pages: every entry names its start. */
	for (i = 0; i < 600; i += 37) {
		e = view_of(view, self->arena, b + i * self->page, self->page);
		EXPECT_EQ(0, SPANALLOC_VIEW_CLASS(e));
		EXPECT_EQ((b - self->arena) / self->page + 1,
			  SPANALLOC_VIEW_FIRST(e));
	}
	EXPECT_EQ(0, view_of(view, self->arena, b + 600 * self->page,
			     self->page));
	ASSERT_EQ(0, span_free(self->fd, a));
	EXPECT_EQ(0, view_of(view, self->arena, a, self->page));
	EXPECT_EQ(0, view_of(view, self->arena, a + 2 * self->page, self->page));
	munmap(view, bytes);
}

TEST_F(dev, view_mapped_late_sees_old_spans)
{
	uint64_t *view;
	size_t bytes;
	char *a;

	ASSERT_EQ(0, span_alloc(self->fd, 2, 11, (void **)&a));
	view = map_view(self->fd, PROT_READ, MAP_PRIVATE, &bytes);
	ASSERT_NE(NULL, view);
	EXPECT_EQ(11, SPANALLOC_VIEW_CLASS(view_of(view, self->arena,
						   a + self->page, self->page)));
	munmap(view, bytes);
}

/*
 * A new arena, a new heap: a view mapped before shows the new heap's
 * records, never the dead heap's (review L1: its PTEs outlived the heap).
 */
/* The view is one mapping: unmapping or protecting part of it is EINVAL. */
TEST_F(dev, view_cannot_be_split)
{
	uint64_t *view;
	size_t bytes;
	char *a, *v;

	view = map_view(self->fd, PROT_READ, MAP_SHARED, &bytes);
	ASSERT_NE(NULL, view);
	ASSERT_LE(3 * self->page, (long)bytes);
	v = (char *)view;
	EXPECT_EQ(-1, munmap(v + self->page, self->page));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, mprotect(v, self->page, PROT_NONE));
	EXPECT_EQ(EINVAL, errno);
	/* Still one whole view. */
	ASSERT_EQ(0, span_alloc(self->fd, 1, 9, (void **)&a));
	EXPECT_EQ(9, SPANALLOC_VIEW_CLASS(view_of(view, self->arena, a,
						  self->page)));
	EXPECT_EQ(0, view[bytes / 8 - 1]);
	EXPECT_EQ(0, munmap(view, bytes));
}

TEST_F(dev, view_follows_a_new_arena)
{
	uint64_t *view;
	size_t bytes;
	long a_page;
	char *a, *b;

	view = map_view(self->fd, PROT_READ, MAP_SHARED, &bytes);
	ASSERT_NE(NULL, view);
	ASSERT_EQ(0, span_alloc(self->fd, 2, 11, (void **)&a));
	a_page = (a - self->arena) / self->page;
	ASSERT_EQ(11, SPANALLOC_VIEW_CLASS(view[a_page]));
	ASSERT_EQ(0, munmap(self->arena, ARENA_BYTES));
	self->arena = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
			   MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->arena);
	ASSERT_EQ(0, span_alloc(self->fd, 2, 5, (void **)&b));
	/* The old span's entry is gone with its heap, the new one shows. */
	if ((b - self->arena) / self->page != a_page)
		EXPECT_EQ(0, view[a_page]);
	EXPECT_EQ(5, SPANALLOC_VIEW_CLASS(view_of(view, self->arena, b,
						  self->page)));
	munmap(view, bytes);
}

/*
 * Make the next page allocation with spanalloc.ko on the stack of a task
 * with make-it-fail fail, once (fail_page_alloc, the debug kernel). 0 when
 * set up, -1 when the kernel cannot (the caller skips).
 */
static int fail_next_module_page(void)
{
	static const char *const knobs[][2] = {
		{ "probability", "100" }, { "interval", "1" }, { "times", "1" },
		{ "space", "0" }, { "verbose", "0" }, { "task-filter", "Y" },
		{ "ignore-gfp-wait", "N" }, { "ignore-gfp-highmem", "N" },
		{ "min-order", "0" }, { "stacktrace-depth", "32" },
	};
	const char *dir = "/sys/kernel/debug/fail_page_alloc/";
	unsigned long size, base = 0;
	char path[128], line[256], name[64], val[32];
	FILE *f = fopen("/proc/modules", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lu %*s %*s %*s %lx", name, &size, &base) == 3 &&
		    !strcmp(name, "spanalloc"))
			break;
		else
			base = 0;
	fclose(f);
	if (!base)
		return -1;
	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]) + 2; i++) {
		const char *k, *v;

		if (i < sizeof(knobs) / sizeof(knobs[0])) {
			k = knobs[i][0];
			v = knobs[i][1];
		} else {
			k = i == sizeof(knobs) / sizeof(knobs[0]) ?
			    "require-start" : "require-end";
			snprintf(val, sizeof(val), "%lu",
				 k[8] == 's' ? base : base + size);
			v = val;
		}
		snprintf(path, sizeof(path), "%s%s", dir, k);
		f = fopen(path, "w");
		if (!f) {
			if (!strcmp(k, "ignore-gfp-highmem") || !strcmp(k, "min-order"))
				continue;
			return -1;
		}
		fprintf(f, "%s\n", v);
		if (fclose(f))
			return -1;
	}
	return 0;
}

static void fail_page_alloc_off(void)
{
	FILE *f = fopen("/sys/kernel/debug/fail_page_alloc/probability", "w");

	if (f) {
		fputs("0\n", f);
		fclose(f);
	}
}

/*
 * A view page the module cannot build raises SIGBUS, as a span's fault
 * does: it used to answer VM_FAULT_OOM, which outside a memory cgroup OOM
 * only retries the fault ("Huh VM_FAULT_OOM leaked out"), forever when
 * nothing can be reclaimed (found reviewing the view for the fuzzer's fault
 * mode: the fuzzer itself cannot tell a retried fault from a slow one).
 */
TEST_F(dev, view_page_without_memory_is_sigbus)
{
	uint64_t *view;
	size_t bytes;
	char *a;
	int status;
	pid_t pid;

	if (geteuid())
		SKIP(return, "needs root for fail_page_alloc");
	view = map_view(self->fd, PROT_READ, MAP_SHARED, &bytes);
	ASSERT_NE(NULL, view);
	ASSERT_EQ(0, span_alloc(self->fd, 1, 3, (void **)&a));
	if (fail_next_module_page())
		SKIP(munmap(view, bytes); return,
		     "no fail_page_alloc with a stack filter (the debug kernel has it)");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* The child's view is built from its own heap: not yet. */
		int fd = open("/proc/self/make-it-fail", O_WRONLY);

		if (fd < 0 || write(fd, "1", 1) != 1)
			_exit(2);
		alarm(20);
		(void)*(volatile uint64_t *)&view[(a - self->arena) / self->page];
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	fail_page_alloc_off();
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	/* The parent's view is built as usual. */
	EXPECT_EQ(3, SPANALLOC_VIEW_CLASS(view_of(view, self->arena, a,
						  self->page)));
	munmap(view, bytes);
}

TEST_F(dev, view_is_read_only)
{
	uint64_t *view;
	size_t bytes;
	void *p;

	view = map_view(self->fd, PROT_READ, MAP_SHARED, &bytes);
	ASSERT_NE(NULL, view);
	EXPECT_EQ(SIGSEGV, touch_signal((char *)view, 1));
	errno = 0;
	EXPECT_EQ(-1, mprotect(view, bytes, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	munmap(view, bytes);
	errno = 0;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		 SPANALLOC_VIEW_OFFSET);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	p = mmap(NULL, bytes + self->page, PROT_READ, MAP_SHARED, self->fd,
		 SPANALLOC_VIEW_OFFSET);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(bare, view_without_arena_enxio)
{
	void *p;

	errno = 0;
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, SPANALLOC_VIEW_OFFSET);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(ENXIO, errno);
}

/* The trap of design.md, seen through the view: each side its own records. */
TEST_F(dev, view_after_fork_is_each_sides_own)
{
	int pipefd[2], back[2], status;
	char *x = NULL, *y = NULL, c;
	uint64_t *view;
	size_t bytes;
	pid_t pid;

	view = map_view(self->fd, PROT_READ, MAP_SHARED, &bytes);
	ASSERT_NE(NULL, view);
	ASSERT_EQ(0, span_alloc(self->fd, 8, 3, (void **)&x));
	/* Fault the parent's view page in before the fork. */
	ASSERT_EQ(3, SPANALLOC_VIEW_CLASS(view_of(view, self->arena, x,
						  self->page)));
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, pipe(back));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (read(pipefd[0], &c, 1) != 1)
			_exit(2);
		/* The parent reused X's range for class 9; we still hold X. */
		_exit(SPANALLOC_VIEW_CLASS(view_of(view, self->arena, x,
						   self->page)) == 3 ? 0 : 1);
	}
	ASSERT_EQ(0, span_free(self->fd, x));
	ASSERT_EQ(0, span_alloc(self->fd, 8, 9, (void **)&y));
	ASSERT_EQ(x, y);
	EXPECT_EQ(9, SPANALLOC_VIEW_CLASS(view_of(view, self->arena, y,
						  self->page)));
	ASSERT_EQ(1, write(pipefd[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	munmap(view, bytes);
}

/* ---- SPAN_RESIZE ----------------------------------------------------------- */

TEST_F(dev, resize_grows_in_place)
{
	long frames = read_stat("frames");
	unsigned char *span;
	uint64_t *view, e;
	size_t bytes;
	long i;

	view = map_view(self->fd, PROT_READ, MAP_SHARED, &bytes);
	ASSERT_NE(NULL, view);
	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&span));
	memset(span, 0x5a, 4 * self->page);
	ASSERT_EQ(0, span_resize(self->fd, span, 600));
	EXPECT_EQ(600, heap_pages(self->fd));
	EXPECT_EQ(frames + 600, read_stat("frames"));
	/* Old data kept, new pages zeroed, writable, and in the view. */
	for (i = 0; i < 4 * self->page; i++)
		ASSERT_EQ(0x5a, span[i]);
	for (i = 4 * self->page; i < 600 * self->page; i += 97)
		ASSERT_EQ(0, span[i]);
	span[600 * self->page - 1] = 7;
	e = view_of(view, self->arena, span + 599 * self->page, self->page);
	EXPECT_EQ((span - (unsigned char *)self->arena) / self->page + 1,
		  SPANALLOC_VIEW_FIRST(e));
	/* The grown span frees whole. */
	EXPECT_EQ(0, span_free(self->fd, span));
	EXPECT_EQ(frames, read_stat("frames"));
	EXPECT_EQ(0, heap_pages(self->fd));
	munmap(view, bytes);
}

TEST_F(dev, resize_grow_blocked_by_neighbour_enomem)
{
	unsigned char *a, *b;

	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&a));
	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&b));
	/* Best fit, lowest address first: b follows a. */
	ASSERT_EQ(a + 4 * self->page, b);
	memset(a, 1, 4 * self->page);
	memset(b, 2, 4 * self->page);
	EXPECT_EQ(-ENOMEM, span_resize(self->fd, a, 5));
	EXPECT_EQ(8, heap_pages(self->fd));
	EXPECT_EQ(1, a[4 * self->page - 1]);
	EXPECT_EQ(2, b[0]);
	/* Once the neighbour is gone, growth may take its pages. */
	ASSERT_EQ(0, span_free(self->fd, b));
	EXPECT_EQ(0, span_resize(self->fd, a, 1000));
	EXPECT_EQ(1, a[4 * self->page - 1]);
	EXPECT_EQ(0, a[4 * self->page]);
	/* Never past the end of the arena. */
	EXPECT_EQ(-ENOMEM, span_resize(self->fd, a,
				       ARENA_BYTES / self->page + 1));
	EXPECT_EQ(1000, heap_pages(self->fd));
}

TEST_F(dev, resize_shrinks_and_frees_the_tail)
{
	long frames = read_stat("frames");
	unsigned char *span, *again;

	ASSERT_EQ(0, span_alloc(self->fd, 8, 0, (void **)&span));
	memset(span, 0x3c, 8 * self->page);
	ASSERT_EQ(0, span_resize(self->fd, span, 3));
	EXPECT_EQ(3, heap_pages(self->fd));
	EXPECT_EQ(frames + 3, read_stat("frames"));
	EXPECT_EQ(0x3c, span[3 * self->page - 1]);
	EXPECT_EQ(SIGBUS, touch_signal((char *)span + 3 * self->page, 0));
	EXPECT_EQ(SIGBUS, touch_signal((char *)span + 7 * self->page, 1));
	/* The tail is free space again: the next span of 5 pages is there. */
	ASSERT_EQ(0, span_alloc(self->fd, 5, 0, (void **)&again));
	EXPECT_EQ(span + 3 * self->page, again);
	EXPECT_EQ(0, again[0]);
	EXPECT_EQ(0, span_free(self->fd, again));
	/* Same length: nothing to do. */
	EXPECT_EQ(0, span_resize(self->fd, span, 3));
	EXPECT_EQ(0, span_free(self->fd, span));
	EXPECT_EQ(frames, read_stat("frames"));
}

TEST_F(dev, resize_keeps_holes_of_keep_range)
{
	struct spanalloc_span_free req = { .flags = SPANALLOC_FREE_KEEP_RANGE };
	long frames = read_stat("frames");
	unsigned char *span;

	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&span));
	req.addr = (uintptr_t)span;
	ASSERT_EQ(0, ioctl(self->fd, SPANALLOC_IOC_SPAN_FREE, &req));
	span[self->page] = 9;	/* one hole filled */
	ASSERT_EQ(0, span_resize(self->fd, span, 6));
	EXPECT_EQ(frames + 3, read_stat("frames"));
	EXPECT_EQ(9, span[self->page]);
	EXPECT_EQ(0, span[0]);	/* a hole refills on touch */
	EXPECT_EQ(frames + 4, read_stat("frames"));
	ASSERT_EQ(0, span_resize(self->fd, span, 1));
	EXPECT_EQ(frames + 1, read_stat("frames"));
	EXPECT_EQ(0, span_free(self->fd, span));
	EXPECT_EQ(frames, read_stat("frames"));
}

TEST_F(dev, resize_bad_fields_einval)
{
	struct spanalloc_span_resize req;
	char *span, *small;
	int i;

	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&span));
	ASSERT_EQ(0, span_alloc(self->fd, 1, 5, (void **)&small));
	for (i = 0; i < 5; i++) {
		memset(&req, 0, sizeof(req));
		req.addr = (uintptr_t)span;
		req.pages = 8;
		if (i == 0)
			req.flags = ~SPANALLOC_RESIZE_VALID_FLAGS;
		else if (i == 1)
			req.reserved0 = 1;
		else if (i == 4)
			req.pages = 0;
		else
			req.reserved[i - 2] = 1;
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_RESIZE, &req));
		EXPECT_EQ(EINVAL, errno);
	}
	EXPECT_EQ(-EINVAL, span_resize(self->fd, span + self->page, 8));
	EXPECT_EQ(-EINVAL, span_resize(self->fd, span + 1, 8));
	EXPECT_EQ(-EINVAL, span_resize(self->fd, NULL, 8));
	EXPECT_EQ(-EINVAL, span_resize(self->fd, self->arena + ARENA_BYTES, 1));
	/* A span of a size class keeps its length. */
	EXPECT_EQ(-EINVAL, span_resize(self->fd, small, 2));
	EXPECT_EQ(-ENOMEM, span_resize(self->fd, span, UINT64_MAX));
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SPANALLOC_IOC_SPAN_RESIZE, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	/* None of that changed anything. */
	EXPECT_EQ(5, heap_pages(self->fd));
	EXPECT_EQ(0, span_free(self->fd, span));
	EXPECT_EQ(-EINVAL, span_resize(self->fd, span, 8));
}

TEST_F(dev, resize_heap_limit_enomem)
{
	long old = read_param("heap_max_frames");
	void *span;

	if (write_param("heap_max_frames", 64))
		SKIP(return, "cannot set heap_max_frames (not root?)");
	ASSERT_EQ(0, span_alloc(self->fd, 60, 0, &span));
	EXPECT_EQ(-ENOMEM, span_resize(self->fd, span, 65));
	EXPECT_EQ(0, span_resize(self->fd, span, 64));
	EXPECT_EQ(64, heap_pages(self->fd));
	write_param("heap_max_frames", old);
}

/* A grow that takes the whole free run up to the next span leaves none. */
TEST_F(dev, resize_grow_fills_a_hole_exactly)
{
	unsigned char *a, *b, *c, *d;

	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&a));
	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&b));
	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&c));
	/* Best fit, lowest address first. */
	ASSERT_EQ(a + 4 * self->page, b);
	ASSERT_EQ(b + 4 * self->page, c);
	c[0] = 3;
	ASSERT_EQ(0, span_free(self->fd, b));
	EXPECT_EQ(0, span_resize(self->fd, a, 8));
	a[8 * self->page - 1] = 1;
	EXPECT_EQ(-ENOMEM, span_resize(self->fd, a, 9));
	/* The hole is gone: a new span goes after c, not into a. */
	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&d));
	EXPECT_EQ(c + 4 * self->page, d);
	EXPECT_EQ(3, c[0]);
	EXPECT_EQ(1, a[8 * self->page - 1]);
	EXPECT_EQ(16, heap_pages(self->fd));
}

/*
 * The global frame limit is met only when the frames are taken, after the
 * grow took its range: the failed grow gives the range back.
 */
TEST_F(dev, resize_past_max_frames_gives_the_range_back)
{
	long old = read_param("max_frames");
	unsigned char *span;
	int err;

	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, (void **)&span));
	span[0] = 5;
	if (write_param("max_frames", read_stat("frames") + 8))
		SKIP(return, "cannot set max_frames (not root?)");
	err = span_resize(self->fd, span, 64);
	write_param("max_frames", old);
	EXPECT_EQ(-ENOMEM, err);
	EXPECT_EQ(4, heap_pages(self->fd));
	EXPECT_EQ(5, span[0]);
	EXPECT_EQ(SIGBUS, touch_signal((char *)span + 4 * self->page, 0));
	/* Without the limit the same pages are there to grow into. */
	EXPECT_EQ(0, span_resize(self->fd, span, 64));
	EXPECT_EQ(0, span[63 * self->page]);
	EXPECT_EQ(0, span_free(self->fd, span));
}

/* The child shrinks, grows and writes its copy of the span. */
static int child_resizes(void *arg)
{
	struct fork_case *fc = arg;

	if (span_resize(fc->fd, fc->span, 2))
		return 1;
	if (span_resize(fc->fd, fc->span, 16))
		return 2;
	if (fc->span[0] != 0x11 || fc->span[2 * page_size()] != 0)
		return 3;
	memset(fc->span, 0x22, 16 * page_size());
	return 0;
}

TEST_F(dev, resize_after_fork_each_side_its_own)
{
	struct fork_case fc = { .fd = self->fd, .bytes = 8 * self->page };

	ASSERT_EQ(0, span_alloc(self->fd, 8, 0, (void **)&fc.span));
	memset(fc.span, 0x11, fc.bytes);
	EXPECT_EQ(0, in_child(child_resizes, &fc));
	/* The parent's span is as it was, and grows on its own. */
	EXPECT_EQ(0x11, fc.span[0]);
	EXPECT_EQ(0x11, fc.span[fc.bytes - 1]);
	EXPECT_EQ(0, span_resize(self->fd, fc.span, 16));
	EXPECT_EQ(0x11, fc.span[fc.bytes - 1]);
	EXPECT_EQ(0, fc.span[fc.bytes]);
}

/* ---- limits ---------------------------------------------------------------- */

TEST_F(dev, heap_limit_enomem_then_goes_on)
{
	long old = read_param("heap_max_frames");
	void *a, *b;

	if (write_param("heap_max_frames", 64))
		SKIP(return, "cannot set heap_max_frames (not root?)");
	EXPECT_EQ(0, span_alloc(self->fd, 60, 0, &a));
	EXPECT_EQ(-ENOMEM, span_alloc(self->fd, 8, 0, &b));
	EXPECT_EQ(0, span_alloc(self->fd, 4, 0, &b));
	EXPECT_EQ(0, span_free(self->fd, a));
	EXPECT_EQ(0, span_alloc(self->fd, 8, 0, &a));
	/* Lowered below what the heap holds: nothing more, no wrap-around. */
	ASSERT_EQ(0, write_param("heap_max_frames", 4));
	EXPECT_EQ(-ENOMEM, span_alloc(self->fd, 1, 0, &b));
	write_param("heap_max_frames", old);
}

/*
 * In a child that becomes user @uid: an arena and @pages of spans.
 * Returns 0, 10 + errno of the mmap, or 100 + errno of SPAN_ALLOC.
 */
static int as_user_alloc(uid_t uid, long pages)
{
	void *arena, *span;
	int fd, err;

	if (setgid(uid) || setuid(uid))
		return 1;
	fd = open(DEV, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 2;
	arena = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (arena == MAP_FAILED)
		return 10 + errno;
	err = span_alloc(fd, pages, 0, &span);
	return err ? 100 - err : 0;
}

static int wait_status(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * The access policy (module/user.c): each user has a budget of span pages
 * and of heaps; one user at its limit leaves the others theirs, and a fork
 * child is never refused a heap.
 */
TEST(users_have_their_own_budgets)
{
	long old_pages = read_param("user_max_frames");
	long old_heaps = read_param("user_max_heaps");
	int hold[2], ready[2], status;
	pid_t a, b;
	char c;

	if (!device_present())
		SKIP(return, DEV " not present: module not loaded");
	if (geteuid() || old_pages < 0 ||
	    write_param("user_max_frames", 256) ||
	    write_param("user_max_heaps", 2))
		SKIP(return, "needs root and the user_max_* parameters");
	ASSERT_EQ(0, pipe(hold));
	ASSERT_EQ(0, pipe(ready));
	a = fork();
	ASSERT_LE(0, a);
	if (a == 0) {
		void *arena, *span;
		int fd;
		pid_t a2;

		close(hold[1]);
		close(ready[0]);
		if (as_user_alloc(60001, 200))
			_exit(1);
		/* Over the user's budget: -ENOMEM, the heap goes on. */
		fd = open(DEV, O_RDWR | O_CLOEXEC);
		if (span_alloc(fd, 100, 0, &span) != -ENOMEM)
			_exit(2);
		if (span_alloc(fd, 56, 0, &span))
			_exit(3);
		/* A fork child's heap is never refused (2 heaps)... */
		a2 = fork();
		if (a2 == 0) {
			pid_t a3 = fork();
			struct spanalloc_info info;

			if (a3 == 0) {
				/* ...(3 heaps), but a new arena is: -EMFILE. */
				if (ioctl(fd, SPANALLOC_IOC_INFO, &info) ||
				    munmap((void *)(uintptr_t)info.arena_start,
					   info.arena_bytes))
					_exit(4);
				arena = mmap(NULL, ARENA_BYTES,
					     PROT_READ | PROT_WRITE, MAP_SHARED,
					     fd, 0);
				_exit(arena == MAP_FAILED && errno == EMFILE ?
				      0 : 5);
			}
			_exit(wait_status(a3));
		}
		if (wait_status(a2))
			_exit(6);
		/* Hold the whole budget while user B allocates. */
		if (write(ready[1], "x", 1) != 1 || read(hold[0], &c, 1) < 0)
			_exit(7);
		_exit(0);
	}
	/* User B gets its whole budget while A holds all of its own. */
	close(ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1)) TH_LOG("user A failed early");
	b = fork();
	ASSERT_LE(0, b);
	if (b == 0)
		_exit(as_user_alloc(60002, 256));
	EXPECT_EQ(0, wait_status(b));
	close(hold[1]);
	ASSERT_EQ(a, waitpid(a, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	write_param("user_max_frames", old_pages);
	write_param("user_max_heaps", old_heaps);
}

TEST_F(dev, global_limit_enomem)
{
	long old = read_param("max_frames"), frames = read_stat("frames");
	uint64_t addrs[4];
	uint32_t made = 0;
	void *a;

	if (write_param("max_frames", frames + 100))
		SKIP(return, "cannot set max_frames (not root?)");
	EXPECT_EQ(-ENOMEM, span_alloc(self->fd, 101, 0, &a));
	/* A batch stops at the limit: 3 of 4 spans of 30 pages fit. */
	EXPECT_EQ(0, alloc_batch(self->fd, 30, 4, addrs, &made));
	EXPECT_EQ(3, made);
	write_param("max_frames", old);
	EXPECT_EQ(0, span_alloc(self->fd, 101, 0, &a));
}

/* Put this process in a fresh memory cgroup limited to @bytes. */
static int enter_memcg(const char *name, long bytes)
{
	char path[256], buf[32];
	int fd, n;

	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK)) {
		mkdir("/sys/fs/cgroup", 0755);
		if (mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL))
			return -1;
	}
	fd = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY);
	if (fd < 0)
		return -1;
	n = write(fd, "+memory", 7);
	close(fd);
	if (n != 7)
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", name);
	if (mkdir(path, 0755) && errno != EEXIST)
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/memory.max", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld", bytes);
	n = write(fd, buf, n) == n ? 0 : -1;
	close(fd);
	if (n)
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/cgroup.procs", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%d", getpid());
	n = write(fd, buf, n) == n ? 0 : -1;
	close(fd);
	return n;
}

/*
 * Run @child in a fork()ed process inside a fresh memory cgroup @name of
 * @bytes without swap (nothing in it can give way but our pool); its exit
 * status from waitpid(), or -1. The child exits 100 when there is no
 * cgroup2 memory controller to put it in.
 */
static int in_memcg(const char *name, long bytes, int (*child)(void))
{
	char path[256];
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (enter_memcg(name, bytes))
			_exit(100);
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/memory.swap.max",
			 name);
		if (write_file(path, "0") && errno != ENOENT)
			_exit(100);
		_exit(child());
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", name);
	rmdir(path);
	return status;
}

/* The child of memcg_limit_enomem, in a 32 MiB cgroup. */
static int enomem_child(void)
{
	void *span;
	int fd;

	fd = open(DEV, O_RDWR);
	if (fd < 0 || mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
			   MAP_SHARED, fd, 0) == MAP_FAILED)
		return 2;
	/* 64 MiB does not fit in 32: refused, not OOM-killed. */
	if (span_alloc(fd, (64 << 20) / page_size(), 0, &span) != -ENOMEM)
		return 1;
	/* And the process goes on within its limit. */
	if (span_alloc(fd, (4 << 20) / page_size(), 0, &span))
		return 3;
	memset(span, 1, 4 << 20);
	return 0;
}

TEST(memcg_limit_enomem)
{
	int status;

	if (!device_present())
		SKIP(return, "module not loaded");
	status = in_memcg("spanalloc_test", 32 << 20, enomem_child);
	ASSERT_NE(-1, status);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 100)
		SKIP(return, "no cgroup2 memory controller");
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

#define HEADROOM_CG	"/sys/fs/cgroup/spanalloc_headroom"

/* What headroom_child() asks for, set before in_memcg() forks it. */
static size_t headroom_span = 64 << 10, headroom_anon = 768 << 10;

/*
 * The child of the memcg_limit_leaves_headroom tests, in a 32 MiB cgroup:
 * spans of headroom_span bytes until SPAN_ALLOC says -ENOMEM, then
 * headroom_anon bytes of anonymous memory touched, as a library's own
 * records and a program's stack would be. Exits 0 when it got through;
 * the memcg OOM killer's SIGKILL otherwise.
 */
static int headroom_child(void)
{
	size_t got = 0;
	long charged;
	void *span;
	char *p;
	int fd, err;

	fd = open(DEV, O_RDWR);
	if (fd < 0 || mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
			   MAP_SHARED, fd, 0) == MAP_FAILED)
		return 2;
	do {
		charged = read_long(HEADROOM_CG "/memory.current");
		err = span_alloc(fd, headroom_span / page_size(), 0, &span);
		got += err ? 0 : headroom_span;
	} while (!err);
	if (err != -ENOMEM)
		return 3;
	/*
	 * What the refused request took went back to the system: nothing
	 * stays charged for it but what the per-CPU charge stocks keep (64
	 * pages a CPU). In the pool, a 2 MiB request left 1 MiB or more.
	 */
	if (read_long(HEADROOM_CG "/memory.current") > charged + (512 << 10))
		return 6;
	/* Refused near the limit, not far from it. */
	if (got + headroom_anon + headroom_span < (24 << 20))
		return 4;
	p = mmap(NULL, headroom_anon, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 5;
	memset(p, 1, headroom_anon);
	return 0;
}

/* Run headroom_child() in a 32 MiB cgroup; its wait status, or -1. */
static int headroom_run(size_t span, size_t anon)
{
	headroom_span = span;
	headroom_anon = anon;
	return in_memcg(HEADROOM_CG + strlen("/sys/fs/cgroup/"), 32 << 20,
			headroom_child);
}

/*
 * At a cgroup's limit, SPAN_ALLOC says -ENOMEM while the cgroup still has
 * room for the faults its caller takes next (memcg_headroom_kb, 1 MiB):
 * the limit is met by an ioctl whose -ENOMEM the library answers by giving
 * back its caches, never by a page fault that wakes the OOM killer. (Before,
 * frames filled the cgroup to the last page and the library's next record
 * page OOM-killed it: malloc_pageheap's memcg_max_as_far_as_glibc, once in
 * twenty runs.) With 64 KiB spans, and with 2 MiB spans, whose last one
 * fails part-way: the frames it took go back to the system, not to the
 * pool, where they would keep the cgroup at its limit until the shrinker
 * runs (the child exits 6 when its cgroup's charge grew by the request).
 */
TEST(memcg_limit_leaves_headroom)
{
	size_t spans[] = { 64 << 10, 2 << 20 };
	unsigned int i;
	int status;

	if (!device_present())
		SKIP(return, "module not loaded");
	for (i = 0; i < 2; i++) {
		status = headroom_run(spans[i], 768 << 10);
		ASSERT_NE(-1, status);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 100)
			SKIP(return, "no cgroup2 memory controller");
		if (WIFSIGNALED(status))
			TH_LOG("%zu KiB spans: killed by signal %d: the cgroup's "
			       "OOM killer", spans[i] >> 10, WTERMSIG(status));
		ASSERT_TRUE(WIFEXITED(status));
		EXPECT_EQ(0, WEXITSTATUS(status));
	}
}

/* memcg_headroom_kb sets the room: 8 MiB of it, then 6 MiB touched. */
TEST(memcg_headroom_is_a_parameter)
{
	long old = read_param("memcg_headroom_kb");
	int status;

	if (!device_present())
		SKIP(return, "module not loaded");
	ASSERT_EQ(1024, old);
	if (write_param("memcg_headroom_kb", 8192))
		SKIP(return, "cannot set memcg_headroom_kb (root needed)");
	status = headroom_run(64 << 10, 6 << 20);
	write_param("memcg_headroom_kb", old);
	ASSERT_NE(-1, status);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 100)
		SKIP(return, "no cgroup2 memory controller");
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* ---- threads and exec ------------------------------------------------------ */

struct racer {
	int fd;
	int rounds;
	int errors;
};

static void *race_spans(void *arg)
{
	struct racer *r = arg;
	void *span;
	int i;

	for (i = 0; i < r->rounds; i++) {
		if (span_alloc(r->fd, 1 + i % 5, i % 8, &span)) {
			r->errors++;
			continue;
		}
		*(volatile int *)span = i;
		if (*(volatile int *)span != i || span_free(r->fd, span))
			r->errors++;
	}
	return NULL;
}

TEST_F(dev, threads_race_on_one_heap)
{
	enum { THREADS = 4 };
	struct racer r[THREADS];
	pthread_t t[THREADS];
	struct spanalloc_info info;
	int i;

	for (i = 0; i < THREADS; i++) {
		r[i] = (struct racer){ .fd = self->fd, .rounds = 300 };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, race_spans, &r[i]));
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, r[i].errors);
	}
	ASSERT_EQ(0, ioctl(self->fd, SPANALLOC_IOC_INFO, &info));
	EXPECT_EQ(0, info.heap_spans);
}

TEST_F(dev, fork_then_exec_drops_the_heap)
{
	long heaps = read_stat("heaps");
	int status;
	char fdarg[16];
	pid_t pid;
	void *span;

	ASSERT_EQ(0, span_alloc(self->fd, 4, 0, &span));
	/* The child execs with the fd still open (no O_CLOEXEC here). */
	snprintf(fdarg, sizeof(fdarg), "%d", fcntl(self->fd, F_DUPFD, 100));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char script[512];

		/* The new image: no arena; its ioctls see no heap. */
		snprintf(script, sizeof(script),
			 "test \"$(cat " STATS "heaps)\" = %ld", heaps);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(99);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	/* Only the parent's heap is left while the exec'd child runs. */
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(heaps, read_stat("heaps"));
	EXPECT_EQ(0, span_free(self->fd, span));
}

/* ---- a heap is its address space's alone -------------------------------- */

TEST_F(dev, fd_passed_over_socket_has_no_heap)
{
	int sv[2], status;
	pid_t pid;
	void *span = NULL;

	ASSERT_EQ(0, span_alloc(self->fd, 1, 0, &span));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char cbuf[CMSG_SPACE(sizeof(int))], c;
		struct iovec iov = { &c, 1 };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct spanalloc_info info;
		void *mine;
		int fd;

		/* Drop the arena inherited by fork: a stranger's view. */
		munmap(self->arena, ARENA_BYTES);
		if (recvmsg(sv[1], &msg, 0) != 1)
			_exit(1);
		memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(fd));
		if (ioctl(fd, SPANALLOC_IOC_INFO, &info) || info.arena_start)
			_exit(2);
		if (span_free(fd, span) != -ENXIO)
			_exit(3);
		if (span_alloc(fd, 1, 0, &mine) != -ENXIO)
			_exit(4);
		/* It may make a heap of its own. */
		if (mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, 0) == MAP_FAILED)
			_exit(5);
		if (span_alloc(fd, 1, 0, &mine))
			_exit(6);
		_exit(0);
	}
	{
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, c = 'x';
		struct iovec iov = { &c, 1 };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &self->fd, sizeof(int));
		ASSERT_EQ(1, sendmsg(sv[0], &msg, 0));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The parent's span is still its own. */
	EXPECT_EQ(0, span_free(self->fd, span));
}

TEST_HARNESS_MAIN
