/*
 * persist_writer.c: the store's writer thread (persist_writer.h).
 *
 * Owns the queue of submitted batches (a ring that grows up to max_queue),
 * the writer thread that drains it in groups through persist_commit_many()
 * and runs the done() callbacks, the periodic persist_sync() timer, and the
 * writer's counters.
 */
#include "config.h"

#include "persist_writer.h"
#include "persist_int.h"

#include "alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_GROUP 256u
#define DEFAULT_MAX_QUEUE 65536u
#define DEFAULT_SYNC_MS 1000u
#define RING_START 256u

struct item {
	struct persist_batch *batch;
	persist_writer_done_fn done;
	void *arg;
};

struct persist_writer {
	struct persist *p;
	size_t max_group, max_queue;
	unsigned sync_ms;
	unsigned purge_ms;
	int64_t purge_lag;
	bool periodic;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work;    /* writer: something queued, or stopping */
	pthread_cond_t settled; /* flushers: completed advanced */

	/* Under lock. */
	struct item *ring;
	size_t cap, head, len;  /* len items from ring[head], wrapping at cap */
	uint64_t accepted;      /* batches accepted so far */
	uint64_t completed;     /* of which committed (or failed) and their done() returned */
	bool stopping;

	/* The writer thread's own. */
	struct item *group;
	struct persist_batch **bs;

	_Atomic uint64_t commits, batches, failed, rejected, max_group_seen, syncs, sync_failed;
	_Atomic uint64_t purges, purged;
	_Atomic uint64_t commit_ns, commit_ns_max;
};

static void add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Doubles the ring (under lock), keeping the items in order. */
static bool ring_grow(struct persist_writer *w)
{
	size_t ncap = w->cap * 2;
	if (ncap > w->max_queue)
		ncap = w->max_queue;
	struct item *n = mem_malloc(ncap * sizeof(*n));
	if (!n)
		return false;
	for (size_t i = 0; i < w->len; i++)
		n[i] = w->ring[(w->head + i) % w->cap];
	mem_free(w->ring);
	w->ring = n;
	w->cap = ncap;
	w->head = 0;
	return true;
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool passed(const struct timespec *ts)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > ts->tv_sec || (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

static void do_sync(struct persist_writer *w)
{
	add(&w->syncs, 1);
	if (persist_sync(w->p) != 0)
		add(&w->sync_failed, 1);
}

static bool earlier(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Drops what expired a while ago (the broker expires things itself, on time). */
static void do_purge(struct persist_writer *w)
{
	struct persist_purge_stats st = { 0, 0, 0, 0 };

	if (persist_purge(w->p, (int64_t)time(NULL) - w->purge_lag, &st) == 0) {
		add(&w->purges, 1);
		add(&w->purged, st.sessions + st.retained + st.queued + st.messages);
	}
}

/* Commits n items of w->group, reports, frees. Outside the lock. */
static void run_group(struct persist_writer *w, size_t n)
{
	struct timespec t0, t1;

	for (size_t i = 0; i < n; i++)
		w->bs[i] = w->group[i].batch;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = persist_commit_many(w->p, w->bs, n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	uint64_t ns = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec));
	add(&w->commit_ns, ns);
	if (ns > get(&w->commit_ns_max))
		atomic_store_explicit(&w->commit_ns_max, ns, memory_order_relaxed);
	if (rc == 0) {
		add(&w->commits, 1);
		add(&w->batches, n);
		uint64_t seen = get(&w->max_group_seen);
		while (n > seen && !atomic_compare_exchange_weak_explicit(
				       &w->max_group_seen, &seen, n, memory_order_relaxed,
				       memory_order_relaxed))
			;
	} else {
		add(&w->failed, n);
	}
	for (size_t i = 0; i < n; i++) {
		if (w->group[i].done)
			w->group[i].done(w->group[i].arg, rc);
		persist_batch_free(w->group[i].batch);
	}
}

static void *writer_main(void *arg)
{
	struct persist_writer *w = arg;
	bool dirty = false; /* committed since the last sync (periodic mode) */
	bool purging = w->purge_ms > 0;
	struct timespec next_sync, next_purge;

	deadline_after(&next_sync, w->sync_ms);
	deadline_after(&next_purge, w->purge_ms);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->len == 0 && !w->stopping) {
			if ((dirty && passed(&next_sync)) || (purging && passed(&next_purge)))
				break;
			const struct timespec *until = dirty ? &next_sync : NULL;
			if (purging && (!until || earlier(&next_purge, until)))
				until = &next_purge;
			if (until)
				pthread_cond_timedwait(&w->work, &w->lock, until);
			else
				pthread_cond_wait(&w->work, &w->lock);
		}
		if (purging && !w->stopping && passed(&next_purge)) {
			pthread_mutex_unlock(&w->lock);
			do_purge(w);
			dirty = w->periodic;
			deadline_after(&next_purge, w->purge_ms);
			pthread_mutex_lock(&w->lock);
			continue;
		}
		if (dirty && (passed(&next_sync) || (w->len == 0 && w->stopping))) {
			pthread_mutex_unlock(&w->lock);
			do_sync(w);
			dirty = false;
			deadline_after(&next_sync, w->sync_ms);
			pthread_mutex_lock(&w->lock);
			continue;
		}
		if (w->len == 0)
			break; /* stopping, all done */

		size_t n = w->len < w->max_group ? w->len : w->max_group;
		for (size_t i = 0; i < n; i++)
			w->group[i] = w->ring[(w->head + i) % w->cap];
		w->head = (w->head + n) % w->cap;
		w->len -= n;
		pthread_mutex_unlock(&w->lock);

		if (w->periodic && !dirty) {
			/* The period runs from the first commit not yet synced. */
			deadline_after(&next_sync, w->sync_ms);
		}
		run_group(w, n);
		if (w->periodic)
			dirty = true;

		pthread_mutex_lock(&w->lock);
		w->completed += n;
		pthread_cond_broadcast(&w->settled);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct persist_writer *persist_writer_start(struct persist *p,
					    const struct persist_writer_options *o)
{
	struct persist_writer *w;
	pthread_condattr_t ca;

	if (!p)
		return NULL;
	w = mem_calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->p = p;
	w->max_group = o && o->max_group ? o->max_group : DEFAULT_MAX_GROUP;
	w->max_queue = o && o->max_queue ? o->max_queue : DEFAULT_MAX_QUEUE;
	w->sync_ms = o && o->sync_ms ? o->sync_ms : DEFAULT_SYNC_MS;
	w->purge_ms = o ? o->purge_ms : 0;
	w->purge_lag = o ? o->purge_lag_s : 0;
	w->periodic = p->sync == PERSIST_SYNC_PERIODIC;
	w->cap = w->max_queue < RING_START ? w->max_queue : RING_START;
	w->ring = mem_malloc(w->cap * sizeof(*w->ring));
	w->group = mem_malloc(w->max_group * sizeof(*w->group));
	w->bs = mem_malloc(w->max_group * sizeof(*w->bs));
	if (!w->ring || !w->group || !w->bs)
		goto fail_mem;

	if (pthread_mutex_init(&w->lock, NULL) != 0)
		goto fail_mem;
	if (pthread_condattr_init(&ca) != 0)
		goto fail_lock;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&w->work, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto fail_lock;
	}
	pthread_condattr_destroy(&ca);
	if (pthread_cond_init(&w->settled, NULL) != 0)
		goto fail_work;
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
		goto fail_settled;
	return w;

fail_settled:
	pthread_cond_destroy(&w->settled);
fail_work:
	pthread_cond_destroy(&w->work);
fail_lock:
	pthread_mutex_destroy(&w->lock);
fail_mem:
	mem_free(w->ring);
	mem_free(w->group);
	mem_free(w->bs);
	mem_free(w);
	return NULL;
}

int persist_writer_submit(struct persist_writer *w, struct persist_batch *b,
			  persist_writer_done_fn done, void *arg)
{
	int rc = 0;

	if (!w || !b) {
		if (w)
			add(&w->rejected, 1);
		persist_batch_free(b);
		return PERSIST_EINVAL;
	}
	pthread_mutex_lock(&w->lock);
	if (w->stopping)
		rc = PERSIST_EINVAL;
	else if (w->len >= w->max_queue)
		rc = PERSIST_EFULL;
	else if (w->len == w->cap && !ring_grow(w))
		rc = PERSIST_ENOMEM;
	if (rc == 0) {
		w->ring[(w->head + w->len) % w->cap] = (struct item){ b, done, arg };
		w->len++;
		w->accepted++;
		if (w->len == 1)
			pthread_cond_signal(&w->work);
	}
	pthread_mutex_unlock(&w->lock);
	if (rc != 0) {
		add(&w->rejected, 1);
		persist_batch_free(b);
	}
	return rc;
}

void persist_writer_flush(struct persist_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	uint64_t target = w->accepted;
	while (w->completed < target)
		pthread_cond_wait(&w->settled, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

void persist_writer_stop(struct persist_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);

	pthread_cond_destroy(&w->settled);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->lock);
	mem_free(w->ring);
	mem_free(w->group);
	mem_free(w->bs);
	mem_free(w);
}

void persist_writer_stats(const struct persist_writer *w, struct persist_writer_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!w)
		return;
	st->commits = get(&w->commits);
	st->batches = get(&w->batches);
	st->failed = get(&w->failed);
	st->rejected = get(&w->rejected);
	st->max_group = get(&w->max_group_seen);
	st->syncs = get(&w->syncs);
	st->sync_failed = get(&w->sync_failed);
	st->purges = get(&w->purges);
	st->commit_ns = get(&w->commit_ns);
	st->commit_ns_max = get(&w->commit_ns_max);
	st->purged = get(&w->purged);
}
