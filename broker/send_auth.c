/*
 * send_auth.c: the MQTT 5 AUTH packet of extended authentication, with
 * the method and the data a plugin produced.
 */
#include "config.h"

#include "send.h"

#include "alloc.h"
#include "client.h"
#include "property.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <string.h>

struct mqtt_bytes auth_props_encode(const char *method, const void *data, uint32_t len,
				    uint8_t *buf, size_t size)
{
	size_t mlen = method ? strlen(method) : 0;
	struct pkt_writer w;
	size_t need = (method ? mqtt_prop_size_bin((uint32_t)mlen) : 0) +
		      (data ? mqtt_prop_size_bin(len) : 0);

	if (need > size || mlen > UINT16_MAX || len > UINT16_MAX)
		return (struct mqtt_bytes){0};
	pkt_writer_init(&w, buf, (uint32_t)size);
	if (method)
		pkt_write_prop_bin(&w, MQTT_PROP_AUTHENTICATION_METHOD, method, (uint16_t)mlen);
	if (data)
		pkt_write_prop_bin(&w, MQTT_PROP_AUTHENTICATION_DATA, data, (uint16_t)len);
	return (struct mqtt_bytes){buf, w.pos};
}

int send_auth(struct client *c, uint8_t reason, const char *method, const void *data,
	      uint32_t len)
{
	size_t size = (method ? strlen(method) + 3 : 0) + (data ? (size_t)len + 3 : 0);
	uint8_t *buf = mem_malloc(size ? size : 1);
	struct mqtt_props_out props = {0};
	struct pkt_writer w;
	uint8_t *out;
	uint32_t n;

	if (!buf)
		return -1;
	props.raw = auth_props_encode(method, data, len, buf, size);
	n = mqtt_size_reason_packet(MQTT_PROTO_V5, reason, &props);
	out = client_out(c, n);
	if (!out) {
		mem_free(buf);
		return -1;
	}
	pkt_writer_init(&w, out, n);
	mqtt_write_reason_packet(&w, MQTT_AUTH, MQTT_PROTO_V5, reason, &props);
	mem_free(buf);
	STAT_ADD(c->worker->stats.msgs_sent, 1);
	return 0;
}
