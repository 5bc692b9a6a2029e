/*
 * handle_ack.c: PUBACK, PUBREC, PUBREL and PUBCOMP from a client: the
 * client's answers to our QoS 1/2 messages, and PUBREL for its own QoS 2.
 */
#include "config.h"

#include "client.h"
#include "deliver.h"
#include "dispatch.h"
#include "send.h"
#include "session.h"
#include "store.h"

#include <midge/mqtt.h>

int ack_apply(struct client *c, uint8_t type, const struct mqtt_ack *a)
{
	struct session *s = c->session;

	switch (type) {
	case MQTT_PUBACK:
		/* An unknown id is ignored: it may be a late answer to a resent message. */
		session_on_puback(s, a->packet_id);
		break;
	case MQTT_PUBREC:
		if (a->reason >= 0x80) {
			/* MQTT 5: the receiver refused the message; the flow ends here. */
			session_on_pubcomp_forced(s, a->packet_id);
			break;
		}
		if (!session_on_pubrec(s, a->packet_id) &&
		    send_ack(c, MQTT_PUBREL, a->packet_id, MQTT_RC_PACKET_ID_NOT_FOUND) < 0)
			return -1;
		break;
	case MQTT_PUBREL: {
		bool known = session_qos2_in_remove(s, a->packet_id);
		if (known)
			store_session_save(s);
		/* After PUBCOMP the sender may reuse the id: forgetting it must be on disk first. */
		store_hold(c);
		if (send_ack(c, MQTT_PUBCOMP, a->packet_id,
			     known ? MQTT_RC_SUCCESS : MQTT_RC_PACKET_ID_NOT_FOUND) < 0)
			return -1;
		break;
	}
	case MQTT_PUBCOMP:
		session_on_pubcomp(s, a->packet_id);
		break;
	}
	return 0;
}

int handle_ack(struct client *c, uint8_t type, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct mqtt_ack a;
	int rc = mqtt_decode_ack(type, body, len, flags, c->protocol, &a);

	if (rc == MQTT_ERR_PROTOCOL)
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "%s with packet id 0", packet_name(type));
	if (rc != MQTT_OK)
		return client_fail(c, MQTT_RC_MALFORMED_PACKET, "malformed %s", packet_name(type));
	if (ack_apply(c, type, &a) < 0)
		return client_fail(c, 0, "out of memory");
	return c->state == CLIENT_CLOSING ? DISPATCH_STOP : DISPATCH_CONTINUE;
}
