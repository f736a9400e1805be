/*
 * batch: fixed-size batches, the pattern of glibc's benchtests
 * (bench-malloc-simple): for each size, allocate a batch of N blocks of that
 * size, then free them all in allocation order; repeat. Batches of 25, 100,
 * 400 and 1600, sizes 16 .. 4096 B.
 */
#include "common.h"

static const size_t sizes[] = { 16, 32, 64, 128, 256, 512, 1024, 4096 };
static const int batches[] = { 25, 100, 400, 1600 };

int main(int argc, char **argv)
{
	double scale = bench_scale(argc, argv);
	long work = scaled(scale, 1000000);	/* malloc+free pairs per cell */
	static void *p[1600];
	uint64_t sum = 0;
	unsigned s, b;

	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
			int n = batches[b];
			long it, iters = work / 8 / n + 1;
			int i;

			for (it = 0; it < iters; it++) {
				for (i = 0; i < n; i++) {
					p[i] = xmalloc(sizes[s]);
					*(char *)p[i] = (char)i;
				}
				for (i = 0; i < n; i++) {
					sum += *(unsigned char *)p[i];
					free(p[i]);
				}
			}
		}
	}
	printf("batch: %ld pairs per size, sum %llu\n", work / 8 * 4,
	       (unsigned long long)sum);
	return 0;
}
