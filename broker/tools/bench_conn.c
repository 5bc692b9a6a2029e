/*
 * bench_conn.c: the connection scenarios of midge_bench.
 *
 *   connect  --connections in all, --concurrency at a time: TCP connect,
 *            CONNECT (clean), CONNACK, DISCONNECT, the broker closes.
 *   idle     --connections held open (optionally one subscription each),
 *            the broker's VmRSS before and once it has settled.
 */
#include "config.h"

#include "bench.h"

#include <midge/mqtt.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLOSE_WAIT_NS (1 * NS_PER_S)        /* a broker that does not close: we do */
#define SETUP_CAP_NS (120 * NS_PER_S)       /* idle: opening every connection */
#define SETTLE_STEP_NS (200 * NS_PER_MS)    /* idle: between two RSS readings */
#define SETTLE_SAMPLES 5                    /* idle: readings that must agree */
#define SETTLE_CAP_NS (15 * NS_PER_S)
#define SETTLE_SLACK 65536u                 /* idle: bytes of RSS that count as no change */

struct storm {
	const struct opts *o;
	struct net net;
	struct result *res;
	struct conn *conns;    /* connect: one per slot of --concurrency; idle: one each */
	uint64_t *seq;         /* connect: number of the connection a slot runs */
	unsigned nconns;
	uint64_t started;
	unsigned pending, ready; /* idle: being set up, set up */
	uint8_t last_refusal;
};

static struct storm *storm_of(struct net *n)
{
	return n->ctx;
}

static void storm_connected(struct net *n, struct conn *c)
{
	struct storm *s = storm_of(n);
	char id[48];

	if (s->o->scenario == SC_CONNECT) {
		snprintf(id, sizeof(id), "mb%u-c%" PRIu64, n->tag, s->seq[c->index]);
		queue_connect(n, c, id, true, 60);
	} else {
		/* Keepalive 0: an idle connection must stay without our pings. */
		snprintf(id, sizeof(id), "mb%u-i%u", n->tag, c->index);
		queue_connect(n, c, id, true, 0);
	}
	net_set_state(c, CS_CONNACK, now_ns());
}

static void connect_connack(struct storm *s, struct conn *c, const struct mqtt_frame *f,
			    const uint8_t *body, uint64_t now)
{
	struct net *n = &s->net;
	uint8_t code;

	hist_add(&s->res->lat, now - c->t_state);
	if (take_connack(n, c, body, f->remaining, f->flags, &code)) {
		s->res->connections++;
		queue_disconnect(n, c);
		if (!net_flush(n, c))
			return;
	} else if (!n->failed) {
		s->res->refused++;
		s->last_refusal = code;
	}
	/* The broker closes first, so TIME_WAIT piles up on its side, not on our ports. */
	net_set_state(c, CS_CLOSING, now);
}

static void idle_connack(struct storm *s, struct conn *c, const struct mqtt_frame *f,
			 const uint8_t *body, uint64_t now)
{
	struct net *n = &s->net;
	char filter[64];
	uint8_t code;

	if (!take_connack(n, c, body, f->remaining, f->flags, &code)) {
		net_fail(n, "connection %u refused by the broker: CONNACK %u (%s)", c->index, code,
			 connack_text(s->o->proto, code));
		return;
	}
	if (s->o->subscribe) {
		snprintf(filter, sizeof(filter), "bench/idle/%u/%u", n->tag, c->index);
		queue_subscribe(n, c, filter, s->o->qos);
		net_set_state(c, CS_SUBACK, now);
		return;
	}
	net_set_state(c, CS_READY, now);
	s->pending--;
	s->ready++;
}

static void storm_packet(struct net *n, struct conn *c, const struct mqtt_frame *f,
			 const uint8_t *body, uint64_t now)
{
	struct storm *s = storm_of(n);
	struct mqtt_suback sa;

	switch (f->type) {
	case MQTT_CONNACK:
		if (c->state != CS_CONNACK)
			break;
		if (s->o->scenario == SC_CONNECT)
			connect_connack(s, c, f, body, now);
		else
			idle_connack(s, c, f, body, now);
		return;
	case MQTT_SUBACK:
		if (c->state != CS_SUBACK ||
		    mqtt_decode_suback(MQTT_SUBACK, body, f->remaining, f->flags, s->o->proto,
				       &sa) != MQTT_OK || sa.codes.len != 1)
			break;
		if (sa.codes.data[0] >= 0x80) {
			net_fail(n, "connection %u: the broker refused the subscription (0x%02x)",
				 c->index, sa.codes.data[0]);
			return;
		}
		net_set_state(c, CS_READY, now);
		s->pending--;
		s->ready++;
		return;
	case MQTT_DISCONNECT:
		if (c->state == CS_CLOSING)
			return;
		break;
	case MQTT_PINGRESP:
		return;
	default:
		break;
	}
	net_fail(n, "connection %u: unexpected packet (type %u) from the broker", c->index,
		 f->type);
}

static void storm_closed(struct net *n, struct conn *c, int err)
{
	struct storm *s = storm_of(n);

	if (s->o->scenario == SC_CONNECT && c->state == CS_CLOSING) {
		net_close(n, c); /* the normal end */
		return;
	}
	if (c->state == CS_CONNECTING)
		net_fail(n, "cannot connect to %s port %s: %s", s->o->host, s->o->port,
			 strerror(err ? err : ECONNREFUSED));
	else if (s->o->scenario == SC_CONNECT && c->state == CS_CONNACK)
		s->res->failed++; /* counted; the report and the exit status tell */
	else
		net_fail(n, "the broker closed connection %u (%s)", c->index,
			 err ? strerror(err) : "end of stream");
	net_close(n, c);
}

static const struct net_handlers storm_handlers = {
	.connected = storm_connected,
	.packet = storm_packet,
	.closed = storm_closed,
	.flushed = NULL,
};

static bool storm_init(struct storm *s, const struct opts *o, struct result *res, unsigned n)
{
	memset(s, 0, sizeof(*s));
	s->o = o;
	s->res = res;
	s->nconns = n;
	s->conns = xcalloc(n, sizeof(*s->conns));
	s->seq = xcalloc(n, sizeof(*s->seq));
	for (unsigned i = 0; i < n; i++) {
		s->conns[i].fd = -1;
		s->conns[i].index = i;
	}
	return net_init(&s->net, o, &storm_handlers, s);
}

static void storm_free(struct storm *s)
{
	for (unsigned i = 0; i < s->nconns; i++)
		net_close(&s->net, &s->conns[i]);
	free(s->conns);
	free(s->seq);
	net_free(&s->net);
	s->res->ok = !s->net.failed;
	if (s->net.failed)
		snprintf(s->res->err, sizeof(s->res->err), "%s", s->net.err);
}

static bool cpu_sample(const struct opts *o, unsigned long long *ns)
{
	return o->pid == 0 || read_cpu_ns(o->pid, ns);
}

/* ---- connect ---- */

void run_connect(const struct opts *o, struct result *res)
{
	struct storm s;
	unsigned long long cpu0 = 0, cpu1 = 0;
	double self0 = self_cpu_s();
	uint64_t t0, deadline, timeout = (uint64_t)(o->timeout * (double)NS_PER_S);
	unsigned slots = o->concurrency < o->connections ? o->concurrency : o->connections;

	if (!storm_init(&s, o, res, slots) || !cpu_sample(o, &cpu0)) {
		if (!s.net.failed)
			net_fail(&s.net, "cannot read the CPU time of process %ld", o->pid);
		storm_free(&s);
		return;
	}
	t0 = now_ns();
	deadline = t0 + (uint64_t)(o->duration * (double)NS_PER_S);
	s.net.last_rx = t0;
	for (;;) {
		uint64_t now = now_ns();
		bool busy = false;

		for (unsigned i = 0; i < slots && !s.net.failed; i++) {
			struct conn *c = &s.conns[i];

			if (c->state == CS_CLOSING && now - c->t_state > CLOSE_WAIT_NS)
				net_close(&s.net, c);
			if (c->state == CS_IDLE && s.started < o->connections) {
				s.seq[i] = s.started++;
				net_open(&s.net, c);
			}
			busy = busy || c->state != CS_IDLE;
		}
		if (s.net.failed)
			break;
		if (!busy)
			break; /* every connection made and closed */
		if (now > deadline) {
			net_fail(&s.net, "time cap of %.1f s reached after %" PRIu64 " of %u "
				 "connections (raise --duration)", o->duration,
				 res->connections + res->refused, o->connections);
			break;
		}
		if (now - s.net.last_rx > timeout) {
			net_fail(&s.net, "nothing from the broker for %.1f s", o->timeout);
			break;
		}
		if (!net_wait(&s.net, 10 * NS_PER_MS))
			break;
	}
	res->wall_s = secs(now_ns() - t0);
	res->bench_cpu_s = self_cpu_s() - self0;
	if (o->pid && cpu_sample(o, &cpu1))
		res->broker_cpu_s = (double)(cpu1 - cpu0) / 1e9;
	if (!s.net.failed && res->failed)
		net_fail(&s.net, "%" PRIu64 " connections closed by the broker before a CONNACK",
			 res->failed);
	if (!s.net.failed && res->refused)
		net_fail(&s.net, "%" PRIu64 " connections refused: CONNACK %u (%s)", res->refused,
			 s.last_refusal, connack_text(o->proto, s.last_refusal));
	storm_free(&s);
}

/* ---- idle ---- */

/* Waits until SETTLE_SAMPLES readings of the broker's RSS agree; the last reading. */
static uint64_t settle(struct storm *s)
{
	uint64_t samples[SETTLE_SAMPLES], rss = 0;
	uint64_t start = now_ns(), next = start;
	unsigned n = 0;

	while (!s->net.failed && now_ns() - start < SETTLE_CAP_NS) {
		uint64_t now = now_ns(), lo, hi;

		if (now < next) {
			net_wait(&s->net, next - now); /* also notices a broker closing on us */
			continue;
		}
		next = now + SETTLE_STEP_NS;
		if (!read_rss(s->o->pid, &rss)) {
			net_fail(&s->net, "cannot read /proc/%ld/status", s->o->pid);
			return 0;
		}
		samples[n++ % SETTLE_SAMPLES] = rss;
		if (n < SETTLE_SAMPLES)
			continue;
		lo = hi = samples[0];
		for (unsigned i = 1; i < SETTLE_SAMPLES; i++) {
			lo = samples[i] < lo ? samples[i] : lo;
			hi = samples[i] > hi ? samples[i] : hi;
		}
		if (hi - lo <= SETTLE_SLACK)
			break;
	}
	return rss;
}

void run_idle(const struct opts *o, struct result *res)
{
	struct storm s;
	uint64_t t0, deadline;
	unsigned opened = 0;

	if (!storm_init(&s, o, res, o->connections)) {
		storm_free(&s);
		return;
	}
	if (!read_rss(o->pid, &res->rss_before)) {
		net_fail(&s.net, "cannot read /proc/%ld/status", o->pid);
		storm_free(&s);
		return;
	}
	t0 = now_ns();
	deadline = t0 + SETUP_CAP_NS;
	while (s.ready < o->connections && !s.net.failed) {
		while (opened < o->connections && s.pending < o->concurrency) {
			if (!net_open(&s.net, &s.conns[opened]))
				break;
			opened++;
			s.pending++;
		}
		if (now_ns() > deadline) {
			net_fail(&s.net, "%u of %u connections set up after %.0f s", s.ready,
				 o->connections, secs(SETUP_CAP_NS));
			break;
		}
		net_wait(&s.net, 10 * NS_PER_MS);
	}
	res->wall_s = secs(now_ns() - t0);
	res->connections = s.ready;
	if (!s.net.failed)
		res->rss_after = settle(&s);
	/* Goodbye to each, one non-blocking attempt. */
	for (unsigned i = 0; i < s.nconns; i++) {
		struct conn *c = &s.conns[i];

		if (c->fd >= 0 && c->state == CS_READY) {
			queue_disconnect(&s.net, c);
			if (send(c->fd, c->out.p + c->out.off, buf_pending(&c->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				c->out.len = c->out.off;
		}
	}
	storm_free(&s);
}
