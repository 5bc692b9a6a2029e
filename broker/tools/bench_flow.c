/*
 * bench_flow.c: the message scenarios of midge_bench.
 *
 *   fanin   N publishers on bench/in/<i>  -> 1 subscriber on bench/in/#
 *   fanout  1 publisher on bench/out      -> N subscribers on bench/out
 *   pairs   publisher i on bench/pair/<i> -> subscriber i
 *
 * Publishers and subscribers live in this one process, so each payload
 * carries the publisher's index, its sequence number and the send time:
 * subscribers measure latency and find lost, duplicated and reordered
 * messages without asking the broker anything.
 *
 * Closed loop (default): a publisher keeps at most --window messages sent but
 * not yet delivered to every subscriber; at QoS 1/2 also at most --window
 * (and the broker's Receive Maximum) unacknowledged. Open loop (--rate): the
 * k-th message of the run is due at t0 + k/rate (publishers take turns) and
 * its latency counts from then, so a late generator or a slow broker cannot
 * make latency look better than it is.
 */
#include "config.h"

#include "bench.h"

#include <midge/mqtt.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define OUT_HIGH (256u * 1024u)            /* a publisher stops encoding above this backlog */
#define QOS0_QUIET_NS (1 * NS_PER_S)       /* QoS 0 drain: this much silence ends it */
#define QOS0_WRITE_OFF_NS (500 * NS_PER_MS) /* QoS 0 window: undelivered this long are lost */
#define QOS12_WRITE_OFF_NS (3 * NS_PER_S)   /* QoS 1/2: longer, a broker may slow publishers */
#define SETUP_CAP_NS (60 * NS_PER_S)       /* connecting and subscribing everyone */
#define PAYLOAD_MIN 16                     /* index (4), sequence (4), send time (8) */

enum kind { K_PUB, K_SUB };

/* One publisher's sequence as one subscriber sees it. */
struct track {
	uint32_t next;   /* highest sequence seen + 1 */
	uint64_t seen;   /* bit k: sequence next - 1 - k arrived */
	uint64_t got;    /* distinct messages */
};

struct pub {
	struct conn c;
	uint8_t *tmpl;          /* the PUBLISH packet, encoded once */
	uint32_t tmpl_len;
	uint32_t id_off;        /* where the packet identifier goes (QoS 1/2) */
	uint32_t payload_off;
	uint64_t quota;         /* messages this publisher may send */
	uint64_t sent, acked;
	uint64_t due;           /* open loop: messages whose time has come */
	int64_t delivered;      /* distinct deliveries of its messages, all subscribers */
	int64_t written_off;    /* QoS 0: deliveries the window gave up waiting for */
	uint64_t t_progress;    /* last delivery or acknowledgement */
	uint32_t inflight;      /* QoS 1/2: unacknowledged */
	uint16_t next_id;
	uint8_t *in_use;        /* bitmap of packet identifiers awaiting PUBACK / PUBCOMP */
	uint8_t *released;      /* QoS 2: bitmap of identifiers whose PUBREL was sent */
	bool listed;
};

struct sub {
	struct conn c;
	struct track *tracks;   /* fanin: one per publisher; otherwise one */
	uint64_t delivered;
};

struct flow {
	const struct opts *o;
	struct net net;
	struct result *res;
	struct pub *pubs;
	struct sub *subs;
	unsigned npub, nsub;
	unsigned fan;           /* subscribers of each message */
	unsigned *list;         /* publishers that may be able to send more */
	unsigned nlist;
	unsigned opened, pending_setup, ready;
	int timer_fd;
	bool publishing;
	uint64_t t_begin;       /* before the first connection: older timestamps are stale */
	uint64_t t0, t_pub_end, t_last_delivery, t_write_off;
	uint64_t next_due;      /* open loop: index of the next message of the run */
	uint64_t total_quota;
	uint64_t period_ns_x1024; /* open loop: 1024 / rate seconds, in ns */
	uint64_t sent, delivered, distinct, duplicates, reordered, stale, acked;
};

static struct flow *flow_of(struct net *n)
{
	return n->ctx;
}

static const char *who(const struct flow *f, const struct conn *c, char *tmp, size_t len)
{
	if (c->kind == K_PUB)
		snprintf(tmp, len, "publisher %u", c->index);
	else if (f->nsub == 1)
		snprintf(tmp, len, "the subscriber");
	else
		snprintf(tmp, len, "subscriber %u", c->index);
	return tmp;
}

/* ---- Packet identifiers ---- */

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

/* A free identifier: at most 65534 are in use (the window), so the walk ends. */
static uint16_t id_alloc(struct pub *p)
{
	for (unsigned i = 0; i < 65535; i++) {
		uint16_t id = p->next_id;

		p->next_id = (uint16_t)(p->next_id == 65535 ? 1 : p->next_id + 1);
		if (!id_get(p->in_use, id)) {
			id_set(p->in_use, id, true);
			return id;
		}
	}
	return 0; /* not reached */
}

/* ---- Publishing ---- */

static void list_pub(struct flow *f, struct pub *p)
{
	if (!p->listed) {
		p->listed = true;
		f->list[f->nlist++] = p->c.index;
	}
}

/* When message k of publisher i is due (open loop): the run's messages take turns. */
static uint64_t due_time(const struct flow *f, uint64_t global_index)
{
	/* period * index without overflow for any count the options allow */
	return f->t0 + (uint64_t)((double)global_index * (double)f->period_ns_x1024 / 1024.0);
}

static bool pub_can_send(const struct flow *f, const struct pub *p)
{
	const struct opts *o = f->o;
	uint32_t limit;

	if (!f->publishing || p->c.fd < 0 || p->sent >= p->quota ||
	    buf_pending(&p->c.out) >= OUT_HIGH)
		return false;
	if (o->rate > 0) {
		if (p->sent >= p->due)
			return false;
	} else {
		/* The end-to-end window: sent but not yet delivered to every subscriber. */
		int64_t outstanding = (int64_t)(p->sent * f->fan) - p->delivered - p->written_off;

		if (outstanding >= (int64_t)o->window * (int64_t)f->fan)
			return false;
	}
	if (o->qos > 0) {
		limit = o->window < p->c.recv_max ? o->window : p->c.recv_max;
		if (p->inflight >= limit)
			return false;
	}
	return true;
}

/* Copies the encoded PUBLISH for every message the window allows, then writes once. */
static void pub_fill(struct flow *f, struct pub *p, uint64_t now)
{
	const struct opts *o = f->o;
	uint32_t index = p->c.index;

	while (pub_can_send(f, p)) {
		uint8_t *dst = buf_reserve(&p->c.out, p->tmpl_len);
		uint32_t seq = (uint32_t)p->sent;
		uint64_t ts = now;

		memcpy(dst, p->tmpl, p->tmpl_len);
		if (o->qos > 0) {
			uint16_t id = id_alloc(p);

			dst[p->id_off] = (uint8_t)(id >> 8);
			dst[p->id_off + 1] = (uint8_t)id;
			p->inflight++;
		}
		if (o->rate > 0)
			ts = due_time(f, p->sent * f->npub + index);
		memcpy(dst + p->payload_off, &index, 4);
		memcpy(dst + p->payload_off + 4, &seq, 4);
		memcpy(dst + p->payload_off + 8, &ts, 8);
		p->c.out.len += p->tmpl_len;
		p->sent++;
		f->sent++;
	}
	if (buf_pending(&p->c.out) > 0 && !p->c.pollout)
		net_flush(&f->net, &p->c);
}

static void pub_ack(struct flow *f, struct pub *p, const struct mqtt_frame *fr,
		    const uint8_t *body, uint64_t now)
{
	const struct opts *o = f->o;
	struct mqtt_ack a;
	uint8_t done_type = o->qos == 1 ? MQTT_PUBACK : MQTT_PUBCOMP;

	if (mqtt_decode_ack(fr->type, body, fr->remaining, fr->flags, o->proto, &a) != MQTT_OK) {
		net_fail(&f->net, "publisher %u: malformed acknowledgement (type %u)", p->c.index,
			 fr->type);
		return;
	}
	if (o->qos == 0 || !id_get(p->in_use, a.packet_id) ||
	    (fr->type == MQTT_PUBREC && (o->qos != 2 || id_get(p->released, a.packet_id))) ||
	    (fr->type == MQTT_PUBCOMP && !id_get(p->released, a.packet_id)) ||
	    (fr->type == MQTT_PUBACK && o->qos != 1)) {
		net_fail(&f->net, "publisher %u: unexpected %s for packet id %u", p->c.index,
			 fr->type == MQTT_PUBACK ? "PUBACK" :
			 fr->type == MQTT_PUBREC ? "PUBREC" : "PUBCOMP", a.packet_id);
		return;
	}
	if (a.reason >= 0x80) {
		net_fail(&f->net, "publisher %u: the broker refused a message (reason 0x%02x)",
			 p->c.index, a.reason);
		return;
	}
	if (fr->type == MQTT_PUBREC) {
		id_set(p->released, a.packet_id, true);
		queue_ack(&f->net, &p->c, MQTT_PUBREL, a.packet_id);
		return;
	}
	if (fr->type == done_type) {
		id_set(p->in_use, a.packet_id, false);
		id_set(p->released, a.packet_id, false);
		p->inflight--;
		p->acked++;
		f->acked++;
		p->t_progress = now;
		list_pub(f, p);
	}
}

/* ---- Receiving ---- */

/* Counts one arrival of sequence s; returns false for a duplicate. */
static bool track_add(struct flow *f, struct track *t, uint32_t s)
{
	uint32_t back;

	if (s >= t->next) {
		uint32_t shift = s - t->next + 1;

		t->seen = shift >= 64 ? 1 : (t->seen << shift) | 1;
		t->next = s + 1;
		t->got++;
		return true;
	}
	back = t->next - 1 - s;
	if (back < 64) {
		if (t->seen & (1ull << back)) {
			f->duplicates++;
			return false;
		}
		t->seen |= 1ull << back;
	}
	/* Further back than the bitmap reaches: counted late, not as a duplicate. */
	f->reordered++;
	t->got++;
	return true;
}

static void on_message(struct flow *f, struct sub *s, const struct mqtt_frame *fr,
		       const uint8_t *body, uint64_t now)
{
	const struct opts *o = f->o;
	struct mqtt_publish m;
	uint32_t index, seq;
	uint64_t ts;
	struct track *t = NULL;
	struct pub *p;

	if (mqtt_decode_publish(body, fr->remaining, fr->flags, o->proto, &m) != MQTT_OK) {
		net_fail(&f->net, "subscriber %u: malformed PUBLISH", s->c.index);
		return;
	}
	if (m.qos == 1)
		queue_ack(&f->net, &s->c, MQTT_PUBACK, m.packet_id);
	else if (m.qos == 2)
		queue_ack(&f->net, &s->c, MQTT_PUBREC, m.packet_id);
	/* A retained message replayed on subscribing is an earlier run's. */
	if (m.retain || m.payload.len < PAYLOAD_MIN) {
		f->stale++;
		return;
	}
	memcpy(&index, m.payload.data, 4);
	memcpy(&seq, m.payload.data + 4, 4);
	memcpy(&ts, m.payload.data + 8, 8);
	if (index < f->npub && ts >= f->t_begin) {
		if (o->scenario == SC_FANIN)
			t = &s->tracks[index];
		else if (o->scenario == SC_FANOUT || index == s->c.index)
			t = &s->tracks[0];
	}
	if (!t || seq >= f->pubs[index].sent) {
		f->stale++; /* not a message of this run to this subscriber */
		return;
	}
	f->delivered++;
	s->delivered++;
	if (!track_add(f, t, seq))
		return;
	f->distinct++;
	hist_add(&f->res->lat, now > ts ? now - ts : 0);
	f->t_last_delivery = now;
	p = &f->pubs[index];
	p->delivered++;
	p->t_progress = now;
	list_pub(f, p);
}

/* ---- Connection events ---- */

static void flow_connected(struct net *n, struct conn *c)
{
	struct flow *f = flow_of(n);
	char id[48];
	bool clean = c->kind == K_PUB || !f->o->persistent_sub;

	snprintf(id, sizeof(id), "mb%u-%c%u", n->tag, c->kind == K_PUB ? 'p' : 's', c->index);
	queue_connect(n, c, id, clean, 0);
	net_set_state(c, CS_CONNACK, now_ns());
}

/*
 * The topic of publisher i, or (subscriber) the filter of subscriber i: the
 * same per scenario but for fan-in, whose one subscriber takes every
 * publisher's topic through a wildcard.
 */
static void scenario_topic(const struct flow *f, unsigned i, bool filter, char *buf, size_t len)
{
	switch (f->o->scenario) {
	case SC_FANIN:
		if (filter)
			snprintf(buf, len, "bench/in/#");
		else
			snprintf(buf, len, "bench/in/%u", i);
		break;
	case SC_FANOUT:
		snprintf(buf, len, "bench/out");
		break;
	default:
		snprintf(buf, len, "bench/pair/%u", i);
		break;
	}
}

static void became_ready(struct flow *f, struct conn *c)
{
	net_set_state(c, CS_READY, now_ns());
	f->pending_setup--;
	f->ready++;
}

static void flow_packet(struct net *n, struct conn *c, const struct mqtt_frame *fr,
			const uint8_t *body, uint64_t now)
{
	struct flow *f = flow_of(n);
	const struct opts *o = f->o;
	char tmp[32], filter[64];
	uint8_t code;

	switch (fr->type) {
	case MQTT_CONNACK:
		if (c->state != CS_CONNACK)
			break;
		if (!take_connack(n, c, body, fr->remaining, fr->flags, &code)) {
			net_fail(n, "%s: connection refused by the broker: CONNACK %u (%s)%s",
				 who(f, c, tmp, sizeof(tmp)), code, connack_text(o->proto, code),
				 o->user ? "" : " (try -u/-P)");
			return;
		}
		if (c->kind == K_PUB) {
			became_ready(f, c);
			return;
		}
		scenario_topic(f, c->index, true, filter, sizeof(filter));
		queue_subscribe(n, c, filter, o->qos);
		net_set_state(c, CS_SUBACK, now);
		return;
	case MQTT_SUBACK: {
		struct mqtt_suback sa;

		if (c->kind != K_SUB || c->state != CS_SUBACK ||
		    mqtt_decode_suback(MQTT_SUBACK, body, fr->remaining, fr->flags, o->proto,
				       &sa) != MQTT_OK || sa.codes.len != 1)
			break;
		if (sa.codes.data[0] >= 0x80) {
			net_fail(n, "%s: the broker refused the subscription (code 0x%02x)",
				 who(f, c, tmp, sizeof(tmp)), sa.codes.data[0]);
			return;
		}
		if (sa.codes.data[0] != o->qos)
			net_fail(n, "%s: the broker granted QoS %u, not %u",
				 who(f, c, tmp, sizeof(tmp)), sa.codes.data[0], o->qos);
		became_ready(f, c);
		return;
	}
	case MQTT_PUBLISH:
		if (c->kind == K_SUB && c->state == CS_READY) {
			on_message(f, &f->subs[c->index], fr, body, now);
			return;
		}
		break;
	case MQTT_PUBREL:
		if (c->kind == K_SUB && c->state == CS_READY) {
			struct mqtt_ack a;

			if (mqtt_decode_ack(MQTT_PUBREL, body, fr->remaining, fr->flags, o->proto,
					    &a) != MQTT_OK)
				break;
			queue_ack(n, c, MQTT_PUBCOMP, a.packet_id);
			return;
		}
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		if (c->kind == K_PUB && c->state == CS_READY) {
			pub_ack(f, &f->pubs[c->index], fr, body, now);
			return;
		}
		break;
	case MQTT_DISCONNECT:
		net_fail(n, "%s: the broker sent DISCONNECT (reason 0x%02x)",
			 who(f, c, tmp, sizeof(tmp)), fr->remaining ? body[0] : 0);
		return;
	case MQTT_PINGRESP:
		return;
	default:
		break;
	}
	net_fail(n, "%s: unexpected packet (type %u) from the broker",
		 who(f, c, tmp, sizeof(tmp)), fr->type);
}

static void flow_closed(struct net *n, struct conn *c, int err)
{
	struct flow *f = flow_of(n);
	char tmp[32];

	if (c->state == CS_CONNECTING)
		net_fail(n, "cannot connect to %s port %s: %s (is the broker running?)",
			 f->o->host, f->o->port, strerror(err ? err : ECONNREFUSED));
	else
		net_fail(n, "the broker closed the connection of %s (%s)",
			 who(f, c, tmp, sizeof(tmp)), err ? strerror(err) : "end of stream");
	net_close(n, c);
}

/* A publisher held back by its backlog may go on. */
static void flow_flushed(struct net *n, struct conn *c)
{
	struct flow *f = flow_of(n);

	if (c->kind == K_PUB)
		list_pub(f, &f->pubs[c->index]);
}

static const struct net_handlers flow_handlers = {
	.connected = flow_connected,
	.packet = flow_packet,
	.closed = flow_closed,
	.flushed = flow_flushed,
};

/* ---- Setup ---- */

static void make_template(struct flow *f, struct pub *p)
{
	const struct opts *o = f->o;
	struct mqtt_publish_out m;
	struct mqtt_frame fr;
	struct pkt_writer w;
	char topic[64];
	uint8_t *zero = xcalloc(o->size, 1);

	scenario_topic(f, p->c.index, false, topic, sizeof(topic));
	memset(&m, 0, sizeof(m));
	m.qos = o->qos;
	m.retain = o->retain;
	m.packet_id = o->qos ? 1 : 0;
	m.topic.data = (const uint8_t *)topic;
	m.topic.len = (uint32_t)strlen(topic);
	m.payload.data = zero;
	m.payload.len = o->size;
	p->tmpl_len = mqtt_size_publish(&m, o->proto);
	p->tmpl = xcalloc(p->tmpl_len, 1);
	pkt_writer_init(&w, p->tmpl, p->tmpl_len);
	mqtt_write_publish(&w, &m, o->proto);
	mqtt_frame_parse(p->tmpl, p->tmpl_len, UINT32_MAX, &fr);
	/* Fixed header, topic (length-prefixed), then the identifier. */
	p->id_off = fr.header_len + 2 + m.topic.len;
	p->payload_off = mqtt_size_publish_header(&m, o->proto);
	free(zero);
}

static void setup(struct flow *f, const struct opts *o, struct result *res)
{
	memset(f, 0, sizeof(*f));
	f->o = o;
	f->res = res;
	f->timer_fd = -1;
	switch (o->scenario) {
	case SC_FANIN:
		f->npub = o->publishers;
		f->nsub = 1;
		break;
	case SC_FANOUT:
		f->npub = 1;
		f->nsub = o->subscribers;
		break;
	default:
		f->npub = f->nsub = o->publishers;
		break;
	}
	f->fan = o->scenario == SC_FANOUT ? f->nsub : 1;
	f->pubs = xcalloc(f->npub, sizeof(*f->pubs));
	f->subs = xcalloc(f->nsub, sizeof(*f->subs));
	f->list = xcalloc(f->npub, sizeof(*f->list));
	for (unsigned i = 0; i < f->nsub; i++) {
		struct sub *s = &f->subs[i];

		s->c.fd = -1;
		s->c.kind = K_SUB;
		s->c.alt = o->sub_port != NULL;
		s->c.index = i;
		s->tracks = xcalloc(o->scenario == SC_FANIN ? f->npub : 1, sizeof(*s->tracks));
	}
	for (unsigned i = 0; i < f->npub; i++) {
		struct pub *p = &f->pubs[i];

		p->c.fd = -1;
		p->c.kind = K_PUB;
		p->c.index = i;
		/* The run's messages are dealt round-robin. */
		p->quota = o->count / f->npub + (i < o->count % f->npub ? 1 : 0);
		p->next_id = 1;
		if (o->qos > 0) {
			p->in_use = xcalloc(8192, 1);
			p->released = xcalloc(8192, 1);
		}
		make_template(f, p);
	}
	f->total_quota = o->count;
	if (o->rate > 0)
		f->period_ns_x1024 = (uint64_t)(1024.0 * (double)NS_PER_S / o->rate);
}

/* A polite goodbye, one non-blocking attempt, so the broker logs no error. */
static void say_goodbye(struct flow *f, struct conn *c)
{
	if (c->fd < 0)
		return;
	if (c->state == CS_READY) {
		c->out.off = c->out.len = 0;
		queue_disconnect(&f->net, c);
		if (send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			c->out.len = 0;
	}
	net_close(&f->net, c);
}

static void teardown(struct flow *f)
{
	for (unsigned i = 0; i < f->npub; i++) {
		struct pub *p = &f->pubs[i];

		say_goodbye(f, &p->c);
		free(p->tmpl);
		free(p->in_use);
		free(p->released);
	}
	for (unsigned i = 0; i < f->nsub; i++) {
		say_goodbye(f, &f->subs[i].c);
		free(f->subs[i].tracks);
	}
	free(f->pubs);
	free(f->subs);
	free(f->list);
	if (f->timer_fd >= 0)
		close(f->timer_fd);
}

#define SETTLE_NS (1000 * NS_PER_MS)

/* Subscribers first, then publishers, --concurrency at a time. */
static bool connect_all(struct flow *f)
{
	unsigned total = f->nsub + f->npub;
	uint64_t deadline = now_ns() + SETUP_CAP_NS;

	while (f->ready < total && !f->net.failed) {
		while (f->opened < total && f->pending_setup < f->o->concurrency) {
			struct conn *c = f->opened < f->nsub ? &f->subs[f->opened].c :
					 &f->pubs[f->opened - f->nsub].c;

			if (!net_open(&f->net, c))
				return false;
			f->opened++;
			f->pending_setup++;
		}
		if (now_ns() > deadline) {
			net_fail(&f->net, "%u of %u clients connected (and subscribed) after %.0f s",
				 f->ready, total, secs(SETUP_CAP_NS));
			return false;
		}
		net_wait(&f->net, 10 * NS_PER_MS);
	}
	/* Subscribers on another cluster node: their interest takes a moment to reach
	 * the publishers' node (NATS subscriptions travel between servers). */
	for (uint64_t until = now_ns() + SETTLE_NS; f->o->sub_port && !f->net.failed &&
	     now_ns() < until;)
		net_wait(&f->net, 10 * NS_PER_MS);
	return !f->net.failed;
}

/* ---- The measured phase ---- */

static bool cpu_sample(const struct opts *o, unsigned long long *ns)
{
	return o->pid == 0 || read_cpu_ns(o->pid, ns);
}

/* Open loop: hands the messages whose time has come to their publishers, arms the timer. */
static void release_due(struct flow *f, uint64_t now)
{
	struct itimerspec its;
	uint64_t t;

	while (f->next_due < f->total_quota && due_time(f, f->next_due) <= now) {
		struct pub *p = &f->pubs[f->next_due % f->npub];

		p->due++;
		list_pub(f, p);
		f->next_due++;
	}
	memset(&its, 0, sizeof(its));
	if (f->next_due < f->total_quota) {
		t = due_time(f, f->next_due);
		its.it_value.tv_sec = (time_t)(t / NS_PER_S);
		its.it_value.tv_nsec = (long)(t % NS_PER_S);
	}
	timerfd_settime(f->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void stop_publishing(struct flow *f, uint64_t now)
{
	for (unsigned i = 0; i < f->npub; i++)
		f->pubs[i].quota = f->pubs[i].sent;
	f->publishing = false;
	f->t_pub_end = now;
}

/*
 * Closed loop: a publisher waiting on deliveries that will not come (a broker
 * dropped them) moves on; they count as lost, which fails a QoS 1/2 run, but
 * the run completes and measures what the broker did deliver.
 */
static void write_off_lost(struct flow *f, uint64_t now)
{
	if (f->o->rate > 0 || now - f->t_write_off < 100 * NS_PER_MS)
		return;
	f->t_write_off = now;
	for (unsigned i = 0; i < f->npub; i++) {
		struct pub *p = &f->pubs[i];
		int64_t outstanding = (int64_t)(p->sent * f->fan) - p->delivered - p->written_off;

		uint64_t give_up = f->o->qos == 0 ? QOS0_WRITE_OFF_NS : QOS12_WRITE_OFF_NS;

		if (outstanding > 0 && now - p->t_progress >= give_up) {
			p->written_off += outstanding;
			p->t_progress = now;
			list_pub(f, p);
		}
	}
}

static uint64_t expected(const struct flow *f)
{
	uint64_t e = 0;

	for (unsigned i = 0; i < f->npub; i++)
		e += f->pubs[i].sent * f->fan;
	return e;
}

static bool all_flushed(const struct flow *f)
{
	for (unsigned i = 0; i < f->npub; i++)
		if (buf_pending(&f->pubs[i].c.out) > 0)
			return false;
	return true;
}

/* The drain: true when nothing more is worth waiting for. */
static bool drained(struct flow *f, uint64_t now)
{
	const struct opts *o = f->o;
	uint64_t last = f->t_last_delivery > f->t_pub_end ? f->t_last_delivery : f->t_pub_end;

	if (f->distinct >= expected(f) && f->acked >= (o->qos ? f->sent : 0) && all_flushed(f))
		return true;
	if (o->qos == 0 && now - last >= QOS0_QUIET_NS)
		return true;
	if (now - f->t_pub_end >= (uint64_t)(o->drain * (double)NS_PER_S)) {
		if (o->qos > 0)
			net_fail(&f->net, "drain of %.1f s over: %" PRIu64 " of %" PRIu64
				 " deliveries, %" PRIu64 " of %" PRIu64 " acknowledgements",
				 o->drain, f->distinct, expected(f), f->acked, f->sent);
		return true;
	}
	return false;
}

static void measure(struct flow *f)
{
	const struct opts *o = f->o;
	uint64_t duration = (uint64_t)(o->duration * (double)NS_PER_S);
	uint64_t timeout = (uint64_t)(o->timeout * (double)NS_PER_S);

	f->t0 = now_ns();
	f->publishing = true;
	f->net.last_rx = f->t0;
	for (unsigned i = 0; i < f->npub; i++) {
		f->pubs[i].t_progress = f->t0;
		list_pub(f, &f->pubs[i]);
	}
	for (;;) {
		uint64_t now = now_ns();

		if (f->publishing) {
			if (o->rate > 0)
				release_due(f, now);
			/* Each publisher on the list encodes its batch and writes it once. */
			for (unsigned i = 0; i < f->nlist && !f->net.failed; i++) {
				struct pub *p = &f->pubs[f->list[i]];

				p->listed = false;
				pub_fill(f, p, now);
			}
			f->nlist = 0;
			write_off_lost(f, now);
			if (now - f->t0 >= duration || f->sent >= f->total_quota)
				stop_publishing(f, now);
		}
		if (f->net.failed)
			return;
		if (!f->publishing && drained(f, now))
			return;
		if (now - f->net.last_rx >= timeout &&
		    (o->qos > 0 || f->distinct < expected(f)) && (o->rate == 0 || !f->publishing)) {
			net_fail(&f->net, "nothing from the broker for %.1f s (%" PRIu64 " of %" PRIu64
				 " deliveries, %" PRIu64 " acknowledgements)", o->timeout,
				 f->distinct, expected(f), f->acked);
			return;
		}
		/* Publishers the events listed write at once; otherwise sleep until an event. */
		if (!net_wait(&f->net, f->nlist ? 0 : 10 * NS_PER_MS))
			return;
	}
}

static void results(struct flow *f, struct result *res)
{
	uint64_t end = f->t_last_delivery > f->t0 ? f->t_last_delivery : f->t_pub_end;
	uint64_t lost = 0;

	for (unsigned i = 0; i < f->nsub; i++) {
		struct sub *s = &f->subs[i];
		unsigned ntracks = f->o->scenario == SC_FANIN ? f->npub : 1;

		for (unsigned k = 0; k < ntracks; k++) {
			unsigned pi = f->o->scenario == SC_FANIN ? k :
				      f->o->scenario == SC_FANOUT ? 0 : i;
			uint64_t want = f->pubs[pi].sent, got = s->tracks[k].got;

			lost += want > got ? want - got : 0;
		}
	}
	res->wall_s = end > f->t0 ? secs(end - f->t0) : 0;
	res->sent = f->sent;
	res->delivered = f->delivered;
	res->expected = expected(f);
	res->lost = lost;
	res->duplicates = f->duplicates;
	res->reordered = f->reordered;
	res->stale = f->stale;
	res->acked = f->acked;
}

void run_flow(const struct opts *o, struct result *res)
{
	struct flow f;
	unsigned long long cpu0 = 0, cpu1 = 0;
	double self0;

	setup(&f, o, res);
	f.t_begin = now_ns();
	if (net_init(&f.net, o, &flow_handlers, &f)) {
		if (o->rate > 0) {
			f.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
			if (f.timer_fd < 0)
				net_fail(&f.net, "timerfd_create: %s", strerror(errno));
			else
				net_watch_fd(&f.net, f.timer_fd);
		}
		if (!f.net.failed && connect_all(&f)) {
			self0 = self_cpu_s();
			if (!cpu_sample(o, &cpu0))
				net_fail(&f.net, "cannot read the CPU time of process %ld", o->pid);
			else
				measure(&f);
			res->bench_cpu_s = self_cpu_s() - self0;
			if (o->pid && cpu_sample(o, &cpu1))
				res->broker_cpu_s = (double)(cpu1 - cpu0) / 1e9;
		}
		if (f.t0)
			results(&f, res);
	}
	res->ok = !f.net.failed;
	if (f.net.failed)
		snprintf(res->err, sizeof(res->err), "%s", f.net.err);
	teardown(&f);
	net_free(&f.net);
}
