/*
 * helpers.c: small helpers shared by the unit test suites (see tests.h).
 */
#include "config.h"

#include "tests.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fail_note(struct fails *f, const char *fmt, ...)
{
	va_list ap;

	f->n++;
	if (f->len + 2 >= sizeof(f->text))
		return;
	va_start(ap, fmt);
	f->len += (size_t)vsnprintf(f->text + f->len, sizeof(f->text) - f->len, fmt, ap);
	va_end(ap);
	if (f->len + 2 < sizeof(f->text)) {
		f->text[f->len++] = ';';
		f->text[f->len++] = ' ';
		f->text[f->len] = '\0';
	} else {
		f->len = sizeof(f->text) - 1;
	}
}


static uint64_t rng_state = 1;

void test_rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

uint32_t test_rng(uint32_t n)
{
	/* xorshift64*: fast, and the same sequence on every machine. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 33) % n;
}

void test_random_topic(char *out, bool filter)
{
	static const char *const levels[] = {"a", "b", "c", "", "ab", "$x", "$SYS"};
	size_t len;

	do {
		size_t n = 1 + test_rng(6);

		len = 0;
		for (size_t i = 0; i < n; i++) {
			const char *l;
			uint32_t r = test_rng(8);

			if (filter && r == 0)
				l = "+";
			else if (filter && r == 1 && i == n - 1)
				l = "#";
			else
				l = levels[test_rng(i == 0 ? 7 : 5)]; /* '$' levels only first */
			if (i)
				out[len++] = '/';
			memcpy(out + len, l, strlen(l));
			len += strlen(l);
		}
		out[len] = '\0';
	} while (len == 0);
}

void test_tmpdir(char *out, size_t size, const char *prefix)
{
	snprintf(out, size, "/tmp/%s-XXXXXX", prefix);
	ck_assert_ptr_nonnull(mkdtemp(out));
}

void test_rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}
