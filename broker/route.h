/*
 * route.h: where a published message goes.
 *
 * Owns the path of a message from its publisher to every matching
 * subscription: retained-store update, trie match under the read lock,
 * QoS downgrade (or upgrade_outgoing_qos), one copy per subscriber at the
 * highest matching QoS, and hand-off to each subscriber's worker. Also the
 * replay of retained messages to a new subscription.
 */
#ifndef MIDGE_ROUTE_H
#define MIDGE_ROUTE_H

#include <stddef.h>
#include <stdint.h>

struct message;
struct session;
struct worker;

/* Routes m (borrowed) from worker w; origin is the publishing session or NULL. */
void route_publish(struct worker *w, struct message *m, const struct session *origin);

/*
 * route_publish(), and when a QoS 1/2 copy went to an online subscriber whose
 * queue is full, *wait_for is that session (referenced) for the publisher to
 * wait on (throttle.h); NULL otherwise.
 */
void route_publish_waiting(struct worker *w, struct message *m, const struct session *origin,
			   struct session **wait_for);

/*
 * Routes m (borrowed), which came from another cluster node, to this node's
 * subscribers and retained store only: it is not sent to the cluster again.
 */
void route_publish_local(struct worker *w, struct message *m);

/*
 * Routes m (borrowed), which NATS handed this node for shared subscription
 * $share/<group>/<filter>, to one member of that group here (cluster.h).
 */
void route_publish_shared(struct worker *w, struct message *m, const char *group, size_t glen,
			  const char *filter, size_t flen);

/*
 * Stores (or, with an empty payload, clears) the retained message m
 * (borrowed) here, delivering it to nobody: a retained message the cluster
 * keeps that this node's subscribers already had, or must not get again.
 */
void route_retain_local(struct worker *w, struct message *m);

/* Sends the retained messages matching filter to s (on s's own worker). */
void route_retained(struct worker *w, struct session *s, const char *filter, size_t len,
		    uint8_t granted_qos, uint32_t subid);

#endif
