/*
 * cluster_shared.c: shared subscriptions across the cluster (cluster.h).
 *
 * A node with members of $share/<group>/<filter> holds NATS queue
 * subscriptions on the filter's subjects, all in one queue group named after
 * prefix, group and filter (cluster_wire.h). NATS gives each message to one
 * queue subscriber of the whole cluster, so to one node, which hands it to a
 * worker as INBOX_CLUSTER_SHARED; route.c then picks one local member of
 * that group only. Routing everywhere else leaves shared groups out while
 * this works (cluster_shares_via_nats()), so no node picks a member itself.
 *
 * The queue subscriptions live on connections of their own, the links. The
 * main connection says NoEcho, so NATS would never offer this node's own
 * messages to queue subscriptions on it, and its members would only get what
 * other nodes publish. Turning echo on there instead would send every
 * message back to the node that published it whenever it has local interest;
 * a link only gets what NATS picked this node for.
 *
 * One link per NATS server listed, each pinned to its server: NATS gives a
 * queue group's message to a subscriber on the publisher's own NATS server
 * when there is one, so with a single connection per node the members of
 * the node that happens to share a server with a publisher would get all of
 * its messages. With a link on every server, each server has a subscription
 * of every node with members, and NATS picks among them at random: the load
 * is spread over the nodes wherever the publisher is. A link whose server is
 * down waits for it (publishers there moved away too).
 *
 * The table of groups is changed under the broker's sub_lock (write), as the
 * trie calls cluster_shared_interest(). Its entries are referenced by the
 * table, by each of their subscriptions until libnats says it is done, and by
 * each message on its way to a worker; the last reference frees.
 */
#include "config.h"

#include "cluster.h"
#include "cluster_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "broker.h"
#include "cluster_wire.h"
#include "log.h"
#include "message.h"
#include "tnode.h"
#include "worker.h"

/*
 * The kinds of message a shared group follows: every kind a subscriber gets
 * live (retained messages are live messages too; only the replay of stored
 * retained messages on subscribing skips shared subscriptions). A new kind
 * of live message is added here.
 */
static const char *const share_kinds[] = {CLUSTER_KIND_MSG, CLUSTER_KIND_QOS, CLUSTER_KIND_RETAIN};
#define NKINDS (sizeof(share_kinds) / sizeof(share_kinds[0]))
/* Subscriptions per group and link: each kind's one or two subjects. */
#define SUBS_PER_LINK (NKINDS * 2)

/* As cluster_nats.c's subscriptions: how much one may hold before libnats drops. */
#define PENDING_MSGS (1 << 20)
#define PENDING_BYTES (512 << 20)

/* A connection that holds queue subscriptions, pinned to one NATS server. */
struct shared_link {
	struct cluster *c;
	natsConnection *nc;
	natsOptions *opts;
	char *url;
	_Atomic bool connected;
	bool closed;           /* its closed callback ran (c->closed_lock) */
};

struct share_entry {
	struct cluster_share share; /* first: cluster_share_unref() frees the entry */
	struct cluster *c;
	struct share_entry *next;
	/* SUBS_PER_LINK per link (NULL where none), then the group and the filter. */
	natsSubscription *subs[];
};

/* ---- The links ---------------------------------------------------------------------- */

static void link_up(natsConnection *nc, void *closure)
{
	struct shared_link *l = closure;

	(void)nc;
	if (!atomic_exchange(&l->connected, true) && atomic_fetch_add(&l->c->shared_up, 1) == 0)
		log_info("Cluster: node %s: shared subscriptions go through NATS queue groups.",
			 l->c->node);
}

static void link_down(struct shared_link *l)
{
	struct cluster *c = l->c;

	if (atomic_exchange(&l->connected, false) && atomic_fetch_sub(&c->shared_up, 1) == 1 &&
	    !atomic_load(&c->stopping))
		log_warn("Warning: cluster: node %s picks shared subscription members locally "
			 "until NATS is back.", c->node);
}

static void on_link_disconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	link_down(closure);
}

static void on_link_closed(natsConnection *nc, void *closure)
{
	struct shared_link *l = closure;

	(void)nc;
	link_down(l);
	pthread_mutex_lock(&l->c->closed_lock);
	l->closed = true;
	pthread_cond_broadcast(&l->c->closed_cond);
	pthread_mutex_unlock(&l->c->closed_lock);
}

static void on_link_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
			  void *closure)
{
	struct shared_link *l = closure;

	(void)nc;
	(void)sub;
	log_warn("Warning: cluster: NATS (shared subscriptions, %s): %s.", l->url,
		 natsStatus_GetText(err));
}

static int link_start(struct shared_link *l, const struct config_cluster *cc)
{
	struct cluster *c = l->c;
	char name[300];
	natsStatus s = natsOptions_Create(&l->opts);

	snprintf(name, sizeof(name), "%s-shared", c->node);
	if (s == NATS_OK)
		s = natsOptions_SetURL(l->opts, l->url);
	/* Pinned: servers NATS tells about would move the link off its own. */
	if (s == NATS_OK)
		s = natsOptions_SetIgnoreDiscoveredServers(l->opts, true);
	if (s == NATS_OK)
		s = cluster_options_common(l->opts, cc);
	if (s == NATS_OK)
		s = natsOptions_SetName(l->opts, name);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(l->opts, true, link_up, l);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(l->opts, on_link_disconnected, l);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(l->opts, link_up, l);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(l->opts, on_link_closed, l);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(l->opts, on_link_error, l);
	if (s == NATS_OK) {
		s = natsConnection_Connect(&l->nc, l->opts);
		if (s == NATS_OK)
			link_up(l->nc, l);
		else if (s == NATS_NOT_YET_CONNECTED)
			s = NATS_OK; /* retried in the background, like the main connection */
	}
	if (s != NATS_OK) {
		log_err("Error: cluster: the NATS connection for shared subscriptions to %s: %s (%s).",
			l->url, natsStatus_GetText(s), nats_GetLastError(NULL));
		return -1;
	}
	return 0;
}

int cluster_shared_start(struct cluster *c)
{
	const struct config_cluster *cc = &c->b->cfg->cluster;

	c->shared_links = mem_calloc(cc->nats_servers.count, sizeof(*c->shared_links));
	if (!c->shared_links)
		return -1;
	c->nshared_links = cc->nats_servers.count;
	for (size_t i = 0; i < c->nshared_links; i++) {
		struct shared_link *l = &c->shared_links[i];
		l->c = c;
		l->url = mem_strdup(cc->nats_servers.items[i]);
		atomic_init(&l->connected, false);
		if (!l->url || link_start(l, cc) < 0)
			return -1;
	}
	return 0;
}

void cluster_shared_close(struct cluster *c)
{
	struct timespec until;
	bool done = true;

	for (size_t i = 0; i < c->nshared_links; i++)
		if (c->shared_links[i].nc)
			natsConnection_Close(c->shared_links[i].nc);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&c->closed_lock);
	for (size_t i = 0; i < c->nshared_links && done; i++)
		while (c->shared_links[i].nc && !c->shared_links[i].closed)
			if (pthread_cond_timedwait(&c->closed_cond, &c->closed_lock, &until) != 0) {
				done = false;
				break;
			}
	pthread_mutex_unlock(&c->closed_lock);
	if (!done)
		log_warn("Warning: cluster: the NATS connections for shared subscriptions did not "
			 "close within 5 s.");
	for (size_t i = 0; i < c->nshared_links; i++) {
		if (c->shared_links[i].nc)
			natsConnection_Destroy(c->shared_links[i].nc);
		if (c->shared_links[i].opts)
			natsOptions_Destroy(c->shared_links[i].opts);
		mem_free(c->shared_links[i].url);
	}
	mem_free(c->shared_links);
	c->shared_links = NULL;
	c->nshared_links = 0;
}

bool cluster_shares_via_nats(const struct cluster *c)
{
	/* Both: the main connection carries this node's messages to the groups. */
	return atomic_load_explicit(&c->connected, memory_order_relaxed) &&
	       atomic_load_explicit(&c->shared_up, memory_order_relaxed) > 0;
}

/* ---- Receiving -------------------------------------------------------------------- */

void cluster_share_unref(struct cluster_share *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1)
		mem_free(s);
}

/*
 * A message NATS picked this node for, in group e. Unlike cluster_on_msg()
 * it keeps this node's own messages (their publisher left the groups out)
 * and drops no duplicates: a queue group gets each message once.
 */
static void on_shared_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct share_entry *e = closure;
	struct cluster *c = e->c;
	struct broker *b = c->b;
	struct cluster_env env;
	struct message *m;

	(void)nc;
	(void)sub;
	/* The group had the first attempt, maybe on another node: the ids that plain
	 * subscribers drop copies by cannot tell across nodes. */
	const char *resent = NULL;
	if (natsMsgHeader_Get(msg, CLUSTER_RESEND_HEADER, &resent) == NATS_OK)
		goto out;
	if (cluster_env_decode((const uint8_t *)natsMsg_GetData(msg),
			       (size_t)natsMsg_GetDataLength(msg), &env) < 0) {
		atomic_fetch_add(&c->dropped, 1);
		log_debug("Cluster: dropped an undecodable message on %s.", natsMsg_GetSubject(msg));
		goto out;
	}
	if (env.groups_served)
		goto out; /* its node served the groups itself while it had no NATS */
	m = message_new(env.topic, env.topic_len, env.payload, env.payload_len, env.qos,
			env.retain, env.props, env.props_len);
	if (!m) {
		atomic_fetch_add(&c->dropped, 1);
		log_err("Error: out of memory receiving a shared cluster message on %.*s.",
			(int)env.topic_len, env.topic);
		goto out;
	}
	if (env.expiry)
		m->expires = m->created + env.expiry;
	atomic_fetch_add(&c->shared_received, 1);
	atomic_fetch_add(&e->share.refs, 1);
	/* The worker cluster_on_msg() uses for this origin: its order is kept. */
	worker_post(&b->workers[env.instance % b->nworkers],
		    &(struct inbox_item){.kind = INBOX_CLUSTER_SHARED, .msg = m, .ptr = &e->share});
out:
	natsMsg_Destroy(msg);
}

/* A queue subscription is closed and its handler returned for the last time. */
static void on_share_sub_complete(void *closure)
{
	struct share_entry *e = closure;
	struct cluster *c = e->c;

	pthread_mutex_lock(&c->closed_lock);
	c->live_subs--;
	pthread_cond_broadcast(&c->closed_cond);
	pthread_mutex_unlock(&c->closed_lock);
	cluster_share_unref(&e->share);
}

static natsSubscription *queue_subscribe(struct share_entry *e, natsConnection *nc,
					 const char *subject, const char *queue)
{
	struct cluster *c = e->c;
	natsSubscription *sub = NULL;
	natsStatus s = natsConnection_QueueSubscribe(&sub, nc, subject, queue, on_shared_msg, e);

	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(sub, PENDING_MSGS, PENDING_BYTES);
	if (s == NATS_OK) {
		pthread_mutex_lock(&c->closed_lock);
		s = natsSubscription_SetOnCompleteCB(sub, on_share_sub_complete, e);
		if (s == NATS_OK) {
			c->live_subs++;
			atomic_fetch_add(&e->share.refs, 1);
		}
		pthread_mutex_unlock(&c->closed_lock);
	}
	if (s != NATS_OK) {
		log_err("Error: cluster: unable to subscribe to %s in queue group %s: %s.", subject,
			queue, natsStatus_GetText(s));
		if (sub)
			natsSubscription_Destroy(sub);
		return NULL;
	}
	log_debug("Cluster: queue group %s on %s.", queue, subject);
	return sub;
}

/* ---- The groups this node has members of ------------------------------------------- */

static struct share_entry **slot(struct cluster *c, const char *group, size_t glen,
				 const char *filter, size_t flen)
{
	struct share_entry **e = &c->shares[tnode_hash(filter, flen) % CLUSTER_INTEREST_BUCKETS];

	while (*e && !((*e)->share.glen == glen && memcmp((*e)->share.group, group, glen) == 0 &&
		       (*e)->share.flen == flen && memcmp((*e)->share.filter, filter, flen) == 0))
		e = &(*e)->next;
	return e;
}

/* Unsubscribes e (its handlers may still run) and drops the table's reference. */
static void entry_drop(struct share_entry *e)
{
	for (size_t i = 0; i < e->c->nshared_links * SUBS_PER_LINK; i++) {
		if (e->subs[i]) {
			natsSubscription_Unsubscribe(e->subs[i]);
			natsSubscription_Destroy(e->subs[i]);
		}
	}
	cluster_share_unref(&e->share);
}

static struct share_entry *entry_new(struct cluster *c, const char *group, size_t glen,
				     const char *filter, size_t flen)
{
	size_t nsubs = c->nshared_links * SUBS_PER_LINK;
	struct share_entry *e = mem_calloc(1, sizeof(*e) + nsubs * sizeof(e->subs[0]) + glen + flen);
	char *text;

	if (!e)
		return NULL;
	atomic_init(&e->share.refs, 1);
	e->c = c;
	text = (char *)&e->subs[nsubs];
	memcpy(text, group, glen);
	memcpy(text + glen, filter, flen);
	e->share.group = text;
	e->share.glen = glen;
	e->share.filter = text + glen;
	e->share.flen = flen;
	return e;
}

/* Queue subscriptions of e on every link, for every subject of every kind its filter needs. */
static int subscribe_all(struct share_entry *e)
{
	struct cluster *c = e->c;
	size_t flen = e->share.flen, smax = cluster_subject_max(c->prefix, flen);
	char *queue = mem_malloc(cluster_queue_name_max(c->prefix, e->share.glen, flen));
	char *subj[2] = {mem_malloc(smax), mem_malloc(smax)};
	int rc = -1;

	if (!queue || !subj[0] || !subj[1])
		goto out;
	cluster_queue_name(queue, c->prefix, e->share.group, e->share.glen, e->share.filter, flen);
	rc = 0;
	for (size_t k = 0; k < NKINDS; k++) {
		int n = cluster_subjects_for_filter(subj, c->prefix, share_kinds[k],
						       e->share.filter, flen);
		for (size_t l = 0; l < c->nshared_links; l++) {
			for (int i = 0; i < n; i++) {
				natsSubscription **at = &e->subs[l * SUBS_PER_LINK + k * 2 + (size_t)i];
				*at = queue_subscribe(e, c->shared_links[l].nc, subj[i], queue);
				if (!*at)
					rc = -1;
			}
		}
	}
out:
	mem_free(queue);
	mem_free(subj[0]);
	mem_free(subj[1]);
	return rc;
}

void cluster_shared_interest(void *arg, const char *group, size_t glen, const char *filter,
			     size_t flen, bool on)
{
	struct cluster *c = arg;
	struct share_entry **at = slot(c, group, glen, filter, flen), *e = *at;

	if (!on) {
		if (e) {
			*at = e->next;
			entry_drop(e);
			atomic_fetch_sub(&c->shared_groups, 1);
		}
		return;
	}
	if (e)
		return;
	e = entry_new(c, group, glen, filter, flen);
	if (!e) {
		log_err("Error: out of memory following shared subscription $share/%.*s/%.*s in the "
			"cluster.", (int)glen, group, (int)flen, filter);
		return;
	}
	/* Kept even when a subscription failed (logged): the others still work. */
	if (subscribe_all(e) < 0)
		log_err("Error: cluster: members of $share/%.*s/%.*s here may miss messages.",
			(int)glen, group, (int)flen, filter);
	*at = e;
	atomic_fetch_add(&c->shared_groups, 1);
}

void cluster_shared_clear(struct cluster *c)
{
	for (size_t i = 0; i < CLUSTER_INTEREST_BUCKETS; i++) {
		while (c->shares[i]) {
			struct share_entry *e = c->shares[i];
			c->shares[i] = e->next;
			entry_drop(e);
		}
	}
	atomic_store(&c->shared_groups, 0);
}

void cluster_get_shared_stats(const struct broker *b, struct cluster_shared_stats *st)
{
	const struct cluster *c = b->cluster;

	memset(st, 0, sizeof(*st));
	if (!c)
		return;
	st->groups = atomic_load(&c->shared_groups);
	st->received = atomic_load(&c->shared_received);
	st->links_up = atomic_load(&c->shared_up);
	st->links = c->nshared_links;
}
