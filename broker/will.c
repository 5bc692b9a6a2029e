/*
 * will.c: wills that wait (see will.h). A delayed will lives on the session,
 * not the connection, because it outlives the connection and belongs to the
 * worker owning the session; the session's own timer publishes it.
 * Whether the will may be published at all (ACL, plugins) is decided when
 * its connection closes, while the client is still there to ask about.
 */
#include "config.h"

#include "will.h"

#include "broker.h"
#include "cluster.h"
#include "message.h"
#include "session.h"
#include "store.h"
#include "worker.h"

#include <stddef.h>
#include <time.h>

void will_publish(struct worker *w, struct message *will)
{
	int64_t now = (int64_t)time(NULL);

	/* The will was made at CONNECT but is published only now: its Message
	 * Expiry Interval is its lifetime from here (the will is not shared yet,
	 * so it may still change). */
	if (will->expires)
		will->expires = now + (will->expires - will->created);
	will->created = now;
	/* Deferred: a close can happen in the middle of routing another message,
	 * and routing does not nest. */
	worker_defer_publish(w, will);
}

/* The waiting will is gone (published or dropped): so is its cluster registration. */
static void forget_registered(struct session *s)
{
	if (s->off->cluster_will) {
		cluster_will_forget(s->worker->broker->cluster, s->client_id, s->off->cluster_will);
		s->off->cluster_will = 0;
	}
}

static void on_will_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct session_offline *off =
		(struct session_offline *)((char *)t - offsetof(struct session_offline, will_timer));
	struct session *s = off->session;
	struct message *will = off->will;

	(void)loop;
	off->will = NULL;
	forget_registered(s);
	if (will) {
		will_publish(s->worker, will);
		store_session_save(s);
	}
}

void will_init(struct session_offline *off)
{
	off->will = NULL;
	off->cluster_will = 0;
	ev_timer_init(&off->will_timer, on_will_timer);
}

void will_cancel(struct session *s)
{
	if (!s->off)
		return;
	ev_timer_stop(s->worker->loop, &s->off->will_timer);
	message_unref(s->off->will);
	s->off->will = NULL;
	forget_registered(s);
}

int will_delay_start(struct session *s, struct message *will, uint32_t delay)
{
	struct ev_loop *loop = s->worker->loop;
	struct session_offline *off = session_offline(s);

	if (!off)
		return -1;
	/* Only one connection at a time: whatever waited was cancelled when this
	 * one took the session over. */
	will_cancel(s);
	off->will = will;
	off->will_delay = delay;
	ev_timer_start(loop, &off->will_timer, ev_now(loop) + (int64_t)delay * 1000);
	return 0;
}

void will_session_end(struct session *s)
{
	struct message *will;

	if (!s->off)
		return;
	will = s->off->will;
	ev_timer_stop(s->worker->loop, &s->off->will_timer);
	s->off->will = NULL;
	forget_registered(s);
	if (will)
		will_publish(s->worker, will);
}
