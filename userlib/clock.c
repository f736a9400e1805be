/*
 * clock.c: the time source of every decay (empty spans, free runs, stashes,
 * the kernel's refusals): a coarse monotonic clock in milliseconds, one
 * vDSO call, no lock. The bottom of the layers: it calls nothing of the
 * library.
 */
#define _GNU_SOURCE
#include <time.h>

#include "internal.h"

uint64_t _span_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
