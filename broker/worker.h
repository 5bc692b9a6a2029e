/*
 * worker.h: a worker thread: one event loop and everything it owns.
 *
 * A worker owns its connections and the sessions whose client id hashes to
 * it. Other threads reach it only through its inbox (deliveries, clients
 * handed over after CONNECT, control requests), guarded by a mutex and
 * signalled with an ev_async. Counters for $SYS are per worker, written by
 * the owner only and read by the $SYS publisher with relaxed atomics.
 */
#ifndef MIDGE_WORKER_H
#define MIDGE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decision.h"
#include "ev.h"
#include "session.h"
#include "store.h"
#include "subtree.h"
#include "throttle.h"

struct broker;
struct client;
struct config;
struct message;

enum inbox_kind {
	INBOX_DELIVER = 1,  /* a message for one of our sessions */
	INBOX_ADOPT,        /* a client whose CONNECT belongs here */
	INBOX_CONFIG,       /* switch to a reloaded configuration (ptr: struct generation) */
	INBOX_STOP,         /* close everything and leave the loop */
	INBOX_DECIDED,      /* a plugin answered a DELAYED request (id; ptr: struct decision) */
	INBOX_PUBLISH,      /* a plugin published from another thread (msg) */
	INBOX_KICK,         /* a plugin kicks a client (ptr: its id; retain: send the will) */
	INBOX_BRIDGE,       /* a bridge's host name was resolved (ptr: the job, bridge.h) */
	INBOX_CLUSTER,      /* a message from another cluster node (msg): route locally only */
	INBOX_CLUSTER_SHARED, /* one for one shared group (msg; ptr: struct cluster_share) */
	INBOX_CLUSTER_SESSION, /* another node takes over a client id (ptr: cluster.h's request) */
	INBOX_CLUSTER_CLAIMED, /* the cluster answered a CONNECT (id: its request; ptr: cluster.h) */
	INBOX_CLUSTER_REPLAYED, /* the stream's messages for a rebuilt session (ptr: cluster.h) */
	INBOX_CLUSTER_RETAINED, /* a retained message of the cluster's bucket (msg): store only */
};

struct inbox_item {
	uint8_t kind;
	uint8_t qos;
	uint8_t retain;
	uint32_t subid;
	uint64_t id;              /* INBOX_DECIDED: the request; INBOX_DELIVER: its store sequence */
	struct session *session;  /* INBOX_DELIVER: referenced */
	struct message *msg;      /* INBOX_DELIVER: referenced */
	void *ptr;                /* INBOX_ADOPT: the client; others: see the kinds */
};

struct item_vec {
	struct inbox_item *items;
	size_t len;
	size_t cap;
};

/* Why a message was not delivered (metrics: midge_messages_dropped_total{reason}). */
enum drop_reason {
	DROP_QUEUE_FULL = 0,   /* max_queued_messages / bytes, or a connection's QoS 0 backlog */
	DROP_OFFLINE_QOS0,     /* QoS 0 for an offline session (queue_qos0_messages false) */
	DROP_TOO_LARGE,        /* message_size_limit, or the client's maximum packet size */
	DROP_EXPIRED,          /* its message expiry passed before delivery */
	DROP_DENIED,           /* a plugin (or the ACL at delivery) refused it */
	DROP_NO_MEMORY,
	DROP_REASONS
};

/* Counters behind $SYS and /metrics; only the owner writes them. */
struct worker_stats {
	_Atomic uint64_t bytes_received;
	_Atomic uint64_t bytes_sent;
	_Atomic uint64_t msgs_received;      /* packets of any type */
	_Atomic uint64_t msgs_sent;
	_Atomic uint64_t pub_received;       /* PUBLISH packets */
	_Atomic uint64_t pub_sent;
	_Atomic uint64_t pub_bytes_received; /* payload bytes */
	_Atomic uint64_t pub_bytes_sent;
	_Atomic uint64_t pub_dropped;
	_Atomic uint64_t connections;        /* CONNECTs accepted */
	_Atomic uint64_t sockets;            /* sockets accepted */
	_Atomic uint64_t clients_connected;  /* gauge */
	_Atomic uint64_t sessions;           /* gauge: sessions in the table */
	_Atomic uint64_t expired;            /* sessions expired */
	_Atomic uint64_t pub_received_qos[3];
	_Atomic uint64_t pub_sent_qos[3];
	_Atomic uint64_t dropped[DROP_REASONS];
	_Atomic uint64_t queued;             /* gauge: messages queued in our sessions */
	_Atomic uint64_t inflight;           /* gauge: QoS 1/2 messages in flight from our sessions */
};

/* A message not delivered, and why. */
#define STAT_DROP(w, reason) \
	do { \
		STAT_ADD((w)->stats.pub_dropped, 1); \
		STAT_ADD((w)->stats.dropped[(reason)], 1); \
	} while (0)

/* Single-writer counter update: plain load and store, no locked instruction. */
#define STAT_ADD(field, n) \
	atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
			      memory_order_relaxed)
#define STAT_SUB(field, n) STAT_ADD(field, -(uint64_t)(n))
#define STAT_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

struct worker {
	struct broker *broker;
	unsigned index;
	pthread_t thread;
	bool threaded;               /* false for worker 0, which runs on the main thread */
	struct ev_loop *loop;
	const struct config *cfg;    /* the configuration this worker uses now */
	struct policy *policy;       /* and the security policy loaded from it */

	struct ev_async wake;
	pthread_mutex_t inbox_lock;
	struct item_vec inbox;       /* filled by other threads */
	struct item_vec inbox_work;  /* being processed by the owner */
	struct item_vec *outbox;     /* per target worker, flushed before sleeping */

	struct ev_io *listen_io;     /* one per listening socket */
	size_t nlisten_io;
	bool accept_paused;
	struct ev_timer accept_retry;
	struct ev_timer cluster_marks; /* replay watermarks to the registry (cluster_mark.c) */

	struct client *clients;      /* every live client */
	size_t nclients;
	struct client *flush_head;   /* clients with output to write */
	struct client *reread_head;  /* clients whose transport holds input already */
	struct client *dead_head;    /* closed clients to free */
	struct session_table sessions;

	uint8_t *rbuf;               /* read scratch, shared by all clients */
	size_t rbuf_size;
	struct match_ctx match;
	struct item_vec route_buf;   /* deliveries of the message being routed */
	struct message **deferred;   /* messages to route before sleeping (log lines) */
	size_t ndeferred;
	size_t deferred_cap;

	struct worker_stats stats;
	struct throttle_list throttle; /* publishers waiting for subscribers to drain */
	uint64_t next_session_seq;
	struct worker_store store;

	/* Plugins */
	struct decision_table decisions;     /* delayed decisions of our clients */
	struct plugin_tick **ticks;          /* one per plugin with a TICK handler */
	size_t nticks;
	struct plugin_timer *plugin_timers;  /* api->timer_start */
	uint64_t next_plugin_timer;
};

int worker_init(struct worker *w, struct broker *b, unsigned index);
void worker_fini(struct worker *w);

/* Starts the thread (or, for worker 0, nothing: the main thread runs it). */
int worker_start(struct worker *w);
/* Runs the loop on the calling thread until stopped. */
void worker_run(struct worker *w);

/* The worker that owns sessions with this client id hash. */
struct worker *worker_for_hash(struct broker *b, uint32_t hash);

/* Queues an item for another worker; sent before this worker sleeps. Consumes its references. */
void worker_outbox_add(struct worker *w, const struct inbox_item *item);

/* Posts an item to another worker's inbox and wakes it. */
void worker_post(struct worker *target, const struct inbox_item *item);

/* Routes m (taking over the reference) before the loop next sleeps. */
void worker_defer_publish(struct worker *w, struct message *m);

/* The worker whose loop runs on the calling thread, or NULL. */
struct worker *worker_current(void);
/* Makes w the calling thread's worker without running its loop (dry runs). */
void worker_set_current(struct worker *w);

/* Reads c again before the loop sleeps (its transport holds decoded input). */
void worker_schedule_read(struct worker *w, struct client *c);

/* Takes c off that list (it is leaving this worker). */
void worker_unschedule_read(struct worker *w, struct client *c);

/* Marks a client as having output; it is written before the loop sleeps. */
void worker_schedule_flush(struct worker *w, struct client *c);

void worker_link_client(struct worker *w, struct client *c);
void worker_unlink_client(struct worker *w, struct client *c);

/* Stops accepting (too many descriptors) and retries after a delay. */
void worker_pause_accept(struct worker *w);

#endif
