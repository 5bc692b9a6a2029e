/*
 * cluster.h: several midge nodes as one broker, over NATS.
 *
 * Owns this node's membership of a cluster: one NATS connection (libnats,
 * with its own threads and reconnection), the publication of every message
 * routed here to the other nodes, the NATS subscriptions that follow this
 * node's subscription filters, and the hand-over of messages from other
 * nodes to a worker, which routes them locally only. It does not own routing
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
#include <string.h>

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

/* Whether a topic stays on its node: $SYS topics (each node has its own). */
static inline bool cluster_topic_stays_here(const char *topic, size_t len)
{
	return len >= 4 && memcmp(topic, "$SYS", 4) == 0 && (len == 4 || topic[4] == '/');
}

struct cluster_stats {
	bool enabled;       /* false: no cluster section, the rest is zero */
	bool connected;
	const char *node;   /* valid while the broker runs */
	uint64_t sent;      /* messages given to NATS */
	uint64_t received;  /* messages from other nodes handed to a worker */
	uint64_t dropped;   /* not sent (NATS buffer full) or not decodable */
	uint64_t reconnects;
	uint64_t interest;  /* filters with a NATS subscription */
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
