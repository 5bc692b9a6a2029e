/*
 * test_property.c: unit tests of the MQTT 5.0 property codec (property.c).
 *
 * The expected placement of every property comes from a table written here
 * from the specification (section 2.2.2.2), independent of property.c's own
 * table. Also covered: unknown identifiers, duplicates, value ranges, values
 * of the wrong shape, truncated blocks, iteration order, the forwardable
 * copy (of a will too) and the writers, and a round trip of every property
 * through its writer and the reader. Blocks are copied into exact-size heap
 * buffers.
 */
#include "config.h"

#include "tests.h"

#include "property.h"

#include <midge/mqtt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define PK(t) (1u << (t))
#define WILLP PK(MQTT_PROPS_WILL)

/* One property: an encoded example value and where the specification allows it. */
struct prop_spec {
	const char *name;
	uint8_t id;
	enum mqtt_prop_type type;
	uint32_t packets;
	uint8_t value[8]; /* encoded value (without the identifier) */
	size_t value_len;
};

#define V(...) {__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})

static const struct prop_spec specs[] = {
	{"payload format", MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, MQTT_PROP_TYPE_BYTE,
	 PK(MQTT_PUBLISH) | WILLP, V(0x01)},
	{"message expiry", MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, MQTT_PROP_TYPE_U32,
	 PK(MQTT_PUBLISH) | WILLP, V(0x00, 0x00, 0x01, 0x00)},
	{"content type", MQTT_PROP_CONTENT_TYPE, MQTT_PROP_TYPE_STRING, PK(MQTT_PUBLISH) | WILLP,
	 V(0x00, 0x02, 't', 'x')},
	{"response topic", MQTT_PROP_RESPONSE_TOPIC, MQTT_PROP_TYPE_STRING,
	 PK(MQTT_PUBLISH) | WILLP, V(0x00, 0x03, 'r', '/', 't')},
	{"correlation data", MQTT_PROP_CORRELATION_DATA, MQTT_PROP_TYPE_BINARY,
	 PK(MQTT_PUBLISH) | WILLP, V(0x00, 0x02, 0x00, 0xFF)},
	{"subscription identifier", MQTT_PROP_SUBSCRIPTION_IDENTIFIER, MQTT_PROP_TYPE_VARINT,
	 PK(MQTT_PUBLISH) | PK(MQTT_SUBSCRIBE), V(0x80, 0x01)},
	{"session expiry", MQTT_PROP_SESSION_EXPIRY_INTERVAL, MQTT_PROP_TYPE_U32,
	 PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_DISCONNECT), V(0x00, 0x00, 0x0E, 0x10)},
	{"assigned client id", MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER, MQTT_PROP_TYPE_STRING,
	 PK(MQTT_CONNACK), V(0x00, 0x01, 'c')},
	{"server keep alive", MQTT_PROP_SERVER_KEEP_ALIVE, MQTT_PROP_TYPE_U16, PK(MQTT_CONNACK),
	 V(0x00, 0x3C)},
	{"authentication method", MQTT_PROP_AUTHENTICATION_METHOD, MQTT_PROP_TYPE_STRING,
	 PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_AUTH), V(0x00, 0x01, 'm')},
	{"authentication data", MQTT_PROP_AUTHENTICATION_DATA, MQTT_PROP_TYPE_BINARY,
	 PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_AUTH), V(0x00, 0x01, 0x00)},
	{"request problem information", MQTT_PROP_REQUEST_PROBLEM_INFORMATION, MQTT_PROP_TYPE_BYTE,
	 PK(MQTT_CONNECT), V(0x00)},
	{"will delay", MQTT_PROP_WILL_DELAY_INTERVAL, MQTT_PROP_TYPE_U32, WILLP,
	 V(0x00, 0x00, 0x00, 0x05)},
	{"request response information", MQTT_PROP_REQUEST_RESPONSE_INFORMATION,
	 MQTT_PROP_TYPE_BYTE, PK(MQTT_CONNECT), V(0x01)},
	{"response information", MQTT_PROP_RESPONSE_INFORMATION, MQTT_PROP_TYPE_STRING,
	 PK(MQTT_CONNACK), V(0x00, 0x01, 'i')},
	{"server reference", MQTT_PROP_SERVER_REFERENCE, MQTT_PROP_TYPE_STRING,
	 PK(MQTT_CONNACK) | PK(MQTT_DISCONNECT), V(0x00, 0x01, 's')},
	{"reason string", MQTT_PROP_REASON_STRING, MQTT_PROP_TYPE_STRING,
	 PK(MQTT_CONNACK) | PK(MQTT_PUBACK) | PK(MQTT_PUBREC) | PK(MQTT_PUBREL) |
		 PK(MQTT_PUBCOMP) | PK(MQTT_SUBACK) | PK(MQTT_UNSUBACK) | PK(MQTT_DISCONNECT) |
		 PK(MQTT_AUTH),
	 V(0x00, 0x02, 'o', 'k')},
	{"receive maximum", MQTT_PROP_RECEIVE_MAXIMUM, MQTT_PROP_TYPE_U16,
	 PK(MQTT_CONNECT) | PK(MQTT_CONNACK), V(0x00, 0x0A)},
	{"topic alias maximum", MQTT_PROP_TOPIC_ALIAS_MAXIMUM, MQTT_PROP_TYPE_U16,
	 PK(MQTT_CONNECT) | PK(MQTT_CONNACK), V(0x00, 0x00)},
	{"topic alias", MQTT_PROP_TOPIC_ALIAS, MQTT_PROP_TYPE_U16, PK(MQTT_PUBLISH), V(0x00, 0x07)},
	{"maximum qos", MQTT_PROP_MAXIMUM_QOS, MQTT_PROP_TYPE_BYTE, PK(MQTT_CONNACK), V(0x01)},
	{"retain available", MQTT_PROP_RETAIN_AVAILABLE, MQTT_PROP_TYPE_BYTE, PK(MQTT_CONNACK),
	 V(0x00)},
	{"user property", MQTT_PROP_USER_PROPERTY, MQTT_PROP_TYPE_PAIR,
	 PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_PUBLISH) | WILLP | PK(MQTT_PUBACK) |
		 PK(MQTT_PUBREC) | PK(MQTT_PUBREL) | PK(MQTT_PUBCOMP) | PK(MQTT_SUBSCRIBE) |
		 PK(MQTT_SUBACK) | PK(MQTT_UNSUBSCRIBE) | PK(MQTT_UNSUBACK) | PK(MQTT_DISCONNECT) |
		 PK(MQTT_AUTH),
	 V(0x00, 0x01, 'k', 0x00, 0x01, 'v')},
	{"maximum packet size", MQTT_PROP_MAXIMUM_PACKET_SIZE, MQTT_PROP_TYPE_U32,
	 PK(MQTT_CONNECT) | PK(MQTT_CONNACK), V(0x00, 0x01, 0x00, 0x00)},
	{"wildcard subscription available", MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE,
	 MQTT_PROP_TYPE_BYTE, PK(MQTT_CONNACK), V(0x00)},
	{"subscription identifier available", MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE,
	 MQTT_PROP_TYPE_BYTE, PK(MQTT_CONNACK), V(0x01)},
	{"shared subscription available", MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE,
	 MQTT_PROP_TYPE_BYTE, PK(MQTT_CONNACK), V(0x00)},
};

#define NSPECS (sizeof(specs) / sizeof(specs[0]))

/* Builds "length + block" in an exact-size heap buffer. */
static uint8_t *make_block(const uint8_t *body, size_t len, size_t *out_len)
{
	uint8_t *buf = malloc(4 + len);
	struct pkt_writer w;

	ck_assert_ptr_nonnull(buf);
	pkt_writer_init(&w, buf, (uint32_t)(4 + len));
	pkt_write_varint(&w, (uint32_t)len);
	pkt_write_raw(&w, body, (uint32_t)len);
	/* Shrink to the exact size so reads past the end are caught. */
	uint8_t *exact = malloc(w.pos);
	ck_assert_ptr_nonnull(exact);
	memcpy(exact, buf, w.pos);
	free(buf);
	*out_len = w.pos;
	return exact;
}

/* The block read_block() decoded last: its spans borrow from it. */
static uint8_t *last_block;

static void free_last_block(void)
{
	free(last_block);
	last_block = NULL;
}

/* Decodes body (a block without its length) for packet_type. */
static int read_block(const uint8_t *body, size_t len, int packet_type, struct mqtt_props *out)
{
	size_t n;
	struct pkt_reader r;
	int rc;

	free_last_block();
	last_block = make_block(body, len, &n);
	pkt_reader_init(&r, last_block, (uint32_t)n);
	rc = mqtt_props_read(&r, packet_type, out);
	if (rc == MQTT_OK)
		ck_assert_uint_eq(pkt_remaining(&r), 0);
	return rc;
}

/* One property of spec s (identifier + value) appended to buf at *pos. */
static void put_spec(uint8_t *buf, size_t *pos, const struct prop_spec *s)
{
	buf[(*pos)++] = s->id;
	memcpy(buf + *pos, s->value, s->value_len);
	*pos += s->value_len;
}

static const char *packet_name(int t)
{
	static const char *const names[16] = {
		"WILL", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
		"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
		"DISCONNECT", "AUTH",
	};
	return t >= 0 && t < 16 ? names[t] : "?";
}

/* Every identifier in every packet type: allowed ones decode, others are malformed. */
START_TEST(test_placement_matrix)
{
	struct fails fails = {0};

	for (size_t i = 0; i < NSPECS; i++) {
		const struct prop_spec *s = &specs[i];

		if (mqtt_prop_type(s->id) != s->type)
			fail_note(&fails, "case %s: type %d", s->name, mqtt_prop_type(s->id));
		if (strcmp(mqtt_prop_name(s->id), "unknown") == 0)
			fail_note(&fails, "case %s: unnamed", s->name);
		if (mqtt_prop_allowed(s->id, -1) || mqtt_prop_allowed(s->id, 16))
			fail_note(&fails, "case %s: allowed outside 0..15", s->name);
		for (int t = 0; t < 16; t++) {
			uint8_t body[16];
			size_t len = 0;
			struct mqtt_props p;
			bool want = (s->packets >> t) & 1u;
			int rc;

			put_spec(body, &len, s);
			if (mqtt_prop_allowed(s->id, t) != want)
				fail_note(&fails, "case %s in %s: allowed %d", s->name, packet_name(t),
					  !want);
			rc = read_block(body, len, t, &p);
			if (rc != (want ? MQTT_OK : MQTT_ERR_MALFORMED))
				fail_note(&fails, "case %s in %s: rc %d", s->name, packet_name(t), rc);
			else if (want && p.present != (uint64_t)1 << s->id)
				fail_note(&fails, "case %s in %s: present %llx", s->name,
					  packet_name(t), (unsigned long long)p.present);
		}
	}
	FAILS_CHECK(&fails);
}
END_TEST

START_TEST(test_unknown_ids)
{
	static const uint8_t unknown[] = {0x00, 0x04, 0x05, 0x06, 0x07, 0x0A, 0x0C, 0x0D, 0x0E,
					  0x0F, 0x10, 0x14, 0x1B, 0x1D, 0x1E, 0x20, 0x2B, 0x2C,
					  0x40, 0x7F};

	for (size_t i = 0; i < sizeof(unknown); i++) {
		uint8_t body[] = {unknown[i], 0x00, 0x00, 0x00, 0x00};
		struct mqtt_props p;

		ck_assert_msg(mqtt_prop_type(unknown[i]) == MQTT_PROP_TYPE_NONE, "id 0x%02x",
			      unknown[i]);
		ck_assert_msg(strcmp(mqtt_prop_name(unknown[i]), "unknown") == 0, "id 0x%02x",
			      unknown[i]);
		for (int t = 0; t < 16; t++) {
			ck_assert_msg(!mqtt_prop_allowed(unknown[i], t), "id 0x%02x", unknown[i]);
			ck_assert_msg(read_block(body, sizeof(body), t, &p) == MQTT_ERR_MALFORMED,
				      "id 0x%02x in %s", unknown[i], packet_name(t));
		}
	}
	ck_assert_int_eq(mqtt_prop_type(-1), MQTT_PROP_TYPE_NONE);
	ck_assert_int_eq(mqtt_prop_type(1000), MQTT_PROP_TYPE_NONE);
	ck_assert_str_eq(mqtt_prop_name(-5), "unknown");
	/* Two-byte identifiers (128 and above) name no property. */
	{
		const uint8_t body[] = {0x80, 0x01, 0x00};
		struct mqtt_props p;
		ck_assert_int_eq(read_block(body, sizeof(body), MQTT_PUBLISH, &p), MQTT_ERR_MALFORMED);
	}
}
END_TEST

START_TEST(test_duplicates)
{
	struct fails fails = {0};

	for (size_t i = 0; i < NSPECS; i++) {
		const struct prop_spec *s = &specs[i];

		for (int t = 0; t < 16; t++) {
			uint8_t body[32];
			size_t len = 0;
			struct mqtt_props p;
			int want, rc;

			if (!((s->packets >> t) & 1u))
				continue;
			put_spec(body, &len, s);
			put_spec(body, &len, s);
			if (s->id == MQTT_PROP_USER_PROPERTY)
				want = MQTT_OK;
			else if (s->id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER && t == MQTT_PUBLISH)
				want = MQTT_OK;
			else
				want = MQTT_ERR_PROTOCOL;
			rc = read_block(body, len, t, &p);
			if (rc != want)
				fail_note(&fails, "case %s twice in %s: rc %d, want %d", s->name,
					  packet_name(t), rc, want);
		}
	}
	FAILS_CHECK(&fails);
}
END_TEST

START_TEST(test_repeatable_counts)
{
	const uint8_t users[] = {
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, '1',
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, '2', /* same name again: allowed */
		0x26, 0x00, 0x00, 0x00, 0x00,           /* empty name and value */
	};
	const uint8_t subids[] = {0x0B, 0x05, 0x0B, 0xFF, 0x7F, 0x0B, 0x05};
	struct mqtt_props p;

	ck_assert_int_eq(read_block(users, sizeof(users), MQTT_CONNECT, &p), MQTT_OK);
	ck_assert_uint_eq(p.user_property_count, 3);
	ck_assert_int_eq(read_block(subids, sizeof(subids), MQTT_PUBLISH, &p), MQTT_OK);
	ck_assert_uint_eq(p.subscription_id_count, 3);
	ck_assert_uint_eq(p.subscription_id, 5); /* the first one */
	ck_assert_int_eq(read_block(subids, 2, MQTT_SUBSCRIBE, &p), MQTT_OK);
	ck_assert_uint_eq(p.subscription_id, 5);
	ck_assert_uint_eq(p.subscription_id_count, 1);
	ck_assert_int_eq(read_block(subids, 5, MQTT_SUBSCRIBE, &p), MQTT_ERR_PROTOCOL);
}
END_TEST

struct range_case {
	const char *name;
	int packet;
	uint8_t bytes[8];
	size_t len;
	int rc;
};

static const struct range_case range_cases[] = {
	{"receive maximum 0 (CONNECT)", MQTT_CONNECT, V(0x21, 0x00, 0x00), MQTT_ERR_PROTOCOL},
	{"receive maximum 0 (CONNACK)", MQTT_CONNACK, V(0x21, 0x00, 0x00), MQTT_ERR_PROTOCOL},
	{"receive maximum 1", MQTT_CONNECT, V(0x21, 0x00, 0x01), MQTT_OK},
	{"receive maximum 65535", MQTT_CONNACK, V(0x21, 0xFF, 0xFF), MQTT_OK},
	{"maximum packet size 0 (CONNECT)", MQTT_CONNECT, V(0x27, 0, 0, 0, 0), MQTT_ERR_PROTOCOL},
	{"maximum packet size 0 (CONNACK)", MQTT_CONNACK, V(0x27, 0, 0, 0, 0), MQTT_ERR_PROTOCOL},
	{"maximum packet size 1", MQTT_CONNECT, V(0x27, 0, 0, 0, 1), MQTT_OK},
	{"maximum packet size max", MQTT_CONNECT, V(0x27, 0xFF, 0xFF, 0xFF, 0xFF), MQTT_OK},
	{"payload format 2", MQTT_PUBLISH, V(0x01, 0x02), MQTT_ERR_PROTOCOL},
	{"payload format 2 (will)", MQTT_PROPS_WILL, V(0x01, 0x02), MQTT_ERR_PROTOCOL},
	{"payload format 0", MQTT_PUBLISH, V(0x01, 0x00), MQTT_OK},
	{"request problem info 2", MQTT_CONNECT, V(0x17, 0x02), MQTT_ERR_PROTOCOL},
	{"request problem info 255", MQTT_CONNECT, V(0x17, 0xFF), MQTT_ERR_PROTOCOL},
	{"request response info 2", MQTT_CONNECT, V(0x19, 0x02), MQTT_ERR_PROTOCOL},
	{"retain available 2", MQTT_CONNACK, V(0x25, 0x02), MQTT_ERR_PROTOCOL},
	{"wildcard available 2", MQTT_CONNACK, V(0x28, 0x02), MQTT_ERR_PROTOCOL},
	{"subid available 2", MQTT_CONNACK, V(0x29, 0x02), MQTT_ERR_PROTOCOL},
	{"shared available 2", MQTT_CONNACK, V(0x2A, 0x02), MQTT_ERR_PROTOCOL},
	{"maximum qos 2", MQTT_CONNACK, V(0x24, 0x02), MQTT_ERR_PROTOCOL},
	{"maximum qos 3", MQTT_CONNACK, V(0x24, 0x03), MQTT_ERR_PROTOCOL},
	{"maximum qos 0", MQTT_CONNACK, V(0x24, 0x00), MQTT_OK},
	{"subscription id 0 (PUBLISH)", MQTT_PUBLISH, V(0x0B, 0x00), MQTT_ERR_PROTOCOL},
	{"subscription id 0 (SUBSCRIBE)", MQTT_SUBSCRIBE, V(0x0B, 0x00), MQTT_ERR_PROTOCOL},
	{"subscription id 0, two bytes", MQTT_SUBSCRIBE, V(0x0B, 0x80, 0x00), MQTT_ERR_PROTOCOL},
	{"subscription id max", MQTT_SUBSCRIBE, V(0x0B, 0xFF, 0xFF, 0xFF, 0x7F), MQTT_OK},
	{"subscription id five bytes", MQTT_SUBSCRIBE, V(0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x01),
	 MQTT_ERR_MALFORMED},
	{"subscription id truncated", MQTT_SUBSCRIBE, V(0x0B, 0x80), MQTT_ERR_MALFORMED},
	{"u16 truncated", MQTT_CONNACK, V(0x13, 0x00), MQTT_ERR_MALFORMED},
	{"u32 truncated", MQTT_PUBLISH, V(0x02, 0x00, 0x00, 0x00), MQTT_ERR_MALFORMED},
	{"byte missing", MQTT_PUBLISH, V(0x01), MQTT_ERR_MALFORMED},
	{"string truncated", MQTT_PUBLISH, V(0x03, 0x00, 0x05, 'a', 'b'), MQTT_ERR_MALFORMED},
	{"string length cut", MQTT_PUBLISH, V(0x03, 0x00), MQTT_ERR_MALFORMED},
	{"string bad utf-8", MQTT_PUBLISH, V(0x03, 0x00, 0x02, 0xC0, 0x80), MQTT_ERR_MALFORMED},
	{"string with U+0000", MQTT_PUBLISH, V(0x08, 0x00, 0x01, 0x00), MQTT_ERR_MALFORMED},
	{"binary may hold U+0000", MQTT_PUBLISH, V(0x09, 0x00, 0x01, 0x00), MQTT_OK},
	{"binary truncated", MQTT_PUBLISH, V(0x09, 0x00, 0x03, 0x00), MQTT_ERR_MALFORMED},
	{"pair name bad utf-8", MQTT_PUBLISH, V(0x26, 0x00, 0x01, 0xFF, 0x00, 0x00),
	 MQTT_ERR_MALFORMED},
	{"pair value bad utf-8", MQTT_PUBLISH, V(0x26, 0x00, 0x00, 0x00, 0x01, 0x80),
	 MQTT_ERR_MALFORMED},
	{"pair value missing", MQTT_PUBLISH, V(0x26, 0x00, 0x01, 'k'), MQTT_ERR_MALFORMED},
	{"identifier varint truncated", MQTT_PUBLISH, V(0x81), MQTT_ERR_MALFORMED},
};

START_TEST(test_ranges_and_shapes)
{
	struct fails fails = {0};

	for (size_t i = 0; i < sizeof(range_cases) / sizeof(range_cases[0]); i++) {
		const struct range_case *c = &range_cases[i];
		struct mqtt_props p;
		int rc = read_block(c->bytes, c->len, c->packet, &p);

		if (rc != c->rc)
			fail_note(&fails, "case %s: rc %d, want %d", c->name, rc, c->rc);
	}
	FAILS_CHECK(&fails);
}
END_TEST

/* A value may not run past its block, even when the bytes exist beyond it. */
START_TEST(test_block_boundary)
{
	/* Block of 3 bytes: content type claiming 5 bytes; "hello" follows the block. */
	const uint8_t bytes[] = {0x03, 0x03, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'};
	uint8_t *buf = malloc(sizeof(bytes));
	struct pkt_reader r;
	struct mqtt_props p;

	ck_assert_ptr_nonnull(buf);
	memcpy(buf, bytes, sizeof(bytes));
	pkt_reader_init(&r, buf, sizeof(bytes));
	ck_assert_int_eq(mqtt_props_read(&r, MQTT_PUBLISH, &p), MQTT_ERR_MALFORMED);

	/* The same block with the right length leaves the rest for the caller. */
	buf[0] = 0x08;
	pkt_reader_init(&r, buf, sizeof(bytes));
	ck_assert_int_eq(mqtt_props_read(&r, MQTT_PUBLISH, &p), MQTT_OK);
	ck_assert_uint_eq(r.pos, 9);
	ck_assert_uint_eq(p.content_type.len, 5);
	ck_assert_int_eq(memcmp(p.content_type.data, "hello", 5), 0);
	ck_assert_ptr_eq(p.raw.data, buf + 1);
	ck_assert_uint_eq(p.raw.len, 8);

	/* A u32 split by the end of the block. */
	const uint8_t split[] = {0x03, 0x02, 0x00, 0x00, 0x00, 0x10};
	memcpy(buf, split, sizeof(split));
	pkt_reader_init(&r, buf, sizeof(split));
	ck_assert_int_eq(mqtt_props_read(&r, MQTT_PUBLISH, &p), MQTT_ERR_MALFORMED);
	free(buf);
}
END_TEST

START_TEST(test_truncated_blocks)
{
	struct pkt_reader r;
	struct mqtt_props p;
	uint8_t *buf;

	/* No length at all. */
	buf = malloc(1);
	ck_assert_ptr_nonnull(buf);
	pkt_reader_init(&r, buf, 0);
	ck_assert_int_eq(mqtt_props_read(&r, MQTT_PUBLISH, &p), MQTT_ERR_MALFORMED);
	free(buf);

	/* Length varint cut short. */
	buf = malloc(1);
	ck_assert_ptr_nonnull(buf);
	buf[0] = 0x80;
	pkt_reader_init(&r, buf, 1);
	ck_assert_int_eq(mqtt_props_read(&r, MQTT_PUBLISH, &p), MQTT_ERR_MALFORMED);
	free(buf);

	/* Length of five bytes. */
	buf = malloc(6);
	ck_assert_ptr_nonnull(buf);
	memcpy(buf, (const uint8_t[]){0x80, 0x80, 0x80, 0x80, 0x00, 0x00}, 6);
	pkt_reader_init(&r, buf, 6);
	ck_assert_int_eq(mqtt_props_read(&r, MQTT_PUBLISH, &p), MQTT_ERR_MALFORMED);
	free(buf);

	/* Every truncation of a valid block of several properties. */
	const uint8_t full[] = {0x0E, 0x02, 0x00, 0x00, 0x00, 0x3C, 0x26, 0x00, 0x01,
				'k',  0x00, 0x01, 'v',  0x01, 0x01};
	for (size_t n = 0; n < sizeof(full); n++) {
		buf = malloc(n ? n : 1);
		ck_assert_ptr_nonnull(buf);
		memcpy(buf, full, n);
		pkt_reader_init(&r, buf, (uint32_t)n);
		ck_assert_msg(mqtt_props_read(&r, MQTT_PUBLISH, &p) == MQTT_ERR_MALFORMED,
			      "truncated to %zu", n);
		free(buf);
	}
	buf = malloc(sizeof(full));
	ck_assert_ptr_nonnull(buf);
	memcpy(buf, full, sizeof(full));
	pkt_reader_init(&r, buf, sizeof(full));
	ck_assert_int_eq(mqtt_props_read(&r, MQTT_PUBLISH, &p), MQTT_OK);
	ck_assert_uint_eq(p.message_expiry, 60);
	ck_assert_uint_eq(p.payload_format, 1);
	ck_assert_uint_eq(p.user_property_count, 1);
	free(buf);
}
END_TEST

START_TEST(test_empty_block_defaults)
{
	struct mqtt_props p;

	memset(&p, 0xA5, sizeof(p));
	ck_assert_int_eq(read_block(NULL, 0, MQTT_CONNACK, &p), MQTT_OK);
	ck_assert_uint_eq(p.present, 0);
	ck_assert_uint_eq(p.raw.len, 0);
	/* Absent properties take the specification's defaults. */
	ck_assert_uint_eq(p.max_qos, 2);
	ck_assert_uint_eq(p.retain_available, 1);
	ck_assert_uint_eq(p.wildcard_available, 1);
	ck_assert_uint_eq(p.subid_available, 1);
	ck_assert_uint_eq(p.shared_available, 1);
	ck_assert_uint_eq(p.request_problem_info, 1);
	ck_assert_uint_eq(p.request_response_info, 0);
	ck_assert_uint_eq(p.payload_format, 0);
	ck_assert_uint_eq(p.receive_maximum, 0);
	ck_assert_uint_eq(p.max_packet_size, 0);
	ck_assert_uint_eq(p.session_expiry, 0);
	ck_assert_uint_eq(p.subscription_id_count, 0);
	ck_assert_uint_eq(p.user_property_count, 0);
}
END_TEST

static bool bytes_eq(struct mqtt_bytes b, const char *s, size_t n)
{
	return b.len == n && (n == 0 || memcmp(b.data, s, n) == 0);
}

/* Decoded values land in the right fields. */
START_TEST(test_values_connack)
{
	const uint8_t body[] = {
		0x11, 0x00, 0x00, 0x0E, 0x10,       /* session expiry 3600 */
		0x12, 0x00, 0x03, 'c', 'i', 'd',    /* assigned client id */
		0x13, 0x01, 0x2C,                   /* server keep alive 300 */
		0x15, 0x00, 0x02, 'm', '1',         /* auth method */
		0x16, 0x00, 0x02, 0x00, 0x01,       /* auth data */
		0x1A, 0x00, 0x02, 'r', 'i',         /* response information */
		0x1C, 0x00, 0x02, 's', 'r',         /* server reference */
		0x1F, 0x00, 0x02, 'o', 'k',         /* reason string */
		0x21, 0x00, 0x14,                   /* receive maximum 20 */
		0x22, 0x00, 0x0A,                   /* topic alias maximum 10 */
		0x24, 0x01,                         /* maximum qos 1 */
		0x25, 0x00,                         /* retain available 0 */
		0x27, 0x00, 0x00, 0x40, 0x00,       /* maximum packet size 16384 */
		0x28, 0x00, 0x29, 0x00, 0x2A, 0x00, /* wildcard/subid/shared unavailable */
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',
	};
	struct mqtt_props p;

	ck_assert_int_eq(read_block(body, sizeof(body), MQTT_CONNACK, &p), MQTT_OK);
	ck_assert_uint_eq(p.session_expiry, 3600);
	ck_assert(bytes_eq(p.assigned_client_id, "cid", 3));
	ck_assert_uint_eq(p.server_keepalive, 300);
	ck_assert(bytes_eq(p.auth_method, "m1", 2));
	ck_assert(bytes_eq(p.auth_data, "\x00\x01", 2));
	ck_assert(bytes_eq(p.response_info, "ri", 2));
	ck_assert(bytes_eq(p.server_reference, "sr", 2));
	ck_assert(bytes_eq(p.reason_string, "ok", 2));
	ck_assert_uint_eq(p.receive_maximum, 20);
	ck_assert_uint_eq(p.topic_alias_maximum, 10);
	ck_assert_uint_eq(p.max_qos, 1);
	ck_assert_uint_eq(p.retain_available, 0);
	ck_assert_uint_eq(p.max_packet_size, 16384);
	ck_assert_uint_eq(p.wildcard_available, 0);
	ck_assert_uint_eq(p.subid_available, 0);
	ck_assert_uint_eq(p.shared_available, 0);
	ck_assert_uint_eq(p.user_property_count, 1);
	for (size_t i = 0; i < NSPECS; i++) {
		bool want = (specs[i].packets >> MQTT_CONNACK) & 1u;
		ck_assert_msg(mqtt_props_has(&p, specs[i].id) == want, "case %s", specs[i].name);
	}
}
END_TEST

START_TEST(test_values_connect_publish_will)
{
	const uint8_t connect[] = {
		0x11, 0xFF, 0xFF, 0xFF, 0xFF, /* session expiry: never */
		0x21, 0x00, 0x05,             /* receive maximum */
		0x27, 0x00, 0x00, 0x10, 0x00, /* maximum packet size 4096 */
		0x22, 0x00, 0x03,             /* topic alias maximum */
		0x19, 0x01, 0x17, 0x00,       /* request response 1, request problem 0 */
	};
	const uint8_t publish[] = {
		0x01, 0x01,                         /* payload format: UTF-8 */
		0x02, 0x00, 0x00, 0x00, 0x1E,       /* message expiry 30 */
		0x23, 0x00, 0x04,                   /* topic alias 4 */
		0x08, 0x00, 0x03, 'r', '/', 't',    /* response topic */
		0x09, 0x00, 0x02, 0xCA, 0xFE,       /* correlation data */
		0x0B, 0x81, 0x01,                   /* subscription id 129 */
		0x03, 0x00, 0x04, 'j', 's', 'o', 'n', /* content type */
	};
	const uint8_t will[] = {
		0x18, 0x00, 0x00, 0x00, 0x0A, /* will delay 10 */
		0x01, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x02,
	};
	struct mqtt_props p;

	ck_assert_int_eq(read_block(connect, sizeof(connect), MQTT_CONNECT, &p), MQTT_OK);
	ck_assert_uint_eq(p.session_expiry, 0xFFFFFFFFu);
	ck_assert_uint_eq(p.receive_maximum, 5);
	ck_assert_uint_eq(p.max_packet_size, 4096);
	ck_assert_uint_eq(p.topic_alias_maximum, 3);
	ck_assert_uint_eq(p.request_response_info, 1);
	ck_assert_uint_eq(p.request_problem_info, 0);

	ck_assert_int_eq(read_block(publish, sizeof(publish), MQTT_PUBLISH, &p), MQTT_OK);
	ck_assert_uint_eq(p.payload_format, 1);
	ck_assert_uint_eq(p.message_expiry, 30);
	ck_assert_uint_eq(p.topic_alias, 4);
	ck_assert(bytes_eq(p.response_topic, "r/t", 3));
	ck_assert(bytes_eq(p.correlation_data, "\xCA\xFE", 2));
	ck_assert_uint_eq(p.subscription_id, 129);
	ck_assert_uint_eq(p.subscription_id_count, 1);
	ck_assert(bytes_eq(p.content_type, "json", 4));

	ck_assert_int_eq(read_block(will, sizeof(will), MQTT_PROPS_WILL, &p), MQTT_OK);
	ck_assert_uint_eq(p.will_delay, 10);
	ck_assert_uint_eq(p.payload_format, 0);
	ck_assert_uint_eq(p.message_expiry, 2);
	/* Topic alias and subscription identifiers have no place in a will. */
	ck_assert_int_eq(read_block((const uint8_t[]){0x23, 0x00, 0x01}, 3, MQTT_PROPS_WILL, &p),
			 MQTT_ERR_MALFORMED);
	ck_assert_int_eq(read_block((const uint8_t[]){0x0B, 0x01}, 2, MQTT_PROPS_WILL, &p),
			 MQTT_ERR_MALFORMED);
}
END_TEST

/* mqtt_props_next() yields every property in wire order with its value. */
START_TEST(test_iteration_order)
{
	const uint8_t body[] = {
		0x26, 0x00, 0x02, 'k', '1', 0x00, 0x02, 'v', '1',
		0x03, 0x00, 0x01, 't',
		0x0B, 0x07,
		0x26, 0x00, 0x02, 'k', '2', 0x00, 0x00,
		0x02, 0x00, 0x00, 0x01, 0x00,
		0x0B, 0xFF, 0xFF, 0x03,
		0x09, 0x00, 0x00,
		0x23, 0x00, 0x02,
		0x01, 0x01,
	};
	struct {
		uint8_t id;
		uint32_t value;
		const char *data;
		size_t dlen;
		const char *data2;
		size_t d2len;
	} want[] = {
		{0x26, 0, "k1", 2, "v1", 2},
		{0x03, 0, "t", 1, "", 0},
		{0x0B, 7, "", 0, "", 0},
		{0x26, 0, "k2", 2, "", 0},
		{0x02, 256, "", 0, "", 0},
		{0x0B, 65535, "", 0, "", 0},
		{0x09, 0, "", 0, "", 0},
		{0x23, 2, "", 0, "", 0},
		{0x01, 1, "", 0, "", 0},
	};
	size_t n;
	uint8_t *buf = make_block(body, sizeof(body), &n);
	struct pkt_reader r;
	struct mqtt_props p;
	struct mqtt_prop it;
	uint32_t pos = 0;
	size_t count = 0;

	pkt_reader_init(&r, buf, (uint32_t)n);
	ck_assert_int_eq(mqtt_props_read(&r, MQTT_PUBLISH, &p), MQTT_OK);
	ck_assert_uint_eq(p.subscription_id_count, 2);
	ck_assert_uint_eq(p.subscription_id, 7);
	ck_assert_uint_eq(p.user_property_count, 2);
	while (mqtt_props_next(&p, &pos, &it)) {
		ck_assert_msg(count < sizeof(want) / sizeof(want[0]), "too many properties");
		ck_assert_msg(it.id == want[count].id, "property %zu: id 0x%02x", count, it.id);
		ck_assert_msg(it.value == want[count].value, "property %zu: value %u", count,
			      it.value);
		ck_assert_msg(bytes_eq(it.data, want[count].data, want[count].dlen),
			      "property %zu: data", count);
		ck_assert_msg(bytes_eq(it.data2, want[count].data2, want[count].d2len),
			      "property %zu: data2", count);
		count++;
	}
	ck_assert_uint_eq(count, sizeof(want) / sizeof(want[0]));
	ck_assert_uint_eq(pos, p.raw.len);
	/* Past the end it stays at the end. */
	ck_assert(!mqtt_props_next(&p, &pos, &it));
	free(buf);

	/* An empty block yields nothing. */
	ck_assert_int_eq(read_block(NULL, 0, MQTT_PUBLISH, &p), MQTT_OK);
	pos = 0;
	ck_assert(!mqtt_props_next(&p, &pos, &it));
}
END_TEST

START_TEST(test_copy_forwardable)
{
	const uint8_t body[] = {
		0x23, 0x00, 0x02,                               /* topic alias: dropped */
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b',          /* kept */
		0x02, 0x00, 0x00, 0x00, 0x3C,                   /* message expiry: dropped */
		0x01, 0x01,                                     /* kept */
		0x0B, 0x07,                                     /* subscription id: dropped */
		0x03, 0x00, 0x02, 'c', 't',                     /* kept */
		0x08, 0x00, 0x01, 'r',                          /* kept */
		0x09, 0x00, 0x01, 0x99,                         /* kept */
		0x26, 0x00, 0x01, 'c', 0x00, 0x01, 'd',          /* kept */
		0x0B, 0x80, 0x02,                               /* dropped */
	};
	const uint8_t want[] = {
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b',
		0x01, 0x01,
		0x03, 0x00, 0x02, 'c', 't',
		0x08, 0x00, 0x01, 'r',
		0x09, 0x00, 0x01, 0x99,
		0x26, 0x00, 0x01, 'c', 0x00, 0x01, 'd',
	};
	size_t n;
	uint8_t *buf = make_block(body, sizeof(body), &n);
	struct pkt_reader r;
	struct mqtt_props p, q;
	uint8_t *out;
	uint32_t len;

	pkt_reader_init(&r, buf, (uint32_t)n);
	ck_assert_int_eq(mqtt_props_read(&r, MQTT_PUBLISH, &p), MQTT_OK);
	out = malloc(p.raw.len);
	ck_assert_ptr_nonnull(out);
	len = mqtt_props_copy_forwardable(&p, out);
	ck_assert_uint_eq(len, sizeof(want));
	ck_assert_int_eq(memcmp(out, want, sizeof(want)), 0);

	/* The copy is itself a valid PUBLISH block without per-hop properties. */
	ck_assert_int_eq(read_block(out, len, MQTT_PUBLISH, &q), MQTT_OK);
	ck_assert(!mqtt_props_has(&q, MQTT_PROP_TOPIC_ALIAS));
	ck_assert(!mqtt_props_has(&q, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL));
	ck_assert(!mqtt_props_has(&q, MQTT_PROP_SUBSCRIPTION_IDENTIFIER));
	ck_assert_uint_eq(q.user_property_count, 2);
	free(out);
	free(buf);

	/* Nothing forwardable: nothing written. */
	const uint8_t none[] = {0x23, 0x00, 0x02, 0x0B, 0x01};
	buf = make_block(none, sizeof(none), &n);
	pkt_reader_init(&r, buf, (uint32_t)n);
	ck_assert_int_eq(mqtt_props_read(&r, MQTT_PUBLISH, &p), MQTT_OK);
	out = malloc(p.raw.len);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(mqtt_props_copy_forwardable(&p, out), 0);
	free(out);
	free(buf);
}
END_TEST

START_TEST(test_writers)
{
	uint8_t buf[64];
	struct pkt_writer w;
	uint32_t size = mqtt_prop_size_u8() + mqtt_prop_size_u16() + mqtt_prop_size_u32() +
			mqtt_prop_size_varint(200) + mqtt_prop_size_bin(3) + mqtt_prop_size_pair(1, 2);
	const uint8_t want[] = {
		0x01, 0x01,
		0x21, 0x01, 0x00,
		0x02, 0x00, 0x01, 0x00, 0x00,
		0x0B, 0xC8, 0x01,
		0x03, 0x00, 0x03, 'a', '/', 'b',
		0x26, 0x00, 0x01, 'k', 0x00, 0x02, 'v', 'w',
	};
	struct mqtt_props p;

	ck_assert_uint_eq(size, sizeof(want));
	ck_assert_uint_eq(mqtt_prop_size_varint(127), 2);
	ck_assert_uint_eq(mqtt_prop_size_varint(128), 3);
	pkt_writer_init(&w, buf, size);
	pkt_write_prop_u8(&w, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, 1);
	pkt_write_prop_u16(&w, MQTT_PROP_RECEIVE_MAXIMUM, 256);
	pkt_write_prop_u32(&w, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, 65536);
	pkt_write_prop_varint(&w, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, 200);
	pkt_write_prop_bin(&w, MQTT_PROP_CONTENT_TYPE, "a/b", 3);
	pkt_write_prop_pair(&w, MQTT_PROP_USER_PROPERTY, "k", 1, "vw", 2);
	ck_assert_uint_eq(w.pos, size);
	ck_assert_int_eq(memcmp(buf, want, sizeof(want)), 0);

	/* What the writers produce, the reader accepts (receive maximum is no PUBLISH property). */
	ck_assert_int_eq(read_block(buf, size, MQTT_PUBLISH, &p), MQTT_ERR_MALFORMED); /* 0x21 */
	ck_assert_int_eq(read_block(buf + 5, size - 5, MQTT_PUBLISH, &p), MQTT_OK);
	ck_assert_uint_eq(p.message_expiry, 65536);
	ck_assert_uint_eq(p.subscription_id, 200);
	ck_assert(bytes_eq(p.content_type, "a/b", 3));
}
END_TEST

/* --- Round trips through the writers, for every property identifier --- */

/* A byte value that differs from the property's default, so that storing it shows. */
static uint8_t byte_value(uint8_t id)
{
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
	case MQTT_PROP_REQUEST_RESPONSE_INFORMATION:
		return 1;
	default:
		return 0; /* defaults are 1 (or 2 for maximum QoS) */
	}
}

/* The decoded struct field holding a numeric property (count of user properties). */
static uint32_t decoded_number(const struct mqtt_props *p, uint8_t id)
{
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR: return p->payload_format;
	case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL: return p->message_expiry;
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER: return p->subscription_id;
	case MQTT_PROP_SESSION_EXPIRY_INTERVAL: return p->session_expiry;
	case MQTT_PROP_SERVER_KEEP_ALIVE: return p->server_keepalive;
	case MQTT_PROP_REQUEST_PROBLEM_INFORMATION: return p->request_problem_info;
	case MQTT_PROP_WILL_DELAY_INTERVAL: return p->will_delay;
	case MQTT_PROP_REQUEST_RESPONSE_INFORMATION: return p->request_response_info;
	case MQTT_PROP_RECEIVE_MAXIMUM: return p->receive_maximum;
	case MQTT_PROP_TOPIC_ALIAS_MAXIMUM: return p->topic_alias_maximum;
	case MQTT_PROP_TOPIC_ALIAS: return p->topic_alias;
	case MQTT_PROP_MAXIMUM_QOS: return p->max_qos;
	case MQTT_PROP_RETAIN_AVAILABLE: return p->retain_available;
	case MQTT_PROP_USER_PROPERTY: return p->user_property_count;
	case MQTT_PROP_MAXIMUM_PACKET_SIZE: return p->max_packet_size;
	case MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE: return p->wildcard_available;
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE: return p->subid_available;
	case MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE: return p->shared_available;
	default: return 0xDEADBEEF;
	}
}

/* The decoded struct field holding a string or binary property, NULL for others. */
static const struct mqtt_bytes *decoded_bytes(const struct mqtt_props *p, uint8_t id)
{
	switch (id) {
	case MQTT_PROP_CONTENT_TYPE: return &p->content_type;
	case MQTT_PROP_RESPONSE_TOPIC: return &p->response_topic;
	case MQTT_PROP_CORRELATION_DATA: return &p->correlation_data;
	case MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER: return &p->assigned_client_id;
	case MQTT_PROP_AUTHENTICATION_METHOD: return &p->auth_method;
	case MQTT_PROP_AUTHENTICATION_DATA: return &p->auth_data;
	case MQTT_PROP_RESPONSE_INFORMATION: return &p->response_info;
	case MQTT_PROP_SERVER_REFERENCE: return &p->server_reference;
	case MQTT_PROP_REASON_STRING: return &p->reason_string;
	default: return NULL;
	}
}

/* One value to write: a number, or bytes (a name and value for a pair). */
struct rt_value {
	uint32_t num;
	const char *data;
	uint16_t len;
	const char *data2;
	uint16_t len2;
};

/* Values of each type to round-trip: the edges and something in between. */
static size_t rt_values(const struct prop_spec *s, struct rt_value *out)
{
	static const char utf8[] = "a/b/\xC3\xBC\xE2\x82\xAC"; /* "a/b/ü€" */
	static const char bin[] = {0x00, (char)0xFF, 0x01, 0x00};
	size_t n = 0;

	switch (s->type) {
	case MQTT_PROP_TYPE_BYTE:
		out[n++] = (struct rt_value){.num = byte_value(s->id)};
		break;
	case MQTT_PROP_TYPE_U16:
		out[n++] = (struct rt_value){.num = 1};
		out[n++] = (struct rt_value){.num = 0x1234};
		out[n++] = (struct rt_value){.num = 0xFFFF};
		break;
	case MQTT_PROP_TYPE_U32:
		out[n++] = (struct rt_value){.num = 1};
		out[n++] = (struct rt_value){.num = 0x01020304};
		out[n++] = (struct rt_value){.num = 0xFFFFFFFFu};
		break;
	case MQTT_PROP_TYPE_VARINT:
		out[n++] = (struct rt_value){.num = 1};
		out[n++] = (struct rt_value){.num = 127};
		out[n++] = (struct rt_value){.num = 128};
		out[n++] = (struct rt_value){.num = 16383};
		out[n++] = (struct rt_value){.num = 16384};
		out[n++] = (struct rt_value){.num = 2097152};
		out[n++] = (struct rt_value){.num = 268435455};
		break;
	case MQTT_PROP_TYPE_STRING:
		out[n++] = (struct rt_value){.data = "", .len = 0};
		out[n++] = (struct rt_value){.data = utf8, .len = sizeof(utf8) - 1};
		break;
	case MQTT_PROP_TYPE_BINARY:
		out[n++] = (struct rt_value){.data = "", .len = 0};
		out[n++] = (struct rt_value){.data = bin, .len = sizeof(bin)};
		break;
	case MQTT_PROP_TYPE_PAIR:
		out[n++] = (struct rt_value){.data = "", .len = 0, .data2 = "", .len2 = 0};
		out[n++] = (struct rt_value){.data = "k", .len = 1, .data2 = utf8,
					     .len2 = sizeof(utf8) - 1};
		break;
	case MQTT_PROP_TYPE_NONE:
		break;
	}
	return n;
}

/* Writes one property with the writer of its type; returns the size it said it needs. */
static uint32_t rt_write(struct pkt_writer *w, const struct prop_spec *s, const struct rt_value *v)
{
	switch (s->type) {
	case MQTT_PROP_TYPE_BYTE:
		pkt_write_prop_u8(w, s->id, (uint8_t)v->num);
		return mqtt_prop_size_u8();
	case MQTT_PROP_TYPE_U16:
		pkt_write_prop_u16(w, s->id, (uint16_t)v->num);
		return mqtt_prop_size_u16();
	case MQTT_PROP_TYPE_U32:
		pkt_write_prop_u32(w, s->id, v->num);
		return mqtt_prop_size_u32();
	case MQTT_PROP_TYPE_VARINT:
		pkt_write_prop_varint(w, s->id, v->num);
		return mqtt_prop_size_varint(v->num);
	case MQTT_PROP_TYPE_STRING:
	case MQTT_PROP_TYPE_BINARY:
		pkt_write_prop_bin(w, s->id, v->data, v->len);
		return mqtt_prop_size_bin(v->len);
	case MQTT_PROP_TYPE_PAIR:
		pkt_write_prop_pair(w, s->id, v->data, v->len, v->data2, v->len2);
		return mqtt_prop_size_pair(v->len, v->len2);
	case MQTT_PROP_TYPE_NONE:
		break;
	}
	return 0;
}

/*
 * Every property, written with the writer of its type, reads back with its
 * value in every packet type that may carry it (both in the decoded struct
 * and through the iterator), and is refused as malformed in every other.
 */
START_TEST(test_roundtrip_every_property)
{
	struct fails fails = {0};
	unsigned checked = 0;

	for (size_t i = 0; i < NSPECS; i++) {
		const struct prop_spec *s = &specs[i];
		struct rt_value values[8];
		size_t nvalues = rt_values(s, values);

		if (nvalues == 0)
			fail_note(&fails, "case %s: no values for its type", s->name);
		for (size_t k = 0; k < nvalues; k++) {
			const struct rt_value *v = &values[k];
			uint8_t buf[64];
			struct pkt_writer w;
			uint32_t size;

			pkt_writer_init(&w, buf, sizeof(buf));
			size = rt_write(&w, s, v);
			if (w.pos != size || w.pos == 0) {
				fail_note(&fails, "case %s value %zu: wrote %u, size %u", s->name, k,
					  w.pos, size);
				continue;
			}
			for (int t = 0; t < 16; t++) {
				bool want = (s->packets >> t) & 1u;
				struct mqtt_props p;
				struct mqtt_prop it;
				uint32_t pos = 0;
				int rc = read_block(buf, w.pos, t, &p);

				if (mqtt_prop_allowed(s->id, t) != want)
					fail_note(&fails, "case %s: allowed in %s is %d", s->name,
						  packet_name(t), !want);
				if (!want) {
					if (rc != MQTT_ERR_MALFORMED)
						fail_note(&fails, "case %s in %s: rc %d, want malformed",
							  s->name, packet_name(t), rc);
					continue;
				}
				if (rc != MQTT_OK) {
					fail_note(&fails, "case %s value %zu in %s: rc %d", s->name, k,
						  packet_name(t), rc);
					continue;
				}
				checked++;
				if (p.present != (uint64_t)1 << s->id)
					fail_note(&fails, "case %s in %s: present %llx", s->name,
						  packet_name(t), (unsigned long long)p.present);
				if (!mqtt_props_next(&p, &pos, &it) || it.id != s->id ||
				    pos != p.raw.len || mqtt_props_next(&p, &pos, &it)) {
					fail_note(&fails, "case %s in %s: iteration", s->name,
						  packet_name(t));
					continue;
				}
				if (s->type == MQTT_PROP_TYPE_STRING || s->type == MQTT_PROP_TYPE_BINARY) {
					const struct mqtt_bytes *b = decoded_bytes(&p, s->id);
					if (!b || !bytes_eq(*b, v->data, v->len) ||
					    !bytes_eq(it.data, v->data, v->len))
						fail_note(&fails, "case %s value %zu in %s: bytes differ",
							  s->name, k, packet_name(t));
				} else if (s->type == MQTT_PROP_TYPE_PAIR) {
					if (!bytes_eq(it.data, v->data, v->len) ||
					    !bytes_eq(it.data2, v->data2, v->len2) ||
					    decoded_number(&p, s->id) != 1)
						fail_note(&fails, "case %s value %zu in %s: pair differs",
							  s->name, k, packet_name(t));
				} else if (it.value != v->num || decoded_number(&p, s->id) != v->num) {
					fail_note(&fails, "case %s in %s: wrote %u, read %u / %u", s->name,
						  packet_name(t), v->num, it.value,
						  decoded_number(&p, s->id));
				}
			}
		}
	}
	FAILS_CHECK(&fails);
	ck_assert_uint_gt(checked, 60);
}
END_TEST

/* A single-valued property twice, even with two different values, is a protocol error. */
START_TEST(test_roundtrip_duplicates)
{
	struct fails fails = {0};

	for (size_t i = 0; i < NSPECS; i++) {
		const struct prop_spec *s = &specs[i];
		struct rt_value values[8];
		size_t nvalues = rt_values(s, values);

		for (int t = 0; t < 16; t++) {
			uint8_t buf[128];
			struct pkt_writer w;
			struct mqtt_props p;
			int want, rc;

			if (!((s->packets >> t) & 1u))
				continue;
			pkt_writer_init(&w, buf, sizeof(buf));
			rt_write(&w, s, &values[0]);
			rt_write(&w, s, &values[nvalues - 1]);
			if (s->id == MQTT_PROP_USER_PROPERTY ||
			    (s->id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER && t == MQTT_PUBLISH))
				want = MQTT_OK;
			else
				want = MQTT_ERR_PROTOCOL;
			rc = read_block(buf, w.pos, t, &p);
			if (rc != want)
				fail_note(&fails, "case %s twice in %s: rc %d, want %d", s->name,
					  packet_name(t), rc, want);
			if (rc == MQTT_OK && decoded_number(&p, s->id) != values[0].num &&
			    s->id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER)
				fail_note(&fails, "case %s: the first identifier is kept", s->name);
		}
	}
	FAILS_CHECK(&fails);
}
END_TEST

/* Some packet type that may carry the property (the first in the table). */
static int some_allowed_packet(const struct prop_spec *s)
{
	for (int t = 0; t < 16; t++)
		if ((s->packets >> t) & 1u)
			return t;
	return -1;
}

/*
 * Values of the wrong length or type are refused: a value cut short by the
 * end of its block, a value followed by a stray byte inside the block, a
 * value written with the writer of a wider type (the rest reads as an
 * identifier 0, which names nothing), a four-byte property written with a
 * two-byte writer, a string or pair that is not valid UTF-8 or holds U+0000,
 * and a length prefix longer than what follows.
 */
START_TEST(test_roundtrip_wrong_shapes)
{
	struct fails fails = {0};

	for (size_t i = 0; i < NSPECS; i++) {
		const struct prop_spec *s = &specs[i];
		int t = some_allowed_packet(s);
		struct rt_value values[8];
		uint8_t buf[64];
		struct pkt_writer w;
		struct mqtt_props p;
		int rc;

		if (t < 0) {
			fail_note(&fails, "case %s: no packet carries it", s->name);
			continue;
		}
		rt_values(s, values);
		pkt_writer_init(&w, buf, sizeof(buf));
		rt_write(&w, s, &values[s->type == MQTT_PROP_TYPE_VARINT ? 6 : 0]);
		/* Every prefix of the property, down to the identifier alone. */
		for (uint32_t cut = 1; cut < w.pos; cut++) {
			rc = read_block(buf, cut, t, &p);
			if (rc != MQTT_ERR_MALFORMED)
				fail_note(&fails, "case %s cut to %u bytes: rc %d", s->name, cut, rc);
		}
		/* A stray byte after the value. */
		buf[w.pos] = 0x00;
		rc = read_block(buf, w.pos + 1, t, &p);
		if (rc != MQTT_ERR_MALFORMED)
			fail_note(&fails, "case %s with a stray byte: rc %d", s->name, rc);

		/* A wider writer than the type: the value reads right, the rest does not. */
		pkt_writer_init(&w, buf, sizeof(buf));
		switch (s->type) {
		case MQTT_PROP_TYPE_BYTE:
			pkt_write_prop_u16(&w, s->id, (uint16_t)(byte_value(s->id) << 8));
			break;
		case MQTT_PROP_TYPE_U16:
			pkt_write_prop_u32(&w, s->id, 0x00010000u);
			break;
		case MQTT_PROP_TYPE_U32:
			/* Narrower: two bytes where four belong. */
			pkt_write_prop_u16(&w, s->id, 0x0101);
			break;
		case MQTT_PROP_TYPE_VARINT:
			/* A continuation bit with nothing after it. */
			pkt_write_prop_u8(&w, s->id, 0x81);
			break;
		case MQTT_PROP_TYPE_STRING:
		case MQTT_PROP_TYPE_BINARY:
			/* A one-byte value where a length-prefixed one belongs. */
			pkt_write_prop_u8(&w, s->id, 0x00);
			break;
		case MQTT_PROP_TYPE_PAIR:
			/* A lone string where a pair belongs. */
			pkt_write_prop_bin(&w, s->id, "k", 1);
			break;
		case MQTT_PROP_TYPE_NONE:
			break;
		}
		rc = read_block(buf, w.pos, t, &p);
		if (rc != MQTT_ERR_MALFORMED)
			fail_note(&fails, "case %s written with the wrong width: rc %d", s->name, rc);

		/* A length prefix claiming more than the block holds. */
		if (s->type == MQTT_PROP_TYPE_STRING || s->type == MQTT_PROP_TYPE_BINARY ||
		    s->type == MQTT_PROP_TYPE_PAIR) {
			const uint8_t body[] = {s->id, 0x00, 0x04, 'a', 'b', 'c'};
			rc = read_block(body, sizeof(body), t, &p);
			if (rc != MQTT_ERR_MALFORMED)
				fail_note(&fails, "case %s with a long length: rc %d", s->name, rc);
		}
		/* Strings must be well-formed UTF-8 without U+0000; binary data may hold anything. */
		if (s->type == MQTT_PROP_TYPE_STRING || s->type == MQTT_PROP_TYPE_BINARY ||
		    s->type == MQTT_PROP_TYPE_PAIR) {
			static const char *const bad[] = {"\xC0\x80", "\xED\xA0\x80", "\xFF", "a\x00"};
			static const uint16_t bad_len[] = {2, 3, 1, 2};
			for (size_t b = 0; b < 4; b++) {
				int want = s->type == MQTT_PROP_TYPE_BINARY ? MQTT_OK : MQTT_ERR_MALFORMED;
				pkt_writer_init(&w, buf, sizeof(buf));
				if (s->type == MQTT_PROP_TYPE_PAIR)
					pkt_write_prop_pair(&w, s->id, "k", 1, bad[b], bad_len[b]);
				else
					pkt_write_prop_bin(&w, s->id, bad[b], bad_len[b]);
				rc = read_block(buf, w.pos, t, &p);
				if (rc != want)
					fail_note(&fails, "case %s with bad UTF-8 %zu: rc %d", s->name, b,
						  rc);
				if (s->type == MQTT_PROP_TYPE_PAIR) {
					pkt_writer_init(&w, buf, sizeof(buf));
					pkt_write_prop_pair(&w, s->id, bad[b], bad_len[b], "v", 1);
					if (read_block(buf, w.pos, t, &p) != MQTT_ERR_MALFORMED)
						fail_note(&fails, "case %s with a bad name %zu", s->name, b);
				}
			}
		}
	}
	FAILS_CHECK(&fails);
}
END_TEST

/* A will's properties as forwarded: the Will Delay Interval (and message expiry) stay behind. */
START_TEST(test_copy_forwardable_will)
{
	uint8_t body[128];
	struct pkt_writer w;
	struct mqtt_props p, q;
	uint8_t out[128];
	uint32_t len;

	pkt_writer_init(&w, body, sizeof(body));
	pkt_write_prop_u32(&w, MQTT_PROP_WILL_DELAY_INTERVAL, 30);
	pkt_write_prop_pair(&w, MQTT_PROP_USER_PROPERTY, "a", 1, "1", 1);
	pkt_write_prop_u8(&w, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, 1);
	pkt_write_prop_u32(&w, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, 60);
	pkt_write_prop_bin(&w, MQTT_PROP_CONTENT_TYPE, "text/plain", 10);
	pkt_write_prop_bin(&w, MQTT_PROP_RESPONSE_TOPIC, "r", 1);
	pkt_write_prop_bin(&w, MQTT_PROP_CORRELATION_DATA, "\x00\x01", 2);
	pkt_write_prop_pair(&w, MQTT_PROP_USER_PROPERTY, "a", 1, "2", 1);
	ck_assert_int_eq(read_block(body, w.pos, MQTT_PROPS_WILL, &p), MQTT_OK);
	ck_assert_uint_eq(p.will_delay, 30);
	len = mqtt_props_copy_forwardable(&p, out);
	ck_assert_uint_eq(len, w.pos - 2 * mqtt_prop_size_u32());
	/* What is left is a valid PUBLISH block, in the original order. */
	ck_assert_int_eq(read_block(out, len, MQTT_PUBLISH, &q), MQTT_OK);
	ck_assert(!mqtt_props_has(&q, MQTT_PROP_WILL_DELAY_INTERVAL));
	ck_assert(!mqtt_props_has(&q, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL));
	ck_assert_uint_eq(q.payload_format, 1);
	ck_assert(bytes_eq(q.content_type, "text/plain", 10));
	ck_assert(bytes_eq(q.response_topic, "r", 1));
	ck_assert(bytes_eq(q.correlation_data, "\x00\x01", 2));
	ck_assert_uint_eq(q.user_property_count, 2);
	{
		static const uint8_t order[] = {MQTT_PROP_USER_PROPERTY, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR,
						MQTT_PROP_CONTENT_TYPE, MQTT_PROP_RESPONSE_TOPIC,
						MQTT_PROP_CORRELATION_DATA, MQTT_PROP_USER_PROPERTY};
		struct mqtt_prop it;
		uint32_t pos = 0;
		size_t n = 0;
		while (mqtt_props_next(&q, &pos, &it)) {
			ck_assert_uint_lt(n, sizeof(order));
			ck_assert_uint_eq(it.id, order[n]);
			n++;
		}
		ck_assert_uint_eq(n, sizeof(order));
	}
	/* A will delay is no property of a PUBLISH. */
	ck_assert_int_eq(read_block(body, mqtt_prop_size_u32(), MQTT_PUBLISH, &q), MQTT_ERR_MALFORMED);
}
END_TEST

Suite *suite_property(void)
{
	Suite *s = suite_create("property");
	TCase *tc;

	tc = tcase_create("table");
	tcase_add_checked_fixture(tc, NULL, free_last_block);
	tcase_add_test(tc, test_placement_matrix);
	tcase_add_test(tc, test_unknown_ids);
	suite_add_tcase(s, tc);

	tc = tcase_create("validation");
	tcase_add_checked_fixture(tc, NULL, free_last_block);
	tcase_add_test(tc, test_duplicates);
	tcase_add_test(tc, test_repeatable_counts);
	tcase_add_test(tc, test_ranges_and_shapes);
	tcase_add_test(tc, test_block_boundary);
	tcase_add_test(tc, test_truncated_blocks);
	tcase_add_test(tc, test_empty_block_defaults);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_checked_fixture(tc, NULL, free_last_block);
	tcase_add_test(tc, test_values_connack);
	tcase_add_test(tc, test_values_connect_publish_will);
	tcase_add_test(tc, test_iteration_order);
	tcase_add_test(tc, test_copy_forwardable);
	tcase_add_test(tc, test_writers);
	tcase_add_test(tc, test_copy_forwardable_will);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_add_checked_fixture(tc, NULL, free_last_block);
	tcase_add_test(tc, test_roundtrip_every_property);
	tcase_add_test(tc, test_roundtrip_duplicates);
	tcase_add_test(tc, test_roundtrip_wrong_shapes);
	suite_add_tcase(s, tc);
	return s;
}
