// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc frames: the physical pages behind spans.
 *
 * Frames come from the buddy allocator in the largest chunks it gives
 * cheaply: an order as high as the span needs, up to 2 MiB (order 9), tried
 * without retries or warnings, falling back one order at a time down to
 * single pages. Each chunk is split into order-0 pages so that every frame
 * can be mapped, copied on write and released on its own. Frames are zeroed
 * by the buddy allocator (__GFP_ZERO) and charged to the memory cgroup of
 * the process asking (__GFP_ACCOUNT): no byte of one process reaches
 * another, and a cgroup limit makes SPAN_ALLOC fail with -ENOMEM.
 *
 * A frame is given back with put_page(): if a page table (a fork() child
 * that has not written to it yet) or a pinned I/O still holds it, it stays
 * alive until they let go, and is never handed out again by us.
 */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "internal.h"

#ifndef MAX_PAGE_ORDER
/* Before 6.8 the largest order was MAX_ORDER - 1. */
#define MAX_PAGE_ORDER		(MAX_ORDER - 1)
#endif

/* Largest chunk asked of the buddy allocator: 2 MiB on x86-64. */
#define SPANALLOC_CHUNK_ORDER	min(9, MAX_PAGE_ORDER)

static int frames_reserve(unsigned long nr)
{
	unsigned long limit = spanalloc_max_frames();

	if (atomic_long_add_return(nr, &spanalloc_stats.frames) > limit) {
		atomic_long_sub(nr, &spanalloc_stats.frames);
		return -ENOMEM;
	}
	return 0;
}

static void frames_unreserve(unsigned long nr)
{
	atomic_long_sub(nr, &spanalloc_stats.frames);
}

static int frames_fill(struct spanalloc_frames *frames, unsigned long nr)
{
	const gfp_t gfp = GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT;
	unsigned int order = SPANALLOC_CHUNK_ORDER;
	unsigned long done = 0, i;
	struct page *page;

	while (done < nr) {
		if (fatal_signal_pending(current))
			return -EINTR;
		while (order && (1UL << order) > nr - done)
			order--;
		page = alloc_pages(order ? gfp | __GFP_NORETRY | __GFP_NOWARN :
				   gfp, order);
		if (!page) {
			if (!order)
				return -ENOMEM;
			order--;
			continue;
		}
		if (order)
			split_page(page, order);
		for (i = 0; i < (1UL << order); i++)
			frames->pages[done++] = page + i;
		frames->nr = done;
		cond_resched();
	}
	return 0;
}

static void frames_free_pages(struct spanalloc_frames *frames)
{
	unsigned long i;

	for (i = 0; i < frames->nr; i++)
		put_page(frames->pages[i]);
	atomic_long_add(frames->nr, &spanalloc_stats.frames_freed);
	frames_unreserve(frames->nr);
}

/**
 * spanalloc_frames_alloc() - get @nr zeroed frames, charged to current
 * @nr:		number of frames, at least 1.
 *
 * Context: process context, may sleep. Stops early on a fatal signal.
 * Return: the frames with one reference, or ERR_PTR(-ENOMEM) when a limit
 * or memory runs out, or ERR_PTR(-EINTR).
 */
struct spanalloc_frames *spanalloc_frames_alloc(unsigned long nr)
{
	struct spanalloc_frames *frames;
	int err;

	err = frames_reserve(nr);
	if (err)
		return ERR_PTR(err);
	frames = kvzalloc(struct_size(frames, pages, nr), GFP_KERNEL_ACCOUNT);
	if (!frames) {
		frames_unreserve(nr);
		return ERR_PTR(-ENOMEM);
	}
	kref_init(&frames->kref);

	err = frames_fill(frames, nr);
	atomic_long_add(frames->nr, &spanalloc_stats.frames_alloced);
	if (err) {
		/* Give back what was filled and the reservation of the rest. */
		frames_unreserve(nr - frames->nr);
		frames_free_pages(frames);
		kvfree(frames);
		return ERR_PTR(err);
	}
	return frames;
}

/**
 * spanalloc_frames_get() - take another reference on @frames
 * @frames:	frames with a reference held by the caller.
 */
void spanalloc_frames_get(struct spanalloc_frames *frames)
{
	kref_get(&frames->kref);
}

static void frames_release(struct kref *kref)
{
	struct spanalloc_frames *frames =
		container_of(kref, struct spanalloc_frames, kref);

	frames_free_pages(frames);
	kvfree(frames);
}

/**
 * spanalloc_frames_put() - drop a reference; the last one frees the frames
 * @frames:	the frames.
 *
 * Context: process context, may sleep.
 */
void spanalloc_frames_put(struct spanalloc_frames *frames)
{
	kref_put(&frames->kref, frames_release);
}
