/*
 * deliver.h: messages into a session and out to its client.
 *
 * Owns the outgoing half of the QoS state machines: a message for a session
 * is sent at once when its client is online and the in-flight window has
 * room, queued otherwise (within max_queued_messages / max_queued_bytes),
 * or dropped. Acknowledgements free the window and pull the queue forward.
 * Owner-worker thread only.
 */
#ifndef MIDGE_DELIVER_H
#define MIDGE_DELIVER_H

#include <stdbool.h>
#include <stdint.h>

struct message;
struct session;

/*
 * Delivers m to s with the QoS and retain flag of this delivery. seq is the
 * queue entry the routing worker stored for it (store.h), or 0: then it is
 * stored here when the session outlives its connection.
 */
void session_deliver(struct session *s, struct message *m, uint8_t qos, uint8_t retain,
		     uint32_t subid, uint64_t seq);

struct session_msg;
/* At start: puts a restored message in flight (inflight) or in the queue, taking over
 * its reference. Returns 0, 1 when it was dropped (a packet id in flight twice), -1
 * when out of memory. */
int session_restore_msg(struct session *s, struct session_msg sm, bool inflight);

/* After a reconnect: re-sends everything in flight (PUBLISH with DUP, or PUBREL), then the queue. */
void session_resume(struct session *s);

/* A packet id not in flight in s (for the packets a bridge sends itself). */
uint16_t session_next_mid(struct session *s);

/* The client wrote all its output: queued QoS 0 messages may follow. */
void session_on_drained(struct session *s);

/* Outgoing acknowledgements; false when the packet id was not in flight in that state. */
bool session_on_puback(struct session *s, uint16_t mid);
bool session_on_pubrec(struct session *s, uint16_t mid);
bool session_on_pubcomp(struct session *s, uint16_t mid);
/* Ends a QoS 2 flow the client refused with a PUBREC error (MQTT 5). */
bool session_on_pubcomp_forced(struct session *s, uint16_t mid);

#endif
