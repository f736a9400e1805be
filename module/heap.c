// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc heaps: one per (open file, address space), and the arena VMA
 * that ties a heap to its address space.
 *
 * A heap is made by the first mmap() of the file from an address space and
 * lives exactly as long as that arena VMA. Every span ioctl looks up the
 * heap of the *calling* address space, so a process that got the file some
 * other way (fork, exec, SCM_RIGHTS) can never reach another's arena: it
 * has no heap until it maps its own.
 *
 * fork(): dup_mmap() copies the arena VMA and calls ->open on the copy with
 * the parent's mmap lock held for write, so no span ioctl of the parent can
 * run. ->open gives the child a heap of its own: a snapshot of the parent's
 * span records and free space, sharing the spans' frames (counted by
 * &spanalloc_frames.kref). The page tables are copied by the core mm, which
 * write-protects both sides because the mapping is private: the first
 * write on either side copies the page, so each sees its own data.
 *
 * Misuse of the arena has a fixed answer:
 *   - a second mmap() from the same address space: -EBUSY;
 *   - MAP_SHARED, a nonzero offset, no PROT_READ|PROT_WRITE or a size over
 *     arena_max_bytes: -EINVAL; PROT_EXEC: -EPERM;
 *   - munmap() of a part, or anything else that would split the VMA:
 *     -EINVAL; munmap() of the whole arena ends the heap;
 *   - mprotect() of any part to anything but read-write: -EACCES;
 *   - growing with mremap(): -EFAULT (VM_DONTEXPAND); moving it: -EINVAL;
 *   - madvise(MADV_DONTNEED): the dropped pages read back as zeroes, like
 *     anonymous memory (see spanalloc_span_fault()).
 */
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/slab.h>

#include "compat.h"
#include "internal.h"

static const struct vm_operations_struct spanalloc_vm_ops;

/**
 * spanalloc_file_create() - state for a newly opened /dev/spanalloc
 *
 * Return: the file state, or NULL when out of memory.
 */
struct spanalloc_file *spanalloc_file_create(void)
{
	struct spanalloc_file *sf;

	sf = kzalloc(sizeof(*sf), GFP_KERNEL_ACCOUNT);
	if (!sf)
		return NULL;
	mutex_init(&sf->lock);
	INIT_LIST_HEAD(&sf->heaps);
	return sf;
}

static struct spanalloc_heap *heap_create(struct spanalloc_file *sf,
					  struct mm_struct *mm,
					  struct spanalloc_pool *pool,
					  unsigned long start,
					  unsigned long pages)
{
	struct spanalloc_heap *heap;

	heap = kzalloc(sizeof(*heap), GFP_KERNEL_ACCOUNT);
	if (!heap)
		return NULL;
	heap->pool = pool;
	kref_init(&heap->kref);
	INIT_LIST_HEAD(&heap->node);
	heap->file = sf;
	heap->mm = mm;
	mutex_init(&heap->lock);
	heap->nr_vmas = 1;
	heap->arena_start = start;
	heap->arena_pages = pages;
	mt_init(&heap->spans);
	xa_init(&heap->view);
	atomic_long_inc(&spanalloc_stats.heaps);
	spanalloc_stats_add_heap(heap);
	return heap;
}

static void heap_release(struct kref *kref)
{
	struct spanalloc_heap *heap =
		container_of(kref, struct spanalloc_heap, kref);

	spanalloc_stats_del_heap(heap);
	mutex_destroy(&heap->lock);
	spanalloc_pool_put(heap->pool);
	atomic_long_dec(&spanalloc_stats.heaps);
	kfree(heap);
}

/**
 * spanalloc_heap_put() - drop a reference taken by spanalloc_heap_find()
 * @heap:	the heap.
 */
void spanalloc_heap_put(struct spanalloc_heap *heap)
{
	kref_put(&heap->kref, heap_release);
}

/* Free every span and all free space; the heap can take no new span. */
static void heap_empty(struct spanalloc_heap *heap)
{
	struct spanalloc_span *span;
	unsigned long index = 0;

	mutex_lock(&heap->lock);
	heap->dead = true;
	mt_for_each(&heap->spans, span, index, ULONG_MAX)
		spanalloc_span_release(heap, span);
	mtree_destroy(&heap->spans);
	spanalloc_range_destroy(&heap->free);
	spanalloc_view_destroy(heap);
	mutex_unlock(&heap->lock);
}

/* End a heap: empty it, unlink it from its file, drop the life reference. */
static void heap_kill(struct spanalloc_heap *heap)
{
	struct spanalloc_file *sf = heap->file;

	heap_empty(heap);
	mutex_lock(&sf->lock);
	list_del_init(&heap->node);
	mutex_unlock(&sf->lock);
	spanalloc_heap_put(heap);
}

/**
 * spanalloc_file_destroy() - free the state of a closed file
 * @sf:	the file state.
 *
 * Every arena VMA holds the file open, so their heaps are gone by now; a
 * heap left here is one whose mmap() failed after our ->mmap succeeded
 * (the core mm does not call ->close then). It has no page table entries.
 */
void spanalloc_file_destroy(struct spanalloc_file *sf)
{
	struct spanalloc_heap *heap, *next;

	list_for_each_entry_safe(heap, next, &sf->heaps, node)
		heap_kill(heap);
	mutex_destroy(&sf->lock);
	kfree(sf);
}

static struct spanalloc_heap *heap_find_locked(struct spanalloc_file *sf,
					       struct mm_struct *mm)
{
	struct spanalloc_heap *heap;

	lockdep_assert_held(&sf->lock);
	list_for_each_entry(heap, &sf->heaps, node)
		if (heap->mm == mm)
			return heap;
	return NULL;
}

/**
 * spanalloc_heap_find() - the heap of address space @mm in file @sf
 * @sf:	the file.
 * @mm:	the address space, normally current->mm.
 *
 * Context: process context; takes @sf->lock.
 * Return: the heap with a reference the caller drops with
 * spanalloc_heap_put(), or NULL if @mm has no arena through @sf.
 */
struct spanalloc_heap *spanalloc_heap_find(struct spanalloc_file *sf,
					   struct mm_struct *mm)
{
	struct spanalloc_heap *heap;

	mutex_lock(&sf->lock);
	heap = heap_find_locked(sf, mm);
	if (heap)
		kref_get(&heap->kref);
	mutex_unlock(&sf->lock);
	return heap;
}

/**
 * spanalloc_heap_vma() - the arena VMA of @heap in its address space
 * @heap:	the heap.
 *
 * Context: caller holds @heap->mm's mmap lock (read or write).
 * Return: the VMA, or NULL if the arena is gone or was never installed.
 */
struct vm_area_struct *spanalloc_heap_vma(struct spanalloc_heap *heap)
{
	struct vm_area_struct *vma;

	mmap_assert_locked(heap->mm);
	vma = find_vma(heap->mm, heap->arena_start);
	if (!vma || vma->vm_start != heap->arena_start ||
	    vma->vm_ops != &spanalloc_vm_ops || vma->vm_private_data != heap)
		return NULL;
	return vma;
}

static pgprot_t arena_writable_prot(struct vm_area_struct *vma)
{
	return vm_get_page_prot(vma->vm_flags | VM_SHARED);
}

/**
 * spanalloc_heap_vma_writable() - are new PTEs of the arena writable?
 * @vma:	the arena VMA, from spanalloc_heap_vma().
 *
 * Context: caller holds the mmap lock.
 * Return: true if pages inserted now get writable PTEs.
 */
bool spanalloc_heap_vma_writable(struct vm_area_struct *vma)
{
	return pgprot_val(vma->vm_page_prot) ==
	       pgprot_val(arena_writable_prot(vma));
}

/**
 * spanalloc_heap_make_writable() - make new arena PTEs writable
 * @heap:	the heap, whose mm is current's; caller holds no mmap lock.
 *
 * mmap_region() recomputes the VMA's page protection after ->mmap, to the
 * read-only one of a private mapping, and so does mprotect(). Pages
 * inserted with it would be copied into anonymous pages on the first
 * write. Spans are private to the heap, so their PTEs may be writable: put
 * the protection of the shared equivalent back. Correctness never depends
 * on it; speed and "the frames stay the module's" do. After fork() the core
 * mm write-protects the copied PTEs itself, whatever this says.
 *
 * Context: takes the mmap lock for write.
 * Return: 0, -EINTR on a fatal signal, -ENXIO if the arena is gone.
 */
int spanalloc_heap_make_writable(struct spanalloc_heap *heap)
{
	struct vm_area_struct *vma;
	int err = 0;

	if (mmap_write_lock_killable(heap->mm))
		return -EINTR;
	vma = spanalloc_heap_vma(heap);
	if (!vma) {
		err = -ENXIO;
	} else if (!spanalloc_heap_vma_writable(vma)) {
		vma_start_write(vma);
		WRITE_ONCE(vma->vm_page_prot, arena_writable_prot(vma));
	}
	mmap_write_unlock(heap->mm);
	return err;
}

/**
 * spanalloc_heap_mmap() - make the arena of current's heap
 * @sf:		the file being mapped.
 * @vma:	the new VMA, not yet visible.
 *
 * Context: the core mm holds the mmap lock for write.
 * Return: 0 or a negative errno (see the top of this file).
 */
int spanalloc_heap_mmap(struct spanalloc_file *sf, struct vm_area_struct *vma)
{
	unsigned long pages = vma_pages(vma);
	struct spanalloc_heap *heap, *old;
	struct spanalloc_pool *pool;
	int err;

	if (vma->vm_flags & VM_SHARED)
		return -EINVAL;
	if (vma->vm_pgoff)
		return -EINVAL;
	if ((vma->vm_flags & (VM_READ | VM_WRITE)) != (VM_READ | VM_WRITE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (pages > spanalloc_arena_max_bytes >> PAGE_SHIFT)
		return -EINVAL;

	pool = spanalloc_pool_get();
	if (!pool)
		return -ENOMEM;
	heap = heap_create(sf, vma->vm_mm, pool, vma->vm_start, pages);
	if (!heap) {
		spanalloc_pool_put(pool);
		return -ENOMEM;
	}
	err = spanalloc_range_init(&heap->free, pages);
	if (err)
		goto out_put_heap;

	mutex_lock(&sf->lock);
	old = heap_find_locked(sf, vma->vm_mm);
	if (old && spanalloc_heap_vma(old)) {
		mutex_unlock(&sf->lock);
		err = -EBUSY;
		goto out_destroy_range;
	}
	if (old) {
		/* Left by an mmap() that failed after our ->mmap. */
		list_del_init(&old->node);
	}
	list_add(&heap->node, &sf->heaps);
	mutex_unlock(&sf->lock);
	if (old) {
		heap_empty(old);
		spanalloc_heap_put(old);
	}

	/*
	 * Frames are inserted by us (VM_MIXEDMAP, set now so that later
	 * insertions need only the read lock); the arena never grows and is
	 * never executable.
	 */
	vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND);
	vm_flags_clear(vma, VM_MAYEXEC);
	vma->vm_ops = &spanalloc_vm_ops;
	vma->vm_private_data = heap;
	return 0;

out_destroy_range:
	spanalloc_range_destroy(&heap->free);
out_put_heap:
	spanalloc_heap_put(heap);
	return err;
}

/* A heap for a fork() child: the parent's records and space, shared frames. */
static struct spanalloc_heap *heap_fork(struct spanalloc_heap *parent,
					struct mm_struct *mm)
{
	struct spanalloc_heap *child;
	int err;

	spanalloc_pool_get_ref(parent->pool);
	child = heap_create(parent->file, mm, parent->pool, parent->arena_start,
			    parent->arena_pages);
	if (!child) {
		spanalloc_pool_put(parent->pool);
		return NULL;
	}

	mutex_lock(&parent->lock);
	err = spanalloc_range_clone(&child->free, &parent->free);
	if (!err) {
		err = spanalloc_span_clone_all(child, parent);
		if (err)
			spanalloc_range_destroy(&child->free);
	}
	mutex_unlock(&parent->lock);
	if (err) {
		spanalloc_heap_put(child);
		return NULL;
	}

	mutex_lock(&parent->file->lock);
	list_add(&child->node, &parent->file->heaps);
	mutex_unlock(&parent->file->lock);
	return child;
}

/*
 * A copy of the arena VMA: fork() (another mm) or mremap() moving it (the
 * same mm; ->mremap then refuses and the copy is closed again).
 */
static void spanalloc_vm_open(struct vm_area_struct *vma)
{
	struct spanalloc_heap *heap = vma->vm_private_data;

	if (!heap)
		return;
	if (vma->vm_mm == heap->mm) {
		mutex_lock(&heap->lock);
		heap->nr_vmas++;
		mutex_unlock(&heap->lock);
		return;
	}
	/*
	 * Without memory for the child's records the child keeps its
	 * copy-on-write image but gets no heap: its span ioctls answer
	 * -ENXIO and refaults raise SIGBUS.
	 */
	vma->vm_private_data = heap_fork(heap, vma->vm_mm);
}

/* The arena VMA is gone; its page table entries were removed before. */
static void spanalloc_vm_close(struct vm_area_struct *vma)
{
	struct spanalloc_heap *heap = vma->vm_private_data;
	bool last;

	if (!heap)
		return;
	mutex_lock(&heap->lock);
	last = --heap->nr_vmas == 0;
	mutex_unlock(&heap->lock);
	if (last)
		heap_kill(heap);
}

static int spanalloc_vm_may_split(struct vm_area_struct *vma,
				  unsigned long addr)
{
	return -EINVAL;
}

static int spanalloc_vm_mremap(struct vm_area_struct *vma)
{
	return -EINVAL;
}

static int spanalloc_vm_mprotect(struct vm_area_struct *vma,
				 unsigned long start, unsigned long end,
				 unsigned long newflags)
{
	if ((newflags & (VM_READ | VM_WRITE | VM_EXEC)) !=
	    (VM_READ | VM_WRITE))
		return -EACCES;
	return 0;
}

static vm_fault_t spanalloc_vm_fault(struct vm_fault *vmf)
{
	struct spanalloc_heap *heap = vmf->vma->vm_private_data;

	if (!heap)
		return VM_FAULT_SIGBUS;
	return spanalloc_span_fault(heap, vmf);
}

static const struct vm_operations_struct spanalloc_vm_ops = {
	.open		= spanalloc_vm_open,
	.close		= spanalloc_vm_close,
	.may_split	= spanalloc_vm_may_split,
	.mremap		= spanalloc_vm_mremap,
	.mprotect	= spanalloc_vm_mprotect,
	.fault		= spanalloc_vm_fault,
};
