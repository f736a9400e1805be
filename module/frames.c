// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc frames: the set of physical frames behind one span of one heap,
 * and who owns each frame.
 *
 * A set is taken from the pool of the heap's memory cgroup (pool.c). Each
 * frame carries an owner count in page->private: the number of sets, one
 * per heap, that list it. A new frame has one owner. fork() gives the child
 * a set of its own listing the parent's frames, each now with one more
 * owner (spanalloc_frames_fork()); a fault on a frame with more than one
 * owner replaces it in the faulting heap's set by a copy
 * (spanalloc_frames_unshare()). The heap.c opening comment explains why
 * this keeps every writable entry on a frame that one heap owns. All owners
 * of a frame together hold one page reference; the last to let go gives
 * the frame back to its pool, which reuses it only once nothing else (a
 * page table, a pin) holds it.
 *
 * Owner counts change under frames_share_lock. A count of one read by an
 * owner is stable without it: only a fork() of that owner's heap raises it,
 * and that runs under the same heap lock the reader holds. So a process
 * that never forks never takes the lock.
 *
 * Frames held in sets count once each against the global limit
 * (max_frames), however many owners they have; pooled frames do not.
 *
 * A set may have holes: a span freed with SPANALLOC_FREE_KEEP_RANGE gets an
 * empty set, filled one frame at a time as its pages are touched.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "internal.h"

static DEFINE_SPINLOCK(frames_share_lock);	/* protects owner counts > 1 */

static unsigned long frame_owners(struct page *page)
{
	/* Pairs with the unlock of the last other owner's spanalloc_frame_disown(). */
	return smp_load_acquire(&page->private);
}

/**
 * spanalloc_frame_shared() - is @page owned by more than one heap?
 * @page:	a frame of a set the caller's heap owns.
 *
 * Context: caller holds its heap's lock. A false answer is stable.
 * Return: true if a fork() relative's set lists @page too.
 */
bool spanalloc_frame_shared(struct page *page)
{
	return frame_owners(page) > 1;
}

/* Drop one owner of @page; true if it was the last. */
static bool frame_disown(struct page *page)
{
	bool last;

	if (frame_owners(page) == 1) {
		set_page_private(page, 0);
		return true;
	}
	spin_lock(&frames_share_lock);
	set_page_private(page, page_private(page) - 1);
	last = !page_private(page);
	spin_unlock(&frames_share_lock);
	return last;
}

static int frames_reserve(unsigned long nr)
{
	unsigned long limit = spanalloc_max_frames();

	if (atomic_long_add_return(nr, &spanalloc_stats.frames) > limit) {
		atomic_long_sub(nr, &spanalloc_stats.frames);
		return -ENOMEM;
	}
	return 0;
}

/* Give back @nr frames that no set lists any more. */
static void frames_give(struct spanalloc_pool *pool, struct page **pages,
			unsigned long nr)
{
	spanalloc_pool_give(pool, pages, nr);
	atomic_long_sub(nr, &spanalloc_stats.frames);
}

/* Take @nr zeroed frames with one owner each into @pages. */
static int frames_take(struct spanalloc_pool *pool, struct page **pages,
		       unsigned long nr)
{
	unsigned long done, i;
	int err;

	err = frames_reserve(nr);
	if (err)
		return err;
	err = spanalloc_pool_take(pool, pages, nr, &done);
	if (err) {
		spanalloc_pool_give(pool, pages, done);
		/* A limit: the cgroup has no room for them in the pool. */
		spanalloc_pool_shed(pool, done);
		atomic_long_sub(nr, &spanalloc_stats.frames);
		return err;
	}
	for (i = 0; i < nr; i++)
		set_page_private(pages[i], 1);
	return 0;
}

/* An empty set of @nr holes in @pool. */
static struct spanalloc_frames *frames_new(struct spanalloc_pool *pool,
					   unsigned long nr)
{
	struct spanalloc_frames *frames;

	/* Sized by the caller: a failure is its -ENOMEM, not a kernel warning. */
	frames = kvzalloc(struct_size(frames, pages, nr),
			  SPANALLOC_GFP);
	if (!frames)
		return NULL;
	frames->nr = nr;
	frames->pool = pool;
	spanalloc_pool_get_ref(pool);
	return frames;
}

static void frames_disown_from(struct spanalloc_frames *frames,
			       unsigned long from);

/*
 * A set of @nr frames whose first @from are left as holes for the caller to
 * fill and the rest are taken, zeroed, from @pool.
 */
static struct spanalloc_frames *frames_make(struct spanalloc_pool *pool,
					    unsigned long nr,
					    unsigned long from)
{
	struct spanalloc_frames *frames;
	int err;

	frames = frames_new(pool, nr);
	if (!frames)
		return ERR_PTR(-ENOMEM);
	err = frames_take(pool, frames->pages + from, nr - from);
	if (err) {
		spanalloc_frames_forget(frames);
		return ERR_PTR(err);
	}
	frames->filled = nr - from;
	/* Only an ioctl makes a set: leave room for the faults after it. */
	err = spanalloc_pool_headroom(pool);
	if (err) {
		frames_disown_from(frames, from);
		spanalloc_pool_shed(pool, nr - from);
		spanalloc_frames_forget(frames);
		return ERR_PTR(err);
	}
	return frames;
}

/**
 * spanalloc_frames_alloc() - get @nr zeroed frames from @pool
 * @pool:	the pool of the caller's memory cgroup.
 * @nr:		number of frames, at least 1.
 *
 * Context: process context, may sleep. Stops early on a fatal signal.
 * Return: the set, or ERR_PTR(-ENOMEM) when a limit or memory runs out,
 * or ERR_PTR(-EINTR).
 */
struct spanalloc_frames *spanalloc_frames_alloc(struct spanalloc_pool *pool,
						unsigned long nr)
{
	return frames_make(pool, nr, 0);
}

/**
 * spanalloc_frames_alloc_empty() - a set of @nr holes, filled on demand
 * @pool:	the pool of the caller's memory cgroup.
 * @nr:		number of frames, at least 1.
 *
 * Context: process context, may sleep.
 * Return: the set, or ERR_PTR(-ENOMEM).
 */
struct spanalloc_frames *spanalloc_frames_alloc_empty(struct spanalloc_pool *pool,
						      unsigned long nr)
{
	struct spanalloc_frames *frames = frames_new(pool, nr);

	return frames ? frames : ERR_PTR(-ENOMEM);
}

/**
 * spanalloc_frames_fill() - put a zeroed frame in hole @i of @frames
 * @frames:	a set of the caller's heap.
 * @i:		index of a hole.
 *
 * Context: process context, may sleep; caller holds the heap lock.
 * Return: 0, -ENOMEM or -EINTR.
 */
int spanalloc_frames_fill(struct spanalloc_frames *frames, unsigned long i)
{
	int err;

	err = frames_take(frames->pool, &frames->pages[i], 1);
	if (!err)
		frames->filled++;
	return err;
}

/**
 * spanalloc_frames_unshare() - replace shared frame @i by a private copy
 * @frames:	a set of the caller's heap.
 * @i:		index of a frame that spanalloc_frame_shared() saw shared.
 *
 * Context: process context, may sleep; caller holds the heap lock and has
 * no page table entry of its own on the frame.
 * Return: 0, -ENOMEM or -EINTR; @frames is unchanged on error.
 */
int spanalloc_frames_unshare(struct spanalloc_frames *frames, unsigned long i)
{
	struct page *old = frames->pages[i], *copy;
	int err;

	err = frames_take(frames->pool, &copy, 1);
	if (err)
		return err;
	copy_highpage(copy, old);
	frames->pages[i] = copy;
	/* The relatives may all have gone meanwhile: then @old is ours to free. */
	if (frame_disown(old))
		frames_give(frames->pool, &old, 1);
	return 0;
}

/**
 * spanalloc_frames_fork() - the set of a fork() child's copy of a span
 * @frames:	the parent's set; the parent has no page table entry left on
 *		any of its frames.
 *
 * The child's set lists the same frames, each with one more owner, but
 * for a frame that may be pinned for DMA: that one stays the parent's
 * alone and the child gets a copy now, as anonymous memory does.
 *
 * Context: process context, may sleep; caller holds the parent's heap
 * lock and, through fork(), the parent's mmap lock for write.
 * Return: the new set, or ERR_PTR(-ENOMEM) or ERR_PTR(-EINTR).
 */
struct spanalloc_frames *spanalloc_frames_fork(struct spanalloc_frames *frames)
{
	struct spanalloc_frames *copy;
	unsigned long i, shared = 0;
	struct page *page;
	int err;

	copy = frames_new(frames->pool, frames->nr);
	if (!copy)
		return ERR_PTR(-ENOMEM);
	for (i = 0; i < frames->nr; i++) {
		page = frames->pages[i];
		if (!page)
			continue;
		if (folio_maybe_dma_pinned(page_folio(page))) {
			err = frames_take(frames->pool, &copy->pages[i], 1);
			if (err)
				goto out_free;
			copy_highpage(copy->pages[i], page);
			atomic_long_inc(&spanalloc_stats.fork_pinned);
			atomic_long_inc(&spanalloc_stats.cow_copies);
		} else {
			spin_lock(&frames_share_lock);
			set_page_private(page, page_private(page) + 1);
			spin_unlock(&frames_share_lock);
			copy->pages[i] = page;
			shared++;
		}
		copy->filled++;
		if (!(i % 512))
			cond_resched();
	}
	atomic_long_add(shared, &spanalloc_stats.fork_shared);
	return copy;

out_free:
	copy->nr = i;
	spanalloc_frames_free(copy);
	return ERR_PTR(err);
}

/**
 * spanalloc_frames_grow() - a longer set: @frames' frames, then @add new ones
 * @frames:	a set of the caller's heap.
 * @add:	zeroed frames to append, at least 1.
 *
 * For growing a span in place. The new set lists @frames' frames (holes
 * included) without taking them: until the caller settles which set the
 * span keeps, exactly one of spanalloc_frames_forget(@frames) (the new set
 * won) or spanalloc_frames_trim(new, @frames->nr) and then
 * spanalloc_frames_forget(new) (it lost) must follow.
 *
 * Context: process context, may sleep; caller holds the heap lock.
 * Return: the new set, or ERR_PTR(-ENOMEM) or ERR_PTR(-EINTR); @frames
 * is untouched either way.
 */
struct spanalloc_frames *spanalloc_frames_grow(struct spanalloc_frames *frames,
					       unsigned long add)
{
	struct spanalloc_frames *grown;

	grown = frames_make(frames->pool, frames->nr + add, frames->nr);
	if (IS_ERR(grown))
		return grown;
	memcpy(grown->pages, frames->pages,
	       frames->nr * sizeof(*frames->pages));
	grown->filled += frames->filled;
	return grown;
}

/* Let go of @frames->pages[@from..nr): each frame whose last owner it was goes back. */
static void frames_disown_from(struct spanalloc_frames *frames,
			       unsigned long from)
{
	unsigned long i, n = 0;
	struct page *page;

	for (i = from; i < frames->nr; i++) {
		page = frames->pages[i];
		if (!page)
			continue;
		frames->filled--;
		if (frame_disown(page))
			frames->pages[from + n++] = page;
	}
	frames_give(frames->pool, frames->pages + from, n);
	frames->nr = from;
}

/**
 * spanalloc_frames_trim() - let go of every frame past the first @nr
 * @frames:	a set of the caller's heap, no longer mapped past @nr.
 * @nr:		frames to keep, at most @frames->nr.
 *
 * Context: process context, may sleep; caller holds the heap lock.
 */
void spanalloc_frames_trim(struct spanalloc_frames *frames, unsigned long nr)
{
	frames_disown_from(frames, nr);
}

/**
 * spanalloc_frames_forget() - free a set whose frames another set now lists
 * @frames:	a set, see spanalloc_frames_grow(), or one holding no frame.
 *
 * Context: process context, may sleep.
 */
void spanalloc_frames_forget(struct spanalloc_frames *frames)
{
	struct spanalloc_pool *pool = frames->pool;

	kvfree(frames);
	spanalloc_pool_put(pool);
}

/**
 * spanalloc_frames_free() - let go of every frame of @frames, free the set
 * @frames:	a set of the caller's heap, no longer mapped by it.
 *
 * Frames that a fork() relative still owns stay with it.
 *
 * Context: process context, may sleep.
 */
void spanalloc_frames_free(struct spanalloc_frames *frames)
{
	frames_disown_from(frames, 0);
	spanalloc_frames_forget(frames);
}
