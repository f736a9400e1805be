/*
 * kbench: micro-benchmarks of the page heap in the kernel (not a test).
 *
 * Run as root inside the VM with the module loaded (scripts/vm-run). In one
 * process it times:
 *   - obtaining and first-touching 256 MiB (one write per page) through
 *     spans of 2 MiB from SPAN_ALLOC_BATCH, with a cold pool (fresh frames
 *     from the buddy allocator) and a warm pool (frames zeroed ahead),
 *     against mmap(MAP_ANONYMOUS) + touch and MAP_POPULATE + touch;
 *   - fork() + exec(/bin/true) + wait of a process holding a 1 GiB heap,
 *     every page written, against the same with 1 GiB of anonymous memory
 *     (transparent huge pages as the kernel is set up, and 4 KiB pages);
 *     and the same followed by one write per page in the parent (the pages
 *     the fork took from the parent's page tables come back by faults);
 *   - a SPAN_ALLOC/SPAN_FREE round trip of one page (and each half alone,
 *     from many spans made then many freed), and the INFO ioctl, against
 *     a null system call (getppid), and, for scale, the kernel's own way
 *     to get and drop a page: mmap + touch + munmap.
 * Prints a Markdown table; each figure is the median of ROUNDS runs.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/spanalloc.h>

#define MIB		(1UL << 20)
#define BYTES		(256 * MIB)
#define SPAN_BYTES	(2 * MIB)
#define NSPANS		(BYTES / SPAN_BYTES)
#define ROUNDS		5
#define TRIPS		20000

static long page;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return v[n / 2];
}

static void touch(char *p, size_t bytes)
{
	size_t off;

	for (off = 0; off < bytes; off += page)
		p[off] = 1;
}

static long stat_of(const char *name)
{
	char path[128], buf[32] = "";
	int fd;

	snprintf(path, sizeof(path), "/sys/class/misc/spanalloc/stats/%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = '\0';
	if (fd >= 0)
		close(fd);
	return atol(buf);
}

static void set_param(const char *name, const char *value)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/sys/module/spanalloc/parameters/%s",
		 name);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		fprintf(stderr, "kbench: cannot set %s\n", name);
	if (fd >= 0)
		close(fd);
}

/* 256 MiB of spans, touched; returns seconds. Leaves the spans in @addrs. */
static double spans_get(int fd, uint64_t *addrs)
{
	struct spanalloc_span_alloc_batch req = {
		.pages = SPAN_BYTES / page, .addrs = (uintptr_t)addrs,
		.count = NSPANS,
	};
	double t = now();
	unsigned int i;

	if (ioctl(fd, SPANALLOC_IOC_SPAN_ALLOC_BATCH, &req) ||
	    req.count != NSPANS) {
		perror("kbench: SPAN_ALLOC_BATCH");
		exit(1);
	}
	for (i = 0; i < NSPANS; i++)
		touch((char *)(uintptr_t)addrs[i], SPAN_BYTES);
	return now() - t;
}

static void spans_put(int fd, uint64_t *addrs)
{
	struct spanalloc_span_free_batch req = {
		.addrs = (uintptr_t)addrs, .count = NSPANS,
	};

	if (ioctl(fd, SPANALLOC_IOC_SPAN_FREE_BATCH, &req)) {
		perror("kbench: SPAN_FREE_BATCH");
		exit(1);
	}
}

static void wait_zeroed(void)
{
	int i;

	for (i = 0; i < 3000 && stat_of("pool_clean") < stat_of("pool_frames");
	     i++)
		usleep(10000);
}

static double anon_get(int flags)
{
	double t = now();
	char *p = mmap(NULL, BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);

	if (p == MAP_FAILED) {
		perror("kbench: mmap");
		exit(1);
	}
	touch(p, BYTES);
	t = now() - t;
	munmap(p, BYTES);
	return t;
}

#define FORK_BYTES	(1024 * MIB)

/* fork + exec(/bin/true) + wait; then, if @p, one write per page of @p. */
static void fork_exec(char *p, double *t_fork, double *t_touch)
{
	double t = now();
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || status) {
		fprintf(stderr, "kbench: fork/exec failed\n");
		exit(1);
	}
	*t_fork = now() - t;
	touch(p, FORK_BYTES);
	*t_touch = now() - t;
}

/* fork_exec() of 1 GiB of anonymous memory; 4 KiB pages if @small. */
static void fork_exec_anon(int small, double *t_fork, double *t_touch)
{
	char *p = mmap(NULL, FORK_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("kbench: mmap 1 GiB");
		exit(1);
	}
	if (small)
		madvise(p, FORK_BYTES, MADV_NOHUGEPAGE);
	touch(p, FORK_BYTES);
	fork_exec(p, t_fork, t_touch);
	munmap(p, FORK_BYTES);
}

/*
 * fork_exec() with a 1 GiB heap of spans, then with anonymous memory as
 * the kernel gives it (transparent huge pages when enabled: one PMD per
 * 2 MiB to copy) and with 4 KiB anonymous pages, as the heap's are.
 */
static void fork_exec_set(int fd, double *heap, double *heap_touch,
			  double *anon, double *anon_touch, double *small,
			  double *small_touch)
{
	static uint64_t addrs[FORK_BYTES / SPAN_BYTES];
	struct spanalloc_span_alloc_batch req = {
		.pages = SPAN_BYTES / page, .count = NSPANS,
	};
	struct spanalloc_span_free_batch put = { .count = NSPANS };
	unsigned int i, n = FORK_BYTES / SPAN_BYTES;
	char *p;

	/* 1 GiB is more than half of a 2 GiB guest: the default heap limit. */
	set_param("heap_max_frames", "393216");
	for (i = 0; i < n; i += NSPANS) {
		req.addrs = (uintptr_t)(addrs + i);
		req.count = NSPANS;
		if (ioctl(fd, SPANALLOC_IOC_SPAN_ALLOC_BATCH, &req) ||
		    req.count != NSPANS) {
			perror("kbench: SPAN_ALLOC_BATCH (1 GiB heap)");
			exit(1);
		}
	}
	/* Spans come in address order from an empty arena: one range. */
	p = (char *)(uintptr_t)addrs[0];
	for (i = 1; i < n; i++)
		if (addrs[i] != addrs[0] + (uint64_t)i * SPAN_BYTES)
			p = NULL;
	if (!p) {
		fprintf(stderr, "kbench: 1 GiB heap not contiguous\n");
		exit(1);
	}
	touch(p, FORK_BYTES);
	fork_exec(p, heap, heap_touch);
	for (i = 0; i < n; i += NSPANS) {
		put.addrs = (uintptr_t)(addrs + i);
		put.count = NSPANS;
		if (ioctl(fd, SPANALLOC_IOC_SPAN_FREE_BATCH, &put)) {
			perror("kbench: SPAN_FREE_BATCH (1 GiB heap)");
			exit(1);
		}
	}
	set_param("pool_max_frames", "0");
	fork_exec_anon(0, anon, anon_touch);
	fork_exec_anon(1, small, small_touch);
	set_param("pool_max_frames", "131072");
	set_param("heap_max_frames", "0");
}

static double per_op(void (*op)(int), int fd, int times)
{
	double t = now();
	int i;

	for (i = 0; i < times; i++)
		op(fd);
	return (now() - t) / times;
}

static void op_null(int fd)
{
	(void)fd;
	syscall(SYS_getppid);
}

static void op_info(int fd)
{
	struct spanalloc_info info;

	ioctl(fd, SPANALLOC_IOC_INFO, &info);
}

/* The same with the kernel's own anonymous memory: map, touch, unmap. */
static void op_anon_round_trip(int fd)
{
	char *p = mmap(NULL, page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)fd;
	if (p == MAP_FAILED)
		exit(1);
	p[0] = 1;
	munmap(p, page);
}

/* One-page spans made one call each, then freed one call each. */
static uint64_t one_page[TRIPS];

static void alloc_then_free(int fd, double *t_alloc, double *t_free)
{
	struct spanalloc_span_alloc a = { .pages = 1 };
	struct spanalloc_span_free f = { 0 };
	double t = now();
	int i;

	for (i = 0; i < TRIPS; i++) {
		if (ioctl(fd, SPANALLOC_IOC_SPAN_ALLOC, &a))
			exit(1);
		one_page[i] = a.addr;
		a.addr = 0;
	}
	*t_alloc = (now() - t) / TRIPS;
	t = now();
	for (i = 0; i < TRIPS; i++) {
		f.addr = one_page[i];
		if (ioctl(fd, SPANALLOC_IOC_SPAN_FREE, &f))
			exit(1);
	}
	*t_free = (now() - t) / TRIPS;
}

/* The library's way: SPAN_ALLOC_BATCH / SPAN_FREE_BATCH of 512 spans. */
static void op_batch_round_trip(int fd)
{
	struct spanalloc_span_alloc_batch a = {
		.pages = 1, .addrs = (uintptr_t)one_page,
		.count = SPANALLOC_BATCH_MAX,
	};
	struct spanalloc_span_free_batch f = {
		.addrs = (uintptr_t)one_page, .count = SPANALLOC_BATCH_MAX,
	};

	if (ioctl(fd, SPANALLOC_IOC_SPAN_ALLOC_BATCH, &a) ||
	    a.count != SPANALLOC_BATCH_MAX ||
	    ioctl(fd, SPANALLOC_IOC_SPAN_FREE_BATCH, &f))
		exit(1);
}

static void op_round_trip(int fd)
{
	struct spanalloc_span_alloc a = { .pages = 1 };
	struct spanalloc_span_free f = { 0 };

	if (ioctl(fd, SPANALLOC_IOC_SPAN_ALLOC, &a))
		exit(1);
	f.addr = a.addr;
	if (ioctl(fd, SPANALLOC_IOC_SPAN_FREE, &f))
		exit(1);
}

int main(void)
{
	double cold[ROUNDS], warm[ROUNDS], anon[ROUNDS], pop[ROUNDS];
	double tnull[ROUNDS], tinfo[ROUNDS], ttrip[ROUNDS], tanon[ROUNDS];
	double talloc[ROUNDS], tfree[ROUNDS], tbatch[ROUNDS];
	double fheap[ROUNDS], fheap_t[ROUNDS], fanon[ROUNDS], fanon_t[ROUNDS];
	double fsmall[ROUNDS], fsmall_t[ROUNDS];
	static uint64_t addrs[NSPANS];
	char uname_r[128] = "?";
	FILE *f;
	int fd, r;

	page = sysconf(_SC_PAGESIZE);
	fd = open("/dev/spanalloc", O_RDWR);
	if (fd < 0 || mmap(NULL, 8 * BYTES, PROT_READ | PROT_WRITE,
			   MAP_SHARED, fd, 0) == MAP_FAILED) {
		perror("kbench: /dev/spanalloc");
		return 1;
	}
	f = fopen("/proc/sys/kernel/osrelease", "r");
	if (f && fgets(uname_r, sizeof(uname_r), f))
		uname_r[strcspn(uname_r, "\n")] = '\0';
	if (f)
		fclose(f);

	/* A pool big enough to keep 256 MiB warm. */
	set_param("pool_max_frames", "131072");
	for (r = 0; r < ROUNDS; r++) {
		int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);

		/* Cold: empty the pool first (the shrinker takes it all). */
		if (dc < 0 || write(dc, "2", 1) != 1)
			fprintf(stderr, "kbench: cannot drop caches\n");
		if (dc >= 0)
			close(dc);
		cold[r] = spans_get(fd, addrs);
		spans_put(fd, addrs);
		wait_zeroed();
		warm[r] = spans_get(fd, addrs);
		spans_put(fd, addrs);
		anon[r] = anon_get(0);
		pop[r] = anon_get(MAP_POPULATE);
		tnull[r] = per_op(op_null, fd, TRIPS);
		tinfo[r] = per_op(op_info, fd, TRIPS);
		ttrip[r] = per_op(op_round_trip, fd, TRIPS);
		tanon[r] = per_op(op_anon_round_trip, fd, TRIPS);
		alloc_then_free(fd, &talloc[r], &tfree[r]);
		tbatch[r] = per_op(op_batch_round_trip, fd, TRIPS / SPANALLOC_BATCH_MAX) /
			   SPANALLOC_BATCH_MAX;
		fork_exec_set(fd, &fheap[r], &fheap_t[r], &fanon[r],
			      &fanon_t[r], &fsmall[r], &fsmall_t[r]);
	}

	printf("kbench on %s, median of %d rounds\n\n", uname_r, ROUNDS);
	printf("| 256 MiB obtained + one write per page | seconds | vs anon mmap |\n");
	printf("|---|---:|---:|\n");
	printf("| spans, warm pool (zeroed ahead) | %.4f | %.3fx |\n",
	       median(warm, ROUNDS), median(warm, ROUNDS) / median(anon, ROUNDS));
	printf("| spans, cold pool (fresh frames) | %.4f | %.3fx |\n",
	       median(cold, ROUNDS), median(cold, ROUNDS) / median(anon, ROUNDS));
	printf("| mmap(MAP_ANONYMOUS) + faults | %.4f | 1.000x |\n",
	       median(anon, ROUNDS));
	printf("| mmap(MAP_POPULATE) | %.4f | %.3fx |\n\n",
	       median(pop, ROUNDS), median(pop, ROUNDS) / median(anon, ROUNDS));
	printf("| 1 GiB written, then | heap of spans, s | anonymous (THP as configured), s | heap vs it | anonymous, 4 KiB pages, s | heap vs it |\n");
	printf("|---|---:|---:|---:|---:|---:|\n");
	printf("| fork + exec + wait | %.4f | %.4f | %.3fx | %.4f | %.3fx |\n",
	       median(fheap, ROUNDS), median(fanon, ROUNDS),
	       median(fheap, ROUNDS) / median(fanon, ROUNDS),
	       median(fsmall, ROUNDS),
	       median(fheap, ROUNDS) / median(fsmall, ROUNDS));
	printf("| fork + exec + wait, then one write per page | %.4f | %.4f | %.3fx | %.4f | %.3fx |\n\n",
	       median(fheap_t, ROUNDS), median(fanon_t, ROUNDS),
	       median(fheap_t, ROUNDS) / median(fanon_t, ROUNDS),
	       median(fsmall_t, ROUNDS),
	       median(fheap_t, ROUNDS) / median(fsmall_t, ROUNDS));
	printf("| round trip | ns | vs getppid |\n|---|---:|---:|\n");
	printf("| getppid() (null system call) | %.0f | 1.00x |\n",
	       median(tnull, ROUNDS) * 1e9);
	printf("| SPANALLOC_IOC_INFO | %.0f | %.2fx |\n",
	       median(tinfo, ROUNDS) * 1e9,
	       median(tinfo, ROUNDS) / median(tnull, ROUNDS));
	printf("| SPAN_ALLOC + SPAN_FREE, 1 page | %.0f | %.2fx |\n",
	       median(ttrip, ROUNDS) * 1e9,
	       median(ttrip, ROUNDS) / median(tnull, ROUNDS));
	printf("| of which SPAN_ALLOC, 1 page (%d in a row) | %.0f | %.2fx |\n",
	       TRIPS, median(talloc, ROUNDS) * 1e9,
	       median(talloc, ROUNDS) / median(tnull, ROUNDS));
	printf("| of which SPAN_FREE, 1 page (%d in a row) | %.0f | %.2fx |\n",
	       TRIPS, median(tfree, ROUNDS) * 1e9,
	       median(tfree, ROUNDS) / median(tnull, ROUNDS));
	printf("| SPAN_ALLOC_BATCH + SPAN_FREE_BATCH of %d, per span | %.0f | %.2fx |\n",
	       SPANALLOC_BATCH_MAX, median(tbatch, ROUNDS) * 1e9,
	       median(tbatch, ROUNDS) / median(tnull, ROUNDS));
	printf("| mmap + touch + munmap, 1 page (for scale) | %.0f | %.2fx |\n",
	       median(tanon, ROUNDS) * 1e9,
	       median(tanon, ROUNDS) / median(tnull, ROUNDS));
	return 0;
}
