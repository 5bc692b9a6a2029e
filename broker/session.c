/*
 * session.c: session lifecycle, the worker's session table, and the small
 * per-session sets (subscriptions, incoming QoS 2 ids). Delivery of
 * messages into a session lives in deliver.c.
 */
#include "config.h"

#include "session.h"

#include "alloc.h"
#include "bridge.h"
#include "broker.h"
#include "cluster.h"
#include "log.h"
#include "message.h"
#include "policy.h"
#include "store.h"
#include "throttle.h"
#include "tnode.h"
#include "will.h"
#include "worker.h"

#include <stddef.h>
#include <string.h>
#include <time.h>

/*
 * The session's small arrays keep no capacity: it is at least the smallest
 * power of two >= max(n, min), because they grow (doubling, from min) only
 * when n is 0 or such a power of two; shrinking n leaves the memory. So an
 * array is full (maybe) exactly then, and regrowing to 2n (or min) never
 * loses an element.
 */
static bool array_full(uint32_t n, uint32_t min)
{
	return n == 0 || (n >= min && (n & (n - 1)) == 0);
}

uint32_t session_id_hash(const char *client_id, size_t len)
{
	return tnode_hash(client_id, len);
}

void session_table_init(struct session_table *t)
{
	t->buckets = NULL;
	t->nbuckets = 0;
	t->count = 0;
}

void session_table_free(struct session_table *t)
{
	mem_free(t->buckets);
	session_table_init(t);
}

struct session *session_find(struct session_table *t, const char *client_id)
{
	uint32_t h;

	if (!t->nbuckets)
		return NULL;
	h = session_id_hash(client_id, strlen(client_id));
	for (struct session *s = t->buckets[h & (t->nbuckets - 1)]; s; s = s->hnext)
		if (s->hash == h && strcmp(s->client_id, client_id) == 0)
			return s;
	return NULL;
}

static int table_grow(struct session_table *t)
{
	size_t n = t->nbuckets ? t->nbuckets * 2 : 64;
	struct session **b = mem_calloc(n, sizeof(*b));

	if (!b)
		return -1;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct session *s = t->buckets[i];
		while (s) {
			struct session *next = s->hnext;
			s->hnext = b[s->hash & (n - 1)];
			b[s->hash & (n - 1)] = s;
			s = next;
		}
	}
	mem_free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
	return 0;
}

static void table_remove(struct session_table *t, struct session *s)
{
	struct session **pp = &t->buckets[s->hash & (t->nbuckets - 1)];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = s->hnext;
		t->count--;
	}
	s->hnext = NULL;
}

static void on_expiry(struct ev_loop *loop, struct ev_timer *t)
{
	struct session_offline *off =
		(struct session_offline *)((char *)t - offsetof(struct session_offline, expiry_timer));
	struct session *s = off->session;

	(void)loop;
	if (s->client)
		return;
	log_notice("Expiring client %s due to timeout.", s->client_id);
	STAT_ADD(s->worker->stats.expired, 1);
	if (s->worker->broker->cluster)
		cluster_session_ended(s->worker->broker->cluster, s);
	session_destroy(s);
}

struct session *session_new(struct worker *w, const char *client_id)
{
	struct session_table *t = &w->sessions;
	struct session *s;
	size_t len = strlen(client_id);

	/* Up to two sessions a bucket: lookups happen at CONNECT, the table is per session. */
	if ((t->count + 1 > 2 * t->nbuckets) && table_grow(t) < 0)
		return NULL;
	s = mem_calloc(1, offsetof(struct session, client_id) + len + 1);
	if (!s)
		return NULL;
	memcpy(s->client_id, client_id, len + 1);
	atomic_init(&s->refs, 1);
	s->worker = w;
	s->hash = session_id_hash(client_id, len);
	s->id = atomic_fetch_add(&w->broker->next_session_id, 1) + 1;
	s->hnext = t->buckets[s->hash & (t->nbuckets - 1)];
	t->buckets[s->hash & (t->nbuckets - 1)] = s;
	t->count++;
	STAT_ADD(w->stats.sessions, 1);
	return s;
}

void session_unref(struct session *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	mem_free(s->username);
	mem_free(s->off); /* its timers were stopped when the session ended */
	mem_free(s);
}

struct session_msgs *session_msgs(struct session *s)
{
	if (!s->msgs)
		s->msgs = mem_calloc(1, sizeof(*s->msgs));
	return s->msgs;
}

static void release_msgs(struct session *s)
{
	struct session_msgs *q = s->msgs;

	if (!q)
		return;
	STAT_SUB(s->worker->stats.inflight, q->ninflight);
	STAT_SUB(s->worker->stats.queued, q->q_len);
	for (uint32_t i = 0; i < q->ninflight; i++)
		message_unref(q->inflight[i].msg);
	mem_free(q->inflight);
	for (uint32_t i = 0; i < q->q_len; i++)
		message_unref(q->queue[(q->q_head + i) % q->q_cap].msg);
	mem_free(q->queue);
	mem_free(q->qos2_in);
	mem_free(q->cluster);
	mem_free(q);
	s->msgs = NULL;
}

void session_destroy(struct session *s)
{
	struct broker *b = s->worker->broker;

	/* The will goes out when the session ends, if its delay has not run out
	 * first [MQTT-3.1.3-9]; routed later, when this session is gone. */
	will_session_end(s);
	store_session_forget(s);
	bridge_session_gone(s);
	if (s->subs) {
		pthread_rwlock_wrlock(&b->sub_lock);
		for (struct session_sub *sub = s->subs; sub; sub = sub->next)
			subtree_remove_any(&b->subs, sub->filter, sub->len, s);
		pthread_rwlock_unlock(&b->sub_lock);
	}
	while (s->subs) {
		struct session_sub *next = s->subs->next;
		mem_free(s->subs);
		s->subs = next;
	}
	cluster_seen_free(s);
	release_msgs(s);
	if (s->off) {
		ev_timer_stop(s->worker->loop, &s->off->expiry_timer);
		mem_free(s->off);
		s->off = NULL;
	}
	table_remove(&s->worker->sessions, s);
	STAT_SUB(s->worker->stats.sessions, 1);
	s->dead = true;
	session_unref(s);
}

bool session_is_online(const struct session *s)
{
	return atomic_load_explicit(&s->online, memory_order_relaxed);
}

struct session_offline *session_offline(struct session *s)
{
	struct session_offline *off = s->off;

	if (off)
		return off;
	if (!(off = mem_calloc(1, sizeof(*off))))
		return NULL;
	off->session = s;
	ev_timer_init(&off->expiry_timer, on_expiry);
	will_init(off);
	s->off = off;
	return off;
}

void session_take_over(struct session *s)
{
	if (!s->off)
		return;
	ev_timer_stop(s->worker->loop, &s->off->expiry_timer);
	will_cancel(s); /* taken over before the will's delay ran out [MQTT-3.1.3-9] */
	mem_free(s->off);
	s->off = NULL;
}

void session_detach(struct session *s)
{
	struct worker *w = s->worker;
	struct session_offline *off;

	s->client = NULL;
	atomic_store_explicit(&s->online, false, memory_order_relaxed);
	throttle_session_offline(s);
	if (s->expiry_interval == 0) {
		if (w->broker->cluster)
			cluster_session_ended(w->broker->cluster, s);
		session_destroy(s);
		return;
	}
	if (!(off = session_offline(s))) {
		log_err("Error: out of memory keeping the session of client %s: it ends now.",
			s->client_id);
		session_destroy(s);
		return;
	}
	off->disconnected_at = (int64_t)time(NULL);
	store_session_save(s);
	if (s->expiry_interval != SESSION_EXPIRY_NEVER)
		ev_timer_start(w->loop, &off->expiry_timer,
			       ev_now(w->loop) + (int64_t)s->expiry_interval * 1000);
}

size_t session_recheck_subscriptions(struct session *s)
{
	struct worker *w = s->worker;
	const struct acl_db *acl = s->listener < w->policy->nlisteners ?
					   w->policy->listeners[s->listener].acl : NULL;
	size_t dropped = 0;

	if (!acl)
		return 0;
	for (struct session_sub **pp = &s->subs, *sub; (sub = *pp) != NULL;) {
		if (acl_check(acl, s->username, s->client_id, sub->filter, sub->len, ACL_SUBSCRIBE)) {
			pp = &sub->next;
			continue;
		}
		log_notice("Client %s loses its subscription to %s: the reloaded ACL denies it.",
			   s->client_id, sub->filter);
		pthread_rwlock_wrlock(&w->broker->sub_lock);
		subtree_remove_any(&w->broker->subs, sub->filter, sub->len, s);
		pthread_rwlock_unlock(&w->broker->sub_lock);
		store_sub_forget(s, sub->filter, sub->len);
		*pp = sub->next;
		mem_free(sub);
		dropped++;
	}
	return dropped;
}

/* Where the subscription to filter is linked in, or the list's end when there is none. */
static struct session_sub **sub_find(struct session *s, const char *filter, size_t len)
{
	struct session_sub **pp = &s->subs;

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->len == len && memcmp((*pp)->filter, filter, len) == 0)
			break;
	return pp;
}

int session_sub_put(struct session *s, const char *filter, size_t len, uint8_t qos,
		    uint8_t flags, uint32_t subid)
{
	struct session_sub **pp = sub_find(s, filter, len);
	struct session_sub *sub = *pp;
	int rc = 0;

	if (!sub) {
		if (!(sub = mem_malloc(offsetof(struct session_sub, filter) + len + 1)))
			return -1;
		memcpy(sub->filter, filter, len);
		sub->filter[len] = '\0';
		sub->len = (uint16_t)len;
		sub->next = NULL;
		*pp = sub;
		rc = 1;
	}
	sub->qos = qos;
	sub->flags = flags;
	sub->subid = subid;
	return rc;
}

bool session_sub_remove(struct session *s, const char *filter, size_t len)
{
	struct session_sub **pp = sub_find(s, filter, len);
	struct session_sub *sub = *pp;

	if (!sub)
		return false;
	*pp = sub->next;
	mem_free(sub);
	return true;
}

bool session_qos2_in_has(const struct session *s, uint16_t mid)
{
	const struct session_msgs *q = s->msgs;

	for (uint32_t i = 0; q && i < q->nqos2_in; i++)
		if (q->qos2_in[i] == mid)
			return true;
	return false;
}

int session_qos2_in_add(struct session *s, uint16_t mid)
{
	struct session_msgs *q;

	if (session_qos2_in_has(s, mid))
		return 0;
	if (!(q = session_msgs(s)))
		return -1;
	if (array_full(q->nqos2_in, 4)) {
		uint32_t cap = q->nqos2_in ? q->nqos2_in * 2 : 4;
		uint16_t *ids = mem_realloc(q->qos2_in, cap * sizeof(*ids));
		if (!ids)
			return -1;
		q->qos2_in = ids;
	}
	q->qos2_in[q->nqos2_in++] = mid;
	return 0;
}

bool session_qos2_in_remove(struct session *s, uint16_t mid)
{
	struct session_msgs *q = s->msgs;

	for (uint32_t i = 0; q && i < q->nqos2_in; i++) {
		if (q->qos2_in[i] == mid) {
			q->qos2_in[i] = q->qos2_in[--q->nqos2_in];
			if (q->nqos2_in == 0) {
				mem_free(q->qos2_in);
				q->qos2_in = NULL;
			}
			return true;
		}
	}
	return false;
}

struct session_cluster *session_cluster(struct session *s)
{
	struct session_msgs *q = session_msgs(s);

	if (q && !q->cluster)
		q->cluster = mem_calloc(1, sizeof(*q->cluster));
	return q ? q->cluster : NULL;
}
