/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * spanalloc: a page heap in the kernel for a userspace malloc.
 *
 * The ABI of /dev/spanalloc, shared by the module, libspanalloc and the
 * selftests. Every struct is made of fixed-width fields with no holes;
 * reserved fields and unknown flag bits must be zero.
 */
#ifndef _UAPI_LINUX_SPANALLOC_H
#define _UAPI_LINUX_SPANALLOC_H

#include <linux/ioctl.h>
#include <linux/types.h>

#include "spanalloc_classes.h"

/**
 * DOC: spanalloc device
 *
 * Each process that opens /dev/spanalloc and maps it gets a *heap*: one
 * shared (MAP_SHARED), read-write mapping of the device at offset 0 is the
 * heap's *arena*, a fixed virtual range of at most
 * &spanalloc_info.arena_max_bytes. The module carves *spans* (runs of whole
 * pages) out of the arena, backs them with zeroed frames and installs their
 * page table entries before the ioctl returns, so touching a span never
 * faults. MAP_PRIVATE is refused (-EINVAL): the module, not the core mm,
 * does the arena's copy-on-write.
 *
 * A heap belongs to the address space (mm) that mapped the arena, and every
 * ioctl acts on the caller's heap through any open file of the device: a
 * process that closed its descriptor opens the device again and goes on. A
 * process that inherits a descriptor (exec, SCM_RIGHTS) has no heap until
 * it maps an arena itself; after fork() the child gets its own heap holding
 * a copy-on-write image of the parent's spans: no write of one ever
 * reaches the other. The module copies a frame when a relative that still
 * shares it touches the page; a frame pinned for DMA at fork() stays the
 * parent's and the child gets a copy at once.
 *
 * Errors: -ENOTTY for an unknown command, -EFAULT for an unreadable or
 * unwritable argument, -EINVAL for a bad field (including nonzero reserved
 * fields and unknown flags), -ENXIO when the caller has no arena, -ENOMEM
 * when a limit or the system runs out of frames or arena space. A request
 * that hands out frames also says -ENOMEM when, after reclaim, it would
 * leave the memory cgroup its heap charges (or an ancestor) less than the
 * module parameter memcg_headroom_kb (1 MiB) below its limit: that room is
 * for the page faults that follow the call (best effort: the cgroup's
 * other tasks may take it).
 */

/**
 * DOC: span view
 *
 * A second, read-only mapping of the device at offset
 * %SPANALLOC_VIEW_OFFSET shows the caller's span records: one __u64 entry
 * per arena page, in arena order, so that free() finds a pointer's span and
 * size class without a system call, and a heap overflow in the program can
 * never corrupt the records (the kernel keeps them; the view is a copy it
 * writes). Entry e: %SPANALLOC_VIEW_FIRST(e) is 0 for a page outside every
 * span, else 1 + the arena page index of its span's first page;
 * %SPANALLOC_VIEW_CLASS(e) is the span's size class. Map it with
 * PROT_READ, MAP_SHARED or MAP_PRIVATE, at most
 * &spanalloc_info.view_bytes long, after the arena. After fork() the
 * child's view shows the child's spans.
 */
#define SPANALLOC_VIEW_OFFSET		0x10000000000ULL	/* 1 TiB */
#define SPANALLOC_VIEW_CLASS(e)		((__u32)((e) & 0xff))
#define SPANALLOC_VIEW_FIRST(e)		((e) >> 8)

/*
 * Version of this ABI, reported by SPANALLOC_IOC_INFO. 2: the arena is a
 * MAP_SHARED mapping (1 was MAP_PRIVATE); heaps are found by mm.
 */
#define SPANALLOC_ABI_VERSION		2

/*
 * Largest size class tag a span can carry (0 means "no class": large); the
 * classes are the generated table of spanalloc_classes.h.
 */
#define SPANALLOC_MAX_SIZE_CLASS	(SPANALLOC_NUM_CLASSES - 1)

/**
 * struct spanalloc_info - what the module offers this caller
 * @abi_version:	%SPANALLOC_ABI_VERSION of the module.
 * @page_size:		size of a page (and of the span granule) in bytes.
 * @arena_max_bytes:	largest arena one mmap may create.
 * @heap_max_pages:	most frames one heap may hold at once.
 * @arena_start:	start of the caller's arena, 0 if it has none.
 * @arena_bytes:	size of the caller's arena, 0 if it has none.
 * @heap_pages:		frames the caller's heap holds now.
 * @heap_spans:		spans the caller's heap holds now.
 * @view_bytes:		size of the caller's span view (see "span view"), 0
 *			without an arena.
 * @reserved:		zero.
 *
 * Filled in by %SPANALLOC_IOC_INFO; nothing is read from userspace.
 */
struct spanalloc_info {
	__u32 abi_version;
	__u32 page_size;
	__u64 arena_max_bytes;
	__u64 heap_max_pages;
	__u64 arena_start;
	__u64 arena_bytes;
	__u64 heap_pages;
	__u64 heap_spans;
	__u64 view_bytes;
	__u64 reserved[2];
};

/* No flags are defined yet for SPANALLOC_IOC_SPAN_ALLOC. */
#define SPANALLOC_ALLOC_VALID_FLAGS	0U

/**
 * struct spanalloc_span_alloc - ask for one span
 * @pages:	in: length of the span in pages, at least 1.
 * @size_class:	in: size class tag recorded with the span, at most
 *		%SPANALLOC_MAX_SIZE_CLASS; 0 for a large (unclassed) span.
 * @flags:	in: zero or more of %SPANALLOC_ALLOC_VALID_FLAGS.
 * @addr:	out: address of the first byte of the span in the arena.
 * @reserved:	in: zero.
 */
struct spanalloc_span_alloc {
	__u64 pages;
	__u32 size_class;
	__u32 flags;
	__u64 addr;
	__u64 reserved[2];
};

/*
 * SPANALLOC_FREE_KEEP_RANGE: give the span's frames back but keep the span
 * (its range, class and record), like madvise(MADV_DONTNEED) on anonymous
 * memory: its pages read back as zeroes, each backed by a new frame on its
 * first touch, until the span is freed without this flag.
 */
#define SPANALLOC_FREE_KEEP_RANGE	0x1U
#define SPANALLOC_FREE_VALID_FLAGS	SPANALLOC_FREE_KEEP_RANGE

/**
 * struct spanalloc_span_free - give one span back
 * @addr:	in: the address %SPANALLOC_IOC_SPAN_ALLOC returned for the span.
 * @flags:	in: zero or more of %SPANALLOC_FREE_VALID_FLAGS.
 * @reserved0:	in: zero.
 * @reserved:	in: zero.
 *
 * The span's pages are unmapped from the caller and its range becomes free
 * arena space; touching it afterwards raises SIGBUS. With
 * %SPANALLOC_FREE_KEEP_RANGE only the frames go.
 */
struct spanalloc_span_free {
	__u64 addr;
	__u32 flags;
	__u32 reserved0;
	__u64 reserved[2];
};

/* No flags are defined yet for SPANALLOC_IOC_SPAN_RESIZE. */
#define SPANALLOC_RESIZE_VALID_FLAGS	0U

/**
 * struct spanalloc_span_resize - make a large span longer or shorter in place
 * @addr:	in: the address %SPANALLOC_IOC_SPAN_ALLOC returned for a live
 *		span of size class 0 (a large span).
 * @pages:	in: the span's new length in pages, at least 1.
 * @flags:	in: zero or more of %SPANALLOC_RESIZE_VALID_FLAGS.
 * @reserved0:	in: zero.
 * @reserved:	in: zero.
 *
 * The span keeps its address and its data. Growing takes the free arena
 * pages right after the span, backs them with zeroed frames and maps them;
 * shrinking unmaps the span's tail, whose pages become free arena space
 * (touching them raises SIGBUS) and whose frames go back to the pool. It
 * is realloc() for whole-page spans, without the copy, like mremap()
 * without %MREMAP_MAYMOVE.
 */
struct spanalloc_span_resize {
	__u64 addr;
	__u64 pages;
	__u32 flags;
	__u32 reserved0;
	__u64 reserved[2];
};

/* Most spans one batch ioctl handles. */
#define SPANALLOC_BATCH_MAX		512

/**
 * struct spanalloc_span_alloc_batch - ask for several spans of one kind
 * @pages:	in: length of each span in pages, at least 1.
 * @addrs:	in: user pointer to an array of @count __u64, where the
 *		spans' addresses are written.
 * @count:	in: spans wanted, 1 to %SPANALLOC_BATCH_MAX; out: spans made.
 * @size_class:	in: size class tag of every span, as in
 *		&struct spanalloc_span_alloc.
 * @flags:	in: zero or more of %SPANALLOC_ALLOC_VALID_FLAGS.
 * @reserved0:	in: zero.
 * @reserved:	in: zero.
 *
 * Makes as many of the spans as it can: when a limit or the arena runs out
 * after at least one span, the call succeeds with @count lowered.
 */
struct spanalloc_span_alloc_batch {
	__u64 pages;
	__u64 addrs;
	__u32 count;
	__u32 size_class;
	__u32 flags;
	__u32 reserved0;
	__u64 reserved[2];
};

/**
 * struct spanalloc_span_free_batch - give several spans back
 * @addrs:	in: user pointer to an array of @count __u64 span addresses.
 * @count:	in: spans to free, 1 to %SPANALLOC_BATCH_MAX; out: spans freed.
 * @flags:	in: zero or more of %SPANALLOC_FREE_VALID_FLAGS, for all.
 * @reserved:	in: zero.
 *
 * Frees in array order and stops at the first address that is not a live
 * span: the call then fails with -EINVAL and @count says how many went.
 */
struct spanalloc_span_free_batch {
	__u64 addrs;
	__u32 count;
	__u32 flags;
	__u64 reserved[2];
};

/**
 * struct spanalloc_class_stat - one size class of a heap
 * @spans:	live spans of the class.
 * @pages:	pages of those spans.
 */
struct spanalloc_class_stat {
	__u64 spans;
	__u64 pages;
};

/**
 * struct spanalloc_heap_stats - counters of the caller's heap
 * @classes:	in: user pointer to @nr_classes &struct spanalloc_class_stat,
 *		indexed by size class tag, or 0 for none.
 * @nr_classes:	in: entries at @classes, at most %SPANALLOC_NUM_CLASSES;
 *		out: %SPANALLOC_NUM_CLASSES.
 * @reserved0:	in: zero.
 * @spans:	out: live spans.
 * @pages:	out: pages of live spans.
 * @spans_made:	out: spans ever made.
 * @spans_freed: out: spans ever freed (with or without KEEP_RANGE).
 * @calls:	out: span ioctls served (batches count once).
 * @fault_refills: out: pages refilled by the fault handler.
 * @reserved:	in: zero.
 */
struct spanalloc_heap_stats {
	__u64 classes;
	__u32 nr_classes;
	__u32 reserved0;
	__u64 spans;
	__u64 pages;
	__u64 spans_made;
	__u64 spans_freed;
	__u64 calls;
	__u64 fault_refills;
	__u64 reserved[2];
};

#define SPANALLOC_IOC_MAGIC		'Z'

/**
 * DOC: SPANALLOC_IOC_INFO
 *
 * Takes a &struct spanalloc_info to fill in. Works before the arena is
 * mapped. Returns 0 or -EFAULT.
 */
#define SPANALLOC_IOC_INFO \
	_IOR(SPANALLOC_IOC_MAGIC, 0x40, struct spanalloc_info)

/**
 * DOC: SPANALLOC_IOC_SPAN_ALLOC
 *
 * Takes a &struct spanalloc_span_alloc. Finds room in the caller's arena,
 * backs it with zeroed frames, maps them read-write and returns the span's
 * address in @addr. Returns 0, -EFAULT, -EINVAL (bad field), -ENXIO (no
 * arena), -ENOMEM (heap or system limit, or no room in the arena) or
 * -EINTR (fatal signal while allocating).
 */
#define SPANALLOC_IOC_SPAN_ALLOC \
	_IOWR(SPANALLOC_IOC_MAGIC, 0x41, struct spanalloc_span_alloc)

/**
 * DOC: SPANALLOC_IOC_SPAN_FREE
 *
 * Takes a &struct spanalloc_span_free. Unmaps the span and returns its
 * frames. Returns 0, -EFAULT, -EINVAL (bad field, or @addr is not the start
 * of a live span of the caller's heap) or -ENXIO (no arena).
 */
#define SPANALLOC_IOC_SPAN_FREE \
	_IOW(SPANALLOC_IOC_MAGIC, 0x42, struct spanalloc_span_free)

/**
 * DOC: SPANALLOC_IOC_SPAN_ALLOC_BATCH
 *
 * Takes a &struct spanalloc_span_alloc_batch: up to @count spans in one
 * call, all their PTEs installed. Returns 0 (with @count spans made, at
 * least 1), -EFAULT (no span is left made), -EINVAL, -ENXIO, -ENOMEM (not
 * even one span) or -EINTR.
 */
#define SPANALLOC_IOC_SPAN_ALLOC_BATCH \
	_IOWR(SPANALLOC_IOC_MAGIC, 0x43, struct spanalloc_span_alloc_batch)

/**
 * DOC: SPANALLOC_IOC_SPAN_FREE_BATCH
 *
 * Takes a &struct spanalloc_span_free_batch. Returns 0, -EFAULT, -EINVAL
 * (a bad field, or a bad address: @count tells how many were freed) or
 * -ENXIO.
 */
#define SPANALLOC_IOC_SPAN_FREE_BATCH \
	_IOWR(SPANALLOC_IOC_MAGIC, 0x44, struct spanalloc_span_free_batch)

/**
 * DOC: SPANALLOC_IOC_HEAP_STATS
 *
 * Takes a &struct spanalloc_heap_stats and fills in the caller's heap's
 * counters and, if asked, its per-class array. Returns 0, -EFAULT, -EINVAL
 * or -ENXIO (no arena). The counters of every heap in the system are in
 * debugfs, spanalloc/heaps (README.md, "Observing").
 */
#define SPANALLOC_IOC_HEAP_STATS \
	_IOWR(SPANALLOC_IOC_MAGIC, 0x45, struct spanalloc_heap_stats)

/**
 * DOC: SPANALLOC_IOC_SPAN_RESIZE
 *
 * Takes a &struct spanalloc_span_resize. Returns 0, -EFAULT, -EINVAL (bad
 * field, @addr is not the start of a live span of the caller's heap, or the
 * span has a size class), -ENXIO (no arena), -ENOMEM (the pages after the
 * span are not all free arena space, or a heap, system or memory cgroup
 * limit) or -EINTR. A fork() relative's copy of the span is not
 * affected. On any error
 * the span is as it was. Modules older than this command answer -ENOTTY.
 */
#define SPANALLOC_IOC_SPAN_RESIZE \
	_IOW(SPANALLOC_IOC_MAGIC, 0x46, struct spanalloc_span_resize)

#endif /* _UAPI_LINUX_SPANALLOC_H */
