/*
 * fuzz_codec.c: the MQTT packet codec (broker/packet.h, property.h, codec.h).
 *
 * Input: one byte choosing the protocol level (3, 4 or 5: byte % 3 + 3), then
 * a byte stream cut into packets by mqtt_frame_parse(). Each packet body is
 * copied into a heap block of exactly its size (so ASan sees any read past
 * it) and given to the decoder of its type, server side (CONNECT, PUBLISH,
 * the acks, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, AUTH) and client side
 * (CONNACK, SUBACK, UNSUBACK, PINGRESP) alike; then to every other decoder as
 * well. What decodes is re-encoded with the matching encoder and decoded
 * again: both decodings must agree. Property blocks are walked with
 * mqtt_props_next(), rebuilt property by property, and their forwardable
 * part must decode as PUBLISH properties.
 */
#include "config.h"

#include "codec.h"
#include "fuzz.h"
#include "topic.h"

#include <midge/mqtt.h>
#include <stdlib.h>
#include <string.h>

static bool same(struct mqtt_bytes a, struct mqtt_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* An encoded packet in a heap block of its exact size, framed again. */
struct enc {
	uint8_t *buf;
	struct pkt_writer w;
	struct mqtt_frame f;
	const uint8_t *body;
};

static struct pkt_writer *enc_begin(struct enc *e, uint32_t size)
{
	e->buf = malloc(size ? size : 1);
	CHECK(e->buf);
	pkt_writer_init(&e->w, e->buf, size);
	return &e->w;
}

static void enc_end(struct enc *e, uint8_t type)
{
	CHECK(e->w.pos == e->w.cap);
	CHECK(mqtt_frame_parse(e->buf, e->w.pos, MQTT_MAX_REMAINING_LENGTH, &e->f) == MQTT_OK);
	CHECK(e->f.type == type);
	CHECK(e->f.header_len + e->f.remaining == e->w.pos);
	e->body = e->buf + e->f.header_len;
}

/* Walks a decoded property block, rebuilds it property by property, reads it back. */
static void check_props(const struct mqtt_props *p, int packet_type)
{
	struct mqtt_prop v;
	uint32_t pos = 0, n = 0, users = 0, subids = 0, size = 0;

	while (mqtt_props_next(p, &pos, &v)) {
		CHECK(mqtt_prop_allowed(v.id, packet_type));
		CHECK(mqtt_prop_name(v.id) != NULL);
		switch (mqtt_prop_type(v.id)) {
		case MQTT_PROP_TYPE_BYTE: size += mqtt_prop_size_u8(); break;
		case MQTT_PROP_TYPE_U16: size += mqtt_prop_size_u16(); break;
		case MQTT_PROP_TYPE_U32: size += mqtt_prop_size_u32(); break;
		case MQTT_PROP_TYPE_VARINT: size += mqtt_prop_size_varint(v.value); break;
		case MQTT_PROP_TYPE_STRING:
		case MQTT_PROP_TYPE_BINARY: size += mqtt_prop_size_bin(v.data.len); break;
		case MQTT_PROP_TYPE_PAIR: size += mqtt_prop_size_pair(v.data.len, v.data2.len); break;
		case MQTT_PROP_TYPE_NONE: CHECK(0);
		}
		users += v.id == MQTT_PROP_USER_PROPERTY;
		subids += v.id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER;
		n++;
	}
	CHECK(pos == p->raw.len);
	CHECK(users == p->user_property_count);
	CHECK(subids == p->subscription_id_count);

	/* Rebuilt with the property writers, read back: the same properties in order. */
	uint8_t *buf = malloc(5 + size);
	struct pkt_writer w;
	CHECK(buf);
	pkt_writer_init(&w, buf, 5 + size);
	pkt_write_varint(&w, size);
	pos = 0;
	while (mqtt_props_next(p, &pos, &v)) {
		switch (mqtt_prop_type(v.id)) {
		case MQTT_PROP_TYPE_BYTE: pkt_write_prop_u8(&w, v.id, (uint8_t)v.value); break;
		case MQTT_PROP_TYPE_U16: pkt_write_prop_u16(&w, v.id, (uint16_t)v.value); break;
		case MQTT_PROP_TYPE_U32: pkt_write_prop_u32(&w, v.id, v.value); break;
		case MQTT_PROP_TYPE_VARINT: pkt_write_prop_varint(&w, v.id, v.value); break;
		case MQTT_PROP_TYPE_STRING:
		case MQTT_PROP_TYPE_BINARY:
			pkt_write_prop_bin(&w, v.id, v.data.data, (uint16_t)v.data.len);
			break;
		case MQTT_PROP_TYPE_PAIR:
			pkt_write_prop_pair(&w, v.id, v.data.data, (uint16_t)v.data.len, v.data2.data,
					    (uint16_t)v.data2.len);
			break;
		case MQTT_PROP_TYPE_NONE: break;
		}
	}
	struct pkt_reader r;
	struct mqtt_props q;
	pkt_reader_init(&r, buf, w.pos);
	CHECK(mqtt_props_read(&r, packet_type, &q) == MQTT_OK);
	CHECK(pkt_remaining(&r) == 0);
	CHECK(q.present == p->present);
	CHECK(q.user_property_count == p->user_property_count);
	CHECK(q.subscription_id == p->subscription_id);
	CHECK(q.message_expiry == p->message_expiry && q.session_expiry == p->session_expiry);
	CHECK(same(q.content_type, p->content_type) && same(q.auth_data, p->auth_data));
	uint32_t qpos = 0, ppos = 0, m = 0;
	struct mqtt_prop a, b;
	while (mqtt_props_next(p, &ppos, &a)) {
		CHECK(mqtt_props_next(&q, &qpos, &b));
		CHECK(a.id == b.id && a.value == b.value && same(a.data, b.data) &&
		      same(a.data2, b.data2));
		m++;
	}
	CHECK(m == n && !mqtt_props_next(&q, &qpos, &b));
	free(buf);

	/* What a server forwards of a PUBLISH is itself a valid PUBLISH property block. */
	if (packet_type == MQTT_PUBLISH || packet_type == MQTT_PROPS_WILL) {
		uint8_t *fw = malloc(4 + p->raw.len + 1);
		CHECK(fw);
		uint32_t len = mqtt_props_copy_forwardable(p, fw + 4);
		CHECK(len <= p->raw.len);
		pkt_writer_init(&w, fw, 4 + len);
		pkt_write_varint(&w, len);
		memmove(fw + w.pos, fw + 4, len);
		pkt_reader_init(&r, fw, w.pos + len);
		CHECK(mqtt_props_read(&r, MQTT_PUBLISH, &q) == MQTT_OK);
		CHECK(!mqtt_props_has(&q, MQTT_PROP_TOPIC_ALIAS));
		CHECK(!mqtt_props_has(&q, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL));
		CHECK(q.user_property_count == p->user_property_count);
		free(fw);
	}
}

static void rt_connect(const struct mqtt_connect *c)
{
	struct enc e;
	struct mqtt_connect d;
	char *user = NULL;

	check_props(&c->props, MQTT_CONNECT);
	if (c->has_will)
		check_props(&c->will.props, MQTT_PROPS_WILL);
	if (c->has_username) {
		/* Decoded strings hold no NUL (U+0000 is refused), so this is the whole name. */
		user = malloc(c->username.len + 1);
		CHECK(user);
		memcpy(user, c->username.data, c->username.len);
		user[c->username.len] = '\0';
		CHECK(strlen(user) == c->username.len);
	}
	struct mqtt_connect_out o = {
		.protocol = c->protocol,
		.clean_start = c->clean_start,
		.keepalive = c->keepalive,
		.client_id = c->client_id,
		.username = user,
		.password = c->has_password ? c->password : (struct mqtt_bytes){0},
		.props = c->props.raw,
		.has_will = c->has_will,
		.will_qos = c->will.qos,
		.will_retain = c->will.retain,
		.will_topic = c->will.topic,
		.will_payload = c->will.payload,
		.will_props = c->will.props.raw,
	};
	/* An empty password still has a data pointer (into the packet). */
	CHECK(!c->has_password || o.password.data);
	mqtt_write_connect(enc_begin(&e, mqtt_size_connect(&o)), &o);
	enc_end(&e, MQTT_CONNECT);
	CHECK(mqtt_decode_connect(e.body, e.f.remaining, e.f.flags, &d) == MQTT_CONNECT_OK);
	CHECK(d.protocol == c->protocol && !d.bridge);
	CHECK(d.clean_start == c->clean_start && d.keepalive == c->keepalive);
	CHECK(d.has_will == c->has_will && d.will.qos == c->will.qos &&
	      d.will.retain == c->will.retain);
	CHECK(d.has_username == c->has_username && d.has_password == c->has_password);
	CHECK(same(d.protocol_name, c->protocol_name));
	CHECK(same(d.client_id, c->client_id) && same(d.username, c->username) &&
	      same(d.password, c->password));
	CHECK(same(d.will.topic, c->will.topic) && same(d.will.payload, c->will.payload));
	CHECK(same(d.props.raw, c->props.raw) && same(d.will.props.raw, c->will.props.raw));
	free(e.buf);
	free(user);
}

static void rt_connack(const struct mqtt_connack *c, int proto)
{
	struct enc e;
	struct mqtt_connack d;

	check_props(&c->props, MQTT_CONNACK);
	mqtt_write_connack(enc_begin(&e, mqtt_size_connack(proto, c->props.raw)), proto,
			   c->session_present, c->code, c->props.raw);
	enc_end(&e, MQTT_CONNACK);
	CHECK(mqtt_decode_connack(e.body, e.f.remaining, e.f.flags, proto, &d) == MQTT_OK);
	CHECK(d.session_present == c->session_present && d.code == c->code);
	CHECK(same(d.props.raw, c->props.raw));
	free(e.buf);
}

static void rt_publish(const struct mqtt_publish *p, int proto)
{
	struct enc e;
	struct mqtt_publish d;
	struct mqtt_props_out props = {.raw = p->props.raw};
	struct mqtt_publish_out o = {
		.qos = p->qos, .dup = p->dup, .retain = p->retain, .packet_id = p->packet_id,
		.topic = p->topic, .payload = p->payload,
		.props = proto == MQTT_PROTO_V5 ? &props : NULL,
	};

	check_props(&p->props, MQTT_PUBLISH);
	uint32_t size = mqtt_size_publish(&o, proto);
	CHECK(mqtt_size_publish_header(&o, proto) + p->payload.len == size);
	mqtt_write_publish(enc_begin(&e, size), &o, proto);
	enc_end(&e, MQTT_PUBLISH);
	CHECK(mqtt_decode_publish(e.body, e.f.remaining, e.f.flags, proto, &d) == MQTT_OK);
	CHECK(d.qos == p->qos && d.dup == p->dup && d.retain == p->retain &&
	      d.packet_id == p->packet_id);
	CHECK(same(d.topic, p->topic) && same(d.payload, p->payload) &&
	      same(d.props.raw, p->props.raw));
	free(e.buf);
}

static void rt_ack(uint8_t type, const struct mqtt_ack *a, int proto)
{
	struct enc e;
	struct mqtt_ack d;
	struct mqtt_props_out props = {.raw = a->props.raw};

	check_props(&a->props, type);
	mqtt_write_ack(enc_begin(&e, mqtt_size_ack(proto, a->reason, &props)), type, a->packet_id,
		       proto, a->reason, &props);
	enc_end(&e, type);
	CHECK(mqtt_decode_ack(type, e.body, e.f.remaining, e.f.flags, proto, &d) == MQTT_OK);
	CHECK(d.packet_id == a->packet_id && d.reason == a->reason);
	CHECK(same(d.props.raw, a->props.raw));
	free(e.buf);
}

static void rt_subscribe(const struct mqtt_subscribe *s, int proto)
{
	struct enc e;
	struct mqtt_subscribe d;
	struct mqtt_sub_entry *entries = malloc((s->count ? s->count : 1) * sizeof(*entries));
	uint32_t pos = 0, n = 0;

	CHECK(entries);
	check_props(&s->props, MQTT_SUBSCRIBE);
	while (mqtt_subscribe_next(s, proto, &pos, &entries[n].filter, &entries[n].opts)) {
		const struct mqtt_bytes *f = &entries[n].filter;
		CHECK(n < s->count);
		CHECK(f->len > 0);
		/* The broker's checks on a filter must not read past it. */
		const char *fs = (const char *)f->data, *group, *rest;
		size_t glen, rlen;
		bool valid;
		if (topic_filter_valid(fs, f->len) && !topic_filter_has_wildcard(fs, f->len))
			CHECK(topic_matches(fs, f->len, fs, f->len));
		CHECK(topic_levels(fs, f->len) >= 1);
		if (topic_shared_parse(fs, f->len, &group, &glen, &rest, &rlen, &valid))
			CHECK(rest >= fs && rest + rlen <= fs + f->len);
		char *mounted = malloc(2 + f->len);
		CHECK(mounted);
		CHECK(topic_mount("m/", 2, fs, f->len, mounted) == 2 + f->len);
		free(mounted);
		n++;
	}
	CHECK(n == s->count && pos == s->entries.len);
	uint32_t subid = mqtt_props_has(&s->props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER)
		? s->props.subscription_id : 0;
	mqtt_write_subscribe(enc_begin(&e, mqtt_size_subscribe(proto, entries, n, subid)), proto,
			     s->packet_id, entries, n, subid);
	enc_end(&e, MQTT_SUBSCRIBE);
	CHECK(mqtt_decode_subscribe(e.body, e.f.remaining, e.f.flags, proto, &d) == MQTT_OK);
	CHECK(d.packet_id == s->packet_id && d.count == s->count);
	CHECK(d.props.subscription_id == subid);
	pos = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct mqtt_bytes f;
		struct mqtt_sub_options o;
		CHECK(mqtt_subscribe_next(&d, proto, &pos, &f, &o));
		CHECK(same(f, entries[i].filter));
		CHECK(o.qos == entries[i].opts.qos && o.no_local == entries[i].opts.no_local &&
		      o.retain_as_published == entries[i].opts.retain_as_published &&
		      o.retain_handling == entries[i].opts.retain_handling);
	}
	free(e.buf);
	free(entries);
}

static void rt_unsubscribe(const struct mqtt_unsubscribe *u, int proto)
{
	struct enc e;
	struct mqtt_unsubscribe d;
	struct mqtt_bytes *filters = malloc((u->count ? u->count : 1) * sizeof(*filters));
	uint32_t pos = 0, n = 0;

	CHECK(filters);
	check_props(&u->props, MQTT_UNSUBSCRIBE);
	while (mqtt_unsubscribe_next(u, &pos, &filters[n])) {
		CHECK(n < u->count && filters[n].len > 0);
		(void)topic_filter_valid((const char *)filters[n].data, filters[n].len);
		n++;
	}
	CHECK(n == u->count && pos == u->entries.len);
	mqtt_write_unsubscribe(enc_begin(&e, mqtt_size_unsubscribe(proto, filters, n)), proto,
			       u->packet_id, filters, n);
	enc_end(&e, MQTT_UNSUBSCRIBE);
	CHECK(mqtt_decode_unsubscribe(e.body, e.f.remaining, e.f.flags, proto, &d) == MQTT_OK);
	CHECK(d.packet_id == u->packet_id && d.count == u->count);
	pos = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct mqtt_bytes f;
		CHECK(mqtt_unsubscribe_next(&d, &pos, &f) && same(f, filters[i]));
	}
	free(e.buf);
	free(filters);
}

static void rt_suback(uint8_t type, const struct mqtt_suback *s, int proto)
{
	struct enc e;
	struct mqtt_suback d;
	struct mqtt_props_out props = {.raw = s->props.raw};

	check_props(&s->props, type);
	mqtt_write_suback(enc_begin(&e, mqtt_size_suback(type, proto, s->codes.len, &props)), type,
			  s->packet_id, proto, s->codes.data, s->codes.len, &props);
	enc_end(&e, type);
	CHECK(mqtt_decode_suback(type, e.body, e.f.remaining, e.f.flags, proto, &d) == MQTT_OK);
	CHECK(d.packet_id == s->packet_id && same(d.codes, s->codes) &&
	      same(d.props.raw, s->props.raw));
	free(e.buf);
}

static void rt_reason(uint8_t type, const struct mqtt_reason_packet *p, int proto)
{
	struct enc e;
	struct mqtt_reason_packet d;
	struct mqtt_props_out props = {.raw = p->props.raw};

	check_props(&p->props, type);
	mqtt_write_reason_packet(enc_begin(&e, mqtt_size_reason_packet(proto, p->reason, &props)),
				 type, proto, p->reason, &props);
	enc_end(&e, type);
	int rc = type == MQTT_AUTH ? mqtt_decode_auth(e.body, e.f.remaining, e.f.flags, proto, &d)
				   : mqtt_decode_disconnect(e.body, e.f.remaining, e.f.flags, proto, &d);
	CHECK(rc == MQTT_OK);
	CHECK(d.reason == p->reason && same(d.props.raw, p->props.raw));
	free(e.buf);
}

static void rt_empty(uint8_t type)
{
	struct enc e;

	mqtt_write_empty(enc_begin(&e, 2), type);
	enc_end(&e, type);
	CHECK(mqtt_decode_empty(e.f.remaining, e.f.flags) == MQTT_OK);
	free(e.buf);
}

/* Decodes one body with every decoder; `type` says which result to round-trip. */
static void decode_all(uint8_t type, const uint8_t *body, uint32_t len, uint8_t flags, int proto)
{
	struct mqtt_connect con;
	struct mqtt_connack cack;
	struct mqtt_publish pub;
	struct mqtt_ack ack;
	struct mqtt_subscribe sub;
	struct mqtt_unsubscribe unsub;
	struct mqtt_suback sack;
	struct mqtt_reason_packet rp;

	/* Flags are the packet's for its own type and the required ones for others,
	 * so that other decoders get past the flag check to the body. */
#define FL(t) (type == (t) ? flags : mqtt_required_flags(t))
	enum mqtt_connect_err cerr = mqtt_decode_connect(body, len, FL(MQTT_CONNECT), &con);
	if (cerr == MQTT_CONNECT_OK) {
		CHECK(con.protocol >= MQTT_PROTO_V31 && con.protocol <= MQTT_PROTO_V5);
		if (type == MQTT_CONNECT)
			rt_connect(&con);
	}
	if (mqtt_decode_connack(body, len, FL(MQTT_CONNACK), proto, &cack) == MQTT_OK &&
	    type == MQTT_CONNACK)
		rt_connack(&cack, proto);
	if (mqtt_decode_publish(body, len, type == MQTT_PUBLISH ? flags : 0x2, proto, &pub) ==
	    MQTT_OK) {
		CHECK(pub.payload.data + pub.payload.len == body + len);
		if (type == MQTT_PUBLISH)
			rt_publish(&pub, proto);
	}
	for (uint8_t t = MQTT_PUBACK; t <= MQTT_PUBCOMP; t++)
		if (mqtt_decode_ack(t, body, len, FL(t), proto, &ack) == MQTT_OK && type == t)
			rt_ack(t, &ack, proto);
	if (mqtt_decode_subscribe(body, len, FL(MQTT_SUBSCRIBE), proto, &sub) == MQTT_OK &&
	    type == MQTT_SUBSCRIBE)
		rt_subscribe(&sub, proto);
	if (mqtt_decode_unsubscribe(body, len, FL(MQTT_UNSUBSCRIBE), proto, &unsub) == MQTT_OK &&
	    type == MQTT_UNSUBSCRIBE)
		rt_unsubscribe(&unsub, proto);
	for (uint8_t t = MQTT_SUBACK; t <= MQTT_UNSUBACK; t += 2)
		if (mqtt_decode_suback(t, body, len, FL(t), proto, &sack) == MQTT_OK && type == t)
			rt_suback(t, &sack, proto);
	if (mqtt_decode_disconnect(body, len, FL(MQTT_DISCONNECT), proto, &rp) == MQTT_OK &&
	    type == MQTT_DISCONNECT)
		rt_reason(MQTT_DISCONNECT, &rp, proto);
	if (mqtt_decode_auth(body, len, FL(MQTT_AUTH), proto, &rp) == MQTT_OK && type == MQTT_AUTH)
		rt_reason(MQTT_AUTH, &rp, proto);
	if ((type == MQTT_PINGREQ || type == MQTT_PINGRESP) && mqtt_decode_empty(len, flags) == MQTT_OK)
		rt_empty(type);
#undef FL
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int proto = MQTT_PROTO_V31 + data[0] % 3;
	/* Bit 0x80 of the first byte: a small max_remaining, as a broker's max_packet_size. */
	uint32_t max_remaining = (data[0] & 0x80) ? 64 : MQTT_MAX_REMAINING_LENGTH;
	const uint8_t *p = data + 1;
	size_t left = size - 1;

	while (left > 0) {
		struct mqtt_frame f;
		int rc = mqtt_frame_parse(p, left, max_remaining, &f);
		if (rc != MQTT_OK) {
			CHECK(rc == MQTT_ERR_INCOMPLETE || rc == MQTT_ERR_MALFORMED ||
			      rc == MQTT_ERR_TOO_LARGE);
			break;
		}
		CHECK(f.header_len >= 2 && f.header_len <= 5 && f.remaining <= max_remaining);
		if (f.header_len + (size_t)f.remaining > left)
			break;
		uint8_t *body = malloc(f.remaining ? f.remaining : 1);
		CHECK(body);
		memcpy(body, p + f.header_len, f.remaining);
		decode_all(f.type, body, f.remaining, f.flags, proto);
		free(body);
		p += f.header_len + f.remaining;
		left -= f.header_len + f.remaining;
	}
	return 0;
}
