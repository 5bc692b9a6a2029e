/*
 * send_publish.c: outbound PUBLISH. Small payloads are copied next to the
 * header; large ones are queued by reference to the shared message, so a
 * fan-out never copies them.
 */
#include "config.h"

#include "send.h"

#include "client.h"
#include "message.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <string.h>
#include <time.h>

int send_publish(struct client *c, struct message *m, uint8_t qos, uint16_t mid, bool dup,
		 bool retain, uint32_t subid)
{
	struct mqtt_props_out props = {0};
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
	}
	header = mqtt_size_publish_header(&p, c->protocol);
	out = client_out(c, by_ref ? header : header + m->payload_len);
	if (!out)
		return -1;
	pkt_writer_init(&w, out, by_ref ? header : header + m->payload_len);
	if (by_ref) {
		mqtt_write_publish_header(&w, &p, c->protocol);
		if (client_out_ref(c, m, m->payload, m->payload_len) < 0)
			return -1;
	} else {
		mqtt_write_publish(&w, &p, c->protocol);
	}
	STAT_ADD(c->worker->stats.pub_sent, 1);
	STAT_ADD(c->worker->stats.pub_bytes_sent, m->payload_len);
	STAT_ADD(c->worker->stats.msgs_sent, 1);
	return 0;
}
