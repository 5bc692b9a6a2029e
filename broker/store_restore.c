/*
 * store_restore.c: the broker's state back from the store at start (see
 * store.h): every message body once, then the retained topics, then each
 * session with its subscriptions (into the trie), its in-flight messages
 * (re-sent with DUP when the client returns) and its queue, its incoming
 * QoS 2 ids, its will and its expiry, counted from the stored times.
 * Runs before the worker threads start.
 */
#include "config.h"

#include "store_int.h"

#include "alloc.h"
#include "broker.h"
#include "deliver.h"
#include "log.h"
#include "message.h"
#include "session.h"
#include "subtree.h"
#include "topic.h"
#include "will.h"
#include "worker.h"

#include <string.h>
#include <time.h>

/* Message id -> the restored message (open addressing, ids are never 0). */
struct msgmap {
	uint64_t *ids;
	struct message **msgs;
	size_t cap, len;
};

static size_t slot_of(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static int map_grow(struct msgmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	uint64_t *ids = mem_calloc(cap, sizeof(*ids));
	struct message **msgs = mem_calloc(cap, sizeof(*msgs));

	if (!ids || !msgs) {
		mem_free(ids);
		mem_free(msgs);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->ids[i])
			continue;
		size_t k = slot_of(m->ids[i], cap);
		while (ids[k])
			k = (k + 1) & (cap - 1);
		ids[k] = m->ids[i];
		msgs[k] = m->msgs[i];
	}
	mem_free(m->ids);
	mem_free(m->msgs);
	m->ids = ids;
	m->msgs = msgs;
	m->cap = cap;
	return 0;
}

static int map_put(struct msgmap *m, uint64_t id, struct message *msg)
{
	if ((m->len + 1) * 2 > m->cap && map_grow(m) < 0)
		return -1;
	size_t k = slot_of(id, m->cap);
	while (m->ids[k] && m->ids[k] != id)
		k = (k + 1) & (m->cap - 1);
	if (!m->ids[k])
		m->len++;
	else
		message_unref(m->msgs[k]);
	m->ids[k] = id;
	m->msgs[k] = msg;
	return 0;
}

static struct message *map_get(const struct msgmap *m, uint64_t id)
{
	if (!m->cap || !id)
		return NULL;
	for (size_t k = slot_of(id, m->cap); m->ids[k]; k = (k + 1) & (m->cap - 1))
		if (m->ids[k] == id)
			return m->msgs[k];
	return NULL;
}

static void map_free(struct msgmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->ids[i])
			message_unref(m->msgs[i]);
	mem_free(m->ids);
	mem_free(m->msgs);
}

struct restore {
	struct broker *b;
	struct store *st;
	int64_t now;
	struct msgmap map;
	bool failed;
	size_t sessions, subs, inflight, queued, retained, skipped;
	size_t damaged;             /* records naming what is not there, or malformed */
	uint64_t max_seq;
	struct session *s;          /* the session being restored */
};

static struct message *make_message(uint64_t id, const struct persist_msg *pm)
{
	struct message *m = message_new((const char *)pm->topic, pm->topic_len, pm->payload,
					pm->payload_len, pm->qos, pm->retain, pm->props,
					pm->props_len);
	if (m) {
		m->expires = pm->expiry;
		atomic_store(&m->store_id, id);
	}
	return m;
}

static void on_msg(uint64_t id, const struct persist_msg *pm, uint32_t refs, void *arg)
{
	struct restore *r = arg;
	struct message *m;

	if (r->failed || refs == 0)
		return;
	if (!(m = make_message(id, pm)) || map_put(&r->map, id, m) < 0) {
		message_unref(m);
		r->failed = true;
	}
}

static bool expired(const struct message *m, int64_t now)
{
	return m->expires && now >= m->expires;
}

static void on_retained(const uint8_t *topic, size_t len, uint64_t msg_id, void *arg)
{
	struct restore *r = arg;
	struct message *m = map_get(&r->map, msg_id);

	if (r->failed)
		return;
	if (!m || m->topic_len != len || memcmp(m->topic, topic, len) != 0 || m->payload_len == 0) {
		r->damaged++;
		return;
	}
	if (expired(m, r->now)) {
		r->skipped++;
		return;
	}
	if (retain_set(&r->b->retained, m) < 0)
		r->failed = true;
	else
		r->retained++;
}

static void on_sub(const uint8_t *filter, size_t len, const struct persist_sub *ps, void *arg)
{
	struct restore *r = arg;
	struct session *s = r->s;
	const char *f = (const char *)filter, *group, *inner;
	size_t glen, ilen;
	bool valid;
	struct subscriber sub = {.session = s, .subid = ps->sub_id, .qos = ps->qos,
				 .flags = ps->options};

	if (r->failed)
		return;
	if (len > UINT16_MAX || memchr(f, '\0', len) ||
	    !(topic_shared_parse(f, len, &group, &glen, &inner, &ilen, &valid)
		      ? valid
		      : topic_filter_valid(f, len))) {
		r->damaged++;
		return;
	}
	if (session_sub_put(s, f, len, ps->qos, ps->options, ps->sub_id) < 0 ||
	    subtree_add_any(&r->b->subs, f, len, &sub) < 0) {
		r->failed = true;
		return;
	}
	r->subs++;
}

static void on_entry(uint64_t seq, const struct persist_qentry *e, void *arg)
{
	struct restore *r = arg;
	struct message *m = map_get(&r->map, e->msg_id);
	bool inflight = e->state == PERSIST_Q_INFLIGHT && e->packet_id != 0;

	if (r->failed)
		return;
	if (seq > r->max_seq)
		r->max_seq = seq;
	/* A queued message past its expiry is not sent; one in flight was sent already. */
	if (!m || e->qos == 0) {
		r->damaged++;
		return;
	}
	if (!inflight && expired(m, r->now)) {
		r->skipped++;
		return;
	}
	struct session_msg sm = {
		.msg = message_ref(m),
		.seq = seq,
		.qos = e->qos,
		.retain = e->retain,
		.mid = inflight ? e->packet_id : 0,
		.state = !inflight ? 0
			 : (e->flags & PERSIST_QF_PUBREL) ? INFLIGHT_WAIT_PUBCOMP
			 : e->qos == 1 ? INFLIGHT_WAIT_PUBACK : INFLIGHT_WAIT_PUBREC,
	};
	int rc = session_restore_msg(r->s, sm, inflight);
	if (rc < 0) {
		message_unref(m);
		r->failed = true;
		return;
	}
	if (rc == 0)
		inflight ? r->inflight++ : r->queued++;
}

static void restore_will(struct restore *r, struct session *s, const struct persist_session *ps,
			 int64_t since)
{
	struct message *m = map_get(&r->map, ps->will_id);
	struct message *will;
	int64_t left;

	if (!m) {
		r->damaged++;
		return;
	}
	/* The will's own copy: publishing it restamps its expiry. */
	will = message_new(m->topic, m->topic_len, m->payload, m->payload_len, m->qos, m->retain,
			   m->props, m->props_len);
	if (!will) {
		r->failed = true;
		return;
	}
	will->expires = m->expires;
	left = since + (int64_t)ps->will_delay - r->now;
	if (will_delay_start(s, will, left > 0 ? (uint32_t)left : 0) < 0) {
		message_unref(will);
		r->failed = true;
		return;
	}
	s->off->will_delay = ps->will_delay; /* counted from disconnected_at */
}

static void on_session(const uint8_t *cid, size_t len, const struct persist_session *ps, void *arg)
{
	struct restore *r = arg;
	struct broker *b = r->b;
	char *id;
	struct session *s;
	/* Connected when the broker stopped: disconnected now. */
	int64_t since = ps->disconnect_time ? ps->disconnect_time : r->now;

	if (r->failed)
		return;
	if (len == 0 || memchr(cid, '\0', len) || ps->expiry_interval == 0) {
		r->damaged++;
		return;
	}
	if (ps->expiry_interval != PERSIST_NO_EXPIRY && since + (int64_t)ps->expiry_interval <= r->now) {
		r->skipped++;
		return;
	}
	if (!(id = mem_strndup((const char *)cid, len))) {
		r->failed = true;
		return;
	}
	struct worker *w = worker_for_hash(b, session_id_hash(id, len));
	s = session_find(&w->sessions, id) ? NULL : session_new(w, id);
	mem_free(id);
	if (!s) {
		r->skipped++;
		return;
	}
	atomic_store(&s->persisted, true);
	s->expiry_interval = ps->expiry_interval;
	if (!session_offline(s)) {
		r->failed = true;
		return;
	}
	s->off->disconnected_at = since;
	s->protocol = ps->protocol;
	s->listener = ps->listener < b->nlisteners ? ps->listener : 0;
	s->receive_max = 65535;
	if (ps->username && !(s->username = mem_strndup(ps->username, ps->username_len)))
		r->failed = true;
	for (size_t i = 0; i < ps->nqos2_in && !r->failed; i++)
		if (session_qos2_in_add(s, (uint16_t)(ps->qos2_in[2 * i] << 8 | ps->qos2_in[2 * i + 1])) < 0)
			r->failed = true;
	if (ps->will_id)
		restore_will(r, s, ps, since);
	if (ps->expiry_interval != PERSIST_NO_EXPIRY)
		ev_timer_start(w->loop, &s->off->expiry_timer,
			       ev_now(w->loop) + (since + (int64_t)ps->expiry_interval - r->now) * 1000);
	r->s = s;
	if (persist_sub_iter(r->st->p, cid, len, on_sub, r) < 0 ||
	    persist_queue_iter(r->st->p, cid, len, on_entry, r) < 0)
		r->failed = true;
	r->s = NULL;
	r->sessions++;
}

int store_restore(struct broker *b, struct store *st, const char *dir)
{
	struct restore r = {.b = b, .st = st, .now = (int64_t)time(NULL)};
	uint64_t max_id = 0;
	int rc = 0;

	if (persist_msg_iter(st->p, on_msg, &r) < 0 || r.failed ||
	    persist_retained_iter(st->p, on_retained, &r) < 0 || r.failed ||
	    persist_session_iter(st->p, on_session, &r) < 0 || r.failed ||
	    persist_msg_max_id(st->p, &max_id) < 0) {
		log_err("Error: restoring from the store failed: %s.",
			r.failed ? "out of memory" : persist_error(st->p));
		rc = -1;
	}
	atomic_store(&st->last_msg_id, max_id);
	atomic_store(&st->last_seq, r.max_seq);
	map_free(&r.map);
	size_t damaged = r.damaged + (size_t)persist_undecodable(st->p);
	if (rc == 0 && damaged > 0) {
		if (!b->cfg->persistence_recover) {
			log_err("Error: %zu records of the store in %s are damaged. The store was not "
				"changed. To start without them, set persistence_recover: true.",
				damaged, dir);
			return -1;
		}
		log_warn("Warning: %zu damaged records of the store in %s were left out.", damaged, dir);
	}
	if (rc == 0)
		log_notice("Restored %zu retained messages and %zu sessions (%zu subscriptions, "
			   "%zu messages in flight, %zu queued)%s.", r.retained, r.sessions, r.subs,
			   r.inflight, r.queued, r.skipped ? "; skipped what had expired" : "");
	return rc;
}
