/*
 * bridge.h: connections from this broker to other brokers (bridges).
 *
 * Owns each configured bridge: an MQTT client connection to a remote broker
 * built on the broker's own client machinery (struct client, its output
 * queue, transports, keepalive timer) and a local session whose
 * subscriptions are the bridge's "out" topics. Messages for those
 * subscriptions go through the session's normal QoS machinery to the remote
 * (so QoS 1/2 towards the remote leave the queue only when acknowledged, and
 * queue while it is down); messages the remote sends for the "in" topics are
 * routed here as if published locally. A bridge lives on the worker that owns
 * its local session and never blocks that loop (connects are non-blocking,
 * host names are resolved on a thread of their own). Bridges are not reloaded.
 */
#ifndef MIDGE_BRIDGE_H
#define MIDGE_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct bridge;
struct client;
struct message;
struct session;
struct worker;

/* Copies the bridges of the configuration and gives each its worker; -1 when out of memory. */
int bridges_init(struct broker *b);
void bridges_free(struct broker *b);
/* On w's thread, before its loop runs: sessions, subscriptions, first connections. */
void bridges_worker_start(struct worker *w);
/* On w's thread, when it stops: each connection is closed with DISCONNECT. */
void bridges_worker_stop(struct worker *w);

/* From the client of a bridge connection (client.c). */
int bridge_dispatch(struct client *c, uint8_t first_byte, const uint8_t *body, uint32_t len);
void bridge_on_timer(struct client *c);
void bridge_client_closed(struct client *c);

/*
 * A message about to go to the remote through the bridge's session s: the
 * remote's version of it (remote topic; a plugin may rewrite or stop it),
 * with a new reference, or NULL when it does not cross.
 */
struct message *bridge_outgoing(struct session *s, struct message *m);

/* A resolved address arrived for one of w's bridges (INBOX_BRIDGE); or, unprocessed, freed. */
void bridge_resolved(struct worker *w, void *job);
void bridge_job_free(void *job);
/* After the workers stopped: waits for name resolutions still running. */
void bridges_join(struct broker *b);
/* The session of a bridge ends (session_destroy). */
void bridge_session_gone(struct session *s);

/* For $SYS: the number of bridges and each one's state and counters (any thread). */
struct bridge_stats {
	const char *name;
	bool connected;
	uint64_t messages_out;
	uint64_t messages_in;
	uint64_t connects;
};
size_t bridges_count(const struct broker *b);
void bridge_stats(const struct broker *b, size_t i, struct bridge_stats *out);

#endif
