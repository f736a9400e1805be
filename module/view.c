// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc view: a read-only copy of a heap's span records, mapped to the
 * process so that free() needs no system call to find a pointer's span and
 * size class (uapi/spanalloc.h, "span view").
 *
 * The view is one u64 per arena page. Its pages are kernel pages kept per
 * heap in an xarray, made on demand: the fault handler builds a view page
 * from the span records of the faulting address space's heap, and span
 * creation and removal update the view pages that exist. The records stay
 * the truth; the view is a cache of them that userspace cannot write.
 *
 * fork(): the view VMA maps no anonymous memory and is neither VM_PFNMAP
 * nor VM_MIXEDMAP, so dup_mmap() copies none of its PTEs; the child faults
 * its view in afresh, from the child's own heap. The parent may then free
 * span X and reuse its range for another class without the child seeing
 * the parent's new record.
 *
 * The heap's end: when the arena goes (munmap) and the process lives on,
 * the PTEs of every view of the address space are removed, after the heap
 * left the table. A view page still mapped would show the dead heap's
 * records to a process that maps a new arena (review L1); the next fault
 * on the view builds it from the new heap, or raises SIGBUS without one.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "compat.h"
#include "internal.h"

/* Entries per view page. */
#define VIEW_PER_PAGE	(PAGE_SIZE / sizeof(u64))

static const struct vm_operations_struct spanalloc_view_vm_ops;

/**
 * spanalloc_view_bytes() - size of the view of a heap's arena
 * @heap:	the heap.
 *
 * Return: bytes, a multiple of the page size.
 */
unsigned long spanalloc_view_bytes(struct spanalloc_heap *heap)
{
	return PAGE_ALIGN(heap->arena_pages * sizeof(u64));
}

static u64 view_entry(struct spanalloc_span *span)
{
	return (u64)(span->first + 1) << 8 | span->size_class;
}

/* Write @value into the entries of pages [@first, @first + @pages). */
static void view_fill(struct spanalloc_heap *heap, unsigned long first,
		      unsigned long pages, u64 value)
{
	unsigned long index, end = first + pages, n;
	struct page *page;
	u64 *entries;

	while (first < end) {
		index = first / VIEW_PER_PAGE;
		n = min(end - first, VIEW_PER_PAGE - first % VIEW_PER_PAGE);
		page = xa_load(&heap->view, index);
		if (page) {
			entries = kmap_local_page(page);
			memset64(entries + first % VIEW_PER_PAGE, value, n);
			kunmap_local(entries);
		}
		first += n;
	}
}

/**
 * spanalloc_view_set() - show @span in the view
 * @heap:	the heap.
 * @span:	a span just recorded.
 *
 * Context: caller holds @heap->lock.
 */
void spanalloc_view_set(struct spanalloc_heap *heap,
			struct spanalloc_span *span)
{
	lockdep_assert_held(&heap->lock);
	view_fill(heap, span->first, span->pages, view_entry(span));
}

/**
 * spanalloc_view_clear() - take @span out of the view
 * @heap:	the heap.
 * @span:	a span about to be forgotten.
 *
 * Context: caller holds @heap->lock.
 */
void spanalloc_view_clear(struct spanalloc_heap *heap,
			  struct spanalloc_span *span)
{
	lockdep_assert_held(&heap->lock);
	view_fill(heap, span->first, span->pages, 0);
}

/**
 * spanalloc_view_resize() - show @span at its new length
 * @heap:	the heap.
 * @span:	a span whose length just changed.
 * @old_pages:	its length before.
 *
 * Context: caller holds @heap->lock.
 */
void spanalloc_view_resize(struct spanalloc_heap *heap,
			   struct spanalloc_span *span,
			   unsigned long old_pages)
{
	lockdep_assert_held(&heap->lock);
	if (span->pages > old_pages)
		view_fill(heap, span->first + old_pages,
			  span->pages - old_pages, view_entry(span));
	else
		view_fill(heap, span->first + span->pages,
			  old_pages - span->pages, 0);
}

/**
 * spanalloc_view_destroy() - drop the heap's references on its view pages
 * @heap:	a dead heap. Mapped view pages live on until unmapped.
 */
void spanalloc_view_destroy(struct spanalloc_heap *heap)
{
	unsigned long index;
	struct page *page;

	xa_for_each(&heap->view, index, page)
		put_page(page);
	xa_destroy(&heap->view);
}

/**
 * spanalloc_view_unmap() - remove the page table entries of @mm's views
 * @mm:	the address space whose heap just ended (no longer findable).
 *
 * A fault racing with this (under the view VMA's own lock on kernels with
 * per-VMA locks) finds no heap, or the dead one and SIGBUS: it maps
 * nothing that this would have to remove.
 *
 * Context: the arena's ->close, with @mm's mmap lock held (munmap() may
 * have downgraded it to read by then, as 6.12 does).
 */
void spanalloc_view_unmap(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;

	/* exit_mmap() closes VMAs after freeing the page tables. */
	if (!atomic_read(&mm->mm_users))
		return;
	mmap_assert_locked(mm);
	for_each_vma(vmi, vma)
		if (vma->vm_ops == &spanalloc_view_vm_ops)
			spanalloc_zap(vma, vma->vm_start,
				      vma->vm_end - vma->vm_start);
}

/* View page @index of @heap, built from the span records if missing. */
static struct page *view_page(struct spanalloc_heap *heap, unsigned long index)
{
	unsigned long first = index * VIEW_PER_PAGE, last, i;
	struct spanalloc_span *span;
	struct page *page;
	u64 *entries;
	int err;

	page = xa_load(&heap->view, index);
	if (page)
		return page;
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!page)
		return ERR_PTR(-ENOMEM);
	last = min(first + VIEW_PER_PAGE, heap->arena_pages) - 1;
	entries = kmap_local_page(page);
	i = first;
	mt_for_each(&heap->spans, span, i, last) {
		unsigned long from = max(span->first, first);
		unsigned long to = min(span->first + span->pages - 1, last);

		memset64(entries + (from - first), view_entry(span),
			 to - from + 1);
	}
	kunmap_local(entries);
	err = xa_err(xa_store(&heap->view, index, page, GFP_KERNEL_ACCOUNT));
	if (err) {
		put_page(page);
		return ERR_PTR(err);
	}
	return page;
}

static vm_fault_t spanalloc_view_fault(struct vm_fault *vmf)
{
	unsigned long index = vmf->pgoff - (SPANALLOC_VIEW_OFFSET >> PAGE_SHIFT);
	struct spanalloc_heap *heap;
	struct page *page;
	vm_fault_t ret;

	heap = spanalloc_heap_find(vmf->vma->vm_mm);
	if (!heap)
		return VM_FAULT_SIGBUS;
	mutex_lock(&heap->lock);
	if (heap->dead ||
	    index >= spanalloc_view_bytes(heap) >> PAGE_SHIFT) {
		ret = VM_FAULT_SIGBUS;
		goto out_unlock;
	}
	page = view_page(heap, index);
	if (IS_ERR(page)) {
		/*
		 * SIGBUS, as a span's fault (span.c): VM_FAULT_OOM outside a
		 * memory cgroup OOM only retries the fault, forever at a
		 * cgroup limit nothing can be reclaimed from.
		 */
		ret = VM_FAULT_SIGBUS;
		goto out_unlock;
	}
	get_page(page);
	vmf->page = page;
	ret = 0;
out_unlock:
	mutex_unlock(&heap->lock);
	spanalloc_heap_put(heap);
	return ret;
}

static int spanalloc_view_may_split(struct vm_area_struct *vma,
				    unsigned long addr)
{
	return -EINVAL;
}

static const struct vm_operations_struct spanalloc_view_vm_ops = {
	.fault		= spanalloc_view_fault,
	.may_split	= spanalloc_view_may_split,
};

/**
 * spanalloc_view_mmap() - map the span view of current's heap
 * @vma:	the new VMA, at offset %SPANALLOC_VIEW_OFFSET.
 *
 * Context: the core mm holds the mmap lock for write.
 * Return: 0; -ENXIO without an arena; -EINVAL for a writable or executable
 * mapping or one larger than the view.
 */
int spanalloc_view_mmap(struct vm_area_struct *vma)
{
	struct spanalloc_heap *heap;
	unsigned long bytes;

	if (vma->vm_flags & (VM_WRITE | VM_EXEC))
		return -EINVAL;
	heap = spanalloc_heap_find(vma->vm_mm);
	if (!heap)
		return -ENXIO;
	bytes = spanalloc_view_bytes(heap);
	spanalloc_heap_put(heap);
	if (vma->vm_end - vma->vm_start > bytes)
		return -EINVAL;

	vm_flags_clear(vma, VM_MAYWRITE | VM_MAYEXEC);
	vm_flags_set(vma, VM_DONTEXPAND);
	vma->vm_ops = &spanalloc_view_vm_ops;
	return 0;
}
