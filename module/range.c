// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc range allocator: the free space of one arena.
 *
 * Free runs of pages sit in two red-black trees: by start, to find a freed
 * run's neighbours and merge with them, and by (length, start), to find the
 * smallest run that fits (best fit, lowest address among equals). Both
 * operations are O(log n) in the number of free runs. Best fit keeps large
 * runs whole for large spans, as the page heaps of Go and TCMalloc do.
 *
 * The caller serialises all calls on one tree (spanalloc_heap.lock).
 */
#include <linux/errno.h>
#include <linux/slab.h>

#include "internal.h"

static struct spanalloc_range *range_of_start(struct rb_node *node)
{
	return rb_entry(node, struct spanalloc_range, by_start);
}

static struct spanalloc_range *range_of_size(struct rb_node *node)
{
	return rb_entry(node, struct spanalloc_range, by_size);
}

static bool range_size_less(const struct spanalloc_range *a,
			    const struct spanalloc_range *b)
{
	if (a->pages != b->pages)
		return a->pages < b->pages;
	return a->first < b->first;
}

static void range_insert(struct spanalloc_range_tree *tree,
			 struct spanalloc_range *range)
{
	struct rb_node **link = &tree->by_start.rb_node, *parent = NULL;

	while (*link) {
		parent = *link;
		if (range->first < range_of_start(parent)->first)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&range->by_start, parent, link);
	rb_insert_color(&range->by_start, &tree->by_start);

	link = &tree->by_size.rb_node;
	parent = NULL;
	while (*link) {
		parent = *link;
		if (range_size_less(range, range_of_size(parent)))
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&range->by_size, parent, link);
	rb_insert_color(&range->by_size, &tree->by_size);
	tree->free_pages += range->pages;
}

static void range_erase(struct spanalloc_range_tree *tree,
			struct spanalloc_range *range)
{
	rb_erase(&range->by_start, &tree->by_start);
	rb_erase(&range->by_size, &tree->by_size);
	tree->free_pages -= range->pages;
}

/**
 * spanalloc_range_init() - make a tree holding one free run [0, @pages)
 * @tree:	the tree to set up.
 * @pages:	size of the arena in pages, at least 1.
 *
 * Context: process context, may sleep.
 * Return: 0, or -ENOMEM.
 */
int spanalloc_range_init(struct spanalloc_range_tree *tree,
			 unsigned long pages)
{
	struct spanalloc_range *range;

	tree->by_start = RB_ROOT;
	tree->by_size = RB_ROOT;
	tree->free_pages = 0;
	range = kmalloc(sizeof(*range), SPANALLOC_GFP);
	if (!range)
		return -ENOMEM;
	range->first = 0;
	range->pages = pages;
	range_insert(tree, range);
	return 0;
}

/**
 * spanalloc_range_clone() - copy every free run of @src into empty @dst
 * @dst:	an uninitialised tree.
 * @src:	the tree to copy.
 *
 * Context: process context, may sleep; caller holds @src's heap lock.
 * Return: 0, or -ENOMEM with @dst empty.
 */
int spanalloc_range_clone(struct spanalloc_range_tree *dst,
			  const struct spanalloc_range_tree *src)
{
	struct spanalloc_range *copy;
	struct rb_node *node;

	dst->by_start = RB_ROOT;
	dst->by_size = RB_ROOT;
	dst->free_pages = 0;
	for (node = rb_first(&src->by_start); node; node = rb_next(node)) {
		copy = kmalloc(sizeof(*copy), SPANALLOC_GFP);
		if (!copy) {
			spanalloc_range_destroy(dst);
			return -ENOMEM;
		}
		copy->first = range_of_start(node)->first;
		copy->pages = range_of_start(node)->pages;
		range_insert(dst, copy);
	}
	return 0;
}

/**
 * spanalloc_range_destroy() - free every run of @tree, leaving it empty
 * @tree:	the tree.
 */
void spanalloc_range_destroy(struct spanalloc_range_tree *tree)
{
	struct spanalloc_range *range, *next;

	rbtree_postorder_for_each_entry_safe(range, next, &tree->by_start,
					     by_start)
		kfree(range);
	tree->by_start = RB_ROOT;
	tree->by_size = RB_ROOT;
	tree->free_pages = 0;
}

/**
 * spanalloc_range_alloc() - take @pages pages from the best-fitting run
 * @tree:	the tree.
 * @pages:	pages wanted, at least 1.
 * @first:	out: index of the first page taken.
 *
 * Takes the front of the smallest free run that holds @pages pages.
 *
 * Context: caller holds the heap lock. Never sleeps.
 * Return: 0, or -ENOMEM when no run is long enough.
 */
int spanalloc_range_alloc(struct spanalloc_range_tree *tree,
			  unsigned long pages, unsigned long *first)
{
	struct rb_node *node = tree->by_size.rb_node;
	struct spanalloc_range *best = NULL, *range;

	while (node) {
		range = range_of_size(node);
		if (range->pages >= pages) {
			best = range;
			node = node->rb_left;
		} else {
			node = node->rb_right;
		}
	}
	if (!best)
		return -ENOMEM;

	*first = best->first;
	range_erase(tree, best);
	if (best->pages == pages) {
		kfree(best);
	} else {
		best->first += pages;
		best->pages -= pages;
		range_insert(tree, best);
	}
	return 0;
}

/**
 * spanalloc_range_take() - take [@first, @first + @pages) if it is all free
 * @tree:	the tree.
 * @first:	first page wanted; the page before it must not be free.
 * @pages:	pages wanted, at least 1.
 *
 * For growing a span in place: the run right after a span, if free, starts
 * where the span ends, so one lookup by start finds it.
 *
 * Context: caller holds the heap lock. Never sleeps.
 * Return: 0, or -ENOMEM when those pages are not all free.
 */
int spanalloc_range_take(struct spanalloc_range_tree *tree,
			 unsigned long first, unsigned long pages)
{
	struct rb_node *node = tree->by_start.rb_node;
	struct spanalloc_range *range;

	while (node) {
		range = range_of_start(node);
		if (first < range->first)
			node = node->rb_left;
		else if (first > range->first)
			node = node->rb_right;
		else
			break;
	}
	if (!node || range->pages < pages)
		return -ENOMEM;

	range_erase(tree, range);
	if (range->pages == pages) {
		kfree(range);
	} else {
		range->first += pages;
		range->pages -= pages;
		range_insert(tree, range);
	}
	return 0;
}

/**
 * spanalloc_range_free() - give [@first, @first + @pages) back to @tree
 * @tree:	the tree.
 * @first:	first page of the run, which must not be free already.
 * @pages:	length of the run, at least 1.
 * @spare:	a node the caller allocated ahead; used or freed here, so that
 *		giving space back never fails.
 *
 * Merges the run with a free neighbour on either side.
 *
 * Context: caller holds the heap lock. Never sleeps.
 */
void spanalloc_range_free(struct spanalloc_range_tree *tree,
			  unsigned long first, unsigned long pages,
			  struct spanalloc_range *spare)
{
	struct rb_node *node = tree->by_start.rb_node;
	struct spanalloc_range *prev = NULL, *next = NULL, *range;

	while (node) {
		range = range_of_start(node);
		if (range->first < first) {
			prev = range;
			node = node->rb_right;
		} else {
			next = range;
			node = node->rb_left;
		}
	}

	if (prev && prev->first + prev->pages == first) {
		range_erase(tree, prev);
		first = prev->first;
		pages += prev->pages;
		kfree(spare);
		spare = prev;
	}
	if (next && first + pages == next->first) {
		range_erase(tree, next);
		pages += next->pages;
		kfree(next);
	}
	spare->first = first;
	spare->pages = pages;
	range_insert(tree, spare);
}
