/*
 * cluster_qos.c: QoS 1/2 messages through JetStream, so that a publisher's
 * PUBACK or PUBREC promises the message is safely in the cluster.
 *
 * The stream <js_name>_msgs captures <prefix>.q.> (file storage, the
 * cluster's replicas, cluster.stream_max_age (1 h), a 2 minute duplicate
 * window); a setup job creates it or brings its settings in line. Once it
 * is there and NATS is connected (or was, moments ago: a move to another
 * NATS server), cluster_publish() gives each QoS 1/2 message to
 * js_PublishAsync with a Msg-Id and records it in its worker's cluster_acks; the hold (store.c) keeps the publisher's acknowledgement
 * until the worker's settled prefix passes it. Nodes that subscribe get the
 * message as any NATS message: JetStream only adds a copy.
 *
 * JetStream's answers arrive on libnats's delivery thread, which settles
 * the message under its worker's lock and wakes the worker. A message with
 * no answer, or no responder (a stream leader being elected answers nothing
 * for seconds), is sent again by the cluster thread with the same Msg-Id
 * (the stream drops the copy) until CONFIRM_MS after it was published; then
 * it fails, and so does one JetStream refuses: the publisher's connection
 * closes without the acknowledgement and the client sends it again.
 */
#include "config.h"

#include "cluster.h"
#include "cluster_int.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "broker.h"
#include "cluster_wire.h"
#include "ev.h"
#include "log.h"
#include "worker.h"

/* How long a message may take to be confirmed, resends included: longer than a
 * stream leader election after a NATS server died (4 to 10 s). */
#define CONFIRM_MS 15000
/* NATS lost for this long is an outage, not a move to another server (which
 * takes well under a second): QoS 1/2 messages then go the plain way and are
 * acknowledged at once, and so are those waiting. Until then they wait in
 * libnats's reconnect buffer, their acknowledgements held like any other. */
#define RECONNECT_GRACE_MS 5000
/* How long one attempt waits for its answer. */
#define ATTEMPT_MS 2000
#define STREAM_DUPLICATES_NS (120LL * 1000000000LL)
/* Messages in flight to JetStream (all workers) before a publish waits a little, then fails. */
#define MAX_PENDING 65536
#define STALL_MS 50
/* The stream is looked for again at most this often after "no responders". */
#define STREAM_CHECK_MS 2000
#define FAILURE_LOG_MS 10000

static void stream_names(const struct cluster *c, char *name, size_t nsize, char *subj,
			 size_t ssize)
{
	snprintf(name, nsize, "%s_msgs", c->js_name);
	snprintf(subj, ssize, "%s.%s.>", c->prefix, CLUSTER_KIND_QOS);
}

/* NATS lost for longer than a move to another server takes. */
static bool outage(struct cluster *c, int64_t now)
{
	return !atomic_load(&c->connected) &&
	       now - atomic_load(&c->lost_at) >= RECONNECT_GRACE_MS;
}

/* ---- Settling ---------------------------------------------------------------------- */

/* Settles message seq wherever it is pending; false when it is not. */
static bool settle(struct cluster *c, uint64_t seq, bool confirmed)
{
	for (unsigned i = 0; i < c->nwacks; i++) {
		struct cluster_worker_acks *wa = &c->wacks[i];
		pthread_mutex_lock(&wa->lock);
		int r = cluster_acks_settle(&wa->acks, seq, confirmed);
		pthread_mutex_unlock(&wa->lock);
		if (r < 0)
			continue;
		atomic_fetch_add_explicit(confirmed ? &c->confirmed : &c->unconfirmed, 1,
					  memory_order_relaxed);
		if (r > 0)
			ev_async_send(&c->b->workers[i].wake);
		return true;
	}
	return false;
}

/* The deadline of pending message seq; false when it is not pending. */
static bool pending_deadline(struct cluster *c, uint64_t seq, int64_t *deadline)
{
	for (unsigned i = 0; i < c->nwacks; i++) {
		struct cluster_worker_acks *wa = &c->wacks[i];
		pthread_mutex_lock(&wa->lock);
		bool found = cluster_acks_deadline(&wa->acks, seq, deadline);
		pthread_mutex_unlock(&wa->lock);
		if (found)
			return true;
	}
	return false;
}

/* Our own envelope sequence of a message we published; false for anything else. */
static bool own_seq(struct cluster *c, natsMsg *msg, uint64_t *seq)
{
	const char *id = NULL;
	uint64_t instance;

	return natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id &&
	       cluster_msg_id_parse(id, &instance, seq) == 0 && instance == c->instance;
}

static void queue_resend(struct cluster *c, natsMsg **msg)
{
	pthread_mutex_lock(&c->resend_lock);
	if (c->nresend == c->resend_cap) {
		size_t cap = c->resend_cap ? c->resend_cap * 2 : 64;
		natsMsg **r = mem_realloc(c->resend, cap * sizeof(*r));
		if (!r) {
			pthread_mutex_unlock(&c->resend_lock);
			return; /* not resent: it fails at its deadline */
		}
		c->resend = r;
		c->resend_cap = cap;
	}
	c->resend[c->nresend++] = *msg;
	*msg = NULL;
	pthread_mutex_unlock(&c->resend_lock);
}

/* JetStream's answer (or libnats's timeout) for one message; libnats's thread. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct cluster *c = closure;
	uint64_t seq;
	int64_t deadline;

	(void)js;
	if (atomic_load(&c->stopping) || !own_seq(c, msg, &seq))
		goto out;
	if (pa) {
		settle(c, seq, true);
		goto out;
	}
	/* No answer or no responder: try again while there is time. JetStream's own
	 * refusals (an error code) would only be refused again. */
	if (pae && pae->ErrCode == 0 && pending_deadline(c, seq, &deadline) &&
	    cluster_now_ms() + 100 < deadline) {
		if (pae->Err == NATS_NO_RESPONDERS)
			atomic_store(&c->stream_check, true);
		queue_resend(c, &msg);
		goto out;
	}
	if (settle(c, seq, false))
		log_debug("Cluster: JetStream did not take message %llu: %s.",
			  (unsigned long long)seq,
			  pae && pae->ErrText ? pae->ErrText : pae ? natsStatus_GetText(pae->Err) : "?");
out:
	natsMsg_Destroy(msg);
}

void cluster_qos_js_options(struct cluster *c, jsOptions *o)
{
	o->Wait = 3000;
	o->PublishAsync.AckHandler = on_ack;
	o->PublishAsync.AckHandlerClosure = c;
	o->PublishAsync.MaxPending = MAX_PENDING;
	o->PublishAsync.StallWait = STALL_MS;
}

/* ---- Publishing (workers) ------------------------------------------------------------ */

bool cluster_qos_publish(struct cluster *c, unsigned worker, const char *subj, const void *data,
			 size_t size, uint64_t seq)
{
	struct cluster_worker_acks *wa = &c->wacks[worker];
	char id[CLUSTER_MSG_ID_MAX];
	jsPubOptions po;
	uint64_t n;
	natsStatus s;

	if (!atomic_load(&c->stream_ready) || (!atomic_load(&c->connected) && outage(c, cluster_now_ms())))
		return false;
	pthread_mutex_lock(&wa->lock);
	n = cluster_acks_add(&wa->acks, seq, cluster_now_ms() + CONFIRM_MS);
	pthread_mutex_unlock(&wa->lock);
	if (n == 0)
		return false; /* out of memory: sent the old way, unconfirmed */
	wa->last_given = n;
	jsPubOptions_Init(&po);
	cluster_msg_id(id, c->instance, seq);
	po.MsgId = id;
	po.MaxWait = ATTEMPT_MS;
	s = js_PublishAsync(c->js, subj, data, (int)size, &po);
	if (s != NATS_OK) {
		log_debug("Cluster: JetStream publish failed: %s.", natsStatus_GetText(s));
		settle(c, seq, false);
	}
	return true;
}

uint64_t cluster_take_submitted(struct cluster *c, unsigned worker)
{
	uint64_t n = c->wacks[worker].last_given;

	c->wacks[worker].last_given = 0;
	return n;
}

uint64_t cluster_confirmed(struct cluster *c, unsigned worker, const uint64_t **failed,
			   size_t *nfailed)
{
	struct cluster_worker_acks *wa = &c->wacks[worker];
	uint64_t done;

	wa->ntaken = 0;
	pthread_mutex_lock(&wa->lock);
	done = wa->acks.done;
	cluster_acks_take_failed(&wa->acks, &wa->taken, &wa->ntaken, &wa->taken_cap);
	pthread_mutex_unlock(&wa->lock);
	*failed = wa->taken;
	*nfailed = wa->ntaken;
	return done;
}

/* ---- The stream (cluster thread) ---------------------------------------------------- */

static void stream_config(const struct cluster *c, jsStreamConfig *sc, const char *name,
			  const char **subj)
{
	jsStreamConfig_Init(sc);
	sc->Name = name;
	sc->Subjects = subj;
	sc->SubjectsLen = 1;
	sc->Storage = js_FileStorage;
	sc->Replicas = c->replicas;
	sc->Retention = js_LimitsPolicy;
	sc->MaxAge = c->stream_max_age_ns;
	sc->Discard = js_DiscardOld;
	sc->Duplicates = STREAM_DUPLICATES_NS;
}

static bool captures(const jsStreamConfig *have, const char *subj)
{
	for (int i = 0; i < have->SubjectsLen; i++)
		if (strcmp(have->Subjects[i], subj) == 0)
			return true;
	return false;
}

static bool same_config(const jsStreamConfig *have, const jsStreamConfig *want)
{
	return have->SubjectsLen == 1 && captures(have, want->Subjects[0]) &&
	       have->Storage == want->Storage && have->Replicas == want->Replicas &&
	       have->Retention == want->Retention && have->MaxAge == want->MaxAge &&
	       have->Discard == want->Discard && have->Duplicates == want->Duplicates;
}

int cluster_qos_stream_setup(struct cluster *c)
{
	char name[300], subj_buf[300];
	const char *subj = subj_buf;
	jsStreamConfig want;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	stream_names(c, name, sizeof(name), subj_buf, sizeof(subj_buf));
	stream_config(c, &want, name, &subj);
	s = js_GetStreamInfo(&si, c->js, name, NULL, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		s = js_AddStream(&si, c->js, &want, NULL, &jerr);
		if (s == NATS_OK)
			log_notice("Cluster: created the JetStream stream %s (%s, %d replicas).", name,
				   subj, c->replicas);
	} else if (s == NATS_OK && !same_config(si->Config, &want)) {
		bool usable = captures(si->Config, subj);
		jsStreamInfo_Destroy(si);
		si = NULL;
		s = js_UpdateStream(&si, c->js, &want, NULL, &jerr);
		if (s == NATS_OK) {
			log_notice("Cluster: updated the settings of the JetStream stream %s.", name);
		} else if (usable) {
			/* Some settings (storage) cannot change; the stream still keeps our messages. */
			log_warn("Warning: cluster: the JetStream stream %s keeps settings of its own "
				 "(%s).", name, nats_GetLastError(NULL) ? nats_GetLastError(NULL)
									: natsStatus_GetText(s));
			s = NATS_OK;
		}
	}
	jsStreamInfo_Destroy(si);
	if (s != NATS_OK)
		return -1;
	atomic_store(&c->stream_ready, true);
	return 0;
}

/* "No responders": the stream may be gone (deleted by hand); made again if so. */
static void check_stream(struct cluster *c, int64_t now)
{
	char name[300], subj[300];
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;

	if (now < c->next_stream_check || !atomic_exchange(&c->stream_check, false))
		return;
	c->next_stream_check = now + STREAM_CHECK_MS;
	stream_names(c, name, sizeof(name), subj, sizeof(subj));
	natsStatus s = js_GetStreamInfo(&si, c->js, name, NULL, &jerr);
	jsStreamInfo_Destroy(si);
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		log_warn("Warning: cluster: the JetStream stream %s is gone; making it again.", name);
		(void)cluster_qos_stream_setup(c);
	}
}

/* Sends again what got no answer; what ran out of time fails instead. */
static void resend(struct cluster *c, int64_t now)
{
	natsMsg **list;
	size_t n;

	if (!atomic_load(&c->connected))
		return; /* kept for later: their deadlines still apply */
	pthread_mutex_lock(&c->resend_lock);
	list = c->resend;
	n = c->nresend;
	c->resend = NULL;
	c->nresend = c->resend_cap = 0;
	pthread_mutex_unlock(&c->resend_lock);
	for (size_t i = 0; i < n; i++) {
		uint64_t seq;
		int64_t deadline;
		if (own_seq(c, list[i], &seq) && pending_deadline(c, seq, &deadline) && now < deadline) {
			jsPubOptions po;
			jsPubOptions_Init(&po);
			po.MaxWait = deadline - now < ATTEMPT_MS ? deadline - now : ATTEMPT_MS;
			/* Core subscribers had the first attempt: marked, so shared groups
			 * (whose members are on several nodes) drop it (cluster_shared.c). */
			if (natsMsgHeader_Set(list[i], CLUSTER_RESEND_HEADER, "1") != NATS_OK ||
			    js_PublishMsgAsync(c->js, &list[i], &po) != NATS_OK)
				settle(c, seq, false);
		}
		natsMsg_Destroy(list[i]); /* NULL when libnats took it */
	}
	mem_free(list);
}

/* An outage: the messages still waiting for JetStream are acknowledged as the
 * plain ones are (they stay in libnats's reconnect buffer). */
static void release_waiting(struct cluster *c)
{
	size_t released = 0;

	for (unsigned i = 0; i < c->nwacks; i++) {
		struct cluster_worker_acks *wa = &c->wacks[i];
		pthread_mutex_lock(&wa->lock);
		size_t n = cluster_acks_release(&wa->acks);
		pthread_mutex_unlock(&wa->lock);
		if (n) {
			released += n;
			ev_async_send(&c->b->workers[i].wake);
		}
	}
	if (released)
		log_warn("Warning: cluster: NATS unreachable for %d s: %zu QoS 1/2 messages "
			 "acknowledged without JetStream's confirmation.", RECONNECT_GRACE_MS / 1000,
			 released);
}

void cluster_qos_tick(struct cluster *c, int64_t now)
{
	if (outage(c, now))
		release_waiting(c);
	for (unsigned i = 0; i < c->nwacks; i++) {
		struct cluster_worker_acks *wa = &c->wacks[i];
		pthread_mutex_lock(&wa->lock);
		size_t n = cluster_acks_expire(&wa->acks, now);
		pthread_mutex_unlock(&wa->lock);
		if (n) {
			atomic_fetch_add(&c->unconfirmed, n);
			ev_async_send(&c->b->workers[i].wake);
		}
	}
	resend(c, now);
	check_stream(c, now);
	uint64_t failed = atomic_load(&c->unconfirmed);
	if (failed != c->failures_logged && now >= c->next_failure_log) {
		log_warn("Warning: cluster: %llu QoS 1/2 messages were not confirmed by JetStream in "
			 "time (%llu so far); their publishers were disconnected to send them again.",
			 (unsigned long long)(failed - c->failures_logged), (unsigned long long)failed);
		c->failures_logged = failed;
		c->next_failure_log = now + FAILURE_LOG_MS;
	}
}

/* ---- Start and stop ------------------------------------------------------------------- */

int cluster_qos_init(struct cluster *c, unsigned nworkers)
{
	c->wacks = mem_calloc(nworkers, sizeof(*c->wacks));
	if (!c->wacks)
		return -1;
	c->nwacks = nworkers;
	for (unsigned i = 0; i < nworkers; i++)
		pthread_mutex_init(&c->wacks[i].lock, NULL);
	pthread_mutex_init(&c->resend_lock, NULL);
	return 0;
}

void cluster_qos_free(struct cluster *c)
{
	if (!c->wacks)
		return;
	for (size_t i = 0; i < c->nresend; i++)
		natsMsg_Destroy(c->resend[i]);
	mem_free(c->resend);
	for (unsigned i = 0; i < c->nwacks; i++) {
		cluster_acks_free(&c->wacks[i].acks);
		mem_free(c->wacks[i].taken);
		pthread_mutex_destroy(&c->wacks[i].lock);
	}
	pthread_mutex_destroy(&c->resend_lock);
	mem_free(c->wacks);
	c->wacks = NULL;
}
