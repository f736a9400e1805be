/*
 * region.c: anonymous memory for the page heap. Address space is reserved
 * from the system in regions (REGION_BYTES, or one request's size when it
 * is bigger), which the page heap (pageheap.c) carves into spans and free
 * runs; pages go back with MADV_DONTNEED, which never splits a mapping and
 * cannot fail for lack of map slots; only a whole region is ever unmapped.
 * So a heap of any shape costs a few mappings (review H2: one mmap per
 * span made thousands, and at vm.max_map_count a munmap that had to split
 * a mapping failed).
 *
 * Regions are reserved with MAP_NORESERVE: a page costs memory only once
 * touched (calloc of 8 GiB in a 1 GiB machine works, as with glibc).
 *
 * Every function here takes no lock of the library and never calls malloc;
 * the page heap calls them without holding its lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>

#include "internal.h"

#define REGION_BYTES	((size_t)64 << 20)

static struct {
	uint64_t regions;
	uint64_t bytes;
	uint64_t calls;
} rg;

struct region *_span_region_new(size_t pages)
{
	size_t want = pages * SPAN_PAGE;
	struct region *r = _span_meta_alloc(sizeof(*r));
	void *p = MAP_FAILED;

	if (!r)
		return NULL;
	if (pages > PTRDIFF_MAX / SPAN_PAGE)
		goto out_nomem;
	/* A whole region if there is room, else just the request. */
	if (want < REGION_BYTES) {
		span_add_relaxed(&rg.calls, 1);
		p = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p != MAP_FAILED)
			want = REGION_BYTES;
	}
	if (p == MAP_FAILED) {
		span_add_relaxed(&rg.calls, 1);
		p = mmap(NULL, want, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	}
	if (p == MAP_FAILED)
		goto out_nomem;
	r->base = (uintptr_t)p;
	r->pages = want >> SPAN_PAGE_SHIFT;
	span_add_relaxed(&rg.regions, 1);
	span_add_relaxed(&rg.bytes, want);
	return r;
out_nomem:
	_span_meta_free(r, sizeof(*r));
	errno = ENOMEM;
	return NULL;
}

int _span_region_free(struct region *r)
{
	size_t bytes = r->pages * SPAN_PAGE;

	span_add_relaxed(&rg.calls, 1);
	/* Adjacent regions may share a mapping: this can need a new one. */
	if (munmap((void *)r->base, bytes) != 0)
		return -1;
	span_sub_relaxed(&rg.regions, 1);
	span_sub_relaxed(&rg.bytes, bytes);
	_span_meta_free(r, sizeof(*r));
	return 0;
}

int _span_region_release(uintptr_t addr, size_t pages)
{
	span_add_relaxed(&rg.calls, 1);
	return madvise((void *)addr, pages * SPAN_PAGE, MADV_DONTNEED);
}

void _span_region_stats(struct span_stats *st)
{
	st->regions = span_load_relaxed(&rg.regions);
	st->region_bytes = span_load_relaxed(&rg.bytes);
	st->backend_calls += span_load_relaxed(&rg.calls);
}
