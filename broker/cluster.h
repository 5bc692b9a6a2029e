/*
 * cluster.h: several midge nodes as one broker, over NATS.
 *
 * Owns this node's membership of a cluster: one NATS connection (libnats,
 * with its own threads and reconnection), the publication of every message
 * routed here to the other nodes (QoS 1/2 ones through a JetStream stream,
 * confirmed before their publisher's acknowledgement goes), the NATS
 * subscriptions that follow this node's subscription filters, and the
 * hand-over of messages from other nodes to a worker, which routes them
 * locally only. It does not own routing (route.h), holding acknowledgements
 * (store.h) or the subject mapping and envelope (cluster_wire.h).
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
 */
void cluster_publish(struct cluster *c, const struct message *m, unsigned worker);

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
};

/* Any thread. */
void cluster_get_stats(const struct broker *b, struct cluster_stats *st);

#endif
