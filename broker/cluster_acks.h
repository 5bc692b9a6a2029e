/*
 * cluster_acks.h: one worker's QoS 1/2 messages given to JetStream, in the
 * order it published them, until each is confirmed or has failed.
 *
 * Each message gets the next number of the worker (1, 2, ...); `done` is the
 * settled prefix: every message numbered <= done is confirmed or failed, so
 * an acknowledgement that waits for number n may go once done >= n, unless
 * n is among the failed numbers the prefix passed. Messages are found again
 * by their envelope sequence (the cluster's, ascending within one worker),
 * since that is what JetStream's answer carries (cluster_wire.h's message
 * id). Pure logic: the caller locks (cluster_qos.c), unit-tested.
 */
#ifndef MIDGE_CLUSTER_ACKS_H
#define MIDGE_CLUSTER_ACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cluster_ack {
	uint64_t seq;        /* the envelope sequence */
	int64_t deadline;    /* ms: failed if not confirmed by then */
	uint8_t state;       /* CLUSTER_ACK_* */
};

enum { CLUSTER_ACK_PENDING, CLUSTER_ACK_CONFIRMED, CLUSTER_ACK_FAILED };

struct cluster_acks {
	struct cluster_ack *ring;  /* numbers done + 1 ... done + count, from ring[head] */
	size_t cap, head, count;
	uint64_t done;             /* every number <= done is settled */
	uint64_t *failed;          /* numbers <= done that failed, ascending, not yet taken */
	size_t nfailed, failed_cap;
};

/* Adds the next message; returns its number, 0 when out of memory. */
uint64_t cluster_acks_add(struct cluster_acks *a, uint64_t seq, int64_t deadline);
/* The number the last added message got (0: none yet). */
static inline uint64_t cluster_acks_last(const struct cluster_acks *a)
{
	return a->done + a->count;
}
/*
 * Settles the message of envelope sequence seq. Returns 1 when done moved,
 * 0 when it did not, -1 when seq is not pending here (settled already, or
 * another worker's).
 */
int cluster_acks_settle(struct cluster_acks *a, uint64_t seq, bool confirmed);
/* The deadline of pending message seq; false when it is not pending here. */
bool cluster_acks_deadline(const struct cluster_acks *a, uint64_t seq, int64_t *deadline);
/* Fails every pending message whose deadline is <= now; returns how many. */
size_t cluster_acks_expire(struct cluster_acks *a, int64_t now);
/*
 * Settles every pending message as confirmed without JetStream's word (its
 * answer, should it come, finds nothing); returns how many. Failures already
 * settled stay failed.
 */
size_t cluster_acks_release(struct cluster_acks *a);
/*
 * Takes the failed numbers: a's list and the caller's (*list, *n, *cap)
 * change places, the caller's emptied first.
 */
void cluster_acks_take_failed(struct cluster_acks *a, uint64_t **list, size_t *n, size_t *cap);
void cluster_acks_free(struct cluster_acks *a);

#endif
