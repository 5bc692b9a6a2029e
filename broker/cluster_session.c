/*
 * cluster_session.c: which node holds each client's session, and asking it
 * to let go (see cluster.h, cluster_session_claim()).
 *
 * The registry is the JetStream KV bucket <js_name>_sessions: one key per
 * client id (cluster_session_wire.h) naming the node that holds its session.
 * A CONNECT on a worker that wants the id queues a claim here; one of this
 * module's threads (the id's lane, SESSION_LANES of them) reads the key, asks the owner on its control subject
 * <prefix>.ctl.<node>.session to close the connection and hand over the
 * session (a NATS request, at most CLAIM_WAIT_MS), records this node as the
 * owner (waited for, so the entry is there before the CONNACK; a
 * compare-and-set on the revision read: of two nodes claiming one id at once,
 * the loser claims again from the winner, so the later connection stays), and
 * queues the replay of the stream's QoS 1/2 messages for a session rebuilt
 * after its node died or moved in a live hand-over (cluster_replay.c); it answers
 * the worker through its inbox (INBOX_CLUSTER_CLAIMED), which resumes the
 * CONNECT as a plugin's delayed answer would. Requests from other nodes
 * arrive on the control subject and go to the worker owning the id
 * (cluster_session_move.c). Sessions that outlive their connection keep
 * their subscriptions in the value (written without waiting), so a node can
 * rebuild them when the owner is gone; a session that ends here releases its
 * key when it still names this node. Workers never wait on NATS; the lanes
 * do, each one job at a time, so an id's jobs keep their order.
 */
#include "config.h"

#include "cluster.h"
#include "cluster_int.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "broker.h"
#include "cluster_session_wire.h"
#include "decision.h"
#include "hooks.h"
#include "log.h"
#include "session.h"
#include "tnode.h"
#include "worker.h"

/* How long a CONNECT waits for the node that held the id. */
#define CLAIM_WAIT_MS 2000
/* JetStream API calls of the registry (its own context: the shared one waits 5 s). */
#define REGISTRY_WAIT_MS 1000
/* Jobs beyond this are answered "no one else has it" at once: a storm of CONNECTs
 * must not queue for minutes. */
#define MAX_QUEUED 10000
/* Jobs wait on NATS round trips, not on a CPU: several threads ("lanes") serve
 * them, each client id's jobs always on the same lane, so they stay in order. */
#define SESSION_LANES 32
/* Registry writes are not waited for; at most this many unacknowledged. */
#define MAX_PENDING_WRITES 4096

enum job_kind { JOB_CLAIM, JOB_RELEASE, JOB_UPDATE };

struct session_job {
	struct session_job *next;
	enum job_kind kind;
	uint64_t request;       /* CLAIM: the decision id; its low byte names the worker */
	bool clean_start;
	bool persistent;
	uint8_t *value;         /* UPDATE: the registry value to write */
	size_t value_len;
	size_t id_len;
	char id[];
};

/* One thread and its queue of jobs. */
struct session_lane {
	struct cluster *c;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct session_job *head, *tail;
	size_t queued;
	bool stop;
};

struct cluster_sessions {
	jsCtx *js;
	kvStore *kv;
	natsSubscription *ctl_sub;
	_Atomic bool ready;          /* bucket and control subject in place */
	struct session_lane lanes[SESSION_LANES];
	_Atomic int64_t next_warn;   /* the rate limit for repeated warnings (any thread) */
	_Atomic int64_t next_write_warn; /* the same for failed writes (libnats's thread) */
};

/* ---- The registry ----------------------------------------------------------------------- */

static void bucket_name(const struct cluster *c, char *out, size_t size)
{
	snprintf(out, size, "%s_sessions", c->js_name);
}

/* The control subject of a node: its name as one token (the key encoding has no '.'). */
static void ctl_subject(const struct cluster *c, const char *node, size_t len, char *out, size_t size)
{
	char token[CLUSTER_SESSION_KEY_MAX + 1];

	cluster_key_encode(token, node, len);
	snprintf(out, size, "%s.ctl.%s.session", c->prefix, token);
}

static bool warn_now(struct cluster_sessions *cs)
{
	int64_t now = cluster_now_ms();
	int64_t due = atomic_load_explicit(&cs->next_warn, memory_order_relaxed);

	return now >= due && atomic_compare_exchange_strong_explicit(&cs->next_warn, &due, now + 10000,
								      memory_order_relaxed,
								      memory_order_relaxed);
}

/* A registry write JetStream refused (libnats's thread). */
static void on_write_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	struct cluster *c = closure;
	int64_t now = cluster_now_ms(), next = atomic_load(&c->sessions->next_write_warn);

	(void)js;
	if (now >= next && atomic_compare_exchange_strong(&c->sessions->next_write_warn, &next,
							  now + 10000))
		log_warn("Warning: cluster: the session registry refused a write: %s.",
			 pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
}

/*
 * Writes key (value, or a delete marker when value is NULL) without waiting
 * for JetStream: a KV write is a publish on $KV.<bucket>.<key>.
 */
static natsStatus registry_write(struct cluster *c, const char *key, const void *value, size_t len)
{
	char subj[CLUSTER_SESSION_KEY_MAX + 300];
	natsMsg *m = NULL;
	natsStatus s;

	snprintf(subj, sizeof(subj), "$KV.%s_sessions.%s", c->js_name, key);
	if (value)
		return js_PublishAsync(c->sessions->js, subj, value, (int)len, NULL);
	s = natsMsg_Create(&m, subj, NULL, NULL, 0);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "KV-Operation", "DEL");
	if (s == NATS_OK)
		s = js_PublishMsgAsync(c->sessions->js, &m, NULL);
	natsMsg_Destroy(m); /* NULL once the library took it */
	return s;
}

/*
 * Records this node as the owner, replay_from the watermark the previous one
 * left (0 = none: from now). A compare-and-set on the revision read (0: the
 * key was absent): -1 when another node wrote it meanwhile; force: write
 * whatever is there.
 */
static int record_owner(struct cluster *c, const char *key, const struct session_job *j,
			int64_t replay_from, uint64_t revision, bool force)
{
	struct cluster_sessions *cs = c->sessions;
	struct session_reg r = {.instance = c->instance, .persistent = j->persistent,
				.node = c->node, .node_len = c->node_len, .id = j->id,
				.id_len = j->id_len,
				.replay_from = replay_from > 0 ? replay_from : cluster_wall_ms()};
	struct wire_out o = {0};

	session_reg_encode(&o, &r);
	/* Waited for: committed before the CONNACK, so a client that hurries to
	 * another node finds it. */
	natsStatus s = NATS_NO_MEMORY;
	if (!o.failed && force)
		s = kvStore_Put(NULL, cs->kv, key, o.data, (int)o.len);
	else if (!o.failed && revision)
		s = kvStore_Update(NULL, cs->kv, key, o.data, (int)o.len, revision);
	else if (!o.failed)
		s = kvStore_Create(NULL, cs->kv, key, o.data, (int)o.len);
	mem_free(o.data);
	if (s == NATS_OK)
		return 0;
	/* JetStream's "wrong last sequence" (or "key exists"): another node's claim won. */
	if (!force && s == NATS_ERR)
		return -1;
	if (warn_now(cs))
		log_warn("Warning: cluster: the session registry did not record client %s: %s.",
			 j->id, natsStatus_GetText(s));
	return 0;
}

/* The registry entry of key; 0 when one names a node, its value in *e to destroy. */
static int read_owner(struct cluster *c, const char *key, const struct session_job *j,
		      kvEntry **e, struct session_reg *r)
{
	natsStatus s = kvStore_Get(e, c->sessions->kv, key);

	if (s == NATS_NOT_FOUND)
		return -1;
	if (s != NATS_OK) {
		if (warn_now(c->sessions))
			log_warn("Warning: cluster: the session registry did not answer about client "
				 "%s (%s): deciding locally.", j->id, natsStatus_GetText(s));
		return -1;
	}
	if (session_reg_decode(kvEntry_Value(*e), (size_t)kvEntry_ValueLen(*e), r) < 0 ||
	    r->id_len != j->id_len || memcmp(r->id, j->id, j->id_len) != 0)
		return -1; /* not ours to read, or another id of the same hashed key */
	return 0;
}

static bool is_this_node(const struct cluster *c, const struct session_reg *r)
{
	return r->node_len == c->node_len && memcmp(r->node, c->node, c->node_len) == 0;
}

/*
 * The session of a node that is gone, as far as the registry knows it: its
 * subscriptions, encoded as a moved session into d->data. The messages it held
 * are not here: with a watermark, the session waits for the stream's
 * (cluster_replay.c) and keeps that watermark until they are acknowledged.
 */
static int rebuild_from_registry(const struct session_reg *r, struct decision *d)
{
	struct wire_in in = {r->subs, r->subs_len, false};
	struct wire_out o = {0};
	struct session_wire_head h = {.expiry_interval = SESSION_EXPIRY_NEVER, .protocol = 4,
				      .nsubs = r->nsubs, .replay_from = r->replay_from};
	struct session_wire_sub sub;

	if (r->replay_from > 0)
		h.flags = SESSION_WIRE_F_MARK | SESSION_WIRE_F_REPLAY;
	session_wire_head_put(&o, &h);
	for (uint32_t i = 0; i < r->nsubs; i++) {
		if (session_wire_sub_get(&in, &sub) < 0)
			break;
		session_wire_sub_put(&o, &sub);
	}
	session_wire_tail_put(&o, &h);
	if (in.bad || o.failed) {
		mem_free(o.data);
		return -1;
	}
	d->data = o.data;
	d->data_len = (uint32_t)o.len;
	return 0;
}

/*
 * Asks the owner to close the connection and let go of the session; a moved
 * session's encoding goes into d->data (when the owner is gone, one rebuilt from
 * the registry). Bounded by CLAIM_WAIT_MS.
 */
static void ask_owner(struct cluster *c, const struct session_reg *r, const struct session_job *j,
		      struct decision *d)
{
	char subj[CLUSTER_SESSION_KEY_MAX + 256];
	struct session_req q = {.clean_start = j->clean_start, .id = j->id, .id_len = j->id_len};
	struct wire_out o = {0};
	natsMsg *reply = NULL;
	enum session_reply_status status = SESSION_REPLY_NONE;
	const uint8_t *sess;
	size_t sess_len;
	int64_t started = cluster_now_ms();

	ctl_subject(c, r->node, r->node_len, subj, sizeof(subj));
	session_req_encode(&o, &q);
	natsStatus s = o.failed ? NATS_NO_MEMORY
				: natsConnection_Request(&reply, c->nc, subj, o.data, (int)o.len,
							 CLAIM_WAIT_MS);
	mem_free(o.data);
	if (s == NATS_NO_RESPONDERS) {
		/* The owner is gone (its NATS connection with it). */
		if (r->persistent && !j->clean_start && rebuild_from_registry(r, d) == 0) {
			log_notice("Cluster: node %.*s, which held client %s, is gone: its session is "
				   "rebuilt here from the registry (%u subscriptions%s).",
				   (int)r->node_len, r->node, j->id, r->nsubs,
				   r->replay_from > 0 ? ", the stream's messages replayed"
						      : ", no watermark to replay from");
			return;
		}
		log_notice("Cluster: node %.*s, which held client %s, is gone: its session starts "
			   "anew here.", (int)r->node_len, r->node, j->id);
		return;
	}
	if (s != NATS_OK) {
		log_warn("Warning: cluster: node %.*s did not answer about client %s within %d ms "
			 "(%s): deciding locally.", (int)r->node_len, r->node, j->id, CLAIM_WAIT_MS,
			 natsStatus_GetText(s));
		return;
	}
	if (session_reply_decode((const uint8_t *)natsMsg_GetData(reply),
				 (size_t)natsMsg_GetDataLength(reply), &status, &sess, &sess_len) < 0) {
		log_warn("Warning: cluster: node %.*s gave an unreadable answer about client %s.",
			 (int)r->node_len, r->node, j->id);
	} else if (status == SESSION_REPLY_MOVED) {
		d->data = mem_malloc(sess_len);
		if (d->data) {
			memcpy(d->data, sess, sess_len);
			d->data_len = (uint32_t)sess_len;
		} else {
			log_err("Error: out of memory taking over the session of client %s.", j->id);
		}
	}
	log_debug("Cluster: node %.*s answered about client %s in %lld ms (%s).", (int)r->node_len,
		  r->node, j->id, (long long)(cluster_now_ms() - started),
		  status == SESSION_REPLY_MOVED ? "session moved" : "no session");
	natsMsg_Destroy(reply);
}

static void answer_worker(struct cluster *c, const struct session_job *j, struct decision *d)
{
	struct broker *b = c->b;
	struct cluster_claimed *cc = mem_malloc(sizeof(*cc) + j->id_len + 1);

	if (!cc) {
		log_err("Error: out of memory answering a CONNECT of client %s.", j->id);
		decision_free_data(d);
		mem_free(d);
		return; /* the decision's timeout answers it */
	}
	cc->d = d;
	memcpy(cc->id, j->id, j->id_len + 1);
	worker_post(&b->workers[(j->request & 0xFF) % b->nworkers],
		    &(struct inbox_item){.kind = INBOX_CLUSTER_CLAIMED, .id = j->request, .ptr = cc});
}

static void run_claim(struct cluster *c, const struct session_job *j)
{
	char key[CLUSTER_SESSION_KEY_MAX + 1];
	struct decision *d = mem_calloc(1, sizeof(*d));
	struct session_reg r;
	kvEntry *e = NULL;

	if (!d) {
		log_err("Error: out of memory answering a CONNECT of client %s.", j->id);
		return; /* the decision's timeout answers it */
	}
	d->verdict = HOOK_ALLOW;
	d->qos = -1;
	cluster_key_encode(key, j->id, j->id_len);
	bool known;
	/* Two CONNECTs of one id on two nodes at once: one write wins; the other node
	 * claims again from the winner (the last connection stays, as in MQTT). */
	for (int attempt = 0;; attempt++) {
		known = read_owner(c, key, j, &e, &r) == 0;
		uint8_t *first = d->data;
		uint32_t first_len = d->data_len;
		d->data = NULL;
		if (known && !is_this_node(c, &r))
			ask_owner(c, &r, j, d);
		/* Asked again (the winner of a race): what it gave is the newer session. */
		if (d->data) {
			mem_free(first);
		} else {
			d->data = first;
			d->data_len = first_len;
		}
		/* A client coming back to this node finds the entry right already. */
		if (known && is_this_node(c, &r) && r.instance == c->instance &&
		    r.persistent == j->persistent)
			break;
		if (record_owner(c, key, j, known ? r.replay_from : 0, e ? kvEntry_Revision(e) : 0,
				 attempt > 0) == 0)
			break;
		log_notice("Cluster: another node claimed client %s at the same time: claiming it "
			   "from there.", j->id);
		kvEntry_Destroy(e);
		e = NULL;
	}
	unsigned worker = (unsigned)(j->request & 0xFF) % c->b->nworkers;
	int64_t from;
	bool exact;
	const uint8_t *subs;
	size_t subs_len;
	uint32_t nsubs;
	/* Rebuilt here (from the watermark), moved (the hand-over's window), or moved
	 * from a node whose replay for it had not ended. Queued
	 * before the answer: the worker gets the stream's messages only after it.
	 * The window too starts a little earlier (cluster.h); what came with the
	 * session is skipped by its id. */
	if (d->data && session_wire_replay_info(d->data, d->data_len, &from, &exact, &subs,
						&subs_len, &nsubs) &&
	    cluster_replay_queue(c, j->id, j->id_len, worker, from,
				 exact ? CLUSTER_WINDOW_MARGIN_MS : CLUSTER_REPLAY_MARGIN_MS, subs,
				 subs_len, nsubs) < 0)
		log_warn("Warning: cluster: the stream's messages for client %s are not replayed "
			 "(too many replays waiting, or out of memory).", j->id);
	kvEntry_Destroy(e);
	answer_worker(c, j, d);
}

static void run_update(struct cluster *c, const struct session_job *j)
{
	char key[CLUSTER_SESSION_KEY_MAX + 1];
	natsStatus s;

	cluster_key_encode(key, j->id, j->id_len);
	s = registry_write(c, key, j->value, j->value_len);
	if (s != NATS_OK && warn_now(c->sessions))
		log_warn("Warning: cluster: the session registry did not record the subscriptions of "
			 "client %s: %s.", j->id, natsStatus_GetText(s));
}

static void run_release(struct cluster *c, const struct session_job *j)
{
	char key[CLUSTER_SESSION_KEY_MAX + 1];
	struct session_reg r;
	kvEntry *e = NULL;

	cluster_key_encode(key, j->id, j->id_len);
	if (read_owner(c, key, j, &e, &r) == 0 && is_this_node(c, &r)) {
		natsStatus s = registry_write(c, key, NULL, 0);
		if (s != NATS_OK)
			log_debug("Cluster: registry entry of %s not released: %s.", j->id,
				  natsStatus_GetText(s));
	}
	kvEntry_Destroy(e);
}

/* ---- The thread -------------------------------------------------------------------------- */

static void *sessions_main(void *arg)
{
	struct session_lane *l = arg;
	struct cluster *c = l->c;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		while (!l->stop && !l->head)
			pthread_cond_wait(&l->cond, &l->lock);
		if (l->stop)
			break;
		struct session_job *j = l->head;
		l->head = j->next;
		if (!l->head)
			l->tail = NULL;
		l->queued--;
		pthread_mutex_unlock(&l->lock);
		if (j->kind == JOB_CLAIM)
			run_claim(c, j);
		else if (j->kind == JOB_UPDATE)
			run_update(c, j);
		else
			run_release(c, j);
		mem_free(j->value);
		mem_free(j);
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* Queues a job; takes value (NULL for none) even when it fails. */
static int enqueue(struct cluster *c, enum job_kind kind, uint64_t request, const char *id,
		   bool clean_start, bool persistent, uint8_t *value, size_t value_len)
{
	struct cluster_sessions *cs = c->sessions;
	size_t len = strlen(id);
	struct session_job *j;

	if (len > UINT16_MAX || !(j = mem_malloc(sizeof(*j) + len + 1))) {
		mem_free(value);
		return -1;
	}
	*j = (struct session_job){.kind = kind, .request = request, .clean_start = clean_start,
				  .persistent = persistent, .value = value, .value_len = value_len,
				  .id_len = len};
	memcpy(j->id, id, len + 1);
	struct session_lane *l = &cs->lanes[tnode_hash(id, len) % SESSION_LANES];
	pthread_mutex_lock(&l->lock);
	if (l->stop || l->queued >= MAX_QUEUED / SESSION_LANES) {
		pthread_mutex_unlock(&l->lock);
		mem_free(j->value);
		mem_free(j);
		return -1;
	}
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->queued++;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

/* ---- Requests from other nodes ------------------------------------------------------------ */

static void on_ctl(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct cluster *c = closure;
	struct session_req q;
	const char *reply = natsMsg_GetReply(msg);
	struct session_takeover *t;

	(void)nc;
	(void)sub;
	if (!reply || session_req_decode((const uint8_t *)natsMsg_GetData(msg),
					 (size_t)natsMsg_GetDataLength(msg), &q) < 0) {
		log_debug("Cluster: dropped an unreadable session request.");
		goto out;
	}
	size_t rlen = strlen(reply);
	t = mem_malloc(sizeof(*t) + q.id_len + 1 + rlen + 1);
	if (!t) {
		log_err("Error: out of memory handling a session request for %.*s.", (int)q.id_len,
			q.id);
		goto out; /* the asking node times out and decides locally */
	}
	t->clean_start = q.clean_start;
	memcpy(t->id, q.id, q.id_len);
	t->id[q.id_len] = '\0';
	t->reply = t->id + q.id_len + 1;
	memcpy(t->reply, reply, rlen + 1);
	worker_post(worker_for_hash(c->b, session_id_hash(t->id, q.id_len)),
		    &(struct inbox_item){.kind = INBOX_CLUSTER_SESSION, .ptr = t});
out:
	natsMsg_Destroy(msg);
}

/* ---- Setup and the API ----------------------------------------------------------------- */

int cluster_session_setup(struct cluster *c)
{
	struct cluster_sessions *cs = c->sessions;
	char name[256], subj[CLUSTER_SESSION_KEY_MAX + 256];
	natsStatus s;

	if (!cs->js) {
		jsOptions o;
		jsOptions_Init(&o);
		o.Wait = REGISTRY_WAIT_MS;
		o.PublishAsync.MaxPending = MAX_PENDING_WRITES;
		o.PublishAsync.ErrHandler = on_write_error;
		o.PublishAsync.ErrHandlerClosure = c;
		if ((s = natsConnection_JetStream(&cs->js, c->nc, &o)) != NATS_OK)
			return -1;
	}
	if (!cs->kv) {
		kvConfig cfg;
		bucket_name(c, name, sizeof(name));
		kvConfig_Init(&cfg);
		cfg.Bucket = name;
		cfg.History = 1;
		cfg.Replicas = c->replicas;
		cfg.StorageType = js_FileStorage;
		s = js_CreateKeyValue(&cs->kv, cs->js, &cfg);
		if (s != NATS_OK) /* made by another node with other settings: use it as it is */
			s = js_KeyValue(&cs->kv, cs->js, name);
		if (s != NATS_OK)
			return -1;
	}
	if (!cs->ctl_sub) {
		ctl_subject(c, c->node, c->node_len, subj, sizeof(subj));
		if (!(cs->ctl_sub = cluster_subscribe_with(c, subj, on_ctl)))
			return -1;
	}
	atomic_store(&cs->ready, true);
	return 0;
}

int cluster_session_init(struct cluster *c)
{
	struct cluster_sessions *cs = mem_calloc(1, sizeof(*cs));

	if (!cs)
		return -1;
	c->sessions = cs;
	for (size_t i = 0; i < SESSION_LANES; i++) {
		struct session_lane *l = &cs->lanes[i];
		l->c = c;
		pthread_mutex_init(&l->lock, NULL);
		pthread_cond_init(&l->cond, NULL);
		if (pthread_create(&l->thread, NULL, sessions_main, l) != 0) {
			log_err("Error: cluster: unable to start the sessions threads.");
			return -1;
		}
		l->running = true;
	}
	return 0;
}

void cluster_session_unsubscribe(struct cluster *c)
{
	struct cluster_sessions *cs = c->sessions;

	if (!cs)
		return;
	atomic_store(&cs->ready, false);
	if (cs->ctl_sub) {
		natsSubscription_Unsubscribe(cs->ctl_sub);
		natsSubscription_Destroy(cs->ctl_sub);
		cs->ctl_sub = NULL;
	}
}

void cluster_session_fini(struct cluster *c)
{
	struct cluster_sessions *cs = c->sessions;

	if (!cs)
		return;
	cluster_session_unsubscribe(c);
	for (size_t i = 0; i < SESSION_LANES; i++) {
		struct session_lane *l = &cs->lanes[i];
		if (!l->running)
			continue;
		pthread_mutex_lock(&l->lock);
		l->stop = true;
		pthread_cond_signal(&l->cond);
		pthread_mutex_unlock(&l->lock);
		pthread_join(l->thread, NULL);
		l->running = false;
	}
	for (size_t i = 0; i < SESSION_LANES; i++) {
		struct session_lane *l = &cs->lanes[i];
		while (l->head) {
			struct session_job *j = l->head;
			l->head = j->next;
			mem_free(j->value);
			mem_free(j);
		}
		pthread_mutex_destroy(&l->lock);
		pthread_cond_destroy(&l->cond);
	}
	kvStore_Destroy(cs->kv);
	jsCtx_Destroy(cs->js);
	mem_free(cs);
	c->sessions = NULL;
}

bool cluster_session_ready(struct cluster *c)
{
	return c->sessions && atomic_load(&c->sessions->ready) && atomic_load(&c->connected);
}

int cluster_session_claim(struct cluster *c, uint64_t request, const char *id, bool clean_start,
			  bool persistent)
{
	return enqueue(c, JOB_CLAIM, request, id, clean_start, persistent, NULL, 0);
}

void cluster_session_ended(struct cluster *c, const struct session *s)
{
	if (s->bridge || cluster_session_handing_over() || !cluster_session_ready(c))
		return;
	(void)enqueue(c, JOB_RELEASE, 0, s->client_id, false, false, NULL, 0);
}

void cluster_session_changed(struct cluster *c, struct session *s)
{
	struct session_reg r = {.instance = c->instance, .persistent = true, .node = c->node,
				.node_len = c->node_len, .id = s->client_id,
				.id_len = strlen(s->client_id)};
	struct wire_out o = {0};

	if (s->bridge || s->expiry_interval == 0 || !cluster_session_ready(c))
		return; /* only a session that outlives its connection is resumed elsewhere */
	r.replay_from = cluster_session_mark(s, cluster_wall_ms());
	struct session_cluster *sc = session_cluster(s);
	if (sc)
		sc->mark = r.replay_from;
	for (const struct session_sub *sub = s->subs; sub; sub = sub->next)
		r.nsubs++;
	session_reg_encode(&o, &r);
	for (const struct session_sub *sub = s->subs; sub; sub = sub->next)
		session_wire_sub_put(&o, &(struct session_wire_sub){.filter = sub->filter,
			.len = sub->len, .qos = sub->qos, .options = sub->flags, .subid = sub->subid});
	if (o.failed) {
		mem_free(o.data);
		return;
	}
	(void)enqueue(c, JOB_UPDATE, 0, s->client_id, false, true, o.data, o.len);
}
