/*
 * cluster_mark.c: the replay watermark of the sessions this node holds
 * (cluster.h, cluster_session_mark()), and the worker timer that writes it to
 * the session registry when it moved, so that a node rebuilding a session
 * after this one died replays from the stream what the client has not
 * acknowledged. Never per message: every MARK_PERIOD_MS, only sessions that
 * got a QoS 1/2 message since (an idle session's old watermark costs a replay
 * a longer read, no duplicate) and whose watermark moved by MARK_STEP_MS,
 * until it is past the last one by the replay's margin.
 */
#include "config.h"

#include "cluster.h"

#include <time.h>

#include "broker.h"
#include "message.h"
#include "session.h"
#include "worker.h"

#define MARK_PERIOD_MS 2000
#define MARK_STEP_MS 1000

int64_t cluster_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A QoS 1/2 delivery still waiting for its acknowledgement holds the mark at its arrival. */
static int64_t hold(int64_t mark, const struct session_msg *sm)
{
	int64_t arrived = sm->msg->created * 1000; /* seconds: rounds down, never later */

	return sm->qos > 0 && arrived < mark ? arrived : mark;
}

int64_t cluster_session_mark(struct session *s, int64_t now_ms)
{
	const struct session_msgs *q = s->msgs;
	int64_t mark = now_ms;

	/* The whole queue: moved and replayed messages are not in arrival order. */
	for (uint32_t i = 0; q && i < q->ninflight; i++)
		mark = hold(mark, &q->inflight[i]);
	for (uint32_t i = 0; q && i < q->q_len; i++)
		mark = hold(mark, &q->queue[(q->q_head + i) % q->q_cap]);
	struct session_cluster *sc = session_cluster_of(s);
	if (sc && sc->floor) {
		/* What came with the session (its arrival times are not the stream's) is
		 * acknowledged once nothing waits any more. */
		if (mark == now_ms && !sc->replaying)
			sc->floor = 0;
		else if (sc->floor < mark)
			mark = sc->floor;
	}
	return mark;
}

static void on_marks(struct ev_loop *loop, struct ev_timer *t)
{
	struct worker *w = ev_userdata(loop);
	struct cluster *c = w->broker->cluster;
	int64_t now = cluster_wall_ms();

	for (size_t i = 0; c && i < w->sessions.nbuckets; i++) {
		for (struct session *s = w->sessions.buckets[i]; s; s = s->hnext) {
			struct session_cluster *sc = session_cluster_of(s);
			if (!sc || !sc->dirty || s->bridge || s->dead || s->expiry_interval == 0)
				continue;
			int64_t mark = cluster_session_mark(s, now);
			if (mark - sc->mark >= MARK_STEP_MS)
				cluster_session_changed(c, s); /* records sc->mark */
			/* Nothing waits, and a replay from the written mark (less its margin)
			 * no longer reaches the last message: it only moves with new ones. */
			if (mark == now && sc->mark - CLUSTER_REPLAY_MARGIN_MS - MARK_STEP_MS >
						   sc->last_msg * 1000)
				sc->dirty = false;
		}
	}
	ev_timer_start(loop, t, ev_now(loop) + MARK_PERIOD_MS);
}

void cluster_marks_start(struct worker *w)
{
	if (!w->broker->cluster)
		return;
	ev_timer_init(&w->cluster_marks, on_marks);
	ev_timer_start(w->loop, &w->cluster_marks, ev_now(w->loop) + MARK_PERIOD_MS);
}
