/*
 * route.c: message routing (see route.h).
 */
#include "config.h"

#include "route.h"

#include "alloc.h"
#include "broker.h"
#include "cluster.h"
#include "deliver.h"
#include "log.h"
#include "message.h"
#include "session.h"
#include "store.h"
#include "subtree.h"
#include "throttle.h"
#include "worker.h"

#include <stdlib.h>
#include <time.h>

static uint8_t delivery_qos(const struct config *cfg, uint8_t msg_qos, uint8_t granted)
{
	if (cfg->upgrade_outgoing_qos)
		return granted;
	return msg_qos < granted ? msg_qos : granted;
}

static int by_session(const void *a, const void *b)
{
	const struct inbox_item *x = a, *y = b;

	if (x->session == y->session)
		return 0;
	return (uintptr_t)x->session < (uintptr_t)y->session ? -1 : 1;
}

/*
 * Overlapping subscriptions of one session yield one copy at the highest
 * QoS [MQTT-3.3.5-1]. Only needed when several trie nodes matched.
 */
static size_t merge_duplicates(const struct worker *w, struct inbox_item *d, size_t n)
{
	size_t out = 0;

	qsort(d, n, sizeof(*d), by_session);
	for (size_t i = 0; i < n; i++) {
		if (out > 0 && d[out - 1].session == d[i].session) {
			struct inbox_item *keep = &d[out - 1];
			if (d[i].qos > keep->qos)
				keep->qos = d[i].qos;
			keep->retain |= d[i].retain;
			if (!keep->subid)
				keep->subid = d[i].subid;
			/* The duplicate's reference to a remote session is not needed. */
			if (d[i].session->worker != w)
				session_unref(d[i].session);
			continue;
		}
		d[out++] = d[i];
	}
	return out;
}

static int vec_reserve(struct item_vec *v, size_t n)
{
	if (n <= v->cap)
		return 0;
	size_t cap = v->cap ? v->cap * 2 : 16;
	while (cap < n)
		cap *= 2;
	struct inbox_item *items = mem_realloc(v->items, cap * sizeof(*items));
	if (!items)
		return -1;
	v->items = items;
	v->cap = cap;
	return 0;
}

void route_retain_local(struct worker *w, struct message *m)
{
	struct broker *b = w->broker;
	int rc;

	pthread_rwlock_wrlock(&b->retain_lock);
	/* Expired retained messages leave the store here, lazily [MQTT-3.3.2-5]. */
	(void)retain_expire_due(&b->retained, (int64_t)time(NULL));
	rc = retain_set(&b->retained, m);
	pthread_rwlock_unlock(&b->retain_lock);
	/* Logged outside the lock: a log line may be published (and retained) too. */
	if (rc < 0)
		log_err("Error: out of memory storing retained message on %s.", m->topic);
	else
		store_retained(w, m);
}

void route_publish(struct worker *w, struct message *m, const struct session *origin)
{
	route_publish_waiting(w, m, origin, NULL);
}

/* The first subscriber of deliveries d[0..n) a publisher should wait for, referenced. */
static struct session *congested_subscriber(const struct inbox_item *d, size_t n,
					    const struct session *origin)
{
	for (size_t i = 0; i < n; i++) {
		if (d[i].qos > 0 && d[i].session != origin && throttle_should_wait(d[i].session)) {
			session_ref(d[i].session);
			return d[i].session;
		}
	}
	return NULL;
}

static void route_here(struct worker *w, struct message *m, const struct session *origin,
		       struct session **wait_for, bool groups);

void route_publish_waiting(struct worker *w, struct message *m, const struct session *origin,
			   struct session **wait_for)
{
	struct cluster *cluster = w->broker->cluster;
	/* In a working cluster NATS picks the node for shared groups (cluster.h),
	 * except for messages that never leave this node. */
	bool groups = !cluster || !cluster_shares_via_nats(cluster) ||
		      cluster_topic_stays_here(m->topic, m->topic_len);

	route_here(w, m, origin, wait_for, groups);
	/* Without a cluster section this test is all the cluster costs. */
	if (__builtin_expect(cluster != NULL, 0))
		cluster_publish(cluster, m, w->index, groups);
}

void route_publish_local(struct worker *w, struct message *m)
{
	/* Shared groups get messages of other nodes by their queue subscriptions only. */
	route_here(w, m, NULL, NULL, false);
}

static void deliver_all(struct worker *w, struct message *m, struct inbox_item *d, size_t n);

void route_publish_shared(struct worker *w, struct message *m, const char *group, size_t glen,
			  const char *filter, size_t flen)
{
	struct broker *b = w->broker;
	const struct subscriber *sub;
	struct inbox_item d;

	w->match.preferred = session_is_online;
	pthread_rwlock_rdlock(&b->sub_lock);
	sub = subtree_pick_shared(&b->subs, group, glen, filter, flen, m->topic, m->topic_len,
				  &w->match);
	if (!sub) {
		/* The group went away while the message travelled. */
		pthread_rwlock_unlock(&b->sub_lock);
		return;
	}
	d = (struct inbox_item){
		.kind = INBOX_DELIVER, .session = sub->session, .msg = m, .subid = sub->subid,
		.qos = delivery_qos(w->cfg, m->qos, sub->qos),
		.retain = (sub->flags & SUBOPT_RETAIN_AS_PUBLISHED) ? m->retain : 0,
	};
	if (sub->session->worker != w)
		session_ref(sub->session);
	pthread_rwlock_unlock(&b->sub_lock);
	deliver_all(w, m, &d, 1);
}

static void route_here(struct worker *w, struct message *m, const struct session *origin,
		       struct session **wait_for, bool groups)
{
	struct broker *b = w->broker;
	struct item_vec *v = &w->route_buf;
	size_t n = 0;

	if (m->retain)
		route_retain_local(w, m);

	w->match.preferred = session_is_online;
	w->match.skip_groups = !groups;
	pthread_rwlock_rdlock(&b->sub_lock);
	/* On failure, deliver to what was found; logging waits until the lock is released
	 * (a log line may itself be published). */
	bool partial = subtree_match(&b->subs, m->topic, m->topic_len, &w->match) < 0;
	if (vec_reserve(v, w->match.nfound) < 0) {
		pthread_rwlock_unlock(&b->sub_lock);
		log_err("Error: out of memory routing a message on %s.", m->topic);
		return;
	}
	for (size_t i = 0; i < w->match.nfound; i++) {
		const struct subscriber *sub = w->match.found[i];
		struct inbox_item *d;

		if ((sub->flags & SUBOPT_NO_LOCAL) && sub->session == origin)
			continue;
		d = &v->items[n++];
		d->kind = INBOX_DELIVER;
		d->session = sub->session;
		d->qos = delivery_qos(w->cfg, m->qos, sub->qos);
		d->retain = (sub->flags & SUBOPT_RETAIN_AS_PUBLISHED) ? m->retain : 0;
		d->subid = sub->subid;
		d->msg = m;
		d->ptr = NULL;
		d->id = 0;
		/* A session of another worker must outlive the lock. */
		if (sub->session->worker != w)
			session_ref(sub->session);
	}
	pthread_rwlock_unlock(&b->sub_lock);
	if (partial)
		log_err("Error: out of memory routing a message on %s; some subscribers missed it.",
			m->topic);

	if (w->match.nodes_matched > 1 && n > 1)
		n = merge_duplicates(w, v->items, n);
	/* Looked at before delivering: a delivery may end a local session. */
	if (wait_for)
		*wait_for = w->cfg->backpressure ? congested_subscriber(v->items, n, origin) : NULL;
	deliver_all(w, m, v->items, n);
}

/* Hands m to the sessions of d[0..n), each referenced when of another worker. */
static void deliver_all(struct worker *w, struct message *m, struct inbox_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct inbox_item *d = &items[i];
		if (d->session->worker == w) {
			session_deliver(d->session, m, d->qos, d->retain, d->subid, 0);
		} else {
			/* Stored here, so the publisher's acknowledgement waits for it too. */
			if (d->qos > 0)
				d->id = store_delivery_new(w, d->session, m, d->qos, d->retain, false);
			d->msg = message_ref(m);
			worker_outbox_add(w, d); /* consumes both references */
		}
	}
}

struct retained_batch {
	struct message **msgs;
	size_t len;
	size_t cap;
	bool failed;
};

static void collect(struct message *m, void *arg)
{
	struct retained_batch *rb = arg;

	if (rb->len == rb->cap) {
		size_t cap = rb->cap ? rb->cap * 2 : 16;
		struct message **msgs = mem_realloc(rb->msgs, cap * sizeof(*msgs));
		if (!msgs) {
			rb->failed = true;
			return;
		}
		rb->msgs = msgs;
		rb->cap = cap;
	}
	rb->msgs[rb->len++] = message_ref(m);
}

void route_retained(struct worker *w, struct session *s, const char *filter, size_t len,
		    uint8_t granted_qos, uint32_t subid)
{
	struct broker *b = w->broker;
	struct retained_batch rb = {0};

	pthread_rwlock_rdlock(&b->retain_lock);
	retain_match(&b->retained, filter, len, (int64_t)time(NULL), collect, &rb);
	pthread_rwlock_unlock(&b->retain_lock);
	if (rb.failed)
		log_err("Error: out of memory sending retained messages for %s.", filter);
	for (size_t i = 0; i < rb.len; i++) {
		uint8_t qos = delivery_qos(w->cfg, rb.msgs[i]->qos, granted_qos);
		/* The body again: the worker that stored this retained message may not have
		 * handed its batch to the writer yet. */
		uint64_t seq = qos ? store_delivery_new(w, s, rb.msgs[i], qos, 1, true) : 0;
		session_deliver(s, rb.msgs[i], qos, 1, subid, seq);
		message_unref(rb.msgs[i]);
	}
	mem_free(rb.msgs);
}
