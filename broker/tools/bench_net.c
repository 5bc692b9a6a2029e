/*
 * bench_net.c: midge_bench's connections. Non-blocking sockets on one epoll
 * instance (level-triggered), framing with the broker's codec, and the
 * packets a client sends. Scenarios see connections through net_handlers.
 */
#include "config.h"

#include "bench.h"

#include <midge/mqtt.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define SCRATCH_SIZE (256u * 1024u)
#define IN_CHUNK (16u * 1024u)
#define IO_ROUNDS 8          /* reads per connection per wakeup, so none starves the rest */
#define EVENTS_MAX 512
#define MAX_PACKET 268435455u
#define WAIT_MAX_MS 100      /* the loops look at their clocks at least this often */

/* A watched descriptor's events carry this instead of a connection. */
static struct conn watch_tag;

void net_fail(struct net *n, const char *fmt, ...)
{
	va_list ap;

	if (n->failed)
		return; /* the first error is the one worth reading */
	va_start(ap, fmt);
	vsnprintf(n->err, sizeof(n->err), fmt, ap);
	va_end(ap);
	n->failed = true;
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

bool net_init(struct net *n, const struct opts *o, const struct net_handlers *h, void *ctx)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	memset(n, 0, sizeof(*n));
	n->o = o;
	n->h = h;
	n->ctx = ctx;
	n->epfd = -1;
	n->tag = (unsigned)getpid();
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0 || !res) {
		net_fail(n, "cannot resolve %s: %s", o->host, rc ? gai_strerror(rc) : "no address");
		return false;
	}
	/* A load generator aimed elsewhere would be a flood: loopback only. */
	if (!is_loopback(res->ai_addr)) {
		freeaddrinfo(res);
		net_fail(n, "%s is not a loopback address: midge_bench only loads a broker on "
			 "this machine", o->host);
		return false;
	}
	memcpy(&n->addr, res->ai_addr, res->ai_addrlen);
	n->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	if (o->sub_port) {
		uint16_t port = htons((uint16_t)strtoul(o->sub_port, NULL, 10));
		n->alt_addr = n->addr;
		n->alt_addrlen = n->addrlen;
		if (n->alt_addr.ss_family == AF_INET)
			((struct sockaddr_in *)&n->alt_addr)->sin_port = port;
		else
			((struct sockaddr_in6 *)&n->alt_addr)->sin6_port = port;
	}
	n->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (n->epfd < 0) {
		net_fail(n, "epoll_create1: %s", strerror(errno));
		return false;
	}
	n->scratch = xcalloc(SCRATCH_SIZE, 1);
	n->last_rx = now_ns();
	return true;
}

void net_free(struct net *n)
{
	if (n->epfd >= 0)
		close(n->epfd);
	n->epfd = -1;
	free(n->scratch);
	n->scratch = NULL;
}

void net_set_state(struct conn *c, enum cstate s, uint64_t now)
{
	c->state = (uint8_t)s;
	c->t_state = now;
}

bool net_watch_fd(struct net *n, int fd)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &watch_tag;
	if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		net_fail(n, "epoll_ctl: %s", strerror(errno));
		return false;
	}
	return true;
}

bool net_open(struct net *n, struct conn *c)
{
	struct epoll_event ev;
	int one = 1, fd;

	fd = socket(n->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		net_fail(n, "socket: %s%s", strerror(errno),
			 errno == EMFILE ? " (too many connections for the open file limit)" : "");
		return false;
	}
	/* Batching is ours to do: the kernel must not hold small packets back. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bool alt = c->alt && n->alt_addrlen;
	if (connect(fd, (const struct sockaddr *)(alt ? &n->alt_addr : &n->addr),
		    alt ? n->alt_addrlen : n->addrlen) != 0 &&
	    errno != EINPROGRESS && errno != EINTR) {
		int err = errno;

		close(fd);
		if (err == EADDRNOTAVAIL)
			net_fail(n, "connect: %s (no local port left: too many connections in "
				 "TIME_WAIT?)", strerror(err));
		else if (err == ECONNREFUSED)
			net_fail(n, "cannot connect to %s port %s: %s (is the broker running?)",
				 n->o->host, alt ? n->o->sub_port : n->o->port, strerror(err));
		else
			net_fail(n, "connect to %s port %s: %s", n->o->host,
				 alt ? n->o->sub_port : n->o->port, strerror(err));
		return false;
	}
	c->fd = fd;
	c->in.off = c->in.len = 0;
	c->out.off = c->out.len = 0;
	c->recv_max = 65535;
	memset(&ev, 0, sizeof(ev));
	/* Writable means connected (or failed). */
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		net_fail(n, "epoll_ctl: %s", strerror(errno));
		close(fd);
		c->fd = -1;
		return false;
	}
	c->pollout = true;
	net_set_state(c, CS_CONNECTING, now_ns());
	return true;
}

void net_close(struct net *n, struct conn *c)
{
	(void)n;
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->pollout = false;
	/* Idle connections by the thousand: give the memory back. */
	buf_free(&c->in);
	buf_free(&c->out);
	c->state = CS_IDLE;
}

static void set_pollout(struct net *n, struct conn *c, bool want)
{
	struct epoll_event ev;

	if (want == c->pollout)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
	ev.data.ptr = c;
	if (epoll_ctl(n->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		net_fail(n, "epoll_ctl: %s", strerror(errno));
		return;
	}
	c->pollout = want;
}

bool net_flush(struct net *n, struct conn *c)
{
	/* Each round sends something or stops: bounded by the backlog. */
	while (buf_pending(&c->out) > 0) {
		ssize_t w = send(c->fd, c->out.p + c->out.off, buf_pending(&c->out), MSG_NOSIGNAL);

		if (w > 0) {
			c->out.off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		n->h->closed(n, c, w < 0 ? errno : 0);
		return false;
	}
	if (buf_pending(&c->out) == 0)
		c->out.off = c->out.len = 0;
	set_pollout(n, c, buf_pending(&c->out) > 0);
	return c->fd >= 0;
}

/* Hands the complete packets of p[0..len) to the scenario; returns the bytes used. */
static size_t parse(struct net *n, struct conn *c, const uint8_t *p, size_t len, uint64_t now)
{
	size_t used = 0;

	while (len - used >= 2 && c->fd >= 0 && !n->failed) {
		struct mqtt_frame f;
		int rc = mqtt_frame_parse(p + used, len - used, MAX_PACKET, &f);
		size_t total;

		if (rc == MQTT_ERR_INCOMPLETE)
			break;
		if (rc != MQTT_OK) {
			net_fail(n, "malformed packet header from the broker");
			break;
		}
		total = (size_t)f.header_len + f.remaining;
		if (len - used < total)
			break;
		n->h->packet(n, c, &f, p + used + f.header_len, now);
		used += total;
	}
	return used;
}

static void net_read(struct net *n, struct conn *c)
{
	for (int i = 0; i < IO_ROUNDS && c->fd >= 0 && !n->failed; i++) {
		/* Without a partial packet pending, read into the shared scratch buffer. */
		bool direct = buf_pending(&c->in) == 0;
		uint8_t *dst = direct ? n->scratch : buf_reserve(&c->in, IN_CHUNK);
		size_t room = direct ? SCRATCH_SIZE : c->in.cap - c->in.len;
		ssize_t got = recv(c->fd, dst, room, 0);

		if (got > 0) {
			uint64_t now = now_ns();
			size_t used;

			n->last_rx = now;
			if (direct) {
				used = parse(n, c, dst, (size_t)got, now);
				if (c->fd >= 0 && used < (size_t)got)
					buf_append(&c->in, dst + used, (size_t)got - used);
			} else {
				c->in.len += (size_t)got;
				used = parse(n, c, c->in.p + c->in.off, buf_pending(&c->in), now);
				if (c->fd >= 0)
					c->in.off += used;
			}
			if ((size_t)got < room)
				break;
			continue;
		}
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		n->h->closed(n, c, got < 0 ? errno : 0);
		return;
	}
	/* One write for whatever the packets asked for (acknowledgements). */
	if (c->fd >= 0 && buf_pending(&c->out) > 0 && !c->pollout)
		net_flush(n, c);
}

static void on_event(struct net *n, struct conn *c, uint32_t events)
{
	if (c->state == CS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			n->h->closed(n, c, err);
			return;
		}
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
			n->h->connected(n, c);
			if (c->fd >= 0)
				net_flush(n, c); /* also drops EPOLLOUT once nothing is pending */
		}
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		net_read(n, c);
	if (c->fd >= 0 && (events & EPOLLOUT) && net_flush(n, c) && n->h->flushed)
		n->h->flushed(n, c);
}

bool net_wait(struct net *n, uint64_t timeout_ns)
{
	struct epoll_event ev[EVENTS_MAX];
	uint64_t ms = (timeout_ns + NS_PER_MS - 1) / NS_PER_MS;
	int k;

	k = epoll_wait(n->epfd, ev, EVENTS_MAX, ms > WAIT_MAX_MS ? WAIT_MAX_MS : (int)ms);
	if (k < 0) {
		if (errno == EINTR)
			return true;
		net_fail(n, "epoll_wait: %s", strerror(errno));
		return false;
	}
	for (int i = 0; i < k && !n->failed; i++) {
		struct conn *c = ev[i].data.ptr;

		if (c == &watch_tag)
			continue; /* a timer: its owner looks at the clock */
		if (c->fd < 0)
			continue; /* closed by an earlier event of this batch */
		on_event(n, c, ev[i].events);
	}
	return !n->failed;
}

/* ---- Packets a client sends ---- */

void queue_connect(struct net *n, struct conn *c, const char *client_id, bool clean,
		   uint16_t keepalive)
{
	/* MQTT 5: a kept session needs a Session Expiry Interval (here one hour). */
	static const uint8_t expiry[] = { MQTT_PROP_SESSION_EXPIRY_INTERVAL, 0, 0, 0x0e, 0x10 };
	const struct opts *o = n->o;
	struct mqtt_connect_out co;
	struct pkt_writer w;
	uint32_t size;

	memset(&co, 0, sizeof(co));
	co.protocol = (uint8_t)o->proto;
	co.clean_start = clean;
	co.keepalive = keepalive;
	co.client_id.data = (const uint8_t *)client_id;
	co.client_id.len = (uint32_t)strlen(client_id);
	co.username = o->user;
	if (o->password) {
		co.password.data = (const uint8_t *)o->password;
		co.password.len = (uint32_t)strlen(o->password);
	}
	if (o->proto == MQTT_PROTO_V5 && !clean) {
		co.props.data = expiry;
		co.props.len = sizeof(expiry);
	}
	size = mqtt_size_connect(&co);
	pkt_writer_init(&w, buf_reserve(&c->out, size), size);
	mqtt_write_connect(&w, &co);
	c->out.len += size;
}

void queue_subscribe(struct net *n, struct conn *c, const char *filter, uint8_t qos)
{
	struct mqtt_sub_entry e;
	struct pkt_writer w;
	uint32_t size;

	memset(&e, 0, sizeof(e));
	e.filter.data = (const uint8_t *)filter;
	e.filter.len = (uint32_t)strlen(filter);
	e.opts.qos = qos;
	size = mqtt_size_subscribe(n->o->proto, &e, 1, 0);
	pkt_writer_init(&w, buf_reserve(&c->out, size), size);
	mqtt_write_subscribe(&w, n->o->proto, 1, &e, 1, 0);
	c->out.len += size;
}

void queue_ack(struct net *n, struct conn *c, uint8_t type, uint16_t id)
{
	uint32_t size = mqtt_size_ack(n->o->proto, 0, NULL);
	struct pkt_writer w;

	pkt_writer_init(&w, buf_reserve(&c->out, size), size);
	mqtt_write_ack(&w, type, id, n->o->proto, 0, NULL);
	c->out.len += size;
}

void queue_disconnect(struct net *n, struct conn *c)
{
	uint32_t size = mqtt_size_reason_packet(n->o->proto, 0, NULL);
	struct pkt_writer w;

	pkt_writer_init(&w, buf_reserve(&c->out, size), size);
	mqtt_write_reason_packet(&w, MQTT_DISCONNECT, n->o->proto, 0, NULL);
	c->out.len += size;
}

const char *connack_text(int proto, uint8_t code)
{
	if (proto == MQTT_PROTO_V5) {
		switch (code) {
		case 0x84:
			return "unsupported protocol version";
		case 0x85:
			return "client identifier not valid";
		case 0x86:
			return "bad user name or password";
		case 0x87:
			return "not authorized";
		case 0x88:
			return "server unavailable";
		case 0x89:
			return "server busy";
		case 0x97:
			return "quota exceeded";
		default:
			return "refused";
		}
	}
	switch (code) {
	case MQTT_CONNACK_REFUSED_PROTOCOL_VERSION:
		return "unacceptable protocol version";
	case MQTT_CONNACK_REFUSED_IDENTIFIER_REJECTED:
		return "identifier rejected";
	case MQTT_CONNACK_REFUSED_SERVER_UNAVAILABLE:
		return "server unavailable";
	case MQTT_CONNACK_REFUSED_BAD_USERNAME_PASSWORD:
		return "bad user name or password";
	case MQTT_CONNACK_REFUSED_NOT_AUTHORIZED:
		return "not authorized";
	default:
		return "unknown code";
	}
}

bool take_connack(struct net *n, struct conn *c, const uint8_t *body, uint32_t len,
		  uint8_t flags, uint8_t *code)
{
	struct mqtt_connack ack;

	if (mqtt_decode_connack(body, len, flags, n->o->proto, &ack) != MQTT_OK) {
		net_fail(n, "malformed CONNACK from the broker");
		*code = 0;
		return false;
	}
	*code = ack.code;
	if (ack.code != 0)
		return false;
	c->recv_max = 65535;
	if (mqtt_props_has(&ack.props, MQTT_PROP_RECEIVE_MAXIMUM) && ack.props.receive_maximum)
		c->recv_max = ack.props.receive_maximum;
	return true;
}
