/*
 * listener.c: opening and closing the listening sockets (see listener.h).
 */
#include "config.h"

#include "listener.h"

#include "alloc.h"
#include "broker.h"
#include "conf.h"
#include "conn.h"
#include "http.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTEN_BACKLOG 1024

static int open_unix(struct listener *l, const struct config_listener *lc)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(lc->unix_path) >= sizeof(sun.sun_path)) {
		log_err("Error: unix socket path %s is too long.", lc->unix_path);
		return -1;
	}
	strcpy(sun.sun_path, lc->unix_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	unlink(lc->unix_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		log_err("Error: unable to listen on unix socket %s: %s.", lc->unix_path, strerror(errno));
		close(fd);
		return -1;
	}
	log_notice("Opening unix listen socket on path %s.", lc->unix_path);
	l->fds[l->nfds++] = fd;
	return 0;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int open_socket(struct listener *l, const struct config_listener *lc,
		       const struct addrinfo *ai, int port)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (lc->bind_interface &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, lc->bind_interface,
		       (socklen_t)strlen(lc->bind_interface)) < 0) {
		log_err("Error: unable to bind to interface %s: %s.", lc->bind_interface, strerror(errno));
		close(fd);
		return -1;
	}
	/* With port 0, the second socket (IPv6) takes the port the first one got. */
	if (port > 0) {
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)port);
		else
			((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons((uint16_t)port);
	}
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		log_err("Error: unable to listen on %s port %d: %s.",
			lc->bind_address ? lc->bind_address : "every address", port > 0 ? port : lc->port,
			strerror(errno));
		close(fd);
		return -1;
	}
	l->port = (uint16_t)bound_port(fd);
#ifdef __linux__
	/* Linux copies TCP_NODELAY to accepted sockets: one call here instead of
	 * one per connection. */
	bool nodelay = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
	l->nodelay_inherited = (l->nfds == 0 || l->nodelay_inherited) && nodelay;
#endif
	/* mosquitto's wording, which tools parse: websockets listeners name no family. */
	log_notice("Opening %s listen socket on port %u.",
		   l->websockets ? "websockets" : ai->ai_family == AF_INET6 ? "ipv6" : "ipv4", l->port);
	l->fds[l->nfds++] = fd;
	return 0;
}

static int open_inet(struct listener *l, const struct config_listener *lc)
{
	struct addrinfo hints = {0}, *res = NULL;
	char service[16];
	int rc;

	hints.ai_family = lc->socket_domain == SOCKET_DOMAIN_IPV4 ? AF_INET :
			  lc->socket_domain == SOCKET_DOMAIN_IPV6 ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(service, sizeof(service), "%d", lc->port);
	rc = getaddrinfo(lc->bind_address, service, &hints, &res);
	if (rc != 0) {
		log_err("Error: unable to resolve %s: %s.", lc->bind_address ? lc->bind_address : "*",
			gai_strerror(rc));
		return -1;
	}
	rc = 0;
	for (struct addrinfo *ai = res; ai && l->nfds < LISTENER_MAX_SOCKETS; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (open_socket(l, lc, ai, l->nfds > 0 ? l->port : lc->port) < 0) {
			/* An unbound listener works if at least one family is available. */
			if (lc->bind_address || errno != EAFNOSUPPORT) {
				rc = -1;
				break;
			}
		}
	}
	freeaddrinfo(res);
	if (rc == 0 && l->nfds == 0)
		rc = -1;
	return rc;
}

int listeners_open(struct broker *b)
{
	const struct config *cfg = b->cfg;

	b->listeners = mem_calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(*b->listeners));
	if (!b->listeners)
		return -1;
	b->nlisteners = (unsigned)cfg->nlisteners;
	for (unsigned i = 0; i < b->nlisteners; i++) {
		struct listener *l = &b->listeners[i];
		const struct config_listener *lc = &cfg->listeners[i];

		l->index = i;
		atomic_init(&l->connections, 0);
		if (lc->protocol == LISTENER_WEBSOCKETS) {
			/* Copied: a handshake may still read them after a reload freed its config. */
			l->websockets = true;
			l->ws.origin = lc->websockets_origin ? mem_strdup(lc->websockets_origin) : NULL;
			l->ws.max_headers = (size_t)lc->websockets_headers_size;
			l->ws.max_message = cfg->max_packet_size;
			/* MQTT travels in binary frames only [MQTT-6.0.0-1]. */
			l->ws.binary_only = true;
			l->ws.http = http_ws_answer;
			l->ws.http_ctx = b;
		}
		l->http = lc->protocol == LISTENER_HTTP;
		if ((lc->unix_path ? open_unix(l, lc) : open_inet(l, lc)) < 0)
			return -1;
	}
	return 0;
}

void listeners_close(struct broker *b)
{
	for (unsigned i = 0; i < b->nlisteners; i++) {
		struct listener *l = &b->listeners[i];
		for (int k = 0; k < l->nfds; k++)
			close(l->fds[k]);
		l->nfds = 0;
		mem_free((char *)l->ws.origin);
		if (b->cfg && i < b->cfg->nlisteners && b->cfg->listeners[i].unix_path)
			unlink(b->cfg->listeners[i].unix_path);
	}
	mem_free(b->listeners);
	b->listeners = NULL;
	b->nlisteners = 0;
}
