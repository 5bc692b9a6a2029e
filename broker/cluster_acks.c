/*
 * cluster_acks.c: the confirmed prefix of a worker's JetStream messages
 * (see cluster_acks.h). A ring, grown by doubling; lookups by envelope
 * sequence are binary searches (sequences ascend in the ring).
 */
#include "config.h"

#include "cluster_acks.h"

#include "alloc.h"

static struct cluster_ack *at(const struct cluster_acks *a, size_t i)
{
	return &a->ring[(a->head + i) % a->cap];
}

static int grow(struct cluster_acks *a)
{
	size_t cap = a->cap ? a->cap * 2 : 64;
	struct cluster_ack *r = mem_malloc(cap * sizeof(*r));

	if (!r)
		return -1;
	for (size_t i = 0; i < a->count; i++)
		r[i] = *at(a, i);
	mem_free(a->ring);
	a->ring = r;
	a->cap = cap;
	a->head = 0;
	return 0;
}

uint64_t cluster_acks_add(struct cluster_acks *a, uint64_t seq, int64_t deadline)
{
	if (a->count == a->cap && grow(a) < 0)
		return 0;
	*at(a, a->count) = (struct cluster_ack){.seq = seq, .deadline = deadline,
						 .state = CLUSTER_ACK_PENDING};
	a->count++;
	return a->done + a->count;
}

/* The ring index of pending message seq, or -1. */
static long find(const struct cluster_acks *a, uint64_t seq)
{
	size_t lo = 0, hi = a->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (at(a, mid)->seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == a->count || at(a, lo)->seq != seq || at(a, lo)->state != CLUSTER_ACK_PENDING)
		return -1;
	return (long)lo;
}

static int note_failed(struct cluster_acks *a, uint64_t n)
{
	if (a->nfailed == a->failed_cap) {
		size_t cap = a->failed_cap ? a->failed_cap * 2 : 16;
		uint64_t *f = mem_realloc(a->failed, cap * sizeof(*f));
		if (!f)
			return -1;
		a->failed = f;
		a->failed_cap = cap;
	}
	a->failed[a->nfailed++] = n;
	return 0;
}

/*
 * Drops the settled messages at the front; true when done moved. Out of
 * memory for the failed list, a failure stays in front (retried by the next
 * settle or expiry): it is never lost.
 */
static bool advance(struct cluster_acks *a)
{
	uint64_t before = a->done;

	while (a->count > 0 && at(a, 0)->state != CLUSTER_ACK_PENDING) {
		if (at(a, 0)->state == CLUSTER_ACK_FAILED && note_failed(a, a->done + 1) < 0)
			break;
		a->head = (a->head + 1) % a->cap;
		a->count--;
		a->done++;
	}
	return a->done != before;
}

static void settle_at(struct cluster_acks *a, size_t i, bool confirmed)
{
	at(a, i)->state = confirmed ? CLUSTER_ACK_CONFIRMED : CLUSTER_ACK_FAILED;
}

int cluster_acks_settle(struct cluster_acks *a, uint64_t seq, bool confirmed)
{
	long i = find(a, seq);

	if (i < 0)
		return -1;
	settle_at(a, (size_t)i, confirmed);
	return advance(a) ? 1 : 0;
}

bool cluster_acks_deadline(const struct cluster_acks *a, uint64_t seq, int64_t *deadline)
{
	long i = find(a, seq);

	if (i < 0)
		return false;
	*deadline = at(a, (size_t)i)->deadline;
	return true;
}

size_t cluster_acks_expire(struct cluster_acks *a, int64_t now)
{
	size_t n = 0;

	/* Deadlines are set at publish time plus one constant: they ascend too,
	 * but a scan of everything pending stays correct if that ever changes. */
	for (size_t i = 0; i < a->count; i++) {
		struct cluster_ack *e = at(a, i);
		if (e->state == CLUSTER_ACK_PENDING && e->deadline <= now) {
			settle_at(a, i, false);
			n++;
		}
	}
	advance(a);
	return n;
}

size_t cluster_acks_release(struct cluster_acks *a)
{
	size_t n = 0;

	for (size_t i = 0; i < a->count; i++) {
		if (at(a, i)->state == CLUSTER_ACK_PENDING) {
			settle_at(a, i, true);
			n++;
		}
	}
	advance(a);
	return n;
}

void cluster_acks_take_failed(struct cluster_acks *a, uint64_t **list, size_t *n, size_t *cap)
{
	uint64_t *l = *list;
	size_t c = *cap;

	*list = a->failed;
	*n = a->nfailed;
	*cap = a->failed_cap;
	a->failed = l;
	a->nfailed = 0;
	a->failed_cap = c;
}

void cluster_acks_free(struct cluster_acks *a)
{
	mem_free(a->ring);
	mem_free(a->failed);
	*a = (struct cluster_acks){0};
}
