/*
 * ev.c: backend-neutral part of the event loop: watcher bookkeeping, the
 * timer min-heap, cross-thread wake-ups and the run loop (see ev.h).
 */
#include "config.h"

#include "ev.h"
#include "ev_backend.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_EVENTFD_H
#include <sys/eventfd.h>
#endif

#define EV_MAX_HOOKS 4

struct ev_hook {
	ev_hook_cb cb;
	void *data;
};

struct ev_loop {
	const struct ev_backend *backend;
	void *backend_state;
	int64_t now;
	bool stop;
	/* Timer heap, 1-based: heap[1] is the nearest timer. */
	struct ev_timer **heap;
	uint32_t heap_len;
	uint32_t heap_cap;
	bool no_wait;
	struct ev_hook hooks[EV_MAX_HOOKS];
	int nhooks;
	void *userdata;
};

int64_t ev_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct ev_backend *pick_backend(const char *name)
{
	if (!name)
		name = getenv("MIDGE_EV_BACKEND");
#ifdef HAVE_SYS_EPOLL_H
	if (!name || strcmp(name, "epoll") == 0)
		return &ev_backend_epoll;
#endif
	if (!name || strcmp(name, "poll") == 0)
		return &ev_backend_poll;
	return NULL;
}

struct ev_loop *ev_loop_new(const char *backend)
{
	struct ev_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->backend = pick_backend(backend);
	if (!loop->backend)
		goto fail;
	loop->backend_state = loop->backend->create();
	if (!loop->backend_state)
		goto fail;
	loop->now = ev_monotonic_ms();
	return loop;
fail:
	free(loop);
	return NULL;
}

void ev_loop_free(struct ev_loop *loop)
{
	if (!loop)
		return;
	loop->backend->destroy(loop->backend_state);
	free(loop->heap);
	free(loop);
}

const char *ev_backend_name(const struct ev_loop *loop)
{
	return loop->backend->name;
}

int64_t ev_now(const struct ev_loop *loop)
{
	return loop->now;
}

int64_t ev_now_update(struct ev_loop *loop)
{
	loop->now = ev_monotonic_ms();
	return loop->now;
}

void ev_set_userdata(struct ev_loop *loop, void *data)
{
	loop->userdata = data;
}

void *ev_userdata(const struct ev_loop *loop)
{
	return loop->userdata;
}

void ev_io_init(struct ev_io *io, int fd, ev_io_cb cb)
{
	io->fd = fd;
	io->mask = 0;
	io->backend_slot = -1;
	io->cb = cb;
}

int ev_io_set(struct ev_loop *loop, struct ev_io *io, uint32_t mask)
{
	uint32_t events = mask & (EV_READ | EV_WRITE);

	if (events == io->mask)
		return 0;
	if (loop->backend->set(loop->backend_state, io, io->mask, mask) < 0)
		return -1;
	io->mask = events;
	return 0;
}

void ev_io_stop(struct ev_loop *loop, struct ev_io *io)
{
	if (io->mask)
		(void)ev_io_set(loop, io, 0);
}

void ev_io_stop_closing(struct ev_loop *loop, struct ev_io *io)
{
	if (loop->backend->close_unregisters)
		io->mask = 0;
	else
		ev_io_stop(loop, io);
}

/* --- timers: a binary min-heap on `when` --- */

static void heap_place(struct ev_loop *loop, uint32_t i, struct ev_timer *t)
{
	loop->heap[i] = t;
	t->heap_index = i;
}

static void heap_up(struct ev_loop *loop, uint32_t i)
{
	struct ev_timer *t = loop->heap[i];

	while (i > 1 && loop->heap[i / 2]->when > t->when) {
		heap_place(loop, i, loop->heap[i / 2]);
		i /= 2;
	}
	heap_place(loop, i, t);
}

static void heap_down(struct ev_loop *loop, uint32_t i)
{
	struct ev_timer *t = loop->heap[i];

	for (;;) {
		uint32_t child = i * 2;
		if (child > loop->heap_len)
			break;
		if (child + 1 <= loop->heap_len && loop->heap[child + 1]->when < loop->heap[child]->when)
			child++;
		if (loop->heap[child]->when >= t->when)
			break;
		heap_place(loop, i, loop->heap[child]);
		i = child;
	}
	heap_place(loop, i, t);
}

void ev_timer_init(struct ev_timer *t, ev_timer_cb cb)
{
	t->when = 0;
	t->heap_index = 0;
	t->cb = cb;
}

void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, int64_t when)
{
	if (t->heap_index) {
		int64_t old = t->when;
		t->when = when;
		if (when < old)
			heap_up(loop, t->heap_index);
		else
			heap_down(loop, t->heap_index);
		return;
	}
	if (loop->heap_len + 1 >= loop->heap_cap) {
		uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct ev_timer **heap = realloc(loop->heap, cap * sizeof(*heap));
		if (!heap)
			abort(); /* a timer that silently never fires is worse than a crash */
		loop->heap = heap;
		loop->heap_cap = cap;
	}
	t->when = when;
	loop->heap_len++;
	heap_place(loop, loop->heap_len, t);
	heap_up(loop, loop->heap_len);
}

void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t)
{
	uint32_t i = t->heap_index;
	struct ev_timer *last;

	if (!i)
		return;
	t->heap_index = 0;
	last = loop->heap[loop->heap_len--];
	if (last == t)
		return;
	heap_place(loop, i, last);
	if (i > 1 && loop->heap[i / 2]->when > last->when)
		heap_up(loop, i);
	else
		heap_down(loop, i);
}

uint32_t ev_timer_count(const struct ev_loop *loop)
{
	return loop->heap_len;
}

/*
 * Number of timers due at `now`: the heap nodes with when <= now form a
 * subtree at the root, walked here in O(due) without a stack.
 */
static uint32_t due_timers(const struct ev_loop *loop, int64_t now)
{
	uint32_t i = 1, due = 0;

	for (;;) {
		if (i <= loop->heap_len && loop->heap[i]->when <= now) {
			due++;
			i *= 2; /* left child */
			continue;
		}
		while (i & 1) /* a right child (or the root): climb */
			i >>= 1;
		if (i == 0)
			return due;
		i++; /* the right sibling */
	}
}

static void run_timers(struct ev_loop *loop)
{
	/* Timers armed by callbacks for "now" run in the next iteration,
	 * so a callback that re-arms itself at once cannot starve I/O: only
	 * as many timers fire as were due when the run began (not heap_len,
	 * which counts the idle ones too). */
	int64_t now = loop->now;
	uint32_t budget = due_timers(loop, now);

	while (budget-- > 0 && loop->heap_len > 0 && loop->heap[1]->when <= now) {
		struct ev_timer *t = loop->heap[1];
		ev_timer_stop(loop, t);
		t->cb(loop, t);
	}
}

static int next_timeout(struct ev_loop *loop, int max_wait_ms)
{
	int64_t wait;

	if (loop->heap_len == 0)
		return max_wait_ms;
	wait = loop->heap[1]->when - ev_monotonic_ms();
	if (wait < 0)
		wait = 0;
	if (max_wait_ms >= 0 && wait > max_wait_ms)
		wait = max_wait_ms;
	if (wait > 60000)
		wait = 60000;
	return (int)wait;
}

/* --- cross-thread wake-ups --- */

static void async_ready(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct ev_async *a = (struct ev_async *)((char *)io - offsetof(struct ev_async, io));
	char buf[64];

	/* Drain the counter or pipe; several sends coalesce into one callback. */
	while (read(io->fd, buf, sizeof(buf)) > 0)
		;
	a->cb(loop, a);
}

int ev_async_init(struct ev_loop *loop, struct ev_async *a,
		  void (*cb)(struct ev_loop *loop, struct ev_async *a))
{
	int rfd;

	a->cb = cb;
#ifdef HAVE_SYS_EVENTFD_H
	rfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (rfd < 0)
		return -1;
	a->write_fd = rfd;
#else
	int fds[2];
	if (pipe(fds) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		fcntl(fds[i], F_SETFL, O_NONBLOCK);
		fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	}
	rfd = fds[0];
	a->write_fd = fds[1];
#endif
	ev_io_init(&a->io, rfd, async_ready);
	if (ev_io_set(loop, &a->io, EV_READ) < 0) {
		ev_async_close(loop, a);
		return -1;
	}
	return 0;
}

void ev_async_send(struct ev_async *a)
{
	uint64_t one = 1;
	ssize_t n;

	/* EAGAIN means a wake-up is already pending, which is all we need. */
	do {
		n = write(a->write_fd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
}

void ev_async_close(struct ev_loop *loop, struct ev_async *a)
{
	ev_io_stop(loop, &a->io);
	if (a->write_fd != a->io.fd)
		close(a->write_fd);
	close(a->io.fd);
	a->io.fd = -1;
	a->write_fd = -1;
}

void ev_dont_sleep(struct ev_loop *loop)
{
	loop->no_wait = true;
}

int ev_add_before_sleep(struct ev_loop *loop, ev_hook_cb cb, void *data)
{
	if (loop->nhooks == EV_MAX_HOOKS)
		return -1;
	loop->hooks[loop->nhooks].cb = cb;
	loop->hooks[loop->nhooks].data = data;
	loop->nhooks++;
	return 0;
}

/* --- the loop --- */

static void fire(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	/* A watcher stopped earlier in this batch keeps mask 0 and is skipped. */
	events &= io->mask;
	if (events)
		io->cb(loop, io, events);
}

int ev_run_once(struct ev_loop *loop, int max_wait_ms)
{
	int timeout;

	for (int i = 0; i < loop->nhooks; i++)
		loop->hooks[i].cb(loop, loop->hooks[i].data);
	timeout = loop->stop || loop->no_wait ? 0 : next_timeout(loop, max_wait_ms);
	loop->no_wait = false;
	if (loop->backend->wait(loop->backend_state, timeout, loop, fire) < 0)
		return -1;
	ev_now_update(loop);
	run_timers(loop);
	return 0;
}

int ev_run(struct ev_loop *loop)
{
	loop->stop = false;
	while (!loop->stop)
		if (ev_run_once(loop, -1) < 0)
			return -1;
	return 0;
}

void ev_loop_stop(struct ev_loop *loop)
{
	loop->stop = true;
}
