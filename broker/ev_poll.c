/*
 * ev_poll.c: the poll(2) backend of the event loop, the portable fallback.
 * Keeps a dense pollfd array; each watcher remembers its slot.
 */
#include "config.h"

#include "ev_backend.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

struct ready {
	struct ev_io *io;
	uint32_t events;
};

struct poll_state {
	struct pollfd *fds;
	struct ev_io **ios;
	struct ready *ready;
	int len;
	int cap;
};

static void *poll_create_state(void)
{
	return calloc(1, sizeof(struct poll_state));
}

static void poll_destroy_state(void *state)
{
	struct poll_state *s = state;

	free(s->fds);
	free(s->ios);
	free(s->ready);
	free(s);
}

static int grow(struct poll_state *s)
{
	int cap = s->cap ? s->cap * 2 : 64;
	struct pollfd *fds;
	struct ev_io **ios;
	struct ready *ready;

	if (cap > (1 << 28)) /* slots must fit ev_io.backend_slot (29 bits, signed) */
		return -1;
	fds = realloc(s->fds, (size_t)cap * sizeof(*fds));
	if (!fds)
		return -1;
	s->fds = fds;
	ios = realloc(s->ios, (size_t)cap * sizeof(*ios));
	if (!ios)
		return -1;
	s->ios = ios;
	ready = realloc(s->ready, (size_t)cap * sizeof(*ready));
	if (!ready)
		return -1;
	s->ready = ready;
	s->cap = cap;
	return 0;
}

static int poll_set(void *state, struct ev_io *io, uint32_t old_mask, uint32_t new_mask)
{
	struct poll_state *s = state;
	uint32_t events = new_mask & (EV_READ | EV_WRITE);
	int slot = io->backend_slot;

	if (events == 0) {
		if (slot < 0)
			return 0;
		s->len--;
		if (slot != s->len) {
			s->fds[slot] = s->fds[s->len];
			s->ios[slot] = s->ios[s->len];
			s->ios[slot]->backend_slot = slot;
		}
		io->backend_slot = -1;
		return 0;
	}
	if (slot < 0) {
		if (s->len == s->cap && grow(s) < 0) {
			errno = ENOMEM;
			return -1;
		}
		slot = s->len++;
		io->backend_slot = slot;
		s->ios[slot] = io;
		s->fds[slot].fd = io->fd;
	}
	s->fds[slot].events = (short)(((events & EV_READ) ? POLLIN : 0) |
				      ((events & EV_WRITE) ? POLLOUT : 0));
	s->fds[slot].revents = 0;
	return 0;
}

static int poll_wait_events(void *state, int timeout_ms, struct ev_loop *loop, ev_fire_fn fire)
{
	struct poll_state *s = state;
	int n = poll(s->fds, (nfds_t)s->len, timeout_ms);
	int nready = 0;

	if (n < 0)
		return errno == EINTR ? 0 : -1;
	ev_now_update(loop);
	/* Snapshot first: callbacks may add or remove watchers while we fire. */
	for (int i = 0; i < s->len && nready < n; i++) {
		short r = s->fds[i].revents;
		uint32_t events = 0;

		if (!r)
			continue;
		if (r & (POLLIN | POLLERR | POLLHUP | POLLNVAL))
			events |= EV_READ;
		if (r & (POLLOUT | POLLERR | POLLHUP))
			events |= EV_WRITE;
		s->ready[nready].io = s->ios[i];
		s->ready[nready].events = events;
		nready++;
	}
	for (int i = 0; i < nready; i++)
		fire(loop, s->ready[i].io, s->ready[i].events);
	return n;
}

const struct ev_backend ev_backend_poll = {
	.name = "poll",
	.create = poll_create_state,
	.destroy = poll_destroy_state,
	.set = poll_set,
	.wait = poll_wait_events,
};
