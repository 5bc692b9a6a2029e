/*
 * cluster_replay.c: replays from the stream <js_name>_msgs the QoS 1/2
 * messages a session rebuilt after its node died may not have had
 * acknowledged (cluster.h, cluster_session_replayed()), and those of a live
 * hand-over's window (from when the giver let go, no margin, until the
 * taker's interest is there).
 *
 * The claim (cluster_session.c) rebuilds the subscriptions from the registry
 * and queues a job here with the registry's replay_from. This thread waits
 * until the session's worker says it installed the session, its subscriptions
 * and so their NATS interest (cluster_replay_installed()), then REPLAY_SETTLE_MS
 * more for what NATS delivered before that to be stored (REPLAY_WAIT_MS at most
 * when no word comes: the client left meanwhile), flushes that interest to the
 * server, and reads the stream with a pull consumer from replay_from -
 * CLUSTER_REPLAY_MARGIN_MS up to the stream's last sequence at that moment:
 * later messages reach the session live. It matches
 * each envelope against the session's subscriptions by the MQTT rules and
 * hands the matches, in stream order, to the session's worker
 * (INBOX_CLUSTER_REPLAYED), which delivers them as any message. Overlap with
 * live delivery and with what the client had received gives duplicates
 * (at least once). Bounded by REPLAY_TIME_MS, REPLAY_MAX_SCANNED and
 * REPLAY_MAX_MATCHED; beyond them it stops with a warning.
 */
#include "config.h"

#include "cluster.h"
#include "cluster_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "broker.h"
#include "cluster_session_wire.h"
#include "cluster_wire.h"
#include "log.h"
#include "message.h"
#include "deliver.h"
#include "session.h"
#include "topic.h"
#include "worker.h"

/* After the worker installed the session: a message NATS delivered to this node
 * before then has been stored by JetStream (the publisher's PUBACK waits for it). */
#define REPLAY_SETTLE_MS 500
/* Without word from the worker (the client left before its session came). */
#define REPLAY_WAIT_MS 10000
#define REPLAY_TIME_MS 5000
/* Messages asked of the pull consumer at once, and how long one ask waits. */
#define FETCH_BATCH 256
#define FETCH_WAIT_MS 1000
#define REPLAY_MAX_SCANNED 200000
#define REPLAY_MAX_MATCHED 20000
#define MAX_QUEUED_JOBS 10000

struct replay_job {
	struct replay_job *next;
	int64_t from_ms;            /* wall clock */
	int64_t margin_ms;          /* read from this much earlier */
	int64_t not_before;         /* cluster_now_ms(); earlier once installed (lock) */
	unsigned worker;
	uint32_t nsubs;
	uint8_t *subs;              /* the session's subscriptions as on the wire */
	size_t subs_len;
	size_t id_len;
	char id[];
};

/* What comes to the worker. */
struct cluster_replayed {
	char *id;
	bool complete;              /* every message up to the end was read */
	uint32_t nmsgs;
	struct wire_out msgs;       /* session_wire_msg, state 0, expiry = seconds left */
	int64_t *stored;            /* per message: when the stream took it, wall-clock s */
	uint64_t (*ids)[2];         /* per message: its envelope's instance and sequence */
	size_t scanned;
};

struct cluster_replay {
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct replay_job *head, *tail;
	struct replay_job *current; /* waiting for its time, out of the queue */
	size_t queued;
	bool stop;
};

/* ---- Matching ------------------------------------------------------------------------- */

/* The subscription the message goes by: the highest QoS among those matching; false: none. */
static bool match(const struct replay_job *j, const struct cluster_env *e,
		  struct session_wire_sub *best)
{
	struct wire_in in = {j->subs, j->subs_len, false};
	struct session_wire_sub s;
	const char *group, *inner;
	size_t glen, ilen;
	bool valid, found = false;

	for (uint32_t i = 0; i < j->nsubs && session_wire_sub_get(&in, &s) == 0; i++) {
		/* A shared group had its message delivered to one member already. */
		if (topic_shared_parse(s.filter, s.len, &group, &glen, &inner, &ilen, &valid))
			continue;
		if (!topic_matches(s.filter, s.len, e->topic, e->topic_len))
			continue;
		if (!found || s.qos > best->qos)
			*best = s;
		found = true;
	}
	return found;
}

static void take(struct cluster_replayed *out, const struct replay_job *j, natsMsg *msg,
		 int64_t now_s)
{
	struct cluster_env e;
	struct session_wire_sub sub;
	jsMsgMetaData *meta = NULL;

	if (cluster_env_decode((const uint8_t *)natsMsg_GetData(msg),
			       (size_t)natsMsg_GetDataLength(msg), &e) < 0 ||
	    e.qos == 0 || e.retain || !match(j, &e, &sub))
		return;
	if (natsMsg_GetMetaData(&meta, msg) != NATS_OK)
		return;
	int64_t stored = meta->Timestamp / 1000000000;
	jsMsgMetaData_Destroy(meta);
	uint32_t left = e.expiry;
	if (left) {
		if (now_s - stored >= (int64_t)left)
			return; /* expired meanwhile */
		left -= (uint32_t)(now_s > stored ? now_s - stored : 0);
	}
	int64_t *grown = mem_realloc(out->stored, (out->nmsgs + 1) * sizeof(*grown));
	if (grown)
		out->stored = grown;
	uint64_t (*ids)[2] = grown ? mem_realloc(out->ids, (out->nmsgs + 1) * sizeof(*ids)) : NULL;
	if (!ids) {
		out->msgs.failed = true;
		return;
	}
	out->ids = ids;
	out->ids[out->nmsgs][0] = e.instance;
	out->ids[out->nmsgs][1] = e.seq;
	out->stored[out->nmsgs++] = stored;
	session_wire_msg_put(&out->msgs, &(struct session_wire_msg){
		.qos = e.qos < sub.qos ? e.qos : sub.qos, .subid = sub.subid, .msg_qos = e.qos,
		.expiry = left, .topic = e.topic, .topic_len = (uint16_t)e.topic_len,
		.props = e.props, .props_len = (uint32_t)e.props_len, .payload = e.payload,
		.payload_len = (uint32_t)e.payload_len});
}

/* ---- Reading the stream --------------------------------------------------------------- */

/*
 * The first sequence the stream took at or after from_ns, by a binary search
 * of its messages' times (they ascend with the sequence): the server's own
 * start-by-time was seen to start past messages, or past the end, under load.
 * A message gone from the middle counts as newer, and so does the rest when
 * time runs out: the read starts earlier, never later.
 */
static uint64_t start_seq(struct cluster *c, const char *stream, int64_t from_ns, uint64_t first,
			  uint64_t last, int64_t until)
{
	uint64_t lo = first, hi = last + 1;

	while (lo < hi && cluster_now_ms() < until) {
		uint64_t mid = lo + (hi - lo) / 2;
		natsMsg *m = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetMsg(&m, c->js, stream, mid, NULL, &jerr);
		bool older = s == NATS_OK && natsMsg_GetTime(m) < from_ns;
		natsMsg_Destroy(m);
		if (s != NATS_OK && s != NATS_NOT_FOUND && jerr != JSNoMessageFoundErr)
			return first; /* no answer: everything, as far as time allows */
		if (older)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void read_stream(struct cluster *c, const struct replay_job *j, struct cluster_replayed *out)
{
	char stream[300], filter[300];
	jsStreamInfo *si = NULL;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	int64_t from_ns = (j->from_ms - j->margin_ms) * 1000000, started = cluster_now_ms();
	const char *why = NULL;

	snprintf(stream, sizeof(stream), "%s_msgs", c->js_name);
	snprintf(filter, sizeof(filter), "%s.%s.>", c->prefix, CLUSTER_KIND_QOS);
	/* The session's interest at the server first: what the stream takes later comes live. */
	natsStatus s = natsConnection_FlushTimeout(c->nc, 1000);
	if (s == NATS_OK)
		s = js_GetStreamInfo(&si, c->js, stream, NULL, &jerr);
	if (s != NATS_OK) {
		why = natsStatus_GetText(s);
		goto done;
	}
	uint64_t last = si->State.LastSeq;
	if (si->State.Msgs == 0 || si->State.LastTime < from_ns) {
		out->complete = true; /* nothing stored since */
		goto done;
	}
	uint64_t from_seq = from_ns <= si->State.FirstTime
				    ? si->State.FirstSeq
				    : start_seq(c, stream, from_ns, si->State.FirstSeq, last,
						started + REPLAY_TIME_MS / 2);
	if (from_seq > last) {
		out->complete = true;
		goto done;
	}
	/* A pull consumer from that sequence: each batch is asked for and answered, and
	 * nothing depends on flow control or heartbeats of a push consumer. */
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Config.DeliverPolicy = js_DeliverByStartSequence;
	so.Config.OptStartSeq = from_seq;
	so.Config.AckPolicy = js_AckAll; /* one ack per batch keeps it under MaxAckPending */
	so.Config.MaxAckPending = 4 * FETCH_BATCH;
	so.Config.InactiveThreshold = (int64_t)REPLAY_TIME_MS * 2 * 1000000; /* gone if we are */
	so.Config.MemoryStorage = true;
	so.Config.Replicas = 1;
	if ((s = js_PullSubscribe(&sub, c->js, filter, NULL, NULL, &so, &jerr)) != NATS_OK) {
		why = natsStatus_GetText(s);
		goto done;
	}
	int64_t now_s = cluster_wall_ms() / 1000;
	while (!out->complete && !why) {
		int64_t left = REPLAY_TIME_MS - (cluster_now_ms() - started);
		natsMsgList list = {0};
		if (left <= 0) {
			why = "out of time";
			break;
		}
		if (out->scanned >= REPLAY_MAX_SCANNED || out->nmsgs >= REPLAY_MAX_MATCHED) {
			why = "too many messages";
			break;
		}
		s = natsSubscription_Fetch(&list, sub, FETCH_BATCH, left < FETCH_WAIT_MS ? left : FETCH_WAIT_MS,
					   &jerr);
		if (s == NATS_TIMEOUT)
			continue; /* nothing yet: asked again while there is time */
		if (s != NATS_OK) {
			why = natsStatus_GetText(s);
			break;
		}
		for (int i = 0; i < list.Count && !out->complete && !why; i++) {
			jsMsgMetaData *meta = NULL;
			natsMsg *msg = list.Msgs[i];
			out->scanned++;
			uint64_t seq = natsMsg_GetMetaData(&meta, msg) == NATS_OK ? meta->Sequence.Stream : 0;
			jsMsgMetaData_Destroy(meta);
			take(out, j, msg, now_s);
			if (out->msgs.failed)
				why = "out of memory";
			else if (seq >= last)
				out->complete = true;
		}
		if (list.Count > 0 && !out->complete)
			(void)natsMsg_Ack(list.Msgs[list.Count - 1], NULL);
		natsMsgList_Destroy(&list);
	}
done:
	if (sub) {
		natsSubscription_Unsubscribe(sub);
		natsSubscription_Destroy(sub);
	}
	jsStreamInfo_Destroy(si);
	if (why)
		log_warn("Warning: cluster: the replay of the stream for client %s stopped (%s) "
			 "after %zu messages: some may be missing. Its watermark stays where it was.",
			 j->id, why, out->scanned);
}

/* Until j's time (moved earlier by cluster_replay_installed()); false: stopping.
 * j is r->current, made so where it left the queue: no word is missed between. */
static bool wait_turn(struct cluster_replay *r, struct replay_job *j)
{
	pthread_mutex_lock(&r->lock);
	for (;;) {
		int64_t now = cluster_now_ms();
		if (r->stop || now >= j->not_before)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t wait = j->not_before - now;
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	}
	r->current = NULL;
	bool go = !r->stop;
	pthread_mutex_unlock(&r->lock);
	return go;
}

static void run(struct cluster *c, struct replay_job *j)
{
	struct cluster_replayed *out;

	if (!wait_turn(c->replay, j))
		return;
	out = mem_calloc(1, sizeof(*out));
	if (!out || !(out->id = mem_malloc(j->id_len + 1))) {
		log_err("Error: out of memory replaying the stream for client %s.", j->id);
		if (out)
			mem_free(out);
		return;
	}
	memcpy(out->id, j->id, j->id_len + 1);
	read_stream(c, j, out);
	worker_post(&c->b->workers[j->worker % c->b->nworkers],
		    &(struct inbox_item){.kind = INBOX_CLUSTER_REPLAYED, .ptr = out});
}

static void *replay_main(void *arg)
{
	struct cluster *c = arg;
	struct cluster_replay *r = c->replay;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->stop && !r->head)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->stop)
			break;
		struct replay_job *j = r->head;
		r->head = j->next;
		if (!r->head)
			r->tail = NULL;
		r->queued--;
		r->current = j;
		pthread_mutex_unlock(&r->lock);
		run(c, j);
		mem_free(j->subs);
		mem_free(j);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* ---- The API ------------------------------------------------------------------------- */

int cluster_replay_init(struct cluster *c)
{
	struct cluster_replay *r = mem_calloc(1, sizeof(*r));

	if (!r)
		return -1;
	pthread_condattr_t ca;

	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* wait_turn() counts on it */
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->replay = r;
	if (pthread_create(&r->thread, NULL, replay_main, c) != 0) {
		log_err("Error: cluster: unable to start the replay thread.");
		return -1;
	}
	r->running = true;
	return 0;
}

void cluster_replay_fini(struct cluster *c)
{
	struct cluster_replay *r = c->replay;

	if (!r)
		return;
	if (r->running) {
		pthread_mutex_lock(&r->lock);
		r->stop = true;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->thread, NULL);
	}
	while (r->head) {
		struct replay_job *j = r->head;
		r->head = j->next;
		mem_free(j->subs);
		mem_free(j);
	}
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	mem_free(r);
	c->replay = NULL;
}

int cluster_replay_queue(struct cluster *c, const char *id, size_t id_len, unsigned worker,
			 int64_t from_ms, int64_t margin_ms, const uint8_t *subs, size_t subs_len,
			 uint32_t nsubs)
{
	struct cluster_replay *r = c->replay;
	struct replay_job *j = mem_malloc(sizeof(*j) + id_len + 1);

	if (!j)
		return -1;
	*j = (struct replay_job){.from_ms = from_ms, .margin_ms = margin_ms, .not_before = cluster_now_ms() + REPLAY_WAIT_MS,
				 .worker = worker, .nsubs = nsubs, .subs = mem_malloc(subs_len ? subs_len : 1),
				 .subs_len = subs_len, .id_len = id_len};
	if (!j->subs) {
		mem_free(j);
		return -1;
	}
	memcpy(j->subs, subs, subs_len);
	memcpy(j->id, id, id_len);
	j->id[id_len] = '\0';
	pthread_mutex_lock(&r->lock);
	if (r->stop || r->queued >= MAX_QUEUED_JOBS) {
		pthread_mutex_unlock(&r->lock);
		mem_free(j->subs);
		mem_free(j);
		return -1;
	}
	if (r->tail)
		r->tail->next = j;
	else
		r->head = j;
	r->tail = j;
	r->queued++;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static void install_seen(struct replay_job *j, const char *id, size_t id_len, int64_t soon)
{
	if (j && j->id_len == id_len && memcmp(j->id, id, id_len) == 0 && j->not_before > soon)
		j->not_before = soon;
}

void cluster_replay_installed(struct cluster *c, const char *id)
{
	struct cluster_replay *r = c->replay;
	size_t len = strlen(id);
	int64_t soon = cluster_now_ms() + REPLAY_SETTLE_MS;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	install_seen(r->current, id, len, soon);
	for (struct replay_job *j = r->head; j; j = j->next)
		install_seen(j, id, len, soon);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* ---- On the session's worker ----------------------------------------------------------- */

void cluster_replayed_free(void *batch)
{
	struct cluster_replayed *out = batch;

	mem_free(out->msgs.data);
	mem_free(out->stored);
	mem_free(out->ids);
	mem_free(out->id);
	mem_free(out);
}

void cluster_session_replayed(struct worker *w, void *batch)
{
	struct cluster_replayed *out = batch;
	struct session *s = session_find(&w->sessions, out->id);
	struct wire_in in = {out->msgs.data, out->msgs.len, false};
	uint32_t delivered = 0, skipped = 0;

	struct session_cluster *sc = s ? session_cluster_of(s) : NULL;

	if (!s || s->bridge || !sc || !sc->replaying) {
		log_notice("Cluster: the stream's messages for client %s came when its session was "
			   "gone or new: dropped.", out->id);
		cluster_replayed_free(out);
		return;
	}
	for (uint32_t i = 0; i < out->nmsgs; i++) {
		struct session_wire_msg wm;
		if (session_wire_msg_get(&in, &wm) < 0)
			break;
		if (cluster_seen(s, out->ids[i][0], out->ids[i][1])) {
			skipped++; /* it came live meanwhile */
			continue;
		}
		struct message *m = message_new(wm.topic, wm.topic_len, wm.payload, wm.payload_len,
						wm.msg_qos, false, wm.props, wm.props_len);
		if (!m)
			break;
		if (wm.expiry)
			m->expires = m->created + wm.expiry;
		m->created = out->stored[i]; /* the watermark counts from when the stream took it */
		session_deliver(s, m, wm.qos, 0, wm.subid, 0);
		message_unref(m);
		delivered++;
	}
	/* An incomplete replay keeps the floor: a later failover replays from it again. */
	if (out->complete && delivered + skipped == out->nmsgs)
		sc->replaying = false;
	cluster_seen_free(s);
	log_notice("Cluster: replayed %u QoS 1/2 messages from the stream for client %s (%zu "
		   "read, %u came live%s).", delivered, out->id, out->scanned, skipped,
		   out->complete ? "" : ", incomplete");
	cluster_replayed_free(out);
}
