/*
 * test_subtree.c: unit tests of the subscription trie (subtree.c, tnode.c)
 * and of the retained-message store (retain.c), which share the tnode tree.
 *
 * Both trees are checked against topic_matches() as an oracle over seeded
 * random corpora of filters and topics, for the '$' rules, for pruning (the
 * allocator's byte count returns to where it started), and for topics of
 * 10 000 levels, run on a thread with a 128 KiB stack so that any recursion
 * over the levels would crash; shared subscriptions take turns. Sessions are
 * opaque addresses the trie never follows.
 */
#include "config.h"

#include "tests.h"

#include "alloc.h"
#include "message.h"
#include "retain.h"
#include "subtree.h"
#include "topic.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Like ck_assert_msg, but silent on success: passing Check assertions each
 * record a location through the runner's pipe, too slow for inner loops. */

/* Distinct session addresses; the trie compares them and never follows them. */
static char session_storage[4096];
#define SESSION(k) ((struct session *)(void *)&session_storage[(k)])

static struct subscriber sub_of(int k, uint8_t qos, uint32_t subid)
{
	return (struct subscriber){.session = SESSION(k), .subid = subid, .qos = qos};
}

static int add(struct subtree *t, const char *filter, int k, uint8_t qos, uint32_t subid)
{
	struct subscriber s = sub_of(k, qos, subid);
	return subtree_add(t, filter, strlen(filter), &s);
}

static bool del(struct subtree *t, const char *filter, int k)
{
	return subtree_remove(t, filter, strlen(filter), SESSION(k));
}

/* Matches topic and returns the number found. */
static size_t match(struct subtree *t, struct match_ctx *ctx, const char *topic)
{
	REQUIRE(subtree_match(t, topic, strlen(topic), ctx) == 0, "match \"%s\" failed", topic);
	return ctx->nfound;
}

/* Whether ctx holds session k (exactly once), and its entry. */
static const struct subscriber *found_session(const struct match_ctx *ctx, int k)
{
	const struct subscriber *hit = NULL;

	for (size_t i = 0; i < ctx->nfound; i++) {
		if (ctx->found[i]->session == SESSION(k)) {
			REQUIRE(hit == NULL, "session %d found twice", k);
			hit = ctx->found[i];
		}
	}
	return hit;
}

/* Runs fn on a thread whose stack is too small for one frame per level. */
static void run_small_stack(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t th;

	ck_assert_int_eq(pthread_attr_init(&attr), 0);
	ck_assert_int_eq(pthread_attr_setstacksize(&attr, 128 * 1024), 0);
	ck_assert_int_eq(pthread_create(&th, &attr, fn, arg), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	pthread_attr_destroy(&attr);
}

/* "l/l/.../l" with `levels` levels, then `tail` appended (may be ""). */
static char *deep_topic(size_t levels, const char *tail)
{
	size_t tl = strlen(tail);
	char *s = malloc(levels * 2 + tl + 1);
	size_t len = 0;

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < levels; i++) {
		if (i)
			s[len++] = '/';
		s[len++] = 'l';
	}
	memcpy(s + len, tail, tl + 1);
	return s;
}

/* --- the subscription trie --- */

START_TEST(test_add_update_remove)
{
	struct subtree t;
	struct match_ctx ctx = {0};
	const struct subscriber *s;

	ck_assert_int_eq(subtree_init(&t), 0);
	ck_assert_uint_eq(t.count, 0);
	ck_assert_uint_eq(match(&t, &ctx, "a/b"), 0);

	ck_assert_int_eq(add(&t, "a/b", 1, 1, 0), 1);
	ck_assert_uint_eq(t.count, 1);
	/* Same session and filter: an update, not a second subscription. */
	ck_assert_int_eq(add(&t, "a/b", 1, 2, 7), 0);
	ck_assert_uint_eq(t.count, 1);
	ck_assert_uint_eq(match(&t, &ctx, "a/b"), 1);
	s = found_session(&ctx, 1);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->qos, 2);
	ck_assert_uint_eq(s->subid, 7);

	ck_assert_int_eq(add(&t, "a/b", 2, 0, 0), 1);
	ck_assert_int_eq(add(&t, "a/+", 1, 1, 9), 1);
	ck_assert_uint_eq(t.count, 3);
	ck_assert_uint_eq(match(&t, &ctx, "a/b"), 3);
	ck_assert_uint_eq(ctx.nodes_matched, 2);
	ck_assert_uint_eq(match(&t, &ctx, "a/c"), 1);
	ck_assert_uint_eq(ctx.found[0]->subid, 9);
	ck_assert_uint_eq(match(&t, &ctx, "a"), 0);
	ck_assert_uint_eq(match(&t, &ctx, "a/b/c"), 0);

	/* Removing what is not there changes nothing. */
	ck_assert(!del(&t, "a/b", 3));
	ck_assert(!del(&t, "a/c", 1));
	ck_assert(!del(&t, "a", 1));
	ck_assert(!del(&t, "a/b/c", 1));
	ck_assert(!del(&t, "+", 1));
	ck_assert_uint_eq(t.count, 3);

	ck_assert(del(&t, "a/b", 1));
	ck_assert(!del(&t, "a/b", 1));
	ck_assert_uint_eq(t.count, 2);
	ck_assert_uint_eq(match(&t, &ctx, "a/b"), 2);
	s = found_session(&ctx, 1); /* still there through "a/+" */
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->subid, 9);
	ck_assert_ptr_nonnull(found_session(&ctx, 2));
	ck_assert(del(&t, "a/+", 1));
	ck_assert(del(&t, "a/b", 2));
	ck_assert_uint_eq(t.count, 0);
	ck_assert_uint_eq(match(&t, &ctx, "a/b"), 0);
	match_ctx_free(&ctx);
	subtree_free(&t);
}
END_TEST

START_TEST(test_wildcard_shapes)
{
	static const struct {
		const char *filter;
		const char *topic;
		bool match;
	} c[] = {
		{"#", "a", true}, {"#", "/", true}, {"a/#", "a", true}, {"a/#", "a/", true},
		{"a/#", "ab", false}, {"+", "a", true}, {"+", "/", false}, {"+/+", "/", true},
		{"a/+", "a/", true}, {"a/+", "a", false}, {"/a", "a", false}, {"/a", "/a", true},
		{"a/", "a", false}, {"a/", "a/", true}, {"a//b", "a//b", true}, {"+/+/+", "//", true},
		{"a/+/#", "a", false}, {"a/+/#", "a/", true}, {"+/#", "a", true},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct subtree t;
		struct match_ctx ctx = {0};

		ck_assert_int_eq(subtree_init(&t), 0);
		ck_assert_int_eq(add(&t, c[i].filter, 1, 0, 0), 1);
		ck_assert_msg(match(&t, &ctx, c[i].topic) == (c[i].match ? 1u : 0u),
			      "case \"%s\" vs \"%s\"", c[i].filter, c[i].topic);
		/* The oracle agrees with the table. */
		ck_assert_msg(topic_matches(c[i].filter, strlen(c[i].filter), c[i].topic,
					    strlen(c[i].topic)) == c[i].match,
			      "oracle, case \"%s\" vs \"%s\"", c[i].filter, c[i].topic);
		match_ctx_free(&ctx);
		subtree_free(&t);
	}
}
END_TEST

START_TEST(test_dollar_rules)
{
	static const char *const subs[] = {
		"#", "+/monitor/Clients", "+", "+/#", "$SYS/#", "$SYS/monitor/+", "a/+", "$SYS",
		"+/+/+",
	};
	struct subtree t;
	struct match_ctx ctx = {0};

	ck_assert_int_eq(subtree_init(&t), 0);
	for (int k = 0; k < (int)(sizeof(subs) / sizeof(subs[0])); k++)
		ck_assert_int_eq(add(&t, subs[k], k, 0, 0), 1);

	ck_assert_uint_eq(match(&t, &ctx, "$SYS/monitor/Clients"), 2);
	ck_assert_ptr_nonnull(found_session(&ctx, 4));
	ck_assert_ptr_nonnull(found_session(&ctx, 5));
	ck_assert_uint_eq(match(&t, &ctx, "$SYS"), 2);
	ck_assert_ptr_nonnull(found_session(&ctx, 4)); /* "$SYS/#" matches its parent */
	ck_assert_ptr_nonnull(found_session(&ctx, 7));
	ck_assert_uint_eq(match(&t, &ctx, "$other/x"), 0);
	ck_assert_uint_eq(match(&t, &ctx, "a/$x"), 3); /* "#", "+/#", "a/+" */
	ck_assert_ptr_nonnull(found_session(&ctx, 0));
	ck_assert_ptr_nonnull(found_session(&ctx, 3));
	ck_assert_ptr_nonnull(found_session(&ctx, 6));
	ck_assert_uint_eq(match(&t, &ctx, "x/monitor/Clients"), 4); /* #, +/m/C, +/#, +/+/+ */
	match_ctx_free(&ctx);
	subtree_free(&t);
}
END_TEST

/* Every node added is freed again when its last subscription goes. */
START_TEST(test_pruning)
{
	static const char *const filters[] = {
		"a/b/c", "a/b", "a", "a/+/c", "a/#", "#", "+", "+/+", "/", "//", "a//", "$SYS/#",
		"x/y/z/w/v", "x/y/+/w/#",
	};
	const size_t n = sizeof(filters) / sizeof(filters[0]);
	struct subtree t;
	struct match_ctx ctx = {0};
	uint64_t base;

	ck_assert_int_eq(subtree_init(&t), 0);
	base = mem_current();

	/* One filter at a time. */
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(add(&t, filters[i], 1, 0, 0), 1);
		ck_assert_msg(mem_current() > base, "case %s: nothing allocated", filters[i]);
		ck_assert(del(&t, filters[i], 1));
		ck_assert_msg(mem_current() == base, "case %s: %llu bytes left", filters[i],
			      (unsigned long long)(mem_current() - base));
	}

	/* All at once, with two sessions each, removed in another order. */
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(add(&t, filters[i], 1, 0, 0), 1);
		ck_assert_int_eq(add(&t, filters[i], 2, 0, 0), 1);
	}
	ck_assert_uint_eq(t.count, 2 * n);
	/* A removed parent does not take its children with it. */
	ck_assert(del(&t, "a/b", 1));
	ck_assert(del(&t, "a/b", 2));
	ck_assert_uint_eq(match(&t, &ctx, "a/b/c"), 2 * 4); /* a/b/c, a/+/c, a/#, # */
	ck_assert_uint_eq(match(&t, &ctx, "a/b"), 2 * 3);   /* a/#, #, +/+ */
	for (size_t i = n; i-- > 0;) {
		if (strcmp(filters[i], "a/b") == 0)
			continue;
		ck_assert(del(&t, filters[i], 2));
		ck_assert(del(&t, filters[i], 1));
	}
	ck_assert_uint_eq(t.count, 0);
	match_ctx_free(&ctx);
	ck_assert_uint_eq(mem_current(), base);

	/* Churn on one filter does not grow the tree. */
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(add(&t, "p/q/r", i % 7, 0, 0), 1);
		ck_assert(del(&t, "p/q/r", i % 7));
	}
	ck_assert_uint_eq(mem_current(), base);
	subtree_free(&t);
}
END_TEST

START_TEST(test_fan_out)
{
	struct subtree t;
	struct match_ctx ctx = {0};

	ck_assert_int_eq(subtree_init(&t), 0);
	for (int k = 0; k < 1000; k++) {
		ck_assert_int_eq(add(&t, "x/#", k, (uint8_t)(k % 3), (uint32_t)k + 1), 1);
		ck_assert_int_eq(add(&t, k % 2 ? "x/+" : "+/y", k, 0, 0), 1);
	}
	ck_assert_uint_eq(t.count, 2000);
	ck_assert_uint_eq(match(&t, &ctx, "x/y"), 2000);
	ck_assert_uint_eq(ctx.nodes_matched, 3);
	for (int k = 0; k < 1000; k++) {
		int seen = 0;
		for (size_t i = 0; i < ctx.nfound; i++) {
			if (ctx.found[i]->session != SESSION(k))
				continue;
			seen++;
			ck_assert(ctx.found[i]->subid == (uint32_t)k + 1 || ctx.found[i]->subid == 0);
		}
		ck_assert_msg(seen == 2, "session %d seen %d times", k, seen);
	}
	/* The context is reused: counts restart at every call. */
	ck_assert_uint_eq(match(&t, &ctx, "x/z"), 1500);
	ck_assert_uint_eq(match(&t, &ctx, "q"), 0);
	ck_assert_uint_eq(ctx.nodes_matched, 0);
	match_ctx_free(&ctx);
	subtree_free(&t);
}
END_TEST

#define ORACLE_FILTERS 400

static char oracle_filters[ORACLE_FILTERS][64];
static bool oracle_live[ORACLE_FILTERS];

/* Compares subtree_match() on one topic with topic_matches() over every live filter. */
static void oracle_check(struct subtree *t, struct match_ctx *ctx, const char *topic)
{
	size_t want = 0, distinct = 0;

	match(t, ctx, topic);
	for (int k = 0; k < ORACLE_FILTERS; k++) {
		bool m = oracle_live[k] && topic_matches(oracle_filters[k], strlen(oracle_filters[k]),
							 topic, strlen(topic));
		const struct subscriber *s = found_session(ctx, k);

		REQUIRE(m == (s != NULL), "topic \"%s\", filter \"%s\": trie %d, oracle %d", topic,
			oracle_filters[k], s != NULL, m);
		if (!m)
			continue;
		want++;
		REQUIRE(s->subid == (uint32_t)k + 1 && s->qos == k % 3, "filter %d: subid %u qos %u",
			k, s->subid, s->qos);
		/* Count each distinct matching filter once. */
		bool first = true;
		for (int j = 0; j < k && first; j++)
			if (oracle_live[j] && strcmp(oracle_filters[j], oracle_filters[k]) == 0)
				first = false;
		distinct += first;
	}
	REQUIRE(ctx->nfound == want, "topic \"%s\": %zu found, want %zu", topic, ctx->nfound,
		want);
	REQUIRE(ctx->nodes_matched == distinct, "topic \"%s\": %zu nodes, want %zu", topic,
		ctx->nodes_matched, distinct);
}

START_TEST(test_oracle)
{
	struct subtree t;
	struct match_ctx ctx = {0};
	char topic[64];
	size_t live, total_found = 0;
	uint64_t base;

	test_rng_seed(0x7375627472656500ull); /* "subtree" */
	ck_assert_int_eq(subtree_init(&t), 0);
	base = mem_current();
	for (int k = 0; k < ORACLE_FILTERS; k++) {
		test_random_topic(oracle_filters[k], true);
		ck_assert(topic_filter_valid(oracle_filters[k], strlen(oracle_filters[k])));
		ck_assert_int_eq(add(&t, oracle_filters[k], k, (uint8_t)(k % 3), (uint32_t)k + 1), 1);
		oracle_live[k] = true;
	}
	ck_assert_uint_eq(t.count, ORACLE_FILTERS);
	for (int i = 0; i < 1500; i++) {
		test_random_topic(topic, false);
		oracle_check(&t, &ctx, topic);
		total_found += ctx.nfound;
	}
	ck_assert_uint_gt(total_found, 1500); /* the corpus really matches things */

	/* Remove a random half, check again, then remove the rest. */
	live = ORACLE_FILTERS;
	for (int k = 0; k < ORACLE_FILTERS; k++) {
		if (test_rng(2)) {
			ck_assert(del(&t, oracle_filters[k], k));
			oracle_live[k] = false;
			live--;
		}
	}
	ck_assert_uint_eq(t.count, live);
	for (int i = 0; i < 1000; i++) {
		test_random_topic(topic, false);
		oracle_check(&t, &ctx, topic);
	}
	for (int k = 0; k < ORACLE_FILTERS; k++) {
		ck_assert(del(&t, oracle_filters[k], k) == oracle_live[k]);
		oracle_live[k] = false;
	}
	ck_assert_uint_eq(t.count, 0);
	match_ctx_free(&ctx);
	ck_assert_uint_eq(mem_current(), base);
	subtree_free(&t);
}
END_TEST

/* Results of the deep test, filled on the small-stack thread. */
struct deep_result {
	int add[4];
	size_t found_10000, found_9999, found_10001;
	size_t count_after_remove;
	bool removed;
	bool mem_back;
};

static void *deep_subtree_thread(void *arg)
{
	struct deep_result *r = arg;
	struct subtree t;
	struct match_ctx ctx = {0};
	char *exact = deep_topic(10000, "");
	char *plus = malloc(10000 * 2);
	char *hash = deep_topic(9999, "/#");
	char *t9999 = deep_topic(9999, "");
	char *t10001 = deep_topic(10001, "");
	uint64_t base;

	for (size_t i = 0; i < 10000; i++) {
		plus[2 * i] = '+';
		plus[2 * i + 1] = i + 1 < 10000 ? '/' : '\0';
	}
	if (subtree_init(&t) < 0)
		return NULL;
	base = mem_current();
	r->add[0] = add(&t, exact, 1, 0, 0);
	r->add[1] = add(&t, plus, 2, 0, 0);
	r->add[2] = add(&t, hash, 3, 0, 0);
	r->add[3] = add(&t, "#", 4, 0, 0);
	subtree_match(&t, exact, strlen(exact), &ctx);
	r->found_10000 = ctx.nfound;
	subtree_match(&t, t9999, strlen(t9999), &ctx);
	r->found_9999 = ctx.nfound;
	subtree_match(&t, t10001, strlen(t10001), &ctx);
	r->found_10001 = ctx.nfound;
	match_ctx_free(&ctx);
	/* Prune a 10 000-node chain, then free a tree that still holds two. */
	r->removed = del(&t, exact, 1) && del(&t, hash, 3);
	r->count_after_remove = t.count;
	r->mem_back = del(&t, plus, 2) && del(&t, "#", 4) && mem_current() == base;
	add(&t, exact, 1, 0, 0);
	add(&t, plus, 2, 0, 0);
	subtree_free(&t);
	free(exact);
	free(plus);
	free(hash);
	free(t9999);
	free(t10001);
	return NULL;
}

START_TEST(test_deep_topics)
{
	struct deep_result r = {{0}, 0, 0, 0, 0, false, false};

	run_small_stack(deep_subtree_thread, &r);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(r.add[i] == 1, "add %d returned %d", i, r.add[i]);
	ck_assert_uint_eq(r.found_10000, 4);  /* exact, all '+', l/.../#, # */
	ck_assert_uint_eq(r.found_9999, 2);   /* l/.../# (its parent) and # */
	ck_assert_uint_eq(r.found_10001, 2);  /* l/.../# and # */
	ck_assert(r.removed);
	ck_assert_uint_eq(r.count_after_remove, 2);
	ck_assert(r.mem_back);
}
END_TEST

/* --- shared subscriptions ($share/<group>/<filter>) --- */

static int add_any(struct subtree *t, const char *filter, int k)
{
	struct subscriber s = sub_of(k, 1, (uint32_t)k);
	return subtree_add_any(t, filter, strlen(filter), &s);
}

static bool del_any(struct subtree *t, const char *filter, int k)
{
	return subtree_remove_any(t, filter, strlen(filter), SESSION(k));
}

/* How many of n matches of topic went to each session 0..9 (others abort). */
static void tally(struct subtree *t, struct match_ctx *ctx, const char *topic, int n,
		  int counts[10])
{
	memset(counts, 0, 10 * sizeof(counts[0]));
	for (int i = 0; i < n; i++) {
		match(t, ctx, topic);
		for (size_t f = 0; f < ctx->nfound; f++) {
			ptrdiff_t k = (char *)(void *)ctx->found[f]->session - session_storage;
			REQUIRE(k >= 0 && k < 10, "unexpected session %td", k);
			counts[k]++;
		}
	}
}

START_TEST(test_shared_round_robin)
{
	struct subtree t;
	struct match_ctx ctx = {0};
	int counts[10];
	uint64_t base;

	ck_assert_int_eq(subtree_init(&t), 0);
	base = mem_current();
	for (int k = 1; k <= 3; k++)
		ck_assert_int_eq(add_any(&t, "$share/g/a/+", k), 1);
	ck_assert_int_eq(add_any(&t, "$share/g/a/+", 2), 0); /* update, not a second member */
	ck_assert_uint_eq(t.count, 3);
	ck_assert_uint_eq(t.shared_count, 3);

	/* One member per message, in turn. */
	ck_assert_uint_eq(match(&t, &ctx, "a/x"), 1);
	tally(&t, &ctx, "a/x", 30, counts);
	ck_assert_int_eq(counts[1], 10);
	ck_assert_int_eq(counts[2], 10);
	ck_assert_int_eq(counts[3], 10);
	ck_assert_uint_eq(match(&t, &ctx, "a"), 0);
	ck_assert_uint_eq(match(&t, &ctx, "b/x"), 0);

	/* A second group and a plain subscription on the same filter each get one. */
	ck_assert_int_eq(add_any(&t, "$share/h/a/+", 4), 1);
	ck_assert_int_eq(add_any(&t, "a/+", 5), 1);
	ck_assert_uint_eq(t.count, 5);
	ck_assert_uint_eq(t.shared_count, 4);
	ck_assert_uint_eq(match(&t, &ctx, "a/y"), 3);
	ck_assert_uint_eq(ctx.nodes_matched, 1);
	tally(&t, &ctx, "a/y", 20, counts);
	ck_assert_int_eq(counts[4], 20);
	ck_assert_int_eq(counts[5], 20);
	ck_assert_int_eq(counts[1] + counts[2] + counts[3], 20);

	/* Removing a member leaves the others taking turns. */
	ck_assert(del_any(&t, "$share/g/a/+", 2));
	ck_assert(!del_any(&t, "$share/g/a/+", 2));
	ck_assert(!del_any(&t, "$share/h/a/+", 1)); /* member of the other group */
	ck_assert(!del_any(&t, "$share/x/a/+", 1)); /* no such group */
	ck_assert(!del_any(&t, "a/+", 1));          /* not a plain subscriber */
	tally(&t, &ctx, "a/z", 10, counts);
	ck_assert_int_eq(counts[1], 5);
	ck_assert_int_eq(counts[2], 0);
	ck_assert_int_eq(counts[3], 5);

	/* The plain subscription is independent of the groups on its filter. */
	ck_assert(del_any(&t, "a/+", 5));
	ck_assert_uint_eq(match(&t, &ctx, "a/z"), 2);
	ck_assert(del_any(&t, "$share/g/a/+", 1));
	ck_assert(del_any(&t, "$share/g/a/+", 3));
	ck_assert(del_any(&t, "$share/h/a/+", 4));
	ck_assert_uint_eq(t.count, 0);
	ck_assert_uint_eq(t.shared_count, 0);
	ck_assert_uint_eq(match(&t, &ctx, "a/z"), 0);
	match_ctx_free(&ctx);
	ck_assert_uint_eq(mem_current(), base);
	subtree_free(&t);
}
END_TEST

static bool prefer_two(const struct session *s)
{
	return s == SESSION(2);
}

static bool prefer_none(const struct session *s)
{
	return false;
}

START_TEST(test_shared_preferred_and_rules)
{
	struct subtree t;
	struct match_ctx ctx = {0};
	int counts[10];

	ck_assert_int_eq(subtree_init(&t), 0);
	for (int k = 1; k <= 3; k++)
		ck_assert_int_eq(add_any(&t, "$share/g/#", k), 1);

	/* Preferred members (online ones) get every message while there are any. */
	ctx.preferred = prefer_two;
	tally(&t, &ctx, "x", 12, counts);
	ck_assert_int_eq(counts[2], 12);
	/* None preferred: plain round robin. */
	ctx.preferred = prefer_none;
	tally(&t, &ctx, "x", 12, counts);
	ck_assert_int_eq(counts[1], 4);
	ck_assert_int_eq(counts[2], 4);
	ck_assert_int_eq(counts[3], 4);
	ctx.preferred = NULL;

	/* A leading wildcard of a shared filter does not match '$' topics either. */
	ck_assert_uint_eq(match(&t, &ctx, "$SYS/x"), 0);
	ck_assert_int_eq(add_any(&t, "$share/s/$SYS/#", 4), 1);
	ck_assert_uint_eq(match(&t, &ctx, "$SYS/x"), 1);
	ck_assert_ptr_eq(ctx.found[0]->session, SESSION(4));

	/* Malformed shared filters are refused, and nothing is created for them. */
	uint64_t before = mem_current();
	ck_assert_int_eq(add_any(&t, "$share//a", 5), -1);
	ck_assert_int_eq(add_any(&t, "$share/g", 5), -1);
	ck_assert_int_eq(add_any(&t, "$share/g/", 5), -1);
	ck_assert_int_eq(add_any(&t, "$share/g+/a", 5), -1);
	ck_assert(!del_any(&t, "$share//a", 5));
	ck_assert_uint_eq(mem_current(), before);
	ck_assert_uint_eq(t.count, 4);
	ck_assert_uint_eq(t.shared_count, 4);

	/* subtree_free() releases groups still present. */
	match_ctx_free(&ctx);
	subtree_free(&t);
}
END_TEST

/* --- the retained store --- */

static struct message *msg(const char *topic, const char *payload)
{
	struct message *m = message_new(topic, strlen(topic), payload, strlen(payload), 1, true,
					NULL, 0);
	ck_assert_ptr_nonnull(m);
	return m;
}

static uint32_t refs(struct message *m)
{
	return atomic_load(&m->refs);
}

/* Collects delivered messages. */
struct collect {
	struct message *got[1024];
	size_t n;
};

static void collect_fn(struct message *m, void *arg)
{
	struct collect *c = arg;

	ck_assert_uint_lt(c->n, sizeof(c->got) / sizeof(c->got[0]));
	c->got[c->n++] = m;
}

static size_t rmatch(struct retain_store *r, const char *filter, int64_t now, struct collect *c)
{
	c->n = 0;
	ck_assert_int_eq(retain_match(r, filter, strlen(filter), now, collect_fn, c), 0);
	return c->n;
}

static bool collected(const struct collect *c, const char *topic)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->got[i]->topic, topic) == 0)
			return true;
	return false;
}

START_TEST(test_retain_set_replace_delete)
{
	struct retain_store r;
	struct collect c;
	struct message *m1, *m2, *empty, *other;
	uint64_t base = mem_current();
	uint64_t live = message_live_count();

	ck_assert_int_eq(retain_init(&r), 0);
	m1 = msg("a/b", "one");
	ck_assert_int_eq(retain_set(&r, m1), 0);
	ck_assert_uint_eq(r.count, 1);
	ck_assert_uint_eq(r.bytes, message_size(m1));
	ck_assert_uint_eq(refs(m1), 2); /* the store holds its own reference */

	/* Same topic: replaced, the old message released by the store. */
	m2 = msg("a/b", "second");
	ck_assert_int_eq(retain_set(&r, m2), 0);
	ck_assert_uint_eq(r.count, 1);
	ck_assert_uint_eq(r.bytes, message_size(m2));
	ck_assert_uint_eq(refs(m1), 1);
	ck_assert_uint_eq(refs(m2), 2);
	ck_assert_uint_eq(rmatch(&r, "a/b", 0, &c), 1);
	ck_assert_ptr_eq(c.got[0], m2);

	other = msg("a/c", "x");
	ck_assert_int_eq(retain_set(&r, other), 0);
	ck_assert_uint_eq(r.count, 2);
	ck_assert_uint_eq(r.bytes, message_size(m2) + message_size(other));

	/* An empty payload deletes; the empty message itself is not kept. */
	empty = msg("a/b", "");
	ck_assert_int_eq(retain_set(&r, empty), 0);
	ck_assert_uint_eq(r.count, 1);
	ck_assert_uint_eq(r.bytes, message_size(other));
	ck_assert_uint_eq(refs(m2), 1);
	ck_assert_uint_eq(refs(empty), 1);
	ck_assert_uint_eq(rmatch(&r, "a/b", 0, &c), 0);
	ck_assert_uint_eq(rmatch(&r, "a/+", 0, &c), 1);
	ck_assert_ptr_eq(c.got[0], other);

	/* Deleting what is not there is fine, at any depth. */
	ck_assert_int_eq(retain_set(&r, empty), 0);
	message_unref(empty);
	empty = msg("a", "");
	ck_assert_int_eq(retain_set(&r, empty), 0);
	message_unref(empty);
	empty = msg("x/y/z", "");
	ck_assert_int_eq(retain_set(&r, empty), 0);
	message_unref(empty);
	ck_assert_uint_eq(r.count, 1);

	empty = msg("a/c", "");
	ck_assert_int_eq(retain_set(&r, empty), 0);
	message_unref(empty);
	ck_assert_uint_eq(r.count, 0);
	ck_assert_uint_eq(r.bytes, 0);
	ck_assert_uint_eq(refs(other), 1);
	message_unref(m1);
	message_unref(m2);
	message_unref(other);
	retain_free(&r);
	ck_assert_uint_eq(message_live_count(), live);
	ck_assert_uint_eq(mem_current(), base);
}
END_TEST

START_TEST(test_retain_pruning_and_free)
{
	static const char *const topics[] = {"a/b/c", "a/b", "a", "/", "//x", "$SYS/up", "a/b/c/d"};
	const size_t n = sizeof(topics) / sizeof(topics[0]);
	struct retain_store r;
	struct collect c;
	uint64_t base, live = message_live_count();

	ck_assert_int_eq(retain_init(&r), 0);
	base = mem_current();
	for (size_t i = 0; i < n; i++) {
		struct message *m = msg(topics[i], "v");
		ck_assert_int_eq(retain_set(&r, m), 0);
		message_unref(m);
	}
	ck_assert_uint_eq(r.count, n);
	ck_assert_uint_eq(message_live_count(), live + n);
	/* Deleting an inner topic keeps the ones below it. */
	struct message *d = msg("a/b", "");
	ck_assert_int_eq(retain_set(&r, d), 0);
	message_unref(d);
	ck_assert_uint_eq(rmatch(&r, "a/b/#", 0, &c), 2);
	ck_assert(collected(&c, "a/b/c"));
	ck_assert(collected(&c, "a/b/c/d"));
	for (size_t i = 0; i < n; i++) {
		d = msg(topics[i], "");
		ck_assert_int_eq(retain_set(&r, d), 0);
		message_unref(d);
	}
	ck_assert_uint_eq(r.count, 0);
	ck_assert_uint_eq(message_live_count(), live);
	ck_assert_uint_eq(mem_current(), base);

	/* retain_free() releases what is still stored. */
	for (size_t i = 0; i < n; i++) {
		struct message *m = msg(topics[i], "v");
		ck_assert_int_eq(retain_set(&r, m), 0);
		message_unref(m);
	}
	retain_free(&r);
	ck_assert_uint_eq(message_live_count(), live);
}
END_TEST

START_TEST(test_retain_wildcards_and_dollar)
{
	static const char *const topics[] = {
		"a", "a/b", "a/b/c", "a/", "/a", "$SYS", "$SYS/up", "$SYS/a/b", "b/$x", "/",
	};
	static const struct {
		const char *filter;
		const char *want[8];
	} c[] = {
		{"#", {"a", "a/b", "a/b/c", "a/", "/a", "b/$x", "/"}},
		{"+", {"a"}},
		{"+/#", {"a", "a/b", "a/b/c", "a/", "/a", "b/$x", "/"}},
		{"a/#", {"a", "a/b", "a/b/c", "a/"}},
		{"a/+", {"a/b", "a/"}},
		{"+/+", {"a/b", "a/", "/a", "b/$x", "/"}},
		{"$SYS/#", {"$SYS", "$SYS/up", "$SYS/a/b"}},
		{"$SYS/+", {"$SYS/up"}},
		{"+/up", {NULL}},
		{"$SYS", {"$SYS"}},
		{"b/+", {"b/$x"}},
		{"/#", {"/a", "/"}},
		{"/+", {"/a", "/"}},
		{"a/b/c/#", {"a/b/c"}},
		{"nothing/#", {NULL}},
	};
	struct retain_store r;
	struct collect got;

	ck_assert_int_eq(retain_init(&r), 0);
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		struct message *m = msg(topics[i], "v");
		ck_assert_int_eq(retain_set(&r, m), 0);
		message_unref(m);
	}
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t want = 0;

		while (want < 8 && c[i].want[want])
			want++;
		ck_assert_msg(rmatch(&r, c[i].filter, 0, &got) == want, "case %s: %zu delivered",
			      c[i].filter, got.n);
		for (size_t k = 0; k < want; k++)
			ck_assert_msg(collected(&got, c[i].want[k]), "case %s: %s missing", c[i].filter,
				      c[i].want[k]);
	}
	retain_free(&r);
}
END_TEST

#define RETAIN_TOPICS 300

START_TEST(test_retain_oracle)
{
	static char topics[RETAIN_TOPICS][64];
	static bool live[RETAIN_TOPICS];
	struct retain_store r;
	struct collect got;
	char filter[64];
	size_t stored = 0, total = 0;

	test_rng_seed(0x72657461696E00ull); /* "retain" */
	ck_assert_int_eq(retain_init(&r), 0);
	for (int k = 0; k < RETAIN_TOPICS; k++) {
		bool dup;
		do {
			test_random_topic(topics[k], false);
			dup = false;
			for (int j = 0; j < k; j++)
				dup |= strcmp(topics[j], topics[k]) == 0;
		} while (dup);
		struct message *m = msg(topics[k], "v");
		ck_assert_int_eq(retain_set(&r, m), 0);
		message_unref(m);
		live[k] = true;
		stored++;
	}
	ck_assert_uint_eq(r.count, stored);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 600; i++) {
			size_t want = 0;

			test_random_topic(filter, true);
			rmatch(&r, filter, 0, &got);
			for (int k = 0; k < RETAIN_TOPICS; k++) {
				bool m = live[k] && topic_matches(filter, strlen(filter), topics[k],
								  strlen(topics[k]));
				size_t seen = 0;
				for (size_t g = 0; g < got.n; g++)
					seen += strcmp(got.got[g]->topic, topics[k]) == 0;
				REQUIRE(seen == (m ? 1u : 0u),
					      "filter \"%s\", topic \"%s\": delivered %zu times, oracle %d",
					      filter, topics[k], seen, m);
				want += m;
			}
			REQUIRE(got.n == want, "filter \"%s\": %zu delivered, want %zu", filter,
				      got.n, want);
			total += want;
		}
		/* Second round: with a random half deleted. */
		for (int k = 0; k < RETAIN_TOPICS; k++) {
			if (live[k] && test_rng(2)) {
				struct message *d = msg(topics[k], "");
				ck_assert_int_eq(retain_set(&r, d), 0);
				message_unref(d);
				live[k] = false;
				stored--;
			}
		}
		ck_assert_uint_eq(r.count, stored);
	}
	ck_assert_uint_gt(total, 600);
	retain_free(&r);
}
END_TEST

START_TEST(test_retain_expiry)
{
	struct retain_store r;
	struct collect got;
	struct message *m1, *m2, *m3;
	uint64_t live = message_live_count();
	uint64_t base;

	ck_assert_int_eq(retain_init(&r), 0);
	base = mem_current();
	m1 = msg("e/1", "a");
	m2 = msg("e/2", "b");
	m3 = msg("e/3/deep", "c");
	m1->expires = 100;
	m2->expires = 200;
	ck_assert_int_eq(retain_set(&r, m1), 0);
	ck_assert_int_eq(retain_set(&r, m2), 0);
	ck_assert_int_eq(retain_set(&r, m3), 0);
	message_unref(m1);
	message_unref(m2);
	message_unref(m3);

	ck_assert_uint_eq(rmatch(&r, "e/#", 99, &got), 3);
	/* Expired at its expiry second: never delivered from then on. */
	ck_assert_uint_eq(rmatch(&r, "e/#", 100, &got), 2);
	ck_assert(!collected(&got, "e/1"));
	ck_assert_uint_eq(rmatch(&r, "e/1", 150, &got), 0);
	ck_assert_uint_eq(rmatch(&r, "e/+", 150, &got), 1);

	ck_assert_uint_eq(retain_expire(&r, 99), 0);
	ck_assert_uint_eq(r.count, 3);
	ck_assert_uint_eq(retain_expire(&r, 150), 1);
	ck_assert_uint_eq(r.count, 2);
	ck_assert_uint_eq(retain_expire(&r, 150), 0);
	ck_assert_uint_eq(retain_expire(&r, 1000000), 1);
	ck_assert_uint_eq(r.count, 1);
	ck_assert_uint_eq(r.bytes, 8 + 1); /* "e/3/deep" + "c" */
	ck_assert_uint_eq(rmatch(&r, "#", 1000000, &got), 1);
	ck_assert_uint_eq(message_live_count(), live + 1);

	/* Expire many at once, at several depths. */
	for (int i = 0; i < 200; i++) {
		char topic[32];
		snprintf(topic, sizeof(topic), "x/%d/%d", i % 7, i);
		struct message *m = msg(topic, "p");
		m->expires = 500 + i % 2;
		ck_assert_int_eq(retain_set(&r, m), 0);
		message_unref(m);
	}
	ck_assert_uint_eq(r.count, 201);
	ck_assert_uint_eq(retain_expire(&r, 500), 100);
	ck_assert_uint_eq(retain_expire(&r, 501), 100);
	ck_assert_uint_eq(r.count, 1);
	ck_assert_uint_eq(rmatch(&r, "x/#", 0, &got), 0);

	struct message *d = msg("e/3/deep", "");
	ck_assert_int_eq(retain_set(&r, d), 0);
	message_unref(d);
	ck_assert_uint_eq(r.count, 0);
	ck_assert_uint_eq(mem_current(), base);
	retain_free(&r);
	ck_assert_uint_eq(message_live_count(), live);
}
END_TEST

struct deep_retain_result {
	size_t exact, hash, plus, prefix_hash, parent, too_deep;
	size_t count_after;
	bool mem_back;
};

static void *deep_retain_thread(void *arg)
{
	struct deep_retain_result *res = arg;
	struct retain_store r;
	struct collect got;
	char *topic = deep_topic(10000, "");
	char *plus = malloc(10000 * 2);
	char *prefix_hash = deep_topic(5000, "/#");
	char *parent = deep_topic(9999, "");
	char *too_deep = deep_topic(10000, "/+");
	struct message *m, *d;
	uint64_t base;

	for (size_t i = 0; i < 10000; i++) {
		plus[2 * i] = '+';
		plus[2 * i + 1] = i + 1 < 10000 ? '/' : '\0';
	}
	if (retain_init(&r) < 0)
		return NULL;
	m = message_new(topic, strlen(topic), "v", 1, 0, true, NULL, 0);
	base = mem_current();
	if (!m || retain_set(&r, m) < 0)
		return NULL;
	got.n = 0;
	retain_match(&r, topic, strlen(topic), 0, collect_fn, &got);
	res->exact = got.n;
	got.n = 0;
	retain_match(&r, "#", 1, 0, collect_fn, &got);
	res->hash = got.n;
	got.n = 0;
	retain_match(&r, plus, strlen(plus), 0, collect_fn, &got);
	res->plus = got.n;
	got.n = 0;
	retain_match(&r, prefix_hash, strlen(prefix_hash), 0, collect_fn, &got);
	res->prefix_hash = got.n;
	got.n = 0;
	retain_match(&r, parent, strlen(parent), 0, collect_fn, &got);
	res->parent = got.n;
	got.n = 0;
	retain_match(&r, too_deep, strlen(too_deep), 0, collect_fn, &got);
	res->too_deep = got.n;
	/* Delete (prunes 10 000 nodes), store again, and free with it inside. */
	d = message_new(topic, strlen(topic), NULL, 0, 0, true, NULL, 0);
	retain_set(&r, d);
	message_unref(d);
	res->count_after = r.count;
	res->mem_back = mem_current() == base;
	retain_set(&r, m);
	message_unref(m);
	retain_expire(&r, 0);
	retain_free(&r);
	free(topic);
	free(plus);
	free(prefix_hash);
	free(parent);
	free(too_deep);
	return NULL;
}

START_TEST(test_retain_deep_topics)
{
	struct deep_retain_result r = {0, 0, 0, 0, 0, 0, 0, false};
	uint64_t live = message_live_count();

	run_small_stack(deep_retain_thread, &r);
	ck_assert_uint_eq(r.exact, 1);
	ck_assert_uint_eq(r.hash, 1);
	ck_assert_uint_eq(r.plus, 1);
	ck_assert_uint_eq(r.prefix_hash, 1);
	ck_assert_uint_eq(r.parent, 0);
	ck_assert_uint_eq(r.too_deep, 0);
	ck_assert_uint_eq(r.count_after, 0);
	ck_assert(r.mem_back);
	ck_assert_uint_eq(message_live_count(), live);
}
END_TEST

Suite *suite_subtree(void)
{
	Suite *s = suite_create("subtree");
	TCase *tc;

	tc = tcase_create("subtree");
	tcase_add_test(tc, test_add_update_remove);
	tcase_add_test(tc, test_wildcard_shapes);
	tcase_add_test(tc, test_dollar_rules);
	tcase_add_test(tc, test_pruning);
	tcase_add_test(tc, test_fan_out);
	tcase_add_test(tc, test_oracle);
	tcase_add_test(tc, test_deep_topics);
	tcase_add_test(tc, test_shared_round_robin);
	tcase_add_test(tc, test_shared_preferred_and_rules);
	suite_add_tcase(s, tc);

	tc = tcase_create("retain");
	tcase_add_test(tc, test_retain_set_replace_delete);
	tcase_add_test(tc, test_retain_pruning_and_free);
	tcase_add_test(tc, test_retain_wildcards_and_dollar);
	tcase_add_test(tc, test_retain_oracle);
	tcase_add_test(tc, test_retain_expiry);
	tcase_add_test(tc, test_retain_deep_topics);
	suite_add_tcase(s, tc);
	return s;
}
