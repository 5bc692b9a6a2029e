/*
 * ev_backend.h: the interface between ev.c and its readiness backends.
 * Private to the event loop; nothing else includes it.
 */
#ifndef MIDGE_EV_BACKEND_H
#define MIDGE_EV_BACKEND_H

#include "ev.h"

typedef void (*ev_fire_fn)(struct ev_loop *loop, struct ev_io *io, uint32_t events);

struct ev_backend {
	const char *name;
	void *(*create)(void);
	void (*destroy)(void *state);
	/* Changes the watched set of io from old_mask to new_mask (either may be 0). */
	int (*set)(void *state, struct ev_io *io, uint32_t old_mask, uint32_t new_mask);
	/* Waits up to timeout_ms (-1 forever) and calls fire for each ready watcher. */
	int (*wait)(void *state, int timeout_ms, struct ev_loop *loop, ev_fire_fn fire);
	/* Closing the fd unregisters it (epoll): stopping before a close needs no call. */
	bool close_unregisters;
};

extern const struct ev_backend ev_backend_poll;
#ifdef HAVE_SYS_EPOLL_H
extern const struct ev_backend ev_backend_epoll;
#endif

#endif
