/*
 * bench_util.c: midge_bench's clocks, buffers, latency histogram and the
 * broker's CPU time and memory from /proc.
 */
#include "config.h"

#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

double secs(uint64_t ns)
{
	return (double)ns / (double)NS_PER_S;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "midge_bench: out of memory\n");
		exit(1);
	}
	return q;
}

void *xcalloc(size_t n, size_t size)
{
	void *q = calloc(n ? n : 1, size ? size : 1);

	if (!q) {
		fprintf(stderr, "midge_bench: out of memory\n");
		exit(1);
	}
	return q;
}

/* ---- Buffers ---- */

/* Room for n more bytes at b->p + b->len. */
uint8_t *buf_reserve(struct buf *b, size_t n)
{
	size_t ncap;

	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->cap - b->len >= n)
		return b->p + b->len;
	if (b->off > 0) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= n)
			return b->p + b->len;
	}
	ncap = b->cap ? b->cap : 1024;
	while (ncap - b->len < n)
		ncap *= 2;
	b->p = xrealloc(b->p, ncap);
	b->cap = ncap;
	return b->p + b->len;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
	memcpy(buf_reserve(b, n), p, n);
	b->len += n;
}

void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- Latency histogram ---- */

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->counts = xcalloc(HIST_BUCKETS, sizeof(*h->counts));
}

void hist_free(struct hist *h)
{
	free(h->counts);
	h->counts = NULL;
}

static unsigned hist_index(uint64_t v)
{
	unsigned msb;

	if (v < 128)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	/* v >> (msb - 6) is in [64, 128): the top 7 bits pick the bucket. */
	return 128u + (msb - 7u) * 64u + (unsigned)((v >> (msb - 6u)) - 64u);
}

/* The middle of bucket i, in nanoseconds. */
static double hist_value(unsigned i)
{
	unsigned msb, shift;
	uint64_t low;

	if (i < 128)
		return i;
	msb = (i - 128u) / 64u + 7u;
	shift = msb - 6u;
	low = ((uint64_t)((i - 128u) % 64u) + 64u) << shift;
	return (double)low + (double)(1ull << shift) / 2.0;
}

void hist_add(struct hist *h, uint64_t ns)
{
	h->counts[hist_index(ns)]++;
	h->n++;
	if (ns > h->max)
		h->max = ns;
}

double hist_percentile_us(const struct hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (h->n == 0)
		return -1;
	/* Nearest rank. */
	rank = (uint64_t)(p / 100.0 * (double)h->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->n)
		rank = h->n;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			double v = hist_value(i);

			return (v > (double)h->max ? (double)h->max : v) / (double)NS_PER_US;
		}
	}
	return (double)h->max / (double)NS_PER_US;
}

/* ---- /proc ---- */

static bool read_cpu_ticks(long pid, unsigned long long *ticks)
{
	char path[64], line[4096];
	unsigned long long v[2] = { 0, 0 };
	FILE *f;
	size_t n;
	char *p, *end;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	/* The command name (field 2) may hold spaces: fields resume after its last ')'. */
	p = strrchr(line, ')');
	if (!p)
		return false;
	p++;
	/* Fields 3 to 13 come before utime (14) and stime (15). */
	for (int field = 3; field <= 15; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return false;
		if (field >= 14) {
			errno = 0;
			v[field - 14] = strtoull(p, &end, 10);
			if (errno || end == p)
				return false;
			p = end;
		} else {
			while (*p && *p != ' ')
				p++;
		}
	}
	*ticks = v[0] + v[1];
	return true;
}

/* The sum of the first field (time on a CPU, ns) of every thread's schedstat. */
static bool read_schedstat_ns(long pid, unsigned long long *ns)
{
	char path[64];
	unsigned long long sum = 0;
	struct dirent *e;
	DIR *d;
	bool any = false;

	snprintf(path, sizeof(path), "/proc/%ld/task", pid);
	d = opendir(path);
	if (!d)
		return false;
	while ((e = readdir(d)) != NULL) {
		char file[320];
		unsigned long long run;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "/proc/%ld/task/%s/schedstat", pid, e->d_name);
		f = fopen(file, "r");
		if (!f)
			continue; /* the thread ended meanwhile */
		if (fscanf(f, "%llu", &run) == 1) {
			sum += run;
			any = true;
		}
		fclose(f);
	}
	closedir(d);
	*ns = sum;
	return any && sum > 0;
}

bool read_cpu_ns(long pid, unsigned long long *ns)
{
	unsigned long long ticks;

	if (read_schedstat_ns(pid, ns))
		return true;
	if (!read_cpu_ticks(pid, &ticks))
		return false;
	*ns = ticks * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
	return true;
}

bool read_rss(long pid, uint64_t *bytes)
{
	char path[64], line[256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long kb;

		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) {
			*bytes = (uint64_t)kb * 1024u;
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

double self_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

unsigned long raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (unsigned long)rl.rlim_cur;
}
