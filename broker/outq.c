/*
 * outq.c: segment list behind a connection's output (see outq.h).
 */
#include "config.h"

#include "outq.h"

#include "alloc.h"
#include "message.h"

#include <stdlib.h>

#define SEG_MIN_CAP 4096

struct outq_seg {
	struct outq_seg *next;
	uint32_t off;          /* bytes already written */
	uint32_t len;          /* bytes filled */
	uint32_t cap;          /* 0 for a reference segment */
	struct message *ref;   /* reference segment: the message kept alive */
	const uint8_t *data;   /* reference segment: its bytes */
	uint8_t bytes[];
};

static void link_tail(struct outq *q, struct outq_seg *s)
{
	s->next = NULL;
	if (q->tail)
		q->tail->next = s;
	else
		q->head = s;
	q->tail = s;
}

uint8_t *outq_reserve(struct outq *q, size_t n)
{
	struct outq_seg *s = q->tail;
	uint8_t *p;

	if (!s || s->ref || s->cap - s->len < n) {
		size_t cap = n > SEG_MIN_CAP ? n : SEG_MIN_CAP;
		s = mem_malloc(sizeof(*s) + cap);
		if (!s)
			return NULL;
		s->off = 0;
		s->len = 0;
		s->cap = (uint32_t)cap;
		s->ref = NULL;
		s->data = s->bytes;
		link_tail(q, s);
	}
	p = s->bytes + s->len;
	s->len += (uint32_t)n;
	q->bytes += n;
	q->appended += n;
	return p;
}

int outq_append_ref(struct outq *q, struct message *m, const uint8_t *data, size_t len)
{
	struct outq_seg *s;

	if (len == 0)
		return 0;
	s = mem_malloc(sizeof(*s));
	if (!s)
		return -1;
	s->off = 0;
	s->len = (uint32_t)len;
	s->cap = 0;
	s->ref = message_ref(m);
	s->data = data;
	link_tail(q, s);
	q->bytes += len;
	q->appended += len;
	return 0;
}

int outq_iov(const struct outq *q, struct iovec *iov, int max)
{
	int n = 0;

	for (const struct outq_seg *s = q->head; s && n < max; s = s->next) {
		if (s->len == s->off)
			continue;
		iov[n].iov_base = (void *)(s->data + s->off);
		iov[n].iov_len = s->len - s->off;
		n++;
	}
	return n;
}

int outq_iov_limit(const struct outq *q, struct iovec *iov, int max, size_t limit)
{
	int n = 0;

	for (const struct outq_seg *s = q->head; s && n < max && limit > 0; s = s->next) {
		size_t len = s->len - s->off;
		if (len == 0)
			continue;
		if (len > limit)
			len = limit;
		iov[n].iov_base = (void *)(s->data + s->off);
		iov[n].iov_len = len;
		limit -= len;
		n++;
	}
	return n;
}

static void seg_free(struct outq_seg *s)
{
	if (s->ref)
		message_unref(s->ref);
	mem_free(s);
}

void outq_consume(struct outq *q, size_t n)
{
	q->bytes -= n;
	while (q->head) {
		struct outq_seg *s = q->head;
		size_t avail = s->len - s->off;

		if (n < avail) {
			s->off += (uint32_t)n;
			return;
		}
		n -= avail;
		q->head = s->next;
		if (!q->head)
			q->tail = NULL;
		seg_free(s);
	}
}

void outq_clear(struct outq *q)
{
	while (q->head) {
		struct outq_seg *s = q->head;
		q->head = s->next;
		seg_free(s);
	}
	q->tail = NULL;
	q->bytes = 0;
}
