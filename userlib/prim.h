/*
 * prim.h: the contract between libspanalloc and where its pages come from.
 *
 * Two backends give the library whole-page spans:
 *   kernel  /dev/spanalloc: one arena mapped once, spans carved in it by the
 *           module (the page heap of README.md), frames zeroed and mapped
 *           before the call returns;
 *   mmap    plain anonymous mmap()/munmap(), for machines without the module.
 * SPANALLOC_BACKEND=kernel|mmap forces one; by default the kernel is used
 * when the device opens.
 *
 * Every function here is async-signal-unsafe but thread-safe, takes and
 * returns page-aligned addresses and whole pages, and never calls malloc.
 */
#ifndef SPANALLOC_PRIM_H
#define SPANALLOC_PRIM_H

#include <stdbool.h>
#include <stddef.h>

enum span_backend {
	SPAN_BACKEND_NONE = 0,
	SPAN_BACKEND_KERNEL,
	SPAN_BACKEND_MMAP,
};

/*
 * Pick and start the backend (idempotent, thread-safe). Returns the backend
 * in use, or SPAN_BACKEND_NONE if the forced one cannot start.
 */
enum span_backend _span_prim_init(void);

/* The backend in use, or SPAN_BACKEND_NONE before _span_prim_init(). */
enum span_backend _span_prim_backend(void);

/* "kernel", "mmap" or "none". */
const char *_span_prim_backend_name(enum span_backend backend);

/* Size of a page in bytes. */
size_t _span_prim_page_size(void);

/*
 * A new span of @pages zeroed pages tagged with @size_class (0 for large).
 * Returns its address, or NULL with errno set (ENOMEM on exhaustion).
 */
void *_span_prim_alloc(size_t pages, unsigned int size_class);

/* Give back a span from _span_prim_alloc(). Returns 0 or -1 with errno. */
int _span_prim_free(void *span, size_t pages);

/*
 * Grow or shrink a span from _span_prim_alloc() to @new_pages, moving its
 * pages (never copying) if it must. Returns the span's new address, or
 * NULL with errno (EOPNOTSUPP: the backend cannot, e.g. kernel).
 * Only for large spans (class 0). Pages added are zeroed.
 */
void *_span_prim_resize(void *span, size_t old_pages, size_t new_pages);

/* The arena of the kernel backend: is @p inside it? */
bool _span_prim_in_arena(const void *p);

/*
 * After fork(), in the child: the kernel backend's heap is a copy made by
 * the module; nothing to redo, but the child must not share the parent's
 * cached state. Called from the atfork child handler.
 */
void _span_prim_after_fork_child(void);

#endif /* SPANALLOC_PRIM_H */
