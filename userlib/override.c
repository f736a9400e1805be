/*
 * override.c: the C library's malloc names, so that libspanalloc.so
 * replaces malloc when preloaded (LD_PRELOAD) or linked. Only this file
 * defines them (glibc.c the rest of <malloc.h>); both are left out of
 * libspanalloc.a, whose users call the span_ names, and are in
 * libspanalloc-malloc.a, which replaces malloc in a program linked with it,
 * static binaries included. glibc's __libc_* entry points are defined too, for code
 * that calls them directly (e.g. through a malloc hook shim).
 */
#define _GNU_SOURCE
#include <stddef.h>

#include "internal.h"

#define SPAN_EXPORT	__attribute__((visibility("default")))

SPAN_EXPORT void *malloc(size_t size)
{
	return span_malloc_inline(size);
}

SPAN_EXPORT void free(void *p)
{
	span_free_inline(p, "free");
}

SPAN_EXPORT void *calloc(size_t n, size_t size)
{
	return _span_calloc(n, size);
}

SPAN_EXPORT void *realloc(void *p, size_t size)
{
	return _span_realloc(p, size);
}

SPAN_EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	return _span_reallocarray(p, n, size);
}

SPAN_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	return _span_posix_memalign(out, align, size);
}

SPAN_EXPORT void *aligned_alloc(size_t align, size_t size)
{
	return _span_aligned_alloc(align, size);
}

SPAN_EXPORT void *memalign(size_t align, size_t size)
{
	return _span_memalign(align, size);
}

SPAN_EXPORT void *valloc(size_t size)
{
	return _span_valloc(size);
}

SPAN_EXPORT void *pvalloc(size_t size)
{
	return _span_pvalloc(size);
}

SPAN_EXPORT size_t malloc_usable_size(void *p)
{
	return _span_usable_size(p);
}

SPAN_EXPORT void free_sized(void *p, size_t size)
{
	(void)size;
	span_free_inline(p, "free_sized");
}

SPAN_EXPORT void free_aligned_sized(void *p, size_t align, size_t size)
{
	(void)align;
	(void)size;
	span_free_inline(p, "free_aligned_sized");
}

/* glibc's internal names. */
SPAN_EXPORT void *__libc_malloc(size_t size)
{
	return span_malloc_inline(size);
}

SPAN_EXPORT void __libc_free(void *p)
{
	span_free_inline(p, "free");
}

SPAN_EXPORT void *__libc_calloc(size_t n, size_t size)
{
	return _span_calloc(n, size);
}

SPAN_EXPORT void *__libc_realloc(void *p, size_t size)
{
	return _span_realloc(p, size);
}

SPAN_EXPORT void *__libc_memalign(size_t align, size_t size)
{
	return _span_memalign(align, size);
}

SPAN_EXPORT void *__libc_valloc(size_t size)
{
	return _span_valloc(size);
}

SPAN_EXPORT void *__libc_pvalloc(size_t size)
{
	return _span_pvalloc(size);
}

SPAN_EXPORT int __posix_memalign(void **out, size_t align, size_t size)
{
	return _span_posix_memalign(out, align, size);
}

/* glibc's cfree(), gone from its headers but still called by old code. */
SPAN_EXPORT void cfree(void *p)
{
	span_free_inline(p, "free");
}
