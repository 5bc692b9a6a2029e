/*
 * send_publish.c: outbound PUBLISH. Small payloads are copied next to the
 * header; large ones are queued by reference to the shared message, so a
 * fan-out never copies them. The header is encoded per connection, which
 * is where an MQTT 5 topic alias of that connection replaces the topic.
 */
#include "config.h"

#include "send.h"

#include "client.h"
#include "message.h"
#include "topic_alias.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <string.h>
#include <time.h>

/*
 * Topic alias of this connection for m's topic, if the client takes them:
 * the first PUBLISH of a topic carries topic and alias, later ones an empty
 * topic and the alias. Left out when it would make the packet larger than
 * the client's Maximum Packet Size (the caller checked the full topic fits).
 */
static void use_alias(struct client *c, const struct message *m, struct mqtt_publish_out *p,
		      struct mqtt_props_out *props, struct topic_alias_pick *alias)
{
	uint32_t max;

	if (client_topic_alias_max_out(c) == 0)
		return;
	topic_alias_pick(c, m->topic, m->topic_len, alias);
	if (alias->alias == 0)
		return;
	props->topic_alias = alias->alias;
	if (!alias->send_topic)
		p->topic.len = 0;
	max = client_max_packet_out(c);
	if (max && mqtt_size_publish(p, c->protocol) > max) {
		topic_alias_abort(alias);
		props->topic_alias = 0;
		p->topic.len = m->topic_len;
	}
}

int send_publish(struct client *c, struct message *m, uint8_t qos, uint16_t mid, bool dup,
		 bool retain, uint32_t subid)
{
	struct mqtt_props_out props = {0};
	struct topic_alias_pick alias = {0};
	struct mqtt_publish_out p = {
		.qos = qos,
		.dup = dup,
		.retain = retain,
		.packet_id = mid,
		.topic = {(const uint8_t *)m->topic, m->topic_len},
		.payload = {m->payload, m->payload_len},
	};
	bool by_ref = m->payload_len >= OUTQ_REF_THRESHOLD;
	uint32_t header;
	uint8_t *out;
	struct pkt_writer w;

	if (c->protocol == MQTT_PROTO_V5) {
		props.raw.data = m->props;
		props.raw.len = m->props_len;
		if (m->expires) {
			int64_t left = m->expires - (int64_t)time(NULL);
			props.has_message_expiry = true;
			props.message_expiry = left > 0 ? (uint32_t)left : 0;
		}
		if (subid) {
			props.subscription_ids = &subid;
			props.subscription_id_count = 1;
		}
		p.props = &props;
		use_alias(c, m, &p, &props, &alias);
	}
	header = mqtt_size_publish_header(&p, c->protocol);
	out = client_out(c, by_ref ? header : header + m->payload_len);
	if (!out) {
		topic_alias_abort(&alias);
		return -1;
	}
	pkt_writer_init(&w, out, by_ref ? header : header + m->payload_len);
	mqtt_write_publish_header(&w, &p, c->protocol);
	/* The mapping counts from the moment its PUBLISH is queued on this connection. */
	topic_alias_commit(c, &alias);
	if (by_ref) {
		if (client_out_ref(c, m, m->payload, m->payload_len) < 0)
			return -1;
	} else {
		pkt_write_raw(&w, m->payload, m->payload_len);
	}
	STAT_ADD(c->worker->stats.pub_sent, 1);
	STAT_ADD(c->worker->stats.pub_sent_qos[qos], 1);
	STAT_ADD(c->worker->stats.pub_bytes_sent, m->payload_len);
	STAT_ADD(c->worker->stats.msgs_sent, 1);
	return 0;
}
