/*
 * largelive: many live large blocks churning (review H1 of userlib-938911b).
 *   For each of 32, 64, 128 and 256 live slots: every step frees a random
 *   slot and allocates a block of 33 KiB .. 1 MiB (log-uniform) in it,
 *   touching one byte per page, so freed blocks are holes between live
 *   ones that cannot merge. An allocator that gives such holes back to
 *   the system pays a map and faults on nearly every step.
 *   metric steps_per_s: steps per second over all four rounds.
 */
#include <math.h>
#include "common.h"

#define KIB	1024UL
#define MAXSLOTS 256

int main(int argc, char **argv)
{
	static const int live[] = { 32, 64, 128, 256 };
	double scale = bench_scale(argc, argv), t0 = now_s();
	long steps = scaled(scale, 4000), i, total = 0;
	static char *slot[MAXSLOTS];
	uint64_t r = 7, sum = 0;
	unsigned int l;

	for (l = 0; l < sizeof(live) / sizeof(live[0]); l++) {
		size_t n = (size_t)live[l];

		for (i = 0; i < steps; i++) {
			size_t k = rnd(&r) % n;
			size_t sz = (size_t)(33 * KIB * pow(1024.0 / 33, rnd01(&r)));

			sum += replace_block(&slot[k], sz, (unsigned char)i);
		}
		total += steps;
		for (i = 0; i < MAXSLOTS; i++) {
			free(slot[i]);
			slot[i] = NULL;
		}
	}
	printf("largelive: %ld steps at 32..256 live blocks, sum %llu\n", total,
	       (unsigned long long)sum);
	printf("metric steps_per_s %.0f\n", total / (now_s() - t0));
	return 0;
}
