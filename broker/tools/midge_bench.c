/*
 * midge_bench.c: a load generator for MQTT brokers (midge, mosquitto, ...).
 *
 * "connect" opens and closes MQTT 3.1.1 connections from parallel workers;
 * "publish" streams PUBLISH packets at QoS 0, 1 or 2 from several publishers
 * to one subscriber. Non-blocking sockets and poll() in one thread (the
 * subscriber gets a second); every run is bounded by its count and by a time
 * cap. Packets are encoded and framed by the broker's own codec. --pid adds
 * the broker's CPU time from /proc.
 */
#include "config.h"

#include "codec.h"
#include "packet.h"
#include "topic.h"

#include <midge/mqtt.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
#define OUT_HIGH (64u * 1024u)       /* a publisher stops encoding above this backlog */
#define READ_CHUNK (64u * 1024u)
#define IO_ROUNDS 16                 /* reads or writes per connection per wakeup */
#define LAT_MAX (4u * 1024u * 1024u) /* latency samples kept (evenly spread) */
#define CLOSE_WAIT_NS (1 * NS_PER_S) /* how long a worker waits for the broker to close */
#define QOS0_DRAIN_NS (1 * NS_PER_S) /* QoS 0: silence that ends the wait for the subscriber */
#define MAX_PACKET 268435455u
#define MAX_CLIENTS 10000u
#define MAX_COUNT 1000000000ull
#define MAX_SIZE (64u * 1024u * 1024u)

enum mode { MODE_CONNECT, MODE_PUBLISH };

struct opts {
	enum mode mode;
	const char *host;
	const char *port;
	unsigned clients;
	uint64_t count;
	uint32_t size;
	uint8_t qos;
	const char *topic; /* NULL: bench/<publisher index> */
	unsigned inflight;
	bool no_sub;
	bool persistent_sub; /* the subscriber keeps a session (clean session 0) */
	const char *user;
	const char *password;
	double duration;
	double timeout;
	long pid; /* 0: none */
	bool json;
};

enum role { ROLE_WORKER, ROLE_PUB, ROLE_SUB };

enum cstate {
	CS_IDLE,       /* no socket */
	CS_CONNECTING, /* TCP connect in progress */
	CS_CONNACK,    /* CONNECT sent, waiting for CONNACK */
	CS_SUBACK,     /* SUBSCRIBE sent, waiting for SUBACK */
	CS_READY,      /* connected (and subscribed) */
	CS_CLOSING,    /* DISCONNECT sent or refused: waiting for the broker to close */
};

/* Bytes p[off..len) are pending. */
struct buf {
	uint8_t *p;
	size_t off, len, cap;
};

struct conn {
	int fd;
	enum role role;
	enum cstate state;
	unsigned index;
	struct buf in, out;
	bool want_out;     /* the last write would have blocked */
	uint64_t t_state;  /* when the current state began */
	uint64_t seq;      /* workers: number of the connection, for its client id */
	/* Publishers. */
	char *topic;
	uint64_t to_send, sent, acked;
	uint32_t inflight;
	uint16_t next_id;
	uint8_t *in_use;   /* bitmap of packet ids awaiting PUBACK / PUBCOMP */
	uint8_t *released; /* QoS 2: bitmap of ids whose PUBREL was sent */
	bool done;
};

struct run {
	const struct opts *o;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct conn *conns;
	unsigned nconns;
	struct pollfd *pfds;
	struct conn **pconn;
	uint8_t *payload;
	unsigned tag; /* our pid, in client ids */
	bool measuring;
	uint64_t t_start, t0, t_end, deadline;
	_Atomic uint64_t last_progress; /* last byte sent or received, any thread */
	unsigned long long cpu0, cpu1;
	bool have_cpu;
	/* connect */
	uint64_t started, completed, refused, failed;
	uint8_t last_refusal;
	/* publish */
	uint64_t published, acked;
	_Atomic uint64_t received, t_last_rx; /* written by the subscriber's thread */
	uint64_t t_pub_done;
	bool pubs_done;
	/* latency samples, in ms */
	float *lat;
	size_t nlat, lat_cap;
	uint64_t lat_stride, lat_seen;
	/* The subscriber runs in its own thread while publishing is measured. */
	struct conn *sub;
	pthread_t sub_thread;
	bool sub_threaded;
	atomic_bool stop;
	pthread_mutex_t err_lock;
	atomic_bool has_err;
	char err[512];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static double secs(uint64_t ns)
{
	return (double)ns / (double)NS_PER_S;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "midge_bench: out of memory\n");
		exit(1);
	}
	return q;
}

static void *xcalloc(size_t n, size_t size)
{
	void *q = calloc(n ? n : 1, size ? size : 1);

	if (!q) {
		fprintf(stderr, "midge_bench: out of memory\n");
		exit(1);
	}
	return q;
}

/* Records the first error only (from either thread); the loops stop on it. */
__attribute__((format(printf, 2, 3)))
static void fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&r->err_lock);
	if (!atomic_load(&r->has_err)) {
		va_start(ap, fmt);
		vsnprintf(r->err, sizeof(r->err), fmt, ap);
		va_end(ap);
		atomic_store(&r->has_err, true);
	}
	pthread_mutex_unlock(&r->err_lock);
}

static bool failed(struct run *r)
{
	return atomic_load(&r->has_err);
}

/* ---- Buffers ---- */

static size_t buf_pending(const struct buf *b)
{
	return b->len - b->off;
}

/* Room for n more bytes at b->p + b->len. */
static uint8_t *buf_reserve(struct buf *b, size_t n)
{
	size_t ncap;

	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->cap - b->len >= n)
		return b->p + b->len;
	if (b->off > 0) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= n)
			return b->p + b->len;
	}
	ncap = b->cap ? b->cap : 4096;
	while (ncap - b->len < n)
		ncap *= 2;
	b->p = xrealloc(b->p, ncap);
	b->cap = ncap;
	return b->p + b->len;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- Broker CPU time ---- */

/* utime + stime of a process, in clock ticks, from /proc/PID/stat. */
static bool read_cpu_ticks(long pid, unsigned long long *ticks)
{
	char path[64], line[4096];
	unsigned long long v[2];
	FILE *f;
	size_t n;
	char *p, *end;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	/* The command name (field 2) may hold spaces: fields resume after its last ')'. */
	p = strrchr(line, ')');
	if (!p)
		return false;
	p++;
	/* Fields 3 to 13 come before utime (14) and stime (15). */
	for (int field = 3; field <= 15; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return false;
		if (field >= 14) {
			errno = 0;
			v[field - 14] = strtoull(p, &end, 10);
			if (errno || end == p)
				return false;
			p = end;
		} else {
			while (*p && *p != ' ')
				p++;
		}
	}
	*ticks = v[0] + v[1];
	return true;
}

/* ---- Latency ---- */

static void lat_init(struct run *r, uint64_t expected)
{
	r->lat_cap = expected < LAT_MAX ? (size_t)expected : LAT_MAX;
	r->lat_stride = expected / LAT_MAX + 1;
	r->lat = xcalloc(r->lat_cap, sizeof(float));
}

static void lat_add(struct run *r, uint64_t ns)
{
	if (r->lat_seen++ % r->lat_stride == 0 && r->nlat < r->lat_cap)
		r->lat[r->nlat++] = (float)((double)ns / (double)NS_PER_MS);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted samples. */
static double percentile(const struct run *r, double p)
{
	size_t rank;

	if (r->nlat == 0)
		return -1;
	rank = (size_t)(p / 100.0 * (double)r->nlat + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > r->nlat)
		rank = r->nlat;
	return r->lat[rank - 1];
}

/* ---- Connections ---- */

static const char *who(const struct conn *c, char *tmp, size_t len)
{
	switch (c->role) {
	case ROLE_WORKER:
		snprintf(tmp, len, "worker %u", c->index);
		break;
	case ROLE_PUB:
		snprintf(tmp, len, "publisher %u", c->index);
		break;
	case ROLE_SUB:
		snprintf(tmp, len, "the subscriber");
		break;
	}
	return tmp;
}

static void set_state(struct conn *c, enum cstate s)
{
	c->state = s;
	c->t_state = now_ns();
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->in.off = c->in.len = 0;
	c->out.off = c->out.len = 0;
	c->want_out = false;
	set_state(c, CS_IDLE);
}

static void progress(struct run *r)
{
	r->last_progress = now_ns();
}

/* Called when the broker closed the connection or the socket failed (err 0: EOF). */
static void on_closed(struct run *r, struct conn *c, int err)
{
	char tmp[32];

	if (c->role == ROLE_WORKER && c->state == CS_CLOSING) {
		conn_close(c);
		return;
	}
	if (c->state == CS_CONNECTING || err == ECONNREFUSED) {
		fail(r, "cannot connect to %s port %s: %s (is the broker running?)",
		     r->o->host, r->o->port, strerror(err ? err : ECONNREFUSED));
		conn_close(c);
		return;
	}
	if (c->role == ROLE_WORKER && c->state == CS_CONNACK) {
		/* Counted, and the run goes on: the summary and the exit status tell. */
		r->failed++;
		conn_close(c);
		return;
	}
	fail(r, "the broker closed the connection of %s (%s)%s", who(c, tmp, sizeof(tmp)),
	     err ? strerror(err) : "end of stream",
	     c->role == ROLE_PUB && r->o->qos > 0 ?
	     "; a broker may refuse more unacknowledged messages per client than its "
	     "max_inflight_messages: try a smaller --inflight" : "");
	conn_close(c);
}

/* Writes what is pending; returns false when the connection is gone. */
static bool conn_flush(struct run *r, struct conn *c)
{
	for (int i = 0; i < IO_ROUNDS && buf_pending(&c->out) > 0; i++) {
		ssize_t n = send(c->fd, c->out.p + c->out.off, buf_pending(&c->out), MSG_NOSIGNAL);

		if (n > 0) {
			c->out.off += (size_t)n;
			progress(r);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		on_closed(r, c, n < 0 ? errno : 0);
		return false;
	}
	c->want_out = buf_pending(&c->out) > 0;
	return true;
}

static void queue_connect(struct run *r, struct conn *c, const char *client_id, bool clean)
{
	struct mqtt_connect_out co;
	struct pkt_writer w;
	uint32_t size;
	double ka = r->o->duration * 2 + 10;

	memset(&co, 0, sizeof(co));
	co.protocol = MQTT_PROTO_V311;
	co.clean_start = clean;
	/* Longer than the run, so that a silent subscriber is not dropped. */
	co.keepalive = (uint16_t)(ka > 65535 ? 65535 : ka);
	co.client_id.data = (const uint8_t *)client_id;
	co.client_id.len = (uint32_t)strlen(client_id);
	co.username = r->o->user;
	if (r->o->password) {
		co.password.data = (const uint8_t *)r->o->password;
		co.password.len = (uint32_t)strlen(r->o->password);
	}
	size = mqtt_size_connect(&co);
	pkt_writer_init(&w, buf_reserve(&c->out, size), size);
	mqtt_write_connect(&w, &co);
	c->out.len += size;
}

static void queue_ack(struct conn *c, uint8_t type, uint16_t id)
{
	uint32_t size = mqtt_size_ack(MQTT_PROTO_V311, 0, NULL);
	struct pkt_writer w;

	pkt_writer_init(&w, buf_reserve(&c->out, size), size);
	mqtt_write_ack(&w, type, id, MQTT_PROTO_V311, 0, NULL);
	c->out.len += size;
}

static void queue_disconnect(struct conn *c)
{
	uint32_t size = mqtt_size_reason_packet(MQTT_PROTO_V311, 0, NULL);
	struct pkt_writer w;

	pkt_writer_init(&w, buf_reserve(&c->out, size), size);
	mqtt_write_reason_packet(&w, MQTT_DISCONNECT, MQTT_PROTO_V311, 0, NULL);
	c->out.len += size;
}

/* The TCP connection is up: send CONNECT. */
static void on_connected(struct run *r, struct conn *c)
{
	char id[48];

	switch (c->role) {
	case ROLE_WORKER:
		snprintf(id, sizeof(id), "mb%u-c%" PRIu64, r->tag, c->seq);
		break;
	case ROLE_PUB:
		snprintf(id, sizeof(id), "mb%u-p%u", r->tag, c->index);
		break;
	case ROLE_SUB:
		snprintf(id, sizeof(id), "mb%u-s", r->tag);
		break;
	}
	queue_connect(r, c, id, !(c->role == ROLE_SUB && r->o->persistent_sub));
	set_state(c, CS_CONNACK);
	conn_flush(r, c);
}

static bool conn_start(struct run *r, struct conn *c)
{
	int one = 1, fd;

	fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fail(r, "socket: %s%s", strerror(errno),
		     errno == EMFILE ? " (raise the limit: ulimit -n)" : "");
		return false;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	if (connect(fd, (const struct sockaddr *)&r->addr, r->addrlen) == 0) {
		set_state(c, CS_CONNECTING);
		on_connected(r, c);
		return c->fd >= 0;
	}
	if (errno == EINPROGRESS || errno == EINTR) {
		set_state(c, CS_CONNECTING);
		return true;
	}
	if (errno == EADDRNOTAVAIL)
		fail(r, "connect: %s (no local port left: too many connections in TIME_WAIT?)",
		     strerror(errno));
	else if (errno == ECONNREFUSED)
		fail(r, "cannot connect to %s port %s: %s (is the broker running?)",
		     r->o->host, r->o->port, strerror(ECONNREFUSED));
	else
		fail(r, "connect to %s port %s: %s", r->o->host, r->o->port, strerror(errno));
	conn_close(c);
	return false;
}

/* ---- Publishing ---- */

static bool id_get(const uint8_t *map, uint16_t id)
{
	return map[id >> 3] & (1u << (id & 7));
}

static void id_set(uint8_t *map, uint16_t id, bool on)
{
	if (on)
		map[id >> 3] = (uint8_t)(map[id >> 3] | (1u << (id & 7)));
	else
		map[id >> 3] = (uint8_t)(map[id >> 3] & ~(1u << (id & 7)));
}

/* A free packet identifier (the window is below 65535, so one exists). */
static uint16_t id_alloc(struct conn *c)
{
	for (unsigned i = 0; i < 65535; i++) {
		uint16_t id = c->next_id;

		c->next_id = (uint16_t)(c->next_id == 65535 ? 1 : c->next_id + 1);
		if (!id_get(c->in_use, id)) {
			id_set(c->in_use, id, true);
			return id;
		}
	}
	return 0; /* not reached: inflight < 65535 */
}

/* A publisher that would encode more once its socket takes it. */
static bool pub_can_send(const struct run *r, const struct conn *c)
{
	return c->role == ROLE_PUB && r->measuring && !c->done && c->sent < c->to_send &&
	       (r->o->qos == 0 || c->inflight < r->o->inflight);
}

static void pub_check_done(struct run *r, struct conn *c)
{
	if (c->done || c->sent < c->to_send)
		return;
	if (r->o->qos == 0 ? buf_pending(&c->out) > 0 : c->acked < c->to_send)
		return;
	c->done = true;
}

/* Encodes PUBLISH packets while the window and the backlog allow, then writes them. */
static void pub_fill(struct run *r, struct conn *c)
{
	const struct opts *o = r->o;
	struct mqtt_publish_out p;
	uint64_t ts = now_ns();

	memset(&p, 0, sizeof(p));
	p.qos = o->qos;
	p.topic.data = (const uint8_t *)c->topic;
	p.topic.len = (uint32_t)strlen(c->topic);
	p.payload.data = r->payload;
	p.payload.len = o->size;
	/* Bounded by the count, the window and the backlog. */
	while (c->sent < c->to_send && buf_pending(&c->out) < OUT_HIGH &&
	       (o->qos == 0 || c->inflight < o->inflight)) {
		uint32_t size, hdr;
		struct pkt_writer w;
		uint8_t *dst;

		if (o->qos > 0) {
			p.packet_id = id_alloc(c);
			c->inflight++;
		}
		size = mqtt_size_publish(&p, MQTT_PROTO_V311);
		hdr = mqtt_size_publish_header(&p, MQTT_PROTO_V311);
		dst = buf_reserve(&c->out, size);
		pkt_writer_init(&w, dst, size);
		mqtt_write_publish(&w, &p, MQTT_PROTO_V311);
		/* The first 8 payload bytes carry the send time, for the subscriber's latency. */
		if (o->size >= sizeof(ts))
			memcpy(dst + hdr, &ts, sizeof(ts));
		c->out.len += size;
		c->sent++;
		r->published++;
	}
	if (buf_pending(&c->out) > 0 && !c->want_out)
		conn_flush(r, c);
	pub_check_done(r, c);
}

static void pub_ack(struct run *r, struct conn *c, uint8_t type, const uint8_t *body,
		    uint32_t len, uint8_t flags)
{
	struct mqtt_ack a;
	uint8_t want = r->o->qos == 1 ? MQTT_PUBACK : MQTT_PUBCOMP;

	if (mqtt_decode_ack(type, body, len, flags, MQTT_PROTO_V311, &a) != MQTT_OK) {
		fail(r, "publisher %u: malformed acknowledgement (type %u) from the broker", c->index,
		     type);
		return;
	}
	if (!id_get(c->in_use, a.packet_id) ||
	    (type == MQTT_PUBREC && (r->o->qos != 2 || id_get(c->released, a.packet_id))) ||
	    (type == MQTT_PUBCOMP && !id_get(c->released, a.packet_id)) ||
	    (type == MQTT_PUBACK && r->o->qos != 1)) {
		fail(r, "publisher %u: unexpected %s for packet id %u", c->index,
		     type == MQTT_PUBACK ? "PUBACK" : type == MQTT_PUBREC ? "PUBREC" : "PUBCOMP",
		     a.packet_id);
		return;
	}
	if (type == MQTT_PUBREC) {
		id_set(c->released, a.packet_id, true);
		queue_ack(c, MQTT_PUBREL, a.packet_id);
		return;
	}
	if (type == want) {
		id_set(c->in_use, a.packet_id, false);
		id_set(c->released, a.packet_id, false);
		c->inflight--;
		c->acked++;
		r->acked++;
	}
}

/* ---- Packets from the broker ---- */

static const char *connack_text(uint8_t code)
{
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

static void queue_subscribe(struct run *r, struct conn *c)
{
	const struct opts *o = r->o;
	unsigned n = o->topic ? 1 : o->clients;
	struct mqtt_sub_entry *e = xcalloc(n, sizeof(*e));
	char **names = xcalloc(n, sizeof(*names));
	struct pkt_writer w;
	uint32_t size;

	for (unsigned i = 0; i < n; i++) {
		names[i] = xcalloc(32, 1);
		snprintf(names[i], 32, "bench/%u", i);
		e[i].filter.data = (const uint8_t *)(o->topic ? o->topic : names[i]);
		e[i].filter.len = (uint32_t)strlen((const char *)e[i].filter.data);
		e[i].opts.qos = o->qos;
	}
	size = mqtt_size_subscribe(MQTT_PROTO_V311, e, n, 0);
	pkt_writer_init(&w, buf_reserve(&c->out, size), size);
	mqtt_write_subscribe(&w, MQTT_PROTO_V311, 1, e, n, 0);
	c->out.len += size;
	for (unsigned i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(e);
}

static void on_connack(struct run *r, struct conn *c, const uint8_t *body, uint32_t len,
		       uint8_t flags)
{
	struct mqtt_connack ack;
	char tmp[32];

	if (c->state != CS_CONNACK) {
		fail(r, "%s: CONNACK out of place", who(c, tmp, sizeof(tmp)));
		return;
	}
	if (mqtt_decode_connack(body, len, flags, MQTT_PROTO_V311, &ack) != MQTT_OK) {
		fail(r, "%s: malformed CONNACK", who(c, tmp, sizeof(tmp)));
		return;
	}
	if (c->role == ROLE_WORKER) {
		lat_add(r, now_ns() - c->t_state);
		r->completed++;
		progress(r);
		if (ack.code != 0) {
			r->refused++;
			r->last_refusal = ack.code;
		} else {
			queue_disconnect(c);
			if (!conn_flush(r, c))
				return;
		}
		/* Waiting for the broker to close leaves TIME_WAIT on its side, not ours. */
		set_state(c, CS_CLOSING);
		return;
	}
	if (ack.code != 0) {
		fail(r, "%s: connection refused by the broker: CONNACK %u (%s)%s",
		     who(c, tmp, sizeof(tmp)), ack.code, connack_text(ack.code),
		     r->o->user ? "" : " (try -u/-P)");
		return;
	}
	if (c->role == ROLE_SUB) {
		queue_subscribe(r, c);
		set_state(c, CS_SUBACK);
		conn_flush(r, c);
	} else {
		set_state(c, CS_READY);
	}
}

static void on_suback(struct run *r, struct conn *c, const uint8_t *body, uint32_t len,
		      uint8_t flags)
{
	struct mqtt_suback s;

	if (c->role != ROLE_SUB || c->state != CS_SUBACK ||
	    mqtt_decode_suback(MQTT_SUBACK, body, len, flags, MQTT_PROTO_V311, &s) != MQTT_OK) {
		fail(r, "unexpected or malformed SUBACK");
		return;
	}
	for (uint32_t i = 0; i < s.codes.len; i++) {
		if (s.codes.data[i] == MQTT_SUBACK_FAILURE) {
			fail(r, "the broker refused the subscription to %s",
			     r->o->topic ? r->o->topic : "bench/<n>");
			return;
		}
	}
	set_state(c, CS_READY);
}

static void on_message(struct run *r, struct conn *c, const uint8_t *body, uint32_t len,
		       uint8_t flags, uint64_t now)
{
	struct mqtt_publish p;

	if (mqtt_decode_publish(body, len, flags, MQTT_PROTO_V311, &p) != MQTT_OK) {
		fail(r, "the subscriber got a malformed PUBLISH");
		return;
	}
	/* t_last_rx first: the main thread reads received, then t_last_rx. */
	r->t_last_rx = now;
	r->received++;
	if (p.payload.len >= sizeof(uint64_t)) {
		uint64_t ts;

		memcpy(&ts, p.payload.data, sizeof(ts));
		if (ts >= r->t0 && ts <= now)
			lat_add(r, now - ts);
	}
	if (p.qos == 1)
		queue_ack(c, MQTT_PUBACK, p.packet_id);
	else if (p.qos == 2)
		queue_ack(c, MQTT_PUBREC, p.packet_id);
}

static void on_packet(struct run *r, struct conn *c, const struct mqtt_frame *f,
		      const uint8_t *body, uint64_t now)
{
	char tmp[32];

	switch (f->type) {
	case MQTT_CONNACK:
		on_connack(r, c, body, f->remaining, f->flags);
		return;
	case MQTT_SUBACK:
		on_suback(r, c, body, f->remaining, f->flags);
		return;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		if (c->role == ROLE_PUB && c->state == CS_READY) {
			pub_ack(r, c, f->type, body, f->remaining, f->flags);
			return;
		}
		break;
	case MQTT_PUBLISH:
		if (c->role == ROLE_SUB && c->state == CS_READY) {
			on_message(r, c, body, f->remaining, f->flags, now);
			return;
		}
		break;
	case MQTT_PUBREL:
		if (c->role == ROLE_SUB && c->state == CS_READY) {
			struct mqtt_ack a;

			if (mqtt_decode_ack(MQTT_PUBREL, body, f->remaining, f->flags,
					    MQTT_PROTO_V311, &a) != MQTT_OK) {
				fail(r, "the subscriber got a malformed PUBREL");
				return;
			}
			queue_ack(c, MQTT_PUBCOMP, a.packet_id);
			return;
		}
		break;
	case MQTT_PINGRESP:
		return;
	default:
		break;
	}
	fail(r, "%s: unexpected packet of type %u from the broker", who(c, tmp, sizeof(tmp)),
	     f->type);
}

/* Parses the complete packets in c->in. */
static void conn_parse(struct run *r, struct conn *c, uint64_t now)
{
	char tmp[32];

	while (!failed(r) && c->fd >= 0 && buf_pending(&c->in) >= 2) {
		const uint8_t *p = c->in.p + c->in.off;
		struct mqtt_frame f;
		int rc = mqtt_frame_parse(p, buf_pending(&c->in), MAX_PACKET, &f);
		size_t total;

		if (rc == MQTT_ERR_INCOMPLETE)
			return;
		if (rc != MQTT_OK) {
			fail(r, "%s: malformed packet header from the broker", who(c, tmp, sizeof(tmp)));
			return;
		}
		total = (size_t)f.header_len + f.remaining;
		if (buf_pending(&c->in) < total) {
			buf_reserve(&c->in, total - buf_pending(&c->in));
			return;
		}
		c->in.off += total;
		on_packet(r, c, &f, p + f.header_len, now);
	}
}

static void conn_read(struct run *r, struct conn *c)
{
	for (int i = 0; i < IO_ROUNDS && c->fd >= 0 && !failed(r); i++) {
		uint8_t *dst = buf_reserve(&c->in, READ_CHUNK);
		size_t room = c->in.cap - c->in.len;
		ssize_t n = recv(c->fd, dst, room, 0);

		if (n > 0) {
			uint64_t now = now_ns();

			r->last_progress = now;
			c->in.len += (size_t)n;
			conn_parse(r, c, now);
			if ((size_t)n < room)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		on_closed(r, c, n < 0 ? errno : 0);
		return;
	}
	/* Acknowledgements the packets asked for. */
	if (c->fd >= 0 && buf_pending(&c->out) > 0 && !c->want_out)
		conn_flush(r, c);
}

static void conn_event(struct run *r, struct conn *c, short revents)
{
	if (c->state == CS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			on_closed(r, c, err);
			return;
		}
		if (revents & (POLLOUT | POLLERR | POLLHUP))
			on_connected(r, c);
		return;
	}
	if (revents & (POLLIN | POLLERR | POLLHUP))
		conn_read(r, c);
	if (c->fd >= 0 && (revents & POLLOUT))
		conn_flush(r, c);
}

/* ---- The loop ---- */

static bool cpu_sample(struct run *r, unsigned long long *ticks)
{
	if (!r->o->pid)
		return true;
	if (!read_cpu_ticks(r->o->pid, ticks)) {
		fail(r, "cannot read /proc/%ld/stat: broker process %ld is gone", r->o->pid,
		     r->o->pid);
		return false;
	}
	return true;
}

/*
 * The subscriber's own loop. The broker sends it at most max_inflight_messages
 * QoS 1/2 messages before a PUBACK comes back, so it must not wait for the
 * publishers' work: it runs in a thread until the main loop says stop.
 */
static void *sub_main(void *arg)
{
	struct run *r = arg;
	struct conn *c = r->sub;

	while (!atomic_load(&r->stop) && !failed(r) && c->fd >= 0) {
		struct pollfd p;
		int rc;

		p.fd = c->fd;
		p.events = (short)(POLLIN | (c->want_out ? POLLOUT : 0));
		p.revents = 0;
		rc = poll(&p, 1, 50);
		if (rc < 0 && errno != EINTR) {
			fail(r, "poll: %s", strerror(errno));
			break;
		}
		if (rc > 0)
			conn_event(r, c, p.revents);
	}
	return NULL;
}

static void start_measuring(struct run *r)
{
	int rc;

	r->measuring = true;
	if (cpu_sample(r, &r->cpu0))
		r->have_cpu = r->o->pid != 0;
	r->t0 = now_ns();
	r->last_progress = r->t0;
	if (r->sub) {
		rc = pthread_create(&r->sub_thread, NULL, sub_main, r);
		if (rc != 0)
			fail(r, "pthread_create: %s", strerror(rc));
		else
			r->sub_threaded = true;
	}
}

static void stop_sub_thread(struct run *r)
{
	if (!r->sub_threaded)
		return;
	atomic_store(&r->stop, true);
	pthread_join(r->sub_thread, NULL);
	r->sub_threaded = false;
}

static void stop_measuring(struct run *r, uint64_t t_end)
{
	r->t_end = t_end;
	if (r->have_cpu && !cpu_sample(r, &r->cpu1))
		r->have_cpu = false;
}

/* Connect mode: idle workers start the next connection; true when all are done. */
static bool connect_step(struct run *r, uint64_t now)
{
	bool busy = false;

	for (unsigned i = 0; i < r->nconns && !failed(r); i++) {
		struct conn *c = &r->conns[i];

		if (c->state == CS_CLOSING && now > c->t_state && now - c->t_state > CLOSE_WAIT_NS)
			conn_close(c); /* the broker did not close: close ourselves */
		if (c->state == CS_IDLE && r->started < r->o->count) {
			c->seq = r->started++;
			conn_start(r, c);
		}
		if (c->state != CS_IDLE)
			busy = true;
	}
	return !busy && r->started >= r->o->count;
}

/* Publish mode: setup, then publishing; true when the run is complete. */
static bool publish_step(struct run *r, uint64_t now)
{
	bool all_ready = true;
	uint64_t received, last;

	if (!r->measuring) {
		for (unsigned i = 0; i < r->nconns; i++)
			if (r->conns[i].state != CS_READY)
				all_ready = false;
		if (!all_ready)
			return false;
		start_measuring(r);
		now = r->t0;
	}
	if (!r->pubs_done) {
		bool done = true;

		for (unsigned i = 0; i < r->nconns && !failed(r); i++) {
			struct conn *c = &r->conns[i];

			if (c->role != ROLE_PUB)
				continue;
			if (!c->done && c->fd >= 0)
				pub_fill(r, c);
			if (!c->done)
				done = false;
		}
		if (!done)
			return false;
		r->pubs_done = true;
		r->t_pub_done = now_ns();
		now = r->t_pub_done;
	}
	received = r->received;
	last = r->t_last_rx;
	if (last < r->t_pub_done)
		last = r->t_pub_done;
	if (r->o->no_sub || received >= r->o->count) {
		stop_measuring(r, r->o->no_sub ? r->t_pub_done : last);
		return true;
	}
	/* QoS 0 may lose messages: a second of silence ends the wait. */
	if (r->o->qos == 0) {
		if (now > last && now - last >= QOS0_DRAIN_NS) {
			stop_measuring(r, last);
			return true;
		}
	}
	return false;
}

static void check_stall(struct run *r, uint64_t now)
{
	uint64_t limit = (uint64_t)(r->o->timeout * (double)NS_PER_S);
	uint64_t last = r->last_progress; /* the subscriber's thread may have moved it past now */

	if (last >= now || now - last < limit)
		return;
	if (r->o->mode == MODE_PUBLISH && r->pubs_done)
		fail(r, "the subscriber got %" PRIu64 " of %" PRIu64 " messages, then nothing for "
		     "%.1f s: the broker dropped messages (its max_queued_messages?) or stopped "
		     "answering", r->received, r->o->count, r->o->timeout);
	else
		fail(r, "the broker stopped answering: nothing sent or received for %.1f s",
		     r->o->timeout);
}

static int ms_until(uint64_t now, uint64_t t)
{
	uint64_t ms;

	if (t <= now)
		return 0;
	ms = (t - now + NS_PER_MS - 1) / NS_PER_MS;
	return ms > 100 ? 100 : (int)ms;
}

static void run_loop(struct run *r)
{
	for (;;) {
		uint64_t now = now_ns();
		bool done;
		unsigned n = 0;
		int rc;

		done = r->o->mode == MODE_CONNECT ? connect_step(r, now) : publish_step(r, now);
		if (failed(r))
			return;
		if (done) {
			if (r->o->mode == MODE_CONNECT)
				stop_measuring(r, now_ns());
			return;
		}
		now = now_ns();
		if (now >= r->deadline) {
			stop_sub_thread(r); /* its counts are final for the message below */
			if (r->o->mode == MODE_CONNECT)
				fail(r, "time cap of %.1f s reached after %" PRIu64 " of %" PRIu64
				     " connections (raise --duration or lower -n)", r->o->duration,
				     r->completed, r->o->count);
			else if (!r->measuring)
				fail(r, "time cap of %.1f s reached before every client was connected",
				     r->o->duration);
			else if (!r->pubs_done)
				fail(r, "time cap of %.1f s reached after %" PRIu64 " of %" PRIu64
				     " messages published (raise --duration or lower -n)",
				     r->o->duration, r->published, r->o->count);
			else
				fail(r, "time cap of %.1f s reached: the subscriber got %" PRIu64
				     " of %" PRIu64 " messages", r->o->duration, r->received,
				     r->o->count);
			return;
		}
		check_stall(r, now);
		if (failed(r))
			return;
		for (unsigned i = 0; i < r->nconns; i++) {
			struct conn *c = &r->conns[i];

			if (c->fd < 0 || (r->sub_threaded && c == r->sub))
				continue;
			r->pfds[n].fd = c->fd;
			r->pfds[n].events = POLLIN;
			if (c->state == CS_CONNECTING || c->want_out || pub_can_send(r, c))
				r->pfds[n].events = POLLIN | POLLOUT;
			r->pfds[n].revents = 0;
			r->pconn[n++] = c;
		}
		rc = poll(r->pfds, n, ms_until(now, r->deadline));
		if (rc < 0 && errno != EINTR) {
			fail(r, "poll: %s", strerror(errno));
			return;
		}
		for (unsigned i = 0; rc > 0 && i < n && !failed(r); i++)
			if (r->pfds[i].revents && r->pconn[i]->fd == r->pfds[i].fd)
				conn_event(r, r->pconn[i], r->pfds[i].revents);
		if (failed(r))
			return;
	}
}

/* ---- Results ---- */

/* One "key":value, pair (null when not valid); decimals 0 for counts. */
static void json_num(const char *key, double v, int decimals, bool valid)
{
	if (valid)
		printf("\"%s\":%.*f,", key, decimals, v);
	else
		printf("\"%s\":null,", key);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned)(unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static int report(struct run *r)
{
	const struct opts *o = r->o;
	bool conn = o->mode == MODE_CONNECT;
	uint64_t end = r->t_end ? r->t_end : now_ns();
	double seconds = r->measuring ? secs(end - r->t0) : 0;
	double count = (double)(conn ? r->completed : r->published);
	double rate = seconds > 0 ? count / seconds : 0;
	double cpu = 0, per_cpu = 0;
	bool have_cpu = r->have_cpu && r->t_end;
	double pub_s = r->t_pub_done ? secs(r->t_pub_done - r->t0) : seconds;
	double rx_s = r->t_last_rx > r->t0 ? secs(r->t_last_rx - r->t0) : 0;
	double p50, p99;
	bool ok = !failed(r);

	if (ok && conn && r->failed)
		fail(r, "%" PRIu64 " connections were closed by the broker before a CONNACK",
		     r->failed);
	if (ok && !conn && !o->no_sub && o->qos > 0 && r->received < o->count)
		fail(r, "the subscriber got %" PRIu64 " of %" PRIu64 " messages",
		     (uint64_t)r->received, o->count);
	if (ok && conn && r->completed > 0 && r->refused == r->completed)
		fail(r, "the broker refused every connection: CONNACK %u (%s)", r->last_refusal,
		     connack_text(r->last_refusal));
	ok = !failed(r);
	/* A failed run still reports the broker CPU time it used so far. */
	if (r->have_cpu && !r->t_end && read_cpu_ticks(o->pid, &r->cpu1))
		have_cpu = true;
	if (have_cpu) {
		cpu = (double)(r->cpu1 - r->cpu0) / (double)sysconf(_SC_CLK_TCK);
		per_cpu = cpu > 0 ? count / cpu : 0;
	}
	qsort(r->lat, r->nlat, sizeof(float), cmp_float);
	p50 = percentile(r, 50);
	p99 = percentile(r, 99);

	if (o->json) {
		printf("{\"mode\":\"%s\",", conn ? "connect" : "publish");
		json_num("count", count, 0, true);
		json_num("seconds", seconds, 6, true);
		json_num("rate", rate, 1, true);
		json_num("cpu_seconds", cpu, 2, have_cpu);
		json_num("rate_per_cpu_s", per_cpu, 1, have_cpu && cpu > 0);
		json_num("p50_ms", p50, 4, r->nlat > 0);
		json_num("p99_ms", p99, 4, r->nlat > 0);
		json_num("refused", (double)r->refused, 0, true);
		json_num("received", (double)(conn ? r->completed : r->received), 0, true);
		json_num("requested", (double)o->count, 0, true);
		json_num("clients", o->clients, 0, true);
		if (conn) {
			json_num("failed", (double)r->failed, 0, true);
		} else {
			json_num("qos", o->qos, 0, true);
			json_num("size", o->size, 0, true);
			json_num("acked", (double)r->acked, 0, true);
			json_num("pub_seconds", pub_s, 6, true);
			json_num("pub_rate", pub_s > 0 ? (double)r->published / pub_s : 0, 1, true);
			json_num("recv_rate", rx_s > 0 ? (double)r->received / rx_s : 0, 1,
				 !o->no_sub);
		}
		printf("\"ok\":%s,\"error\":", ok ? "true" : "false");
		if (ok)
			printf("null");
		else
			json_str(r->err);
		printf("}\n");
	} else if (conn) {
		printf("midge_bench connect: %s port %s, %u workers, %" PRIu64 " connections\n",
		       o->host, o->port, o->clients, o->count);
		printf("  connections  %" PRIu64 " in %.3f s: %.0f /s\n", r->completed, seconds, rate);
		printf("  refused      %" PRIu64 " (CONNACK code not 0)\n", r->refused);
		if (r->failed)
			printf("  failed       %" PRIu64 " (closed without CONNACK)\n", r->failed);
		if (r->nlat)
			printf("  latency      p50 %.3f ms, p99 %.3f ms (CONNECT to CONNACK)\n", p50, p99);
	} else {
		printf("midge_bench publish: %s port %s, %u publishers%s, %" PRIu64
		       " messages of %" PRIu32 " bytes at QoS %u", o->host, o->port, o->clients,
		       o->no_sub ? "" : " + 1 subscriber", o->count, o->size, o->qos);
		if (o->qos)
			printf(" (window %u)", o->inflight);
		printf("\n  published    %" PRIu64 " in %.3f s: %.0f /s", r->published, pub_s,
		       pub_s > 0 ? (double)r->published / pub_s : 0);
		if (o->qos)
			printf(" (%" PRIu64 " %s)", r->acked, o->qos == 1 ? "PUBACKs" : "PUBCOMPs");
		printf("\n");
		if (!o->no_sub) {
			printf("  received     %" PRIu64 " in %.3f s: %.0f /s", r->received, rx_s,
			       rx_s > 0 ? (double)r->received / rx_s : 0);
			if (r->received < r->published)
				printf(" (%" PRIu64 " not received)", r->published - r->received);
			printf("\n");
		}
		printf("  overall      %.0f messages /s over %.3f s\n", rate, seconds);
		if (r->nlat)
			printf("  latency      p50 %.3f ms, p99 %.3f ms (publisher to subscriber)\n", p50,
			       p99);
	}
	if (!o->json && have_cpu)
		printf("  broker CPU   %.2f s: %.0f %s per broker CPU-second\n", cpu, per_cpu,
		       conn ? "connections" : "messages");
	fflush(stdout);
	if (!ok) {
		fprintf(stderr, "midge_bench: %s\n", r->err);
		return 1;
	}
	return 0;
}

/* ---- Command line ---- */

static void usage(FILE *f)
{
	fputs("Usage: midge_bench connect|publish [options]\n"
	      "\n"
	      "A load generator for MQTT 3.1.1 brokers: non-blocking sockets and poll() in\n"
	      "one thread, plus one thread for the subscriber of the publish mode.\n"
	      "\n"
	      "Modes:\n"
	      "  connect   -c workers in parallel each repeat: TCP connect, CONNECT (clean\n"
	      "            session, unique client id), wait for CONNACK, DISCONNECT, wait for\n"
	      "            the broker to close; -n connections in all. Reports connections/s,\n"
	      "            refused connections (CONNACK code not 0) and the p50/p99 latency\n"
	      "            from sending CONNECT to receiving CONNACK.\n"
	      "  publish   -c publishers, each connected once, send -n messages in all of -s\n"
	      "            bytes at QoS -q to -t; one more client subscribed to those topics\n"
	      "            at the same QoS counts what arrives. Reports published/s,\n"
	      "            received/s, acknowledgements (QoS 1, 2), messages/s overall (all\n"
	      "            published, acknowledged and received), and the p50/p99 latency\n"
	      "            from publisher to subscriber (payloads of 8 bytes or more). With\n"
	      "            QoS 1 or 2 it waits for every message; QoS 0 may lose some: the\n"
	      "            wait ends after 1 s without one and the count is reported.\n"
	      "\n"
	      "Options:\n"
	      "  -h HOST          broker address (default 127.0.0.1)\n"
	      "  -p PORT          broker port (default 1883)\n"
	      "  -c N             workers (connect) or publishers (publish); default 8\n"
	      "  -n N             connections (default 2000) or messages (default 100000)\n"
	      "  -s BYTES         payload size (default 64)\n"
	      "  -q QOS           0, 1 or 2 (default 0)\n"
	      "  -t TOPIC         topic of every publisher (default bench/<publisher index>)\n"
	      "  -u USER          user name in CONNECT\n"
	      "  -P PASSWORD      password in CONNECT\n"
	      "  --inflight N     QoS 1/2 messages each publisher has unacknowledged at most\n"
	      "                   (default 64)\n"
	      "  --no-sub         publish without the subscriber\n"
	      "  --persistent-sub the subscriber keeps its session (clean session 0), so a\n"
	      "                   broker with persistence stores every message for it\n"
	      "  --duration S     time cap of the whole run in seconds (default 10); reaching\n"
	      "                   it before the run completes is an error\n"
	      "  --timeout S      nothing sent or received for S seconds means the broker\n"
	      "                   stopped answering: an error (default 5)\n"
	      "  --pid PID        the broker's process: its CPU time (utime + stime from\n"
	      "                   /proc/PID/stat) over the measured part is reported, with\n"
	      "                   rates per broker CPU-second\n"
	      "  --json           print one JSON object line instead of the text report\n"
	      "  --help           show this help\n"
	      "\n"
	      "Measurement: connect mode from the first connection to the last close;\n"
	      "publish mode from the first PUBLISH (after every client is connected and the\n"
	      "subscription is acknowledged) to the last acknowledgement or delivery.\n"
	      "At QoS 0 published/s only measures writes into the kernel's socket buffers;\n"
	      "overall and received/s say what the broker delivered.\n"
	      "\n"
	      "Broker settings: publishers outrun a single subscriber, so the broker queues\n"
	      "for it, and past max_queued_messages (1000 by default in midge and mosquitto)\n"
	      "it drops messages: QoS 1/2 runs then fail with messages missing. Give the\n"
	      "broker max_queued_messages 0 (no limit) to measure throughput, as\n"
	      "scripts/bench does. mosquitto 2.0 with max_queued_messages 0 closes a\n"
	      "client that has more QoS 2 messages in flight than its\n"
	      "max_inflight_messages (20): use --inflight 20 there.\n"
	      "\n"
	      "JSON keys: mode, count (connections completed or messages published),\n"
	      "seconds, rate (count/seconds), cpu_seconds and rate_per_cpu_s (null without\n"
	      "--pid), p50_ms, p99_ms, refused, received (CONNACKs, or messages the\n"
	      "subscriber got), requested, clients, then failed (connect), or qos, size,\n"
	      "acked, pub_seconds, pub_rate, recv_rate (publish), and ok, error.\n"
	      "\n"
	      "Exit status: 0 when the run completed; 1 on errors: bad options, connection\n"
	      "refused by the OS, a client refused by the broker (publish mode) or every\n"
	      "connection refused (connect mode), the broker closing a connection or not\n"
	      "answering, time cap reached, QoS 1/2 messages missing, connections closed\n"
	      "before CONNACK. The report is printed anyway, then the error on stderr.\n",
	      f);
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_secs(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v > 0) || v > 86400)
		return false;
	*out = v;
	return true;
}

__attribute__((format(printf, 1, 2)))
static _Noreturn void bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("midge_bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry midge_bench --help.\n", stderr);
	exit(1);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	bool have_mode = false, have_count = false;

	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = "1883";
	o->clients = 8;
	o->size = 64;
	o->inflight = 64;
	o->duration = 10;
	o->timeout = 5;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		char name[32];
		uint64_t v = 0;

		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		if (a[0] != '-') {
			if (have_mode)
				bad_usage("unexpected argument '%s'", a);
			if (strcmp(a, "connect") == 0)
				o->mode = MODE_CONNECT;
			else if (strcmp(a, "publish") == 0)
				o->mode = MODE_PUBLISH;
			else
				bad_usage("unknown mode '%s' (connect or publish)", a);
			have_mode = true;
			continue;
		}
		if (strcmp(a, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (strcmp(a, "--no-sub") == 0) {
			o->no_sub = true;
			continue;
		}
		if (strcmp(a, "--persistent-sub") == 0) {
			o->persistent_sub = true;
			continue;
		}
		/* Every other option takes a value: "-x V", "--xx V" or "--xx=V". */
		eq = a[1] == '-' ? strchr(a, '=') : NULL;
		if (eq) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
			val = eq + 1;
		} else {
			snprintf(name, sizeof(name), "%s", a);
			if (i + 1 >= argc)
				bad_usage("option %s needs a value", a);
			val = argv[++i];
		}
		if (strcmp(name, "-h") == 0 || strcmp(name, "--host") == 0) {
			o->host = val;
		} else if (strcmp(name, "-p") == 0 || strcmp(name, "--port") == 0) {
			if (!parse_u64(val, 1, 65535, &v))
				bad_usage("bad port '%s'", val);
			o->port = val;
		} else if (strcmp(name, "-c") == 0 || strcmp(name, "--clients") == 0) {
			if (!parse_u64(val, 1, MAX_CLIENTS, &v))
				bad_usage("bad -c '%s' (1 to %u)", val, MAX_CLIENTS);
			o->clients = (unsigned)v;
		} else if (strcmp(name, "-n") == 0 || strcmp(name, "--count") == 0) {
			if (!parse_u64(val, 1, MAX_COUNT, &v))
				bad_usage("bad -n '%s' (1 to %llu)", val, (unsigned long long)MAX_COUNT);
			o->count = v;
			have_count = true;
		} else if (strcmp(name, "-s") == 0 || strcmp(name, "--size") == 0) {
			if (!parse_u64(val, 0, MAX_SIZE, &v))
				bad_usage("bad -s '%s' (0 to %u)", val, MAX_SIZE);
			o->size = (uint32_t)v;
		} else if (strcmp(name, "-q") == 0 || strcmp(name, "--qos") == 0) {
			if (!parse_u64(val, 0, 2, &v))
				bad_usage("bad -q '%s' (0, 1 or 2)", val);
			o->qos = (uint8_t)v;
		} else if (strcmp(name, "-t") == 0 || strcmp(name, "--topic") == 0) {
			o->topic = val;
		} else if (strcmp(name, "-u") == 0 || strcmp(name, "--username") == 0) {
			o->user = val;
		} else if (strcmp(name, "-P") == 0 || strcmp(name, "--password") == 0) {
			o->password = val;
		} else if (strcmp(name, "--inflight") == 0) {
			if (!parse_u64(val, 1, 65534, &v))
				bad_usage("bad --inflight '%s' (1 to 65534)", val);
			o->inflight = (unsigned)v;
		} else if (strcmp(name, "--duration") == 0) {
			if (!parse_secs(val, &o->duration))
				bad_usage("bad --duration '%s' (seconds, up to 86400)", val);
		} else if (strcmp(name, "--timeout") == 0) {
			if (!parse_secs(val, &o->timeout))
				bad_usage("bad --timeout '%s' (seconds, up to 86400)", val);
		} else if (strcmp(name, "--pid") == 0) {
			if (!parse_u64(val, 1, INT_MAX, &v))
				bad_usage("bad --pid '%s'", val);
			o->pid = (long)v;
		} else {
			bad_usage("unknown option '%s'", name);
		}
	}
	if (!have_mode)
		bad_usage("a mode is needed: connect or publish");
	if (!have_count)
		o->count = o->mode == MODE_CONNECT ? 2000 : 100000;
	if (o->topic && (strlen(o->topic) == 0 || strlen(o->topic) > 65535 ||
			 !topic_name_valid(o->topic, strlen(o->topic))))
		bad_usage("bad topic '%s' (a topic name: no wildcards, at most 65535 bytes)",
			  o->topic);
	if ((o->user && strlen(o->user) > 65535) || (o->password && strlen(o->password) > 65535))
		bad_usage("user name or password longer than 65535 bytes");
	if (o->password && !o->user)
		bad_usage("-P needs -u (MQTT 3.1.1 has no password without a user name)");
	if (o->mode == MODE_CONNECT && o->clients > o->count)
		o->clients = (unsigned)o->count;
}

/* ---- Main ---- */

static void setup(struct run *r)
{
	const struct opts *o = r->o;

	if (o->mode == MODE_CONNECT) {
		r->nconns = o->clients;
		r->conns = xcalloc(r->nconns, sizeof(*r->conns));
		for (unsigned i = 0; i < r->nconns; i++) {
			r->conns[i].fd = -1;
			r->conns[i].role = ROLE_WORKER;
			r->conns[i].index = i;
		}
		lat_init(r, o->count);
	} else {
		r->nconns = o->clients + (o->no_sub ? 0 : 1);
		r->conns = xcalloc(r->nconns, sizeof(*r->conns));
		for (unsigned i = 0; i < o->clients; i++) {
			struct conn *c = &r->conns[i];

			c->fd = -1;
			c->role = ROLE_PUB;
			c->index = i;
			c->topic = xcalloc(32 + (o->topic ? strlen(o->topic) : 0), 1);
			if (o->topic)
				strcpy(c->topic, o->topic);
			else
				snprintf(c->topic, 32, "bench/%u", i);
			c->to_send = o->count / o->clients + (i < o->count % o->clients ? 1 : 0);
			c->in_use = xcalloc(8192, 1);
			c->released = xcalloc(8192, 1);
			c->next_id = 1;
		}
		if (!o->no_sub) {
			struct conn *c = &r->conns[o->clients];

			c->fd = -1;
			c->role = ROLE_SUB;
			r->sub = c;
		}
		r->payload = xcalloc(o->size, 1);
		for (uint32_t i = 0; i < o->size; i++)
			r->payload[i] = (uint8_t)('a' + i % 26);
		lat_init(r, o->no_sub || o->size < sizeof(uint64_t) ? 0 : o->count);
	}
	r->pfds = xcalloc(r->nconns, sizeof(*r->pfds));
	r->pconn = xcalloc(r->nconns, sizeof(*r->pconn));
}

static void teardown(struct run *r)
{
	for (unsigned i = 0; i < r->nconns; i++) {
		struct conn *c = &r->conns[i];

		if (c->fd >= 0 && c->state == CS_READY) {
			/* Best effort: one non-blocking attempt. */
			c->out.off = c->out.len = 0;
			queue_disconnect(c);
			if (send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				c->out.len = 0;
		}
		if (c->fd >= 0)
			close(c->fd);
		buf_free(&c->in);
		buf_free(&c->out);
		free(c->topic);
		free(c->in_use);
		free(c->released);
	}
	free(r->conns);
	free(r->pfds);
	free(r->pconn);
	free(r->payload);
	free(r->lat);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct run r;
	struct addrinfo hints, *res = NULL;
	unsigned long long ticks;
	int rc;

	parse_args(argc, argv, &o);
	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.err_lock, NULL);
	atomic_init(&r.has_err, false);
	atomic_init(&r.stop, false);
	r.o = &o;
	r.tag = (unsigned)getpid();
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(o.host, o.port, &hints, &res);
	if (rc != 0 || !res) {
		fprintf(stderr, "midge_bench: cannot resolve %s: %s\n", o.host,
			rc ? gai_strerror(rc) : "no address");
		return 1;
	}
	memcpy(&r.addr, res->ai_addr, res->ai_addrlen);
	r.addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	if (o.pid && !read_cpu_ticks(o.pid, &ticks)) {
		fprintf(stderr, "midge_bench: --pid %ld: cannot read /proc/%ld/stat\n", o.pid, o.pid);
		return 1;
	}

	setup(&r);
	r.t_start = now_ns();
	r.deadline = r.t_start + (uint64_t)(o.duration * (double)NS_PER_S);
	r.last_progress = r.t_start;
	if (o.mode == MODE_CONNECT) {
		start_measuring(&r);
	} else {
		for (unsigned i = 0; i < r.nconns && !failed(&r); i++)
			conn_start(&r, &r.conns[i]);
	}
	if (!failed(&r))
		run_loop(&r);
	stop_sub_thread(&r);
	rc = report(&r);
	teardown(&r);
	pthread_mutex_destroy(&r.err_lock);
	return rc;
}
