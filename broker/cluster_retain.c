/*
 * cluster_retain.c: the cluster's retained messages, kept in the JetStream
 * key-value bucket <js_name>_retained (one value per topic, history 1).
 *
 * Setting one is a put of its envelope (cluster_wire.h) under the topic's
 * key; clearing one (empty payload) a purge marker that carries the
 * envelope too, so other nodes deliver the clear to their subscribers as a
 * single node would. Workers publish both to $KV.<bucket>.<key> as plain
 * NATS messages: JetStream stores them, nobody waits for it.
 *
 * Every node follows the bucket with an ordered push consumer that first
 * delivers the last message of every key, then every new one, in stream
 * order. The stream's last sequence when following began splits the two:
 * up to it a message is the node's initial load (stored, delivered to
 * nobody: it is old news); after it, a message from another node is stored
 * and delivered to this node's subscribers, once (the ordered consumer never
 * redelivers, even when libnats recreates it). This node's own messages come
 * back too and are stored again, delivered to nobody: applying the stream's
 * order everywhere makes nodes that set one topic at once agree. A message
 * whose expiry (counted from when JetStream stored it) has passed is a clear:
 * a late node does not bring it back, and purges it from the bucket (only
 * if it is still the key's last value; marked, so nobody delivers that).
 *
 * cluster_start() waits up to CLUSTER_RETAIN_LOAD_WAIT_MS for the initial
 * load when NATS answered at once, so early subscribers find the retained
 * messages; later (NATS away at start) the load arrives asynchronously.
 */
#include "config.h"

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

#define STACK_BUF 2048
#define FOLLOW_HEARTBEAT_MS 1000
/* On a purge marker that clears an expired value. */
#define EXPIRED_HEADER "Midge-Expired"

struct cluster_retained {
	char *bucket;               /* <js_name>_retained */
	char *subject;              /* "$KV.<bucket>." */
	size_t subject_len;
	kvStore *kv;
	natsSubscription *follow;
	uint64_t load_until;        /* stream sequence: up to here, the initial load */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool loaded;                /* under lock */
	_Atomic uint64_t loaded_count;
	_Atomic bool ready;         /* the bucket is there: QoS 1/2 puts are confirmed */
};

int cluster_retain_init(struct cluster *c)
{
	struct cluster_retained *r = mem_calloc(1, sizeof(*r));
	size_t blen;

	if (!r)
		return -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	c->retained = r;
	blen = strlen(c->js_name) + sizeof("_retained");
	r->bucket = mem_malloc(blen);
	r->subject = mem_malloc(blen + 6);
	if (!r->bucket || !r->subject)
		return -1;
	snprintf(r->bucket, blen, "%s_retained", c->js_name);
	r->subject_len = (size_t)snprintf(r->subject, blen + 6, "$KV.%s.", r->bucket);
	return 0;
}

void cluster_retain_free(struct cluster *c)
{
	struct cluster_retained *r = c->retained;

	if (!r)
		return;
	kvStore_Destroy(r->kv);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	mem_free(r->bucket);
	mem_free(r->subject);
	mem_free(r);
	c->retained = NULL;
}

static void set_loaded(struct cluster_retained *r)
{
	pthread_mutex_lock(&r->lock);
	if (!r->loaded) {
		r->loaded = true;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
}

void cluster_retain_wait_loaded(struct cluster *c, int ms)
{
	struct cluster_retained *r = c->retained;
	struct timespec until;
	bool loaded;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	while (!r->loaded)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &until) != 0)
			break;
	loaded = r->loaded;
	pthread_mutex_unlock(&r->lock);
	if (loaded)
		log_info("Cluster: %llu retained messages loaded from the cluster.",
			 (unsigned long long)atomic_load(&r->loaded_count));
	else
		log_warn("Warning: cluster: the cluster's retained messages did not arrive within "
			 "%d ms; they load in the background.", ms);
}

/* ---- Publishing (workers) ------------------------------------------------------- */

void cluster_retain_publish(struct cluster *c, const struct message *m, unsigned worker)
{
	struct cluster_retained *r = c->retained;
	uint8_t sbuf[STACK_BUF];
	char subj[sizeof("$KV..") + 256 + CLUSTER_KEY_MAX];
	struct cluster_env e;
	uint8_t *data;
	size_t size;
	natsStatus s;

	/* An expired message is cleared everywhere (and nobody is told). */
	if (!cluster_env_of(c, m, &e)) {
		e.payload_len = 0;
		e.expiry = 0;
	}
	size = cluster_env_size(&e);
	data = size <= sizeof(sbuf) ? sbuf : mem_malloc(size);
	if (!data || r->subject_len + 1 + CLUSTER_KEY_MAX >= sizeof(subj)) {
		atomic_fetch_add(&c->dropped, 1);
		goto out;
	}
	cluster_env_encode(&e, data);
	memcpy(subj, r->subject, r->subject_len);
	cluster_key_for_topic(subj + r->subject_len, m->topic, m->topic_len);
	if (e.payload_len > 0) {
		/* A QoS 1/2 one is acknowledged once the bucket holds it, as any QoS 1/2 message. */
		if (m->qos > 0 && atomic_load(&r->ready) &&
		    cluster_qos_publish(c, worker, subj, data, size, e.seq))
			s = NATS_OK;
		else
			s = natsConnection_Publish(c->nc, subj, data, (int)size);
	} else {
		/* The clear's envelope rides on the marker: other nodes tell their subscribers. */
		s = cluster_kv_purge(c, subj, data, size);
	}
	if (s == NATS_OK)
		atomic_fetch_add_explicit(&c->sent, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&c->dropped, 1, memory_order_relaxed);
out:
	if (data != sbuf)
		mem_free(data);
}

/* ---- Following the bucket (libnats's delivery thread) ------------------------------- */

/* A marker without our envelope (another tool deleted the key): clear its topic. */
static struct message *clear_of_key(struct cluster_retained *r, const char *subject)
{
	size_t len = strlen(subject);
	char buf[STACK_BUF], *topic;
	struct message *m = NULL;
	long n;

	if (len <= r->subject_len || strncmp(subject, r->subject, r->subject_len) != 0)
		return NULL;
	topic = len < sizeof(buf) ? buf : mem_malloc(len + 1);
	if (!topic)
		return NULL;
	n = cluster_topic_for_key(topic, subject + r->subject_len);
	if (n > 0)
		m = message_new(topic, (size_t)n, NULL, 0, 0, true, NULL, 0);
	if (topic != buf)
		mem_free(topic);
	return m;
}

/*
 * Purges the expired value e (stream sequence seq) of subject from the bucket, so
 * that it stops taking room and being loaded. Only if it is still the key's last
 * value (JetStream checks), marked expired: nobody delivers the clear.
 */
static void purge_expired(struct cluster *c, const char *subject, struct cluster_env *e,
			  uint64_t seq)
{
	uint8_t sbuf[STACK_BUF], *data;
	char last[24];
	natsMsg *msg = NULL;
	size_t size;
	natsStatus s;

	e->payload_len = 0;
	e->expiry = 0;
	size = cluster_env_size(e);
	data = size <= sizeof(sbuf) ? sbuf : mem_malloc(size);
	if (!data)
		return;
	cluster_env_encode(e, data);
	snprintf(last, sizeof(last), "%llu", (unsigned long long)seq);
	s = natsMsg_Create(&msg, subject, NULL, (const char *)data, (int)size);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "KV-Operation", "PURGE");
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Nats-Rollup", "sub");
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Nats-Expected-Last-Subject-Sequence", last);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, EXPIRED_HEADER, "1");
	if (s == NATS_OK)
		(void)natsConnection_PublishMsg(c->nc, msg);
	natsMsg_Destroy(msg);
	if (data != sbuf)
		mem_free(data);
}

static void on_retained(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct cluster *c = closure;
	struct cluster_retained *r = c->retained;
	struct broker *b = c->b;
	jsMsgMetaData *meta = NULL;
	const char *op = NULL;
	struct cluster_env e;
	struct message *m = NULL;
	bool deliver, cleared;

	(void)nc;
	(void)sub;
	if (natsMsg_GetMetaData(&meta, msg) != NATS_OK)
		goto out;
	bool in_load = meta->Sequence.Stream <= r->load_until;
	cleared = natsMsgHeader_Get(msg, "KV-Operation", &op) == NATS_OK && op &&
		  (strcmp(op, "DEL") == 0 || strcmp(op, "PURGE") == 0);
	if (cluster_env_decode((const uint8_t *)natsMsg_GetData(msg),
			       (size_t)natsMsg_GetDataLength(msg), &e) == 0) {
		int64_t stored = meta->Timestamp / 1000000000;
		int64_t expires = e.expiry ? stored + (int64_t)e.expiry : 0;
		if (cleared) {
			e.payload_len = 0;
			if (natsMsgHeader_Get(msg, EXPIRED_HEADER, &op) == NATS_OK)
				in_load = true; /* nobody is told of an expiry */
		} else if (expires && expires <= (int64_t)time(NULL)) {
			purge_expired(c, natsMsg_GetSubject(msg), &e, meta->Sequence.Stream);
			e.payload_len = 0; /* expired while this node did not know it: not back */
			in_load = true;    /* and nobody is told of an expiry */
			expires = 0;
		}
		m = message_new(e.topic, e.topic_len, e.payload, e.payload_len, e.qos, true, e.props,
				e.props_len);
		if (m && expires)
			m->expires = expires;
		deliver = !in_load && e.instance != c->instance;
	} else {
		if (cleared)
			m = clear_of_key(r, natsMsg_GetSubject(msg));
		deliver = false;
		if (!m && !cleared)
			log_debug("Cluster: ignored a retained value that is not ours on %s.",
				  natsMsg_GetSubject(msg));
	}
	if (m) {
		if (in_load)
			atomic_fetch_add(&r->loaded_count, 1);
		else
			atomic_fetch_add(&c->received, 1);
		/* One topic, one worker: its updates are applied in the bucket's order. */
		worker_post(&b->workers[tnode_hash(m->topic, m->topic_len) % b->nworkers],
			    &(struct inbox_item){.kind = deliver ? INBOX_CLUSTER : INBOX_CLUSTER_RETAINED,
						 .msg = m});
	}
	if (meta->Sequence.Stream >= r->load_until)
		set_loaded(r);
out:
	jsMsgMetaData_Destroy(meta);
	natsMsg_Destroy(msg);
}

/* ---- Setup and stop (the cluster thread) -------------------------------------------- */

static int open_bucket(struct cluster *c, struct cluster_retained *r)
{
	kvConfig kc;

	kvConfig_Init(&kc);
	kc.Bucket = r->bucket;
	kc.History = 1;
	kc.StorageType = js_FileStorage;
	kc.Replicas = c->replicas;
	return cluster_bucket_open(c, &r->kv, &kc);
}

int cluster_retain_setup(struct cluster *c)
{
	struct cluster_retained *r = c->retained;
	jsStreamInfo *si = NULL;
	jsSubOptions so;
	char stream[300], filter[300];
	natsStatus s;

	if (!r->kv && open_bucket(c, r) < 0)
		return -1;
	if (r->follow)
		return 0;
	snprintf(stream, sizeof(stream), "KV_%s", r->bucket);
	snprintf(filter, sizeof(filter), "%s>", r->subject);
	s = js_GetStreamInfo(&si, c->js, stream, NULL, NULL);
	if (s != NATS_OK)
		return -1;
	r->load_until = si->State.Msgs ? si->State.LastSeq : 0;
	jsStreamInfo_Destroy(si);
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverLastPerSubject;
	/* A consumer lost with its stream leader is noticed (and made again, from the
	 * next sequence) after missed heartbeats: soon, rather than libnats's 5 s. */
	so.Config.Heartbeat = (int64_t)FOLLOW_HEARTBEAT_MS * 1000000;
	s = js_Subscribe(&r->follow, c->js, filter, on_retained, c, NULL, &so, NULL);
	if (s == NATS_OK)
		s = cluster_sub_track(c, r->follow);
	if (s != NATS_OK) {
		if (r->follow)
			natsSubscription_Destroy(r->follow);
		r->follow = NULL;
		return -1;
	}
	if (r->load_until == 0)
		set_loaded(r);
	atomic_store(&r->ready, true);
	return 0;
}

void cluster_retain_stop(struct cluster *c)
{
	struct cluster_retained *r = c->retained;

	if (!r || !r->follow)
		return;
	natsSubscription_Unsubscribe(r->follow);
	natsSubscription_Destroy(r->follow);
	r->follow = NULL;
}
