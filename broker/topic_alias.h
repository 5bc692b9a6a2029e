/*
 * topic_alias.h: MQTT 5 topic aliases of one network connection, both ways.
 *
 * Owns the two alias tables a client may carry: inbound (the aliases the
 * client sets, up to the listener's max_topic_alias) and outbound (the
 * aliases the broker assigns to the topics it sends, up to the smaller of
 * the client's Topic Alias Maximum and the listener's max_topic_alias_broker).
 * Both are allocated at first use and die with the connection: a new network
 * connection starts with no mapping either way [MQTT-3.3.2-7].
 */
#ifndef MIDGE_TOPIC_ALIAS_H
#define MIDGE_TOPIC_ALIAS_H

#include <stdbool.h>
#include <stdint.h>

#include "packet.h"

struct client;

enum topic_alias_result {
	TOPIC_ALIAS_OK = 0,
	TOPIC_ALIAS_INVALID,   /* 0 or above the maximum: DISCONNECT 0x94 */
	TOPIC_ALIAS_UNKNOWN,   /* empty topic and no mapping yet: DISCONNECT 0x82 */
	TOPIC_ALIAS_NOMEM,
};

/*
 * Inbound PUBLISH carrying Topic Alias `alias`, the listener allowing 1..max.
 * A non-empty *topic sets or replaces the mapping; an empty one is replaced
 * by the mapped topic, which stays valid until the next call for c.
 */
enum topic_alias_result topic_alias_inbound(struct client *c, uint16_t max, uint16_t alias,
					    struct mqtt_bytes *topic);

/*
 * Outbound: how to send a topic to c. alias 0 means "no alias, full topic";
 * otherwise the PUBLISH carries Topic Alias `alias`, and the topic itself
 * only when send_topic (the packet that sets the mapping). The table does
 * not change until topic_alias_commit(), called once the packet is queued
 * (or topic_alias_abort() when it is not), so a mapping the client was never
 * sent is never used.
 */
struct topic_alias_pick {
	uint16_t alias;
	bool send_topic;
	bool fresh;         /* private: a new mapping, `copy` is its topic */
	uint16_t len;       /* private */
	uint32_t hash;      /* private */
	char *copy;         /* private */
};

void topic_alias_pick(struct client *c, const char *topic, uint16_t len,
		      struct topic_alias_pick *pick);
void topic_alias_commit(struct client *c, struct topic_alias_pick *pick);
void topic_alias_abort(struct topic_alias_pick *pick);

/* Frees both tables (when the client is freed). */
void topic_alias_free(struct client *c);

#endif
