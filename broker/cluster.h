/*
 * cluster.h: several midge nodes as one broker, over NATS.
 *
 * Owns this node's membership of a cluster: one NATS connection (libnats,
 * with its own threads and reconnection), the publication of every message
 * routed here to the other nodes (QoS 1/2 ones through a JetStream stream,
 * confirmed before their publisher's acknowledgement goes), the NATS
 * subscriptions that follow this node's subscription filters, and the
 * hand-over of messages from other nodes to a worker, which routes them
 * locally only; the cluster's retained messages, kept in a JetStream
 * key-value bucket every node follows (cluster_retain.c); the wills of
 * clients of a node that dies, which another node fires (cluster_wills.c,
 * cluster_nodes.c). It does not own routing (route.h), holding
 * acknowledgements (store.h) or the subject mapping and envelope
 * (cluster_wire.h).
 *
 * Without a cluster section b->cluster stays NULL and nothing here runs:
 * the only cost on the publish path is route.c's test of that pointer. A
 * midge built without libnats links cluster_stub.c; the configuration
 * refuses a cluster section there (conf.c), so cluster_start() is not called.
 */
#ifndef MIDGE_CLUSTER_H
#define MIDGE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct broker;
struct cluster;
struct message;
struct session;
struct worker;

/*
 * Joins the cluster of b->cfg->cluster (enabled): connects to NATS in the
 * background (an unreachable NATS is retried, not an error) and follows the
 * subscription trie's interest. Sets b->cluster. Main thread, before the
 * store restores subscriptions and before the workers run. -1 on failure.
 */
int cluster_start(struct broker *b);

/* Leaves the cluster and frees it; after the workers stopped, before they are freed. */
void cluster_stop(struct broker *b);

/*
 * Sends m (borrowed), routed here by worker `worker` (its thread), to the
 * other nodes. It does not wait for NATS: libnats buffers (a full buffer is
 * written in place, with a 1 s write deadline, so TCP backpressure from NATS
 * slows the publisher at most that long), and while NATS is away its
 * reconnect buffer keeps 8 MB, beyond which messages are dropped and
 * counted. $SYS topics stay on their node.
 *
 * A QoS 1/2 message that is not retained goes to the JetStream stream of
 * the cluster when NATS is connected and the stream is set up: it counts as
 * submitted by the worker until JetStream confirms it (or it fails), and
 * store_hold_published() makes its publisher's acknowledgement wait for that
 * (cluster_confirmed()).
 * Otherwise it goes the plain way, unconfirmed: local delivery carries on.
 * groups_served: this node gave m to its own shared-group members (NATS was
 * away), so the groups' queue subscriptions drop it when it gets through.
 */
void cluster_publish(struct cluster *c, const struct message *m, unsigned worker,
		     bool groups_served);

/*
 * The number the message cluster_publish() last handled for that worker got
 * when it went to JetStream (they count from 1), once: 0 when it went the
 * plain way, or was taken already. The worker's thread, right after routing
 * the message whose acknowledgement is to wait (store_hold_published()).
 */
uint64_t cluster_take_submitted(struct cluster *c, unsigned worker);
/*
 * How far JetStream answered for that worker: returns done, every message
 * numbered <= done being confirmed or failed; *failed (ascending, *nfailed
 * of them, valid until the next call) are the numbers that failed since the
 * last call. The worker's thread.
 */
uint64_t cluster_confirmed(struct cluster *c, unsigned worker, const uint64_t **failed,
			   size_t *nfailed);

/* Whether a topic stays on its node: $SYS topics (each node has its own). */
static inline bool cluster_topic_stays_here(const char *topic, size_t len)
{
	return len >= 4 && memcmp(topic, "$SYS", 4) == 0 && (len == 4 || topic[4] == '/');
}
/* ---- Sessions that follow their client (cluster_session.c, cluster_session_move.c) ---- */

/* Whether a CONNECT asks the cluster about its client id now (NATS up, registry there). */
bool cluster_session_ready(struct cluster *c);

/*
 * A CONNECT on worker (request & 0xFF) wants client `id`: off the worker,
 * finds the node holding it in the registry, has that node close the
 * connection and hand over the session (or drop it, for a clean start),
 * records this node as the owner, and answers (INBOX_CLUSTER_CLAIMED) as a
 * plugin would: the CONNECT gets a decision whose data is the moved session's
 * encoding (none: no session came). At most about 3 s (registry, then 2 s for the node).
 * -1 when it cannot ask: decide locally.
 */
int cluster_session_claim(struct cluster *c, uint64_t request, const char *id, bool clean_start,
			  bool persistent);

/* The session of s->client_id ended on this node (owner worker): its key goes. */
void cluster_session_ended(struct cluster *c, const struct session *s);

/*
 * A session that outlives its connection was taken or changed its
 * subscriptions (owner worker): the registry learns them, asynchronously, so
 * another node can rebuild them if this one dies.
 */
void cluster_session_changed(struct cluster *c, struct session *s);

/*
 * (cluster_mark.c) The replay watermark of s (wall-clock ms): every QoS 1/2
 * message the stream took before it was acknowledged by the client, as far
 * as this node knows; it drops a floor it came with once that is true.
 * Owner worker.
 */
int64_t cluster_session_mark(struct session *s, int64_t now_ms);
/* A replay starts this much before the watermark: clock skew between nodes and
 * the JetStream servers, delivery lag. */
#define CLUSTER_REPLAY_MARGIN_MS 2000
/* A live hand-over's window starts this much before the old node let go: what
 * the stream took just before may reach that node's session only after (and
 * clocks differ). Messages it delivered meanwhile may come twice. */
#define CLUSTER_WINDOW_MARGIN_MS 1000
/* Starts w's timer that writes moved watermarks to the registry (with a cluster). */
void cluster_marks_start(struct worker *w);
/* Wall-clock ms. */
int64_t cluster_wall_ms(void);
/*
 * While the stream's messages for s are on the way: remember the cluster id
 * of m, which came live (bounded), so that the replay skips it; seen: whether
 * it came. Owner worker.
 */
void cluster_seen_add(struct session *s, const struct message *m);
bool cluster_seen(const struct session *s, uint64_t instance, uint64_t seq);
void cluster_seen_free(struct session *s);

/*
 * INBOX_CLUSTER_CLAIMED: the answer to cluster_session_claim() `request`
 * (claimed: what came, with the client id). It resumes the waiting CONNECT;
 * when the client left meanwhile, a session that came stays here offline.
 */
void cluster_session_claimed(struct worker *w, uint64_t request, void *claimed);
void cluster_session_claimed_free(void *claimed);

/*
 * INBOX_CLUSTER_REPLAYED: the stream's QoS 1/2 messages for a session rebuilt
 * after its node died (cluster_replay.c), delivered to it as any message.
 */
void cluster_session_replayed(struct worker *w, void *batch);
void cluster_replayed_free(void *batch);

/* INBOX_CLUSTER_SESSION on the id's worker: another node takes it over (ptr: the request). */
void cluster_session_serve(struct worker *w, void *request);
void cluster_session_request_free(void *request);

/*
 * A session moved from another node (its encoding) becomes client id's on
 * w: subscriptions into the trie, messages in flight and queued, incoming
 * QoS 2 ids. NULL (logged) when malformed or out of memory.
 */
struct session *cluster_session_install(struct worker *w, const char *id, const uint8_t *data,
					size_t len);

/*
 * The wills registry (cluster_wills.c): a connection accepted on this node
 * registers itself and its will (NULL: none), so that another node fires
 * the will should this node die, unless the client is back elsewhere by
 * then. `delay`: seconds from the node's death (the lesser of the Will Delay
 * Interval and the session expiry). Returns the registration to forget it
 * by, 0 when not registered. Any worker; neither waits for NATS.
 */
uint64_t cluster_will_register(struct cluster *c, const char *client_id,
			       const struct message *will, uint32_t delay);
/* The will of registration reg (of client_id) was published, discarded or cancelled, or
 * the connection without one closed. */
void cluster_will_forget(struct cluster *c, const char *client_id, uint64_t reg);

struct cluster_stats {
	bool enabled;       /* false: no cluster section, the rest is zero */
	bool connected;
	const char *node;   /* valid while the broker runs */
	uint64_t sent;      /* messages given to NATS */
	uint64_t received;  /* messages from other nodes handed to a worker */
	uint64_t dropped;   /* not sent (NATS buffer full) or not decodable */
	uint64_t reconnects;
	uint64_t interest;  /* filters with a NATS subscription */
	uint64_t confirmed;   /* QoS 1/2 messages JetStream confirmed */
	uint64_t unconfirmed; /* QoS 1/2 messages it refused or did not confirm in time */
	uint64_t nodes_gone;  /* dead nodes this node claimed */
	uint64_t wills_fired; /* wills of dead nodes this node published */
};

/*
 * Shared subscriptions ($share/<group>/<filter>) across the cluster: a node
 * with members of a group holds a NATS queue subscription for it, so NATS
 * hands each message to one node, which gives it to one local member
 * (cluster_shared.c). True while that works here (NATS reachable): routing
 * then leaves shared groups out; false: each node picks a local member
 * itself, so local delivery goes on without NATS. Any thread.
 */
bool cluster_shares_via_nats(const struct cluster *c);

/* Which group a message from a queue subscription is for (INBOX_CLUSTER_SHARED). */
struct cluster_share {
	_Atomic unsigned refs;
	const char *group;    /* the group name and the inner filter, not NUL-ended */
	size_t glen;
	const char *filter;
	size_t flen;
};

/* Drops a reference (the last frees it). Any thread. */
void cluster_share_unref(struct cluster_share *s);

/* Any thread. */
void cluster_get_stats(const struct broker *b, struct cluster_stats *st);

struct cluster_shared_stats {
	uint64_t groups;    /* shared subscriptions with members here, followed on NATS */
	uint64_t received;  /* messages NATS picked this node for */
	uint64_t links_up;  /* connections for them that reach their NATS server */
	uint64_t links;
};

/* Zero without a cluster. Any thread. */
void cluster_get_shared_stats(const struct broker *b, struct cluster_shared_stats *st);

#endif
