/*
 * throttle.c: publisher flow control (see throttle.h).
 */
#include "config.h"

#include "throttle.h"

#include "alloc.h"
#include "client.h"
#include "conf.h"
#include "session.h"
#include "worker.h"

#include <stddef.h>

/* How often a worker looks whether the subscribers its publishers wait for drained. */
#define THROTTLE_CHECK_MS 1
/* Past the limits, a queue takes at most this many more messages (or twice its
 * limits): publishers stop after one message each, so only a crowd of them
 * gets near it. */
#define OVERFILL_MESSAGES 10000u

struct throttled {
	struct client *client;
	struct session *blocking; /* referenced */
	int64_t since;            /* loop time the wait began */
};

static const struct config *cfg_of(const struct session *s)
{
	return s->worker->cfg;
}

static bool over_limits(const struct session *s, uint32_t num, uint32_t den)
{
	const struct config *cfg = cfg_of(s);

	if (cfg->max_queued_messages > 0 &&
	    (uint64_t)session_queued(s) * den >= (uint64_t)cfg->max_queued_messages * num)
		return true;
	if (cfg->max_queued_bytes > 0 &&
	    (uint64_t)session_queued_bytes(s) * den >= cfg->max_queued_bytes * num)
		return true;
	return false;
}

bool throttle_should_wait(const struct session *s)
{
	return atomic_load_explicit(&s->congested, memory_order_relaxed) &&
	       !atomic_load_explicit(&s->stalled, memory_order_relaxed) && session_is_online(s);
}

bool throttle_may_overfill(const struct session *s, uint8_t qos)
{
	const struct config *cfg = cfg_of(s);

	if (!cfg->backpressure || qos == 0 || !s->client ||
	    atomic_load_explicit(&s->stalled, memory_order_relaxed))
		return false;
	if (cfg->max_queued_messages > 0 &&
	    session_queued(s) >= 2 * (uint64_t)cfg->max_queued_messages + OVERFILL_MESSAGES)
		return false;
	if (cfg->max_queued_bytes > 0 && session_queued_bytes(s) >= 2 * cfg->max_queued_bytes)
		return false;
	return true;
}

static void on_check(struct ev_loop *loop, struct ev_timer *timer);

/* Publishers of this worker waiting for a subscriber that drained resume on
 * the next turn, not at the next periodic check (other workers' see it then). */
static void check_soon(struct worker *w)
{
	struct throttle_list *l = &w->throttle;
	int64_t now = ev_now(w->loop);

	if (l->len == 0 || (ev_timer_active(&l->timer) && l->timer.when <= now))
		return;
	ev_timer_stop(w->loop, &l->timer);
	ev_timer_start(w->loop, &l->timer, now);
}

void throttle_queue_changed(struct session *s)
{
	bool congested = atomic_load_explicit(&s->congested, memory_order_relaxed);

	if (!congested) {
		if (s->client && cfg_of(s)->backpressure && over_limits(s, 1, 1))
			atomic_store_explicit(&s->congested, true, memory_order_relaxed);
		return;
	}
	/* Hysteresis: publishers resume once a quarter of the queue has room again. */
	if (!over_limits(s, 3, 4)) {
		atomic_store_explicit(&s->congested, false, memory_order_relaxed);
		atomic_store_explicit(&s->stalled, false, memory_order_relaxed);
		check_soon(s->worker);
	}
}

void throttle_session_offline(struct session *s)
{
	if (atomic_load_explicit(&s->congested, memory_order_relaxed))
		check_soon(s->worker);
}

static void release(struct throttled *t)
{
	session_unref(t->blocking);
	t->blocking = NULL;
}

static void on_check(struct ev_loop *loop, struct ev_timer *timer)
{
	struct throttle_list *l =
		(struct throttle_list *)((char *)timer - offsetof(struct throttle_list, timer));
	struct worker *w = (struct worker *)((char *)l - offsetof(struct worker, throttle));
	int64_t now = ev_now(loop);
	int64_t limit_ms = (int64_t)w->cfg->backpressure_timeout * 1000;
	size_t kept = 0, nresume = 0;

	for (size_t i = 0; i < l->len; i++) {
		struct throttled t = l->items[i];

		if (throttle_should_wait(t.blocking) && !t.blocking->dead && w->cfg->backpressure) {
			if (now - t.since < limit_ms) {
				l->items[kept++] = t;
				continue;
			}
			/* It drained nothing: stop waiting for it; its limits apply again. */
			atomic_store_explicit(&t.blocking->stalled, true, memory_order_relaxed);
		}
		release(&t);
		l->resume[nresume++] = t.client;
	}
	l->len = kept;
	/* Decided first, resumed after: a resumed publisher may wait again, which
	 * appends to the list (and may grow `resume`, so it is indexed afresh). */
	for (size_t i = 0; i < nresume; i++)
		client_throttle_input(l->resume[i], false);
	if (l->len > 0 && !ev_timer_active(&l->timer))
		ev_timer_start(loop, &l->timer, now + THROTTLE_CHECK_MS);
}

void throttle_init(struct worker *w)
{
	w->throttle.items = NULL;
	w->throttle.resume = NULL;
	w->throttle.len = w->throttle.cap = 0;
	ev_timer_init(&w->throttle.timer, on_check);
}

void throttle_fini(struct worker *w)
{
	for (size_t i = 0; i < w->throttle.len; i++)
		release(&w->throttle.items[i]);
	mem_free(w->throttle.items);
	mem_free(w->throttle.resume);
	w->throttle.items = NULL;
	w->throttle.resume = NULL;
	w->throttle.len = w->throttle.cap = 0;
	if (w->loop)
		ev_timer_stop(w->loop, &w->throttle.timer);
}

void throttle_publisher(struct worker *w, struct client *c, struct session *blocking)
{
	struct throttle_list *l = &w->throttle;

	if ((c->flags & CLIENT_F_THROTTLED) || !w->cfg->backpressure) {
		session_unref(blocking);
		return;
	}
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct throttled *items = mem_realloc(l->items, cap * sizeof(*items));
		if (items)
			l->items = items;
		struct client **resume = items ? mem_realloc(l->resume, cap * sizeof(*resume)) : NULL;
		if (!resume) {
			/* Not waiting costs only the guarantee; the limits still bound memory. */
			session_unref(blocking);
			return;
		}
		l->resume = resume;
		l->cap = cap;
	}
	l->items[l->len++] = (struct throttled){c, blocking, ev_now(w->loop)};
	client_throttle_input(c, true);
	if (!ev_timer_active(&l->timer))
		ev_timer_start(w->loop, &l->timer, ev_now(w->loop) + THROTTLE_CHECK_MS);
}

void throttle_client_gone(struct worker *w, struct client *c)
{
	struct throttle_list *l = &w->throttle;

	if (!(c->flags & CLIENT_F_THROTTLED))
		return;
	for (size_t i = 0; i < l->len; i++) {
		if (l->items[i].client == c) {
			release(&l->items[i]);
			l->items[i] = l->items[--l->len];
			break;
		}
	}
	c->flags &= ~CLIENT_F_THROTTLED;
}
