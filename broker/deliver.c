/*
 * deliver.c: the outgoing QoS machinery of a session (see deliver.h).
 */
#include "config.h"

#include "deliver.h"

#include "cluster.h"

#include "alloc.h"
#include "broker.h"
#include "bridge.h"
#include "auth.h"
#include "hooks.h"
#include "client.h"
#include "conf.h"
#include "log.h"
#include "message.h"
#include "send.h"
#include "session.h"
#include "store.h"
#include "throttle.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <string.h>
#include <time.h>

static const struct config *cfg_of(const struct session *s)
{
	return s->worker->cfg;
}

/* The Message Expiry Interval has passed: the message is not sent [MQTT-3.3.2-5]. */
static bool expired_at(const struct message *m, int64_t now)
{
	return m->expires && now >= m->expires;
}

static bool expired(const struct message *m)
{
	return m->expires && expired_at(m, (int64_t)time(NULL));
}

static void dropped(struct session *s, enum drop_reason why)
{
	STAT_DROP(s->worker, why);
}

/*
 * QoS 0 has no window of its own: the QoS 0 messages a connection has not
 * yet written count against max_queued_messages / max_queued_bytes, so a
 * subscriber that stops reading cannot grow the broker without bound.
 */
static bool qos0_room(const struct session *s)
{
	const struct config *cfg = cfg_of(s);
	const struct client *c = s->client;

	if (cfg->max_queued_messages > 0 && c->qos0_unsent >= (uint32_t)cfg->max_queued_messages)
		return false;
	if (cfg->max_queued_bytes > 0 && c->qos0_unsent_bytes >= cfg->max_queued_bytes)
		return false;
	return true;
}

static int send_qos0(struct session *s, struct message *m, uint8_t retain, uint32_t subid)
{
	struct client *c = s->client;

	c->qos0_unsent++;
	c->qos0_unsent_bytes += m->payload_len;
	return send_publish(c, m, 0, 0, false, retain, subid);
}

/*
 * The byte limits count payload bytes and, as in mosquitto, admit a message
 * while the total is still below the limit (so one large message always fits).
 */
static bool inflight_room(const struct session *s, const struct message *m)
{
	const struct config *cfg = cfg_of(s);
	uint32_t n = session_inflight(s);

	if (cfg->max_inflight_messages > 0 && n >= (uint32_t)cfg->max_inflight_messages)
		return false;
	if (s->receive_max && n >= s->receive_max)
		return false;
	if (cfg->max_inflight_bytes > 0 && n && s->msgs->inflight_bytes >= cfg->max_inflight_bytes)
		return false;
	return n < 65535;
}

static bool queue_room(const struct session *s)
{
	const struct config *cfg = cfg_of(s);

	if (cfg->max_queued_messages > 0 && session_queued(s) >= (uint32_t)cfg->max_queued_messages)
		return false;
	if (cfg->max_queued_bytes > 0 && session_queued_bytes(s) >= cfg->max_queued_bytes)
		return false;
	return true;
}

static int queue_push(struct session *s, const struct session_msg *sm)
{
	struct session_msgs *q = session_msgs(s);

	if (!q)
		return -1;
	if (q->q_len == q->q_cap) {
		uint32_t cap = q->q_cap ? q->q_cap * 2 : 8;
		struct session_msg *a = mem_malloc(cap * sizeof(*a));
		if (!a)
			return -1;
		for (uint32_t i = 0; i < q->q_len; i++)
			a[i] = q->queue[(q->q_head + i) % q->q_cap];
		mem_free(q->queue);
		q->queue = a;
		q->q_cap = cap;
		q->q_head = 0;
	}
	q->queue[(q->q_head + q->q_len) % q->q_cap] = *sm;
	q->q_len++;
	STAT_ADD(s->worker->stats.queued, 1);
	q->queued_bytes += sm->msg->payload_len;
	return 0;
}

static struct session_msg queue_pop(struct session *s)
{
	struct session_msgs *q = s->msgs;
	struct session_msg sm = q->queue[q->q_head];

	q->q_head = (q->q_head + 1) % q->q_cap;
	q->q_len--;
	STAT_SUB(s->worker->stats.queued, 1);
	q->queued_bytes -= sm.msg->payload_len;
	if (q->q_len == 0) {
		mem_free(q->queue);
		q->queue = NULL;
		q->q_cap = 0;
		q->q_head = 0;
	}
	return sm;
}

uint16_t session_next_mid(struct session *s)
{
	const struct session_msgs *q = s->msgs;

	for (;;) {
		bool used = false;

		s->last_mid++;
		if (s->last_mid == 0)
			s->last_mid = 1;
		for (uint32_t i = 0; q && i < q->ninflight; i++) {
			if (q->inflight[i].mid == s->last_mid) {
				used = true;
				break;
			}
		}
		if (!used)
			return s->last_mid;
	}
}

static void send_failed(struct session *s)
{
	if (s->client)
		client_close(s->client, "out of memory", true);
}

/* Room for one more message in flight; -1 when out of memory. */
static int inflight_reserve(struct session *s)
{
	struct session_msgs *q = session_msgs(s);

	if (!q)
		return -1;
	if (q->ninflight == q->inflight_cap) {
		uint32_t cap = q->inflight_cap ? q->inflight_cap * 2 : 4;
		struct session_msg *a = mem_realloc(q->inflight, cap * sizeof(*a));
		if (!a)
			return -1;
		q->inflight = a;
		q->inflight_cap = cap;
	}
	return 0;
}

/* Puts a QoS 1/2 message in flight and sends it; consumes the reference in sm. */
static void start_flight(struct session *s, struct session_msg sm)
{
	struct session_msgs *q;

	if (inflight_reserve(s) < 0) {
		store_delivery_forget(s, sm.seq);
		message_unref(sm.msg);
		dropped(s, DROP_NO_MEMORY);
		send_failed(s);
		return;
	}
	q = s->msgs;
	sm.mid = session_next_mid(s);
	sm.state = sm.qos == 1 ? INFLIGHT_WAIT_PUBACK : INFLIGHT_WAIT_PUBREC;
	q->inflight[q->ninflight++] = sm;
	q->inflight_bytes += sm.msg->payload_len;
	STAT_ADD(s->worker->stats.inflight, 1);
	if (sm.seq) {
		store_delivery_update(s, &sm);
		/* QoS 2 goes out once its packet id is on disk: a restart re-sends it under the
		 * same id, which the client recognises, instead of a new one it would deliver
		 * twice. */
		if (sm.qos == 2)
			store_hold(s->client);
	}
	if (send_publish(s->client, sm.msg, sm.qos, sm.mid, false, sm.retain, sm.subid) < 0)
		send_failed(s);
}

/*
 * Whether m fits the client's Maximum Packet Size. The estimate leaves out a
 * topic alias (which only makes the packet smaller): a message that fits
 * only thanks to an alias is dropped, never one that does not fit sent.
 */
static bool fits_client(const struct session *s, const struct message *m, uint8_t qos,
			uint32_t subid)
{
	const struct client *c = s->client;
	struct mqtt_props_out props = {
		.raw = {m->props, m->props_len},
		.has_message_expiry = m->expires != 0,
		.subscription_ids = &subid,
		.subscription_id_count = subid ? 1 : 0,
	};
	struct mqtt_publish_out p = {
		.qos = qos,
		.packet_id = qos ? 1 : 0,
		.topic = {(const uint8_t *)m->topic, m->topic_len},
		.payload = {m->payload, m->payload_len},
		.props = &props,
	};

	uint32_t max;

	if (!c || c->protocol != MQTT_PROTO_V5 || !(max = client_max_packet_out(c)))
		return true;
	return mqtt_size_publish(&p, c->protocol) <= max;
}

/* Too large for this client: discarded as if it had been sent [MQTT-3.1.2-25]. */
static bool oversized(struct session *s, const struct message *m, uint8_t qos, uint32_t subid)
{
	if (fits_client(s, m, qos, subid))
		return false;
	if (log_enabled(LOG_T_DEBUG))
		log_debug("Dropped a message on %s for %s: larger than its maximum packet size.",
			  m->topic, s->client_id);
	dropped(s, DROP_TOO_LARGE);
	return true;
}

/* Sends queued messages while the window has room. */
static void pump(struct session *s)
{
	while (s->client && session_queued(s) > 0) {
		struct session_msg *head = &s->msgs->queue[s->msgs->q_head];

		if (head->qos > 0 && !inflight_room(s, head->msg))
			break;
		if (head->qos == 0 && !qos0_room(s))
			break; /* resumed when the connection has written its output */
		struct session_msg sm = queue_pop(s);
		if (expired(sm.msg) || oversized(s, sm.msg, sm.qos, sm.subid)) {
			if (expired(sm.msg))
				dropped(s, DROP_EXPIRED);
			store_delivery_forget(s, sm.seq);
			message_unref(sm.msg);
			continue;
		}
		if (sm.qos == 0) {
			if (send_qos0(s, sm.msg, sm.retain, sm.subid) < 0)
				send_failed(s);
			message_unref(sm.msg);
		} else {
			start_flight(s, sm);
		}
	}
	throttle_queue_changed(s);
}

/*
 * Drops the queued messages whose expiry has passed, keeping the order of
 * the others. Expired messages are otherwise dropped when they reach the
 * head of the queue; this runs when they would take room from new ones.
 */
static void queue_drop_expired(struct session *s)
{
	struct session_msgs *q = s->msgs;
	int64_t now = (int64_t)time(NULL);
	uint32_t kept = 0;

	if (!q)
		return;
	for (uint32_t i = 0; i < q->q_len; i++) {
		struct session_msg sm = q->queue[(q->q_head + i) % q->q_cap];

		if (expired_at(sm.msg, now)) {
			q->queued_bytes -= sm.msg->payload_len;
			STAT_SUB(s->worker->stats.queued, 1);
			dropped(s, DROP_EXPIRED);
			store_delivery_forget(s, sm.seq);
			message_unref(sm.msg);
			continue;
		}
		q->queue[(q->q_head + kept) % q->q_cap] = sm;
		kept++;
	}
	q->q_len = kept;
	if (kept == 0) {
		mem_free(q->queue);
		q->queue = NULL;
		q->q_cap = 0;
		q->q_head = 0;
	}
}

static void enqueue(struct session *s, struct message *m, uint8_t qos, uint8_t retain,
		    uint32_t subid, uint64_t seq)
{
	struct session_msg sm = {.msg = m, .seq = seq, .qos = qos, .retain = retain, .subid = subid};

	if (!queue_room(s))
		queue_drop_expired(s);
	/* Past the limits, an online client's QoS 1/2 messages are still kept
	 * while their publishers wait for it to drain (throttle.h). */
	if ((!queue_room(s) && !throttle_may_overfill(s, qos)) || queue_push(s, &sm) < 0) {
		store_delivery_forget(s, seq);
		dropped(s, DROP_QUEUE_FULL);
		return;
	}
	message_ref(m);
	throttle_queue_changed(s);
}

static void deliver_checked(struct session *s, struct message *m, uint8_t qos, uint8_t retain,
			    uint32_t subid, uint64_t seq);

void session_deliver(struct session *s, struct message *m, uint8_t qos, uint8_t retain,
		     uint32_t subid, uint64_t seq)
{
	struct message *out = m;

	if (s->dead)
		return; /* its stored entries went with it */
	/* Reading is checked per delivered message: a reloaded ACL applies at once.
	 * A plugin may hand this subscriber its own version of the message. */
	if (expired(m) || !auth_may_receive(s, m) || !hook_message_out(s, &out)) {
		dropped(s, expired(m) ? DROP_EXPIRED : DROP_DENIED);
		store_delivery_forget(s, seq);
		return;
	}
	if (s->bridge) {
		/* To another broker: its topic, and a plugin's say. */
		struct message *remote = bridge_outgoing(s, out);
		if (out != m)
			message_unref(out);
		if (!remote) {
			store_delivery_forget(s, seq);
			return;
		}
		if (remote == m)
			message_unref(remote); /* the caller's reference covers it */
		out = remote;
	}
	if (!seq) {
		seq = store_delivery_new(s->worker, s, out, qos, retain, false);
	} else if (out != m) {
		struct session_msg sm = {.msg = out, .seq = seq, .qos = qos, .retain = retain};
		store_delivery_replace(s, &sm);
	}
	/* A cluster follows what reaches the session (cluster_seen.c, and the watermark
	 * timer of cluster_mark.c); a broker alone skips this. */
	if (s->worker->broker->cluster) {
		struct session_cluster *sc = qos > 0 ? session_cluster(s) : session_cluster_of(s);
		if (sc && sc->replaying)
			cluster_seen_add(s, m);
		if (sc && qos > 0) {
			sc->dirty = true;
			sc->last_msg = m->created;
		}
	}
	deliver_checked(s, out, qos, retain, subid, seq);
	if (out != m)
		message_unref(out);
}

static void deliver_checked(struct session *s, struct message *m, uint8_t qos, uint8_t retain,
			    uint32_t subid, uint64_t seq)
{
	if (s->client && oversized(s, m, qos, subid)) {
		store_delivery_forget(s, seq);
		return;
	}
	if (!s->client) {
		/* Offline: QoS 0 only when the operator asked for it. */
		if (qos > 0 || cfg_of(s)->queue_qos0_messages || s->queue_qos0)
			enqueue(s, m, qos, retain, subid, seq);
		else
			dropped(s, DROP_OFFLINE_QOS0);
		return;
	}
	if (qos == 0) {
		if (!qos0_room(s)) {
			dropped(s, DROP_QUEUE_FULL);
			return;
		}
		if (send_qos0(s, m, retain, subid) < 0)
			send_failed(s);
		return;
	}
	/* Keep order: nothing overtakes messages already waiting. */
	if (session_queued(s) > 0 || !inflight_room(s, m)) {
		enqueue(s, m, qos, retain, subid, seq);
		return;
	}
	start_flight(s, (struct session_msg){
		.msg = message_ref(m), .seq = seq, .qos = qos, .retain = retain, .subid = subid});
}


void session_on_drained(struct session *s)
{
	if (session_queued(s) > 0)
		pump(s);
}

void session_resume(struct session *s)
{
	/* What is in flight was sent once: its onward delivery has started, so it
	 * is re-sent even past its expiry [MQTT-3.3.2-5], with an expiry of 0 left. */
	for (uint32_t i = 0; i < session_inflight(s) && s->client; i++) {
		struct session_msg *sm = &s->msgs->inflight[i];
		int rc;

		if (sm->state == INFLIGHT_WAIT_PUBCOMP)
			rc = send_ack(s->client, MQTT_PUBREL, sm->mid, 0);
		else
			rc = send_publish(s->client, sm->msg, sm->qos, sm->mid, true, sm->retain,
					  sm->subid);
		if (rc < 0)
			send_failed(s);
	}
	pump(s);
}

/* The in-flight message with packet id mid, or NULL. */
static struct session_msg *find_inflight(const struct session *s, uint16_t mid)
{
	const struct session_msgs *q = s->msgs;

	for (uint32_t i = 0; q && i < q->ninflight; i++)
		if (q->inflight[i].mid == mid)
			return &q->inflight[i];
	return NULL;
}

static void finish(struct session *s, struct session_msg *at)
{
	struct session_msgs *q = s->msgs;
	struct session_msg sm = *at;

	q->inflight_bytes -= sm.msg->payload_len;
	memmove(at, at + 1, (size_t)(q->inflight + q->ninflight - at - 1) * sizeof(*at));
	q->ninflight--;
	STAT_SUB(s->worker->stats.inflight, 1);
	store_delivery_forget(s, sm.seq);
	/* The window's array is kept: it is small and reused by the next message. */
	message_unref(sm.msg);
	pump(s);
}

bool session_on_puback(struct session *s, uint16_t mid)
{
	struct session_msg *sm = find_inflight(s, mid);

	if (!sm || sm->state != INFLIGHT_WAIT_PUBACK)
		return false;
	finish(s, sm);
	return true;
}

bool session_on_pubrec(struct session *s, uint16_t mid)
{
	struct session_msg *sm = find_inflight(s, mid);

	if (!sm || sm->state == INFLIGHT_WAIT_PUBACK)
		return false;
	/* A repeated PUBREC (after a resend) is answered with PUBREL again. */
	if (sm->state != INFLIGHT_WAIT_PUBCOMP) {
		sm->state = INFLIGHT_WAIT_PUBCOMP;
		store_delivery_update(s, sm);
		/* After PUBREL the client forgets the id: a restart must not send the PUBLISH
		 * again, so the new state is on disk first. */
		if (sm->seq)
			store_hold(s->client);
	}
	if (send_ack(s->client, MQTT_PUBREL, mid, 0) < 0)
		send_failed(s);
	return true;
}

bool session_on_pubcomp(struct session *s, uint16_t mid)
{
	struct session_msg *sm = find_inflight(s, mid);

	if (!sm || sm->state != INFLIGHT_WAIT_PUBCOMP)
		return false;
	finish(s, sm);
	return true;
}

bool session_on_pubcomp_forced(struct session *s, uint16_t mid)
{
	struct session_msg *sm = find_inflight(s, mid);

	if (!sm || sm->state != INFLIGHT_WAIT_PUBREC)
		return false;
	finish(s, sm);
	return true;
}

int session_restore_msg(struct session *s, struct session_msg sm, bool inflight)
{
	struct session_msgs *q;

	if (!inflight)
		return queue_push(s, &sm);
	if (find_inflight(s, sm.mid)) {
		message_unref(sm.msg);
		return 1;
	}
	if (inflight_reserve(s) < 0)
		return -1;
	q = s->msgs;
	q->inflight[q->ninflight++] = sm;
	q->inflight_bytes += sm.msg->payload_len;
	STAT_ADD(s->worker->stats.inflight, 1);
	if (sm.mid > s->last_mid)
		s->last_mid = sm.mid;
	return 0;
}
