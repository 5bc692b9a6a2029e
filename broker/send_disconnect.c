/*
 * send_disconnect.c: the server DISCONNECT of MQTT 5, which tells the
 * client why it is being closed. Older protocols have no such packet.
 */
#include "config.h"

#include "send.h"

#include "client.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <string.h>

int send_disconnect(struct client *c, uint8_t reason)
{
	return send_disconnect_why(c, reason, NULL);
}

int send_disconnect_why(struct client *c, uint8_t reason, const char *why)
{
	struct mqtt_props_out props = {0};
	uint32_t n;
	uint8_t *out;
	struct pkt_writer w;

	if (c->protocol != MQTT_PROTO_V5)
		return 0;
	/* A reason string only for a client that asked for problem information, and
	 * never one that would make the packet too large for it [MQTT-3.1.2-25]. */
	if (why && (c->flags & CLIENT_F_PROBLEM_INFO)) {
		uint32_t max = client_max_packet_out(c);
		props.reason_string = (struct mqtt_bytes){(const uint8_t *)why, (uint32_t)strlen(why)};
		if (max && mqtt_size_reason_packet(MQTT_PROTO_V5, reason, &props) > max)
			props.reason_string = (struct mqtt_bytes){0};
	}
	n = mqtt_size_reason_packet(MQTT_PROTO_V5, reason, &props);
	out = client_out(c, n);
	if (!out)
		return -1;
	pkt_writer_init(&w, out, n);
	mqtt_write_reason_packet(&w, MQTT_DISCONNECT, MQTT_PROTO_V5, reason, &props);
	STAT_ADD(c->worker->stats.msgs_sent, 1);
	return 0;
}
