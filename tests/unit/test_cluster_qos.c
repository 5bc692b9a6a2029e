/*
 * test_cluster_qos.c: the pure parts of QoS 1/2 through JetStream: the
 * "q" subjects of a filter, the message id (Nats-Msg-Id) and its parser,
 * and cluster_acks, the settled prefix of a worker's messages that holds
 * publishers' acknowledgements (in order, out of order, expiry, failures
 * handed over exactly once, growth past the first ring); and the stream's
 * max age option.
 */
#include "config.h"

#include "tests.h"

#include "cluster_acks.h"
#include "cluster_wire.h"
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(test_qos_subjects)
{
	size_t max = cluster_subject_max("midge", 3);
	char *out[2] = {malloc(max), malloc(max)};
	char topic[64];

	ck_assert_int_eq(cluster_subjects_for_filter(out, "midge", CLUSTER_KIND_QOS, "a/#", 3), 2);
	ck_assert_str_eq(out[0], "midge.q.a");
	ck_assert_str_eq(out[1], "midge.q.a.>");
	ck_assert_int_eq(cluster_subjects_for_filter(out, "midge", CLUSTER_KIND_MSG, "a/#", 3), 2);
	ck_assert_str_eq(out[1], "midge.m.a.>");
	free(out[0]);
	free(out[1]);
	char subj[64];
	cluster_subject_for_topic(subj, "midge", CLUSTER_KIND_QOS, "x/y.z", 5);
	ck_assert_str_eq(subj, "midge.q.x.y~2Ez");
	ck_assert_int_eq(cluster_topic_for_subject(topic, "midge", CLUSTER_KIND_QOS, subj), 5);
	ck_assert_str_eq(topic, "x/y.z");
	ck_assert_int_eq(cluster_topic_for_subject(topic, "midge", CLUSTER_KIND_MSG, subj), -1);
}
END_TEST

START_TEST(test_msg_id)
{
	char id[CLUSTER_MSG_ID_MAX];
	uint64_t inst, seq;

	ck_assert_uint_eq(cluster_msg_id(id, 0x0123456789abcdefull, 42), 19);
	ck_assert_str_eq(id, "0123456789abcdef-42");
	ck_assert_int_eq(cluster_msg_id_parse(id, &inst, &seq), 0);
	ck_assert_uint_eq(inst, 0x0123456789abcdefull);
	ck_assert_uint_eq(seq, 42);
	cluster_msg_id(id, UINT64_MAX, UINT64_MAX);
	ck_assert_str_eq(id, "ffffffffffffffff-18446744073709551615");
	ck_assert_uint_lt(strlen(id), CLUSTER_MSG_ID_MAX);
	ck_assert_int_eq(cluster_msg_id_parse(id, &inst, &seq), 0);
	ck_assert_uint_eq(inst, UINT64_MAX);
	ck_assert_uint_eq(seq, UINT64_MAX);
	cluster_msg_id(id, 1, 0);
	ck_assert_str_eq(id, "0000000000000001-0");

	static const char *const bad[] = {
		"", "0123456789abcdef", "0123456789abcdef-", "0123456789abcde-1",
		"0123456789ABCDEF-1", "0123456789abcdef-1x", "0123456789abcdef+1",
		"0123456789abcdef--1", "0123456789abcdef-18446744073709551616", "g123456789abcdef-1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cluster_msg_id_parse(bad[i], &inst, &seq) < 0, "%s parsed", bad[i]);
}
END_TEST

static size_t take(struct cluster_acks *a, uint64_t **list, size_t *cap)
{
	size_t n = 0;

	cluster_acks_take_failed(a, list, &n, cap);
	return n;
}

START_TEST(test_acks_in_order)
{
	struct cluster_acks a = {0};
	uint64_t *f = NULL;
	size_t cap = 0;

	ck_assert_uint_eq(cluster_acks_last(&a), 0);
	ck_assert_uint_eq(cluster_acks_add(&a, 10, 1000), 1);
	ck_assert_uint_eq(cluster_acks_add(&a, 11, 1000), 2);
	ck_assert_uint_eq(cluster_acks_add(&a, 15, 1000), 3); /* other workers took 12-14 */
	ck_assert_uint_eq(cluster_acks_last(&a), 3);
	ck_assert_int_eq(cluster_acks_settle(&a, 12, true), -1); /* not ours */
	ck_assert_int_eq(cluster_acks_settle(&a, 10, true), 1);
	ck_assert_uint_eq(a.done, 1);
	ck_assert_int_eq(cluster_acks_settle(&a, 10, true), -1); /* settled already */
	ck_assert_int_eq(cluster_acks_settle(&a, 11, true), 1);
	ck_assert_int_eq(cluster_acks_settle(&a, 15, true), 1);
	ck_assert_uint_eq(a.done, 3);
	ck_assert_uint_eq(take(&a, &f, &cap), 0);
	ck_assert_uint_eq(cluster_acks_add(&a, 16, 1000), 4);
	cluster_acks_free(&a);
	free(f);
}
END_TEST

START_TEST(test_acks_out_of_order_and_failures)
{
	struct cluster_acks a = {0};
	uint64_t *f = NULL;
	size_t cap = 0, n;
	int64_t deadline;

	for (uint64_t s = 1; s <= 5; s++)
		cluster_acks_add(&a, s * 2, 100 * (int64_t)s);
	ck_assert(cluster_acks_deadline(&a, 6, &deadline));
	ck_assert_int_eq(deadline, 300);
	ck_assert(!cluster_acks_deadline(&a, 7, &deadline));
	/* 3 and 2 settle before 1: the prefix waits for 1. */
	ck_assert_int_eq(cluster_acks_settle(&a, 6, false), 0);
	ck_assert_int_eq(cluster_acks_settle(&a, 4, true), 0);
	ck_assert_uint_eq(a.done, 0);
	ck_assert_uint_eq(take(&a, &f, &cap), 0); /* a failure beyond the prefix is not handed out */
	ck_assert(!cluster_acks_deadline(&a, 6, &deadline));
	ck_assert_int_eq(cluster_acks_settle(&a, 2, true), 1);
	ck_assert_uint_eq(a.done, 3);
	n = take(&a, &f, &cap);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(f[0], 3);
	ck_assert_uint_eq(take(&a, &f, &cap), 0); /* once */
	/* Expiry: 4 (deadline 400) and 5 (500) at 450: only 4. */
	ck_assert_uint_eq(cluster_acks_expire(&a, 450), 1);
	ck_assert_uint_eq(a.done, 4);
	ck_assert_int_eq(cluster_acks_settle(&a, 8, true), -1); /* too late */
	ck_assert_uint_eq(cluster_acks_expire(&a, 500), 1);
	ck_assert_uint_eq(a.done, 5);
	n = take(&a, &f, &cap);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(f[0], 4);
	ck_assert_uint_eq(f[1], 5);
	ck_assert_uint_eq(cluster_acks_expire(&a, 10000), 0);
	cluster_acks_free(&a);
	free(f);
}
END_TEST

/* An outage releases what waits: pending ones count as confirmed, failures stay failed. */
START_TEST(test_acks_release)
{
	struct cluster_acks a = {0};
	uint64_t *f = NULL;
	size_t cap = 0;

	ck_assert_uint_eq(cluster_acks_release(&a), 0);
	for (uint64_t s = 1; s <= 4; s++)
		cluster_acks_add(&a, s, 1000);
	ck_assert_int_eq(cluster_acks_settle(&a, 2, false), 0);
	ck_assert_int_eq(cluster_acks_settle(&a, 3, true), 0);
	ck_assert_uint_eq(cluster_acks_release(&a), 2); /* 1 and 4 */
	ck_assert_uint_eq(a.done, 4);
	ck_assert_uint_eq(a.count, 0);
	ck_assert_uint_eq(take(&a, &f, &cap), 1);
	ck_assert_uint_eq(f[0], 2);
	ck_assert_int_eq(cluster_acks_settle(&a, 4, true), -1); /* its late answer */
	ck_assert_uint_eq(cluster_acks_release(&a), 0);
	ck_assert_uint_eq(cluster_acks_add(&a, 5, 1000), 5);
	cluster_acks_free(&a);
	free(f);
}
END_TEST

/* Thousands pending across ring growth and wrap-around, settled in a scrambled order. */
START_TEST(test_acks_many)
{
	struct cluster_acks a = {0};
	uint64_t *f = NULL, expect_failed = 0, got_failed = 0, next = 1;
	size_t cap = 0;
	enum { N = 5000 };
	static uint64_t order[N];

	test_rng_seed(34);
	for (int round = 0; round < 3; round++) {
		uint64_t first = next;
		for (int i = 0; i < N; i++)
			ck_assert_uint_eq(cluster_acks_add(&a, 3 * next++, 0), first + (uint64_t)i);
		for (int i = 0; i < N; i++)
			order[i] = first + (uint64_t)i;
		for (int i = N - 1; i > 0; i--) {
			int j = (int)test_rng((uint32_t)(i + 1));
			uint64_t t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		for (int i = 0; i < N; i++) {
			bool ok = order[i] % 7 != 0;
			expect_failed += !ok;
			ck_assert_int_ge(cluster_acks_settle(&a, 3 * order[i], ok), 0);
			size_t n = take(&a, &f, &cap);
			for (size_t k = 0; k < n; k++) {
				ck_assert_uint_eq(f[k] % 7, 0);
				ck_assert_uint_le(f[k], a.done);
				ck_assert(k == 0 || f[k] > f[k - 1]);
			}
			got_failed += n;
		}
		ck_assert_uint_eq(a.done, next - 1);
		ck_assert_uint_eq(a.count, 0);
	}
	ck_assert_uint_eq(got_failed, expect_failed);
	cluster_acks_free(&a);
	free(f);
}
END_TEST

#ifdef HAVE_NATS
/* Loads text as a configuration file of that suffix; returns config_load()'s result. */
static int load_config(struct config *cfg, struct config_diag *diag, const char *suffix,
		       const char *text)
{
	char path[64];
	int fd, rc;
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/midge-qos-XXXXXX%s", suffix);
	fd = mkstemps(path, (int)strlen(suffix));
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	memset(diag, 0, sizeof(*diag));
	config_init(cfg);
	rc = config_load(cfg, path, CONFIG_FORMAT_AUTO, diag);
	unlink(path);
	return rc;
}

START_TEST(test_stream_max_age_option)
{
	static const struct {
		const char *suffix, *text;
		int64_t seconds; /* -1: refused */
	} cases[] = {
		{".yaml", "cluster:\n  nats_servers: [nats://h:1]\n", 0}, /* the cluster's 1 h */
		{".yaml", "cluster:\n  nats_servers: [nats://h:1]\n  stream_max_age: 2d\n", 172800},
		{".yaml", "cluster:\n  nats_servers: [nats://h:1]\n  stream_max_age: 90s\n", 90},
		{".conf", "cluster_nats_servers nats://h:1\ncluster_stream_max_age 3h\n", 10800},
		{".yaml", "cluster:\n  nats_servers: [nats://h:1]\n  stream_max_age: 0h\n", -1},
		{".yaml", "cluster:\n  nats_servers: [nats://h:1]\n  stream_max_age: soon\n", -1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		struct config_diag diag;
		int rc = load_config(&cfg, &diag, cases[i].suffix, cases[i].text);
		if (cases[i].seconds < 0) {
			ck_assert_msg(rc != 0 && diag.nerrors > 0, "case %zu accepted", i);
			ck_assert_ptr_nonnull(strstr(diag.errors[0].key, "stream_max_age"));
		} else {
			ck_assert_msg(rc == 0, "case %zu: %s", i,
				      diag.nerrors ? diag.errors[0].message : "");
			ck_assert_int_eq(cfg.cluster.stream_max_age, cases[i].seconds);
		}
		config_free(&cfg);
		config_diag_free(&diag);
	}
}
END_TEST
#endif

Suite *suite_cluster_qos(void)
{
	Suite *s = suite_create("cluster_qos");
	TCase *tc = tcase_create("qos");

	tcase_add_test(tc, test_qos_subjects);
	tcase_add_test(tc, test_msg_id);
	tcase_add_test(tc, test_acks_in_order);
	tcase_add_test(tc, test_acks_out_of_order_and_failures);
	tcase_add_test(tc, test_acks_release);
	tcase_add_test(tc, test_acks_many);
#ifdef HAVE_NATS
	tcase_add_test(tc, test_stream_max_age_option);
#endif
	suite_add_tcase(s, tc);
	return s;
}
