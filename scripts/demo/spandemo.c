/*
 * spandemo: the program `make demo` runs inside the VM. It takes spans from
 * the page heap through libspanalloc (span_pages_alloc), writes them, forks,
 * and after each step prints what the module reports: its sysfs counters
 * and the heap's own view (SPANALLOC_IOC_INFO).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spanalloc.h"

static long stat_of(const char *name)
{
	char path[128], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/misc/spanalloc/stats/%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strtol(buf, NULL, 10);
}

static void show(const char *what)
{
	printf("  %-44s module: frames=%-6ld spans=%-4ld heaps=%ld copies=%ld\n",
	       what, stat_of("frames"), stat_of("spans"), stat_of("heaps"),
	       stat_of("cow_copies"));
}

int main(void)
{
	enum { N = 6 };
	static const size_t pages[N] = { 1, 4, 16, 64, 256, 512 };
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *span[N];
	size_t total = 0;
	int i, status;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("spandemo: backend %s, page size %ld\n", span_backend(), page);
	show("start");
	for (i = 0; i < N; i++) {
		char what[64];

		span[i] = span_pages_alloc(pages[i]);
		if (!span[i]) {
			perror("span_pages_alloc");
			return 1;
		}
		total += pages[i];
		snprintf(what, sizeof(what), "span of %3zu pages at %p", pages[i],
			 (void *)span[i]);
		show(what);
	}
	for (i = 0; i < N; i++) {
		size_t j, n = pages[i] * page;

		for (j = 0; j < n; j++)
			if (span[i][j]) {
				printf("span %d not zeroed!\n", i);
				return 1;
			}
		memset(span[i], 'A' + i, n);
	}
	printf("  wrote %zu pages (%zu KiB); every new page read back zero first\n",
	       total, total * page / 1024);

	pid = fork();
	if (pid == 0) {
		memset(span[0], 'z', page);
		printf("  child: wrote 'z' over its copy of span 0: sees '%c'\n",
		       span[0][0]);
		show("child: its own heap made by fork");
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	printf("  parent: span 0 still holds '%c' (the module copied only the page\n"
	       "          the child touched; the parent's own pages are its again)\n",
	       span[0][0]);
	show("after the child exited");

	for (i = 0; i < N; i++)
		span_pages_free(span[i], pages[i]);
	show("all spans freed");
	return 0;
}
