/*
 * test_packet.c: unit tests of packet.c and utf8.c.
 *
 * Covers fixed-header framing (incomplete headers, the four-byte limit of
 * the remaining length, its largest value, non-minimal encodings, the
 * caller's maximum), every bounds-checked reader at its exact bound and one
 * byte past it, the length-first writers byte for byte, and a table of MQTT
 * UTF-8 strings. Inputs are copied into heap blocks of their exact size, so
 * AddressSanitizer reports any read past the end.
 */
#include "config.h"

#include "tests.h"

#include "packet.h"

#include <midge/mqtt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* A heap copy of exactly n bytes (at least one byte is allocated). */
static uint8_t *dup_exact(const void *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

#define B(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

/* --- framing --- */

struct frame_case {
	const char *name;
	const uint8_t *bytes;
	size_t len;
	uint32_t max;
	int rc;
	uint8_t type;
	uint8_t flags;
	uint32_t remaining;
	uint32_t header_len;
};

static const struct frame_case frame_cases[] = {
	{"empty", (const uint8_t[]){0x30}, 0, MQTT_MAX_REMAINING_LENGTH, MQTT_ERR_INCOMPLETE, 0, 0, 0, 0},
	{"first byte only", B(0x30), MQTT_MAX_REMAINING_LENGTH, MQTT_ERR_INCOMPLETE, 0, 0, 0, 0},
	{"length continues", B(0x30, 0x80), MQTT_MAX_REMAINING_LENGTH, MQTT_ERR_INCOMPLETE, 0, 0, 0, 0},
	{"length continues x3", B(0x30, 0xFF, 0xFF, 0xFF), MQTT_MAX_REMAINING_LENGTH,
	 MQTT_ERR_INCOMPLETE, 0, 0, 0, 0},
	{"five length bytes", B(0x30, 0x80, 0x80, 0x80, 0x80, 0x01), MQTT_MAX_REMAINING_LENGTH,
	 MQTT_ERR_MALFORMED, 0, 0, 0, 0},
	{"fourth length byte continues", B(0x30, 0xFF, 0xFF, 0xFF, 0xFF), MQTT_MAX_REMAINING_LENGTH,
	 MQTT_ERR_MALFORMED, 0, 0, 0, 0},
	{"zero", B(0xC0, 0x00), MQTT_MAX_REMAINING_LENGTH, MQTT_OK, MQTT_PINGREQ, 0, 0, 2},
	{"type and flags", B(0x3D, 0x05), MQTT_MAX_REMAINING_LENGTH, MQTT_OK, MQTT_PUBLISH, 0xD, 5, 2},
	{"127", B(0x20, 0x7F), MQTT_MAX_REMAINING_LENGTH, MQTT_OK, MQTT_CONNACK, 0, 127, 2},
	{"128", B(0x20, 0x80, 0x01), MQTT_MAX_REMAINING_LENGTH, MQTT_OK, MQTT_CONNACK, 0, 128, 3},
	{"16383", B(0x20, 0xFF, 0x7F), MQTT_MAX_REMAINING_LENGTH, MQTT_OK, MQTT_CONNACK, 0, 16383, 3},
	{"16384", B(0x20, 0x80, 0x80, 0x01), MQTT_MAX_REMAINING_LENGTH, MQTT_OK, MQTT_CONNACK, 0,
	 16384, 4},
	{"2097151", B(0x20, 0xFF, 0xFF, 0x7F), MQTT_MAX_REMAINING_LENGTH, MQTT_OK, MQTT_CONNACK, 0,
	 2097151, 4},
	{"2097152", B(0x20, 0x80, 0x80, 0x80, 0x01), MQTT_MAX_REMAINING_LENGTH, MQTT_OK, MQTT_CONNACK,
	 0, 2097152, 5},
	{"largest", B(0xF0, 0xFF, 0xFF, 0xFF, 0x7F), MQTT_MAX_REMAINING_LENGTH, MQTT_OK, MQTT_AUTH, 0,
	 MQTT_MAX_REMAINING_LENGTH, 5},
	{"body bytes follow", B(0x82, 0x02, 0x00, 0x01, 0xAA), MQTT_MAX_REMAINING_LENGTH, MQTT_OK,
	 MQTT_SUBSCRIBE, 2, 2, 2},
	/*
	 * Non-minimal encodings: packet.c accepts them on purpose (see the comment
	 * in mqtt_frame_parse) and must still decode the right value. MQTT 5.0
	 * [MQTT-1.5.5-1] asks senders for the minimal form; whether a receiver
	 * should refuse is a policy choice these cases pin down.
	 */
	{"non-minimal zero", B(0x30, 0x80, 0x00), MQTT_MAX_REMAINING_LENGTH, MQTT_OK, MQTT_PUBLISH, 0,
	 0, 3},
	{"non-minimal 1 in four bytes", B(0x30, 0x81, 0x80, 0x80, 0x00), MQTT_MAX_REMAINING_LENGTH,
	 MQTT_OK, MQTT_PUBLISH, 0, 1, 5},
	{"at caller maximum", B(0x30, 0x64), 100, MQTT_OK, MQTT_PUBLISH, 0, 100, 2},
	{"above caller maximum", B(0x30, 0x65), 100, MQTT_ERR_TOO_LARGE, 0, 0, 0, 0},
	{"above maximum, 4 bytes", B(0x30, 0xFF, 0xFF, 0xFF, 0x7F), MQTT_MAX_REMAINING_LENGTH - 1,
	 MQTT_ERR_TOO_LARGE, 0, 0, 0, 0},
	{"maximum zero", B(0xE0, 0x01, 0x00), 0, MQTT_ERR_TOO_LARGE, 0, 0, 0, 0},
	{"maximum zero, empty body", B(0xE0, 0x00), 0, MQTT_OK, MQTT_DISCONNECT, 0, 0, 2},
};

START_TEST(test_frame_table)
{
	struct fails fails = {0};

	for (size_t i = 0; i < sizeof(frame_cases) / sizeof(frame_cases[0]); i++) {
		const struct frame_case *c = &frame_cases[i];
		uint8_t *buf = dup_exact(c->bytes, c->len);
		struct mqtt_frame f = {0};
		int rc = mqtt_frame_parse(buf, c->len, c->max, &f);

		if (rc != c->rc)
			fail_note(&fails, "case %s: rc %d, want %d", c->name, rc, c->rc);
		else if (rc == MQTT_OK && (f.type != c->type || f.flags != c->flags ||
					   f.remaining != c->remaining ||
					   f.header_len != c->header_len))
			fail_note(&fails, "case %s: type %u flags %u remaining %u header_len %u",
				  c->name, f.type, f.flags, f.remaining, f.header_len);
		free(buf);
	}
	FAILS_CHECK(&fails);
}
END_TEST

/* Every prefix of a header shorter than the header itself is incomplete. */
START_TEST(test_frame_prefixes)
{
	const uint8_t full[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};

	for (size_t n = 0; n < sizeof(full); n++) {
		uint8_t *buf = dup_exact(full, n);
		struct mqtt_frame f;
		ck_assert_msg(mqtt_frame_parse(buf, n, MQTT_MAX_REMAINING_LENGTH, &f) ==
				      MQTT_ERR_INCOMPLETE, "prefix %zu", n);
		free(buf);
	}
}
END_TEST

/* The writer's encoding of every boundary value parses back to itself. */
START_TEST(test_varint_round_trip)
{
	static const uint32_t values[] = {0, 1, 127, 128, 129, 16383, 16384, 2097151, 2097152,
					  268435454, MQTT_MAX_REMAINING_LENGTH};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint8_t buf[5];
		struct pkt_writer w;
		struct pkt_reader r;
		struct mqtt_frame f;
		uint32_t v = 0;

		pkt_writer_init(&w, buf, sizeof(buf));
		pkt_write_fixed_header(&w, MQTT_PUBLISH, 0x3, values[i]);
		ck_assert_msg(w.pos == 1 + mqtt_varint_size(values[i]), "value %u: %u bytes",
			      values[i], w.pos);
		ck_assert_uint_eq(mqtt_packet_size(values[i]), w.pos + values[i]);
		ck_assert_int_eq(mqtt_frame_parse(buf, w.pos, MQTT_MAX_REMAINING_LENGTH, &f), MQTT_OK);
		ck_assert_uint_eq(f.remaining, values[i]);
		ck_assert_uint_eq(f.header_len, w.pos);
		ck_assert_uint_eq(f.type, MQTT_PUBLISH);
		ck_assert_uint_eq(f.flags, 0x3);
		pkt_reader_init(&r, buf + 1, w.pos - 1);
		ck_assert_int_eq(pkt_read_varint(&r, &v), MQTT_OK);
		ck_assert_uint_eq(v, values[i]);
		ck_assert_uint_eq(pkt_remaining(&r), 0);
	}
	ck_assert_uint_eq(mqtt_varint_size(127), 1);
	ck_assert_uint_eq(mqtt_varint_size(128), 2);
	ck_assert_uint_eq(mqtt_varint_size(16383), 2);
	ck_assert_uint_eq(mqtt_varint_size(16384), 3);
	ck_assert_uint_eq(mqtt_varint_size(2097151), 3);
	ck_assert_uint_eq(mqtt_varint_size(2097152), 4);
}
END_TEST

/* --- readers --- */

START_TEST(test_read_u8)
{
	uint8_t *buf = dup_exact((const uint8_t[]){0xAB}, 1);
	struct pkt_reader r;
	uint8_t v = 0;

	pkt_reader_init(&r, buf, 1);
	ck_assert_int_eq(pkt_read_u8(&r, &v), MQTT_OK);
	ck_assert_uint_eq(v, 0xAB);
	ck_assert_uint_eq(pkt_remaining(&r), 0);
	v = 0x11;
	ck_assert_int_eq(pkt_read_u8(&r, &v), MQTT_ERR_MALFORMED);
	ck_assert_uint_eq(v, 0x11);
	ck_assert_uint_eq(r.pos, 1);
	free(buf);
}
END_TEST

START_TEST(test_read_u16)
{
	uint8_t *buf = dup_exact((const uint8_t[]){0x12, 0x34, 0x56}, 3);
	struct pkt_reader r;
	uint16_t v = 0;

	pkt_reader_init(&r, buf, 2);
	ck_assert_int_eq(pkt_read_u16(&r, &v), MQTT_OK);
	ck_assert_uint_eq(v, 0x1234);
	ck_assert_int_eq(pkt_read_u16(&r, &v), MQTT_ERR_MALFORMED);
	/* One byte left: still one short. */
	pkt_reader_init(&r, buf + 2, 1);
	ck_assert_int_eq(pkt_read_u16(&r, &v), MQTT_ERR_MALFORMED);
	ck_assert_uint_eq(r.pos, 0);
	pkt_reader_init(&r, buf, 3);
	r.pos = 1;
	ck_assert_int_eq(pkt_read_u16(&r, &v), MQTT_OK);
	ck_assert_uint_eq(v, 0x3456);
	free(buf);
}
END_TEST

START_TEST(test_read_u32)
{
	uint8_t *buf = dup_exact((const uint8_t[]){0xDE, 0xAD, 0xBE, 0xEF}, 4);
	struct pkt_reader r;
	uint32_t v = 0;

	pkt_reader_init(&r, buf, 4);
	ck_assert_int_eq(pkt_read_u32(&r, &v), MQTT_OK);
	ck_assert_uint_eq(v, 0xDEADBEEFu);
	ck_assert_uint_eq(pkt_remaining(&r), 0);
	for (uint32_t n = 0; n < 4; n++) {
		pkt_reader_init(&r, buf + (4 - n), n);
		ck_assert_msg(pkt_read_u32(&r, &v) == MQTT_ERR_MALFORMED, "%u bytes", n);
		ck_assert_uint_eq(r.pos, 0);
	}
	free(buf);
}
END_TEST

struct varint_case {
	const char *name;
	const uint8_t *bytes;
	size_t len;
	int rc;
	uint32_t value;
	uint32_t consumed;
};

static const struct varint_case varint_cases[] = {
	{"zero", B(0x00), MQTT_OK, 0, 1},
	{"127", B(0x7F), MQTT_OK, 127, 1},
	{"128", B(0x80, 0x01), MQTT_OK, 128, 2},
	{"321 (spec)", B(0xC1, 0x02), MQTT_OK, 321, 2},
	{"largest", B(0xFF, 0xFF, 0xFF, 0x7F), MQTT_OK, MQTT_MAX_REMAINING_LENGTH, 4},
	{"trailing bytes ignored", B(0x05, 0xFF), MQTT_OK, 5, 1},
	{"empty", (const uint8_t[]){0x00}, 0, MQTT_ERR_MALFORMED, 0, 0},
	{"truncated 1", B(0x80), MQTT_ERR_MALFORMED, 0, 0},
	{"truncated 3", B(0xFF, 0xFF, 0xFF), MQTT_ERR_MALFORMED, 0, 0},
	{"five bytes", B(0xFF, 0xFF, 0xFF, 0xFF, 0x01), MQTT_ERR_MALFORMED, 0, 0},
	{"four continuation bytes, end", B(0x80, 0x80, 0x80, 0x80), MQTT_ERR_MALFORMED, 0, 0},
};

START_TEST(test_read_varint_table)
{
	struct fails fails = {0};

	for (size_t i = 0; i < sizeof(varint_cases) / sizeof(varint_cases[0]); i++) {
		const struct varint_case *c = &varint_cases[i];
		uint8_t *buf = dup_exact(c->bytes, c->len);
		struct pkt_reader r;
		uint32_t v = 0xFFFFFFFFu;
		int rc;

		pkt_reader_init(&r, buf, (uint32_t)c->len);
		rc = pkt_read_varint(&r, &v);
		if (rc != c->rc)
			fail_note(&fails, "case %s: rc %d", c->name, rc);
		else if (rc == MQTT_OK && (v != c->value || r.pos != c->consumed))
			fail_note(&fails, "case %s: value %u, consumed %u", c->name, v, r.pos);
		free(buf);
	}
	FAILS_CHECK(&fails);
}
END_TEST

START_TEST(test_read_bin)
{
	const uint8_t data[] = {0x00, 0x03, 'a', 'b', 'c'};
	uint8_t *buf = dup_exact(data, sizeof(data));
	struct pkt_reader r;
	struct mqtt_bytes b;

	/* Exactly the declared length. */
	pkt_reader_init(&r, buf, sizeof(data));
	ck_assert_int_eq(pkt_read_bin(&r, &b), MQTT_OK);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_ptr_eq(b.data, buf + 2);
	ck_assert_uint_eq(pkt_remaining(&r), 0);
	/* One byte short of the declared length. */
	pkt_reader_init(&r, buf, sizeof(data) - 1);
	ck_assert_int_eq(pkt_read_bin(&r, &b), MQTT_ERR_MALFORMED);
	/* Length prefix cut in half, or absent. */
	pkt_reader_init(&r, buf, 1);
	ck_assert_int_eq(pkt_read_bin(&r, &b), MQTT_ERR_MALFORMED);
	pkt_reader_init(&r, buf, 0);
	ck_assert_int_eq(pkt_read_bin(&r, &b), MQTT_ERR_MALFORMED);
	free(buf);

	/* Zero length is a valid, empty field. */
	buf = dup_exact((const uint8_t[]){0x00, 0x00}, 2);
	pkt_reader_init(&r, buf, 2);
	ck_assert_int_eq(pkt_read_bin(&r, &b), MQTT_OK);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(pkt_remaining(&r), 0);
	free(buf);

	/* A 65535-byte field at its exact bound and one short. */
	buf = malloc(2 + 65535);
	ck_assert_ptr_nonnull(buf);
	memset(buf, 0xEE, 2 + 65535);
	buf[0] = 0xFF;
	buf[1] = 0xFF;
	pkt_reader_init(&r, buf, 2 + 65535);
	ck_assert_int_eq(pkt_read_bin(&r, &b), MQTT_OK);
	ck_assert_uint_eq(b.len, 65535);
	pkt_reader_init(&r, buf, 2 + 65534);
	ck_assert_int_eq(pkt_read_bin(&r, &b), MQTT_ERR_MALFORMED);
	free(buf);
}
END_TEST

START_TEST(test_read_str)
{
	struct pkt_reader r;
	struct mqtt_bytes s;
	uint8_t *buf;

	buf = dup_exact((const uint8_t[]){0x00, 0x04, 'M', 'Q', 'T', 'T'}, 6);
	pkt_reader_init(&r, buf, 6);
	ck_assert_int_eq(pkt_read_str(&r, &s), MQTT_OK);
	ck_assert_uint_eq(s.len, 4);
	ck_assert_int_eq(memcmp(s.data, "MQTT", 4), 0);
	pkt_reader_init(&r, buf, 5);
	ck_assert_int_eq(pkt_read_str(&r, &s), MQTT_ERR_MALFORMED);
	free(buf);

	/* U+0000 inside a string. */
	buf = dup_exact((const uint8_t[]){0x00, 0x03, 'a', 0x00, 'b'}, 5);
	pkt_reader_init(&r, buf, 5);
	ck_assert_int_eq(pkt_read_str(&r, &s), MQTT_ERR_MALFORMED);
	free(buf);

	/* Overlong '/' and a lone continuation byte. */
	buf = dup_exact((const uint8_t[]){0x00, 0x02, 0xC0, 0xAF}, 4);
	pkt_reader_init(&r, buf, 4);
	ck_assert_int_eq(pkt_read_str(&r, &s), MQTT_ERR_MALFORMED);
	free(buf);
	buf = dup_exact((const uint8_t[]){0x00, 0x01, 0x80}, 3);
	pkt_reader_init(&r, buf, 3);
	ck_assert_int_eq(pkt_read_str(&r, &s), MQTT_ERR_MALFORMED);
	free(buf);

	/* The validation covers only the declared length: a valid first char
	 * whose continuation lies outside the string is still refused. */
	buf = dup_exact((const uint8_t[]){0x00, 0x01, 0xC3, 0xA9}, 4);
	pkt_reader_init(&r, buf, 4);
	ck_assert_int_eq(pkt_read_str(&r, &s), MQTT_ERR_MALFORMED);
	free(buf);

	/* Empty string. */
	buf = dup_exact((const uint8_t[]){0x00, 0x00}, 2);
	pkt_reader_init(&r, buf, 2);
	ck_assert_int_eq(pkt_read_str(&r, &s), MQTT_OK);
	ck_assert_uint_eq(s.len, 0);
	free(buf);
}
END_TEST

START_TEST(test_read_raw)
{
	uint8_t *buf = dup_exact((const uint8_t[]){1, 2, 3, 4}, 4);
	struct pkt_reader r;
	struct mqtt_bytes b;

	pkt_reader_init(&r, buf, 4);
	ck_assert_int_eq(pkt_read_raw(&r, 0, &b), MQTT_OK);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(pkt_read_raw(&r, 1, &b), MQTT_OK);
	ck_assert_uint_eq(b.data[0], 1);
	ck_assert_int_eq(pkt_read_raw(&r, 4, &b), MQTT_ERR_MALFORMED);
	ck_assert_uint_eq(r.pos, 1);
	ck_assert_int_eq(pkt_read_raw(&r, 3, &b), MQTT_OK);
	ck_assert_ptr_eq(b.data, buf + 1);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_int_eq(pkt_read_raw(&r, 0, &b), MQTT_OK);
	ck_assert_int_eq(pkt_read_raw(&r, 1, &b), MQTT_ERR_MALFORMED);
	/* A huge count must not wrap around the bound check. */
	pkt_reader_init(&r, buf, 4);
	r.pos = 2;
	ck_assert_int_eq(pkt_read_raw(&r, UINT32_MAX, &b), MQTT_ERR_MALFORMED);
	ck_assert_int_eq(pkt_read_raw(&r, UINT32_MAX - 1, &b), MQTT_ERR_MALFORMED);
	ck_assert_uint_eq(r.pos, 2);
	free(buf);
}
END_TEST

/* --- writers --- */

START_TEST(test_writers)
{
	uint8_t buf[32];
	struct pkt_writer w;
	static const uint8_t want[] = {
		0x32, 0x81, 0x01,       /* fixed header: PUBLISH qos 1, remaining 129 */
		0xAB,                   /* u8 */
		0x12, 0x34,             /* u16 */
		0xDE, 0xAD, 0xBE, 0xEF, /* u32 */
		0xC1, 0x02,             /* varint 321 */
		0xFF, 0xFF, 0xFF, 0x7F, /* varint maximum */
		0x00, 0x03, 'a', '/', 'b', /* bin */
		'x', 'y',               /* raw */
		0x00, 0x00,             /* empty bin */
	};

	memset(buf, 0x5A, sizeof(buf));
	pkt_writer_init(&w, buf, sizeof(want));
	pkt_write_fixed_header(&w, MQTT_PUBLISH, 0x2 | 0xF0, 129); /* high flag bits dropped */
	pkt_write_u8(&w, 0xAB);
	pkt_write_u16(&w, 0x1234);
	pkt_write_u32(&w, 0xDEADBEEFu);
	pkt_write_varint(&w, 321);
	pkt_write_varint(&w, MQTT_MAX_REMAINING_LENGTH);
	pkt_write_bin(&w, "a/b", 3);
	pkt_write_raw(&w, "xy", 2);
	pkt_write_raw(&w, NULL, 0);
	pkt_write_bin(&w, NULL, 0);
	ck_assert_uint_eq(w.pos, sizeof(want));
	ck_assert_int_eq(memcmp(buf, want, sizeof(want)), 0);
	/* Nothing written past the end. */
	ck_assert_uint_eq(buf[sizeof(want)], 0x5A);
}
END_TEST

/* --- UTF-8 --- */

struct utf8_case {
	const char *name;
	const char *s;
	size_t len;
	bool valid;
};

#define U(name, lit, valid) {name, lit, sizeof(lit) - 1, valid}

static const struct utf8_case utf8_cases[] = {
	U("empty", "", true),
	U("ascii", "hello/world", true),
	U("control U+0001", "\x01", true),
	U("control U+001F", "a\x1F" "b", true),
	U("DEL U+007F", "\x7F", true),
	U("C1 control U+0080", "\xC2\x80", true),
	U("C1 control U+009F", "\xC2\x9F", true),
	U("U+0000 alone", "\x00", false),
	U("U+0000 inside", "ab\x00" "cd", false),
	U("U+0000 at end", "ab\x00", false),
	U("2-byte U+00E9", "\xC3\xA9", true),
	U("2-byte U+07FF", "\xDF\xBF", true),
	U("overlong U+0000 (C0 80)", "\xC0\x80", false),
	U("overlong '/' (C0 AF)", "\xC0\xAF", false),
	U("overlong U+007F (C1 BF)", "\xC1\xBF", false),
	U("3-byte U+0800", "\xE0\xA0\x80", true),
	U("3-byte U+20AC", "\xE2\x82\xAC", true),
	U("3-byte U+D7FF", "\xED\x9F\xBF", true),
	U("3-byte U+E000", "\xEE\x80\x80", true),
	U("BOM U+FEFF", "\xEF\xBB\xBF", true),
	U("BOM U+FEFF inside", "a\xEF\xBB\xBF" "b", true),
	U("non-character U+FFFE", "\xEF\xBF\xBE", true),
	U("non-character U+FFFF", "\xEF\xBF\xBF", true),
	U("overlong U+0000 (E0 80 80)", "\xE0\x80\x80", false),
	U("overlong U+07FF (E0 9F BF)", "\xE0\x9F\xBF", false),
	U("surrogate U+D800", "\xED\xA0\x80", false),
	U("surrogate U+DBFF", "\xED\xAF\xBF", false),
	U("surrogate U+DC00", "\xED\xB0\x80", false),
	U("surrogate U+DFFF", "\xED\xBF\xBF", false),
	U("surrogate pair (CESU-8)", "\xED\xA0\xBD\xED\xB8\x80", false),
	U("4-byte U+10000", "\xF0\x90\x80\x80", true),
	U("4-byte U+1F600", "\xF0\x9F\x98\x80", true),
	U("4-byte U+10FFFF", "\xF4\x8F\xBF\xBF", true),
	U("above U+10FFFF (F4 90 80 80)", "\xF4\x90\x80\x80", false),
	U("above U+10FFFF (F5 lead)", "\xF5\x80\x80\x80", false),
	U("above U+10FFFF (F7 BF BF BF)", "\xF7\xBF\xBF\xBF", false),
	U("overlong U+FFFF (F0 8F BF BF)", "\xF0\x8F\xBF\xBF", false),
	U("overlong U+0000 (F0 80 80 80)", "\xF0\x80\x80\x80", false),
	U("5-byte form", "\xF8\x88\x80\x80\x80", false),
	U("6-byte form", "\xFC\x84\x80\x80\x80\x80", false),
	U("byte FE", "\xFE", false),
	U("byte FF", "\xFF", false),
	U("lone continuation 80", "\x80", false),
	U("lone continuation BF", "a\xBF", false),
	U("truncated 2-byte", "\xC3", false),
	U("truncated 2-byte at end", "abc\xC3", false),
	U("truncated 3-byte (1 of 2)", "\xE2\x82", false),
	U("truncated 3-byte (0 of 2)", "\xE2", false),
	U("truncated 4-byte (2 of 3)", "\xF0\x9F\x98", false),
	U("truncated 4-byte, then ascii", "\xF0\x9F\x98" "a", false),
	U("truncated 3-byte, then ascii", "\xE2\x82" "a", false),
	U("2-byte lead, ascii second", "\xC3" "a", false),
	U("3-byte, bad third byte", "\xE2\x82\x41", false),
	U("4-byte, bad last byte", "\xF0\x9F\x98\xC0", false),
	U("mixed valid", "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z", true),
	U("valid then invalid", "a\xC3\xA9\xC0\x80", false),
};

START_TEST(test_utf8_table)
{
	struct fails fails = {0};

	for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
		const struct utf8_case *c = &utf8_cases[i];
		uint8_t *buf = dup_exact(c->s, c->len);
		bool got = mqtt_utf8_valid(buf, c->len);

		if (got != c->valid)
			fail_note(&fails, "case %s: got %s", c->name, got ? "valid" : "invalid");
		free(buf);
	}
	FAILS_CHECK(&fails);
}
END_TEST

/* Every code point 1..U+10FFFF encoded by hand is accepted, except surrogates. */
START_TEST(test_utf8_all_code_points)
{
	for (uint32_t cp = 1; cp <= 0x10FFFF; cp++) {
		uint8_t b[4];
		size_t n;
		bool want = !(cp >= 0xD800 && cp <= 0xDFFF);

		if (cp < 0x80) {
			b[0] = (uint8_t)cp;
			n = 1;
		} else if (cp < 0x800) {
			b[0] = (uint8_t)(0xC0 | (cp >> 6));
			b[1] = (uint8_t)(0x80 | (cp & 0x3F));
			n = 2;
		} else if (cp < 0x10000) {
			b[0] = (uint8_t)(0xE0 | (cp >> 12));
			b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
			b[2] = (uint8_t)(0x80 | (cp & 0x3F));
			n = 3;
		} else {
			b[0] = (uint8_t)(0xF0 | (cp >> 18));
			b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
			b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
			b[3] = (uint8_t)(0x80 | (cp & 0x3F));
			n = 4;
		}
		if (mqtt_utf8_valid(b, n) != want)
			ck_abort_msg("code point U+%04X: got %d", cp, !want);
		/* Any proper prefix of a multi-byte character is refused. */
		for (size_t k = 1; k < n; k++)
			if (mqtt_utf8_valid(b, k))
				ck_abort_msg("U+%04X prefix of %zu bytes accepted", cp, k);
	}
}
END_TEST

Suite *suite_packet(void)
{
	Suite *s = suite_create("packet");
	TCase *tc;

	tc = tcase_create("frame");
	tcase_add_test(tc, test_frame_table);
	tcase_add_test(tc, test_frame_prefixes);
	tcase_add_test(tc, test_varint_round_trip);
	suite_add_tcase(s, tc);

	tc = tcase_create("readers");
	tcase_add_test(tc, test_read_u8);
	tcase_add_test(tc, test_read_u16);
	tcase_add_test(tc, test_read_u32);
	tcase_add_test(tc, test_read_varint_table);
	tcase_add_test(tc, test_read_bin);
	tcase_add_test(tc, test_read_str);
	tcase_add_test(tc, test_read_raw);
	suite_add_tcase(s, tc);

	tc = tcase_create("writers");
	tcase_add_test(tc, test_writers);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_test(tc, test_utf8_table);
	tcase_add_test(tc, test_utf8_all_code_points);
	suite_add_tcase(s, tc);
	return s;
}
