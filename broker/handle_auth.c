/*
 * handle_auth.c: MQTT 5 AUTH. The broker offers no authentication method
 * yet, so a client that sends AUTH uses one we never agreed to.
 */
#include "config.h"

#include "client.h"
#include "codec.h"
#include "dispatch.h"

#include <midge/mqtt.h>

int handle_auth(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct mqtt_reason_packet a;

	if (mqtt_decode_auth(body, len, flags, c->protocol, &a) != MQTT_OK)
		return client_fail(c, MQTT_RC_MALFORMED_PACKET, "malformed AUTH");
	return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "AUTH without an authentication method");
}
