/*
 * cluster_nats.c: the cluster's NATS connection (see cluster.h): options,
 * connection state, publishing routed messages and handing received ones to
 * a worker.
 *
 * Threads: cluster_publish() runs on workers; the callbacks run on libnats's
 * threads (its reader, its reconnection thread and the one global message
 * delivery thread), which only decode, drop duplicates and post to a worker
 * inbox. Messages of one origin go to one worker, so their order is kept.
 */
#include "config.h"

#include "cluster.h"
#include "cluster_int.h"
#include "cluster_wills.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "broker.h"
#include "cluster_wire.h"
#include "log.h"
#include "message.h"
#include "subtree.h"
#include "worker.h"

/* A subscription may hold this much before libnats drops (a slow consumer). */
#define PENDING_MSGS (1 << 20)
#define PENDING_BYTES (512 << 20)
/* Scratch on the stack below this size; larger messages allocate. */
#define STACK_BUF 2048

/* ---- Connection state --------------------------------------------------------- */

static void on_connected(natsConnection *nc, void *closure)
{
	struct cluster *c = closure;
	char url[256] = "";

	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	atomic_store(&c->connected, true);
	log_notice("Cluster: node %s connected to NATS at %s.", c->node, url);
	if (c->jobs_running)
		cluster_jobs_kick(c);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct cluster *c = closure;

	(void)nc;
	/* Before connected turns false (readers look at it after), and only when it
	 * was true: failed reconnection attempts do not make the outage younger. */
	if (atomic_load(&c->connected))
		atomic_store(&c->lost_at, cluster_now_ms());
	if (atomic_exchange(&c->connected, false) && !atomic_load(&c->stopping))
		log_warn("Warning: cluster: node %s lost NATS; delivering locally until it is back.",
			 c->node);
}

/* The last callback libnats makes for a connection: after it c may go. */
static void on_closed(natsConnection *nc, void *closure)
{
	struct cluster *c = closure;

	(void)nc;
	atomic_store(&c->connected, false);
	pthread_mutex_lock(&c->closed_lock);
	c->closed = true;
	pthread_cond_broadcast(&c->closed_cond);
	pthread_mutex_unlock(&c->closed_lock);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	struct cluster *c = closure;

	atomic_fetch_add(&c->reconnects, 1);
	on_connected(nc, closure);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	(void)nc;
	(void)sub;
	(void)closure;
	log_warn("Warning: cluster: NATS: %s.", natsStatus_GetText(err));
}

natsStatus cluster_options_common(natsOptions *o, const struct config_cluster *cc)
{
	natsStatus s = natsOptions_SetAllowReconnect(o, true);

	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 250);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(o, 5000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(o, 2);
	/* One delivery thread for every subscription: arrival order is kept. */
	if (s == NATS_OK)
		s = natsOptions_UseGlobalMessageDelivery(o, true);
	if (s == NATS_OK && cc->nats_user)
		s = natsOptions_SetUserInfo(o, cc->nats_user, cc->nats_password);
	if (s == NATS_OK && cc->nats_token)
		s = natsOptions_SetToken(o, cc->nats_token);
	if (s == NATS_OK && (cc->nats_tls_cafile || cc->nats_tls_certfile))
		s = natsOptions_SetSecure(o, true);
	if (s == NATS_OK && cc->nats_tls_cafile)
		s = natsOptions_LoadCATrustedCertificates(o, cc->nats_tls_cafile);
	if (s == NATS_OK && cc->nats_tls_certfile)
		s = natsOptions_LoadCertificatesChain(o, cc->nats_tls_certfile,
						      cc->nats_tls_keyfile);
	return s;
}

static int set_options(struct cluster *c, const struct config_cluster *cc)
{
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);

	c->opts = o;
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, (const char **)cc->nats_servers.items,
					   (int)cc->nats_servers.count);
	if (s == NATS_OK)
		s = cluster_options_common(o, cc);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, c->node);
	/* Our own messages are routed here already: NATS must not send them back. */
	if (s == NATS_OK)
		s = natsOptions_SetNoEcho(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(o, 8 * 1024 * 1024);
	/* A full output buffer is written in place by the publishing worker: a NATS
	 * server that stops reading may stall it 1 s at most, then counts as lost. */
	if (s == NATS_OK)
		s = natsOptions_SetWriteDeadline(o, 1000);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, c);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(o, on_disconnected, c);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, on_reconnected, c);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(o, on_closed, c);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(o, on_error, c);
	if (s != NATS_OK) {
		log_err("Error: cluster: NATS options: %s (%s).", natsStatus_GetText(s),
			nats_GetLastError(NULL));
		return -1;
	}
	return 0;
}

/* ---- Receiving ------------------------------------------------------------------- */

/* Whether message (instance, seq) was seen already; records it. */
static bool seen_before(struct cluster *c, uint64_t instance, uint64_t seq)
{
	struct cluster_origin *o = NULL, *oldest = &c->origins[0];
	bool dup = false;

	pthread_mutex_lock(&c->dedup_lock);
	c->dedup_clock++;
	for (size_t i = 0; i < CLUSTER_DEDUP_ORIGINS && !o; i++) {
		if (c->origins[i].instance == instance)
			o = &c->origins[i];
		else if (c->origins[i].last_used < oldest->last_used)
			oldest = &c->origins[i];
	}
	if (!o) {
		o = oldest;
		memset(o, 0, sizeof(*o));
		o->instance = instance;
		o->top = seq;
	}
	o->last_used = c->dedup_clock;
	if (seq > o->top) {
		if (seq - o->top >= CLUSTER_DEDUP_WINDOW) {
			memset(o->bits, 0, sizeof(o->bits));
		} else {
			for (uint64_t s = o->top + 1; s <= seq; s++)
				o->bits[(s % CLUSTER_DEDUP_WINDOW) / 64] &= ~(1ull << (s % 64));
		}
		o->top = seq;
	} else if (o->top - seq >= CLUSTER_DEDUP_WINDOW) {
		dup = true; /* too old to tell: a late copy of an old message */
	}
	if (!dup) {
		uint64_t *word = &o->bits[(seq % CLUSTER_DEDUP_WINDOW) / 64], bit = 1ull << (seq % 64);
		dup = (*word & bit) != 0;
		*word |= bit;
	}
	pthread_mutex_unlock(&c->dedup_lock);
	return dup;
}

void cluster_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct cluster *c = closure;
	struct broker *b = c->b;
	struct cluster_env e;
	struct message *m;

	(void)nc;
	(void)sub;
	if (cluster_env_decode((const uint8_t *)natsMsg_GetData(msg),
			       (size_t)natsMsg_GetDataLength(msg), &e) < 0) {
		atomic_fetch_add(&c->dropped, 1);
		log_debug("Cluster: dropped an undecodable message on %s.", natsMsg_GetSubject(msg));
		goto out;
	}
	if (e.instance == c->instance || seen_before(c, e.instance, e.seq))
		goto out;
	m = message_new(e.topic, e.topic_len, e.payload, e.payload_len, e.qos, e.retain, e.props,
			e.props_len);
	if (!m) {
		atomic_fetch_add(&c->dropped, 1);
		log_err("Error: out of memory receiving a cluster message on %.*s.",
			(int)e.topic_len, e.topic);
		goto out;
	}
	if (e.expiry)
		m->expires = m->created + e.expiry;
	m->cluster_instance = e.instance; /* a replay into a session skips what came live */
	m->cluster_seq = e.seq;
	atomic_fetch_add(&c->received, 1);
	worker_post(&b->workers[e.instance % b->nworkers],
		    &(struct inbox_item){.kind = INBOX_CLUSTER, .msg = m});
out:
	natsMsg_Destroy(msg);
}

/* A subscription is closed and its handler returned for the last time. */
static void on_sub_complete(void *closure)
{
	struct cluster *c = closure;

	pthread_mutex_lock(&c->closed_lock);
	c->live_subs--;
	pthread_cond_broadcast(&c->closed_cond);
	pthread_mutex_unlock(&c->closed_lock);
}

natsStatus cluster_sub_track(struct cluster *c, natsSubscription *sub)
{
	natsStatus s = natsSubscription_SetPendingLimits(sub, PENDING_MSGS, PENDING_BYTES);

	if (s == NATS_OK) {
		pthread_mutex_lock(&c->closed_lock);
		s = natsSubscription_SetOnCompleteCB(sub, on_sub_complete, c);
		if (s == NATS_OK)
			c->live_subs++;
		pthread_mutex_unlock(&c->closed_lock);
	}
	return s;
}

natsSubscription *cluster_subscribe_with(struct cluster *c, const char *subject,
					 natsMsgHandler handler)
{
	natsSubscription *sub = NULL;
	natsStatus s = natsConnection_Subscribe(&sub, c->nc, subject, handler, c);

	if (s == NATS_OK)
		s = cluster_sub_track(c, sub);
	if (s != NATS_OK) {
		log_err("Error: cluster: unable to subscribe to %s: %s.", subject,
			natsStatus_GetText(s));
		if (sub)
			natsSubscription_Destroy(sub);
		return NULL;
	}
	log_debug("Cluster: interest in %s.", subject);
	return sub;
}

natsSubscription *cluster_subscribe(struct cluster *c, const char *subject)
{
	return cluster_subscribe_with(c, subject, cluster_on_msg);
}

/* ---- Publishing ------------------------------------------------------------------- */

bool cluster_env_of(struct cluster *c, const struct message *m, struct cluster_env *e)
{
	memset(e, 0, sizeof(*e));
	e->instance = c->instance;
	e->seq = atomic_fetch_add_explicit(&c->seq, 1, memory_order_relaxed) + 1;
	e->qos = m->qos;
	e->retain = m->retain;
	e->node = c->node;
	e->node_len = c->node_len;
	e->topic = m->topic;
	e->topic_len = m->topic_len;
	e->props = m->props;
	e->props_len = m->props_len;
	e->payload = m->payload;
	e->payload_len = m->payload_len;
	if (m->expires) {
		int64_t left = m->expires - (int64_t)time(NULL);
		if (left <= 0)
			return false;
		e->expiry = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
	}
	return true;
}

void cluster_publish(struct cluster *c, const struct message *m, unsigned worker,
		     bool groups_served)
{
	uint8_t sbuf[STACK_BUF];
	char subj_buf[STACK_BUF / 2];
	struct cluster_env e;
	uint8_t *data;
	char *subj;
	size_t size, smax;
	natsStatus s;

	c->wacks[worker].last_given = 0; /* this message's, once it has one */
	if (cluster_topic_stays_here(m->topic, m->topic_len))
		return; /* each node has its own */
	/* Retained messages live in the cluster's bucket, which every node follows
	 * (and delivers to its subscribers, shared groups aside); shared groups get
	 * them as kind r, one member for the whole cluster. */
	if (m->retain)
		cluster_retain_publish(c, m, worker);
	if (!cluster_env_of(c, m, &e))
		return;
	e.groups_served = groups_served;
	size = cluster_env_size(&e);
	smax = cluster_subject_max(c->prefix, m->topic_len);
	data = size <= sizeof(sbuf) ? sbuf : mem_malloc(size);
	subj = smax <= sizeof(subj_buf) ? subj_buf : mem_malloc(smax);
	if (!data || !subj) {
		atomic_fetch_add(&c->dropped, 1);
		goto out;
	}
	cluster_env_encode(&e, data);
	bool guarded = m->qos > 0 && !m->retain;
	cluster_subject_for_topic(subj, c->prefix,
				  m->retain ? CLUSTER_KIND_RETAIN : guarded ? CLUSTER_KIND_QOS
									  : CLUSTER_KIND_MSG,
				  m->topic, m->topic_len);
	if (guarded && cluster_qos_publish(c, worker, subj, data, size, e.seq))
		s = NATS_OK; /* its failures are JetStream's answer, counted as unconfirmed */
	else
		s = natsConnection_Publish(c->nc, subj, data, (int)size);
	if (s == NATS_OK)
		atomic_fetch_add_explicit(&c->sent, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&c->dropped, 1, memory_order_relaxed);
out:
	if (data != sbuf)
		mem_free(data);
	if (subj != subj_buf)
		mem_free(subj);
}

/* ---- Start and stop ----------------------------------------------------------------- */

static char *default_node_name(void)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0 || !host[0])
		return mem_strdup("midge");
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			*p = '_';
	return mem_strndup(host, 64);
}

/*
 * Closes the connection once every (unsubscribed) subscription's handler is
 * done, and waits for libnats's last callback: then nothing refers to c.
 * Each wait is bounded (5 s).
 */
static void close_connection(struct cluster *c)
{
	struct timespec until;
	bool done;

	atomic_store(&c->stopping, true);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&c->closed_lock);
	while (c->live_subs > 0)
		if (pthread_cond_timedwait(&c->closed_cond, &c->closed_lock, &until) != 0)
			break;
	done = c->live_subs == 0;
	pthread_mutex_unlock(&c->closed_lock);
	if (!done)
		log_warn("Warning: cluster: NATS subscriptions still delivering after 5 s.");
	natsConnection_Close(c->nc);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&c->closed_lock);
	while (!c->closed)
		if (pthread_cond_timedwait(&c->closed_cond, &c->closed_lock, &until) != 0)
			break;
	done = c->closed;
	pthread_mutex_unlock(&c->closed_lock);
	if (!done)
		log_warn("Warning: cluster: the NATS connection did not close within 5 s.");
	natsConnection_Destroy(c->nc);
	c->nc = NULL;
}

static void cluster_free(struct cluster *c)
{
	cluster_jobs_stop(c);
	cluster_replay_fini(c);
	cluster_session_fini(c);
	cluster_retain_stop(c);
	cluster_retain_free(c);
	cluster_wills_free(c);
	jsCtx_Destroy(c->js);
	c->js = NULL;
	if (c->nc)
		close_connection(c);
	/* No JetStream answer can come any more. */
	cluster_qos_free(c);
	cluster_shared_close(c);
	natsOptions_Destroy(c->opts);
	pthread_mutex_destroy(&c->dedup_lock);
	pthread_mutex_destroy(&c->closed_lock);
	pthread_cond_destroy(&c->closed_cond);
	pthread_mutex_destroy(&c->jobs_lock);
	pthread_cond_destroy(&c->jobs_cond);
	mem_free(c->js_name);
	mem_free(c->node);
	mem_free(c->prefix);
	mem_free(c);
}

int cluster_start(struct broker *b)
{
	const struct config_cluster *cc = &b->cfg->cluster;
	struct cluster *c = mem_calloc(1, sizeof(*c));
	natsStatus s;

	if (!c)
		return -1;
	pthread_mutex_init(&c->dedup_lock, NULL);
	pthread_mutex_init(&c->closed_lock, NULL);
	pthread_cond_init(&c->closed_cond, NULL);
	pthread_mutex_init(&c->jobs_lock, NULL);
	pthread_cond_init(&c->jobs_cond, NULL);
	c->b = b;
	c->node = cc->node_name ? mem_strdup(cc->node_name) : default_node_name();
	c->prefix = mem_strdup(cc->subject_prefix);
	c->js_name = mem_strdup(cc->subject_prefix);
	if (!c->node || !c->prefix || !c->js_name)
		goto fail;
	for (char *p = c->js_name; *p; p++)
		if (*p == '.')
			*p = '_';
	c->replicas = cc->replicas > 0 ? cc->replicas
		      : cc->nats_servers.count < 3 ? (int)cc->nats_servers.count : 3;
	c->stream_max_age_ns = (cc->stream_max_age ? cc->stream_max_age : 3600) * 1000000000LL;
	c->node_len = strlen(c->node);
	c->node_timeout_ms = (int64_t)(cc->node_timeout > 0 ? cc->node_timeout : 3) * 1000;
	if (getrandom(&c->instance, sizeof(c->instance), 0) != (ssize_t)sizeof(c->instance))
		c->instance = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (c->instance == 0)
		c->instance = 1;
	if (cluster_qos_init(c, b->nworkers) < 0 || set_options(c, cc) < 0 ||
	    cluster_session_init(c) < 0 || cluster_replay_init(c) < 0)
		goto fail;
	s = natsConnection_Connect(&c->nc, c->opts);
	if (s == NATS_NOT_YET_CONNECTED) {
		log_warn("Warning: cluster: NATS is not reachable yet; node %s keeps trying and "
			 "delivers locally meanwhile.", c->node);
	} else if (s != NATS_OK) {
		log_err("Error: cluster: unable to connect to NATS: %s (%s).", natsStatus_GetText(s),
			nats_GetLastError(NULL));
		goto fail;
	} else {
		on_connected(c->nc, c);
	}
	if (cluster_shared_start(c) < 0)
		goto fail;
	jsOptions jo;
	jsOptions_Init(&jo);
	cluster_qos_js_options(c, &jo);
	s = natsConnection_JetStream(&c->js, c->nc, &jo);
	if (s != NATS_OK) {
		log_err("Error: cluster: JetStream context: %s.", natsStatus_GetText(s));
		goto fail;
	}
	if (cluster_retain_init(c) < 0 || cluster_wills_init(c) < 0)
		goto fail;
	pthread_rwlock_wrlock(&b->sub_lock);
	b->subs.interest = cluster_interest;
	b->subs.shared_interest = cluster_shared_interest;
	b->subs.interest_arg = c;
	pthread_rwlock_unlock(&b->sub_lock);
	if (cluster_jobs_start(c) < 0)
		goto fail;
	/* Clients that connect early see the cluster's retained messages: a bounded wait. */
	if (atomic_load(&c->connected))
		cluster_retain_wait_loaded(c, CLUSTER_RETAIN_LOAD_WAIT_MS);
	b->cluster = c;
	log_notice("Cluster: node %s (subjects %s.*) started.", c->node, c->prefix);
	return 0;
fail:
	cluster_free(c);
	return -1;
}

void cluster_stop(struct broker *b)
{
	struct cluster *c = b->cluster;

	if (!c)
		return;
	cluster_jobs_stop(c);
	cluster_nodes_leave(c);
	pthread_rwlock_wrlock(&b->sub_lock);
	b->subs.interest = NULL;
	b->subs.shared_interest = NULL;
	b->subs.interest_arg = NULL;
	cluster_interest_clear(c);
	cluster_shared_clear(c);
	pthread_rwlock_unlock(&b->sub_lock);
	cluster_session_unsubscribe(c);
	cluster_retain_stop(c);
	b->cluster = NULL;
	cluster_free(c);
	/* libnats's own threads and memory (a no-op while another user remains). */
	natsStatus s = nats_CloseAndWait(5000);
	if (s != NATS_OK)
		log_warn("Warning: cluster: libnats did not close: %s.", natsStatus_GetText(s));
}

void cluster_get_stats(const struct broker *b, struct cluster_stats *st)
{
	const struct cluster *c = b->cluster;

	memset(st, 0, sizeof(*st));
	if (!c)
		return;
	st->enabled = true;
	st->connected = atomic_load(&c->connected);
	st->node = c->node;
	st->sent = atomic_load(&c->sent);
	st->received = atomic_load(&c->received);
	st->dropped = atomic_load(&c->dropped);
	st->reconnects = atomic_load(&c->reconnects);
	st->interest = atomic_load(&c->interest_count);
	st->confirmed = atomic_load(&c->confirmed);
	st->unconfirmed = atomic_load(&c->unconfirmed);
	if (c->wills) {
		st->nodes_gone = atomic_load(&c->wills->nodes_gone);
		st->wills_fired = atomic_load(&c->wills->wills_fired);
	}
}
