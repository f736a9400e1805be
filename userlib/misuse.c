/*
 * misuse.c: what happens when the program hands the allocator a pointer it
 * never gave out, an interior pointer, or one freed already: one line on
 * stderr and abort(), the way glibc says "free(): invalid pointer". Only
 * write(2) and a stack buffer: the heap may be corrupt by then.
 *
 * What is found, and when (the checks are internal.h's fast paths,
 * cache.c's and central.c's):
 *   - a pointer no span holds, an interior pointer, the tail of a small
 *     span after its last object: at once;
 *   - a double free of a small object whose first free is still in the
 *     calling thread's cache (word 1 holds its span's address), parked in the
 *     transfer cache (a walk of its batches) or back in its span's free
 *     list (freemap bit): at once; one still in another thread's
 *     cache: when both copies reach central, possibly after the object
 *     was handed out twice;
 *   - a double free of a large block: at once (its run is CACHED), or as
 *     an invalid pointer once its pages were merged or carved.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void _span_write_str(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = write(fd, s, len);

		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

static char *put_str(char *out, char *end, const char *s)
{
	while (*s && out < end)
		*out++ = *s++;
	return out;
}

void _span_invalid(const char *fn, const void *p, const char *why)
{
	char buf[160], hex[19], *out = buf, *end = buf + sizeof(buf) - 2;
	uintptr_t a = (uintptr_t)p;
	int i = (int)sizeof(hex) - 1;

	hex[i] = 0;
	do {
		hex[--i] = "0123456789abcdef"[a & 15];
		a >>= 4;
	} while (a && i > 2);
	hex[--i] = 'x';
	hex[--i] = '0';
	out = put_str(out, end, "spanalloc: ");
	out = put_str(out, end, fn);
	out = put_str(out, end, "(): invalid pointer ");
	out = put_str(out, end, hex + i);
	out = put_str(out, end, " (");
	out = put_str(out, end, why);
	out = put_str(out, end, ")");
	*out++ = '\n';
	*out = 0;
	_span_write_str(2, buf);
	abort();
}

const char *_span_not_object(const struct span *s, const void *p)
{
	uintptr_t off = (uintptr_t)p - s->base;

	return off % _span_classes[s->cls].size ? "interior pointer" :
		"past the last object of its span";
}

void _span_fatal(const char *msg)
{
	_span_write_str(2, "spanalloc: ");
	_span_write_str(2, msg);
	_span_write_str(2, "\n");
	abort();
}
