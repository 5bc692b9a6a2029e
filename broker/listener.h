/*
 * listener.h: the sockets the broker accepts connections on.
 *
 * A listener is one configured endpoint (address, port, transport and its
 * own settings); it may own several sockets (IPv4 and IPv6 for an unbound
 * address). Sockets are opened once by the main thread and shared by every
 * worker; each worker accepts from them through its own event loop.
 */
#ifndef MIDGE_LISTENER_H
#define MIDGE_LISTENER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ws.h"

struct broker;

#define LISTENER_MAX_SOCKETS 4

struct listener {
	unsigned index;                 /* in broker->listeners and cfg->listeners */
	int fds[LISTENER_MAX_SOCKETS];
	int nfds;
	uint16_t port;                  /* the port actually bound */
	bool websockets;                /* protocol websockets */
	bool http;                      /* protocol http (http.h) */
	struct ws_options ws;           /* its strings are the listener's own copies */
	_Atomic int connections;        /* open connections, for max_connections */
	bool nodelay_inherited;         /* accepted sockets come with TCP_NODELAY set */
};

/* Opens every configured listener; logs each socket. Returns 0 or -1 (logged). */
int listeners_open(struct broker *b);
void listeners_close(struct broker *b);

#endif
