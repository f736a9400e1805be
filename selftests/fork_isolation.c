// SPDX-License-Identifier: GPL-2.0
/*
 * fork_isolation: after fork(), no write of one process ever reaches the
 * other, whatever the rest of the kernel does to the arena's pages: swap,
 * migration, compaction, GUP (O_DIRECT, process_vm_readv/writev,
 * /proc/pid/mem), core dumps, madvise. One kernel path per test; each side
 * checks every byte it owns.
 *
 * The invariant under test (module/heap.c): a page table entry in an arena
 * maps a frame that exactly one heap owns. The tests run against a module
 * of ABI 1 too (a MAP_PRIVATE arena, spanalloc before the mapping model),
 * where swap_after_two_forks and migrate_after_two_forks fail.
 *
 * Needs: the module; swap for swap_after_two_forks (scripts/run-selftests
 * sets up zram swap in the guest), root for MADV_SOFT_OFFLINE, move_pages
 * and compaction, two NUMA nodes for move_pages (scripts/vm-run --numa 2),
 * a scratch block device in SPANALLOC_TEST_BLOCKDEV for O_DIRECT. Missing
 * ones SKIP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/io_uring.h>
#include <linux/spanalloc.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif
#ifndef MPOL_MF_MOVE_ALL
#define MPOL_MF_MOVE_ALL (1 << 2)
#endif
#ifndef MADV_KEEPONFORK
#define MADV_KEEPONFORK	19
#endif

#define DEV		"/dev/spanalloc"
#define STATS		"/sys/class/misc/spanalloc/stats/"
#define ARENA_BYTES	(64UL << 20)
#define SPAN_PAGES	16

static long read_stat(const char *name)
{
	char path[256], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), STATS "%s", name);
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

static int span_alloc(int fd, uint64_t pages, void **addr)
{
	struct spanalloc_span_alloc req = { .pages = pages };

	*addr = NULL;
	if (ioctl(fd, SPANALLOC_IOC_SPAN_ALLOC, &req))
		return -errno;
	*addr = (void *)(uintptr_t)req.addr;
	return 0;
}

/* The arena's mapping type: MAP_SHARED from ABI 2 on, MAP_PRIVATE before. */
static void *arena_map(int fd, size_t bytes)
{
	struct spanalloc_info info;
	int flags = MAP_SHARED;

	if (!ioctl(fd, SPANALLOC_IOC_INFO, &info) && info.abi_version < 2)
		flags = MAP_PRIVATE;
	return mmap(NULL, bytes, PROT_READ | PROT_WRITE, flags | MAP_NORESERVE,
		    fd, 0);
}

/* Every byte of page @i of @p is @c? */
static int page_is(const unsigned char *p, long page, int i, int c)
{
	long j;

	for (j = 0; j < page; j++)
		if (p[i * page + j] != c)
			return 0;
	return 1;
}

/* A one-byte message between the two sides of a test. */
static void say(int fd)
{
	if (write(fd, "x", 1) != 1)
		_exit(90);
}

/* In a child: wait for the parent, or give up if it is gone. */
static void hear(int fd)
{
	char c;

	if (read(fd, &c, 1) != 1)
		_exit(91);
}

/*
 * In the parent: wait for the child; false if it exited first (it found a
 * wrong byte). Only the child holds the write end of @fd.
 */
static int heard(int fd)
{
	char c;

	return read(fd, &c, 1) == 1;
}

/*
 * fork() with a pipe each way between parent and child; each side keeps
 * its own ends only, so that a side that exits early ends the other's wait.
 */
static pid_t fork_talking(int to_child[2], int to_parent[2])
{
	pid_t pid;

	if (pipe(to_child) || pipe(to_parent))
		return -1;
	pid = fork();
	if (pid < 0)
		return pid;
	close(pid ? to_child[0] : to_child[1]);
	close(pid ? to_parent[1] : to_parent[0]);
	return pid;
}

static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 100 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

FIXTURE(iso) {
	int fd;
	unsigned char *arena;
	unsigned char *span;
	long page;
	size_t bytes;
};

FIXTURE_SETUP(iso)
{
	void *span;

	self->arena = MAP_FAILED;
	self->page = sysconf(_SC_PAGESIZE);
	self->bytes = SPAN_PAGES * self->page;
	if (access(DEV, F_OK))
		SKIP(return, DEV " not present: module not loaded");
	self->fd = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
	self->arena = arena_map(self->fd, ARENA_BYTES);
	ASSERT_NE(MAP_FAILED, self->arena);
	ASSERT_EQ(0, span_alloc(self->fd, SPAN_PAGES, &span));
	self->span = span;
	memset(self->span, 'A', self->bytes);
}

FIXTURE_TEARDOWN(iso)
{
	if (self->arena != MAP_FAILED)
		munmap(self->arena, ARENA_BYTES);
	if (self->fd >= 0)
		close(self->fd);
}

/* Is a swap device active? */
static int swap_on(void)
{
	char line[256];
	FILE *f = fopen("/proc/swaps", "r");
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n > 1;
}

/*
 * move_pages(2) of the @n pages at @p to @node (MPOL_MF_MOVE_ALL: also pages
 * other processes map; needs CAP_SYS_NICE). Returns how many moved.
 */
static int move_to_node(void *p, long page, int n, int node)
{
	void *pages[SPAN_PAGES];
	int nodes[SPAN_PAGES], status[SPAN_PAGES], i, moved = 0;

	for (i = 0; i < n && i < SPAN_PAGES; i++) {
		pages[i] = (char *)p + i * page;
		nodes[i] = node;
		status[i] = -1;
	}
	if (syscall(__NR_move_pages, 0, (unsigned long)i, pages, nodes, status,
		    MPOL_MF_MOVE_ALL) < 0)
		return -1;
	while (i--)
		moved += status[i] == node;
	return moved;
}

enum core_path { PATH_PAGEOUT, PATH_SOFT_OFFLINE, PATH_MOVE_PAGES };

/*
 * The control: does @path do its job on an anonymous page here (swap it
 * out, migrate it) and keep its data? If not, the same steps on the arena
 * would prove nothing: the test skips.
 */
static int anon_path_works(enum core_path path, long page)
{
	unsigned char *p, vec = 1;
	int ok = 0;

	p = mmap(NULL, page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	memset(p, 1, page);
	switch (path) {
	case PATH_PAGEOUT:
		ok = !madvise(p, page, MADV_PAGEOUT) &&
		     !mincore(p, page, &vec) && !(vec & 1);
		break;
	case PATH_SOFT_OFFLINE:
		ok = !madvise(p, page, MADV_SOFT_OFFLINE);
		break;
	case PATH_MOVE_PAGES:
		ok = move_to_node(p, page, 1, 1) == 1;
		break;
	}
	ok = ok && p[0] == 1;
	munmap(p, page);
	return ok;
}

static void apply_path(enum core_path path, void *p, size_t bytes)
{
	/* The module's frames are not the core mm's to swap or migrate:
	 * these may fail; what matters is what each side reads after. */
	if (path == PATH_PAGEOUT)
		madvise(p, bytes, MADV_PAGEOUT);
	else if (path == PATH_SOFT_OFFLINE)
		madvise(p, bytes, MADV_SOFT_OFFLINE);
	else
		move_to_node(p, sysconf(_SC_PAGESIZE), bytes / sysconf(_SC_PAGESIZE), 1);
}

/*
 * The reproducer of the fork-isolation bug (review C1):
 *
 *   parent P: fork C1 (exits); P writes 'B' (on ABI 1 an anonymous copy);
 *   the kernel path (pageout before C2, soft offline after); fork C2;
 *   P reads, then writes 'P'; C2 must still read 'B', and C2's write 'C'
 *   must not reach P.
 */
static void two_forks(struct __test_metadata *_metadata,
		      FIXTURE_DATA(iso) *self, enum core_path path)
{
	int to_child[2], to_parent[2], i;
	pid_t c1, c2;

	c1 = fork();
	ASSERT_LE(0, c1);
	if (c1 == 0)
		_exit(0);
	ASSERT_EQ(0, wait_child(c1));
	memset(self->span, 'B', self->bytes);
	if (path == PATH_PAGEOUT)
		apply_path(path, self->span, self->bytes);

	c2 = fork_talking(to_child, to_parent);
	ASSERT_LE(0, c2);
	if (c2 == 0) {
		hear(to_child[0]);		/* P has written 'P' */
		for (i = 0; i < SPAN_PAGES; i++)
			if (!page_is(self->span, self->page, i, 'B'))
				_exit(1);
		memset(self->span, 'C', self->bytes);
		say(to_parent[1]);
		hear(to_child[0]);		/* P has looked */
		for (i = 0; i < SPAN_PAGES; i++)
			if (!page_is(self->span, self->page, i, 'C'))
				_exit(2);
		_exit(0);
	}
	if (path != PATH_PAGEOUT)
		apply_path(path, self->span, self->bytes);
	for (i = 0; i < SPAN_PAGES; i++)
		EXPECT_TRUE(page_is(self->span, self->page, i, 'B'));
	memset(self->span, 'P', self->bytes);
	say(to_child[1]);
	ASSERT_TRUE(heard(to_parent[0])) TH_LOG("the child found a wrong byte");
	for (i = 0; i < SPAN_PAGES; i++)
		EXPECT_TRUE(page_is(self->span, self->page, i, 'P'))
			TH_LOG("page %d: the child's write reached the parent", i);
	say(to_child[1]);
	EXPECT_EQ(0, wait_child(c2))
		TH_LOG("1: the parent's write reached the child");
}

TEST_F(iso, swap_after_two_forks)
{
	if (!swap_on())
		SKIP(return, "no swap device (scripts/run-selftests sets up zram)");
	if (!anon_path_works(PATH_PAGEOUT, self->page))
		SKIP(return, "MADV_PAGEOUT does not swap an anonymous page here");
	two_forks(_metadata, self, PATH_PAGEOUT);
}

TEST_F(iso, migrate_after_two_forks)
{
	if (!anon_path_works(PATH_SOFT_OFFLINE, self->page))
		SKIP(return, "MADV_SOFT_OFFLINE needs root and CONFIG_MEMORY_FAILURE");
	two_forks(_metadata, self, PATH_SOFT_OFFLINE);
}

/* The same with move_pages(2) to another node (scripts/vm-run --numa 2). */
TEST_F(iso, move_pages_after_two_forks)
{
	if (!anon_path_works(PATH_MOVE_PAGES, self->page))
		SKIP(return, "move_pages to node 1 does not move an anonymous page (one node? not root?)");
	two_forks(_metadata, self, PATH_MOVE_PAGES);
}

/* kB of anonymous memory in the VMA that starts at @start (smaps). */
static long vma_anon_kb(void *start)
{
	char line[512], want[32];
	FILE *f = fopen("/proc/self/smaps", "r");
	long kb = -1;
	int in = 0;

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)start);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, want, strlen(want)))
			in = 1;
		else if (in && sscanf(line, "Anonymous: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* No copy the core mm made: every page of the arena is a module frame. */
TEST_F(iso, no_anonymous_pages_after_fork_and_writes)
{
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		memset(self->span, 'c', self->bytes);
		_exit(vma_anon_kb(self->arena) == 0 ? 0 : 1);
	}
	memset(self->span, 'p', self->bytes);
	EXPECT_EQ(0, vma_anon_kb(self->arena));
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_TRUE(page_is(self->span, self->page, SPAN_PAGES - 1, 'p'));
}

/*
 * Three generations write the same pages at every step; each checks all
 * of its bytes at the end.
 */
TEST_F(iso, three_generations)
{
	int go_child[2], go_grand[2], i;
	pid_t pid;

	ASSERT_EQ(0, pipe(go_child));
	ASSERT_EQ(0, pipe(go_grand));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		pid_t grand;
		int bad = 0;

		memset(self->span, 'c', self->bytes);
		grand = fork();
		if (grand < 0)
			_exit(3);
		if (grand == 0) {
			hear(go_grand[0]);
			for (i = 0; i < SPAN_PAGES; i++)
				if (!page_is(self->span, self->page, i, 'c'))
					_exit(1);
			memset(self->span, 'g', self->bytes);
			_exit(0);
		}
		memset(self->span, 'C', self->bytes / 2);
		say(go_grand[1]);
		hear(go_child[0]);
		bad = wait_child(grand) ? 4 : 0;
		for (i = 0; i < SPAN_PAGES; i++)
			if (!page_is(self->span, self->page, i,
				     i < SPAN_PAGES / 2 ? 'C' : 'c'))
				bad = 2;
		_exit(bad);
	}
	memset(self->span, 'p', self->bytes);
	say(go_child[1]);
	EXPECT_EQ(0, wait_child(pid));
	for (i = 0; i < SPAN_PAGES; i++)
		EXPECT_TRUE(page_is(self->span, self->page, i, 'p'));
}

/* MADV_KEEPONFORK clears VM_WIPEONFORK: fork() must still copy nothing. */
TEST_F(iso, keeponfork_cannot_share_frames)
{
	int to_child[2];
	pid_t pid;

	madvise(self->arena, ARENA_BYTES, MADV_KEEPONFORK);
	ASSERT_EQ(0, pipe(to_child));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		hear(to_child[0]);
		if (!page_is(self->span, self->page, 0, 'A'))
			_exit(1);
		memset(self->span, 'c', self->bytes);
		_exit(0);
	}
	memset(self->span, 'p', self->bytes);
	say(to_child[1]);
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_TRUE(page_is(self->span, self->page, 0, 'p'));
	EXPECT_TRUE(page_is(self->span, self->page, SPAN_PAGES - 1, 'p'));
}

/*
 * Only pages a relative shares and touches are copied: the parent's touches
 * copy, then the child's copy only the pages the parent left shared.
 */
TEST_F(iso, copies_only_what_is_shared_and_touched)
{
	int to_child[2], to_parent[2], i;
	long copies;
	pid_t pid;

	if (read_stat("cow_copies") < 0)
		SKIP(return, "no cow_copies counter (module of ABI 1)");
	copies = read_stat("cow_copies");
	pid = fork_talking(to_child, to_parent);
	ASSERT_LE(0, pid);
	if (pid == 0) {
		hear(to_child[0]);
		/* Pages 0-3: the parent copied, these frames are ours alone. */
		for (i = 0; i < 4; i++)
			self->span[i * self->page] = 'c';
		say(to_parent[1]);
		hear(to_child[0]);
		/* Pages 8, 9: still shared. */
		self->span[8 * self->page] = 'c';
		self->span[9 * self->page] = 'c';
		say(to_parent[1]);
		hear(to_child[0]);
		_exit(0);
	}
	for (i = 0; i < 4; i++)
		self->span[i * self->page] = 'p';
	EXPECT_EQ(copies + 4, read_stat("cow_copies"));
	say(to_child[1]);
	ASSERT_TRUE(heard(to_parent[0])) TH_LOG("the child found a wrong byte");
	EXPECT_EQ(copies + 4, read_stat("cow_copies"));
	say(to_child[1]);
	ASSERT_TRUE(heard(to_parent[0])) TH_LOG("the child found a wrong byte");
	EXPECT_EQ(copies + 6, read_stat("cow_copies"));
	say(to_child[1]);
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ('p', self->span[0]);
	EXPECT_EQ('A', self->span[8 * self->page]);
	/* The child is gone: what it shared is the parent's alone again. */
	self->span[10 * self->page] = 'p';
	EXPECT_EQ(copies + 6, read_stat("cow_copies"));
}

/* fork() + exec() copies no heap page, and the parent keeps its data. */
TEST_F(iso, fork_exec_copies_nothing)
{
	long copies = read_stat("cow_copies");
	pid_t pid;
	int i;

	if (copies < 0)
		SKIP(return, "no cow_copies counter (module of ABI 1)");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	EXPECT_EQ(0, wait_child(pid));
	memset(self->span, 'p', self->bytes);
	for (i = 0; i < SPAN_PAGES; i++)
		EXPECT_TRUE(page_is(self->span, self->page, i, 'p'));
	EXPECT_EQ(copies, read_stat("cow_copies"));
}

/*
 * process_vm_readv/writev across fork: the parent reads the child's data and
 * writes into the child's span; neither changes the parent's pages.
 */
TEST_F(iso, process_vm_rw_after_fork)
{
	int to_child[2], to_parent[2];
	struct iovec local, remote;
	unsigned char buf[64];
	pid_t pid;

	pid = fork_talking(to_child, to_parent);
	ASSERT_LE(0, pid);
	if (pid == 0) {
		memset(self->span, 'c', self->bytes);
		say(to_parent[1]);
		hear(to_child[0]);
		_exit(self->span[self->page] == 'W' &&
		      self->span[0] == 'c' ? 0 : 1);
	}
	ASSERT_TRUE(heard(to_parent[0])) TH_LOG("the child found a wrong byte");
	local.iov_base = buf;
	local.iov_len = sizeof(buf);
	remote.iov_base = self->span;
	remote.iov_len = sizeof(buf);
	ASSERT_EQ((ssize_t)sizeof(buf),
		  process_vm_readv(pid, &local, 1, &remote, 1, 0));
	EXPECT_EQ('c', buf[0]);
	EXPECT_EQ('c', buf[sizeof(buf) - 1]);
	memset(buf, 'W', sizeof(buf));
	remote.iov_base = self->span + self->page;
	ASSERT_EQ((ssize_t)sizeof(buf),
		  process_vm_writev(pid, &local, 1, &remote, 1, 0));
	say(to_child[1]);
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_TRUE(page_is(self->span, self->page, 0, 'A'));
	EXPECT_TRUE(page_is(self->span, self->page, 1, 'A'));
}

/* A FOLL_FORCE write through /proc/pid/mem lands in that process only. */
TEST_F(iso, proc_pid_mem_write_after_fork)
{
	int to_child[2], to_parent[2], fd;
	char path[64];
	pid_t pid;

	pid = fork_talking(to_child, to_parent);
	ASSERT_LE(0, pid);
	if (pid == 0) {
		say(to_parent[1]);
		hear(to_child[0]);
		_exit(self->span[2 * self->page] == 'M' &&
		      self->span[3 * self->page] == 'A' ? 0 : 1);
	}
	ASSERT_TRUE(heard(to_parent[0])) TH_LOG("the child found a wrong byte");
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDWR);
	if (fd < 0) {
		say(to_child[1]);
		wait_child(pid);
		SKIP(return, "cannot open %s (ptrace policy)", path);
	}
	EXPECT_EQ(1, pwrite(fd, "M", 1, (off_t)(uintptr_t)(self->span +
							 2 * self->page)));
	close(fd);
	say(to_child[1]);
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_TRUE(page_is(self->span, self->page, 2, 'A'));
}

/*
 * O_DIRECT reads into a span after fork (GUP pins the frame): the data lands
 * in the reader's copy only.
 */
TEST_F(iso, odirect_read_after_fork)
{
	const char *dev = getenv("SPANALLOC_TEST_BLOCKDEV");
	int to_child[2], to_parent[2], fd, i;
	unsigned char *src;
	pid_t pid;

	if (!dev || !*dev)
		SKIP(return, "no SPANALLOC_TEST_BLOCKDEV (a scratch block device)");
	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0)
		SKIP(return, "cannot open %s with O_DIRECT", dev);
	src = mmap(NULL, self->bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, src);
	memset(src, 'D', self->bytes);
	ASSERT_EQ((ssize_t)self->bytes, pwrite(fd, src, self->bytes, 0));

	pid = fork_talking(to_child, to_parent);
	ASSERT_LE(0, pid);
	if (pid == 0) {
		hear(to_child[0]);
		for (i = 0; i < SPAN_PAGES; i++)
			if (!page_is(self->span, self->page, i, 'A'))
				_exit(1);
		/* The child's own O_DIRECT read lands in its own copy. */
		if (pread(fd, self->span + self->page, self->page, 0) !=
		    self->page)
			_exit(2);
		say(to_parent[1]);
		hear(to_child[0]);
		_exit(page_is(self->span, self->page, 1, 'D') ? 0 : 3);
	}
	ASSERT_EQ((ssize_t)self->bytes / 2,
		  pread(fd, self->span, self->bytes / 2, 0));
	say(to_child[1]);
	ASSERT_TRUE(heard(to_parent[0])) TH_LOG("the child found a wrong byte");
	for (i = 0; i < SPAN_PAGES; i++)
		EXPECT_TRUE(page_is(self->span, self->page, i,
				    i < SPAN_PAGES / 2 ? 'D' : 'A'));
	memset(self->span, 'p', self->bytes);
	say(to_child[1]);
	EXPECT_EQ(0, wait_child(pid));
	close(fd);
	munmap(src, self->bytes);
}

/* A minimal io_uring: one submission at a time, for a fixed-buffer read. */
struct ring {
	int fd;
	unsigned int *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail;
	unsigned int *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static int ring_setup(struct ring *r)
{
	struct io_uring_params p;
	char *sq, *cq;

	memset(&p, 0, sizeof(p));
	r->fd = syscall(__NR_io_uring_setup, 4, &p);
	if (r->fd < 0)
		return -1;
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned int),
		  PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
		       PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -1;
	r->sq_tail = (unsigned int *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned int *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned int *)(sq + p.sq_off.array);
	r->cq_head = (unsigned int *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned int *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned int *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

/* READ_FIXED of @len bytes at offset 0 of @fd into fixed buffer 0 at @buf. */
static int ring_read_fixed(struct ring *r, int fd, void *buf, unsigned int len)
{
	unsigned int tail = *r->sq_tail, idx = tail & *r->sq_mask, head;
	struct io_uring_sqe *sqe = &r->sqes[idx];
	int res;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_READ_FIXED;
	sqe->fd = fd;
	sqe->addr = (uintptr_t)buf;
	sqe->len = len;
	sqe->buf_index = 0;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS,
		    NULL, 0) < 0)
		return -errno;
	head = *r->cq_head;
	if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	res = r->cqes[head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

/*
 * A page pinned for DMA when fork() runs stays the parent's (review H3):
 * the page is an io_uring fixed buffer (a FOLL_LONGTERM pin); after fork
 * the parent writes it and the kernel then reads a file into it through
 * the pin: the parent sees both, the child neither.
 */
TEST_F(iso, pinned_at_fork_stays_with_parent)
{
	char path[] = "/tmp/spanalloc-pin-XXXXXX";
	long pinned = read_stat("fork_pinned");
	int to_child[2], to_parent[2], file;
	struct iovec iov = { self->span, self->page };
	struct ring r;
	pid_t pid;

	if (ring_setup(&r))
		SKIP(return, "no io_uring");
	if (syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_BUFFERS,
		    &iov, 1))
		SKIP(return, "io_uring refuses the arena as a fixed buffer (%s)",
		     strerror(errno));
	file = mkstemp(path);
	ASSERT_LE(0, file);
	unlink(path);
	ASSERT_EQ(64, write(file, "0123456789abcdef0123456789abcdef"
			    "0123456789abcdef0123456789abcdef", 64));

	pid = fork_talking(to_child, to_parent);
	ASSERT_LE(0, pid);
	if (pid == 0) {
		hear(to_child[0]);
		_exit(page_is(self->span, self->page, 0, 'A') ? 0 : 1);
	}
	if (pinned >= 0)
		EXPECT_LE(pinned + 1, read_stat("fork_pinned"));
	memset(self->span + 100, 'P', 100);
	ASSERT_EQ(64, ring_read_fixed(&r, file, self->span, 64));
	EXPECT_EQ(0, memcmp(self->span, "0123456789abcdef", 16))
		TH_LOG("the pinned frame is no longer the parent's");
	EXPECT_EQ('P', self->span[150]);
	say(to_child[1]);
	EXPECT_EQ(0, wait_child(pid)) TH_LOG("the child saw the parent's I/O");
	close(file);
	close(r.fd);
}

/* Compaction while forked relatives write: nothing of theirs mixes. */
TEST_F(iso, compaction_while_relatives_write)
{
	int fd, round, i, ok = 1;
	pid_t pid;

	fd = open("/proc/sys/vm/compact_memory", O_WRONLY);
	if (fd < 0)
		SKIP(return, "no /proc/sys/vm/compact_memory (root, CONFIG_COMPACTION)");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (round = 0; round < 200; round++) {
			memset(self->span, 'a' + round % 26, self->bytes);
			for (i = 0; i < SPAN_PAGES; i++)
				if (!page_is(self->span, self->page, i,
					     'a' + round % 26))
					_exit(1);
		}
		_exit(0);
	}
	for (round = 0; round < 200; round++) {
		if (round % 50 == 0 && write(fd, "1", 1) != 1)
			ok = 0;
		memset(self->span, 'A' + round % 26, self->bytes);
		for (i = 0; i < SPAN_PAGES; i++)
			if (!page_is(self->span, self->page, i,
				     'A' + round % 26))
				ok = 0;
	}
	close(fd);
	EXPECT_TRUE(ok);
	EXPECT_EQ(0, wait_child(pid));
}

/*
 * A crashing child dumps core with its heap string in it (coredump_filter
 * bit 3: the arena is a shared mapping), and the dump does not disturb the
 * parent's copy.
 */
TEST_F(iso, core_dump_holds_heap_string)
{
	static const char secret[] = "spanalloc-core-dump-heap-string-7f3a";
	char dir[] = "/tmp/spanalloc-core-XXXXXX", path[128], pattern[256];
	struct stat st;
	char *core;
	pid_t pid;
	int fd;

	fd = open("/proc/sys/kernel/core_pattern", O_RDONLY);
	ASSERT_LE(0, fd);
	memset(pattern, 0, sizeof(pattern));
	ASSERT_LT(0, read(fd, pattern, sizeof(pattern) - 1));
	close(fd);
	if (pattern[0] == '|' || strncmp(pattern, "core", 4))
		SKIP(return, "core_pattern is '%s', not a plain core file", pattern);
	ASSERT_NE(NULL, mkdtemp(dir));
	strcpy((char *)self->span + self->page, secret);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

		if (chdir(dir) || setrlimit(RLIMIT_CORE, &rl))
			_exit(1);
		fd = open("/proc/self/coredump_filter", O_WRONLY);
		if (fd < 0 || write(fd, "0x3b", 4) != 4)
			_exit(2);
		close(fd);
		abort();
	}
	EXPECT_EQ(100 + SIGABRT, wait_child(pid));
	snprintf(path, sizeof(path), "%s/core", dir);
	if (access(path, F_OK))
		snprintf(path, sizeof(path), "%s/core.%d", dir, pid);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd) TH_LOG("no core file in %s", dir);
	ASSERT_EQ(0, fstat(fd, &st));
	core = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	ASSERT_NE(MAP_FAILED, core);
	EXPECT_NE(NULL, memmem(core, st.st_size, secret, sizeof(secret)));
	munmap(core, st.st_size);
	close(fd);
	unlink(path);
	rmdir(dir);
	EXPECT_STREQ(secret, (char *)self->span + self->page);
}

/*
 * A heap belongs to its mm: a process that closes every descriptor (a
 * daemon) and opens the device again reaches the same heap.
 */
TEST_F(iso, heap_survives_closing_every_descriptor)
{
	struct spanalloc_info info;
	void *span;
	int fd;

	if (syscall(436 /* close_range */, 3, ~0U, 0))
		SKIP(return, "no close_range");
	self->fd = -1;
	fd = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, SPANALLOC_IOC_INFO, &info));
	EXPECT_EQ((uintptr_t)self->arena, info.arena_start);
	EXPECT_EQ(1, info.heap_spans);
	ASSERT_EQ(0, span_alloc(fd, 4, &span));
	memset(span, 1, 4 * self->page);
	EXPECT_TRUE(page_is(self->span, self->page, 0, 'A'));
	self->fd = fd;
}

TEST_HARNESS_MAIN
