/*
 * cluster_session_move.c: a session crossing nodes, on the workers that own
 * it. The giving side (cluster_session_serve) closes the connection as a
 * local takeover would, encodes the session when it continues, ends its own
 * copy and answers on NATS; the taking side (cluster_session_install)
 * rebuilds the session from that encoding before its CONNACK.
 */
#include "config.h"

#include "cluster.h"
#include "cluster_int.h"

#include <string.h>
#include <time.h>

#include "alloc.h"
#include "broker.h"
#include "client.h"
#include "decision.h"
#include "cluster_session_wire.h"
#include "connect_state.h"
#include "deliver.h"
#include "log.h"
#include "message.h"
#include "send.h"
#include "session.h"
#include "store.h"
#include "subtree.h"
#include "topic.h"
#include "worker.h"

#include <midge/mqtt.h>

static __thread bool handing_over;

bool cluster_session_handing_over(void)
{
	return handing_over;
}

/* ---- Giving ---------------------------------------------------------------------------- */

static void put_msg(struct wire_out *o, const struct session_msg *sm, int64_t now)
{
	const struct message *m = sm->msg;
	struct session_wire_msg w = {
		.state = sm->state, .mid = sm->mid, .qos = sm->qos, .retain = sm->retain,
		.subid = sm->subid, .msg_qos = m->qos, .msg_retain = m->retain,
		.topic = m->topic, .topic_len = m->topic_len, .props = m->props,
		.props_len = m->props_len, .payload = m->payload, .payload_len = m->payload_len,
		.cluster_instance = m->cluster_instance, .cluster_seq = m->cluster_seq,
	};

	if (m->expires) /* what is left of it; an expired one goes as 1 s and expires there */
		w.expiry = m->expires - now > 0 ? (uint32_t)(m->expires - now) : 1;
	session_wire_msg_put(o, &w);
}

static void encode_session(struct wire_out *o, struct session *s)
{
	const struct session_msgs *q = s->msgs;
	/* The taker keeps this watermark until what moves with the session is acknowledged. */
	/* What the stream takes from now on until the taker's interest is there reaches
	 * no node: the taker replays it (the window). */
	int64_t now_ms = cluster_wall_ms();
	struct session_wire_head h = {.flags = SESSION_WIRE_F_MARK | SESSION_WIRE_F_WINDOW |
					       (session_cluster_of(s) && session_cluster_of(s)->replaying
							? SESSION_WIRE_F_REPLAY : 0),
				      .replay_from = cluster_session_mark(s, now_ms),
				      .window_from = now_ms,
				      .expiry_interval = s->expiry_interval,
				      .protocol = s->protocol, .last_mid = s->last_mid};
	int64_t now = (int64_t)time(NULL);

	for (const struct session_sub *sub = s->subs; sub; sub = sub->next)
		h.nsubs++;
	if (q) {
		h.nqos2 = q->nqos2_in;
		h.nmsgs = q->ninflight + q->q_len;
	}
	session_wire_head_put(o, &h);
	for (const struct session_sub *sub = s->subs; sub; sub = sub->next)
		session_wire_sub_put(o, &(struct session_wire_sub){.filter = sub->filter,
			.len = sub->len, .qos = sub->qos, .options = sub->flags, .subid = sub->subid});
	for (uint32_t i = 0; i < h.nqos2; i++)
		session_wire_qos2_put(o, q->qos2_in[i]);
	for (uint32_t i = 0; q && i < q->ninflight; i++)
		put_msg(o, &q->inflight[i], now);
	for (uint32_t i = 0; q && i < q->q_len; i++)
		put_msg(o, &q->queue[(q->q_head + i) % q->q_cap], now);
	session_wire_tail_put(o, &h);
}

/* A CONNECT of client id waiting here (for the cluster's or a plugin's answer). */
static struct client *pending_connect(struct worker *w, const char *id)
{
	for (size_t i = 0; i < sizeof(w->decisions.buckets) / sizeof(w->decisions.buckets[0]); i++)
		for (struct decision_wait *dw = w->decisions.buckets[i]; dw; dw = dw->hnext) {
			struct client *c = dw->client;
			if (dw->pending && c && c->ext && c->ext->preauth &&
			    c->ext->preauth->client_id && strcmp(c->ext->preauth->client_id, id) == 0)
				return c;
		}
	return NULL;
}

void cluster_session_serve(struct worker *w, void *request)
{
	struct session_takeover *t = request;
	struct cluster *cl = w->broker->cluster;
	struct session *s = session_find(&w->sessions, t->id);
	enum session_reply_status status = SESSION_REPLY_NONE;
	struct wire_out o = {0};

	handing_over = true;
	if (s && !s->bridge && s->client) {
		struct client *old = s->client;
		/* As a local takeover: the will goes unless the session lives on. */
		bool continues = s->expiry_interval > 0 && !t->clean_start;
		if (w->cfg->connection_messages)
			log_notice("Client %s connected to another node, closing old connection.", t->id);
		(void)send_disconnect(old, MQTT_RC_SESSION_TAKEN_OVER);
		client_close(old, NULL, !continues);
		s = session_find(&w->sessions, t->id); /* a clean session ended with it */
		status = SESSION_REPLY_CLOSED;
	} else {
		/* Simultaneous CONNECTs: ours still waits for its answer; the asker goes on,
		 * so ours is closed once accepted. */
		struct client *waiting = pending_connect(w, t->id);
		if (waiting) {
			waiting->ext->preauth->taken_over = true;
			waiting->ext->preauth->taken_clean_start = t->clean_start;
			status = SESSION_REPLY_CLOSED;
		}
	}
	if (s && !s->bridge) {
		if (!t->clean_start && s->expiry_interval > 0) {
			session_reply_begin(&o, SESSION_REPLY_MOVED);
			encode_session(&o, s);
			if (o.failed)
				log_err("Error: out of memory handing the session of client %s to another "
					"node: it ends here.", t->id);
			else
				session_take_over(s); /* it lives on: a will waiting for its delay goes */
		}
		status = o.failed || o.len == 0 ? SESSION_REPLY_CLOSED : SESSION_REPLY_MOVED;
		session_destroy(s);
	}
	handing_over = false;
	if (status != SESSION_REPLY_MOVED) {
		o.len = 0;
		o.failed = false;
		session_reply_begin(&o, status);
	}
	if (cl && !o.failed) {
		natsStatus ns = natsConnection_Publish(cl->nc, t->reply, o.data, (int)o.len);
		if (ns != NATS_OK)
			log_warn("Warning: cluster: the session of client %s could not be sent to the "
				 "node taking it over (%s).", t->id, natsStatus_GetText(ns));
		else if (status == SESSION_REPLY_MOVED)
			log_info("Cluster: the session of client %s moved to another node.", t->id);
	}
	mem_free(o.data);
	mem_free(t);
}

void cluster_session_request_free(void *request)
{
	mem_free(request);
}

/* ---- Taking ---------------------------------------------------------------------------- */

void cluster_session_claimed_free(void *claimed)
{
	struct cluster_claimed *cc = claimed;

	decision_free_data(cc->d);
	mem_free(cc->d);
	mem_free(cc);
}

/* The client left while its session was on the way: keep it, offline, not lose it. */
static void keep_orphan(struct worker *w, const char *id, const struct decision *d)
{
	struct session *s;

	if (session_find(&w->sessions, id)) {
		log_warn("Warning: cluster: the session of client %s came from another node while "
			 "another connection started one here: the moved one is dropped.", id);
		return;
	}
	if (!(s = cluster_session_install(w, id, d->data, d->data_len)))
		return;
	session_detach(s); /* its expiry starts as if the client had just left */
	if (w->broker->cluster)
		cluster_session_changed(w->broker->cluster, s);
	log_notice("Cluster: client %s left before its session arrived; it waits here offline.",
		   id);
}

void cluster_session_claimed(struct worker *w, uint64_t request, void *claimed)
{
	struct cluster_claimed *cc = claimed;

	if (cc->d->data && !decision_pending(w, request))
		keep_orphan(w, cc->id, cc->d);
	decision_answer(w, request, cc->d); /* takes d's data; late ones are dropped */
	mem_free(cc->d);
	mem_free(cc);
}

static int install_sub(struct worker *w, struct session *s, const struct session_wire_sub *ws)
{
	const char *group, *inner;
	size_t glen, ilen;
	bool valid;
	struct subscriber sub = {.session = s, .subid = ws->subid, .qos = ws->qos,
				 .flags = ws->options};

	if (!(topic_shared_parse(ws->filter, ws->len, &group, &glen, &inner, &ilen, &valid)
		      ? valid
		      : topic_filter_valid(ws->filter, ws->len)))
		return -1;
	if (session_sub_put(s, ws->filter, ws->len, ws->qos, ws->options, ws->subid) < 0)
		return -1;
	pthread_rwlock_wrlock(&w->broker->sub_lock);
	int rc = subtree_add_any(&w->broker->subs, ws->filter, ws->len, &sub);
	pthread_rwlock_unlock(&w->broker->sub_lock);
	if (rc < 0)
		return -1;
	store_sub_save(s, ws->filter, ws->len, ws->qos, ws->options, ws->subid);
	return 0;
}

static int install_msg(struct worker *w, struct session *s, const struct session_wire_msg *wm)
{
	struct message *m = message_new(wm->topic, wm->topic_len, wm->payload, wm->payload_len,
					wm->msg_qos, wm->msg_retain, wm->props, wm->props_len);
	bool inflight = wm->state != 0;

	if (!m)
		return -1;
	if (wm->expiry)
		m->expires = m->created + wm->expiry;
	m->cluster_instance = wm->cluster_instance;
	m->cluster_seq = wm->cluster_seq;
	cluster_seen_add(s, m); /* the window's replay reads it again: skipped */
	struct session_msg sm = {.msg = m, .qos = wm->qos, .retain = wm->retain, .subid = wm->subid,
				 .mid = inflight ? wm->mid : 0, .state = wm->state};
	sm.seq = store_delivery_new(w, s, m, wm->qos, wm->retain, true);
	if (inflight && sm.seq)
		store_delivery_update(s, &sm);
	int rc = session_restore_msg(s, sm, inflight); /* takes the reference */
	if (rc < 0)
		message_unref(m);
	if (rc == 1 && sm.seq)
		store_delivery_forget(s, sm.seq);
	return rc < 0 ? -1 : 0;
}

struct session *cluster_session_install(struct worker *w, const char *id, const uint8_t *data,
					size_t len)
{
	struct wire_in in = {data, len, false};
	struct session_wire_head h;
	struct session *s;
	const char *why = "malformed";

	if (session_wire_head_get(&in, &h) < 0 || !(s = session_new(w, id))) {
		log_err("Error: cluster: the session of client %s from another node was not taken "
			"over (%s).", id, in.bad ? "malformed" : "out of memory");
		return NULL;
	}
	s->expiry_interval = h.expiry_interval;
	s->protocol = h.protocol;
	s->receive_max = 65535;
	store_session_save(s); /* its record first: subscriptions and messages are stored under it */
	for (uint32_t i = 0; i < h.nsubs; i++) {
		struct session_wire_sub ws;
		if (session_wire_sub_get(&in, &ws) < 0 || install_sub(w, s, &ws) < 0)
			goto fail;
	}
	for (uint32_t i = 0; i < h.nqos2; i++) {
		uint16_t mid;
		if (session_wire_qos2_get(&in, &mid) < 0 || session_qos2_in_add(s, mid) < 0)
			goto fail;
	}
	for (uint32_t i = 0; i < h.nmsgs; i++) {
		struct session_wire_msg wm;
		if (session_wire_msg_get(&in, &wm) < 0 || install_msg(w, s, &wm) < 0)
			goto fail;
	}
	if (session_wire_tail_get(&in, &h) < 0)
		goto fail;
	struct session_cluster *sc = session_cluster(s);
	if (!sc)
		goto fail;
	sc->floor = h.replay_from;
	sc->dirty = true; /* the floor goes once what came is acknowledged */
	sc->replaying = ((h.flags & SESSION_WIRE_F_REPLAY) && h.replay_from > 0) ||
			       ((h.flags & SESSION_WIRE_F_WINDOW) && h.window_from > 0);
	if (h.last_mid > s->last_mid)
		s->last_mid = h.last_mid;
	/* Its subscriptions, and so their NATS interest, are in place: the stream can be read. */
	if (sc->replaying && w->broker->cluster)
		cluster_replay_installed(w->broker->cluster, id);
	log_info("Cluster: took over the session of client %s (%u subscriptions, %u messages).",
		 id, h.nsubs, h.nmsgs);
	return s;
fail:
	if (!in.bad)
		why = "out of memory";
	log_err("Error: cluster: the session of client %s from another node was not taken over "
		"(%s).", id, why);
	session_destroy(s);
	return NULL;
}
