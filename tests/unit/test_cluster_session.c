/*
 * test_cluster_session.c: the pure parts of sessions that follow their
 * client across cluster nodes (cluster_session_wire.h): the registry key
 * encoding (only KV key bytes, lossless for every byte, one key per id, long
 * ids hashed), registry values, hand-over requests and replies, and the
 * session encoding (round trip, truncation and damage refused).
 */
#include "config.h"

#include "tests.h"

#include "alloc.h"
#include "cluster_session_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- keys ------------------------------------------------------------------------ */

static bool key_bytes_valid(const char *key)
{
	if (!key[0])
		return false;
	for (const char *p = key; *p; p++)
		if (!strchr("-/_=.", *p) && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
					      (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

START_TEST(test_key_examples)
{
	static const struct {
		const char *id, *key;
	} cases[] = {
		{"sensor-1", "sensor-1"},
		{"a/b", "a/b"},
		{"a.b", "a_2Eb"},
		{"a_b", "a_5Fb"},
		{"a=b", "a_3Db"},
		{"a b", "a_20b"},
		{"*>", "_2A_3E"},
		{"caf\xc3\xa9", "caf_C3_A9"},
		{".", "_2E"},
	};
	char key[CLUSTER_SESSION_KEY_MAX + 1];
	struct fails f = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cluster_key_encode(key, cases[i].id, strlen(cases[i].id));
		if (strcmp(key, cases[i].key) != 0 || n != strlen(key))
			fail_note(&f, "%s -> %s, expected %s; ", cases[i].id, key, cases[i].key);
	}
	FAILS_CHECK(&f);
}
END_TEST

START_TEST(test_key_roundtrip_every_byte)
{
	char id[3], key[CLUSTER_SESSION_KEY_MAX + 1], back[CLUSTER_SESSION_KEY_MAX + 1];
	struct fails f = {0};

	for (int b = 1; b < 256; b++) {
		id[0] = 'x';
		id[1] = (char)b;
		id[2] = 'y';
		cluster_key_encode(key, id, 3);
		if (!key_bytes_valid(key) || strchr(key, '.') || key[0] == '=')
			fail_note(&f, "byte %d: key %s not a KV key; ", b, key);
		long n = cluster_key_decode(back, key);
		if (n != 3 || memcmp(back, id, 3) != 0)
			fail_note(&f, "byte %d does not round-trip (%ld); ", b, n);
	}
	FAILS_CHECK(&f);
}
END_TEST

START_TEST(test_key_decode_refuses)
{
	static const char *bad[] = {"", "a_2", "a_zz", "a_41", "a.b", "a b", "=0123456789ABCDEF",
				    "a_2e"};
	char out[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cluster_key_decode(out, bad[i]) == -1, "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_key_long_ids_hashed)
{
	char id[2000], other[2000], key[CLUSTER_SESSION_KEY_MAX + 1], key2[CLUSTER_SESSION_KEY_MAX + 1];

	/* Plain bytes up to the limit keep their key; one more hashes. */
	memset(id, 'a', sizeof(id));
	ck_assert_uint_eq(cluster_key_encode(key, id, CLUSTER_SESSION_KEY_MAX), CLUSTER_SESSION_KEY_MAX);
	ck_assert_uint_eq(cluster_key_encode(key, id, CLUSTER_SESSION_KEY_MAX + 1), 17);
	ck_assert_int_eq(key[0], '=');
	ck_assert(key_bytes_valid(key));
	/* Escapes count three bytes each. */
	memset(id, '.', sizeof(id));
	ck_assert_uint_eq(cluster_key_encode(key, id, CLUSTER_SESSION_KEY_MAX / 3), CLUSTER_SESSION_KEY_MAX / 3 * 3);
	ck_assert_uint_eq(cluster_key_encode(key, id, CLUSTER_SESSION_KEY_MAX / 3 + 1), 17);
	/* Different long ids, different hashes; the same id, the same key. */
	memset(other, '.', sizeof(other));
	other[1999] = ',';
	cluster_key_encode(key, id, sizeof(id));
	cluster_key_encode(key2, other, sizeof(other));
	ck_assert_str_ne(key, key2);
	cluster_key_encode(key2, id, sizeof(id));
	ck_assert_str_eq(key, key2);
	ck_assert_int_eq(cluster_key_decode(id, key), -1);
}
END_TEST

/* ---- registry value, request, reply --------------------------------------------------- */

START_TEST(test_registry_value_roundtrip)
{
	struct session_reg r = {.instance = 0x0102030405060708ull, .persistent = true,
				.node = "node-a", .node_len = 6, .id = "client/1", .id_len = 8,
				.replay_from = 1764158400123}, back;
	struct wire_out o = {0};

	session_reg_encode(&o, &r);
	ck_assert(!o.failed);
	ck_assert_uint_eq(o.data[2], 2);
	ck_assert_int_eq(session_reg_decode(o.data, o.len, &back), 0);
	ck_assert_uint_eq(back.instance, r.instance);
	ck_assert(back.persistent);
	ck_assert_uint_eq(back.node_len, 6);
	ck_assert_mem_eq(back.node, "node-a", 6);
	ck_assert_uint_eq(back.id_len, 8);
	ck_assert_mem_eq(back.id, "client/1", 8);
	ck_assert_int_eq(back.replay_from, 1764158400123);
	ck_assert_uint_eq(back.nsubs, 0);
	ck_assert_uint_eq(back.subs_len, 0);
	/* Every truncation is refused; a later version's tail is not. */
	for (size_t n = 0; n < o.len; n++)
		ck_assert_int_eq(session_reg_decode(o.data, n, &back), -1);
	uint8_t longer[64];
	memcpy(longer, o.data, o.len);
	longer[o.len] = 0xAA;
	ck_assert_int_eq(session_reg_decode(longer, o.len + 1, &back), 0);
	o.data[2] = 3; /* a later version */
	ck_assert_int_eq(session_reg_decode(o.data, o.len, &back), -1);
	mem_free(o.data);
}
END_TEST

/* Version 1 (before replay_from) is still read: nothing known to replay. */
START_TEST(test_registry_value_version1)
{
	static const uint8_t v1[] = {'S', 'R', 1, 1, 0, 0, 0, 0, 0, 0, 0, 9, 1, 0, 2, 'n',
				     'i', 'd', 0, 0, 0, 1, 0, 1, 'x', 1, 0, 0, 0, 0, 0};
	struct session_reg back;
	struct session_wire_sub s;

	ck_assert_int_eq(session_reg_decode(v1, sizeof(v1), &back), 0);
	ck_assert(back.persistent);
	ck_assert_uint_eq(back.instance, 9);
	ck_assert_mem_eq(back.node, "n", 1);
	ck_assert_mem_eq(back.id, "id", 2);
	ck_assert_int_eq(back.replay_from, 0);
	ck_assert_uint_eq(back.nsubs, 1);
	struct wire_in in = {back.subs, back.subs_len, false};
	ck_assert_int_eq(session_wire_sub_get(&in, &s), 0);
	ck_assert_mem_eq(s.filter, "x", 1);
	ck_assert_uint_eq(s.qos, 1);
}
END_TEST

/* A negative watermark is written as 0 (unknown), never as a huge one. */
START_TEST(test_registry_value_negative_mark)
{
	struct session_reg r = {.instance = 1, .node = "a", .node_len = 1, .id = "c", .id_len = 1,
				.replay_from = -5}, back;
	struct wire_out o = {0};

	session_reg_encode(&o, &r);
	ck_assert_int_eq(session_reg_decode(o.data, o.len, &back), 0);
	ck_assert_int_eq(back.replay_from, 0);
	mem_free(o.data);
}
END_TEST

/* What a taker needs to replay: only for a whole session flagged REPLAY with a watermark. */
START_TEST(test_session_replay_info)
{
	struct session_wire_head h = {.flags = SESSION_WIRE_F_MARK | SESSION_WIRE_F_REPLAY,
				      .replay_from = 42000, .nsubs = 1, .nmsgs = 1};
	struct wire_out o = {0};
	int64_t from = 0;
	const uint8_t *subs = NULL;
	size_t subs_len = 0;
	uint32_t nsubs = 0;
	bool exact = true;

	session_wire_head_put(&o, &h);
	session_wire_sub_put(&o, &(struct session_wire_sub){.filter = "a/#", .len = 3, .qos = 1});
	session_wire_msg_put(&o, &(struct session_wire_msg){.qos = 1, .msg_qos = 1, .topic = "a/b",
							   .topic_len = 3});
	session_wire_tail_put(&o, &h);
	ck_assert(session_wire_replay_info(o.data, o.len, &from, &exact, &subs, &subs_len, &nsubs));
	ck_assert_int_eq(from, 42000);
	ck_assert(!exact);
	ck_assert_uint_eq(nsubs, 1);
	ck_assert_uint_eq(subs_len, 2 + 3 + 1 + 1 + 4);
	ck_assert_mem_eq(subs + 2, "a/#", 3);
	ck_assert(!session_wire_replay_info(o.data, o.len - 1, &from, &exact, &subs, &subs_len,
					    &nsubs));
	o.data[3] = SESSION_WIRE_F_MARK; /* no replay asked */
	ck_assert(!session_wire_replay_info(o.data, o.len, &from, &exact, &subs, &subs_len, &nsubs));
	mem_free(o.data);
	/* A hand-over's window alone: exactly from when the giver let go. */
	o = (struct wire_out){0};
	h.flags = SESSION_WIRE_F_MARK | SESSION_WIRE_F_WINDOW;
	h.window_from = 43000;
	session_wire_head_put(&o, &h);
	session_wire_sub_put(&o, &(struct session_wire_sub){.filter = "a/#", .len = 3, .qos = 1});
	session_wire_msg_put(&o, &(struct session_wire_msg){.qos = 1, .msg_qos = 1, .topic = "a/b",
							   .topic_len = 3});
	session_wire_tail_put(&o, &h);
	ck_assert(session_wire_replay_info(o.data, o.len, &from, &exact, &subs, &subs_len, &nsubs));
	ck_assert_int_eq(from, 43000);
	ck_assert(exact);
	struct wire_in in = {o.data, o.len, false};
	struct session_wire_head back;
	ck_assert_int_eq(session_wire_head_get(&in, &back), 0);
	in = (struct wire_in){o.data + o.len - 16, 16, false};
	ck_assert_int_eq(session_wire_tail_get(&in, &back), 0);
	ck_assert_int_eq(back.replay_from, 42000);
	ck_assert_int_eq(back.window_from, 43000);
	mem_free(o.data);
}
END_TEST

/* The session's tail: replay_from after the messages, read only when flagged. */
START_TEST(test_session_tail_mark)
{
	struct session_wire_head h = {.flags = SESSION_WIRE_F_MARK | SESSION_WIRE_F_REPLAY,
				      .replay_from = 1764158400999, .nsubs = 0}, back;
	struct wire_out o = {0};
	struct wire_in in;

	session_wire_head_put(&o, &h);
	session_wire_tail_put(&o, &h);
	in = (struct wire_in){o.data, o.len, false};
	ck_assert_int_eq(session_wire_head_get(&in, &back), 0);
	ck_assert_uint_eq(back.flags, SESSION_WIRE_F_MARK | SESSION_WIRE_F_REPLAY);
	ck_assert_int_eq(session_wire_tail_get(&in, &back), 0);
	ck_assert_int_eq(back.replay_from, 1764158400999);
	ck_assert_uint_eq(in.left, 0);
	/* Cut short: refused. */
	in = (struct wire_in){o.data, o.len - 1, false};
	ck_assert_int_eq(session_wire_head_get(&in, &back), 0);
	ck_assert_int_eq(session_wire_tail_get(&in, &back), -1);
	mem_free(o.data);
	/* No flag: no tail, replay_from unknown. */
	o = (struct wire_out){0};
	h.flags = 0;
	session_wire_head_put(&o, &h);
	session_wire_tail_put(&o, &h);
	in = (struct wire_in){o.data, o.len, false};
	ck_assert_int_eq(session_wire_head_get(&in, &back), 0);
	ck_assert_int_eq(session_wire_tail_get(&in, &back), 0);
	ck_assert_int_eq(back.replay_from, 0);
	ck_assert_uint_eq(in.left, 0);
	mem_free(o.data);
}
END_TEST

START_TEST(test_registry_value_with_subscriptions)
{
	struct session_reg r = {.instance = 1, .persistent = true, .node = "b", .node_len = 1,
				.id = "c", .id_len = 1, .nsubs = 2}, back;
	struct wire_out o = {0};
	struct session_wire_sub s;

	session_reg_encode(&o, &r);
	session_wire_sub_put(&o, &(struct session_wire_sub){.filter = "x/#", .len = 3, .qos = 1,
							   .subid = 4});
	session_wire_sub_put(&o, &(struct session_wire_sub){.filter = "y", .len = 1, .qos = 2,
							   .options = 0x08});
	ck_assert_int_eq(session_reg_decode(o.data, o.len, &back), 0);
	ck_assert_uint_eq(back.nsubs, 2);
	struct wire_in in = {back.subs, back.subs_len, false};
	ck_assert_int_eq(session_wire_sub_get(&in, &s), 0);
	ck_assert_mem_eq(s.filter, "x/#", 3);
	ck_assert_uint_eq(s.subid, 4);
	ck_assert_int_eq(session_wire_sub_get(&in, &s), 0);
	ck_assert_mem_eq(s.filter, "y", 1);
	ck_assert_uint_eq(s.options, 0x08);
	ck_assert_uint_eq(in.left, 0);
	ck_assert_int_eq(session_wire_sub_get(&in, &s), -1);
	mem_free(o.data);
}
END_TEST

START_TEST(test_request_reply_roundtrip)
{
	struct session_req q = {.clean_start = true, .id = "abc", .id_len = 3}, back;
	struct wire_out o = {0};
	enum session_reply_status st;
	const uint8_t *sess;
	size_t slen;

	session_req_encode(&o, &q);
	ck_assert_int_eq(session_req_decode(o.data, o.len, &back), 0);
	ck_assert(back.clean_start);
	ck_assert_uint_eq(back.id_len, 3);
	ck_assert_mem_eq(back.id, "abc", 3);
	for (size_t n = 0; n < o.len; n++)
		ck_assert_int_eq(session_req_decode(o.data, n, &back), -1);
	o.data[o.len - 2] = '\0'; /* a NUL in the id */
	ck_assert_int_eq(session_req_decode(o.data, o.len, &back), -1);
	mem_free(o.data);

	o = (struct wire_out){0};
	session_reply_begin(&o, SESSION_REPLY_CLOSED);
	ck_assert_int_eq(session_reply_decode(o.data, o.len, &st, &sess, &slen), 0);
	ck_assert_int_eq(st, SESSION_REPLY_CLOSED);
	ck_assert_uint_eq(slen, 0);
	mem_free(o.data);

	/* MOVED must carry a session; an unknown status is refused. */
	o = (struct wire_out){0};
	session_reply_begin(&o, SESSION_REPLY_MOVED);
	ck_assert_int_eq(session_reply_decode(o.data, o.len, &st, &sess, &slen), -1);
	o.data[3] = 7;
	ck_assert_int_eq(session_reply_decode(o.data, o.len, &st, &sess, &slen), -1);
	mem_free(o.data);
}
END_TEST

/* ---- sessions ------------------------------------------------------------------------- */

static const uint8_t PROPS[] = {0x03, 0x00, 0x04, 't', 'e', 'x', 't'};

static void encode_sample(struct wire_out *o)
{
	struct session_wire_head h = {.expiry_interval = 3600, .protocol = 5, .last_mid = 77,
				      .nsubs = 2, .nqos2 = 2, .nmsgs = 3};

	session_wire_head_put(o, &h);
	session_wire_sub_put(o, &(struct session_wire_sub){.filter = "a/+/c", .len = 5, .qos = 1,
							   .options = 0x04, .subid = 9});
	session_wire_sub_put(o, &(struct session_wire_sub){.filter = "$share/g/x/#", .len = 12,
							   .qos = 2, .options = 0, .subid = 0});
	session_wire_qos2_put(o, 5);
	session_wire_qos2_put(o, 65535);
	session_wire_msg_put(o, &(struct session_wire_msg){.state = 1, .mid = 76, .qos = 1,
		.retain = 0, .subid = 9, .msg_qos = 2, .msg_retain = true, .expiry = 30,
		.topic = "a/b/c", .topic_len = 5, .props = PROPS, .props_len = sizeof(PROPS),
		.payload = (const uint8_t *)"hello", .payload_len = 5});
	session_wire_msg_put(o, &(struct session_wire_msg){.state = 0, .qos = 2,
		.msg_qos = 2, .topic = "x/y", .topic_len = 3,
		.cluster_instance = 0x1122334455667788ull, .cluster_seq = 4242});
	session_wire_msg_put(o, &(struct session_wire_msg){.state = 3, .mid = 77, .qos = 2,
		.msg_qos = 2, .topic = "x/z", .topic_len = 3, .payload = (const uint8_t *)"!",
		.payload_len = 1});
}

/* Reads the whole sample; -1 at the first malformed part. */
static int decode_all(const uint8_t *data, size_t len, struct session_wire_msg msgs[3])
{
	struct wire_in in = {data, len, false};
	struct session_wire_head h;
	struct session_wire_sub s;
	uint16_t mid;

	if (session_wire_head_get(&in, &h) < 0)
		return -1;
	for (uint32_t i = 0; i < h.nsubs; i++)
		if (session_wire_sub_get(&in, &s) < 0)
			return -1;
	for (uint32_t i = 0; i < h.nqos2; i++)
		if (session_wire_qos2_get(&in, &mid) < 0)
			return -1;
	for (uint32_t i = 0; i < h.nmsgs && i < 3; i++)
		if (session_wire_msg_get(&in, &msgs[i]) < 0)
			return -1;
	return 0;
}

START_TEST(test_session_roundtrip)
{
	struct wire_out o = {0};
	struct wire_in in;
	struct session_wire_head h;
	struct session_wire_sub s;
	struct session_wire_msg m;
	uint16_t mid;

	encode_sample(&o);
	ck_assert(!o.failed);
	in = (struct wire_in){o.data, o.len, false};
	ck_assert_int_eq(session_wire_head_get(&in, &h), 0);
	ck_assert_uint_eq(h.expiry_interval, 3600);
	ck_assert_uint_eq(h.protocol, 5);
	ck_assert_uint_eq(h.last_mid, 77);
	ck_assert_uint_eq(h.nsubs, 2);
	ck_assert_uint_eq(h.nqos2, 2);
	ck_assert_uint_eq(h.nmsgs, 3);
	ck_assert_int_eq(session_wire_sub_get(&in, &s), 0);
	ck_assert_uint_eq(s.len, 5);
	ck_assert_mem_eq(s.filter, "a/+/c", 5);
	ck_assert_uint_eq(s.qos, 1);
	ck_assert_uint_eq(s.options, 0x04);
	ck_assert_uint_eq(s.subid, 9);
	ck_assert_int_eq(session_wire_sub_get(&in, &s), 0);
	ck_assert_mem_eq(s.filter, "$share/g/x/#", 12);
	ck_assert_int_eq(session_wire_qos2_get(&in, &mid), 0);
	ck_assert_uint_eq(mid, 5);
	ck_assert_int_eq(session_wire_qos2_get(&in, &mid), 0);
	ck_assert_uint_eq(mid, 65535);
	ck_assert_int_eq(session_wire_msg_get(&in, &m), 0);
	ck_assert_uint_eq(m.state, 1);
	ck_assert_uint_eq(m.mid, 76);
	ck_assert_uint_eq(m.qos, 1);
	ck_assert_uint_eq(m.subid, 9);
	ck_assert_uint_eq(m.msg_qos, 2);
	ck_assert(m.msg_retain);
	ck_assert_uint_eq(m.expiry, 30);
	ck_assert_mem_eq(m.topic, "a/b/c", 5);
	ck_assert_uint_eq(m.props_len, sizeof(PROPS));
	ck_assert_mem_eq(m.props, PROPS, sizeof(PROPS));
	ck_assert_uint_eq(m.payload_len, 5);
	ck_assert_mem_eq(m.payload, "hello", 5);
	ck_assert_uint_eq(m.cluster_instance, 0); /* published where it was queued */
	ck_assert_int_eq(session_wire_msg_get(&in, &m), 0);
	ck_assert_uint_eq(m.state, 0);
	ck_assert_uint_eq(m.payload_len, 0);
	ck_assert(!m.msg_retain);
	ck_assert_uint_eq(m.cluster_instance, 0x1122334455667788ull);
	ck_assert_uint_eq(m.cluster_seq, 4242);
	ck_assert_int_eq(session_wire_msg_get(&in, &m), 0);
	ck_assert_uint_eq(m.state, 3);
	ck_assert_uint_eq(m.mid, 77);
	ck_assert_uint_eq(in.left, 0);
	mem_free(o.data);
}
END_TEST

START_TEST(test_session_truncated_refused)
{
	struct wire_out o = {0};
	struct session_wire_msg msgs[3];

	encode_sample(&o);
	ck_assert_int_eq(decode_all(o.data, o.len, msgs), 0);
	for (size_t n = 0; n < o.len; n++)
		ck_assert_msg(decode_all(o.data, n, msgs) == -1, "accepted %zu of %zu bytes", n,
			      o.len);
	mem_free(o.data);
}
END_TEST

START_TEST(test_session_damage_refused)
{
	struct wire_out o;
	struct wire_in in;
	struct session_wire_head h;
	struct session_wire_sub s;
	struct session_wire_msg m;
	uint16_t mid;

	/* A subscription with QoS 3, an empty filter, a packet id 0. */
	o = (struct wire_out){0};
	session_wire_sub_put(&o, &(struct session_wire_sub){.filter = "a", .len = 1, .qos = 3});
	in = (struct wire_in){o.data, o.len, false};
	ck_assert_int_eq(session_wire_sub_get(&in, &s), -1);
	mem_free(o.data);
	o = (struct wire_out){0};
	session_wire_sub_put(&o, &(struct session_wire_sub){.filter = "", .len = 0, .qos = 1});
	in = (struct wire_in){o.data, o.len, false};
	ck_assert_int_eq(session_wire_sub_get(&in, &s), -1);
	mem_free(o.data);
	o = (struct wire_out){0};
	session_wire_qos2_put(&o, 0);
	in = (struct wire_in){o.data, o.len, false};
	ck_assert_int_eq(session_wire_qos2_get(&in, &mid), -1);
	mem_free(o.data);
	/* Messages: in flight at QoS 0 or without a packet id, a wildcard topic. */
	static const struct session_wire_msg bad[] = {
		{.state = 1, .mid = 1, .qos = 0, .topic = "t", .topic_len = 1},
		{.state = 1, .mid = 0, .qos = 1, .topic = "t", .topic_len = 1},
		{.state = 0, .qos = 1, .topic = "t/#", .topic_len = 3},
		{.state = 9, .mid = 1, .qos = 1, .topic = "t", .topic_len = 1},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = (struct wire_out){0};
		session_wire_msg_put(&o, &bad[i]);
		in = (struct wire_in){o.data, o.len, false};
		ck_assert_msg(session_wire_msg_get(&in, &m) == -1, "accepted bad message %zu", i);
		mem_free(o.data);
	}
	/* QoS 0 may wait queued (queue_qos0_messages). */
	o = (struct wire_out){0};
	session_wire_msg_put(&o, &(struct session_wire_msg){.qos = 0, .topic = "t", .topic_len = 1});
	in = (struct wire_in){o.data, o.len, false};
	ck_assert_int_eq(session_wire_msg_get(&in, &m), 0);
	mem_free(o.data);
	/* Wrong magic or version. */
	o = (struct wire_out){0};
	encode_sample(&o);
	o.data[0] = 'X';
	in = (struct wire_in){o.data, o.len, false};
	ck_assert_int_eq(session_wire_head_get(&in, &h), -1);
	o.data[0] = 'S';
	o.data[2] = 2;
	in = (struct wire_in){o.data, o.len, false};
	ck_assert_int_eq(session_wire_head_get(&in, &h), -1);
	mem_free(o.data);
}
END_TEST

Suite *suite_cluster_session(void)
{
	Suite *s = suite_create("cluster_session");
	TCase *tc = tcase_create("keys");

	tcase_add_test(tc, test_key_examples);
	tcase_add_test(tc, test_key_roundtrip_every_byte);
	tcase_add_test(tc, test_key_decode_refuses);
	tcase_add_test(tc, test_key_long_ids_hashed);
	suite_add_tcase(s, tc);

	tc = tcase_create("messages");
	tcase_add_test(tc, test_registry_value_roundtrip);
	tcase_add_test(tc, test_registry_value_with_subscriptions);
	tcase_add_test(tc, test_registry_value_version1);
	tcase_add_test(tc, test_registry_value_negative_mark);
	tcase_add_test(tc, test_session_tail_mark);
	tcase_add_test(tc, test_session_replay_info);
	tcase_add_test(tc, test_request_reply_roundtrip);
	tcase_add_test(tc, test_session_roundtrip);
	tcase_add_test(tc, test_session_truncated_refused);
	tcase_add_test(tc, test_session_damage_refused);
	suite_add_tcase(s, tc);
	return s;
}
