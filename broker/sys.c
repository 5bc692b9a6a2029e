/*
 * sys.c: $SYS topic publication (see sys.h).
 */
#include "config.h"

#include "sys.h"

#include "alloc.h"
#include "broker.h"
#include "ev.h"
#include "message.h"
#include "plugin.h"
#include "bridge.h"
#include "cluster.h"
#include "store.h"
#include "worker.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Metrics that have 1, 5 and 15 minute load averages, in mosquitto's order. */
enum load_metric {
	LOAD_MSGS_RECEIVED,
	LOAD_MSGS_SENT,
	LOAD_PUB_DROPPED,
	LOAD_PUB_RECEIVED,
	LOAD_PUB_SENT,
	LOAD_BYTES_RECEIVED,
	LOAD_BYTES_SENT,
	LOAD_SOCKETS,
	LOAD_CONNECTIONS,
	LOAD_COUNT,
};

static const char *const load_topics[LOAD_COUNT] = {
	"messages/received", "messages/sent", "publish/dropped", "publish/received",
	"publish/sent", "bytes/received", "bytes/sent", "sockets", "connections",
};

/* Totals over all workers at one instant. */
struct sys_totals {
	uint64_t load[LOAD_COUNT];
	uint64_t pub_bytes_received;
	uint64_t pub_bytes_sent;
	uint64_t connected;
	uint64_t sessions;
	uint64_t expired;
};

#define SYS_SLOTS 80

struct sys_state {
	struct ev_timer timer;
	struct worker *w;
	int64_t last_ms;
	bool first;
	struct sys_totals prev;
	double load[LOAD_COUNT][3];
	/* Last published text per topic slot, so unchanged values are skipped. */
	char last[SYS_SLOTS][32];
	int slot;
};

static void totals(struct broker *b, struct sys_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < b->nworkers; i++) {
		struct worker_stats *s = &b->workers[i].stats;
		t->load[LOAD_MSGS_RECEIVED] += STAT_GET(s->msgs_received);
		t->load[LOAD_MSGS_SENT] += STAT_GET(s->msgs_sent);
		t->load[LOAD_PUB_DROPPED] += STAT_GET(s->pub_dropped);
		t->load[LOAD_PUB_RECEIVED] += STAT_GET(s->pub_received);
		t->load[LOAD_PUB_SENT] += STAT_GET(s->pub_sent);
		t->load[LOAD_BYTES_RECEIVED] += STAT_GET(s->bytes_received);
		t->load[LOAD_BYTES_SENT] += STAT_GET(s->bytes_sent);
		t->load[LOAD_SOCKETS] += STAT_GET(s->sockets);
		t->load[LOAD_CONNECTIONS] += STAT_GET(s->connections);
		t->pub_bytes_received += STAT_GET(s->pub_bytes_received);
		t->pub_bytes_sent += STAT_GET(s->pub_bytes_sent);
		t->connected += STAT_GET(s->clients_connected);
		t->sessions += STAT_GET(s->sessions);
		t->expired += STAT_GET(s->expired);
	}
}

/* Publishes topic (under $SYS/broker/) when its text changed, or always when forced. */
static void put(struct sys_state *st, const char *topic, const char *text, bool always)
{
	char full[128];
	int slot = st->slot++;

	if (slot < SYS_SLOTS) {
		if (!always && !st->first && strcmp(st->last[slot], text) == 0)
			return;
		snprintf(st->last[slot], sizeof(st->last[slot]), "%s", text);
	}
	snprintf(full, sizeof(full), "$SYS/broker/%s", topic);
	broker_publish(st->w, full, text, strlen(text), 0, true);
}

static void put_u64(struct sys_state *st, const char *topic, uint64_t v)
{
	char text[32];

	snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
	put(st, topic, text, false);
}

static void publish_loads(struct sys_state *st, const struct sys_totals *now, double seconds)
{
	static const int windows[3] = {1, 5, 15};
	char topic[96], text[32];

	for (int m = 0; m < LOAD_COUNT; m++) {
		double per_minute = seconds > 0 ? (double)(now->load[m] - st->prev.load[m]) * 60.0 / seconds : 0;
		for (int k = 0; k < 3; k++) {
			double decay = exp(-seconds / (60.0 * windows[k]));
			st->load[m][k] = st->load[m][k] * decay + per_minute * (1.0 - decay);
			snprintf(topic, sizeof(topic), "load/%s/%dmin", load_topics[m], windows[k]);
			snprintf(text, sizeof(text), "%.2f", st->load[m][k]);
			put(st, topic, text, false);
		}
	}
}

/*
 * plugins/<name>/<event>/{calls,errors,latency_us} for every event a plugin
 * of the current configuration handles, when its call count moved.
 */
static void publish_plugins(struct sys_state *st)
{
	struct broker *b = st->w->broker;
	struct plugin_host *h = b->plugins;
	char topic[256], text[32];

	for (size_t i = 0; h && i < h->nactive; i++) {
		struct midge_plugin *p = h->active[i];
		for (int e = 1; e < MIDGE_EVT_LIMIT; e++) {
			uint64_t calls, errors, ns;
			if (!p->handlers[e].cb)
				continue;
			plugin_stats_sum(p, e, &calls, &errors, &ns);
			if (!st->first && calls == p->sys_published_calls[e])
				continue;
			p->sys_published_calls[e] = calls;
			snprintf(topic, sizeof(topic), "$SYS/broker/plugins/%s/%s/calls", p->name,
				 plugin_event_name(e));
			snprintf(text, sizeof(text), "%llu", (unsigned long long)calls);
			broker_publish(st->w, topic, text, strlen(text), 0, true);
			snprintf(topic, sizeof(topic), "$SYS/broker/plugins/%s/%s/errors", p->name,
				 plugin_event_name(e));
			snprintf(text, sizeof(text), "%llu", (unsigned long long)errors);
			broker_publish(st->w, topic, text, strlen(text), 0, true);
			snprintf(topic, sizeof(topic), "$SYS/broker/plugins/%s/%s/latency_us", p->name,
				 plugin_event_name(e));
			snprintf(text, sizeof(text), "%.1f", calls ? (double)ns / (double)calls / 1000.0 : 0.0);
			broker_publish(st->w, topic, text, strlen(text), 0, true);
		}
	}
}

/* bridges/<name>/{connected,connects,messages/sent,messages/received} for every bridge. */
static void publish_bridges(struct sys_state *st)
{
	struct broker *b = st->w->broker;
	char topic[160];

	for (size_t i = 0; i < bridges_count(b); i++) {
		struct bridge_stats bs;
		bridge_stats(b, i, &bs);
		snprintf(topic, sizeof(topic), "bridges/%s/connected", bs.name);
		put(st, topic, bs.connected ? "1" : "0", false);
		snprintf(topic, sizeof(topic), "bridges/%s/connects", bs.name);
		put_u64(st, topic, bs.connects);
		snprintf(topic, sizeof(topic), "bridges/%s/messages/sent", bs.name);
		put_u64(st, topic, bs.messages_out);
		snprintf(topic, sizeof(topic), "bridges/%s/messages/received", bs.name);
		put_u64(st, topic, bs.messages_in);
	}
}

/* cluster/{state,node,messages/{sent,received,dropped,confirmed,unconfirmed},nodes/gone,
 * wills/fired} with a cluster section. */
static void publish_cluster(struct sys_state *st)
{
	struct cluster_stats cs;

	cluster_get_stats(st->w->broker, &cs);
	if (!cs.enabled)
		return;
	put(st, "cluster/state", cs.connected ? "connected" : "disconnected", false);
	put(st, "cluster/node", cs.node, false);
	put_u64(st, "cluster/messages/sent", cs.sent);
	put_u64(st, "cluster/messages/received", cs.received);
	put_u64(st, "cluster/messages/dropped", cs.dropped);
	put_u64(st, "cluster/messages/confirmed", cs.confirmed);
	put_u64(st, "cluster/messages/unconfirmed", cs.unconfirmed);
	put_u64(st, "cluster/nodes/gone", cs.nodes_gone);
	put_u64(st, "cluster/wills/fired", cs.wills_fired);
}

static void publish_all(struct sys_state *st)
{
	struct broker *b = st->w->broker;
	struct sys_totals now;
	int64_t now_ms = ev_now(st->w->loop);
	double seconds = (double)(now_ms - st->last_ms) / 1000.0;
	char text[64];
	size_t subs, shared, retained;

	totals(b, &now);
	pthread_rwlock_rdlock(&b->sub_lock);
	subs = b->subs.count - b->subs.shared_count; /* mosquitto counts shared ones apart */
	shared = b->subs.shared_count;
	pthread_rwlock_unlock(&b->sub_lock);
	pthread_rwlock_rdlock(&b->retain_lock);
	retained = b->retained.count;
	pthread_rwlock_unlock(&b->retain_lock);

	st->slot = 0;
	snprintf(text, sizeof(text), "%lld seconds", (long long)(time(NULL) - b->start_time));
	put(st, "uptime", text, true);
	uint64_t disconnected = now.sessions > now.connected ? now.sessions - now.connected : 0;
	put_u64(st, "clients/total", now.connected + disconnected);
	put_u64(st, "clients/inactive", disconnected);
	put_u64(st, "clients/disconnected", disconnected);
	put_u64(st, "clients/active", now.connected);
	put_u64(st, "clients/connected", now.connected);
	put_u64(st, "clients/expired", now.expired);
	put_u64(st, "clients/maximum", (uint64_t)atomic_load(&b->clients_max));
	put_u64(st, "messages/stored", message_live_count());
	put_u64(st, "messages/received", now.load[LOAD_MSGS_RECEIVED]);
	put_u64(st, "messages/sent", now.load[LOAD_MSGS_SENT]);
	put_u64(st, "subscriptions/count", subs);
	put_u64(st, "shared_subscriptions/count", shared);
	put_u64(st, "retained messages/count", retained);
	put_u64(st, "heap/current", mem_current());
	put_u64(st, "heap/maximum", mem_peak());
	put_u64(st, "publish/messages/dropped", now.load[LOAD_PUB_DROPPED]);
	put_u64(st, "publish/messages/received", now.load[LOAD_PUB_RECEIVED]);
	put_u64(st, "publish/messages/sent", now.load[LOAD_PUB_SENT]);
	put_u64(st, "publish/bytes/received", now.pub_bytes_received);
	put_u64(st, "publish/bytes/sent", now.pub_bytes_sent);
	put_u64(st, "bytes/received", now.load[LOAD_BYTES_RECEIVED]);
	put_u64(st, "bytes/sent", now.load[LOAD_BYTES_SENT]);
	put_u64(st, "store/messages/count", message_live_count());
	put_u64(st, "store/messages/bytes", message_live_bytes());
	struct store_stats ss;
	if (store_stats(b, &ss)) {
		put_u64(st, "persistence/commits", ss.commits);
		put_u64(st, "persistence/batches", ss.batches);
		put_u64(st, "persistence/failed", ss.failed);
		put_u64(st, "persistence/syncs", ss.syncs);
		put_u64(st, "persistence/purged", ss.purged);
	}
	/* The load slots come after the fixed ones; SYS_SLOTS bounds the total. */
	publish_loads(st, &now, seconds > 0 ? seconds : 0);
	publish_bridges(st);
	publish_cluster(st);
	publish_plugins(st);
	st->prev = now;
	st->last_ms = now_ms;
	st->first = false;
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct sys_state *st = (struct sys_state *)((char *)t - offsetof(struct sys_state, timer));
	int interval = st->w->cfg->sys_interval;

	publish_all(st);
	if (interval > 0)
		ev_timer_start(loop, t, ev_now(loop) + (int64_t)interval * 1000);
}

int sys_start(struct broker *b, struct worker *w)
{
	struct sys_state *st;
	char version[64];

	/* sys_interval 0 turns $SYS off entirely, as in mosquitto. */
	if (w->cfg->sys_interval <= 0)
		return 0;
	st = mem_calloc(1, sizeof(*st));
	if (!st)
		return -1;
	st->w = w;
	st->first = true;
	st->last_ms = ev_now(w->loop);
	ev_timer_init(&st->timer, on_timer);
	b->sys = st;
	snprintf(version, sizeof(version), "midge version %s", PACKAGE_VERSION);
	broker_publish(w, "$SYS/broker/version", version, strlen(version), 0, true);
	publish_all(st);
	if (w->cfg->sys_interval > 0)
		ev_timer_start(w->loop, &st->timer, ev_now(w->loop) + (int64_t)w->cfg->sys_interval * 1000);
	return 0;
}

void sys_stop(struct broker *b)
{
	struct sys_state *st = b->sys;

	if (!st)
		return;
	ev_timer_stop(st->w->loop, &st->timer);
	mem_free(st);
	b->sys = NULL;
}
