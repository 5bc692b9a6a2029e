/*
 * property.h: the MQTT 5.0 property codec.
 *
 * Owns the table of property identifiers (type, which packets may carry it,
 * whether it may repeat) and the decoder that validates a property block
 * against that table. Decoded values borrow from the packet buffer. Writers
 * are length-first like the rest of the codec: size with mqtt_prop_size_*(),
 * then write with pkt_write_prop_*().
 */
#ifndef MIDGE_PROPERTY_H
#define MIDGE_PROPERTY_H

#include "packet.h"

/* Pseudo packet type for the will properties inside a CONNECT payload. */
#define MQTT_PROPS_WILL 0

enum mqtt_prop_type {
	MQTT_PROP_TYPE_NONE = 0,
	MQTT_PROP_TYPE_BYTE,
	MQTT_PROP_TYPE_U16,
	MQTT_PROP_TYPE_U32,
	MQTT_PROP_TYPE_VARINT,
	MQTT_PROP_TYPE_STRING,
	MQTT_PROP_TYPE_BINARY,
	MQTT_PROP_TYPE_PAIR,
};

/* Decoded property block. Spans borrow from the packet. */
struct mqtt_props {
	uint64_t present; /* bit (1 << id) for every identifier seen */
	uint8_t payload_format;
	uint8_t request_problem_info;
	uint8_t request_response_info;
	uint8_t max_qos;
	uint8_t retain_available;
	uint8_t wildcard_available;
	uint8_t subid_available;
	uint8_t shared_available;
	uint16_t server_keepalive;
	uint16_t receive_maximum;
	uint16_t topic_alias_maximum;
	uint16_t topic_alias;
	uint32_t message_expiry;
	uint32_t session_expiry;
	uint32_t will_delay;
	uint32_t max_packet_size;
	uint32_t subscription_id;       /* the first one */
	uint32_t subscription_id_count;
	uint32_t user_property_count;
	struct mqtt_bytes content_type;
	struct mqtt_bytes response_topic;
	struct mqtt_bytes correlation_data;
	struct mqtt_bytes assigned_client_id;
	struct mqtt_bytes auth_method;
	struct mqtt_bytes auth_data;
	struct mqtt_bytes response_info;
	struct mqtt_bytes server_reference;
	struct mqtt_bytes reason_string;
	struct mqtt_bytes raw; /* the block without its length, for iteration */
};

static inline bool mqtt_props_has(const struct mqtt_props *p, int id)
{
	return (p->present >> id) & 1u;
}

/* Type of a property identifier, MQTT_PROP_TYPE_NONE when unknown. */
enum mqtt_prop_type mqtt_prop_type(int id);
/* Whether packet_type (or MQTT_PROPS_WILL) may carry property id. */
bool mqtt_prop_allowed(int id, int packet_type);
/* Name of a property for logs ("unknown" for others). */
const char *mqtt_prop_name(int id);

/*
 * Reads the property length and block for packet_type and validates it:
 * unknown or misplaced identifiers and values of the wrong shape are
 * MQTT_ERR_MALFORMED; a repeated single-valued property, or a value outside
 * its range (a zero receive maximum, say), is MQTT_ERR_PROTOCOL.
 */
int mqtt_props_read(struct pkt_reader *r, int packet_type, struct mqtt_props *out);

/* One property from a validated block, for iteration in order. */
struct mqtt_prop {
	uint8_t id;
	uint32_t value;          /* integer types */
	struct mqtt_bytes data;  /* string / binary, or pair name */
	struct mqtt_bytes data2; /* pair value */
};

/* Steps through props->raw; *pos starts at 0. Returns false at the end. */
bool mqtt_props_next(const struct mqtt_props *props, uint32_t *pos, struct mqtt_prop *out);

/*
 * Copies the properties a server forwards with an application message
 * (payload format, content type, response topic, correlation data, user
 * properties, in their original order) into out, which must have room for
 * props->raw.len bytes. Message expiry, topic alias and subscription
 * identifiers are per hop and are left out. Returns the bytes written.
 */
uint32_t mqtt_props_copy_forwardable(const struct mqtt_props *props, uint8_t *out);

/* Sizes of one encoded property (identifier included). */
static inline uint32_t mqtt_prop_size_u8(void) { return 2; }
static inline uint32_t mqtt_prop_size_u16(void) { return 3; }
static inline uint32_t mqtt_prop_size_u32(void) { return 5; }
static inline uint32_t mqtt_prop_size_varint(uint32_t v) { return 1 + mqtt_varint_size(v); }
static inline uint32_t mqtt_prop_size_bin(uint32_t len) { return 3 + len; }
static inline uint32_t mqtt_prop_size_pair(uint32_t klen, uint32_t vlen) { return 5 + klen + vlen; }

void pkt_write_prop_u8(struct pkt_writer *w, uint8_t id, uint8_t v);
void pkt_write_prop_u16(struct pkt_writer *w, uint8_t id, uint16_t v);
void pkt_write_prop_u32(struct pkt_writer *w, uint8_t id, uint32_t v);
void pkt_write_prop_varint(struct pkt_writer *w, uint8_t id, uint32_t v);
void pkt_write_prop_bin(struct pkt_writer *w, uint8_t id, const void *data, uint16_t len);
void pkt_write_prop_pair(struct pkt_writer *w, uint8_t id, const void *k, uint16_t klen,
			 const void *v, uint16_t vlen);

#endif
