/*
 * spanalloc.h: the public API of libspanalloc.
 *
 * Two layers, both thread-safe:
 *   - spans: whole zeroed pages straight from the page heap (the kernel
 *     module when /dev/spanalloc is there, anonymous mmap otherwise);
 *   - the malloc family, prefixed span_ (libspanalloc.so also exports the
 *     unprefixed names, so LD_PRELOAD replaces the C library's malloc).
 */
#ifndef SPANALLOC_H
#define SPANALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- spans: whole pages from the page heap ---- */

/*
 * @pages zeroed pages, page-aligned, read-write; NULL with errno ENOMEM when
 * the page heap or a limit runs out.
 */
void *span_pages_alloc(size_t pages);

/*
 * Give back pages from span_pages_alloc(); @pages must be the same number.
 * Returns 0, or -1 with errno EINVAL if @p is not such a span.
 */
int span_pages_free(void *p, size_t pages);

/* The backend in use: "kernel", "mmap", or "none" if none could start. */
const char *span_backend(void);

/* The library's version, "MAJOR.MINOR.PATCH" (the package's version). */
const char *span_version(void);

/* ---- the malloc family, as the C library's, prefixed span_ ---- */

void *span_malloc(size_t size);
void span_free(void *p);
void *span_calloc(size_t n, size_t size);
void *span_realloc(void *p, size_t size);
void *span_reallocarray(void *p, size_t n, size_t size);
int span_posix_memalign(void **out, size_t align, size_t size);
void *span_aligned_alloc(size_t align, size_t size);
void *span_memalign(size_t align, size_t size);
void *span_valloc(size_t size);
void *span_pvalloc(size_t size);
size_t span_malloc_usable_size(const void *p);
void span_free_sized(void *p, size_t size);
void span_free_aligned_sized(void *p, size_t align, size_t size);

/*
 * Give back what can be given back now: the calling thread's cache, the 8
 * and 16 byte objects other threads freed for any thread (its inbox),
 * empty small spans and cached large spans, without waiting for their
 * decay.
 * Every other thread gives back its cache at its next slow path (a refill,
 * a drain, a large malloc or free).
 */
void span_trim(void);

/* ---- statistics ---- */

/*
 * A snapshot of the allocator, filled in by span_stats(). Byte counts are
 * of whole spans unless the name says otherwise.
 */
struct span_stats {
	const char *backend;		/* "kernel", "mmap" or "none" */
	uint64_t mapped_bytes;		/* spans held from the backend now */
	uint64_t mapped_peak;		/* most ever held at once */
	uint64_t backend_allocs;	/* spans asked from the backend */
	uint64_t backend_frees;		/* spans given back to it */
	uint64_t backend_errors;	/* failed backend calls */
	uint64_t small_spans;		/* spans of size classes */
	uint64_t small_span_bytes;
	uint64_t small_empty_spans;	/* all objects free, decaying */
	uint64_t small_central_free_bytes; /* free objects in central */
	uint64_t refills;		/* batches central -> thread caches */
	uint64_t drains;		/* batches thread caches -> central */
	uint64_t large_live;		/* large allocations in use */
	uint64_t large_live_bytes;
	uint64_t large_cached;		/* freed large spans kept for reuse */
	uint64_t large_cached_bytes;
	uint64_t large_allocs;		/* large allocations ever made */
	uint64_t large_cache_hits;	/* ... served from the cache */
	uint64_t threads;		/* threads that set up a cache */
	uint64_t threads_exited;	/* ... and flushed it at exit */
	uint64_t backend_calls;		/* system calls for spans (a batch
					   counts once) */
	uint64_t stashed_spans;		/* kernel backend: small spans got
					   in a batch, not yet handed out
					   (in mapped_bytes) */
	uint64_t stashed_bytes;
	uint64_t regions;		/* anonymous regions reserved (the
					   page heap carves them) */
	uint64_t region_bytes;		/* ... their address space */
	uint64_t released_bytes;	/* free pages of regions given back
					   (MADV_DONTNEED) or never touched */
	uint64_t anon_span_bytes;	/* live spans of anonymous memory */
	uint64_t anon_fallbacks;	/* kernel backend: spans that came
					   from anonymous memory because the
					   kernel said ENOMEM */
	uint64_t reclaims;		/* caches given back because the
					   backend said ENOMEM, then retried */
	uint64_t backend_reopens;	/* kernel backend: times the device
					   was opened again because the
					   program closed or replaced the
					   library's descriptor */
	uint64_t kernel_regions;	/* kernel backend: large spans of
					   the module that the page heap
					   carves into large blocks */
	uint64_t kernel_region_bytes;
};

/* Fill in @st. Thread-safe; takes the allocator's locks briefly. */
void span_stats(struct span_stats *st);

/* Write the statistics as text to file descriptor @fd (no malloc). */
void span_stats_print(int fd);

#ifdef __cplusplus
}
#endif

#endif /* SPANALLOC_H */
