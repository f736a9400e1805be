// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc: a page heap in the kernel for a userspace malloc.
 *
 * This file owns the misc device /dev/spanalloc, its file operations and
 * the module parameters (limits). A process opens the device, maps its
 * arena once (heap.c) and asks for spans with ioctls (span.c):
 *
 *	fd = open("/dev/spanalloc", O_RDWR | O_CLOEXEC);
 *	arena = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
 *	ioctl(fd, SPANALLOC_IOC_SPAN_ALLOC, &(struct spanalloc_span_alloc){
 *		.pages = 8 });
 *
 * The ABI is uapi/spanalloc.h; README.md tells the whole design.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "internal.h"

unsigned long spanalloc_arena_max_bytes = 64UL << 30;
module_param_named(arena_max_bytes, spanalloc_arena_max_bytes, ulong, 0644);
MODULE_PARM_DESC(arena_max_bytes, "Largest arena one mmap() may make (default 64 GiB)");

static unsigned long heap_max_frames;
module_param(heap_max_frames, ulong, 0644);
MODULE_PARM_DESC(heap_max_frames, "Most frames one heap may hold; 0: half of RAM");

module_param_named(pool_max_frames, spanalloc_pool_max_frames, ulong, 0644);
MODULE_PARM_DESC(pool_max_frames, "Most free frames kept in each cgroup's pool (default 16384: 64 MiB)");

module_param_named(memcg_headroom_kb, spanalloc_memcg_headroom_kb, ulong, 0644);
MODULE_PARM_DESC(memcg_headroom_kb, "KiB a span request leaves free below its memory cgroup's limit, for the faults after it (default 1024; 0: none)");

static unsigned long max_frames;
module_param(max_frames, ulong, 0644);
MODULE_PARM_DESC(max_frames, "Most frames all heaps together may hold; 0: 3/4 of RAM");

static unsigned long user_max_frames;
module_param(user_max_frames, ulong, 0644);
MODULE_PARM_DESC(user_max_frames, "Most span pages all heaps of one user may hold; 0: 1/2 of RAM");

static unsigned int user_max_heaps = 1024;
module_param(user_max_heaps, uint, 0644);
MODULE_PARM_DESC(user_max_heaps, "Most heaps (processes with an arena) of one user (default 1024)");

/**
 * spanalloc_user_max_pages() - the per-user page budget now in force
 *
 * Return: the user_max_frames parameter, or 1/2 of RAM if it is 0.
 */
unsigned long spanalloc_user_max_pages(void)
{
	unsigned long limit = READ_ONCE(user_max_frames);

	return limit ? limit : totalram_pages() / 2;
}

/**
 * spanalloc_user_max_heaps() - the per-user heap count limit now in force
 *
 * Return: the user_max_heaps parameter.
 */
unsigned int spanalloc_user_max_heaps(void)
{
	return READ_ONCE(user_max_heaps);
}

/**
 * spanalloc_heap_max_pages() - the per-heap frame limit now in force
 *
 * Return: the heap_max_frames parameter, or half of RAM if it is 0.
 */
unsigned long spanalloc_heap_max_pages(void)
{
	unsigned long limit = READ_ONCE(heap_max_frames);

	return limit ? limit : totalram_pages() / 2;
}

/**
 * spanalloc_max_frames() - the global frame limit now in force
 *
 * Return: the max_frames parameter, or 3/4 of RAM if it is 0.
 */
unsigned long spanalloc_max_frames(void)
{
	unsigned long limit = READ_ONCE(max_frames);

	return limit ? limit : totalram_pages() / 4 * 3;
}

/* Make the arena of the caller's heap, or map the view of its spans. */
static int spanalloc_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff == SPANALLOC_VIEW_OFFSET >> PAGE_SHIFT)
		return spanalloc_view_mmap(vma);
	return spanalloc_heap_mmap(vma);
}

static long spanalloc_info_ioctl(void __user *arg)
{
	struct spanalloc_info info = {
		.abi_version = SPANALLOC_ABI_VERSION,
		.page_size = PAGE_SIZE,
		.arena_max_bytes = READ_ONCE(spanalloc_arena_max_bytes),
		.heap_max_pages = spanalloc_heap_max_pages(),
	};
	struct spanalloc_heap *heap;

	heap = spanalloc_heap_find(current->mm);
	if (heap) {
		mutex_lock(&heap->lock);
		if (!heap->dead) {
			info.arena_start = heap->arena_start;
			info.arena_bytes = heap->arena_pages << PAGE_SHIFT;
			info.heap_pages = heap->nr_pages;
			info.heap_spans = heap->nr_spans;
			info.view_bytes = spanalloc_view_bytes(heap);
		}
		mutex_unlock(&heap->lock);
		spanalloc_heap_put(heap);
	}
	if (copy_to_user(arg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

/* Every command checks every field of its argument; see uapi/spanalloc.h. */
static long spanalloc_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case SPANALLOC_IOC_INFO:
		return spanalloc_info_ioctl(uarg);
	case SPANALLOC_IOC_SPAN_ALLOC:
		return spanalloc_span_alloc_ioctl(uarg);
	case SPANALLOC_IOC_SPAN_FREE:
		return spanalloc_span_free_ioctl(uarg);
	case SPANALLOC_IOC_SPAN_ALLOC_BATCH:
		return spanalloc_span_alloc_batch_ioctl(uarg);
	case SPANALLOC_IOC_SPAN_FREE_BATCH:
		return spanalloc_span_free_batch_ioctl(uarg);
	case SPANALLOC_IOC_SPAN_RESIZE:
		return spanalloc_span_resize_ioctl(uarg);
	case SPANALLOC_IOC_HEAP_STATS:
		return spanalloc_heap_stats_ioctl(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations spanalloc_fops = {
	.owner		= THIS_MODULE,
	.mmap		= spanalloc_mmap,
	.unlocked_ioctl	= spanalloc_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/*
 * Every user may have a heap, as every user may call malloc: frames are
 * charged to the heap's memory cgroup and bounded by the limits above,
 * per heap, per user (user.c) and for all.
 */
static struct miscdevice spanalloc_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "spanalloc",
	.fops	= &spanalloc_fops,
	.groups	= spanalloc_stats_groups,
	.mode	= 0666,
};

static int __init spanalloc_init(void)
{
	int err;

	err = spanalloc_pool_init();
	if (err)
		return err;
	err = misc_register(&spanalloc_misc);
	if (err) {
		spanalloc_pool_exit();
		return err;
	}
	spanalloc_debugfs_init();
	return 0;
}

static void __exit spanalloc_exit(void)
{
	spanalloc_debugfs_exit();
	misc_deregister(&spanalloc_misc);
	spanalloc_pool_exit();
}

module_init(spanalloc_init);
module_exit(spanalloc_exit);

MODULE_DESCRIPTION("spanalloc: page heap for a userspace malloc");
MODULE_AUTHOR("The spanalloc developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(SPANALLOC_VERSION);	/* the file VERSION, through Kbuild */
