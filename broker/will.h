/*
 * will.h: wills that wait (MQTT 5 Will Delay Interval).
 *
 * Owns a will whose connection has closed but whose publication is delayed:
 * it is kept on the session (owner worker only) and published when the
 * delay runs out or when the session ends, whichever comes first; a new
 * connection that takes the session over first cancels it [MQTT-3.1.3-9].
 * Also stamps a will's Message Expiry Interval from the moment it goes out.
 */
#ifndef MIDGE_WILL_H
#define MIDGE_WILL_H

#include <stdint.h>

struct message;
struct session;
struct session_offline;
struct worker;

/* Prepares the will timer of a session's offline part (session_offline()). */
void will_init(struct session_offline *off);

/* Routes a will now: its expiry counts from here (takes over the reference). */
void will_publish(struct worker *w, struct message *will);

/*
 * Keeps will (taking over the reference) on the offline session s and
 * publishes it after `delay` seconds, unless the session ends first (then
 * at once) or a new connection takes the session over (then never).
 * Returns -1, will not taken, when out of memory for the offline part.
 */
int will_delay_start(struct session *s, struct message *will, uint32_t delay);

/* A new connection took the session over: a waiting will is dropped. */
void will_cancel(struct session *s);

/* The session ends: a waiting will goes out now. */
void will_session_end(struct session *s);

#endif
