/*
 * test_persist_writer.c: unit tests of the store's writer thread (persist_writer.c).
 *
 * Concurrent submitters (every done() once, in per-submitter order, all
 * stored after a reopen); group commit and its bound; flush; backpressure
 * (a full queue refuses and frees the batch); a failing commit (map full)
 * reports to the whole group and the writer goes on; stop commits what is
 * queued; the periodic sync timer.
 */
#include "config.h"

#include "tests.h"

#include "alloc.h"
#include "persist.h"
#include "persist_writer.h"

#include <dirent.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* --- helpers --- */

static char tmpdir[256];

static void setup(void)
{
	test_tmpdir(tmpdir, sizeof(tmpdir), "midge-pwriter");
}

static void teardown(void)
{
	test_rmtree(tmpdir);
}

static struct persist *open_store(enum persist_sync sync, size_t map_size)
{
	struct persist_options o = { sync, map_size, false };
	struct persist *p = NULL;
	char err[512];
	int rc = persist_open(tmpdir, &o, &p, err, sizeof(err));
	ck_assert_msg(rc == 0, "open %s: %d %s", tmpdir, rc, err);
	return p;
}

/* A batch storing message id with a payload of len bytes. */
static struct persist_batch *msg_batch(uint64_t id, size_t len)
{
	static const uint8_t zeros[1u << 20];
	struct persist_msg m = { 1, false, 0, (const uint8_t *)"t/w", 3, zeros, len, NULL, 0 };
	struct persist_batch *b = persist_batch_new();
	REQUIRE(b != NULL, "batch_new");
	REQUIRE(len <= sizeof(zeros), "payload too long");
	int rc = persist_msg_put(b, id, &m);
	REQUIRE(rc == 0, "msg_put %d", rc);
	return b;
}

static void count_msg(uint64_t id, const struct persist_msg *m, uint32_t refs, void *arg)
{
	(void)id, (void)m, (void)refs;
	(*(long *)arg)++;
}

static long count_msgs(struct persist *p)
{
	long n = 0;
	long rc = persist_msg_iter(p, count_msg, &n);
	ck_assert_int_eq(rc, n);
	return n;
}

static bool has_msg(struct persist *p, uint64_t id)
{
	long n = 0;
	int rc = persist_msg_get(p, id, count_msg, &n);
	ck_assert_msg(rc == 0 || rc == PERSIST_ENOTFOUND, "msg_get %d", rc);
	return rc == 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* One done() record: the result seen and how often done() ran. */
struct rec {
	int result;
	atomic_int calls;
};

static void rec_done(void *arg, int result)
{
	struct rec *r = arg;
	r->result = result;
	atomic_fetch_add(&r->calls, 1);
}

/*
 * A gate: the done() of a gated batch tells that the writer entered it, then
 * holds the writer thread until released, so that the test can queue a known
 * set of batches behind it.
 */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool entered, open;
	struct rec rec;
};

static void gate_init(struct gate *g)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
}

static void gate_done(void *arg, int result)
{
	struct gate *g = arg;
	rec_done(&g->rec, result);
	pthread_mutex_lock(&g->lock);
	g->entered = true;
	pthread_cond_broadcast(&g->cond);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_wait_entered(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	while (!g->entered)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void gate_destroy(struct gate *g)
{
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
}

/* Holds the writer in the done() of message id (committed first). */
static void hold_writer(struct persist_writer *w, struct gate *g, uint64_t id)
{
	gate_init(g);
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(id, 8), gate_done, g), 0);
	gate_wait_entered(g);
}

/* --- concurrent submitters --- */

#define SUBMITTERS 4
#define PER_SUBMITTER 5000

struct submitter {
	struct persist_writer *w;
	unsigned index;
	int next;       /* the next done() expected (writer thread only) */
	int out_of_order, bad_result, calls, refused;
	int idx[PER_SUBMITTER];
};

static void sub_done(void *arg, int result)
{
	int *idx = arg;
	/* idx points into its submitter's idx[]: find the submitter from it. */
	struct submitter *s = (struct submitter *)((char *)(idx - *idx) -
						   offsetof(struct submitter, idx));
	if (*idx != s->next)
		s->out_of_order++;
	s->next = *idx + 1;
	if (result != 0)
		s->bad_result++;
	s->calls++;
}

static void *submit_main(void *arg)
{
	struct submitter *s = arg;
	for (int i = 0; i < PER_SUBMITTER; i++) {
		uint64_t id = (uint64_t)s->index * PER_SUBMITTER + (uint64_t)i + 1;
		s->idx[i] = i;
		if (persist_writer_submit(s->w, msg_batch(id, 16), sub_done, &s->idx[i]) != 0)
			s->refused++;
	}
	return NULL;
}

START_TEST(t_concurrent)
{
	struct persist *p = open_store(PERSIST_SYNC_BATCH, 256u << 20);
	struct persist_writer *w = persist_writer_start(p, NULL);
	static struct submitter subs[SUBMITTERS];
	pthread_t th[SUBMITTERS];
	struct persist_writer_stats st;

	ck_assert_ptr_nonnull(w);
	memset(subs, 0, sizeof(subs));
	for (unsigned t = 0; t < SUBMITTERS; t++) {
		subs[t].w = w;
		subs[t].index = t;
		ck_assert_int_eq(pthread_create(&th[t], NULL, submit_main, &subs[t]), 0);
	}
	for (unsigned t = 0; t < SUBMITTERS; t++)
		pthread_join(th[t], NULL);
	persist_writer_flush(w);
	persist_writer_stats(w, &st);
	persist_writer_stop(w);
	ck_assert_uint_eq(st.batches, SUBMITTERS * PER_SUBMITTER);
	ck_assert_uint_eq(st.failed, 0);

	for (unsigned t = 0; t < SUBMITTERS; t++) {
		ck_assert_int_eq(subs[t].refused, 0);
		ck_assert_int_eq(subs[t].calls, PER_SUBMITTER);
		ck_assert_int_eq(subs[t].out_of_order, 0);
		ck_assert_int_eq(subs[t].bad_result, 0);
	}
	/* Submitters raced the writer (each commit syncs): groups formed. */
	ck_assert_msg(st.max_group > 1, "largest group %llu", (unsigned long long)st.max_group);
	ck_assert_uint_le(st.max_group, 256);
	fprintf(stderr, "persist_writer concurrent: %llu commits, largest group %llu\n",
		(unsigned long long)st.commits, (unsigned long long)st.max_group);

	persist_close(p);
	p = open_store(PERSIST_SYNC_BATCH, 256u << 20);
	ck_assert_int_eq(count_msgs(p), SUBMITTERS * PER_SUBMITTER);
	persist_close(p);
}
END_TEST

/* --- grouping, deterministic: queue behind a held writer --- */

START_TEST(t_grouping)
{
	struct persist *p = open_store(PERSIST_SYNC_BATCH, 64u << 20);
	struct persist_writer_options o = { .max_group = 3 };
	struct persist_writer *w = persist_writer_start(p, &o);
	struct persist_writer_stats st;
	struct rec recs[10];
	struct gate g;

	ck_assert_ptr_nonnull(w);
	memset(recs, 0, sizeof(recs));
	hold_writer(w, &g, 1000);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(persist_writer_submit(w, msg_batch((uint64_t)i + 1, 8), rec_done,
						       &recs[i]),
				 0);
	gate_open(&g);
	persist_writer_flush(w);
	persist_writer_stats(w, &st);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(atomic_load(&recs[i].calls), 1);
		ck_assert_int_eq(recs[i].result, 0);
	}
	/* 1 (the held one) + groups of 3, 3, 3, 1. */
	ck_assert_uint_eq(st.commits, 5);
	ck_assert_uint_eq(st.batches, 11);
	ck_assert_uint_eq(st.max_group, 3);
	ck_assert_uint_eq(st.failed, 0);
	persist_writer_stop(w);
	gate_destroy(&g);

	/* The default bound: all ten in one commit. */
	w = persist_writer_start(p, NULL);
	ck_assert_ptr_nonnull(w);
	memset(recs, 0, sizeof(recs));
	hold_writer(w, &g, 1001);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(persist_writer_submit(w, msg_batch((uint64_t)i + 100, 8), rec_done,
						       &recs[i]),
				 0);
	gate_open(&g);
	persist_writer_flush(w);
	persist_writer_stats(w, &st);
	ck_assert_uint_eq(st.commits, 2);
	ck_assert_uint_eq(st.max_group, 10);
	persist_writer_stop(w);
	gate_destroy(&g);
	ck_assert_int_eq(count_msgs(p), 22);
	persist_close(p);
}
END_TEST

/* --- flush --- */

START_TEST(t_flush)
{
	struct persist *p = open_store(PERSIST_SYNC_BATCH, 64u << 20);
	struct persist_writer *w = persist_writer_start(p, NULL);
	static struct rec recs[500];
	struct persist_writer_stats st;

	ck_assert_ptr_nonnull(w);
	memset(recs, 0, sizeof(recs));
	persist_writer_flush(w); /* nothing submitted: returns at once */
	for (int round = 0; round < 5; round++) {
		for (int i = round * 100; i < round * 100 + 100; i++)
			ck_assert_int_eq(persist_writer_submit(w, msg_batch((uint64_t)i + 1, 8),
							       rec_done, &recs[i]),
					 0);
		persist_writer_flush(w);
		/* Everything submitted so far ran its done() and is readable. */
		for (int i = 0; i < round * 100 + 100; i++) {
			ck_assert_int_eq(atomic_load(&recs[i].calls), 1);
			ck_assert_int_eq(recs[i].result, 0);
		}
		ck_assert_int_eq(count_msgs(p), round * 100 + 100);
		persist_writer_stats(w, &st);
		ck_assert_uint_eq(st.batches, (uint64_t)round * 100 + 100);
	}
	/* done may be NULL. */
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(9999, 8), NULL, NULL), 0);
	persist_writer_flush(w);
	ck_assert(has_msg(p, 9999));
	persist_writer_flush(w);
	persist_writer_stop(w);
	persist_close(p);
}
END_TEST

/* --- backpressure --- */

START_TEST(t_backpressure)
{
	struct persist *p = open_store(PERSIST_SYNC_BATCH, 64u << 20);
	struct persist_writer_options o = { .max_group = 1, .max_queue = 2 };
	struct persist_writer *w = persist_writer_start(p, &o);
	struct persist_writer_stats st;
	struct rec recs[3];
	struct gate g;

	ck_assert_ptr_nonnull(w);
	memset(recs, 0, sizeof(recs));
	hold_writer(w, &g, 1);
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(2, 8), rec_done, &recs[0]), 0);
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(3, 8), rec_done, &recs[1]), 0);

	/* The queue holds 2: the third is refused at once, and freed. */
	uint64_t before = mem_current();
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(5, 1000), rec_done, &recs[2]),
			 PERSIST_EFULL);
	ck_assert_uint_eq(mem_current(), before);
	/* Bad arguments free too. */
	ck_assert_int_eq(persist_writer_submit(w, NULL, rec_done, &recs[2]), PERSIST_EINVAL);

	gate_open(&g);
	persist_writer_flush(w);
	ck_assert_int_eq(atomic_load(&recs[0].calls), 1);
	ck_assert_int_eq(atomic_load(&recs[1].calls), 1);
	ck_assert_int_eq(atomic_load(&recs[2].calls), 0); /* refused: never called */
	persist_writer_stats(w, &st);
	ck_assert_uint_eq(st.rejected, 2);
	ck_assert_uint_eq(st.batches, 3);

	/* Room again. */
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(6, 8), rec_done, &recs[2]), 0);
	persist_writer_stop(w);
	gate_destroy(&g);
	ck_assert_int_eq(atomic_load(&recs[2].calls), 1);
	ck_assert_int_eq(recs[2].result, 0);
	ck_assert(!has_msg(p, 5));
	ck_assert_int_eq(count_msgs(p), 4);
	persist_close(p);
}
END_TEST

/* --- a failing commit --- */

START_TEST(t_commit_fails)
{
	/* A 1 MiB map: three 400 KB messages in one commit cannot fit. */
	struct persist *p = open_store(PERSIST_SYNC_BATCH, 1u << 20);
	struct persist_writer *w = persist_writer_start(p, NULL);
	struct persist_writer_stats st;
	struct rec recs[6];
	struct gate g;

	ck_assert_ptr_nonnull(w);
	memset(recs, 0, sizeof(recs));
	hold_writer(w, &g, 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(persist_writer_submit(w, msg_batch((uint64_t)i + 10, 400000),
						       rec_done, &recs[i]),
				 0);
	/* A small one in the same group fails with them (all or nothing). */
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(20, 8), rec_done, &recs[3]), 0);
	gate_open(&g);
	persist_writer_flush(w);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(atomic_load(&recs[i].calls), 1);
		ck_assert_int_eq(recs[i].result, PERSIST_EFULL);
	}
	persist_writer_stats(w, &st);
	ck_assert_uint_eq(st.failed, 4);
	ck_assert_uint_eq(st.commits, 1);

	/* Smaller work fits: the writer goes on. */
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(21, 8), rec_done, &recs[4]), 0);
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(22, 100000), rec_done, &recs[5]), 0);
	persist_writer_flush(w);
	ck_assert_int_eq(recs[4].result, 0);
	ck_assert_int_eq(recs[5].result, 0);

	/* Again too big: an error, no crash; then fine again. */
	struct rec big = { 0 }, small = { 0 };
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(30, 1u << 20), rec_done, &big), 0);
	persist_writer_flush(w);
	ck_assert_int_eq(big.result, PERSIST_EFULL);
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(31, 8), rec_done, &small), 0);
	persist_writer_stop(w);
	gate_destroy(&g);
	ck_assert_int_eq(small.result, 0);

	ck_assert(has_msg(p, 1));
	for (uint64_t id = 10; id <= 12; id++)
		ck_assert(!has_msg(p, id));
	ck_assert(!has_msg(p, 20));
	ck_assert(!has_msg(p, 30));
	ck_assert(has_msg(p, 21));
	ck_assert(has_msg(p, 22));
	ck_assert(has_msg(p, 31));
	persist_close(p);
}
END_TEST

/* --- stop with work queued --- */

static void *open_later(void *arg)
{
	sleep_ms(100);
	gate_open(arg);
	return NULL;
}

START_TEST(t_stop_queued)
{
	struct persist *p = open_store(PERSIST_SYNC_BATCH, 64u << 20);
	struct persist_writer_options o = { .max_group = 7 };
	struct persist_writer *w = persist_writer_start(p, &o);
	static struct rec recs[100];
	struct gate g;
	pthread_t th;

	ck_assert_ptr_nonnull(w);
	memset(recs, 0, sizeof(recs));
	hold_writer(w, &g, 1000);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(persist_writer_submit(w, msg_batch((uint64_t)i + 1, 8), rec_done,
						       &recs[i]),
				 0);
	/* stop() is called while the writer is held with 100 batches queued. */
	ck_assert_int_eq(pthread_create(&th, NULL, open_later, &g), 0);
	persist_writer_stop(w);
	pthread_join(th, NULL);
	gate_destroy(&g);
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(atomic_load(&recs[i].calls), 1);
		ck_assert_int_eq(recs[i].result, 0);
	}
	persist_close(p);
	p = open_store(PERSIST_SYNC_BATCH, 64u << 20);
	ck_assert_int_eq(count_msgs(p), 101);
	persist_close(p);

	/* Start and stop with nothing submitted; stop(NULL) is fine. */
	p = open_store(PERSIST_SYNC_BATCH, 64u << 20);
	w = persist_writer_start(p, NULL);
	ck_assert_ptr_nonnull(w);
	persist_writer_stop(w);
	persist_writer_stop(NULL);
	persist_close(p);
}
END_TEST

/* --- the periodic sync timer --- */

START_TEST(t_periodic_sync)
{
	struct persist *p = open_store(PERSIST_SYNC_PERIODIC, 64u << 20);
	struct persist_writer_options o = { .sync_ms = 30 };
	struct persist_writer *w = persist_writer_start(p, &o);
	struct persist_writer_stats st;
	struct rec r = { 0 };

	ck_assert_ptr_nonnull(w);
	sleep_ms(100);
	persist_writer_stats(w, &st);
	ck_assert_uint_eq(st.syncs, 0); /* nothing committed: no sync */

	ck_assert_int_eq(persist_writer_submit(w, msg_batch(1, 8), rec_done, &r), 0);
	persist_writer_flush(w);
	ck_assert_int_eq(r.result, 0);
	for (int i = 0; i < 100; i++) {
		persist_writer_stats(w, &st);
		if (st.syncs > 0)
			break;
		sleep_ms(10);
	}
	ck_assert_uint_eq(st.syncs, 1);
	ck_assert_uint_eq(st.sync_failed, 0);
	sleep_ms(100);
	persist_writer_stats(w, &st);
	ck_assert_uint_eq(st.syncs, 1); /* nothing new: no more syncs */

	/* Stop with a commit the timer has not synced yet (stop syncs it). */
	o.sync_ms = 60000;
	persist_writer_stop(w);
	w = persist_writer_start(p, &o);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(2, 8), rec_done, &r), 0);
	persist_writer_flush(w);
	persist_writer_stats(w, &st);
	ck_assert_uint_eq(st.syncs, 0);
	persist_writer_stop(w);
	ck_assert_int_eq(count_msgs(p), 2);
	persist_close(p);

	/* Other sync modes never sync on a timer. */
	p = open_store(PERSIST_SYNC_BATCH, 64u << 20);
	w = persist_writer_start(p, &o);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(persist_writer_submit(w, msg_batch(3, 8), rec_done, &r), 0);
	sleep_ms(100);
	persist_writer_stats(w, &st);
	ck_assert_uint_eq(st.syncs, 0);
	persist_writer_stop(w);
	persist_close(p);
}
END_TEST

Suite *suite_persist_writer(void)
{
	Suite *s = suite_create("persist_writer");
	TCase *tc = tcase_create("writer");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_concurrent);
	tcase_add_test(tc, t_grouping);
	tcase_add_test(tc, t_flush);
	tcase_add_test(tc, t_backpressure);
	tcase_add_test(tc, t_commit_fails);
	tcase_add_test(tc, t_stop_queued);
	tcase_add_test(tc, t_periodic_sync);
	suite_add_tcase(s, tc);
	return s;
}
