/*
 * send_ack.c: the small acknowledgements: PUBACK, PUBREC, PUBREL, PUBCOMP,
 * SUBACK, UNSUBACK and PINGRESP.
 */
#include "config.h"

#include "send.h"

#include "client.h"
#include "worker.h"

#include <midge/mqtt.h>

int send_ack(struct client *c, uint8_t type, uint16_t mid, uint8_t reason)
{
	uint32_t n = mqtt_size_ack(c->protocol, reason, NULL);
	uint8_t *out = client_out(c, n);
	struct pkt_writer w;

	if (!out)
		return -1;
	pkt_writer_init(&w, out, n);
	mqtt_write_ack(&w, type, mid, c->protocol, reason, NULL);
	STAT_ADD(c->worker->stats.msgs_sent, 1);
	return 0;
}

int send_suback(struct client *c, uint8_t type, uint16_t mid, const uint8_t *codes, uint32_t n)
{
	uint32_t size = mqtt_size_suback(type, c->protocol, n, NULL);
	uint8_t *out = client_out(c, size);
	struct pkt_writer w;

	if (!out)
		return -1;
	pkt_writer_init(&w, out, size);
	mqtt_write_suback(&w, type, mid, c->protocol, codes, n, NULL);
	STAT_ADD(c->worker->stats.msgs_sent, 1);
	return 0;
}

int send_pingresp(struct client *c)
{
	uint8_t *out = client_out(c, 2);
	struct pkt_writer w;

	if (!out)
		return -1;
	pkt_writer_init(&w, out, 2);
	mqtt_write_empty(&w, MQTT_PINGRESP);
	STAT_ADD(c->worker->stats.msgs_sent, 1);
	return 0;
}
