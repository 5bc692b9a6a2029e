/*
 * message.h: the refcounted application message.
 *
 * Owns one published message: topic, payload, QoS, retain, the MQTT 5
 * properties that travel with it, its expiry and its origin. One allocation
 * holds everything; a fan-out to N subscribers shares it by reference and
 * copies the payload zero times. References are atomic so workers can share
 * a message; its content never changes after message_new().
 */
#ifndef MIDGE_MESSAGE_H
#define MIDGE_MESSAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct message {
	_Atomic uint32_t refs;
	uint8_t qos;
	bool retain;
	uint16_t topic_len;
	uint32_t payload_len;
	uint32_t props_len;   /* forwardable MQTT 5 properties, encoded, no length prefix */
	int64_t created;      /* wall-clock seconds, for $SYS and expiry */
	int64_t expires;      /* wall-clock seconds, 0 = never */
	uint64_t origin;      /* id of the publishing session, 0 = the broker */
	uint64_t cluster_instance, cluster_seq; /* its envelope's id from another node, 0 = none */
	_Atomic uint64_t store_id; /* its id in the durable store (store.h), 0 = not stored */
	char *topic;          /* NUL terminated */
	uint8_t *payload;
	uint8_t *props;
	uint8_t data[];
};

/* Creates a message with one reference. props may be NULL (props_len 0). */
struct message *message_new(const char *topic, size_t topic_len, const void *payload,
			     size_t payload_len, uint8_t qos, bool retain,
			     const void *props, size_t props_len);

static inline struct message *message_ref(struct message *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void message_unref(struct message *m);

/* Bytes the message occupies, for byte limits and statistics. */
static inline size_t message_size(const struct message *m)
{
	return m->topic_len + m->payload_len + m->props_len;
}

/* Messages alive in the process and their bytes ($SYS/broker/store/messages/...). */
uint64_t message_live_count(void);
uint64_t message_live_bytes(void);

#endif
