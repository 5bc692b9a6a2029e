/*
 * ev_epoll.c: the epoll(7) backend of the event loop. Level-triggered; the
 * watcher pointer travels in epoll_event.data so no fd table is needed.
 */
#include "config.h"

#include "ev_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EPOLL_BATCH 256

struct epoll_state {
	int epfd;
	struct epoll_event events[EPOLL_BATCH];
};

static void *epoll_create_state(void)
{
	struct epoll_state *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		free(s);
		return NULL;
	}
	return s;
}

static void epoll_destroy_state(void *state)
{
	struct epoll_state *s = state;

	close(s->epfd);
	free(s);
}

static int epoll_set(void *state, struct ev_io *io, uint32_t old_mask, uint32_t new_mask)
{
	struct epoll_state *s = state;
	struct epoll_event ev = {0};
	uint32_t old_events = old_mask & (EV_READ | EV_WRITE);
	uint32_t new_events = new_mask & (EV_READ | EV_WRITE);
	int op;

	if (new_events == 0) {
		/* The fd may already be closed; nothing left to undo then. */
		if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, io->fd, &ev) < 0 && errno != EBADF &&
		    errno != ENOENT)
			return -1;
		return 0;
	}
	if (new_events & EV_READ)
		ev.events |= EPOLLIN | EPOLLRDHUP;
	if (new_events & EV_WRITE)
		ev.events |= EPOLLOUT;
	ev.data.ptr = io;
	if (old_events == 0) {
		op = EPOLL_CTL_ADD;
#ifdef EPOLLEXCLUSIVE
		/* EPOLLEXCLUSIVE accepts no EPOLLRDHUP; listening sockets need none. */
		if (new_mask & EV_EXCLUSIVE)
			ev.events = (ev.events & ~(uint32_t)EPOLLRDHUP) | EPOLLEXCLUSIVE;
#endif
	} else {
		op = EPOLL_CTL_MOD;
	}
	return epoll_ctl(s->epfd, op, io->fd, &ev);
}

static int epoll_wait_events(void *state, int timeout_ms, struct ev_loop *loop, ev_fire_fn fire)
{
	struct epoll_state *s = state;
	int n = epoll_wait(s->epfd, s->events, EPOLL_BATCH, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -1;
	ev_now_update(loop);
	for (int i = 0; i < n; i++) {
		uint32_t e = s->events[i].events;
		uint32_t events = 0;

		/* Errors and hang-ups are reported as readable: the read sees them. */
		if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
			events |= EV_READ;
		if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			events |= EV_WRITE;
		fire(loop, s->events[i].data.ptr, events);
	}
	return n;
}

const struct ev_backend ev_backend_epoll = {
	.name = "epoll",
	.create = epoll_create_state,
	.destroy = epoll_destroy_state,
	.set = epoll_set,
	.wait = epoll_wait_events,
	.close_unregisters = true,
};
