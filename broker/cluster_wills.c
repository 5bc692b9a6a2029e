/*
 * cluster_wills.c: wills that survive their node (see cluster.h).
 *
 * A will normally goes out from the node its client was on, when the
 * connection drops (will.c). To fire the wills of a node that dies without
 * closing anything (kill -9, power loss), every node keeps its connected
 * clients, with their wills, in the bucket <js_name>_wills:
 *     key   <node>.<instance>.<client id>.<registration>   (cluster_wire.h tokens)
 *     value delay(4, big-endian seconds) and the will as an envelope (none
 *           for a client without a will: it is there to say where it is)
 * The instance tells one life of a node from the next; the registration
 * number one connection from the next of the same client (their put and
 * delete may cross). Workers put an entry when a connection is accepted and
 * purge it when its will is published, discarded or cancelled (or it had
 * none and closed), by plain NATS publishes to $KV.<bucket>.<key>: they never
 * wait. A will waiting for its delay on a session keeps its entry until then.
 *
 * cluster_nodes.c notices a dead node and claims it (exactly one node does);
 * the claimer then calls cluster_wills_fire(), on the cluster thread: each
 * will goes out through a worker as if published here (to local subscribers
 * and the cluster), after its delay (the lesser of the will delay and the
 * session expiry, counted from the claim), unless its client id has an
 * entry of another node by then: it reconnected there. A claimer that dies
 * itself while holding delayed wills loses them.
 */
#include "config.h"

#include "cluster.h"
#include "cluster_wills.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "broker.h"
#include "cluster_wire.h"
#include "log.h"
#include "message.h"
#include "worker.h"

#define STACK_BUF 2048
/* A longer client id (as a key token) is not registered: such a will stays local. */
#define CID_TOKEN_MAX 384
#define KEY_BUF (sizeof("$KV..") + 300 + 256 * 3 + 20 + CID_TOKEN_MAX + 20)
/* Every connection with a will leaves a marker under its own key: swept this often,
 * those older than MARKER_AGE_NS (nobody reads them: a purged entry is just gone). */
#define SWEEP_MS (5 * 60 * 1000)
/* Reading a dead node's entries: the longest wait for the next one. */
#define WATCH_WAIT_MS 5000
#define MARKER_AGE_NS (60LL * 1000000000LL)

int cluster_wills_init(struct cluster *c)
{
	struct cluster_wills *cw = mem_calloc(1, sizeof(*cw));
	char node_tok[256 * 3 + 1];
	size_t n = strlen(c->js_name) + 16;

	if (!cw)
		return -1;
	c->wills = cw;
	if (cluster_key_token(node_tok, sizeof(node_tok), c->node, c->node_len) < 0)
		return -1;
	cw->wills_bucket = mem_malloc(n);
	cw->nodes_bucket = mem_malloc(n);
	cw->subject = mem_malloc(n + 8);
	cw->key_head = mem_malloc(strlen(node_tok) + 20);
	cw->node_key = mem_strdup(node_tok);
	if (!cw->wills_bucket || !cw->nodes_bucket || !cw->subject || !cw->key_head || !cw->node_key)
		return -1;
	snprintf(cw->wills_bucket, n, "%s_wills", c->js_name);
	snprintf(cw->nodes_bucket, n, "%s_nodes", c->js_name);
	cw->subject_len = (size_t)snprintf(cw->subject, n + 8, "$KV.%s.", cw->wills_bucket);
	cw->key_head_len = (size_t)snprintf(cw->key_head, strlen(node_tok) + 20, "%s.%016llx.",
					    node_tok, (unsigned long long)c->instance);
	return 0;
}

void cluster_wills_free(struct cluster *c)
{
	struct cluster_wills *cw = c->wills;

	if (!cw)
		return;
	cluster_nodes_free(cw);
	while (cw->pending) {
		struct pending_will *p = cw->pending;
		cw->pending = p->next;
		message_unref(p->msg);
		mem_free(p);
	}
	kvStore_Destroy(cw->wills_kv);
	kvStore_Destroy(cw->nodes_kv);
	mem_free(cw->wills_bucket);
	mem_free(cw->nodes_bucket);
	mem_free(cw->subject);
	mem_free(cw->key_head);
	mem_free(cw->node_key);
	mem_free(cw);
	c->wills = NULL;
}

/* "$KV.<bucket>.<node>.<instance>.<client id>.<reg>" into subj (KEY_BUF); false: too long. */
static bool entry_subject(const struct cluster_wills *cw, char *subj, const char *client_id,
			  uint64_t reg)
{
	char cid[CID_TOKEN_MAX + 1];

	if (cluster_key_token(cid, sizeof(cid), client_id, strlen(client_id)) < 0)
		return false;
	snprintf(subj, KEY_BUF, "%s%s%s.%llx", cw->subject, cw->key_head, cid,
		 (unsigned long long)reg);
	return true;
}

/* ---- The registry (workers) ------------------------------------------------------- */

uint64_t cluster_will_register(struct cluster *c, const char *client_id, const struct message *will,
			       uint32_t delay)
{
	struct cluster_wills *cw = c->wills;
	uint8_t sbuf[STACK_BUF], *data;
	char subj[KEY_BUF];
	struct cluster_env e;
	uint64_t reg = atomic_fetch_add(&cw->serial, 1) + 1;
	size_t size;
	natsStatus s;

	if (!entry_subject(cw, subj, client_id, reg))
		return 0;
	if (will && !cluster_env_of(c, will, &e))
		will = NULL; /* expired already: the client is here all the same */
	size = 4 + (will ? cluster_env_size(&e) : 0);
	data = size <= sizeof(sbuf) ? sbuf : mem_malloc(size);
	if (!data)
		return 0;
	data[0] = (uint8_t)(delay >> 24);
	data[1] = (uint8_t)(delay >> 16);
	data[2] = (uint8_t)(delay >> 8);
	data[3] = (uint8_t)delay;
	if (will)
		cluster_env_encode(&e, data + 4);
	s = natsConnection_Publish(c->nc, subj, data, (int)size);
	if (data != sbuf)
		mem_free(data);
	return s == NATS_OK ? reg : 0;
}

/* A purge marker on subj: the entry is gone. */
static void purge_subject(struct cluster *c, const char *subj)
{
	natsStatus s = cluster_kv_purge(c, subj, NULL, 0);

	if (s != NATS_OK)
		log_debug("Cluster: the wills registry keeps %s (%s).", subj, natsStatus_GetText(s));
}

void cluster_will_forget(struct cluster *c, const char *client_id, uint64_t reg)
{
	char subj[KEY_BUF];

	if (reg && entry_subject(c->wills, subj, client_id, reg))
		purge_subject(c, subj);
}

/* ---- Firing a dead node's wills (the cluster thread) ---------------------------------- */

/* The runs being fired: node's run `instance`, or with NULL every run of it but ours. */
struct dead_runs {
	const char *node, *instance;
	char ours[17];
};

/* Cuts key (in place) into its 4 tokens; false when it is not an entry key. */
static bool cut_key(char *key, char *tok[4])
{
	int i = 0;

	tok[i++] = key;
	for (char *p = key; *p; p++) {
		if (*p == '.') {
			if (i == 4)
				return false;
			*p = '\0';
			tok[i++] = p + 1;
		}
	}
	return i == 4;
}

static bool is_dead(const struct dead_runs *d, char *const tok[4])
{
	if (strcmp(tok[0], d->node) != 0)
		return false;
	return d->instance ? strcmp(tok[1], d->instance) == 0 : strcmp(tok[1], d->ours) != 0;
}

/* The client ids (key tokens) with an entry outside the dead runs: clients back elsewhere. */
struct cid_set {
	kvKeysList keys;
	const char **cids;      /* sorted, into keys */
	size_t n;
};

static int by_string(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* false when the registry could not be listed. */
static bool cids_elsewhere(struct cluster_wills *cw, const struct dead_runs *d, struct cid_set *set)
{
	natsStatus s;

	memset(set, 0, sizeof(*set));
	s = kvStore_Keys(&set->keys, cw->wills_kv, NULL);
	if (s == NATS_NOT_FOUND)
		return true; /* no entries at all */
	if (s != NATS_OK) {
		log_warn("Warning: cluster: unable to list the wills registry: %s.",
			 natsStatus_GetText(s));
		return false;
	}
	set->cids = mem_malloc(sizeof(*set->cids) * ((size_t)set->keys.Count + 1));
	if (!set->cids) {
		kvKeysList_Destroy(&set->keys);
		return false;
	}
	for (int i = 0; i < set->keys.Count; i++) {
		char *tok[4];
		if (cut_key(set->keys.Keys[i], tok) && !is_dead(d, tok))
			set->cids[set->n++] = tok[2];
	}
	qsort(set->cids, set->n, sizeof(*set->cids), by_string);
	return true;
}

static bool back_elsewhere(const struct cid_set *set, const char *cid)
{
	return set->n && bsearch(&cid, set->cids, set->n, sizeof(*set->cids), by_string);
}

static void cid_set_free(struct cid_set *set)
{
	mem_free(set->cids);
	kvKeysList_Destroy(&set->keys);
}

static void publish_will(struct cluster *c, struct message *m, uint32_t expiry)
{
	struct broker *b = c->b;

	m->created = (int64_t)time(NULL);
	m->expires = expiry ? m->created + expiry : 0;
	atomic_fetch_add(&c->wills->wills_fired, 1);
	worker_post(&b->workers[m->topic_len % b->nworkers],
		    &(struct inbox_item){.kind = INBOX_PUBLISH, .msg = m});
}

/* Keeps will m until its delay has run out; false when out of memory. */
static bool hold_will(struct cluster_wills *cw, struct message *m, uint32_t expiry,
		      uint32_t delay, const char *cid, int64_t now_ms)
{
	size_t clen = strlen(cid);
	struct pending_will *p = mem_calloc(1, sizeof(*p) + clen + 1);

	if (!p)
		return false;
	p->due_ms = now_ms + (int64_t)delay * 1000;
	p->msg = m;
	p->expiry = expiry;
	memcpy(p->cid, cid, clen + 1);
	p->next = cw->pending;
	cw->pending = p;
	return true;
}

/* One entry of the watch: purged; when of a dead run, its will out now or held.
 * Returns whether a will goes out. */
static bool fire_entry(struct cluster *c, const struct dead_runs *d, const struct cid_set *set,
		       kvEntry *entry, int64_t now_ms)
{
	const char *key = kvEntry_Key(entry);
	char copy[KEY_BUF], subj[KEY_BUF], *tok[4];
	const uint8_t *v = kvEntry_Value(entry);
	int vlen = kvEntry_ValueLen(entry);
	struct cluster_env e;
	struct message *m;
	uint32_t delay;

	if (strlen(key) >= sizeof(copy))
		return false;
	strcpy(copy, key);
	if (!cut_key(copy, tok) || !is_dead(d, tok))
		return false;
	snprintf(subj, sizeof(subj), "%s%s", c->wills->subject, key);
	purge_subject(c, subj);
	if (back_elsewhere(set, tok[2])) {
		log_debug("Cluster: client %s is back on another node: no will for it.", tok[2]);
		return false;
	}
	if (vlen <= 4 || cluster_env_decode(v + 4, (size_t)vlen - 4, &e) < 0)
		return false; /* a client without a will */
	delay = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
	m = message_new(e.topic, e.topic_len, e.payload, e.payload_len, e.qos, e.retain, e.props,
			e.props_len);
	if (!m)
		return false;
	if (delay == 0 || !hold_will(c->wills, m, e.expiry, delay, tok[2], now_ms))
		publish_will(c, m, e.expiry); /* (out of memory: sooner rather than never) */
	return true;
}

size_t cluster_wills_fire(struct cluster *c, const char *node, const char *instance)
{
	struct cluster_wills *cw = c->wills;
	struct dead_runs d = {.node = node, .instance = instance};
	int64_t now_ms = cluster_now_ms();
	char filter[KEY_BUF];
	struct cid_set set;
	kvWatcher *w = NULL;
	size_t n = 0;

	snprintf(d.ours, sizeof(d.ours), "%016llx", (unsigned long long)c->instance);
	if (!cids_elsewhere(cw, &d, &set))
		return 0;
	/* One consumer brings every entry of the node with its value. */
	snprintf(filter, sizeof(filter), "%s.>", node);
	if (kvStore_Watch(&w, cw->wills_kv, filter, NULL) != NATS_OK) {
		log_warn("Warning: cluster: unable to read the wills of node %s.", node);
		cid_set_free(&set);
		return 0;
	}
	for (;;) {
		kvEntry *e = NULL;
		/* NULL: every entry there was has come. */
		if (kvWatcher_Next(&e, w, WATCH_WAIT_MS) != NATS_OK || !e)
			break;
		if (kvEntry_Operation(e) == kvOp_Put && fire_entry(c, &d, &set, e, now_ms))
			n++;
		kvEntry_Destroy(e);
	}
	kvWatcher_Destroy(w);
	cid_set_free(&set);
	return n;
}

void cluster_wills_due(struct cluster *c, int64_t now_ms)
{
	struct pending_will **at = &c->wills->pending;
	struct dead_runs nobody = {.node = "", .instance = ""};
	struct cid_set set;
	bool listed = false;

	while (*at) {
		struct pending_will *p = *at;
		if (p->due_ms > now_ms) {
			at = &p->next;
			continue;
		}
		/* The client may have come back during the delay [MQTT-3.1.3-9]: its old
		 * entry is purged, so any entry is a new connection. */
		if (!listed && !cids_elsewhere(c->wills, &nobody, &set))
			return; /* asked again next tick */
		listed = true;
		*at = p->next;
		if (back_elsewhere(&set, p->cid)) {
			log_info("Cluster: client %s is back on another node; its will stays unsent.",
				 p->cid);
			message_unref(p->msg);
		} else {
			publish_will(c, p->msg, p->expiry);
		}
		mem_free(p);
	}
	if (listed)
		cid_set_free(&set);
}

void cluster_wills_sweep(struct cluster *c, int64_t now_ms)
{
	struct cluster_wills *cw = c->wills;
	kvPurgeOptions po;
	natsStatus s;

	if (cw->next_sweep_ms == 0)
		cw->next_sweep_ms = now_ms + SWEEP_MS;
	if (now_ms < cw->next_sweep_ms)
		return;
	cw->next_sweep_ms = now_ms + SWEEP_MS;
	kvPurgeOptions_Init(&po);
	po.DeleteMarkersOlderThan = MARKER_AGE_NS;
	s = kvStore_PurgeDeletes(cw->wills_kv, &po);
	if (s != NATS_OK && s != NATS_NOT_FOUND)
		log_debug("Cluster: the wills registry's markers stay for now (%s).",
			  natsStatus_GetText(s));
}
