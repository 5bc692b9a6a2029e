/*
 * test_cluster.c: the pure parts of the cluster (cluster_wire.h): the MQTT
 * topic <-> NATS subject mapping (every special byte and empty levels round-
 * trip; filters give subjects that NATS matches at least as broadly as MQTT),
 * the envelope codec, and the cluster section of the configuration (YAML and
 * mosquitto.conf forms, errors with file:line and key, midge --convert).
 */
#include "config.h"

#include "tests.h"

#include "cluster_wire.h"
#include "conf.h"
#include "subtree.h"
#include "topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- mapping ------------------------------------------------------------------ */

static char *subject_of(const char *topic, size_t len)
{
	char *s = malloc(cluster_subject_max("midge", len));

	ck_assert_ptr_nonnull(s);
	cluster_subject_for_topic(s, "midge", CLUSTER_KIND_MSG, topic, len);
	return s;
}

START_TEST(test_topic_subjects)
{
	static const struct {
		const char *topic, *subject;
	} cases[] = {
		{"a", "midge.m.a"},
		{"a/b/c", "midge.m.a.b.c"},
		{"a.b", "midge.m.a~2Eb"},
		{"*", "midge.m.~2A"},
		{">", "midge.m.~3E"},
		{"a b\tc", "midge.m.a~20b~09c"},
		{"~", "midge.m.~7E"},
		{"/", "midge.m.~.~"},
		{"a//b/", "midge.m.a.~.b.~"},
		{"$SYS/x", "midge.m.$SYS.x"},
		{"caf\xc3\xa9/\x7f", "midge.m.caf\xc3\xa9.~7F"},
		{"x\x01y", "midge.m.x~01y"},
	};
	struct fails f = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = subject_of(cases[i].topic, strlen(cases[i].topic));
		if (strcmp(s, cases[i].subject) != 0)
			fail_note(&f, "%s -> %s, expected %s; ", cases[i].topic, s, cases[i].subject);
		free(s);
	}
	FAILS_CHECK(&f);
}
END_TEST

/* No token is empty, no token holds '*', '>' or a blank, and decoding gives the topic back. */
static void check_roundtrip(struct fails *f, const char *topic, size_t len)
{
	char *s = subject_of(topic, len);
	char *back = malloc(strlen(s) + 1);
	long n;

	ck_assert_ptr_nonnull(back);
	for (const char *p = s; *p; p++) {
		if (*p == '*' || *p == '>' || (unsigned char)*p <= ' ' || *p == 0x7f ||
		    (*p == '.' && (p[1] == '.' || p[1] == '\0')))
			fail_note(f, "subject of %.*s has a special byte: %s; ", (int)len, topic, s);
	}
	n = cluster_topic_for_subject(back, "midge", CLUSTER_KIND_MSG, s);
	if (n != (long)len || memcmp(back, topic, len) != 0)
		fail_note(f, "%.*s -> %s -> %.*s; ", (int)len, topic, s, n < 0 ? 0 : (int)n, back);
	free(back);
	free(s);
}

START_TEST(test_topic_roundtrip_every_byte)
{
	struct fails f = {0};
	char topic[8];

	/* Every byte a topic name may hold, alone, between others, and as a whole level. */
	for (int c = 1; c < 256; c++) {
		if (c == '+' || c == '#' || c == '/')
			continue;
		topic[0] = 'a';
		topic[1] = (char)c;
		topic[2] = '/';
		topic[3] = (char)c;
		topic[4] = '\0';
		check_roundtrip(&f, topic, 4);
	}
	static const char *const odd[] = {"/", "//", "a//", "//a", "~", "~7E", "~/~", ".", "..",
					  "*/>", "a.*.>", " ", "$x/.", "~2E"};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
		check_roundtrip(&f, odd[i], strlen(odd[i]));
	FAILS_CHECK(&f);
}
END_TEST

START_TEST(test_topic_for_subject_refuses)
{
	char out[64];

	ck_assert_int_eq(cluster_topic_for_subject(out, "midge", "m", "other.m.a"), -1);
	ck_assert_int_eq(cluster_topic_for_subject(out, "midge", "m", "midge.r.a"), -1);
	ck_assert_int_eq(cluster_topic_for_subject(out, "midge", "m", "midge.m.a~2"), -1);
	ck_assert_int_eq(cluster_topic_for_subject(out, "midge", "m", "midge.m.a~zz"), -1);
	ck_assert_int_eq(cluster_topic_for_subject(out, "midge", "m", "midge.m.a..b"), -1);
	ck_assert_int_eq(cluster_topic_for_subject(out, "midge", "m", "midge.m.~.x"), 2);
	ck_assert_str_eq(out, "/x");
}
END_TEST

START_TEST(test_filter_subjects)
{
	static const struct {
		const char *filter, *s0, *s1;
	} cases[] = {
		{"#", "pfx.a.m.>", NULL},
		{"a/#", "pfx.a.m.a", "pfx.a.m.a.>"},
		{"+", "pfx.a.m.*", NULL},
		{"+/#", "pfx.a.m.*", "pfx.a.m.*.>"},
		{"a/+/c", "pfx.a.m.a.*.c", NULL},
		{"a.b/*/>", "pfx.a.m.a~2Eb.~2A.~3E", NULL},
		{"/+//#", "pfx.a.m.~.*.~", "pfx.a.m.~.*.~.>"},
		{"$SYS/#", "pfx.a.m.$SYS", "pfx.a.m.$SYS.>"},
	};
	struct fails f = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].filter), max = cluster_subject_max("pfx.a", len);
		char *out[2] = {malloc(max), malloc(max)};
		int n = cluster_subjects_for_filter(out, "pfx.a", CLUSTER_KIND_MSG, cases[i].filter, len);
		if (strcmp(out[0], cases[i].s0) != 0 || n != (cases[i].s1 ? 2 : 1) ||
		    (cases[i].s1 && strcmp(out[1], cases[i].s1) != 0))
			fail_note(&f, "%s -> %d: %s %s; ", cases[i].filter, n, out[0],
				  n == 2 ? out[1] : "");
		free(out[0]);
		free(out[1]);
	}
	FAILS_CHECK(&f);
}
END_TEST

/* NATS matching of a subject against a filter subject ('*' one token, '>' the rest). */
static bool nats_match(const char *filter, const char *subject)
{
	for (;;) {
		const char *fd = strchr(filter, '.'), *sd = strchr(subject, '.');
		size_t fl = fd ? (size_t)(fd - filter) : strlen(filter);
		size_t sl = sd ? (size_t)(sd - subject) : strlen(subject);

		if (fl == 1 && *filter == '>')
			return true;
		if (!(fl == 1 && *filter == '*') && (fl != sl || memcmp(filter, subject, fl) != 0))
			return false;
		if (!fd || !sd)
			return !fd && !sd;
		filter = fd + 1;
		subject = sd + 1;
	}
}

/* Whatever MQTT matches, NATS carries: the subjects are never narrower than the filter. */
START_TEST(test_filter_subjects_cover_mqtt)
{
	struct fails f = {0};
	char topic[64], filter[64];

	test_rng_seed(33);
	for (int i = 0; i < 20000; i++) {
		test_random_topic(topic, false);
		test_random_topic(filter, true);
		size_t tl = strlen(topic), fl = strlen(filter);
		if (!topic_filter_valid(filter, fl) || !topic_name_valid(topic, tl))
			continue;
		size_t max = cluster_subject_max("midge", fl);
		char *out[2] = {malloc(max), malloc(max)};
		char *subj = subject_of(topic, tl);
		int n = cluster_subjects_for_filter(out, "midge", CLUSTER_KIND_MSG, filter, fl);
		bool nats = nats_match(out[0], subj) || (n == 2 && nats_match(out[1], subj));
		if (topic_matches(filter, fl, topic, tl) && !nats)
			fail_note(&f, "%s matches %s but not %s; ", filter, topic, out[0]);
		free(out[0]);
		free(out[1]);
		free(subj);
	}
	FAILS_CHECK(&f);
}
END_TEST

/* ---- interest: the trie says when a filter gets its first and loses its last subscriber */

struct interest_log {
	char text[512];
};

static void note_interest(void *arg, const char *filter, size_t len, bool on)
{
	struct interest_log *l = arg;
	size_t n = strlen(l->text);

	snprintf(l->text + n, sizeof(l->text) - n, "%c%.*s ", on ? '+' : '-', (int)len, filter);
}

START_TEST(test_interest_follows_trie)
{
	struct subtree t;
	struct interest_log l = {""};
	struct subscriber a = {.session = (struct session *)1, .qos = 1};
	struct subscriber b = {.session = (struct session *)2, .qos = 0};

	ck_assert_int_eq(subtree_init(&t), 0);
	t.interest = note_interest;
	t.interest_arg = &l;
	ck_assert_int_eq(subtree_add_any(&t, "x/#", 3, &a), 1);
	ck_assert_int_eq(subtree_add_any(&t, "x/#", 3, &b), 1);     /* no second + */
	ck_assert_int_eq(subtree_add_any(&t, "x/#", 3, &a), 0);     /* an update */
	ck_assert_int_eq(subtree_add_any(&t, "$share/g/x/#", 12, &a), 1);
	ck_assert_int_eq(subtree_add_any(&t, "$share/g/y", 10, &a), 1);
	ck_assert(subtree_remove_any(&t, "x/#", 3, a.session));
	ck_assert(subtree_remove_any(&t, "x/#", 3, b.session));     /* the shared one stays */
	ck_assert(subtree_remove_any(&t, "$share/g/x/#", 12, a.session));
	ck_assert(subtree_remove_any(&t, "$share/g/y", 10, a.session));
	ck_assert_str_eq(l.text, "+x/# +y -x/# -y ");
	subtree_free(&t);
}
END_TEST

/* ---- envelope ------------------------------------------------------------------ */

START_TEST(test_envelope_roundtrip)
{
	static const uint8_t props[] = {0x03, 0x00, 0x04, 't', 'e', 'x', 't'};
	struct cluster_env e = {
		.instance = 0x0102030405060708ull, .seq = 42, .qos = 2, .retain = true, .expiry = 60,
		.node = "node-a", .node_len = 6, .topic = "a/b.c", .topic_len = 5,
		.props = props, .props_len = sizeof(props),
		.payload = (const uint8_t *)"hello", .payload_len = 5,
	}, d;
	size_t n = cluster_env_size(&e);
	uint8_t *buf = malloc(n);

	ck_assert_uint_eq(n, CLUSTER_ENV_HEADER + 6 + 5 + sizeof(props) + 5);
	cluster_env_encode(&e, buf);
	ck_assert_int_eq(cluster_env_decode(buf, n, &d), 0);
	ck_assert(d.instance == e.instance && d.seq == 42 && d.qos == 2 && d.retain);
	ck_assert(!d.groups_served);
	ck_assert_uint_eq(d.expiry, 60);
	ck_assert_uint_eq(d.node_len, 6);
	ck_assert(memcmp(d.node, "node-a", 6) == 0);
	ck_assert(d.topic_len == 5 && memcmp(d.topic, "a/b.c", 5) == 0);
	ck_assert(d.props_len == sizeof(props) && memcmp(d.props, props, sizeof(props)) == 0);
	ck_assert(d.payload_len == 5 && memcmp(d.payload, "hello", 5) == 0);
	/* Every truncation and a byte too many are refused. */
	for (size_t k = 0; k < n; k++)
		ck_assert_int_eq(cluster_env_decode(buf, k, &d), -1);
	uint8_t *more = malloc(n + 1);
	memcpy(more, buf, n);
	more[n] = 0;
	ck_assert_int_eq(cluster_env_decode(more, n + 1, &d), -1);
	free(more);
	/* A bad magic, version, QoS 3, unknown flags, a wildcard topic. */
	static const size_t at[] = {0, 2, 3, 3};
	static const uint8_t val[] = {'X', 2, 3, 0x12};
	for (size_t k = 0; k < 4; k++) {
		uint8_t keep = buf[at[k]];
		buf[at[k]] = val[k];
		ck_assert_int_eq(cluster_env_decode(buf, n, &d), -1);
		buf[at[k]] = keep;
	}
	buf[CLUSTER_ENV_HEADER + 6] = '#';
	ck_assert_int_eq(cluster_env_decode(buf, n, &d), -1);
	free(buf);
}
END_TEST

START_TEST(test_envelope_empty_payload)
{
	struct cluster_env e = {.instance = 1, .seq = 1, .node = "n", .node_len = 1,
				.topic = "t", .topic_len = 1, .groups_served = true}, d;
	uint8_t buf[CLUSTER_ENV_HEADER + 2];

	cluster_env_encode(&e, buf);
	ck_assert_int_eq(cluster_env_decode(buf, sizeof(buf), &d), 0);
	ck_assert(d.groups_served && !d.retain && d.qos == 0);
	ck_assert_ptr_null(d.payload);
	ck_assert_uint_eq(d.payload_len, 0);
	ck_assert_ptr_null(d.props);
}
END_TEST

/* ---- configuration -------------------------------------------------------------- */

struct loaded {
	char path[64];
	struct config cfg;
	struct config_diag diag;
	int rc;
};

static void load(struct loaded *ld, const char *suffix, const char *text)
{
	int fd;
	FILE *f;

	snprintf(ld->path, sizeof(ld->path), "/tmp/midge-cluster-XXXXXX%s", suffix);
	fd = mkstemps(ld->path, (int)strlen(suffix));
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	memset(&ld->diag, 0, sizeof(ld->diag));
	config_init(&ld->cfg);
	ld->rc = config_load(&ld->cfg, ld->path, CONFIG_FORMAT_AUTO, &ld->diag);
	unlink(ld->path);
}

static void unload(struct loaded *ld)
{
	config_free(&ld->cfg);
	config_diag_free(&ld->diag);
}

/* The first error names this line and key, and its message holds `words`. */
static void expect_error(const struct loaded *ld, int line, const char *key, const char *words)
{
	ck_assert_msg(ld->rc != 0 && ld->diag.nerrors > 0, "no error for %s", words);
	const struct config_error *e = &ld->diag.errors[0];
	ck_assert_msg(e->loc.line == line && e->key && strcmp(e->key, key) == 0 &&
		      strstr(e->message, words),
		      "expected line %d key %s '%s', got line %d key %s: %s", line, key, words,
		      e->loc.line, e->key ? e->key : "(none)", e->message);
}

START_TEST(test_config_off_by_default)
{
	struct config cfg;

	config_init(&cfg);
	ck_assert(!cfg.cluster.enabled);
	ck_assert_str_eq(cfg.cluster.subject_prefix, "midge");
	config_free(&cfg);
}
END_TEST

#ifdef HAVE_NATS
START_TEST(test_config_yaml_section)
{
	struct loaded ld;
	const struct config_cluster *c;

	load(&ld, ".yaml", "cluster:\n  node_name: n1\n"
	     "  nats_servers: [nats://127.0.0.1:4222, tls://h:4443]\n"
	     "  nats_user: u\n  nats_password: p\n"
	     "  nats_tls: {cafile: /ca.pem, certfile: /c.pem, keyfile: /k.pem}\n"
	     "  subject_prefix: eu.midge\n");
	ck_assert_msg(ld.rc == 0, "%s", ld.diag.nerrors ? ld.diag.errors[0].message : "");
	c = &ld.cfg.cluster;
	ck_assert(c->enabled);
	ck_assert_int_eq(c->loc.line, 1);
	ck_assert_str_eq(c->node_name, "n1");
	ck_assert_uint_eq(c->nats_servers.count, 2);
	ck_assert_str_eq(c->nats_servers.items[1], "tls://h:4443");
	ck_assert_str_eq(c->nats_user, "u");
	ck_assert_str_eq(c->nats_password, "p");
	ck_assert_str_eq(c->nats_tls_cafile, "/ca.pem");
	ck_assert_str_eq(c->nats_tls_keyfile, "/k.pem");
	ck_assert_str_eq(c->subject_prefix, "eu.midge");

	/* midge --convert writes the section back, and it loads the same. */
	char out[] = "/tmp/midge-cluster-conv-XXXXXX.yaml";
	int fd = mkstemps(out, 5);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	ck_assert_int_eq(config_emit_yaml(&ld.cfg, f), 0);
	fclose(f);
	struct config again;
	struct config_diag d = {0};
	config_init(&again);
	ck_assert_int_eq(config_load(&again, out, CONFIG_FORMAT_AUTO, &d), 0);
	unlink(out);
	ck_assert(again.cluster.enabled);
	ck_assert_str_eq(again.cluster.node_name, "n1");
	ck_assert_uint_eq(again.cluster.nats_servers.count, 2);
	ck_assert_str_eq(again.cluster.nats_tls_certfile, "/c.pem");
	ck_assert_str_eq(again.cluster.subject_prefix, "eu.midge");
	config_free(&again);
	config_diag_free(&d);
	unload(&ld);
}
END_TEST

START_TEST(test_config_mosquitto_keys)
{
	struct loaded ld;

	load(&ld, ".conf", "listener 1883\ncluster_node_name n2\n"
	     "cluster_nats_servers nats://a:4222, nats://b:4222 nats://c:4222\n"
	     "cluster_nats_token t0k\n");
	ck_assert_msg(ld.rc == 0, "%s", ld.diag.nerrors ? ld.diag.errors[0].message : "");
	ck_assert(ld.cfg.cluster.enabled);
	ck_assert_int_eq(ld.cfg.cluster.loc.line, 2);
	ck_assert_uint_eq(ld.cfg.cluster.nats_servers.count, 3);
	ck_assert_str_eq(ld.cfg.cluster.nats_servers.items[2], "nats://c:4222");
	ck_assert_str_eq(ld.cfg.cluster.nats_token, "t0k");
	unload(&ld);
}
END_TEST

START_TEST(test_config_errors)
{
	struct loaded ld;

	load(&ld, ".yaml", "workers: 1\ncluster:\n  node_name: n1\n");
	expect_error(&ld, 2, "cluster", "needs nats_servers");
	unload(&ld);
	load(&ld, ".yaml", "cluster:\n  nats_servers: [nats://h:1]\n  node_nme: x\n");
	expect_error(&ld, 3, "node_nme", "did you mean 'node_name'");
	unload(&ld);
	load(&ld, ".yaml", "cluster:\n  nats_servers: [http://h:1]\n");
	expect_error(&ld, 2, "cluster_nats_servers", "must be nats://");
	unload(&ld);
	load(&ld, ".yaml", "cluster:\n  nats_servers: [nats://h:1]\n  node_name: a.b\n");
	expect_error(&ld, 3, "cluster_node_name", "node name");
	unload(&ld);
	load(&ld, ".yaml", "cluster:\n  nats_servers: [nats://h:1]\n  subject_prefix: a.*\n");
	expect_error(&ld, 3, "cluster_subject_prefix", "subject prefix");
	unload(&ld);
	load(&ld, ".yaml", "cluster:\n  nats_servers: [nats://h:1]\n  nats_token: t\n"
	     "  nats_user: u\n  nats_password: p\n");
	expect_error(&ld, 3, "cluster_nats_token", "either a token");
	unload(&ld);
	load(&ld, ".conf", "cluster_nats_servers nats://h:1\ncluster_nats_user u\n");
	expect_error(&ld, 2, "cluster_nats_user", "go together");
	unload(&ld);
	load(&ld, ".yaml", "cluster: [a]\n");
	expect_error(&ld, 1, "cluster", "expects a mapping");
	unload(&ld);
	load(&ld, ".yaml", "cluster:\n  nats_servers: [nats://h:1]\n  nats_tls: {cafle: x}\n");
	expect_error(&ld, 3, "cafle", "did you mean 'cafile'");
	unload(&ld);
}
END_TEST
#else
START_TEST(test_config_without_nats)
{
	struct loaded ld;

	load(&ld, ".yaml", "workers: 1\n\ncluster:\n  nats_servers: [nats://h:1]\n");
	expect_error(&ld, 3, "cluster", "without NATS support");
	unload(&ld);
	load(&ld, ".conf", "cluster_node_name x\n");
	expect_error(&ld, 1, "cluster_node_name", "without NATS support");
	unload(&ld);
}
END_TEST
#endif

/* ---- key-value keys ------------------------------------------------------------- */

#define KEY_FAIL_IF(f, cond, ...) \
	do {                      \
		if (cond)         \
			fail_note(f, __VA_ARGS__); \
	} while (0)

static void check_key_roundtrip(struct fails *f, const char *topic, size_t len)
{
	char key[CLUSTER_KEY_MAX + 1], *back = malloc(CLUSTER_KEY_MAX + 1);
	size_t n = cluster_key_for_topic(key, topic, len);
	long m;

	ck_assert_ptr_nonnull(back);
	KEY_FAIL_IF(f, n != strlen(key), "key length of %.*s", (int)len, topic);
	for (size_t i = 0; i < n; i++)
		KEY_FAIL_IF(f, !strchr("-/_=.", key[i]) && !((key[i] >= 'a' && key[i] <= 'z') ||
			(key[i] >= 'A' && key[i] <= 'Z') || (key[i] >= '0' && key[i] <= '9')),
			"byte %d of key %s", (int)i, key);
	KEY_FAIL_IF(f, n == 0 || key[0] == '.' || key[n - 1] == '.' || strstr(key, ".."),
		"empty token in key %s", key);
	m = cluster_topic_for_key(back, key);
	KEY_FAIL_IF(f, m != (long)len || memcmp(back, topic, len) != 0, "round trip of %.*s via %s",
		(int)len, topic, key);
	free(back);
}

START_TEST(test_key_examples)
{
	char key[CLUSTER_KEY_MAX + 1];

	cluster_key_for_topic(key, "a/b", 3);
	ck_assert_str_eq(key, "a.b");
	cluster_key_for_topic(key, "$SYS/a.b//x=y", 13);
	ck_assert_str_eq(key, "=24SYS.a=2Eb.=.x=3Dy");
	cluster_key_for_topic(key, "/", 1);
	ck_assert_str_eq(key, "=.=");
	cluster_key_for_topic(key, "caf\xc3\xa9/+*>", 9);
	ck_assert_str_eq(key, "caf=C3=A9.=2B=2A=3E");
	cluster_key_for_topic(key, "A-z_0 9", 7);
	ck_assert_str_eq(key, "A-z_0=209");
}
END_TEST

START_TEST(test_key_roundtrip)
{
	struct fails f = {0};
	char topic[8];

	for (int c = 1; c < 256; c++) {
		if (c == '/')
			continue;
		topic[0] = 'a';
		topic[1] = (char)c;
		topic[2] = '/';
		topic[3] = (char)c;
		check_key_roundtrip(&f, topic, 4);
		check_key_roundtrip(&f, topic + 1, 1);
	}
	static const char *const odd[] = {"/", "//", "a//", "//a", "=", "=3D", "=/=", ".", "..",
					  "$", "$SYS/x", "$share/g/t", "=H", "=H/00", "_kv/x",
					  "\xe2\x82\xac/\xf0\x9f\x98\x80", "a b/ c"};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
		check_key_roundtrip(&f, odd[i], strlen(odd[i]));
	FAILS_CHECK(&f);
}
END_TEST

START_TEST(test_key_long_topics)
{
	struct fails f = {0};
	size_t len = 65535;
	char *t = malloc(len), key[CLUSTER_KEY_MAX + 1], key2[CLUSTER_KEY_MAX + 1];

	ck_assert_ptr_nonnull(t);
	/* The longest topic written out in full: 1024 plain bytes. */
	memset(t, 'x', len);
	check_key_roundtrip(&f, t, CLUSTER_KEY_MAX);
	/* Deep: 512 one-byte levels. */
	for (size_t i = 1; i < 1023; i += 2)
		t[i] = '/';
	check_key_roundtrip(&f, t, 1023);
	FAILS_CHECK(&f);
	memset(t, 'x', len);
	/* One byte more, or escapes that grow past the limit: hashed, stable, distinct. */
	size_t n = cluster_key_for_topic(key, t, CLUSTER_KEY_MAX + 1);
	ck_assert_uint_eq(n, 3 + 64);
	ck_assert(strncmp(key, "=H.", 3) == 0);
	ck_assert_int_eq(cluster_topic_for_key(key2, key), -1);
	cluster_key_for_topic(key2, t, CLUSTER_KEY_MAX + 1);
	ck_assert_str_eq(key, key2);
	cluster_key_for_topic(key2, t, len);
	ck_assert_str_ne(key, key2);
	memset(t, '$', 400);
	cluster_key_for_topic(key2, t, 400);
	ck_assert(strncmp(key2, "=H.", 3) == 0);
	free(t);
}
END_TEST

START_TEST(test_key_refuses)
{
	char out[64];
	static const char *const bad[] = {"", ".", "a.", ".a", "a..b", "=4", "=G0", "=41", "=2F",
					  "=00", "a=", "=H.00", "==", "=3d", "a*b"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cluster_topic_for_key(out, bad[i]) == -1, "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_key_token)
{
	char out[16];

	ck_assert_int_eq(cluster_key_token(out, sizeof(out), "a/b.c", 5), 9);
	ck_assert_str_eq(out, "a=2Fb=2Ec");
	ck_assert_int_eq(cluster_key_token(out, sizeof(out), "", 0), 1);
	ck_assert_str_eq(out, "=");
	ck_assert_int_eq(cluster_key_token(out, 4, "$$", 2), -1);
}
END_TEST

Suite *suite_cluster(void)
{
	Suite *s = suite_create("cluster");
	TCase *tc = tcase_create("mapping");

	tcase_add_test(tc, test_topic_subjects);
	tcase_add_test(tc, test_topic_roundtrip_every_byte);
	tcase_add_test(tc, test_topic_for_subject_refuses);
	tcase_add_test(tc, test_filter_subjects);
	tcase_add_test(tc, test_filter_subjects_cover_mqtt);
	tcase_add_test(tc, test_interest_follows_trie);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_test(tc, test_key_examples);
	tcase_add_test(tc, test_key_roundtrip);
	tcase_add_test(tc, test_key_long_topics);
	tcase_add_test(tc, test_key_refuses);
	tcase_add_test(tc, test_key_token);
	suite_add_tcase(s, tc);

	tc = tcase_create("envelope");
	tcase_add_test(tc, test_envelope_roundtrip);
	tcase_add_test(tc, test_envelope_empty_payload);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_test(tc, test_config_off_by_default);
#ifdef HAVE_NATS
	tcase_add_test(tc, test_config_yaml_section);
	tcase_add_test(tc, test_config_mosquitto_keys);
	tcase_add_test(tc, test_config_errors);
#else
	tcase_add_test(tc, test_config_without_nats);
#endif
	suite_add_tcase(s, tc);
	return s;
}
