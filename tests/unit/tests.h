/*
 * tests.h: the unit test suites and small helpers shared by them.
 * Every tests/unit/test_<area>.c defines one suite_<area>() listed here and
 * in check_main.c.
 */
#ifndef MIDGE_TESTS_H
#define MIDGE_TESTS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

Suite *suite_packet(void);
Suite *suite_property(void);
Suite *suite_codec(void);
Suite *suite_topic(void);
Suite *suite_subtree(void);
Suite *suite_ev(void);
Suite *suite_config(void);
Suite *suite_security(void);
Suite *suite_ws(void);
Suite *suite_plugin(void);
Suite *suite_lua_json(void);
Suite *suite_persist(void);
Suite *suite_persist_writer(void);
Suite *suite_cluster(void);
Suite *suite_cluster_shared(void);
Suite *suite_cluster_session(void);
Suite *suite_cluster_qos(void);

/* Like ck_assert_msg, but silent on success (for callbacks and inner loops). */
#define REQUIRE(cond, ...)                             \
	do {                                            \
		if (!(cond))                            \
			ck_abort_msg(__VA_ARGS__);      \
	} while (0)

/* Failing cases of a table, so that one test reports all of them at once. */
struct fails {
	char text[4096];
	size_t len;
	unsigned n;
};

void fail_note(struct fails *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define FAILS_CHECK(f) ck_assert_msg((f)->n == 0, "%u failing: %s", (f)->n, (f)->text)

/* A fixed-seed pseudo-random generator, so failures reproduce. */
void test_rng_seed(uint64_t seed);
uint32_t test_rng(uint32_t n); /* 0 .. n-1 */
/* A random non-empty topic name (or filter) of up to 6 levels over a small alphabet,
 * with '$' levels only first; out needs 64 bytes. */
void test_random_topic(char *out, bool filter);

/* A fresh private directory /tmp/<prefix>-XXXXXX into out (fails the test if it cannot). */
void test_tmpdir(char *out, size_t size, const char *prefix);
/* Removes a directory and the files directly in it. */
void test_rmtree(const char *dir);

/* Directory holding test data files (tests/unit/data), from the build. */
const char *test_data_dir(void);

#endif
