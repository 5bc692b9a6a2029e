/*
 * cluster_wills.h: the wills registry and the node heartbeats, private to
 * cluster_wills.c (the registry: buckets, entries, firing a dead node's
 * wills) and cluster_nodes.c (heartbeats, noticing a node is gone, claiming
 * it). See cluster_wills.c for the design.
 */
#ifndef MIDGE_CLUSTER_WILLS_H
#define MIDGE_CLUSTER_WILLS_H

#include "cluster_int.h"

/* A will a claimer holds until its delay has run out. */
struct pending_will {
	struct pending_will *next;
	int64_t due_ms;             /* cluster_now_ms() */
	struct message *msg;
	uint32_t expiry;            /* its Message Expiry Interval, 0 = none */
	char cid[];                 /* its client id, as a key token */
};

/* What this node last saw of another node's heartbeat. */
struct node_seen {
	struct node_seen *next;
	uint64_t revision;
	int64_t changed_ms;         /* cluster_now_ms() when revision last changed */
	bool alive;                 /* its value says "alive <instance>" */
	char instance[17];          /* that instance, hex */
	char name[];                /* its key */
};

struct cluster_wills {
	char *wills_bucket;         /* <js_name>_wills */
	char *nodes_bucket;         /* <js_name>_nodes */
	char *subject;              /* "$KV.<wills_bucket>." */
	size_t subject_len;
	char *key_head;             /* "<node token>.<instance hex>.": this node's entries */
	size_t key_head_len;
	char *node_key;             /* this node's key in the nodes bucket */
	_Atomic uint64_t serial;    /* registrations so far */

	/* The cluster thread only. */
	kvStore *wills_kv, *nodes_kv;
	bool started;               /* our heartbeat is in, our old wills handled */
	int64_t next_beat_ms;
	int64_t next_sweep_ms;      /* cluster_wills_sweep() */
	kvWatcher *watch;           /* the nodes bucket */
	int64_t own_seen_ms;        /* our heartbeat last came back through it */
	bool blind;                 /* it did not for a while */
	struct node_seen *seen;
	struct pending_will *pending;

	_Atomic uint64_t nodes_gone, wills_fired;
};

/*
 * (cluster_wills.c) Fires the wills of node (its key token) from its run
 * `instance` (hex), or from every run but ours when NULL, except those of
 * clients back on another node; purges their entries. Returns how many
 * fired or wait for their delay.
 */
size_t cluster_wills_fire(struct cluster *c, const char *node, const char *instance);
/* Publishes the pending wills that are due. */
void cluster_wills_due(struct cluster *c, int64_t now_ms);
/* Now and then, drops the purge markers forgotten entries leave in the bucket. */
void cluster_wills_sweep(struct cluster *c, int64_t now_ms);

/* (cluster_nodes.c) A job setup step and its tick. */
int cluster_nodes_setup(struct cluster *c);
void cluster_nodes_tick(struct cluster *c, int64_t now_ms);
/* Says this node stopped and purges its entries (the main thread, at stop). */
void cluster_nodes_leave(struct cluster *c);
void cluster_nodes_free(struct cluster_wills *cw);

#endif
