/*
 * test_codec.c: unit tests of the packet encoders and decoders (codec_*.c).
 *
 * Round trips encode -> frame -> decode for every packet type in MQTT 3.1,
 * 3.1.1 and 5.0; byte-exact encodings checked against hand-written bytes
 * from the specifications' examples; a table of malformed and forbidden
 * bodies for every decoder; and a seeded random test that feeds 100 000
 * random and mutated byte strings to every decoder (meant for ASan builds:
 * every body sits at the very end of its own heap block).
 */
#include "config.h"

#include "tests.h"

#include "codec.h"

#include <midge/mqtt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define PROTOS {MQTT_PROTO_V31, MQTT_PROTO_V311, MQTT_PROTO_V5}
#define BODY(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})
#define NOBODY ((const uint8_t[]){0}), 0

static struct mqtt_bytes mb(const char *s)
{
	return (struct mqtt_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static struct mqtt_bytes mbn(const void *p, uint32_t n)
{
	return (struct mqtt_bytes){p, n};
}

static bool bytes_eq(struct mqtt_bytes b, const void *p, size_t n)
{
	return b.len == n && (n == 0 || memcmp(b.data, p, n) == 0);
}

static bool bytes_str(struct mqtt_bytes b, const char *s)
{
	return bytes_eq(b, s, strlen(s));
}

/* An encoded packet in a heap block of exactly its size. */
struct enc {
	uint8_t *buf;
	uint32_t size;
	struct pkt_writer w;
	struct mqtt_frame f;
	const uint8_t *body;
};

static struct pkt_writer *enc_begin(struct enc *e, uint32_t size)
{
	e->buf = malloc(size);
	ck_assert_ptr_nonnull(e->buf);
	memset(e->buf, 0xEE, size);
	e->size = size;
	pkt_writer_init(&e->w, e->buf, size);
	return &e->w;
}

/* Checks that the writer filled the block exactly and frames it. */
static void enc_end(struct enc *e, uint8_t type)
{
	ck_assert_msg(e->w.pos == e->size, "wrote %u bytes, sized %u", e->w.pos, e->size);
	ck_assert_int_eq(mqtt_frame_parse(e->buf, e->size, MQTT_MAX_REMAINING_LENGTH, &e->f),
			 MQTT_OK);
	ck_assert_uint_eq(e->f.type, type);
	ck_assert_uint_eq(e->f.header_len + e->f.remaining, e->size);
	ck_assert_uint_eq(e->f.header_len, 1 + mqtt_varint_size(e->f.remaining));
	e->body = e->buf + e->f.header_len;
}

static void enc_free(struct enc *e)
{
	free(e->buf);
	e->buf = NULL;
}

static void expect_bytes(const struct enc *e, const uint8_t *want, size_t n, const char *name)
{
	char got[512] = "";
	size_t off = 0;

	for (uint32_t i = 0; i < e->size && off + 4 < sizeof(got); i++)
		off += (size_t)snprintf(got + off, sizeof(got) - off, "%02X ", e->buf[i]);
	ck_assert_msg(e->size == n && memcmp(e->buf, want, n) == 0, "case %s: got %s", name, got);
}

/* --- CONNECT --- */

static const uint8_t connect_props[] = {
	0x11, 0x00, 0x00, 0x00, 0x78,                  /* session expiry 120 */
	0x21, 0x00, 0x0A,                              /* receive maximum 10 */
	0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',        /* user property */
	0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M',     /* authentication method */
	0x16, 0x00, 0x02, 0x01, 0x02,                  /* authentication data */
};
static const uint8_t will_props[] = {
	0x18, 0x00, 0x00, 0x00, 0x05,                  /* will delay 5 */
	0x03, 0x00, 0x04, 't', 'e', 'x', 't',          /* content type */
};

/* Asserts cond, naming the case (a local `name`) and the condition. */
#define CHECK(cond) ck_assert_msg((cond), "case %s: %s", name, #cond)

/* Case i: protocol (3 choices) x will / username / password / properties (16). */
static void connect_case(int i)
{
	static const int protos[] = PROTOS;
	static const uint8_t password[] = {'p', 0x00, 0xFF, 'w'}; /* binary, may hold 0 */
	int proto = protos[i / 16];
	int bits = i % 16;
	bool will = bits & 1, user = bits & 2, pass = bits & 4, props = bits & 8;
	struct mqtt_connect_out c = {
		.protocol = (uint8_t)proto,
		.clean_start = (i % 3) != 0,
		.keepalive = (uint16_t)(60 + i),
		.client_id = i % 5 ? mb("client-1") : mb(""),
		.username = user ? "user\xC3\xA9" : NULL,
		.password = pass ? mbn(password, sizeof(password)) : mbn(NULL, 0),
		.has_will = will,
		.will_qos = (uint8_t)(i % 3),
		.will_retain = (i % 4) >= 2,
		.will_topic = mb("will/topic"),
		.will_payload = mbn("\x00\x01gone", 6),
	};
	struct mqtt_connect d;
	struct enc e;
	enum mqtt_connect_err err;
	char name[96];

	snprintf(name, sizeof(name), "level %d%s%s%s%s", proto, will ? " will" : "",
		 user ? " user" : "", pass ? " password" : "", props ? " props" : "");
	if (proto == MQTT_PROTO_V5 && props) {
		c.props = mbn(connect_props, sizeof(connect_props));
		c.will_props = mbn(will_props, sizeof(will_props));
	}
	mqtt_write_connect(enc_begin(&e, mqtt_size_connect(&c)), &c);
	enc_end(&e, MQTT_CONNECT);
	CHECK(e.f.flags == 0);
	err = mqtt_decode_connect(e.body, e.f.remaining, e.f.flags, &d);
	if (proto != MQTT_PROTO_V5 && pass && !user) {
		/* A password needs a user name before MQTT 5 [MQTT-3.1.2-22]. */
		CHECK(err == MQTT_CONNECT_PROTOCOL);
		enc_free(&e);
		return;
	}
	CHECK(err == MQTT_CONNECT_OK);
	CHECK(d.protocol == proto);
	CHECK(bytes_str(d.protocol_name, proto == MQTT_PROTO_V31 ? "MQIsdp" : "MQTT"));
	CHECK(d.clean_start == c.clean_start);
	CHECK(d.keepalive == c.keepalive);
	CHECK(bytes_eq(d.client_id, c.client_id.data, c.client_id.len));
	CHECK(d.has_will == will);
	if (will) {
		CHECK(d.will.qos == c.will_qos);
		CHECK(d.will.retain == c.will_retain);
		CHECK(bytes_str(d.will.topic, "will/topic"));
		CHECK(bytes_eq(d.will.payload, "\x00\x01gone", 6));
	} else {
		CHECK(d.will.qos == 0);
		CHECK(!d.will.retain);
	}
	CHECK(d.has_username == user);
	if (user)
		CHECK(bytes_str(d.username, "user\xC3\xA9"));
	CHECK(d.has_password == pass);
	if (pass)
		CHECK(bytes_eq(d.password, password, sizeof(password)));
	if (proto == MQTT_PROTO_V5 && props) {
		CHECK(d.props.session_expiry == 120);
		CHECK(d.props.receive_maximum == 10);
		CHECK(d.props.user_property_count == 1);
		CHECK(bytes_str(d.props.auth_method, "SCRAM"));
		CHECK(bytes_eq(d.props.auth_data, "\x01\x02", 2));
		if (will) {
			CHECK(d.will.props.will_delay == 5);
			CHECK(bytes_str(d.will.props.content_type, "text"));
		}
	} else {
		CHECK(d.props.present == 0);
		CHECK(d.will.props.present == 0);
	}
	enc_free(&e);
}

START_TEST(test_connect_round_trip)
{
	for (int i = 0; i < 3 * 16; i++)
		connect_case(i);
}
END_TEST

/* --- CONNACK --- */

START_TEST(test_connack_round_trip)
{
	static const int protos[] = PROTOS;
	static const uint8_t props[] = {
		0x24, 0x01,                         /* maximum qos 1 */
		0x12, 0x00, 0x02, 'i', 'd',         /* assigned client identifier */
		0x22, 0x00, 0x05,                   /* topic alias maximum */
		0x1F, 0x00, 0x02, 'o', 'k',         /* reason string */
	};

	for (size_t p = 0; p < 3; p++) {
		for (int sp = 0; sp < 2; sp++) {
			for (int withprops = 0; withprops < 2; withprops++) {
				int proto = protos[p];
				struct mqtt_bytes pb = withprops ? mbn(props, sizeof(props)) : mbn(NULL, 0);
				uint8_t code = sp ? 0 : (proto == MQTT_PROTO_V5 ? 0x87 : 5);
				struct mqtt_connack d;
				struct enc e;

				mqtt_write_connack(enc_begin(&e, mqtt_size_connack(proto, pb)), proto,
						   sp, code, pb);
				enc_end(&e, MQTT_CONNACK);
				if (proto != MQTT_PROTO_V5)
					ck_assert_uint_eq(e.size, 4);
				ck_assert_int_eq(mqtt_decode_connack(e.body, e.f.remaining, e.f.flags,
								     proto, &d), MQTT_OK);
				ck_assert(d.session_present == (bool)sp);
				ck_assert_uint_eq(d.code, code);
				if (proto == MQTT_PROTO_V5 && withprops) {
					ck_assert_uint_eq(d.props.max_qos, 1);
					ck_assert(bytes_str(d.props.assigned_client_id, "id"));
					ck_assert_uint_eq(d.props.topic_alias_maximum, 5);
					ck_assert(bytes_str(d.props.reason_string, "ok"));
				} else {
					ck_assert_uint_eq(d.props.present, 0);
				}
				enc_free(&e);
			}
		}
	}
}
END_TEST

/* --- PUBLISH --- */

/* Case idx: protocol x qos x retain x dup x properties x payload size. */
static void publish_case(int idx)
{
	static const int protos[] = PROTOS;
	static const uint32_t sizes[] = {0, 5, 200, 20000};
	static const uint8_t raw[] = {
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b',   /* user property */
		0x03, 0x00, 0x04, 'j', 's', 'o', 'n',     /* content type */
	};
	static const uint32_t subids[] = {1, 268435455, 300};
	int proto = protos[idx % 3];
	uint8_t qos = (uint8_t)((idx / 3) % 3);
	bool retain = (idx / 9) % 2;
	bool dup = qos > 0 && (idx / 18) % 2;
	bool withprops = (idx / 36) % 2;
	uint32_t size = sizes[(idx / 72) % 4];
	uint8_t *payload = malloc(size ? size : 1);
	struct mqtt_props_out po = {
		.raw = mbn(raw, sizeof(raw)),
		.message_expiry = 3600,
		.has_message_expiry = true,
		.topic_alias = 3,
		.subscription_ids = subids,
		.subscription_id_count = 3,
	};
	struct mqtt_publish_out p = {
		.qos = qos,
		.dup = dup,
		.retain = retain,
		.packet_id = qos ? (uint16_t)(idx + 1) : 0,
		.topic = mb("sensors/\xE2\x82\xAC/temp"),
		.props = withprops ? &po : NULL,
	};
	struct mqtt_publish d;
	struct enc e, h;
	uint32_t hsize;
	char name[96];

	snprintf(name, sizeof(name), "level %d qos %u%s%s%s, %u bytes", proto, qos,
		 retain ? " retain" : "", dup ? " dup" : "", withprops ? " props" : "", size);
	ck_assert_ptr_nonnull(payload);
	for (uint32_t i = 0; i < size; i++)
		payload[i] = (uint8_t)(i * 7);
	p.payload = mbn(payload, size);
	mqtt_write_publish(enc_begin(&e, mqtt_size_publish(&p, proto)), &p, proto);
	enc_end(&e, MQTT_PUBLISH);
	CHECK(e.f.flags == ((dup ? 8 : 0) | qos << 1 | (retain ? 1 : 0)));
	CHECK(mqtt_decode_publish(e.body, e.f.remaining, e.f.flags, proto, &d) == MQTT_OK);
	CHECK(d.qos == qos);
	CHECK(d.dup == dup);
	CHECK(d.retain == retain);
	CHECK(d.packet_id == p.packet_id);
	CHECK(bytes_eq(d.topic, p.topic.data, p.topic.len));
	CHECK(bytes_eq(d.payload, payload, size));
	CHECK(d.payload.data + d.payload.len == e.buf + e.size);
	if (proto == MQTT_PROTO_V5 && withprops) {
		CHECK(d.props.user_property_count == 1);
		CHECK(bytes_str(d.props.content_type, "json"));
		CHECK(d.props.message_expiry == 3600);
		CHECK(d.props.topic_alias == 3);
		CHECK(d.props.subscription_id == 1);
		CHECK(d.props.subscription_id_count == 3);
	} else {
		CHECK(d.props.present == 0);
	}

	/* Header and payload written apart give the same bytes. */
	hsize = mqtt_size_publish_header(&p, proto);
	CHECK(hsize + size == e.size);
	enc_begin(&h, e.size);
	mqtt_write_publish_header(&h.w, &p, proto);
	CHECK(h.w.pos == hsize);
	pkt_write_raw(&h.w, payload, size);
	CHECK(memcmp(h.buf, e.buf, e.size) == 0);
	enc_free(&h);
	enc_free(&e);
	free(payload);
}

START_TEST(test_publish_round_trip)
{
	for (int i = 0; i < 3 * 3 * 2 * 2 * 2 * 4; i++)
		publish_case(i);
}
END_TEST

/* --- PUBACK, PUBREC, PUBREL, PUBCOMP --- */

START_TEST(test_ack_round_trip)
{
	static const int protos[] = PROTOS;
	static const uint8_t types[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP};
	static const uint8_t user[] = {0x26, 0x00, 0x01, 'k', 0x00, 0x00};
	const struct mqtt_props_out empty = {0};
	const struct mqtt_props_out reason = {.reason_string = mb("no one")};
	const struct mqtt_props_out withuser = {.raw = mbn(user, sizeof(user))};
	struct {
		const char *name;
		uint8_t reason;
		const struct mqtt_props_out *props;
		uint32_t v5_remaining;
	} forms[] = {
		{"short", 0, NULL, 2},
		{"short, empty props", 0, &empty, 2},
		{"reason only", 0x10, NULL, 3},
		{"reason, empty props", 0x92, &empty, 3},
		{"reason and reason string", 0x80, &reason, 3 + 1 + 3 + 6},
		{"success with user property", 0, &withuser, 3 + 1 + sizeof(user)},
	};

	for (size_t t = 0; t < 4; t++) {
		for (size_t p = 0; p < 3; p++) {
			for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
				int proto = protos[p];
				uint16_t id = (uint16_t)(0x1234 + f);
				struct mqtt_ack d;
				struct enc e;
				uint32_t want = proto == MQTT_PROTO_V5 ? forms[f].v5_remaining : 2;

				mqtt_write_ack(enc_begin(&e, mqtt_size_ack(proto, forms[f].reason,
									   forms[f].props)),
					       types[t], id, proto, forms[f].reason, forms[f].props);
				enc_end(&e, types[t]);
				ck_assert_msg(e.f.remaining == want, "case %s type %u proto %d: %u",
					      forms[f].name, types[t], proto, e.f.remaining);
				ck_assert_uint_eq(e.f.flags, types[t] == MQTT_PUBREL ? 2 : 0);
				ck_assert_int_eq(mqtt_decode_ack(types[t], e.body, e.f.remaining,
								 e.f.flags, proto, &d), MQTT_OK);
				ck_assert_uint_eq(d.packet_id, id);
				ck_assert_uint_eq(d.reason, proto == MQTT_PROTO_V5 ? forms[f].reason : 0);
				if (proto == MQTT_PROTO_V5 && forms[f].props == &reason)
					ck_assert(bytes_str(d.props.reason_string, "no one"));
				if (proto == MQTT_PROTO_V5 && forms[f].props == &withuser)
					ck_assert_uint_eq(d.props.user_property_count, 1);
				enc_free(&e);
			}
		}
	}
}
END_TEST

/* --- SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK --- */

START_TEST(test_subscribe_round_trip)
{
	static const int protos[] = PROTOS;
	const struct mqtt_sub_entry entries[] = {
		{mb("a/b"), {0, false, false, 0}},
		{mb("c/+/d"), {1, true, false, 1}},
		{mb("#"), {2, false, true, 2}},
		{mb("$share/g/x/#"), {1, true, true, 0}},
	};
	static const uint32_t subids[] = {0, 1, 12345, 268435455};

	for (size_t p = 0; p < 3; p++) {
		for (size_t s = 0; s < 4; s++) {
			int proto = protos[p];
			struct mqtt_subscribe d;
			struct mqtt_bytes filter;
			struct mqtt_sub_options o;
			struct enc e;
			uint32_t pos = 0, n = 0;

			mqtt_write_subscribe(enc_begin(&e, mqtt_size_subscribe(proto, entries, 4,
										subids[s])),
					     proto, 0xBEEF, entries, 4, subids[s]);
			enc_end(&e, MQTT_SUBSCRIBE);
			ck_assert_uint_eq(e.f.flags, 2);
			ck_assert_int_eq(mqtt_decode_subscribe(e.body, e.f.remaining, e.f.flags, proto,
							       &d), MQTT_OK);
			ck_assert_uint_eq(d.packet_id, 0xBEEF);
			ck_assert_uint_eq(d.count, 4);
			if (proto == MQTT_PROTO_V5 && subids[s]) {
				ck_assert_uint_eq(d.props.subscription_id, subids[s]);
				ck_assert_uint_eq(d.props.subscription_id_count, 1);
			} else {
				ck_assert_uint_eq(d.props.present, 0);
			}
			while (mqtt_subscribe_next(&d, proto, &pos, &filter, &o)) {
				const struct mqtt_sub_entry *w = &entries[n];
				bool v5 = proto == MQTT_PROTO_V5;

				ck_assert_uint_lt(n, 4);
				ck_assert(bytes_eq(filter, w->filter.data, w->filter.len));
				ck_assert_uint_eq(o.qos, w->opts.qos);
				ck_assert(o.no_local == (v5 && w->opts.no_local));
				ck_assert(o.retain_as_published == (v5 && w->opts.retain_as_published));
				ck_assert_uint_eq(o.retain_handling, v5 ? w->opts.retain_handling : 0);
				n++;
			}
			ck_assert_uint_eq(n, 4);
			ck_assert_uint_eq(pos, d.entries.len);
			enc_free(&e);
		}
	}
}
END_TEST

START_TEST(test_suback_round_trip)
{
	static const int protos[] = PROTOS;
	static const uint8_t codes3[] = {0x00, 0x01, 0x02, 0x80};
	static const uint8_t codes5[] = {0x00, 0x01, 0x02, 0x80, 0x87, 0xA2};
	static const uint8_t ucodes5[] = {0x00, 0x11, 0x87};
	const struct mqtt_props_out reason = {.reason_string = mb("partly")};

	for (size_t p = 0; p < 3; p++) {
		int proto = protos[p];
		bool v5 = proto == MQTT_PROTO_V5;
		const uint8_t *codes = v5 ? codes5 : codes3;
		uint32_t n = v5 ? sizeof(codes5) : sizeof(codes3);
		struct mqtt_suback d;
		struct enc e;

		for (int withprops = 0; withprops < 2; withprops++) {
			const struct mqtt_props_out *po = withprops ? &reason : NULL;

			mqtt_write_suback(enc_begin(&e, mqtt_size_suback(MQTT_SUBACK, proto, n, po)),
					  MQTT_SUBACK, 7, proto, codes, n, po);
			enc_end(&e, MQTT_SUBACK);
			ck_assert_int_eq(mqtt_decode_suback(MQTT_SUBACK, e.body, e.f.remaining,
							    e.f.flags, proto, &d), MQTT_OK);
			ck_assert_uint_eq(d.packet_id, 7);
			ck_assert(bytes_eq(d.codes, codes, n));
			if (v5 && withprops)
				ck_assert(bytes_str(d.props.reason_string, "partly"));
			enc_free(&e);

			/* UNSUBACK: codes only in MQTT 5. */
			mqtt_write_suback(enc_begin(&e, mqtt_size_suback(MQTT_UNSUBACK, proto,
									 sizeof(ucodes5), po)),
					  MQTT_UNSUBACK, 8, proto, ucodes5, sizeof(ucodes5), po);
			enc_end(&e, MQTT_UNSUBACK);
			if (!v5)
				ck_assert_uint_eq(e.f.remaining, 2);
			ck_assert_int_eq(mqtt_decode_suback(MQTT_UNSUBACK, e.body, e.f.remaining,
							    e.f.flags, proto, &d), MQTT_OK);
			ck_assert_uint_eq(d.packet_id, 8);
			if (v5)
				ck_assert(bytes_eq(d.codes, ucodes5, sizeof(ucodes5)));
			else
				ck_assert_uint_eq(d.codes.len, 0);
			enc_free(&e);
		}
	}
}
END_TEST

START_TEST(test_unsubscribe_round_trip)
{
	static const int protos[] = PROTOS;
	const struct mqtt_bytes filters[] = {mb("a/b"), mb("$share/g/x/#"), mb("+/\xC3\xA9/#")};

	for (size_t p = 0; p < 3; p++) {
		int proto = protos[p];
		struct mqtt_unsubscribe d;
		struct mqtt_bytes f;
		struct enc e;
		uint32_t pos = 0, n = 0;

		mqtt_write_unsubscribe(enc_begin(&e, mqtt_size_unsubscribe(proto, filters, 3)), proto,
				       42, filters, 3);
		enc_end(&e, MQTT_UNSUBSCRIBE);
		ck_assert_uint_eq(e.f.flags, 2);
		ck_assert_int_eq(mqtt_decode_unsubscribe(e.body, e.f.remaining, e.f.flags, proto, &d),
				 MQTT_OK);
		ck_assert_uint_eq(d.packet_id, 42);
		ck_assert_uint_eq(d.count, 3);
		while (mqtt_unsubscribe_next(&d, &pos, &f)) {
			ck_assert_uint_lt(n, 3);
			ck_assert(bytes_eq(f, filters[n].data, filters[n].len));
			n++;
		}
		ck_assert_uint_eq(n, 3);
		enc_free(&e);
	}
}
END_TEST

/* SUBSCRIBE and UNSUBSCRIBE with a property block (a client's -D options). */
START_TEST(test_sub_unsub_props_round_trip)
{
	static const int protos[] = PROTOS;
	const struct mqtt_sub_entry entries[] = {
		{mb("a/+"), {1, true, false, 2}},
		{mb("b/#"), {2, false, true, 0}},
	};
	const struct mqtt_bytes filters[] = {mb("a/+"), mb("b/#")};
	static const uint8_t user[] = {MQTT_PROP_USER_PROPERTY, 0, 1, 'k', 0, 2, 'v', 'w'};
	static const uint32_t subid[] = {77};
	const struct mqtt_props_out props = {.raw = {user, sizeof(user)},
					     .subscription_ids = subid,
					     .subscription_id_count = 1};
	const struct mqtt_props_out uprops = {.raw = {user, sizeof(user)}};

	for (size_t p = 0; p < 3; p++) {
		for (int withprops = 0; withprops < 2; withprops++) {
			int proto = protos[p];
			bool v5 = proto == MQTT_PROTO_V5;
			struct mqtt_subscribe d;
			struct mqtt_unsubscribe u;
			struct mqtt_bytes filter;
			struct mqtt_sub_options o;
			struct mqtt_prop prop;
			struct enc e;
			uint32_t pos = 0, n = 0;

			mqtt_write_subscribe_props(enc_begin(&e, mqtt_size_subscribe_props(proto, entries,
					2, withprops ? &props : NULL)), proto, 9, entries, 2,
					withprops ? &props : NULL);
			enc_end(&e, MQTT_SUBSCRIBE);
			ck_assert_uint_eq(e.f.flags, 2);
			ck_assert_int_eq(mqtt_decode_subscribe(e.body, e.f.remaining, e.f.flags, proto,
							       &d), MQTT_OK);
			ck_assert_uint_eq(d.packet_id, 9);
			ck_assert_uint_eq(d.count, 2);
			if (v5 && withprops) {
				ck_assert_uint_eq(d.props.subscription_id, 77);
				ck_assert_uint_eq(d.props.user_property_count, 1);
				ck_assert(mqtt_props_next(&d.props, &pos, &prop));
				ck_assert_uint_eq(prop.id, MQTT_PROP_USER_PROPERTY);
				ck_assert(bytes_str(prop.data, "k") && bytes_str(prop.data2, "vw"));
				pos = 0;
			} else {
				ck_assert_uint_eq(d.props.present, 0);
			}
			while (mqtt_subscribe_next(&d, proto, &pos, &filter, &o)) {
				ck_assert_uint_lt(n, 2);
				ck_assert(bytes_eq(filter, entries[n].filter.data, entries[n].filter.len));
				ck_assert_uint_eq(o.qos, entries[n].opts.qos);
				ck_assert(o.no_local == (v5 && entries[n].opts.no_local));
				ck_assert_uint_eq(o.retain_handling, v5 ? entries[n].opts.retain_handling : 0);
				n++;
			}
			ck_assert_uint_eq(n, 2);
			enc_free(&e);

			/* Without properties the bytes are mqtt_write_subscribe()'s. */
			if (!withprops) {
				struct enc e2;

				mqtt_write_subscribe_props(enc_begin(&e, mqtt_size_subscribe_props(proto,
						entries, 2, NULL)), proto, 9, entries, 2, NULL);
				mqtt_write_subscribe(enc_begin(&e2, mqtt_size_subscribe(proto, entries, 2,
						0)), proto, 9, entries, 2, 0);
				ck_assert_uint_eq(e.size, e2.size);
				ck_assert_mem_eq(e.buf, e2.buf, e.size);
				enc_free(&e);
				enc_free(&e2);
			}

			mqtt_write_unsubscribe_props(enc_begin(&e, mqtt_size_unsubscribe_props(proto,
					filters, 2, withprops ? &uprops : NULL)), proto, 10, filters, 2,
					withprops ? &uprops : NULL);
			enc_end(&e, MQTT_UNSUBSCRIBE);
			ck_assert_uint_eq(e.f.flags, 2);
			ck_assert_int_eq(mqtt_decode_unsubscribe(e.body, e.f.remaining, e.f.flags, proto,
								 &u), MQTT_OK);
			ck_assert_uint_eq(u.packet_id, 10);
			ck_assert_uint_eq(u.count, 2);
			ck_assert_uint_eq(u.props.user_property_count, v5 && withprops ? 1 : 0);
			pos = n = 0;
			while (mqtt_unsubscribe_next(&u, &pos, &filter)) {
				ck_assert(bytes_eq(filter, filters[n].data, filters[n].len));
				n++;
			}
			ck_assert_uint_eq(n, 2);
			enc_free(&e);
		}
	}
}
END_TEST

/* --- PINGREQ, PINGRESP, DISCONNECT, AUTH --- */

START_TEST(test_ping_disconnect_auth_round_trip)
{
	static const int protos[] = PROTOS;
	static const uint8_t auth_raw[] = {
		0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M',
		0x16, 0x00, 0x03, 0x01, 0x02, 0x03,
	};
	const struct mqtt_props_out bye = {.reason_string = mb("bye")};
	const struct mqtt_props_out auth = {.raw = mbn(auth_raw, sizeof(auth_raw))};
	struct mqtt_reason_packet d;
	struct enc e;

	for (uint8_t t = MQTT_PINGREQ; t <= MQTT_PINGRESP; t++) {
		mqtt_write_empty(enc_begin(&e, 2), t);
		enc_end(&e, t);
		ck_assert_uint_eq(e.buf[0], t << 4);
		ck_assert_uint_eq(e.buf[1], 0);
		ck_assert_int_eq(mqtt_decode_empty(e.f.remaining, e.f.flags), MQTT_OK);
		enc_free(&e);
	}
	for (size_t p = 0; p < 3; p++) {
		int proto = protos[p];
		bool v5 = proto == MQTT_PROTO_V5;

		/* Normal disconnection: two bytes in every version. */
		mqtt_write_reason_packet(enc_begin(&e, mqtt_size_reason_packet(proto, 0, NULL)),
					 MQTT_DISCONNECT, proto, 0, NULL);
		enc_end(&e, MQTT_DISCONNECT);
		ck_assert_uint_eq(e.size, 2);
		ck_assert_int_eq(mqtt_decode_disconnect(e.body, e.f.remaining, e.f.flags, proto, &d),
				 MQTT_OK);
		ck_assert_uint_eq(d.reason, 0);
		enc_free(&e);

		/* With a reason code and properties (dropped before MQTT 5). */
		mqtt_write_reason_packet(enc_begin(&e, mqtt_size_reason_packet(proto, 0x8E, &bye)),
					 MQTT_DISCONNECT, proto, 0x8E, &bye);
		enc_end(&e, MQTT_DISCONNECT);
		ck_assert_uint_eq(e.f.remaining, v5 ? 1 + 1 + 3 + 3 : 0);
		ck_assert_int_eq(mqtt_decode_disconnect(e.body, e.f.remaining, e.f.flags, proto, &d),
				 MQTT_OK);
		ck_assert_uint_eq(d.reason, v5 ? 0x8E : 0);
		if (v5)
			ck_assert(bytes_str(d.props.reason_string, "bye"));
		enc_free(&e);
	}

	/* AUTH exists in MQTT 5 only. */
	mqtt_write_reason_packet(enc_begin(&e, mqtt_size_reason_packet(MQTT_PROTO_V5, 0x18, &auth)),
				 MQTT_AUTH, MQTT_PROTO_V5, 0x18, &auth);
	enc_end(&e, MQTT_AUTH);
	ck_assert_int_eq(mqtt_decode_auth(e.body, e.f.remaining, e.f.flags, MQTT_PROTO_V5, &d),
			 MQTT_OK);
	ck_assert_uint_eq(d.reason, 0x18);
	ck_assert(bytes_str(d.props.auth_method, "SCRAM"));
	ck_assert(bytes_eq(d.props.auth_data, "\x01\x02\x03", 3));
	enc_free(&e);
	mqtt_write_reason_packet(enc_begin(&e, mqtt_size_reason_packet(MQTT_PROTO_V5, 0, NULL)),
				 MQTT_AUTH, MQTT_PROTO_V5, 0, NULL);
	enc_end(&e, MQTT_AUTH);
	ck_assert_uint_eq(e.size, 2);
	ck_assert_int_eq(mqtt_decode_auth(e.body, e.f.remaining, e.f.flags, MQTT_PROTO_V5, &d),
			 MQTT_OK);
	enc_free(&e);
}
END_TEST

START_TEST(test_required_flags)
{
	for (uint8_t t = 0; t < 16; t++) {
		uint8_t want = (t == MQTT_PUBREL || t == MQTT_SUBSCRIBE || t == MQTT_UNSUBSCRIBE) ? 2 : 0;
		ck_assert_msg(mqtt_required_flags(t) == want, "type %u", t);
	}
}
END_TEST

/* --- byte-exact encodings (specification examples) --- */

START_TEST(test_bytes_connect)
{
	struct enc e;
	/* MQTT 3.1.1: clean session, keep alive 60, client id "midge". */
	const struct mqtt_connect_out c311 = {
		.protocol = MQTT_PROTO_V311, .clean_start = true, .keepalive = 60,
		.client_id = mb("midge"),
	};
	const uint8_t want311[] = {0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00,
				   0x3C, 0x00, 0x05, 'm', 'i', 'd', 'g', 'e'};
	/* MQTT 3.1: "MQIsdp", level 3. */
	const struct mqtt_connect_out c31 = {
		.protocol = MQTT_PROTO_V31, .clean_start = true, .keepalive = 10,
		.client_id = mb("c"),
	};
	const uint8_t want31[] = {0x10, 0x0F, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03,
				  0x02, 0x00, 0x0A, 0x00, 0x01, 'c'};
	/* MQTT 5.0 section 3.1.2.11 example: flags C2, keep alive 10, session expiry 10. */
	static const uint8_t props5[] = {0x11, 0x00, 0x00, 0x00, 0x0A};
	const struct mqtt_connect_out c5 = {
		.protocol = MQTT_PROTO_V5, .clean_start = true, .keepalive = 10,
		.client_id = mb("c"), .username = "u", .password = mbn("p", 1),
		.props = mbn(props5, sizeof(props5)),
	};
	const uint8_t want5[] = {0x10, 0x19, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xC2, 0x00,
				 0x0A, 0x05, 0x11, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x01, 'c',
				 0x00, 0x01, 'u', 0x00, 0x01, 'p'};
	/* MQTT 3.1.1 figure 3.6 flags CE: user, password, will qos 1, will, clean session. */
	const struct mqtt_connect_out cwill = {
		.protocol = MQTT_PROTO_V311, .clean_start = true, .keepalive = 10,
		.client_id = mb("c"), .username = "u", .password = mbn("p", 1),
		.has_will = true, .will_qos = 1, .will_topic = mb("w"), .will_payload = mb("x"),
	};
	const uint8_t wantwill[] = {0x10, 0x19, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xCE, 0x00,
				    0x0A, 0x00, 0x01, 'c', 0x00, 0x01, 'w', 0x00, 0x01, 'x',
				    0x00, 0x01, 'u', 0x00, 0x01, 'p'};

	mqtt_write_connect(enc_begin(&e, mqtt_size_connect(&c311)), &c311);
	enc_end(&e, MQTT_CONNECT);
	expect_bytes(&e, want311, sizeof(want311), "connect 3.1.1");
	enc_free(&e);
	mqtt_write_connect(enc_begin(&e, mqtt_size_connect(&c31)), &c31);
	enc_end(&e, MQTT_CONNECT);
	expect_bytes(&e, want31, sizeof(want31), "connect 3.1");
	enc_free(&e);
	mqtt_write_connect(enc_begin(&e, mqtt_size_connect(&c5)), &c5);
	enc_end(&e, MQTT_CONNECT);
	expect_bytes(&e, want5, sizeof(want5), "connect 5");
	enc_free(&e);
	mqtt_write_connect(enc_begin(&e, mqtt_size_connect(&cwill)), &cwill);
	enc_end(&e, MQTT_CONNECT);
	expect_bytes(&e, wantwill, sizeof(wantwill), "connect with will");
	enc_free(&e);
}
END_TEST

/* Encodes example i of test_bytes_other's table. */
static void encode_example(size_t i, struct enc *e)
{
	const struct mqtt_publish_out pub = {
		.qos = 1, .packet_id = 10, .topic = mb("a/b"), .payload = mb("hi"),
	};
	const struct mqtt_publish_out pub0 = {.retain = true, .topic = mb("a/b")};
	const struct mqtt_publish_out pub5 = {.qos = 2, .dup = true, .packet_id = 1,
					      .topic = mb("t"), .payload = mb("x")};
	const struct mqtt_sub_entry subs[] = {{mb("a/b"), {1, 0, 0, 0}}, {mb("c/d"), {2, 0, 0, 0}}};
	const struct mqtt_sub_entry sub5[] = {{mb("a/b"), {1, true, true, 1}}};
	const struct mqtt_bytes unsubs[] = {mb("a/b"), mb("c/d")};
	static const uint8_t codes[] = {0x00, 0x01, 0x02, 0x80};
	const struct mqtt_bytes none = mbn(NULL, 0);

	switch (i) {
	case 0: mqtt_write_publish(enc_begin(e, mqtt_size_publish(&pub, 4)), &pub, 4); break;
	case 1: mqtt_write_publish(enc_begin(e, mqtt_size_publish(&pub0, 4)), &pub0, 4); break;
	case 2: mqtt_write_publish(enc_begin(e, mqtt_size_publish(&pub5, 5)), &pub5, 5); break;
	case 3: case 4: case 5: case 6:
		mqtt_write_ack(enc_begin(e, mqtt_size_ack(4, 0, NULL)), (uint8_t)(MQTT_PUBACK + i - 3),
			       10, 4, 0, NULL);
		break;
	case 7:
		mqtt_write_ack(enc_begin(e, mqtt_size_ack(5, 0x10, NULL)), MQTT_PUBACK, 10, 5, 0x10,
			       NULL);
		break;
	case 8:
		mqtt_write_subscribe(enc_begin(e, mqtt_size_subscribe(4, subs, 2, 0)), 4, 10, subs, 2,
				     0);
		break;
	case 9:
		mqtt_write_subscribe(enc_begin(e, mqtt_size_subscribe(5, sub5, 1, 1)), 5, 10, sub5, 1,
				     1);
		break;
	case 10:
		mqtt_write_suback(enc_begin(e, mqtt_size_suback(MQTT_SUBACK, 4, 4, NULL)), MQTT_SUBACK,
				  10, 4, codes, 4, NULL);
		break;
	case 11:
		mqtt_write_suback(enc_begin(e, mqtt_size_suback(MQTT_SUBACK, 5, 4, NULL)), MQTT_SUBACK,
				  10, 5, codes, 4, NULL);
		break;
	case 12:
		mqtt_write_unsubscribe(enc_begin(e, mqtt_size_unsubscribe(4, unsubs, 2)), 4, 10,
				       unsubs, 2);
		break;
	case 13:
		mqtt_write_unsubscribe(enc_begin(e, mqtt_size_unsubscribe(5, unsubs, 2)), 5, 10,
				       unsubs, 2);
		break;
	case 14:
		mqtt_write_suback(enc_begin(e, mqtt_size_suback(MQTT_UNSUBACK, 4, 0, NULL)),
				  MQTT_UNSUBACK, 10, 4, NULL, 0, NULL);
		break;
	case 15: mqtt_write_connack(enc_begin(e, mqtt_size_connack(4, none)), 4, false, 0, none); break;
	case 16: mqtt_write_connack(enc_begin(e, mqtt_size_connack(4, none)), 4, true, 0, none); break;
	case 17: mqtt_write_connack(enc_begin(e, mqtt_size_connack(5, none)), 5, false, 0, none); break;
	case 18: mqtt_write_empty(enc_begin(e, 2), MQTT_PINGREQ); break;
	case 19: mqtt_write_empty(enc_begin(e, 2), MQTT_PINGRESP); break;
	case 20:
		mqtt_write_reason_packet(enc_begin(e, mqtt_size_reason_packet(4, 0, NULL)),
					 MQTT_DISCONNECT, 4, 0, NULL);
		break;
	case 21:
		mqtt_write_reason_packet(enc_begin(e, mqtt_size_reason_packet(5, 0x8E, NULL)),
					 MQTT_DISCONNECT, 5, 0x8E, NULL);
		break;
	case 22:
		mqtt_write_reason_packet(enc_begin(e, mqtt_size_reason_packet(5, 0x18, NULL)),
					 MQTT_AUTH, 5, 0x18, NULL);
		break;
	default:
		ck_abort_msg("no encoder for example %zu", i);
	}
}

START_TEST(test_bytes_other)
{
	const struct {
		const char *name;
		const uint8_t *want;
		size_t len;
	} c[] = {
		/* 3.1.1 figure 3.11: topic "a/b", packet id 10. */
		{"publish qos 1", BODY(0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i')},
		{"publish qos 0 retain", BODY(0x31, 0x05, 0x00, 0x03, 'a', '/', 'b')},
		{"publish v5 qos 2 dup", BODY(0x3C, 0x07, 0x00, 0x01, 't', 0x00, 0x01, 0x00, 'x')},
		{"puback", BODY(0x40, 0x02, 0x00, 0x0A)},
		{"pubrec", BODY(0x50, 0x02, 0x00, 0x0A)},
		{"pubrel", BODY(0x62, 0x02, 0x00, 0x0A)},
		{"pubcomp", BODY(0x70, 0x02, 0x00, 0x0A)},
		{"puback v5 no matching subscribers", BODY(0x40, 0x03, 0x00, 0x0A, 0x10)},
		/* 3.1.1 figure 3.22. */
		{"subscribe", BODY(0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x00, 0x03,
				   'c', '/', 'd', 0x02)},
		{"subscribe v5", BODY(0x82, 0x0B, 0x00, 0x0A, 0x02, 0x0B, 0x01, 0x00, 0x03, 'a', '/',
				      'b', 0x1D)},
		/* 3.1.1 figure 3.26. */
		{"suback", BODY(0x90, 0x06, 0x00, 0x0A, 0x00, 0x01, 0x02, 0x80)},
		{"suback v5", BODY(0x90, 0x07, 0x00, 0x0A, 0x00, 0x00, 0x01, 0x02, 0x80)},
		/* 3.1.1 figure 3.30. */
		{"unsubscribe", BODY(0xA2, 0x0C, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x03, 'c',
				     '/', 'd')},
		{"unsubscribe v5", BODY(0xA2, 0x0D, 0x00, 0x0A, 0x00, 0x00, 0x03, 'a', '/', 'b', 0x00,
					0x03, 'c', '/', 'd')},
		{"unsuback", BODY(0xB0, 0x02, 0x00, 0x0A)},
		{"connack", BODY(0x20, 0x02, 0x00, 0x00)},
		{"connack session present", BODY(0x20, 0x02, 0x01, 0x00)},
		{"connack v5", BODY(0x20, 0x03, 0x00, 0x00, 0x00)},
		{"pingreq", BODY(0xC0, 0x00)},
		{"pingresp", BODY(0xD0, 0x00)},
		{"disconnect", BODY(0xE0, 0x00)},
		{"disconnect v5 session taken over", BODY(0xE0, 0x01, 0x8E)},
		{"auth v5 continue", BODY(0xF0, 0x01, 0x18)},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct enc e;

		encode_example(i, &e);
		ck_assert_msg(e.w.pos == e.size, "case %s: wrote %u of %u", c[i].name, e.w.pos,
			      e.size);
		expect_bytes(&e, c[i].want, c[i].len, c[i].name);
		enc_free(&e);
	}
}
END_TEST

/* --- malformed and forbidden inputs --- */

enum dec {
	D_CONNECT, D_CONNACK, D_PUBLISH, D_ACK, D_SUBSCRIBE, D_UNSUBSCRIBE, D_SUBACK,
	D_DISCONNECT, D_AUTH, D_EMPTY,
};

struct bad_case {
	const char *name;
	enum dec dec;
	uint8_t type;   /* for D_ACK and D_SUBACK */
	uint8_t flags;
	int proto;      /* ignored by D_CONNECT */
	const uint8_t *body;
	size_t len;
	int rc;         /* enum mqtt_connect_err for D_CONNECT */
};

#define NAME311 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04
#define NAME5 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05
#define NAME31 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03
#define KA 0x00, 0x3C
#define CID 0x00, 0x01, 'c'
#define TAB 0x00, 0x03, 'a', '/', 'b'
#define ID1 0x00, 0x01

#define C_OK MQTT_CONNECT_OK
#define C_NAME MQTT_CONNECT_BAD_NAME
#define C_VER MQTT_CONNECT_BAD_VERSION
#define C_MAL MQTT_CONNECT_MALFORMED
#define C_PROTO MQTT_CONNECT_PROTOCOL
#define OK MQTT_OK
#define MAL MQTT_ERR_MALFORMED
#define PROTO MQTT_ERR_PROTOCOL

static const struct bad_case bad_cases[] = {
	/* CONNECT: baselines first, then one defect each. */
	{"connect 3.1.1 ok", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x02, KA, CID), C_OK},
	{"connect 3.1 ok", D_CONNECT, 0, 0, 0, BODY(NAME31, 0x02, KA, CID), C_OK},
	{"connect 5 ok", D_CONNECT, 0, 0, 0, BODY(NAME5, 0x02, KA, 0x00, CID), C_OK},
	{"connect will qos 2 retain ok", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0x36, KA, CID, TAB, 0x00, 0x00), C_OK},
	{"connect fixed flags 1", D_CONNECT, 0, 1, 0, BODY(NAME311, 0x02, KA, CID), C_MAL},
	{"connect fixed flags 2", D_CONNECT, 0, 2, 0, BODY(NAME311, 0x02, KA, CID), C_MAL},
	{"connect fixed flags 8", D_CONNECT, 0, 8, 0, BODY(NAME311, 0x02, KA, CID), C_MAL},
	{"connect bad name MQTX", D_CONNECT, 0, 0, 0,
	 BODY(0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02, KA, CID), C_NAME},
	{"connect bad name lower case", D_CONNECT, 0, 0, 0,
	 BODY(0x00, 0x04, 'm', 'q', 't', 't', 0x04, 0x02, KA, CID), C_NAME},
	{"connect bad name length", D_CONNECT, 0, 0, 0,
	 BODY(0x00, 0x03, 'M', 'Q', 'T', 'T', 0x04, 0x02, KA, CID), C_NAME},
	{"connect empty body", D_CONNECT, 0, 0, 0, NOBODY, C_NAME},
	{"connect name truncated", D_CONNECT, 0, 0, 0, BODY(0x00, 0x04, 'M', 'Q'), C_NAME},
	{"connect level missing", D_CONNECT, 0, 0, 0, BODY(0x00, 0x04, 'M', 'Q', 'T', 'T'), C_NAME},
	{"connect MQIsdp level 4", D_CONNECT, 0, 0, 0,
	 BODY(0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x04, 0x02, KA, CID), C_VER},
	{"connect MQTT level 3", D_CONNECT, 0, 0, 0,
	 BODY(0x00, 0x04, 'M', 'Q', 'T', 'T', 0x03, 0x02, KA, CID), C_VER},
	{"connect MQTT level 6", D_CONNECT, 0, 0, 0,
	 BODY(0x00, 0x04, 'M', 'Q', 'T', 'T', 0x06, 0x02, KA, CID), C_VER},
	{"connect MQTT level 0", D_CONNECT, 0, 0, 0,
	 BODY(0x00, 0x04, 'M', 'Q', 'T', 'T', 0x00, 0x02, KA, CID), C_VER},
	{"connect flags missing", D_CONNECT, 0, 0, 0, BODY(NAME311), C_MAL},
	{"connect keep alive truncated", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x02, 0x00), C_MAL},
	{"connect reserved flag", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x03, KA, CID), C_MAL},
	{"connect reserved flag v5", D_CONNECT, 0, 0, 0, BODY(NAME5, 0x01, KA, 0x00, CID), C_MAL},
	{"connect will qos 3", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x1E, KA, CID, TAB, 0x00, 0x00),
	 C_MAL},
	{"connect will qos without will", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x0A, KA, CID), C_MAL},
	{"connect will qos 2 without will", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x12, KA, CID),
	 C_MAL},
	{"connect will retain without will", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x22, KA, CID),
	 C_MAL},
	{"connect password without username 3.1.1", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0x42, KA, CID, 0x00, 0x01, 'p'), C_PROTO},
	{"connect password without username 5", D_CONNECT, 0, 0, 0,
	 BODY(NAME5, 0x42, KA, 0x00, CID, 0x00, 0x01, 'p'), C_OK},
	{"connect trailing byte", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x02, KA, CID, 0x00), C_MAL},
	{"connect trailing byte v5", D_CONNECT, 0, 0, 0, BODY(NAME5, 0x02, KA, 0x00, CID, 'x'),
	 C_MAL},
	{"connect client id missing", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x02, KA), C_MAL},
	{"connect client id truncated", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x02, KA, 0x00, 0x05, 'c'),
	 C_MAL},
	{"connect client id bad utf-8", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0x02, KA, 0x00, 0x02, 0xC0, 0x80), C_MAL},
	{"connect client id with U+0000", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0x02, KA, 0x00, 0x01, 0x00), C_MAL},
	{"connect will topic missing", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x06, KA, CID), C_MAL},
	{"connect will payload missing", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x06, KA, CID, TAB),
	 C_MAL},
	{"connect will payload truncated", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0x06, KA, CID, TAB, 0x00, 0x05, 'x'), C_MAL},
	{"connect will topic bad utf-8", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0x06, KA, CID, 0x00, 0x01, 0xFF, 0x00, 0x00), C_MAL},
	{"connect will topic wildcard #", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0x06, KA, CID, 0x00, 0x03, 'a', '/', '#', 0x00, 0x00), C_PROTO},
	{"connect will topic wildcard +", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0x06, KA, CID, 0x00, 0x01, '+', 0x00, 0x00), C_PROTO},
	{"connect will topic empty", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x06, KA, CID, 0x00, 0x00,
							      0x00, 0x00), C_PROTO},
	{"connect username missing", D_CONNECT, 0, 0, 0, BODY(NAME311, 0x82, KA, CID), C_MAL},
	{"connect username bad utf-8", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0x82, KA, CID, 0x00, 0x01, 0x80), C_MAL},
	{"connect password missing", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0xC2, KA, CID, 0x00, 0x01, 'u'), C_MAL},
	{"connect password truncated", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0xC2, KA, CID, 0x00, 0x01, 'u', 0x00, 0x03, 'p'), C_MAL},
	{"connect password binary ok", D_CONNECT, 0, 0, 0,
	 BODY(NAME311, 0xC2, KA, CID, 0x00, 0x01, 'u', 0x00, 0x02, 0x00, 0xFF), C_OK},
	{"connect v5 props length missing", D_CONNECT, 0, 0, 0, BODY(NAME5, 0x02, KA), C_MAL},
	{"connect v5 props truncated", D_CONNECT, 0, 0, 0,
	 BODY(NAME5, 0x02, KA, 0x05, 0x11, 0x00), C_MAL},
	{"connect v5 auth data without method", D_CONNECT, 0, 0, 0,
	 BODY(NAME5, 0x02, KA, 0x04, 0x16, 0x00, 0x01, 0x00, CID), C_PROTO},
	{"connect v5 auth method and data ok", D_CONNECT, 0, 0, 0,
	 BODY(NAME5, 0x02, KA, 0x08, 0x15, 0x00, 0x01, 'm', 0x16, 0x00, 0x01, 0x00, CID), C_OK},
	{"connect v5 duplicate session expiry", D_CONNECT, 0, 0, 0,
	 BODY(NAME5, 0x02, KA, 0x0A, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, CID), C_PROTO},
	{"connect v5 receive maximum 0", D_CONNECT, 0, 0, 0,
	 BODY(NAME5, 0x02, KA, 0x03, 0x21, 0x00, 0x00, CID), C_PROTO},
	{"connect v5 topic alias property", D_CONNECT, 0, 0, 0,
	 BODY(NAME5, 0x02, KA, 0x03, 0x23, 0x00, 0x01, CID), C_MAL},
	{"connect v5 will props missing", D_CONNECT, 0, 0, 0, BODY(NAME5, 0x06, KA, 0x00, CID),
	 C_MAL},
	{"connect v5 will topic alias", D_CONNECT, 0, 0, 0,
	 BODY(NAME5, 0x06, KA, 0x00, CID, 0x03, 0x23, 0x00, 0x01, TAB, 0x00, 0x00), C_MAL},
	{"connect v5 will delay twice", D_CONNECT, 0, 0, 0,
	 BODY(NAME5, 0x06, KA, 0x00, CID, 0x0A, 0x18, 0, 0, 0, 1, 0x18, 0, 0, 0, 1, TAB, 0x00,
	      0x00), C_PROTO},
	{"connect v5 will ok", D_CONNECT, 0, 0, 0,
	 BODY(NAME5, 0x06, KA, 0x00, CID, 0x05, 0x18, 0, 0, 0, 1, TAB, 0x00, 0x00), C_OK},

	/* CONNACK */
	{"connack ok", D_CONNACK, 0, 0, 4, BODY(0x00, 0x00), OK},
	{"connack v5 ok", D_CONNACK, 0, 0, 5, BODY(0x01, 0x00, 0x00), OK},
	{"connack fixed flags", D_CONNACK, 0, 1, 4, BODY(0x00, 0x00), MAL},
	{"connack reserved ack flag", D_CONNACK, 0, 0, 4, BODY(0x02, 0x00), MAL},
	{"connack reserved ack flag 0x80", D_CONNACK, 0, 0, 5, BODY(0x80, 0x00, 0x00), MAL},
	{"connack truncated", D_CONNACK, 0, 0, 4, BODY(0x00), MAL},
	{"connack empty", D_CONNACK, 0, 0, 4, NOBODY, MAL},
	{"connack trailing byte", D_CONNACK, 0, 0, 4, BODY(0x00, 0x00, 0x00), MAL},
	{"connack v5 props length missing", D_CONNACK, 0, 0, 5, BODY(0x00, 0x00), MAL},
	{"connack v5 topic alias property", D_CONNACK, 0, 0, 5,
	 BODY(0x00, 0x00, 0x03, 0x23, 0x00, 0x01), MAL},
	{"connack v5 maximum qos 2", D_CONNACK, 0, 0, 5, BODY(0x00, 0x00, 0x02, 0x24, 0x02), PROTO},
	{"connack v5 trailing byte", D_CONNACK, 0, 0, 5, BODY(0x00, 0x00, 0x00, 0x00), MAL},

	/* PUBLISH */
	{"publish qos 0 ok", D_PUBLISH, 0, 0, 4, BODY(TAB, 'x'), OK},
	{"publish qos 1 ok", D_PUBLISH, 0, 2, 4, BODY(TAB, ID1, 'x'), OK},
	{"publish qos 2 dup retain ok", D_PUBLISH, 0, 0xD, 4, BODY(TAB, ID1), OK},
	{"publish v5 ok", D_PUBLISH, 0, 2, 5, BODY(TAB, ID1, 0x00, 'x'), OK},
	{"publish empty topic left to caller", D_PUBLISH, 0, 0, 4, BODY(0x00, 0x00, 'x'), OK},
	{"publish v5 empty topic left to caller", D_PUBLISH, 0, 0, 5,
	 BODY(0x00, 0x00, 0x03, 0x23, 0x00, 0x01), OK},
	{"publish qos 3", D_PUBLISH, 0, 6, 4, BODY(TAB, ID1), MAL},
	{"publish qos 3 v5", D_PUBLISH, 0, 7, 5, BODY(TAB, ID1, 0x00), MAL},
	{"publish qos 3 dup", D_PUBLISH, 0, 0xE, 4, BODY(TAB, ID1), MAL},
	/* DUP on QoS 0 breaks [MQTT-3.3.1-2], but codec.h documents that it is
	 * tolerated and cleared (see test_publish_dup_qos0). */
	{"publish dup on qos 0 tolerated", D_PUBLISH, 0, 8, 4, BODY(TAB), OK},
	{"publish dup on qos 0 tolerated v5", D_PUBLISH, 0, 9, 5, BODY(TAB, 0x00), OK},
	{"publish wildcard +", D_PUBLISH, 0, 0, 4, BODY(0x00, 0x03, 'a', '/', '+'), PROTO},
	{"publish wildcard #", D_PUBLISH, 0, 0, 4, BODY(0x00, 0x01, '#'), PROTO},
	{"publish wildcard inside a level", D_PUBLISH, 0, 0, 5, BODY(0x00, 0x02, 'a', '#', 0x00),
	 PROTO},
	{"publish packet id 0 qos 1", D_PUBLISH, 0, 2, 4, BODY(TAB, 0x00, 0x00), PROTO},
	{"publish packet id 0 qos 2", D_PUBLISH, 0, 4, 5, BODY(TAB, 0x00, 0x00, 0x00), PROTO},
	{"publish topic bad utf-8", D_PUBLISH, 0, 0, 4, BODY(0x00, 0x02, 0xC0, 0x80), MAL},
	{"publish topic surrogate", D_PUBLISH, 0, 0, 4, BODY(0x00, 0x03, 0xED, 0xA0, 0x80), MAL},
	{"publish topic U+0000", D_PUBLISH, 0, 0, 4, BODY(0x00, 0x03, 'a', 0x00, 'b'), MAL},
	{"publish topic truncated", D_PUBLISH, 0, 0, 4, BODY(0x00, 0x05, 'a'), MAL},
	{"publish topic length cut", D_PUBLISH, 0, 0, 4, BODY(0x00), MAL},
	{"publish empty body", D_PUBLISH, 0, 0, 4, NOBODY, MAL},
	{"publish packet id truncated", D_PUBLISH, 0, 2, 4, BODY(TAB, 0x00), MAL},
	{"publish packet id missing", D_PUBLISH, 0, 4, 4, BODY(TAB), MAL},
	{"publish v5 props missing", D_PUBLISH, 0, 0, 5, BODY(TAB), MAL},
	{"publish v5 props truncated", D_PUBLISH, 0, 0, 5, BODY(TAB, 0x05, 0x02, 0x00), MAL},
	{"publish v5 session expiry property", D_PUBLISH, 0, 0, 5,
	 BODY(TAB, 0x05, 0x11, 0, 0, 0, 1), MAL},
	{"publish v5 payload format 2", D_PUBLISH, 0, 0, 5, BODY(TAB, 0x02, 0x01, 0x02), PROTO},

	/* PUBACK, PUBREC, PUBREL, PUBCOMP */
	{"puback ok", D_ACK, MQTT_PUBACK, 0, 4, BODY(ID1), OK},
	{"pubrel ok", D_ACK, MQTT_PUBREL, 2, 4, BODY(ID1), OK},
	{"puback flags 2", D_ACK, MQTT_PUBACK, 2, 4, BODY(ID1), MAL},
	{"pubrec flags 1", D_ACK, MQTT_PUBREC, 1, 4, BODY(ID1), MAL},
	{"pubrel flags 0", D_ACK, MQTT_PUBREL, 0, 4, BODY(ID1), MAL},
	{"pubrel flags 0 v5", D_ACK, MQTT_PUBREL, 0, 5, BODY(ID1), MAL},
	{"pubcomp flags 8", D_ACK, MQTT_PUBCOMP, 8, 5, BODY(ID1), MAL},
	{"puback packet id 0", D_ACK, MQTT_PUBACK, 0, 4, BODY(0x00, 0x00), PROTO},
	{"pubrec packet id 0", D_ACK, MQTT_PUBREC, 0, 5, BODY(0x00, 0x00), PROTO},
	{"pubrel packet id 0", D_ACK, MQTT_PUBREL, 2, 3, BODY(0x00, 0x00), PROTO},
	{"pubcomp packet id 0", D_ACK, MQTT_PUBCOMP, 0, 5, BODY(0x00, 0x00, 0x00, 0x00), PROTO},
	{"puback truncated", D_ACK, MQTT_PUBACK, 0, 4, BODY(0x00), MAL},
	{"puback empty", D_ACK, MQTT_PUBACK, 0, 5, NOBODY, MAL},
	{"puback v3 trailing byte", D_ACK, MQTT_PUBACK, 0, 4, BODY(ID1, 0x00), MAL},
	{"pubcomp v3.1 trailing byte", D_ACK, MQTT_PUBCOMP, 0, 3, BODY(ID1, 0x00), MAL},
	{"puback v5 reason only", D_ACK, MQTT_PUBACK, 0, 5, BODY(ID1, 0x10), OK},
	{"puback v5 reason, empty props", D_ACK, MQTT_PUBACK, 0, 5, BODY(ID1, 0x10, 0x00), OK},
	{"puback v5 props truncated", D_ACK, MQTT_PUBACK, 0, 5, BODY(ID1, 0x00, 0x05, 0x1F, 0x00),
	 MAL},
	{"puback v5 payload format property", D_ACK, MQTT_PUBACK, 0, 5,
	 BODY(ID1, 0x00, 0x02, 0x01, 0x01), MAL},
	{"pubrec v5 trailing byte", D_ACK, MQTT_PUBREC, 0, 5, BODY(ID1, 0x00, 0x00, 0xFF), MAL},
	{"pubrel v5 reason string twice", D_ACK, MQTT_PUBREL, 2, 5,
	 BODY(ID1, 0x00, 0x06, 0x1F, 0x00, 0x00, 0x1F, 0x00, 0x00), PROTO},

	/* SUBSCRIBE */
	{"subscribe ok", D_SUBSCRIBE, 0, 2, 4, BODY(ID1, TAB, 0x01), OK},
	{"subscribe v5 ok", D_SUBSCRIBE, 0, 2, 5, BODY(ID1, 0x00, TAB, 0x2D), OK},
	{"subscribe fixed flags 0", D_SUBSCRIBE, 0, 0, 4, BODY(ID1, TAB, 0x01), MAL},
	{"subscribe fixed flags 3", D_SUBSCRIBE, 0, 3, 5, BODY(ID1, 0x00, TAB, 0x01), MAL},
	{"subscribe no entries", D_SUBSCRIBE, 0, 2, 4, BODY(ID1), PROTO},
	{"subscribe no entries v5", D_SUBSCRIBE, 0, 2, 5, BODY(ID1, 0x00), PROTO},
	{"subscribe packet id 0", D_SUBSCRIBE, 0, 2, 4, BODY(0x00, 0x00, TAB, 0x00), PROTO},
	{"subscribe packet id truncated", D_SUBSCRIBE, 0, 2, 4, BODY(0x00), MAL},
	{"subscribe v3 option bit 2", D_SUBSCRIBE, 0, 2, 4, BODY(ID1, TAB, 0x04), MAL},
	{"subscribe v3 option bit 7", D_SUBSCRIBE, 0, 2, 4, BODY(ID1, TAB, 0x80), MAL},
	{"subscribe v3.1 option bit 4", D_SUBSCRIBE, 0, 2, 3, BODY(ID1, TAB, 0x10), MAL},
	{"subscribe v5 option bit 6", D_SUBSCRIBE, 0, 2, 5, BODY(ID1, 0x00, TAB, 0x40), MAL},
	{"subscribe v5 option bit 7", D_SUBSCRIBE, 0, 2, 5, BODY(ID1, 0x00, TAB, 0x80), MAL},
	{"subscribe qos 3", D_SUBSCRIBE, 0, 2, 4, BODY(ID1, TAB, 0x03), MAL},
	{"subscribe qos 3 v5", D_SUBSCRIBE, 0, 2, 5, BODY(ID1, 0x00, TAB, 0x03), MAL},
	{"subscribe retain handling 3", D_SUBSCRIBE, 0, 2, 5, BODY(ID1, 0x00, TAB, 0x30), PROTO},
	{"subscribe empty filter", D_SUBSCRIBE, 0, 2, 4, BODY(ID1, 0x00, 0x00, 0x00), PROTO},
	{"subscribe empty filter v5", D_SUBSCRIBE, 0, 2, 5, BODY(ID1, 0x00, 0x00, 0x00, 0x00),
	 PROTO},
	{"subscribe options missing", D_SUBSCRIBE, 0, 2, 4, BODY(ID1, TAB), MAL},
	{"subscribe filter truncated", D_SUBSCRIBE, 0, 2, 4, BODY(ID1, 0x00, 0x05, 'a', 0x00), MAL},
	{"subscribe filter bad utf-8", D_SUBSCRIBE, 0, 2, 4, BODY(ID1, 0x00, 0x01, 0xFF, 0x00),
	 MAL},
	{"subscribe second entry bad", D_SUBSCRIBE, 0, 2, 4,
	 BODY(ID1, TAB, 0x00, 0x00, 0x01, 'x', 0x07), MAL},
	{"subscribe v5 props missing", D_SUBSCRIBE, 0, 2, 5, BODY(ID1), MAL},
	{"subscribe v5 two subscription ids", D_SUBSCRIBE, 0, 2, 5,
	 BODY(ID1, 0x04, 0x0B, 0x01, 0x0B, 0x02, TAB, 0x00), PROTO},
	{"subscribe v5 subscription id 0", D_SUBSCRIBE, 0, 2, 5, BODY(ID1, 0x02, 0x0B, 0x00, TAB,
								       0x00), PROTO},
	{"subscribe v5 reason string property", D_SUBSCRIBE, 0, 2, 5,
	 BODY(ID1, 0x03, 0x1F, 0x00, 0x00, TAB, 0x00), MAL},

	/* UNSUBSCRIBE */
	{"unsubscribe ok", D_UNSUBSCRIBE, 0, 2, 4, BODY(ID1, TAB), OK},
	{"unsubscribe v5 ok", D_UNSUBSCRIBE, 0, 2, 5, BODY(ID1, 0x00, TAB), OK},
	{"unsubscribe no entries", D_UNSUBSCRIBE, 0, 2, 4, BODY(ID1), PROTO},
	{"unsubscribe no entries v5", D_UNSUBSCRIBE, 0, 2, 5, BODY(ID1, 0x00), PROTO},
	{"unsubscribe fixed flags 0", D_UNSUBSCRIBE, 0, 0, 4, BODY(ID1, TAB), MAL},
	{"unsubscribe empty filter", D_UNSUBSCRIBE, 0, 2, 4, BODY(ID1, 0x00, 0x00), PROTO},
	{"unsubscribe filter truncated", D_UNSUBSCRIBE, 0, 2, 4, BODY(ID1, 0x00, 0x04, 'a'), MAL},
	{"unsubscribe filter bad utf-8", D_UNSUBSCRIBE, 0, 2, 4, BODY(ID1, 0x00, 0x01, 0xC2), MAL},
	{"unsubscribe packet id 0", D_UNSUBSCRIBE, 0, 2, 4, BODY(0x00, 0x00, TAB), PROTO},
	{"unsubscribe v5 subscription id property", D_UNSUBSCRIBE, 0, 2, 5,
	 BODY(ID1, 0x02, 0x0B, 0x01, TAB), MAL},

	/* SUBACK, UNSUBACK */
	{"suback ok", D_SUBACK, MQTT_SUBACK, 0, 4, BODY(ID1, 0x00), OK},
	{"suback v5 ok", D_SUBACK, MQTT_SUBACK, 0, 5, BODY(ID1, 0x00, 0x80), OK},
	{"suback fixed flags", D_SUBACK, MQTT_SUBACK, 2, 4, BODY(ID1, 0x00), MAL},
	{"suback no codes", D_SUBACK, MQTT_SUBACK, 0, 4, BODY(ID1), MAL},
	{"suback no codes v5", D_SUBACK, MQTT_SUBACK, 0, 5, BODY(ID1, 0x00), MAL},
	{"suback truncated", D_SUBACK, MQTT_SUBACK, 0, 4, BODY(0x00), MAL},
	{"suback v5 props missing", D_SUBACK, MQTT_SUBACK, 0, 5, BODY(ID1), MAL},
	{"unsuback ok", D_SUBACK, MQTT_UNSUBACK, 0, 4, BODY(ID1), OK},
	{"unsuback v5 ok", D_SUBACK, MQTT_UNSUBACK, 0, 5, BODY(ID1, 0x00, 0x11), OK},
	{"unsuback v3 with codes", D_SUBACK, MQTT_UNSUBACK, 0, 4, BODY(ID1, 0x00), MAL},
	{"unsuback fixed flags", D_SUBACK, MQTT_UNSUBACK, 1, 4, BODY(ID1), MAL},

	/* DISCONNECT */
	{"disconnect ok", D_DISCONNECT, 0, 0, 4, NOBODY, OK},
	{"disconnect v3 with a body", D_DISCONNECT, 0, 0, 4, BODY(0x00), MAL},
	{"disconnect v3.1 with a body", D_DISCONNECT, 0, 0, 3, BODY(0x00, 0x00), MAL},
	{"disconnect fixed flags", D_DISCONNECT, 0, 1, 4, NOBODY, MAL},
	{"disconnect fixed flags v5", D_DISCONNECT, 0, 8, 5, NOBODY, MAL},
	{"disconnect v5 empty", D_DISCONNECT, 0, 0, 5, NOBODY, OK},
	{"disconnect v5 reason only", D_DISCONNECT, 0, 0, 5, BODY(0x04), OK},
	{"disconnect v5 session expiry", D_DISCONNECT, 0, 0, 5,
	 BODY(0x00, 0x05, 0x11, 0, 0, 0, 10), OK},
	{"disconnect v5 props truncated", D_DISCONNECT, 0, 0, 5, BODY(0x00, 0x05, 0x11, 0x00), MAL},
	{"disconnect v5 topic alias property", D_DISCONNECT, 0, 0, 5,
	 BODY(0x00, 0x03, 0x23, 0x00, 0x01), MAL},
	{"disconnect v5 trailing byte", D_DISCONNECT, 0, 0, 5, BODY(0x00, 0x00, 0x00), MAL},

	/* AUTH */
	{"auth in 3.1.1", D_AUTH, 0, 0, 4, NOBODY, PROTO},
	{"auth in 3.1.1 with body", D_AUTH, 0, 0, 4, BODY(0x18, 0x00), PROTO},
	{"auth in 3.1", D_AUTH, 0, 0, 3, NOBODY, PROTO},
	{"auth v5 empty", D_AUTH, 0, 0, 5, NOBODY, OK},
	{"auth v5 continue", D_AUTH, 0, 0, 5, BODY(0x18, 0x04, 0x15, 0x00, 0x01, 'm'), OK},
	{"auth v5 fixed flags", D_AUTH, 0, 1, 5, NOBODY, MAL},
	{"auth v5 payload format property", D_AUTH, 0, 0, 5, BODY(0x18, 0x02, 0x01, 0x01), MAL},
	{"auth v5 props truncated", D_AUTH, 0, 0, 5, BODY(0x18, 0x04, 0x15, 0x00), MAL},

	/* PINGREQ, PINGRESP */
	{"ping ok", D_EMPTY, 0, 0, 4, NOBODY, OK},
	{"ping with a body", D_EMPTY, 0, 0, 4, BODY(0x00), MAL},
	{"ping fixed flags", D_EMPTY, 0, 1, 4, NOBODY, MAL},
};

#define NBAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

/* Runs one decoder; scratch structs are large, so they live here. */
static int run_decoder(enum dec dec, uint8_t type, const uint8_t *body, uint32_t len,
		       uint8_t flags, int proto)
{
	static struct mqtt_connect connect;
	static struct mqtt_connack connack;
	static struct mqtt_publish publish;
	static struct mqtt_ack ack;
	static struct mqtt_subscribe sub;
	static struct mqtt_unsubscribe unsub;
	static struct mqtt_suback suback;
	static struct mqtt_reason_packet reason;

	switch (dec) {
	case D_CONNECT: return (int)mqtt_decode_connect(body, len, flags, &connect);
	case D_CONNACK: return mqtt_decode_connack(body, len, flags, proto, &connack);
	case D_PUBLISH: return mqtt_decode_publish(body, len, flags, proto, &publish);
	case D_ACK: return mqtt_decode_ack(type, body, len, flags, proto, &ack);
	case D_SUBSCRIBE: return mqtt_decode_subscribe(body, len, flags, proto, &sub);
	case D_UNSUBSCRIBE: return mqtt_decode_unsubscribe(body, len, flags, proto, &unsub);
	case D_SUBACK: return mqtt_decode_suback(type, body, len, flags, proto, &suback);
	case D_DISCONNECT: return mqtt_decode_disconnect(body, len, flags, proto, &reason);
	case D_AUTH: return mqtt_decode_auth(body, len, flags, proto, &reason);
	case D_EMPTY: return mqtt_decode_empty(len, flags);
	}
	return 99;
}

START_TEST(test_bad_inputs)
{
	struct fails fails = {0};

	for (size_t i = 0; i < NBAD; i++) {
		const struct bad_case *c = &bad_cases[i];
		uint8_t *body = malloc(c->len ? c->len : 1);
		int rc;

		ck_assert_ptr_nonnull(body);
		memcpy(body, c->body, c->len);
		rc = run_decoder(c->dec, c->type, body, (uint32_t)c->len, c->flags, c->proto);
		if (rc != c->rc)
			fail_note(&fails, "case %s: rc %d, want %d", c->name, rc, c->rc);
		free(body);
	}
	FAILS_CHECK(&fails);
}
END_TEST

/* DUP on a QoS 0 PUBLISH is accepted and never reported to the caller. */
START_TEST(test_publish_dup_qos0)
{
	const uint8_t body[] = {TAB, 'x'};
	struct mqtt_publish d;

	ck_assert_int_eq(mqtt_decode_publish(body, sizeof(body), 0x9, MQTT_PROTO_V311, &d), MQTT_OK);
	ck_assert(!d.dup);
	ck_assert(d.retain);
	ck_assert_uint_eq(d.qos, 0);
	ck_assert(bytes_str(d.topic, "a/b"));
	ck_assert(bytes_str(d.payload, "x"));
	/* With QoS 1 the flag is kept. */
	const uint8_t body1[] = {TAB, ID1};
	ck_assert_int_eq(mqtt_decode_publish(body1, sizeof(body1), 0xA, MQTT_PROTO_V311, &d),
			 MQTT_OK);
	ck_assert(d.dup);
	ck_assert_uint_eq(d.qos, 1);
}
END_TEST

/* The protocol level is known even when the CONNECT is refused. */
START_TEST(test_connect_protocol_reported)
{
	const uint8_t v31_level4[] = {0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x04, 0x02, KA,
				      CID};
	const uint8_t v5_bad[] = {NAME5, 0x01, KA, 0x00, CID};
	const uint8_t mqtt_level9[] = {0x00, 0x04, 'M', 'Q', 'T', 'T', 0x09, 0x02, KA, CID};
	struct mqtt_connect d;

	ck_assert_int_eq(mqtt_decode_connect(v31_level4, sizeof(v31_level4), 0, &d), C_VER);
	ck_assert_uint_eq(d.protocol, MQTT_PROTO_V31);
	ck_assert_int_eq(mqtt_decode_connect(mqtt_level9, sizeof(mqtt_level9), 0, &d), C_VER);
	ck_assert_uint_eq(d.protocol, MQTT_PROTO_V311);
	ck_assert_int_eq(mqtt_decode_connect(v5_bad, sizeof(v5_bad), 0, &d), C_MAL);
	ck_assert_uint_eq(d.protocol, MQTT_PROTO_V5);
}
END_TEST

/* --- randomized robustness --- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: fixed seed, same sequence on every run. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

/* Bytes a span must stay within. */
static void check_span(struct mqtt_bytes b, const uint8_t *body, uint32_t len, const char *what)
{
	if (b.len == 0)
		return;
	if (b.data < body || b.data + b.len > body + len)
		ck_abort_msg("%s span outside the body", what);
}

static void walk_props(const struct mqtt_props *p, const uint8_t *body, uint32_t len)
{
	struct mqtt_prop it;
	uint32_t pos = 0, n = 0;

	check_span(p->raw, body, len, "properties");
	while (mqtt_props_next(p, &pos, &it)) {
		check_span(it.data, body, len, "property value");
		check_span(it.data2, body, len, "property pair value");
		if (++n > len)
			ck_abort_msg("property iteration does not end");
	}
	if (pos != p->raw.len)
		ck_abort_msg("property iteration stopped at %u of %u", pos, p->raw.len);
}

/* Runs every decoder on one body and checks what the successful ones return. */
static void fuzz_one(const uint8_t *body, uint32_t len, uint8_t flags)
{
	static const int protos[] = PROTOS;
	struct mqtt_connect c;
	struct mqtt_frame f;

	(void)mqtt_frame_parse(body, len, MQTT_MAX_REMAINING_LENGTH, &f);
	if (mqtt_decode_connect(body, len, flags & 1 ? flags : 0, &c) == MQTT_CONNECT_OK) {
		check_span(c.client_id, body, len, "client id");
		check_span(c.username, body, len, "username");
		check_span(c.password, body, len, "password");
		check_span(c.will.topic, body, len, "will topic");
		check_span(c.will.payload, body, len, "will payload");
		walk_props(&c.props, body, len);
		walk_props(&c.will.props, body, len);
	}
	(void)mqtt_decode_empty(len, flags & 1);
	for (int i = 0; i < 3; i++) {
		int proto = protos[i];
		struct mqtt_connack ca;
		struct mqtt_publish p;
		struct mqtt_ack a;
		struct mqtt_subscribe s;
		struct mqtt_unsubscribe u;
		struct mqtt_suback sa;
		struct mqtt_reason_packet r;

		if (mqtt_decode_connack(body, len, 0, proto, &ca) == MQTT_OK)
			walk_props(&ca.props, body, len);
		if (mqtt_decode_publish(body, len, flags, proto, &p) == MQTT_OK) {
			uint8_t fwd[256];
			check_span(p.topic, body, len, "topic");
			check_span(p.payload, body, len, "payload");
			walk_props(&p.props, body, len);
			if (p.props.raw.len <= sizeof(fwd) &&
			    mqtt_props_copy_forwardable(&p.props, fwd) > p.props.raw.len)
				ck_abort_msg("forwardable copy larger than the block");
		}
		for (uint8_t t = MQTT_PUBACK; t <= MQTT_PUBCOMP; t++)
			if (mqtt_decode_ack(t, body, len, mqtt_required_flags(t), proto, &a) == MQTT_OK)
				walk_props(&a.props, body, len);
		if (mqtt_decode_subscribe(body, len, 2, proto, &s) == MQTT_OK) {
			struct mqtt_bytes filter;
			struct mqtt_sub_options o;
			uint32_t pos = 0, n = 0;

			walk_props(&s.props, body, len);
			while (mqtt_subscribe_next(&s, proto, &pos, &filter, &o)) {
				check_span(filter, body, len, "filter");
				if (filter.len == 0 || o.qos > 2 || o.retain_handling > 2)
					ck_abort_msg("decoded SUBSCRIBE entry is invalid");
				n++;
			}
			if (n != s.count || n == 0)
				ck_abort_msg("SUBSCRIBE count %u, walked %u", s.count, n);
		}
		if (mqtt_decode_unsubscribe(body, len, 2, proto, &u) == MQTT_OK) {
			struct mqtt_bytes filter;
			uint32_t pos = 0, n = 0;

			walk_props(&u.props, body, len);
			while (mqtt_unsubscribe_next(&u, &pos, &filter)) {
				check_span(filter, body, len, "filter");
				n++;
			}
			if (n != u.count || n == 0)
				ck_abort_msg("UNSUBSCRIBE count %u, walked %u", u.count, n);
		}
		if (mqtt_decode_suback(MQTT_SUBACK, body, len, 0, proto, &sa) == MQTT_OK)
			check_span(sa.codes, body, len, "codes");
		if (mqtt_decode_suback(MQTT_UNSUBACK, body, len, 0, proto, &sa) == MQTT_OK)
			check_span(sa.codes, body, len, "codes");
		if (mqtt_decode_disconnect(body, len, 0, proto, &r) == MQTT_OK)
			walk_props(&r.props, body, len);
		if (mqtt_decode_auth(body, len, 0, proto, &r) == MQTT_OK)
			walk_props(&r.props, body, len);
	}
}

START_TEST(test_random_inputs)
{
	uint8_t scratch[320];

	rng_state = 0x6D69646765ull; /* "midge" */
	for (int iter = 0; iter < 100000; iter++) {
		uint64_t r = rng();
		uint32_t len;
		uint8_t *body;

		if (r % 4 == 0 && NBAD > 0) {
			/* Mutate a known body: flip bytes, cut it, or extend it. */
			const struct bad_case *c = &bad_cases[(r >> 8) % NBAD];
			len = (uint32_t)c->len;
			memcpy(scratch, c->body, len);
			for (int k = (int)((r >> 20) % 3); k >= 0 && len > 0; k--)
				scratch[rng() % len] = (uint8_t)rng();
			if ((r >> 24) % 4 == 0 && len > 0)
				len = (uint32_t)(rng() % len);
			else if ((r >> 24) % 4 == 1)
				while (len < sizeof(scratch) && rng() % 4)
					scratch[len++] = (uint8_t)rng();
		} else {
			len = (uint32_t)((r >> 8) % ((r >> 40) % 8 == 0 ? sizeof(scratch) : 40));
			for (uint32_t k = 0; k < len; k++) {
				uint64_t b = rng();
				/* Bias toward small values and lengths, which reach deeper. */
				scratch[k] = (uint8_t)(b % 3 == 0 ? b % 8 : b >> 8);
			}
		}
		body = malloc(len ? len : 1);
		if (!body)
			ck_abort_msg("out of memory");
		memcpy(body, scratch, len);
		fuzz_one(body, len, (uint8_t)((r >> 56) & 0x0F));
		free(body);
	}
}
END_TEST

Suite *suite_codec(void)
{
	Suite *s = suite_create("codec");
	TCase *tc;

	tc = tcase_create("round_trip");
	tcase_add_test(tc, test_connect_round_trip);
	tcase_add_test(tc, test_connack_round_trip);
	tcase_add_test(tc, test_publish_round_trip);
	tcase_add_test(tc, test_ack_round_trip);
	tcase_add_test(tc, test_subscribe_round_trip);
	tcase_add_test(tc, test_suback_round_trip);
	tcase_add_test(tc, test_unsubscribe_round_trip);
	tcase_add_test(tc, test_sub_unsub_props_round_trip);
	tcase_add_test(tc, test_ping_disconnect_auth_round_trip);
	tcase_add_test(tc, test_required_flags);
	suite_add_tcase(s, tc);

	tc = tcase_create("bytes");
	tcase_add_test(tc, test_bytes_connect);
	tcase_add_test(tc, test_bytes_other);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_bad_inputs);
	tcase_add_test(tc, test_connect_protocol_reported);
	tcase_add_test(tc, test_publish_dup_qos0);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_random_inputs);
	suite_add_tcase(s, tc);
	return s;
}
