/*
 * test_ev.c: unit tests of the event loop (ev.c, ev_epoll.c, ev_poll.c).
 *
 * Timers: thousands of random timers fire in order, stop and restart move
 * them correctly, callbacks may re-arm or stop timers, and the loop sleeps
 * until the nearest one. File descriptors (over socketpairs), cross-thread
 * wake-ups and before-sleep hooks are tested once per backend, "epoll" and
 * "poll", as loop tests indexed by backend.
 */
#include "config.h"

#include "tests.h"

#include "ev.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *const backends[] = {"epoll", "poll"};
#define NBACKENDS ((int)(sizeof(backends) / sizeof(backends[0])))

#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))


static struct ev_loop *loop_new(const char *backend)
{
	struct ev_loop *loop = ev_loop_new(backend);

	ck_assert_msg(loop != NULL, "backend %s", backend ? backend : "default");
	if (backend)
		ck_assert_str_eq(ev_backend_name(loop), backend);
	return loop;
}

static uint64_t rng_state;

static uint32_t rng(uint32_t n)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 33) % n;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* --- timers --- */

/* A timer that records the order it fired in. */
struct rec_timer {
	struct ev_timer t;
	int id;
	bool stopped;
	int fired;
};

static struct rec_timer *fired_log[6000];
static int fired_n;

static void rec_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct rec_timer *r = CONTAINER(t, struct rec_timer, t);

	REQUIRE(!ev_timer_active(t), "timer %d still armed in its callback", r->id);
	REQUIRE(fired_n < 6000, "too many timers fired");
	REQUIRE(t->when <= ev_now(loop), "timer %d fired early: when %lld, now %lld", r->id,
		(long long)t->when, (long long)ev_now(loop));
	r->fired++;
	fired_log[fired_n++] = r;
}

START_TEST(test_timer_heap_order)
{
	enum { N = 5000 };
	static struct rec_timer timers[N];
	struct ev_loop *loop = loop_new(NULL);
	int64_t now = ev_now_update(loop);
	uint32_t armed = 0;

	rng_state = 0x74696D657273ull; /* "timers" */
	fired_n = 0;
	for (int i = 0; i < N; i++) {
		timers[i] = (struct rec_timer){.id = i};
		ev_timer_init(&timers[i].t, rec_cb);
		ck_assert(!ev_timer_active(&timers[i].t));
		/* Many equal times too: 500 distinct values for 5000 timers. */
		ev_timer_start(loop, &timers[i].t, now - 1 - (int64_t)rng(500));
		armed++;
	}
	ck_assert_uint_eq(ev_timer_count(loop), armed);
	/* Stop some, move some earlier or later while armed, restart some stopped. */
	for (int i = 0; i < N; i++) {
		struct rec_timer *r = &timers[rng(N)];
		switch (rng(4)) {
		case 0:
			if (!r->stopped) {
				ev_timer_stop(loop, &r->t);
				REQUIRE(!ev_timer_active(&r->t), "stopped timer %d active", r->id);
				r->stopped = true;
				armed--;
			}
			ev_timer_stop(loop, &r->t); /* twice is harmless */
			break;
		case 1:
		case 2:
			if (r->stopped) {
				r->stopped = false;
				armed++;
			}
			ev_timer_start(loop, &r->t, now - 1 - (int64_t)rng(700));
			REQUIRE(ev_timer_active(&r->t), "started timer %d inactive", r->id);
			break;
		default:
			break;
		}
		REQUIRE(ev_timer_count(loop) == armed, "count %u, armed %u", ev_timer_count(loop),
			armed);
	}
	/* Everything is due: one iteration fires every armed timer, nearest first. */
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(fired_n, (int)armed);
	ck_assert_uint_eq(ev_timer_count(loop), 0);
	for (int i = 1; i < fired_n; i++)
		REQUIRE(fired_log[i - 1]->t.when <= fired_log[i]->t.when,
			"timer %d (when %lld) fired after timer %d (when %lld)", fired_log[i]->id,
			(long long)fired_log[i]->t.when, fired_log[i - 1]->id,
			(long long)fired_log[i - 1]->t.when);
	for (int i = 0; i < N; i++)
		REQUIRE(timers[i].fired == (timers[i].stopped ? 0 : 1), "timer %d fired %d times",
			i, timers[i].fired);
	ev_loop_free(loop);
}
END_TEST

/* With due and future timers mixed, one iteration fires exactly the due ones. */
START_TEST(test_timer_due_subset)
{
	enum { N = 3000 };
	static struct rec_timer timers[N];
	struct ev_loop *loop = loop_new(NULL);
	int64_t now = ev_now_update(loop);
	int due = 0;

	rng_state = 0x647565ull; /* "due" */
	fired_n = 0;
	for (int i = 0; i < N; i++) {
		bool past = rng(2);
		timers[i] = (struct rec_timer){.id = i};
		ev_timer_init(&timers[i].t, rec_cb);
		ev_timer_start(loop, &timers[i].t,
			       past ? now - 1 - (int64_t)rng(1000) : now + 60000 + (int64_t)rng(1000));
		due += past;
	}
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(fired_n, due);
	ck_assert_uint_eq(ev_timer_count(loop), (uint32_t)(N - due));
	for (int i = 0; i < N; i++)
		REQUIRE(timers[i].fired == (timers[i].t.when < now ? 1 : 0), "timer %d fired %d times",
			i, timers[i].fired);
	for (int i = 1; i < fired_n; i++)
		REQUIRE(fired_log[i - 1]->t.when <= fired_log[i]->t.when, "order at %d", i);
	ev_loop_free(loop);
}
END_TEST

/* Timers in the near future fire in order, each no earlier than its time. */
START_TEST(test_timer_real_time)
{
	enum { N = 100 };
	static struct rec_timer timers[N];
	struct ev_loop *loop = loop_new(NULL);
	int64_t start = ev_now_update(loop);

	rng_state = 0x7265616Cull;
	fired_n = 0;
	for (int i = 0; i < N; i++) {
		timers[i] = (struct rec_timer){.id = i};
		ev_timer_init(&timers[i].t, rec_cb);
		ev_timer_start(loop, &timers[i].t, start + (int64_t)rng(40));
	}
	while (fired_n < N) {
		ck_assert_int_eq(ev_run_once(loop, -1), 0);
		ck_assert_msg(ev_monotonic_ms() - start < 3000, "timers did not fire in time");
	}
	for (int i = 1; i < N; i++)
		ck_assert(fired_log[i - 1]->t.when <= fired_log[i]->t.when);
	ck_assert_uint_eq(ev_timer_count(loop), 0);
	ev_loop_free(loop);
}
END_TEST

START_TEST(test_timer_stop_restart)
{
	struct ev_loop *loop = loop_new(NULL);
	struct rec_timer a = {.id = 0}, b = {.id = 1}, c = {.id = 2};
	int64_t now = ev_now_update(loop);

	fired_n = 0;
	ev_timer_init(&a.t, rec_cb);
	ev_timer_init(&b.t, rec_cb);
	ev_timer_init(&c.t, rec_cb);
	ev_timer_stop(loop, &a.t); /* never started: no-op */
	ev_timer_start(loop, &a.t, now + 100000);
	ev_timer_start(loop, &b.t, now + 200000);
	ev_timer_start(loop, &c.t, now - 1);
	ck_assert_uint_eq(ev_timer_count(loop), 3);
	ev_timer_stop(loop, &c.t);
	ck_assert(!ev_timer_active(&c.t));
	ck_assert_uint_eq(ev_timer_count(loop), 2);
	/* Restarting an armed timer moves it, it is not armed twice. */
	ev_timer_start(loop, &a.t, now + 300000); /* later */
	ev_timer_start(loop, &b.t, now - 5);      /* earlier */
	ck_assert_uint_eq(ev_timer_count(loop), 2);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(fired_n, 1);
	ck_assert_ptr_eq(fired_log[0], &b);
	ck_assert_int_eq(c.fired, 0);
	ck_assert(ev_timer_active(&a.t));
	ev_timer_start(loop, &a.t, now - 1);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(fired_n, 2);
	ck_assert_ptr_eq(fired_log[1], &a);
	/* A stopped timer can be started again. */
	ev_timer_start(loop, &c.t, now - 1);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(c.fired, 1);
	ck_assert_uint_eq(ev_timer_count(loop), 0);
	ev_loop_free(loop);
}
END_TEST

/* A timer whose callback re-arms it, and one that stops or starts others. */
struct chain_timer {
	struct ev_timer t;
	int fired;
	int limit;
	int64_t step;          /* re-arm at ev_now + step */
	struct ev_timer *stop; /* stopped by the callback */
	struct ev_timer *start; /* started by the callback, due at once */
};

static void chain_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct chain_timer *c = CONTAINER(t, struct chain_timer, t);

	c->fired++;
	if (c->stop)
		ev_timer_stop(loop, c->stop);
	if (c->start)
		ev_timer_start(loop, c->start, ev_now(loop));
	if (c->fired < c->limit)
		ev_timer_start(loop, t, ev_now(loop) + c->step);
	else if (c->step > 0)
		ev_loop_stop(loop);
}

START_TEST(test_timer_rearm_from_callback)
{
	struct ev_loop *loop = loop_new(NULL);
	struct chain_timer self = {.limit = 5, .step = 0};
	struct chain_timer paced = {.limit = 5, .step = 5};
	struct chain_timer a = {.limit = 1}, b = {.limit = 1};
	int64_t now = ev_now_update(loop), t0;

	/* Re-armed for "now": runs once per iteration, not in a loop. */
	ev_timer_init(&self.t, chain_cb);
	ev_timer_start(loop, &self.t, now - 1);
	for (int i = 1; i <= 5; i++) {
		ck_assert_int_eq(ev_run_once(loop, 0), 0);
		ck_assert_int_eq(self.fired, i);
	}
	ck_assert(!ev_timer_active(&self.t));

	/* Re-armed 5 ms ahead each time, until the fifth stops the loop. */
	ev_timer_init(&paced.t, chain_cb);
	t0 = ev_now_update(loop);
	ev_timer_start(loop, &paced.t, t0 + 5);
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_int_eq(paced.fired, 5);
	ck_assert_int_ge(ev_now(loop) - t0, 25);

	/* A callback stops a timer that is also due: it does not fire. */
	now = ev_now_update(loop);
	ev_timer_init(&a.t, chain_cb);
	ev_timer_init(&b.t, chain_cb);
	a.stop = &b.t;
	ev_timer_start(loop, &a.t, now - 2);
	ev_timer_start(loop, &b.t, now - 1);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(a.fired, 1);
	ck_assert_int_eq(b.fired, 0);
	ck_assert(!ev_timer_active(&b.t));
	ck_assert_uint_eq(ev_timer_count(loop), 0);
	ev_loop_free(loop);
}
END_TEST

/*
 * ev.c: "Timers armed by callbacks for 'now' run in the next iteration, so a
 * callback that re-arms itself at once cannot starve I/O." That must hold
 * however many other timers are armed for later.
 */
START_TEST(test_timer_armed_in_callback_waits)
{
	enum { IDLE = 100 };
	static struct rec_timer idle[IDLE];
	struct ev_loop *loop = loop_new(NULL);
	struct chain_timer self = {.limit = 1000000, .step = 0};
	struct chain_timer a = {.limit = 1}, late = {.limit = 1};
	int64_t now = ev_now_update(loop);

	for (int i = 0; i < IDLE; i++) {
		ev_timer_init(&idle[i].t, rec_cb);
		ev_timer_start(loop, &idle[i].t, now + 3600 * 1000);
	}
	/* A timer re-arming itself for "now", among 100 idle ones. */
	ev_timer_init(&self.t, chain_cb);
	ev_timer_start(loop, &self.t, now - 1);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_msg(self.fired == 1, "a timer re-armed for now ran %d times in one iteration",
		      self.fired);
	ev_timer_stop(loop, &self.t);

	/* A timer started for "now" by another's callback. */
	ev_timer_init(&a.t, chain_cb);
	ev_timer_init(&late.t, chain_cb);
	a.start = &late.t;
	ev_timer_start(loop, &a.t, ev_now(loop) - 1);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(a.fired, 1);
	ck_assert_msg(late.fired == 0, "a timer armed for now by a callback ran in the same "
		      "iteration");
	ck_assert(ev_timer_active(&late.t));
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(late.fired, 1);
	ev_loop_free(loop);
}
END_TEST

/* The loop sleeps until the nearest timer: not forever, not a fixed tick. */
START_TEST(test_timer_wakes_loop)
{
	struct ev_loop *loop = loop_new(NULL);
	struct rec_timer t = {.id = 0};
	int64_t start = ev_now_update(loop), took;
	int iterations = 0;

	fired_n = 0;
	ev_timer_init(&t.t, rec_cb);
	ev_timer_start(loop, &t.t, start + 100);
	while (fired_n == 0) {
		ck_assert_int_eq(ev_run_once(loop, -1), 0);
		iterations++;
	}
	took = ev_now_update(loop) - start;
	ck_assert_int_ge(took, 100);
	ck_assert_int_lt(took, 1000);
	/* One sleep up to the timer (a second only if woken a little early). */
	ck_assert_int_le(iterations, 2);

	/* With no timer, max_wait bounds the sleep. */
	start = ev_now_update(loop);
	ck_assert_int_eq(ev_run_once(loop, 20), 0);
	took = ev_now_update(loop) - start;
	ck_assert_int_ge(took, 15);
	ck_assert_int_lt(took, 1000);
	ev_loop_free(loop);
}
END_TEST

START_TEST(test_loop_misc)
{
	struct ev_loop *loop;
	int marker;
	int64_t a, b;

	ck_assert_ptr_null(ev_loop_new("no-such-backend"));
	for (int i = 0; i < NBACKENDS; i++) {
		loop = loop_new(backends[i]);
		ck_assert_ptr_null(ev_userdata(loop));
		ev_set_userdata(loop, &marker);
		ck_assert_ptr_eq(ev_userdata(loop), &marker);
		a = ev_now(loop);
		b = ev_now_update(loop);
		ck_assert_int_ge(b, a);
		ck_assert_int_ge(ev_monotonic_ms(), b);
		ev_loop_free(loop);
	}
	loop = loop_new(NULL);
	ev_loop_free(loop);
	ev_loop_free(NULL);
}
END_TEST

/* --- file descriptors (run for each backend) --- */

struct probe {
	struct ev_io io;
	int calls;
	uint32_t events;
	bool drain;              /* read one byte per call */
	int eof;                 /* reads that returned 0 */
	struct ev_io *stop_other; /* stopped from the callback */
};

static void probe_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct probe *p = CONTAINER(io, struct probe, io);

	p->calls++;
	p->events = events;
	REQUIRE((events & ~io->mask) == 0, "events %u outside mask %u", events, io->mask);
	if (p->drain && (events & EV_READ)) {
		char c;
		ssize_t n = read(io->fd, &c, 1);
		if (n == 0)
			p->eof++;
	}
	if (p->stop_other)
		ev_io_stop(loop, p->stop_other);
}

static void pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

START_TEST(test_io_read_write)
{
	struct ev_loop *loop = loop_new(backends[_i]);
	struct probe p = {.drain = true};
	int sv[2];

	pair(sv);
	ev_io_init(&p.io, sv[0], probe_cb);
	ev_io_stop(loop, &p.io); /* not started: harmless */
	ck_assert_int_eq(ev_io_set(loop, &p.io, EV_READ), 0);
	ck_assert_uint_eq(p.io.mask, EV_READ);
	ck_assert_int_eq(ev_io_set(loop, &p.io, EV_READ), 0); /* unchanged: no-op */

	/* Nothing to read yet. */
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(p.calls, 0);

	/* Readable once there is data; level-triggered until drained. */
	ck_assert_int_eq(write(sv[1], "xy", 2), 2);
	ck_assert_int_eq(ev_run_once(loop, 1000), 0);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_uint_eq(p.events, EV_READ);
	ck_assert_int_eq(ev_run_once(loop, 1000), 0);
	ck_assert_int_eq(p.calls, 2);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(p.calls, 2);

	/* Writable: a socketpair with room is always writable. */
	p.drain = false;
	ck_assert_int_eq(ev_io_set(loop, &p.io, EV_READ | EV_WRITE), 0);
	ck_assert_int_eq(ev_run_once(loop, 1000), 0);
	ck_assert_int_eq(p.calls, 3);
	ck_assert_uint_eq(p.events, EV_WRITE);
	ck_assert_int_eq(ev_io_set(loop, &p.io, EV_WRITE), 0);
	ck_assert_int_eq(write(sv[1], "z", 1), 1);
	ck_assert_int_eq(ev_run_once(loop, 1000), 0);
	ck_assert_uint_eq(p.events, EV_WRITE); /* readable too, but not asked for */

	/* Stopped: pending data raises nothing. */
	ev_io_stop(loop, &p.io);
	ck_assert_uint_eq(p.io.mask, 0);
	int calls = p.calls;
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(p.calls, calls);

	/* Watched again, the data is still there. */
	p.drain = true;
	ck_assert_int_eq(ev_io_set(loop, &p.io, EV_READ), 0);
	ck_assert_int_eq(ev_run_once(loop, 1000), 0);
	ck_assert_int_eq(p.calls, calls + 1);
	ck_assert_uint_eq(p.events, EV_READ);

	/* The peer's close is reported as readable, and read() sees it. */
	close(sv[1]);
	ck_assert_int_eq(ev_run_once(loop, 1000), 0);
	ck_assert_int_eq(p.calls, calls + 2);
	ck_assert(p.events & EV_READ);
	ck_assert_int_eq(p.eof, 1);
	ev_io_stop(loop, &p.io);
	close(sv[0]);
	ev_loop_free(loop);
}
END_TEST

/* A watcher stopped by an earlier callback of the same batch does not fire. */
START_TEST(test_io_stop_in_batch)
{
	struct ev_loop *loop = loop_new(backends[_i]);
	struct probe a = {0}, b = {0};
	int s1[2], s2[2];

	pair(s1);
	pair(s2);
	ev_io_init(&a.io, s1[0], probe_cb);
	ev_io_init(&b.io, s2[0], probe_cb);
	a.stop_other = &b.io;
	b.stop_other = &a.io;
	ck_assert_int_eq(ev_io_set(loop, &a.io, EV_READ), 0);
	ck_assert_int_eq(ev_io_set(loop, &b.io, EV_READ), 0);
	ck_assert_int_eq(write(s1[1], "x", 1), 1);
	ck_assert_int_eq(write(s2[1], "x", 1), 1);
	sleep_ms(5);
	ck_assert_int_eq(ev_run_once(loop, 1000), 0);
	ck_assert_msg(a.calls + b.calls == 1, "a %d, b %d", a.calls, b.calls);
	ev_io_stop(loop, &a.io);
	ev_io_stop(loop, &b.io);
	for (int i = 0; i < 2; i++) {
		close(s1[i]);
		close(s2[i]);
	}
	ev_loop_free(loop);
}
END_TEST

/* Many watchers, some stopped from the middle and the end, others still right. */
START_TEST(test_io_many_watchers)
{
	enum { N = 70 }; /* past the poll backend's first 64 slots */
	struct ev_loop *loop = loop_new(backends[_i]);
	static struct probe p[N];
	static int sv[N][2];

	for (int i = 0; i < N; i++) {
		p[i] = (struct probe){.drain = true};
		pair(sv[i]);
		ev_io_init(&p[i].io, sv[i][0], probe_cb);
		ck_assert_int_eq(ev_io_set(loop, &p[i].io, EV_READ), 0);
	}
	for (int i = 0; i < N; i += 3)
		ev_io_stop(loop, &p[i].io);
	ev_io_stop(loop, &p[N - 1].io);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(write(sv[i][1], "x", 1), 1);
	sleep_ms(5);
	ck_assert_int_eq(ev_run_once(loop, 1000), 0);
	for (int i = 0; i < N; i++) {
		bool active = i % 3 != 0 && i != N - 1;
		ck_assert_msg(p[i].calls == (active ? 1 : 0), "watcher %d called %d times", i,
			      p[i].calls);
	}
	/* Restart the stopped ones: they fire now, the drained ones stay quiet. */
	for (int i = 0; i < N; i += 3)
		ck_assert_int_eq(ev_io_set(loop, &p[i].io, EV_READ), 0);
	ck_assert_int_eq(ev_io_set(loop, &p[N - 1].io, EV_READ), 0);
	ck_assert_int_eq(ev_run_once(loop, 1000), 0);
	for (int i = 0; i < N; i++)
		ck_assert_msg(p[i].calls == 1, "watcher %d called %d times", i, p[i].calls);
	for (int i = 0; i < N; i++) {
		ev_io_stop(loop, &p[i].io);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	ev_loop_free(loop);
}
END_TEST

/* --- cross-thread wake-ups (run for each backend) --- */

struct async_probe {
	struct ev_async a;
	int calls;
	bool on_loop_thread;
	pthread_t loop_thread;
	bool stop;
};

static void async_cb(struct ev_loop *loop, struct ev_async *a)
{
	struct async_probe *p = CONTAINER(a, struct async_probe, a);

	p->calls++;
	p->on_loop_thread = pthread_equal(pthread_self(), p->loop_thread);
	if (p->stop)
		ev_loop_stop(loop);
}

static void *send_later(void *arg)
{
	struct async_probe *p = arg;

	sleep_ms(30);
	ev_async_send(&p->a);
	return NULL;
}

static void *send_many(void *arg)
{
	struct async_probe *p = arg;

	for (int i = 0; i < 1000; i++)
		ev_async_send(&p->a);
	return NULL;
}

static bool watchdog_fired;

static void watchdog_cb(struct ev_loop *loop, struct ev_timer *t)
{
	watchdog_fired = true;
	ev_loop_stop(loop);
}

START_TEST(test_async)
{
	int fds_before = count_fds();
	struct ev_loop *loop = loop_new(backends[_i]);
	struct async_probe p = {.loop_thread = pthread_self(), .stop = true};
	struct ev_timer watchdog;
	pthread_t th;

	ck_assert_int_eq(ev_async_init(loop, &p.a, async_cb), 0);
	ev_timer_init(&watchdog, watchdog_cb);
	ev_timer_start(loop, &watchdog, ev_now_update(loop) + 5000);
	watchdog_fired = false;

	/* The loop sleeps with no event due; another thread wakes it. */
	ck_assert_int_eq(pthread_create(&th, NULL, send_later, &p), 0);
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(!watchdog_fired, "ev_async_send did not wake the loop");
	ck_assert_int_eq(p.calls, 1);
	ck_assert(p.on_loop_thread);

	/* Sends before the loop runs coalesce into one callback. */
	p.stop = false;
	p.calls = 0;
	for (int i = 0; i < 100; i++)
		ev_async_send(&p.a);
	ck_assert_int_eq(ev_run_once(loop, 1000), 0);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(p.calls, 1);

	/* A burst from another thread: at least one callback, no hang, then quiet. */
	p.calls = 0;
	ck_assert_int_eq(pthread_create(&th, NULL, send_many, &p), 0);
	while (p.calls == 0)
		ck_assert_int_eq(ev_run_once(loop, 1000), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	int calls = p.calls;
	ck_assert_int_le(calls, 1000);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(p.calls, calls);

	ev_timer_stop(loop, &watchdog);
	ev_async_close(loop, &p.a);
	ev_loop_free(loop);
	ck_assert_int_eq(count_fds(), fds_before);
}
END_TEST

/* --- before-sleep hooks (run for each backend) --- */

struct hook_log {
	int order[32];
	int n;
	struct ev_timer *arm;
	bool stop;
};

static struct hook_log hooks;
static int hook_ids[4] = {1, 2, 3, 4};

static void hook_cb(struct ev_loop *loop, void *data)
{
	int id = *(int *)data;

	if (hooks.n < 32)
		hooks.order[hooks.n++] = id;
	if (id == 1 && hooks.arm && !ev_timer_active(hooks.arm))
		ev_timer_start(loop, hooks.arm, ev_now(loop) - 1);
	if (id == 4 && hooks.stop)
		ev_loop_stop(loop);
}

START_TEST(test_before_sleep_hooks)
{
	struct ev_loop *loop = loop_new(backends[_i]);
	struct rec_timer t = {.id = 0};
	int64_t start;

	hooks = (struct hook_log){0};
	fired_n = 0;
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(ev_add_before_sleep(loop, hook_cb, &hook_ids[i]), 0);
	ck_assert_int_eq(ev_add_before_sleep(loop, hook_cb, &hook_ids[0]), -1); /* at most 4 */

	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(hooks.n, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(hooks.order[i], i % 4 + 1);

	/* A hook runs before the sleep: a timer it arms fires in the same iteration. */
	ev_timer_init(&t.t, rec_cb);
	hooks.arm = &t.t;
	ck_assert_int_eq(ev_run_once(loop, 5000), 0);
	ck_assert_int_eq(t.fired, 1);
	hooks.arm = NULL;

	/* A hook that stops the loop: ev_run() returns without sleeping. */
	hooks.stop = true;
	hooks.n = 0;
	start = ev_now_update(loop);
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_int_eq(hooks.n, 4);
	ck_assert_int_lt(ev_now_update(loop) - start, 1000);
	ev_loop_free(loop);
}
END_TEST

Suite *suite_ev(void)
{
	Suite *s = suite_create("ev");
	TCase *tc;

	tc = tcase_create("timers");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_timer_heap_order);
	tcase_add_test(tc, test_timer_due_subset);
	tcase_add_test(tc, test_timer_real_time);
	tcase_add_test(tc, test_timer_stop_restart);
	tcase_add_test(tc, test_timer_rearm_from_callback);
	tcase_add_test(tc, test_timer_armed_in_callback_waits);
	tcase_add_test(tc, test_timer_wakes_loop);
	tcase_add_test(tc, test_loop_misc);
	suite_add_tcase(s, tc);

	tc = tcase_create("io");
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_io_read_write, 0, NBACKENDS);
	tcase_add_loop_test(tc, test_io_stop_in_batch, 0, NBACKENDS);
	tcase_add_loop_test(tc, test_io_many_watchers, 0, NBACKENDS);
	suite_add_tcase(s, tc);

	tc = tcase_create("async");
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_async, 0, NBACKENDS);
	suite_add_tcase(s, tc);

	tc = tcase_create("hooks");
	tcase_add_loop_test(tc, test_before_sleep_hooks, 0, NBACKENDS);
	suite_add_tcase(s, tc);
	return s;
}
