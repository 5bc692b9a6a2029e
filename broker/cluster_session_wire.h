/*
 * cluster_session_wire.h: what the cluster's session registry and session
 * hand-over put on NATS. Pure functions (no broker state, no libnats), so
 * they are unit-tested and built with or without NATS support.
 *
 * Registry key. The JetStream KV bucket <js_name>_sessions has one key per
 * client id; KV keys allow only [-/_=.a-zA-Z0-9]. Letters, digits, '-' and
 * '/' stay as they are; every other byte (UTF-8 too) becomes "_XX" (two
 * upper-case hex digits), '_' itself included, so decoding is lossless and
 * the key never holds '.', which NATS would read as a token separator. An
 * id whose key would pass CLUSTER_SESSION_KEY_MAX bytes gets "=" and a 64-bit hash
 * in hex instead (no '=' appears otherwise): it is no longer decodable, so
 * the registry value repeats the client id and readers compare it.
 *
 * Every value and message starts with two magic bytes and a version; all
 * integers are big-endian.
 *   registry value "SR" 2  flags(1: bit 0 the session outlives its connection)
 *                  instance(8) node_len(1) id_len(2) node id replay_from(8)
 *                  [nsubs(4) and that many subs, as in a session below]
 *                  (version 1, still read, had no replay_from)
 *   request        "SQ" 1  flags(1: bit 0 clean start) id_len(2) id
 *   reply          "SA" 1  status(1) [a session, when status is MOVED]
 *   session        "SS" 1  flags(1: bit 0 replay_from follows the messages, bit 1
 *                  the taker replays the stream for it) expiry_interval(4) protocol(1)
 *                  last_mid(2)
 *                  nsubs(4) nqos2(4) nmsgs(4), then
 *                  each sub:  len(2) filter qos(1) options(1) subid(4)
 *                  each qos2: packet id(2)
 *                  each msg:  state(1: 0 queued, else enum inflight_state) mid(2)
 *                             (QoS 0 only queued, for queue_qos0_messages)
 *                             qos(1) retain(1) subid(4) msg_qos(1) msg_retain(1)
 *                             expiry(4: seconds left, 0 = none) topic_len(2)
 *                             props_len(4) payload_len(4) topic props payload
 *                  messages in delivery order: in flight first, then the queue;
 *                  then replay_from(8) when flag bit 0, window_from(8) when flag
 *                  bit 2 (readers that know no flags stop before them).
 *
 * replay_from (wall-clock ms, 0 = unknown): every QoS 1/2 message the stream
 * <js_name>_msgs took before it was acknowledged by the client (or expired);
 * a node that takes the session over without its holder replays from it.
 */
#ifndef MIDGE_CLUSTER_SESSION_WIRE_H
#define MIDGE_CLUSTER_SESSION_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Registry keys ---------------------------------------------------------------- */

#define CLUSTER_SESSION_KEY_MAX 512

/*
 * Writes the key of a client id (len bytes, at least one) into out, which has
 * CLUSTER_SESSION_KEY_MAX + 1 bytes. Returns its length.
 */
size_t cluster_key_encode(char *out, const char *id, size_t len);

/*
 * The client id of a key into out (at least strlen(key) bytes); returns its
 * length, or -1 for a hashed key or one this encoding never writes.
 */
long cluster_key_decode(char *out, const char *key);

/* ---- A growing buffer and a bounds-checked reader ---------------------------------- */

struct wire_out {
	uint8_t *data;   /* mem_malloc'ed; the caller frees it */
	size_t len, cap;
	bool failed;     /* out of memory: data is incomplete */
};

struct wire_in {
	const uint8_t *p;
	size_t left;
	bool bad;        /* read past the end or malformed */
};

/* ---- Registry value, request, reply -------------------------------------------------- */

struct session_reg {
	uint64_t instance;
	bool persistent;
	const char *node;
	size_t node_len;     /* 1..255 */
	const char *id;
	size_t id_len;       /* 1..65535 */
	int64_t replay_from; /* wall-clock ms, 0 = unknown (see above) */
	uint32_t nsubs;      /* the session's subscriptions, when it outlives its connection */
	const uint8_t *subs; /* decoding: where they start (read them with session_wire_sub_get) */
	size_t subs_len;
};

/* Writes r up to its subscription count; the caller appends r->nsubs subs. */
void session_reg_encode(struct wire_out *o, const struct session_reg *r);
int session_reg_decode(const uint8_t *buf, size_t len, struct session_reg *r);

struct session_req {
	bool clean_start;
	const char *id;
	size_t id_len;
};

void session_req_encode(struct wire_out *o, const struct session_req *r);
int session_req_decode(const uint8_t *buf, size_t len, struct session_req *r);

enum session_reply_status {
	SESSION_REPLY_NONE = 0,   /* the node has no session for the id */
	SESSION_REPLY_CLOSED = 1, /* it closed the connection and/or ended the session */
	SESSION_REPLY_MOVED = 2,  /* it gave up the session, which follows */
};

void session_reply_begin(struct wire_out *o, enum session_reply_status status);
/* The status, and where the session starts (when MOVED). -1 when malformed. */
int session_reply_decode(const uint8_t *buf, size_t len, enum session_reply_status *status,
			 const uint8_t **session, size_t *session_len);

/* ---- Session ------------------------------------------------------------------------- */

#define SESSION_WIRE_F_MARK 1u   /* replay_from follows the messages */
#define SESSION_WIRE_F_REPLAY 2u /* the taker replays the stream from replay_from */
#define SESSION_WIRE_F_WINDOW 4u /* the taker replays the stream from window_from, no margin */

struct session_wire_head {
	uint8_t flags;
	int64_t replay_from;      /* in the tail (SESSION_WIRE_F_MARK) */
	int64_t window_from;      /* in the tail (SESSION_WIRE_F_WINDOW): when the giver let go */
	uint32_t expiry_interval;
	uint8_t protocol;
	uint16_t last_mid;
	uint32_t nsubs, nqos2, nmsgs;
};

struct session_wire_sub {
	const char *filter;
	uint16_t len;
	uint8_t qos, options;
	uint32_t subid;
};

struct session_wire_msg {
	uint8_t state;        /* 0 queued, else in flight (enum inflight_state) */
	uint16_t mid;
	uint8_t qos, retain;  /* of this delivery */
	uint32_t subid;
	uint8_t msg_qos;      /* of the message itself */
	bool msg_retain;
	uint32_t expiry;      /* seconds left, 0 = none */
	const char *topic;
	uint16_t topic_len;
	const uint8_t *props;
	uint32_t props_len;
	const uint8_t *payload;
	uint32_t payload_len;
	/* Its cluster id when it came from another node (0: none), so that the taker's
	 * replay of the hand-over's window does not deliver it a second time. */
	uint64_t cluster_instance, cluster_seq;
};

/* Write the head, then exactly nsubs subs, nqos2 ids and nmsgs messages, in that order. */
void session_wire_head_put(struct wire_out *o, const struct session_wire_head *h);
void session_wire_sub_put(struct wire_out *o, const struct session_wire_sub *s);
void session_wire_qos2_put(struct wire_out *o, uint16_t mid);
void session_wire_msg_put(struct wire_out *o, const struct session_wire_msg *m);
/* After the messages: what h->flags announce (replay_from). */
void session_wire_tail_put(struct wire_out *o, const struct session_wire_head *h);

/* Read them back the same way; each returns -1 when malformed (then in->bad). */
int session_wire_head_get(struct wire_in *in, struct session_wire_head *h);
int session_wire_sub_get(struct wire_in *in, struct session_wire_sub *s);
int session_wire_qos2_get(struct wire_in *in, uint16_t *mid);
int session_wire_msg_get(struct wire_in *in, struct session_wire_msg *m);
/* Sets h->replay_from (0 without SESSION_WIRE_F_MARK). */
int session_wire_tail_get(struct wire_in *in, struct session_wire_head *h);

/*
 * Whether a whole, valid session asks its taker to replay the stream
 * (SESSION_WIRE_F_REPLAY with a replay_from, else SESSION_WIRE_F_WINDOW with a
 * window_from): then where from, whether exactly from there (the window: no
 * margin), and where its subscriptions are (in data).
 */
bool session_wire_replay_info(const uint8_t *data, size_t len, int64_t *replay_from,
			      bool *exact, const uint8_t **subs, size_t *subs_len,
			      uint32_t *nsubs);

#endif
