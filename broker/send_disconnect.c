/*
 * send_disconnect.c: the server DISCONNECT of MQTT 5, which tells the
 * client why it is being closed. Older protocols have no such packet.
 */
#include "config.h"

#include "send.h"

#include "client.h"
#include "worker.h"

#include <midge/mqtt.h>

int send_disconnect(struct client *c, uint8_t reason)
{
	uint32_t n;
	uint8_t *out;
	struct pkt_writer w;

	if (c->protocol != MQTT_PROTO_V5)
		return 0;
	n = mqtt_size_reason_packet(MQTT_PROTO_V5, reason, NULL);
	out = client_out(c, n);
	if (!out)
		return -1;
	pkt_writer_init(&w, out, n);
	mqtt_write_reason_packet(&w, MQTT_DISCONNECT, MQTT_PROTO_V5, reason, NULL);
	STAT_ADD(c->worker->stats.msgs_sent, 1);
	return 0;
}
