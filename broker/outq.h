/*
 * outq.h: a connection's queue of bytes waiting to be written.
 *
 * Owns a list of segments: byte segments into which encoders write packets
 * (reserve, then fill exactly), and reference segments that point into a
 * message's payload and hold a reference to it, so large payloads are sent
 * by writev without copying. An empty queue holds no memory. The queue
 * knows nothing of sockets: outq_iov() fills an iovec array and
 * outq_consume() drops what the transport wrote.
 */
#ifndef MIDGE_OUTQ_H
#define MIDGE_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct message;
struct outq_seg;

struct outq {
	struct outq_seg *head;
	struct outq_seg *tail;
	size_t bytes; /* queued and not yet written */
	uint64_t appended; /* bytes ever queued (so appended - bytes were written) */
};

static inline void outq_init(struct outq *q)
{
	q->head = q->tail = NULL;
	q->bytes = 0;
	q->appended = 0;
}

static inline int outq_empty(const struct outq *q)
{
	return q->bytes == 0;
}

/* Returns room for exactly n bytes at the end of the queue, or NULL (no memory). */
uint8_t *outq_reserve(struct outq *q, size_t n);
/* Appends len bytes of m's memory by reference (takes a new reference to m). */
int outq_append_ref(struct outq *q, struct message *m, const uint8_t *data, size_t len);
/* Fills up to max entries; returns the count. */
int outq_iov(const struct outq *q, struct iovec *iov, int max);
/* Like outq_iov, covering at most limit bytes. */
int outq_iov_limit(const struct outq *q, struct iovec *iov, int max, size_t limit);
/* Drops n written bytes from the front. */
void outq_consume(struct outq *q, size_t n);
/* Frees everything. */
void outq_clear(struct outq *q);

/* Payloads at least this large travel by reference instead of being copied. */
#define OUTQ_REF_THRESHOLD 1024

#endif
