/*
 * dispatch.c: packet type to handler, and the single exit for clients that
 * broke the protocol (see dispatch.h).
 */
#include "config.h"

#include "dispatch.h"

#include "client.h"
#include "send.h"

#include <midge/mqtt.h>
#include <stdarg.h>
#include <stdio.h>

const char *packet_name(uint8_t type)
{
	static const char *const names[16] = {
		"reserved(0)", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
		"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
		"DISCONNECT", "AUTH",
	};
	return names[type & 0x0F];
}

int client_fail(struct client *c, uint8_t reason, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	char a[CLIENT_ADDRSTRLEN];
	struct log_kv kv[] = {
		{"address", client_format_address(c, a), 0}, {"port", NULL, c->port}, {"client_id", c->id, 0},
		{"username", c->username, 0}, {"reason", why, 0},
	};
	log_event(LOG_T_NOTICE, "protocol_error", kv, sizeof(kv) / sizeof(kv[0]),
		  "Client %s disconnected: %s.", client_name(c), why);
	/* MQTT 5 clients are told why, once connected [MQTT-4.13.2-1]. */
	if (reason && c->state == CLIENT_ACTIVE)
		(void)send_disconnect_why(c, reason, why);
	client_close(c, NULL, true);
	return DISPATCH_STOP;
}

int dispatch_packet(struct client *c, uint8_t first_byte, const uint8_t *body, uint32_t len)
{
	uint8_t type = first_byte >> 4;
	uint8_t flags = first_byte & 0x0F;

	if (c->state == CLIENT_NEW && type != MQTT_CONNECT && !(client_xauth(c) && type == MQTT_AUTH))
		return client_fail(c, 0, "%s before CONNECT", packet_name(type));
	switch (type) {
	case MQTT_CONNECT:
		return handle_connect(c, flags, body, len);
	case MQTT_PUBLISH:
		return handle_publish(c, flags, body, len);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return handle_ack(c, type, flags, body, len);
	case MQTT_SUBSCRIBE:
		return handle_subscribe(c, flags, body, len);
	case MQTT_UNSUBSCRIBE:
		return handle_unsubscribe(c, flags, body, len);
	case MQTT_PINGREQ:
		return handle_ping(c, flags, body, len);
	case MQTT_DISCONNECT:
		return handle_disconnect(c, flags, body, len);
	case MQTT_AUTH:
		if (c->protocol != MQTT_PROTO_V5)
			return client_fail(c, 0, "AUTH is not part of MQTT %s",
					   c->protocol == MQTT_PROTO_V31 ? "3.1" : "3.1.1");
		return handle_auth(c, flags, body, len);
	default:
		/* CONNACK, SUBACK, UNSUBACK, PINGRESP and type 0 only come from a server. */
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "client sent %s, which only a server sends",
				   packet_name(type));
	}
}
