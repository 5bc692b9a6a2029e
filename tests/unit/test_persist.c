/*
 * test_persist.c: unit tests of the durable store (persist*.c, over LMDB).
 *
 * Record codec round trips and refusals; every record kind through the
 * store; reference counting; queue order; reopening; format version and
 * damaged headers; recovery; purge; damaged data files (truncated, garbage,
 * bit flips: each trial in a child process, which must never crash, and
 * after recovery every reference must be consistent); sync modes; readers on
 * other threads during commits; 100k messages + 10k sessions written and
 * reopened (timed).
 */
#include "config.h"

#include "tests.h"

#include "persist.h"
#include "persist_codec.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <lmdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* --- helpers --- */

static char tmpdir[256];

static void setup(void)
{
	test_tmpdir(tmpdir, sizeof(tmpdir), "midge-persist");
}

static void teardown(void)
{
	test_rmtree(tmpdir);
}

static struct persist *open_store(const char *dir, bool recover)
{
	struct persist_options o = { PERSIST_SYNC_BATCH, 256u << 20, recover };
	struct persist *p = NULL;
	char err[512];
	int rc = persist_open(dir, &o, &p, err, sizeof(err));
	ck_assert_msg(rc == 0, "open %s: %d %s", dir, rc, err);
	return p;
}

static int try_open(const char *dir, bool recover, struct persist **p, char *err, size_t errlen)
{
	struct persist_options o = { PERSIST_SYNC_ALWAYS, 64u << 20, recover };
	return persist_open(dir, &o, p, err, errlen);
}

static struct persist_msg mkmsg(const char *topic, const char *payload, uint8_t qos, int64_t expiry)
{
	struct persist_msg m = { qos, false, expiry, (const uint8_t *)topic, strlen(topic),
				 (const uint8_t *)payload, strlen(payload), NULL, 0 };
	return m;
}

static void commit(struct persist *p, struct persist_batch *b)
{
	int rc = persist_commit(p, b);
	ck_assert_msg(rc == 0, "commit: %d %s", rc, persist_error(p));
	persist_batch_reset(b);
}

static struct persist_qentry qe(uint64_t msg, uint8_t state, uint16_t pid)
{
	struct persist_qentry e = { msg, 1, false, state, pid, 0 };
	return e;
}

/* What a message read finds. */
struct gotmsg {
	int found;
	uint32_t refs;
	struct persist_msg m;
	char topic[64], payload[64], props[64];
};

static void got_msg(uint64_t id, const struct persist_msg *m, uint32_t refs, void *arg)
{
	struct gotmsg *g = arg;
	(void)id;
	g->found++;
	g->refs = refs;
	g->m = *m;
	snprintf(g->topic, sizeof(g->topic), "%.*s", (int)m->topic_len, (const char *)m->topic);
	snprintf(g->payload, sizeof(g->payload), "%.*s", (int)m->payload_len, (const char *)m->payload);
	snprintf(g->props, sizeof(g->props), "%.*s", (int)m->props_len, (const char *)m->props);
}

/* References of message id, or -1 when it is not stored. */
static long refs_of(struct persist *p, uint64_t id)
{
	struct gotmsg g = { 0 };
	int rc = persist_msg_get(p, id, got_msg, &g);
	if (rc == PERSIST_ENOTFOUND)
		return -1;
	ck_assert_int_eq(rc, 0);
	return g.refs;
}

static void count_fn(uint64_t seq, const struct persist_qentry *e, void *arg)
{
	(void)seq;
	(void)e;
	(*(long *)arg)++;
}

/* --- codec --- */

START_TEST(t_codec_roundtrip)
{
	uint8_t buf[256];
	size_t n;
	struct persist_msg m = { 2, true, 12345, (const uint8_t *)"a/b", 3, (const uint8_t *)"hello", 5,
				 (const uint8_t *)"\x01\x02", 2 }, m2;
	struct persist_session s = { 3600, 99, 5, "user", 4, 77, 30, 2, (const uint8_t *)"\x00\x07\xff\x01", 2 }, s2;
	struct persist_sub sub = { 1, 0x2c, 268435455u }, sub2;
	struct persist_qentry e = { 9, 2, true, PERSIST_Q_INFLIGHT, 65535, PERSIST_QF_DUP | PERSIST_QF_PUBREL }, e2;
	struct persist_header h = { PERSIST_FORMAT_VERSION, 5 }, h2;
	uint32_t refs;
	uint64_t id;

	n = pcodec_enc_msg(buf, &m);
	ck_assert_uint_eq(n, pcodec_enc_msg(NULL, &m));
	ck_assert_int_eq(pcodec_dec_msg(buf, n, &m2), 0);
	ck_assert(m2.qos == 2 && m2.retain && m2.expiry == 12345 && m2.topic_len == 3 &&
		  memcmp(m2.topic, "a/b", 3) == 0 && m2.payload_len == 5 && m2.props_len == 2 &&
		  memcmp(m2.props, "\x01\x02", 2) == 0);
	/* every truncation and a trailing byte are refused */
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pcodec_dec_msg(buf, i, &m2), -1);
	ck_assert_int_eq(pcodec_dec_msg(buf, n + 1, &m2), -1);
	buf[0] = 2; /* unknown record version */
	ck_assert_int_eq(pcodec_dec_msg(buf, n, &m2), -1);
	buf[0] = 1;
	buf[1] = 3; /* qos 3 */
	ck_assert_int_eq(pcodec_dec_msg(buf, n, &m2), -1);

	ck_assert_uint_eq(pcodec_enc_refs(NULL, 7), PCODEC_REFS_SIZE);
	/* the CRC: any one flipped bit of a record makes it undecodable */
	n = pcodec_enc_msg(buf, &m);
	for (size_t bit = 0; bit < n * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ck_assert_int_eq(pcodec_dec_msg(buf, n, &m2), -1);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	ck_assert_int_eq(pcodec_dec_msg(buf, n, &m2), 0);

	n = pcodec_enc_session(buf, &s);
	ck_assert_int_eq(pcodec_dec_session(buf, n, &s2), 0);
	ck_assert(s2.expiry_interval == 3600 && s2.disconnect_time == 99 && s2.protocol == 5 &&
		  s2.username_len == 4 && memcmp(s2.username, "user", 4) == 0 && s2.will_id == 77 &&
		  s2.will_delay == 30 && s2.listener == 2 && s2.nqos2_in == 2 &&
		  memcmp(s2.qos2_in, "\x00\x07\xff\x01", 4) == 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pcodec_dec_session(buf, i, &s2), -1);
	buf[n - 5] = 3; /* an odd byte count of packet ids */
	ck_assert_int_eq(pcodec_dec_session(buf, n - 1, &s2), -1);
	buf[n - 5] = 4;
	s.username = NULL;
	n = pcodec_enc_session(buf, &s);
	ck_assert_int_eq(pcodec_dec_session(buf, n, &s2), 0);
	ck_assert_ptr_null(s2.username);

	n = pcodec_enc_sub(buf, &sub);
	ck_assert_int_eq(pcodec_dec_sub(buf, n, &sub2), 0);
	ck_assert(sub2.qos == 1 && sub2.options == 0x2c && sub2.sub_id == 268435455u);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pcodec_dec_sub(buf, i, &sub2), -1);

	n = pcodec_enc_qentry(buf, &e);
	ck_assert_int_eq(pcodec_dec_qentry(buf, n, &e2), 0);
	ck_assert(e2.msg_id == 9 && e2.qos == 2 && e2.retain && e2.state == PERSIST_Q_INFLIGHT &&
		  e2.packet_id == 65535 && e2.flags == (PERSIST_QF_DUP | PERSIST_QF_PUBREL));
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pcodec_dec_qentry(buf, i, &e2), -1);
	buf[n - 1] = 0x80; /* unknown flag */
	ck_assert_int_eq(pcodec_dec_qentry(buf, n, &e2), -1);

	n = pcodec_enc_refs(buf, 7);
	ck_assert_int_eq(pcodec_dec_refs(buf, n, &refs), 0);
	ck_assert_uint_eq(refs, 7);
	n = pcodec_enc_id(buf, 42);
	ck_assert_int_eq(pcodec_dec_id(buf, n, &id), 0);
	ck_assert_uint_eq(id, 42);

	n = pcodec_enc_header(buf, &h);
	ck_assert_int_eq(pcodec_dec_header(buf, n, &h2), 0);
	h.format = 2;
	n = pcodec_enc_header(buf, &h);
	ck_assert_int_eq(pcodec_dec_header(buf, n, &h2), -2);
	ck_assert_uint_eq(h2.format, 2);
	buf[3] ^= 1;
	ck_assert_int_eq(pcodec_dec_header(buf, n, &h2), -1);
}
END_TEST

/* Random bytes never crash a decoder (run under the sanitizers too). */
START_TEST(t_codec_garbage)
{
	uint8_t buf[64];
	struct persist_msg m;
	struct persist_session s;
	struct persist_sub sub;
	struct persist_qentry e;
	struct persist_header h;
	const uint8_t *a, *b;
	size_t al, bl;
	uint32_t r;
	uint64_t id;

	test_rng_seed(7);
	for (int t = 0; t < 200000; t++) {
		size_t n = test_rng(sizeof(buf) + 1);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)(test_rng(4) == 0 ? test_rng(3) : test_rng(256));
		if (n)
			buf[0] = (uint8_t)(test_rng(4) ? 1 : buf[0]);
		(void)pcodec_dec_msg(buf, n, &m);
		(void)pcodec_dec_session(buf, n, &s);
		(void)pcodec_dec_sub(buf, n, &sub);
		(void)pcodec_dec_qentry(buf, n, &e);
		(void)pcodec_dec_header(buf, n, &h);
		(void)pcodec_dec_refs(buf, n, &r);
		(void)pcodec_dec_id(buf, n, &id);
		(void)pcodec_split_key(buf, n, &a, &al, &b, &bl);
	}
}
END_TEST

/* --- the store --- */

static void fill(struct persist *p)
{
	struct persist_batch *b = persist_batch_new();
	struct persist_msg m = mkmsg("sensors/t1", "21.5", 1, 0);
	struct persist_session s = { 3600, 0, 5, "alice", 5, 3, 10, 0, NULL, 0 };
	struct persist_sub sub = { 2, 0x04, 17 };

	m.props = (const uint8_t *)"PROPS";
	m.props_len = 5;
	m.retain = true;
	ck_assert_int_eq(persist_msg_put(b, 1, &m), 0);
	m = mkmsg("a/b", "x", 0, 4000000000);
	ck_assert_int_eq(persist_msg_put(b, 2, &m), 0);
	m = mkmsg("will/alice", "gone", 1, 0);
	ck_assert_int_eq(persist_msg_put(b, 3, &m), 0);
	ck_assert_int_eq(persist_retained_set(b, "sensors/t1", 10, 1), 0);
	ck_assert_int_eq(persist_session_put(b, "alice", 5, &s), 0);
	ck_assert_int_eq(persist_sub_put(b, "alice", 5, "sensors/#", 9, &sub), 0);
	sub.qos = 0;
	sub.sub_id = 0;
	ck_assert_int_eq(persist_sub_put(b, "alice", 5, "a/+", 3, &sub), 0);
	struct persist_qentry e = qe(1, PERSIST_Q_INFLIGHT, 12);
	e.flags = PERSIST_QF_PUBREL;
	ck_assert_int_eq(persist_queue_put(b, "alice", 5, 1, &e), 0);
	e = qe(2, PERSIST_Q_QUEUED, 0);
	ck_assert_int_eq(persist_queue_put(b, "alice", 5, 2, &e), 0);
	ck_assert_uint_eq(persist_batch_count(b), 9);
	commit(p, b);
	persist_batch_free(b);
}

struct seen {
	int n;
	char text[1024];
};

static void seen_add(struct seen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seen_add(struct seen *s, const char *fmt, ...)
{
	va_list ap;
	size_t len = strlen(s->text);
	va_start(ap, fmt);
	vsnprintf(s->text + len, sizeof(s->text) - len, fmt, ap);
	va_end(ap);
	s->n++;
}

static void seen_ret(const uint8_t *topic, size_t len, uint64_t id, void *arg)
{
	seen_add(arg, "[%.*s=%llu]", (int)len, (const char *)topic, (unsigned long long)id);
}

static void seen_sess(const uint8_t *cid, size_t len, const struct persist_session *s, void *arg)
{
	seen_add(arg, "[%.*s %u %lld %u %.*s %llu %u]", (int)len, (const char *)cid, s->expiry_interval,
		 (long long)s->disconnect_time, s->protocol, (int)s->username_len,
		 s->username ? s->username : "", (unsigned long long)s->will_id, s->will_delay);
}

static void seen_sub(const uint8_t *f, size_t len, const struct persist_sub *s, void *arg)
{
	seen_add(arg, "[%.*s %u %u %u]", (int)len, (const char *)f, s->qos, s->options, s->sub_id);
}

static void seen_q(uint64_t seq, const struct persist_qentry *e, void *arg)
{
	seen_add(arg, "[%llu: %llu %u %u %u %u %u]", (unsigned long long)seq,
		 (unsigned long long)e->msg_id, e->qos, e->retain, e->state, e->packet_id, e->flags);
}

static void seen_msg(uint64_t id, const struct persist_msg *m, uint32_t refs, void *arg)
{
	seen_add(arg, "[%llu %.*s %.*s %u %d %lld %zu r%u]", (unsigned long long)id, (int)m->topic_len,
		 (const char *)m->topic, (int)m->payload_len, (const char *)m->payload, m->qos, m->retain,
		 (long long)m->expiry, m->props_len, refs);
}

static void check_filled(struct persist *p)
{
	struct seen s = { 0 };
	struct gotmsg g = { 0 };
	uint64_t id;

	ck_assert_int_eq(persist_msg_get(p, 1, got_msg, &g), 0);
	ck_assert_str_eq(g.topic, "sensors/t1");
	ck_assert_str_eq(g.payload, "21.5");
	ck_assert_str_eq(g.props, "PROPS");
	ck_assert(g.m.retain && g.m.qos == 1);
	ck_assert_uint_eq(g.refs, 2); /* retained + queue */
	ck_assert_int_eq(persist_msg_get(p, 99, got_msg, &g), PERSIST_ENOTFOUND);

	ck_assert_int_eq(persist_msg_iter(p, seen_msg, &s), 3);
	ck_assert_str_eq(s.text, "[1 sensors/t1 21.5 1 1 0 5 r2][2 a/b x 0 0 4000000000 0 r1]"
				 "[3 will/alice gone 1 0 0 0 r1]");
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(persist_retained_iter(p, seen_ret, &s), 1);
	ck_assert_str_eq(s.text, "[sensors/t1=1]");
	ck_assert_int_eq(persist_retained_get(p, "sensors/t1", 10, &id), 0);
	ck_assert_uint_eq(id, 1);
	ck_assert_int_eq(persist_retained_get(p, "nope", 4, &id), PERSIST_ENOTFOUND);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(persist_session_iter(p, seen_sess, &s), 1);
	ck_assert_str_eq(s.text, "[alice 3600 0 5 alice 3 10]");
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(persist_session_get(p, "alice", 5, seen_sess, &s), 0);
	ck_assert_int_eq(persist_session_get(p, "bob", 3, seen_sess, &s), PERSIST_ENOTFOUND);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(persist_sub_iter(p, "alice", 5, seen_sub, &s), 2);
	ck_assert_str_eq(s.text, "[a/+ 0 4 0][sensors/# 2 4 17]");
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(persist_queue_iter(p, "alice", 5, seen_q, &s), 2);
	ck_assert_str_eq(s.text, "[1: 1 1 0 1 12 2][2: 2 1 0 0 0 0]");
	ck_assert_int_eq(persist_msg_max_id(p, &id), 0);
	ck_assert_uint_eq(id, 3);
}

START_TEST(t_roundtrip_reopen)
{
	struct persist *p = open_store(tmpdir, false);
	fill(p);
	check_filled(p);
	ck_assert_uint_eq(persist_anomalies(p), 0);
	persist_close(p);
	p = open_store(tmpdir, false);
	check_filled(p);
	persist_close(p);
	/* a recovery pass over a sound store changes nothing */
	p = open_store(tmpdir, true);
	ck_assert_uint_eq(persist_recovered(p), 0);
	check_filled(p);
	persist_close(p);
}
END_TEST

START_TEST(t_refcounts)
{
	struct persist *p = open_store(tmpdir, false);
	struct persist_batch *b = persist_batch_new();
	struct persist_msg m = mkmsg("t", "p", 1, 0);
	struct persist_session s = { 0, 0, 4, NULL, 0, 1, 0, 0, NULL, 0 };
	struct persist_qentry e = qe(1, PERSIST_Q_QUEUED, 0);

	ck_assert_int_eq(persist_msg_put(b, 1, &m), 0);
	ck_assert_int_eq(persist_msg_put(b, 2, &m), 0);
	commit(p, b);
	ck_assert_int_eq(refs_of(p, 1), 0);
	/* two queues, a retained topic and a will name message 1 */
	persist_session_put(b, "c1", 2, &s);
	persist_session_put(b, "c2", 2, &(struct persist_session){ .protocol = 4 });
	persist_queue_put(b, "c1", 2, 1, &e);
	persist_queue_put(b, "c2", 2, 1, &e);
	persist_retained_set(b, "t", 1, 1);
	commit(p, b);
	ck_assert_int_eq(refs_of(p, 1), 4);
	/* replacing a record moves its reference */
	persist_retained_set(b, "t", 1, 2);
	commit(p, b);
	ck_assert_int_eq(refs_of(p, 1), 3);
	ck_assert_int_eq(refs_of(p, 2), 1);
	persist_retained_set(b, "t", 1, 2); /* same message again: no change */
	e.state = PERSIST_Q_INFLIGHT;
	e.packet_id = 5;
	persist_queue_put(b, "c2", 2, 1, &e); /* update in place: no change */
	commit(p, b);
	ck_assert_int_eq(refs_of(p, 1), 3);
	ck_assert_int_eq(refs_of(p, 2), 1);
	/* explicit holders */
	persist_msg_ref(b, 1);
	commit(p, b);
	ck_assert_int_eq(refs_of(p, 1), 4);
	persist_msg_unref(b, 1);
	persist_queue_delete(b, "c2", 2, 1);
	commit(p, b);
	ck_assert_int_eq(refs_of(p, 1), 2);
	/* deleting the session drops its will and its queue: message 1 goes */
	persist_session_delete(b, "c1", 2);
	commit(p, b);
	ck_assert_int_eq(refs_of(p, 1), -1);
	ck_assert_int_eq(persist_queue_iter(p, "c1", 2, count_fn, &(long){ 0 }), 0);
	persist_retained_clear(b, "t", 1);
	commit(p, b);
	ck_assert_int_eq(refs_of(p, 2), -1);
	ck_assert_uint_eq(persist_anomalies(p), 0);
	/* inconsistent operations are skipped and counted, the rest applies */
	persist_msg_ref(b, 50);
	persist_retained_set(b, "u", 1, 51);
	persist_queue_delete(b, "zz", 2, 9);
	ck_assert_int_eq(persist_msg_put(b, 3, &m), 0);
	commit(p, b);
	ck_assert_uint_eq(persist_anomalies(p), 3);
	ck_assert_int_eq(refs_of(p, 3), 0);
	ck_assert_int_eq(persist_retained_get(p, "u", 1, &(uint64_t){ 0 }), PERSIST_ENOTFOUND);
	/* a will naming a missing message is stored without it */
	s.will_id = 77;
	persist_session_put(b, "c3", 2, &s);
	commit(p, b);
	struct seen sn = { 0 };
	persist_session_get(p, "c3", 2, seen_sess, &sn);
	ck_assert_str_eq(sn.text, "[c3 0 0 4  0 0]");
	persist_batch_free(b);
	persist_close(p);
}
END_TEST

START_TEST(t_batch_refusals)
{
	struct persist_batch *b = persist_batch_new();
	struct persist_msg m = mkmsg("t", "p", 1, 0);
	struct persist_session s = { 0, 0, 4, NULL, 0, 0, 0, 0, NULL, 0 };
	struct persist_qentry e = qe(1, PERSIST_Q_INFLIGHT, 0);
	char big[600];

	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(persist_msg_put(b, 0, &m), PERSIST_EINVAL);
	m.qos = 3;
	ck_assert_int_eq(persist_msg_put(b, 1, &m), PERSIST_EINVAL);
	m = mkmsg("", "p", 1, 0);
	ck_assert_int_eq(persist_msg_put(b, 1, &m), PERSIST_EINVAL);
	ck_assert_int_eq(persist_retained_set(b, big, 512, 1), PERSIST_EINVAL);
	ck_assert_int_eq(persist_retained_set(b, big, 511, 1), 0);
	ck_assert_int_eq(persist_retained_set(b, big, 0, 1), PERSIST_EINVAL);
	ck_assert_int_eq(persist_session_put(b, big, 600, &s), PERSIST_EINVAL);
	s.protocol = 6;
	ck_assert_int_eq(persist_session_put(b, "c", 1, &s), PERSIST_EINVAL);
	ck_assert_int_eq(persist_sub_put(b, "c", 1, big, 509, &(struct persist_sub){ 0 }), PERSIST_EINVAL);
	ck_assert_int_eq(persist_sub_put(b, "c", 1, big, 508, &(struct persist_sub){ 0 }), 0);
	ck_assert_int_eq(persist_queue_put(b, "c", 1, 1, &e), PERSIST_EINVAL); /* inflight, no packet id */
	ck_assert_uint_eq(persist_batch_count(b), 2);
	persist_batch_free(b);
}
END_TEST

static void order_fn(uint64_t seq, const struct persist_qentry *e, void *arg)
{
	uint64_t *last = arg;
	REQUIRE(seq > last[0], "queue out of order: %llu after %llu", (unsigned long long)seq,
		(unsigned long long)last[0]);
	REQUIRE(e->msg_id == seq % 7 + 1, "wrong entry at %llu", (unsigned long long)seq);
	last[0] = seq;
	last[1]++;
}

START_TEST(t_queue_order)
{
	struct persist *p = open_store(tmpdir, false);
	struct persist_batch *b = persist_batch_new();
	struct persist_msg m = mkmsg("t", "p", 1, 0);
	static const char *const cids[] = { "a", "ab", "b", "ba" };
	uint64_t seqs[500];

	for (uint64_t i = 1; i <= 7; i++)
		persist_msg_put(b, i, &m);
	for (size_t i = 0; i < 500; i++)
		seqs[i] = i * 1000003u + (i % 3 == 0 ? (uint64_t)1 << 40 : 0) + 256;
	test_rng_seed(3);
	for (size_t i = 499; i > 0; i--) {
		size_t j = test_rng((uint32_t)i + 1);
		uint64_t t = seqs[i];
		seqs[i] = seqs[j];
		seqs[j] = t;
	}
	for (size_t c = 0; c < 4; c++)
		persist_session_put(b, cids[c], strlen(cids[c]), &(struct persist_session){ .protocol = 5 });
	for (size_t c = 0; c < 4; c++)
		for (size_t i = 0; i < 500; i++) {
			struct persist_qentry e = qe(seqs[i] % 7 + 1, PERSIST_Q_QUEUED, 0);
			ck_assert_int_eq(persist_queue_put(b, cids[c], strlen(cids[c]), seqs[i], &e), 0);
		}
	commit(p, b);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t c = 0; c < 4; c++) {
			uint64_t last[2] = { 0, 0 };
			ck_assert_int_eq(persist_queue_iter(p, cids[c], strlen(cids[c]), order_fn, last), 500);
			ck_assert_uint_eq(last[1], 500);
		}
		persist_close(p);
		p = open_store(tmpdir, false);
	}
	ck_assert_int_eq(refs_of(p, 1) + refs_of(p, 2) + refs_of(p, 3) + refs_of(p, 4) + refs_of(p, 5) +
				 refs_of(p, 6) + refs_of(p, 7),
			 2000);
	persist_batch_free(b);
	persist_close(p);
}
END_TEST

START_TEST(t_purge)
{
	struct persist *p = open_store(tmpdir, false);
	struct persist_batch *b = persist_batch_new();
	struct persist_msg live = mkmsg("t", "p", 1, 0), dying = mkmsg("t", "p", 1, 1000);
	struct persist_session gone = { 60, 900, 5, NULL, 0, 0, 0, 0, NULL, 0 }, kept = { 60, 950, 5, NULL, 0, 0, 0, 0, NULL, 0 },
			       online = { 60, 0, 5, NULL, 0, 0, 0, 0, NULL, 0 }, forever = { PERSIST_NO_EXPIRY, 1, 4, NULL, 0, 0, 0, 0, NULL, 0 };
	struct persist_purge_stats st;
	struct persist_qentry e;
	long n = 0;

	persist_msg_put(b, 1, &live);
	persist_msg_put(b, 2, &dying);
	persist_msg_put(b, 3, &live); /* never referenced */
	persist_msg_put(b, 4, &live);
	persist_retained_set(b, "r1", 2, 1);
	persist_retained_set(b, "r2", 2, 2);
	persist_session_put(b, "gone", 4, &gone);
	persist_session_put(b, "kept", 4, &kept);
	persist_session_put(b, "online", 6, &online);
	persist_session_put(b, "forever", 7, &forever);
	e = qe(4, PERSIST_Q_QUEUED, 0);
	persist_queue_put(b, "gone", 4, 1, &e); /* only 'gone' holds message 4 */
	persist_sub_put(b, "gone", 4, "x", 1, &(struct persist_sub){ 0 });
	e = qe(2, PERSIST_Q_QUEUED, 0);
	persist_queue_put(b, "kept", 4, 1, &e); /* expired, queued: dropped */
	e = qe(2, PERSIST_Q_INFLIGHT, 7);
	persist_queue_put(b, "kept", 4, 2, &e); /* expired but inflight: kept */
	commit(p, b);
	ck_assert_int_eq(refs_of(p, 2), 3);

	ck_assert_int_eq(persist_purge(p, 1000, &st), 0);
	ck_assert_uint_eq(st.sessions, 1);
	ck_assert_uint_eq(st.retained, 1);
	ck_assert_uint_eq(st.queued, 1);
	ck_assert_uint_eq(st.messages, 2); /* 4 (with 'gone') and 3 (orphan) */
	ck_assert_int_eq(refs_of(p, 1), 1);
	ck_assert_int_eq(refs_of(p, 2), 1);
	ck_assert_int_eq(refs_of(p, 3), -1);
	ck_assert_int_eq(refs_of(p, 4), -1);
	ck_assert_int_eq(persist_session_iter(p, seen_sess, &(struct seen){ 0 }), 3);
	ck_assert_int_eq(persist_sub_iter(p, "gone", 4, seen_sub, &(struct seen){ 0 }), 0);
	ck_assert_int_eq(persist_queue_iter(p, "kept", 4, count_fn, &n), 1);
	ck_assert_int_eq(persist_purge(p, 1000, &st), 0);
	ck_assert(st.sessions == 0 && st.retained == 0 && st.queued == 0 && st.messages == 0);
	ck_assert_uint_eq(persist_anomalies(p), 0);
	persist_batch_free(b);
	persist_close(p);
}
END_TEST

START_TEST(t_sync_modes)
{
	static const enum persist_sync modes[] = { PERSIST_SYNC_ALWAYS, PERSIST_SYNC_BATCH,
						   PERSIST_SYNC_PERIODIC };
	for (size_t i = 0; i < 3; i++) {
		struct persist_options o = { modes[i], 0, false };
		struct persist *p;
		char err[512];
		ck_assert_int_eq(persist_open(tmpdir, &o, &p, err, sizeof(err)), 0);
		ck_assert_uint_eq(persist_max_key(p), 511);
		if (i == 0)
			fill(p);
		ck_assert_int_eq(persist_sync(p), 0);
		check_filled(p);
		persist_close(p);
	}
	struct persist_options bad = { (enum persist_sync)7, 0, false };
	struct persist *p;
	char err[512];
	ck_assert_int_eq(persist_open(tmpdir, &bad, &p, err, sizeof(err)), PERSIST_EINVAL);
}
END_TEST

/* Subscriptions and queue entries of a client without a stored session are skipped. */
START_TEST(t_owner_required)
{
	struct persist *p = open_store(tmpdir, false);
	struct persist_batch *b = persist_batch_new();
	struct persist_msg m = mkmsg("t", "p", 1, 0);
	struct persist_sub sub = { 1, 0, 0 };
	struct persist_qentry e = qe(1, PERSIST_Q_QUEUED, 0);
	uint64_t before = persist_anomalies(p);

	persist_msg_put(b, 1, &m);
	persist_queue_put(b, "nobody", 6, 1, &e);
	persist_sub_put(b, "nobody", 6, "a/#", 3, &sub);
	persist_session_put(b, "gone", 4, &(struct persist_session){ .protocol = 5 });
	persist_session_delete(b, "gone", 4);
	persist_queue_put(b, "gone", 4, 2, &e);
	commit(p, b);
	ck_assert_uint_eq(persist_anomalies(p) - before, 3);
	ck_assert_int_eq(persist_queue_iter(p, "nobody", 6, order_fn, (uint64_t[2]){ 0, 0 }), 0);
	ck_assert_int_eq(persist_queue_iter(p, "gone", 4, order_fn, (uint64_t[2]){ 0, 0 }), 0);
	ck_assert_int_eq(persist_sub_iter(p, "nobody", 6, seen_sub, &(struct seen){ 0 }), 0);
	ck_assert_int_eq(refs_of(p, 1), 0);
	persist_batch_free(b);
	persist_close(p);
}
END_TEST

/* Many commits that free pages (LMDB's free list gets many records), reopened now and then. */
START_TEST(t_churn_reopen)
{
	static char payload[20000];
	struct persist *p = open_store(tmpdir, false);
	struct persist_batch *b = persist_batch_new();
	long n;

	memset(payload, 'z', sizeof(payload));
	persist_session_put(b, "c", 1, &(struct persist_session){ .protocol = 4 });
	for (uint64_t i = 1; i <= 800; i++) {
		struct persist_msg m = { 0, false, 0, (const uint8_t *)"t", 1, (const uint8_t *)payload,
					 1000 + (i * 37) % 19000, NULL, 0 };
		struct persist_qentry e = qe(i, PERSIST_Q_QUEUED, 0);
		persist_msg_put(b, i, &m);
		persist_queue_put(b, "c", 1, i, &e);
		if (i > 20)
			persist_queue_delete(b, "c", 1, i - 20);
		commit(p, b);
		/* around i = 775 the free list's keys (transaction ids) cross 0x300: integer
		 * order differs from byte order there */
		if (i % 100 == 0 || i == 775) {
			persist_close(p);
			p = open_store(tmpdir, false);
		}
	}
	n = persist_msg_iter(p, seen_msg, &(struct seen){ 0 });
	ck_assert_int_eq(n, 20);
	persist_batch_free(b);
	persist_close(p);
}
END_TEST

/* Readers on other threads while one writer commits: each read sees a whole commit. */
struct race {
	struct persist *p;
	volatile int done;
	long reads, bad;
};

static void race_q(uint64_t seq, const struct persist_qentry *e, void *arg)
{
	struct race *r = arg;
	if (e->msg_id != seq)
		r->bad++;
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	long last = 0;
	while (!r->done) {
		long n = persist_queue_iter(r->p, "c", 1, race_q, r);
		long m = persist_msg_iter(r->p, seen_msg, &(struct seen){ 0 });
		/* a commit adds a message and its queue entry together; the second read may
		 * see later commits than the first */
		if (n < last || n < 0 || m < n)
			r->bad++;
		last = n;
		r->reads++;
	}
	return NULL;
}

START_TEST(t_concurrent_reads)
{
	struct race r[2] = { { 0 }, { 0 } };
	pthread_t th[2];
	struct persist *p = open_store(tmpdir, false);
	struct persist_batch *b = persist_batch_new();
	struct persist_msg m = mkmsg("t", "p", 1, 0);
	int done = 0;

	for (int i = 0; i < 2; i++) {
		r[i].p = p;
		ck_assert_int_eq(pthread_create(&th[i], NULL, race_reader, &r[i]), 0);
	}
	for (uint64_t id = 1; id <= 300; id++) {
		struct persist_qentry e = qe(id, PERSIST_Q_QUEUED, 0);
		persist_msg_put(b, id, &m);
		persist_queue_put(b, "c", 1, id, &e);
		commit(p, b);
	}
	for (int i = 0; i < 2; i++) {
		r[i].done = 1;
		pthread_join(th[i], NULL);
		ck_assert_int_eq(r[i].bad, 0);
		done += r[i].reads > 0;
	}
	ck_assert_int_eq(done, 2);
	persist_batch_free(b);
	persist_close(p);
}
END_TEST

/* --- versions, damage, recovery --- */

/* Writes key/value straight into one of the store's LMDB databases. */
static void raw_put(const char *dir, const char *db, const void *k, size_t klen, const void *v,
		    size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
	ck_assert_int_eq(mdb_env_set_mapsize(env, 256u << 20), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &key, &val, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

START_TEST(t_version_and_header)
{
	struct persist *p = open_store(tmpdir, false);
	struct persist_header h = { 2, 1 };
	uint8_t buf[64];
	char err[512];
	size_t n;

	fill(p);
	persist_close(p);
	n = pcodec_enc_header(buf, &h);
	raw_put(tmpdir, "meta", "header", 6, buf, n);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), PERSIST_EVERSION);
	ck_assert_ptr_null(p);
	ck_assert_ptr_nonnull(strstr(err, "format version 2"));
	/* recovery never overrides a newer format */
	ck_assert_int_eq(try_open(tmpdir, true, &p, err, sizeof(err)), PERSIST_EVERSION);

	raw_put(tmpdir, "meta", "header", 6, "garbage", 7);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), PERSIST_EDAMAGED);
	ck_assert_ptr_nonnull(strstr(err, "header"));
	p = open_store(tmpdir, true);
	ck_assert_uint_eq(persist_recovered(p), 1);
	check_filled(p);
	persist_close(p);
	p = open_store(tmpdir, false);
	check_filled(p);
	persist_close(p);
}
END_TEST

START_TEST(t_not_a_store)
{
	char err[512], path[300];
	struct persist *p;
	int fd;

	/* an LMDB environment that is not ours */
	raw_put(tmpdir, "other", "k", 1, "v", 1);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), PERSIST_EDAMAGED);
	ck_assert_ptr_nonnull(strstr(err, "not a midge store"));
	test_rmtree(tmpdir);
	mkdir(tmpdir, 0700);
	/* a data file that is not LMDB at all */
	snprintf(path, sizeof(path), "%s/data.mdb", tmpdir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello, world, this is not a database", 36), 36);
	close(fd);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), PERSIST_EDAMAGED);
	ck_assert_ptr_nonnull(strstr(err, "damaged"));
	/* recovery moves it aside and starts empty */
	p = open_store(tmpdir, true);
	ck_assert_int_eq(persist_session_iter(p, seen_sess, &(struct seen){ 0 }), 0);
	persist_close(p);
}
END_TEST

START_TEST(t_recover_records)
{
	struct persist *p = open_store(tmpdir, false);
	uint8_t k[8], v[64];
	struct persist_qentry e = qe(40, PERSIST_Q_QUEUED, 0);
	struct persist_session s = { 0, 0, 5, NULL, 0, 41, 0, 0, NULL, 0 };
	size_t n;

	fill(p);
	persist_close(p);
	/* a garbage message, a queue entry and a will naming missing messages, a garbage
	 * subscription, and a wrong reference count */
	pcodec_put_u64(k, 9);
	raw_put(tmpdir, "msgs", k, 8, "\x01\x07", 2);
	n = pcodec_enc_qentry(v, &e);
	raw_put(tmpdir, "queue", "\x00\x03" "bob" "\x00\x00\x00\x00\x00\x00\x00\x01", 13, v, n);
	n = pcodec_enc_session(v, &s);
	raw_put(tmpdir, "sessions", "bob", 3, v, n);
	raw_put(tmpdir, "subs", "\x00\x09" "bob", 5, "\x01", 1);
	pcodec_put_u64(k, 2);
	n = pcodec_enc_refs(v, 9);
	raw_put(tmpdir, "refs", k, 8, v, n);

	/* without recovery: reads skip what they cannot decode */
	p = open_store(tmpdir, false);
	ck_assert_int_eq(persist_msg_iter(p, seen_msg, &(struct seen){ 0 }), 3);
	ck_assert_int_eq(persist_msg_get(p, 9, got_msg, &(struct gotmsg){ 0 }), PERSIST_EDAMAGED);
	ck_assert_int_eq(refs_of(p, 2), 9);
	persist_close(p);

	p = open_store(tmpdir, true);
	ck_assert_uint_eq(persist_recovered(p), 4); /* msg 9, bob's queue entry, bob's will, bad sub */
	ck_assert_int_eq(persist_msg_get(p, 9, got_msg, &(struct gotmsg){ 0 }), PERSIST_ENOTFOUND);
	ck_assert_int_eq(refs_of(p, 2), 1);
	ck_assert_int_eq(persist_queue_iter(p, "bob", 3, count_fn, &(long){ 0 }), 0);
	struct seen sn = { 0 };
	ck_assert_int_eq(persist_session_get(p, "bob", 3, seen_sess, &sn), 0);
	ck_assert_str_eq(sn.text, "[bob 0 0 5  0 0]");
	struct persist_batch *b = persist_batch_new();
	persist_session_delete(b, "bob", 3);
	commit(p, b);
	persist_batch_free(b);
	check_filled(p);
	persist_close(p);
}
END_TEST

/* --- damaged data files --- */

struct census {
	long refs[64];     /* references counted from records, by message id (< 64) */
	bool exists[64];
	uint32_t stored[64];
	long bad;          /* references to missing or out-of-range messages */
	struct persist *p;
};

static void census_msg(uint64_t id, const struct persist_msg *m, uint32_t refs, void *arg)
{
	struct census *c = arg;
	(void)m;
	if (id < 64) {
		c->exists[id] = true;
		c->stored[id] = refs;
	}
}

static void census_ref(struct census *c, uint64_t id)
{
	if (id < 64)
		c->refs[id]++;
	else
		c->bad++;
}

static void census_ret(const uint8_t *t, size_t len, uint64_t id, void *arg)
{
	(void)t;
	(void)len;
	census_ref(arg, id);
}

static void census_q(uint64_t seq, const struct persist_qentry *e, void *arg)
{
	(void)seq;
	census_ref(arg, e->msg_id);
}

static void census_sub(const uint8_t *f, size_t len, const struct persist_sub *s, void *arg)
{
	(void)f;
	(void)len;
	(void)s;
	(void)arg;
}

static void census_sess(const uint8_t *cid, size_t len, const struct persist_session *s, void *arg)
{
	struct census *c = arg;
	if (s->will_id)
		census_ref(c, s->will_id);
	persist_sub_iter(c->p, cid, len, census_sub, c);
	persist_queue_iter(c->p, cid, len, census_q, c);
}

/* Reads everything; returns 0, or 2 when a recovered store is inconsistent. */
static int census(struct persist *p, bool recovered)
{
	struct census c = { .p = p };
	uint64_t max;
	persist_msg_iter(p, census_msg, &c);
	persist_retained_iter(p, census_ret, &c);
	persist_session_iter(p, census_sess, &c);
	persist_msg_max_id(p, &max);
	if (!recovered)
		return 0;
	if (c.bad) {
		fprintf(stderr, "%ld references to unknown messages\n", c.bad);
		return 2;
	}
	for (int i = 0; i < 64; i++)
		if ((c.refs[i] && !c.exists[i]) || (c.exists[i] && c.stored[i] != (uint32_t)c.refs[i])) {
			fprintf(stderr, "message %d: exists %d, refs %u, counted %ld\n", i, c.exists[i],
				c.stored[i], c.refs[i]);
			return 2;
		}
	return 0;
}

/* A small store of every kind of record (ids < 64), a few pages deep. */
static void fill_small(const char *dir)
{
	struct persist *p = open_store(dir, false);
	struct persist_batch *b = persist_batch_new();
	static char payload[9000];
	char name[32];
	memset(payload, 'p', sizeof(payload));
	for (uint64_t id = 1; id < 64; id++) {
		/* some on LMDB overflow pages */
		struct persist_msg m = { 1, false, 0, (const uint8_t *)"t/x", 3, (const uint8_t *)payload,
					 id % 16 == 0 ? 5000 + id * 50 : id * 3, NULL, 0 };
		persist_msg_put(b, id, &m);
	}
	for (int i = 0; i < 60; i++) {
		struct persist_session s = { 100, (int64_t)i, 5, "user", 4, (uint64_t)(i % 63) + 1, 5, 0, NULL, 0 };
		snprintf(name, sizeof(name), "client-%d", i);
		persist_session_put(b, name, strlen(name), &s);
		persist_sub_put(b, name, strlen(name), "a/#", 3, &(struct persist_sub){ 1, 0, 0 });
		for (uint64_t q = 0; q < 10; q++) {
			struct persist_qentry e = qe((i + q) % 63 + 1, PERSIST_Q_QUEUED, 0);
			persist_queue_put(b, name, strlen(name), q, &e);
		}
		snprintf(name, sizeof(name), "retained/%d", i);
		persist_retained_set(b, name, strlen(name), (uint64_t)(i * 7 % 63) + 1);
	}
	commit(p, b);
	persist_batch_free(b);
	persist_close(p);
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY), out = open(to, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (in < 0 || out < 0)
		return -1;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			return -1;
	close(in);
	close(out);
	return 0;
}

enum damage { DMG_TRUNCATE, DMG_GARBAGE, DMG_BITFLIP };

/* In a child: opens the damaged store (plainly, then with recovery) and reads it all.
 * Exit 0: opened; 10: refused with a sentence (recovery then fine); 2: inconsistent after
 * recovery; 3: refused without an error sentence. */
static int child(const char *dir)
{
	char err[512] = "";
	struct persist *p;
	int rc;
	bool refused;
	alarm(20);
	rc = try_open(dir, false, &p, err, sizeof(err));
	refused = rc != 0;
	if (rc == 0) {
		census(p, false);
		persist_close(p);
	} else if (err[0] == '\0') {
		return 3;
	}
	err[0] = '\0';
	rc = try_open(dir, true, &p, err, sizeof(err));
	if (rc == 0) {
		rc = census(p, true);
		persist_close(p);
		return rc ? rc : refused ? 10 : 0;
	}
	return err[0] ? 10 : 3;
}

/* A data file whose meta pages name another page size (damaged, or from another machine):
 * refused before LMDB maps it (LMDB would overrun its page buffer; found by fuzzing). */
START_TEST(t_foreign_page_size)
{
	static const uint32_t sizes[] = { 512, 2048, 8192 };
	char data[300], err[512];
	struct persist_options o = { PERSIST_SYNC_BATCH, 0, false };
	struct persist *p;
	uint32_t psize = (uint32_t)sysconf(_SC_PAGESIZE), v;

	fill_small(tmpdir);
	snprintf(data, sizeof(data), "%s/data.mdb", tmpdir);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int fd = open(data, O_RDWR);
		ck_assert_int_ge(fd, 0);
		/* both meta pages: page header 16, magic 4, version 4, address 8, map size 8,
		 * then the free database, whose first 4 bytes hold the page size */
		for (int m = 0; m < 2; m++) {
			off_t off = (off_t)m * psize + 40;
			ck_assert_int_eq(pread(fd, &v, 4, off), 4);
			if (m == 0 && i == 0)
				ck_assert_uint_eq(v, psize);
			v = sizes[i];
			ck_assert_int_eq(pwrite(fd, &v, 4, off), 4);
		}
		close(fd);
		ck_assert_int_eq(persist_open(tmpdir, &o, &p, err, sizeof(err)), PERSIST_EDAMAGED);
		ck_assert_ptr_null(p);
		ck_assert_msg(strstr(err, "page size") != NULL, "%s", err);
		/* back to this machine's size: opens again */
		fd = open(data, O_RDWR);
		for (int m = 0; m < 2; m++)
			ck_assert_int_eq(pwrite(fd, &psize, 4, (off_t)m * psize + 40), 4);
		close(fd);
		ck_assert_int_eq(persist_open(tmpdir, &o, &p, err, sizeof(err)), 0);
		persist_close(p);
	}
}
END_TEST

START_TEST(t_damaged_files)
{
	char pristine[300], data[300], lock[300], clean[1000];
	long opened = 0, refused = 0, trials = 0;
	struct fails f = { .n = 0 };
	struct stat st;

	fill_small(tmpdir);
	snprintf(pristine, sizeof(pristine), "%s/pristine", tmpdir);
	snprintf(data, sizeof(data), "%s/data.mdb", tmpdir);
	snprintf(lock, sizeof(lock), "%s/lock.mdb", tmpdir);
	ck_assert_int_eq(copy_file(data, pristine), 0);
	ck_assert_int_eq(stat(pristine, &st), 0);
	test_rng_seed(20261126);
	for (int kind = DMG_TRUNCATE; kind <= DMG_BITFLIP; kind++) {
		for (int t = 0; t < 400; t++, trials++) {
			int fd, status;
			pid_t pid;


			/* a fresh copy (recovery may have moved the last one aside) */
			snprintf(clean, sizeof(clean), "rm -f %s/data.mdb.damaged-* %s", tmpdir, lock);
			ck_assert_int_eq(system(clean), 0);
			ck_assert_int_eq(copy_file(pristine, data), 0);
			fd = open(data, O_RDWR);
			ck_assert_int_ge(fd, 0);
			if (kind == DMG_TRUNCATE) {
				ck_assert_int_eq(ftruncate(fd, (off_t)test_rng((uint32_t)st.st_size)), 0);
			} else if (kind == DMG_GARBAGE) {
				uint8_t junk[512];
				size_t len = 1 + test_rng(sizeof(junk));
				for (size_t i = 0; i < len; i++)
					junk[i] = (uint8_t)test_rng(256);
				ck_assert_int_eq(pwrite(fd, junk, len, (off_t)test_rng((uint32_t)st.st_size)),
						 (ssize_t)len);
			} else {
				int flips = 1 + (int)test_rng(8);
				for (int i = 0; i < flips; i++) {
					uint8_t byte;
					off_t off = (off_t)test_rng((uint32_t)st.st_size);
					ck_assert_int_eq(pread(fd, &byte, 1, off), 1);
					byte ^= (uint8_t)(1u << test_rng(8));
					ck_assert_int_eq(pwrite(fd, &byte, 1, off), 1);
				}
			}
			close(fd);
			fflush(NULL);
			/* PERSIST_KEEP_TRIAL=<kind * 1000 + trial> keeps a copy of that damaged file */
			if (getenv("PERSIST_KEEP_TRIAL") && atoi(getenv("PERSIST_KEEP_TRIAL")) == kind * 1000 + t) {
				char keep[600];
				snprintf(keep, sizeof(keep), "cp %s /tmp/persist-trial.mdb", data);
				ck_assert_int_eq(system(keep), 0);
			}
			pid = fork();
			ck_assert_int_ge(pid, 0);
			if (pid == 0)
				_exit(child(tmpdir));
			ck_assert_int_eq(waitpid(pid, &status, 0), pid);
			if (WIFSIGNALED(status))
				fail_note(&f, "[kind %d trial %d: signal %d]", kind, t, WTERMSIG(status));
			else if (WEXITSTATUS(status) == 0)
				opened++;
			else if (WEXITSTATUS(status) == 10)
				refused++;
			else
				fail_note(&f, "[kind %d trial %d: exit %d]", kind, t, WEXITSTATUS(status));
		}
	}
	printf("persist: %ld damaged-file trials: %ld opened plainly, %ld refused, %u failing\n",
	       trials, opened, refused, f.n);
	FAILS_CHECK(&f);
}
END_TEST

/*
 * Page flags LMDB never writes (found by tests/fuzz/fuzz_persist): a leaf page
 * marked P_LOOSE (0x4000) passed the file check; recovery then rewrote it,
 * LMDB skipped writing a "loose" page at commit, and the recovered store named
 * a page never written (reads failed with MDB_CORRUPTED). Such a page is damage.
 */
START_TEST(t_damaged_page_flags)
{
	char data[300], err[512] = "";
	struct persist *p = NULL;
	struct census c = { 0 };
	long ps = sysconf(_SC_PAGESIZE);
	uint8_t hdr[16];
	struct stat st;
	int fd, marked = 0;

	fill_small(tmpdir);
	snprintf(data, sizeof(data), "%s/data.mdb", tmpdir);
	fd = open(data, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	for (off_t off = 2 * ps; off + (off_t)sizeof(hdr) <= st.st_size; off += ps) {
		uint64_t pgno;
		ck_assert_int_eq(pread(fd, hdr, sizeof(hdr), off), (ssize_t)sizeof(hdr));
		memcpy(&pgno, hdr, 8);
		/* mp_flags (little-endian, offset 10) of a leaf page: P_LEAF, 0x02 */
		if (pgno == (uint64_t)(off / ps) && hdr[10] == 0x02 && hdr[11] == 0) {
			hdr[11] = 0x40;
			ck_assert_int_eq(pwrite(fd, hdr, sizeof(hdr), off), (ssize_t)sizeof(hdr));
			marked++;
		}
	}
	close(fd);
	ck_assert_int_gt(marked, 0);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), PERSIST_EDAMAGED);
	ck_assert_msg(strstr(err, "damaged") != NULL, "%s", err);
	ck_assert_int_eq(try_open(tmpdir, true, &p, err, sizeof(err)), 0);
	c.p = p;
	ck_assert_int_ge(persist_msg_iter(p, census_msg, &c), 0);
	ck_assert_int_ge(persist_retained_iter(p, census_ret, &c), 0);
	ck_assert_int_ge(persist_session_iter(p, census_sess, &c), 0);
	ck_assert_uint_gt(persist_recovered(p), 0);
	persist_close(p);
}
END_TEST

/*
 * Database flags of an empty tree (found by tests/fuzz/fuzz_persist): the free
 * list's record in the meta page said DUPFIXED, REVERSEKEY... with no tree to
 * check, and LMDB read out of bounds writing its free list at the next commit.
 */
START_TEST(t_damaged_db_flags)
{
	char data[300], err[512] = "";
	struct persist *p = NULL;
	long ps = sysconf(_SC_PAGESIZE);
	uint8_t flags[2] = { 0xF9, 0x00 };
	uint64_t root;
	int fd;

	p = open_store(tmpdir, false);
	persist_close(p);
	snprintf(data, sizeof(data), "%s/data.mdb", tmpdir);
	fd = open(data, O_RDWR);
	ck_assert_int_ge(fd, 0);
	for (int m = 0; m < 2; m++) {
		/* meta page m: page header (16), magic, version, address, map size (24), then the
		 * free list's MDB_db: pad (4), flags (2), depth (2), ..., root (8) at 40 */
		ck_assert_int_eq(pread(fd, &root, 8, m * ps + 40 + 40), 8);
		ck_assert_msg(root == UINT64_MAX, "a fresh store's free list is empty");
		ck_assert_int_eq(pwrite(fd, flags, 2, m * ps + 40 + 4), 2);
	}
	close(fd);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), PERSIST_EDAMAGED);
	ck_assert_int_eq(try_open(tmpdir, true, &p, err, sizeof(err)), 0);
	ck_assert_uint_gt(persist_recovered(p), 0);
	persist_close(p);
}
END_TEST

/*
 * An empty tree with a depth (found by tests/fuzz/fuzz_persist): the main
 * database of the newest meta page had no root but depth 1; recovery created
 * its databases on it, LMDB made a leaf root at depth 2, and the recovered
 * store could not be opened again.
 */
START_TEST(t_damaged_empty_tree)
{
	char data[300], err[512] = "";
	struct persist *p = NULL;
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t txn[2], none = UINT64_MAX;
	uint16_t depth;
	int fd, m;

	p = open_store(tmpdir, false);
	persist_close(p);
	snprintf(data, sizeof(data), "%s/data.mdb", tmpdir);
	fd = open(data, O_RDWR);
	ck_assert_int_ge(fd, 0);
	/* the newest meta page (txnid at 16 + 128); its main database's MDB_db is at 16 + 72:
	 * pad (4), flags (2), depth (2), ..., root (8) at 40 */
	for (m = 0; m < 2; m++)
		ck_assert_int_eq(pread(fd, &txn[m], 8, m * ps + 144), 8);
	m = txn[1] > txn[0];
	ck_assert_int_eq(pread(fd, &depth, 2, m * ps + 88 + 6), 2);
	ck_assert_uint_eq(depth, 1);
	ck_assert_int_eq(pwrite(fd, &none, 8, m * ps + 88 + 40), 8);
	close(fd);
	ck_assert_int_eq(try_open(tmpdir, true, &p, err, sizeof(err)), 0);
	persist_close(p);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), 0);
	persist_close(p);
}
END_TEST

/*
 * Both meta pages naming the same transaction (found by tests/fuzz/fuzz_persist):
 * the file check walked the first page's (empty) trees, LMDB read the second
 * page's (meta page id & 1) with a damaged page in them, and recovery wrote
 * past a page buffer inside LMDB.
 */
START_TEST(t_damaged_meta_txnid)
{
	char data[300], err[512] = "";
	struct persist *p = NULL;
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t txn[2], root;
	uint8_t flags = 0x40; /* high byte of mp_flags: P_LOOSE */
	int fd;

	p = open_store(tmpdir, false);
	persist_close(p);
	snprintf(data, sizeof(data), "%s/data.mdb", tmpdir);
	fd = open(data, O_RDWR);
	ck_assert_int_ge(fd, 0);
	for (int m = 0; m < 2; m++)
		ck_assert_int_eq(pread(fd, &txn[m], 8, m * ps + 144), 8);
	/* a fresh store: transaction 1 in meta page 1, meta page 0 still the empty one */
	ck_assert_msg(txn[0] == 0 && txn[1] == 1, "txnids %llu %llu", (unsigned long long)txn[0],
		      (unsigned long long)txn[1]);
	ck_assert_int_eq(pwrite(fd, &txn[1], 8, 144), 8);
	/* the main database's root (meta page 1: MDB_db at 88, root at + 40), damaged */
	ck_assert_int_eq(pread(fd, &root, 8, ps + 88 + 40), 8);
	ck_assert_int_eq(pwrite(fd, &flags, 1, (off_t)root * ps + 11), 1);
	close(fd);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), PERSIST_EDAMAGED);
	ck_assert_int_eq(try_open(tmpdir, true, &p, err, sizeof(err)), 0);
	persist_close(p);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), 0);
	persist_close(p);
}
END_TEST

/*
 * A meta page naming transaction 2^64 - 1 (found by tests/fuzz/fuzz_persist):
 * LMDB numbered the next write transaction 0, which it takes for "none" in its
 * free-list bookkeeping (the record of the pages freed by transaction 0 was
 * merged into the free pages again and again), handed out a page twice and
 * aborted (mdb_page_dirty: Assertion 'rc == 0') as recovery deleted records.
 * A store cannot come near the end of the transaction ids: such a meta page is
 * damage. The file then goes aside under recovery, and plainly it is refused
 * (the broker's first commits would abort the same way).
 */
START_TEST(t_damaged_meta_txnid_wrap)
{
	char data[300], other[300], err[512] = "";
	struct persist *p = NULL;
	struct persist_batch *b;
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t txn[2], last;
	uint8_t id[16];
	int fd, m;

	fill_small(tmpdir);
	/* a retained entry naming no message, for recovery to delete */
	pcodec_put_u64(id, 999);
	raw_put(tmpdir, "retained", "gone", 4, id, pcodec_enc_id(id, 999));
	snprintf(data, sizeof(data), "%s/data.mdb", tmpdir);
	fd = open(data, O_RDWR);
	ck_assert_int_ge(fd, 0);
	for (m = 0; m < 2; m++)
		ck_assert_int_eq(pread(fd, &txn[m], 8, m * ps + 144), 8);
	/* the newest meta page (LMDB reads meta page id & 1): the largest id of its parity */
	m = txn[1] > txn[0];
	last = m ? UINT64_MAX : UINT64_MAX - 1;
	ck_assert_int_eq(pwrite(fd, &last, 8, m * ps + 144), 8);
	close(fd);
	/* a copy, in its own directory, to open plainly */
	snprintf(other, sizeof(other), "%s/plain", tmpdir);
	ck_assert_int_eq(mkdir(other, 0700), 0);
	snprintf(other, sizeof(other), "%s/plain/data.mdb", tmpdir);
	ck_assert_int_eq(copy_file(data, other), 0);
	snprintf(other, sizeof(other), "%s/plain", tmpdir);
	/* with recovery: opens (on a fresh store), consistent, and takes commits (before the
	 * check refused the file, the second commit aborted) */
	ck_assert_int_eq(try_open(tmpdir, true, &p, err, sizeof(err)), 0);
	ck_assert_uint_gt(persist_recovered(p), 0);
	ck_assert_int_eq(census(p, true), 0);
	b = persist_batch_new();
	for (uint64_t i = 1000; i < 1200; i++) {
		persist_msg_put(b, i, &(struct persist_msg){ 0, false, 0, (const uint8_t *)"t", 1, NULL, 0, NULL, 0 });
		persist_retained_set(b, "r", 1, i);
		commit(p, b);
	}
	persist_batch_free(b);
	persist_close(p);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), 0);
	ck_assert_int_eq(persist_retained_get(p, "r", 1, &last), 0);
	ck_assert_uint_eq(last, 1199);
	ck_assert_int_eq(refs_of(p, 1199), 1);
	ck_assert_int_eq(refs_of(p, 1198), -1);
	persist_close(p);
	/* plainly: refused */
	ck_assert_int_eq(try_open(other, false, &p, err, sizeof(err)), PERSIST_EDAMAGED);
	ck_assert_msg(strstr(err, "transaction id") != NULL, "%s", err);
}
END_TEST

/*
 * A free-list record keyed 0 (found while fixing t_damaged_meta_txnid_wrap):
 * LMDB's free-page bookkeeping takes key 0 for "no record taken up yet", so it
 * took that record's pages up twice, handed a page out twice and aborted
 * (mdb_page_dirty: Assertion 'rc == 0') at the first commit. Free-list keys
 * name the transaction that freed the pages: 1 up to the newest.
 */
START_TEST(t_damaged_free_key)
{
	char data[300], err[512] = "";
	struct persist *p = open_store(tmpdir, false);
	struct persist_batch *b = persist_batch_new();
	static char payload[600];
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t txn[2], root, key;
	uint16_t depth, off;
	int fd, m;

	/* commits that free pages: messages put, then replaced */
	memset(payload, 'p', sizeof(payload));
	for (int t = 0; t < 8; t++) {
		for (uint64_t id = 1; id <= 40; id++) {
			struct persist_msg msg = { 0, false, 0, (const uint8_t *)"t", 1, (const uint8_t *)payload,
						   t % 2 ? 100 : sizeof(payload), NULL, 0 };
			persist_msg_put(b, id, &msg);
		}
		commit(p, b);
	}
	persist_close(p);
	snprintf(data, sizeof(data), "%s/data.mdb", tmpdir);
	fd = open(data, O_RDWR);
	ck_assert_int_ge(fd, 0);
	for (m = 0; m < 2; m++)
		ck_assert_int_eq(pread(fd, &txn[m], 8, m * ps + 144), 8);
	m = (int)((txn[0] > txn[1] ? txn[0] : txn[1]) & 1);
	/* the free list's MDB_db (meta page at 16 + 24): depth at 6, root at 40 */
	ck_assert_int_eq(pread(fd, &depth, 2, m * ps + 40 + 6), 2);
	ck_assert_int_eq(pread(fd, &root, 8, m * ps + 40 + 40), 8);
	ck_assert_msg(depth == 1, "the free list: depth %u", depth);
	/* its first record (the smallest key, the leaf's first node) keyed 0: still in order */
	ck_assert_int_eq(pread(fd, &off, 2, (off_t)root * ps + 16), 2);
	ck_assert_int_eq(pread(fd, &key, 8, (off_t)root * ps + off + 8), 8);
	ck_assert_uint_ge(key, 1);
	key = 0;
	ck_assert_int_eq(pwrite(fd, &key, 8, (off_t)root * ps + off + 8), 8);
	close(fd);
	/* plainly: refused (it opened, and a commit below aborted) */
	if (try_open(tmpdir, false, &p, err, sizeof(err)) == 0) {
		for (int t = 0; t < 8; t++) {
			for (uint64_t id = 1; id <= 40; id++) {
				struct persist_msg msg = { 0, false, 0, (const uint8_t *)"t", 1,
							   (const uint8_t *)payload, t % 2 ? 500 : 200, NULL, 0 };
				persist_msg_put(b, id, &msg);
			}
			commit(p, b);
		}
		persist_close(p);
		ck_abort_msg("a free-list record keyed 0 was not refused");
	}
	persist_batch_free(b);
	ck_assert_msg(strstr(err, "free-list key") != NULL, "%s", err);
	ck_assert_int_eq(try_open(tmpdir, true, &p, err, sizeof(err)), 0);
	ck_assert_uint_gt(persist_recovered(p), 0);
	persist_close(p);
}
END_TEST

/*
 * A page whose free space ends at an odd offset (found by tests/fuzz/fuzz_persist:
 * mp_upper of the main database's leaf 5 bytes below its lowest node, which is at
 * an even offset). LMDB places a node it adds at upper minus the node's (even)
 * size: recovery added a named database to that page at an odd offset, and the
 * recovered store was refused when opened again ("a node offset is damaged").
 * LMDB never writes an odd upper: such a page is damage.
 */
START_TEST(t_damaged_page_upper)
{
	char data[300], err[512] = "";
	struct persist *p = NULL;
	struct persist_batch *b;
	long ps = sysconf(_SC_PAGESIZE);
	uint8_t hdr[16];
	struct stat st;
	int fd, rc, marked = 0;

	fill_small(tmpdir);
	snprintf(data, sizeof(data), "%s/data.mdb", tmpdir);
	fd = open(data, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	/* every leaf page with free space: mp_upper (offset 14) one lower, odd */
	for (off_t off = 2 * ps; off + (off_t)sizeof(hdr) <= st.st_size; off += ps) {
		uint64_t pgno;
		uint16_t lower, upper;
		ck_assert_int_eq(pread(fd, hdr, sizeof(hdr), off), (ssize_t)sizeof(hdr));
		memcpy(&pgno, hdr, 8);
		memcpy(&lower, hdr + 12, 2);
		memcpy(&upper, hdr + 14, 2);
		if (pgno == (uint64_t)(off / ps) && hdr[10] == 0x02 && hdr[11] == 0 && upper > lower) {
			ck_assert_uint_eq(upper % 2, 0);
			upper--;
			memcpy(hdr + 14, &upper, 2);
			ck_assert_int_eq(pwrite(fd, hdr, sizeof(hdr), off), (ssize_t)sizeof(hdr));
			marked++;
		}
	}
	close(fd);
	ck_assert_int_gt(marked, 0);
	/* plainly: refused (it opened, and commits adding records to those pages wrote nodes
	 * at odd offsets: the store was refused at the next start) */
	if (try_open(tmpdir, false, &p, err, sizeof(err)) == 0) {
		b = persist_batch_new();
		for (uint64_t id = 100; id < 110; id++) {
			char name[32];
			persist_msg_put(b, id, &(struct persist_msg){ 0, false, 0, (const uint8_t *)"t", 1, NULL, 0, NULL, 0 });
			snprintf(name, sizeof(name), "retained/new-%d", (int)id);
			persist_retained_set(b, name, strlen(name), id);
		}
		commit(p, b);
		persist_batch_free(b);
		persist_close(p);
		err[0] = '\0';
		rc = try_open(tmpdir, false, &p, err, sizeof(err));
		ck_abort_msg("a page with an odd mp_upper was not refused; opened again after a commit: %d %s",
			     rc, err);
	}
	ck_assert_msg(strstr(err, "page header") != NULL, "%s", err);
	/* with recovery: the file goes aside, and the new store opens again */
	ck_assert_int_eq(try_open(tmpdir, true, &p, err, sizeof(err)), 0);
	ck_assert_uint_gt(persist_recovered(p), 0);
	persist_close(p);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), 0);
	persist_close(p);
}
END_TEST

/*
 * A message record keyed 0 (found by tests/fuzz/fuzz_persist: a key's 8 bytes
 * zeroed): message ids count from 1, 0 is "no message" (a session without a will),
 * so no record can name it. The reader handed it out as message 0, and recovery
 * kept it. Now it counts as undecodable, and recovery deletes it.
 */
static void no_msg_zero(uint64_t id, const struct persist_msg *m, uint32_t refs, void *arg)
{
	ck_assert_uint_ne(id, 0);
	(*(long *)arg)++;
}

START_TEST(t_damaged_msg_id_zero)
{
	char err[512] = "";
	struct persist *p = NULL;
	struct persist_msg m = { 1, false, 0, (const uint8_t *)"t/zero", 6, (const uint8_t *)"x", 1, NULL, 0 };
	uint8_t key[8] = { 0 }, val[256];
	long n = 0, n0;

	fill_small(tmpdir);
	ck_assert_uint_le(pcodec_enc_msg(NULL, &m), sizeof(val));
	raw_put(tmpdir, "msgs", key, sizeof(key), val, pcodec_enc_msg(val, &m));
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), 0);
	ck_assert_int_ge(persist_msg_iter(p, no_msg_zero, &n), 0);
	ck_assert_uint_eq(persist_undecodable(p), 1);
	persist_close(p);
	n0 = n;
	n = 0;
	ck_assert_int_eq(try_open(tmpdir, true, &p, err, sizeof(err)), 0);
	ck_assert_uint_gt(persist_recovered(p), 0);
	ck_assert_int_ge(persist_msg_iter(p, no_msg_zero, &n), 0);
	ck_assert_int_eq(n, n0);
	ck_assert_uint_eq(persist_undecodable(p), 0);
	persist_close(p);
	ck_assert_int_eq(try_open(tmpdir, false, &p, err, sizeof(err)), 0);
	ck_assert_uint_eq(persist_recovered(p), 0);
	persist_close(p);
}
END_TEST

/* --- scale --- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count_sess(const uint8_t *cid, size_t len, const struct persist_session *s, void *arg)
{
	(void)cid;
	(void)len;
	(void)s;
	(*(long *)arg)++;
}

START_TEST(t_scale)
{
	struct persist_options o = { PERSIST_SYNC_BATCH, 1u << 30, false };
	struct persist *p;
	struct persist_batch *b = persist_batch_new();
	char err[512], name[64], payload[100];
	double t0 = now_s(), t1, t2;
	long n = 0;

	memset(payload, 'x', sizeof(payload));
	ck_assert_int_eq(persist_open(tmpdir, &o, &p, err, sizeof(err)), 0);
	for (uint64_t id = 1; id <= 100000; id++) {
		struct persist_msg m = { 1, false, 0, (const uint8_t *)"sensors/room/temperature", 24,
					 (const uint8_t *)payload, sizeof(payload), NULL, 0 };
		ck_assert_int_eq(persist_msg_put(b, id, &m), 0);
		if (id % 10 == 0) {
			struct persist_session s = { 3600, 0, 5, "user", 4, 0, 0, 0, NULL, 0 };
			struct persist_qentry e = qe(id, PERSIST_Q_QUEUED, 0);
			int len = snprintf(name, sizeof(name), "client-%llu", (unsigned long long)id / 10);
			ck_assert_int_eq(persist_session_put(b, name, (size_t)len, &s), 0);
			ck_assert_int_eq(persist_sub_put(b, name, (size_t)len, "sensors/#", 9,
							 &(struct persist_sub){ 1, 0, 0 }), 0);
			ck_assert_int_eq(persist_queue_put(b, name, (size_t)len, 1, &e), 0);
		}
		if (id % 1000 == 0)
			commit(p, b);
	}
	t1 = now_s();
	persist_close(p);
	ck_assert_int_eq(persist_open(tmpdir, &o, &p, err, sizeof(err)), 0);
	ck_assert_int_eq(persist_session_iter(p, count_sess, &n), 10000);
	ck_assert_int_eq(persist_msg_iter(p, seen_msg, &(struct seen){ 0 }) >= 0, 1);
	{
		uint64_t max;
		ck_assert_int_eq(persist_msg_max_id(p, &max), 0);
		ck_assert_uint_eq(max, 100000);
	}
	t2 = now_s();
	printf("persist: 100000 messages + 10000 sessions written in %.2f s (100 commits), "
	       "reopened and read in %.2f s\n", t1 - t0, t2 - t1);
	ck_assert_msg(t1 - t0 < 30 && t2 - t1 < 30, "too slow: %.2f s, %.2f s", t1 - t0, t2 - t1);
	persist_batch_free(b);
	persist_close(p);
}
END_TEST

Suite *suite_persist(void)
{
	Suite *s = suite_create("persist");
	TCase *tc = tcase_create("codec");
	tcase_add_test(tc, t_codec_roundtrip);
	tcase_add_test(tc, t_codec_garbage);
	suite_add_tcase(s, tc);

	tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_roundtrip_reopen);
	tcase_add_test(tc, t_refcounts);
	tcase_add_test(tc, t_owner_required);
	tcase_add_test(tc, t_batch_refusals);
	tcase_add_test(tc, t_queue_order);
	tcase_add_test(tc, t_purge);
	tcase_add_test(tc, t_version_and_header);
	tcase_add_test(tc, t_not_a_store);
	tcase_add_test(tc, t_recover_records);
	tcase_add_test(tc, t_sync_modes);
	tcase_add_test(tc, t_churn_reopen);
	tcase_add_test(tc, t_concurrent_reads);
	suite_add_tcase(s, tc);

	tc = tcase_create("damage");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, t_damaged_files);
	tcase_add_test(tc, t_foreign_page_size);
	tcase_add_test(tc, t_damaged_page_flags);
	tcase_add_test(tc, t_damaged_db_flags);
	tcase_add_test(tc, t_damaged_empty_tree);
	tcase_add_test(tc, t_damaged_meta_txnid);
	tcase_add_test(tc, t_damaged_meta_txnid_wrap);
	tcase_add_test(tc, t_damaged_free_key);
	tcase_add_test(tc, t_damaged_page_upper);
	tcase_add_test(tc, t_damaged_msg_id_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("scale");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, t_scale);
	suite_add_tcase(s, tc);
	return s;
}
