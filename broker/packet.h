/*
 * packet.h: MQTT framing and the primitive field readers and writers.
 *
 * Owns the fixed header (type, flags, variable byte integer length) and the
 * bounds-checked readers every decoder uses: a reader never reads past its
 * end and reports MQTT_ERR_MALFORMED instead. Writers are length-first: the
 * caller sizes the buffer exactly, and the writers only assert. No broker
 * state lives here, so the broker, bridge, tools and fuzzers all share it.
 */
#ifndef MIDGE_PACKET_H
#define MIDGE_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results of the codec. Negative values are errors. */
enum mqtt_err {
	MQTT_OK = 0,
	MQTT_ERR_INCOMPLETE = 1,   /* need more bytes (framing only) */
	MQTT_ERR_MALFORMED = -1,   /* bytes break the packet grammar */
	MQTT_ERR_PROTOCOL = -2,    /* well formed, but forbidden by the protocol */
	MQTT_ERR_TOO_LARGE = -3,   /* remaining length above the allowed maximum */
	MQTT_ERR_NOMEM = -4,
};

/* Borrowed byte span inside a packet (not NUL terminated). */
struct mqtt_bytes {
	const uint8_t *data;
	uint32_t len;
};

/* A fixed header parsed from the start of a byte stream. */
struct mqtt_frame {
	uint8_t type;           /* enum mqtt_packet_type */
	uint8_t flags;          /* low nibble of the first byte */
	uint32_t remaining;     /* remaining length */
	uint32_t header_len;    /* 2..5 bytes: first byte + length bytes */
};

/*
 * Parses a fixed header from buf[0..len). Returns MQTT_OK with *frame filled
 * (the whole packet may still be incomplete: check header_len + remaining),
 * MQTT_ERR_INCOMPLETE when the header itself is not all there yet,
 * MQTT_ERR_MALFORMED for a length of more than four bytes, or
 * MQTT_ERR_TOO_LARGE when remaining exceeds max_remaining.
 */
int mqtt_frame_parse(const uint8_t *buf, size_t len, uint32_t max_remaining,
		     struct mqtt_frame *frame);

/* Number of bytes the variable byte integer encoding of v takes (1..4). */
static inline uint32_t mqtt_varint_size(uint32_t v)
{
	return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}

/* Total size of a packet whose remaining length is `remaining`. */
static inline uint32_t mqtt_packet_size(uint32_t remaining)
{
	return 1 + mqtt_varint_size(remaining) + remaining;
}

/* Bounds-checked reader over one packet body. */
struct pkt_reader {
	const uint8_t *p;
	uint32_t len;
	uint32_t pos;
};

static inline void pkt_reader_init(struct pkt_reader *r, const uint8_t *p, uint32_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
}

static inline uint32_t pkt_remaining(const struct pkt_reader *r)
{
	return r->len - r->pos;
}

int pkt_read_u8(struct pkt_reader *r, uint8_t *out);
int pkt_read_u16(struct pkt_reader *r, uint16_t *out);
int pkt_read_u32(struct pkt_reader *r, uint32_t *out);
int pkt_read_varint(struct pkt_reader *r, uint32_t *out);
/* Length-prefixed binary data. */
int pkt_read_bin(struct pkt_reader *r, struct mqtt_bytes *out);
/* Length-prefixed UTF-8 string, validated (MQTT_ERR_MALFORMED when invalid). */
int pkt_read_str(struct pkt_reader *r, struct mqtt_bytes *out);
/* Raw bytes of a known length. */
int pkt_read_raw(struct pkt_reader *r, uint32_t n, struct mqtt_bytes *out);

/* Writer into a buffer sized beforehand; overflow is a programming error. */
struct pkt_writer {
	uint8_t *p;
	uint32_t cap;
	uint32_t pos;
};

static inline void pkt_writer_init(struct pkt_writer *w, uint8_t *p, uint32_t cap)
{
	w->p = p;
	w->cap = cap;
	w->pos = 0;
}

void pkt_write_u8(struct pkt_writer *w, uint8_t v);
void pkt_write_u16(struct pkt_writer *w, uint16_t v);
void pkt_write_u32(struct pkt_writer *w, uint32_t v);
void pkt_write_varint(struct pkt_writer *w, uint32_t v);
void pkt_write_raw(struct pkt_writer *w, const void *data, uint32_t len);
/* Two-byte length then the bytes (strings and binary data alike). */
void pkt_write_bin(struct pkt_writer *w, const void *data, uint16_t len);
/* First byte and remaining length. */
void pkt_write_fixed_header(struct pkt_writer *w, uint8_t type, uint8_t flags, uint32_t remaining);

/*
 * MQTT UTF-8 rules: well-formed UTF-8, no U+0000, no surrogates (rejected by
 * well-formedness), no code points above U+10FFFF. Control characters and
 * non-characters are allowed by the specification and accepted here.
 */
bool mqtt_utf8_valid(const uint8_t *s, size_t len);

#endif
