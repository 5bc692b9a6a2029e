/*
 * ev.h: the event loop of one worker thread.
 *
 * Owns readiness notification for file descriptors (through a backend:
 * epoll, or poll(2) as the portable fallback), a min-heap of timers, a
 * cross-thread wake-up (ev_async), and before-sleep hooks. The loop sleeps
 * until the nearest timer, never on a fixed tick. Watchers are embedded in
 * their owners (no allocation per watcher); a loop is used by one thread
 * only, except ev_async_send(), which any thread may call.
 */
#ifndef MIDGE_EV_H
#define MIDGE_EV_H

#include <stdbool.h>
#include <stdint.h>

struct ev_loop;

enum {
	EV_READ = 1u,
	EV_WRITE = 2u,
	/* With ev_io_set(): when several loops watch one fd, wake only one (epoll). */
	EV_EXCLUSIVE = 4u,
};

struct ev_io;
typedef void (*ev_io_cb)(struct ev_loop *loop, struct ev_io *io, uint32_t events);

/* A file descriptor watcher. `mask` is what the loop currently watches. */
struct ev_io {
	ev_io_cb cb;
	int fd;
	uint32_t mask : 3;
	/* private to the backend (-1 = none); bits shared with mask keep a watcher at 16 bytes */
	int32_t backend_slot : 29;
};

struct ev_timer;
typedef void (*ev_timer_cb)(struct ev_loop *loop, struct ev_timer *t);

/* A one-shot timer; restart it from its callback to repeat. */
struct ev_timer {
	int64_t when;        /* monotonic milliseconds */
	uint32_t heap_index; /* 0 when not in the heap */
	ev_timer_cb cb;
};

/* Wakes the loop from another thread; the callback runs on the loop thread. */
struct ev_async {
	struct ev_io io;
	int write_fd;
	void (*cb)(struct ev_loop *loop, struct ev_async *a);
};

typedef void (*ev_hook_cb)(struct ev_loop *loop, void *data);

/* Backend name: "epoll", "poll", or NULL to pick the best available. */
struct ev_loop *ev_loop_new(const char *backend);
void ev_loop_free(struct ev_loop *loop);
const char *ev_backend_name(const struct ev_loop *loop);

/* Runs until ev_loop_stop(); returns 0, or -1 if the backend failed. */
int ev_run(struct ev_loop *loop);
/* Runs one iteration, waiting at most max_wait_ms (-1: until an event or timer). */
int ev_run_once(struct ev_loop *loop, int max_wait_ms);
void ev_loop_stop(struct ev_loop *loop);

/* Cached monotonic time in milliseconds, refreshed at every wake-up. */
int64_t ev_now(const struct ev_loop *loop);
/* Reads the clock now and refreshes the cache. */
int64_t ev_now_update(struct ev_loop *loop);
/* The monotonic clock itself, in milliseconds. */
int64_t ev_monotonic_ms(void);

void ev_io_init(struct ev_io *io, int fd, ev_io_cb cb);
/* Sets the watched events (0 stops watching); returns 0 or -1 with errno. */
int ev_io_set(struct ev_loop *loop, struct ev_io *io, uint32_t mask);
/* Stops watching; safe to call on a watcher that is not started. */
void ev_io_stop(struct ev_loop *loop, struct ev_io *io);
/*
 * Stops watching an fd the caller closes right after (and has not duplicated):
 * with epoll the close itself removes it, so no system call is spent here.
 */
void ev_io_stop_closing(struct ev_loop *loop, struct ev_io *io);

void ev_timer_init(struct ev_timer *t, ev_timer_cb cb);
/* (Re)arms the timer at absolute time `when`. */
void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, int64_t when);
void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t);
static inline bool ev_timer_active(const struct ev_timer *t) { return t->heap_index != 0; }
/* Number of armed timers (for tests and statistics). */
uint32_t ev_timer_count(const struct ev_loop *loop);

int ev_async_init(struct ev_loop *loop, struct ev_async *a,
		  void (*cb)(struct ev_loop *loop, struct ev_async *a));
void ev_async_send(struct ev_async *a);
void ev_async_close(struct ev_loop *loop, struct ev_async *a);

/* From a before-sleep hook: poll once without waiting (more work is ready). */
void ev_dont_sleep(struct ev_loop *loop);

/* Called before the loop sleeps, in registration order. At most 4 hooks. */
int ev_add_before_sleep(struct ev_loop *loop, ev_hook_cb cb, void *data);

/* Opaque user pointer (the worker that owns the loop). */
void ev_set_userdata(struct ev_loop *loop, void *data);
void *ev_userdata(const struct ev_loop *loop);

#endif
