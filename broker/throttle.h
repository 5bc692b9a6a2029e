/*
 * throttle.h: publisher flow control (backpressure).
 *
 * When a QoS 1 or 2 message is queued for an online subscriber whose queue
 * is already at max_queued_messages / max_queued_bytes, the message is kept
 * (up to a hard ceiling) and the broker stops reading from its publisher
 * until that subscriber has drained below three quarters of its limits. A
 * slow subscriber so slows its publishers down instead of losing messages;
 * the publishers' TCP windows carry the pressure back to them.
 *
 * A subscriber that drains nothing for backpressure_timeout seconds while a
 * publisher waits for it is "stalled": nobody waits for it any more and its
 * limits drop messages again (as with `backpressure: false`), until it has
 * drained. Offline sessions never hold publishers up.
 *
 * Owns the congested/stalled state of sessions (set by the session's worker,
 * read by any) and each worker's list of publishers it stopped reading.
 */
#ifndef MIDGE_THROTTLE_H
#define MIDGE_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ev.h"

struct client;
struct session;
struct worker;

struct throttled;

struct throttle_list {
	struct throttled *items;
	struct client **resume;     /* scratch: the clients a check resumes */
	size_t len;
	size_t cap;
	struct ev_timer timer;
};

void throttle_init(struct worker *w);
void throttle_fini(struct worker *w);

/* Whether a publisher should wait for s now (any thread). */
bool throttle_should_wait(const struct session *s);

/* Whether s may take a QoS > 0 message past its queue limits (s's worker). */
bool throttle_may_overfill(const struct session *s, uint8_t qos);

/* Updates s's congested state after its queue grew or shrank (s's worker). */
void throttle_queue_changed(struct session *s);

/* s's connection went (s's worker): publishers of this worker waiting for it resume. */
void throttle_session_offline(struct session *s);

/*
 * Stops reading from c (on w) until `blocking` drains or stalls. Takes over
 * the caller's reference to `blocking`.
 */
void throttle_publisher(struct worker *w, struct client *c, struct session *blocking);

/* Forgets c, which is closing. */
void throttle_client_gone(struct worker *w, struct client *c);

#endif
