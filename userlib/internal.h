/*
 * internal.h: libspanalloc's types, cross-file prototypes and the inline
 * fast paths of malloc() and free(). README.md teaches the tiers; this is
 * the map of who owns what.
 *
 * Layers
 *   An allocation crosses them once, downwards: a file calls only files
 *   below it (the _span_ calls between files form a DAG, no circle).
 *
 *     malloc() free() ... (override.c, alloc.c; fast paths inline below)
 *        |   small                               | large (> SMALL_MAX)
 *        v                                       v
 *     cache.c     thread cache, no lock        large.c
 *        |  \                                    |
 *        |   remote.c  owned classes: staging    |
 *        |   bins sorted, inboxes                |
 *        v  /                                    |
 *     central.c --> transfer.c                   |
 *        |   class locks; transfer locks         |
 *        v                                       v
 *     span.c  -- anonymous spans ---------> pageheap.c  page heap lock
 *        |                                       |
 *        | kernel spans                          v
 *        |                                    region.c
 *        v                                       |
 *     prim.c  backend, stash locks  <------------+
 *
 *   layer          files                  calls into (besides the bottom)
 *   API            override.c             alloc.c
 *                  alloc.c                init cache large central
 *                  glibc.c                init central
 *                  pages.c                init prim
 *                  stats.c                central large region prim
 *   start-up       init.c      [init]     stats cache remote central large
 *                                         prim
 *   thread cache   cache.c                remote central large
 *                  remote.c    [remote]   central
 *   central tier   central.c   [class]    transfer span pageheap prim
 *                  transfer.c  [transfer]
 *   spans          span.c                 pageheap prim
 *                  large.c                pageheap
 *   page heap      pageheap.c  [ph]       region prim
 *   address space  region.c               prim
 *   backend        prim.c      [stash]
 *   bottom         pagemap.c [leaves], record.c [records], clock.c,
 *                  counters.c, options.c, sizeclass.c, version.c,
 *                  misuse.c: any layer above may call them
 *
 *   [x]: the file owns lock x. Locks nest only downwards: while one is
 *   held its holder calls the bottom (records, page map) and no other
 *   layer, except init.c, which holds its lock over the start-up of the
 *   layers below, and its fork handler, which takes every lock in
 *   central.c's order. The inline fast paths take none.
 *
 *   ENOMEM from the backend: a lower layer fails with *reclaim set
 *   (bool *reclaim, before any fallback), and the top that owns the
 *   caches (cache.c's refill, alloc.c's large_alloc) gives them back,
 *   _span_reclaim(), and asks once more. Decay: central.c's sweep, from
 *   its slow paths, gives back expired spans (span.c), stashes (prim.c)
 *   and free runs (pageheap.c): one place for every tier.
 *
 * Glossary
 *   span     a run of whole pages from the backend (prim.h). A small span
 *            holds objects of one size class; a large span holds one
 *            allocation above SPANALLOC_SMALL_MAX.
 *   record   struct span: metadata of one span, kept in its own guarded
 *            mappings (record.c), never next to user data.
 *   page map address -> record, two-level radix table (pagemap.c).
 *   bin      one size class of a thread cache: a free list and its count.
 *   staging bin  where free() puts objects of an owned class (8, 16 B),
 *            sorted by span owner in the slow path (remote.c).
 *   inbox    a thread's lock-free lists of objects of its spans that other
 *            threads freed (remote.c).
 *   central  one size class shared by all threads: spans with free objects,
 *            empty spans waiting to decay (central.c).
 *   transfer one size class's whole batches on their way from a draining
 *            thread cache to a refilling one (transfer.c).
 *   run      free pages in the page heap (pageheap.c), a record in state
 *            CACHED.
 *   region   anonymous address space reserved at once, carved into spans
 *            and runs (region.c); a span's record says whether its pages
 *            are a region's or a kernel span.
 *
 * Invariants
 *   - Every page of a live small span maps to its record; a large span maps
 *     only the page of the pointer it handed out (span->user); a free run
 *     of the large page heap (state CACHED) maps only its first and last
 *     pages. So free() finds a large span only at the exact pointer, and a
 *     freed one in state CACHED or THREAD (a double free) or nowhere.
 *   - A large span in state THREAD is in exactly one thread's cache
 *     (struct span_tcache.large); that thread alone writes its state and
 *     zero flag, without a lock (relaxed atomics for the state, which the
 *     page heap reads: to it the span is in use, never a run).
 *   - An object is in exactly one place: handed out, in one bin (or
 *     staging bin, or inbox), in a transfer cache's batch, in its span's free list, or in the span's
 *     never-used tail (>= span->bump).
 *   - span->nfree counts the free-list and tail objects; nfree == nobjs
 *     means empty, nfree == 0 means full (on no central list).
 *   - An object is at least SPAN_MIN_OBJECT (16) bytes: word 0 is the free
 *     list's link, word 1 holds the address of its span's record while
 *     the object sits in a bin (a value the program never has: records
 *     live in the library's own mappings) and is cleared when malloc hands
 *     it out, so free() of an object that is already in the calling
 *     thread's bin is seen at once.
 *   - Bins and their objects are touched only by the owning thread;
 *     everything in central is under that class's lock, a transfer cache
 *     under its own.
 *   - Owned classes (remote.c): free() pushes on the staging bin
 *     (span->bin), malloc() pops the class's bin; an object of theirs may
 *     also wait in a thread's inbox, word 1 still its span's address.
 *     span->owner is a preference (the last thread to refill from the
 *     span), never needed for correctness.
 */
#ifndef SPANALLOC_INTERNAL_H
#define SPANALLOC_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spanalloc_classes.h"
#include "spanalloc.h"

/* Everything declared below is internal to the library: no GOT, no PLT. */
#pragma GCC visibility push(hidden)

#define SPAN_API	__attribute__((visibility("default")))
#define SPAN_NOINLINE	__attribute__((noinline))
#define SPAN_COLD	__attribute__((cold, noinline))
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

/* Atomics: the memory order is part of the name. */
#define span_load_relaxed(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define span_load_acquire(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define span_store_relaxed(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define span_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define span_add_relaxed(p, v)		__atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define span_sub_relaxed(p, v)		__atomic_sub_fetch((p), (v), __ATOMIC_RELAXED)
#define span_fetch_or_relaxed(p, v)	__atomic_fetch_or((p), (v), __ATOMIC_RELAXED)
#define span_and_relaxed(p, v)		__atomic_and_fetch((p), (v), __ATOMIC_RELAXED)

/*
 * The library's locks guard short critical sections: they spin a little
 * before they sleep (glibc's adaptive mutex), since a thread that sleeps
 * on one pays two context switches and a wake-up (largemt: 11,269 context
 * switches with plain mutexes, tcmalloc 71). Each file that has one
 * defines _GNU_SOURCE.
 */
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
#define SPAN_LOCK_INITIALIZER	PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
#else
#define SPAN_LOCK_INITIALIZER	PTHREAD_MUTEX_INITIALIZER
#endif

/* A lock made anew (a fork child's), of the same kind. */
static inline void span_lock_reinit(pthread_mutex_t *m)
{
	pthread_mutexattr_t attr;

	pthread_mutexattr_init(&attr);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
	pthread_mutex_init(m, &attr);
	pthread_mutexattr_destroy(&attr);
}

#define SPAN_PAGE_SHIFT		12
#define SPAN_PAGE		((size_t)1 << SPAN_PAGE_SHIFT)
#define SPAN_SMALL_MAX		SPANALLOC_SMALL_MAX
#define SPAN_NUM_CLASSES	SPANALLOC_NUM_CLASSES
#define SPAN_MIN_ALIGN		16
#define SPAN_MIN_OBJECT		16	/* the link and the double-free mark */

/* ---------------------------------------------------------------------
 * Types
 * ------------------------------------------------------------------- */

enum span_state {
	SPAN_STATE_FREE = 0,	/* record unused */
	SPAN_STATE_FULL,	/* small, every object out */
	SPAN_STATE_PARTIAL,	/* small, on central partial list */
	SPAN_STATE_EMPTY,	/* small, every object free, decaying */
	SPAN_STATE_LARGE,	/* large, handed out */
	SPAN_STATE_CACHED,	/* large, in the large cache, decaying */
	SPAN_STATE_THREAD,	/* large, freed into a thread's cache (large.c) */
	SPAN_STATE_PAGES,	/* span_pages_alloc(): the program's (pages.c) */
};

/*
 * Three cache lines, each written by one party, so that free()'s reads
 * do not share a line with what central writes under its lock (review
 * M2): line 0 is set when the span is made (and, for large spans, by the
 * page heap under its lock, and the zero flag by the thread whose cache
 * keeps it) and read by free()'s fast path; line 1 is the
 * central lists' (small spans, under the class lock); line 2 the page
 * heap's age list. Records are 64-byte aligned (record.c's meta_alloc).
 */
struct span {
	/* Line 0: read by free()'s fast path; keep base first. */
	uintptr_t base;		/* first byte of the span */
	uint64_t magic;		/* span_class.magic; 0: large */
	uint64_t limit;		/* span_class.limit; 0: large */
	uint32_t cls;		/* size class, 0 for large */
	uint32_t nobjs;
	size_t pages;
	uintptr_t user;		/* large: the pointer handed out */
	struct region *region;	/* the region its pages are carved from;
				   NULL: a small span of the kernel */
	uint32_t zero;		/* every page reads as zero (fresh) */
	int32_t bin;		/* small: span_free_bin_tp(cls), for free() */
	/* Line 1: small spans' central state, under the class's lock. */
	_Alignas(64) uint32_t state;	/* enum span_state */
	uint32_t nfree;		/* free objects: free list + tail */
	void *free;		/* objects given back to this span */
	uintptr_t bump;		/* first never-used object */
	uint64_t *freemap;	/* bit per object: 1 = not handed out */
	struct span *next;	/* list links: central, large cache, records */
	struct span *prev;
	uint64_t stamp_ms;	/* when it became empty or cached */
	struct span_inbox *owner;	/* owned classes: the inbox of the
					   thread that refilled from it last */
	/* Line 2: large spans and free runs (pageheap.c), under its lock. */
	_Alignas(64) struct span *older;	/* age list of free runs */
	struct span *newer;
	uint32_t pinned;	/* a free run that cannot go back yet */
};

/* Address space the page heap carves (region.c). */
struct region {
	uintptr_t base;
	size_t pages;
	bool kernel;		/* one large span of the module, else
				   anonymous memory */
};

struct span_list {
	struct span *first;
	struct span *last;
	size_t count;
};

/* Per size class, fixed at init from SPANALLOC_CLASS_TABLE_INIT. */
struct span_class {
	uint32_t size;
	uint32_t pages;
	uint32_t nobjs;
	uint32_t batch;		/* objects moved per refill/drain */
	uint32_t cap;		/* most objects a bin keeps */
	uint32_t divmul;	/* off / size == (off * divmul) >> 32 */
	/*
	 * off is the start of an object (off % size == 0 and off < nobjs *
	 * size: not the span's tail) iff off * magic < limit, for any off
	 * inside the span (span_is_object()).
	 */
	uint64_t magic;
	uint64_t limit;
};

/*
 * A bin counts both ways so that each fast path tests with the one
 * instruction that updates: malloc takes one from @count and goes the slow
 * way when that makes it negative (the bin was empty), free takes one from
 * @room and drains when that makes it negative (the bin was at its max).
 * @room is the max (struct span_tcache) less @count; 0 before init, so the
 * first malloc and free of a thread go the slow way. Both stay far below
 * 2^31; the slow paths put a -1 back (span_bin_settle()).
 */
struct span_bin {
	void *head;
	int32_t count;
	int32_t room;
};

/*
 * Classes 1 ... SPAN_OWNED_CLASSES (8 and 16 bytes: four or more objects
 * to a cache line; malloc() uses the 16-byte one, objects being at least
 * SPAN_MIN_OBJECT) have owners (remote.c): free() pushes their objects on
 * a staging bin that malloc() never pops, and the slow path sorts it: the
 * objects of spans this thread refilled from last go to its bin, the
 * others to the inbox of the thread that did. A -D for measurements only
 * (README, "Measured"; the tests assume 2).
 */
#ifndef SPAN_OWNED_CLASSES
#define SPAN_OWNED_CLASSES	2
#endif

/* Most sorts a thread skips after ones that found only its own objects. */
#define SPAN_SORT_QUIET_MAX	63

static inline bool span_class_owned(unsigned int cls)
{
	return cls - 1 < SPAN_OWNED_CLASSES;
}

/*
 * A thread's objects of owned classes that other threads freed, one
 * lock-free stack per class (pushed by them, taken whole by the owner):
 * remote.c. Never freed: a thread that exits closes its inbox and a new
 * thread reopens it, which adopts the spans that still name it.
 */
struct span_inbox {
	_Alignas(64) void *head[SPAN_OWNED_CLASSES];
	uint64_t active_ms;		/* the owner's last restock (coarse):
					   idle for the decay interval, its
					   objects go to central */
	struct span_inbox *next;	/* every inbox, for fork and reuse */
	bool open;			/* under remote.c's lock */
	/*
	 * Held to take a list (or close it) and to walk one, so that no
	 * walk follows links of a list another thread has taken; pushes
	 * only prepend and take no lock.
	 */
	pthread_mutex_t take_lock;
};

enum span_tc_state {
	SPAN_TC_UNINIT = 0,
	SPAN_TC_LIVE,
	SPAN_TC_DEAD,		/* thread exiting: no caching any more */
};

/*
 * A thread's bins may grow past one batch each (cache.c) by at most this
 * many bytes in all: a class that needs more takes it from the others.
 */
#define SPAN_TCACHE_GROWTH	(1UL << 20)

/*
 * Freed large spans a thread keeps for its next large malloc() (large.c):
 * at most this many, of at most SPAN_TC_LARGE_PAGES pages each, and at
 * most SPAN_TC_LARGE_BYTES in all.
 */
#define SPAN_TC_LARGE_SLOTS	16
#define SPAN_TC_LARGE_PAGES	64
#define SPAN_TC_LARGE_BYTES	(2UL << 20)

struct span_tcache {
	struct span_bin bins[SPAN_NUM_CLASSES];
	/* free()'s bins for the owned classes 1 ... SPAN_OWNED_CLASSES */
	struct span_bin staged[SPAN_OWNED_CLASSES];
	struct span_inbox *inbox;	/* NULL: none (then every span is own) */
	/*
	 * Per owned class: sorts to skip (the staging bin then serves as a
	 * plain bin), and how many the last sort that found only this
	 * thread's objects set: 1, 3, 7 ... SPAN_SORT_QUIET_MAX, 0 again
	 * when a sort finds another thread's object (cache.c).
	 */
	uint8_t sort_skip[SPAN_OWNED_CLASSES];
	uint8_t sort_quiet[SPAN_OWNED_CLASSES];
	int32_t max[SPAN_NUM_CLASSES];	/* count above this drains */
	uint32_t state;
	uint32_t steal_next;	/* the class a grow takes from next */
	uint64_t flush_gen;	/* the flush request last met (cache.c) */
	size_t grown;		/* sum of (max - batch) * size, bytes */
	uint32_t nlarge;	/* large[0] oldest, large[nlarge - 1] newest */
	size_t large_bytes;
	struct span *large[SPAN_TC_LARGE_SLOTS];
};

/* ---------------------------------------------------------------------
 * sizeclass.c
 * ------------------------------------------------------------------- */

/*
 * Indexed by span_class_index(): where the bin of the class for that size
 * is, as span_bin_tp() gives it, so that the fast path uses it as it is
 * (span_bin_ref()). Every class malloc uses is a multiple of 16 bytes, so
 * one shift indexes them all: an 8 KiB table, one formula, no branch on
 * the fast path. Zero until init, which is no bin (offset 0 is the thread
 * control block): the gate alone keeps the fast path off it, which reads
 * the table only for sizes 1 ... _span_small_limit, 0 until the table is
 * filled.
 */
#define SPAN_CLASS_INDEX_MAX	((SPAN_SMALL_MAX - 1) >> 4)
extern int32_t _span_bin_of[SPAN_CLASS_INDEX_MAX + 1];
extern size_t _span_small_limit;	/* SPAN_SMALL_MAX once init is done */
extern struct span_class _span_classes[SPAN_NUM_CLASSES];

/*
 * @roomy: bins may hold up to 1 MiB / 2,048 objects of a class (the mmap
 * backend; all of a thread's growth past first batches stays within
 * SPAN_TCACHE_GROWTH); else 64 KiB / 512, as before (the kernel backend,
 * whose frames are charged and mapped whole: more kept in caches left
 * memcg_pressure's unkillable workers alone at their cgroup's limit).
 */
void _span_sizeclass_init(bool roomy);
/* Smallest class holding @size with objects aligned to @align (<= page). */
unsigned int _span_class_aligned(size_t size, size_t align);

/* Index i holds sizes (16 i, 16 (i + 1)], and size 0 (malloc(0)). */
static inline size_t span_class_index(size_t size)
{
	return (size - (size != 0)) >> 4;
}

/*
 * span_bin_tp_first(), kept at init: a table entry less it is the class's
 * bin (or staging bin) in bytes. (Computed here, GCC would subtract the TLS offset straight
 * from the GOT, which the linker cannot relax in a static link.)
 */
extern int32_t _span_bin_tp0;

/*
 * The size class malloc(@size) takes, @size <= SPAN_SMALL_MAX, after init.
 * An owned class's entry names its bin, or its staging bin while one
 * thread runs (remote.c), which follows the bins in struct span_tcache.
 */
static inline unsigned int span_class_of(size_t size)
{
	unsigned int i = (unsigned int)((_span_bin_of[span_class_index(size)] -
					 _span_bin_tp0) /
					(int32_t)sizeof(struct span_bin));

	return i < SPAN_NUM_CLASSES ? i : i - SPAN_NUM_CLASSES + 1;
}

/* ---------------------------------------------------------------------
 * pagemap.c
 * ------------------------------------------------------------------- */

#define SPAN_PM_LEAF_BITS	18
#define SPAN_PM_ROOT_BITS	(47 - SPAN_PAGE_SHIFT - SPAN_PM_LEAF_BITS)
#define SPAN_PM_LEAF_SHIFT	(SPAN_PAGE_SHIFT + SPAN_PM_LEAF_BITS)

/*
 * The page map (pagemap.c). Leaf entries hold a record's address less the
 * page map's own, so that an entry of 0 (no span on that page) stands for
 * @none, a record whose limit of 0 admits no object: free() finds a
 * foreign pointer by the object test it makes anyway, with no NULL test.
 * Root entry i is 0 (no leaf) or its leaf's address less i << (LEAF_BITS
 * + 3): the leaf's entry for page number n = a >> PAGE_SHIFT, which lies
 * in root i's range, is then at root[i] + 8 n, without masking n.
 */
struct span_pagemap {
	struct span none;
	uintptr_t root[1UL << SPAN_PM_ROOT_BITS];
};

extern struct span_pagemap _span_pm;

/* Map pages [@addr, @addr + @pages pages) to @s (NULL to unmap). */
int _span_pagemap_set(uintptr_t addr, size_t pages, struct span *s);
void _span_pagemap_lock(void);
void _span_pagemap_unlock(void);
void _span_pagemap_reinit(void);

/*
 * Page @a's record in *@s, _span_pm.none if no span is there; false when
 * no leaf covers @a (then *@s is not set).
 */
static inline bool span_pagemap_find(uintptr_t a, struct span **s)
{
	uintptr_t i = a >> SPAN_PM_LEAF_SHIFT;
	uintptr_t pm = (uintptr_t)&_span_pm, leaf;
	uintptr_t *root;

	if (unlikely(i >= (1UL << SPAN_PM_ROOT_BITS)))
		return false;
	/* From the one address both levels use (else GCC adds twice). */
	root = (uintptr_t *)(pm + offsetof(struct span_pagemap, root));
	leaf = span_load_acquire(&root[i]);
	if (unlikely(!leaf))
		return false;
	leaf += (a >> SPAN_PAGE_SHIFT) * sizeof(uintptr_t);
	*s = (struct span *)(span_load_relaxed((uintptr_t *)leaf) + pm);
	return true;
}

/* The record of the span page @a is in, or NULL. */
static inline struct span *span_pagemap_get(uintptr_t a)
{
	struct span *s;

	if (!span_pagemap_find(a, &s) || s == &_span_pm.none)
		return NULL;
	return s;
}

/* ---------------------------------------------------------------------
 * record.c: span records and other metadata, span lists
 * ------------------------------------------------------------------- */

/* Mappings for allocator metadata, with guard pages; never user data. */
void *_span_meta_map(size_t bytes);
/* A metadata block of up to 256 bytes (not zeroed); NULL + errno. */
void *_span_meta_alloc(size_t bytes);
void _span_meta_free(void *p, size_t bytes);

/*
 * A record (not zeroed) whose stale magic and limit are cleared, with a
 * freemap if @cls is not 0; NULL + errno.
 */
struct span *_span_record_alloc(unsigned int cls);
/* A zeroed record for a large span or free run, no pages; NULL + errno. */
struct span *_span_record_new(void);
/* Free a record (and its freemap) that holds no pages and is in no map. */
void _span_record_drop(struct span *s);
/* Bytes of the freemap of a small span of @cls. */
size_t _span_freemap_bytes(unsigned int cls);
/* Mark every object of small span @s free in its bitmap. */
void _span_freemap_fill(struct span *s);
void _span_record_lock(void);
void _span_record_unlock(void);
void _span_record_reinit(void);

void _span_list_push(struct span_list *l, struct span *s);
void _span_list_remove(struct span_list *l, struct span *s);

/* ---------------------------------------------------------------------
 * span.c: small spans from the backend or the page heap
 * ------------------------------------------------------------------- */

/*
 * A small span of @pages pages for class @cls (not 0: large spans are the
 * page heap's) with its record; NULL + errno.
 */
struct span *_span_span_new(size_t pages, unsigned int cls, bool *reclaim);
/*
 * Unmap every span of @l (emptied) from the page map and give it back
 * where it came from: kernel spans in backend batches (kept and retried
 * if the kernel refuses), anonymous ones to the page heap.
 */
void _span_span_release_list(struct span_list *l);

/* ---------------------------------------------------------------------
 * central.c
 * ------------------------------------------------------------------- */

/*
 * Up to @want objects of @cls as a NULL-terminated chain; 0 on ENOMEM.
 * Spans it takes objects from name @owner (owned classes).
 */
uint32_t _span_central_refill(unsigned int cls, uint32_t want, void **chain,
			      struct span_inbox *owner, bool *reclaim);
/* Give back @n objects of @cls chained from @head. */
void _span_central_drain(unsigned int cls, void *head, uint32_t n);
/* Release empty spans whose decay expired (all of them if @force). */
void _span_central_collect(bool force);
void _span_central_lock_all(void);
void _span_central_unlock_all(void);
void _span_central_reinit(void);
void _span_central_stats(struct span_stats *st);
/* Free objects of @cls in central: partial spans' and empty spans'. */
uint64_t _span_central_class_free(unsigned int cls);
/* Is object @a of small span @s free in central (its freemap bit set)? */
bool _span_central_has_free(struct span *s, uintptr_t a);

/* ---------------------------------------------------------------------
 * transfer.c: whole batches between thread caches
 * ------------------------------------------------------------------- */

#define SPAN_TRANSFER_SLOTS	64

/* Set each class's capacity (after _span_sizeclass_init()). */
void _span_transfer_init(void);
/* Keep @chain, a NULL-terminated batch of @cls; false when full. */
bool _span_transfer_put(unsigned int cls, void *chain);
/* A batch of @cls (NULL-terminated), or NULL when there is none. */
void *_span_transfer_get(unsigned int cls);
/*
 * Take out the batches of @cls not asked for since the last call (all if
 * @force) into @out (room for SPAN_TRANSFER_SLOTS); how many.
 */
uint32_t _span_transfer_take_idle(unsigned int cls, bool force, void **out);
/* Is @p in one of @cls's batches? (walks them: cold paths only) */
bool _span_transfer_has(unsigned int cls, const void *p);
/* Objects of @cls held (unlocked read: for stats). */
uint64_t _span_transfer_objects(unsigned int cls);
void _span_transfer_lock_all(void);
void _span_transfer_unlock_all(void);
void _span_transfer_reinit(void);

/* ---------------------------------------------------------------------
 * remote.c: owned classes, staging bins sorted, inboxes
 * ------------------------------------------------------------------- */

/* An inbox for a new thread cache (a closed one reopened); NULL + errno. */
struct span_inbox *_span_inbox_open(void);
/* The thread of @ib exits: its objects go to central, it may be reused. */
void _span_inbox_close(struct span_inbox *ib);
/*
 * Take every object of @cls that other threads sent to @ib: chain in
 * *@head (NULL-terminated), its last object in *@tail; how many.
 */
uint32_t _span_inbox_take(struct span_inbox *ib, unsigned int cls,
			  void **head, void **tail);
/* The owner of @ib restocks: it is not idle (senders read it). */
void _span_inbox_active(struct span_inbox *ib);
/*
 * Is @p in @ib's list of @cls, any thread's inbox? (walks it under its
 * take lock: cold paths only)
 */
bool _span_inbox_has(struct span_inbox *ib, unsigned int cls, const void *p);

/* What a sort keeps: the objects of spans whose owner is the sorter. */
struct span_sorted {
	void *head, *tail;
	uint32_t count;
};

/*
 * Sort the @n objects of @cls chained from @head (a staging bin's): those
 * of spans that name @me (or none) into @own, the others onto their
 * owners' inboxes (or central, when closed).
 */
void _span_remote_sort(unsigned int cls, void *head, uint32_t n,
		       struct span_inbox *me, struct span_sorted *own);
/*
 * At most one thread has an open inbox: no object a thread frees belongs
 * nearer another running thread, so the staging bins serve as plain bins
 * (no sort) and the size table names them, so that malloc() pops them
 * (remote.c). A hint, read without a lock.
 */
bool _span_remote_alone(void);
/* Set the size table's entries of the owned classes for @alone. */
void _span_remote_table(bool alone);
/* Every open inbox's objects to central (malloc_trim(), the reclaim). */
void _span_remote_flush_all(void);
void _span_remote_lock(void);
void _span_remote_unlock(void);
/* In a fork child: the inboxes of threads that it does not have close. */
void _span_remote_after_fork_child(struct span_inbox *mine);

/* ---------------------------------------------------------------------
 * cache.c: the thread cache's slow paths
 * ------------------------------------------------------------------- */

extern __thread struct span_tcache _span_tc;


/*
 * The thread pointer, where it is one instruction: initial-exec TLS sits
 * at the same offset from it in every thread, so an offset taken once
 * (span_bin_tp(): the size table's entries, a span record's bin) finds
 * this thread's bin: an %fs operand on x86-64, one add elsewhere. Without
 * the builtin, the thread cache itself: the offsets are then from it, and
 * as good.
 */
#ifdef __has_builtin
#if __has_builtin(__builtin_thread_pointer)
#define SPAN_HAVE_THREAD_POINTER	1
#endif
#endif

static inline char *span_tp(void)
{
#ifdef SPAN_HAVE_THREAD_POINTER
	return __builtin_thread_pointer();
#else
	return (char *)&_span_tc;
#endif
}

/*
 * Bin 0 as an offset from span_tp(), the same in every thread: for init,
 * which keeps it (_span_bin_tp0). In integers: the two addresses are of
 * different objects, and from such a pointer difference GCC 12 made a bin
 * reference whose stores it dropped.
 */
static inline int32_t span_bin_tp_first(void)
{
	return (int32_t)((uintptr_t)&_span_tc.bins[0] - (uintptr_t)span_tp());
}

/*
 * Class @cls's bin as an offset from span_tp(), after init: from bin 0's
 * as init kept it. (Computed from the TLS offset in a loop, GCC loaded 32
 * bits of the GOT's 64-bit entry: a static link cannot relax that.)
 */
static inline int32_t span_bin_tp(unsigned int cls)
{
	return _span_bin_tp0 + (int32_t)(cls * sizeof(struct span_bin));
}

/* The bin free() pushes objects of @cls on: span->bin. */
static inline int32_t span_free_bin_tp(unsigned int cls)
{
	if (span_class_owned(cls))
		return _span_bin_tp0 + (int32_t)(offsetof(struct span_tcache,
							  staged) +
						 (cls - 1) * sizeof(struct span_bin));
	return span_bin_tp(cls);
}

/*
 * On x86-64 the thread pointer is %fs's base, and GCC and clang name that
 * segment (__seg_fs): a bin at offset @off from span_tp() is then one
 * %fs-relative operand, with no add of the thread pointer (%fs:0) first.
 * SPAN_BIN_SEG qualifies the pointers the bin functions below work with
 * (a GNU C extension: the Makefile builds with -std=gnu11); elsewhere it
 * is empty and a span_bin_ref() is the plain address. Bins are touched
 * through such references only (cache.c's bin_of() too), never through
 * _span_tc.bins: GCC does not promise that an %fs access and a plain one
 * may alias. Offsets come from integer arithmetic or from memory, never
 * from a pointer difference (see span_bin_tp()). Not on x32 (__LP64__):
 * there GCC truncates the %fs operand's address to 32 bits.
 */
#if defined(__x86_64__) && defined(__LP64__) && defined(__SEG_FS) && \
	defined(SPAN_HAVE_THREAD_POINTER) && !defined(__STRICT_ANSI__)
#define SPAN_HAVE_SEG_FS	1
#define SPAN_BIN_SEG		__seg_fs
#else
#define SPAN_BIN_SEG
#endif

static inline struct span_bin SPAN_BIN_SEG *span_bin_ref(int32_t off)
{
#ifdef SPAN_HAVE_SEG_FS
	return (struct span_bin SPAN_BIN_SEG *)(intptr_t)off;
#else
	return (struct span_bin *)(span_tp() + off);
#endif
}

void *_span_alloc_class_slow(unsigned int cls);
/* free() of @p whose word 1 holds @s: a double free, or by chance. */
void _span_free_suspect(void *p, struct span *s, const char *fn);
/* The bin free() pushes objects of @s on (span->bin) went past its max. */
void _span_bin_overflow(const struct span *s);
void _span_cache_key_init(void);
/*
 * Hand the calling thread's cached objects (small and large) back, and
 * ask every other thread to do the same on its next slow path (a refill,
 * a drain, a large malloc or free): malloc_trim() and the reclaim before
 * ENOMEM reach the caches of all threads that still allocate.
 */
void _span_cache_flush(void);
/*
 * Set up this thread's cache if it is not (a thread whose first
 * allocation is large); false once the thread is exiting.
 */
bool _span_cache_prepare(void);
/*
 * The backend said ENOMEM: give back the calling thread's cache (the
 * others flush at their next slow path: the retry does not wait for
 * them), empty spans, stashes, free runs and spare regions, so that a
 * retry may succeed. Call with no lock of the library held.
 *
 * Only the top asks for it (here and alloc.c), never a lower layer: an
 * allocation below the thread cache that takes @reclaim (bool *) fails
 * with *reclaim set where the backend said ENOMEM and a reclaim may help;
 * its caller reclaims and calls again with NULL, which means: reclaimed
 * already, fall back or fail.
 */
void _span_reclaim(void);

/* ---------------------------------------------------------------------
 * pageheap.c: free runs of pages for large spans
 * ------------------------------------------------------------------- */

/*
 * A large span of @pages pages (state LARGE), carved from a free run or
 * new; span->zero says whether all of it reads as zero. NULL + errno.
 */
struct span *_span_ph_alloc(size_t pages, bool *reclaim);
/* Large span @s (out of the page map) becomes a free run. */
void _span_ph_free(struct span *s);
/* Resize live span @s to @pages in place (never moves); false if not. */
bool _span_ph_resize(struct span *s, size_t pages);
/*
 * @pages of anonymous memory for a small span: a record (class 0, no
 * freemap) with base, pages and region set. @fallback: the kernel said
 * no (counted). NULL + errno.
 */
struct span *_span_ph_small(size_t pages, bool fallback, bool *reclaim);
/*
 * Anonymous spans of @l (out of the page map, class 0, stamp_ms when they
 * became empty) become free runs.
 */
void _span_ph_small_free(struct span_list *l);
/* Give back runs past their decay (all of them if @force). */
void _span_ph_collect(bool force);
void _span_ph_lock(void);
void _span_ph_unlock(void);
void _span_ph_reinit(void);
void _span_ph_stats(struct span_stats *st);
/*
 * The kernel refused a span even after a reclaim: for the decay interval
 * new spans come from anonymous memory without asking it (and without a
 * reclaim each).
 */
void _span_kernel_refused(void);
bool _span_kernel_refusing(void);

/* ---------------------------------------------------------------------
 * region.c: address space for the page heap
 * ------------------------------------------------------------------- */

/*
 * Reserve an anonymous region of at least @pages pages (64 MiB when there
 * is room) with its descriptor; NULL + errno.
 */
struct region *_span_region_new(size_t pages);
/*
 * A kernel region of at least @pages pages: one large span of the module
 * (populated and zeroed), with its descriptor; NULL + errno.
 */
struct region *_span_region_kernel(size_t pages);
/*
 * Give a whole region back (munmap, or SPAN_FREE for a kernel region) and
 * free its descriptor; -1 (kept) on failure.
 */
int _span_region_free(struct region *r);
/*
 * Kernel region: shorten it to @pages in place (SPAN_RESIZE); 0 or -1 +
 * errno. The caller then sets @r->pages.
 */
int _span_region_shrink(struct region *r, size_t pages);
/* Give back the memory of @pages pages at @addr (MADV_DONTNEED). */
int _span_region_release(uintptr_t addr, size_t pages);
void _span_region_stats(struct span_stats *st);

/* ---------------------------------------------------------------------
 * large.c
 * ------------------------------------------------------------------- */

void *_span_large_alloc(size_t size, size_t align, bool zero, bool *reclaim);
/* Free live large span @s; its pointer passed _span_large_check(). */
void _span_large_free(struct span *s);
/* Abort (as @fn) unless @p is the pointer live large span @s handed out. */
void _span_large_check(const struct span *s, const void *p, const char *fn);
/* Give the large spans of this thread's cache (@tc) to the page heap. */
void _span_large_flush_thread(struct span_tcache *tc);
size_t _span_large_usable(const struct span *s);
/* Resize in place (or by moving pages without copying); NULL if not. */
void *_span_large_resize(struct span *s, void *p, size_t size);
void _span_large_collect(bool force);
void _span_large_lock(void);
void _span_large_unlock(void);
void _span_large_reinit(void);
void _span_large_stats(struct span_stats *st);

/* ---------------------------------------------------------------------
 * alloc.c: the malloc family (internal entry points of override.c)
 * ------------------------------------------------------------------- */

void *_span_calloc(size_t n, size_t size);
void *_span_realloc(void *p, size_t size);
void *_span_reallocarray(void *p, size_t n, size_t size);
int _span_posix_memalign(void **out, size_t align, size_t size);
void *_span_aligned_alloc(size_t align, size_t size);
void *_span_memalign(size_t align, size_t size);
void *_span_valloc(size_t size);
void *_span_pvalloc(size_t size);
size_t _span_usable_size(const void *p);
/* The inline fast paths' way out: start-up, large blocks, bad pointers. */
void *_span_malloc_slow(size_t size);
void _span_free_slow(void *p, const char *fn);

/* ---------------------------------------------------------------------
 * misuse.c
 * ------------------------------------------------------------------- */

/* "spanalloc: @fn(): invalid pointer 0x... (@why)" on stderr, abort(). */
__attribute__((noreturn, cold))
void _span_invalid(const char *fn, const void *p, const char *why);
/* Why @p in small span @s is no object: "interior pointer" or the tail. */
const char *_span_not_object(const struct span *s, const void *p);
/* "spanalloc: @msg" on stderr, abort(). */
__attribute__((noreturn, cold)) void _span_fatal(const char *msg);
/* Write @s to @fd with write(2). */
void _span_write_str(int fd, const char *s);

/* ---------------------------------------------------------------------
 * options.c
 * ------------------------------------------------------------------- */

struct span_options {
	bool stats;			/* SPANALLOC_STATS: print at exit */
	bool stats_verbose;		/* SPANALLOC_STATS=2: and backend calls */
	uint64_t decay_ms;		/* SPANALLOC_DECAY_MS */
	size_t large_cache_bytes;	/* SPANALLOC_LARGE_CACHE_MB: free runs,
					   or live large bytes if more */
	size_t lazy_bytes;		/* SPANALLOC_LAZY_MB: kernel backend,
					   large spans this big are anonymous */
};

extern struct span_options _span_opt;
void _span_options_init(void);
/* getenv() that also works before libc has set environ up. */
const char *_span_env(const char *name);

/* ---------------------------------------------------------------------
 * counters.c: counters kept off the fast paths
 * ------------------------------------------------------------------- */

struct span_counters {
	uint64_t prim_allocs;
	uint64_t prim_frees;
	uint64_t prim_errors;
	uint64_t reclaims;
	uint64_t mapped_bytes;
	uint64_t mapped_peak;
	uint64_t threads;
	uint64_t threads_exited;
};

extern struct span_counters _span_cnt;
/* Mapped bytes change by @delta; keeps the peak. */
void _span_stats_mapped(int64_t delta);

/* ---------------------------------------------------------------------
 * stats.c: span_stats() and the report at exit
 * ------------------------------------------------------------------- */

void _span_stats_init(void);
void _span_stats_at_exit(void);

/* ---------------------------------------------------------------------
 * init.c
 * ------------------------------------------------------------------- */

extern int _span_ready;		/* 1 once the process-wide init is done */
/* Returns true when the allocator works (backend up). */
bool _span_init(void);

/* ---------------------------------------------------------------------
 * clock.c
 * ------------------------------------------------------------------- */

/* Monotonic milliseconds (coarse): decay stamps. */
uint64_t _span_now_ms(void);

/* ---------------------------------------------------------------------
 * The fast paths, inlined into alloc.c and override.c
 * ------------------------------------------------------------------- */

/* @a, inside small span @s, is the start of one of its objects. */
static inline bool span_is_object(const struct span *s, uintptr_t a)
{
	return (a - s->base) * s->magic < s->limit;
}

/* An object leaves the allocator: it no longer looks like a bin's. */
static inline void *span_obj_out(void *p)
{
	((uint64_t *)p)[1] = 0;
	return p;
}

/*
 * Take one from @bin's count; false when it was empty. The count, not the
 * head, says empty: a double free's cycle ends. Written as a decrement
 * whose sign is the test, which compilers make one subtraction in memory
 * and a branch on its flag; the slow path puts a count of -1 back to 0
 * (span_bin_settle()), since a store here would undo that.
 */
static inline bool span_bin_take(struct span_bin SPAN_BIN_SEG *bin)
{
	if (unlikely(--bin->count < 0))
		return false;
	bin->room++;
	return true;
}

/* After a fast path's decrement went below 0: the count it stood for. */
static inline void span_bin_settle(struct span_bin SPAN_BIN_SEG *bin)
{
	if (bin->count < 0)
		bin->count = 0;
}

/* Pop an object from @bin, which span_bin_take() said holds one. */
static inline void *span_bin_pop_taken(struct span_bin SPAN_BIN_SEG *bin)
{
	void *p = bin->head;

	bin->head = *(void **)p;
	return span_obj_out(p);
}

/*
 * Push @p on @bin; false when that took it past its max: then the caller
 * must call _span_bin_overflow(), which counts @p. (Counting it only
 * after the test keeps the two counters' updates in different blocks,
 * which GCC would otherwise merge into a slower vector add.)
 */
static inline bool span_bin_push(struct span_bin SPAN_BIN_SEG *bin, void *p)
{
	*(void **)p = bin->head;
	bin->head = p;
	if (unlikely(--bin->room < 0))
		return false;
	bin->count++;
	return true;
}

/*
 * The bin malloc() pops for @cls: for an owned class the one the size
 * table names (its staging bin while one thread runs: remote.c), else
 * span_bin_tp(cls).
 */
static inline int32_t span_malloc_bin_tp(unsigned int cls)
{
	if (span_class_owned(cls)) {
		int32_t e = span_load_relaxed(&_span_bin_of[span_class_index(
						_span_classes[cls].size)]);

		if (e == span_free_bin_tp(cls))
			return e;
	}
	return span_bin_tp(cls);
}

static inline void *span_bin_pop(unsigned int cls)
{
	struct span_bin SPAN_BIN_SEG *bin = span_bin_ref(span_malloc_bin_tp(cls));

	if (unlikely(!span_bin_take(bin)))
		return _span_alloc_class_slow(cls);
	return span_bin_pop_taken(bin);
}

/*
 * _span_small_limit, ordered before the fast path's read of the table
 * (init's release store of the limit follows the table's). On x86 every
 * load is an acquire: a plain one, which the compare takes as its operand
 * (the compiler cannot hoist the table's load above the compare: its index
 * is in bounds only after it).
 */
static inline size_t span_small_limit(void)
{
#ifdef __x86_64__
	return _span_small_limit;
#else
	return span_load_acquire(&_span_small_limit);
#endif
}

/*
 * Sizes 1 ... _span_small_limit (0 before init, so that the first malloc
 * runs it) from their bin; the rest, malloc(0) too, the slow way.
 */
static inline void *span_malloc_inline(size_t size)
{
	struct span_bin SPAN_BIN_SEG *bin;
	size_t n = size - 1;

	if (unlikely(n >= span_small_limit()))
		return _span_malloc_slow(size);
	bin = span_bin_ref(_span_bin_of[n >> 4]);
	if (unlikely(!span_bin_take(bin)))
		return _span_malloc_slow(size);
	return span_bin_pop_taken(bin);
}

/*
 * Misuse checks on the way (each a compare on a line already loaded):
 * NULL, foreign, large, interior and span-tail pointers go the slow way;
 * an object whose word 1 holds its span's address may be in the bin
 * already.
 */
static inline void span_free_inline(void *p, const char *fn)
{
	uintptr_t a = (uintptr_t)p;
	struct span_bin SPAN_BIN_SEG *bin;
	struct span *s;

	if (unlikely(!span_pagemap_find(a, &s)) ||
	    unlikely(!span_is_object(s, a))) {
		_span_free_slow(p, fn);
		return;
	}
	if (unlikely(((struct span **)p)[1] == s)) {
		_span_free_suspect(p, s, fn);
		return;
	}
	bin = span_bin_ref(s->bin);
	((struct span **)p)[1] = s;
	if (unlikely(!span_bin_push(bin, p)))
		_span_bin_overflow(s);
}

#pragma GCC visibility pop

#endif /* SPANALLOC_INTERNAL_H */
