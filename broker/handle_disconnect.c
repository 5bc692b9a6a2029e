/*
 * handle_disconnect.c: DISCONNECT from a client: a clean end, so the will
 * is discarded (unless an MQTT 5 client asks for it with reason 0x04).
 */
#include "config.h"

#include "client.h"
#include "codec.h"
#include "dispatch.h"
#include "session.h"

#include <midge/mqtt.h>

int handle_disconnect(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct mqtt_reason_packet d;
	int rc = mqtt_decode_disconnect(body, len, flags, c->protocol, &d);

	if (rc == MQTT_ERR_PROTOCOL)
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "DISCONNECT breaks the protocol");
	if (rc != MQTT_OK)
		return client_fail(c, MQTT_RC_MALFORMED_PACKET, "malformed DISCONNECT");
	if (c->protocol == MQTT_PROTO_V5 &&
	    mqtt_props_has(&d.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL)) {
		/* A session that ended at disconnect cannot be made persistent now [MQTT-3.14.2-2]. */
		if (c->session->expiry_interval == 0 && d.props.session_expiry != 0)
			return client_fail(c, MQTT_RC_PROTOCOL_ERROR,
					   "DISCONNECT sets a session expiry after connecting with 0");
		c->session->expiry_interval = d.props.session_expiry;
	}
	client_close(c, "disconnected.", d.reason == MQTT_RC_DISCONNECT_WITH_WILL);
	return DISPATCH_STOP;
}
