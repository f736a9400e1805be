// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc spans: the records of a heap's spans, the span ioctls and the
 * arena's fault handler.
 *
 * SPAN_ALLOC takes the best-fitting free run of the arena, fills it with
 * fresh zeroed frames and installs all their PTEs in batches with
 * vm_insert_pages() before returning, so the program never takes a fault
 * on a new span. SPAN_FREE removes the span's PTEs in the caller's address
 * space only, gives the range back and lets go of the heap's frames (a
 * fork() relative keeps those it owns too). The fault handler maps the
 * heap's own frame, copying it first if a relative still owns it (see the
 * mapping model in heap.c).
 *
 * Records live in a maple tree indexed by arena page: one entry covers all
 * the pages of its span, so "which span holds this page" is one lookup.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "internal.h"

/* PTEs installed per vm_insert_pages() call: one page table's worth. */
#define SPANALLOC_INSERT_BATCH	512UL

static unsigned long span_addr(struct spanalloc_heap *heap,
			       struct spanalloc_span *span)
{
	return heap->arena_start + (span->first << PAGE_SHIFT);
}

/*
 * Count @pages more pages for @heap against the heap's and its user's
 * limits (either may have been lowered below what is held already).
 */
static int span_charge(struct spanalloc_heap *heap, unsigned long pages)
{
	unsigned long limit = spanalloc_heap_max_pages();

	if (pages > limit || heap->nr_pages > limit - pages)
		return -ENOMEM;
	if (heap->unlimited) {
		spanalloc_user_add(heap->user, pages);
		return 0;
	}
	return spanalloc_user_charge(heap->user, pages);
}

static void span_uncharge(struct spanalloc_heap *heap, unsigned long pages)
{
	spanalloc_user_add(heap->user, -(long)pages);
}

/**
 * spanalloc_span_release() - drop a span's record and let go of its frames
 * @heap:	the heap the span belonged to.
 * @span:	the span, already out of @heap->spans and unmapped.
 *
 * Context: caller holds @heap->lock.
 */
void spanalloc_span_release(struct spanalloc_heap *heap,
			    struct spanalloc_span *span)
{
	lockdep_assert_held(&heap->lock);
	span_uncharge(heap, span->pages);
	heap->nr_pages -= span->pages;
	heap->nr_spans--;
	heap->class_spans[span->size_class]--;
	heap->class_pages[span->size_class] -= span->pages;
	atomic_long_dec(&spanalloc_stats.spans);
	spanalloc_frames_free(span->frames);
	kfree(span->spare);
	kfree(span);
}

static struct spanalloc_span *span_new(unsigned long pages, u32 size_class)
{
	struct spanalloc_span *span;

	span = kzalloc(sizeof(*span), SPANALLOC_GFP);
	if (!span)
		return NULL;
	span->spare = kmalloc(sizeof(*span->spare), SPANALLOC_GFP);
	if (!span->spare) {
		kfree(span);
		return NULL;
	}
	span->pages = pages;
	span->size_class = size_class;
	return span;
}

static int span_record(struct spanalloc_heap *heap,
		       struct spanalloc_span *span)
{
	int err;

	err = mtree_insert_range(&heap->spans, span->first,
				 span->first + span->pages - 1, span,
				 SPANALLOC_GFP);
	if (err)
		return err;
	heap->nr_pages += span->pages;
	heap->nr_spans++;
	heap->class_spans[span->size_class]++;
	heap->class_pages[span->size_class] += span->pages;
	atomic_long_inc(&spanalloc_stats.spans);
	spanalloc_view_set(heap, span);
	return 0;
}

/* Map @nr frames at @addr in @vma, writable; all or nothing. */
static int span_map(struct vm_area_struct *vma, unsigned long addr,
		    struct page **pages, unsigned long nr)
{
	unsigned long done = 0, num;
	int err;

	while (done < nr) {
		num = min(nr - done, SPANALLOC_INSERT_BATCH);
		err = vm_insert_pages(vma, addr + (done << PAGE_SHIFT),
				      pages + done, &num);
		/* On return @num is the number of pages NOT inserted. */
		done += min(nr - done, SPANALLOC_INSERT_BATCH) - num;
		if (err)
			goto out_unmap;
		if (fatal_signal_pending(current)) {
			err = -EINTR;
			goto out_unmap;
		}
	}
	return 0;

out_unmap:
	if (done)
		spanalloc_zap(vma, addr, done << PAGE_SHIFT);
	return err == -EBUSY ? -EINVAL : err;
}

static int span_alloc_locked(struct spanalloc_heap *heap,
			     struct vm_area_struct *vma,
			     struct spanalloc_span_alloc *req,
			     unsigned long *serial)
{
	struct spanalloc_span *span;
	int err;

	if (heap->dead)
		return -ENXIO;
	err = span_charge(heap, req->pages);
	if (err)
		return err;
	span = span_new(req->pages, req->size_class);
	if (!span) {
		err = -ENOMEM;
		goto out_uncharge;
	}
	err = spanalloc_range_alloc(&heap->free, req->pages, &span->first);
	if (err)
		goto out_free_span;
	span->frames = spanalloc_frames_alloc(heap->pool, req->pages);
	if (IS_ERR(span->frames)) {
		err = PTR_ERR(span->frames);
		goto out_free_range;
	}
	err = span_map(vma, span_addr(heap, span), span->frames->pages,
		       span->pages);
	if (err)
		goto out_put_frames;
	err = span_record(heap, span);
	if (err)
		goto out_unmap;

	req->addr = span_addr(heap, span);
	span->serial = ++heap->spans_made;
	*serial = span->serial;
	return 0;

out_unmap:
	spanalloc_zap(vma, span_addr(heap, span), span->pages << PAGE_SHIFT);
out_put_frames:
	spanalloc_frames_free(span->frames);
out_free_range:
	spanalloc_range_free(&heap->free, span->first, span->pages,
			     span->spare);
	span->spare = NULL;
out_free_span:
	kfree(span->spare);
	kfree(span);
out_uncharge:
	span_uncharge(heap, req->pages);
	return err;
}

/* The live span starting at @addr, or NULL. */
static struct spanalloc_span *span_at(struct spanalloc_heap *heap,
				      unsigned long addr)
{
	struct spanalloc_span *span;
	unsigned long index;

	if (addr < heap->arena_start || !PAGE_ALIGNED(addr))
		return NULL;
	index = (addr - heap->arena_start) >> PAGE_SHIFT;
	if (index >= heap->arena_pages)
		return NULL;
	span = mtree_load(&heap->spans, index);
	return span && span->first == index ? span : NULL;
}

static int span_free_locked(struct spanalloc_heap *heap,
			    struct vm_area_struct *vma, unsigned long addr,
			    u32 flags)
{
	struct spanalloc_frames *empty;
	struct spanalloc_span *span;
	int err;

	if (heap->dead)
		return -ENXIO;
	span = span_at(heap, addr);
	if (!span)
		return -EINVAL;

	if (flags & SPANALLOC_FREE_KEEP_RANGE) {
		empty = spanalloc_frames_alloc_empty(heap->pool, span->pages);
		if (IS_ERR(empty))
			return PTR_ERR(empty);
		spanalloc_zap(vma, addr, span->pages << PAGE_SHIFT);
		spanalloc_frames_free(span->frames);
		span->frames = empty;
		heap->spans_freed++;
		return 0;
	}
	/*
	 * The one step that can fail goes first: an erase that rebalances
	 * the tree needs memory, and a record left in the tree must not be
	 * freed.
	 */
	err = mtree_store_range(&heap->spans, span->first,
				span->first + span->pages - 1, NULL,
				SPANALLOC_GFP);
	if (err)
		return err;
	spanalloc_zap(vma, addr, span->pages << PAGE_SHIFT);
	spanalloc_view_clear(heap, span);
	spanalloc_range_free(&heap->free, span->first, span->pages,
			     span->spare);
	span->spare = NULL;
	spanalloc_span_release(heap, span);
	heap->spans_freed++;
	return 0;
}

/* Take the @add free pages after @span and map fresh frames there. */
static int span_grow(struct spanalloc_heap *heap, struct vm_area_struct *vma,
		     struct spanalloc_span *span, unsigned long add)
{
	unsigned long tail = span->first + span->pages;
	unsigned long addr = span_addr(heap, span) + (span->pages << PAGE_SHIFT);
	struct spanalloc_frames *grown;
	struct spanalloc_range *spare;
	int err;

	err = span_charge(heap, add);
	if (err)
		return err;
	/* For giving the pages back if a later step fails. */
	spare = kmalloc(sizeof(*spare), SPANALLOC_GFP);
	if (!spare) {
		err = -ENOMEM;
		goto out_uncharge;
	}
	err = spanalloc_range_take(&heap->free, tail, add);
	if (err)
		goto out_free_spare;
	grown = spanalloc_frames_grow(span->frames, add);
	if (IS_ERR(grown)) {
		err = PTR_ERR(grown);
		goto out_free_range;
	}
	err = span_map(vma, addr, grown->pages + span->pages, add);
	if (err)
		goto out_drop_grown;
	err = mtree_store_range(&heap->spans, span->first, tail + add - 1,
				span, SPANALLOC_GFP);
	if (err)
		goto out_unmap;

	kfree(spare);
	spanalloc_frames_forget(span->frames);
	span->frames = grown;
	span->pages += add;
	heap->nr_pages += add;
	heap->class_pages[span->size_class] += add;
	spanalloc_view_resize(heap, span, span->pages - add);
	return 0;

out_unmap:
	spanalloc_zap(vma, addr, add << PAGE_SHIFT);
out_drop_grown:
	spanalloc_frames_trim(grown, span->pages);
	spanalloc_frames_forget(grown);
out_free_range:
	spanalloc_range_free(&heap->free, tail, add, spare);
	goto out_uncharge;
out_free_spare:
	kfree(spare);
out_uncharge:
	span_uncharge(heap, add);
	return err;
}

/* Cut @span to its first @pages pages; the tail becomes free space. */
static int span_shrink(struct spanalloc_heap *heap, struct vm_area_struct *vma,
		       struct spanalloc_span *span, unsigned long pages)
{
	unsigned long tail = span->first + pages, cut = span->pages - pages;
	struct spanalloc_range *spare;
	int err;

	spare = kmalloc(sizeof(*spare), SPANALLOC_GFP);
	if (!spare)
		return -ENOMEM;
	/* The one step that can fail goes first. */
	err = mtree_store_range(&heap->spans, tail, tail + cut - 1, NULL,
				SPANALLOC_GFP);
	if (err) {
		kfree(spare);
		return err;
	}
	span->pages = pages;
	spanalloc_view_resize(heap, span, pages + cut);
	spanalloc_zap(vma, span_addr(heap, span) + (pages << PAGE_SHIFT),
		      cut << PAGE_SHIFT);
	spanalloc_frames_trim(span->frames, pages);
	spanalloc_range_free(&heap->free, tail, cut, spare);
	span_uncharge(heap, cut);
	heap->nr_pages -= cut;
	heap->class_pages[span->size_class] -= cut;
	return 0;
}

static int span_resize_locked(struct spanalloc_heap *heap,
			      struct vm_area_struct *vma, unsigned long addr,
			      unsigned long pages)
{
	struct spanalloc_span *span;

	if (heap->dead)
		return -ENXIO;
	span = span_at(heap, addr);
	if (!span || span->size_class)
		return -EINVAL;
	if (pages == span->pages)
		return 0;
	/*
	 * A fork() relative has its own record and set: it keeps the frames
	 * it owns whatever this one becomes.
	 */
	if (pages > span->pages)
		return span_grow(heap, vma, span, pages - span->pages);
	return span_shrink(heap, vma, span, pages);
}

/* What one span ioctl asks; the ops below run it under span_call(). */
struct span_call_args {
	u64 pages;
	u32 size_class;
	u32 flags;
	u32 count;
	u64 *addrs;
	unsigned long *serials;
};

/*
 * Run @op on current's heap with the mmap lock held for read and the heap
 * lock held.
 */
static int span_call(int (*op)(struct spanalloc_heap *heap,
			       struct vm_area_struct *vma,
			       struct span_call_args *args),
		     struct span_call_args *args)
{
	struct spanalloc_heap *heap;
	struct vm_area_struct *vma;
	int err;

	heap = spanalloc_heap_find(current->mm);
	if (!heap)
		return -ENXIO;
	if (mmap_read_lock_killable(heap->mm)) {
		err = -EINTR;
		goto out_put;
	}
	vma = spanalloc_heap_vma(heap);
	if (vma) {
		mutex_lock(&heap->lock);
		heap->calls++;
		err = op(heap, vma, args);
		mutex_unlock(&heap->lock);
	} else {
		err = -ENXIO;
	}
	mmap_read_unlock(heap->mm);
out_put:
	spanalloc_heap_put(heap);
	return err;
}

/* Make up to @args->count spans; @args->count becomes how many were made. */
static int span_alloc_op(struct spanalloc_heap *heap,
			 struct vm_area_struct *vma, struct span_call_args *args)
{
	struct spanalloc_span_alloc req = {
		.pages = args->pages,
		.size_class = args->size_class,
	};
	u32 made;
	int err = 0;

	for (made = 0; made < args->count; made++) {
		err = span_alloc_locked(heap, vma, &req, &args->serials[made]);
		if (err)
			break;
		args->addrs[made] = req.addr;
	}
	args->count = made;
	return made ? 0 : err;
}

/* Free @args->count spans in order; @args->count becomes how many went. */
static int span_free_op(struct spanalloc_heap *heap,
			struct vm_area_struct *vma, struct span_call_args *args)
{
	u32 done;
	int err = 0;

	for (done = 0; done < args->count; done++) {
		err = span_free_locked(heap, vma, args->addrs[done],
				       args->flags);
		if (err)
			break;
	}
	args->count = done;
	return err;
}

static int span_resize_op(struct spanalloc_heap *heap,
			  struct vm_area_struct *vma,
			  struct span_call_args *args)
{
	return span_resize_locked(heap, vma, args->addrs[0], args->pages);
}

/*
 * Free the spans of @args that are still the ones made: the serial tells a
 * span from one another thread made at the same address after freeing
 * ours (it may have learnt the address from a partial copy_to_user()).
 */
static int span_unmake_op(struct spanalloc_heap *heap,
			  struct vm_area_struct *vma,
			  struct span_call_args *args)
{
	struct spanalloc_span *span;
	u32 i;

	for (i = 0; i < args->count; i++) {
		span = span_at(heap, args->addrs[i]);
		if (span && span->serial == args->serials[i])
			span_free_locked(heap, vma, args->addrs[i], 0);
	}
	return 0;
}

/* Take back spans made by a call whose results could not reach the user. */
static void span_unmake(u64 *addrs, unsigned long *serials, u32 count)
{
	struct span_call_args args = {
		.count = count, .addrs = addrs, .serials = serials,
	};

	span_call(span_unmake_op, &args);
}

/**
 * spanalloc_span_alloc_ioctl() - SPANALLOC_IOC_SPAN_ALLOC
 * @arg:	user pointer to a &struct spanalloc_span_alloc.
 *
 * Context: process context; takes the mmap lock and the heap lock.
 * Return: 0 or a negative errno, as uapi/spanalloc.h documents.
 */
long spanalloc_span_alloc_ioctl(void __user *arg)
{
	struct spanalloc_span_alloc __user *ureq = arg;
	struct spanalloc_span_alloc req;
	struct span_call_args args;
	unsigned long serial;
	u64 addr;
	int err;

	if (copy_from_user(&req, ureq, sizeof(req)))
		return -EFAULT;
	if (req.flags & ~SPANALLOC_ALLOC_VALID_FLAGS || req.addr ||
	    req.reserved[0] || req.reserved[1])
		return -EINVAL;
	if (!req.pages || req.size_class > SPANALLOC_MAX_SIZE_CLASS)
		return -EINVAL;
	if (req.pages > spanalloc_arena_max_bytes >> PAGE_SHIFT)
		return -ENOMEM;

	args = (struct span_call_args){
		.pages = req.pages, .size_class = req.size_class,
		.count = 1, .addrs = &addr, .serials = &serial,
	};
	err = span_call(span_alloc_op, &args);
	if (err)
		return err;
	if (put_user(addr, &ureq->addr)) {
		/* Nobody will ever know the address: take the span back. */
		span_unmake(&addr, &serial, 1);
		return -EFAULT;
	}
	return 0;
}

/**
 * spanalloc_span_free_ioctl() - SPANALLOC_IOC_SPAN_FREE
 * @arg:	user pointer to a &struct spanalloc_span_free.
 *
 * Context: process context; takes the mmap lock and the heap lock.
 * Return: 0 or a negative errno, as uapi/spanalloc.h documents.
 */
long spanalloc_span_free_ioctl(void __user *arg)
{
	struct spanalloc_span_free req;
	struct span_call_args args;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.flags & ~SPANALLOC_FREE_VALID_FLAGS || req.reserved0 ||
	    req.reserved[0] || req.reserved[1])
		return -EINVAL;
	args = (struct span_call_args){
		.flags = req.flags, .count = 1, .addrs = &req.addr,
	};
	return span_call(span_free_op, &args);
}

/**
 * spanalloc_span_alloc_batch_ioctl() - SPANALLOC_IOC_SPAN_ALLOC_BATCH
 * @arg:	user pointer to a &struct spanalloc_span_alloc_batch.
 *
 * Context: process context; takes the mmap lock and the heap lock.
 * Return: 0 or a negative errno, as uapi/spanalloc.h documents.
 */
long spanalloc_span_alloc_batch_ioctl(void __user *arg)
{
	struct spanalloc_span_alloc_batch __user *ureq = arg;
	struct spanalloc_span_alloc_batch req;
	struct span_call_args args;
	u64 *addrs;
	int err;

	if (copy_from_user(&req, ureq, sizeof(req)))
		return -EFAULT;
	if (req.flags & ~SPANALLOC_ALLOC_VALID_FLAGS || req.reserved0 ||
	    req.reserved[0] || req.reserved[1])
		return -EINVAL;
	if (!req.pages || req.size_class > SPANALLOC_MAX_SIZE_CLASS ||
	    !req.count || req.count > SPANALLOC_BATCH_MAX)
		return -EINVAL;
	if (req.pages > spanalloc_arena_max_bytes >> PAGE_SHIFT)
		return -ENOMEM;
	if (!access_ok(u64_to_user_ptr(req.addrs),
		       req.count * sizeof(*addrs)))
		return -EFAULT;

	/* The addresses, then their spans' serials. */
	addrs = kmalloc_array(req.count, sizeof(*addrs) + sizeof(long),
			      GFP_KERNEL);
	if (!addrs)
		return -ENOMEM;
	args = (struct span_call_args){
		.pages = req.pages, .size_class = req.size_class,
		.count = req.count, .addrs = addrs,
		.serials = (unsigned long *)(addrs + req.count),
	};
	err = span_call(span_alloc_op, &args);
	if (err)
		goto out_free;
	if (copy_to_user(u64_to_user_ptr(req.addrs), addrs,
			 args.count * sizeof(*addrs)) ||
	    put_user(args.count, &ureq->count)) {
		span_unmake(addrs, args.serials, args.count);
		err = -EFAULT;
	}
out_free:
	kfree(addrs);
	return err;
}

/**
 * spanalloc_span_free_batch_ioctl() - SPANALLOC_IOC_SPAN_FREE_BATCH
 * @arg:	user pointer to a &struct spanalloc_span_free_batch.
 *
 * Context: process context; takes the mmap lock and the heap lock.
 * Return: 0 or a negative errno, as uapi/spanalloc.h documents.
 */
long spanalloc_span_free_batch_ioctl(void __user *arg)
{
	struct spanalloc_span_free_batch __user *ureq = arg;
	struct spanalloc_span_free_batch req;
	struct span_call_args args;
	u64 *addrs;
	int err;

	if (copy_from_user(&req, ureq, sizeof(req)))
		return -EFAULT;
	if (req.flags & ~SPANALLOC_FREE_VALID_FLAGS ||
	    req.reserved[0] || req.reserved[1])
		return -EINVAL;
	if (!req.count || req.count > SPANALLOC_BATCH_MAX)
		return -EINVAL;
	addrs = memdup_user(u64_to_user_ptr(req.addrs),
			    req.count * sizeof(*addrs));
	if (IS_ERR(addrs))
		return PTR_ERR(addrs);
	args = (struct span_call_args){
		.flags = req.flags, .count = req.count, .addrs = addrs,
	};
	err = span_call(span_free_op, &args);
	/* Without a heap or the mmap lock nothing ran: leave @count alone. */
	if (err != -ENXIO && err != -EINTR && put_user(args.count, &ureq->count))
		err = -EFAULT;
	kfree(addrs);
	return err;
}

/**
 * spanalloc_span_resize_ioctl() - SPANALLOC_IOC_SPAN_RESIZE
 * @arg:	user pointer to a &struct spanalloc_span_resize.
 *
 * Context: process context; takes the mmap lock and the heap lock.
 * Return: 0 or a negative errno, as uapi/spanalloc.h documents.
 */
long spanalloc_span_resize_ioctl(void __user *arg)
{
	struct spanalloc_span_resize req;
	struct span_call_args args;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.flags & ~SPANALLOC_RESIZE_VALID_FLAGS || req.reserved0 ||
	    req.reserved[0] || req.reserved[1])
		return -EINVAL;
	if (!req.pages)
		return -EINVAL;
	if (req.pages > spanalloc_arena_max_bytes >> PAGE_SHIFT)
		return -ENOMEM;
	args = (struct span_call_args){
		.pages = req.pages, .count = 1, .addrs = &req.addr,
	};
	return span_call(span_resize_op, &args);
}

/**
 * spanalloc_span_clone_all() - give @dst a record for every span of @src
 * @dst:	a new heap for a fork() child, not yet visible to anyone.
 * @src:	the parent's heap, whose page table entries are gone.
 *
 * The copies list the frames of the originals (see spanalloc_frames_fork()).
 *
 * Context: caller holds @src->lock and the mmap locks of both mms.
 * Return: 0, or -ENOMEM or -EINTR with @dst holding no span.
 */
int spanalloc_span_clone_all(struct spanalloc_heap *dst,
			     struct spanalloc_heap *src)
{
	struct spanalloc_span *span, *copy;
	unsigned long index = 0;
	int err = 0;

	lockdep_assert_held(&src->lock);
	/* The child's lock nests in the parent's; nobody else sees it yet. */
	mutex_lock_nested(&dst->lock, SINGLE_DEPTH_NESTING);
	mt_for_each(&src->spans, span, index, ULONG_MAX) {
		copy = span_new(span->pages, span->size_class);
		if (!copy) {
			err = -ENOMEM;
			break;
		}
		copy->first = span->first;
		copy->serial = span->serial;
		copy->frames = spanalloc_frames_fork(span->frames);
		if (IS_ERR(copy->frames)) {
			err = PTR_ERR(copy->frames);
			kfree(copy->spare);
			kfree(copy);
			break;
		}
		err = span_record(dst, copy);
		if (err) {
			spanalloc_frames_free(copy->frames);
			kfree(copy->spare);
			kfree(copy);
			break;
		}
		/* A child's heap counts against the user but is never refused. */
		spanalloc_user_add(dst->user, copy->pages);
	}
	if (err) {
		index = 0;
		mt_for_each(&dst->spans, span, index, ULONG_MAX)
			spanalloc_span_release(dst, span);
		mtree_destroy(&dst->spans);
	}
	mutex_unlock(&dst->lock);
	return err;
}

/* Pages mapped after a faulting one, when the heap owns them alone. */
#define SPANALLOC_FAULT_AROUND	511UL

/*
 * After a fault mapped page @index of @span at @addr, map the next pages of
 * the span whose frames the heap owns alone, as one batch: a process that
 * forked and touches its heap again takes one fault per 512 pages (a page
 * table's worth), not one per page; the frames are the heap's already, so
 * mapping them early costs no memory. Stops at the first hole, shared
 * frame or present entry.
 */
static void span_fault_around(struct vm_area_struct *vma, unsigned long addr,
			      struct spanalloc_span *span, unsigned long index)
{
	struct spanalloc_frames *frames = span->frames;
	unsigned long n = 0, num, end;

	end = min(span->pages, index + 1 + SPANALLOC_FAULT_AROUND);
	while (index + 1 + n < end) {
		struct page *page = frames->pages[index + 1 + n];

		if (!page || spanalloc_frame_shared(page))
			break;
		n++;
	}
	if (!n)
		return;
	num = n;
	/* An entry already there ends the batch early (-EBUSY): fine. */
	vm_insert_pages(vma, addr + PAGE_SIZE, frames->pages + index + 1, &num);
}

/**
 * spanalloc_span_fault() - map the heap's frame at a faulting arena page
 * @heap:	the heap of the faulting VMA.
 * @vmf:	the fault.
 *
 * Spans are fully mapped when made, so a fault inside the arena means the
 * page is outside every span (SIGBUS, like touching a freed span), its
 * frame was given back by SPANALLOC_FREE_KEEP_RANGE (a hole: it gets a
 * zeroed frame), its entry was removed at fork() or by MADV_DONTNEED (the
 * frame is mapped again, with its data), or a GUP user (ptrace, O_DIRECT,
 * a core dump) reaches a page not mapped yet. A frame that a fork()
 * relative still owns is first replaced by a copy of its own.
 *
 * A limit or a failed allocation raises SIGBUS: VM_FAULT_OOM outside a
 * memory cgroup OOM would only retry the fault forever.
 *
 * Context: the mmap lock is held for read.
 * Return: VM_FAULT_NOPAGE or VM_FAULT_SIGBUS.
 */
vm_fault_t spanalloc_span_fault(struct spanalloc_heap *heap,
				struct vm_fault *vmf)
{
	unsigned long index = (vmf->address - heap->arena_start) >> PAGE_SHIFT;
	unsigned long addr = vmf->address & PAGE_MASK;
	struct spanalloc_frames *frames;
	struct spanalloc_span *span;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	int err = 0;

	mutex_lock(&heap->lock);
	span = heap->dead ? NULL : mtree_load(&heap->spans, index);
	if (!span)
		goto out_unlock;
	frames = span->frames;
	index -= span->first;
	if (!frames->pages[index]) {
		err = spanalloc_frames_fill(frames, index);
	} else if (spanalloc_frame_shared(frames->pages[index])) {
		err = spanalloc_frames_unshare(frames, index);
		if (!err) {
			heap->cow_copies++;
			atomic_long_inc(&spanalloc_stats.cow_copies);
		}
	}
	if (err)
		goto out_unlock;
	/* The entry takes its own page reference. */
	err = vm_insert_page(vmf->vma, addr, frames->pages[index]);
	if (err && err != -EBUSY)
		goto out_unlock;
	span_fault_around(vmf->vma, addr, span, index);
	atomic_long_inc(&spanalloc_stats.fault_refills);
	heap->fault_refills++;
	ret = VM_FAULT_NOPAGE;
out_unlock:
	mutex_unlock(&heap->lock);
	return ret;
}
