// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc stats: module-wide counters and their sysfs files, one value
 * per file under /sys/class/misc/spanalloc/stats/; the counters of every
 * heap in debugfs, spanalloc/heaps; the caller's heap through
 * SPANALLOC_IOC_HEAP_STATS. README.md ("Observing") lists them all.
 *
 * The debugfs reader walks the table of heaps (heap.c) under its spinlock
 * and reads each heap's counters with READ_ONCE(), never taking a heap
 * lock: a heap busy in a long call cannot stall it, nor it anyone.
 */
#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>

#include "internal.h"

struct spanalloc_stats spanalloc_stats;

/* One read-only file showing one counter of spanalloc_stats. */
struct spanalloc_stat_attr {
	struct device_attribute attr;
	size_t offset;
};

static ssize_t spanalloc_stat_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	struct spanalloc_stat_attr *sa =
		container_of(attr, struct spanalloc_stat_attr, attr);
	atomic_long_t *counter = (void *)&spanalloc_stats + sa->offset;

	return sysfs_emit(buf, "%ld\n", atomic_long_read(counter));
}

/* Buddy allocations by order, 0 to SPANALLOC_MAX_CHUNK_ORDER, on one line. */
static ssize_t chunks_by_order_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	int order, len = 0;

	for (order = 0; order <= SPANALLOC_MAX_CHUNK_ORDER; order++)
		len += sysfs_emit_at(buf, len, "%s%ld", order ? " " : "",
				     atomic_long_read(&spanalloc_stats.chunks[order]));
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}
static DEVICE_ATTR_RO(chunks_by_order);

/* Pooled frames in per-CPU caches: summed over pools and CPUs when read. */
static ssize_t pcp_frames_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lu\n", spanalloc_pool_pcp_frames());
}
static DEVICE_ATTR_RO(pcp_frames);

#define STAT(name) \
	offsetof(struct spanalloc_stats, name)

static struct spanalloc_stat_attr spanalloc_stat_attrs[] = {
	{ __ATTR(frames, 0444, spanalloc_stat_show, NULL), STAT(frames) },
	{ __ATTR(frames_alloced, 0444, spanalloc_stat_show, NULL),
	  STAT(frames_alloced) },
	{ __ATTR(frames_freed, 0444, spanalloc_stat_show, NULL),
	  STAT(frames_freed) },
	{ __ATTR(pool_frames, 0444, spanalloc_stat_show, NULL),
	  STAT(pool_frames) },
	{ __ATTR(pool_clean, 0444, spanalloc_stat_show, NULL),
	  STAT(pool_clean) },
	{ __ATTR(zeroed_ahead, 0444, spanalloc_stat_show, NULL),
	  STAT(zeroed_ahead) },
	{ __ATTR(zeroed_sync, 0444, spanalloc_stat_show, NULL),
	  STAT(zeroed_sync) },
	{ __ATTR(shrinker_freed, 0444, spanalloc_stat_show, NULL),
	  STAT(shrinker_freed) },
	{ __ATTR(heaps, 0444, spanalloc_stat_show, NULL), STAT(heaps) },
	{ __ATTR(spans, 0444, spanalloc_stat_show, NULL), STAT(spans) },
	{ __ATTR(fault_refills, 0444, spanalloc_stat_show, NULL),
	  STAT(fault_refills) },
	{ __ATTR(cow_copies, 0444, spanalloc_stat_show, NULL),
	  STAT(cow_copies) },
	{ __ATTR(fork_shared, 0444, spanalloc_stat_show, NULL),
	  STAT(fork_shared) },
	{ __ATTR(fork_pinned, 0444, spanalloc_stat_show, NULL),
	  STAT(fork_pinned) },
};

static struct attribute *spanalloc_stats_attrs[] = {
	&spanalloc_stat_attrs[0].attr.attr,
	&spanalloc_stat_attrs[1].attr.attr,
	&spanalloc_stat_attrs[2].attr.attr,
	&spanalloc_stat_attrs[3].attr.attr,
	&spanalloc_stat_attrs[4].attr.attr,
	&spanalloc_stat_attrs[5].attr.attr,
	&spanalloc_stat_attrs[6].attr.attr,
	&spanalloc_stat_attrs[7].attr.attr,
	&spanalloc_stat_attrs[8].attr.attr,
	&spanalloc_stat_attrs[9].attr.attr,
	&spanalloc_stat_attrs[10].attr.attr,
	&spanalloc_stat_attrs[11].attr.attr,
	&spanalloc_stat_attrs[12].attr.attr,
	&spanalloc_stat_attrs[13].attr.attr,
	&dev_attr_chunks_by_order.attr,
	&dev_attr_pcp_frames.attr,
	NULL
};

static_assert(ARRAY_SIZE(spanalloc_stats_attrs) ==
	      ARRAY_SIZE(spanalloc_stat_attrs) + 3);

static const struct attribute_group spanalloc_stats_group = {
	.name	= "stats",
	.attrs	= spanalloc_stats_attrs,
};

const struct attribute_group *spanalloc_stats_groups[] = {
	&spanalloc_stats_group,
	NULL
};

static struct dentry *spanalloc_debugfs;

/* The process owning @mm, as "pid comm", when the kernel keeps track. */
static void heaps_show_owner(struct seq_file *m, struct mm_struct *mm)
{
#ifdef CONFIG_MEMCG
	struct task_struct *owner;

	rcu_read_lock();
	owner = rcu_dereference(mm->owner);
	if (owner) {
		seq_printf(m, "%d %s", task_tgid_nr(owner), owner->comm);
		rcu_read_unlock();
		return;
	}
	rcu_read_unlock();
#endif
	seq_puts(m, "- -");
}

/* One line of debugfs spanalloc/heaps; see heaps_show(). */
static void heaps_show_one(struct spanalloc_heap *heap, void *arg)
{
	struct seq_file *m = arg;
	unsigned long spans;
	int class;

	heaps_show_owner(m, heap->mm);
	seq_printf(m, " %lu %lu %lu %lu %lu %lu %lu",
		   READ_ONCE(heap->nr_spans), READ_ONCE(heap->nr_pages),
		   READ_ONCE(heap->spans_made), READ_ONCE(heap->spans_freed),
		   READ_ONCE(heap->calls), READ_ONCE(heap->fault_refills),
		   READ_ONCE(heap->cow_copies));
	for (class = 0; class < SPANALLOC_NUM_CLASSES; class++) {
		spans = READ_ONCE(heap->class_spans[class]);
		if (spans)
			seq_printf(m, " %d:%lu:%lu", class, spans,
				   READ_ONCE(heap->class_pages[class]));
	}
	seq_putc(m, '\n');
}

/*
 * One line per live heap:
 *   pid comm spans pages made freed calls refills copies class:spans:pages...
 */
static int heaps_show(struct seq_file *m, void *unused)
{
	seq_puts(m, "# pid comm spans pages made freed calls refills copies [class:spans:pages...]\n");
	spanalloc_heap_for_each(heaps_show_one, m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(heaps);

/**
 * spanalloc_debugfs_init() - make debugfs spanalloc/heaps
 *
 * Debugfs is optional: failures are ignored, as debugfs wants.
 */
void spanalloc_debugfs_init(void)
{
	spanalloc_debugfs = debugfs_create_dir("spanalloc", NULL);
	debugfs_create_file("heaps", 0444, spanalloc_debugfs, NULL,
			    &heaps_fops);
}

/**
 * spanalloc_debugfs_exit() - remove debugfs spanalloc/
 */
void spanalloc_debugfs_exit(void)
{
	debugfs_remove_recursive(spanalloc_debugfs);
}

/**
 * spanalloc_heap_stats_ioctl() - SPANALLOC_IOC_HEAP_STATS
 * @arg:	user pointer to a &struct spanalloc_heap_stats.
 *
 * Context: process context; takes the heap lock.
 * Return: 0 or a negative errno, as uapi/spanalloc.h documents.
 */
long spanalloc_heap_stats_ioctl(void __user *arg)
{
	struct spanalloc_heap_stats __user *ureq = arg;
	struct spanalloc_class_stat *classes = NULL;
	struct spanalloc_heap_stats req;
	struct spanalloc_heap *heap;
	u32 n, class;
	int err;

	if (copy_from_user(&req, ureq, sizeof(req)))
		return -EFAULT;
	if (req.reserved0 || req.reserved[0] || req.reserved[1] ||
	    req.nr_classes > SPANALLOC_NUM_CLASSES ||
	    (req.nr_classes && !req.classes))
		return -EINVAL;
	n = req.nr_classes;

	heap = spanalloc_heap_find(current->mm);
	if (!heap)
		return -ENXIO;
	if (n) {
		classes = kmalloc_array(n, sizeof(*classes), GFP_KERNEL);
		if (!classes) {
			spanalloc_heap_put(heap);
			return -ENOMEM;
		}
	}
	mutex_lock(&heap->lock);
	req.nr_classes = SPANALLOC_NUM_CLASSES;
	req.spans = heap->nr_spans;
	req.pages = heap->nr_pages;
	req.spans_made = heap->spans_made;
	req.spans_freed = heap->spans_freed;
	req.calls = heap->calls;
	req.fault_refills = heap->fault_refills;
	for (class = 0; class < n; class++) {
		classes[class].spans = heap->class_spans[class];
		classes[class].pages = heap->class_pages[class];
	}
	mutex_unlock(&heap->lock);
	spanalloc_heap_put(heap);

	err = 0;
	if ((n && copy_to_user(u64_to_user_ptr(req.classes), classes,
			       n * sizeof(*classes))) ||
	    copy_to_user(ureq, &req, sizeof(req)))
		err = -EFAULT;
	kfree(classes);
	return err;
}
