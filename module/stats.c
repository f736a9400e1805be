// SPDX-License-Identifier: GPL-2.0
/*
 * spanalloc stats: module-wide counters and their sysfs files, one value
 * per file under /sys/class/misc/spanalloc/stats/ (README.md lists them).
 */
#include <linux/device.h>
#include <linux/sysfs.h>

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
	&dev_attr_chunks_by_order.attr,
	NULL
};

static_assert(ARRAY_SIZE(spanalloc_stats_attrs) ==
	      ARRAY_SIZE(spanalloc_stat_attrs) + 2);

static const struct attribute_group spanalloc_stats_group = {
	.name	= "stats",
	.attrs	= spanalloc_stats_attrs,
};

const struct attribute_group *spanalloc_stats_groups[] = {
	&spanalloc_stats_group,
	NULL
};
