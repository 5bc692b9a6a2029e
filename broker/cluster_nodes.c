/*
 * cluster_nodes.c: which nodes are alive, and who fires a dead node's wills.
 *
 * Every node puts "alive <instance>" under its name in the bucket
 * <js_name>_nodes about once a second (CLUSTER_HEARTBEAT_MS; the bucket's
 * max age drops what nobody wrote for an hour), and follows the bucket with
 * a watcher, timing each key's updates on its own clock: a node whose key
 * has not changed for the node timeout is gone. Clocks never meet. Our own
 * heartbeats coming back through the watcher prove it current; a node that
 * stops seeing them (NATS or JetStream away) judges nobody, and starts
 * counting afresh when they come back rather than blaming the others.
 *
 * Claiming is a compare-and-set: the watcher replaces the revision it saw
 * with "gone <instance> by <node>". Of several watchers exactly one
 * succeeds, and it fires the wills of that node's instance
 * (cluster_wills.c). A node that comes back under the same name takes its
 * key the same way before anything else: if it wins, nobody claimed its
 * previous run, so it fires that run's wills itself (those clients are gone
 * with it); if the key says "gone", a survivor did. A node that stops
 * normally says "gone" itself and purges its own entries (its clients'
 * wills were handled as their connections closed).
 */
#include "config.h"

#include "cluster_wills.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

#define CLUSTER_HEARTBEAT_MS 1000
/* Longer without our own heartbeat coming back, and the watcher is not current. */
#define BLIND_MS 2500
/* Updates taken from the watcher per tick at most. */
#define WATCH_BATCH 256
#define NODES_MAX_AGE_NS (3600LL * 1000000000LL)
#define VALUE_MAX 512
/* A stopping node's goodbye takes at most about this long (then one request's wait). */
#define LEAVE_MS 2000

static int open_bucket(struct cluster *c, kvStore **kv, const char *name, int64_t ttl_ns)
{
	kvConfig kc;

	kvConfig_Init(&kc);
	kc.Bucket = name;
	kc.History = 1;
	kc.TTL = ttl_ns;
	kc.StorageType = js_FileStorage;
	kc.Replicas = c->replicas;
	return cluster_bucket_open(c, kv, &kc);
}

static void alive_value(const struct cluster *c, char *out, size_t cap)
{
	snprintf(out, cap, "alive %016" PRIx64, c->instance);
}

static bool is_gone(const char *v, int len)
{
	return len >= 5 && memcmp(v, "gone ", 5) == 0;
}

/* The instance an "alive <hex>" value names, into hex (17 bytes); false otherwise. */
static bool alive_instance(const char *v, int len, char hex[17])
{
	if (len != 6 + 16 || memcmp(v, "alive ", 6) != 0)
		return false;
	memcpy(hex, v + 6, 16);
	hex[16] = '\0';
	return true;
}

/* Our key, compare-and-set: fires our previous run's wills when nobody claimed it. */
static int take_own_key(struct cluster *c)
{
	struct cluster_wills *cw = c->wills;
	kvEntry *e = NULL;
	char val[VALUE_MAX];
	uint64_t rev = 0;
	bool fire_old = false;
	natsStatus s;

	alive_value(c, val, sizeof(val));
	s = kvStore_Get(&e, cw->nodes_kv, cw->node_key);
	if (s == NATS_NOT_FOUND) {
		s = kvStore_Create(&rev, cw->nodes_kv, cw->node_key, val, (int)strlen(val));
		fire_old = s == NATS_OK;
	} else if (s == NATS_OK) {
		const char *v = kvEntry_ValueString(e);
		int len = kvEntry_ValueLen(e);
		if (is_gone(v, len)) {
			s = kvStore_Put(&rev, cw->nodes_kv, cw->node_key, val, (int)strlen(val));
		} else {
			s = kvStore_Update(&rev, cw->nodes_kv, cw->node_key, val, (int)strlen(val),
					   kvEntry_Revision(e));
			fire_old = s == NATS_OK;
		}
		kvEntry_Destroy(e);
	}
	if (s != NATS_OK)
		return -1; /* retried: a claimer may have just taken it */
	if (fire_old) {
		size_t n = cluster_wills_fire(c, cw->node_key, NULL);
		if (n)
			log_notice("Cluster: node %s restarted; firing %zu wills of its previous run.",
				   c->node, n);
	}
	cw->next_beat_ms = cluster_now_ms() + CLUSTER_HEARTBEAT_MS;
	return 0;
}

int cluster_nodes_setup(struct cluster *c)
{
	struct cluster_wills *cw = c->wills;

	if (open_bucket(c, &cw->wills_kv, cw->wills_bucket, 0) < 0 ||
	    open_bucket(c, &cw->nodes_kv, cw->nodes_bucket, NODES_MAX_AGE_NS) < 0)
		return -1;
	if (!cw->started) {
		if (take_own_key(c) < 0)
			return -1;
		cw->started = true;
	}
	if (!cw->watch && kvStore_WatchAll(&cw->watch, cw->nodes_kv, NULL) != NATS_OK)
		return -1;
	cw->own_seen_ms = cluster_now_ms();
	return 0;
}

static struct node_seen *seen_of(struct cluster_wills *cw, const char *name)
{
	struct node_seen *n;

	for (n = cw->seen; n; n = n->next)
		if (strcmp(n->name, name) == 0)
			return n;
	n = mem_calloc(1, sizeof(*n) + strlen(name) + 1);
	if (!n)
		return NULL;
	strcpy(n->name, name);
	n->next = cw->seen;
	cw->seen = n;
	return n;
}

static void claim(struct cluster *c, const char *name, uint64_t rev, const char *instance)
{
	struct cluster_wills *cw = c->wills;
	char val[VALUE_MAX];
	uint64_t nrev;
	natsStatus s;

	snprintf(val, sizeof(val), "gone %s by %s", instance, c->node);
	s = kvStore_Update(&nrev, cw->nodes_kv, name, val, (int)strlen(val), rev);
	if (s != NATS_OK) {
		log_info("Cluster: node %s is gone; another node claimed it first.", name);
		return;
	}
	atomic_fetch_add(&cw->nodes_gone, 1);
	size_t n = cluster_wills_fire(c, name, instance);
	log_notice("Cluster: node %s is gone; firing %zu wills.", name, n);
}

/* One update of the nodes bucket, as the watcher delivers it. */
static void note(struct cluster_wills *cw, kvEntry *e, int64_t now)
{
	const char *name = kvEntry_Key(e);
	struct node_seen *seen;

	if (strcmp(name, cw->node_key) == 0) {
		cw->own_seen_ms = now; /* the watcher is current up to our last heartbeat */
		return;
	}
	seen = seen_of(cw, name);
	if (!seen)
		return;
	seen->revision = kvEntry_Revision(e);
	seen->changed_ms = now;
	seen->alive = kvEntry_Operation(e) == kvOp_Put &&
		      alive_instance(kvEntry_ValueString(e), kvEntry_ValueLen(e), seen->instance);
}

/* Takes what the watcher has; then claims the nodes that stood still too long. */
static void check_nodes(struct cluster *c, int64_t now)
{
	struct cluster_wills *cw = c->wills;
	kvEntry *e;

	for (int i = 0; i < WATCH_BATCH; i++) {
		e = NULL;
		if (kvWatcher_Next(&e, cw->watch, 1) != NATS_OK)
			break;
		if (e) /* NULL: the initial values are in */
			note(cw, e, now);
		kvEntry_Destroy(e);
	}
	/* Not seeing our own heartbeat come back, we see nobody's: judge nobody, and
	 * count afresh once we see again. */
	if (now - cw->own_seen_ms > BLIND_MS) {
		cw->blind = true;
		return;
	}
	if (cw->blind) {
		for (struct node_seen *n = cw->seen; n; n = n->next)
			n->changed_ms = now;
		cw->blind = false;
		return;
	}
	for (struct node_seen *n = cw->seen; n; n = n->next) {
		if (n->alive && now - n->changed_ms >= c->node_timeout_ms) {
			n->alive = false; /* the watcher tells what became of it */
			claim(c, n->name, n->revision, n->instance);
		}
	}
}

void cluster_nodes_tick(struct cluster *c, int64_t now)
{
	struct cluster_wills *cw = c->wills;
	char val[VALUE_MAX];
	uint64_t rev;

	if (!cw->started)
		return;
	cluster_wills_due(c, now);
	if (!atomic_load(&c->connected))
		return;
	if (now >= cw->next_beat_ms) {
		alive_value(c, val, sizeof(val));
		cw->next_beat_ms = now + CLUSTER_HEARTBEAT_MS;
		if (kvStore_Put(&rev, cw->nodes_kv, cw->node_key, val, (int)strlen(val)) != NATS_OK)
			log_debug("Cluster: heartbeat not stored: %s.", nats_GetLastError(NULL));
	}
	check_nodes(c, cluster_now_ms());
	cluster_wills_sweep(c, cluster_now_ms());
}

void cluster_nodes_leave(struct cluster *c)
{
	struct cluster_wills *cw = c->wills;
	char val[VALUE_MAX];
	kvKeysList keys;
	uint64_t rev;

	if (!cw || !cw->started || !atomic_load(&c->connected))
		return;
	int64_t until = cluster_now_ms() + LEAVE_MS;
	snprintf(val, sizeof(val), "gone %016" PRIx64 " by %s (stopped)", c->instance, c->node);
	(void)kvStore_Put(&rev, cw->nodes_kv, cw->node_key, val, (int)strlen(val));
	memset(&keys, 0, sizeof(keys));
	if (cluster_now_ms() >= until || kvStore_Keys(&keys, cw->wills_kv, NULL) != NATS_OK)
		return;
	int i = 0;
	for (; i < keys.Count && cluster_now_ms() < until; i++)
		if (strncmp(keys.Keys[i], cw->key_head, cw->key_head_len) == 0)
			(void)kvStore_Purge(cw->wills_kv, keys.Keys[i], NULL);
	if (i < keys.Count)
		log_warn("Warning: cluster: stopping without clearing all this node's will "
			 "registrations (JetStream slow); the node's \"stopped\" mark stands for them.");
	kvKeysList_Destroy(&keys);
}

void cluster_nodes_free(struct cluster_wills *cw)
{
	if (cw->watch) {
		kvWatcher_Stop(cw->watch);
		kvWatcher_Destroy(cw->watch);
		cw->watch = NULL;
	}
	while (cw->seen) {
		struct node_seen *n = cw->seen;
		cw->seen = n->next;
		mem_free(n);
	}
}
