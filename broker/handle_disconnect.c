/*
 * handle_disconnect.c: DISCONNECT from a client. A normal disconnection
 * (reason 0x00, and always before MQTT 5) discards the will; any other MQTT 5
 * reason, 0x04 "with will message" or an error the client reports, publishes
 * it, after its Will Delay Interval if it has one. MQTT 5 may also change the
 * Session Expiry Interval here.
 */
#include "config.h"

#include "client.h"
#include "codec.h"
#include "dispatch.h"
#include "session.h"

#include <midge/mqtt.h>

/* The reason codes a client may send in DISCONNECT (MQTT 5 table 3-10). */
static bool client_reason(uint8_t r)
{
	switch (r) {
	case 0x00: case 0x04: case 0x80: case 0x81: case 0x82: case 0x83: case 0x90:
	case 0x93: case 0x94: case 0x95: case 0x96: case 0x97: case 0x98: case 0x99:
		return true;
	default:
		return false;
	}
}

int handle_disconnect(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct mqtt_reason_packet d;
	int rc = mqtt_decode_disconnect(body, len, flags, c->protocol, &d);

	if (rc == MQTT_ERR_PROTOCOL)
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "DISCONNECT breaks the protocol");
	if (rc != MQTT_OK)
		return client_fail(c, MQTT_RC_MALFORMED_PACKET, "malformed DISCONNECT");
	/* [MQTT-3.14.2-1]: a reason code outside the table is not a DISCONNECT. */
	if (c->protocol == MQTT_PROTO_V5 && !client_reason(d.reason))
		return client_fail(c, MQTT_RC_MALFORMED_PACKET, "DISCONNECT with reason 0x%02x",
				   d.reason);
	if (c->protocol == MQTT_PROTO_V5 &&
	    mqtt_props_has(&d.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL)) {
		/* A session that ended at disconnect cannot be made persistent now [MQTT-3.14.2-2]. */
		if (c->session->expiry_interval == 0 && d.props.session_expiry != 0)
			return client_fail(c, MQTT_RC_PROTOCOL_ERROR,
					   "DISCONNECT sets a session expiry after connecting with 0");
		c->session->expiry_interval = d.props.session_expiry;
	}
	/* Only a normal disconnection deletes the will [MQTT-3.14.4-3]; mosquitto
	 * publishes it for 0x04 alone, but MQTT 5 section 3.1.2.5 keeps it for
	 * every DISCONNECT whose reason is not 0x00. */
	client_close(c, "disconnected.", d.reason != MQTT_RC_SUCCESS);
	return DISPATCH_STOP;
}
