/*
 * prim.c: the backends behind prim.h — /dev/spanalloc or anonymous mmap.
 *
 * The kernel backend opens the device once per process, maps an arena of
 * SPANALLOC_ARENA_MB (default: the module's maximum, capped at 64 GiB)
 * and asks for spans with SPANALLOC_IOC_SPAN_ALLOC / _FREE. A fork() child
 * inherits the descriptor and its own copy of the heap (the module makes
 * it), so the same descriptor keeps working there.
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
#include <unistd.h>

#include "../uapi/spanalloc.h"
#include "prim.h"

static struct {
	pthread_once_t once;
	enum span_backend backend;
	int fd;
	uintptr_t arena_start;
	uintptr_t arena_end;
	size_t page_size;
} prim = { .once = PTHREAD_ONCE_INIT, .fd = -1 };

/*
 * Env lookup that does not allocate (safe before malloc works), and works
 * before libc has set environ up (options.c).
 */
const char *_span_env(const char *name);

static const char *prim_env(const char *name)
{
	return _span_env(name);
}

static bool prim_kernel_start(void)
{
	struct spanalloc_info info;
	size_t bytes = (size_t)64 << 30;
	const char *mb = prim_env("SPANALLOC_ARENA_MB");
	void *arena;
	int fd;

	fd = open("/dev/spanalloc", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	if (ioctl(fd, SPANALLOC_IOC_INFO, &info) != 0 ||
	    info.abi_version != SPANALLOC_ABI_VERSION)
		goto out_close;
	if (mb && *mb)
		bytes = (size_t)strtoull(mb, NULL, 10) << 20;
	if (bytes > info.arena_max_bytes)
		bytes = info.arena_max_bytes;
	bytes &= ~((size_t)info.page_size - 1);
	if (!bytes)
		goto out_close;
	arena = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_NORESERVE, fd, 0);
	if (arena == MAP_FAILED)
		goto out_close;
	prim.fd = fd;
	prim.arena_start = (uintptr_t)arena;
	prim.arena_end = (uintptr_t)arena + bytes;
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
	struct spanalloc_span_alloc req;
	void *p;

	if (!pages || pages > SIZE_MAX / prim.page_size) {
		errno = ENOMEM;
		return NULL;
	}
	switch (prim.backend) {
	case SPAN_BACKEND_KERNEL:
		memset(&req, 0, sizeof(req));
		req.pages = pages;
		req.size_class = size_class;
		if (ioctl(prim.fd, SPANALLOC_IOC_SPAN_ALLOC, &req) != 0) {
			errno = ENOMEM;
			return NULL;
		}
		return (void *)(uintptr_t)req.addr;
	case SPAN_BACKEND_MMAP:
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
	struct spanalloc_span_free req;

	switch (prim.backend) {
	case SPAN_BACKEND_KERNEL:
		memset(&req, 0, sizeof(req));
		req.addr = (uintptr_t)span;
		return ioctl(prim.fd, SPANALLOC_IOC_SPAN_FREE, &req);
	case SPAN_BACKEND_MMAP:
		return munmap(span, pages * prim.page_size);
	default:
		errno = EINVAL;
		return -1;
	}
}

void *_span_prim_resize(void *span, size_t old_pages, size_t new_pages)
{
	void *p;

	if (prim.backend != SPAN_BACKEND_MMAP) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (!new_pages || new_pages > SIZE_MAX / prim.page_size) {
		errno = ENOMEM;
		return NULL;
	}
	p = mremap(span, old_pages * prim.page_size,
		   new_pages * prim.page_size, MREMAP_MAYMOVE);
	return p == MAP_FAILED ? NULL : p;
}

bool _span_prim_in_arena(const void *p)
{
	uintptr_t a = (uintptr_t)p;

	return a >= prim.arena_start && a < prim.arena_end;
}

void _span_prim_after_fork_child(void)
{
	/* The module gave the child its own heap; the descriptor stays. */
}
