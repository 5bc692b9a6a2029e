/*
 * test_cluster_shared.c: the pure parts of shared subscriptions across a
 * cluster: NATS queue group names (distinct per group and filter, no byte
 * NATS could misread), subjects of another kind, the trie's shared-group
 * interest, matching without groups, and picking one member of one group.
 */
#include "config.h"

#include "tests.h"

#include "cluster_wire.h"
#include "subtree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *queue_of(const char *group, const char *filter)
{
	size_t gl = strlen(group), fl = strlen(filter);
	size_t max = cluster_queue_name_max("midge", gl, fl);
	char *q = malloc(max);

	ck_assert_ptr_nonnull(q);
	ck_assert_uint_lt(cluster_queue_name(q, "midge", group, gl, filter, fl), max);
	return q;
}

START_TEST(test_queue_names)
{
	static const struct {
		const char *group, *filter, *queue;
	} cases[] = {
		{"g", "a/b/#", "midge.share.g.a/b/#"},
		{"workers-1_x", "+/t", "midge.share.workers-1_x.+/t"},
		{"g.1", "a", "midge.share.g~2E1.a"},
		{"g", "a.b/*/>", "midge.share.g.a~2Eb/~2A/~3E"},
		{"g", "sp ace/tab\t", "midge.share.g.sp~20ace/tab~09"},
		{"g~", "~", "midge.share.g~7E.~7E"},
		{"g", "//", "midge.share.g.//"},
		{"caf\xc3\xa9", "$SYS/#", "midge.share.caf~C3~A9.$SYS/#"},
	};
	struct fails f = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *q = queue_of(cases[i].group, cases[i].filter);
		if (strcmp(q, cases[i].queue) != 0)
			fail_note(&f, "%s %s -> %s, expected %s; ", cases[i].group, cases[i].filter, q,
				  cases[i].queue);
		free(q);
	}
	FAILS_CHECK(&f);
}
END_TEST

/* A '.' in the group cannot make two shared subscriptions one queue group. */
START_TEST(test_queue_names_distinct)
{
	char *a = queue_of("a.b", "c"), *b = queue_of("a", "b.c"), *c = queue_of("a", "b/c");

	ck_assert_str_ne(a, b);
	ck_assert_str_ne(b, c);
	ck_assert_str_ne(a, c);
	free(a);
	free(b);
	free(c);
}
END_TEST

/* Every byte of a group or filter: nothing NATS reads as a separator or control. */
START_TEST(test_queue_names_every_byte)
{
	struct fails f = {0};

	for (int byte = 1; byte < 256; byte++) {
		char s[2] = {(char)byte, '\0'};
		char *q = queue_of(s, s);
		for (const char *p = q; *p; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
				fail_note(&f, "byte %02X gives %s; ", (unsigned)byte, q);
		free(q);
	}
	FAILS_CHECK(&f);
}
END_TEST

START_TEST(test_filter_subjects_of_a_kind)
{
	char b0[64], b1[64];
	char *out[2] = {b0, b1};

	ck_assert_int_eq(cluster_subjects_for_filter(out, "p", CLUSTER_KIND_RETAIN, "a/#", 3), 2);
	ck_assert_str_eq(b0, "p.r.a");
	ck_assert_str_eq(b1, "p.r.a.>");
	ck_assert_int_eq(cluster_subjects_for_filter(out, "p", "q", "+/x", 3), 1);
	ck_assert_str_eq(b0, "p.q.*.x");
}
END_TEST

/* ---- the trie ------------------------------------------------------------------ */

struct interest_log {
	char text[512];
};

static void note(struct interest_log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct interest_log *l, const char *fmt, ...)
{
	size_t n = strlen(l->text);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->text + n, sizeof(l->text) - n, fmt, ap);
	va_end(ap);
}

static void note_plain(void *arg, const char *filter, size_t len, bool on)
{
	note(arg, "%c%.*s ", on ? '+' : '-', (int)len, filter);
}

static void note_shared(void *arg, const char *group, size_t glen, const char *filter,
			size_t flen, bool on)
{
	note(arg, "%c[%.*s]%.*s ", on ? '+' : '-', (int)glen, group, (int)flen, filter);
}

START_TEST(test_shared_interest_follows_groups)
{
	struct subtree t;
	struct interest_log l = {""};
	struct subscriber a = {.session = (struct session *)1, .qos = 1};
	struct subscriber b = {.session = (struct session *)2, .qos = 0};

	ck_assert_int_eq(subtree_init(&t), 0);
	t.interest = note_plain;
	t.shared_interest = note_shared;
	t.interest_arg = &l;
	ck_assert_int_eq(subtree_add_any(&t, "$share/g/x/#", 12, &a), 1);
	ck_assert_int_eq(subtree_add_any(&t, "$share/g/x/#", 12, &b), 1); /* same group */
	ck_assert_int_eq(subtree_add_any(&t, "$share/h/x/#", 12, &a), 1); /* another group */
	ck_assert_int_eq(subtree_add_any(&t, "x/#", 3, &b), 1);           /* plain interest */
	ck_assert(subtree_remove_any(&t, "$share/g/x/#", 12, a.session));
	ck_assert(subtree_remove_any(&t, "$share/g/x/#", 12, b.session));
	ck_assert(subtree_remove_any(&t, "x/#", 3, b.session));
	ck_assert(subtree_remove_any(&t, "$share/h/x/#", 12, a.session));
	ck_assert_str_eq(l.text, "+[g]x/# +[h]x/# +x/# -[g]x/# -x/# -[h]x/# ");
	subtree_free(&t);
}
END_TEST

START_TEST(test_match_without_groups_and_pick_one_group)
{
	struct subtree t;
	struct match_ctx ctx = {0};
	struct subscriber a = {.session = (struct session *)1, .qos = 1};
	struct subscriber b = {.session = (struct session *)2, .qos = 1};
	struct subscriber p = {.session = (struct session *)3, .qos = 0};
	const struct subscriber *first, *second;

	ck_assert_int_eq(subtree_init(&t), 0);
	ck_assert_int_eq(subtree_add_any(&t, "$share/g/x/+", 12, &a), 1);
	ck_assert_int_eq(subtree_add_any(&t, "$share/g/x/+", 12, &b), 1);
	ck_assert_int_eq(subtree_add_any(&t, "x/+", 3, &p), 1);

	ck_assert_int_eq(subtree_match(&t, "x/y", 3, &ctx), 0);
	ck_assert_uint_eq(ctx.nfound, 2);                 /* p, and one of the group */
	ctx.skip_groups = true;
	ck_assert_int_eq(subtree_match(&t, "x/y", 3, &ctx), 0);
	ck_assert_uint_eq(ctx.nfound, 1);
	ck_assert_ptr_eq(ctx.found[0]->session, p.session);

	/* One member of that group, in turn. */
	first = subtree_pick_shared(&t, "g", 1, "x/+", 3, "x/y", 3, &ctx);
	second = subtree_pick_shared(&t, "g", 1, "x/+", 3, "x/z", 3, &ctx);
	ck_assert_ptr_nonnull(first);
	ck_assert_ptr_nonnull(second);
	ck_assert_ptr_ne(first->session, second->session);
	/* Not another group, not another filter, not a topic MQTT would not match. */
	ck_assert_ptr_null(subtree_pick_shared(&t, "h", 1, "x/+", 3, "x/y", 3, &ctx));
	ck_assert_ptr_null(subtree_pick_shared(&t, "g", 1, "x/#", 3, "x/y", 3, &ctx));
	ck_assert_ptr_null(subtree_pick_shared(&t, "g", 1, "x/+", 3, "x/y/z", 5, &ctx));
	ck_assert(subtree_remove_any(&t, "$share/g/x/+", 12, a.session));
	ck_assert(subtree_remove_any(&t, "$share/g/x/+", 12, b.session));
	ck_assert_ptr_null(subtree_pick_shared(&t, "g", 1, "x/+", 3, "x/y", 3, &ctx));
	ck_assert_int_eq(subtree_add_any(&t, "$share/g/+/y", 12, &a), 1);
	ck_assert_ptr_null(subtree_pick_shared(&t, "g", 1, "+/y", 3, "$SYS/y", 6, &ctx));
	match_ctx_free(&ctx);
	subtree_free(&t);
}
END_TEST

Suite *suite_cluster_shared(void)
{
	Suite *s = suite_create("cluster_shared");
	TCase *tc = tcase_create("queue names");

	tcase_add_test(tc, test_queue_names);
	tcase_add_test(tc, test_queue_names_distinct);
	tcase_add_test(tc, test_queue_names_every_byte);
	tcase_add_test(tc, test_filter_subjects_of_a_kind);
	suite_add_tcase(s, tc);

	tc = tcase_create("trie");
	tcase_add_test(tc, test_shared_interest_follows_groups);
	tcase_add_test(tc, test_match_without_groups_and_pick_one_group);
	suite_add_tcase(s, tc);
	return s;
}
