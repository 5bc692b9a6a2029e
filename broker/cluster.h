/*
 * cluster.h: several midge nodes as one broker, over NATS.
 *
 * Owns this node's membership of a cluster: one NATS connection (libnats,
 * with its own threads and reconnection), the publication of every message
 * routed here to the other nodes, the NATS subscriptions that follow this
 * node's subscription filters, and the hand-over of messages from other
 * nodes to a worker, which routes them locally only; the cluster's retained
 * messages, kept in a JetStream key-value bucket every node follows
 * (cluster_retain.c); the wills of clients of a node that dies, which another
 * node fires (cluster_wills.c, cluster_nodes.c). It does not own routing
 * (route.h) or the subject mapping and envelope (cluster_wire.h).
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

struct broker;
struct cluster;
struct message;

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
 * Sends m (borrowed), routed here, to the other nodes. Any worker thread.
 * It does not wait for NATS: libnats buffers (a full buffer is written in
 * place, with a 1 s write deadline, so TCP backpressure from NATS slows the
 * publisher at most that long), and while NATS is away its reconnect buffer
 * keeps 8 MB, beyond which messages are dropped and counted. $SYS topics stay
 * on their node.
 */
void cluster_publish(struct cluster *c, const struct message *m);

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
	uint64_t nodes_gone;  /* dead nodes this node claimed */
	uint64_t wills_fired; /* wills of dead nodes this node published */
};

/* Any thread. */
void cluster_get_stats(const struct broker *b, struct cluster_stats *st);

#endif
