/*
 * bridge_proto.c: a bridge speaking MQTT as a client: its CONNECT (with the
 * notification will), the SUBSCRIBE of its "in" topics, and everything the
 * remote broker sends back (see bridge.h).
 */
#include "config.h"

#include "bridge_int.h"

#include "alloc.h"
#include "broker.h"
#include "client.h"
#include "codec.h"
#include "deliver.h"
#include "dispatch.h"
#include "log.h"
#include "message.h"
#include "packet.h"
#include "property.h"
#include "route.h"
#include "send.h"
#include "session.h"
#include "store.h"
#include "topic.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static struct mqtt_bytes bytes_of(const char *s)
{
	return (struct mqtt_bytes){(const uint8_t *)s, s ? (uint32_t)strlen(s) : 0};
}

/* Where the protocol level byte of an encoded CONNECT is. */
static size_t level_offset(const uint8_t *p)
{
	size_t i = 1;

	while (p[i] & 0x80)
		i++;
	i++;
	return i + 2 + (((size_t)p[i] << 8) | p[i + 1]);
}

int bridge_send_connect(struct bridge *br)
{
	struct client *c = br->client;
	struct mqtt_connect_out co;
	struct pkt_writer w;
	uint8_t props[32];
	uint8_t *p;
	uint32_t size;

	memset(&co, 0, sizeof(co));
	co.protocol = br->protocol;
	co.clean_start = br->clean_remote;
	co.keepalive = br->keepalive;
	co.client_id = bytes_of(br->remote_id);
	if (br->username) {
		co.username = br->username;
		if (br->password)
			co.password = bytes_of(br->password);
	}
	if (br->protocol == MQTT_PROTO_V5) {
		pkt_writer_init(&w, props, sizeof(props));
		if (br->session_expiry)
			pkt_write_prop_u32(&w, MQTT_PROP_SESSION_EXPIRY_INTERVAL, br->session_expiry);
		if (br->receive_maximum && br->receive_maximum < 65535)
			pkt_write_prop_u16(&w, MQTT_PROP_RECEIVE_MAXIMUM, br->receive_maximum);
		if (br->max_packet_size)
			pkt_write_prop_u32(&w, MQTT_PROP_MAXIMUM_PACKET_SIZE, br->max_packet_size);
		co.props = (struct mqtt_bytes){props, w.pos};
	}
	/* The remote tells everyone the bridge went away, should it go without a word. */
	if (br->notify_topic && !br->notify_local_only) {
		co.has_will = true;
		co.will_qos = 1;
		co.will_retain = true;
		co.will_topic = bytes_of(br->notify_topic);
		co.will_payload = bytes_of("0");
	}
	size = mqtt_size_connect(&co);
	if (!(p = client_out(c, size)))
		return -1;
	pkt_writer_init(&w, p, size);
	mqtt_write_connect(&w, &co);
	/* try_private: the level's high bit says "a bridge" to brokers that know it. */
	if (br->try_private && !br->private_refused && br->protocol != MQTT_PROTO_V5)
		p[level_offset(p)] |= 0x80;
	worker_schedule_flush(c->worker, c);
	return 0;
}

int bridge_send_subscriptions(struct bridge *br)
{
	struct client *c = br->client;
	struct mqtt_sub_entry *subs = mem_calloc(br->ntopics, sizeof(*subs));
	struct mqtt_bytes *unsubs = mem_calloc(br->ntopics, sizeof(*unsubs));
	uint32_t nsub = 0, nunsub = 0, size;
	struct pkt_writer w;
	uint8_t *p;
	int rc = -1;

	if (!subs || !unsubs)
		goto out;
	for (size_t i = 0; i < br->ntopics; i++) {
		const struct bridge_topic *t = &br->topics[i];
		if (t->direction == BRIDGE_OUT) {
			/* An older configuration may have subscribed to it on the remote. */
			if (br->attempt_unsubscribe)
				unsubs[nunsub++] = bytes_of(t->remote_filter);
			continue;
		}
		subs[nsub].filter = bytes_of(t->remote_filter);
		subs[nsub].opts.qos = t->qos;
		/* MQTT 5: nothing of ours comes back, retain flags as published. */
		subs[nsub].opts.no_local = br->protocol == MQTT_PROTO_V5;
		subs[nsub].opts.retain_as_published = br->protocol == MQTT_PROTO_V5;
		nsub++;
	}
	if (nunsub) {
		size = mqtt_size_unsubscribe(c->protocol, unsubs, nunsub);
		if (!(p = client_out(c, size)))
			goto out;
		pkt_writer_init(&w, p, size);
		mqtt_write_unsubscribe(&w, c->protocol, session_next_mid(br->session), unsubs, nunsub);
	}
	if (nsub) {
		size = mqtt_size_subscribe(c->protocol, subs, nsub, 0);
		if (!(p = client_out(c, size)))
			goto out;
		pkt_writer_init(&w, p, size);
		mqtt_write_subscribe(&w, c->protocol, session_next_mid(br->session), subs, nsub, 0);
	}
	worker_schedule_flush(c->worker, c);
	rc = 0;
out:
	mem_free(subs);
	mem_free(unsubs);
	return rc;
}

int bridge_send_notification(struct bridge *br, bool up)
{
	struct message *m;
	int rc;

	if (!br->notify_topic || br->notify_local_only || !br->client)
		return 0;
	m = message_new(br->notify_topic, strlen(br->notify_topic), up ? "1" : "0", 1, 1, true,
			NULL, 0);
	if (!m)
		return -1;
	/* QoS 1 as the will: an id of the session's that no message in flight uses (the
	 * PUBACK finds nothing to finish). */
	rc = send_publish(br->client, m, 1, session_next_mid(br->session), false, true, 0);
	message_unref(m);
	return rc;
}

/* --- what the remote sends --- */

static int fail(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct client *c, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_notice("Bridge %s: %s; closing the connection.", c->bridge->name, why);
	client_close(c, NULL, false);
	return DISPATCH_STOP;
}

static int on_connack(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct bridge *br = c->bridge;
	struct mqtt_connack ca;
	uint32_t max_packet = 0;

	if (mqtt_decode_connack(body, len, flags, br->protocol, &ca) != MQTT_OK)
		return fail(c, "malformed %s", "CONNACK");
	if (ca.code != 0) {
		bridge_refused(br, ca.code);
		client_close(c, NULL, false);
		return DISPATCH_STOP;
	}
	if (br->protocol == MQTT_PROTO_V5) {
		if (mqtt_props_has(&ca.props, MQTT_PROP_MAXIMUM_PACKET_SIZE))
			max_packet = ca.props.max_packet_size;
		if (br->session && mqtt_props_has(&ca.props, MQTT_PROP_RECEIVE_MAXIMUM))
			br->session->receive_max = ca.props.receive_maximum;
	}
	if (br->max_packet_size && (!max_packet || br->max_packet_size < max_packet))
		max_packet = br->max_packet_size;
	if (max_packet) {
		if (!client_ext(c))
			return fail(c, "%s", "out of memory");
		c->ext->max_packet_out = max_packet;
	}
	bridge_up(br);
	return c->state == CLIENT_CLOSING ? DISPATCH_STOP : DISPATCH_CONTINUE;
}

/* Acknowledges a PUBLISH of the remote once what it promises is durable (and, routed just
 * now, in the cluster). */
static int ack_publish(struct client *c, const struct mqtt_publish *p, bool routed)
{
	struct session *s = c->session;

	if (p->qos == 0)
		return DISPATCH_CONTINUE;
	if (p->qos == 2 && !session_qos2_in_has(s, p->packet_id)) {
		if (session_qos2_in_add(s, p->packet_id) < 0)
			return fail(c, "%s", "out of memory");
		store_session_save(s);
	}
	if (routed)
		store_hold_published(c);
	else
		store_hold(c);
	if (send_ack(c, p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id, 0) < 0)
		return fail(c, "%s", "out of memory");
	return DISPATCH_CONTINUE;
}

static int on_publish(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct bridge *br = c->bridge;
	struct session *s = c->session;
	struct mqtt_publish p;
	uint8_t rule_qos, *props = NULL;
	uint32_t plen = 0;
	char *local;
	const char *topic;
	const void *payload;
	uint32_t payload_len;
	struct message *m;

	if (mqtt_decode_publish(body, len, flags, c->protocol, &p) != MQTT_OK || p.topic.len == 0)
		return fail(c, "%s from the remote is malformed", "PUBLISH");
	STAT_ADD(c->worker->stats.pub_received, 1);
	STAT_ADD(c->worker->stats.pub_received_qos[p.qos], 1);
	STAT_ADD(c->worker->stats.pub_bytes_received, p.payload.len);
	br->last_traffic = ev_now(c->worker->loop);
	if (p.qos == 2 && session_qos2_in_has(s, p.packet_id))
		return ack_publish(c, &p, false); /* sent again before our PUBREC arrived */
	local = bridge_topic_in(br, (const char *)p.topic.data, p.topic.len, &rule_qos);
	if (!local) {
		if (log_enabled(LOG_T_DEBUG))
			log_debug("Bridge %s: dropped a message on %.*s: no \"in\" topic matches.",
				  br->name, (int)p.topic.len, (const char *)p.topic.data);
		return ack_publish(c, &p, false);
	}
	topic = local;
	payload = p.payload.data;
	payload_len = p.payload.len;
	if (bridge_event(br, 3, false, &topic, &payload, &payload_len, p.qos, p.retain) != 0 ||
	    !topic_name_valid(topic, strlen(topic))) {
		mem_free(local);
		STAT_DROP(c->worker, DROP_DENIED);
		return ack_publish(c, &p, false);
	}
	if (c->protocol == MQTT_PROTO_V5 && p.props.raw.len > 0) {
		if (!(props = mem_malloc(p.props.raw.len))) {
			mem_free(local);
			return fail(c, "%s", "out of memory");
		}
		plen = mqtt_props_copy_forwardable(&p.props, props);
	}
	m = message_new(topic, strlen(topic), payload, payload_len, p.qos, p.retain, props, plen);
	mem_free(props);
	mem_free(local);
	if (!m)
		return fail(c, "%s", "out of memory");
	if (mqtt_props_has(&p.props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL))
		m->expires = m->created + p.props.message_expiry;
	/* Our own "out" subscription has no-local: the message does not go straight back. */
	m->origin = s->id;
	atomic_fetch_add_explicit(&br->messages_in, 1, memory_order_relaxed);
	route_publish(c->worker, m, s);
	message_unref(m);
	if (c->state == CLIENT_CLOSING)
		return DISPATCH_STOP;
	return ack_publish(c, &p, true);
}

static int on_ack(struct client *c, uint8_t type, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct mqtt_ack a;

	if (mqtt_decode_ack(type, body, len, flags, c->protocol, &a) != MQTT_OK)
		return fail(c, "malformed %s from the remote", packet_name(type));
	c->bridge->last_traffic = ev_now(c->worker->loop);
	if (ack_apply(c, type, &a) < 0)
		return fail(c, "%s", "out of memory");
	return c->state == CLIENT_CLOSING ? DISPATCH_STOP : DISPATCH_CONTINUE;
}

static int on_suback(struct client *c, uint8_t type, uint8_t flags, const uint8_t *body,
		     uint32_t len)
{
	struct mqtt_suback sa;

	if (mqtt_decode_suback(type, body, len, flags, c->protocol, &sa) != MQTT_OK)
		return fail(c, "malformed %s from the remote", packet_name(type));
	for (uint32_t i = 0; type == MQTT_SUBACK && i < sa.codes.len; i++)
		if (sa.codes.data[i] >= 0x80)
			log_warn("Warning: bridge %s: the remote refused a subscription (code 0x%02x).",
				 c->bridge->name, sa.codes.data[i]);
	return DISPATCH_CONTINUE;
}

int bridge_dispatch(struct client *c, uint8_t first_byte, const uint8_t *body, uint32_t len)
{
	struct bridge *br = c->bridge;
	uint8_t type = first_byte >> 4, flags = first_byte & 0x0F;

	if (br->state == BRIDGE_CONNECTING) {
		if (type != MQTT_CONNACK)
			return fail(c, "the remote sent %s before CONNACK", packet_name(type));
		return on_connack(c, flags, body, len);
	}
	switch (type) {
	case MQTT_PUBLISH:
		return on_publish(c, flags, body, len);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return on_ack(c, type, flags, body, len);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return on_suback(c, type, flags, body, len);
	case MQTT_PINGRESP:
		return mqtt_decode_empty(len, flags) == MQTT_OK
			       ? DISPATCH_CONTINUE
			       : fail(c, "malformed %s from the remote", "PINGRESP");
	case MQTT_DISCONNECT:
		return fail(c, "the remote sent %s", "DISCONNECT");
	default:
		return fail(c, "the remote sent %s, which a server does not send", packet_name(type));
	}
}
