// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc frames: the set of physical frames behind one span.
 *
 * A set is taken from the pool of the heap's memory cgroup (pool.c) and goes
 * back to it when the last heap using it lets go: a span and its fork()
 * copies share one set, counted by its kref. The frames held in sets count
 * against the global limit (max_frames); pooled frames do not.
 *
 * A set may have holes: a span freed with SPANALLOC_FREE_KEEP_RANGE gets an
 * empty set, filled one frame at a time as its pages are touched.
 */
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>

#include "internal.h"

static int frames_reserve(unsigned long nr)
{
	unsigned long limit = spanalloc_max_frames();

	if (atomic_long_add_return(nr, &spanalloc_stats.frames) > limit) {
		atomic_long_sub(nr, &spanalloc_stats.frames);
		return -ENOMEM;
	}
	return 0;
}

/*
 * A set of @nr frames whose first @from are left as holes for the caller to
 * fill and the rest are taken, zeroed, from @pool.
 */
static struct spanalloc_frames *frames_make(struct spanalloc_pool *pool,
					    unsigned long nr,
					    unsigned long from)
{
	struct spanalloc_frames *frames;
	unsigned long done;
	int err;

	err = frames_reserve(nr - from);
	if (err)
		return ERR_PTR(err);
	frames = kvzalloc(struct_size(frames, pages, nr),
			  GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL);
	if (!frames) {
		err = -ENOMEM;
		goto out_unreserve;
	}
	err = spanalloc_pool_take(pool, frames->pages + from, nr - from,
				  &done);
	if (err)
		goto out_give_back;
	kref_init(&frames->kref);
	frames->nr = nr;
	frames->filled = nr - from;
	frames->pool = pool;
	spanalloc_pool_get_ref(pool);
	return frames;

out_give_back:
	spanalloc_pool_give(pool, frames->pages + from, done);
	kvfree(frames);
out_unreserve:
	atomic_long_sub(nr - from, &spanalloc_stats.frames);
	return ERR_PTR(err);
}

/**
 * spanalloc_frames_alloc() - get @nr zeroed frames from @pool
 * @pool:	the pool of the caller's memory cgroup.
 * @nr:		number of frames, at least 1.
 *
 * Context: process context, may sleep. Stops early on a fatal signal.
 * Return: the frames with one reference, or ERR_PTR(-ENOMEM) when a limit
 * or memory runs out, or ERR_PTR(-EINTR).
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
 * Return: the set with one reference, or ERR_PTR(-ENOMEM).
 */
struct spanalloc_frames *spanalloc_frames_alloc_empty(struct spanalloc_pool *pool,
						      unsigned long nr)
{
	struct spanalloc_frames *frames;

	frames = kvzalloc(struct_size(frames, pages, nr), GFP_KERNEL_ACCOUNT);
	if (!frames)
		return ERR_PTR(-ENOMEM);
	kref_init(&frames->kref);
	frames->nr = nr;
	frames->pool = pool;
	spanalloc_pool_get_ref(pool);
	return frames;
}

/**
 * spanalloc_frames_fill() - put a zeroed frame in hole @i of @frames
 * @frames:	a set only the caller's heap uses.
 * @i:		index of a hole.
 *
 * Context: process context, may sleep; caller holds the heap lock.
 * Return: 0, -ENOMEM or -EINTR.
 */
int spanalloc_frames_fill(struct spanalloc_frames *frames, unsigned long i)
{
	unsigned long done;
	int err;

	err = frames_reserve(1);
	if (err)
		return err;
	err = spanalloc_pool_take(frames->pool, &frames->pages[i], 1, &done);
	if (err) {
		atomic_long_sub(1, &spanalloc_stats.frames);
		return err;
	}
	frames->filled++;
	return 0;
}

/**
 * spanalloc_frames_grow() - a longer set: @frames' frames, then @add new ones
 * @frames:	a set only the caller's heap uses.
 * @add:	zeroed frames to append, at least 1.
 *
 * For growing a span in place. The new set lists @frames' frames (holes
 * included) without taking them: until the caller settles which set the
 * span keeps, exactly one of spanalloc_frames_forget(@frames) (the new set
 * won) or spanalloc_frames_trim(new, @frames->nr) and then
 * spanalloc_frames_forget(new) (it lost) must follow.
 *
 * Context: process context, may sleep; caller holds the heap lock.
 * Return: the new set with one reference, or ERR_PTR(-ENOMEM) or
 * ERR_PTR(-EINTR); @frames is untouched either way.
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

/**
 * spanalloc_frames_trim() - give back every frame past the first @nr
 * @frames:	a set only the caller's heap uses, no longer mapped past @nr.
 * @nr:		frames to keep, at most @frames->nr.
 *
 * Context: process context, may sleep; caller holds the heap lock.
 */
void spanalloc_frames_trim(struct spanalloc_frames *frames, unsigned long nr)
{
	unsigned long i, n = 0;

	for (i = nr; i < frames->nr; i++)
		if (frames->pages[i])
			frames->pages[nr + n++] = frames->pages[i];
	spanalloc_pool_give(frames->pool, frames->pages + nr, n);
	atomic_long_sub(n, &spanalloc_stats.frames);
	frames->filled -= n;
	frames->nr = nr;
}

/**
 * spanalloc_frames_forget() - free a set whose frames another set now lists
 * @frames:	a set with one reference, see spanalloc_frames_grow().
 *
 * Context: process context, may sleep.
 */
void spanalloc_frames_forget(struct spanalloc_frames *frames)
{
	struct spanalloc_pool *pool = frames->pool;

	WARN_ON_ONCE(kref_read(&frames->kref) != 1);
	kvfree(frames);
	spanalloc_pool_put(pool);
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
	struct spanalloc_pool *pool = frames->pool;
	unsigned long i, n = 0;

	if (frames->filled != frames->nr) {
		/* Close the holes: the filled frames go first. */
		for (i = 0; i < frames->nr; i++)
			if (frames->pages[i])
				frames->pages[n++] = frames->pages[i];
	}
	spanalloc_pool_give(pool, frames->pages, frames->filled);
	atomic_long_sub(frames->filled, &spanalloc_stats.frames);
	kvfree(frames);
	spanalloc_pool_put(pool);
}

/**
 * spanalloc_frames_put() - drop a reference; the last one returns the frames
 * @frames:	the frames.
 *
 * Context: process context, may sleep.
 */
void spanalloc_frames_put(struct spanalloc_frames *frames)
{
	kref_put(&frames->kref, frames_release);
}
