/* SPDX-License-Identifier: GPL-2.0 */
/*
 * spanalloc internals: the objects of the page heap and the files that own
 * them. README.md ("How it works") walks through the tiers first.
 *
 *   main.c    the misc device, its file operations, module parameters
 *   heap.c    heaps: one per address space, found by mm; the arena VMA,
 *             its vm_operations and the mapping model (fork, fault,
 *             misuse answers)
 *   span.c    span records, the span ioctls and the fault handler
 *   range.c   free arena space: best-fit, coalescing range allocator
 *   frames.c  the frames of one span of one heap, and each frame's owner
 *             count (how many heaps' records list it)
 *   pool.c    frame pools per memory cgroup: buddy chunks, per-CPU
 *             caches, zeroing ahead, the shrinker
 *   user.c    what each user may hold: the access policy
 *   view.c    the read-only span view mapped to the process
 *   stats.c   global counters, sysfs, debugfs, HEAP_STATS
 *
 * Lock order, outermost first:
 *
 *   mm->mmap_lock (rwsem): held by the core mm around ->mmap, the
 *	vm_operations and faults (the arena has no ->map_pages, so a fault
 *	under the VMA lock alone is retried under mmap_lock); taken for
 *	read by the span ioctls.
 *   spanalloc_heap.lock (mutex): everything in the heap below it: span
 *	records, free ranges, counters, @dead and @nr_vmas. At fork() the
 *	child's heap lock nests inside the parent's (SINGLE_DEPTH_NESTING).
 *   then, never nested in each other: heap_table_lock (spinlock, heap.c:
 *	the heaps by mm), frames_share_lock (spinlock, frames.c: owner
 *	counts of shared frames), the pool locks (pool.c), pools_lock
 *	(mutex, taken when the last heap or frame set of a pool goes).
 *
 * A heap's span records are kernel memory only; userspace sees the spans'
 * pages, never the records.
 */
#ifndef SPANALLOC_INTERNAL_H
#define SPANALLOC_INTERNAL_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/maple_tree.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/types.h>
#include <linux/xarray.h>

#include "../uapi/spanalloc.h"

/*
 * Kernel memory a process's request makes (heaps, span records, tree
 * nodes, free ranges, frame arrays, budgets): charged to its memory cgroup,
 * and at the cgroup's limit an -ENOMEM for the request, never the OOM
 * killer (__GFP_RETRY_MAYFAIL fails a memcg charge instead of OOM-killing).
 */
#define SPANALLOC_GFP	(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

struct spanalloc_heap;

/* ---- range.c: free arena space, in page indices from the arena start ---- */

/**
 * struct spanalloc_range - one free run of arena pages
 * @by_start:	node in &spanalloc_range_tree.by_start, keyed by @first.
 * @by_size:	node in &spanalloc_range_tree.by_size, keyed by (@pages, @first).
 * @first:	index of the first free page.
 * @pages:	length of the run; never 0 while in a tree.
 */
struct spanalloc_range {
	struct rb_node by_start;
	struct rb_node by_size;
	unsigned long first;
	unsigned long pages;
};

/**
 * struct spanalloc_range_tree - free space of one arena
 * @by_start:	free runs by address, for coalescing on free.
 * @by_size:	free runs by size, for best-fit allocation.
 * @free_pages:	sum of the runs' lengths.
 *
 * Free runs never touch: a run that would touch another is merged with it.
 */
struct spanalloc_range_tree {
	struct rb_root by_start;
	struct rb_root by_size;
	unsigned long free_pages;
};

int spanalloc_range_init(struct spanalloc_range_tree *tree,
			 unsigned long pages);
int spanalloc_range_clone(struct spanalloc_range_tree *dst,
			  const struct spanalloc_range_tree *src);
void spanalloc_range_destroy(struct spanalloc_range_tree *tree);
int spanalloc_range_alloc(struct spanalloc_range_tree *tree,
			  unsigned long pages, unsigned long *first);
int spanalloc_range_take(struct spanalloc_range_tree *tree,
			 unsigned long first, unsigned long pages);
void spanalloc_range_free(struct spanalloc_range_tree *tree,
			  unsigned long first, unsigned long pages,
			  struct spanalloc_range *spare);

/* ---- pool.c: frame pools ---- */

/* Largest order asked of the buddy allocator (2 MiB with 4 KiB pages). */
#define SPANALLOC_MAX_CHUNK_ORDER	9

struct spanalloc_pool;

extern unsigned long spanalloc_pool_max_frames;
/* KiB an ioctl that hands out frames leaves below the pool's cgroup limit. */
extern unsigned long spanalloc_memcg_headroom_kb;

int spanalloc_pool_init(void);
void spanalloc_pool_exit(void);
struct spanalloc_pool *spanalloc_pool_get(void);
void spanalloc_pool_get_ref(struct spanalloc_pool *pool);
void spanalloc_pool_put(struct spanalloc_pool *pool);
int spanalloc_pool_take(struct spanalloc_pool *pool, struct page **pages,
			unsigned long nr, unsigned long *done);
int spanalloc_pool_headroom(struct spanalloc_pool *pool);
void spanalloc_pool_shed(struct spanalloc_pool *pool, unsigned long nr);
void spanalloc_pool_give(struct spanalloc_pool *pool, struct page **pages,
			 unsigned long nr);
unsigned long spanalloc_pool_pcp_frames(void);

/* ---- frames.c: the frames of one span ---- */

/**
 * struct spanalloc_frames - the frames behind one span of one heap
 * @nr:		number of frames.
 * @filled:	frames present; the others are holes (NULL), see
 *		%SPANALLOC_FREE_KEEP_RANGE.
 * @pool:	the pool they came from and go back to (a reference).
 * @pages:	the frames, order-0 pages. Each frame has an owner count
 *		(frames.c): the sets listing it, more than one after fork().
 *		All its owners together hold one page reference.
 */
struct spanalloc_frames {
	unsigned long nr;
	unsigned long filled;
	struct spanalloc_pool *pool;
	struct page *pages[];
};

struct spanalloc_frames *spanalloc_frames_alloc(struct spanalloc_pool *pool,
						unsigned long nr);
struct spanalloc_frames *spanalloc_frames_alloc_empty(struct spanalloc_pool *pool,
						      unsigned long nr);
int spanalloc_frames_fill(struct spanalloc_frames *frames, unsigned long i);
bool spanalloc_frame_shared(struct page *page);
int spanalloc_frames_unshare(struct spanalloc_frames *frames, unsigned long i);
struct spanalloc_frames *spanalloc_frames_fork(struct spanalloc_frames *frames);
struct spanalloc_frames *spanalloc_frames_grow(struct spanalloc_frames *frames,
					       unsigned long add);
void spanalloc_frames_trim(struct spanalloc_frames *frames, unsigned long nr);
void spanalloc_frames_forget(struct spanalloc_frames *frames);
void spanalloc_frames_free(struct spanalloc_frames *frames);

/* ---- stats.c: global counters ---- */

/**
 * struct spanalloc_stats - module-wide counters, read through sysfs
 * @frames:		frames held by spans now.
 * @frames_alloced:	frames ever taken from the buddy allocator.
 * @frames_freed:	frames ever given back to it (or left to a fork()
 *			relative's page table).
 * @pool_frames:	frames waiting in pools, clean or dirty, those in
 *			the pools' per-CPU caches included.
 * @pool_clean:		pooled frames already zeroed (per-CPU cached ones
 *			included: they are all clean).
 * @zeroed_ahead:	frames zeroed by the pools' background worker.
 * @zeroed_sync:	pooled frames zeroed on the allocation path.
 * @shrinker_freed:	pooled frames given back by the shrinker.
 * @chunks:		buddy allocations by order.
 * @heaps:		live heaps.
 * @spans:		live span records, fork() copies included.
 * @fault_refills:	arena pages mapped by the fault handler.
 * @cow_copies:		frames copied because a fork() relative shared
 *			them: on a fault, or at fork() for a pinned frame.
 * @fork_shared:	frames shared with a child at fork().
 * @fork_pinned:	frames found pinned at fork(), copied for the child.
 */
struct spanalloc_stats {
	atomic_long_t frames;
	atomic_long_t frames_alloced;
	atomic_long_t frames_freed;
	atomic_long_t pool_frames;
	atomic_long_t pool_clean;
	atomic_long_t zeroed_ahead;
	atomic_long_t zeroed_sync;
	atomic_long_t shrinker_freed;
	atomic_long_t chunks[SPANALLOC_MAX_CHUNK_ORDER + 1];
	atomic_long_t heaps;
	atomic_long_t spans;
	atomic_long_t fault_refills;
	atomic_long_t cow_copies;
	atomic_long_t fork_shared;
	atomic_long_t fork_pinned;
};

extern struct spanalloc_stats spanalloc_stats;
extern const struct attribute_group *spanalloc_stats_groups[];
void spanalloc_debugfs_init(void);
void spanalloc_debugfs_exit(void);
long spanalloc_heap_stats_ioctl(void __user *arg);

/* ---- main.c: limits (module parameters) ---- */

extern unsigned long spanalloc_arena_max_bytes;
unsigned long spanalloc_heap_max_pages(void);
unsigned long spanalloc_max_frames(void);
unsigned long spanalloc_user_max_pages(void);
unsigned int spanalloc_user_max_heaps(void);

/* ---- user.c: per-user budgets ---- */

struct spanalloc_user;

struct spanalloc_user *spanalloc_user_get(bool unlimited);
void spanalloc_user_ref(struct spanalloc_user *user);
void spanalloc_user_put(struct spanalloc_user *user);
int spanalloc_user_charge(struct spanalloc_user *user, unsigned long pages);
void spanalloc_user_add(struct spanalloc_user *user, long pages);

/* ---- heap.c: heaps and the arena VMA ---- */

/**
 * struct spanalloc_span - record of one live span
 * @first:	arena page index of the span's first page.
 * @pages:	length in pages.
 * @size_class:	size class tag given by userspace; 0 for large spans.
 * @frames:	the span's frames (this heap's set; fork() relatives may
 *		own some of the same frames, see frames.c).
 * @spare:	range node reserved for the span's free, so that freeing
 *		never needs memory.
 * @serial:	the heap's spans_made when the span was made (a fork()
 *		child's copy keeps it): tells it from an older span that had
 *		the same address.
 */
struct spanalloc_span {
	unsigned long first;
	unsigned long pages;
	unsigned long serial;
	u32 size_class;
	struct spanalloc_frames *frames;
	struct spanalloc_range *spare;
};

/**
 * struct spanalloc_heap - the page heap of one address space
 * @kref:	lookups in flight plus one for the heap's life (table + VMA).
 * @node:	entry in the table of heaps by mm (heap.c).
 * @mm:		the address space the arena lives in. Not a reference: the
 *		arena VMA ends (and kills the heap) before the mm goes.
 * @pool:	frame pool of the cgroup that made the heap (a reference).
 * @user:	the user whose budget the heap's pages count against (a
 *		reference); a fork() child's heap keeps its parent's.
 * @unlimited:	made with CAP_IPC_LOCK: counted, not held to @user's budget.
 * @lock:	protects everything below.
 * @dead:	the arena is gone; no new span may be made.
 * @nr_vmas:	VMAs of @mm pointing at the heap (2 briefly during mremap).
 * @arena_start: first byte of the arena.
 * @arena_pages: size of the arena in pages.
 * @spans:	page index -> &struct spanalloc_span, one entry per span
 *		covering all its pages.
 * @free:	free arena space.
 * @nr_pages:	pages of the heap's live spans.
 * @nr_spans:	live spans.
 * @view:	view page index -> page of the span view (view.c).
 * @class_spans: live spans by size class.
 * @class_pages: their pages by size class.
 * @spans_made:	spans ever made.
 * @spans_freed: spans ever freed.
 * @calls:	span ioctls served.
 * @fault_refills: pages mapped by the fault handler.
 * @cow_copies:	frames this heap copied from a fork() relative's.
 */
struct spanalloc_heap {
	struct kref kref;
	struct hlist_node node;
	struct mm_struct *mm;
	struct spanalloc_pool *pool;
	struct spanalloc_user *user;
	bool unlimited;

	struct mutex lock;		/* protects all below */
	bool dead;
	unsigned int nr_vmas;
	unsigned long arena_start;
	unsigned long arena_pages;
	struct maple_tree spans;
	struct spanalloc_range_tree free;
	unsigned long nr_pages;
	unsigned long nr_spans;
	struct xarray view;
	unsigned long class_spans[SPANALLOC_NUM_CLASSES];
	unsigned long class_pages[SPANALLOC_NUM_CLASSES];
	unsigned long spans_made;
	unsigned long spans_freed;
	unsigned long calls;
	unsigned long fault_refills;
	unsigned long cow_copies;
};

int spanalloc_heap_mmap(struct vm_area_struct *vma);
struct spanalloc_heap *spanalloc_heap_find(struct mm_struct *mm);
void spanalloc_heap_put(struct spanalloc_heap *heap);
void spanalloc_heap_for_each(void (*fn)(struct spanalloc_heap *heap,
					void *arg), void *arg);
struct vm_area_struct *spanalloc_heap_vma(struct spanalloc_heap *heap);

/* ---- view.c: the span view ---- */

unsigned long spanalloc_view_bytes(struct spanalloc_heap *heap);
void spanalloc_view_set(struct spanalloc_heap *heap,
			struct spanalloc_span *span);
void spanalloc_view_clear(struct spanalloc_heap *heap,
			  struct spanalloc_span *span);
void spanalloc_view_resize(struct spanalloc_heap *heap,
			   struct spanalloc_span *span,
			   unsigned long old_pages);
void spanalloc_view_destroy(struct spanalloc_heap *heap);
void spanalloc_view_unmap(struct mm_struct *mm);
int spanalloc_view_mmap(struct vm_area_struct *vma);

/* ---- span.c: span records and the span ioctls ---- */

long spanalloc_span_alloc_ioctl(void __user *arg);
long spanalloc_span_free_ioctl(void __user *arg);
long spanalloc_span_alloc_batch_ioctl(void __user *arg);
long spanalloc_span_free_batch_ioctl(void __user *arg);
long spanalloc_span_resize_ioctl(void __user *arg);
void spanalloc_span_release(struct spanalloc_heap *heap,
			    struct spanalloc_span *span);
int spanalloc_span_clone_all(struct spanalloc_heap *dst,
			     struct spanalloc_heap *src);
vm_fault_t spanalloc_span_fault(struct spanalloc_heap *heap,
				struct vm_fault *vmf);

#endif /* SPANALLOC_INTERNAL_H */
