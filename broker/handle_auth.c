/*
 * handle_auth.c: MQTT 5 AUTH: the rounds of an extended authentication
 * that started at CONNECT, and re-authentication of a connected client.
 * The plugin that answered CONTINUE gets every next round.
 */
#include "config.h"

#include "alloc.h"
#include "client.h"
#include "codec.h"
#include "connect_state.h"
#include "decision.h"
#include "dispatch.h"
#include "hooks.h"
#include "log.h"
#include "send.h"

#include <midge/mqtt.h>
#include <string.h>

void ext_auth_free(struct ext_auth *x)
{
	if (!x)
		return;
	mem_free(x->method);
	mem_free(x->client_id);
	mem_free(x->connect);
	mem_free(x->out_data);
	mem_free(x->username);
	mem_free(x);
}

static bool same_method(const struct ext_auth *xa, const struct mqtt_reason_packet *a)
{
	size_t len = strlen(xa->method);

	return mqtt_props_has(&a->props, MQTT_PROP_AUTHENTICATION_METHOD) &&
	       a->props.auth_method.len == len && memcmp(a->props.auth_method.data, xa->method, len) == 0;
}

/* A round during CONNECT: success replays the kept CONNECT. */
static int connect_round(struct client *c, const struct mqtt_reason_packet *a)
{
	struct ext_auth *xa = client_xauth(c);
	struct hook_auth_names names = {.client = c, .username = &xa->username};
	const void *data = mqtt_props_has(&a->props, MQTT_PROP_AUTHENTICATION_DATA)
				   ? a->props.auth_data.data
				   : NULL;
	struct decision d;
	int rc;

	if (a->reason != MQTT_RC_CONTINUE_AUTHENTICATION)
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "AUTH with reason 0x%02x during CONNECT",
				   a->reason);
	int v = hook_ext_auth(c, &names, MIDGE_EVT_EXT_AUTH_CONTINUE, xa->plugin, xa->method, data,
			      a->props.auth_data.len, false, &d);
	switch (v) {
	case HOOK_PENDING:
		return DISPATCH_STOP;
	case HOOK_CONTINUE:
		rc = send_auth(c, MQTT_RC_CONTINUE_AUTHENTICATION, xa->method, d.data, d.data_len) < 0
			     ? client_fail(c, 0, "out of memory")
			     : DISPATCH_CONTINUE;
		break;
	case HOOK_ALLOW:
		if (d.username) {
			mem_free(xa->username);
			xa->username = d.username;
			d.username = NULL;
		}
		mem_free(xa->out_data);
		xa->out_data = d.data;
		xa->out_len = d.data_len;
		d.data = NULL;
		xa->in_progress = false;
		xa->done = true;
		/* The CONNECT is handled now, as if it had just arrived. */
		{
			uint8_t *body = xa->connect;
			uint32_t len = xa->connect_len;
			xa->connect = NULL;
			rc = handle_connect(c, xa->connect_flags, body, len);
			mem_free(body);
		}
		break;
	default: {
		uint8_t reason = d.reason >= 0x80 ? d.reason : MQTT_RC_NOT_AUTHORIZED;
		(void)send_connack(c, false, reason, (struct mqtt_bytes){0});
		char addr[CLIENT_ADDRSTRLEN];
		log_notice("Refused client from %s:%u: extended authentication failed.",
			   client_format_address(c, addr),
			   c->port);
		client_close(c, NULL, false);
		rc = DISPATCH_STOP;
		break;
	}
	}
	decision_free_data(&d);
	return rc;
}

/* Re-authentication of a connected client (starts with reason 0x19). */
static int reauth_round(struct client *c, const struct mqtt_reason_packet *a)
{
	struct ext_auth *xa = client_xauth(c);
	const void *data = mqtt_props_has(&a->props, MQTT_PROP_AUTHENTICATION_DATA)
				   ? a->props.auth_data.data
				   : NULL;
	struct decision d;
	int v, rc;

	if (a->reason == MQTT_RC_REAUTHENTICATE && !xa->in_progress) {
		v = hook_ext_auth(c, NULL, MIDGE_EVT_EXT_AUTH_START, NULL, xa->method, data,
				  a->props.auth_data.len, true, &d);
	} else if (a->reason == MQTT_RC_CONTINUE_AUTHENTICATION && xa->in_progress) {
		v = hook_ext_auth(c, NULL, MIDGE_EVT_EXT_AUTH_CONTINUE, xa->plugin, xa->method, data,
				  a->props.auth_data.len, true, &d);
	} else {
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "unexpected AUTH (reason 0x%02x)",
				   a->reason);
	}
	switch (v) {
	case HOOK_PENDING:
		return DISPATCH_STOP;
	case HOOK_CONTINUE:
		xa->in_progress = true;
		xa->reauth = true;
		if (d.plugin)
			xa->plugin = d.plugin;
		rc = send_auth(c, MQTT_RC_CONTINUE_AUTHENTICATION, xa->method, d.data, d.data_len) < 0
			     ? client_fail(c, 0, "out of memory")
			     : DISPATCH_CONTINUE;
		break;
	case HOOK_ALLOW:
		xa->in_progress = false;
		xa->reauth = false;
		rc = send_auth(c, MQTT_RC_SUCCESS, xa->method, d.data, d.data_len) < 0
			     ? client_fail(c, 0, "out of memory")
			     : DISPATCH_CONTINUE;
		break;
	default:
		rc = client_fail(c, d.reason >= 0x80 ? d.reason : MQTT_RC_NOT_AUTHORIZED,
				 "failed re-authentication");
		break;
	}
	decision_free_data(&d);
	return rc;
}

int handle_auth(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct mqtt_reason_packet a;

	if (mqtt_decode_auth(body, len, flags, c->protocol, &a) != MQTT_OK)
		return client_fail(c, MQTT_RC_MALFORMED_PACKET, "malformed AUTH");
	if (!client_xauth(c))
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "AUTH without an authentication method");
	if (!same_method(c->ext->xauth, &a))
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "AUTH with another authentication method");
	if (c->state == CLIENT_NEW) {
		if (!c->ext->xauth->in_progress)
			return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "AUTH out of turn");
		return connect_round(c, &a);
	}
	return reauth_round(c, &a);
}
