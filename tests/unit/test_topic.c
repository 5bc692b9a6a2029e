/*
 * test_topic.c: unit tests of topic name and filter rules (topic.c).
 *
 * Tables of valid and invalid names and filters, a matching table built from
 * the specification's examples and the edge cases around '$', empty levels,
 * leading and trailing slashes and "a/#" matching "a", a comparison of
 * topic_matches() with a naive level-by-level matcher written here over a
 * seeded random corpus, the parsing of "$share/<group>/<filter>" and the
 * placing of a listener's mount point.
 */
#include "config.h"

#include "tests.h"

#include "topic.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Like ck_assert_msg, but silent on success: passing Check assertions each
 * record a location through the runner's pipe, too slow for inner loops. */

/* A heap copy without terminator, so reading past len is caught by ASan. */
static char *dup_exact(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);

	REQUIRE(p != NULL, "out of memory");
	memcpy(p, s, n);
	return p;
}

struct valid_case {
	const char *s;
	bool valid;
};

static const struct valid_case filters[] = {
	{"#", true},
	{"+", true},
	{"a", true},
	{"a/b", true},
	{"a/+", true},
	{"+/b", true},
	{"a/+/c", true},
	{"a/#", true},
	{"+/+/#", true},
	{"/", true},
	{"//", true},
	{"/#", true},
	{"+/", true},
	{"/+", true},
	{"+/+", true},
	{"$SYS/#", true},
	{"$share", true},
	{"a b/c d", true},
	{"sport/tennis/player1/#", true},
	{"\xC3\xA9/+", true},
	{"", false},
	{"a#", false},
	{"#a", false},
	{"a/#/b", false},
	{"a/b#", false},
	{"#/", false},
	{"#/a", false},
	{"##", false},
	{"a/#/", false},
	{"a+", false},
	{"+a", false},
	{"a/+b", false},
	{"a/b+/c", false},
	{"++", false},
	{"+/++", false},
	{"sport+", false},
	{"sport/tennis#", false},
};

static const struct valid_case names[] = {
	{"a", true},
	{"a/b", true},
	{"/", true},
	{"//", true},
	{"/a/", true},
	{"$SYS/broker/uptime", true},
	{"a b", true},
	{"", true}, /* emptiness is the caller's rule */
	{"\xC3\xA9", true},
	{"+", false},
	{"#", false},
	{"a/+", false},
	{"a/#", false},
	{"a+b", false},
	{"a#b", false},
	{"sport/tennis/#", false},
};

START_TEST(test_filter_valid)
{
	struct fails fails = {0};

	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		size_t n = strlen(filters[i].s);
		char *f = dup_exact(filters[i].s, n);

		if (topic_filter_valid(f, n) != filters[i].valid)
			fail_note(&fails, "filter \"%s\": got %d", filters[i].s, !filters[i].valid);
		free(f);
	}
	FAILS_CHECK(&fails);
}
END_TEST

START_TEST(test_name_valid)
{
	struct fails fails = {0};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i].s);
		char *s = dup_exact(names[i].s, n);

		if (topic_name_valid(s, n) != names[i].valid)
			fail_note(&fails, "name \"%s\": got %d", names[i].s, !names[i].valid);
		free(s);
	}
	FAILS_CHECK(&fails);
}
END_TEST

/* Lengths are honoured: characters past len are not part of the string. */
START_TEST(test_lengths_honoured)
{
	ck_assert(topic_name_valid("a/#", 2));
	ck_assert(topic_filter_valid("a/#x", 3));
	ck_assert(!topic_filter_valid("a/#", 0));
	ck_assert(topic_filter_valid("a+", 1));
	ck_assert(topic_matches("a/b", 3, "a/bc", 3));
	ck_assert(!topic_matches("a/bc", 4, "a/bc", 3));
	ck_assert(topic_filter_has_wildcard("a/+", 3));
	ck_assert(!topic_filter_has_wildcard("a/+", 2));
	ck_assert(topic_filter_has_wildcard("#", 1));
	ck_assert(topic_filter_has_wildcard("a/b/#", 5));
	ck_assert(!topic_filter_has_wildcard("a/b", 3));
	ck_assert(!topic_filter_has_wildcard("", 0));
}
END_TEST

START_TEST(test_levels)
{
	static const struct {
		const char *s;
		size_t levels;
	} c[] = {
		{"", 1}, {"a", 1}, {"a/b", 2}, {"/", 2}, {"/a", 2}, {"a/", 2}, {"a//b/", 4},
		{"$SYS/broker/clients/connected", 4}, {"+/+/#", 3},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		ck_assert_msg(topic_levels(c[i].s, strlen(c[i].s)) == c[i].levels, "case \"%s\"",
			      c[i].s);
}
END_TEST

struct match_case {
	const char *filter;
	const char *name;
	bool match;
};

static const struct match_case matches[] = {
	/* MQTT 5.0 section 4.7.1.2 examples. */
	{"sport/tennis/player1/#", "sport/tennis/player1", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"sport/#", "sport", true},
	{"#", "sport", true},
	{"#", "sport/tennis/player1", true},
	/* Section 4.7.1.3. */
	{"sport/tennis/+", "sport/tennis/player1", true},
	{"sport/tennis/+", "sport/tennis/player2", true},
	{"sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true},
	{"+/+", "/finance", true},
	{"/+", "/finance", true},
	{"+", "/finance", false},
	{"+/tennis/#", "sport/tennis/player1", true},
	/* Section 4.7.2: '$' topics. */
	{"#", "$SYS", false},
	{"#", "$SYS/monitor/Clients", false},
	{"+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"$SYS/#", "$SYS/monitor/Clients", true},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"$SYS/#", "$SYS", true},
	{"+", "$SYS", false},
	{"+/#", "$SYS/a", false},
	{"+/#", "$", false},
	{"#", "$", false},
	{"$SYS/#", "$SYSX", false},
	{"$SYS/#", "$SYS/", true},
	{"$SYS", "$SYS", true},
	{"a/+", "a/$SYS", true},    /* '$' only matters at the start */
	{"a/#", "a/$SYS/x", true},
	{"#", "a$", true},
	{"+", "a$", true},
	/* Exact levels. */
	{"a/b", "a/b", true},
	{"a/b", "a/bc", false},
	{"a/bc", "a/b", false},
	{"a/b", "a/b/", false},
	{"a/b/", "a/b/", true},
	{"a/b/", "a/b", false},
	{"a/b", "a", false},
	{"a", "a/b", false},
	{"A", "a", false},
	{"a", "a", true},
	{"ab", "a", false},
	{"a", "ab", false},
	/* Leading, trailing and empty levels. */
	{"/a", "a", false},
	{"a", "/a", false},
	{"/a", "/a", true},
	{"a//b", "a//b", true},
	{"a//b", "a/b", false},
	{"a/+/b", "a//b", true},
	{"a/+/b", "a/b", false},
	{"+/+/+", "//", true},
	{"+/+", "//", false},
	{"+", "/", false},
	{"+/+", "/", true},
	{"+/", "/", true},
	{"/+", "/", true},
	{"+", "a", true},
	{"+", "a/b", false},
	{"+/b", "a/b/c", false},
	{"+/+", "a", false},
	{"#", "/", true},
	{"#", "/a", true},
	{"#", "a/", true},
	{"/#", "/", true},
	{"/#", "/a/b", true},
	{"/#", "a", false},
	{"+/#", "/a", true},
	{"+/#", "a", true},
	/* '#' matches its parent level. */
	{"a/#", "a", true},
	{"a/#", "a/", true},
	{"a/#", "a/b", true},
	{"a/#", "a/b/c", true},
	{"a/#", "ab", false},
	{"a/#", "b/a", false},
	{"a/#", "b", false},
	{"a/b/#", "a", false},
	{"a/b/#", "a/b", true},
	{"a/+/#", "a", false},
	{"a/+/#", "a/", true},
	{"a/+/#", "a/b", true},
	{"a/+/#", "a/b/c/d", true},
	{"a/+/+", "a/b", false},
	{"a//#", "a/", true},
	{"a//#", "a", false},
	/* UTF-8 is compared byte for byte. */
	{"\xC3\xA9/+", "\xC3\xA9/x", true},
	{"\xC3\xA9/+", "e/x", false},
};

START_TEST(test_matches_table)
{
	struct fails fails = {0};

	for (size_t i = 0; i < sizeof(matches) / sizeof(matches[0]); i++) {
		const struct match_case *c = &matches[i];
		size_t fl = strlen(c->filter), nl = strlen(c->name);
		char *f = dup_exact(c->filter, fl);
		char *n = dup_exact(c->name, nl);

		if (!topic_filter_valid(f, fl) || !topic_name_valid(n, nl))
			fail_note(&fails, "case \"%s\" vs \"%s\": bad test data", c->filter, c->name);
		else if (topic_matches(f, fl, n, nl) != c->match)
			fail_note(&fails, "case \"%s\" vs \"%s\": got %d", c->filter, c->name,
				  !c->match);
		free(f);
		free(n);
	}
	FAILS_CHECK(&fails);
}
END_TEST

/*
 * The oracle: split both strings into levels and compare them one by one.
 * Slow and obvious, unlike topic_matches().
 */
static bool naive_match(const char *filter, const char *name)
{
	char fl[64][16], nl[64][16];
	size_t nf = 0, nn = 0;
	const char *p;

	for (p = filter;; p++) {
		const char *q = strchr(p, '/');
		size_t n = q ? (size_t)(q - p) : strlen(p);
		memcpy(fl[nf], p, n);
		fl[nf++][n] = '\0';
		if (!q)
			break;
		p = q;
	}
	for (p = name;; p++) {
		const char *q = strchr(p, '/');
		size_t n = q ? (size_t)(q - p) : strlen(p);
		memcpy(nl[nn], p, n);
		nl[nn++][n] = '\0';
		if (!q)
			break;
		p = q;
	}
	if (name[0] == '$' && (strcmp(fl[0], "+") == 0 || strcmp(fl[0], "#") == 0))
		return false;
	for (size_t i = 0; i < nf; i++) {
		if (strcmp(fl[i], "#") == 0)
			return true; /* the rest, including nothing at all */
		if (i >= nn)
			return false;
		if (strcmp(fl[i], "+") != 0 && strcmp(fl[i], nl[i]) != 0)
			return false;
	}
	return nf == nn;
}

START_TEST(test_matches_oracle)
{
	char filter[128], name[128];
	unsigned matched = 0;

	test_rng_seed(0x746F706963ull); /* "topic" */
	for (int i = 0; i < 50000; i++) {
		size_t fl, nl;
		char *f, *n;
		bool want, got;

		test_random_topic(filter, true);
		test_random_topic(name, false);
		fl = strlen(filter);
		nl = strlen(name);
		REQUIRE(topic_filter_valid(filter, fl), "generated filter \"%s\"", filter);
		f = dup_exact(filter, fl);
		n = dup_exact(name, nl);
		want = naive_match(filter, name);
		got = topic_matches(f, fl, n, nl);
		REQUIRE(got == want, "\"%s\" vs \"%s\": got %d, want %d", filter, name, got, want);
		matched += want;
		free(f);
		free(n);
	}
	/* The corpus must exercise both outcomes. */
	ck_assert_uint_gt(matched, 1000);
	ck_assert_uint_lt(matched, 49000);
}
END_TEST

struct shared_case {
	const char *s;
	bool shared;
	const char *group;
	const char *filter;
	bool valid;
};

static const struct shared_case shared[] = {
	{"$share/g/a/b", true, "g", "a/b", true},
	{"$share/group-1/#", true, "group-1", "#", true},
	{"$share/g/+/x", true, "g", "+/x", true},
	{"$share/g/$SYS/#", true, "g", "$SYS/#", true},
	{"$share/g//", true, "g", "/", true},
	{"$share//a", true, "", "a", false},          /* empty group */
	{"$share/g", true, "g", "", false},           /* no filter */
	{"$share/g/", true, "g", "", false},          /* empty filter */
	{"$share/", true, "", "", false},
	{"$share/g+/a", true, "g+", "a", false},      /* wildcard in the group */
	{"$share/g#/a", true, "g#", "a", false},
	{"$share/+/a", true, "+", "a", false},
	{"$share/g/a/#/b", true, "g", "a/#/b", false}, /* invalid filter */
	{"$share/g/a+", true, "g", "a+", false},
	{"$share", false, NULL, NULL, false},
	{"$shared/g/a", false, NULL, NULL, false},
	{"$SHARE/g/a", false, NULL, NULL, false},
	{"share/g/a", false, NULL, NULL, false},
	{"a/$share/g/a", false, NULL, NULL, false},
	{"", false, NULL, NULL, false},
	{"#", false, NULL, NULL, false},
};

START_TEST(test_shared_parse)
{
	struct fails fails = {0};

	for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
		const struct shared_case *c = &shared[i];
		size_t len = strlen(c->s), glen = 0, flen = 0;
		char *s = dup_exact(c->s, len);
		const char *group = NULL, *filter = NULL;
		bool valid = !c->valid;
		bool is = topic_shared_parse(s, len, &group, &glen, &filter, &flen, &valid);

		if (is != c->shared) {
			fail_note(&fails, "case \"%s\": shared %d", c->s, is);
		} else if (is) {
			if (group < s || group + glen > s + len || filter < s ||
			    filter + flen > s + len)
				fail_note(&fails, "case \"%s\": spans outside the string", c->s);
			else if (glen != strlen(c->group) || memcmp(group, c->group, glen) != 0)
				fail_note(&fails, "case \"%s\": group \"%.*s\"", c->s, (int)glen, group);
			else if (flen != strlen(c->filter) || memcmp(filter, c->filter, flen) != 0)
				fail_note(&fails, "case \"%s\": filter \"%.*s\"", c->s, (int)flen,
					  filter);
			else if (valid != c->valid)
				fail_note(&fails, "case \"%s\": valid %d", c->s, valid);
		}
		free(s);
	}
	FAILS_CHECK(&fails);
}
END_TEST

START_TEST(test_mount)
{
	static const struct {
		const char *mount;
		const char *filter;
		const char *want;
	} c[] = {
		{"m/", "a/b", "m/a/b"},
		{"m/", "#", "m/#"},
		{"", "a/b", "a/b"},
		{"site/1/", "$share/g/a/+", "$share/g/site/1/a/+"},
		{"m/", "$share/g/#", "$share/g/m/#"},
		{"", "$share/g/x", "$share/g/x"},
		{"m/", "$shared/g/x", "m/$shared/g/x"},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t ml = strlen(c[i].mount), fl = strlen(c[i].filter);
		char *f = dup_exact(c[i].filter, fl);
		char *out = malloc(ml + fl ? ml + fl : 1);

		ck_assert_ptr_nonnull(out);
		ck_assert_msg(topic_mount(c[i].mount, ml, f, fl, out) == ml + fl, "case %s", c[i].want);
		ck_assert_msg(memcmp(out, c[i].want, ml + fl) == 0, "case %s: got %.*s", c[i].want,
			      (int)(ml + fl), out);
		free(out);
		free(f);
	}
}
END_TEST

Suite *suite_topic(void)
{
	Suite *s = suite_create("topic");
	TCase *tc;

	tc = tcase_create("validation");
	tcase_add_test(tc, test_filter_valid);
	tcase_add_test(tc, test_name_valid);
	tcase_add_test(tc, test_lengths_honoured);
	tcase_add_test(tc, test_levels);
	suite_add_tcase(s, tc);

	tc = tcase_create("matching");
	tcase_add_test(tc, test_matches_table);
	tcase_add_test(tc, test_matches_oracle);
	suite_add_tcase(s, tc);

	tc = tcase_create("shared");
	tcase_add_test(tc, test_shared_parse);
	tcase_add_test(tc, test_mount);
	suite_add_tcase(s, tc);
	return s;
}
