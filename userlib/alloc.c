/*
 * alloc.c: the malloc family of the public API (span_malloc ...), with the
 * errno and NULL behaviour C11 and POSIX ask for. The fast paths are the
 * inline functions of internal.h; override.c calls the _span_ entry
 * points here directly (no PLT), the span_ names are aliases of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

#define SPAN_ALIAS(name)	__attribute__((alias(#name), visibility("default")))

static bool is_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

static bool mul_overflow(size_t a, size_t b, size_t *out)
{
	return __builtin_mul_overflow(a, b, out);
}

/*
 * A large block; when the backend says ENOMEM, the caches go back and it
 * asks once more (review M1). NULL + errno.
 */
static void *large_alloc(size_t size, size_t align, bool zero)
{
	bool reclaim = false;
	void *p;

	_span_cache_prepare();	/* large.c keeps freed spans there */
	p = _span_large_alloc(size, align, zero, &reclaim);

	if (!p && reclaim) {
		_span_reclaim();
		p = _span_large_alloc(size, align, zero, NULL);
	}
	return p;
}

/*
 * The slow paths of the inline malloc() and free() (internal.h) that are
 * not the thread cache's: start-up, large blocks, invalid pointers.
 */
SPAN_NOINLINE void *_span_malloc_slow(size_t size)
{
	/* Before init (and for good when init failed) every malloc is here. */
	if (unlikely(!span_load_acquire(&_span_ready)) && !_span_init()) {
		errno = ENOMEM;
		return NULL;
	}
	if (size > SPAN_SMALL_MAX)
		return large_alloc(size, SPAN_PAGE, false);
	return _span_alloc_class_slow(span_class_of(size));
}

/* free() keeps errno: POSIX asks it to (a large free may fail a call). */
SPAN_NOINLINE void _span_free_slow(void *p, const char *fn)
{
	uintptr_t a = (uintptr_t)p;
	struct span *s;
	int saved;

	if (!p)
		return;
	s = span_pagemap_get(a);
	if (!s)
		_span_invalid(fn, p, "not from this heap");
	if (!s->cls) {
		/*
		 * Checked before the thread cache is made ready: that may
		 * flush it (another thread's malloc_trim()), and a double
		 * free's span, cached, would then be gone.
		 */
		_span_large_check(s, p, fn);
		saved = errno;
		_span_cache_prepare();
		_span_large_free(s);
		errno = saved;
		return;
	}
	_span_invalid(fn, p, _span_not_object(s, p));
}

SPAN_API void *span_malloc(size_t size)
{
	return span_malloc_inline(size);
}

SPAN_API void span_free(void *p)
{
	span_free_inline(p, "free");
}

SPAN_API void span_free_sized(void *p, size_t size)
{
	(void)size;
	span_free_inline(p, "free_sized");
}

SPAN_API void span_free_aligned_sized(void *p, size_t align, size_t size)
{
	(void)align;
	(void)size;
	span_free_inline(p, "free_aligned_sized");
}

void *_span_calloc(size_t n, size_t size)
{
	size_t bytes;
	void *p;

	if (mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	if (bytes > SPAN_SMALL_MAX) {
		if (unlikely(!span_load_acquire(&_span_ready)) && !_span_init()) {
			errno = ENOMEM;
			return NULL;
		}
		/* Fresh spans come zeroed from the backend: no memset. */
		return large_alloc(bytes, SPAN_PAGE, true);
	}
	p = span_malloc_inline(bytes);
	if (p)
		memset(p, 0, bytes);
	return p;
}
SPAN_API void *span_calloc(size_t n, size_t size) SPAN_ALIAS(_span_calloc);

size_t _span_usable_size(const void *p)
{
	struct span *s;

	if (!p)
		return 0;
	s = span_pagemap_get((uintptr_t)p);
	if (!s)
		_span_invalid("malloc_usable_size", p, "not from this heap");
	if (!s->cls) {
		/* a freed one may still be mapped (a thread's cache) */
		_span_large_check(s, p, "malloc_usable_size");
		return _span_large_usable(s);
	}
	if (!span_is_object(s, (uintptr_t)p))
		_span_invalid("malloc_usable_size", p, _span_not_object(s, p));
	return _span_classes[s->cls].size;
}
SPAN_API size_t span_malloc_usable_size(const void *p)
	SPAN_ALIAS(_span_usable_size);

void *_span_realloc(void *p, size_t size)
{
	struct span *s;
	size_t usable;
	void *q;

	if (!p)
		return span_malloc_inline(size);
	if (!size) {	/* glibc: free and return NULL */
		span_free_inline(p, "realloc");
		return NULL;
	}
	s = span_pagemap_get((uintptr_t)p);
	if (!s)
		_span_invalid("realloc", p, "not from this heap");
	if (s->cls) {
		if (!span_is_object(s, (uintptr_t)p))
			_span_invalid("realloc", p, _span_not_object(s, p));
		usable = _span_classes[s->cls].size;
		if (size <= usable && (size > usable / 2 || usable <= 16))
			return p;
	} else {
		q = _span_large_resize(s, p, size);
		if (q)
			return q;
		usable = _span_large_usable(s);
	}
	q = span_malloc_inline(size);
	if (!q)
		return size <= usable ? p : NULL;
	memcpy(q, p, size < usable ? size : usable);
	span_free_inline(p, "realloc");
	return q;
}
SPAN_API void *span_realloc(void *p, size_t size) SPAN_ALIAS(_span_realloc);

void *_span_reallocarray(void *p, size_t n, size_t size)
{
	size_t bytes;

	if (mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return _span_realloc(p, bytes);
}
SPAN_API void *span_reallocarray(void *p, size_t n, size_t size)
	SPAN_ALIAS(_span_reallocarray);

/* @align is a power of two. */
static void *alloc_aligned(size_t align, size_t size)
{
	unsigned int cls;

	if (align <= SPAN_MIN_ALIGN && size > 8)
		return span_malloc_inline(size);
	if (unlikely(!span_load_acquire(&_span_ready)) && !_span_init()) {
		errno = ENOMEM;
		return NULL;
	}
	cls = _span_class_aligned(size ? size : 1, align);
	if (cls)
		return span_bin_pop(cls);
	if (size > PTRDIFF_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	return large_alloc(size, align > SPAN_PAGE ? align : SPAN_PAGE,
				 false);
}

int _span_posix_memalign(void **out, size_t align, size_t size)
{
	int saved = errno;
	void *p;

	if (!is_pow2(align) || align % sizeof(void *))
		return EINVAL;
	p = alloc_aligned(align, size);
	errno = saved;
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}
SPAN_API int span_posix_memalign(void **out, size_t align, size_t size)
	SPAN_ALIAS(_span_posix_memalign);

void *_span_aligned_alloc(size_t align, size_t size)
{
	if (!is_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return alloc_aligned(align, size);
}
SPAN_API void *span_aligned_alloc(size_t align, size_t size)
	SPAN_ALIAS(_span_aligned_alloc);

/* glibc's memalign: alignments that are not a power of two round up. */
void *_span_memalign(size_t align, size_t size)
{
	if (align > ((size_t)1 << (sizeof(size_t) * 8 - 2))) {
		errno = EINVAL;
		return NULL;
	}
	if (align < sizeof(void *))
		align = sizeof(void *);
	if (!is_pow2(align))
		align = (size_t)1 << (sizeof(size_t) * 8 -
				      __builtin_clzl(align));
	return alloc_aligned(align, size);
}
SPAN_API void *span_memalign(size_t align, size_t size)
	SPAN_ALIAS(_span_memalign);

void *_span_valloc(size_t size)
{
	return alloc_aligned(SPAN_PAGE, size);
}
SPAN_API void *span_valloc(size_t size) SPAN_ALIAS(_span_valloc);

void *_span_pvalloc(size_t size)
{
	if (size > PTRDIFF_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	size = size ? (size + SPAN_PAGE - 1) & ~(SPAN_PAGE - 1) : SPAN_PAGE;
	return alloc_aligned(SPAN_PAGE, size);
}
SPAN_API void *span_pvalloc(size_t size) SPAN_ALIAS(_span_pvalloc);

SPAN_API void span_trim(void)
{
	if (!span_load_acquire(&_span_ready))
		return;
	_span_cache_flush();
	_span_central_collect(true);
	_span_large_collect(true);
}
