/*
 * persist_writer.h: the store's one writer thread (used by store.c).
 *
 * Owns every commit to a struct persist: any thread submits batches into a
 * bounded queue (never waiting on disk); the writer thread applies whatever
 * is queued in one persist_commit_many() (group commit), then reports each
 * batch's result through its done() callback, on the writer thread, in
 * submission order. With PERSIST_SYNC_PERIODIC it also calls persist_sync()
 * on a timer.
 */
#ifndef MIDGE_PERSIST_WRITER_H
#define MIDGE_PERSIST_WRITER_H

#include "persist.h"

#include <stddef.h>
#include <stdint.h>

struct persist_writer_options {
	size_t max_group;     /* most batches per commit; 0 = 256 */
	size_t max_queue;     /* most batches waiting; more are refused (PERSIST_EFULL); 0 = 65536 */
	unsigned sync_ms;     /* PERSIST_SYNC_PERIODIC: persist_sync() period in ms; 0 = 1000 */
	unsigned purge_ms;    /* persist_purge() period in ms; 0 = never */
	int64_t purge_lag_s;  /* purge what expired at least this many seconds ago */
};

struct persist_writer_stats {
	uint64_t commits;     /* successful commits (write transactions) */
	uint64_t batches;     /* batches committed successfully */
	uint64_t failed;      /* batches whose commit failed (done() got the error) */
	uint64_t rejected;    /* batches refused by submit (queue full, stopping, bad argument) */
	uint64_t max_group;   /* the most batches one successful commit carried */
	uint64_t syncs;       /* persist_sync() calls made by the timer (PERSIST_SYNC_PERIODIC) */
	uint64_t sync_failed; /* of which failed (retried at the next period) */
	uint64_t purges;      /* successful purges (purge_ms) */
	uint64_t purged;      /* records they removed */
	uint64_t commit_ns;   /* time spent committing (durable per the sync mode), in all */
	uint64_t commit_ns_max; /* the longest commit */
};

struct persist_writer;

/* Done callback: result is 0 or the negative PERSIST_* result of the commit. */
typedef void (*persist_writer_done_fn)(void *arg, int result);

/*
 * Starts the writer thread for p (o NULL = defaults). From then on only the
 * writer may write to p (commit, purge, sync) until persist_writer_stop().
 * Returns NULL when out of memory or the thread cannot start.
 */
struct persist_writer *persist_writer_start(struct persist *p,
					    const struct persist_writer_options *o);

/*
 * Any thread. Takes ownership of b on every path (it is freed after its
 * commit, or at once when refused). Returns 0 when queued: then done (may be
 * NULL) is called exactly once, on the writer thread, after the commit is
 * durable per the store's sync mode (or failed), in submission order
 * (PERSIST_SYNC_PERIODIC: after the commit; the timer's sync comes later).
 * If a commit fails, every batch of its group gets the error (none applied).
 * done() may submit; it must not flush or stop, and should be short (it
 * holds up the writer).
 * Otherwise done is never called and the result is PERSIST_EFULL (more than
 * max_queue batches wait), PERSIST_EINVAL (b or w NULL, or the writer is
 * stopping) or PERSIST_ENOMEM. Never waits on disk I/O, only on a short mutex.
 */
int persist_writer_submit(struct persist_writer *w, struct persist_batch *b,
			  persist_writer_done_fn done, void *arg);

/*
 * Blocks until every batch submitted before the call is committed (or failed)
 * and its done() has returned. Must not be called from a done() callback.
 */
void persist_writer_flush(struct persist_writer *w);

/*
 * Commits everything queued, runs its done() callbacks, syncs (periodic mode),
 * joins the thread and frees w. No other thread may submit or flush once
 * stop has begun (stop the submitters first); a done() callback may still
 * submit, but what it submits during stop is refused (PERSIST_EINVAL).
 * Not from a done() callback. NULL is fine.
 */
void persist_writer_stop(struct persist_writer *w);

/* Counters (any thread, relaxed: each is exact, they are not a consistent snapshot). */
void persist_writer_stats(const struct persist_writer *w, struct persist_writer_stats *st);

#endif
