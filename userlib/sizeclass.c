/*
 * sizeclass.c: size classes — the table generated into
 * uapi/spanalloc_classes.h (scripts/gen-size-classes) turned into what the
 * fast paths need: a request size -> class lookup table (no division, no
 * search), and per class the batch sizes of the thread cache and the
 * constants free() uses to reject interior and span-tail pointers.
 *
 * The object test (span_is_object()): with M = floor(2^64 / size) + 1 and
 * e = size * M - 2^64 (1 <= e <= size), an offset off = k * size + r
 * inside a span (below 2^32) gives off * M mod 2^64 = k * e when r == 0,
 * and at least M otherwise (Lemire's divisibility test). So off is the
 * start of one of the span's nobjs objects iff off * M < nobjs * e: one
 * multiply and one compare reject interior pointers and the tail after
 * the last object.
 *
 * The 8-byte class stays in the table (the module's classes) but malloc
 * never uses it: an object holds the free list's link and the double-free
 * mark (SPAN_MIN_OBJECT, internal.h).
 */
#include <stdint.h>

#include "internal.h"

int32_t _span_bin_of[SPAN_CLASS_INDEX_MAX + 1];
size_t _span_small_limit;
int32_t _span_bin_tp0;
struct span_class _span_classes[SPAN_NUM_CLASSES];

static const uint32_t class_table[SPAN_NUM_CLASSES][2] =
	SPANALLOC_CLASS_TABLE_INIT;

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/*
 * Fill the tables. Called once from _span_init() before it sets
 * _span_small_limit, which lets the inline malloc() use them; until then
 * every malloc goes the slow way, which runs init.
 */
void _span_sizeclass_init(bool roomy)
{
	unsigned int cls = 1;
	size_t size, i;

	for (i = 1; i < SPAN_NUM_CLASSES; i++) {
		struct span_class *c = &_span_classes[i];

		c->size = class_table[i][0];
		c->pages = class_table[i][1];
		c->nobjs = (uint32_t)((c->pages * SPAN_PAGE) / c->size);
		c->magic = UINT64_MAX / c->size + 1;
		if (!(c->size & (c->size - 1)))
			c->magic++;	/* a power of two: floor(2^64/size) + 1 */
		c->limit = (uint64_t)c->nobjs * (c->size * c->magic);
		c->divmul = UINT32_MAX / c->size + 1;
		c->batch = clamp_u32(32768 / c->size, 2, 64);
		c->cap = roomy ? clamp_u32(1048576 / c->size, 2 * c->batch, 2048) :
			 clamp_u32(65536 / c->size, 2 * c->batch, 512);
	}
	_span_bin_tp0 = span_bin_tp_first();
	/* Index i holds sizes (16 i, 16 (i + 1)]: their class fits 16 (i + 1). */
	for (size = 16; size <= SPAN_SMALL_MAX; size += 16) {
		while (_span_classes[cls].size < size)
			cls++;
		/*
		 * An owned class: its staging bin while at most one thread
		 * has an inbox (none yet; remote.c switches it).
		 */
		_span_bin_of[span_class_index(size)] = span_class_owned(cls) ?
			span_free_bin_tp(cls) : span_bin_tp(cls);
	}
}

unsigned int _span_class_aligned(size_t size, size_t align)
{
	unsigned int cls;

	if (size > SPAN_SMALL_MAX || align > SPAN_PAGE)
		return 0;
	for (cls = 1; cls < SPAN_NUM_CLASSES; cls++) {
		const struct span_class *c = &_span_classes[cls];

		if (c->size >= size && c->size >= SPAN_MIN_OBJECT &&
		    !(c->size & (align - 1)))
			return cls;
	}
	return 0;
}
