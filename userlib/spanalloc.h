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

#ifdef __cplusplus
}
#endif

#endif /* SPANALLOC_H */
