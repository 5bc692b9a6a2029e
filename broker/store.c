/*
 * store.c: opening and closing the durable store, each worker's batch of a
 * loop turn, and holding acknowledgements until their batch is durable and,
 * in a cluster, their worker's JetStream messages are confirmed (see
 * store.h). What goes into the records is in store_record.c, the restore at
 * start in store_restore.c.
 */
#include "config.h"

#include "store_int.h"

#include "alloc.h"
#include "broker.h"
#include "client.h"
#include "cluster.h"
#include "conf.h"
#include "log.h"
#include "worker.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Purge what expired this long ago, this often (the broker expires things on time itself). */
#define PURGE_EVERY_MS 60000u
#define PURGE_LAG_S 60

struct store *store_of(const struct broker *b)
{
	struct store *st = b->store;

	return st && !atomic_load_explicit(&st->closed, memory_order_relaxed) ? st : NULL;
}

bool store_enabled(const struct broker *b)
{
	return store_of(b) != NULL;
}

void store_log_failure(struct store *st, const char *what, int rc)
{
	int64_t now = (int64_t)time(NULL);
	int64_t last = atomic_load_explicit(&st->last_error_log, memory_order_relaxed);

	if (now == last ||
	    !atomic_compare_exchange_strong_explicit(&st->last_error_log, &last, now,
						     memory_order_relaxed, memory_order_relaxed))
		return;
	log_err("Error: persistence: %s failed (%s).", what,
		rc == PERSIST_ENOMEM ? "out of memory" :
		rc == PERSIST_EINVAL ? "a key too long for the store" : persist_error(st->p));
}

/* --- opening --- */

/*
 * The store is the directory <persistence_location>/<persistence_file>; when
 * a regular file has that name (mosquitto's own snapshot), <name>.midge next
 * to it, so that file is never touched.
 */
static int store_dir(const struct config *cfg, char *out, size_t size)
{
	const char *loc = cfg->persistence_location && *cfg->persistence_location
				  ? cfg->persistence_location : ".";
	const char *file = cfg->persistence_file && *cfg->persistence_file ? cfg->persistence_file
									  : "midge.db";
	struct stat sb;
	int n = snprintf(out, size, "%s%s%s", loc, loc[strlen(loc) - 1] == '/' ? "" : "/", file);

	if (n < 0 || (size_t)n >= size)
		return -1;
	if (stat(out, &sb) == 0 && S_ISREG(sb.st_mode)) {
		if ((size_t)n + 6 >= size)
			return -1;
		strcat(out, ".midge");
	}
	return 0;
}

static enum persist_sync sync_mode(const struct config *cfg)
{
	switch (cfg->sync) {
	case STORE_SYNC_ALWAYS: return PERSIST_SYNC_ALWAYS;
	case STORE_SYNC_PERIODIC: return PERSIST_SYNC_PERIODIC;
	default: return PERSIST_SYNC_BATCH;
	}
}

/* Periodic sync: every autosave_interval seconds (each second when counted in changes,
 * never but at exit for 0). */
static unsigned sync_period_ms(const struct config *cfg)
{
	if (cfg->autosave_on_changes)
		return 1000;
	if (cfg->autosave_interval <= 0 || cfg->autosave_interval >= (int)(UINT_MAX / 1000))
		return UINT_MAX;
	return (unsigned)cfg->autosave_interval * 1000u;
}

static const char *sync_name(enum persist_sync s)
{
	return s == PERSIST_SYNC_ALWAYS ? "always" : s == PERSIST_SYNC_BATCH ? "batch" : "periodic";
}

int store_open(struct broker *b)
{
	const struct config *cfg = b->cfg;
	char dir[4096], err[600];
	struct persist_options po = {
		.sync = sync_mode(cfg),
		.map_size = (size_t)cfg->persistence_max_size,
		.recover = cfg->persistence_recover,
	};
	struct persist_writer_options wo = {
		.sync_ms = sync_period_ms(cfg),
		.purge_ms = PURGE_EVERY_MS,
		.purge_lag_s = PURGE_LAG_S,
	};
	struct persist_purge_stats purged = {0};
	struct store *st;
	struct timespec t0, t1;
	int rc;

	if (!cfg->persistence)
		return 0;
	if (store_dir(cfg, dir, sizeof(dir)) < 0) {
		log_err("Error: persistence_location and persistence_file make too long a path.");
		return -1;
	}
	st = mem_calloc(1, sizeof(*st));
	if (!st) {
		log_err("Error: out of memory opening the store.");
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = persist_open(dir, &po, &st->p, err, sizeof(err));
	if (rc != 0) {
		log_err("Error: %s", err);
		if (rc == PERSIST_EDAMAGED)
			log_err("Error: the store was not changed. To start anyway, dropping what is "
				"damaged (the damaged data file is kept aside), set "
				"persistence_recover: true.");
		mem_free(st);
		return -1;
	}
	if (persist_recovered(st->p) > 0)
		log_warn("Warning: the store in %s was damaged: %llu records were dropped or repaired.",
			 dir, (unsigned long long)persist_recovered(st->p));
	st->hold = po.sync != PERSIST_SYNC_PERIODIC;
	/* What expired while the broker was down goes first (one write transaction). */
	if ((rc = persist_purge(st->p, (int64_t)time(NULL), &purged)) != 0)
		log_warn("Warning: persistence: dropping expired records failed: %s.",
			 persist_error(st->p));
	if (store_restore(b, st, dir) < 0) {
		persist_close(st->p);
		mem_free(st);
		return -1;
	}
	st->writer = persist_writer_start(st->p, &wo);
	if (!st->writer) {
		log_err("Error: unable to start the store's writer thread.");
		persist_close(st->p);
		mem_free(st);
		return -1;
	}
	b->store = st;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_notice("Store %s opened (sync: %s) in %lld ms; %zu expired sessions and %zu messages "
		   "dropped.", dir, sync_name(po.sync),
		   (long long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000),
		   purged.sessions, purged.messages);
	return 0;
}

void store_close(struct broker *b)
{
	struct store *st = b->store;

	if (!st)
		return;
	atomic_store(&st->closed, true);
	/* Commits what the workers handed over before they stopped. */
	persist_writer_stop(st->writer);
	persist_close(st->p);
	mem_free(st);
	b->store = NULL;
}

bool store_stats(const struct broker *b, struct store_stats *out)
{
	struct store *st = store_of(b);
	struct persist_writer_stats ws;

	if (!st)
		return false;
	persist_writer_stats(st->writer, &ws);
	*out = (struct store_stats){
		.commits = ws.commits,
		.batches = ws.batches,
		.failed = ws.failed + ws.rejected,
		.syncs = ws.syncs,
		.purged = ws.purged,
		.commit_ns = ws.commit_ns,
		.commit_ns_max = ws.commit_ns_max,
	};
	return true;
}

/* --- a worker's batch --- */

struct persist_batch *store_batch(struct worker *w)
{
	struct worker_store *ws = &w->store;

	if (!ws->batch && !(ws->batch = persist_batch_new()))
		log_err("Error: out of memory recording a change for the store.");
	return ws->batch;
}

/* The writer committed (or failed) one of w's batches: they complete in order. */
static void batch_done(void *arg, int result)
{
	struct worker *w = arg;
	struct worker_store *ws = &w->store;
	uint64_t seq = atomic_load_explicit(&ws->durable, memory_order_relaxed) + 1;

	if (result != 0) {
		atomic_store_explicit(&ws->failed, seq, memory_order_relaxed);
		if (w->broker->store)
			store_log_failure(w->broker->store, "a commit", result);
	}
	atomic_store_explicit(&ws->durable, seq, memory_order_release);
	ev_async_send(&w->wake);
}

/*
 * The batch c's acknowledgements wait for will never be durable: the
 * connection ends and nothing more of its output goes out (the close would
 * otherwise write what the store can no longer promise).
 */
static void fail_client(struct client *c, const char *why)
{
	store_client_gone(c);
	outq_clear(&c->out);
	client_close(c, why, true);
}

#define STORE_FAILED "was disconnected: its changes could not be stored."

/*
 * JetStream did not confirm a message c published. Its incoming QoS 2 ids
 * are forgotten too (which PUBREC was held is not known): the PUBLISH the
 * client sends again is routed again, not just answered; at worst a copy.
 */
static void fail_unconfirmed(struct client *c)
{
	struct session *s = c->session;

	if (s && s->msgs && s->msgs->nqos2_in) {
		while (s->msgs->nqos2_in)
			session_qos2_in_remove(s, s->msgs->qos2_in[0]);
		store_session_save(s);
	}
	fail_client(c, "was disconnected: JetStream did not confirm its message.");
}

/* Clients held for the batch being built lose their connection: it will never be durable. */
static void fail_current(struct worker *w)
{
	struct worker_store *ws = &w->store;

	for (size_t i = ws->nheld; i-- > 0;) {
		if (i >= ws->nheld)
			continue;
		struct client_ext *x = ws->held[i]->ext;
		if (x && x->nhold && x->hold[x->nhold - 1].seq > ws->submitted)
			fail_client(ws->held[i], STORE_FAILED);
	}
}

void store_turn_end(struct worker *w)
{
	struct worker_store *ws = &w->store;
	struct store *st = store_of(w->broker);
	int rc;

	if (!ws->batch || persist_batch_count(ws->batch) == 0)
		return;
	if (!st) {
		persist_batch_reset(ws->batch);
		return;
	}
	rc = persist_writer_submit(st->writer, ws->batch, batch_done, w);
	ws->batch = NULL;
	if (rc == 0) {
		ws->submitted++;
		return;
	}
	store_log_failure(st, "handing changes to the writer", rc);
	fail_current(w);
}

/* --- holding acknowledgements --- */

static void held_add(struct worker_store *ws, struct client *c)
{
	if (c->flags & CLIENT_F_OUT_HELD)
		return;
	if (ws->nheld == ws->held_cap) {
		size_t cap = ws->held_cap ? ws->held_cap * 2 : 16;
		struct client **h = mem_realloc(ws->held, cap * sizeof(*h));
		if (!h)
			return; /* released at the next hold, or when the client writes again */
		ws->held = h;
		ws->held_cap = cap;
	}
	ws->held[ws->nheld++] = c;
	c->flags |= CLIENT_F_OUT_HELD;
}

/* Holds c's output from here until the store has this turn and cluster message cseq (0: none). */
static void hold(struct client *c, uint64_t cseq)
{
	struct worker *w = c->worker;
	struct worker_store *ws = &w->store;
	struct store *st = store_of(w->broker);
	struct client_ext *x;
	uint64_t seq = 0;

	if (st && st->hold) {
		seq = ws->batch && persist_batch_count(ws->batch) > 0 ? ws->submitted + 1
								       : ws->submitted;
		if (seq <= ws->released)
			seq = 0;
	}
	if (cseq <= ws->cluster_released)
		cseq = 0;
	if (seq == 0 && cseq == 0)
		return;
	if (!(x = client_ext(c))) {
		/* Nothing may go out before the store has it, and nothing can wait:
		 * the next flush drops the output and closes the connection. */
		c->flags |= CLIENT_F_HOLD_FAILED;
		worker_schedule_flush(w, c);
		return;
	}
	if (x->nhold > 0 && x->hold[x->nhold - 1].seq >= seq && x->hold[x->nhold - 1].cseq >= cseq)
		return;
	if (x->nhold == CLIENT_MAX_HOLDS) {
		/* Waits a little longer, never less; a failure of any cluster message
		 * it now covers fails it. */
		struct client_hold *last = &x->hold[CLIENT_MAX_HOLDS - 1];
		if (last->seq < seq)
			last->seq = seq;
		if (!last->cfirst)
			last->cfirst = cseq;
		if (last->cseq < cseq)
			last->cseq = cseq;
	} else {
		x->hold[x->nhold] = (struct client_hold){
			.seq = seq, .cfirst = cseq, .cseq = cseq, .mark = c->out.appended};
		x->nhold++;
	}
	held_add(ws, c);
}

void store_hold(struct client *c)
{
	hold(c, 0);
}

void store_hold_published(struct client *c)
{
	struct cluster *cl = c->worker->broker->cluster;

	hold(c, cl ? cluster_take_submitted(cl, c->worker->index) : 0);
}

size_t store_writable(struct client *c)
{
	const struct worker_store *ws = &c->worker->store;
	struct client_ext *x = c->ext;
	uint64_t written = c->out.appended - c->out.bytes;
	uint8_t done = 0;

	if (!x || x->nhold == 0)
		return SIZE_MAX;
	while (done < x->nhold && x->hold[done].seq <= ws->released &&
	       x->hold[done].cseq <= ws->cluster_released)
		done++;
	if (done) {
		memmove(x->hold, x->hold + done, (size_t)(x->nhold - done) * sizeof(x->hold[0]));
		x->nhold = (uint8_t)(x->nhold - done);
	}
	if (x->nhold == 0)
		return SIZE_MAX;
	return x->hold[0].mark > written ? (size_t)(x->hold[0].mark - written) : 0;
}

void store_client_gone(struct client *c)
{
	struct worker_store *ws = &c->worker->store;

	if (c->ext)
		c->ext->nhold = 0;
	if (!(c->flags & CLIENT_F_OUT_HELD))
		return;
	c->flags &= ~CLIENT_F_OUT_HELD;
	for (size_t i = 0; i < ws->nheld; i++) {
		if (ws->held[i] == c) {
			ws->held[i] = ws->held[--ws->nheld];
			break;
		}
	}
}

/* Whether one of c's holds covers a cluster message of failed[0..n) (ascending). */
static bool waits_for_failed(const struct client_ext *x, const uint64_t *failed, size_t n)
{
	for (uint8_t i = 0; i < x->nhold; i++) {
		const struct client_hold *h = &x->hold[i];
		size_t lo = 0, hi = n;
		if (!h->cseq)
			continue;
		while (lo < hi) { /* the first failed number >= cfirst */
			size_t mid = lo + (hi - lo) / 2;
			if (failed[mid] < h->cfirst)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n && failed[lo] <= h->cseq)
			return true;
	}
	return false;
}

void store_on_wake(struct worker *w)
{
	struct worker_store *ws = &w->store;
	struct cluster *cl = w->broker->cluster;
	uint64_t durable = atomic_load_explicit(&ws->durable, memory_order_acquire);
	uint64_t failed = atomic_load_explicit(&ws->failed, memory_order_relaxed);
	const uint64_t *cfailed = NULL;
	size_t ncfailed = 0;
	uint64_t cdone = cl ? cluster_confirmed(cl, w->index, &cfailed, &ncfailed) : 0;
	uint64_t old_released = ws->released;

	if (durable == ws->released && cdone == ws->cluster_released)
		return;
	bool failures = failed > old_released;
	ws->released = durable;
	ws->cluster_released = cdone;
	/* Backwards: closing a client swaps the last one into its place, already visited. */
	for (size_t i = ws->nheld; i-- > 0;) {
		if (i >= ws->nheld)
			continue;
		struct client *c = ws->held[i];
		struct client_ext *x = c->ext;
		if (!x || x->nhold == 0)
			continue;
		/* At once, whatever its store batch: that failure is final. */
		if (ncfailed && waits_for_failed(x, cfailed, ncfailed)) {
			fail_unconfirmed(c);
			continue;
		}
		if (x->hold[0].seq > durable || x->hold[0].cseq > cdone)
			continue;
		if (failures && x->hold[0].seq > old_released && x->hold[0].seq <= failed) {
			fail_client(c, STORE_FAILED);
			continue;
		}
		(void)store_writable(c); /* drops the holds now released */
		if (x->nhold == 0) {
			c->flags &= ~CLIENT_F_OUT_HELD;
			ws->held[i] = ws->held[--ws->nheld];
		}
		worker_schedule_flush(w, c);
	}
}
