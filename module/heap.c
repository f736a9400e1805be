// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc heaps: one per address space, and the arena VMA that ties a
 * heap to its address space.
 *
 * A heap is made by the first mmap() of the arena from an address space,
 * through any open file of the device, and lives exactly as long as that
 * arena VMA. Heaps are found by mm (a hash table): every ioctl acts on the
 * heap of the *calling* address space, whichever descriptor it comes
 * through, so a process that closed every descriptor and opened the device
 * again goes on with its heap, and a process that got a descriptor some
 * other way (fork, exec, SCM_RIGHTS) can never reach another's arena.
 *
 * The mapping model. The invariant: a page table entry in an arena maps a
 * frame that exactly one heap owns, and only that heap's address space.
 *
 *   - The arena is a MAP_SHARED, read-write mapping of the device with
 *     VM_MIXEDMAP | VM_DONTEXPAND | VM_WIPEONFORK; MAP_PRIVATE is refused.
 *     Its vm_page_prot is the legitimate read-write protection of a shared
 *     mapping, and nothing in it is ever anonymous: the core mm never
 *     copies a page of a shared mapping on write, so every copy is ours.
 *   - Only this module maps frames there: SPAN_ALLOC inserts a fresh span's
 *     frames (vm_insert_pages(), before the ioctl returns: no fault on
 *     first touch); a fault maps the heap's own frame for that page.
 *   - A frame has an owner count (frames.c): the heaps whose span records
 *     list it. fork() makes the child's heap a snapshot of the parent's
 *     records that shares every frame (owners + 1), and removes the
 *     parent's page table entries over the arena; the child starts with
 *     none (VM_WIPEONFORK: dup_mmap() copies no entry). A fault on a frame
 *     with more than one owner gives the faulting heap a copy of its own;
 *     a fault on a frame it owns alone maps that frame. So only the pages a
 *     relative shares and touches are copied, and fork() + exec() copies
 *     none. A frame that may be pinned for DMA when fork() runs is not
 *     shared: the child gets a copy at once, and the pinned frame stays
 *     with the parent, whose I/O keeps landing in its own memory.
 *   - Frames are order-0 kernel pages off the LRU and not movable: swap,
 *     MADV_PAGEOUT, compaction, migration, NUMA balancing (which skips
 *     VM_MIXEDMAP) and swapoff never take them, and no path of the core mm
 *     rebuilds one of our entries from vm_page_prot. GUP (O_DIRECT,
 *     FOLL_LONGTERM pins, ptrace, process_vm_readv, /proc/pid/mem) either
 *     finds an entry, which maps a frame the process owns alone, or faults
 *     through us first; writes through it land in that frame. A core dump
 *     reads the arena through GUP too, when the process's coredump_filter
 *     asks for shared mappings (bit 3); by default it leaves them out, as
 *     it does any shared mapping of a file. madvise(MADV_DONTNEED)
 *     drops entries only; the data stays and a refault maps it again, as
 *     for any shared mapping. A per-VMA flag a user may change
 *     (MADV_KEEPONFORK clears VM_WIPEONFORK) is put back at fork.
 *
 * fork(): dup_mmap() calls ->open on the child's VMA with both mmap locks
 * held for write (before copy_page_range() on 6.12, after it on 6.1, which
 * is why ->open also empties the child's VMA when VM_WIPEONFORK was
 * cleared). No fault, GUP or ioctl of the parent can run meanwhile.
 *
 * Misuse of the arena has a fixed answer:
 *   - a second arena in the same address space: -EBUSY;
 *   - a user with user_max_heaps heaps already: -EMFILE (user.c);
 *   - MAP_PRIVATE, a nonzero offset, no PROT_READ|PROT_WRITE or a size over
 *     arena_max_bytes: -EINVAL; PROT_EXEC: -EPERM;
 *   - munmap() of a part, or anything else that would split the VMA:
 *     -EINVAL; munmap() of the whole arena ends the heap;
 *   - mprotect() of any part to anything but read-write: -EACCES;
 *   - growing with mremap(): -EFAULT (VM_DONTEXPAND); moving it: -EINVAL.
 */
#include <linux/capability.h>
#include <linux/hashtable.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "compat.h"
#include "internal.h"

static const struct vm_operations_struct spanalloc_vm_ops;

/* Every live heap, by mm. */
static DEFINE_HASHTABLE(heap_table, 10);
static DEFINE_SPINLOCK(heap_table_lock);	/* protects heap_table */

/* A new heap; it takes over the caller's references on @pool and @user. */
static struct spanalloc_heap *heap_create(struct mm_struct *mm,
					  struct spanalloc_pool *pool,
					  struct spanalloc_user *user,
					  unsigned long start,
					  unsigned long pages)
{
	struct spanalloc_heap *heap;

	heap = kzalloc(sizeof(*heap), SPANALLOC_GFP);
	if (!heap)
		return NULL;
	heap->pool = pool;
	heap->user = user;
	kref_init(&heap->kref);
	INIT_HLIST_NODE(&heap->node);
	heap->mm = mm;
	mutex_init(&heap->lock);
	heap->nr_vmas = 1;
	heap->arena_start = start;
	heap->arena_pages = pages;
	mt_init(&heap->spans);
	xa_init(&heap->view);
	atomic_long_inc(&spanalloc_stats.heaps);
	return heap;
}

static void heap_release(struct kref *kref)
{
	struct spanalloc_heap *heap =
		container_of(kref, struct spanalloc_heap, kref);

	mutex_destroy(&heap->lock);
	spanalloc_user_put(heap->user);
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

/* Publish @heap as @mm's; -EBUSY if @mm has one already. */
static int heap_publish(struct spanalloc_heap *heap)
{
	struct spanalloc_heap *other;
	int err = 0;

	spin_lock(&heap_table_lock);
	hash_for_each_possible(heap_table, other, node, (unsigned long)heap->mm)
		if (other->mm == heap->mm)
			err = -EBUSY;
	if (!err)
		hash_add(heap_table, &heap->node, (unsigned long)heap->mm);
	spin_unlock(&heap_table_lock);
	return err;
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

/* End a heap: unpublish it, empty it, drop the life reference. */
static void heap_kill(struct spanalloc_heap *heap)
{
	spin_lock(&heap_table_lock);
	hash_del(&heap->node);
	spin_unlock(&heap_table_lock);
	heap_empty(heap);
	spanalloc_heap_put(heap);
}

/**
 * spanalloc_heap_find() - the heap of address space @mm
 * @mm:	the address space, normally current->mm.
 *
 * Context: any context that may take a spinlock.
 * Return: the heap with a reference the caller drops with
 * spanalloc_heap_put(), or NULL if @mm has no arena.
 */
struct spanalloc_heap *spanalloc_heap_find(struct mm_struct *mm)
{
	struct spanalloc_heap *heap, *found = NULL;

	spin_lock(&heap_table_lock);
	hash_for_each_possible(heap_table, heap, node, (unsigned long)mm) {
		if (heap->mm == mm) {
			kref_get(&heap->kref);
			found = heap;
			break;
		}
	}
	spin_unlock(&heap_table_lock);
	return found;
}

/**
 * spanalloc_heap_for_each() - call @fn on every live heap
 * @fn:		called with the table lock held (no sleeping); @heap's
 *		counters may be read with READ_ONCE(), not its records.
 * @arg:	passed to @fn.
 *
 * For debugfs: a reader never waits for a heap's lock, so a heap busy in a
 * long call cannot stall other processes' mmap(), fork() or exit().
 */
void spanalloc_heap_for_each(void (*fn)(struct spanalloc_heap *heap,
					void *arg), void *arg)
{
	struct spanalloc_heap *heap;
	int bkt;

	spin_lock(&heap_table_lock);
	hash_for_each(heap_table, bkt, heap, node)
		fn(heap, arg);
	spin_unlock(&heap_table_lock);
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

/**
 * spanalloc_heap_mmap() - make the arena of current's heap
 * @vma:	the new VMA, not yet visible.
 *
 * Context: the core mm holds the mmap lock for write.
 * Return: 0 or a negative errno (see the top of this file).
 */
int spanalloc_heap_mmap(struct vm_area_struct *vma)
{
	unsigned long pages = vma_pages(vma);
	struct spanalloc_user *user;
	struct spanalloc_heap *heap;
	struct spanalloc_pool *pool;
	int err;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff)
		return -EINVAL;
	if ((vma->vm_flags & (VM_READ | VM_WRITE)) != (VM_READ | VM_WRITE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (pages > spanalloc_arena_max_bytes >> PAGE_SHIFT)
		return -EINVAL;

	user = spanalloc_user_get(capable(CAP_IPC_LOCK));
	if (IS_ERR(user))
		return PTR_ERR(user);
	pool = spanalloc_pool_get();
	if (!pool) {
		spanalloc_user_put(user);
		return -ENOMEM;
	}
	heap = heap_create(vma->vm_mm, pool, user, vma->vm_start, pages);
	if (!heap) {
		spanalloc_pool_put(pool);
		spanalloc_user_put(user);
		return -ENOMEM;
	}
	heap->unlimited = capable(CAP_IPC_LOCK);
	err = spanalloc_range_init(&heap->free, pages);
	if (err)
		goto out_put_heap;
	err = heap_publish(heap);
	if (err)
		goto out_destroy_range;

	/*
	 * Frames are inserted by us (VM_MIXEDMAP, set now so that later
	 * insertions need only the read lock); fork() copies no entry; the
	 * arena never grows and is never executable.
	 */
	vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_WIPEONFORK);
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

/*
 * A heap for a fork() child: a snapshot of the parent's records and free
 * space sharing its frames. The parent's entries go first, so that no
 * frame can be pinned through them after spanalloc_frames_fork() looked.
 */
static struct spanalloc_heap *heap_fork(struct spanalloc_heap *parent,
					struct mm_struct *mm)
{
	struct vm_area_struct *parent_vma;
	struct spanalloc_heap *child;
	int err;

	parent_vma = spanalloc_heap_vma(parent);
	if (WARN_ON_ONCE(!parent_vma))
		return NULL;
	spanalloc_pool_get_ref(parent->pool);
	spanalloc_user_ref(parent->user);
	child = heap_create(mm, parent->pool, parent->user, parent->arena_start,
			    parent->arena_pages);
	if (!child) {
		spanalloc_pool_put(parent->pool);
		spanalloc_user_put(parent->user);
		return NULL;
	}
	child->unlimited = parent->unlimited;

	mutex_lock(&parent->lock);
	if (!parent->dead)
		spanalloc_zap(parent_vma, parent->arena_start,
			      parent->arena_pages << PAGE_SHIFT);
	err = spanalloc_range_clone(&child->free, &parent->free);
	if (!err) {
		err = spanalloc_span_clone_all(child, parent);
		if (err)
			spanalloc_range_destroy(&child->free);
	}
	mutex_unlock(&parent->lock);
	if (!err)
		err = heap_publish(child);
	if (err) {
		heap_empty(child);
		spanalloc_heap_put(child);
		return NULL;
	}
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
	if (!(vma->vm_flags & VM_WIPEONFORK)) {
		/*
		 * MADV_KEEPONFORK cleared it: put it back before 6.12's
		 * dup_mmap() copies the entries, and drop the ones 6.1's
		 * copied already. The child must start with none.
		 */
		vm_flags_set(vma, VM_WIPEONFORK);
		spanalloc_zap(vma, vma->vm_start, vma->vm_end - vma->vm_start);
	}
	/*
	 * Without memory for the child's records the child gets no heap:
	 * its span ioctls answer -ENXIO and touching the arena raises
	 * SIGBUS.
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
	if (!last)
		return;
	heap_kill(heap);
	spanalloc_view_unmap(vma->vm_mm);
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
