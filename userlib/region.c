/*
 * region.c: address space for the page heap, in regions that the page
 * heap (pageheap.c) carves into spans and free runs. Two kinds:
 *
 * Anonymous regions are reserved from the system (REGION_BYTES, or one
 * request's size when it is bigger); pages go back with MADV_DONTNEED,
 * which never splits a mapping and cannot fail for lack of map slots; only
 * a whole region is ever unmapped. So a heap of any shape costs a few
 * mappings (review H2: one mmap per span made thousands, and at
 * vm.max_map_count a munmap that had to split a mapping failed). They are
 * reserved with MAP_NORESERVE: a page costs memory only once touched
 * (calloc of 8 GiB in a 1 GiB machine works, as with glibc).
 *
 * Kernel regions (the kernel backend's large spans) are each one large
 * span of the module, populated and zeroed when made: one SPAN_ALLOC
 * serves many large blocks, split and merged by the page heap without a
 * system call (a span per block cost an ioctl on about one step in ten
 * with many live blocks). The module frees only whole spans or their
 * tails, so a kernel region goes back whole (SPAN_FREE) or is shortened
 * (SPAN_RESIZE). Their size grows with what the process holds in them:
 * KREGION_MIN, then as much again as is held, up to KREGION_MAX (or one
 * request's size when it is bigger), so a program with one large block
 * does not hold 8 MiB of frames.
 *
 * Every function here takes no lock of the library and never calls malloc;
 * the page heap calls them without holding its lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>

#include "internal.h"
#include "prim.h"

#define REGION_BYTES	((size_t)64 << 20)
#define KREGION_MIN	((size_t)1 << 20)
#define KREGION_MAX	((size_t)8 << 20)

static struct {
	uint64_t regions;
	uint64_t bytes;
	uint64_t calls;
	uint64_t kregions;
	uint64_t kbytes;
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
	r->kernel = false;	/* metadata is reused, not zeroed */
	span_add_relaxed(&rg.regions, 1);
	span_add_relaxed(&rg.bytes, want);
	return r;
out_nomem:
	_span_meta_free(r, sizeof(*r));
	errno = ENOMEM;
	return NULL;
}

struct region *_span_region_kernel(size_t pages)
{
	size_t want = span_load_relaxed(&rg.kbytes);
	struct region *r;
	void *p = NULL;

	if (pages > PTRDIFF_MAX / SPAN_PAGE) {
		errno = ENOMEM;
		return NULL;
	}
	r = _span_meta_alloc(sizeof(*r));
	if (!r)
		return NULL;
	want = want < KREGION_MIN ? KREGION_MIN :
		want > KREGION_MAX ? KREGION_MAX : want;
	want >>= SPAN_PAGE_SHIFT;
	if (want > pages)
		p = _span_prim_alloc(want, 0);
	if (!p) {	/* only the request, if that is all there is room for */
		want = pages;
		p = _span_prim_alloc(want, 0);
	}
	if (!p) {
		_span_meta_free(r, sizeof(*r));
		return NULL;
	}
	r->base = (uintptr_t)p;
	r->pages = want;
	r->kernel = true;
	span_add_relaxed(&rg.kregions, 1);
	span_add_relaxed(&rg.kbytes, want * SPAN_PAGE);
	return r;
}

int _span_region_shrink(struct region *r, size_t pages)
{
	if (_span_prim_resize((void *)r->base, r->pages, pages) !=
	    (void *)r->base)
		return -1;
	span_sub_relaxed(&rg.kbytes, (r->pages - pages) * SPAN_PAGE);
	return 0;	/* the page heap sets r->pages under its lock */
}

int _span_region_free(struct region *r)
{
	size_t bytes = r->pages * SPAN_PAGE;

	if (r->kernel) {
		if (_span_prim_free((void *)r->base, r->pages) != 0)
			return -1;
		span_sub_relaxed(&rg.kregions, 1);
		span_sub_relaxed(&rg.kbytes, bytes);
		_span_meta_free(r, sizeof(*r));
		return 0;
	}
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
	st->kernel_regions = span_load_relaxed(&rg.kregions);
	st->kernel_region_bytes = span_load_relaxed(&rg.kbytes);
	st->backend_calls += span_load_relaxed(&rg.calls);
}
