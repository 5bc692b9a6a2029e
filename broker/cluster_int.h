/*
 * cluster_int.h: the state shared by cluster_nats.c (connection, publish,
 * receive) and cluster_interest.c (NATS subscriptions that follow the
 * subscription trie). Private to broker/cluster*.c.
 */
#ifndef MIDGE_CLUSTER_INT_H
#define MIDGE_CLUSTER_INT_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster_acks.h"

struct broker;
struct config_cluster;
struct cluster_sessions;
struct cluster_replay;
struct decision;
struct interest_entry;
struct share_entry;
struct shared_link;

/* Ids of a message already seen from one node start (instance), in a window. */
#define CLUSTER_DEDUP_WINDOW 4096
#define CLUSTER_DEDUP_ORIGINS 64
struct cluster_origin {
	uint64_t instance;     /* 0 = slot free */
	uint64_t top;          /* the highest sequence seen */
	uint64_t last_used;
	uint64_t bits[CLUSTER_DEDUP_WINDOW / 64]; /* bit seq % WINDOW: seen */
};

/* One worker's QoS 1/2 messages waiting for JetStream (cluster_qos.c). */
struct cluster_worker_acks {
	pthread_mutex_t lock;
	struct cluster_acks acks;      /* under lock */
	/* The worker's thread only: */
	uint64_t last_given;           /* the number of the message just routed, or 0 */
	uint64_t *taken;               /* failed numbers taken by cluster_confirmed() */
	size_t ntaken, taken_cap;
};

#define CLUSTER_INTEREST_BUCKETS 1024
/* The cluster thread's period (cluster_jobs.c). */
#define CLUSTER_TICK_MS 250

struct cluster {
	struct broker *b;
	natsConnection *nc;
	natsOptions *opts;
	char *node;
	size_t node_len;
	char *prefix;
	uint64_t instance;
	_Atomic uint64_t seq;
	_Atomic bool connected;
	_Atomic int64_t lost_at;    /* cluster_now_ms() when NATS was last lost */
	_Atomic bool stopping;      /* cluster_stop() began: callbacks stay quiet */
	pthread_mutex_t closed_lock;
	pthread_cond_t closed_cond;
	bool closed;                /* libnats's closed callback ran: no callback follows */
	size_t live_subs;           /* subscriptions whose handler may still run (closed_lock) */
	_Atomic uint64_t sent, received, dropped, reconnects, interest_count;

	pthread_mutex_t dedup_lock;
	struct cluster_origin origins[CLUSTER_DEDUP_ORIGINS];
	uint64_t dedup_clock;

	/* Under the broker's sub_lock (write): the trie calls cluster_interest(). */
	struct interest_entry *interest[CLUSTER_INTEREST_BUCKETS];

	/* Shared subscriptions (cluster_shared.c): queue subscriptions on further
	 * connections, one per NATS server listed, which NATS echoes this node's own
	 * messages to. */
	struct shared_link *shared_links;
	size_t nshared_links;
	_Atomic unsigned shared_up;  /* links connected */
	struct share_entry *shares[CLUSTER_INTEREST_BUCKETS]; /* under sub_lock (write) */
	_Atomic uint64_t shared_received, shared_groups;

	/* JetStream (created with the connection; its streams and buckets by the jobs). */
	jsCtx *js;
	int replicas;               /* copies JetStream keeps (config, or min(3, servers)) */
	int64_t stream_max_age_ns;  /* how long the QoS 1/2 stream keeps a message */
	int64_t node_timeout_ms;    /* a node whose heartbeat stands still this long is gone */
	char *js_name;              /* the prefix as a stream/bucket name part ('.' -> '_') */

	struct cluster_retained *retained;  /* cluster_retain.c */
	struct cluster_wills *wills;        /* cluster_wills.c and cluster_nodes.c */

	/* The cluster thread (cluster_jobs.c). */
	pthread_t jobs_thread;
	bool jobs_running;
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_cond;
	bool jobs_stop, jobs_kick;  /* under jobs_lock */
	_Atomic bool setup_done;    /* every setup step succeeded */

	/* The session registry and hand-over (cluster_session.c). */
	struct cluster_sessions *sessions;
	/* Replays of the stream into sessions rebuilt here (cluster_replay.c). */
	struct cluster_replay *replay;

	/* QoS 1/2 messages through JetStream (cluster_qos.c). */
	struct cluster_worker_acks *wacks; /* one per worker */
	unsigned nwacks;
	_Atomic bool stream_ready;         /* the stream exists: QoS 1/2 messages go to JetStream */
	_Atomic bool stream_check;         /* "no responders": look for the stream again */
	pthread_mutex_t resend_lock;
	natsMsg **resend;                  /* unanswered messages to send again (resend_lock) */
	size_t nresend, resend_cap;
	_Atomic uint64_t confirmed, unconfirmed;
	/* The cluster thread's own. */
	int64_t next_stream_check, next_failure_log;
	uint64_t failures_logged;
};

/* The answer to a claim (INBOX_CLUSTER_CLAIMED): d.data is the moved session, if any. */
struct cluster_claimed {
	struct decision *d;
	char id[];
};

/* Another node takes over client `id` (INBOX_CLUSTER_SESSION on the id's worker). */
struct session_takeover {
	bool clean_start;
	char *reply;                /* the NATS subject the answer goes to (in this block) */
	char id[];
};

/* A header on a QoS 1/2 message sent again because JetStream did not answer the first
 * time (cluster_qos.c): core subscribers got that first one already. */
#define CLUSTER_RESEND_HEADER "Midge-Resend"

/* (cluster_nats.c) The handler of every NATS subscription; closure: the cluster. */
void cluster_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);
/* Subscribes to subject with cluster_on_msg; NULL on failure (logged). */
natsSubscription *cluster_subscribe(struct cluster *c, const char *subject);
/* The same with another handler (closure: the cluster); close_connection() waits for it. */
natsSubscription *cluster_subscribe_with(struct cluster *c, const char *subject,
					 natsMsgHandler handler);

/* (cluster_session.c) Its state and thread (cluster_start), its setup step (the
 * registry bucket, the control subject), unsubscribing (cluster_stop) and the end. */
int cluster_session_init(struct cluster *c);
int cluster_session_setup(struct cluster *c);
void cluster_session_unsubscribe(struct cluster *c);
void cluster_session_fini(struct cluster *c);
/* (cluster_session_move.c) Whether this worker is handing a session to another node
 * now: the key stays, the other node writes it. */
bool cluster_session_handing_over(void);

/*
 * (cluster_replay.c) Its thread (cluster_start) and the end. queue: replays
 * for client id (its CONNECT's worker) the stream's QoS 1/2 messages from
 * from_ms - margin_ms that match nsubs subscriptions (as on the wire, copied); -1 when
 * refused (logged by the caller).
 */
int cluster_replay_init(struct cluster *c);
void cluster_replay_fini(struct cluster *c);
int cluster_replay_queue(struct cluster *c, const char *id, size_t id_len, unsigned worker,
			 int64_t from_ms, int64_t margin_ms, const uint8_t *subs, size_t subs_len,
			 uint32_t nsubs);
/* The session of client id, whose replay may be queued, is installed on its worker. */
void cluster_replay_installed(struct cluster *c, const char *id);

/* (cluster_nats.c) Servers, reconnection, credentials and TLS of cc into o. */
natsStatus cluster_options_common(natsOptions *o, const struct config_cluster *cc);

/* (cluster_shared.c) Connects the shared links (in the background). -1 on failure. */
int cluster_shared_start(struct cluster *c);
/* subtree_shared_fn: arg is the cluster. */
void cluster_shared_interest(void *arg, const char *group, size_t glen, const char *filter,
			     size_t flen, bool on);
/* Unsubscribes and forgets every group; under sub_lock (write). */
void cluster_shared_clear(struct cluster *c);
/* Closes the shared links (their subscriptions are gone); waits (bounded) and frees. */
void cluster_shared_close(struct cluster *c);

/* Counts sub in the subscriptions closing waits for (cluster_nats.c). */
natsStatus cluster_sub_track(struct cluster *c, natsSubscription *sub);
/* Fills e with m (borrowed) as this node sends it; false (e filled, no expiry) when m expired. */
struct cluster_env;
struct message;
bool cluster_env_of(struct cluster *c, const struct message *m, struct cluster_env *e);

/*
 * (cluster_retain.c) Retained messages in the bucket <js_name>_retained.
 * init/free: with the cluster; setup: a job step (the bucket, and the
 * consumer every node follows it with); stop: before the connection closes.
 */
#define CLUSTER_RETAIN_LOAD_WAIT_MS 2000
int cluster_retain_init(struct cluster *c);
int cluster_retain_setup(struct cluster *c);
/* Waits up to ms for the bucket's values as they were when following began. */
void cluster_retain_wait_loaded(struct cluster *c, int ms);
/* Puts (or clears) retained m in the bucket without waiting. Any worker. */
void cluster_retain_publish(struct cluster *c, const struct message *m, unsigned worker);
void cluster_retain_stop(struct cluster *c);
void cluster_retain_free(struct cluster *c);

/* (cluster_wills.c) The wills registry's names; with the cluster. */
int cluster_wills_init(struct cluster *c);
void cluster_wills_free(struct cluster *c);

/* (cluster_jobs.c) Binds *kv to bucket kc->Bucket, creating it when missing; 0 when done. */
int cluster_bucket_open(struct cluster *c, kvStore **kv, kvConfig *kc);
/* Publishes a purge marker on a bucket's key subject subj (with len bytes of data, which
 * followers see): the bucket forgets the key's earlier values. Does not wait. */
natsStatus cluster_kv_purge(struct cluster *c, const char *subj, const void *data, size_t len);
/* (cluster_jobs.c) The cluster thread: setup steps and ticks. */
int cluster_jobs_start(struct cluster *c);
void cluster_jobs_stop(struct cluster *c);
/* Wakes the cluster thread now (e.g. connected again). Any thread. */
void cluster_jobs_kick(struct cluster *c);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t cluster_now_ms(void);

/* (cluster_qos.c) QoS 1/2 messages through JetStream. */
int cluster_qos_init(struct cluster *c, unsigned nworkers);
void cluster_qos_free(struct cluster *c);
/* The JetStream context's asynchronous publish settings (its answers come to cluster_qos.c). */
void cluster_qos_js_options(struct cluster *c, jsOptions *o);
/* Setup job: the stream exists with our settings. 0 when done. */
int cluster_qos_stream_setup(struct cluster *c);
/* Tick: deadlines, resends, the stream's presence. */
void cluster_qos_tick(struct cluster *c, int64_t now);
/*
 * Gives a QoS 1/2 message (subject, envelope of sequence seq) to JetStream
 * for worker `worker` (its thread). false when JetStream is not usable now
 * (no stream yet, NATS lost for longer than a reconnection takes): the
 * caller publishes it the plain way.
 */
bool cluster_qos_publish(struct cluster *c, unsigned worker, const char *subj, const void *data,
			 size_t size, uint64_t seq);

/* (cluster_interest.c) subtree_interest_fn: arg is the cluster. */
void cluster_interest(void *arg, const char *filter, size_t len, bool on);
/* Unsubscribes and forgets every filter. */
void cluster_interest_clear(struct cluster *c);

#endif
