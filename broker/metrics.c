/*
 * metrics.c: Prometheus text exposition of the broker's counters (see
 * metrics.h). Names follow Prometheus conventions: midge_ prefix, _total for
 * counters, base units (bytes, seconds).
 */
#include "config.h"

#include "metrics.h"

#include "alloc.h"
#include "bridge.h"
#include "cluster.h"
#include "broker.h"
#include "listener.h"
#include "message.h"
#include "plugin.h"
#include "store.h"
#include "worker.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void textbuf_printf(struct textbuf *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	for (;;) {
		size_t room = t->cap - t->len;
		va_start(ap, fmt);
		n = vsnprintf(t->p ? t->p + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap - t->len <= (size_t)n)
			cap *= 2;
		char *p = mem_realloc(t->p, cap);
		if (!p) {
			t->failed = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
}

void textbuf_free(struct textbuf *t)
{
	mem_free(t->p);
	memset(t, 0, sizeof(*t));
}

static void head(struct textbuf *t, const char *name, const char *type, const char *help)
{
	textbuf_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(struct textbuf *t, const char *name, const char *type, const char *help,
		unsigned long long v)
{
	head(t, name, type, help);
	textbuf_printf(t, "%s %llu\n", name, v);
}

/* A label value with \ " and newlines escaped. */
static void label(struct textbuf *t, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			textbuf_printf(t, "\\%c", *v);
		else if (*v == '\n')
			textbuf_printf(t, "\\n");
		else
			textbuf_printf(t, "%c", *v);
	}
}

#define SUM(field) sum_workers(b, offsetof(struct worker_stats, field))

static unsigned long long sum_workers(const struct broker *b, size_t offset)
{
	unsigned long long n = 0;

	for (unsigned i = 0; i < b->nworkers; i++) {
		const _Atomic uint64_t *f =
			(const _Atomic uint64_t *)((const char *)&b->workers[i].stats + offset);
		n += atomic_load_explicit(f, memory_order_relaxed);
	}
	return n;
}

static void traffic(struct broker *b, struct textbuf *t)
{
	static const char *const reasons[DROP_REASONS] = {
		"queue_full", "offline_qos0", "too_large", "expired", "denied", "no_memory"};

	one(t, "midge_clients_connected", "gauge", "Clients connected now.",
	    (unsigned long long)atomic_load(&b->clients_connected));
	one(t, "midge_clients_maximum", "gauge", "Most clients connected at once.",
	    (unsigned long long)atomic_load(&b->clients_max));
	one(t, "midge_connections_total", "counter", "CONNECTs accepted.", SUM(connections));
	one(t, "midge_sockets_total", "counter", "Sockets accepted.", SUM(sockets));
	one(t, "midge_sessions", "gauge", "Sessions, connected or not.", SUM(sessions));
	one(t, "midge_sessions_expired_total", "counter", "Sessions that expired.", SUM(expired));
	head(t, "midge_messages_received_total", "counter", "PUBLISH packets received, by QoS.");
	for (int q = 0; q < 3; q++)
		textbuf_printf(t, "midge_messages_received_total{qos=\"%d\"} %llu\n", q,
			       sum_workers(b, offsetof(struct worker_stats, pub_received_qos) +
						      (size_t)q * sizeof(_Atomic uint64_t)));
	head(t, "midge_messages_sent_total", "counter", "PUBLISH packets sent, by QoS.");
	for (int q = 0; q < 3; q++)
		textbuf_printf(t, "midge_messages_sent_total{qos=\"%d\"} %llu\n", q,
			       sum_workers(b, offsetof(struct worker_stats, pub_sent_qos) +
						      (size_t)q * sizeof(_Atomic uint64_t)));
	head(t, "midge_messages_dropped_total", "counter", "Messages not delivered, by reason.");
	for (int r = 0; r < DROP_REASONS; r++)
		textbuf_printf(t, "midge_messages_dropped_total{reason=\"%s\"} %llu\n", reasons[r],
			       sum_workers(b, offsetof(struct worker_stats, dropped) +
						      (size_t)r * sizeof(_Atomic uint64_t)));
	one(t, "midge_packets_received_total", "counter", "MQTT packets received.", SUM(msgs_received));
	one(t, "midge_packets_sent_total", "counter", "MQTT packets sent.", SUM(msgs_sent));
	one(t, "midge_bytes_received_total", "counter", "Bytes received.", SUM(bytes_received));
	one(t, "midge_bytes_sent_total", "counter", "Bytes sent.", SUM(bytes_sent));
	one(t, "midge_publish_bytes_received_total", "counter", "Payload bytes received.",
	    SUM(pub_bytes_received));
	one(t, "midge_publish_bytes_sent_total", "counter", "Payload bytes sent.", SUM(pub_bytes_sent));
	one(t, "midge_queued_messages", "gauge", "Messages queued for sessions.", SUM(queued));
	one(t, "midge_inflight_messages", "gauge", "QoS 1/2 messages in flight to clients.",
	    SUM(inflight));
}

static void state(struct broker *b, struct textbuf *t)
{
	size_t subs, retained;

	pthread_rwlock_rdlock(&b->sub_lock);
	subs = b->subs.count;
	pthread_rwlock_unlock(&b->sub_lock);
	pthread_rwlock_rdlock(&b->retain_lock);
	retained = b->retained.count;
	pthread_rwlock_unlock(&b->retain_lock);
	one(t, "midge_subscriptions", "gauge", "Subscriptions.", subs);
	one(t, "midge_retained_messages", "gauge", "Retained messages.", retained);
	one(t, "midge_messages_stored", "gauge", "Messages alive in memory.", message_live_count());
	one(t, "midge_heap_bytes", "gauge", "Heap the broker allocated.", mem_current());
	one(t, "midge_uptime_seconds", "gauge", "Seconds since the broker started.",
	    (unsigned long long)(time(NULL) - b->start_time));
	head(t, "midge_listener_connections", "gauge", "Open connections per listener.");
	for (unsigned i = 0; i < b->nlisteners; i++) {
		const struct config_listener *lc = &b->cfg->listeners[i];
		textbuf_printf(t, "midge_listener_connections{listener=\"");
		if (lc->unix_path)
			label(t, lc->unix_path);
		else
			textbuf_printf(t, "%u", b->listeners[i].port);
		textbuf_printf(t, "\",protocol=\"%s\"} %d\n",
			       lc->protocol == LISTENER_WEBSOCKETS ? "websockets"
			       : lc->protocol == LISTENER_HTTP	   ? "http"
								   : "mqtt",
			       atomic_load(&b->listeners[i].connections));
	}
}

static void plugins(struct broker *b, struct textbuf *t)
{
	struct plugin_host *h = b->plugins;

	head(t, "midge_plugin_calls_total", "counter", "Calls of a plugin's event handler.");
	head(t, "midge_plugin_errors_total", "counter", "Failed calls of a plugin's event handler.");
	head(t, "midge_plugin_seconds_total", "counter", "Time spent in a plugin's event handler.");
	/* Instances live until the broker ends: a reload adds to the list, never frees. */
	for (struct midge_plugin *p = h ? h->head : NULL; p; p = p->next_in_host) {
		if (p->retired)
			continue;
		for (int e = 1; e < MIDGE_EVT_LIMIT; e++) {
			uint64_t calls, errors, ns;
			if (!p->handlers[e].cb)
				continue;
			plugin_stats_sum(p, e, &calls, &errors, &ns);
			static const char *const kinds[] = {"calls_total", "errors_total", "seconds_total"};
			for (int k = 0; k < 3; k++) {
				textbuf_printf(t, "midge_plugin_%s{plugin=\"", kinds[k]);
				label(t, p->name);
				textbuf_printf(t, "\",event=\"%s\"} ", plugin_event_name(e));
				if (k == 2)
					textbuf_printf(t, "%.9f\n", (double)ns / 1e9);
				else
					textbuf_printf(t, "%llu\n",
						       (unsigned long long)(k == 0 ? calls : errors));
			}
		}
	}
}

static void copy_number(struct message *m, void *arg)
{
	char *value = arg;

	if (m->payload_len < 32 && m->payload_len > 0 &&
	    strspn((const char *)m->payload, "0123456789") >= m->payload_len) {
		memcpy(value, m->payload, m->payload_len);
		value[m->payload_len] = '\0';
	}
}

/* Numbers plugins publish as retained $SYS messages (the Lua plugin's cache, say). */
static void retained_number(struct broker *b, struct textbuf *t, const char *topic,
			    const char *name, const char *help)
{
	char value[32] = "";

	pthread_rwlock_rdlock(&b->retain_lock);
	(void)retain_match(&b->retained, topic, strlen(topic), (int64_t)time(NULL), copy_number,
			   value);
	pthread_rwlock_unlock(&b->retain_lock);
	if (!value[0])
		return;
	head(t, name, "counter", help);
	textbuf_printf(t, "%s %s\n", name, value);
}

static void extras(struct broker *b, struct textbuf *t)
{
	struct store_stats ss;

	retained_number(b, t, "$SYS/broker/lua/cache/hits", "midge_lua_cache_hits_total",
			"Lua decisions answered from the cache.");
	retained_number(b, t, "$SYS/broker/lua/cache/misses", "midge_lua_cache_misses_total",
			"Lua decisions the scripts were asked for.");
	if (store_stats(b, &ss)) {
		one(t, "midge_persistence_commits_total", "counter", "Store write transactions.",
		    ss.commits);
		one(t, "midge_persistence_batches_total", "counter", "Worker batches committed.",
		    ss.batches);
		one(t, "midge_persistence_failed_total", "counter", "Batches that failed to commit.",
		    ss.failed);
		head(t, "midge_persistence_commit_seconds_total", "counter",
		     "Time spent committing (durable per the sync mode).");
		textbuf_printf(t, "midge_persistence_commit_seconds_total %.9f\n",
			       (double)ss.commit_ns / 1e9);
		head(t, "midge_persistence_commit_seconds_max", "gauge", "The longest commit.");
		textbuf_printf(t, "midge_persistence_commit_seconds_max %.9f\n",
			       (double)ss.commit_ns_max / 1e9);
	}
	head(t, "midge_bridge_connected", "gauge", "1 while a bridge is connected.");
	head(t, "midge_bridge_messages_total", "counter", "Messages that crossed a bridge.");
	for (size_t i = 0; i < bridges_count(b); i++) {
		struct bridge_stats bs;
		bridge_stats(b, i, &bs);
		textbuf_printf(t, "midge_bridge_connected{bridge=\"");
		label(t, bs.name);
		textbuf_printf(t, "\"} %d\n", bs.connected ? 1 : 0);
		for (int out = 0; out < 2; out++) {
			textbuf_printf(t, "midge_bridge_messages_total{bridge=\"");
			label(t, bs.name);
			textbuf_printf(t, "\",direction=\"%s\"} %llu\n", out ? "out" : "in",
				       (unsigned long long)(out ? bs.messages_out : bs.messages_in));
		}
	}
}

static void cluster_shared(struct broker *b, struct textbuf *t)
{
	struct cluster_shared_stats ss;

	cluster_get_shared_stats(b, &ss);
	one(t, "midge_cluster_shared_groups", "gauge",
	    "Shared subscriptions with members here, followed by NATS queue groups.", ss.groups);
	one(t, "midge_cluster_shared_received_total", "counter",
	    "Messages NATS picked this node for, for a shared subscription.", ss.received);
	one(t, "midge_cluster_shared_links_up", "gauge",
	    "Connections for shared subscriptions that reach their NATS server.", ss.links_up);
}

static void cluster(struct broker *b, struct textbuf *t)
{
	struct cluster_stats cs;

	cluster_get_stats(b, &cs);
	if (!cs.enabled)
		return;
	head(t, "midge_cluster_connected", "gauge", "1 while this node reaches NATS.");
	textbuf_printf(t, "midge_cluster_connected{node=\"");
	label(t, cs.node);
	textbuf_printf(t, "\"} %d\n", cs.connected ? 1 : 0);
	one(t, "midge_cluster_messages_sent_total", "counter",
	    "Messages sent to the other nodes.", cs.sent);
	one(t, "midge_cluster_messages_received_total", "counter",
	    "Messages received from the other nodes.", cs.received);
	one(t, "midge_cluster_messages_dropped_total", "counter",
	    "Messages not sent (NATS buffer full) or not decodable.", cs.dropped);
	one(t, "midge_cluster_messages_confirmed_total", "counter",
	    "QoS 1/2 messages JetStream confirmed before their publisher's acknowledgement.",
	    cs.confirmed);
	one(t, "midge_cluster_messages_unconfirmed_total", "counter",
	    "QoS 1/2 messages JetStream refused or did not confirm in time (publisher disconnected).",
	    cs.unconfirmed);
	one(t, "midge_cluster_reconnects_total", "counter", "Reconnections to NATS.",
	    cs.reconnects);
	one(t, "midge_cluster_interest", "gauge", "Filters this node subscribes to on NATS.",
	    cs.interest);
	one(t, "midge_cluster_nodes_gone_total", "counter",
	    "Dead nodes this node claimed (and fired the wills of).", cs.nodes_gone);
	one(t, "midge_cluster_wills_fired_total", "counter",
	    "Wills of clients of dead nodes this node published.", cs.wills_fired);
	cluster_shared(b, t);
}

void metrics_render(struct broker *b, struct textbuf *t)
{
	traffic(b, t);
	state(b, t);
	plugins(b, t);
	extras(b, t);
	cluster(b, t);
}

bool metrics_degraded(const struct broker *b, const char **why)
{
	struct cluster_stats cs;

	cluster_get_stats(b, &cs);
	if (cs.enabled && !cs.connected) {
		*why = "cluster: NATS unreachable, local delivery only";
		return true;
	}
	*why = NULL;
	return false;
}

bool metrics_ready(const struct broker *b, const char **why)
{
	if (!atomic_load(&b->running)) {
		*why = "starting or stopping";
		return false;
	}
	if (b->cfg->persistence && !store_enabled(b)) {
		*why = "the store is not open";
		return false;
	}
	*why = NULL;
	return true;
}
