/*
 * handle_ping.c: PINGREQ -> PINGRESP. Receiving it already refreshed the
 * keepalive (any packet does).
 */
#include "config.h"

#include "client.h"
#include "dispatch.h"
#include "send.h"

#include <midge/mqtt.h>

int handle_ping(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	(void)body;
	if (mqtt_decode_empty(len, flags) != MQTT_OK)
		return client_fail(c, MQTT_RC_MALFORMED_PACKET, "malformed PINGREQ");
	if (send_pingresp(c) < 0)
		return client_fail(c, 0, "out of memory");
	return DISPATCH_CONTINUE;
}
