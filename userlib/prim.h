/*
 * prim.h: the contract between libspanalloc and where its pages come from.
 *
 * Two backends give the library whole-page spans:
 *   kernel  /dev/spanalloc: one arena mapped once, spans carved in it by the
 *           module (the page heap of README.md), frames zeroed and mapped
 *           before the call returns;
 *   mmap    plain anonymous mmap()/munmap(), for machines without the module
 *           (the page heap reserves its own regions, region.c; this is
 *           span_pages_alloc()'s).
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
#include <stdint.h>

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
 * Give back @n spans from _span_prim_alloc() (@spans[i] of @pages[i]
 * pages), in as few system calls as the backend can (the kernel: one
 * SPANALLOC_IOC_SPAN_FREE_BATCH per SPANALLOC_BATCH_MAX spans). Returns
 * how many could not be given back (0 when all went), and lists them in
 * @failed (room for @n), in the order of @spans: the caller keeps them.
 */
size_t _span_prim_free_batch(void *const *spans, const size_t *pages,
			     size_t n, void **failed);

/*
 * Small spans (size_class > 0) on the kernel backend come from a stash per
 * size class, refilled by one SPANALLOC_IOC_SPAN_ALLOC_BATCH of a few spans
 * (1 at first, doubling while the class keeps asking, up to 8 spans or 64
 * pages). Stashed spans are backend memory held by the process: prim counts
 * them in _span_stats_mapped() until _span_prim_alloc() hands them out.
 *
 * Give back the stashed spans of classes that took none for @idle_ms
 * milliseconds (every stash if @idle_ms is 0); the class starts over with
 * batches of 1. Takes each stash's lock, so call it with no lock held.
 */
void _span_prim_stash_trim(uint64_t idle_ms);

/* Counters of the backend, for span_stats(). */
struct span_prim_counters {
	uint64_t calls;		/* system calls for spans (batches count once) */
	uint64_t stashed_spans;	/* spans in the stashes now */
	uint64_t stashed_bytes;
	uint64_t reopens;	/* kernel: the device opened again (the
				   program closed or replaced our fd) */
};
void _span_prim_counters(struct span_prim_counters *pc);

/*
 * fork(): the prepare handler takes every stash lock, then the lock that
 * guards reopening the device (after every other lock of the library; a
 * stash lock is held only while taking the device lock, which is a leaf),
 * the parent handler releases them; the child re-initialises them in
 * _span_prim_after_fork_child(). The child's heap is the module's
 * copy of the parent's, stashed spans included, so the stashes stay valid.
 */
void _span_prim_lock_all(void);
void _span_prim_unlock_all(void);

/*
 * Grow or shrink a kernel span from _span_prim_alloc() to @new_pages in
 * place (SPANALLOC_IOC_SPAN_RESIZE): returns @span, or NULL with errno
 * ENOMEM when the pages after the span are taken or a limit is reached,
 * EBUSY when a fork() relative shares the span's frames, EOPNOTSUPP when
 * the module predates the command or the backend is not the kernel (the
 * page heap resizes anonymous spans itself). Only for large spans (class
 * 0). Pages added are zeroed; on failure the span is as it was.
 */
void *_span_prim_resize(void *span, size_t old_pages, size_t new_pages);

/*
 * After fork(), in the child: the kernel backend's heap is a copy made by
 * the module; nothing to redo but re-initialising the stash locks (taken
 * by _span_prim_lock_all() in the prepare handler). Called from the atfork
 * child handler.
 */
void _span_prim_after_fork_child(void);

/*
 * version.c: the module answered SPANALLOC_IOC_INFO with @module_abi, not
 * SPANALLOC_ABI_VERSION: one line on stderr, once.
 */
void _span_abi_mismatch(unsigned int module_abi);

#endif /* SPANALLOC_PRIM_H */
