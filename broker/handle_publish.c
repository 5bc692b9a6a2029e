/*
 * handle_publish.c: inbound PUBLISH: validation, limits, the incoming half
 * of QoS 1 and 2, and hand-off to routing. QoS 2 messages are routed when
 * the PUBLISH arrives (the specification's "method B"): the packet id is
 * remembered until PUBREL so a re-sent PUBLISH is not routed twice.
 */
#include "config.h"

#include "alloc.h"
#include "auth.h"
#include "broker.h"
#include "client.h"
#include "conf.h"
#include "dispatch.h"
#include "hooks.h"
#include "listener.h"
#include "log.h"
#include "message.h"
#include "route.h"
#include "send.h"
#include "session.h"
#include "store.h"
#include "throttle.h"
#include "topic_alias.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <string.h>

static struct message *make_message(struct client *c, const struct mqtt_publish *p,
				    const char *mount)
{
	size_t mlen = mount ? strlen(mount) : 0;
	size_t tlen = mlen + p->topic.len;
	char *topic = NULL;
	uint8_t *props = NULL;
	uint32_t plen = 0;
	struct message *m = NULL;

	if (tlen > UINT16_MAX)
		return NULL;
	if (mlen) {
		topic = mem_malloc(tlen);
		if (!topic)
			goto out;
		memcpy(topic, mount, mlen);
		memcpy(topic + mlen, p->topic.data, p->topic.len);
	}
	if (c->protocol == MQTT_PROTO_V5 && p->props.raw.len > 0) {
		props = mem_malloc(p->props.raw.len);
		if (!props)
			goto out;
		plen = mqtt_props_copy_forwardable(&p->props, props);
	}
	m = message_new(topic ? topic : (const char *)p->topic.data, tlen, p->payload.data,
			p->payload.len, p->qos, p->retain, props, plen);
	if (m && mqtt_props_has(&p->props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL))
		m->expires = m->created + p->props.message_expiry;
out:
	mem_free(topic);
	mem_free(props);
	return m;
}

/* Completes the publisher's side of QoS 1/2; routed: this message just was (not refused, not resent). */
static int acknowledge(struct client *c, const struct mqtt_publish *p, uint8_t reason, bool routed)
{
	if (p->qos == 0)
		return DISPATCH_CONTINUE;
	if (p->qos == 2 && reason < 0x80 && !session_qos2_in_has(c->session, p->packet_id)) {
		if (session_qos2_in_add(c->session, p->packet_id) < 0)
			return client_fail(c, 0, "out of memory");
		store_session_save(c->session);
	}
	/* The acknowledgement promises the message (and where it went) is kept,
	 * in the cluster too. */
	if (routed)
		store_hold_published(c);
	else
		store_hold(c);
	if (p->qos == 1 && send_ack(c, MQTT_PUBACK, p->packet_id, reason) < 0)
		return client_fail(c, 0, "out of memory");
	if (p->qos == 2) {
		if (send_ack(c, MQTT_PUBREC, p->packet_id, reason) < 0)
			return client_fail(c, 0, "out of memory");
	}
	return DISPATCH_CONTINUE;
}

/* Completes the publisher's side of QoS 1/2 for a message that was not routed. */
static int ack_only(struct client *c, const struct mqtt_publish *p, uint8_t reason)
{
	return acknowledge(c, p, reason, false);
}

/* Drops a PUBLISH the ACL refuses; MQTT 3.1.1 has no way to say so, MQTT 5 gets the code. */
static int denied(struct client *c, const struct mqtt_publish *p, struct message *m,
		  uint8_t reason)
{
	if (log_enabled(LOG_T_DEBUG))
		log_debug("Denied PUBLISH from %s on %s.", client_name(c), m->topic);
	message_unref(m);
	return ack_only(c, p, reason);
}

int handle_publish(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct worker *w = c->worker;
	const struct config *cfg = w->cfg;
	const struct config_listener *lcfg = &cfg->listeners[c->listener->index];
	struct mqtt_publish p;
	struct message *m;
	int rc = mqtt_decode_publish(body, len, flags, c->protocol, &p);

	if (rc == MQTT_ERR_PROTOCOL)
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "PUBLISH breaks the protocol (flags 0x%x)",
				   flags);
	if (rc != MQTT_OK)
		return client_fail(c, MQTT_RC_MALFORMED_PACKET, "malformed PUBLISH");
	if (mqtt_props_has(&p.props, MQTT_PROP_TOPIC_ALIAS)) {
		/* Sets or uses a mapping of this connection [3.3.2.3.4]; a mapping
		 * is set even when the message itself is then refused. */
		switch (topic_alias_inbound(c, (uint16_t)lcfg->max_topic_alias, p.props.topic_alias,
					    &p.topic)) {
		case TOPIC_ALIAS_OK:
			break;
		case TOPIC_ALIAS_INVALID:
			return client_fail(c, MQTT_RC_TOPIC_ALIAS_INVALID,
					   "topic alias %u (0, or above max_topic_alias %d)",
					   p.props.topic_alias, lcfg->max_topic_alias);
		case TOPIC_ALIAS_UNKNOWN:
			return client_fail(c, MQTT_RC_PROTOCOL_ERROR,
					   "PUBLISH with an empty topic and unknown topic alias %u",
					   p.props.topic_alias);
		default:
			return client_fail(c, 0, "out of memory");
		}
	} else if (p.topic.len == 0) {
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "PUBLISH with an empty topic");
	}
	if (p.qos > lcfg->max_qos)
		return client_fail(c, MQTT_RC_QOS_NOT_SUPPORTED, "PUBLISH QoS %u above max_qos %d",
				   p.qos, lcfg->max_qos);
	if (p.retain && !cfg->retain_available)
		return client_fail(c, MQTT_RC_RETAIN_NOT_SUPPORTED,
				   "retained PUBLISH while retain_available is false");
	STAT_ADD(w->stats.pub_received, 1);
	STAT_ADD(w->stats.pub_received_qos[p.qos], 1);
	STAT_ADD(w->stats.pub_bytes_received, p.payload.len);

	/* A QoS 2 PUBLISH re-sent before PUBREL was routed already. */
	if (p.qos == 2 && session_qos2_in_has(c->session, p.packet_id))
		return ack_only(c, &p, MQTT_RC_SUCCESS);
	/* QoS 1 is answered at once; only QoS 2 exchanges stay open, and an MQTT 5
	 * client may not open more than the Receive Maximum we announced [MQTT-3.3.4-8]. */
	if (p.qos == 2 && c->protocol == MQTT_PROTO_V5 && cfg->max_inflight_messages > 0 &&
	    cfg->max_inflight_messages < 65535 &&
	    session_qos2_in_count(c->session) >= (uint32_t)cfg->max_inflight_messages)
		return client_fail(c, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED,
				   "more than %d QoS 2 messages awaiting PUBREL (receive maximum)",
				   cfg->max_inflight_messages);
	if (cfg->message_size_limit && p.payload.len > cfg->message_size_limit) {
		log_notice("Dropped too large PUBLISH from client %s on topic %.*s (%u bytes).",
			   client_name(c), (int)p.topic.len, (const char *)p.topic.data, p.payload.len);
		STAT_DROP(w, DROP_TOO_LARGE);
		return ack_only(c, &p, MQTT_RC_PACKET_TOO_LARGE);
	}
	m = make_message(c, &p, lcfg->mount_point);
	if (!m)
		return client_fail(c, MQTT_RC_SERVER_BUSY, "out of memory storing a PUBLISH");
	uint8_t reason = auth_publish_refusal(c, m);
	if (reason)
		return denied(c, &p, m, reason);
	bool retopic = false;
	if (hook_message_in(c, &m, &reason, &retopic) == HOOK_DENY) {
		message_unref(m);
		STAT_DROP(w, DROP_DENIED);
		return ack_only(c, &p, reason);
	}
	/* A plugin that moved the message to another topic does not widen the client's rights. */
	if (retopic && (reason = auth_publish_refusal(c, m)) != 0)
		return denied(c, &p, m, reason);
	m->origin = c->session->id;
	struct session *wait_for = NULL;
	route_publish_waiting(w, m, c->session, &wait_for);
	message_unref(m);
	if (c->state == CLIENT_CLOSING) {
		if (wait_for)
			session_unref(wait_for);
		return DISPATCH_STOP;
	}
	/* Acknowledged, but nothing more is read from it until that subscriber drains. */
	if (wait_for)
		throttle_publisher(w, c, wait_for);
	return acknowledge(c, &p, MQTT_RC_SUCCESS, true);
}
