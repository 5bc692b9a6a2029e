/*
 * session.h: MQTT session state, independent of any connection.
 *
 * Owns a client's subscriptions (its own list; the trie holds the routing
 * copy), the outgoing QoS 1/2 messages in flight and queued behind them,
 * the incoming QoS 2 packet identifiers awaiting PUBREL, the expiry of an
 * offline session and a will waiting for its delay (will.h). A session
 * belongs to one worker (chosen by a hash of the client id) and only that
 * worker's thread touches its state; other
 * workers reach it by sending deliveries to that worker's inbox, holding a
 * reference so the memory outlives them.
 */
#ifndef MIDGE_SESSION_H
#define MIDGE_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ev.h"

struct bridge;
struct client;
struct message;
struct worker;

enum inflight_state {
	INFLIGHT_WAIT_PUBACK = 1,
	INFLIGHT_WAIT_PUBREC = 2,
	INFLIGHT_WAIT_PUBCOMP = 3,
};

/* A message for this session: either in flight or queued. */
struct session_msg {
	struct message *msg;
	uint64_t seq;     /* its queue entry in the durable store, 0 = none */
	uint32_t subid;
	uint16_t mid;     /* in flight only */
	uint8_t qos;      /* QoS it is delivered with */
	uint8_t retain;   /* retain flag it is delivered with */
	uint8_t state;    /* enum inflight_state, in flight only */
};

/* One subscription, its filter in the same block: a session's list is short. */
struct session_sub {
	struct session_sub *next;
	uint32_t subid;
	uint16_t len;
	uint8_t qos;
	uint8_t flags;
	char filter[];               /* len bytes and a NUL */
};

/* Never expires (MQTT 5 session expiry 0xFFFFFFFF). */
#define SESSION_EXPIRY_NEVER UINT32_MAX

/*
 * What only a session without its connection needs (and a will waiting for
 * its delay, which starts just before the connection lets go): allocated by
 * session_offline(), freed when a connection takes the session over or the
 * session ends.
 */
struct session_offline {
	struct session *session;
	int64_t disconnected_at;     /* wall clock, seconds */
	struct ev_timer expiry_timer;
	struct ev_timer will_timer;
	struct message *will;        /* a will waiting for its delay (will.h) */
	uint32_t will_delay;         /* its delay, seconds from disconnected_at */
	uint64_t cluster_will;       /* its registration with the cluster (cluster.h), 0 = none */
};

/*
 * The QoS 1/2 message state (and a lazy bridge's offline QoS 0 queue):
 * allocated with the first such message (session_msgs()) and kept until the
 * session ends, so sessions that only ever see QoS 0 carry none of it.
 */
struct session_msgs {
	struct session_msg *inflight;   /* in send order */
	size_t inflight_bytes;
	struct session_msg *queue;      /* ring buffer */
	size_t queued_bytes;
	uint16_t *qos2_in;              /* incoming QoS 2 ids awaiting PUBREL */
	/* Its part in a cluster (session_cluster()): about its QoS 1/2 messages, and
	 * here so that a broker alone does not carry it in every session. */
	struct session_cluster *cluster;
	uint32_t ninflight;
	uint32_t inflight_cap;
	uint32_t q_head;
	uint32_t q_len;
	uint32_t q_cap;
	uint32_t nqos2_in;           /* capacity implied (session.c: array_full()) */
};

struct cluster_seen;

/* A session's part in a cluster, apart so that a broker alone does not carry it. */
struct session_cluster {
	/* The replay watermark (cluster_mark.c), wall-clock ms. */
	int64_t floor;               /* the one it came from another node with, until its
				      * messages are acknowledged; 0 = none */
	int64_t mark;                /* the one last written to the registry */
	int64_t last_msg;            /* when its last QoS 1/2 message came, wall-clock s */
	struct cluster_seen *seen;   /* ids of messages that came live while replaying */
	bool replaying;              /* the stream's messages for it are on the way */
	bool dirty;                  /* its watermark may have moved since written */
};

/* Members ordered by size: no padding. */
struct session {
	struct session *hnext;       /* worker's session table chain */
	struct worker *worker;
	struct client *client;       /* NULL while offline */
	struct bridge *bridge;       /* the bridge whose local session this is, or NULL */
	char *username;              /* as authenticated at the last CONNECT, NULL for none */
	struct session_offline *off; /* NULL until the connection goes (session_offline()) */
	uint64_t id;                 /* unique in the process (no-local origin) */
	struct session_sub *subs;    /* in the order they were made */
	struct session_msgs *msgs;   /* NULL until the first QoS 1/2 message */
	_Atomic uint32_t refs;
	uint32_t hash;
	uint32_t expiry_interval;    /* seconds after disconnect; 0 = at disconnect */
	uint16_t last_mid;
	uint16_t listener;           /* index of the listener it last connected on (for its ACL) */
	uint16_t receive_max;        /* the client's Receive Maximum (65535 without one) */
	bool dead;                   /* removed; deliveries still in flight are dropped */
	_Atomic bool persisted;      /* has a record in the durable store (store.h) */
	bool queue_qos0;             /* offline, QoS 0 is queued too (a lazy bridge's session) */
	_Atomic bool online;         /* read by other workers for shared subscriptions */
	_Atomic bool congested;      /* online with its queue at its limits (throttle.h) */
	_Atomic bool stalled;        /* publishers gave up waiting for it (throttle.h) */
	uint8_t protocol;
	char client_id[];            /* allocated with the session */
};

/* Worker-owned table of sessions by client id. */
struct session_table {
	struct session **buckets;
	size_t nbuckets;
	size_t count;
};

void session_table_init(struct session_table *t);
void session_table_free(struct session_table *t);
struct session *session_find(struct session_table *t, const char *client_id);

/* Creates a session in w's table (one reference held by the table). */
struct session *session_new(struct worker *w, const char *client_id);

static inline void session_ref(struct session *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

/* Drops a reference; frees the memory of a dead session at zero. Any thread. */
void session_unref(struct session *s);

/*
 * Ends a session: publishes a will still waiting for its delay, removes its
 * subscriptions from the trie, releases its messages, takes it out of the
 * table and drops the table's reference. Owner thread only; the session
 * must be offline.
 */
void session_destroy(struct session *s);

/* The session's connection went away: start its expiry, or end it now. */
void session_detach(struct session *s);

/* The offline part, allocated on first use (owner thread); NULL when out of memory. */
struct session_offline *session_offline(struct session *s);

/* A connection takes the session over: its expiry stops and a waiting will is
 * dropped [MQTT-3.1.3-9]; the offline part is freed. */
void session_take_over(struct session *s);

/* The message state, allocated on first use (owner thread); NULL when out of memory. */
struct session_msgs *session_msgs(struct session *s);

/* Messages queued behind the window, their payload bytes, and those in flight. */
static inline uint32_t session_queued(const struct session *s)
{
	return s->msgs ? s->msgs->q_len : 0;
}

static inline size_t session_queued_bytes(const struct session *s)
{
	return s->msgs ? s->msgs->queued_bytes : 0;
}

static inline uint32_t session_inflight(const struct session *s)
{
	return s->msgs ? s->msgs->ninflight : 0;
}

/* Incoming QoS 2 exchanges awaiting PUBREL. */
static inline uint32_t session_qos2_in_count(const struct session *s)
{
	return s->msgs ? s->msgs->nqos2_in : 0;
}

/* When the offline session's connection went, wall clock seconds (0 while online). */
static inline int64_t session_disconnected_at(const struct session *s)
{
	return s->off ? s->off->disconnected_at : 0;
}

/* After a reload: drops the subscriptions the new ACL no longer allows; returns how many. */
size_t session_recheck_subscriptions(struct session *s);

/* Records a subscription in the session's own list (the trie is separate). */
int session_sub_put(struct session *s, const char *filter, size_t len, uint8_t qos,
		    uint8_t flags, uint32_t subid);
bool session_sub_remove(struct session *s, const char *filter, size_t len);

/* Incoming QoS 2: remember / forget a packet id awaiting PUBREL. */
bool session_qos2_in_has(const struct session *s, uint16_t mid);
int session_qos2_in_add(struct session *s, uint16_t mid);
bool session_qos2_in_remove(struct session *s, uint16_t mid);

/* Whether a client is connected to the session (any thread; may be stale). */
bool session_is_online(const struct session *s);

/* Hash of a client id, which also picks the owning worker. */
uint32_t session_id_hash(const char *client_id, size_t len);

/* s's cluster part, made on first use; NULL when out of memory (owner worker). */
struct session_cluster *session_cluster(struct session *s);
/* s's cluster part, or NULL when it has none. */
static inline struct session_cluster *session_cluster_of(const struct session *s)
{
	return s->msgs ? s->msgs->cluster : NULL;
}

#endif
