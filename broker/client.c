/*
 * client.c: connection lifecycle: accept, read and frame input, queue and
 * write output, keepalive and CONNECT timeouts, close and deferred free.
 * Packet semantics live in the handle_*.c files, reached via dispatch.c.
 */
#include "config.h"

#include "client.h"

#include "alloc.h"
#include "cluster.h"
#include "throttle.h"
#include "bridge.h"
#include "client_events.h"
#include "http.h"
#include "auth.h"
#include "conn_tls.h"
#include "connect_state.h"
#include "decision.h"
#include "hooks.h"
#include "conn_ws.h"
#include "policy.h"
#include "broker.h"
#include "conf.h"
#include "deliver.h"
#include "dispatch.h"
#include "listener.h"
#include "log.h"
#include <midge/mqtt.h>
#include "message.h"
#include "packet.h"
#include "send.h"
#include "session.h"
#include "store.h"
#include "topic_alias.h"
#include "will.h"
#include "worker.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Reads per readable event before yielding to other clients. */
#define READS_PER_EVENT 4
/* Output above this pauses reading from the client until it drains. */
#define OUTPUT_PAUSE_BYTES (8u * 1024 * 1024)

static void on_io(struct ev_loop *loop, struct ev_io *io, uint32_t events);
static void on_timer(struct ev_loop *loop, struct ev_timer *t);

static struct client *client_of_io(struct ev_io *io)
{
	return (struct client *)((char *)io - offsetof(struct client, io));
}

static struct client *client_of_timer(struct ev_timer *t)
{
	return (struct client *)((char *)t - offsetof(struct client, timer));
}

const char *client_name(const struct client *c)
{
	return c->id ? c->id : "<unknown>";
}

struct client_ext *client_ext(struct client *c)
{
	if (!c->ext)
		c->ext = mem_calloc(1, sizeof(*c->ext));
	return c->ext;
}

/* Keeps the peer address in binary: text is made when something asks for it. */
static void set_address(struct client *c, const struct sockaddr *addr)
{
	_Static_assert(sizeof(c->addr) >= sizeof(struct in6_addr), "room for an IPv6 address");
	c->port = 0;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
		memcpy(c->addr, &in->sin_addr, sizeof(in->sin_addr));
		c->port = ntohs(in->sin_port);
		c->flags |= CLIENT_F_ADDR_INET;
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
		memcpy(c->addr, &in6->sin6_addr, sizeof(in6->sin6_addr));
		c->port = ntohs(in6->sin6_port);
		c->flags |= CLIENT_F_ADDR_INET6;
	} else if (addr->sa_family == AF_UNIX) {
		c->flags |= CLIENT_F_ADDR_UNIX;
	}
}

const char *client_format_address(const struct client *c, char buf[CLIENT_ADDRSTRLEN])
{
	buf[0] = '\0';
	if (c->flags & CLIENT_F_ADDR_INET)
		inet_ntop(AF_INET, c->addr, buf, CLIENT_ADDRSTRLEN);
	else if (c->flags & CLIENT_F_ADDR_INET6)
		inet_ntop(AF_INET6, c->addr, buf, CLIENT_ADDRSTRLEN);
	else if (c->flags & CLIENT_F_ADDR_UNIX)
		snprintf(buf, CLIENT_ADDRSTRLEN, "unix");
	return buf;
}

const char *client_address(struct client *c)
{
	char buf[CLIENT_ADDRSTRLEN];

	if (c->ext && c->ext->address)
		return c->ext->address;
	if (!client_ext(c))
		return NULL;
	c->ext->address = mem_strdup(client_format_address(c, buf));
	return c->ext->address;
}

/*
 * The listener's transport: TCP, or TLS with the current policy's context,
 * with WebSockets on top for a websockets listener. Takes fd: on failure it
 * is closed.
 */
static int client_setup_transport(struct client *c, struct worker *w, struct listener *l, int fd)
{
	SSL_CTX *tls = w->policy->listeners[l->index].tls;
	struct conn inner;

	if (!tls) {
		conn_tcp_init(&inner, fd);
	} else if (conn_tls_init(&inner, fd, tls) < 0) {
		close(fd);
		return -1;
	}
	if (!l->websockets) {
		c->conn = inner;
		return 0;
	}
	if (conn_ws_init(&c->conn, inner, &l->ws) < 0) {
		conn_close(&inner);
		return -1;
	}
	return 0;
}

struct client *client_new(struct worker *w, struct listener *l, int fd,
			  const struct sockaddr *addr)
{
	struct client *c = mem_calloc(1, sizeof(*c));
	int one = 1;

	if (!c) {
		close(fd);
		return NULL;
	}
	c->worker = w;
	c->listener = l;
	if (client_setup_transport(c, w, l, fd) < 0) {
		mem_free(c);
		return NULL;
	}
	outq_init(&c->out);
	set_address(c, addr);
	/* Writes are batched per loop turn, so Nagle would only add latency. */
	if (addr->sa_family != AF_UNIX && !l->nodelay_inherited)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev_io_init(&c->io, fd, on_io);
	ev_timer_init(&c->timer, on_timer);
	if (ev_io_set(w->loop, &c->io, EV_READ) < 0) {
		conn_close(&c->conn);
		mem_free(c);
		return NULL;
	}
	client_set_last_rx(c, ev_now(w->loop));
	ev_timer_start(w->loop, &c->timer, ev_now(w->loop) + (int64_t)w->cfg->connect_timeout * 1000);
	worker_link_client(w, c);
	if (w->cfg->connection_messages) {
		char a[CLIENT_ADDRSTRLEN];
		log_notice("New connection from %s:%u on port %u.", client_format_address(c, a),
			   c->port, l->port);
	}
	return c;
}

struct client *client_new_bridge(struct worker *w, struct listener *l, struct conn *conn,
				 const struct sockaddr *addr, struct bridge *br)
{
	struct client *c = mem_calloc(1, sizeof(*c));

	if (!c) {
		conn_close(conn);
		return NULL;
	}
	c->worker = w;
	c->listener = l;
	c->bridge = br;
	c->conn = *conn;
	outq_init(&c->out);
	set_address(c, addr);
	ev_io_init(&c->io, conn->fd, on_io);
	ev_timer_init(&c->timer, on_timer);
	/* Writable once connected: the CONNECT queued meanwhile goes then. */
	if (ev_io_set(w->loop, &c->io, EV_READ | EV_WRITE) < 0) {
		conn_close(&c->conn);
		mem_free(c);
		return NULL;
	}
	c->flags |= CLIENT_F_WANT_WRITE;
	client_set_last_rx(c, ev_now(w->loop));
	ev_timer_start(w->loop, &c->timer, ev_now(w->loop) + 10000);
	atomic_fetch_add(&l->connections, 1);
	atomic_fetch_add(&w->broker->connections, 1);
	worker_link_client(w, c);
	return c;
}

void client_arm_keepalive(struct client *c)
{
	struct ev_loop *loop = c->worker->loop;

	if (c->keepalive == 0) {
		ev_timer_stop(loop, &c->timer);
		return;
	}
	/* 1.5 times the keepalive, in milliseconds [MQTT-3.1.2-24]. */
	ev_timer_start(loop, &c->timer,
		       client_last_rx(c, ev_now(loop)) + (int64_t)c->keepalive * 1500);
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct client *c = client_of_timer(t);

	if (c->bridge) {
		bridge_on_timer(c);
		return;
	}
	if (c->state == CLIENT_NEW && (c->flags & CLIENT_F_HELD))
		return; /* a plugin decides its CONNECT: the decision's own timeout applies */
	if (c->state == CLIENT_NEW) {
		client_close(c, "did not send CONNECT in time, disconnecting.", false);
		return;
	}
	if (c->state != CLIENT_ACTIVE || c->keepalive == 0)
		return;
	/* Not read by our choice (backpressure): its silence proves nothing. */
	if (c->flags & CLIENT_F_THROTTLED) {
		client_set_last_rx(c, ev_now(loop));
		client_arm_keepalive(c);
		return;
	}
	if (ev_now(loop) >= client_last_rx(c, ev_now(loop)) + (int64_t)c->keepalive * 1500) {
		/* MQTT 5 clients are told why [MQTT-3.1.2-22, 4.13.2]. */
		(void)send_disconnect(c, MQTT_RC_KEEP_ALIVE_TIMEOUT);
		client_close(c, "has exceeded timeout, disconnecting.", true);
		return;
	}
	client_arm_keepalive(c);
}

/* --- output --- */

uint8_t *client_out(struct client *c, size_t n)
{
	uint8_t *p;

	if (c->state == CLIENT_CLOSING)
		return NULL;
	p = outq_reserve(&c->out, n);
	if (p)
		worker_schedule_flush(c->worker, c);
	return p;
}

int client_out_ref(struct client *c, struct message *m, const uint8_t *data, size_t len)
{
	if (outq_append_ref(&c->out, m, data, len) < 0)
		return -1;
	worker_schedule_flush(c->worker, c);
	return 0;
}

static void update_interest(struct client *c)
{
	uint32_t mask = 0;

	if (c->state == CLIENT_CLOSING)
		return;
	if (!(c->flags & (CLIENT_F_READ_PAUSED | CLIENT_F_HELD | CLIENT_F_THROTTLED)) &&
	    c->state != CLIENT_PARKED)
		mask |= EV_READ;
	if (c->flags & CLIENT_F_WANT_WRITE)
		mask |= EV_WRITE;
	mask |= conn_wants(&c->conn);
	(void)ev_io_set(c->worker->loop, &c->io, mask);
}

int client_flush(struct client *c)
{
	struct iovec iov[64];
	/* Acknowledgements waiting for the store stay queued, with what follows them. */
	size_t allowed;

	if (c->flags & CLIENT_F_HOLD_FAILED) {
		/* What it holds must not go out before the store has it (store_hold()). */
		outq_clear(&c->out);
		client_close(c, "was disconnected: out of memory holding output for the store.", true);
		return 0;
	}
	allowed = store_writable(c);
	while (!outq_empty(&c->out) && allowed > 0) {
		int n = outq_iov_limit(&c->out, iov, 64, allowed);
		ssize_t w = conn_writev(&c->conn, iov, n);

		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		STAT_ADD(c->worker->stats.bytes_sent, (uint64_t)w);
		outq_consume(&c->out, (size_t)w);
		if (allowed != SIZE_MAX)
			allowed -= (size_t)w;
	}
	uint32_t old = c->flags;

	if (outq_empty(&c->out) && (c->flags & CLIENT_F_CLOSE_AFTER_FLUSH)) {
		client_close(c, NULL, false);
		return 0;
	}
	if (outq_empty(&c->out)) {
		c->flags &= ~CLIENT_F_WANT_WRITE;
		c->qos0_unsent = 0;
		c->qos0_unsent_bytes = 0;
		if (c->session && c->state == CLIENT_ACTIVE)
			session_on_drained(c->session);
	} else if (allowed == 0) {
		c->flags &= ~CLIENT_F_WANT_WRITE; /* the store, not the socket, holds it */
	} else {
		c->flags |= CLIENT_F_WANT_WRITE;
	}
	/* A client that does not read its output stops being read from. */
	if (c->out.bytes > OUTPUT_PAUSE_BYTES)
		c->flags |= CLIENT_F_READ_PAUSED;
	else
		c->flags &= ~CLIENT_F_READ_PAUSED;
	(void)old;
	/* Unconditional: a transport's own wish to write may have come or gone. */
	update_interest(c);
	return 0;
}

/* --- input --- */

static uint32_t max_packet(const struct client *c)
{
	uint32_t limit = c->worker->cfg->max_packet_size;

	return limit ? limit : MQTT_MAX_REMAINING_LENGTH + 5;
}

/*
 * Frames and dispatches the complete packets in buf; returns the bytes
 * consumed. Stops early when the client is closed, or parked: a parked
 * client's CONNECT is left unconsumed for the worker that adopts it.
 */
static size_t process(struct client *c, const uint8_t *buf, size_t len)
{
	size_t pos = 0;

	if (c->listener->http)
		return http_process(c, buf, len);
	while (pos < len && c->state != CLIENT_CLOSING && c->state != CLIENT_PARKED &&
	       !(c->flags & (CLIENT_F_HELD | CLIENT_F_THROTTLED))) {
		struct mqtt_frame f;
		int rc;

		/* Anything but CONNECT first is refused at its first byte (an HTTP
		 * request, say, would otherwise wait for a length it never sends). */
		if (c->state == CLIENT_NEW && !c->bridge && (buf[pos] >> 4) != MQTT_CONNECT &&
		    !(client_xauth(c) && (buf[pos] >> 4) == MQTT_AUTH)) {
			client_fail(c, 0, "%s before CONNECT", packet_name(buf[pos] >> 4));
			break;
		}
		rc = mqtt_frame_parse(buf + pos, len - pos, MQTT_MAX_REMAINING_LENGTH, &f);

		if (rc == MQTT_ERR_INCOMPLETE)
			break;
		if (rc == MQTT_ERR_MALFORMED) {
			client_fail(c, 0x81, "malformed packet (remaining length longer than four bytes)");
			break;
		}
		if ((uint64_t)f.header_len + f.remaining > max_packet(c)) {
			client_fail(c, 0x95, "packet of %u bytes is larger than max_packet_size",
				    f.header_len + f.remaining);
			break;
		}
		if (len - pos < (size_t)f.header_len + f.remaining)
			break;
		client_set_last_rx(c, ev_now(c->worker->loop));
		STAT_ADD(c->worker->stats.msgs_received, 1);
		decision_packet_begin(c);
		if (c->bridge)
			bridge_dispatch(c, buf[pos], buf + pos + f.header_len, f.remaining);
		else
			dispatch_packet(c, buf[pos], buf + pos + f.header_len, f.remaining);
		/* A held packet stays unconsumed: it is handled again with the answer. */
		if (c->state == CLIENT_PARKED || (c->flags & CLIENT_F_HELD))
			break;
		decision_packet_end(c);
		pos += f.header_len + f.remaining;
	}
	return pos;
}

/* Makes room for `need` bytes in the partial-packet buffer (a power of two, at least 256). */
static int inbuf_reserve(struct client *c, size_t need)
{
	unsigned log2 = c->inbuf_log2 ? c->inbuf_log2 : 8;

	if (c->inbuf_log2 && need <= (size_t)1 << c->inbuf_log2)
		return 0;
	while (((size_t)1 << log2) < need)
		log2++;
	if (log2 > 32)
		return -1; /* inlen is 32 bits (a packet is at most 256 MB anyway) */
	uint8_t *p = mem_realloc(c->inbuf, (size_t)1 << log2);
	if (!p)
		return -1;
	c->inbuf = p;
	c->inbuf_log2 = (uint8_t)log2;
	return 0;
}

static void inbuf_release(struct client *c)
{
	mem_free(c->inbuf);
	c->inbuf = NULL;
	c->inlen = 0;
	c->inbuf_log2 = 0;
}

/* Processes c->inbuf; keeps the unprocessed tail. Returns -1 when closed or parked. */
static int process_inbuf(struct client *c)
{
	size_t used = process(c, c->inbuf, c->inlen);

	if (c->state == CLIENT_CLOSING)
		return -1;
	if (used > 0) {
		memmove(c->inbuf, c->inbuf + used, c->inlen - used);
		c->inlen -= (uint32_t)used;
	}
	if (c->inlen == 0)
		inbuf_release(c);
	return c->state == CLIENT_PARKED ? -1 : 0;
}

/* Keeps bytes that did not make a whole packet (or that wait for a parked CONNECT). */
static int keep_tail(struct client *c, const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0;
	if (inbuf_reserve(c, c->inlen + n) < 0)
		return -1;
	memcpy(c->inbuf + c->inlen, p, n);
	c->inlen += (uint32_t)n;
	return 0;
}

/* Hands a parked client (and its unprocessed input) to the worker owning its session. */
static void hand_over(struct client *c)
{
	struct worker *w = c->worker;
	struct inbox_item item = {.kind = INBOX_ADOPT, .ptr = c};
	struct worker *target = c->handover;

	c->handover = NULL;
	/* Parking happens at CONNECT, before any output exists. */
	assert(outq_empty(&c->out) && !(c->flags & CLIENT_F_FLUSH_QUEUED));
	ev_io_stop(w->loop, &c->io);
	ev_timer_stop(w->loop, &c->timer);
	worker_unschedule_read(w, c);
	worker_unlink_client(w, c);
	worker_post(target, &item);
}

/*
 * Reads and processes what the connection has. Returns false when the client
 * was handed to another worker, which owns it from then on: the caller must
 * not touch it again.
 */
static bool client_read(struct client *c)
{
	struct worker *w = c->worker;

	for (int i = 0; i < READS_PER_EVENT && c->state != CLIENT_CLOSING &&
			c->state != CLIENT_PARKED &&
			!(c->flags & (CLIENT_F_HELD | CLIENT_F_THROTTLED)); i++) {
		ssize_t n = conn_read(&c->conn, w->rbuf, w->rbuf_size);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* The transport may now want to write (a TLS handshake step). */
			if (conn_wants(&c->conn))
				update_interest(c);
			return true;
		}
		if (n < 0 && errno == EPROTO) {
			const char *why = conn_error(&c->conn);
			char a[CLIENT_ADDRSTRLEN];
			client_fail(c, 0, "%s (from %s:%u)", why ? why : "transport protocol error",
				    client_format_address(c, a), c->port);
			return true;
		}
		if (n <= 0) {
			client_close(c, n == 0 ? "closed its connection." : "connection error.", true);
			return true;
		}
		STAT_ADD(w->stats.bytes_received, (uint64_t)n);
		if (c->inlen > 0) {
			/* A packet is being assembled: append and work from the buffer. */
			if (keep_tail(c, w->rbuf, (size_t)n) < 0) {
				client_fail(c, 0x97, "out of memory reading a packet");
				return true;
			}
			if (process_inbuf(c) < 0) {
				if (c->state == CLIENT_PARKED && c->handover) {
					hand_over(c);
					return false;
				}
				return true;
			}
		} else {
			size_t used = process(c, w->rbuf, (size_t)n);
			if (c->state == CLIENT_CLOSING)
				return true;
			if (keep_tail(c, w->rbuf + used, (size_t)n - used) < 0) {
				client_fail(c, 0x97, "out of memory reading a packet");
				return true;
			}
		}
		if (c->state == CLIENT_PARKED) {
			/* Everything read so far travels with it; nothing is read here any more. */
			if (c->handover) {
				hand_over(c);
				return false;
			}
			return true;
		}
		/* A short read drained the socket, unless the transport holds more. */
		if ((size_t)n < w->rbuf_size && conn_pending(&c->conn) == 0)
			return true;
	}
	/* Out of turns with bytes decoded inside the transport: no fd event will
	 * announce them, so the worker reads again before it sleeps. */
	if (c->state == CLIENT_ACTIVE || c->state == CLIENT_NEW) {
		if (conn_pending(&c->conn) > 0)
			worker_schedule_read(w, c);
	}
	return true;
}

void client_read_again(struct client *c)
{
	if ((c->state == CLIENT_ACTIVE || c->state == CLIENT_NEW) && !client_read(c))
		return;
	if (c->state != CLIENT_CLOSING)
		update_interest(c);
}

void client_resume_input(struct client *c)
{
	if (c->state == CLIENT_CLOSING)
		return;
	if (c->inlen > 0 && process_inbuf(c) < 0) {
		/* A plugin renamed the client: the CONNECT moves to the id's owner. */
		if (c->state == CLIENT_PARKED && c->handover)
			hand_over(c);
		return;
	}
	/* Input that arrived while held, or that the transport holds, is read now. */
	if (c->state != CLIENT_CLOSING && conn_pending(&c->conn) > 0)
		worker_schedule_read(c->worker, c);
	update_interest(c);
}

void client_throttle_input(struct client *c, bool on)
{
	if (on) {
		c->flags |= CLIENT_F_THROTTLED;
		update_interest(c);
		return;
	}
	c->flags &= ~CLIENT_F_THROTTLED;
	/* What was read past the message that made it wait is handled now. */
	client_resume_input(c);
}

void client_hold_input(struct client *c, bool hold)
{
	if (hold)
		c->flags |= CLIENT_F_HELD;
	else
		c->flags &= ~CLIENT_F_HELD;
	update_interest(c);
}

void *client_plugin_data(const struct client *c, unsigned index)
{
	const struct client_ext *x = c->ext;

	return x && index < x->npdata ? x->pdata[index].data : NULL;
}

int client_set_plugin_data(struct client *c, unsigned index, void *data,
			   void (*free_fn)(void *data))
{
	struct client_ext *x;

	if (!data && !client_plugin_data(c, index))
		return 0; /* nothing to clear: no memory taken for it */
	if (!(x = client_ext(c)))
		return -1;
	if (index >= x->npdata) {
		struct client_plugin_data *grown = mem_realloc(x->pdata, (index + 1) * sizeof(*grown));
		if (!grown)
			return -1;
		memset(grown + x->npdata, 0, (index + 1 - x->npdata) * sizeof(*grown));
		x->pdata = grown;
		x->npdata = index + 1;
	}
	struct client_plugin_data old = x->pdata[index];
	x->pdata[index] = (struct client_plugin_data){data, free_fn};
	if (old.free_fn && old.data && old.data != data)
		old.free_fn(old.data);
	return 0;
}

static void free_plugin_data(struct client_ext *x)
{
	for (uint32_t i = 0; i < x->npdata; i++)
		if (x->pdata[i].free_fn && x->pdata[i].data)
			x->pdata[i].free_fn(x->pdata[i].data);
	mem_free(x->pdata);
	x->pdata = NULL;
	x->npdata = 0;
}

static void on_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct client *c = client_of_io(io);
	/* A transport waiting to write for its own reasons (TLS) reads again once it can. */
	bool transport_write = (events & EV_WRITE) && conn_wants(&c->conn);

	if ((events & EV_WRITE) && client_flush(c) < 0) {
		client_close(c, "connection error.", true);
		return;
	}
	if (((events & EV_READ) || transport_write) && !client_read(c))
		return; /* handed over: another worker's now */
	if (c->state != CLIENT_CLOSING)
		update_interest(c);
}

/* --- closing --- */

/*
 * The connection closed without a normal DISCONNECT: its will goes out, now
 * or, with an MQTT 5 Will Delay Interval, from the session after the delay
 * (will.h). Returns whether it was published or is waiting to be.
 */
static bool publish_will(struct client *c)
{
	struct message *will = c->will;

	c->will = NULL;
	if (!will)
		return false;
	/* Checked when the connection closes, against the policy in force then
	 * (as mosquitto); a delayed will is not asked about again. */
	if (!auth_may_publish_message(c, will) || !hook_will(c, will)) {
		message_unref(will);
		return false;
	}
	if (client_will_delay(c) > 0 && c->session &&
	    will_delay_start(c->session, will, client_will_delay(c)) == 0) {
		/* Its cluster registration waits with it. */
		if (c->ext) {
			c->session->off->cluster_will = c->ext->cluster_will;
			c->ext->cluster_will = 0;
		}
		return true;
	}
	/* Without a delay, or without memory to wait (then sooner rather than never). */
	will_publish(c->worker, will);
	return true;
}

void client_close(struct client *c, const char *reason, bool send_will)
{
	struct worker *w = c->worker;

	if (c->state == CLIENT_CLOSING)
		return;
	if (c->state == CLIENT_PARKED)
		c->handover = NULL; /* shares its place with the session, which it has none of */
	if (reason && w->cfg->connection_messages) {
		char a[CLIENT_ADDRSTRLEN];
		struct log_kv kv[] = {
			{"address", client_format_address(c, a), 0}, {"port", NULL, c->port}, {"client_id", c->id, 0},
			{"username", c->username, 0}, {"reason", reason, 0},
		};
		log_event(LOG_T_NOTICE, "client_disconnected", kv, sizeof(kv) / sizeof(kv[0]),
			  "Client %s %s", client_name(c), reason);
	}
	/* Nothing new is queued from here; what fits in the socket now (a refusal
	 * CONNACK, a DISCONNECT) still goes. */
	c->state = CLIENT_CLOSING;
	if (!outq_empty(&c->out))
		(void)client_flush(c);
	store_client_gone(c);
	throttle_client_gone(w, c);
	/* conn_close() below closes the fd (every transport does). */
	ev_io_stop_closing(w->loop, &c->io);
	ev_timer_stop(w->loop, &c->timer);
	/* The transport says goodbye its own way (TLS close_notify, WebSocket close). */
	conn_close(&c->conn);
	decision_client_gone(c);
	/* Published, or waiting for its delay on the session (a new connection may
	 * still cancel it); session_detach() below may end the session and so
	 * publish a waiting will at once. */
	bool will_sent = send_will && publish_will(c);
	if (c->ext && c->ext->cluster_will) {
		cluster_will_forget(w->broker->cluster, c->id, c->ext->cluster_will);
		c->ext->cluster_will = 0;
	}
	if (c->session) {
		struct session *s = c->session;
		if (!c->bridge)
			client_event_disconnected(c, reason);
		hook_disconnect(c, will_sent ? MQTT_RC_UNSPECIFIED : MQTT_RC_SUCCESS, will_sent);
		c->session = NULL;
		c->id = NULL;
		STAT_SUB(w->stats.clients_connected, 1);
		atomic_fetch_sub(&w->broker->clients_connected, 1);
		session_detach(s);
	}
	atomic_fetch_sub(&c->listener->connections, 1);
	atomic_fetch_sub(&w->broker->connections, 1);
	worker_unlink_client(w, c);
	if (c->bridge)
		bridge_client_closed(c);
	c->next = w->dead_head;
	w->dead_head = c;
}

void client_free(struct client *c)
{
	if (c->ext) {
		free_plugin_data(c->ext);
		ext_auth_free(c->ext->xauth);
		preauth_free(c->ext->preauth);
		topic_alias_free(c);
		mem_free(c->ext->address);
		mem_free(c->ext);
		c->ext = NULL;
	}
	outq_clear(&c->out);
	message_unref(c->will);
	inbuf_release(c);
	mem_free(c->username);
	mem_free(c);
}

void client_adopt(struct worker *w, struct client *c)
{
	c->worker = w;
	ev_io_init(&c->io, c->conn.fd, on_io);
	ev_timer_init(&c->timer, on_timer);
	worker_link_client(w, c);
	/* The CONNECT waiting in inbuf is handled here, on its owner. */
	c->state = CLIENT_NEW;
	ev_timer_start(w->loop, &c->timer, ev_now(w->loop) + (int64_t)w->cfg->connect_timeout * 1000);
	if (c->inlen > 0 && process_inbuf(c) < 0) {
		/* A plugin renamed it to an id a third worker owns: on it goes. */
		if (c->state == CLIENT_PARKED && c->handover)
			hand_over(c);
		return;
	}
	update_interest(c);
	if (!outq_empty(&c->out))
		worker_schedule_flush(w, c);
}
