/*
 * pages.c: the span layer of the public API (spanalloc.h): whole pages from
 * the page heap, for programs that manage their own objects.
 */
#include <errno.h>

#include "prim.h"
#include "spanalloc.h"

#define SPAN_API __attribute__((visibility("default")))

SPAN_API void *span_pages_alloc(size_t pages)
{
	if (_span_prim_init() == SPAN_BACKEND_NONE) {
		errno = ENOMEM;
		return NULL;
	}
	return _span_prim_alloc(pages, 0);
}

SPAN_API int span_pages_free(void *p, size_t pages)
{
	if (!p || !pages || _span_prim_backend() == SPAN_BACKEND_NONE) {
		errno = EINVAL;
		return -1;
	}
	if (_span_prim_free(p, pages) != 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

SPAN_API const char *span_backend(void)
{
	return _span_prim_backend_name(_span_prim_init());
}
