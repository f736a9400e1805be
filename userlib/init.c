/*
 * init.c: process-wide start-up and the fork handlers.
 *
 * Init runs at load (a constructor) or on the first malloc, whichever
 * comes first, possibly before main() and from other libraries'
 * constructors. It calls nothing that allocates before the allocator
 * works: getenv() for the options, the backend's open/ioctl/mmap, and
 * table set-up. Only once _span_ready is set does it register the thread
 * exit key and the fork handlers (glibc may allocate there; by then that
 * allocation is served normally). Threads that raced with init wait on
 * init_lock.
 *
 * fork(): the prepare handler takes every lock of the library (init, then
 * remote.c's, then the order documented in central.c, then the backend's
 * stash locks, prim.h), so the child never inherits a lock held by a
 * thread that does not exist there; the child re-initialises
 * them, the parent unlocks. Other threads' caches are simply lost in the
 * child, like their stacks; their inboxes close (remote.c), so that the
 * child's frees of objects of spans those threads owned reach central.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>

#include "internal.h"
#include "prim.h"

int _span_ready;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int hooks_done;
static int init_dead;		/* the forced backend cannot start */

static void fork_prepare(void)
{
	pthread_mutex_lock(&init_lock);
	_span_remote_lock();
	_span_central_lock_all();
	_span_large_lock();
	_span_pagemap_lock();
	_span_record_lock();
	_span_prim_lock_all();
}

static void fork_parent(void)
{
	_span_prim_unlock_all();
	_span_record_unlock();
	_span_pagemap_unlock();
	_span_large_unlock();
	_span_central_unlock_all();
	_span_remote_unlock();
	pthread_mutex_unlock(&init_lock);
}

static void fork_child(void)
{
	_span_record_reinit();
	_span_pagemap_reinit();
	_span_large_reinit();
	_span_central_reinit();
	pthread_mutex_init(&init_lock, NULL);
	_span_prim_after_fork_child();
	/* Last: it may give objects to central. */
	_span_remote_after_fork_child(_span_tc.inbox);
}

/* Registrations that may allocate: only once the allocator works. */
static void init_hooks(void)
{
	if (__atomic_exchange_n(&hooks_done, 1, __ATOMIC_ACQ_REL))
		return;
	_span_cache_key_init();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/*
 * A forced backend that cannot start (SPANALLOC_BACKEND=kernel without a
 * usable device): said once, and every later malloc fails at once, with
 * nothing set up again (no descriptor taken per call).
 */
static void init_failed(void)
{
	if (__atomic_exchange_n(&init_dead, 1, __ATOMIC_ACQ_REL))
		return;
	_span_write_str(2, "spanalloc: SPANALLOC_BACKEND=kernel but "
			"/dev/spanalloc cannot be used: every malloc fails\n");
}

bool _span_init(void)
{
	if (span_load_acquire(&_span_ready))
		return true;
	if (span_load_acquire(&init_dead))
		return false;
	pthread_mutex_lock(&init_lock);
	if (!_span_ready && !init_dead) {
		_span_options_init();
		if (_span_prim_init() == SPAN_BACKEND_NONE) {
			init_failed();
			pthread_mutex_unlock(&init_lock);
			return false;
		}
		_span_stats_init();
		if (_span_prim_page_size() != SPAN_PAGE)
			_span_fatal("page size is not 4 KiB");
		_span_sizeclass_init(_span_prim_backend() == SPAN_BACKEND_MMAP);
		_span_transfer_init();
		span_store_release(&_span_ready, 1);
		/* The inline malloc() starts to use the tables. */
		span_store_release(&_span_small_limit, SPAN_SMALL_MAX);
	}
	pthread_mutex_unlock(&init_lock);
	if (!_span_ready)
		return false;
	/* No environ yet: libc is not initialised; the constructor will. */
	if (environ)
		init_hooks();
	return true;
}

__attribute__((constructor)) static void span_init_at_load(void)
{
	if (_span_init())
		init_hooks();
}

__attribute__((destructor)) static void span_fini(void)
{
	_span_stats_at_exit();
}
