// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc users: who may hold how much.
 *
 * Frames are unswappable: a heap's pages are in effect locked memory. The
 * policy (README.md, "Who may use the device"):
 *
 *   - the device is open to every user (mode 0666), as malloc is;
 *   - each user (uid in the initial user namespace) has a budget of span
 *     pages over all of its heaps, user_max_frames (default: 1/2 of RAM),
 *     and of heaps, user_max_heaps (default 1024), so that one user cannot
 *     take what the global limit (max_frames, 3/4 of RAM) leaves to the
 *     others. A heap made by a task with CAP_IPC_LOCK (which may lock
 *     memory without limit anyway) is counted but not held to the budget.
 *     The per-heap (heap_max_frames) and global limits hold for all.
 *     A heap's pages count whether its frames are present or given back
 *     with KEEP_RANGE, so span records, frame arrays and view pages
 *     (kernel memory, about 16 bytes per page) are bounded too;
 *   - frames and kernel memory are charged to the memory cgroup of the
 *     heap's pool, where an administrator sets memory.max;
 *   - a fork() child's heap counts against the same user, and is never
 *     refused for it: fork() does not fail because of spanalloc.
 *
 * A user's record lives while one of its heaps does.
 */
#include <linux/cred.h>
#include <linux/hashtable.h>
#include <linux/mm.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uidgid.h>

#include "internal.h"

/**
 * struct spanalloc_user - what one user holds
 * @node:	entry in user_table.
 * @uid:	the user.
 * @ref:	one per heap of the user.
 * @pages:	span pages of the user's heaps.
 */
struct spanalloc_user {
	struct hlist_node node;
	kuid_t uid;
	refcount_t ref;
	atomic_long_t pages;
};

static DEFINE_HASHTABLE(user_table, 6);
static DEFINE_SPINLOCK(user_table_lock);	/* protects user_table, refs */

/**
 * spanalloc_user_get() - the record of current's user, for a new heap
 * @unlimited:	the heap is not held to user_max_heaps (CAP_IPC_LOCK).
 *
 * Context: process context, may sleep.
 * Return: the record with a reference, ERR_PTR(-ENOMEM) without memory,
 * or ERR_PTR(-EMFILE) when the user has user_max_heaps heaps.
 */
struct spanalloc_user *spanalloc_user_get(bool unlimited)
{
	kuid_t uid = current_uid();
	struct spanalloc_user *user, *fresh;

	fresh = kzalloc(sizeof(*fresh), SPANALLOC_GFP);
	if (!fresh)
		return ERR_PTR(-ENOMEM);
	spin_lock(&user_table_lock);
	hash_for_each_possible(user_table, user, node, __kuid_val(uid)) {
		if (!uid_eq(user->uid, uid))
			continue;
		if (!unlimited &&
		    refcount_read(&user->ref) >= spanalloc_user_max_heaps())
			user = ERR_PTR(-EMFILE);
		else
			refcount_inc(&user->ref);
		spin_unlock(&user_table_lock);
		kfree(fresh);
		return user;
	}
	fresh->uid = uid;
	refcount_set(&fresh->ref, 1);
	hash_add(user_table, &fresh->node, __kuid_val(uid));
	spin_unlock(&user_table_lock);
	return fresh;
}

/**
 * spanalloc_user_ref() - another heap of @user (a fork() child's)
 * @user:	the record, with a reference held by the caller.
 */
void spanalloc_user_ref(struct spanalloc_user *user)
{
	refcount_inc(&user->ref);
}

/**
 * spanalloc_user_put() - a heap of @user is gone
 * @user:	the record.
 */
void spanalloc_user_put(struct spanalloc_user *user)
{
	spin_lock(&user_table_lock);
	if (!refcount_dec_and_test(&user->ref)) {
		spin_unlock(&user_table_lock);
		return;
	}
	hash_del(&user->node);
	spin_unlock(&user_table_lock);
	WARN_ON_ONCE(atomic_long_read(&user->pages));
	kfree(user);
}

/**
 * spanalloc_user_charge() - count @pages more span pages for @user
 * @user:	the record.
 * @pages:	pages a heap of @user is about to hold.
 *
 * Return: 0, or -ENOMEM (nothing charged) if that would take the user past
 * user_max_frames.
 */
int spanalloc_user_charge(struct spanalloc_user *user, unsigned long pages)
{
	if (atomic_long_add_return(pages, &user->pages) >
	    spanalloc_user_max_pages()) {
		atomic_long_sub(pages, &user->pages);
		return -ENOMEM;
	}
	return 0;
}

/**
 * spanalloc_user_add() - count or uncount span pages without a check
 * @user:	the record.
 * @pages:	pages held (positive) or let go of (negative).
 *
 * For fork() children and for frees.
 */
void spanalloc_user_add(struct spanalloc_user *user, long pages)
{
	atomic_long_add(pages, &user->pages);
}
