/*
 * codec_decode.c: decoders for every MQTT control packet (see codec.h).
 * Each decoder checks the fixed-header flags, the body grammar and the
 * stateless protocol rules, and never reads outside the body.
 */
#include "codec.h"
#include "topic.h"

#include <midge/mqtt.h>
#include <string.h>

uint8_t mqtt_required_flags(uint8_t type)
{
	switch (type) {
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return 0x2;
	default:
		return 0;
	}
}

static bool name_is(struct mqtt_bytes name, const char *want)
{
	size_t n = strlen(want);
	return name.len == n && memcmp(name.data, want, n) == 0;
}

/* Will fields of the CONNECT payload, after the client identifier. */
static enum mqtt_connect_err decode_will(struct pkt_reader *r, struct mqtt_connect *c)
{
	int rc;

	if (c->protocol == MQTT_PROTO_V5) {
		rc = mqtt_props_read(r, MQTT_PROPS_WILL, &c->will.props);
		if (rc)
			return rc == MQTT_ERR_PROTOCOL ? MQTT_CONNECT_PROTOCOL : MQTT_CONNECT_MALFORMED;
	}
	if (pkt_read_str(r, &c->will.topic) || pkt_read_bin(r, &c->will.payload))
		return MQTT_CONNECT_MALFORMED;
	if (c->will.topic.len == 0 || !topic_name_valid((const char *)c->will.topic.data,
							c->will.topic.len))
		return MQTT_CONNECT_PROTOCOL;
	return MQTT_CONNECT_OK;
}

enum mqtt_connect_err mqtt_decode_connect(const uint8_t *body, uint32_t len, uint8_t flags,
					  struct mqtt_connect *out)
{
	struct pkt_reader r;
	uint8_t level, cflags;
	enum mqtt_connect_err err;
	int rc;

	memset(out, 0, sizeof(*out));
	if (flags != 0)
		return MQTT_CONNECT_MALFORMED;
	pkt_reader_init(&r, body, len);
	if (pkt_read_bin(&r, &out->protocol_name) || pkt_read_u8(&r, &level))
		return MQTT_CONNECT_BAD_NAME;
	/* A broker's bridge marks 3.1 / 3.1.1 with the high bit (mosquitto's try_private). */
	if ((level == (0x80 | MQTT_PROTO_V311) || level == (0x80 | MQTT_PROTO_V31))) {
		out->bridge = true;
		level &= 0x7F;
	}
	if (name_is(out->protocol_name, "MQTT")) {
		if (level != MQTT_PROTO_V311 && level != MQTT_PROTO_V5) {
			out->protocol = MQTT_PROTO_V311;
			return MQTT_CONNECT_BAD_VERSION;
		}
	} else if (name_is(out->protocol_name, "MQIsdp")) {
		if (level != MQTT_PROTO_V31) {
			out->protocol = MQTT_PROTO_V31;
			return MQTT_CONNECT_BAD_VERSION;
		}
	} else {
		return MQTT_CONNECT_BAD_NAME;
	}
	out->protocol = level;
	if (pkt_read_u8(&r, &cflags) || pkt_read_u16(&r, &out->keepalive))
		return MQTT_CONNECT_MALFORMED;
	if (cflags & 0x01)
		return MQTT_CONNECT_MALFORMED; /* reserved bit [MQTT-3.1.2-3] */
	out->clean_start = cflags & 0x02;
	out->has_will = cflags & 0x04;
	out->will.qos = (cflags >> 3) & 0x03;
	out->will.retain = cflags & 0x20;
	out->has_password = cflags & 0x40;
	out->has_username = cflags & 0x80;
	if (out->will.qos == 3)
		return MQTT_CONNECT_MALFORMED;
	if (!out->has_will && (out->will.qos || out->will.retain))
		return MQTT_CONNECT_MALFORMED;
	/* Before 5.0 a password needs a user name [MQTT-3.1.2-22]. */
	if (out->protocol != MQTT_PROTO_V5 && out->has_password && !out->has_username)
		return MQTT_CONNECT_PROTOCOL;
	if (out->protocol == MQTT_PROTO_V5) {
		rc = mqtt_props_read(&r, MQTT_CONNECT, &out->props);
		if (rc)
			return rc == MQTT_ERR_PROTOCOL ? MQTT_CONNECT_PROTOCOL : MQTT_CONNECT_MALFORMED;
		if (!mqtt_props_has(&out->props, MQTT_PROP_AUTHENTICATION_METHOD) &&
		    mqtt_props_has(&out->props, MQTT_PROP_AUTHENTICATION_DATA))
			return MQTT_CONNECT_PROTOCOL;
	}
	if (pkt_read_str(&r, &out->client_id))
		return MQTT_CONNECT_MALFORMED;
	if (out->has_will) {
		err = decode_will(&r, out);
		if (err)
			return err;
	}
	if (out->has_username && pkt_read_str(&r, &out->username))
		return MQTT_CONNECT_MALFORMED;
	if (out->has_password && pkt_read_bin(&r, &out->password))
		return MQTT_CONNECT_MALFORMED;
	if (pkt_remaining(&r) != 0)
		return MQTT_CONNECT_MALFORMED;
	return MQTT_CONNECT_OK;
}

int mqtt_decode_connack(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
			struct mqtt_connack *out)
{
	struct pkt_reader r;
	uint8_t ack_flags;

	memset(out, 0, sizeof(*out));
	if (flags != 0)
		return MQTT_ERR_MALFORMED;
	pkt_reader_init(&r, body, len);
	if (pkt_read_u8(&r, &ack_flags) || pkt_read_u8(&r, &out->code))
		return MQTT_ERR_MALFORMED;
	if (ack_flags & 0xFE)
		return MQTT_ERR_MALFORMED;
	out->session_present = ack_flags & 1;
	if (proto == MQTT_PROTO_V5) {
		int rc = mqtt_props_read(&r, MQTT_CONNACK, &out->props);
		if (rc)
			return rc;
	}
	return pkt_remaining(&r) ? MQTT_ERR_MALFORMED : MQTT_OK;
}

int mqtt_decode_publish(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
			struct mqtt_publish *out)
{
	struct pkt_reader r;

	memset(out, 0, sizeof(*out));
	out->dup = flags & 0x08;
	out->qos = (flags >> 1) & 0x03;
	out->retain = flags & 0x01;
	if (out->qos == 3)
		return MQTT_ERR_MALFORMED;
	/* DUP on QoS 0 breaks [MQTT-3.3.1-2], yet mosquitto accepts it and clients send it:
	 * the flag is ignored (it is never forwarded). */
	if (out->qos == 0)
		out->dup = false;
	pkt_reader_init(&r, body, len);
	if (pkt_read_str(&r, &out->topic))
		return MQTT_ERR_MALFORMED;
	if (!topic_name_valid((const char *)out->topic.data, out->topic.len))
		return MQTT_ERR_PROTOCOL;
	if (out->qos > 0) {
		if (pkt_read_u16(&r, &out->packet_id))
			return MQTT_ERR_MALFORMED;
		if (out->packet_id == 0)
			return MQTT_ERR_PROTOCOL;
	}
	if (proto == MQTT_PROTO_V5) {
		int rc = mqtt_props_read(&r, MQTT_PUBLISH, &out->props);
		if (rc)
			return rc;
	}
	out->payload.data = body + r.pos;
	out->payload.len = pkt_remaining(&r);
	return MQTT_OK;
}

int mqtt_decode_ack(uint8_t type, const uint8_t *body, uint32_t len, uint8_t flags, int proto,
		    struct mqtt_ack *out)
{
	struct pkt_reader r;

	memset(out, 0, sizeof(*out));
	if (flags != mqtt_required_flags(type))
		return MQTT_ERR_MALFORMED;
	pkt_reader_init(&r, body, len);
	if (pkt_read_u16(&r, &out->packet_id))
		return MQTT_ERR_MALFORMED;
	if (out->packet_id == 0)
		return MQTT_ERR_PROTOCOL;
	if (proto != MQTT_PROTO_V5)
		return pkt_remaining(&r) ? MQTT_ERR_MALFORMED : MQTT_OK;
	if (pkt_remaining(&r) == 0)
		return MQTT_OK;
	if (pkt_read_u8(&r, &out->reason))
		return MQTT_ERR_MALFORMED;
	if (pkt_remaining(&r) > 0) {
		int rc = mqtt_props_read(&r, type, &out->props);
		if (rc)
			return rc;
	}
	return pkt_remaining(&r) ? MQTT_ERR_MALFORMED : MQTT_OK;
}

/* Reads one options byte of SUBSCRIBE and checks its reserved bits. */
static int read_sub_options(struct pkt_reader *r, int proto, struct mqtt_sub_options *o)
{
	uint8_t b;

	if (pkt_read_u8(r, &b))
		return MQTT_ERR_MALFORMED;
	o->qos = b & 0x03;
	if (o->qos == 3)
		return MQTT_ERR_MALFORMED;
	if (proto != MQTT_PROTO_V5) {
		if (b & 0xFC)
			return MQTT_ERR_MALFORMED; /* [MQTT-3.8.3-4] */
		o->no_local = false;
		o->retain_as_published = false;
		o->retain_handling = 0;
		return MQTT_OK;
	}
	if (b & 0xC0)
		return MQTT_ERR_MALFORMED;
	o->no_local = b & 0x04;
	o->retain_as_published = b & 0x08;
	o->retain_handling = (b >> 4) & 0x03;
	if (o->retain_handling == 3)
		return MQTT_ERR_PROTOCOL;
	return MQTT_OK;
}

/*
 * The part SUBSCRIBE and UNSUBSCRIBE share: flags 0x2, a non-zero packet
 * identifier, MQTT 5 properties; leaves r at the first entry.
 */
static int read_sub_head(struct pkt_reader *r, uint8_t type, uint8_t flags, int proto,
			 uint16_t *packet_id, struct mqtt_props *props, struct mqtt_bytes *entries)
{
	if (flags != 0x2)
		return MQTT_ERR_MALFORMED;
	if (pkt_read_u16(r, packet_id))
		return MQTT_ERR_MALFORMED;
	if (*packet_id == 0)
		return MQTT_ERR_PROTOCOL;
	if (proto == MQTT_PROTO_V5) {
		int rc = mqtt_props_read(r, type, props);
		if (rc)
			return rc;
	}
	entries->data = r->p + r->pos;
	entries->len = pkt_remaining(r);
	return MQTT_OK;
}

int mqtt_decode_subscribe(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
			  struct mqtt_subscribe *out)
{
	struct pkt_reader r;
	int rc;

	memset(out, 0, sizeof(*out));
	pkt_reader_init(&r, body, len);
	rc = read_sub_head(&r, MQTT_SUBSCRIBE, flags, proto, &out->packet_id, &out->props,
			   &out->entries);
	if (rc)
		return rc;
	while (pkt_remaining(&r) > 0) {
		struct mqtt_bytes filter;
		struct mqtt_sub_options o;

		if (pkt_read_str(&r, &filter))
			return MQTT_ERR_MALFORMED;
		rc = read_sub_options(&r, proto, &o);
		if (rc)
			return rc;
		if (filter.len == 0)
			return MQTT_ERR_PROTOCOL; /* [MQTT-4.7.3-1] */
		out->count++;
	}
	if (out->count == 0)
		return MQTT_ERR_PROTOCOL; /* [MQTT-3.8.3-3] */
	return MQTT_OK;
}

bool mqtt_subscribe_next(const struct mqtt_subscribe *s, int proto, uint32_t *pos,
			 struct mqtt_bytes *filter, struct mqtt_sub_options *opts)
{
	struct pkt_reader r;

	pkt_reader_init(&r, s->entries.data, s->entries.len);
	r.pos = *pos;
	if (pkt_remaining(&r) == 0)
		return false;
	if (pkt_read_bin(&r, filter) || read_sub_options(&r, proto, opts))
		return false;
	*pos = r.pos;
	return true;
}

int mqtt_decode_unsubscribe(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
			    struct mqtt_unsubscribe *out)
{
	struct pkt_reader r;
	int rc;

	memset(out, 0, sizeof(*out));
	pkt_reader_init(&r, body, len);
	rc = read_sub_head(&r, MQTT_UNSUBSCRIBE, flags, proto, &out->packet_id, &out->props,
			   &out->entries);
	if (rc)
		return rc;
	while (pkt_remaining(&r) > 0) {
		struct mqtt_bytes filter;

		if (pkt_read_str(&r, &filter))
			return MQTT_ERR_MALFORMED;
		if (filter.len == 0)
			return MQTT_ERR_PROTOCOL;
		out->count++;
	}
	if (out->count == 0)
		return MQTT_ERR_PROTOCOL; /* [MQTT-3.10.3-2] */
	return MQTT_OK;
}

bool mqtt_unsubscribe_next(const struct mqtt_unsubscribe *u, uint32_t *pos,
			   struct mqtt_bytes *filter)
{
	struct pkt_reader r;

	pkt_reader_init(&r, u->entries.data, u->entries.len);
	r.pos = *pos;
	if (pkt_remaining(&r) == 0 || pkt_read_bin(&r, filter))
		return false;
	*pos = r.pos;
	return true;
}

int mqtt_decode_suback(uint8_t type, const uint8_t *body, uint32_t len, uint8_t flags, int proto,
		       struct mqtt_suback *out)
{
	struct pkt_reader r;

	memset(out, 0, sizeof(*out));
	if (flags != 0)
		return MQTT_ERR_MALFORMED;
	pkt_reader_init(&r, body, len);
	if (pkt_read_u16(&r, &out->packet_id))
		return MQTT_ERR_MALFORMED;
	if (proto == MQTT_PROTO_V5) {
		int rc = mqtt_props_read(&r, type, &out->props);
		if (rc)
			return rc;
	}
	out->codes.data = body + r.pos;
	out->codes.len = pkt_remaining(&r);
	if (type == MQTT_SUBACK && out->codes.len == 0)
		return MQTT_ERR_MALFORMED;
	if (type == MQTT_UNSUBACK && proto != MQTT_PROTO_V5 && out->codes.len != 0)
		return MQTT_ERR_MALFORMED;
	return MQTT_OK;
}

/* DISCONNECT and AUTH share the shape: optional reason code, optional properties. */
static int decode_reason_packet(uint8_t type, const uint8_t *body, uint32_t len, uint8_t flags,
				int proto, struct mqtt_reason_packet *out)
{
	struct pkt_reader r;

	memset(out, 0, sizeof(*out));
	if (flags != 0)
		return MQTT_ERR_MALFORMED;
	if (proto != MQTT_PROTO_V5)
		return len ? MQTT_ERR_MALFORMED : MQTT_OK;
	pkt_reader_init(&r, body, len);
	if (len == 0)
		return MQTT_OK;
	if (pkt_read_u8(&r, &out->reason))
		return MQTT_ERR_MALFORMED;
	if (pkt_remaining(&r) > 0) {
		int rc = mqtt_props_read(&r, type, &out->props);
		if (rc)
			return rc;
	}
	return pkt_remaining(&r) ? MQTT_ERR_MALFORMED : MQTT_OK;
}

int mqtt_decode_disconnect(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
			   struct mqtt_reason_packet *out)
{
	return decode_reason_packet(MQTT_DISCONNECT, body, len, flags, proto, out);
}

int mqtt_decode_auth(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
		     struct mqtt_reason_packet *out)
{
	if (proto != MQTT_PROTO_V5)
		return MQTT_ERR_PROTOCOL;
	return decode_reason_packet(MQTT_AUTH, body, len, flags, proto, out);
}

int mqtt_decode_empty(uint32_t len, uint8_t flags)
{
	return (len == 0 && flags == 0) ? MQTT_OK : MQTT_ERR_MALFORMED;
}
