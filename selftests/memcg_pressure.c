// SPDX-License-Identifier: GPL-2.0
/*
 * memcg_pressure: processes that use libspanalloc (kernel backend) under
 * memory pressure, inside a memory cgroup with memory.max and no swap
 * (memory.swap.max 0): deterministic, never "fill MemAvailable".
 *
 *   squeezed_by_a_hog: workers fill heaps with patterns, a memory hog
 *     (stress-ng --vm, or our own hog without stress-ng) pushes the cgroup
 *     to its limit until the cgroup's OOM killer has killed it at least
 *     once, the workers churn their heaps under that pressure (the module
 *     answers ENOMEM at the limit, the library falls back and gives its
 *     caches back, the pool's shrinker is called for the cgroup), then
 *     each checks every byte it owns. The workers are oom_score_adj -1000:
 *     the hog is the only thing to kill, so all of them must survive.
 *   oom_killer_picks_a_spanalloc_heap: one process (oom_score_adj 1000)
 *     grows a spanalloc heap past memory.max; the OOM killer must kill it
 *     (SIGKILL, memory.events oom_kill + 1) and not its sibling, whose
 *     heap is intact afterwards.
 *
 * Both check afterwards that every frame, pooled frame and heap of the
 * module is back at its baseline, and print the figures (kills, bytes
 * checked, the heap the victim reached) as TAP diagnostics.
 *
 * The processes in the cgroup are this program run again (CHILD_ENV) by
 * a child that moved itself into the cgroup first, so the library's heap
 * (made at load) and its pool belong to that cgroup. They link
 * libspanalloc.a and call the span_ names; SPANALLOC_BACKEND=kernel is
 * forced for them. Needs root and the cgroup2 memory controller, else
 * SKIP. MEMCG_PRESSURE_HOG=own uses our own hog even with stress-ng.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spanalloc.h"
#include "kselftest_harness.h"

/* A hang guard for the debug kernel under emulation, not a time limit. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 900

#define MIB		((size_t)1 << 20)
#define NOBODY		65534	/* the stress-ng hog's user and group */
#define CGROOT		"/sys/fs/cgroup"
#define STATS		"/sys/class/misc/spanalloc/stats/"
#define CHILD_ENV	"MEMCG_PRESSURE_CHILD"
#define SEED_ENV	"MEMCG_PRESSURE_SEED"
#define CTL_FD		100	/* parent -> child: one byte per go */
#define STATUS_FD	101	/* child -> parent: messages, EOF at death */

/* squeezed_by_a_hog */
#define WORKERS		3
#define WORKER_BYTES	(12 * MIB)	/* heap each worker fills */
#define WORKER_OPS	5000		/* churn steps under pressure */
#define HOG_CG_MAX	"96M"
#define HOG_BYTES	(64 * MIB)	/* per hog process, two of them */
#define SQUEEZE_SECS	300		/* for the hog's first OOM kill */

/* oom_killer_picks_a_spanalloc_heap */
#define OOM_CG_MAX	"64M"
#define SIBLING_BYTES	(12 * MIB)
#define VICTIM_MAX	(256 * MIB)	/* it must be killed long before */
#define VICTIM_BLOCK	(256 * 1024)	/* kernel regions, not lazy */

#define MAX_BLOCKS	4096

/* What a child tells the parent at the end (one write, atomic). */
struct report {
	char kind;			/* 'D': done */
	uint64_t bytes_checked;
	uint64_t bad_bytes;
	uint64_t null_mallocs;		/* span_malloc() gave NULL (retried) */
	uint64_t blocks;
	uint64_t backend_errors;	/* the library's span_stats() */
	uint64_t anon_fallbacks;
	uint64_t reclaims;
	uint64_t peak_rss_kib;		/* getrusage(): frames and anonymous */
};

/* ---- patterns ---------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	return x ^ (x >> 33);
}

/* Byte-exact content of a block: words of a hash of @tag and the index. */
static void fill(unsigned char *p, size_t size, uint64_t tag)
{
	uint64_t k = mix64(tag), w;
	size_t i;

	for (i = 0; i + 8 <= size; i += 8) {
		w = k ^ (i * 0x9e3779b97f4a7c15ULL);
		memcpy(p + i, &w, 8);
	}
	w = k ^ (i * 0x9e3779b97f4a7c15ULL);
	memcpy(p + i, &w, size - i);
}

/* The number of bytes of @p that differ from fill(@tag). */
static uint64_t check(const unsigned char *p, size_t size, uint64_t tag)
{
	uint64_t k = mix64(tag), w, v, bad = 0;
	size_t i, j;

	for (i = 0; i + 8 <= size; i += 8) {
		w = k ^ (i * 0x9e3779b97f4a7c15ULL);
		memcpy(&v, p + i, 8);
		if (v != w)
			for (j = 0; j < 8; j++)
				bad += ((v >> (8 * j)) & 0xff) !=
				       ((w >> (8 * j)) & 0xff);
	}
	w = k ^ (i * 0x9e3779b97f4a7c15ULL);
	for (j = 0; i + j < size; j++)
		bad += p[i + j] != ((w >> (8 * j)) & 0xff);
	return bad;
}

static uint64_t rnd(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	return mix64(*s);
}

/* Mostly small objects, some medium, a few large blocks below 2 MiB. */
static size_t pick_size(uint64_t *s)
{
	unsigned int r = rnd(s) % 100;

	if (r < 70)
		return 16 + rnd(s) % 2048;
	if (r < 92)
		return 2048 + rnd(s) % (30 * 1024);
	return 64 * 1024 + rnd(s) % (1536 * 1024);
}

/* ---- the processes in the cgroup ---------------------------------------------------------------------------- */

struct block {
	unsigned char *p;
	size_t size;
	uint64_t tag;
};

static struct block blocks[MAX_BLOCKS];

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;
	ssize_t len = strlen(val);

	if (fd < 0)
		return -1;
	if (write(fd, val, len) != len)
		err = errno ? errno : EIO;
	close(fd);
	errno = err;
	return err ? -1 : 0;
}

/* The library's figures into @r, then @r to the parent. */
static void send_report(struct report *r)
{
	struct span_stats st;
	struct rusage ru;

	span_stats(&st);
	r->backend_errors = st.backend_errors;
	r->anon_fallbacks = st.anon_fallbacks;
	r->reclaims = st.reclaims;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		r->peak_rss_kib = (uint64_t)ru.ru_maxrss;
	if (write(STATUS_FD, r, sizeof(*r)) != sizeof(*r))
		_exit(20);
}

/* Block until the parent says go (or is gone). */
static void wait_go(void)
{
	char c;

	if (read(CTL_FD, &c, 1) != 1)
		_exit(21);
}

/* A new block of a random size in @b, filled; false when span_malloc() said NULL. */
static bool block_new(struct block *b, uint64_t *s, uint64_t tag)
{
	b->size = pick_size(s);
	b->tag = tag;
	b->p = span_malloc(b->size);
	if (!b->p)
		return false;
	fill(b->p, b->size, b->tag);
	return true;
}

/* Check every byte of the first @n blocks, into @r. */
static void check_all(int n, struct report *r)
{
	for (int i = 0; i < n; i++) {
		if (!blocks[i].p)
			continue;
		r->bad_bytes += check(blocks[i].p, blocks[i].size,
				      blocks[i].tag);
		r->bytes_checked += blocks[i].size;
	}
}

/* Check every byte of the first @n blocks, free them, report: exit status. */
static int finish(int n, struct report *r)
{
	check_all(n, r);
	r->blocks = n;
	for (int i = 0; i < n; i++)
		span_free(blocks[i].p);
	send_report(r);
	return r->bad_bytes ? 1 : 0;
}

/*
 * A worker (squeezed_by_a_hog): fill WORKER_BYTES, say ready, wait for
 * the squeeze, churn WORKER_OPS blocks (each checked before it is freed),
 * check every byte, free everything, report. Exit 1 on a wrong byte.
 */
static int worker_main(uint64_t seed)
{
	struct report r = { .kind = 'D' };
	uint64_t s = seed, gen = 0;
	size_t held = 0;
	int n = 0;

	if (write_str("/proc/self/oom_score_adj", "-1000"))
		return 22;
	while (held < WORKER_BYTES && n < MAX_BLOCKS) {
		if (!block_new(&blocks[n], &s, seed << 32 | gen++))
			return 23;	/* no pressure yet: a real failure */
		held += blocks[n++].size;
	}
	if (write(STATUS_FD, "R", 1) != 1)
		return 24;
	wait_go();
	check_all(n, &r);
	for (int op = 0; op < WORKER_OPS; op++) {
		struct block *b = &blocks[rnd(&s) % n];

		if (b->p) {
			r.bad_bytes += check(b->p, b->size, b->tag);
			r.bytes_checked += b->size;
			span_free(b->p);
		}
		if (!block_new(b, &s, seed << 32 | gen++))
			r.null_mallocs++;
	}
	return finish(n, &r);
}

/*
 * The OOM test's sibling: SIBLING_BYTES of blocks, ready, wait until the
 * victim is dead, check every byte, report.
 */
static int sibling_main(uint64_t seed)
{
	struct report r = { .kind = 'D' };
	uint64_t s = seed;
	size_t held = 0;
	int n = 0;

	while (held < SIBLING_BYTES && n < MAX_BLOCKS) {
		if (!block_new(&blocks[n], &s, seed << 32 | n))
			return 23;
		held += blocks[n++].size;
	}
	if (write(STATUS_FD, "R", 1) != 1)
		return 24;
	wait_go();
	return finish(n, &r);
}

/*
 * The OOM test's victim: oom_score_adj 1000, blocks of VICTIM_BLOCK
 * written as they come, one byte to the parent per MiB, up to VICTIM_MAX
 * (four times the cgroup's limit): the OOM killer must end it first.
 */
static int victim_main(uint64_t seed)
{
	size_t held = 0;
	unsigned char *p;

	if (write_str("/proc/self/oom_score_adj", "1000"))
		return 22;
	wait_go();
	while (held < VICTIM_MAX) {
		p = span_malloc(VICTIM_BLOCK);
		if (!p)
			return 25;
		fill(p, VICTIM_BLOCK, seed + held);
		held += VICTIM_BLOCK;
		if (held % MIB == 0 && write(STATUS_FD, "M", 1) != 1)
			return 24;
	}
	return 2;	/* not killed */
}

/*
 * Our own memory hog when stress-ng is missing: anonymous pages, written
 * again and again, the OOM killer's first choice.
 */
static int hog_main(void)
{
	unsigned char *p;
	unsigned int round = 0;

	if (write_str("/proc/self/oom_score_adj", "1000"))
		return 22;
	p = mmap(NULL, HOG_BYTES, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 26;
	for (;;) {
		for (size_t i = 0; i < HOG_BYTES; i += 4096)
			p[i] = (unsigned char)(i >> 12) + round;
		round++;
	}
}

__attribute__((constructor)) static void maybe_child(void)
{
	const char *mode = getenv(CHILD_ENV);
	const char *seed = getenv(SEED_ENV);
	uint64_t s = seed ? strtoull(seed, NULL, 0) : 1;

	if (!mode)
		return;
	if (strcmp(span_backend(), "kernel"))
		_exit(27);
	if (!strcmp(mode, "worker"))
		_exit(worker_main(s));
	if (!strcmp(mode, "sibling"))
		_exit(sibling_main(s));
	if (!strcmp(mode, "victim"))
		_exit(victim_main(s));
	_exit(127);
}

/* ---- the parent ---------------------------------------------------------------------------- */

struct child {
	pid_t pid;
	int ctl;		/* write end: go */
	int status;		/* read end: messages */
};

/* The number in file @path, or -1. */
static long read_long(const char *path)
{
	char buf[64] = "";
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

static long read_stat(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), STATS "%s", name);
	return read_long(path);
}

/* The value of @key in the flat-keyed file @dir/@file (memory.events). */
static long cg_key(const char *dir, const char *file, const char *key)
{
	char path[512], line[128];
	size_t klen = strlen(key);
	long val = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ' ')
			val = strtol(line + klen + 1, NULL, 10);
	fclose(f);
	return val;
}

static long cg_long(const char *dir, const char *file)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return read_long(path);
}

static int cg_write(const char *dir, const char *file, const char *val)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return write_str(path, val);
}

/*
 * A fresh memory cgroup @name with memory.max @max and no swap, in
 * @dir. 0, or a reason to skip in @why.
 */
static int make_memcg(char *dir, size_t len, const char *name,
		      const char *max, const char **why)
{
	if (geteuid()) {
		*why = "root needed for a memory cgroup";
		return -1;
	}
	if (access(CGROOT "/cgroup.controllers", F_OK) &&
	    mount("none", CGROOT, "cgroup2", 0, NULL)) {
		*why = "no cgroup2 at " CGROOT;
		return -1;
	}
	(void)write_str(CGROOT "/cgroup.subtree_control", "+memory");
	snprintf(dir, len, CGROOT "/%s.%d", name, getpid());
	if (mkdir(dir, 0755) && errno != EEXIST) {
		*why = "cannot make the cgroup";
		return -1;
	}
	if (cg_write(dir, "memory.max", max)) {
		rmdir(dir);
		*why = "no memory controller for the cgroup";
		return -1;
	}
	if (cg_write(dir, "memory.swap.max", "0") && errno != ENOENT) {
		rmdir(dir);
		*why = "cannot set memory.swap.max";
		return -1;
	}
	return 0;
}

/*
 * Start this program again as @mode in cgroup @dir, in process group
 * @pgid (0: a new one), with pipes for go and status. -1 on failure.
 */
static int spawn(struct child *c, const char *dir, const char *mode,
		 uint64_t seed, pid_t pgid)
{
	char exe[4096], env_mode[64], env_seed[64], pid[32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int ctl[2], st[2];

	if (n <= 0 || pipe2(ctl, O_CLOEXEC))
		return -1;
	if (pipe2(st, O_CLOEXEC)) {
		close(ctl[0]);
		close(ctl[1]);
		return -1;
	}
	exe[n] = 0;
	snprintf(env_mode, sizeof(env_mode), CHILD_ENV "=%s", mode);
	snprintf(env_seed, sizeof(env_seed), SEED_ENV "=%llu",
		 (unsigned long long)seed);
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		setpgid(0, pgid);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(pid, sizeof(pid), "%d", getpid());
		if (cg_write(dir, "cgroup.procs", pid))
			_exit(126);
		if (dup2(ctl[0], CTL_FD) < 0 || dup2(st[1], STATUS_FD) < 0)
			_exit(126);
		putenv(env_mode);
		putenv(env_seed);
		putenv("SPANALLOC_BACKEND=kernel");
		execl(exe, exe, (char *)NULL);
		_exit(127);
	}
	close(ctl[0]);
	close(st[1]);
	c->ctl = ctl[1];
	c->status = st[0];
	return 0;
}

/* Read one message of @len bytes from @c; false at EOF (it died). */
static bool recv_msg(struct child *c, void *buf, size_t len)
{
	return read(c->status, buf, len) == (ssize_t)len;
}

static bool go(struct child *c)
{
	return write(c->ctl, "G", 1) == 1;
}

static int reap(struct child *c)
{
	int status = -1;

	close(c->ctl);
	close(c->status);
	if (waitpid(c->pid, &status, 0) != c->pid)
		return -1;
	return status;
}

static const char *describe(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	return buf;
}

/* The module's counters that must come back after every process of ours exits. */
static const char *const counters[] = { "frames", "pool_frames", "heaps" };
#define NR_COUNTERS (sizeof(counters) / sizeof(counters[0]))

static void read_counters(long *v)
{
	for (size_t i = 0; i < NR_COUNTERS; i++)
		v[i] = read_stat(counters[i]);
}

/* Wait up to 10 s for the counters to reach @base; true when they did. */
static bool counters_back(const long *base, long *now)
{
	for (int tries = 0; tries < 100; tries++) {
		bool same = true;

		read_counters(now);
		for (size_t i = 0; i < NR_COUNTERS; i++)
			same &= now[i] == base[i];
		if (same)
			return true;
		usleep(100000);
	}
	return false;
}

/* stress-ng is there, and MEMCG_PRESSURE_HOG=own does not ask for ours. */
static bool use_stress_ng(void)
{
	const char *hog = getenv("MEMCG_PRESSURE_HOG");

	if (hog && !strcmp(hog, "own"))
		return false;
	return !system("command -v stress-ng >/dev/null 2>&1");
}

/*
 * The memory hog, in cgroup @dir and a process group of its own:
 * stress-ng --vm (which starts a vm worker the OOM killer took again), or
 * two of our own hogs under a supervisor that does the same. Each hog
 * alone is more than the workers leave free. Returns the group.
 *
 * stress-ng runs as nobody, from oom_score_adj 1000: as root it makes its
 * supervising processes unkillable (-1000), and a vm worker it starts
 * again inherits that until it raises its own score; one that faulted
 * (copy-on-write after its fork) with the cgroup at its limit before that
 * left nothing the OOM killer could take, and every process in the cgroup
 * spun in reclaim (memcg_pressure hung, 1 run in 10; the stacks showed
 * it). Unprivileged, it cannot lower its score below 1000.
 */
static pid_t start_hog(const char *dir, bool stress_ng)
{
	char pid[32], bytes[32];
	pid_t parent = getpid(), sup = fork(), hogs[2] = { 0, 0 }, dead;

	if (sup)
		return sup;
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(pid, sizeof(pid), "%d", getpid());
	if (cg_write(dir, "cgroup.procs", pid))
		_exit(126);
	if (stress_ng) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		dup2(null, 2);
		snprintf(bytes, sizeof(bytes), "%zuM", HOG_BYTES / MIB);
		if (write_str("/proc/self/oom_score_adj", "1000") ||
		    setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY) ||
		    chdir("/tmp"))	/* its temp path must be writable */
			_exit(125);
		/* A change of uid cleared the parent-death signal: again. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(125);
		execlp("stress-ng", "stress-ng", "--vm", "2", "--vm-bytes",
		       bytes, "--vm-keep", "--vm-method", "write64",
		       "--timeout", "3600", (char *)NULL);
		_exit(127);
	}
	for (;;) {
		for (int i = 0; i < 2; i++) {
			if (hogs[i] > 0)
				continue;
			hogs[i] = fork();
			if (hogs[i] == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				_exit(hog_main());
			}
		}
		/* Whichever the OOM killer takes is started again. */
		dead = wait(NULL);
		for (int i = 0; i < 2; i++)
			if (hogs[i] == dead || dead < 0)
				hogs[i] = 0;
		if (dead < 0)
			usleep(10000);
	}
}

/* The hog and whatever it started: everything left in cgroup @dir. */
static void stop_hog(const char *dir, pid_t hog)
{
	if (cg_write(dir, "cgroup.kill", "1")) {
		kill(-hog, SIGKILL);
		kill(hog, SIGKILL);
	}
	waitpid(hog, NULL, 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Remove cgroup @dir once its last (killed) process is gone. */
static void rm_memcg(const char *dir)
{
	for (int tries = 0; tries < 100 && rmdir(dir) && errno == EBUSY;
	     tries++)
		usleep(100000);
}

/*
 * Workers with full heaps in a 96 MiB cgroup, a hog of 2 x 64 MiB pushing
 * it over: the cgroup OOMs (the hog is killed, again and again) while the
 * workers free, allocate and check blocks. Every worker survives with
 * every byte right, and the module lets go of every frame after.
 */
TEST(squeezed_by_a_hog)
{
	long base[NR_COUNTERS], end[NR_COUNTERS], oom0, max0, oom_go;
	long oom_end, max_end;
	struct child w[WORKERS];
	struct report r[WORKERS] = { 0 };
	uint64_t checked = 0, nulls = 0, bad = 0, enomem = 0, fallbacks = 0;
	uint64_t peak = 0;
	const char *why = NULL;
	bool stress_ng = use_stress_ng(), ok;
	char dir[256], buf[64], c;
	int status[WORKERS];
	double t0;
	pid_t hog;

	if (read_stat("frames") < 0)
		SKIP(return, "no " STATS " (module not loaded)");
	if (make_memcg(dir, sizeof(dir), "memcg_pressure", HOG_CG_MAX, &why))
		SKIP(return, "%s: %s", why, strerror(errno));
	read_counters(base);
	oom0 = cg_key(dir, "memory.events", "oom_kill");
	max0 = cg_key(dir, "memory.events", "max");

	for (int i = 0; i < WORKERS; i++) {
		ASSERT_EQ(0, spawn(&w[i], dir, "worker", 100 + i, 0));
		ASSERT_TRUE(recv_msg(&w[i], &c, 1)) {
			TH_LOG("worker %d died before its heap was full: %s", i,
			       describe(reap(&w[i]), buf, sizeof(buf)));
		}
	}
	TH_LOG("%d workers hold %zu MiB each; cgroup memory.current %ld MiB "
	       "of " HOG_CG_MAX ", module frames %ld", WORKERS,
	       WORKER_BYTES / MIB, cg_long(dir, "memory.current") >> 20,
	       read_stat("frames"));

	/* The squeeze: the hog at the limit, killed at least once. */
	hog = start_hog(dir, stress_ng);
	ASSERT_LT(0, hog);
	t0 = now_s();
	while (cg_key(dir, "memory.events", "oom_kill") <= oom0 &&
	       now_s() - t0 < SQUEEZE_SECS)
		usleep(50000);
	oom_go = cg_key(dir, "memory.events", "oom_kill");
	TH_LOG("hog (%s) OOM-killed in the cgroup after %.1f s",
	       stress_ng ? "stress-ng --vm 2" : "our own, 2 processes",
	       now_s() - t0);

	/* Churn under pressure, then every byte. */
	t0 = now_s();
	for (int i = 0; i < WORKERS; i++)
		go(&w[i]);
	for (int i = 0; i < WORKERS; i++)
		recv_msg(&w[i], &r[i], sizeof(r[i]));
	for (int i = 0; i < WORKERS; i++)
		status[i] = reap(&w[i]);
	TH_LOG("workers churned %d blocks each in %.1f s under pressure",
	       WORKER_OPS, now_s() - t0);
	stop_hog(dir, hog);
	oom_end = cg_key(dir, "memory.events", "oom_kill");
	max_end = cg_key(dir, "memory.events", "max");

	ok = counters_back(base, end);
	rm_memcg(dir);

	for (int i = 0; i < WORKERS; i++) {
		checked += r[i].bytes_checked;
		nulls += r[i].null_mallocs;
		bad += r[i].bad_bytes;
		enomem += r[i].backend_errors;
		fallbacks += r[i].anon_fallbacks;
		if (r[i].peak_rss_kib > peak)
			peak = r[i].peak_rss_kib;
	}
	TH_LOG("figures: %ld OOM kills of the hog (%ld before the churn), "
	       "%ld times at memory.max, %llu bytes checked, %llu wrong, "
	       "%llu NULL mallocs; the workers' library met %llu failed "
	       "backend calls and took %llu spans of anonymous memory; "
	       "the largest worker peaked at %llu MiB RSS (%zu MiB of blocks)",
	       oom_end - oom0, oom_go - oom0,
	       max_end - max0, (unsigned long long)checked,
	       (unsigned long long)bad, (unsigned long long)nulls,
	       (unsigned long long)enomem, (unsigned long long)fallbacks,
	       (unsigned long long)peak >> 10, WORKER_BYTES / MIB);
	ASSERT_LT(oom0, oom_go) {
		TH_LOG("the hog never met the cgroup's OOM killer in %d s",
		       SQUEEZE_SECS);
	}
	/* And the squeeze went on while they churned. */
	EXPECT_LT(oom_go, oom_end);
	for (int i = 0; i < WORKERS; i++) {
		EXPECT_TRUE(WIFEXITED(status[i]) && WEXITSTATUS(status[i]) == 0) {
			TH_LOG("worker %d: %s, %llu wrong bytes", i,
			       describe(status[i], buf, sizeof(buf)),
			       (unsigned long long)r[i].bad_bytes);
		}
		EXPECT_EQ('D', r[i].kind);
	}
	EXPECT_EQ(0, bad);
	EXPECT_LT(WORKERS * WORKER_BYTES, checked);
	EXPECT_TRUE(ok) {
		for (size_t i = 0; i < NR_COUNTERS; i++)
			TH_LOG("%s: %ld at the start, %ld at the end",
			       counters[i], base[i], end[i]);
	}
}

/*
 * The OOM killer picks a spanalloc process: the victim (oom_score_adj
 * 1000) grows its heap past the 64 MiB of its cgroup, no swap. The module
 * says ENOMEM at the limit (it never OOMs from an ioctl), the library
 * falls back to anonymous memory, and the fault that cannot be charged
 * OOMs the cgroup: exactly one kill, the victim's SIGKILL; the sibling,
 * 12 MiB of checked blocks in the same cgroup, survives intact; every
 * frame of the victim's heap goes back.
 */
TEST(oom_killer_picks_a_spanalloc_heap)
{
	long base[NR_COUNTERS], end[NR_COUNTERS], oom0, oom_end;
	long frames0, frames, peak = 0, reached = 0;
	struct child sib, vic;
	struct report r = { 0 };
	const char *why = NULL;
	int vstatus, sstatus;
	char dir[256], buf[64], c;
	bool ok;

	if (read_stat("frames") < 0)
		SKIP(return, "no " STATS " (module not loaded)");
	if (make_memcg(dir, sizeof(dir), "memcg_oom", OOM_CG_MAX, &why))
		SKIP(return, "%s: %s", why, strerror(errno));
	read_counters(base);
	oom0 = cg_key(dir, "memory.events", "oom_kill");

	ASSERT_EQ(0, spawn(&sib, dir, "sibling", 200, 0));
	ASSERT_TRUE(recv_msg(&sib, &c, 1)) {
		TH_LOG("the sibling died before its heap was full: %s",
		       describe(reap(&sib), buf, sizeof(buf)));
	}
	ASSERT_EQ(0, spawn(&vic, dir, "victim", 300, 0));
	frames0 = read_stat("frames");
	ASSERT_TRUE(go(&vic));
	while (recv_msg(&vic, &c, 1)) {
		reached++;
		frames = read_stat("frames");
		if (frames - frames0 > peak)
			peak = frames - frames0;
	}
	vstatus = reap(&vic);
	oom_end = cg_key(dir, "memory.events", "oom_kill");

	go(&sib);
	recv_msg(&sib, &r, sizeof(r));
	sstatus = reap(&sib);
	ok = counters_back(base, end);
	rm_memcg(dir);

	TH_LOG("figures: victim %s after %ld MiB written (its heap held up "
	       "to %ld MiB of module frames), %ld OOM kills; sibling %s, "
	       "%llu bytes checked, %llu wrong",
	       describe(vstatus, buf, sizeof(buf)), reached,
	       peak * 4096 / (long)MIB, oom_end - oom0,
	       WIFEXITED(sstatus) ? "alive" : "killed",
	       (unsigned long long)r.bytes_checked,
	       (unsigned long long)r.bad_bytes);
	EXPECT_TRUE(WIFSIGNALED(vstatus) && WTERMSIG(vstatus) == SIGKILL);
	EXPECT_EQ(oom0 + 1, oom_end);
	/* The victim's heap was a big one: most of the cgroup's limit. */
	EXPECT_LE(32 * MIB / 4096, (size_t)peak);
	EXPECT_TRUE(WIFEXITED(sstatus) && WEXITSTATUS(sstatus) == 0) {
		TH_LOG("sibling: %s", describe(sstatus, buf, sizeof(buf)));
	}
	EXPECT_EQ('D', r.kind);
	EXPECT_EQ(0, r.bad_bytes);
	EXPECT_LE(SIBLING_BYTES, r.bytes_checked);
	EXPECT_TRUE(ok) {
		for (size_t i = 0; i < NR_COUNTERS; i++)
			TH_LOG("%s: %ld at the start, %ld at the end",
			       counters[i], base[i], end[i]);
	}
}

TEST_HARNESS_MAIN
