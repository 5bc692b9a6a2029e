/*
 * codec.h: decoders and encoders of every MQTT control packet, for MQTT 3.1,
 * 3.1.1 and 5.0, in both directions.
 *
 * Pure: no broker state, no allocation. A decoder takes the body of one
 * framed packet (after the fixed header) plus its fixed-header flags and the
 * protocol level, validates the grammar and the protocol rules that need no
 * session state, and fills a struct whose spans borrow from the body.
 * Encoders are length-first: mqtt_size_*() gives the exact size of the whole
 * packet, mqtt_write_*() writes it into a pkt_writer of at least that room.
 */
#ifndef MIDGE_CODEC_H
#define MIDGE_CODEC_H

#include "packet.h"
#include "property.h"

struct mqtt_will {
	uint8_t qos;
	bool retain;
	struct mqtt_props props;
	struct mqtt_bytes topic;
	struct mqtt_bytes payload;
};

struct mqtt_connect {
	uint8_t protocol;        /* 3, 4 or 5 */
	bool bridge;             /* the level had bit 0x80: another broker's bridge (3.1, 3.1.1) */
	bool clean_start;
	bool has_will;
	bool has_username;
	bool has_password;
	uint16_t keepalive;
	struct mqtt_props props;
	struct mqtt_bytes protocol_name;
	struct mqtt_bytes client_id;
	struct mqtt_bytes username;
	struct mqtt_bytes password;
	struct mqtt_will will;
};

/* What went wrong in a CONNECT, which decides how the broker answers. */
enum mqtt_connect_err {
	MQTT_CONNECT_OK = 0,
	MQTT_CONNECT_BAD_NAME,     /* not an MQTT CONNECT: close without CONNACK */
	MQTT_CONNECT_BAD_VERSION,  /* known name, unknown level: CONNACK 1 / 0x84 */
	MQTT_CONNECT_MALFORMED,    /* close (v5: CONNACK 0x81) */
	MQTT_CONNECT_PROTOCOL,     /* close (v5: CONNACK 0x82) */
};

/* Decodes a CONNECT body; out->protocol is set as soon as it is known. */
enum mqtt_connect_err mqtt_decode_connect(const uint8_t *body, uint32_t len, uint8_t flags,
					  struct mqtt_connect *out);

struct mqtt_connack {
	bool session_present;
	uint8_t code;               /* v3 return code or v5 reason code */
	struct mqtt_props props;    /* decode only */
};
int mqtt_decode_connack(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
			struct mqtt_connack *out);

struct mqtt_publish {
	uint8_t qos;
	bool dup;
	bool retain;
	uint16_t packet_id;
	struct mqtt_bytes topic;
	struct mqtt_props props;
	struct mqtt_bytes payload;
};

/*
 * Decodes a PUBLISH. Refuses QoS 3, a zero packet identifier,
 * invalid UTF-8 and wildcard characters in the topic (MQTT_ERR_PROTOCOL or
 * MQTT_ERR_MALFORMED). An empty topic is left to the caller, because MQTT 5
 * allows it together with a topic alias.
 */
int mqtt_decode_publish(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
			struct mqtt_publish *out);

/* PUBACK, PUBREC, PUBREL and PUBCOMP. */
struct mqtt_ack {
	uint16_t packet_id;
	uint8_t reason;
	struct mqtt_props props;
};
int mqtt_decode_ack(uint8_t type, const uint8_t *body, uint32_t len, uint8_t flags, int proto,
		    struct mqtt_ack *out);

/* Subscription options byte of SUBSCRIBE (3.1.1 uses only the QoS bits). */
struct mqtt_sub_options {
	uint8_t qos;
	bool no_local;
	bool retain_as_published;
	uint8_t retain_handling;
};

struct mqtt_subscribe {
	uint16_t packet_id;
	uint32_t count;          /* number of filters */
	struct mqtt_props props;
	struct mqtt_bytes entries; /* the payload, walked with mqtt_subscribe_next() */
};

/* Validates a SUBSCRIBE: at least one filter, each a non-empty UTF-8 string, valid options. */
int mqtt_decode_subscribe(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
			  struct mqtt_subscribe *out);
/* Walks the entries of a decoded SUBSCRIBE; *pos starts at 0. */
bool mqtt_subscribe_next(const struct mqtt_subscribe *s, int proto, uint32_t *pos,
			 struct mqtt_bytes *filter, struct mqtt_sub_options *opts);

struct mqtt_unsubscribe {
	uint16_t packet_id;
	uint32_t count;
	struct mqtt_props props;
	struct mqtt_bytes entries;
};
int mqtt_decode_unsubscribe(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
			    struct mqtt_unsubscribe *out);
bool mqtt_unsubscribe_next(const struct mqtt_unsubscribe *u, uint32_t *pos,
			   struct mqtt_bytes *filter);

/* SUBACK and UNSUBACK as a client receives them. */
struct mqtt_suback {
	uint16_t packet_id;
	struct mqtt_props props;
	struct mqtt_bytes codes;
};
int mqtt_decode_suback(uint8_t type, const uint8_t *body, uint32_t len, uint8_t flags, int proto,
		       struct mqtt_suback *out);

/* DISCONNECT and AUTH (reason code plus properties). */
struct mqtt_reason_packet {
	uint8_t reason;
	struct mqtt_props props;
};
int mqtt_decode_disconnect(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
			   struct mqtt_reason_packet *out);
int mqtt_decode_auth(const uint8_t *body, uint32_t len, uint8_t flags, int proto,
		     struct mqtt_reason_packet *out);

/* PINGREQ and PINGRESP: no body, no flags. */
int mqtt_decode_empty(uint32_t len, uint8_t flags);

/* The fixed-header flags each packet type must carry (PUBLISH excepted). */
uint8_t mqtt_required_flags(uint8_t type);

/* --- Encoders --- */

/*
 * Extra properties an encoder writes. `raw` is an already encoded block of
 * properties copied as is (forwarded PUBLISH properties); the named fields
 * are appended after it when non-zero / non-empty.
 */
struct mqtt_props_out {
	struct mqtt_bytes raw;
	struct mqtt_bytes reason_string;
	uint32_t message_expiry;      /* written when has_message_expiry */
	bool has_message_expiry;
	uint16_t topic_alias;
	const uint32_t *subscription_ids;
	uint32_t subscription_id_count;
};

/* Size of a property block including its length prefix. */
uint32_t mqtt_props_out_size(const struct mqtt_props_out *p);
void mqtt_props_out_write(struct pkt_writer *w, const struct mqtt_props_out *p);

struct mqtt_publish_out {
	uint8_t qos;
	bool dup;
	bool retain;
	uint16_t packet_id;
	struct mqtt_bytes topic;
	struct mqtt_bytes payload;
	const struct mqtt_props_out *props; /* v5 only; NULL for none */
};

/* Size of the packet without the payload, and of the whole packet. */
uint32_t mqtt_size_publish_header(const struct mqtt_publish_out *p, int proto);
uint32_t mqtt_size_publish(const struct mqtt_publish_out *p, int proto);
/* Writes fixed header, topic, packet id and properties (no payload). */
void mqtt_write_publish_header(struct pkt_writer *w, const struct mqtt_publish_out *p, int proto);
void mqtt_write_publish(struct pkt_writer *w, const struct mqtt_publish_out *p, int proto);

/* PUBACK/PUBREC/PUBREL/PUBCOMP; the reason and properties are v5 only. */
uint32_t mqtt_size_ack(int proto, uint8_t reason, const struct mqtt_props_out *props);
void mqtt_write_ack(struct pkt_writer *w, uint8_t type, uint16_t packet_id, int proto,
		    uint8_t reason, const struct mqtt_props_out *props);

/* SUBACK / UNSUBACK with one code per filter (UNSUBACK of v3 has none). */
uint32_t mqtt_size_suback(uint8_t type, int proto, uint32_t ncodes,
			  const struct mqtt_props_out *props);
void mqtt_write_suback(struct pkt_writer *w, uint8_t type, uint16_t packet_id, int proto,
		       const uint8_t *codes, uint32_t ncodes, const struct mqtt_props_out *props);

/* CONNACK; `props` is a fully encoded v5 property block (without length) or empty. */
uint32_t mqtt_size_connack(int proto, struct mqtt_bytes props);
void mqtt_write_connack(struct pkt_writer *w, int proto, bool session_present, uint8_t code,
			struct mqtt_bytes props);

/* DISCONNECT / AUTH with reason code; v3 DISCONNECT is two bytes. */
uint32_t mqtt_size_reason_packet(int proto, uint8_t reason, const struct mqtt_props_out *props);
void mqtt_write_reason_packet(struct pkt_writer *w, uint8_t type, int proto, uint8_t reason,
			      const struct mqtt_props_out *props);

/* PINGREQ / PINGRESP. */
void mqtt_write_empty(struct pkt_writer *w, uint8_t type);

/* CONNECT, as a client sends it. */
struct mqtt_connect_out {
	uint8_t protocol;
	bool clean_start;
	uint16_t keepalive;
	struct mqtt_bytes client_id;
	const char *username;   /* NULL for none */
	struct mqtt_bytes password; /* data NULL for none */
	struct mqtt_bytes props; /* encoded block without length */
	bool has_will;
	uint8_t will_qos;
	bool will_retain;
	struct mqtt_bytes will_topic;
	struct mqtt_bytes will_payload;
	struct mqtt_bytes will_props;
};
uint32_t mqtt_size_connect(const struct mqtt_connect_out *c);
void mqtt_write_connect(struct pkt_writer *w, const struct mqtt_connect_out *c);

/* SUBSCRIBE / UNSUBSCRIBE, as a client sends them. */
struct mqtt_sub_entry {
	struct mqtt_bytes filter;
	struct mqtt_sub_options opts;
};
uint32_t mqtt_size_subscribe(int proto, const struct mqtt_sub_entry *e, uint32_t n,
			     uint32_t subscription_id);
void mqtt_write_subscribe(struct pkt_writer *w, int proto, uint16_t packet_id,
			  const struct mqtt_sub_entry *e, uint32_t n, uint32_t subscription_id);
uint32_t mqtt_size_unsubscribe(int proto, const struct mqtt_bytes *filters, uint32_t n);
void mqtt_write_unsubscribe(struct pkt_writer *w, int proto, uint16_t packet_id,
			    const struct mqtt_bytes *filters, uint32_t n);

/*
 * The same with any v5 properties (user properties, a subscription
 * identifier in props->subscription_ids): a client's -D options. Properties
 * are left out for MQTT 3.x; props may be NULL.
 */
uint32_t mqtt_size_subscribe_props(int proto, const struct mqtt_sub_entry *e, uint32_t n,
				   const struct mqtt_props_out *props);
void mqtt_write_subscribe_props(struct pkt_writer *w, int proto, uint16_t packet_id,
				const struct mqtt_sub_entry *e, uint32_t n,
				const struct mqtt_props_out *props);
uint32_t mqtt_size_unsubscribe_props(int proto, const struct mqtt_bytes *filters, uint32_t n,
				     const struct mqtt_props_out *props);
void mqtt_write_unsubscribe_props(struct pkt_writer *w, int proto, uint16_t packet_id,
				  const struct mqtt_bytes *filters, uint32_t n,
				  const struct mqtt_props_out *props);

#endif
