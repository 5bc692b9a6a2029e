/*
 * codec_encode.c: length-first encoders for every MQTT control packet
 * (see codec.h). Sizes are exact; writers assert instead of checking.
 */
#include "codec.h"

#include <midge/mqtt.h>
#include <string.h>

static uint32_t props_body_size(const struct mqtt_props_out *p)
{
	uint32_t n = 0;

	if (!p)
		return 0;
	n += p->raw.len;
	if (p->reason_string.len)
		n += mqtt_prop_size_bin(p->reason_string.len);
	if (p->has_message_expiry)
		n += mqtt_prop_size_u32();
	if (p->topic_alias)
		n += mqtt_prop_size_u16();
	for (uint32_t i = 0; i < p->subscription_id_count; i++)
		n += mqtt_prop_size_varint(p->subscription_ids[i]);
	return n;
}

uint32_t mqtt_props_out_size(const struct mqtt_props_out *p)
{
	uint32_t body = props_body_size(p);
	return mqtt_varint_size(body) + body;
}

void mqtt_props_out_write(struct pkt_writer *w, const struct mqtt_props_out *p)
{
	pkt_write_varint(w, props_body_size(p));
	if (!p)
		return;
	pkt_write_raw(w, p->raw.data, p->raw.len);
	if (p->reason_string.len)
		pkt_write_prop_bin(w, MQTT_PROP_REASON_STRING, p->reason_string.data,
				   (uint16_t)p->reason_string.len);
	if (p->has_message_expiry)
		pkt_write_prop_u32(w, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, p->message_expiry);
	if (p->topic_alias)
		pkt_write_prop_u16(w, MQTT_PROP_TOPIC_ALIAS, p->topic_alias);
	for (uint32_t i = 0; i < p->subscription_id_count; i++)
		pkt_write_prop_varint(w, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, p->subscription_ids[i]);
}

static uint32_t publish_remaining(const struct mqtt_publish_out *p, int proto)
{
	uint32_t n = 2 + p->topic.len + p->payload.len;

	if (p->qos > 0)
		n += 2;
	if (proto == MQTT_PROTO_V5)
		n += mqtt_props_out_size(p->props);
	return n;
}

uint32_t mqtt_size_publish(const struct mqtt_publish_out *p, int proto)
{
	return mqtt_packet_size(publish_remaining(p, proto));
}

uint32_t mqtt_size_publish_header(const struct mqtt_publish_out *p, int proto)
{
	return mqtt_size_publish(p, proto) - p->payload.len;
}

void mqtt_write_publish_header(struct pkt_writer *w, const struct mqtt_publish_out *p, int proto)
{
	uint8_t flags = (uint8_t)((p->dup ? 0x08 : 0) | (p->qos << 1) | (p->retain ? 1 : 0));

	pkt_write_fixed_header(w, MQTT_PUBLISH, flags, publish_remaining(p, proto));
	pkt_write_bin(w, p->topic.data, (uint16_t)p->topic.len);
	if (p->qos > 0)
		pkt_write_u16(w, p->packet_id);
	if (proto == MQTT_PROTO_V5)
		mqtt_props_out_write(w, p->props);
}

void mqtt_write_publish(struct pkt_writer *w, const struct mqtt_publish_out *p, int proto)
{
	mqtt_write_publish_header(w, p, proto);
	pkt_write_raw(w, p->payload.data, p->payload.len);
}

/* In v5 the reason code and properties may be left out when they say nothing. */
static bool ack_is_short(int proto, uint8_t reason, const struct mqtt_props_out *props)
{
	return proto != MQTT_PROTO_V5 || (reason == 0 && props_body_size(props) == 0);
}

static uint32_t ack_remaining(int proto, uint8_t reason, const struct mqtt_props_out *props)
{
	if (ack_is_short(proto, reason, props))
		return 2;
	if (props_body_size(props) == 0)
		return 3;
	return 3 + mqtt_props_out_size(props);
}

uint32_t mqtt_size_ack(int proto, uint8_t reason, const struct mqtt_props_out *props)
{
	return mqtt_packet_size(ack_remaining(proto, reason, props));
}

void mqtt_write_ack(struct pkt_writer *w, uint8_t type, uint16_t packet_id, int proto,
		    uint8_t reason, const struct mqtt_props_out *props)
{
	uint32_t remaining = ack_remaining(proto, reason, props);

	pkt_write_fixed_header(w, type, mqtt_required_flags(type), remaining);
	pkt_write_u16(w, packet_id);
	if (remaining >= 3)
		pkt_write_u8(w, reason);
	if (remaining > 3)
		mqtt_props_out_write(w, props);
}

static uint32_t suback_remaining(uint8_t type, int proto, uint32_t ncodes,
				 const struct mqtt_props_out *props)
{
	uint32_t n = 2;

	if (proto == MQTT_PROTO_V5)
		n += mqtt_props_out_size(props) + ncodes;
	else if (type == MQTT_SUBACK)
		n += ncodes;
	return n;
}

uint32_t mqtt_size_suback(uint8_t type, int proto, uint32_t ncodes,
			  const struct mqtt_props_out *props)
{
	return mqtt_packet_size(suback_remaining(type, proto, ncodes, props));
}

void mqtt_write_suback(struct pkt_writer *w, uint8_t type, uint16_t packet_id, int proto,
		       const uint8_t *codes, uint32_t ncodes, const struct mqtt_props_out *props)
{
	pkt_write_fixed_header(w, type, 0, suback_remaining(type, proto, ncodes, props));
	pkt_write_u16(w, packet_id);
	if (proto == MQTT_PROTO_V5) {
		mqtt_props_out_write(w, props);
		pkt_write_raw(w, codes, ncodes);
	} else if (type == MQTT_SUBACK) {
		pkt_write_raw(w, codes, ncodes);
	}
}

static uint32_t connack_remaining(int proto, struct mqtt_bytes props)
{
	if (proto != MQTT_PROTO_V5)
		return 2;
	return 2 + mqtt_varint_size(props.len) + props.len;
}

uint32_t mqtt_size_connack(int proto, struct mqtt_bytes props)
{
	return mqtt_packet_size(connack_remaining(proto, props));
}

void mqtt_write_connack(struct pkt_writer *w, int proto, bool session_present, uint8_t code,
			struct mqtt_bytes props)
{
	pkt_write_fixed_header(w, MQTT_CONNACK, 0, connack_remaining(proto, props));
	pkt_write_u8(w, session_present ? 1 : 0);
	pkt_write_u8(w, code);
	if (proto == MQTT_PROTO_V5) {
		pkt_write_varint(w, props.len);
		pkt_write_raw(w, props.data, props.len);
	}
}

static uint32_t reason_remaining(int proto, uint8_t reason, const struct mqtt_props_out *props)
{
	if (proto != MQTT_PROTO_V5)
		return 0;
	if (props_body_size(props) == 0)
		return reason == 0 ? 0 : 1;
	return 1 + mqtt_props_out_size(props);
}

uint32_t mqtt_size_reason_packet(int proto, uint8_t reason, const struct mqtt_props_out *props)
{
	return mqtt_packet_size(reason_remaining(proto, reason, props));
}

void mqtt_write_reason_packet(struct pkt_writer *w, uint8_t type, int proto, uint8_t reason,
			      const struct mqtt_props_out *props)
{
	uint32_t remaining = reason_remaining(proto, reason, props);

	pkt_write_fixed_header(w, type, 0, remaining);
	if (remaining >= 1)
		pkt_write_u8(w, reason);
	if (remaining > 1)
		mqtt_props_out_write(w, props);
}

void mqtt_write_empty(struct pkt_writer *w, uint8_t type)
{
	pkt_write_fixed_header(w, type, 0, 0);
}

static uint32_t connect_remaining(const struct mqtt_connect_out *c)
{
	uint32_t n = (c->protocol == MQTT_PROTO_V31 ? 2 + 6 : 2 + 4) + 1 + 1 + 2;

	if (c->protocol == MQTT_PROTO_V5)
		n += mqtt_varint_size(c->props.len) + c->props.len;
	n += 2 + c->client_id.len;
	if (c->has_will) {
		if (c->protocol == MQTT_PROTO_V5)
			n += mqtt_varint_size(c->will_props.len) + c->will_props.len;
		n += 2 + c->will_topic.len + 2 + c->will_payload.len;
	}
	if (c->username)
		n += 2 + (uint32_t)strlen(c->username);
	if (c->password.data)
		n += 2 + c->password.len;
	return n;
}

uint32_t mqtt_size_connect(const struct mqtt_connect_out *c)
{
	return mqtt_packet_size(connect_remaining(c));
}

void mqtt_write_connect(struct pkt_writer *w, const struct mqtt_connect_out *c)
{
	uint8_t flags = 0;

	if (c->clean_start)
		flags |= 0x02;
	if (c->has_will)
		flags |= (uint8_t)(0x04 | (c->will_qos << 3) | (c->will_retain ? 0x20 : 0));
	if (c->password.data)
		flags |= 0x40;
	if (c->username)
		flags |= 0x80;
	pkt_write_fixed_header(w, MQTT_CONNECT, 0, connect_remaining(c));
	if (c->protocol == MQTT_PROTO_V31)
		pkt_write_bin(w, "MQIsdp", 6);
	else
		pkt_write_bin(w, "MQTT", 4);
	pkt_write_u8(w, c->protocol);
	pkt_write_u8(w, flags);
	pkt_write_u16(w, c->keepalive);
	if (c->protocol == MQTT_PROTO_V5) {
		pkt_write_varint(w, c->props.len);
		pkt_write_raw(w, c->props.data, c->props.len);
	}
	pkt_write_bin(w, c->client_id.data, (uint16_t)c->client_id.len);
	if (c->has_will) {
		if (c->protocol == MQTT_PROTO_V5) {
			pkt_write_varint(w, c->will_props.len);
			pkt_write_raw(w, c->will_props.data, c->will_props.len);
		}
		pkt_write_bin(w, c->will_topic.data, (uint16_t)c->will_topic.len);
		pkt_write_bin(w, c->will_payload.data, (uint16_t)c->will_payload.len);
	}
	if (c->username)
		pkt_write_bin(w, c->username, (uint16_t)strlen(c->username));
	if (c->password.data)
		pkt_write_bin(w, c->password.data, (uint16_t)c->password.len);
}

/* The forms without other properties: a subscription identifier, or none. */
static struct mqtt_props_out subid_props(const uint32_t *subscription_id)
{
	return (struct mqtt_props_out){
		.subscription_ids = subscription_id,
		.subscription_id_count = *subscription_id ? 1 : 0,
	};
}

uint32_t mqtt_size_subscribe(int proto, const struct mqtt_sub_entry *e, uint32_t n,
			     uint32_t subscription_id)
{
	struct mqtt_props_out props = subid_props(&subscription_id);

	return mqtt_size_subscribe_props(proto, e, n, &props);
}

void mqtt_write_subscribe(struct pkt_writer *w, int proto, uint16_t packet_id,
			  const struct mqtt_sub_entry *e, uint32_t n, uint32_t subscription_id)
{
	struct mqtt_props_out props = subid_props(&subscription_id);

	mqtt_write_subscribe_props(w, proto, packet_id, e, n, &props);
}

uint32_t mqtt_size_unsubscribe(int proto, const struct mqtt_bytes *filters, uint32_t n)
{
	struct mqtt_props_out none = {0};

	return mqtt_size_unsubscribe_props(proto, filters, n, &none);
}

void mqtt_write_unsubscribe(struct pkt_writer *w, int proto, uint16_t packet_id,
			    const struct mqtt_bytes *filters, uint32_t n)
{
	struct mqtt_props_out none = {0};

	mqtt_write_unsubscribe_props(w, proto, packet_id, filters, n, &none);
}

static uint32_t sub_props_remaining(int proto, const struct mqtt_sub_entry *e, uint32_t n,
				    const struct mqtt_props_out *props)
{
	uint32_t len = 2;

	if (proto == MQTT_PROTO_V5)
		len += mqtt_props_out_size(props);
	for (uint32_t i = 0; i < n; i++)
		len += 2 + e[i].filter.len + 1;
	return len;
}

uint32_t mqtt_size_subscribe_props(int proto, const struct mqtt_sub_entry *e, uint32_t n,
				   const struct mqtt_props_out *props)
{
	return mqtt_packet_size(sub_props_remaining(proto, e, n, props));
}

void mqtt_write_subscribe_props(struct pkt_writer *w, int proto, uint16_t packet_id,
				const struct mqtt_sub_entry *e, uint32_t n,
				const struct mqtt_props_out *props)
{
	pkt_write_fixed_header(w, MQTT_SUBSCRIBE, 0x2, sub_props_remaining(proto, e, n, props));
	pkt_write_u16(w, packet_id);
	if (proto == MQTT_PROTO_V5)
		mqtt_props_out_write(w, props);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t o = e[i].opts.qos & 0x03;

		if (proto == MQTT_PROTO_V5)
			o |= (uint8_t)((e[i].opts.no_local ? 0x04 : 0) |
				       (e[i].opts.retain_as_published ? 0x08 : 0) |
				       ((e[i].opts.retain_handling & 0x03) << 4));
		pkt_write_bin(w, e[i].filter.data, (uint16_t)e[i].filter.len);
		pkt_write_u8(w, o);
	}
}

static uint32_t unsub_props_remaining(int proto, const struct mqtt_bytes *filters, uint32_t n,
				      const struct mqtt_props_out *props)
{
	uint32_t len = 2;

	if (proto == MQTT_PROTO_V5)
		len += mqtt_props_out_size(props);
	for (uint32_t i = 0; i < n; i++)
		len += 2 + filters[i].len;
	return len;
}

uint32_t mqtt_size_unsubscribe_props(int proto, const struct mqtt_bytes *filters, uint32_t n,
				     const struct mqtt_props_out *props)
{
	return mqtt_packet_size(unsub_props_remaining(proto, filters, n, props));
}

void mqtt_write_unsubscribe_props(struct pkt_writer *w, int proto, uint16_t packet_id,
				  const struct mqtt_bytes *filters, uint32_t n,
				  const struct mqtt_props_out *props)
{
	pkt_write_fixed_header(w, MQTT_UNSUBSCRIBE, 0x2, unsub_props_remaining(proto, filters, n, props));
	pkt_write_u16(w, packet_id);
	if (proto == MQTT_PROTO_V5)
		mqtt_props_out_write(w, props);
	for (uint32_t i = 0; i < n; i++)
		pkt_write_bin(w, filters[i].data, (uint16_t)filters[i].len);
}
