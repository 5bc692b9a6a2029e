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

void cluster_will_forget(struct cluster *c, const char *client_id, uint64_t reg)
{
	char subj[KEY_BUF];
	natsMsg *msg = NULL;
	natsStatus s;

	if (!reg || !entry_subject(c->wills, subj, client_id, reg))
		return;
	s = natsMsg_Create(&msg, subj, NULL, NULL, 0);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "KV-Operation", "PURGE");
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Nats-Rollup", "sub");
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(c->nc, msg);
	natsMsg_Destroy(msg);
	if (s != NATS_OK)
		log_debug("Cluster: the will entry of %s stays behind (%s).", client_id,
			  natsStatus_GetText(s));
}

/* ---- Firing a dead node's wills (the cluster thread) ---------------------------------- */

/* Splits key into its 4 tokens (pointers into copy); false when it is not an entry key. */
static bool split_key(const char *key, char *copy, size_t cap, char *tok[4])
{
	size_t n = strlen(key);
	int i = 0;

	if (n + 1 > cap)
		return false;
	memcpy(copy, key, n + 1);
	tok[i++] = copy;
	for (char *p = copy; *p; p++) {
		if (*p == '.') {
			if (i == 4)
				return false;
			*p = '\0';
			tok[i++] = p + 1;
		}
	}
	return i == 4;
}

/* Whether another node, or another run of it, has an entry for the client id token cid. */
static bool back_elsewhere(const kvKeysList *keys, const char *node, const char *instance,
			   const char *cid)
{
	char copy[KEY_BUF], *tok[4];

	for (int i = 0; i < keys->Count; i++)
		if (split_key(keys->Keys[i], copy, sizeof(copy), tok) && strcmp(tok[2], cid) == 0 &&
		    (strcmp(tok[0], node) != 0 || strcmp(tok[1], instance) != 0))
			return true;
	return false;
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

/* One entry (tok: its key split): its will out now or pending; the entry purged.
 * Returns whether it fires. */
static bool fire_entry(struct cluster *c, const char *key, char *const tok[4], int64_t now_ms)
{
	struct cluster_wills *cw = c->wills;
	kvEntry *entry = NULL;
	struct cluster_env e;
	struct message *m = NULL;
	uint32_t delay = 0;

	if (kvStore_Get(&entry, cw->wills_kv, key) != NATS_OK)
		return false; /* gone meanwhile: its client left normally */
	const uint8_t *v = kvEntry_Value(entry);
	int vlen = kvEntry_ValueLen(entry);
	if (vlen > 4 && cluster_env_decode(v + 4, (size_t)vlen - 4, &e) == 0) {
		delay = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
		m = message_new(e.topic, e.topic_len, e.payload, e.payload_len, e.qos, e.retain,
				e.props, e.props_len);
	}
	kvEntry_Destroy(entry);
	if (kvStore_Purge(cw->wills_kv, key, NULL) != NATS_OK)
		log_debug("Cluster: unable to purge will entry %s.", key);
	if (!m)
		return false;
	if (delay == 0) {
		publish_will(c, m, e.expiry);
		return true;
	}
	size_t nlen = strlen(tok[0]), ilen = strlen(tok[1]), clen = strlen(tok[2]);
	struct pending_will *p = mem_calloc(1, sizeof(*p) + nlen + ilen + clen + 3);
	if (!p) {
		publish_will(c, m, e.expiry); /* sooner rather than never */
		return true;
	}
	p->due_ms = now_ms + (int64_t)delay * 1000;
	p->msg = m;
	p->expiry = e.expiry;
	memcpy(p->ids, tok[0], nlen + 1);
	p->instance = p->ids + nlen + 1;
	memcpy(p->instance, tok[1], ilen + 1);
	p->cid = p->instance + ilen + 1;
	memcpy(p->cid, tok[2], clen + 1);
	p->next = cw->pending;
	cw->pending = p;
	return true;
}

/* Every key of the wills bucket into keys; false when they are unknown. */
static bool list_keys(struct cluster_wills *cw, kvKeysList *keys)
{
	memset(keys, 0, sizeof(*keys));
	natsStatus s = kvStore_Keys(keys, cw->wills_kv, NULL);
	if (s == NATS_NOT_FOUND)
		return true; /* no entries at all */
	if (s != NATS_OK)
		log_warn("Warning: cluster: unable to list the wills registry: %s.",
			 natsStatus_GetText(s));
	return s == NATS_OK;
}

size_t cluster_wills_fire(struct cluster *c, const char *node, const char *instance)
{
	struct cluster_wills *cw = c->wills;
	kvKeysList keys;
	size_t n = 0;
	int64_t now_ms = cluster_now_ms();
	char copy[KEY_BUF], *tok[4], ours[17];

	snprintf(ours, sizeof(ours), "%016llx", (unsigned long long)c->instance);
	if (!list_keys(cw, &keys))
		return 0;
	for (int i = 0; i < keys.Count; i++) {
		const char *key = keys.Keys[i];
		if (!split_key(key, copy, sizeof(copy), tok) || strcmp(tok[0], node) != 0)
			continue;
		if (instance ? strcmp(tok[1], instance) != 0 : strcmp(tok[1], ours) == 0)
			continue;
		if (back_elsewhere(&keys, tok[0], tok[1], tok[2])) {
			log_debug("Cluster: client %s is back on another node; no will for it.",
				  tok[2]);
			(void)kvStore_Purge(cw->wills_kv, key, NULL);
			continue;
		}
		if (fire_entry(c, key, tok, now_ms))
			n++;
	}
	kvKeysList_Destroy(&keys);
	return n;
}

void cluster_wills_due(struct cluster *c, int64_t now_ms)
{
	struct pending_will **at = &c->wills->pending;
	kvKeysList keys;
	bool listed = false;

	while (*at) {
		struct pending_will *p = *at;
		if (p->due_ms > now_ms) {
			at = &p->next;
			continue;
		}
		/* The client may have come back during the delay [MQTT-3.1.3-9]. */
		if (!listed && !list_keys(c->wills, &keys))
			return; /* asked again next tick */
		listed = true;
		*at = p->next;
		if (back_elsewhere(&keys, p->ids, p->instance, p->cid)) {
			log_info("Cluster: client %s is back on another node; its will stays unsent.",
				 p->cid);
			message_unref(p->msg);
		} else {
			publish_will(c, p->msg, p->expiry);
		}
		mem_free(p);
	}
	if (listed)
		kvKeysList_Destroy(&keys);
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
