/*
 * prim.c: the backends behind prim.h — /dev/spanalloc or anonymous mmap.
 *
 * The kernel backend opens the device once per process, maps an arena of
 * SPANALLOC_ARENA_MB (default: the module's maximum, capped at 64 GiB)
 * and asks for spans with SPANALLOC_IOC_SPAN_ALLOC / _FREE. A fork() child
 * inherits the descriptor and its own copy of the heap (the module makes
 * it), so the same descriptor keeps working there.
 *
 * The descriptor is the program's too: it may close every descriptor
 * (close_range(3, ~0U, 0), closefrom(), a daemon's loop) or dup2() over
 * ours. So it is moved out of the way (F_DUPFD_CLOEXEC near the top of
 * the first 1024), and an ioctl that fails with EBADF, or with another
 * error while fstat() says the descriptor is no longer the device, opens
 * the device again and repeats the call: the module finds a heap by the
 * caller's mm, so any open file of the device reaches the same heap and
 * arena (the arena's mapping holds its own reference to the file). The
 * number the program took over stays the program's: it is never closed.
 *
 * Each span ioctl costs far more than the page work it does (under
 * QEMU/TCG tens of microseconds), so small spans come in batches: a stash
 * per size class, refilled with one SPANALLOC_IOC_SPAN_ALLOC_BATCH tagged
 * with that class (the kernel's per-class counts and the span view stay
 * exact), and spans go back in batches with SPANALLOC_IOC_SPAN_FREE_BATCH.
 * A class's batch starts at one span and doubles each time its stash runs
 * dry, up to STASH_MAX spans or STASH_PAGES pages; stashes idle for the
 * decay interval go back to the kernel (central.c's sweep) and start over.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../uapi/spanalloc.h"
#include "prim.h"

#define STASH_MAX	8	/* most spans one class keeps ready */
#define STASH_PAGES	64	/* ... and most pages (256 KiB) */
#define FREE_CHUNK	64	/* spans per free batch gathered on the stack */
#define FD_TOP		1024	/* the device's fd goes just below this ... */
#define FD_BELOW_TOP	16	/* ... at least this far below the limit */

/* A class's ready spans (kernel backend), under its own lock. */
struct stash {
	pthread_mutex_t lock;
	uint32_t n;			/* spans in addrs[] */
	uint32_t batch;			/* spans the next refill asks for */
	size_t pages;			/* pages of each span */
	uint64_t used_ms;		/* last time a span was taken */
	uint64_t addrs[STASH_MAX];
} __attribute__((aligned(64)));

static struct stash stashes[SPANALLOC_NUM_CLASSES] = {
	[0 ... SPANALLOC_NUM_CLASSES - 1] = {
		.lock = PTHREAD_MUTEX_INITIALIZER, .batch = 1 },
};

static struct span_prim_counters counters;

/*
 * The device's descriptor and how many times it was opened again, in one
 * word read with one load: a thread that saw the descriptor fail reopens
 * only if nobody did since (fd in the low 32 bits, the generation above).
 */
static uint64_t dev_fdgen = UINT32_MAX;
static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	pthread_once_t once;
	enum span_backend backend;
	dev_t rdev;			/* the device, to know its files */
	size_t page_size;
} prim = { .once = PTHREAD_ONCE_INIT };

/*
 * Env lookup that does not allocate (safe before malloc works), and works
 * before libc has set environ up (options.c).
 */
const char *_span_env(const char *name);

static const char *prim_env(const char *name)
{
	return _span_env(name);
}

/* From counters.c and clock.c: atomics and a clock, no lock, no malloc. */
void _span_stats_mapped(int64_t delta);
uint64_t _span_now_ms(void);

static void count_add(uint64_t *c, uint64_t v)
{
	__atomic_add_fetch(c, v, __ATOMIC_RELAXED);
}

static void count_sub(uint64_t *c, uint64_t v)
{
	__atomic_sub_fetch(c, v, __ATOMIC_RELAXED);
}

/* @n spans of @pages each enter (@sign 1) or leave (-1) the stashes. */
static void stash_account(int sign, uint64_t n, size_t pages)
{
	uint64_t bytes = n * pages * prim.page_size;

	if (!n)
		return;
	if (sign > 0) {
		count_add(&counters.stashed_spans, n);
		count_add(&counters.stashed_bytes, bytes);
		_span_stats_mapped((int64_t)bytes);
	} else {
		count_sub(&counters.stashed_spans, n);
		count_sub(&counters.stashed_bytes, bytes);
		_span_stats_mapped(-(int64_t)bytes);
	}
}

/*
 * Move @fd to a number programs rarely use (F_DUPFD_CLOEXEC at the top of
 * the first FD_TOP, below RLIMIT_NOFILE); @fd itself if that fails.
 */
static int dev_fd_move_high(int fd)
{
	struct rlimit rl;
	rlim_t top = FD_TOP;
	int high;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < top)
		top = rl.rlim_cur;
	if (top <= 2 * FD_BELOW_TOP || (rlim_t)fd >= top - FD_BELOW_TOP)
		return fd;
	high = fcntl(fd, F_DUPFD_CLOEXEC, (int)(top - FD_BELOW_TOP));
	if (high < 0)
		return fd;
	close(fd);
	return high;
}

/* Is @fd still a file of our device? */
static bool dev_fd_is_ours(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
	       st.st_rdev == prim.rdev;
}

/* Open the device: a descriptor out of the way, or -1 with errno. */
static int dev_open(void)
{
	int fd = open("/dev/spanalloc", O_RDWR | O_CLOEXEC);

	return fd < 0 ? fd : dev_fd_move_high(fd);
}

/*
 * The descriptor in @fdgen failed: open the device again unless another
 * thread did already. Returns the descriptor to retry with, or -1.
 */
static int dev_reopen(uint64_t fdgen)
{
	uint64_t now;
	int fd;

	pthread_mutex_lock(&dev_lock);
	now = __atomic_load_n(&dev_fdgen, __ATOMIC_RELAXED);
	if (now == fdgen) {
		fd = dev_open();
		if (fd >= 0 && !dev_fd_is_ours(fd)) {
			close(fd);	/* /dev/spanalloc is another device now */
			fd = -1;
		}
		if (fd >= 0) {
			now = ((fdgen >> 32) + 1) << 32 | (uint32_t)fd;
			__atomic_store_n(&dev_fdgen, now, __ATOMIC_RELAXED);
			count_add(&counters.reopens, 1);
		}
	}
	pthread_mutex_unlock(&dev_lock);
	return now == fdgen ? -1 : (int)(uint32_t)now;
}

/*
 * ioctl() on the device. When the descriptor is gone (EBADF) or is another
 * file now (the program's dup2(); its ioctl fails and fstat() tells), the
 * device is opened again and the call repeated once. errno is that of the
 * call that counted: a lost descriptor found again leaves no trace.
 */
static int dev_ioctl(unsigned long cmd, void *arg)
{
	uint64_t fdgen = __atomic_load_n(&dev_fdgen, __ATOMIC_RELAXED);
	int fd = (int)(uint32_t)fdgen, err;

	if (ioctl(fd, cmd, arg) == 0)
		return 0;
	err = errno;
	/* The module's own answers: the descriptor worked. */
	if (err == ENOMEM || err == EBUSY || err == EINTR ||
	    (err != EBADF && dev_fd_is_ours(fd))) {
		errno = err;
		return -1;
	}
	fd = dev_reopen(fdgen);
	if (fd < 0) {
		errno = err;
		return -1;
	}
	return ioctl(fd, cmd, arg);
}

static int kernel_alloc_one(size_t pages, unsigned int size_class,
			    uint64_t *addr)
{
	struct spanalloc_span_alloc req;

	memset(&req, 0, sizeof(req));
	req.pages = pages;
	req.size_class = size_class;
	count_add(&counters.calls, 1);
	if (dev_ioctl(SPANALLOC_IOC_SPAN_ALLOC, &req) != 0)
		return -1;
	*addr = req.addr;
	return 0;
}

/* Up to @want spans into @addrs in one call; returns how many (0: none). */
static uint32_t kernel_alloc_batch(size_t pages, unsigned int size_class,
				   uint64_t *addrs, uint32_t want)
{
	struct spanalloc_span_alloc_batch req;

	if (want == 1)
		return kernel_alloc_one(pages, size_class, addrs) ? 0 : 1;
	memset(&req, 0, sizeof(req));
	req.pages = pages;
	req.addrs = (uintptr_t)addrs;
	req.count = want;
	req.size_class = size_class;
	count_add(&counters.calls, 1);
	if (dev_ioctl(SPANALLOC_IOC_SPAN_ALLOC_BATCH, &req) != 0)
		return 0;
	return req.count <= want ? req.count : want;
}

static int kernel_free_one(uint64_t addr)
{
	struct spanalloc_span_free req;

	memset(&req, 0, sizeof(req));
	req.addr = addr;
	count_add(&counters.calls, 1);
	return dev_ioctl(SPANALLOC_IOC_SPAN_FREE, &req);
}

/* kernel_free_one(@addr); if it fails, @addr goes to @bad[(*nbad)++]. */
static void kernel_free_or_keep(uint64_t addr, uint64_t *bad, size_t *nbad)
{
	if (kernel_free_one(addr) != 0)
		bad[(*nbad)++] = addr;
}

/*
 * Free @n spans at @addrs (n <= SPANALLOC_BATCH_MAX) in one call; an
 * address the kernel refuses is skipped and put in @bad (room for @n, in
 * order). Returns the failures.
 */
static size_t kernel_free_batch(const uint64_t *addrs, size_t n,
				uint64_t *bad)
{
	struct spanalloc_span_free_batch req;
	size_t failed = 0;

	while (n) {
		if (n == 1) {
			kernel_free_or_keep(addrs[0], bad, &failed);
			return failed;
		}
		memset(&req, 0, sizeof(req));
		req.addrs = (uintptr_t)addrs;
		req.count = (uint32_t)n;
		count_add(&counters.calls, 1);
		if (dev_ioctl(SPANALLOC_IOC_SPAN_FREE_BATCH, &req) == 0 &&
		    req.count == n)
			return failed;
		if (errno != EINVAL || req.count >= n) {
			/* Not a bad address: try the rest one by one. */
			for (; n; n--, addrs++)
				kernel_free_or_keep(addrs[0], bad, &failed);
			return failed;
		}
		/* addrs[req.count] looks bad: alone, then the rest. */
		kernel_free_or_keep(addrs[req.count], bad, &failed);
		addrs += req.count + 1;
		n -= req.count + 1;
	}
	return failed;
}

static bool stash_class(size_t pages, unsigned int size_class)
{
	return prim.backend == SPAN_BACKEND_KERNEL && size_class &&
	       size_class < SPANALLOC_NUM_CLASSES && pages <= STASH_PAGES;
}

/* A span of @size_class from its stash, refilled by one batch if empty. */
static void *stash_alloc(size_t pages, unsigned int size_class)
{
	struct stash *st = &stashes[size_class];
	uint64_t addr = 0;
	uint32_t got, max;

	pthread_mutex_lock(&st->lock);
	if (st->n && st->pages != pages) {
		/* Not the pages this class had: never mix them. */
		pthread_mutex_unlock(&st->lock);
		return kernel_alloc_one(pages, size_class, &addr) ? NULL :
			(void *)(uintptr_t)addr;
	}
	st->used_ms = _span_now_ms();
	if (!st->n) {
		max = STASH_PAGES / pages;
		if (max > STASH_MAX)
			max = STASH_MAX;
		if (st->batch > max)
			st->batch = max;
		got = kernel_alloc_batch(pages, size_class, st->addrs,
					 st->batch);
		if (!got) {
			/* A limit: the next refill asks for one span. */
			st->batch = 1;
			pthread_mutex_unlock(&st->lock);
			return NULL;
		}
		st->n = got;
		st->pages = pages;
		stash_account(1, got, pages);
		if (st->batch < max)
			st->batch *= 2;
	}
	addr = st->addrs[--st->n];
	stash_account(-1, 1, pages);
	pthread_mutex_unlock(&st->lock);
	return (void *)(uintptr_t)addr;
}

void _span_prim_stash_trim(uint64_t idle_ms)
{
	uint64_t addrs[FREE_CHUNK], bad[FREE_CHUNK], now;
	size_t n = 0, failed = 0;
	unsigned int cls;

	if (prim.backend != SPAN_BACKEND_KERNEL ||
	    !__atomic_load_n(&counters.stashed_spans, __ATOMIC_RELAXED))
		return;
	now = _span_now_ms();
	for (cls = 1; cls < SPANALLOC_NUM_CLASSES; cls++) {
		struct stash *st = &stashes[cls];

		if (!__atomic_load_n(&st->n, __ATOMIC_RELAXED))
			continue;
		if (!idle_ms)
			pthread_mutex_lock(&st->lock);
		else if (pthread_mutex_trylock(&st->lock) != 0)
			continue;
		if (st->n && (!idle_ms || now - st->used_ms >= idle_ms)) {
			if (n + st->n > FREE_CHUNK) {
				failed += kernel_free_batch(addrs, n, bad);
				n = 0;
			}
			memcpy(addrs + n, st->addrs, st->n * sizeof(*addrs));
			n += st->n;
			stash_account(-1, st->n, st->pages);
			st->n = 0;
			st->batch = 1;
		}
		pthread_mutex_unlock(&st->lock);
	}
	if (n)
		failed += kernel_free_batch(addrs, n, bad);
	(void)failed;	/* a stashed span the kernel refuses: nothing to do */
}

void _span_prim_counters(struct span_prim_counters *pc)
{
	pc->calls = __atomic_load_n(&counters.calls, __ATOMIC_RELAXED);
	pc->stashed_spans = __atomic_load_n(&counters.stashed_spans,
					    __ATOMIC_RELAXED);
	pc->stashed_bytes = __atomic_load_n(&counters.stashed_bytes,
					    __ATOMIC_RELAXED);
	pc->reopens = __atomic_load_n(&counters.reopens, __ATOMIC_RELAXED);
}

void _span_prim_lock_all(void)
{
	unsigned int cls;

	for (cls = 0; cls < SPANALLOC_NUM_CLASSES; cls++)
		pthread_mutex_lock(&stashes[cls].lock);
	pthread_mutex_lock(&dev_lock);
}

void _span_prim_unlock_all(void)
{
	unsigned int cls = SPANALLOC_NUM_CLASSES;

	pthread_mutex_unlock(&dev_lock);
	while (cls--)
		pthread_mutex_unlock(&stashes[cls].lock);
}

static bool prim_kernel_start(void)
{
	struct spanalloc_info info;
	size_t bytes = (size_t)64 << 30;
	const char *mb = prim_env("SPANALLOC_ARENA_MB");
	struct stat st;
	void *arena;
	int fd;

	fd = dev_open();
	if (fd < 0)
		return false;
	if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode))
		goto out_close;
	memset(&info, 0, sizeof(info));
	if (ioctl(fd, SPANALLOC_IOC_INFO, &info) != 0)
		goto out_close;
	if (info.abi_version != SPANALLOC_ABI_VERSION) {
		_span_abi_mismatch(info.abi_version);	/* version.c */
		goto out_close;
	}
	if (mb && *mb)
		bytes = (size_t)strtoull(mb, NULL, 10) << 20;
	if (bytes > info.arena_max_bytes)
		bytes = info.arena_max_bytes;
	bytes &= ~((size_t)info.page_size - 1);
	if (!bytes)
		goto out_close;
	arena = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (arena == MAP_FAILED)
		goto out_close;
	prim.rdev = st.st_rdev;
	__atomic_store_n(&dev_fdgen, (uint32_t)fd, __ATOMIC_RELAXED);
	return true;
out_close:
	close(fd);
	return false;
}

static void prim_start(void)
{
	const char *want = prim_env("SPANALLOC_BACKEND");

	prim.page_size = (size_t)sysconf(_SC_PAGESIZE);
	if (want && !strcmp(want, "mmap")) {
		prim.backend = SPAN_BACKEND_MMAP;
	} else if (prim_kernel_start()) {
		prim.backend = SPAN_BACKEND_KERNEL;
	} else if (want && !strcmp(want, "kernel")) {
		prim.backend = SPAN_BACKEND_NONE;
	} else {
		prim.backend = SPAN_BACKEND_MMAP;
	}
}

enum span_backend _span_prim_init(void)
{
	pthread_once(&prim.once, prim_start);
	return prim.backend;
}

enum span_backend _span_prim_backend(void)
{
	return prim.backend;
}

const char *_span_prim_backend_name(enum span_backend backend)
{
	switch (backend) {
	case SPAN_BACKEND_KERNEL:
		return "kernel";
	case SPAN_BACKEND_MMAP:
		return "mmap";
	default:
		return "none";
	}
}

size_t _span_prim_page_size(void)
{
	return prim.page_size;
}

void *_span_prim_alloc(size_t pages, unsigned int size_class)
{
	uint64_t addr;
	void *p;

	if (!pages || pages > SIZE_MAX / prim.page_size) {
		errno = ENOMEM;
		return NULL;
	}
	switch (prim.backend) {
	case SPAN_BACKEND_KERNEL:
		if (stash_class(pages, size_class))
			p = stash_alloc(pages, size_class);
		else if (kernel_alloc_one(pages, size_class, &addr) == 0)
			p = (void *)(uintptr_t)addr;
		else
			p = NULL;
		if (!p)
			errno = ENOMEM;
		return p;
	case SPAN_BACKEND_MMAP:
		count_add(&counters.calls, 1);
		p = mmap(NULL, pages * prim.page_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			errno = ENOMEM;
			return NULL;
		}
		return p;
	default:
		errno = ENOMEM;
		return NULL;
	}
}

int _span_prim_free(void *span, size_t pages)
{
	switch (prim.backend) {
	case SPAN_BACKEND_KERNEL:
		return kernel_free_one((uintptr_t)span);
	case SPAN_BACKEND_MMAP:
		count_add(&counters.calls, 1);
		return munmap(span, pages * prim.page_size);
	default:
		errno = EINVAL;
		return -1;
	}
}

size_t _span_prim_free_batch(void *const *spans, const size_t *pages,
			     size_t n, void **failed)
{
	uint64_t addrs[FREE_CHUNK], bad[FREE_CHUNK];
	size_t i, j, k, nbad, nfailed = 0;

	if (prim.backend != SPAN_BACKEND_KERNEL) {
		for (i = 0; i < n; i++)
			if (_span_prim_free(spans[i], pages[i]) != 0)
				failed[nfailed++] = spans[i];
		return nfailed;
	}
	for (i = 0; i < n; i += k) {
		for (k = 0; k < FREE_CHUNK && i + k < n; k++)
			addrs[k] = (uintptr_t)spans[i + k];
		nbad = kernel_free_batch(addrs, k, bad);
		for (j = 0; j < nbad; j++)
			failed[nfailed++] = (void *)(uintptr_t)bad[j];
	}
	return nfailed;
}

void *_span_prim_resize(void *span, size_t old_pages, size_t new_pages)
{
	struct spanalloc_span_resize req = {
		.addr = (uintptr_t)span,
		.pages = new_pages,
	};

	if (!new_pages || new_pages > SIZE_MAX / prim.page_size) {
		errno = ENOMEM;
		return NULL;
	}
	(void)old_pages;
	if (prim.backend != SPAN_BACKEND_KERNEL) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	count_add(&counters.calls, 1);
	/* In place or not at all; a module without the command: ENOTTY. */
	if (dev_ioctl(SPANALLOC_IOC_SPAN_RESIZE, &req) == 0)
		return span;
	if (errno == ENOTTY)
		errno = EOPNOTSUPP;
	return NULL;
}


void _span_prim_after_fork_child(void)
{
	unsigned int cls;

	/*
	 * The module gave the child its own heap, stashed spans included;
	 * the descriptor stays. The stash and device locks were held across
	 * fork().
	 */
	for (cls = 0; cls < SPANALLOC_NUM_CLASSES; cls++)
		pthread_mutex_init(&stashes[cls].lock, NULL);
	pthread_mutex_init(&dev_lock, NULL);
}
