/*
 * launch: runs one benchmark process and measures it.
 *
 * usage: launch [-e NAME=VALUE]... [-l LOGFILE] -- PROG [ARGS...]
 *
 * Starts PROG with the extra environment, waits for it with wait4() and
 * prints one tab-separated line on stdout:
 *   wall_s user_s sys_s maxrss_kb minflt majflt status metrics
 * status is the exit status (128+N if killed by signal N); metrics are the
 * child's stdout lines "metric NAME VALUE" as NAME=VALUE,... ("-" if none).
 * The child's other stdout lines are appended to LOGFILE (default dropped);
 * its stderr is passed through.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *logname = NULL;
	char *envs[64], metrics[4096] = "", line[4096];
	int nenv = 0, i, pfd[2], status, opt;
	struct rusage ru;
	FILE *in, *log = NULL;
	double t0, wall;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+e:l:")) != -1) {
		switch (opt) {
		case 'e':
			if (nenv == 64)
				return 2;
			envs[nenv++] = optarg;
			break;
		case 'l':
			logname = optarg;
			break;
		default:
			fprintf(stderr, "usage: launch [-e N=V]... [-l LOG] -- PROG [ARGS...]\n");
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "launch: no program\n");
		return 2;
	}
	if (pipe(pfd))
		return 2;
	t0 = now();
	pid = fork();
	if (pid < 0) {
		perror("launch: fork");
		return 2;
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		for (i = 0; i < nenv; i++)
			putenv(envs[i]);
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "launch: %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	in = fdopen(pfd[0], "r");
	if (logname)
		log = fopen(logname, "a");
	while (in && fgets(line, sizeof(line), in)) {
		char name[256], value[256];

		if (sscanf(line, "metric %255s %255s", name, value) == 2) {
			size_t l = strlen(metrics);

			snprintf(metrics + l, sizeof(metrics) - l, "%s%s=%s",
				 l ? "," : "", name, value);
		} else if (log) {
			fputs(line, log);
		}
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR) {
			perror("launch: wait4");
			return 2;
		}
	wall = now() - t0;
	if (log)
		fclose(log);
	printf("%.4f\t%.4f\t%.4f\t%ld\t%ld\t%ld\t%d\t%s\n", wall,
	       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss,
	       ru.ru_minflt, ru.ru_majflt,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
	       metrics[0] ? metrics : "-");
	return 0;
}
