/*
 * packet.c: fixed header framing and primitive readers and writers.
 * See packet.h for the contract; UTF-8 validation lives in utf8.c.
 */
#include "packet.h"

#include <assert.h>
#include <string.h>

int mqtt_frame_parse(const uint8_t *buf, size_t len, uint32_t max_remaining,
		     struct mqtt_frame *frame)
{
	uint32_t value = 0;
	uint32_t shift = 0;
	size_t i;

	if (len < 2)
		return MQTT_ERR_INCOMPLETE;
	for (i = 1; i < 5; i++) {
		if (i >= len)
			return MQTT_ERR_INCOMPLETE;
		value |= (uint32_t)(buf[i] & 0x7F) << shift;
		if (!(buf[i] & 0x80))
			break;
		shift += 7;
	}
	if (i == 5)
		return MQTT_ERR_MALFORMED;
	/* A non-minimal encoding (0x80 0x00 for 0) breaks [MQTT-1.5.5-1]; it is
	 * accepted, as mosquitto does, since the value itself is unambiguous. */
	frame->type = buf[0] >> 4;
	frame->flags = buf[0] & 0x0F;
	frame->remaining = value;
	frame->header_len = (uint32_t)i + 1;
	if (value > max_remaining)
		return MQTT_ERR_TOO_LARGE;
	return MQTT_OK;
}

int pkt_read_u8(struct pkt_reader *r, uint8_t *out)
{
	if (pkt_remaining(r) < 1)
		return MQTT_ERR_MALFORMED;
	*out = r->p[r->pos++];
	return MQTT_OK;
}

int pkt_read_u16(struct pkt_reader *r, uint16_t *out)
{
	if (pkt_remaining(r) < 2)
		return MQTT_ERR_MALFORMED;
	*out = (uint16_t)((r->p[r->pos] << 8) | r->p[r->pos + 1]);
	r->pos += 2;
	return MQTT_OK;
}

int pkt_read_u32(struct pkt_reader *r, uint32_t *out)
{
	if (pkt_remaining(r) < 4)
		return MQTT_ERR_MALFORMED;
	*out = ((uint32_t)r->p[r->pos] << 24) | ((uint32_t)r->p[r->pos + 1] << 16) |
	       ((uint32_t)r->p[r->pos + 2] << 8) | (uint32_t)r->p[r->pos + 3];
	r->pos += 4;
	return MQTT_OK;
}

int pkt_read_varint(struct pkt_reader *r, uint32_t *out)
{
	uint32_t value = 0;
	uint32_t shift = 0;

	for (int i = 0; i < 4; i++) {
		uint8_t b;
		if (pkt_read_u8(r, &b) != MQTT_OK)
			return MQTT_ERR_MALFORMED;
		value |= (uint32_t)(b & 0x7F) << shift;
		if (!(b & 0x80)) {
			*out = value;
			return MQTT_OK;
		}
		shift += 7;
	}
	return MQTT_ERR_MALFORMED;
}

int pkt_read_raw(struct pkt_reader *r, uint32_t n, struct mqtt_bytes *out)
{
	if (pkt_remaining(r) < n)
		return MQTT_ERR_MALFORMED;
	out->data = r->p + r->pos;
	out->len = n;
	r->pos += n;
	return MQTT_OK;
}

int pkt_read_bin(struct pkt_reader *r, struct mqtt_bytes *out)
{
	uint16_t n;

	if (pkt_read_u16(r, &n) != MQTT_OK)
		return MQTT_ERR_MALFORMED;
	return pkt_read_raw(r, n, out);
}

int pkt_read_str(struct pkt_reader *r, struct mqtt_bytes *out)
{
	if (pkt_read_bin(r, out) != MQTT_OK)
		return MQTT_ERR_MALFORMED;
	if (!mqtt_utf8_valid(out->data, out->len))
		return MQTT_ERR_MALFORMED;
	return MQTT_OK;
}

void pkt_write_u8(struct pkt_writer *w, uint8_t v)
{
	assert(w->pos + 1 <= w->cap);
	w->p[w->pos++] = v;
}

void pkt_write_u16(struct pkt_writer *w, uint16_t v)
{
	assert(w->pos + 2 <= w->cap);
	w->p[w->pos++] = (uint8_t)(v >> 8);
	w->p[w->pos++] = (uint8_t)v;
}

void pkt_write_u32(struct pkt_writer *w, uint32_t v)
{
	assert(w->pos + 4 <= w->cap);
	w->p[w->pos++] = (uint8_t)(v >> 24);
	w->p[w->pos++] = (uint8_t)(v >> 16);
	w->p[w->pos++] = (uint8_t)(v >> 8);
	w->p[w->pos++] = (uint8_t)v;
}

void pkt_write_varint(struct pkt_writer *w, uint32_t v)
{
	assert(v <= 268435455u);
	do {
		uint8_t b = v & 0x7F;
		v >>= 7;
		if (v)
			b |= 0x80;
		pkt_write_u8(w, b);
	} while (v);
}

void pkt_write_raw(struct pkt_writer *w, const void *data, uint32_t len)
{
	assert(w->pos + len <= w->cap);
	if (len)
		memcpy(w->p + w->pos, data, len);
	w->pos += len;
}

void pkt_write_bin(struct pkt_writer *w, const void *data, uint16_t len)
{
	pkt_write_u16(w, len);
	pkt_write_raw(w, data, len);
}

void pkt_write_fixed_header(struct pkt_writer *w, uint8_t type, uint8_t flags, uint32_t remaining)
{
	pkt_write_u8(w, (uint8_t)((type << 4) | (flags & 0x0F)));
	pkt_write_varint(w, remaining);
}
