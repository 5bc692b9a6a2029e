/*
 * property.c: MQTT 5.0 property table, decoder and writers.
 * The table is the single source of truth for which packet may carry which
 * property (specification section 2.2.2.2).
 */
#include "property.h"

#include <midge/mqtt.h>
#include <string.h>

#define P(t) (1u << (t))
#define WILL P(MQTT_PROPS_WILL)

struct prop_info {
	const char *name;
	enum mqtt_prop_type type;
	uint32_t packets; /* bit per packet type, bit 0 = will properties */
	bool repeatable;
};

static const struct prop_info prop_table[0x2B] = {
	[MQTT_PROP_PAYLOAD_FORMAT_INDICATOR] = {"payload-format-indicator", MQTT_PROP_TYPE_BYTE,
		P(MQTT_PUBLISH) | WILL, false},
	[MQTT_PROP_MESSAGE_EXPIRY_INTERVAL] = {"message-expiry-interval", MQTT_PROP_TYPE_U32,
		P(MQTT_PUBLISH) | WILL, false},
	[MQTT_PROP_CONTENT_TYPE] = {"content-type", MQTT_PROP_TYPE_STRING,
		P(MQTT_PUBLISH) | WILL, false},
	[MQTT_PROP_RESPONSE_TOPIC] = {"response-topic", MQTT_PROP_TYPE_STRING,
		P(MQTT_PUBLISH) | WILL, false},
	[MQTT_PROP_CORRELATION_DATA] = {"correlation-data", MQTT_PROP_TYPE_BINARY,
		P(MQTT_PUBLISH) | WILL, false},
	[MQTT_PROP_SUBSCRIPTION_IDENTIFIER] = {"subscription-identifier", MQTT_PROP_TYPE_VARINT,
		P(MQTT_PUBLISH) | P(MQTT_SUBSCRIBE), true},
	[MQTT_PROP_SESSION_EXPIRY_INTERVAL] = {"session-expiry-interval", MQTT_PROP_TYPE_U32,
		P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_DISCONNECT), false},
	[MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER] = {"assigned-client-identifier", MQTT_PROP_TYPE_STRING,
		P(MQTT_CONNACK), false},
	[MQTT_PROP_SERVER_KEEP_ALIVE] = {"server-keep-alive", MQTT_PROP_TYPE_U16,
		P(MQTT_CONNACK), false},
	[MQTT_PROP_AUTHENTICATION_METHOD] = {"authentication-method", MQTT_PROP_TYPE_STRING,
		P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_AUTH), false},
	[MQTT_PROP_AUTHENTICATION_DATA] = {"authentication-data", MQTT_PROP_TYPE_BINARY,
		P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_AUTH), false},
	[MQTT_PROP_REQUEST_PROBLEM_INFORMATION] = {"request-problem-information", MQTT_PROP_TYPE_BYTE,
		P(MQTT_CONNECT), false},
	[MQTT_PROP_WILL_DELAY_INTERVAL] = {"will-delay-interval", MQTT_PROP_TYPE_U32, WILL, false},
	[MQTT_PROP_REQUEST_RESPONSE_INFORMATION] = {"request-response-information", MQTT_PROP_TYPE_BYTE,
		P(MQTT_CONNECT), false},
	[MQTT_PROP_RESPONSE_INFORMATION] = {"response-information", MQTT_PROP_TYPE_STRING,
		P(MQTT_CONNACK), false},
	[MQTT_PROP_SERVER_REFERENCE] = {"server-reference", MQTT_PROP_TYPE_STRING,
		P(MQTT_CONNACK) | P(MQTT_DISCONNECT), false},
	[MQTT_PROP_REASON_STRING] = {"reason-string", MQTT_PROP_TYPE_STRING,
		P(MQTT_CONNACK) | P(MQTT_PUBACK) | P(MQTT_PUBREC) | P(MQTT_PUBREL) | P(MQTT_PUBCOMP) |
		P(MQTT_SUBACK) | P(MQTT_UNSUBACK) | P(MQTT_DISCONNECT) | P(MQTT_AUTH), false},
	[MQTT_PROP_RECEIVE_MAXIMUM] = {"receive-maximum", MQTT_PROP_TYPE_U16,
		P(MQTT_CONNECT) | P(MQTT_CONNACK), false},
	[MQTT_PROP_TOPIC_ALIAS_MAXIMUM] = {"topic-alias-maximum", MQTT_PROP_TYPE_U16,
		P(MQTT_CONNECT) | P(MQTT_CONNACK), false},
	[MQTT_PROP_TOPIC_ALIAS] = {"topic-alias", MQTT_PROP_TYPE_U16, P(MQTT_PUBLISH), false},
	[MQTT_PROP_MAXIMUM_QOS] = {"maximum-qos", MQTT_PROP_TYPE_BYTE, P(MQTT_CONNACK), false},
	[MQTT_PROP_RETAIN_AVAILABLE] = {"retain-available", MQTT_PROP_TYPE_BYTE, P(MQTT_CONNACK), false},
	[MQTT_PROP_USER_PROPERTY] = {"user-property", MQTT_PROP_TYPE_PAIR,
		P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_PUBLISH) | WILL | P(MQTT_PUBACK) |
		P(MQTT_PUBREC) | P(MQTT_PUBREL) | P(MQTT_PUBCOMP) | P(MQTT_SUBSCRIBE) |
		P(MQTT_SUBACK) | P(MQTT_UNSUBSCRIBE) | P(MQTT_UNSUBACK) | P(MQTT_DISCONNECT) |
		P(MQTT_AUTH), true},
	[MQTT_PROP_MAXIMUM_PACKET_SIZE] = {"maximum-packet-size", MQTT_PROP_TYPE_U32,
		P(MQTT_CONNECT) | P(MQTT_CONNACK), false},
	[MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE] = {"wildcard-subscription-available",
		MQTT_PROP_TYPE_BYTE, P(MQTT_CONNACK), false},
	[MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE] = {"subscription-identifier-available",
		MQTT_PROP_TYPE_BYTE, P(MQTT_CONNACK), false},
	[MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE] = {"shared-subscription-available",
		MQTT_PROP_TYPE_BYTE, P(MQTT_CONNACK), false},
};

#define PROP_TABLE_LEN (sizeof(prop_table) / sizeof(prop_table[0]))

enum mqtt_prop_type mqtt_prop_type(int id)
{
	if (id <= 0 || (size_t)id >= PROP_TABLE_LEN)
		return MQTT_PROP_TYPE_NONE;
	return prop_table[id].type;
}

bool mqtt_prop_allowed(int id, int packet_type)
{
	if (mqtt_prop_type(id) == MQTT_PROP_TYPE_NONE || packet_type < 0 || packet_type > 15)
		return false;
	return (prop_table[id].packets >> packet_type) & 1u;
}

const char *mqtt_prop_name(int id)
{
	if (mqtt_prop_type(id) == MQTT_PROP_TYPE_NONE)
		return "unknown";
	return prop_table[id].name;
}

/* Reads one property value of the table's type into *out. */
static int read_value(struct pkt_reader *r, struct mqtt_prop *out)
{
	uint8_t b;
	uint16_t s;

	switch (mqtt_prop_type(out->id)) {
	case MQTT_PROP_TYPE_BYTE:
		if (pkt_read_u8(r, &b))
			return MQTT_ERR_MALFORMED;
		out->value = b;
		return MQTT_OK;
	case MQTT_PROP_TYPE_U16:
		if (pkt_read_u16(r, &s))
			return MQTT_ERR_MALFORMED;
		out->value = s;
		return MQTT_OK;
	case MQTT_PROP_TYPE_U32:
		return pkt_read_u32(r, &out->value);
	case MQTT_PROP_TYPE_VARINT:
		return pkt_read_varint(r, &out->value);
	case MQTT_PROP_TYPE_STRING:
		return pkt_read_str(r, &out->data);
	case MQTT_PROP_TYPE_BINARY:
		return pkt_read_bin(r, &out->data);
	case MQTT_PROP_TYPE_PAIR:
		if (pkt_read_str(r, &out->data))
			return MQTT_ERR_MALFORMED;
		return pkt_read_str(r, &out->data2);
	case MQTT_PROP_TYPE_NONE:
		break;
	}
	return MQTT_ERR_MALFORMED;
}

static bool is_boolean(uint32_t v)
{
	return v == 0 || v == 1;
}

/* Stores a validated value in the decoded struct; range errors are protocol errors. */
static int store(struct mqtt_props *p, const struct mqtt_prop *v)
{
	switch (v->id) {
	case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
		if (!is_boolean(v->value))
			return MQTT_ERR_PROTOCOL;
		p->payload_format = (uint8_t)v->value;
		break;
	case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL: p->message_expiry = v->value; break;
	case MQTT_PROP_CONTENT_TYPE: p->content_type = v->data; break;
	case MQTT_PROP_RESPONSE_TOPIC: p->response_topic = v->data; break;
	case MQTT_PROP_CORRELATION_DATA: p->correlation_data = v->data; break;
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
		if (v->value == 0)
			return MQTT_ERR_PROTOCOL;
		if (p->subscription_id_count++ == 0)
			p->subscription_id = v->value;
		break;
	case MQTT_PROP_SESSION_EXPIRY_INTERVAL: p->session_expiry = v->value; break;
	case MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER: p->assigned_client_id = v->data; break;
	case MQTT_PROP_SERVER_KEEP_ALIVE: p->server_keepalive = (uint16_t)v->value; break;
	case MQTT_PROP_AUTHENTICATION_METHOD: p->auth_method = v->data; break;
	case MQTT_PROP_AUTHENTICATION_DATA: p->auth_data = v->data; break;
	case MQTT_PROP_REQUEST_PROBLEM_INFORMATION:
		if (!is_boolean(v->value))
			return MQTT_ERR_PROTOCOL;
		p->request_problem_info = (uint8_t)v->value;
		break;
	case MQTT_PROP_WILL_DELAY_INTERVAL: p->will_delay = v->value; break;
	case MQTT_PROP_REQUEST_RESPONSE_INFORMATION:
		if (!is_boolean(v->value))
			return MQTT_ERR_PROTOCOL;
		p->request_response_info = (uint8_t)v->value;
		break;
	case MQTT_PROP_RESPONSE_INFORMATION: p->response_info = v->data; break;
	case MQTT_PROP_SERVER_REFERENCE: p->server_reference = v->data; break;
	case MQTT_PROP_REASON_STRING: p->reason_string = v->data; break;
	case MQTT_PROP_RECEIVE_MAXIMUM:
		if (v->value == 0)
			return MQTT_ERR_PROTOCOL;
		p->receive_maximum = (uint16_t)v->value;
		break;
	case MQTT_PROP_TOPIC_ALIAS_MAXIMUM: p->topic_alias_maximum = (uint16_t)v->value; break;
	case MQTT_PROP_TOPIC_ALIAS: p->topic_alias = (uint16_t)v->value; break;
	case MQTT_PROP_MAXIMUM_QOS:
		if (v->value > 1)
			return MQTT_ERR_PROTOCOL;
		p->max_qos = (uint8_t)v->value;
		break;
	case MQTT_PROP_RETAIN_AVAILABLE:
		if (!is_boolean(v->value))
			return MQTT_ERR_PROTOCOL;
		p->retain_available = (uint8_t)v->value;
		break;
	case MQTT_PROP_USER_PROPERTY: p->user_property_count++; break;
	case MQTT_PROP_MAXIMUM_PACKET_SIZE:
		if (v->value == 0)
			return MQTT_ERR_PROTOCOL;
		p->max_packet_size = v->value;
		break;
	case MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE:
		if (!is_boolean(v->value))
			return MQTT_ERR_PROTOCOL;
		p->wildcard_available = (uint8_t)v->value;
		break;
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE:
		if (!is_boolean(v->value))
			return MQTT_ERR_PROTOCOL;
		p->subid_available = (uint8_t)v->value;
		break;
	case MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE:
		if (!is_boolean(v->value))
			return MQTT_ERR_PROTOCOL;
		p->shared_available = (uint8_t)v->value;
		break;
	default:
		return MQTT_ERR_MALFORMED;
	}
	return MQTT_OK;
}

static void props_defaults(struct mqtt_props *p)
{
	*p = (struct mqtt_props){0};
	p->request_problem_info = 1;
	p->max_qos = 2;
	p->retain_available = 1;
	p->wildcard_available = 1;
	p->subid_available = 1;
	p->shared_available = 1;
}

int mqtt_props_read(struct pkt_reader *r, int packet_type, struct mqtt_props *out)
{
	uint32_t len;
	struct pkt_reader block;
	int rc;

	props_defaults(out);
	if (pkt_read_varint(r, &len) || pkt_read_raw(r, len, &out->raw))
		return MQTT_ERR_MALFORMED;
	pkt_reader_init(&block, out->raw.data, out->raw.len);
	while (pkt_remaining(&block) > 0) {
		struct mqtt_prop v = {0};
		uint32_t id;

		/* Identifiers are variable byte integers; all defined ones fit in one byte. */
		if (pkt_read_varint(&block, &id))
			return MQTT_ERR_MALFORMED;
		if (id >= PROP_TABLE_LEN || !mqtt_prop_allowed((int)id, packet_type))
			return MQTT_ERR_MALFORMED;
		v.id = (uint8_t)id;
		if (read_value(&block, &v))
			return MQTT_ERR_MALFORMED;
		if (mqtt_props_has(out, (int)id) && !prop_table[id].repeatable)
			return MQTT_ERR_PROTOCOL;
		/* SUBSCRIBE may carry one subscription identifier only. */
		if (id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER && packet_type == MQTT_SUBSCRIBE &&
		    mqtt_props_has(out, (int)id))
			return MQTT_ERR_PROTOCOL;
		out->present |= (uint64_t)1 << id;
		rc = store(out, &v);
		if (rc)
			return rc;
	}
	return MQTT_OK;
}

bool mqtt_props_next(const struct mqtt_props *props, uint32_t *pos, struct mqtt_prop *out)
{
	struct pkt_reader r;
	uint32_t id;

	if (*pos >= props->raw.len)
		return false;
	pkt_reader_init(&r, props->raw.data, props->raw.len);
	r.pos = *pos;
	*out = (struct mqtt_prop){0};
	/* The block was validated by mqtt_props_read(), so these reads succeed. */
	if (pkt_read_varint(&r, &id) || mqtt_prop_type((int)id) == MQTT_PROP_TYPE_NONE)
		return false;
	out->id = (uint8_t)id;
	if (read_value(&r, out))
		return false;
	*pos = r.pos;
	return true;
}

static bool forwardable(uint8_t id)
{
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
	case MQTT_PROP_CONTENT_TYPE:
	case MQTT_PROP_RESPONSE_TOPIC:
	case MQTT_PROP_CORRELATION_DATA:
	case MQTT_PROP_USER_PROPERTY:
		return true;
	default:
		return false;
	}
}

uint32_t mqtt_props_copy_forwardable(const struct mqtt_props *props, uint8_t *out)
{
	uint32_t pos = 0, written = 0;
	struct mqtt_prop p;

	for (;;) {
		uint32_t start = pos;
		if (!mqtt_props_next(props, &pos, &p))
			break;
		if (forwardable(p.id)) {
			memcpy(out + written, props->raw.data + start, pos - start);
			written += pos - start;
		}
	}
	return written;
}

void pkt_write_prop_u8(struct pkt_writer *w, uint8_t id, uint8_t v)
{
	pkt_write_u8(w, id);
	pkt_write_u8(w, v);
}

void pkt_write_prop_u16(struct pkt_writer *w, uint8_t id, uint16_t v)
{
	pkt_write_u8(w, id);
	pkt_write_u16(w, v);
}

void pkt_write_prop_u32(struct pkt_writer *w, uint8_t id, uint32_t v)
{
	pkt_write_u8(w, id);
	pkt_write_u32(w, v);
}

void pkt_write_prop_varint(struct pkt_writer *w, uint8_t id, uint32_t v)
{
	pkt_write_u8(w, id);
	pkt_write_varint(w, v);
}

void pkt_write_prop_bin(struct pkt_writer *w, uint8_t id, const void *data, uint16_t len)
{
	pkt_write_u8(w, id);
	pkt_write_bin(w, data, len);
}

void pkt_write_prop_pair(struct pkt_writer *w, uint8_t id, const void *k, uint16_t klen,
			 const void *v, uint16_t vlen)
{
	pkt_write_u8(w, id);
	pkt_write_bin(w, k, klen);
	pkt_write_bin(w, v, vlen);
}
