/*
 * store.h: the broker's side of persistence: what goes into the durable
 * store (persist.h) and when, and what comes back at start.
 *
 * Owns the mapping from the broker's state to records: sessions that outlive
 * their connection (expiry interval > 0), their subscriptions, their queued
 * and in-flight QoS 1/2 messages, wills, retained messages, and the message
 * bodies these share (stored once under a 64-bit id). Each worker gathers
 * its changes of one loop turn in one batch and hands it to the store's
 * writer thread before it sleeps (group commit; the loop never waits on the
 * disk). With sync always or batch, an acknowledgement that promises
 * durability (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK) is held in its
 * client's output until the batches it depends on are durable; the rest of
 * the output before it still goes. In a cluster the same hold also waits
 * until JetStream confirmed the QoS 1/2 message acknowledged (cluster.h),
 * persistence or not.
 *
 * Message routing writes queue entries for the subscribers' sessions on the
 * publisher's worker (so the publisher's acknowledgement covers them); the
 * owning workers then update or delete those entries by their sequence number.
 * Every function is a no-op when persistence is off. Owner-worker threads
 * only, except where said.
 */
#ifndef MIDGE_STORE_H
#define MIDGE_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct client;
struct message;
struct persist_batch;
struct session;
struct session_msg;
struct worker;

/* A worker's share of the store: its batch and the durability of what it submitted. */
struct worker_store {
	struct persist_batch *batch;   /* changes of this loop turn (NULL: none yet) */
	uint64_t submitted;            /* batches handed to the writer */
	_Atomic uint64_t durable;      /* of those, committed (set by the writer thread) */
	_Atomic uint64_t failed;       /* the last batch whose commit failed (0 = none) */
	uint64_t released;             /* durable as the held clients last saw it */
	uint64_t cluster_released;     /* the cluster's confirmed prefix, as they last saw it */
	struct client **held;          /* clients with output waiting for durability or the cluster */
	size_t nheld;
	size_t held_cap;
};

/*
 * Opens the store named by the configuration, drops what expired while the
 * broker was down, restores retained messages and sessions into the workers
 * (before their threads start) and starts the writer. Returns 0, or -1 after
 * logging why (the broker must not start: a damaged store is never replaced
 * silently). Does nothing when persistence is off.
 */
int store_open(struct broker *b);
/* Commits everything submitted, then closes; later changes are ignored. */
void store_close(struct broker *b);
bool store_enabled(const struct broker *b);

/* Before the worker sleeps: hands this turn's batch to the writer. */
void store_turn_end(struct worker *w);
/*
 * On wake-up: releases output whose batches are durable and whose cluster
 * messages are confirmed (or closes clients whose batch or message failed).
 */
void store_on_wake(struct worker *w);

/*
 * The acknowledgement c is about to be sent must wait until every change
 * made so far on this worker is durable. Call before queueing it.
 */
void store_hold(struct client *c);
/*
 * The same for the acknowledgement (PUBACK, PUBREC) of the message c
 * published and this worker just routed: it also waits until JetStream
 * confirmed that message, when it went there (cluster.h). Should JetStream
 * not confirm it, c's connection closes without the acknowledgement.
 */
void store_hold_published(struct client *c);
/* How many bytes of c's output may be written now (SIZE_MAX: all). */
size_t store_writable(struct client *c);
/* c is closing: it leaves the held list. */
void store_client_gone(struct client *c);

/* Counters for $SYS/broker/persistence/... (false when persistence is off). */
struct store_stats {
	uint64_t commits;   /* write transactions */
	uint64_t batches;   /* worker batches they carried */
	uint64_t failed;    /* batches whose commit failed */
	uint64_t syncs;     /* periodic syncs */
	uint64_t purged;    /* expired records removed by the purge */
	uint64_t commit_ns; /* time spent in commits, and the longest */
	uint64_t commit_ns_max;
};
bool store_stats(const struct broker *b, struct store_stats *out);

/* --- records (owner worker of the session) --- */

/* Writes the session's record (connect, disconnect, will, incoming QoS 2 ids) or deletes
 * it when the session no longer outlives its connection. */
void store_session_save(struct session *s);
/* The session ended: its record, subscriptions and queue go. */
void store_session_forget(struct session *s);
void store_sub_save(struct session *s, const char *filter, size_t len, uint8_t qos, uint8_t flags,
		    uint32_t subid);
void store_sub_forget(struct session *s, const char *filter, size_t len);

/* Retained message set or cleared (empty payload) for m's topic; the worker routing it. */
void store_retained(struct worker *w, struct message *m);

/*
 * A QoS 1/2 delivery of m to session s (of any worker) made by worker w:
 * stores a queue entry when s outlives its connection and returns its
 * sequence number, or 0 when nothing was stored. Any worker thread.
 */
uint64_t store_delivery_new(struct worker *w, struct session *s, struct message *m, uint8_t qos,
			    uint8_t retain, bool reput_message);
/* The entry now holds another message (a plugin's per-subscriber rewrite). */
void store_delivery_replace(struct session *s, struct session_msg *sm);
/* The message went in flight (packet id, state) or moved to PUBREL. */
void store_delivery_update(struct session *s, const struct session_msg *sm);
/* Done with (acknowledged, dropped or expired): the entry goes. */
void store_delivery_forget(struct session *s, uint64_t seq);

#endif
