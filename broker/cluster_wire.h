/*
 * cluster_wire.h: what a cluster node puts on NATS: subjects and envelopes.
 *
 * Pure functions (no broker state, no libnats), so they are unit-tested and
 * compiled with or without NATS support. cluster_topic.c maps MQTT topics
 * and filters to NATS subjects; cluster_codec.c encodes and decodes the
 * envelope that carries one message between nodes.
 *
 * Subject mapping. A message on MQTT topic L1/L2/.../Ln travels on
 *     <prefix>.<kind>.<T1>.<T2>...<Tn>
 * where <prefix> is cluster.subject_prefix (default "midge"), <kind> is
 * "m" (QoS 0 messages, routed by interest), "q" (QoS 1 and 2 messages, routed
 * by interest too, and kept in the JetStream stream <prefix>_msgs, which
 * captures <prefix>.q.>) or "r" (retained messages, for shared subscription
 * groups only: the retained set itself travels through a key-value bucket,
 * keyed as below), and each level Li becomes exactly one NATS token Ti:
 *   - the empty level becomes "~" (NATS forbids empty tokens);
 *   - every byte NATS treats specially is written "~XX" (two upper-case hex
 *     digits): '.', '*', '>', the escape '~' itself, space and every other
 *     byte <= 0x20, and 0x7F; all other bytes (UTF-8 included) stay as they
 *     are. A token of one '~' can only be the empty level, since a '~' of
 *     the topic is "~7E", so decoding is unambiguous and lossless.
 * A filter maps the same way, with '+' -> '*' and a trailing '#' -> '>'.
 * Because 'a/#' also matches 'a', it gives two subjects: "<p>.m.a" and
 * "<p>.m.a.>"; a lone '#' gives "<p>.m.>". A node subscribes each filter
 * with kind "m" and kind "q". NATS matching is then at least as
 * broad as MQTT's (a '*' or '>' first token matches '$' topics, which MQTT
 * wildcards must not), so a receiving node routes by its own subscription
 * trie, which applies the MQTT rules, never by the subject.
 */
#ifndef MIDGE_CLUSTER_WIRE_H
#define MIDGE_CLUSTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLUSTER_KIND_MSG "m"
#define CLUSTER_KIND_QOS "q"
#define CLUSTER_KIND_RETAIN "r"
#define CLUSTER_ESCAPE '~'

/* Bytes a subject for a topic or filter of len bytes may need, NUL included. */
size_t cluster_subject_max(const char *prefix, size_t len);

/*
 * Writes the subject of a topic name (len bytes, valid) into out, which has
 * cluster_subject_max() bytes. Returns the subject's length.
 */
size_t cluster_subject_for_topic(char *out, const char *prefix, const char *kind,
				 const char *topic, size_t len);

/*
 * Writes the subjects that carry every message of that kind a valid filter
 * (not a $share one: pass its inner filter) matches: one, or two for a
 * filter ending in '/#'. out[0] and out[1] each have cluster_subject_max()
 * bytes. Returns how many were written.
 */
int cluster_subjects_for_filter(char *out[2], const char *prefix, const char *kind,
				const char *filter, size_t len);

/*
 * The NATS queue group of shared subscription $share/<group>/<filter> (one
 * per cluster prefix): "<prefix>.share.<group>.<filter>", where group and
 * filter keep ASCII letters, digits and "-_/+#$" and write every other byte
 * "~XX" (so a '.' of the group cannot end it early, and no space, which ends
 * a queue name in the NATS protocol, can appear). cluster_queue_name_max()
 * bytes, NUL included; returns the length written.
 */
size_t cluster_queue_name_max(const char *prefix, size_t glen, size_t flen);
size_t cluster_queue_name(char *out, const char *prefix, const char *group, size_t glen,
			  const char *filter, size_t flen);

/*
 * The topic a subject of that prefix and kind names, into out (at least as
 * many bytes as the subject): the inverse of cluster_subject_for_topic().
 * Returns its length, or -1 when the subject is not of that form.
 */
long cluster_topic_for_subject(char *out, const char *prefix, const char *kind,
			       const char *subject);

/*
 * Key-value keys. The cluster keeps some state in JetStream key-value
 * buckets, whose keys may hold only [-/_=.a-zA-Z0-9], with '.' between
 * non-empty tokens. A retained message's key is its topic, level by level,
 * each level one token, written losslessly:
 *   - [-_a-zA-Z0-9] stay as they are;
 *   - every other byte (the escape '=' itself, '$', '.', '/', UTF-8, ...)
 *     is written "=XX", two upper-case hex digits;
 *   - the empty level is a lone "=" (a '=' of the topic is "=3D").
 * So "$SYS/a.b//x=y" is "=24SYS.a=2Eb.=.x=3Dy". A key longer than
 * CLUSTER_KEY_MAX this way becomes "=H." and the SHA-256 of the topic in
 * hex (not decodable: "=H" is no valid token; the value carries the topic
 * anyway). The same token rule names single things (a node, a client id)
 * in one token each: cluster_key_token().
 */
#define CLUSTER_KEY_ESCAPE '='
#define CLUSTER_KEY_MAX 1024

/* Writes the key of a topic name (len bytes) into out; returns its length. */
size_t cluster_key_for_topic(char out[CLUSTER_KEY_MAX + 1], const char *topic, size_t len);

/*
 * The topic a key names, into out (at least as many bytes as the key): the
 * inverse of cluster_key_for_topic(). -1 for a hashed or invalid key.
 */
long cluster_topic_for_key(char *out, const char *key);

/* name (len bytes, any) as one token into out (cap bytes, NUL included); -1: too long. */
long cluster_key_token(char *out, size_t cap, const char *name, size_t len);

/*
 * The envelope: one message as it crosses NATS, in the payload (NATS
 * headers would cost a parse per field). All integers big-endian:
 *   "MG" version(1)=1 flags(1: bits 0-1 QoS, bit 2 retain, bit 3 groups served)
 *   instance(8) sequence(8) expiry(4: seconds left, 0 = none)
 *   node_len(1) topic_len(2) props_len(4) payload_len(4)
 *   node topic props payload
 * instance is random per node start, sequence counts its messages: together
 * they are the message id receivers drop duplicates by. props are the
 * message's forwardable MQTT 5 properties as message.h keeps them (payload
 * format, content type, response topic, correlation data, user properties).
 */
#define CLUSTER_ENV_HEADER 35

struct cluster_env {
	uint64_t instance;
	uint64_t seq;
	uint8_t qos;
	bool retain;
	/* The origin gave it to its own shared-group members (it had no NATS then):
	 * queue subscriptions must not deliver it again. */
	bool groups_served;
	uint32_t expiry;
	const char *node;
	size_t node_len;    /* 1..255 */
	const char *topic;
	size_t topic_len;   /* 1..65535 */
	const uint8_t *props;
	size_t props_len;
	const uint8_t *payload;
	size_t payload_len;
};

size_t cluster_env_size(const struct cluster_env *e);
/* Writes e into out (cluster_env_size() bytes). */
void cluster_env_encode(const struct cluster_env *e, uint8_t *out);
/* Reads buf into e (pointers into buf); -1 when it is not a valid envelope. */
int cluster_env_decode(const uint8_t *buf, size_t len, struct cluster_env *e);

/*
 * The JetStream message id of a QoS 1/2 message (its Nats-Msg-Id header, by
 * which the stream drops a copy sent again): "<instance>-<sequence>", the
 * instance in 16 lower-case hex digits, the sequence in decimal, as in the
 * envelope.
 */
#define CLUSTER_MSG_ID_MAX 40
/* Writes the id into out (CLUSTER_MSG_ID_MAX bytes); returns its length. */
size_t cluster_msg_id(char *out, uint64_t instance, uint64_t seq);
/* Reads an id; -1 when s is not one. */
int cluster_msg_id_parse(const char *s, uint64_t *instance, uint64_t *seq);

#endif
