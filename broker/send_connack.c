/*
 * send_connack.c: CONNACK, in the client's protocol version.
 */
#include "config.h"

#include "send.h"

#include "client.h"
#include "worker.h"

#include <midge/mqtt.h>

int send_connack(struct client *c, bool session_present, uint8_t code, struct mqtt_bytes props)
{
	/* A client whose version we refused still gets a CONNACK it can parse. */
	int proto = c->protocol ? c->protocol : MQTT_PROTO_V311;
	uint32_t n = mqtt_size_connack(proto, props);
	uint8_t *out = client_out(c, n);
	struct pkt_writer w;

	if (!out)
		return -1;
	pkt_writer_init(&w, out, n);
	mqtt_write_connack(&w, proto, session_present, code, props);
	STAT_ADD(c->worker->stats.msgs_sent, 1);
	return 0;
}
