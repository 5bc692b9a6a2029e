/*
 * auth.h: the broker's authentication and authorisation decision points.
 *
 * Owns the answer to "may this client connect" and "may it publish to /
 * subscribe to this topic", from the listener's security settings (and, as
 * they arrive, password files, ACL files and plugins). Handlers ask here
 * and turn the answer into CONNACK / SUBACK / PUBACK codes.
 */
#ifndef MIDGE_AUTH_H
#define MIDGE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "packet.h"

struct config_security;

enum auth_result {
	AUTH_OK = 0,
	AUTH_BAD_CREDENTIALS, /* CONNACK 4 / 0x86 */
	AUTH_NOT_AUTHORIZED,  /* CONNACK 5 / 0x87 */
};

/*
 * Decides whether a client may connect with this user name (NULL for none)
 * and password (data NULL for none).
 */
enum auth_result auth_connect(const struct config_security *sec, const char *username,
			      const struct mqtt_bytes *password);

/* Whether a client id is acceptable under clientid_prefixes. */
bool auth_clientid_allowed(const struct config_security *sec, const char *client_id);

#endif
