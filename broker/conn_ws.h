/*
 * conn_ws.h: the WebSocket transport (see conn_ws.c), stacked on an inner
 * connection (TCP or TLS). The protocol itself is in ws.h.
 */
#ifndef MIDGE_CONN_WS_H
#define MIDGE_CONN_WS_H

#include "conn.h"
#include "ws.h"

extern const struct conn_type conn_type_ws;

/*
 * Makes c a server-side WebSocket connection over inner: c takes inner
 * over (c->fd is inner.fd; closing c closes inner). The upgrade handshake
 * happens inside the first reads, which return -1/EAGAIN until it is done
 * (or -1/EPROTO when it was refused: the HTTP error has been sent). o is
 * borrowed and read at init and during the handshake: it and its strings
 * must live that long (the listener's settings do). Returns -1 when out of
 * memory, and then inner still belongs to the caller. Owner thread only.
 *
 * Like TLS, the transport writes on its own (the 101, pongs, close frames):
 * while conn_wants() has EV_WRITE, call conn_read() (or conn_writev() with
 * no iovecs) when the descriptor is writable. While conn_pending() > 0,
 * read again even without a readable event.
 */
int conn_ws_init(struct conn *c, struct conn inner, const struct ws_options *o);

/* The Origin and first X-Forwarded-For of the upgrade request, or NULL
 * (absent, handshake not done, or c not a WebSocket connection). */
const char *conn_ws_origin(const struct conn *c);
const char *conn_ws_forwarded_for(const struct conn *c);

#endif
