/*
 * store_record.c: the broker's state as store records (see store.h):
 * sessions, subscriptions, queue entries, retained topics, and message
 * bodies stored once under an id claimed by the first worker that needs it.
 */
#include "config.h"

#include "store_int.h"

#include "alloc.h"
#include "broker.h"
#include "client.h"
#include "log.h"
#include "message.h"
#include "session.h"
#include "worker.h"

#include <string.h>

static void recorded(struct worker *w, int rc, const char *what)
{
	struct store *st = w->broker->store;

	if (rc != 0 && st)
		store_log_failure(st, what, rc);
}

/*
 * The store id of m, claiming one (and storing the body in w's batch) when
 * it has none. A claimed message is in the batch of the worker that claimed
 * it, submitted before any other worker can learn the id, except through the
 * retained store: `reput` stores the body again (same id, same content).
 */
static uint64_t message_id(struct worker *w, struct store *st, struct persist_batch *b,
			   struct message *m, bool reput)
{
	uint64_t id = atomic_load_explicit(&m->store_id, memory_order_acquire);
	struct persist_msg pm = {
		.qos = m->qos,
		.retain = m->retain,
		.expiry = m->expires,
		.topic = (const uint8_t *)m->topic,
		.topic_len = m->topic_len,
		.payload = m->payload,
		.payload_len = m->payload_len,
		.props = m->props,
		.props_len = m->props_len,
	};

	if (id == 0) {
		uint64_t mine = atomic_fetch_add(&st->last_msg_id, 1) + 1;
		if (atomic_compare_exchange_strong(&m->store_id, &id, mine)) {
			id = mine;
			reput = true;
		}
	}
	if (reput)
		recorded(w, persist_msg_put(b, id, &pm), "storing a message");
	return id;
}

/* --- sessions --- */

static bool outlives_connection(const struct session *s)
{
	return s->expiry_interval > 0;
}

void store_session_save(struct session *s)
{
	struct worker *w = s->worker;
	struct store *st = store_of(w->broker);
	struct persist_batch *b;
	struct message *will = NULL;
	uint32_t will_delay = 0;
	uint8_t ids_small[64], *ids = ids_small;
	uint32_t nqos2_in = session_qos2_in_count(s);
	int rc;

	if (!st)
		return;
	if (!outlives_connection(s)) {
		store_session_forget(s);
		return;
	}
	if (!(b = store_batch(w)))
		return;
	if (s->client && s->client->will) {
		will = s->client->will;
		will_delay = client_will_delay(s->client);
	} else if (!s->client && s->off && s->off->will) {
		will = s->off->will;
		will_delay = s->off->will_delay;
	}
	if (nqos2_in * 2 > sizeof(ids_small) && !(ids = mem_malloc(nqos2_in * 2))) {
		recorded(w, PERSIST_ENOMEM, "storing a session");
		return;
	}
	for (uint32_t i = 0; i < nqos2_in; i++) {
		ids[2 * i] = (uint8_t)(s->msgs->qos2_in[i] >> 8);
		ids[2 * i + 1] = (uint8_t)s->msgs->qos2_in[i];
	}
	struct persist_session ps = {
		.expiry_interval = s->expiry_interval,
		.disconnect_time = s->client ? 0 : session_disconnected_at(s),
		.protocol = s->protocol >= 3 && s->protocol <= 5 ? s->protocol : 4,
		.username = s->username,
		.username_len = s->username ? strlen(s->username) : 0,
		.will_id = will ? message_id(w, st, b, will, false) : 0,
		.will_delay = will_delay,
		.listener = s->listener,
		.qos2_in = ids,
		.nqos2_in = nqos2_in,
	};
	rc = persist_session_put(b, s->client_id, strlen(s->client_id), &ps);
	if (ids != ids_small)
		mem_free(ids);
	if (rc == PERSIST_EINVAL && !atomic_load(&s->persisted)) {
		/* A client id too long for the store: this session lives in memory only. */
		log_warn("Warning: the session of client %.60s... is not persisted: its id is too "
			 "long for the store.", s->client_id);
		return;
	}
	recorded(w, rc, "storing a session");
	if (rc == 0)
		atomic_store_explicit(&s->persisted, true, memory_order_relaxed);
}

void store_session_forget(struct session *s)
{
	struct worker *w = s->worker;
	struct persist_batch *b;

	if (!atomic_load_explicit(&s->persisted, memory_order_relaxed))
		return;
	atomic_store_explicit(&s->persisted, false, memory_order_relaxed);
	if (!store_of(w->broker) || !(b = store_batch(w)))
		return;
	recorded(w, persist_session_delete(b, s->client_id, strlen(s->client_id)),
		 "deleting a session");
}

void store_sub_save(struct session *s, const char *filter, size_t len, uint8_t qos, uint8_t flags,
		    uint32_t subid)
{
	struct worker *w = s->worker;
	struct persist_sub sub = {.qos = qos, .options = flags, .sub_id = subid};
	struct persist_batch *b;

	if (!atomic_load_explicit(&s->persisted, memory_order_relaxed) || !store_of(w->broker) ||
	    !(b = store_batch(w)))
		return;
	recorded(w, persist_sub_put(b, s->client_id, strlen(s->client_id), filter, len, &sub),
		 "storing a subscription");
}

void store_sub_forget(struct session *s, const char *filter, size_t len)
{
	struct worker *w = s->worker;
	struct persist_batch *b;

	if (!atomic_load_explicit(&s->persisted, memory_order_relaxed) || !store_of(w->broker) ||
	    !(b = store_batch(w)))
		return;
	recorded(w, persist_sub_delete(b, s->client_id, strlen(s->client_id), filter, len),
		 "deleting a subscription");
}

/* --- retained messages --- */

void store_retained(struct worker *w, struct message *m)
{
	struct store *st = store_of(w->broker);
	struct persist_batch *b;

	/* $SYS describes this run of the broker, not the next. */
	if (!st || (m->topic_len >= 4 && memcmp(m->topic, "$SYS", 4) == 0) || !(b = store_batch(w)))
		return;
	if (m->payload_len == 0) {
		recorded(w, persist_retained_clear(b, m->topic, m->topic_len), "clearing a retained message");
		return;
	}
	uint64_t id = message_id(w, st, b, m, false);
	recorded(w, persist_retained_set(b, m->topic, m->topic_len, id), "storing a retained message");
}

/* --- queue entries --- */

uint64_t store_delivery_new(struct worker *w, struct session *s, struct message *m, uint8_t qos,
			    uint8_t retain, bool reput_message)
{
	struct store *st = store_of(w->broker);
	struct persist_batch *b;
	uint64_t seq;
	int rc;

	if (!st || qos == 0 || !atomic_load_explicit(&s->persisted, memory_order_relaxed) ||
	    !(b = store_batch(w)))
		return 0;
	struct persist_qentry e = {
		.msg_id = message_id(w, st, b, m, reput_message),
		.qos = qos,
		.retain = retain != 0,
		.state = PERSIST_Q_QUEUED,
	};
	seq = atomic_fetch_add(&st->last_seq, 1) + 1;
	rc = persist_queue_put(b, s->client_id, strlen(s->client_id), seq, &e);
	recorded(w, rc, "storing a queued message");
	return rc == 0 ? seq : 0;
}

static void entry_put(struct session *s, const struct session_msg *sm, uint8_t state, uint8_t flags)
{
	struct worker *w = s->worker;
	struct store *st = store_of(w->broker);
	struct persist_batch *b;

	if (!sm->seq || !st || !atomic_load_explicit(&s->persisted, memory_order_relaxed) ||
	    !(b = store_batch(w)))
		return;
	struct persist_qentry e = {
		.msg_id = message_id(w, st, b, sm->msg, false),
		.qos = sm->qos,
		.retain = sm->retain != 0,
		.state = state,
		.packet_id = state == PERSIST_Q_INFLIGHT ? sm->mid : 0,
		.flags = flags,
	};
	recorded(w, persist_queue_put(b, s->client_id, strlen(s->client_id), sm->seq, &e),
		 "updating a queued message");
}

void store_delivery_replace(struct session *s, struct session_msg *sm)
{
	entry_put(s, sm, PERSIST_Q_QUEUED, 0);
}

void store_delivery_update(struct session *s, const struct session_msg *sm)
{
	/* In flight means sent: after a restart it goes again with DUP. */
	entry_put(s, sm, PERSIST_Q_INFLIGHT,
		  PERSIST_QF_DUP | (sm->state == INFLIGHT_WAIT_PUBCOMP ? PERSIST_QF_PUBREL : 0));
}

void store_delivery_forget(struct session *s, uint64_t seq)
{
	struct worker *w = s->worker;
	struct persist_batch *b;

	if (!seq || !atomic_load_explicit(&s->persisted, memory_order_relaxed) ||
	    !store_of(w->broker) || !(b = store_batch(w)))
		return;
	recorded(w, persist_queue_delete(b, s->client_id, strlen(s->client_id), seq),
		 "deleting a queued message");
}
